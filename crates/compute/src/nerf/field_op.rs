//! The whole field — hash encoding, density MLP, colour MLP — as one candle `CustomOp2` of
//! `(inputs (N, 3 + 16), parameters (P,))` → `(N, 4)` = `(σ, r, g, b)`, with a hand-written
//! parallel backward to the parameters.
//!
//! Built from candle's generic ops the field is ~20 graph nodes over `N × 64` buffers, and
//! candle's backward zero-fills and accumulates a fresh buffer per node: for 65k samples that
//! was ~150 ms forward and ~450 ms backward here, against ~1.2 GFLOP of matmuls. Here rows are
//! split into blocks that go through every layer while in cache (faer matmuls, fused
//! activations), their activations kept in a reused [`Workspace`] for the backward pass; the
//! MLP gradients are accumulated per thread, the hash table's per level (levels own disjoint
//! parts of the table).
//!
//! Inputs per row: the position normalized to `[0, 1]³`, then the 16 SH coefficients of the
//! view direction. Parameter layout ([`FieldLayout`]): the hash table, then each layer of
//! [`FieldConfig::layers`] as `W` (`fan_out × fan_in`, row-major) followed by `b`.

use std::sync::{Arc, Mutex, PoisonError};

use crate::cpu_f32_slice;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Storage, Tensor};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use glam::Vec3;
use rayon::prelude::*;

use super::field::{FieldConfig, FieldWeights, SH_DIM};
use super::hash_encoding::HashGrid;

/// Rows per block.
const BLOCK_ROWS: usize = 256;
/// Blocks are reduced in this many fixed groups (see [`FieldOp::bwd`]).
const GRADIENT_GROUPS: usize = 16;
/// Values per input row.
pub const INPUT_DIM: usize = 3 + SH_DIM;
const LOG_DENSITY_RANGE: (f32, f32) = (-15.0, 15.0);

/// Where one linear layer sits in the flat parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerSlot {
    pub fan_in: usize,
    pub fan_out: usize,
    pub weight_offset: usize,
    pub bias_offset: usize,
}

/// The flat parameter layout of a field configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldLayout {
    pub table_len: usize,
    /// `density.0`, `density.1`, then the colour layers.
    pub layers: Vec<LayerSlot>,
    pub num_params: usize,
}

impl FieldLayout {
    pub fn new(config: &FieldConfig) -> Self {
        let table_len = config.hash.num_params();
        let mut offset = table_len;
        let layers = config
            .layers()
            .into_iter()
            .map(|(_, fan_in, fan_out)| {
                let slot = LayerSlot { fan_in, fan_out, weight_offset: offset, bias_offset: offset + fan_in * fan_out };
                offset += fan_in * fan_out + fan_out;
                slot
            })
            .collect();
        Self { table_len, layers, num_params: offset }
    }
}

impl FieldWeights {
    /// All parameters in [`FieldLayout`] order.
    pub fn flatten(&self) -> Vec<f32> {
        let mut flat = Vec::with_capacity(FieldLayout::new(&self.config).num_params);
        flat.extend_from_slice(&self.table);
        for d in self.density.iter().chain(&self.colour) {
            flat.extend_from_slice(&d.weight);
            flat.extend_from_slice(&d.bias);
        }
        flat
    }

    /// Overwrites the weights from a flat vector in [`FieldLayout`] order (of the same length).
    pub fn assign_flat(&mut self, flat: &[f32]) {
        let layout = FieldLayout::new(&self.config);
        if flat.len() != layout.num_params {
            return;
        }
        self.table.copy_from_slice(&flat[..layout.table_len]);
        for (d, slot) in self.density.iter_mut().chain(self.colour.iter_mut()).zip(&layout.layers) {
            d.weight.copy_from_slice(&flat[slot.weight_offset..slot.bias_offset]);
            d.bias.copy_from_slice(&flat[slot.bias_offset..slot.bias_offset + slot.fan_out]);
        }
    }
}

