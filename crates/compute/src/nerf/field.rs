//! The radiance field: hash encoding → density MLP (density + geometry features) → colour MLP
//! (geometry features + spherical-harmonic view direction) → RGB.
//!
//! Two twins of one network: [`NerfField`] in candle for training (autograd through the fused
//! hash-encoding op), and [`FieldWeights`], a plain copy of the weights with a parallel CPU
//! forward for rendering, baking and occupancy updates (and the snapshots the viewer gets).

use std::sync::Arc;

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{Linear, VarBuilder, VarMap};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::hash_encoding::{HashEncodingOp, HashGrid, HashGridConfig};

/// Spherical-harmonic coefficients of the view direction (degree 4).
pub const SH_DIM: usize = 16;
/// Points per parallel task in the CPU forward.
const CHUNK_POINTS: usize = 2048;
/// The density is `exp` of the network's first output, clamped to this range first.
const LOG_DENSITY_RANGE: (f32, f32) = (-15.0, 15.0);

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldConfig {
    pub hash: HashGridConfig,
    /// Width of the hidden layers of both MLPs.
    pub hidden_width: usize,
    /// Geometry features passed from the density MLP to the colour MLP.
    pub num_geo_features: usize,
    /// Hidden layers of the colour MLP.
    pub colour_hidden_layers: usize,
}

impl Default for FieldConfig {
    fn default() -> Self {
        Self { hash: HashGridConfig::default(), hidden_width: 64, num_geo_features: 15, colour_hidden_layers: 2 }
    }
}

impl FieldConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.hash.validate()?;
        if !(8..=256).contains(&self.hidden_width) {
            return Err(format!("hidden width must be 8–256, got {}", self.hidden_width));
        }
        if !(1..=64).contains(&self.num_geo_features) {
            return Err(format!("geometry features must be 1–64, got {}", self.num_geo_features));
        }
        if !(1..=4).contains(&self.colour_hidden_layers) {
            return Err(format!("colour hidden layers must be 1–4, got {}", self.colour_hidden_layers));
        }
        Ok(())
    }

    /// `(name, fan_in, fan_out)` of every linear layer, density first. Names are the checkpoint keys.
    pub fn layers(&self) -> Vec<(String, usize, usize)> {
        let w = self.hidden_width;
        let mut layers = vec![
            ("density.0".to_owned(), self.hash.output_dim(), w),
            ("density.1".to_owned(), w, 1 + self.num_geo_features),
        ];
        let mut fan_in = self.num_geo_features + SH_DIM;
        for l in 0..self.colour_hidden_layers {
            layers.push((format!("colour.{l}"), fan_in, w));
            fan_in = w;
        }
        layers.push((format!("colour.{}", self.colour_hidden_layers), fan_in, 3));
        layers
    }
}

/// Real spherical harmonics up to degree 4 (16 values) of a unit direction.
pub fn sh_encode(d: [f32; 3], out: &mut [f32]) {
    let [x, y, z] = d;
    let (xx, yy, zz) = (x * x, y * y, z * z);
    let (xy, yz, xz) = (x * y, y * z, x * z);
    out[0] = 0.282_094_8;
    out[1] = -0.488_602_5 * y;
    out[2] = 0.488_602_5 * z;
    out[3] = -0.488_602_5 * x;
    out[4] = 1.092_548_5 * xy;
    out[5] = -1.092_548_5 * yz;
    out[6] = 0.315_391_57 * (2.0 * zz - xx - yy);
    out[7] = -1.092_548_5 * xz;
    out[8] = 0.546_274_24 * (xx - yy);
    out[9] = -0.590_043_6 * y * (3.0 * xx - yy);
    out[10] = 2.890_611_4 * xy * z;
    out[11] = -0.457_045_8 * y * (4.0 * zz - xx - yy);
    out[12] = 0.373_176_33 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy);
    out[13] = -0.457_045_8 * x * (4.0 * zz - xx - yy);
    out[14] = 1.445_305_7 * z * (xx - yy);
    out[15] = -0.590_043_6 * x * (xx - 3.0 * yy);
}

