//! Two-dimensional neighbourhood attention (NA-2D) with dilation, forward and backward written out
//! over flat arrays.
//!
//! Each query pixel attends to a `k × k` window of keys spaced `d` apart. Along each axis the
//! pixels fall into `d` interleaved subgrids (the positions with the same index mod `d`); a query
//! attends within its own subgrid, to the `k` consecutive subgrid positions centred on it, the
//! window shifted inward at the borders (never padded), as NATTEN does. Every query therefore sees
//! exactly `k²` keys, which needs `k · d ≤` the side (`k` odd, or the whole side of a square map
//! for full attention, as at 4×4 in the generator). A learned bias per head is added to each
//! logit, indexed by the key's offset from the query in subgrid steps (`2k − 1` offsets per axis).
//!
//! Each head has its own window: the paper's *hydra* heads split a layer's heads evenly into
//! groups with different kernels and dilations (local and sparse-global), see [`hydra`].
//! Tensors are row-major `[batch, heads, height, width, channels]` (`channels` per head); the
//! bias is each head's `[2k − 1, 2k − 1]` one after the other. The forward keeps the attention
//! weights (each plane's `[height, width, k²]` with its head's k, planes in `[batch, heads]`
//! order): the backward uses them, and they are what an attention footprint shows.

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
    #[error(
        "the attention kernel must be odd and at least 1 (or the whole side of a square map at dilation 1: full attention), got {0}"
    )]
    Kernel(usize),
    #[error("the dilation must be at least 1, got {0}")]
    Dilation(usize),
    #[error("a {kernel}×{kernel} window at dilation {dilation} spans {} pixels, more than the {side}-pixel side", kernel * dilation)]
    TooLarge { kernel: usize, dilation: usize, side: usize },
    #[error("{what} holds {got} values, the shape needs {expected}")]
    Length { what: &'static str, got: usize, expected: usize },
    #[error("{heads} heads cannot be split evenly into {groups} groups")]
    Groups { heads: usize, groups: usize },
}

/// Each head's window when `heads` heads are split evenly into one group per window, in order
/// (the paper's hydra heads; one window for all is plain neighbourhood attention).
pub fn hydra(heads: usize, groups: &[Window]) -> Result<Vec<Window>, NaError> {
    if groups.is_empty() || !heads.is_multiple_of(groups.len()) {
        return Err(NaError::Groups { heads, groups: groups.len() });
    }
    Ok(groups.iter().flat_map(|&w| std::iter::repeat_n(w, heads / groups.len())).collect())
}

/// Where each head's bias and attention weights start, and their totals.
struct Layout {
    bias_at: Vec<usize>,
    bias_len: usize,
    /// Per (batch, head) plane, the start of its attention weights.
    attention_at: Vec<usize>,
    attention_len: usize,
}

impl Layout {
    fn new(shape: NaShape, windows: &[Window]) -> Result<Self, NaError> {
        check("the window list", windows.len(), shape.heads)?;
        let mut bias_at = Vec::with_capacity(windows.len());
        let mut bias_len = 0;
        for w in windows {
            w.validate(shape.height, shape.width)?;
            bias_at.push(bias_len);
            bias_len += w.bias_len();
        }
        let pixels = shape.height * shape.width;
        let mut attention_at = Vec::with_capacity(shape.batch * shape.heads);
        let mut attention_len = 0;
        for _ in 0..shape.batch {
            for w in windows {
                attention_at.push(attention_len);
                attention_len += pixels * w.keys();
            }
        }
        Ok(Self { bias_at, bias_len, attention_at, attention_len })
    }

    /// The distinct windows' neighbourhood lists, and each head's index into them.
    fn lists(shape: NaShape, windows: &[Window]) -> (Vec<Vec<(u32, u32)>>, Vec<usize>) {
        let mut distinct: Vec<Window> = Vec::new();
        let index = windows
            .iter()
            .map(|w| {
                distinct.iter().position(|d| d == w).unwrap_or_else(|| {
                    distinct.push(*w);
                    distinct.len() - 1
                })
            })
            .collect();
        (distinct.iter().map(|&w| neighbourhoods(w, shape.height, shape.width)).collect(), index)
    }
}

