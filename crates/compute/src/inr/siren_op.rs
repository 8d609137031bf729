//! The whole SIREN — hidden layers `h ← sin(ω·(h·Wᵀ + b))`, then a linear layer — as one candle
//! `CustomOp2` of `(coordinates, flat parameters)`, with a hand-written parallel backward.
//!
//! Built from candle's generic ops, each layer is a matmul, a broadcast add, a scale and a sine:
//! four passes over an N×width buffer forwards, more backwards, and candle zero-fills and
//! accumulates a fresh gradient buffer for every intermediate node, every step. Here the rows are
//! split into blocks that stay in cache and run on all cores: forwards, a block goes through every
//! layer (matmul by faer, then `sin` and `ω·cos` in one pass); backwards, a block's gradients live
//! in two scratch buffers while they feed the weight and bias gradients, accumulated per thread.
//! Activations and `ω·cos` are kept in a [`Workspace`] that is reused from step to step, so a
//! training step allocates almost nothing. The elementwise loops run under `pulp`'s runtime
//! CPU-feature dispatch (AVX2/FMA where available).
//!
//! Flat parameter layout (also the shader's): for each layer, `W` (fan_out × fan_in, row-major),
//! then `b`.

use std::sync::{Arc, Mutex, PoisonError};

use crate::cpu_f32_slice;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Storage, Tensor};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

use super::weights::SirenConfig;
use crate::fastmath;

/// Rows per block: a block of a 256-wide layer (512 KiB) stays in L2 between its matmul and its
/// elementwise pass, and 65k rows give 128 blocks to balance over the threads.
const BLOCK_ROWS: usize = 512;

/// Where each layer's weights and biases sit in the flat parameter vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerSlot {
    pub fan_in: usize,
    pub fan_out: usize,
    pub weight_offset: usize,
    pub bias_offset: usize,
}

/// The layers of a configuration, input to output.
pub fn layer_slots(config: &SirenConfig) -> Vec<LayerSlot> {
    let mut offset = 0;
    config
        .layer_shapes()
        .into_iter()
        .map(|(fan_in, fan_out)| {
            let slot = LayerSlot { fan_in, fan_out, weight_offset: offset, bias_offset: offset + fan_in * fan_out };
            offset += fan_in * fan_out + fan_out;
            slot
        })
        .collect()
}

/// What the forward pass keeps for the backward pass, reused across steps.
#[derive(Debug, Default)]
pub struct Workspace {
    /// Which forward pass filled it (see [`SirenOp::generation`]).
    generation: u64,
    rows: usize,
    /// Output of every hidden layer, `rows × width` each.
    activations: Vec<Vec<f32>>,
    /// `ω·cos(ω(z + b))` of every hidden layer.
    derivatives: Vec<Vec<f32>>,
}

/// The fused network. With a workspace it is differentiable; without, it only evaluates.
pub struct SirenOp {
    slots: Vec<LayerSlot>,
    omega: f32,
    workspace: Option<(Arc<Mutex<Workspace>>, u64)>,
}

impl SirenOp {
    /// A training forward that stores into `workspace`, tagged with `generation` (must differ
    /// from the previous forward's, so that a stale backward is caught).
    pub fn training(config: &SirenConfig, workspace: Arc<Mutex<Workspace>>, generation: u64) -> Self {
        Self { slots: layer_slots(config), omega: config.omega0, workspace: Some((workspace, generation)) }
    }

    pub fn evaluation(config: &SirenConfig) -> Self {
        Self { slots: layer_slots(config), omega: config.omega0, workspace: None }
    }

    fn hidden(&self) -> &[LayerSlot] {
        &self.slots[..self.slots.len() - 1]
    }

    fn output(&self) -> LayerSlot {
        self.slots[self.slots.len() - 1]
    }

    fn width(&self) -> usize {
        self.slots[0].fan_out
    }
}

fn weight(params: &[f32], slot: LayerSlot) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice(&params[slot.weight_offset..slot.bias_offset], slot.fan_out, slot.fan_in)
}

fn bias(params: &[f32], slot: LayerSlot) -> &[f32] {
    &params[slot.bias_offset..slot.bias_offset + slot.fan_out]
}

