//! Multiresolution hash encoding (instant-ngp): a point in the unit cube is looked up in `L`
//! grids of growing resolution; each grid's vertices index a table of `F` learned features
//! (directly while the grid fits the table, through a spatial hash beyond), trilinearly
//! interpolated. As a candle `CustomOp2` of `(positions, table)` with a hand-written parallel
//! backward: candle's gather/scatter ops would spend a node and a buffer per corner and level.
//!
//! Table layout: `[level][entry][feature]`, flat. Output row layout: `[level][feature]`.

use std::sync::Arc;

use crate::cpu_f32_slice;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Storage, Tensor};
use glam::Vec3;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Points per parallel task in the forward pass.
const CHUNK_POINTS: usize = 1024;
/// The spatial hash's per-axis primes (instant-ngp's; the first is 1 for coherence along x).
const PRIMES: [u32; 3] = [1, 2_654_435_761, 805_459_861];

/// Shape of a hash grid.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HashGridConfig {
    pub num_levels: usize,
    pub features_per_level: usize,
    /// log2 of the entries per level's table.
    pub log2_table_size: u32,
    /// Grid resolution of the coarsest and the finest level (cells per axis).
    pub base_resolution: u32,
    pub max_resolution: u32,
}

impl Default for HashGridConfig {
    fn default() -> Self {
        Self { num_levels: 16, features_per_level: 2, log2_table_size: 16, base_resolution: 16, max_resolution: 512 }
    }
}

impl HashGridConfig {
    pub fn table_size(&self) -> usize {
        1 << self.log2_table_size
    }

    /// Learned parameters in all levels.
    pub fn num_params(&self) -> usize {
        self.num_levels * self.table_size() * self.features_per_level
    }

    pub fn output_dim(&self) -> usize {
        self.num_levels * self.features_per_level
    }

    /// Cells per axis of `level`: geometric from `base_resolution` to `max_resolution`.
    pub fn resolution(&self, level: usize) -> u32 {
        if self.num_levels <= 1 {
            return self.base_resolution.max(1);
        }
        let (lo, hi) = (f64::from(self.base_resolution.max(1)), f64::from(self.max_resolution.max(1)));
        #[allow(clippy::cast_precision_loss)]
        let t = level as f64 / (self.num_levels - 1) as f64;
        // The small offset keeps exact powers (e.g. 4·8^(1/3) = 8) from flooring to one less.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let res = (lo * (hi / lo).powf(t) + 1e-6).floor() as u32;
        res.max(1)
    }

    /// Checks the settings before anything is allocated.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1..=32).contains(&self.num_levels) {
            return Err(format!("hash grid levels must be 1–32, got {}", self.num_levels));
        }
        if !(1..=8).contains(&self.features_per_level) {
            return Err(format!("features per level must be 1–8, got {}", self.features_per_level));
        }
        if !(8..=24).contains(&self.log2_table_size) {
            return Err(format!("log2 table size must be 8–24, got {}", self.log2_table_size));
        }
        if self.base_resolution < 2 || self.max_resolution < self.base_resolution || self.max_resolution > 1 << 16 {
            return Err(format!(
                "grid resolutions must satisfy 2 ≤ base ({}) ≤ max ({}) ≤ 65536",
                self.base_resolution, self.max_resolution
            ));
        }
        Ok(())
    }
}

/// Where one point's features come from at one level: 8 table rows and their weights.
#[derive(Clone, Copy, Debug)]
pub struct Corners {
    pub rows: [usize; 8],
    pub weights: [f32; 8],
}

/// Precomputed per-level constants.
#[derive(Clone, Debug)]
struct Level {
    resolution: u32,
    /// Dense indexing (the whole `(res+1)³` grid fits the table).
    dense: bool,
}

/// The encoding's lookup, shared by the op, the CPU renderer and the baker.
#[derive(Clone, Debug)]
pub struct HashGrid {
    config: HashGridConfig,
    levels: Vec<Level>,
}

