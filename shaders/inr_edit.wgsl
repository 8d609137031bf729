// An INSP edit of a SIREN, evaluated on the GPU in passes over a band of pixels.
//
// Every neuron carries the truncated Taylor polynomial of its value in (dx, dy) around the
// pixel, `Σ c_ij dxⁱ dyʲ` for i + j ≤ order (P coefficients, order ≤ 4). Passes:
//   first_layer:  z = W·(x, y) + b as a polynomial, then sin(ω·z) composed with it;
//   hidden_layer: z_k = Σ_i W[n, i]·c_k[i] for every coefficient k (bias on c_0), then the sine;
//   edit:         the linear output layer gives each channel's coefficients; ∂ⁱ⁺ʲ = i!·j!·c_ij
//                 (pixel units: ×0.5, +0.5 on the value); standardised, they go through the
//                 operator MLP (ReLU), whose output (plus the value when residual) is the edit.
// sin(u₀ + p) = Σ_m sin⁽ᵐ⁾(u₀)/m!·pᵐ with the powers of p (no constant term) truncated.
// One invocation per (neuron, pixel) in the layer passes and per pixel in the edit pass.
// CPU twin: src/compute/inr/taylor.rs and OperatorWeights::apply_rows; mirror of Params in
// src/render/gpu_types.rs; buffers built by src/render/edit_gpu.rs.

const MAX_P: u32 = 15u;
const MAX_ORDER: u32 = 4u;
const MAX_OP_WIDTH: u32 = 256u;

