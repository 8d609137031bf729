// The NeRF viewer's fast path: marches each pixel's ray through a baked (r, g, b, σ) grid,
// skipping empty blocks, and composites front to back. CPU twin: BakedGrid::render_pixel in
// src/compute/nerf/bake.rs. Mirror of ViewParams: NerfViewUniform in src/render/gpu_types.rs.

const MODE_RGB: u32 = 0u;
const MODE_DEPTH: u32 = 1u;
const MODE_OPACITY: u32 = 2u;
const MIN_TRANSMITTANCE: f32 = 1e-3;
const EMPTY_ABSORPTION: f32 = 1e-4;

struct ViewParams {
    origin: vec4<f32>,
    // Camera-to-world rotation columns (OpenGL camera: looks down −back).
    right: vec4<f32>,
    up: vec4<f32>,
    back: vec4<f32>,
    // fx, fy, cx, cy in pixels of the output grid.
    intrinsics: vec4<f32>,
    // xyz: scene box corner; w: step along the ray.
    box_min: vec4<f32>,
    box_max: vec4<f32>,
    background: vec4<f32>,
    // x, y: near and far of the depth colour scale.
    depth_range: vec4<f32>,
    // width, height, mode, grid resolution.
    size: vec4<u32>,
    // coarse resolution, cells per block, max steps, unused.
    grid: vec4<u32>,
}

@group(0) @binding(0) var<uniform> params: ViewParams;
@group(0) @binding(1) var<storage, read> values: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> coarse_max: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

fn value_at(x: u32, y: u32, z: u32) -> vec4<f32> {
    let r = params.size.w;
    return values[x + r * (y + r * z)];
}

fn sample_grid(u_in: vec3<f32>) -> vec4<f32> {
    let r = params.size.w;
    let x = clamp(u_in, vec3<f32>(0.0), vec3<f32>(1.0)) * f32(r - 1u);
    let cell = min(vec3<u32>(x), vec3<u32>(r - 2u));
    let f = x - vec3<f32>(cell);
    let c00 = mix(value_at(cell.x, cell.y, cell.z), value_at(cell.x + 1u, cell.y, cell.z), f.x);
    let c10 = mix(value_at(cell.x, cell.y + 1u, cell.z), value_at(cell.x + 1u, cell.y + 1u, cell.z), f.x);
    let c01 = mix(value_at(cell.x, cell.y, cell.z + 1u), value_at(cell.x + 1u, cell.y, cell.z + 1u), f.x);
    let c11 = mix(value_at(cell.x, cell.y + 1u, cell.z + 1u), value_at(cell.x + 1u, cell.y + 1u, cell.z + 1u), f.x);
    return mix(mix(c00, c10, f.y), mix(c01, c11, f.y), f.z);
}

@compute @workgroup_size(8, 8, 1)
fn march_main(@builtin(global_invocation_id) id: vec3<u32>) {
    let width = params.size.x;
    let height = params.size.y;
    if id.x >= width || id.y >= height {
        return;
    }
    let k = params.intrinsics;
    let d_camera = vec3<f32>((f32(id.x) + 0.5 - k.z) / k.x, -(f32(id.y) + 0.5 - k.w) / k.y, -1.0);
    let dir = normalize(params.right.xyz * d_camera.x + params.up.xyz * d_camera.y + params.back.xyz * d_camera.z);
    let origin = params.origin.xyz;
    let box_min = params.box_min.xyz;
    let box_size = params.box_max.xyz - box_min;
    let step = params.box_min.w;

    var rgb = vec3<f32>(0.0);
    var transmittance = 1.0;
    var depth = 0.0;
    let inv = 1.0 / dir;
    let t0 = (box_min - origin) * inv;
    let t1 = (params.box_max.xyz - origin) * inv;
    let tmin = min(t0, t1);
    let tmax = max(t0, t1);
    let near = max(max(max(tmin.x, tmin.y), tmin.z), 0.0);
    let far = min(min(tmax.x, tmax.y), tmax.z);
    if far > near {
        let cres = params.grid.x;
        let block_size = f32(params.grid.y) / f32(params.size.w - 1u);
        var i = 0u;
        var steps = 0u;
        loop {
            if steps >= params.grid.z || transmittance <= MIN_TRANSMITTANCE {
                break;
            }
            steps += 1u;
            let t = near + (f32(i) + 0.5) * step;
            if t >= far {
                break;
            }
            let u = (origin + t * dir - box_min) / box_size;
            let b = min(vec3<u32>(max(u / block_size, vec3<f32>(0.0))), vec3<u32>(cres - 1u));
            if coarse_max[b.x + cres * (b.y + cres * b.z)] * step < EMPTY_ABSORPTION {
                let lo = vec3<f32>(b) * block_size;
                let hi = lo + vec3<f32>(block_size);
                let scale = box_size / dir;
                let t_lo = (lo - u) * scale;
                let t_hi = (hi - u) * scale;
                let t_far = max(t_lo, t_hi);
                let exit = t + max(min(min(t_far.x, t_far.y), t_far.z), 0.0);
                i = u32(max(ceil((exit - near) / step - 0.5), f32(i) + 1.0));
                continue;
            }
            let s = sample_grid(u);
            let alpha = 1.0 - exp(-max(s.w, 0.0) * step);
            let w = transmittance * alpha;
            rgb += w * s.xyz;
            depth += w * t;
            transmittance *= 1.0 - alpha;
            i += 1u;
        }
    }
    let opacity = 1.0 - transmittance;
    var colour: vec3<f32>;
    switch params.size.z {
        case MODE_OPACITY: {
            colour = vec3<f32>(opacity);
        }
        case MODE_DEPTH: {
            var d = params.depth_range.y;
            if opacity > 0.05 {
                d = depth / opacity;
            }
            let span = max(params.depth_range.y - params.depth_range.x, 1e-6);
            colour = vec3<f32>(clamp(1.0 - (d - params.depth_range.x) / span, 0.0, 1.0));
        }
        default: {
            colour = rgb + transmittance * params.background.xyz;
        }
    }
    out[id.y * width + id.x] = vec4<f32>(colour, 1.0);
}