/// SH encodings of `[x, y, z]…` unit directions.
pub fn sh_encode_all(directions: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0_f32; directions.len() / 3 * SH_DIM];
    out.par_chunks_mut(SH_DIM * 1024).zip(directions.par_chunks(3 * 1024)).for_each(|(o, d)| {
        for (o, d) in o.chunks_exact_mut(SH_DIM).zip(d.chunks_exact(3)) {
            sh_encode([d[0], d[1], d[2]], o);
        }
    });
    out
}

/// One linear layer's weights: `weight` is `fan_out × fan_in`, row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    pub name: String,
    pub fan_in: usize,
    pub fan_out: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Dense {
    /// `out ← relu?(input · Wᵀ + b)` for `rows` rows.
    fn forward(&self, input: &[f32], rows: usize, relu: bool, out: &mut Vec<f32>) {
        out.clear();
        out.resize(rows * self.fan_out, 0.0);
        for row in out.chunks_exact_mut(self.fan_out) {
            row.copy_from_slice(&self.bias);
        }
        matmul(
            MatMut::from_row_major_slice_mut(out, rows, self.fan_out),
            Accum::Add,
            MatRef::from_row_major_slice(input, rows, self.fan_in),
            MatRef::from_row_major_slice(&self.weight, self.fan_out, self.fan_in).transpose(),
            1.0,
            Par::Seq,
        );
        if relu {
            out.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}

/// A copy of a field's weights with a CPU forward. Cheap to share (`Arc`) with render threads.
#[derive(Clone, Debug)]
pub struct FieldWeights {
    pub config: FieldConfig,
    pub grid: Arc<HashGrid>,
    pub table: Vec<f32>,
    pub density: Vec<Dense>,
    pub colour: Vec<Dense>,
}

/// Densities and colours of a batch of points.
#[derive(Clone, Debug, Default)]
pub struct FieldOutput {
    pub sigma: Vec<f32>,
    pub rgb: Vec<f32>,
}

impl FieldWeights {
    /// Initial weights: hash table uniform in ±1e-4 (instant-ngp), linear layers uniform in
    /// ±1/√fan_in (PyTorch's default), from a seeded generator.
    pub fn init(config: FieldConfig, seed: u64) -> Self {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let table = (0..config.hash.num_params()).map(|_| rng.random_range(-1e-4..1e-4)).collect();
        let mut density = Vec::new();
        let mut colour = Vec::new();
        for (name, fan_in, fan_out) in config.layers() {
            #[allow(clippy::cast_precision_loss)]
            let bound = 1.0 / (fan_in as f32).sqrt();
            let dense = Dense {
                weight: (0..fan_in * fan_out).map(|_| rng.random_range(-bound..bound)).collect(),
                bias: (0..fan_out).map(|_| rng.random_range(-bound..bound)).collect(),
                name: name.clone(),
                fan_in,
                fan_out,
            };
            if name.starts_with("density") { density.push(dense) } else { colour.push(dense) }
        }
        Self { config, grid: Arc::new(HashGrid::new(config.hash)), table, density, colour }
    }

    fn density_chunk(&self, positions: &[f32], scratch: &mut [Vec<f32>; 3]) -> usize {
        let rows = positions.len() / 3;
        let dim = self.config.hash.output_dim();
        let [enc, hidden, out] = scratch;
        enc.clear();
        enc.resize(rows * dim, 0.0);
        for (o, p) in enc.chunks_exact_mut(dim).zip(positions.chunks_exact(3)) {
            self.grid.encode_into(&self.table, glam::Vec3::new(p[0], p[1], p[2]), o);
        }
        self.density[0].forward(enc, rows, true, hidden);
        self.density[1].forward(hidden, rows, false, out);
        rows
    }

    /// Densities at `positions` (normalized to `[0, 1]³`).
    pub fn density(&self, positions: &[f32]) -> Vec<f32> {
        let n_out = 1 + self.config.num_geo_features;
        let mut sigma = vec![0.0_f32; positions.len() / 3];
        sigma.par_chunks_mut(CHUNK_POINTS).zip(positions.par_chunks(3 * CHUNK_POINTS)).for_each_init(
            || [Vec::new(), Vec::new(), Vec::new()],
            |scratch, (s, p)| {
                self.density_chunk(p, scratch);
                for (s, row) in s.iter_mut().zip(scratch[2].chunks_exact(n_out)) {
                    *s = density_activation(row[0]);
                }
            },
        );
        sigma
    }

    /// Densities and colours at `positions` (normalized to `[0, 1]³`) seen along unit `directions`.
    pub fn query(&self, positions: &[f32], directions: &[f32]) -> FieldOutput {
        let n = positions.len() / 3;
        let n_out = 1 + self.config.num_geo_features;
        let mut out = FieldOutput { sigma: vec![0.0; n], rgb: vec![0.0; 3 * n] };
        out.sigma
            .par_chunks_mut(CHUNK_POINTS)
            .zip(out.rgb.par_chunks_mut(3 * CHUNK_POINTS))
            .zip(positions.par_chunks(3 * CHUNK_POINTS).zip(directions.par_chunks(3 * CHUNK_POINTS)))
            .for_each_init(
                || ([Vec::new(), Vec::new(), Vec::new()], Vec::new(), Vec::new(), Vec::new()),
                |(scratch, x, h1, h2), ((s, rgb), (p, d))| {
                    let rows = self.density_chunk(p, scratch);
                    let in_dim = self.config.num_geo_features + SH_DIM;
                    x.clear();
                    x.resize(rows * in_dim, 0.0);
                    for ((xr, dr), (row, dir)) in x
                        .chunks_exact_mut(in_dim)
                        .zip(s.iter_mut())
                        .zip(scratch[2].chunks_exact(n_out).zip(d.chunks_exact(3)))
                    {
                        *dr = density_activation(row[0]);
                        xr[..n_out - 1].copy_from_slice(&row[1..]);
                        sh_encode([dir[0], dir[1], dir[2]], &mut xr[n_out - 1..]);
                    }
                    let Some((last, hidden)) = self.colour.split_last() else {
                        return;
                    };
                    let mut input: &mut Vec<f32> = x;
                    let mut spare: &mut Vec<f32> = h1;
                    for layer in hidden {
                        layer.forward(input, rows, true, spare);
                        std::mem::swap(&mut input, &mut spare);
                    }
                    last.forward(input, rows, false, h2);
                    for (o, &v) in rgb.iter_mut().zip(h2.iter()) {
                        *o = sigmoid(v);
                    }
                },
            );
        out
    }

    pub fn num_params(&self) -> usize {
        self.table.len() + self.density.iter().chain(&self.colour).map(|d| d.weight.len() + d.bias.len()).sum::<usize>()
    }
}

pub fn density_activation(x: f32) -> f32 {
    x.clamp(LOG_DENSITY_RANGE.0, LOG_DENSITY_RANGE.1).exp()
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The trainable field in candle.
pub struct NerfField {
    pub config: FieldConfig,
    pub grid: Arc<HashGrid>,
    pub varmap: VarMap,
    table: Tensor,
    density: Vec<Linear>,
    colour: Vec<Linear>,
}

impl NerfField {
    /// A freshly initialized field ([`FieldWeights::init`]), deterministic for `seed`.
    pub fn new(config: FieldConfig, seed: u64, device: &Device) -> candle_core::Result<Self> {
        config.validate().map_err(candle_core::Error::msg)?;
        Self::from_weights(&FieldWeights::init(config, seed), device)
    }

    /// A trainable field holding a copy of `weights`.
    pub fn from_weights(weights: &FieldWeights, device: &Device) -> candle_core::Result<Self> {
        let config = weights.config;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let table = vb.pp("encoding").get_with_hints(config.hash.num_params(), "table", candle_nn::Init::Const(0.0))?;
        let mut density = Vec::new();
        let mut colour = Vec::new();
        for (name, fan_in, fan_out) in config.layers() {
            let layer = candle_nn::linear(fan_in, fan_out, vb.pp(&name))?;
            if name.starts_with("density") { density.push(layer) } else { colour.push(layer) }
        }
        let field = Self { config, grid: Arc::new(HashGrid::new(config.hash)), varmap, table, density, colour };
        field.load_weights(weights)?;
        Ok(field)
    }

    /// The trainable variables, for the optimizer.
    pub fn vars(&self) -> Vec<Var> {
        self.varmap.all_vars()
    }

    /// `(σ (N,), rgb (N, 3))` at normalized `positions (N, 3)` with SH-encoded directions `(N, 16)`.
    pub fn forward(&self, positions: &Tensor, directions_sh: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let enc = positions.apply_op2(&self.table, HashEncodingOp { grid: self.grid.clone() })?;
        let h = self.density[0].forward(&enc)?.relu()?;
        let out = self.density[1].forward(&h)?;
        let sigma = out.narrow(1, 0, 1)?.squeeze(1)?.clamp(LOG_DENSITY_RANGE.0, LOG_DENSITY_RANGE.1)?.exp()?;
        let geo = out.narrow(1, 1, self.config.num_geo_features)?;
        let mut x = Tensor::cat(&[&geo, directions_sh], 1)?;
        let (last, hidden) = self.colour.split_last().ok_or_else(|| candle_core::Error::msg("empty colour MLP"))?;
        for layer in hidden {
            x = layer.forward(&x)?.relu()?;
        }
        let rgb = candle_nn::ops::sigmoid(&last.forward(&x)?)?;
        Ok((sigma, rgb))
    }

    /// A copy of the current weights.
    pub fn weights(&self) -> candle_core::Result<FieldWeights> {
        let dense = |layer: &Linear, (name, fan_in, fan_out): (String, usize, usize)| -> candle_core::Result<Dense> {
            let weight = layer.weight().flatten_all()?.to_vec1::<f32>()?;
            let bias = match layer.bias() {
                Some(b) => b.to_vec1::<f32>()?,
                None => vec![0.0; fan_out],
            };
            Ok(Dense { name, fan_in, fan_out, weight, bias })
        };
        let shapes = self.config.layers();
        let (density_shapes, colour_shapes) = shapes.split_at(2);
        Ok(FieldWeights {
            config: self.config,
            grid: self.grid.clone(),
            table: self.table.to_vec1::<f32>()?,
            density: self
                .density
                .iter()
                .zip(density_shapes.iter().cloned())
                .map(|(l, s)| dense(l, s))
                .collect::<Result<_, _>>()?,
            colour: self
                .colour
                .iter()
                .zip(colour_shapes.iter().cloned())
                .map(|(l, s)| dense(l, s))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Overwrites the variables with `weights` (same configuration).
    pub fn load_weights(&self, weights: &FieldWeights) -> candle_core::Result<()> {
        if weights.config != self.config {
            candle_core::bail!("the checkpoint's field configuration differs from this field's");
        }
        let data = self.varmap.data().lock().map_err(|_| candle_core::Error::msg("weights lock poisoned"))?;
        let set = |key: &str, values: &[f32]| -> candle_core::Result<()> {
            let var = data.get(key).ok_or_else(|| candle_core::Error::msg(format!("no variable {key}")))?;
            var.set(&Tensor::from_slice(values, var.shape(), var.device())?)
        };
        set("encoding.table", &weights.table)?;
        for d in weights.density.iter().chain(&weights.colour) {
            set(&format!("{}.weight", d.name), &d.weight)?;
            set(&format!("{}.bias", d.name), &d.bias)?;
        }
        Ok(())
    }
}
