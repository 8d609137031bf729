//! The SIREN's configuration and its weights as plain data: the form that is snapshotted,
//! rendered, saved to and loaded from safetensors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The widest layer the GPU renderer evaluates (`MAX_WIDTH` in `shaders/inr.wgsl`).
pub const MAX_WIDTH: usize = 256;
/// Most hidden layers accepted.
pub const MAX_HIDDEN_LAYERS: usize = 8;
/// Metadata key under which the configuration is stored in a safetensors file.
const CONFIG_KEY: &str = "sparsefield.siren";

/// The architecture `in_features → width × hidden_layers → out_features`, every hidden layer
/// computing `sin(omega0 · (W·x + b))` and the last layer linear.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SirenConfig {
    pub in_features: usize,
    pub out_features: usize,
    pub width: usize,
    pub hidden_layers: usize,
    pub omega0: f32,
}

impl SirenConfig {
    /// A 2-D image SIREN with `channels` outputs.
    pub fn image(channels: usize, width: usize, hidden_layers: usize, omega0: f32) -> Self {
        Self { in_features: 2, out_features: channels, width, hidden_layers, omega0 }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.in_features != 2 {
            return Err(format!("in_features must be 2 (x, y), got {}", self.in_features));
        }
        if !(self.out_features == 1 || self.out_features == 3) {
            return Err(format!("out_features must be 1 (gray) or 3 (RGB), got {}", self.out_features));
        }
        if !(4..=MAX_WIDTH).contains(&self.width) {
            return Err(format!("width must be between 4 and {MAX_WIDTH}, got {}", self.width));
        }
        if !(1..=MAX_HIDDEN_LAYERS).contains(&self.hidden_layers) {
            return Err(format!("layers must be between 1 and {MAX_HIDDEN_LAYERS}, got {}", self.hidden_layers));
        }
        if !(self.omega0.is_finite() && self.omega0 > 0.0 && self.omega0 <= 1000.0) {
            return Err(format!("omega0 must be in (0, 1000], got {}", self.omega0));
        }
        Ok(())
    }

    /// `(fan_in, fan_out)` of every layer, input to output.
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let mut shapes = vec![(self.in_features, self.width)];
        shapes.extend((1..self.hidden_layers).map(|_| (self.width, self.width)));
        shapes.push((self.width, self.out_features));
        shapes
    }

    pub fn num_parameters(&self) -> usize {
        self.layer_shapes().iter().map(|(i, o)| i * o + o).sum()
    }

    /// Multiply-adds to evaluate the network at one point.
    pub fn macs_per_point(&self) -> usize {
        self.layer_shapes().iter().map(|(i, o)| i * o).sum()
    }
}

/// One layer: `weight` is `fan_out × fan_in`, row-major (PyTorch's `nn.Linear` layout).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// A full set of SIREN weights. Plain data: cheap to share between threads, never aliased with a
/// training variable.
#[derive(Clone, Debug, PartialEq)]
pub struct SirenWeights {
    pub config: SirenConfig,
    pub layers: Vec<LayerWeights>,
}

impl SirenWeights {
    /// SIREN initialisation (Sitzmann et al. 2020): first layer `U(-1/fan_in, 1/fan_in)`, later
    /// layers `U(-√(6/fan_in)/ω₀, √(6/fan_in)/ω₀)`; biases `U(-1/√fan_in, 1/√fan_in)`.
    /// Deterministic for a given seed on every platform (ChaCha8).
    pub fn init(config: SirenConfig, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layers = config
            .layer_shapes()
            .iter()
            .enumerate()
            .map(|(index, &(fan_in, fan_out))| {
                #[allow(clippy::cast_precision_loss)]
                let fan_in_f = fan_in as f32;
                let bound = if index == 0 { 1.0 / fan_in_f } else { (6.0 / fan_in_f).sqrt() / config.omega0 };
                let bias_bound = 1.0 / fan_in_f.sqrt();
                LayerWeights {
                    weight: (0..fan_in * fan_out).map(|_| rng.random_range(-bound..=bound)).collect(),
                    bias: (0..fan_out).map(|_| rng.random_range(-bias_bound..=bias_bound)).collect(),
                }
            })
            .collect();
        Self { config, layers }
    }

    /// All parameters in one vector, layer by layer: `W` (row-major) then `b` — the layout of the
    /// fused CPU op and of the GPU weight buffer.
    pub fn flatten(&self) -> Vec<f32> {
        self.layers.iter().flat_map(|l| l.weight.iter().chain(&l.bias).copied()).collect()
    }

    /// Checks that every layer has the size the configuration says and holds finite numbers.
    pub fn validate(&self) -> Result<(), String> {
        self.config.validate()?;
        let shapes = self.config.layer_shapes();
        if shapes.len() != self.layers.len() {
            return Err(format!("expected {} layers, found {}", shapes.len(), self.layers.len()));
        }
        for (index, ((fan_in, fan_out), layer)) in shapes.iter().zip(&self.layers).enumerate() {
            if layer.weight.len() != fan_in * fan_out || layer.bias.len() != *fan_out {
                return Err(format!(
                    "layer {index}: expected a {fan_out}×{fan_in} weight and {fan_out} biases, found {} and {}",
                    layer.weight.len(),
                    layer.bias.len()
                ));
            }
            if layer.weight.iter().chain(&layer.bias).any(|v| !v.is_finite()) {
                return Err(format!("layer {index} holds NaN or infinite values"));
            }
        }
        Ok(())
    }