impl HashGrid {
    pub fn new(config: HashGridConfig) -> Self {
        let table = config.table_size() as u64;
        let levels = (0..config.num_levels)
            .map(|l| {
                let resolution = config.resolution(l);
                let side = u64::from(resolution) + 1;
                Level { resolution, dense: side * side * side <= table }
            })
            .collect();
        Self { config, levels }
    }

    pub fn config(&self) -> &HashGridConfig {
        &self.config
    }

    /// The 8 table rows (within the level's table) and trilinear weights of `p ∈ [0, 1]³`
    /// (clamped) at `level`. Corner `k` is offset by `(k & 1, (k >> 1) & 1, k >> 2)` cells.
    #[inline]
    pub fn corners(&self, level: usize, p: Vec3) -> Corners {
        let Level { resolution, dense } = self.levels[level];
        #[allow(clippy::cast_precision_loss)]
        let res_f = resolution as f32;
        // Coordinates are non-negative, so truncation is floor (and avoids a libm call).
        let axis = |v: f32| -> (u32, f32) {
            let x = v.clamp(0.0, 1.0) * res_f;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let cell = (x as u32).min(resolution - 1);
            #[allow(clippy::cast_precision_loss)]
            let f = x - cell as f32;
            (cell, f)
        };
        let ((x, fx), (y, fy), (z, fz)) = (axis(p.x), axis(p.y), axis(p.z));
        let wx = [1.0 - fx, fx];
        let wy = [1.0 - fy, fy];
        let wz = [1.0 - fz, fz];
        let mut rows = [0_usize; 8];
        let mut weights = [0.0_f32; 8];
        if dense {
            let side = resolution as usize + 1;
            let ix = [x as usize, x as usize + 1];
            let iy = [y as usize * side, (y as usize + 1) * side];
            let iz = [z as usize * side * side, (z as usize + 1) * side * side];
            for k in 0..8 {
                rows[k] = ix[k & 1] + iy[(k >> 1) & 1] + iz[k >> 2];
            }
        } else {
            let mask = self.config.table_size() - 1;
            let hx = [x.wrapping_mul(PRIMES[0]), (x + 1).wrapping_mul(PRIMES[0])];
            let hy = [y.wrapping_mul(PRIMES[1]), (y + 1).wrapping_mul(PRIMES[1])];
            let hz = [z.wrapping_mul(PRIMES[2]), (z + 1).wrapping_mul(PRIMES[2])];
            for k in 0..8 {
                rows[k] = (hx[k & 1] ^ hy[(k >> 1) & 1] ^ hz[k >> 2]) as usize & mask;
            }
        }
        for (k, w) in weights.iter_mut().enumerate() {
            *w = wx[k & 1] * wy[(k >> 1) & 1] * wz[k >> 2];
        }
        Corners { rows, weights }
    }

    /// Encodes `p ∈ [0, 1]³` into `out` (`output_dim` values) from `table`.
    pub fn encode_into(&self, table: &[f32], p: Vec3, out: &mut [f32]) {
        let (t, nf) = (self.config.table_size(), self.config.features_per_level);
        for level in 0..self.levels.len() {
            let corners = self.corners(level, p);
            let level_table = &table[level * t * nf..(level + 1) * t * nf];
            let o = &mut out[level * nf..(level + 1) * nf];
            if nf == 2 {
                // The common case, unrolled.
                let (mut a, mut b) = (0.0_f32, 0.0_f32);
                for (&row, &w) in corners.rows.iter().zip(&corners.weights) {
                    a += w * level_table[2 * row];
                    b += w * level_table[2 * row + 1];
                }
                o[0] = a;
                o[1] = b;
            } else {
                o.fill(0.0);
                for (&row, &w) in corners.rows.iter().zip(&corners.weights) {
                    let entry = &level_table[row * nf..(row + 1) * nf];
                    for (acc, &v) in o.iter_mut().zip(entry) {
                        *acc += w * v;
                    }
                }
            }
        }
    }

    /// Encodes `positions` (`[x, y, z]` per point, in `[0, 1]`) in parallel.
    pub fn encode(&self, table: &[f32], positions: &[f32]) -> Vec<f32> {
        let dim = self.config.output_dim();
        let mut out = vec![0.0_f32; positions.len() / 3 * dim];
        out.par_chunks_mut(CHUNK_POINTS * dim).zip(positions.par_chunks(CHUNK_POINTS * 3)).for_each(|(o, p)| {
            for (o, p) in o.chunks_exact_mut(dim).zip(p.chunks_exact(3)) {
                self.encode_into(table, Vec3::new(p[0], p[1], p[2]), o);
            }
        });
        out
    }

