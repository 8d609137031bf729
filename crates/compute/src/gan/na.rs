//! Two-dimensional neighbourhood attention (NA-2D) with dilation, forward and backward written out
//! over flat arrays.
//!
//! Each query pixel attends to a `k × k` window of keys spaced `d` apart. Along each axis the
//! pixels fall into `d` interleaved subgrids (the positions with the same index mod `d`); a query
//! attends within its own subgrid, to the `k` consecutive subgrid positions centred on it, the
//! window shifted inward at the borders (never padded), as NATTEN does. Every query therefore sees
//! exactly `k²` keys, which needs `k · d ≤` the side. A learned bias per head is added to each
//! logit, indexed by the key's offset from the query in subgrid steps (`2k − 1` offsets per axis).
//!
//! Tensors are row-major `[batch, heads, height, width, channels]` (`channels` per head); the
//! bias is `[heads, 2k − 1, 2k − 1]`. The forward keeps the attention weights
//! (`[batch, heads, height, width, k²]`), which the backward and the lab's footprint view use.

use rayon::prelude::*;

use crate::dense::{axpy, dot};

/// One head group's neighbourhood: an odd kernel size and a dilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    pub kernel: usize,
    pub dilation: usize,
}

/// The sizes of the tensors an NA call works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NaShape {
    pub batch: usize,
    pub heads: usize,
    pub height: usize,
    pub width: usize,
    /// Channels per head.
    pub channels: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NaError {
    #[error("the attention kernel must be odd and at least 1, got {0}")]
    Kernel(usize),
    #[error("the dilation must be at least 1, got {0}")]
    Dilation(usize),
    #[error("a {kernel}×{kernel} window at dilation {dilation} spans {} pixels, more than the {side}-pixel side", kernel * dilation)]
    TooLarge { kernel: usize, dilation: usize, side: usize },
    #[error("{what} holds {got} values, the shape needs {expected}")]
    Length { what: &'static str, got: usize, expected: usize },
}

impl Window {
    pub fn new(kernel: usize, dilation: usize) -> Self {
        Self { kernel, dilation }
    }

    /// Checks the window fits a `height × width` map.
    pub fn validate(&self, height: usize, width: usize) -> Result<(), NaError> {
        if self.kernel == 0 || self.kernel.is_multiple_of(2) {
            return Err(NaError::Kernel(self.kernel));
        }
        if self.dilation == 0 {
            return Err(NaError::Dilation(self.dilation));
        }
        for side in [height, width] {
            if self.kernel * self.dilation > side {
                return Err(NaError::TooLarge { kernel: self.kernel, dilation: self.dilation, side });
            }
        }
        Ok(())
    }

    /// Along an axis of `n` pixels, the window of the query at `i`: its first key's position and
    /// the bias offset of that first key (the `t`-th key is at `first + t·d`, its bias offset
    /// `offset + t`, in `0..2k − 1`).
    pub fn axis(&self, i: usize, n: usize) -> (usize, usize) {
        let (k, d) = (self.kernel, self.dilation);
        let residue = i % d;
        let sub = i / d;
        // Positions ≡ residue (mod d) in 0..n.
        let sub_len = (n - residue).div_ceil(d);
        let start = sub.saturating_sub(k / 2).min(sub_len - k);
        (residue + start * d, start + k - 1 - sub)
    }

    /// Keys per query.
    pub fn keys(&self) -> usize {
        self.kernel * self.kernel
    }

    /// Bias entries per head, `(2k − 1)²`.
    pub fn bias_len(&self) -> usize {
        (2 * self.kernel - 1) * (2 * self.kernel - 1)
    }
}

impl NaShape {
    /// Values of a q, k, v or output tensor.
    pub fn len(&self) -> usize {
        self.batch * self.heads * self.height * self.width * self.channels
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn plane(&self) -> usize {
        self.height * self.width * self.channels
    }
}

fn check(what: &'static str, got: usize, expected: usize) -> Result<(), NaError> {
    if got == expected { Ok(()) } else { Err(NaError::Length { what, got, expected }) }
}

/// The outputs of [`forward`].
pub struct NaForward {
    /// `[batch, heads, height, width, channels]`.
    pub out: Vec<f32>,
    /// The attention weights, `[batch, heads, height, width, k²]` (keys row by row of the window).
    pub attention: Vec<f32>,
}

/// The gradients [`backward`] returns.
pub struct NaGradients {
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    /// `[heads, 2k − 1, 2k − 1]`.
    pub bias: Vec<f32>,
}

/// For each query of one plane, the key pixels of its window and their bias entries, row by row:
/// `(key pixel, bias index)` × k², queries in raster order.
fn neighbourhoods(window: Window, height: usize, width: usize) -> Vec<(u32, u32)> {
    let k = window.kernel;
    let d = window.dilation;
    let side = 2 * k - 1;
    let mut out = Vec::with_capacity(height * width * k * k);
    for y in 0..height {
        let (y0, by) = window.axis(y, height);
        for x in 0..width {
            let (x0, bx) = window.axis(x, width);
            for ty in 0..k {
                for tx in 0..k {
                    let pixel = (y0 + ty * d) * width + x0 + tx * d;
                    let bias = (by + ty) * side + bx + tx;
                    #[allow(clippy::cast_possible_truncation)]
                    out.push((pixel as u32, bias as u32));
                }
            }
        }
    }
    out
}

/// Attention over each pixel's neighbourhood: `softmax(scale·q·k + bias) · v`. `bias` may be
/// empty (no bias).
pub fn forward(
    shape: NaShape,
    window: Window,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    bias: &[f32],
    scale: f32,
) -> Result<NaForward, NaError> {
    window.validate(shape.height, shape.width)?;
    for (what, t) in [("q", q), ("k", k), ("v", v)] {
        check(what, t.len(), shape.len())?;
    }
    if !bias.is_empty() {
        check("the bias", bias.len(), shape.heads * window.bias_len())?;
    }
    let keys = window.keys();
    let c = shape.channels;
    let pixels = shape.height * shape.width;
    let plane = shape.plane();
    let lists = neighbourhoods(window, shape.height, shape.width);
    let mut out = vec![0.0_f32; shape.len()];
    let mut attention = vec![0.0_f32; shape.batch * shape.heads * pixels * keys];
    out.par_chunks_mut(plane.max(1)).zip(attention.par_chunks_mut((pixels * keys).max(1))).enumerate().for_each(
        |(bh, (out, attention))| {
            let head = bh % shape.heads;
            let span = bh * plane..(bh + 1) * plane;
            let (q, k, v) = (&q[span.clone()], &k[span.clone()], &v[span]);
            let head_bias =
                if bias.is_empty() { &[][..] } else { &bias[head * window.bias_len()..][..window.bias_len()] };
            for p in 0..pixels {
                let qp = &q[p * c..(p + 1) * c];
                let row = &mut attention[p * keys..(p + 1) * keys];
                let list = &lists[p * keys..(p + 1) * keys];
                let mut max = f32::NEG_INFINITY;
                for (a, &(key, b)) in row.iter_mut().zip(list) {
                    let key = key as usize;
                    let mut logit = scale * dot(qp, &k[key * c..(key + 1) * c]);
                    if !head_bias.is_empty() {
                        logit += head_bias[b as usize];
                    }
                    *a = logit;
                    max = max.max(logit);
                }
                let mut sum = 0.0;
                for a in row.iter_mut() {
                    *a = (*a - max).exp();
                    sum += *a;
                }
                let o = &mut out[p * c..(p + 1) * c];
                for (a, &(key, _)) in row.iter_mut().zip(list) {
                    *a /= sum;
                    let key = key as usize;
                    axpy(o, *a, &v[key * c..(key + 1) * c]);
                }
            }
        },
    );
    Ok(NaForward { out, attention })
}

/// The gradients of a loss with respect to `q`, `k`, `v` and the bias, given its gradient
/// `d_out` with respect to [`forward`]'s output and the attention weights it kept.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    shape: NaShape,
    window: Window,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    attention: &[f32],
    d_out: &[f32],
    scale: f32,
) -> Result<NaGradients, NaError> {
    window.validate(shape.height, shape.width)?;
    for (what, t) in [("q", q), ("k", k), ("v", v), ("the output gradient", d_out)] {
        check(what, t.len(), shape.len())?;
    }
    let keys = window.keys();
    let pixels = shape.height * shape.width;
    check("the attention weights", attention.len(), shape.batch * shape.heads * pixels * keys)?;
    let c = shape.channels;
    let plane = shape.plane();
    let bias_len = window.bias_len();
    let lists = neighbourhoods(window, shape.height, shape.width);
    let mut dq = vec![0.0_f32; shape.len()];
    let mut dk = vec![0.0_f32; shape.len()];
    let mut dv = vec![0.0_f32; shape.len()];
    // Each (batch, head) plane owns its slices of dq, dk and dv; its bias gradient is summed apart
    // and added per head at the end.
    let plane_bias: Vec<Vec<f32>> = dq
        .par_chunks_mut(plane.max(1))
        .zip(dk.par_chunks_mut(plane.max(1)).zip(dv.par_chunks_mut(plane.max(1))))
        .enumerate()
        .map(|(bh, (dq, (dk, dv)))| {
            let span = bh * plane..(bh + 1) * plane;
            let (q, k, v, d_out) = (&q[span.clone()], &k[span.clone()], &v[span.clone()], &d_out[span]);
            let attention = &attention[bh * pixels * keys..(bh + 1) * pixels * keys];
            let mut d_bias = vec![0.0_f32; bias_len];
            let mut d_logit = vec![0.0_f32; keys];
            for p in 0..pixels {
                let g = &d_out[p * c..(p + 1) * c];
                let row = &attention[p * keys..(p + 1) * keys];
                let list = &lists[p * keys..(p + 1) * keys];
                // dα = g·v, then through the softmax: dz = α (dα − Σ α dα).
                let mut weighted = 0.0;
                for ((dz, &a), &(key, _)) in d_logit.iter_mut().zip(row).zip(list) {
                    let key = key as usize;
                    let da = dot(g, &v[key * c..(key + 1) * c]);
                    *dz = da;
                    weighted += a * da;
                }
                let qp = &q[p * c..(p + 1) * c];
                for ((dz, &a), &(key, b)) in d_logit.iter_mut().zip(row).zip(list) {
                    let key = key as usize;
                    *dz = a * (*dz - weighted);
                    d_bias[b as usize] += *dz;
                    axpy(&mut dv[key * c..(key + 1) * c], a, g);
                    axpy(&mut dq[p * c..(p + 1) * c], scale * *dz, &k[key * c..(key + 1) * c]);
                    axpy(&mut dk[key * c..(key + 1) * c], scale * *dz, qp);
                }
            }
            d_bias
        })
        .collect();
    let mut bias = vec![0.0_f32; shape.heads * bias_len];
    for (bh, d) in plane_bias.iter().enumerate() {
        let head = bh % shape.heads;
        bias[head * bias_len..(head + 1) * bias_len].iter_mut().zip(d).for_each(|(b, d)| *b += d);
    }
    Ok(NaGradients { q: dq, k: dk, v: dv, bias })
}