/// One block's activations.
#[derive(Debug, Default)]
struct Block {
    rows: usize,
    enc: Vec<f32>,
    h1: Vec<f32>,
    /// Density MLP output: log-density, then geometry features.
    z2: Vec<f32>,
    /// Colour MLP input: geometry features, then SH.
    x: Vec<f32>,
    /// Colour MLP hidden activations (after ReLU), one buffer per hidden layer.
    hidden: Vec<Vec<f32>>,
    rgb: Vec<f32>,
}

/// Activations of the last training forward pass, reused from step to step.
#[derive(Debug, Default)]
pub struct Workspace {
    generation: u64,
    rows: usize,
    blocks: Vec<Block>,
}

/// The fused field. With a workspace it is differentiable; without, it only evaluates.
pub struct FieldOp {
    config: FieldConfig,
    grid: Arc<HashGrid>,
    layout: FieldLayout,
    workspace: Option<(Arc<Mutex<Workspace>>, u64)>,
    /// The backward pass stops at the colour MLP: geometry (hash table, density MLP) gets zero
    /// gradient, and the work for it is skipped.
    appearance_only: bool,
}

impl FieldOp {
    /// A training forward that stores into `workspace`, tagged with `generation` (which must
    /// differ from the previous forward's, so that a stale backward is caught).
    pub fn training(
        config: FieldConfig,
        grid: Arc<HashGrid>,
        workspace: Arc<Mutex<Workspace>>,
        generation: u64,
    ) -> Self {
        Self {
            config,
            grid,
            layout: FieldLayout::new(&config),
            workspace: Some((workspace, generation)),
            appearance_only: false,
        }
    }

    /// The same op whose backward reaches only the colour MLP (StegaNeRF's stage 2 fine-tunes
    /// appearance with the geometry frozen): the hash table's and the density MLP's gradients
    /// are zero, and neither is computed.
    #[must_use]
    pub fn appearance_only(self) -> Self {
        Self { appearance_only: true, ..self }
    }

    pub fn evaluation(config: FieldConfig, grid: Arc<HashGrid>) -> Self {
        Self { config, grid, layout: FieldLayout::new(&config), workspace: None, appearance_only: false }
    }

    fn num_colour_hidden(&self) -> usize {
        self.layout.layers.len() - 3
    }