/// `out ← h · Wᵀ` (+ `b` when given) for a block of `rows`.
fn linear(out: &mut [f32], h: &[f32], params: &[f32], slot: LayerSlot, rows: usize) {
    matmul(
        MatMut::from_row_major_slice_mut(out, rows, slot.fan_out),
        Accum::Replace,
        MatRef::from_row_major_slice(h, rows, slot.fan_in),
        weight(params, slot).transpose(),
        1.0,
        Par::Seq,
    );
}

impl SirenOp {
    fn check(&self, coords: &Layout, params: &[f32]) -> Result<usize> {
        let (rows, cols) = coords.shape().dims2()?;
        let expected = self.slots.last().map_or(0, |s| s.bias_offset + s.fan_out);
        if cols != self.slots[0].fan_in || params.len() != expected {
            candle_core::bail!(
                "SIREN op: coordinates (.., {cols}) and {} parameters do not fit the network ({} inputs, {expected} parameters)",
                params.len(),
                self.slots[0].fan_in
            );
        }
        Ok(rows)
    }

    /// One block through every layer. `activations[l]`/`derivatives[l]` are this block's slices
    /// of hidden layer `l`'s buffers.
    fn forward_block(
        &self,
        arch: Arch,
        coords: &[f32],
        params: &[f32],
        activations: &mut [&mut [f32]],
        derivatives: &mut [Option<&mut [f32]>],
        out: &mut [f32],
    ) {
        let rows = coords.len() / self.slots[0].fan_in;
        for (l, &slot) in self.hidden().iter().enumerate() {
            let (before, rest) = activations.split_at_mut(l);
            let input: &[f32] = if l == 0 { coords } else { &*before[l - 1] };
            let current = &mut *rest[0];
            linear(current, input, params, slot, rows);
            arch.dispatch(SinCosPass {
                values: current,
                derivative: derivatives[l].as_deref_mut(),
                bias: bias(params, slot),
                omega: self.omega,
            });
        }
        let last_hidden: &[f32] = activations.last().map_or(coords, |a| &**a);
        let output = self.output();
        linear(out, last_hidden, params, output, rows);
        for row in out.chunks_exact_mut(output.fan_out) {
            row.iter_mut().zip(bias(params, output)).for_each(|(v, b)| *v += b);
        }
    }
}

