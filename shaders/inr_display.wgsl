// Shows the values that inr.wgsl computed for a view: colour maps per mode, sRGB handling.
// Mirror of DisplayParams: src/render/gpu_types.rs.

const MODE_VALUE: u32 = 0u;
const MODE_GRADIENT: u32 = 1u;
const MODE_LAPLACIAN: u32 = 2u;
const MODE_ERROR: u32 = 3u;

struct DisplayParams {
    grid_width: u32,
    grid_height: u32,
    mode: u32,
    channels: u32,
    scale: f32,
    linear_output: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> display: DisplayParams;
@group(0) @binding(1) var<storage, read> shown: array<vec4<f32>>;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    // (0, 0) at the view's top-left corner, (1, 1) at its bottom-right.
    @location(0) uv: vec2<f32>,
}

@vertex
fn display_vertex(@builtin(vertex_index) index: u32) -> VertexOut {
    // One triangle covering the viewport (which egui-wgpu sets to the view's rectangle).
    let corner = vec2<f32>(f32((index << 1u) & 2u), f32(index & 2u));
    var out: VertexOut;
    out.position = vec4<f32>(corner * 2.0 - 1.0, 0.0, 1.0);
    out.uv = vec2<f32>(corner.x, 1.0 - corner.y);
    return out;
}

// A dark-to-bright sequential map: black, violet, red-orange, yellow, near white.
fn heat(t_in: f32) -> vec3<f32> {
    let t = clamp(t_in, 0.0, 1.0) * 4.0;
    let stops = array<vec3<f32>, 5>(
        vec3<f32>(0.0, 0.0, 0.02),
        vec3<f32>(0.33, 0.06, 0.43),
        vec3<f32>(0.80, 0.22, 0.27),
        vec3<f32>(0.98, 0.65, 0.10),
        vec3<f32>(0.99, 0.98, 0.75),
    );
    let i = min(u32(t), 3u);
    return mix(stops[i], stops[i + 1u], t - f32(i));
}

// Negative blue, zero white, positive red; t in [-1, 1].
fn diverging(t_in: f32) -> vec3<f32> {
    let t = clamp(t_in, -1.0, 1.0);
    let white = vec3<f32>(0.97, 0.97, 0.97);
    if t < 0.0 {
        return mix(white, vec3<f32>(0.13, 0.35, 0.80), -t);
    }
    return mix(white, vec3<f32>(0.80, 0.15, 0.15), t);
}

fn colour_of(v: vec4<f32>) -> vec3<f32> {
    let gray = display.channels == 1u;
    switch display.mode {
        case MODE_GRADIENT: {
            if gray {
                return heat(v.x / display.scale);
            }
            return clamp(v.xyz / display.scale, vec3<f32>(0.0), vec3<f32>(1.0));
        }
        case MODE_LAPLACIAN: {
            if gray {
                return diverging(v.x / display.scale);
            }
            return clamp(0.5 + 0.5 * v.xyz / display.scale, vec3<f32>(0.0), vec3<f32>(1.0));
        }
        case MODE_ERROR: {
            if v.w < 0.0 {
                return vec3<f32>(0.25);
            }
            if gray {
                return heat(abs(v.x) / display.scale);
            }
            return clamp(abs(v.xyz) / display.scale, vec3<f32>(0.0), vec3<f32>(1.0));
        }
        default: {
            if gray {
                return vec3<f32>(clamp(v.x, 0.0, 1.0));
            }
            return clamp(v.xyz, vec3<f32>(0.0), vec3<f32>(1.0));
        }
    }
}

fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    let low = c / 12.92;
    let high = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return select(high, low, c <= vec3<f32>(0.04045));
}

@fragment
fn display_fragment(in: VertexOut) -> @location(0) vec4<f32> {
    let uv = in.uv;
    let grid = vec2<f32>(f32(display.grid_width), f32(display.grid_height));
    let cell = clamp(floor(uv * grid), vec2<f32>(0.0), grid - 1.0);
    let v = shown[u32(cell.y) * display.grid_width + u32(cell.x)];
    var colour = colour_of(v);
    if display.linear_output == 1u {
        colour = srgb_to_linear(colour);
    }
    return vec4<f32>(colour, 1.0);
}