    fn forward_block(&self, block: &mut Block, inputs: &[f32], params: &[f32], out: &mut [f32]) {
        let rows = inputs.len() / INPUT_DIM;
        let layers = &self.layout.layers;
        let (n_enc, width, n_geo) =
            (self.config.hash.output_dim(), self.config.hidden_width, self.config.num_geo_features);
        block.rows = rows;
        block.enc.resize(rows * n_enc, 0.0);
        let table = &params[..self.layout.table_len];
        for (e, row) in block.enc.chunks_exact_mut(n_enc).zip(inputs.chunks_exact(INPUT_DIM)) {
            self.grid.encode_into(table, Vec3::new(row[0], row[1], row[2]), e);
        }
        block.h1.resize(rows * width, 0.0);
        linear(&mut block.h1, &block.enc, params, layers[0], rows, true);
        block.z2.resize(rows * (1 + n_geo), 0.0);
        linear(&mut block.z2, &block.h1, params, layers[1], rows, false);
        let n_x = n_geo + SH_DIM;
        block.x.resize(rows * n_x, 0.0);
        for ((x, z), row) in
            block.x.chunks_exact_mut(n_x).zip(block.z2.chunks_exact(1 + n_geo)).zip(inputs.chunks_exact(INPUT_DIM))
        {
            x[..n_geo].copy_from_slice(&z[1..]);
            x[n_geo..].copy_from_slice(&row[3..]);
        }
        let num_hidden = self.num_colour_hidden();
        block.hidden.resize_with(num_hidden, Vec::new);
        for l in 0..num_hidden {
            let (before, rest) = block.hidden.split_at_mut(l);
            let input: &[f32] = if l == 0 { &block.x } else { &before[l - 1] };
            rest[0].resize(rows * width, 0.0);
            linear(&mut rest[0], input, params, layers[2 + l], rows, true);
        }
        block.rgb.resize(rows * 3, 0.0);
        let last_input: &[f32] = block.hidden.last().map_or(&block.x, |h| h);
        linear(&mut block.rgb, last_input, params, layers[layers.len() - 1], rows, false);
        block.rgb.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp()));
        for ((o, z), rgb) in
            out.chunks_exact_mut(4).zip(block.z2.chunks_exact(1 + n_geo)).zip(block.rgb.chunks_exact(3))
        {
            o[0] = z[0].clamp(LOG_DENSITY_RANGE.0, LOG_DENSITY_RANGE.1).exp();
            o[1..].copy_from_slice(rgb);
        }
    }

    /// Backward of one block: accumulates the MLP gradients into `grads` (the MLP part of the
    /// flat layout, i.e. offsets less the table length) and writes the gradient with respect to the encoding into `g_enc`.
    fn backward_block(
        &self,
        block: &Block,
        grad_out: &[f32],
        params: &[f32],
        grads: &mut [f32],
        g_enc: &mut Vec<f32>,
        scratch: &mut [Vec<f32>; 2],
    ) {
        let rows = block.rows;
        let shift = self.layout.table_len;
        let layers = &self.layout.layers;
        let (n_enc, width, n_geo) =
            (self.config.hash.output_dim(), self.config.hidden_width, self.config.num_geo_features);
        let n_x = n_geo + SH_DIM;
        let [ga, gb] = scratch;
        // Output layer: g_z = g_rgb · s(1 − s).
        ga.clear();
        ga.extend(
            grad_out.chunks_exact(4).zip(block.rgb.chunks_exact(3)).flat_map(|(g, s)| {
                [g[1] * s[0] * (1.0 - s[0]), g[2] * s[1] * (1.0 - s[1]), g[3] * s[2] * (1.0 - s[2])]
            }),
        );
        let num_hidden = self.num_colour_hidden();
        for l in (0..=num_hidden).rev() {
            let slot = layers[2 + l];
            let input: &[f32] = if l == 0 { &block.x } else { &block.hidden[l - 1] };
            accumulate_grads(grads, shift, slot, ga, input, rows);
            // g_input = g · W, then through the ReLU of the layer below (none for x).
            gb.resize(rows * slot.fan_in, 0.0);
            back_to_input(gb, ga, params, slot, rows);
            if l > 0 {
                for (g, &h) in gb.iter_mut().zip(&block.hidden[l - 1]) {
                    if h <= 0.0 {
                        *g = 0.0;
                    }
                }
            }
            std::mem::swap(ga, gb);
        }
        if self.appearance_only {
            return;
        }
        // ga = ∂x (rows × n_x): its first n_geo columns flow to z2[1..]; σ = exp(z2[0]).
        gb.clear();
        for ((gx, z), g) in ga.chunks_exact(n_x).zip(block.z2.chunks_exact(1 + n_geo)).zip(grad_out.chunks_exact(4)) {
            let inside = z[0] > LOG_DENSITY_RANGE.0 && z[0] < LOG_DENSITY_RANGE.1;
            gb.push(if inside { g[0] * z[0].exp() } else { 0.0 });
            gb.extend_from_slice(&gx[..n_geo]);
        }
        accumulate_grads(grads, shift, layers[1], gb, &block.h1, rows);
        ga.resize(rows * width, 0.0);
        back_to_input(ga, gb, params, layers[1], rows);
        for (g, &h) in ga.iter_mut().zip(&block.h1) {
            if h <= 0.0 {
                *g = 0.0;
            }
        }
        accumulate_grads(grads, shift, layers[0], ga, &block.enc, rows);
        g_enc.resize(rows * n_enc, 0.0);
        back_to_input(g_enc, ga, params, layers[0], rows);
    }
}