impl CustomOp2 for SirenOp {
    fn name(&self) -> &'static str {
        "siren"
    }

    fn cpu_fwd(
        &self,
        coords_storage: &CpuStorage,
        coords_layout: &Layout,
        params_storage: &CpuStorage,
        params_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let coords = f32_slice_of(coords_storage, coords_layout, "coordinates")?;
        let params = f32_slice_of(params_storage, params_layout, "parameters")?;
        let rows = self.check(coords_layout, params)?;
        let (width, fan_in, out_features) = (self.width(), self.slots[0].fan_in, self.output().fan_out);
        let num_hidden = self.hidden().len();
        let arch = Arch::new();
        let mut out = vec![0.0_f32; rows * out_features];
        match &self.workspace {
            Some((workspace, generation)) => {
                let mut guard = workspace.lock().unwrap_or_else(PoisonError::into_inner);
                let ws = &mut *guard;
                ws.generation = *generation;
                ws.rows = rows;
                for buffers in [&mut ws.activations, &mut ws.derivatives] {
                    buffers.resize_with(num_hidden, Vec::new);
                    // Same size as last step: no reallocation, no zeroing; the forward overwrites all.
                    buffers.iter_mut().for_each(|b| b.resize(rows * width, 0.0));
                }
                let mut activation_blocks: Vec<Vec<&mut [f32]>> =
                    (0..rows.div_ceil(BLOCK_ROWS)).map(|_| Vec::new()).collect();
                let mut derivative_blocks: Vec<Vec<Option<&mut [f32]>>> =
                    (0..rows.div_ceil(BLOCK_ROWS)).map(|_| Vec::new()).collect();
                for buffer in &mut ws.activations {
                    for (block, chunk) in activation_blocks.iter_mut().zip(buffer.chunks_mut(BLOCK_ROWS * width)) {
                        block.push(chunk);
                    }
                }
                for buffer in &mut ws.derivatives {
                    for (block, chunk) in derivative_blocks.iter_mut().zip(buffer.chunks_mut(BLOCK_ROWS * width)) {
                        block.push(Some(chunk));
                    }
                }
                activation_blocks
                    .into_par_iter()
                    .zip(derivative_blocks)
                    .zip(coords.par_chunks(BLOCK_ROWS * fan_in))
                    .zip(out.par_chunks_mut(BLOCK_ROWS * out_features))
                    .for_each(|(((mut acts, mut derivs), coords_block), out_block)| {
                        self.forward_block(arch, coords_block, params, &mut acts, &mut derivs, out_block);
                    });
            }
            None => {
                coords
                    .par_chunks(BLOCK_ROWS * fan_in)
                    .zip(out.par_chunks_mut(BLOCK_ROWS * out_features))
                    .for_each_init(
                        || vec![vec![0.0_f32; BLOCK_ROWS * width]; num_hidden],
                        |scratch, (coords_block, out_block)| {
                            let rows_here = coords_block.len() / fan_in;
                            let mut acts: Vec<&mut [f32]> =
                                scratch.iter_mut().map(|s| &mut s[..rows_here * width]).collect();
                            let mut derivs: Vec<Option<&mut [f32]>> = (0..num_hidden).map(|_| None).collect();
                            self.forward_block(arch, coords_block, params, &mut acts, &mut derivs, out_block);
                        },
                    );
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, out_features))))
    }

    fn bwd(
        &self,
        coords: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad_out: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let ws = crate::backward_workspace(&self.workspace, |w| w.generation, "SIREN op")?;
        let grad_out = grad_out.contiguous()?;
        let (g_storage, g_layout) = grad_out.storage_and_layout();
        let (c_storage, c_layout) = coords.storage_and_layout();
        let (p_storage, p_layout) = params.storage_and_layout();
        let (Storage::Cpu(g_cpu), Storage::Cpu(c_cpu), Storage::Cpu(p_cpu)) = (&*g_storage, &*c_storage, &*p_storage)
        else {
            candle_core::bail!("the fused SIREN runs on the CPU only");
        };
        let grad_y = f32_slice_of(g_cpu, g_layout, "output gradient")?;
        let coords_values = f32_slice_of(c_cpu, c_layout, "coordinates")?;
        let params_values = f32_slice_of(p_cpu, p_layout, "parameters")?;
        let rows = self.check(c_layout, params_values)?;
        let (width, out_features) = (self.width(), self.output().fan_out);
        if ws.rows != rows || grad_y.len() != rows * out_features {
            candle_core::bail!("SIREN op backward: gradient of the wrong size");
        }
        let arch = Arch::new();
        let num_params = params_values.len();
        let new_accumulator =
            || (vec![0.0_f32; num_params], vec![0.0_f32; BLOCK_ROWS * width], vec![0.0_f32; BLOCK_ROWS * width]);
        let grad_params = (0..rows.div_ceil(BLOCK_ROWS))
            .into_par_iter()
            .fold(new_accumulator, |(mut grads, mut g_a, mut g_b), block| {
                let r0 = block * BLOCK_ROWS;
                let r1 = (r0 + BLOCK_ROWS).min(rows);
                let n = r1 - r0;
                let input_of = |l: usize| -> &[f32] {
                    if l == 0 {
                        let fan_in = self.slots[0].fan_in;
                        &coords_values[r0 * fan_in..r1 * fan_in]
                    } else {
                        &ws.activations[l - 1][r0 * width..r1 * width]
                    }
                };
                // Output layer: ∂W += gᵀ·h, ∂b += Σ g, then ∂h = g·W.
                let output = self.output();
                let last = self.slots.len() - 1;
                let g = &grad_y[r0 * out_features..r1 * out_features];
                accumulate_weight_grad(&mut grads, output, g, input_of(last), n);
                accumulate_bias_grad(&mut grads, output, g);
                matmul(
                    MatMut::from_row_major_slice_mut(&mut g_a[..n * width], n, width),
                    Accum::Replace,
                    MatRef::from_row_major_slice(g, n, out_features),
                    weight(params_values, output),
                    1.0,
                    Par::Seq,
                );
                for l in (0..last).rev() {
                    let slot = self.slots[l];
                    // ∂z = ∂h · ω·cos, with its column sums for ∂b.
                    let (bias_start, bias_end) = (slot.bias_offset, slot.bias_offset + slot.fan_out);
                    arch.dispatch(GradientPass {
                        grad: &mut g_a[..n * width],
                        derivative: &ws.derivatives[l][r0 * width..r1 * width],
                        bias_sum: &mut grads[bias_start..bias_end],
                    });
                    accumulate_weight_grad(&mut grads, slot, &g_a[..n * width], input_of(l), n);
                    if l > 0 {
                        matmul(
                            MatMut::from_row_major_slice_mut(&mut g_b[..n * width], n, width),
                            Accum::Replace,
                            MatRef::from_row_major_slice(&g_a[..n * width], n, width),
                            weight(params_values, slot),
                            1.0,
                            Par::Seq,
                        );
                        std::mem::swap(&mut g_a, &mut g_b);
                    }
                }
                (grads, g_a, g_b)
            })
            .map(|(grads, _, _)| grads)
            .reduce(
                || vec![0.0_f32; num_params],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        let device = params.device().clone();
        drop((g_storage, c_storage, p_storage, ws));
        Ok((None, Some(Tensor::from_vec(grad_params, num_params, &device)?)))
    }
}

