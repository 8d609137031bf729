// Evaluates a SIREN at every pixel of a view (compute pass); inr_display.wgsl shows the result.
//
// Hidden layers compute sin(ω₀·(W·h + b)), the last layer is linear. Values are in pixel units,
// (f + 1)/2. Derivative views carry, per neuron, the value, ∂x, ∂y and the Laplacian ∇²: a linear
// map acts on all four alike, and for y = sin u: y_x = cos u·u_x, ∇²y = cos u·∇²u − sin u·|∇u|².
//
// Neurons are handled four at a time (vec4), and weights are read as vec4 along each row, so a
// weight load feeds a dot product (four for derivative views). The weight buffer's layout is
// built by `gpu_weight_layout` in src/render/inr_view.rs:
//   layer 0:           `width` vec4s (w_x, w_y, b, 0), one per neuron;
//   hidden layer l ≥ 1: `width` rows of `width4` vec4s (inputs zero-padded to a multiple of 4),
//                       then `width4` vec4s of biases (zero-padded);
//   output layer:      `out_features` rows of `width4` vec4s, then one vec4 of biases.
// Padded neurons get z = 0, hence sin z = 0, and padded weights are 0: padding never leaks.
//
// Mirrors of the uniform structs are in src/render/gpu_types.rs.

const MAX_WIDTH4: u32 = 64u;

const MODE_VALUE: u32 = 0u;
const MODE_GRADIENT: u32 = 1u;
const MODE_LAPLACIAN: u32 = 2u;
const MODE_ERROR: u32 = 3u;

struct Network {
    num_layers: u32,
    width: u32,
    width4: u32,
    out_features: u32,
    omega0: f32,
    reference_width: u32,
    reference_height: u32,
    reference_channels: u32,
}

struct EvalParams {
    // INR coordinate of grid cell (0, 0)'s centre, and the step between cell centres.
    origin: vec2<f32>,
    step: vec2<f32>,
    grid_width: u32,
    grid_height: u32,
    row_begin: u32,
    row_end: u32,
    mode: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> network: Network;
@group(0) @binding(1) var<storage, read> weights: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> reference: array<f32>;

@group(1) @binding(0) var<uniform> eval_params: EvalParams;
@group(1) @binding(1) var<storage, read_write> values: array<vec4<f32>>;

// Activations of four neurons per element. Value views use `act`; derivative views use the value
// (`jv`), ∂x (`jx`), ∂y (`jy`) and Laplacian (`jl`) arrays.
var<private> act: array<vec4<f32>, MAX_WIDTH4>;
var<private> jv: array<vec4<f32>, MAX_WIDTH4>;
var<private> jx: array<vec4<f32>, MAX_WIDTH4>;
var<private> jy: array<vec4<f32>, MAX_WIDTH4>;
var<private> jl: array<vec4<f32>, MAX_WIDTH4>;
var<private> nv: array<vec4<f32>, MAX_WIDTH4>;
var<private> nx: array<vec4<f32>, MAX_WIDTH4>;
var<private> ny: array<vec4<f32>, MAX_WIDTH4>;
var<private> nl: array<vec4<f32>, MAX_WIDTH4>;

fn hidden_offset(layer: u32) -> u32 {
    let w = network.width;
    let w4 = network.width4;
    return w + (layer - 1u) * (w * w4 + w4);
}

// Σ_i W[row, i]·h[i] with h in `act`.
fn row_dot_act(row: u32) -> f32 {
    var s = 0.0;
    for (var i4 = 0u; i4 < network.width4; i4++) {
        s += dot(weights[row + i4], act[i4]);
    }
    return s;
}

// Network output (pixel units) per channel.
fn eval_value(p: vec2<f32>) -> vec3<f32> {
    let w = network.width;
    let w4 = network.width4;
    let omega = network.omega0;
    for (var j4 = 0u; j4 < w4; j4++) {
        var z = vec4<f32>(0.0);
        for (var k = 0u; k < 4u; k++) {
            let j = 4u * j4 + k;
            if j < w {
                let c = weights[j];
                z[k] = c.x * p.x + c.y * p.y + c.z;
            }
        }
        act[j4] = sin(omega * z);
    }
    let last = network.num_layers - 1u;
    for (var layer = 1u; layer < last; layer++) {
        let base = hidden_offset(layer);
        // Results go to the jet scratch array `jv`, then replace `act`.
        for (var j4 = 0u; j4 < w4; j4++) {
            var z = weights[base + w * w4 + j4];
            for (var k = 0u; k < 4u; k++) {
                let j = 4u * j4 + k;
                if j < w {
                    z[k] += row_dot_act(base + j * w4);
                }
            }
            jv[j4] = sin(omega * z);
        }
        for (var j4 = 0u; j4 < w4; j4++) {
            act[j4] = jv[j4];
        }
    }
    let base = hidden_offset(last);
    let bias = weights[base + network.out_features * w4];
    var out = vec3<f32>(0.0);
    for (var c = 0u; c < network.out_features; c++) {
        out[c] = 0.5 * (row_dot_act(base + c * w4) + bias[c] + 1.0);
    }
    return out;
}

// (value, ∂x, ∂y, ∇²) of the output in pixel units, per channel.
fn eval_jet(p: vec2<f32>) -> array<vec4<f32>, 3> {
    let w = network.width;
    let w4 = network.width4;
    let omega = network.omega0;
    for (var j4 = 0u; j4 < w4; j4++) {
        var zv = vec4<f32>(0.0);
        var zx = vec4<f32>(0.0);
        var zy = vec4<f32>(0.0);
        for (var k = 0u; k < 4u; k++) {
            let j = 4u * j4 + k;
            if j < w {
                let c = weights[j];
                zv[k] = c.x * p.x + c.y * p.y + c.z;
                zx[k] = c.x;
                zy[k] = c.y;
            }
        }
        let s = sin(omega * zv);
        let co = cos(omega * zv);
        jv[j4] = s;
        jx[j4] = co * omega * zx;
        jy[j4] = co * omega * zy;
        jl[j4] = -s * omega * omega * (zx * zx + zy * zy);
    }
    let last = network.num_layers - 1u;
    for (var layer = 1u; layer < last; layer++) {
        let base = hidden_offset(layer);
        // The new layer's jets are staged in the `n*` arrays, then copied back.
        for (var j4 = 0u; j4 < w4; j4++) {
            var zv = weights[base + w * w4 + j4];
            var zx = vec4<f32>(0.0);
            var zy = vec4<f32>(0.0);
            var zl = vec4<f32>(0.0);
            for (var k = 0u; k < 4u; k++) {
                let j = 4u * j4 + k;
                if j < w {
                    let row = base + j * w4;
                    var sv = 0.0;
                    var sx = 0.0;
                    var sy = 0.0;
                    var sl = 0.0;
                    for (var i4 = 0u; i4 < w4; i4++) {
                        let wv = weights[row + i4];
                        sv += dot(wv, jv[i4]);
                        sx += dot(wv, jx[i4]);
                        sy += dot(wv, jy[i4]);
                        sl += dot(wv, jl[i4]);
                    }
                    zv[k] += sv;
                    zx[k] = sx;
                    zy[k] = sy;
                    zl[k] = sl;
                }
            }
            let ux = omega * zx;
            let uy = omega * zy;
            let s = sin(omega * zv);
            let co = cos(omega * zv);
            nv[j4] = s;
            nx[j4] = co * ux;
            ny[j4] = co * uy;
            nl[j4] = co * omega * zl - s * (ux * ux + uy * uy);
        }
        for (var j4 = 0u; j4 < w4; j4++) {
            jv[j4] = nv[j4];
            jx[j4] = nx[j4];
            jy[j4] = ny[j4];
            jl[j4] = nl[j4];
        }
    }
    let base = hidden_offset(last);
    let bias = weights[base + network.out_features * w4];
    var out = array<vec4<f32>, 3>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var c = 0u; c < network.out_features; c++) {
        let row = base + c * w4;
        var z = vec4<f32>(bias[c], 0.0, 0.0, 0.0);
        for (var i4 = 0u; i4 < w4; i4++) {
            let wv = weights[row + i4];
            z += vec4<f32>(dot(wv, jv[i4]), dot(wv, jx[i4]), dot(wv, jy[i4]), dot(wv, jl[i4]));
        }
        out[c] = 0.5 * z + vec4<f32>(0.5, 0.0, 0.0, 0.0);
    }
    return out;
}