struct Params {
    // INR coordinate of grid cell (0, 0)'s centre, and the step between cell centres.
    origin: vec2<f32>,
    step: vec2<f32>,
    grid_width: u32,
    // Band: grid pixels [pixel_begin, pixel_begin + pixel_count).
    pixel_begin: u32,
    pixel_count: u32,
    // SIREN: hidden width, ω₀, this pass's layer offset in `siren` and its fan-in.
    width: u32,
    omega0: f32,
    layer_offset: u32,
    fan_in: u32,
    out_features: u32,
    // Taylor polynomials: number of coefficients, order, product-table entries.
    num_partials: u32,
    order: u32,
    num_products: u32,
    // Operator: hidden layers, width, residual (0/1).
    op_layers: u32,
    op_width: u32,
    residual: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Flat SIREN parameters: per layer W (fan_out × fan_in, row-major), then b.
@group(0) @binding(1) var<storage, read> siren: array<f32>;
// Operator: shift (P), scale (P), then per layer W (row-major) and b.
@group(0) @binding(2) var<storage, read> op: array<f32>;
// tables[k] = i + 256·j for coefficient k; then (k, a, b) triples: x_a·y_b adds to coefficient k.
@group(0) @binding(3) var<storage, read> tables: array<u32>;
@group(0) @binding(4) var<storage, read> jets_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> jets_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> values: array<vec4<f32>>;

fn degree(k: u32) -> u32 {
    let ij = tables[k];
    return (ij & 255u) + (ij >> 8u);
}

fn factorial(n: u32) -> f32 {
    var f = 1.0;
    for (var i = 2u; i <= n; i++) {
        f *= f32(i);
    }
    return f;
}

// sin(ω·z) for one neuron's polynomial z (coefficients 0..P), written to jets_out.
fn sine_out(z: array<f32, MAX_P>, out_base: u32) {
    let p_count = params.num_partials;
    let u0 = params.omega0 * z[0];
    var powers: array<array<f32, MAX_P>, MAX_ORDER>;
    for (var k = 0u; k < MAX_P; k++) {
        powers[0][k] = select(0.0, params.omega0 * z[k], k > 0u && k < p_count);
    }
    for (var m = 1u; m < params.order; m++) {
        for (var k = 0u; k < MAX_P; k++) {
            powers[m][k] = 0.0;
        }
        for (var t = 0u; t < params.num_products; t++) {
            let base = p_count + 3u * t;
            let k = tables[base];
            let a = tables[base + 1u];
            let b = tables[base + 2u];
            powers[m][k] += powers[m - 1u][a] * powers[0][b];
        }
    }
    let s = sin(u0);
    let c = cos(u0);
    // sin⁽ᵐ⁾(u₀)/m! for m = 1..4.
    let coefficient = array<f32, MAX_ORDER>(c, -s / 2.0, -c / 6.0, s / 24.0);
    let stride = params.width;
    jets_out[out_base] = s;
    for (var k = 1u; k < p_count; k++) {
        var sum = 0.0;
        for (var m = 0u; m < params.order; m++) {
            sum += coefficient[m] * powers[m][k];
        }
        jets_out[out_base + k * stride] = sum;
    }
}

fn grid_coordinate(pixel: u32) -> vec2<f32> {
    let gx = pixel % params.grid_width;
    let gy = pixel / params.grid_width;
    return params.origin + params.step * vec2<f32>(f32(gx), f32(gy));
}

@compute @workgroup_size(64, 1, 1)
fn first_layer(@builtin(global_invocation_id) id: vec3<u32>) {
    let n = id.x;
    let local = id.y;
    if n >= params.width || local >= params.pixel_count {
        return;
    }
    let xy = grid_coordinate(params.pixel_begin + local);
    let w = params.layer_offset + n * 2u;
    let b = params.layer_offset + params.width * 2u + n;
    var z: array<f32, MAX_P>;
    z[0] = siren[w] * xy.x + siren[w + 1u] * xy.y + siren[b];
    if params.order >= 1u {
        z[1] = siren[w];
        z[2] = siren[w + 1u];
    }
    sine_out(z, local * params.num_partials * params.width + n);
}

@compute @workgroup_size(64, 1, 1)
fn hidden_layer(@builtin(global_invocation_id) id: vec3<u32>) {
    let n = id.x;
    let local = id.y;
    if n >= params.width || local >= params.pixel_count {
        return;
    }
    let fan_in = params.fan_in;
    let row = params.layer_offset + n * fan_in;
    let base = local * params.num_partials * fan_in;
    var z: array<f32, MAX_P>;
    for (var k = 0u; k < params.num_partials; k++) {
        var sum = 0.0;
        let jet = base + k * fan_in;
        for (var i = 0u; i < fan_in; i++) {
            sum += siren[row + i] * jets_in[jet + i];
        }
        z[k] = sum;
    }
    z[0] += siren[params.layer_offset + params.width * fan_in + n];
    sine_out(z, local * params.num_partials * params.width + n);
}

@compute @workgroup_size(64, 1, 1)
fn edit(@builtin(global_invocation_id) id: vec3<u32>) {
    let local = id.x;
    if local >= params.pixel_count {
        return;
    }
    let p_count = params.num_partials;
    let fan_in = params.fan_in;
    let base = local * p_count * fan_in;
    var result = vec4<f32>(0.0, 0.0, 0.0, 1.0);
    var a: array<f32, MAX_OP_WIDTH>;
    var h: array<f32, MAX_OP_WIDTH>;
    for (var ch = 0u; ch < params.out_features; ch++) {
        let row = params.layer_offset + ch * fan_in;
        let bias = params.layer_offset + params.out_features * fan_in + ch;
        // The stack of this channel, standardised, into `a`.
        var value = 0.0;
        for (var k = 0u; k < p_count; k++) {
            var sum = 0.0;
            let jet = base + k * fan_in;
            for (var i = 0u; i < fan_in; i++) {
                sum += siren[row + i] * jets_in[jet + i];
            }
            let ij = tables[k];
            var derivative = 0.5 * factorial(ij & 255u) * factorial(ij >> 8u) * sum;
            if k == 0u {
                derivative = 0.5 * (sum + siren[bias]) + 0.5;
                value = derivative;
            }
            a[k] = (derivative - op[k]) / op[p_count + k];
        }
        // The operator MLP: op_layers hidden ReLU layers, then one output.
        var offset = 2u * p_count;
        var width_in = p_count;
        for (var l = 0u; l <= params.op_layers; l++) {
            let last = l == params.op_layers;
            let width_out = select(params.op_width, 1u, last);
            for (var o = 0u; o < width_out; o++) {
                var sum = op[offset + width_out * width_in + o];
                for (var i = 0u; i < width_in; i++) {
                    sum += op[offset + o * width_in + i] * a[i];
                }
                h[o] = select(max(sum, 0.0), sum, last);
            }
            offset += width_out * width_in + width_out;
            width_in = width_out;
            for (var o = 0u; o < width_out; o++) {
                a[o] = h[o];
            }
        }
        let edited = a[0] + select(0.0, value, params.residual == 1u);
        if ch < 3u {
            result[ch] = edited;
        }
    }
    if params.out_features == 1u {
        result = vec4<f32>(result.x, result.x, result.x, 1.0);
    }
    values[params.pixel_begin + local] = result;
}