    /// Saves as safetensors: `layers.{i}.weight` (`fan_out × fan_in`), `layers.{i}.bias`, and the
    /// configuration as JSON in the metadata under `sparsefield.siren`.
    pub fn save(&self, path: &Path, extra_metadata: &[(&str, String)]) -> Result<(), WeightsFileError> {
        let config_json = serde_json::to_string(&self.config)
            .map_err(|e| WeightsFileError::Format { path: path.to_owned(), reason: e.to_string() })?;
        let mut metadata: HashMap<String, String> = HashMap::from([(CONFIG_KEY.to_owned(), config_json)]);
        metadata.extend(extra_metadata.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        write_f32_safetensors(path, &layer_tensors(&self.config.layer_shapes(), &self.layers), metadata)
    }

    /// Loads what [`SirenWeights::save`] wrote, checking every shape.
    pub fn load(path: &Path) -> Result<Self, WeightsFileError> {
        Self::load_with_metadata(path).map(|(weights, _)| weights)
    }

    /// Like [`SirenWeights::load`], also returning the file's metadata (e.g. `sparsefield.steps`).
    pub fn load_with_metadata(path: &Path) -> Result<(Self, HashMap<String, String>), WeightsFileError> {
        let bytes = crate::files::read_capped(path, crate::files::SMALL_WEIGHTS)
            .map_err(|source| WeightsFileError::Read { path: path.to_owned(), source })?;
        Self::from_safetensors_bytes(&bytes, path)
    }

    /// Parses a safetensors file held in memory; `path` is used in messages.
    pub fn from_safetensors_bytes(
        bytes: &[u8],
        path: &Path,
    ) -> Result<(Self, HashMap<String, String>), WeightsFileError> {
        let format_err = |reason: String| WeightsFileError::Format { path: path.to_owned(), reason };
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| format_err(format!("not a safetensors file ({e})")))?;
        let config_json = header.metadata().as_ref().and_then(|m| m.get(CONFIG_KEY)).ok_or_else(|| {
            format_err(format!(
                "no `{CONFIG_KEY}` entry in the metadata; this file was not written by SparseField's INR lab"
            ))
        })?;
        let config: SirenConfig =
            serde_json::from_str(config_json).map_err(|e| format_err(format!("bad `{CONFIG_KEY}` metadata: {e}")))?;
        config.validate().map_err(format_err)?;
        let tensors = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| format_err(format!("not a safetensors file ({e})")))?;
        let layers = read_layers(&tensors, &config.layer_shapes(), path)?;
        let weights = Self { config, layers };
        weights.validate().map_err(format_err)?;
        Ok((weights, header.metadata().clone().unwrap_or_default()))
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `layers.{i}.weight` (`fan_out × fan_in`) and `layers.{i}.bias` of an MLP, for
/// [`write_f32_safetensors`].
pub(crate) fn layer_tensors<'a>(
    shapes: &[(usize, usize)],
    layers: &'a [LayerWeights],
) -> Vec<(String, Vec<usize>, &'a [f32])> {
    let mut tensors = Vec::new();
    for (index, ((fan_in, fan_out), layer)) in shapes.iter().zip(layers).enumerate() {
        tensors.push((format!("layers.{index}.weight"), vec![*fan_out, *fan_in], layer.weight.as_slice()));
        tensors.push((format!("layers.{index}.bias"), vec![*fan_out], layer.bias.as_slice()));
    }
    tensors
}

/// Writes f32 tensors `(name, shape, values)` with `metadata` as a safetensors file.
pub fn write_f32_safetensors(
    path: &Path,
    tensors: &[(String, Vec<usize>, &[f32])],
    metadata: HashMap<String, String>,
) -> Result<(), WeightsFileError> {
    let format_err = |reason: String| WeightsFileError::Format { path: path.to_owned(), reason };
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, values)| f32_bytes(values)).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format_err(e.to_string()))?;
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| format_err(e.to_string()))?;
    crate::files::write_atomic(path, bytes).map_err(|source| WeightsFileError::Write { path: path.to_owned(), source })
}

/// Reads the f32 tensor `name`, which must have `shape`; `path` is used in messages.
pub(crate) fn read_f32_tensor(
    tensors: &safetensors::SafeTensors<'_>,
    name: &str,
    shape: &[usize],
    path: &Path,
) -> Result<Vec<f32>, WeightsFileError> {
    let format_err = |reason: String| WeightsFileError::Format { path: path.to_owned(), reason };
    let view = tensors.tensor(name).map_err(|_| format_err(format!("tensor `{name}` is missing")))?;
    if view.dtype() != safetensors::Dtype::F32 {
        return Err(format_err(format!("tensor `{name}` is {:?}, expected F32", view.dtype())));
    }
    if view.shape() != shape {
        return Err(format_err(format!("tensor `{name}` has shape {:?}, expected {shape:?}", view.shape())));
    }
    Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// Reads the layers [`layer_tensors`] wrote, checking every shape.
pub(crate) fn read_layers(
    tensors: &safetensors::SafeTensors<'_>,
    shapes: &[(usize, usize)],
    path: &Path,
) -> Result<Vec<LayerWeights>, WeightsFileError> {
    shapes
        .iter()
        .enumerate()
        .map(|(index, &(fan_in, fan_out))| {
            Ok(LayerWeights {
                weight: read_f32_tensor(tensors, &format!("layers.{index}.weight"), &[fan_out, fan_in], path)?,
                bias: read_f32_tensor(tensors, &format!("layers.{index}.bias"), &[fan_out], path)?,
            })
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum WeightsFileError {
    #[error("{path}: cannot read ({source}).")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot write ({source}). Check that the folder exists and is writable.")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
}