    /// Gradient of a loss with respect to the table, given its gradient `grad_out` with respect
    /// to the encodings of `positions`. Levels own disjoint parts of the table, so they are
    /// accumulated in parallel without contention.
    pub fn backward(&self, positions: &[f32], grad_out: &[f32]) -> Vec<f32> {
        let (t, nf, dim) = (self.config.table_size(), self.config.features_per_level, self.config.output_dim());
        let mut grad = vec![0.0_f32; self.config.num_params()];
        grad.par_chunks_mut(t * nf).enumerate().for_each(|(level, g_level)| {
            for (p, g) in positions.chunks_exact(3).zip(grad_out.chunks_exact(dim)) {
                let g = &g[level * nf..(level + 1) * nf];
                if g.iter().all(|&v| v == 0.0) {
                    continue;
                }
                let corners = self.corners(level, Vec3::new(p[0], p[1], p[2]));
                for (&row, &w) in corners.rows.iter().zip(&corners.weights) {
                    for (acc, &gv) in g_level[row * nf..(row + 1) * nf].iter_mut().zip(g) {
                        *acc += w * gv;
                    }
                }
            }
        });
        grad
    }
}

/// The encoding as a differentiable candle op: `(positions (N, 3) in [0,1], table (P,)) → (N, L·F)`.
/// Gradients flow to the table only.
pub struct HashEncodingOp {
    pub grid: Arc<HashGrid>,
}

impl HashEncodingOp {
    fn check(&self, positions: &Layout, table: &[f32]) -> Result<usize> {
        let (n, three) = positions.shape().dims2()?;
        if three != 3 {
            candle_core::bail!("hash encoding: positions must be (N, 3), got {:?}", positions.shape());
        }
        if table.len() != self.grid.config.num_params() {
            candle_core::bail!(
                "hash encoding: table has {} values, the grid needs {}",
                table.len(),
                self.grid.config.num_params()
            );
        }
        Ok(n)
    }
}

impl CustomOp2 for HashEncodingOp {
    fn name(&self) -> &'static str {
        "hash-encoding"
    }

    fn cpu_fwd(
        &self,
        positions_storage: &CpuStorage,
        positions_layout: &Layout,
        table_storage: &CpuStorage,
        table_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let positions = f32_slice_of(positions_storage, positions_layout, "positions")?;
        let table = f32_slice_of(table_storage, table_layout, "table")?;
        let n = self.check(positions_layout, table)?;
        let out = self.grid.encode(table, positions);
        Ok((CpuStorage::F32(out), Shape::from((n, self.grid.config.output_dim()))))
    }

    fn bwd(
        &self,
        positions: &Tensor,
        table: &Tensor,
        _res: &Tensor,
        grad_out: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_out = grad_out.contiguous()?;
        let positions = positions.contiguous()?;
        let (g_storage, g_layout) = grad_out.storage_and_layout();
        let (p_storage, p_layout) = positions.storage_and_layout();
        let (Storage::Cpu(g_cpu), Storage::Cpu(p_cpu)) = (&*g_storage, &*p_storage) else {
            candle_core::bail!("the hash encoding runs on the CPU only");
        };
        let grad = f32_slice_of(g_cpu, g_layout, "output gradient")?;
        let pos = f32_slice_of(p_cpu, p_layout, "positions")?;
        if grad.len() != pos.len() / 3 * self.grid.config.output_dim() {
            candle_core::bail!("hash encoding backward: gradient of the wrong size");
        }
        let grad_table = self.grid.backward(pos, grad);
        let n = grad_table.len();
        drop((g_storage, p_storage));
        Ok((None, Some(Tensor::from_vec(grad_table, n, table.device())?)))
    }
}

fn f32_slice_of<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    cpu_f32_slice(storage, layout, "hash encoding", what)
}