/// `out ← input · Wᵀ + b` (ReLU'd when asked) for `rows` rows.
fn linear(out: &mut [f32], input: &[f32], params: &[f32], slot: LayerSlot, rows: usize, relu: bool) {
    let bias = &params[slot.bias_offset..slot.bias_offset + slot.fan_out];
    for row in out.chunks_exact_mut(slot.fan_out) {
        row.copy_from_slice(bias);
    }
    matmul(
        MatMut::from_row_major_slice_mut(out, rows, slot.fan_out),
        Accum::Add,
        MatRef::from_row_major_slice(input, rows, slot.fan_in),
        MatRef::from_row_major_slice(&params[slot.weight_offset..slot.bias_offset], slot.fan_out, slot.fan_in)
            .transpose(),
        1.0,
        Par::Seq,
    );
    if relu {
        out.iter_mut().for_each(|v| *v = v.max(0.0));
    }
}

/// `∂W += gᵀ · input`, `∂b += Σ g`, into `grads` whose index 0 is flat offset `shift`.
fn accumulate_grads(grads: &mut [f32], shift: usize, slot: LayerSlot, g: &[f32], input: &[f32], rows: usize) {
    let (w0, b0) = (slot.weight_offset - shift, slot.bias_offset - shift);
    matmul(
        MatMut::from_row_major_slice_mut(&mut grads[w0..b0], slot.fan_out, slot.fan_in),
        Accum::Add,
        MatRef::from_row_major_slice(g, rows, slot.fan_out).transpose(),
        MatRef::from_row_major_slice(input, rows, slot.fan_in),
        1.0,
        Par::Seq,
    );
    let sums = &mut grads[b0..b0 + slot.fan_out];
    for row in g.chunks_exact(slot.fan_out) {
        sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
}

/// `out ← g · W` (the gradient with respect to the layer's input).
fn back_to_input(out: &mut [f32], g: &[f32], params: &[f32], slot: LayerSlot, rows: usize) {
    matmul(
        MatMut::from_row_major_slice_mut(out, rows, slot.fan_in),
        Accum::Replace,
        MatRef::from_row_major_slice(g, rows, slot.fan_out),
        MatRef::from_row_major_slice(&params[slot.weight_offset..slot.bias_offset], slot.fan_out, slot.fan_in),
        1.0,
        Par::Seq,
    );
}

impl FieldOp {
    fn check(&self, inputs: &Layout, params: &[f32]) -> Result<usize> {
        let (rows, cols) = inputs.shape().dims2()?;
        if cols != INPUT_DIM || params.len() != self.layout.num_params {
            candle_core::bail!(
                "field op: inputs (.., {cols}) and {} parameters do not fit the field ({INPUT_DIM} inputs, {} parameters)",
                params.len(),
                self.layout.num_params
            );
        }
        Ok(rows)
    }
}

impl CustomOp2 for FieldOp {
    fn name(&self) -> &'static str {
        "nerf-field"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let inputs = f32_slice_of(s1, l1, "inputs")?;
        let params = f32_slice_of(s2, l2, "parameters")?;
        let rows = self.check(l1, params)?;
        let mut out = vec![0.0_f32; rows * 4];
        let num_blocks = rows.div_ceil(BLOCK_ROWS);
        match &self.workspace {
            Some((workspace, generation)) => {
                let mut ws = workspace.lock().unwrap_or_else(PoisonError::into_inner);
                ws.generation = *generation;
                ws.rows = rows;
                ws.blocks.resize_with(num_blocks, Block::default);
                ws.blocks[..num_blocks]
                    .par_iter_mut()
                    .zip(inputs.par_chunks(BLOCK_ROWS * INPUT_DIM))
                    .zip(out.par_chunks_mut(BLOCK_ROWS * 4))
                    .for_each(|((block, x), o)| self.forward_block(block, x, params, o));
            }
            None => {
                inputs
                    .par_chunks(BLOCK_ROWS * INPUT_DIM)
                    .zip(out.par_chunks_mut(BLOCK_ROWS * 4))
                    .for_each_init(Block::default, |block, (x, o)| self.forward_block(block, x, params, o));
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, 4))))
    }

    fn bwd(
        &self,
        inputs: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad_out: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let ws = crate::backward_workspace(&self.workspace, |w| w.generation, "field op")?;
        let grad_out = grad_out.contiguous()?;
        let (g_storage, g_layout) = grad_out.storage_and_layout();
        let (i_storage, i_layout) = inputs.storage_and_layout();
        let (p_storage, p_layout) = params.storage_and_layout();
        let (Storage::Cpu(g_cpu), Storage::Cpu(i_cpu), Storage::Cpu(p_cpu)) = (&*g_storage, &*i_storage, &*p_storage)
        else {
            candle_core::bail!("the fused field runs on the CPU only");
        };
        let grad = f32_slice_of(g_cpu, g_layout, "output gradient")?;
        let input_values = f32_slice_of(i_cpu, i_layout, "inputs")?;
        let params_values = f32_slice_of(p_cpu, p_layout, "parameters")?;
        let rows = self.check(i_layout, params_values)?;
        if ws.rows != rows || grad.len() != rows * 4 {
            candle_core::bail!("field op backward: gradient of the wrong size");
        }
        let num_blocks = rows.div_ceil(BLOCK_ROWS);
        let n_enc = self.config.hash.output_dim();
        let num_params = self.layout.num_params;
        let table_len = self.layout.table_len;
        // MLP gradients per thread (only the MLP part of the flat vector is used), and ∂enc per block.
        let mut g_enc_blocks: Vec<Vec<f32>> = (0..num_blocks).map(|_| Vec::new()).collect();
        // Blocks go in a fixed number of groups, each summed in order, and the groups' sums are
        // added in order: the result does not depend on how rayon schedules the work, so training
        // is reproducible for a seed.
        let group = num_blocks.div_ceil(GRADIENT_GROUPS).max(1);
        let group_sums: Vec<Vec<f32>> = ws.blocks[..num_blocks]
            .par_chunks(group)
            .zip(grad.par_chunks(group * BLOCK_ROWS * 4))
            .zip(g_enc_blocks.par_chunks_mut(group))
            .map(|((blocks, g), g_enc)| {
                let mut acc = vec![0.0_f32; num_params - table_len];
                let mut scratch = [Vec::new(), Vec::new()];
                for ((block, g), g_enc) in blocks.iter().zip(g.chunks(BLOCK_ROWS * 4)).zip(g_enc.iter_mut()) {
                    self.backward_block(block, g, params_values, &mut acc, g_enc, &mut scratch);
                }
                acc
            })
            .collect();
        let mut mlp_grads = vec![0.0_f32; num_params - table_len];
        for sum in &group_sums {
            mlp_grads.iter_mut().zip(sum).for_each(|(x, y)| *x += y);
        }
        // Hash table: levels in parallel, each scanning every row.
        let (t, nf) = (self.config.hash.table_size(), self.config.hash.features_per_level);
        let mut grads = vec![0.0_f32; num_params];
        let (table_grad, mlp_part) = grads.split_at_mut(table_len);
        mlp_part.copy_from_slice(&mlp_grads);
        let levels = if self.appearance_only { 0 } else { self.config.hash.num_levels };
        table_grad.par_chunks_mut(t * nf).take(levels).enumerate().for_each(|(level, g_level)| {
            for (block_index, g_enc) in g_enc_blocks.iter().enumerate() {
                let first_row = block_index * BLOCK_ROWS;
                for (r, ge) in g_enc.chunks_exact(n_enc).enumerate() {
                    let g = &ge[level * nf..(level + 1) * nf];
                    if g.iter().all(|&v| v == 0.0) {
                        continue;
                    }
                    let x = &input_values[(first_row + r) * INPUT_DIM..];
                    let corners = self.grid.corners(level, Vec3::new(x[0], x[1], x[2]));
                    for (&row, &w) in corners.rows.iter().zip(&corners.weights) {
                        for (acc, &gv) in g_level[row * nf..(row + 1) * nf].iter_mut().zip(g) {
                            *acc += w * gv;
                        }
                    }
                }
            }
        });
        let device = params.device().clone();
        drop((g_storage, i_storage, p_storage, ws));
        Ok((None, Some(Tensor::from_vec(grads, num_params, &device)?)))
    }
}

fn f32_slice_of<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    cpu_f32_slice(storage, layout, "field op", what)
}