// The reference image's pixel containing INR coordinate p, or a negative w when p is outside.
fn reference_at(p: vec2<f32>) -> vec4<f32> {
    let size = vec2<f32>(f32(network.reference_width), f32(network.reference_height));
    let cell = floor((p + 1.0) * 0.5 * size);
    if any(cell < vec2<f32>(0.0)) || any(cell >= size) || network.reference_width == 0u {
        return vec4<f32>(0.0, 0.0, 0.0, -1.0);
    }
    let index = (u32(cell.y) * network.reference_width + u32(cell.x)) * network.reference_channels;
    if network.reference_channels == 1u {
        return vec4<f32>(reference[index], 0.0, 0.0, 1.0);
    }
    return vec4<f32>(reference[index], reference[index + 1u], reference[index + 2u], 1.0);
}

fn cell_position(id: vec3<u32>) -> vec2<f32> {
    let row = eval_params.row_begin + id.y;
    return eval_params.origin + vec2<f32>(f32(id.x), f32(row)) * eval_params.step;
}

fn in_range(id: vec3<u32>) -> bool {
    let row = eval_params.row_begin + id.y;
    return id.x < eval_params.grid_width && row < eval_params.row_end && row < eval_params.grid_height;
}

fn store(id: vec3<u32>, v: vec4<f32>) {
    values[(eval_params.row_begin + id.y) * eval_params.grid_width + id.x] = v;
}

// One entry point per kind of view, so that each pipeline compiles only the code it runs.

@compute @workgroup_size(8, 8, 1)
fn evaluate_value(@builtin(global_invocation_id) id: vec3<u32>) {
    if !in_range(id) {
        return;
    }
    let p = cell_position(id);
    if eval_params.mode == MODE_ERROR {
        let r = reference_at(p);
        store(id, vec4<f32>(eval_value(p) - r.xyz, r.w));
    } else {
        store(id, vec4<f32>(eval_value(p), 1.0));
    }
}

@compute @workgroup_size(8, 8, 1)
fn evaluate_derivatives(@builtin(global_invocation_id) id: vec3<u32>) {
    if !in_range(id) {
        return;
    }
    let j = eval_jet(cell_position(id));
    if eval_params.mode == MODE_GRADIENT {
        store(id, vec4<f32>(length(j[0].yz), length(j[1].yz), length(j[2].yz), 1.0));
    } else {
        store(id, vec4<f32>(j[0].w, j[1].w, j[2].w, 1.0));
    }
}