impl Window {
    pub fn new(kernel: usize, dilation: usize) -> Self {
        Self { kernel, dilation }
    }

    /// Full attention over a square map of `side` pixels (every query sees every pixel; the side
    /// may be even).
    pub fn full(side: usize) -> Self {
        Self { kernel: side, dilation: 1 }
    }

    /// Checks the window fits a `height × width` map.
    pub fn validate(&self, height: usize, width: usize) -> Result<(), NaError> {
        let full = self.kernel == height && self.kernel == width && self.dilation == 1;
        if self.kernel == 0 || (self.kernel.is_multiple_of(2) && !full) {
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
    /// The attention weights: per (batch, head) plane, `[height, width, k²]` with the head's k
    /// (keys row by row of the window).
    pub attention: Vec<f32>,
}

/// The gradients [`backward`] returns.
pub struct NaGradients {
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    /// Each head's `[2k − 1, 2k − 1]`, one after the other.
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

/// Attention over each pixel's neighbourhood (`windows`: one per head): `softmax(scale·q·k +
/// bias) · v`. `bias` may be empty (no bias).
pub fn forward(
    shape: NaShape,
    windows: &[Window],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    bias: &[f32],
    scale: f32,
) -> Result<NaForward, NaError> {
    let layout = Layout::new(shape, windows)?;
    for (what, t) in [("q", q), ("k", k), ("v", v)] {
        check(what, t.len(), shape.len())?;
    }
    if !bias.is_empty() {
        check("the bias", bias.len(), layout.bias_len)?;
    }
    let c = shape.channels;
    let pixels = shape.height * shape.width;
    let plane = shape.plane();
    let (lists, list_of) = Layout::lists(shape, windows);
    let mut out = vec![0.0_f32; shape.len()];
    let mut attention = vec![0.0_f32; layout.attention_len];
    let mut planes = split_planes(&mut attention, &layout.attention_at);
    out.par_chunks_mut(plane.max(1)).zip(planes.par_iter_mut()).enumerate().for_each(|(bh, (out, attention))| {
        let head = bh % shape.heads;
        let keys = windows[head].keys();
        let lists = &lists[list_of[head]];
        let span = bh * plane..(bh + 1) * plane;
        let (q, k, v) = (&q[span.clone()], &k[span.clone()], &v[span]);
        let head_bias =
            if bias.is_empty() { &[][..] } else { &bias[layout.bias_at[head]..][..windows[head].bias_len()] };
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
    });
    Ok(NaForward { out, attention })
}

/// `all` cut at the offsets `starts` (the first is 0) into consecutive slices.
fn split_planes<'a>(all: &'a mut [f32], starts: &[usize]) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(starts.len());
    let mut rest = all;
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(start + rest.len());
        let (plane, tail) = std::mem::take(&mut rest).split_at_mut(end - start);
        out.push(plane);
        rest = tail;
    }
    out
}

/// The gradients of a loss with respect to `q`, `k`, `v` and the bias, given its gradient
/// `d_out` with respect to [`forward`]'s output and the attention weights it kept.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    shape: NaShape,
    windows: &[Window],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    attention: &[f32],
    d_out: &[f32],
    scale: f32,
) -> Result<NaGradients, NaError> {
    let layout = Layout::new(shape, windows)?;
    for (what, t) in [("q", q), ("k", k), ("v", v), ("the output gradient", d_out)] {
        check(what, t.len(), shape.len())?;
    }
    check("the attention weights", attention.len(), layout.attention_len)?;
    let pixels = shape.height * shape.width;
    let c = shape.channels;
    let plane = shape.plane();
    let (lists, list_of) = Layout::lists(shape, windows);
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
            let head = bh % shape.heads;
            let keys = windows[head].keys();
            let lists = &lists[list_of[head]];
            let span = bh * plane..(bh + 1) * plane;
            let (q, k, v, d_out) = (&q[span.clone()], &k[span.clone()], &v[span.clone()], &d_out[span]);
            let attention = &attention[layout.attention_at[bh]..][..pixels * keys];
            let mut d_bias = vec![0.0_f32; windows[head].bias_len()];
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
    let mut bias = vec![0.0_f32; layout.bias_len];
    for (bh, d) in plane_bias.iter().enumerate() {
        let head = bh % shape.heads;
        bias[layout.bias_at[head]..][..d.len()].iter_mut().zip(d).for_each(|(b, d)| *b += d);
    }
    Ok(NaGradients { q: dq, k: dk, v: dv, bias })
}

