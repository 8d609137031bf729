//! Dense ReLU layers over flat `f32` parameters, shared by the fused MLPs (the INSP operator and
//! the hard-sample classifier): layer `l` is a row-major `fan_out × fan_in` weight at
//! `offsets[l]` followed by its bias; activations are row-major `n × width`. Also the small vector
//! helpers the attention kernels share.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// `out ← input · Wᵀ + b` for `n` rows, with `W` and `b` of layer `(fan_in, fan_out)` at `offset`.
pub fn linear(
    out: &mut [f32],
    input: &[f32],
    params: &[f32],
    offset: usize,
    (fan_in, fan_out): (usize, usize),
    n: usize,
) {
    matmul(
        MatMut::from_row_major_slice_mut(out, n, fan_out),
        Accum::Replace,
        MatRef::from_row_major_slice(input, n, fan_in),
        MatRef::from_row_major_slice(&params[offset..offset + fan_in * fan_out], fan_out, fan_in).transpose(),
        1.0,
        Par::Seq,
    );
    let bias = &params[offset + fan_in * fan_out..offset + (fan_in + 1) * fan_out];
    for row in out.chunks_exact_mut(fan_out) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
}

/// Backpropagates `g` (the loss gradient at the last layer's output, `n × fan_out`) through
/// every layer, adding each weight's and bias's gradient into `grads`. `hidden[l]` is the ReLU
/// output of layer `l` (all layers but the last), `x` the network's input.
pub fn backward(
    shapes: &[(usize, usize)],
    offsets: &[usize],
    params: &[f32],
    (x, hidden): (&[f32], &[Vec<f32>]),
    mut g: Vec<f32>,
    grads: &mut [f32],
) {
    let n = g.len() / shapes.last().map_or(1, |s| s.1.max(1));
    for l in (0..shapes.len()).rev() {
        let (fan_in, fan_out) = shapes[l];
        let input: &[f32] = if l == 0 { x } else { &hidden[l - 1] };
        let offset = offsets[l];
        let (w_grad, b_grad) = grads[offset..offset + (fan_in + 1) * fan_out].split_at_mut(fan_in * fan_out);
        matmul(
            MatMut::from_row_major_slice_mut(w_grad, fan_out, fan_in),
            Accum::Add,
            MatRef::from_row_major_slice(&g, n, fan_out).transpose(),
            MatRef::from_row_major_slice(input, n, fan_in),
            1.0,
            Par::Seq,
        );
        for row in g.chunks_exact(fan_out) {
            b_grad.iter_mut().zip(row).for_each(|(b, v)| *b += v);
        }
        if l == 0 {
            break;
        }
        let mut previous = vec![0.0; n * fan_in];
        matmul(
            MatMut::from_row_major_slice_mut(&mut previous, n, fan_in),
            Accum::Replace,
            MatRef::from_row_major_slice(&g, n, fan_out),
            MatRef::from_row_major_slice(&params[offset..offset + fan_in * fan_out], fan_out, fan_in),
            1.0,
            Par::Seq,
        );
        // Through the ReLU of the layer below: zero where its output was clamped.
        previous.iter_mut().zip(&hidden[l - 1]).for_each(|(p, &a)| {
            if a <= 0.0 {
                *p = 0.0;
            }
        });
        g = previous;
    }
}

/// `a·b`, summed in eight lanes so that it vectorises (one running sum cannot be reordered).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let (a_blocks, b_blocks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_blocks.remainder().iter().zip(b_blocks.remainder()).map(|(x, y)| x * y).sum();
    let mut lanes = [0.0_f32; LANES];
    for (x, y) in a_blocks.zip(b_blocks) {
        for k in 0..LANES {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `y ← y + a·x`.
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
}
