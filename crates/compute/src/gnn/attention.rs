//! Graph attention (GAT): each node attends over its neighbourhood and itself,
//! `αᵢⱼ = softmaxⱼ LeakyReLU(a_dst·xᵢ + a_src·xⱼ)` per head, `outᵢ = Σⱼ αᵢⱼ xⱼ`; hidden layers
//! concatenate their heads, the last averages them. Forward and backward written out over flat
//! arrays: `x` is `nodes × (heads·width)` row-major, head `h` in columns `h·width..(h+1)·width`.

use rayon::prelude::*;

use crate::dense::{axpy, dot};

/// LeakyReLU's slope below zero (PyTorch Geometric's and the GAT paper's).
pub const NEGATIVE_SLOPE: f32 = 0.2;

/// Output rows each parallel task computes.
const ROW_BLOCK: usize = 64;

/// The neighbourhoods attention runs over: every node's neighbours and itself, listed by
/// target and, for the backward, by source.
pub struct Neighbourhoods {
    /// Entries `indptr[i]..indptr[i + 1]` are node `i`'s sources, sorted.
    indptr: Vec<usize>,
    sources: Vec<u32>,
    /// The same entries grouped by source: `(target, entry)` pairs.
    by_source_indptr: Vec<usize>,
    by_source: Vec<(u32, u32)>,
}

/// What the forward keeps for the backward.
pub struct AttentionPass {
    /// `entries × heads`.
    pub alpha: Vec<f32>,
    /// The pre-activation scores `a_dst·xᵢ + a_src·xⱼ`, `entries × heads`.
    logits: Vec<f32>,
}

impl Neighbourhoods {
    /// From undirected edges (each in both directions) of `num_nodes` nodes; self loops added.
    pub fn new(edges: &[(u32, u32)], num_nodes: usize) -> Self {
        let mut indptr = vec![0];
        let mut sources = Vec::new();
        for list in super::graph::neighbours_and_self(edges, num_nodes) {
            sources.extend_from_slice(&list);
            indptr.push(sources.len());
        }
        let mut counts = vec![0_usize; num_nodes + 1];
        for &s in &sources {
            counts[s as usize + 1] += 1;
        }
        for i in 0..num_nodes {
            counts[i + 1] += counts[i];
        }
        let by_source_indptr = counts.clone();
        let mut next = counts;
        let mut by_source = vec![(0, 0); sources.len()];
        for target in 0..num_nodes {
            let span = indptr[target]..indptr[target + 1];
            for (entry, &s) in span.clone().zip(&sources[span]) {
                let s = s as usize;
                #[allow(clippy::cast_possible_truncation)]
                {
                    by_source[next[s]] = (target as u32, entry as u32);
                }
                next[s] += 1;
            }
        }
        Self { indptr, sources, by_source_indptr, by_source }
    }

    pub fn num_nodes(&self) -> usize {
        self.indptr.len() - 1
    }

    pub fn num_entries(&self) -> usize {
        self.sources.len()
    }

    /// Node `i`'s sources (its neighbours and itself).
    pub fn sources_of(&self, i: usize) -> &[u32] {
        &self.sources[self.indptr[i]..self.indptr[i + 1]]
    }

    /// Per-node head scores `s[n·heads + h] = a[h]·x[n, h]`.
    fn head_scores(x: &[f32], a: &[f32], heads: usize, width: usize) -> Vec<f32> {
        let mut out = vec![0.0_f32; x.len() / width.max(1)];
        for (row, scores) in x.chunks_exact(heads * width).zip(out.chunks_exact_mut(heads)) {
            for (h, score) in scores.iter_mut().enumerate() {
                *score = dot(&row[h * width..(h + 1) * width], &a[h * width..(h + 1) * width]);
            }
        }
        out
    }

    /// The attention coefficients (`entries × heads`; each node's entries sum to 1 per head) and
    /// the layer's output: `nodes × (heads·width)` concatenated, or `nodes × width` averaged
    /// over the heads (`mean`).
    pub fn forward(
        &self,
        x: &[f32],
        a_src: &[f32],
        a_dst: &[f32],
        heads: usize,
        width: usize,
        mean: bool,
    ) -> (Vec<f32>, AttentionPass) {
        let n = self.num_nodes();
        let s_src = Self::head_scores(x, a_src, heads, width);
        let s_dst = Self::head_scores(x, a_dst, heads, width);
        let entries = self.num_entries();
        let mut logits = vec![0.0_f32; entries * heads];
        let mut alpha = vec![0.0_f32; entries * heads];
        for i in 0..n {
            let span = self.indptr[i]..self.indptr[i + 1];
            for h in 0..heads {
                let mut max = f32::NEG_INFINITY;
                for e in span.clone() {
                    let z = s_dst[i * heads + h] + s_src[self.sources[e] as usize * heads + h];
                    logits[e * heads + h] = z;
                    max = max.max(leaky(z));
                }
                let mut sum = 0.0;
                for e in span.clone() {
                    let v = (leaky(logits[e * heads + h]) - max).exp();
                    alpha[e * heads + h] = v;
                    sum += v;
                }
                for e in span.clone() {
                    alpha[e * heads + h] /= sum;
                }
            }
        }
        let out_width = if mean { width } else { heads * width };
        let mut out = vec![0.0_f32; n * out_width];
        #[allow(clippy::cast_precision_loss)]
        let head_scale = if mean { 1.0 / heads as f32 } else { 1.0 };
        out.par_chunks_mut(ROW_BLOCK * out_width).enumerate().for_each(|(block, rows)| {
            for (k, row) in rows.chunks_exact_mut(out_width).enumerate() {
                let i = block * ROW_BLOCK + k;
                for e in self.indptr[i]..self.indptr[i + 1] {
                    let j = self.sources[e] as usize;
                    let xj = &x[j * heads * width..(j + 1) * heads * width];
                    for h in 0..heads {
                        let a = alpha[e * heads + h] * head_scale;
                        let target = if mean { &mut row[..] } else { &mut row[h * width..(h + 1) * width] };
                        axpy(target, a, &xj[h * width..(h + 1) * width]);
                    }
                }
            }
        });
        (out, AttentionPass { alpha, logits })
    }