/// The same attention by candle's generic ops: full attention over every pixel with the keys
/// outside each window masked out (the bias gathered per (query, key) pair), and candle's autograd
/// for the gradients of `Σ r ⊙ out`. The speed reference of `bench gan`, and a second check.
#[allow(clippy::too_many_arguments)]
pub fn masked_full_attention_candle(
    shape: NaShape,
    windows: &[Window],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    bias: &[f32],
    r: &[f32],
    scale: f32,
) -> candle_core::Result<(Vec<f32>, NaGradients)> {
    use candle_core::{D, Device, Tensor, Var};
    let layout = Layout::new(shape, windows).map_err(candle_core::Error::wrap)?;
    let (lists, list_of) = Layout::lists(shape, windows);
    let pixels = shape.height * shape.width;
    let (b, h, c) = (shape.batch, shape.heads, shape.channels);
    let device = Device::Cpu;
    // Per head and (query, key): the bias entry's index (0 outside the window) and the mask.
    let mut index = vec![0_u32; h * pixels * pixels];
    let mut mask = vec![-1e9_f32; h * pixels * pixels];
    for head in 0..h {
        let keys = windows[head].keys();
        for p in 0..pixels {
            for &(key, entry) in &lists[list_of[head]][p * keys..(p + 1) * keys] {
                let at = (head * pixels + p) * pixels + key as usize;
                #[allow(clippy::cast_possible_truncation)]
                {
                    index[at] = (layout.bias_at[head] + entry as usize) as u32;
                }
                mask[at] = 0.0;
            }
        }
    }
    let as_var = |t: &[f32]| Var::from_tensor(&Tensor::from_slice(t, (b, h, pixels, c), &device)?);
    let (qv, kv, vv) = (as_var(q)?, as_var(k)?, as_var(v)?);
    let bias_var = Var::from_slice(if bias.is_empty() { &[0.0][..] } else { bias }, bias.len().max(1), &device)?;
    let index = Tensor::from_vec(index, h * pixels * pixels, &device)?;
    let mask = Tensor::from_vec(mask, (h, pixels, pixels), &device)?;
    let mut added = mask;
    if !bias.is_empty() {
        added = (added + bias_var.as_tensor().index_select(&index, 0)?.reshape((h, pixels, pixels))?)?;
    }
    let logits = (qv.as_tensor().matmul(&kv.as_tensor().t()?)? * f64::from(scale))?.broadcast_add(&added)?;
    let attention = candle_nn::ops::softmax(&logits, D::Minus1)?;
    let out = attention.matmul(vv.as_tensor())?;
    let r = Tensor::from_slice(r, (b, h, pixels, c), &device)?;
    let grads = (&out * r)?.sum_all()?.backward()?;
    let flat = |var: &Var| -> candle_core::Result<Vec<f32>> {
        grads.get(var).map_or_else(|| Ok(vec![0.0; var.elem_count()]), |g| g.flatten_all()?.to_vec1())
    };
    let gradients = NaGradients {
        q: flat(&qv)?,
        k: flat(&kv)?,
        v: flat(&vv)?,
        bias: if bias.is_empty() { Vec::new() } else { flat(&bias_var)? },
    };
    Ok((out.flatten_all()?.to_vec1()?, gradients))
}