/// `∂W += gᵀ · h` for a block of `rows`.
fn accumulate_weight_grad(grads: &mut [f32], slot: LayerSlot, g: &[f32], h: &[f32], rows: usize) {
    matmul(
        MatMut::from_row_major_slice_mut(&mut grads[slot.weight_offset..slot.bias_offset], slot.fan_out, slot.fan_in),
        Accum::Add,
        MatRef::from_row_major_slice(g, rows, slot.fan_out).transpose(),
        MatRef::from_row_major_slice(h, rows, slot.fan_in),
        1.0,
        Par::Seq,
    );
}

/// `∂b += Σ_rows g`.
fn accumulate_bias_grad(grads: &mut [f32], slot: LayerSlot, g: &[f32]) {
    let sums = &mut grads[slot.bias_offset..slot.bias_offset + slot.fan_out];
    for row in g.chunks_exact(slot.fan_out) {
        sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
}

/// `values ← sin(ω(values + b))` row by row, and `derivative ← ω·cos(ω(values + b))` when given.
struct SinCosPass<'a> {
    values: &'a mut [f32],
    derivative: Option<&'a mut [f32]>,
    bias: &'a [f32],
    omega: f32,
}

impl WithSimd for SinCosPass<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let Self { values, derivative, bias, omega } = self;
        let width = bias.len();
        match derivative {
            Some(derivative) => {
                for (row, d_row) in values.chunks_exact_mut(width).zip(derivative.chunks_exact_mut(width)) {
                    for ((v, d), &b) in row.iter_mut().zip(d_row.iter_mut()).zip(bias) {
                        let (s, c) = fastmath::sin_cos(omega * (*v + b));
                        *v = s;
                        *d = omega * c;
                    }
                }
            }
            None => {
                for row in values.chunks_exact_mut(width) {
                    for (v, &b) in row.iter_mut().zip(bias) {
                        *v = fastmath::sin(omega * (*v + b));
                    }
                }
            }
        }
    }
}

/// `grad ← grad · derivative` in place, adding each column's sum to `bias_sum`.
struct GradientPass<'a> {
    grad: &'a mut [f32],
    derivative: &'a [f32],
    bias_sum: &'a mut [f32],
}

impl WithSimd for GradientPass<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let Self { grad, derivative, bias_sum } = self;
        let width = bias_sum.len();
        for (g_row, d_row) in grad.chunks_exact_mut(width).zip(derivative.chunks_exact(width)) {
            for ((g, &d), sum) in g_row.iter_mut().zip(d_row).zip(bias_sum.iter_mut()) {
                *g *= d;
                *sum += *g;
            }
        }
    }
}

fn f32_slice_of<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    cpu_f32_slice(storage, layout, "SIREN op", what)
}
