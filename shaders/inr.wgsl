// Evaluates a SIREN at every pixel of a view (compute pass); inr_display.wgsl shows the result.
//
// The network's weights live in one storage buffer, layer after layer: the weight matrix
// (fan_out × fan_in, row-major) followed by the biases. Hidden layers compute sin(ω₀·(W·h + b)),
// the last layer is linear. Derivative views carry a 4-jet per neuron, (value, ∂x, ∂y, ∇²): a
// linear map acts on all four alike, and for y = sin u: y_x = cos u·u_x,
// ∇²y = cos u·∇²u − sin u·|∇u|². Values are in pixel units, (f + 1)/2.
//
// Mirrors of the uniform structs are in src/render/gpu_types.rs.

const MAX_WIDTH: u32 = 256u;

const MODE_VALUE: u32 = 0u;
const MODE_GRADIENT: u32 = 1u;
const MODE_LAPLACIAN: u32 = 2u;
const MODE_ERROR: u32 = 3u;

struct Network {
    num_layers: u32,
    width: u32,
    out_features: u32,
    omega0: f32,
    reference_width: u32,
    reference_height: u32,
    reference_channels: u32,
    _pad: u32,
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
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> reference: array<f32>;

@group(1) @binding(0) var<uniform> eval_params: EvalParams;
@group(1) @binding(1) var<storage, read_write> values: array<vec4<f32>>;

var<private> act: array<f32, MAX_WIDTH>;
var<private> act_next: array<f32, MAX_WIDTH>;
var<private> jet: array<vec4<f32>, MAX_WIDTH>;
var<private> jet_next: array<vec4<f32>, MAX_WIDTH>;

// Offset of layer `layer`'s weights; its biases follow them.
fn layer_offset(layer: u32) -> u32 {
    let w = network.width;
    if layer == 0u {
        return 0u;
    }
    return 2u * w + w + (layer - 1u) * (w * w + w);
}

// Network output (pixel units) per channel.
fn eval_value(p: vec2<f32>) -> vec3<f32> {
    let w = network.width;
    let omega = network.omega0;
    for (var j = 0u; j < w; j++) {
        let z = weights[2u * j] * p.x + weights[2u * j + 1u] * p.y + weights[2u * w + j];
        act[j] = sin(omega * z);
    }
    let last = network.num_layers - 1u;
    for (var layer = 1u; layer < last; layer++) {
        let offset = layer_offset(layer);
        for (var j = 0u; j < w; j++) {
            var z = weights[offset + w * w + j];
            let row = offset + j * w;
            for (var i = 0u; i < w; i++) {
                z += weights[row + i] * act[i];
            }
            act_next[j] = sin(omega * z);
        }
        for (var j = 0u; j < w; j++) {
            act[j] = act_next[j];
        }
    }
    let offset = layer_offset(last);
    var out = vec3<f32>(0.0);
    for (var c = 0u; c < network.out_features; c++) {
        var z = weights[offset + network.out_features * w + c];
        let row = offset + c * w;
        for (var i = 0u; i < w; i++) {
            z += weights[row + i] * act[i];
        }
        out[c] = 0.5 * (z + 1.0);
    }
    return out;
}

fn sine_jet(z: vec4<f32>, omega: f32) -> vec4<f32> {
    let u = omega * z;
    let s = sin(u.x);
    let c = cos(u.x);
    return vec4<f32>(s, c * u.y, c * u.z, c * u.w - s * (u.y * u.y + u.z * u.z));
}

// (value, ∂x, ∂y, ∇²) of the output in pixel units, per channel.
fn eval_jet(p: vec2<f32>) -> array<vec4<f32>, 3> {
    let w = network.width;
    let omega = network.omega0;
    let x = vec4<f32>(p.x, 1.0, 0.0, 0.0);
    let y = vec4<f32>(p.y, 0.0, 1.0, 0.0);
    for (var j = 0u; j < w; j++) {
        let z = weights[2u * j] * x + weights[2u * j + 1u] * y + vec4<f32>(weights[2u * w + j], 0.0, 0.0, 0.0);
        jet[j] = sine_jet(z, omega);
    }
    let last = network.num_layers - 1u;
    for (var layer = 1u; layer < last; layer++) {
        let offset = layer_offset(layer);
        for (var j = 0u; j < w; j++) {
            var z = vec4<f32>(weights[offset + w * w + j], 0.0, 0.0, 0.0);
            let row = offset + j * w;
            for (var i = 0u; i < w; i++) {
                z += weights[row + i] * jet[i];
            }
            jet_next[j] = sine_jet(z, omega);
        }
        for (var j = 0u; j < w; j++) {
            jet[j] = jet_next[j];
        }
    }
    let offset = layer_offset(last);
    var out = array<vec4<f32>, 3>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var c = 0u; c < network.out_features; c++) {
        var z = vec4<f32>(weights[offset + network.out_features * w + c], 0.0, 0.0, 0.0);
        let row = offset + c * w;
        for (var i = 0u; i < w; i++) {
            z += weights[row + i] * jet[i];
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

@compute @workgroup_size(8, 8, 1)
fn evaluate(@builtin(global_invocation_id) id: vec3<u32>) {
    let row = eval_params.row_begin + id.y;
    if id.x >= eval_params.grid_width || row >= eval_params.row_end || row >= eval_params.grid_height {
        return;
    }
    let p = eval_params.origin + vec2<f32>(f32(id.x), f32(row)) * eval_params.step;
    var result = vec4<f32>(0.0, 0.0, 0.0, 1.0);
    switch eval_params.mode {
        case MODE_GRADIENT: {
            let j = eval_jet(p);
            result = vec4<f32>(length(j[0].yz), length(j[1].yz), length(j[2].yz), 1.0);
        }
        case MODE_LAPLACIAN: {
            let j = eval_jet(p);
            result = vec4<f32>(j[0].w, j[1].w, j[2].w, 1.0);
        }
        case MODE_ERROR: {
            let r = reference_at(p);
            result = vec4<f32>(eval_value(p) - r.xyz, r.w);
        }
        default: {
            result = vec4<f32>(eval_value(p), 1.0);
        }
    }
    values[row * eval_params.grid_width + id.x] = result;
}