    /// The gradients of the loss with respect to `x`, `a_src` and `a_dst`, given its gradient
    /// `g` with respect to the output of [`Neighbourhoods::forward`].
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        g: &[f32],
        x: &[f32],
        pass: &AttentionPass,
        a_src: &[f32],
        a_dst: &[f32],
        heads: usize,
        width: usize,
        mean: bool,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let n = self.num_nodes();
        let stride = heads * width;
        #[allow(clippy::cast_precision_loss)]
        let head_scale = if mean { 1.0 / heads as f32 } else { 1.0 };
        // The output gradient of node i's head h.
        let g_of = |i: usize, h: usize| -> &[f32] {
            if mean { &g[i * width..(i + 1) * width] } else { &g[i * stride + h * width..i * stride + (h + 1) * width] }
        };
        let alpha = &pass.alpha;
        // Through the softmax and the LeakyReLU to each entry's pre-activation score, in parallel
        // over blocks of target nodes (each block's entries are contiguous)...
        let mut dz = vec![0.0_f32; self.num_entries() * heads];
        let mut blocks: Vec<(usize, &mut [f32])> = Vec::new();
        let mut rest = &mut dz[..];
        for first in (0..n).step_by(ROW_BLOCK) {
            let last = (first + ROW_BLOCK).min(n);
            let (block, tail) =
                std::mem::take(&mut rest).split_at_mut((self.indptr[last] - self.indptr[first]) * heads);
            blocks.push((first, block));
            rest = tail;
        }
        blocks.into_par_iter().for_each(|(first, out)| {
            let base = self.indptr[first];
            let mut d_alpha: Vec<f32> = Vec::new();
            for i in first..(first + ROW_BLOCK).min(n) {
                let span = self.indptr[i]..self.indptr[i + 1];
                d_alpha.resize(span.len(), 0.0);
                for h in 0..heads {
                    let gi = g_of(i, h);
                    let mut weighted = 0.0;
                    for (k, e) in span.clone().enumerate() {
                        let j = self.sources[e] as usize;
                        let d = head_scale * dot(gi, &x[j * stride + h * width..j * stride + (h + 1) * width]);
                        d_alpha[k] = d;
                        weighted += alpha[e * heads + h] * d;
                    }
                    for (k, e) in span.clone().enumerate() {
                        let de = alpha[e * heads + h] * (d_alpha[k] - weighted);
                        out[(e - base) * heads + h] =
                            if pass.logits[e * heads + h] > 0.0 { de } else { NEGATIVE_SLOPE * de };
                    }
                }
            }
        });
        // ... then summed per target (a_dst's side) and per source (a_src's).
        let mut ds_src = vec![0.0_f32; n * heads];
        let mut ds_dst = vec![0.0_f32; n * heads];
        for i in 0..n {
            for e in self.indptr[i]..self.indptr[i + 1] {
                let j = self.sources[e] as usize;
                for h in 0..heads {
                    ds_dst[i * heads + h] += dz[e * heads + h];
                    ds_src[j * heads + h] += dz[e * heads + h];
                }
            }
        }
        // dxⱼ = Σ over the nodes j feeds of α·g, plus the head scores' share.
        let mut dx = vec![0.0_f32; n * stride];
        dx.par_chunks_mut(ROW_BLOCK * stride).enumerate().for_each(|(block, rows)| {
            for (k, row) in rows.chunks_exact_mut(stride).enumerate() {
                let j = block * ROW_BLOCK + k;
                for &(target, entry) in &self.by_source[self.by_source_indptr[j]..self.by_source_indptr[j + 1]] {
                    for h in 0..heads {
                        let a = alpha[entry as usize * heads + h] * head_scale;
                        axpy(&mut row[h * width..(h + 1) * width], a, g_of(target as usize, h));
                    }
                }
                for h in 0..heads {
                    let part = &mut row[h * width..(h + 1) * width];
                    axpy(part, ds_src[j * heads + h], &a_src[h * width..(h + 1) * width]);
                    axpy(part, ds_dst[j * heads + h], &a_dst[h * width..(h + 1) * width]);
                }
            }
        });
        let mut da_src = vec![0.0_f32; stride];
        let mut da_dst = vec![0.0_f32; stride];
        for j in 0..n {
            for h in 0..heads {
                let xj = &x[j * stride + h * width..j * stride + (h + 1) * width];
                axpy(&mut da_src[h * width..(h + 1) * width], ds_src[j * heads + h], xj);
                axpy(&mut da_dst[h * width..(h + 1) * width], ds_dst[j * heads + h], xj);
            }
        }
        (dx, da_src, da_dst)
    }
}

fn leaky(z: f32) -> f32 {
    if z > 0.0 { z } else { NEGATIVE_SLOPE * z }
}
