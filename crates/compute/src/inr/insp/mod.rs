//! Editing an INR without decoding it (INSP-Net, Xu et al. 2022): a small MLP reads the INR's
//! closed-form derivative stack at a point and outputs the edited value there, so the edit of a
//! continuous function is itself a continuous function, evaluated at any resolution.
//!
//! The operator acts on one colour channel's stack at a time with shared weights (value and all
//! partials up to the chosen order, `P = (K+1)(K+2)/2` features), so an operator trained on RGB
//! photographs applies to gray ones and vice versa. With `residual`, it outputs a correction to
//! the INR's value (and starts as the identity), which trains much faster than learning the
//! value back from scratch. Features are standardised with the training set's mean and spread,
//! stored with the operator and reused on every INR it is applied to.
//!
//! An [`EditTask`] says what the operator learns: the pixel-domain filter to mimic (Gaussian or
//! box blur), or the corruption to undo (noise, blur, thin scribbles), and which simple pixel
//! filter serves as the baseline.

use std::collections::HashMap;
use std::path::Path;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::taylor::{self, MAX_ORDER, Partials};
use super::weights::{layer_tensors, read_f32_tensor, read_layers, write_f32_safetensors};
use super::{InrError, LayerWeights, SirenWeights, WeightsFileError, pixel_centre};
use crate::control::RunControl;
use crate::filters;
use crate::image_io::ImageData;

mod pipeline;
mod train;

pub use pipeline::{
    Example, OperatorOutcome, OperatorSource, Subject, add_examples, build_training_set, load_pair, train_for_image,
    training_views,
};
pub use train::{OperatorMlp, OperatorStep, OperatorSummary, TrainingSet, train_operator};

/// Metadata key under which the operator's description is stored in a safetensors file.
const SPEC_KEY: &str = "sparsefield.insp";
/// Widest hidden layer (the GPU renderer's limit).
pub const MAX_OPERATOR_WIDTH: usize = 256;
/// Most hidden layers.
pub const MAX_OPERATOR_LAYERS: usize = 8;
/// Points whose stacks are evaluated together when rendering an edit.
const APPLY_CHUNK_POINTS: usize = 8192;

/// What an operator learns to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EditKind {
    /// Mimic a Gaussian blur of standard deviation `sigma` pixels.
    GaussianBlur,
    /// Mimic a `(2r+1)²` box blur.
    BoxBlur,
    /// Undo additive Gaussian noise of standard deviation `noise`.
    Denoise,
    /// Undo a Gaussian blur of `sigma` pixels.
    Deblur,
    /// Remove thin scribbles covering `coverage` of the image.
    Inpaint,
    /// Any image-to-image mapping, learnt from pairs (input image, target image) given by the user.
    Custom,
}

impl EditKind {
    pub const ALL: [Self; 6] =
        [Self::GaussianBlur, Self::BoxBlur, Self::Denoise, Self::Deblur, Self::Inpaint, Self::Custom];
    /// The edits whose training examples are made from clean images (all but [`EditKind::Custom`]).
    pub const FROM_CLEAN_IMAGES: [Self; 5] =
        [Self::GaussianBlur, Self::BoxBlur, Self::Denoise, Self::Deblur, Self::Inpaint];

    pub fn label(self) -> &'static str {
        match self {
            Self::GaussianBlur => "Gaussian blur",
            Self::BoxBlur => "Box blur",
            Self::Denoise => "Denoise",
            Self::Deblur => "Deblur",
            Self::Inpaint => "Inpaint",
            Self::Custom => "Custom pairs",
        }
    }

    /// The name used on the command line and in files.
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::GaussianBlur => "blur",
            Self::BoxBlur => "box-blur",
            Self::Denoise => "denoise",
            Self::Deblur => "deblur",
            Self::Inpaint => "inpaint",
            Self::Custom => "custom",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::GaussianBlur => "Learn a Gaussian blur: the INR of an image in, the INR of its blur out.",
            Self::BoxBlur => "Learn a box (mean) blur.",
            Self::Denoise => "The INR is fitted to a noisy image; learn to output the clean one.",
            Self::Deblur => "The INR is fitted to a blurred image; learn to output the sharp one.",
            Self::Inpaint => "The INR is fitted to an image with thin scribbles; learn to remove them.",
            Self::Custom => "Learn any mapping from pairs: the INR of an input image in, its target image out.",
        }
    }

    /// Whether the INR to edit is of a corrupted image (and the target is the clean one).
    pub fn restores(self) -> bool {
        matches!(self, Self::Denoise | Self::Deblur | Self::Inpaint)
    }

    /// Whether the target is a filter of the INR's own image (computable from it).
    pub fn is_filter(self) -> bool {
        matches!(self, Self::GaussianBlur | Self::BoxBlur)
    }
}

/// An edit and its parameters (sizes in pixels of the training resolution).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EditTask {
    pub kind: EditKind,
    /// Gaussian standard deviation (blur and deblur), pixels.
    pub sigma: f32,
    /// Box blur radius, pixels.
    pub box_radius: u32,
    /// Noise standard deviation (denoise), pixel units.
    pub noise: f32,
    /// Fraction of pixels under scribbles (inpaint).
    pub coverage: f32,
}

impl EditTask {
    pub fn new(kind: EditKind) -> Self {
        Self { kind, sigma: 2.0, box_radius: 2, noise: 0.1, coverage: 0.06 }
    }

    pub fn validate(&self) -> Result<(), InrError> {
        if !(self.sigma.is_finite() && (0.1..=20.0).contains(&self.sigma)) {
            return Err(InrError::Config(format!("blur sigma must be between 0.1 and 20 pixels, got {}", self.sigma)));
        }
        if !(1..=10).contains(&self.box_radius) {
            return Err(InrError::Config(format!("box radius must be between 1 and 10, got {}", self.box_radius)));
        }
        if !(self.noise.is_finite() && (0.0..=0.5).contains(&self.noise)) {
            return Err(InrError::Config(format!("noise must be between 0 and 0.5, got {}", self.noise)));
        }
        if !(self.coverage.is_finite() && (0.0..=0.3).contains(&self.coverage)) {
            return Err(InrError::Config(format!(
                "scribble coverage must be between 0 and 0.3, got {}",
                self.coverage
            )));
        }
        Ok(())
    }

    /// The same edit for an image `scale` times the training image's size: blur sizes follow (the
    /// operator works in image coordinates, so its blur covers the same fraction of the image).
    pub fn at_scale(&self, scale: f32) -> Self {
        if !(scale.is_finite() && scale > 0.0) || (scale - 1.0).abs() < 1e-6 {
            return *self;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let radius = ((self.box_radius as f32 * scale).round() as u32).clamp(1, 10);
        Self { sigma: (self.sigma * scale).clamp(0.1, 20.0), box_radius: radius, ..*self }
    }

    /// One line for titles: "Gaussian blur σ = 2 px".
    pub fn summary(&self) -> String {
        match self.kind {
            EditKind::GaussianBlur | EditKind::Deblur => format!("{} σ = {} px", self.kind.label(), self.sigma),
            EditKind::BoxBlur => format!("{} {n}×{n}", self.kind.label(), n = 2 * self.box_radius + 1),
            EditKind::Denoise => format!("{} σ = {}", self.kind.label(), self.noise),
            EditKind::Inpaint => format!("{} {:.0}%", self.kind.label(), 100.0 * self.coverage),
            EditKind::Custom => self.kind.label().to_owned(),
        }
    }

    /// The image an INR to be edited is fitted to: the clean one for filters, the corrupted one
    /// for restorations, the input itself for custom pairs.
    pub fn degrade(&self, clean: &ImageData, seed: u64) -> ImageData {
        match self.kind {
            EditKind::GaussianBlur | EditKind::BoxBlur | EditKind::Custom => clean.clone(),
            EditKind::Denoise => filters::add_gaussian_noise(clean, self.noise, seed),
            EditKind::Deblur => filters::gaussian_blur(clean, self.sigma),
            EditKind::Inpaint => {
                let mask = filters::scribble_mask(clean.width, clean.height, self.coverage, seed);
                filters::apply_mask(clean, &mask, 1.0)
            }
        }
    }

    /// What the edit should produce from the clean image (for custom pairs the target is given,
    /// not computed: this returns the image unchanged).
    pub fn target(&self, clean: &ImageData) -> ImageData {
        match self.kind {
            EditKind::GaussianBlur => filters::gaussian_blur(clean, self.sigma),
            EditKind::BoxBlur => filters::box_blur(clean, self.box_radius),
            EditKind::Denoise | EditKind::Deblur | EditKind::Inpaint | EditKind::Custom => clean.clone(),
        }
    }

    /// The simplest pixel-domain method for the same job, applied to the degraded image.
    pub fn baselines(&self, degraded: &ImageData) -> Vec<(&'static str, ImageData)> {
        match self.kind {
            EditKind::GaussianBlur => vec![("3×3 binomial", filters::binomial3(degraded))],
            EditKind::BoxBlur => vec![("3×3 box", filters::box_blur(degraded, 1))],
            EditKind::Denoise => vec![
                ("3×3 mean", filters::box_blur(degraded, 1)),
                ("3×3 median", filters::median3(degraded)),
                ("Gaussian σ = 1", filters::gaussian_blur(degraded, 1.0)),
            ],
            EditKind::Deblur => vec![("unsharp mask", filters::unsharp_mask(degraded, self.sigma, 1.0))],
            EditKind::Inpaint => vec![("3×3 median", filters::median3(degraded))],
            EditKind::Custom => Vec::new(),
        }
    }
}

/// The operator network's shape and training settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatorConfig {
    /// Highest derivative order in the stack.
    pub order: usize,
    pub width: usize,
    pub hidden_layers: usize,
    /// Output a correction to the INR's value rather than the value itself.
    pub residual: bool,
    pub learning_rate: f64,
    pub steps: u64,
    /// Rows (pixel channels) per step.
    pub batch: usize,
    pub seed: u64,
    /// Seconds between snapshots sent to viewers (0 disables them).
    pub snapshot_interval_secs: f64,
}

impl Default for OperatorConfig {
    /// The paper's operator (4 hidden layers of 256) on derivatives up to order 4. The learning
    /// rate is ten times the paper's 1e-4: with the residual form that converges in a few hundred
    /// steps instead of thousands.
    fn default() -> Self {
        Self {
            order: 4,
            width: 256,
            hidden_layers: 4,
            residual: true,
            learning_rate: 1e-3,
            steps: 1000,
            batch: 4096,
            seed: 0,
            snapshot_interval_secs: 0.5,
        }
    }
}

impl OperatorConfig {
    pub fn validate(&self) -> Result<(), InrError> {
        if self.order > MAX_ORDER {
            return Err(InrError::Config(format!("derivative order must be at most {MAX_ORDER}, got {}", self.order)));
        }
        if !(4..=MAX_OPERATOR_WIDTH).contains(&self.width) {
            return Err(InrError::Config(format!(
                "operator width must be between 4 and {MAX_OPERATOR_WIDTH}, got {}",
                self.width
            )));
        }
        if !(1..=MAX_OPERATOR_LAYERS).contains(&self.hidden_layers) {
            return Err(InrError::Config(format!(
                "operator layers must be between 1 and {MAX_OPERATOR_LAYERS}, got {}",
                self.hidden_layers
            )));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return Err(InrError::Config(format!("learning rate must be in (0, 1), got {}", self.learning_rate)));
        }
        if self.steps == 0 || self.batch == 0 {
            return Err(InrError::Config("steps and batch must be at least 1".into()));
        }
        Ok(())
    }

    fn layer_shapes(&self, features: usize) -> Vec<(usize, usize)> {
        operator_shapes(features, self.width, self.hidden_layers)
    }
}

/// `(fan_in, fan_out)` of an operator: `features → width × hidden_layers → 1`.
fn operator_shapes(features: usize, width: usize, hidden_layers: usize) -> Vec<(usize, usize)> {
    let mut shapes = vec![(features, width)];
    shapes.extend((1..hidden_layers).map(|_| (width, width)));
    shapes.push((width, 1));
    shapes
}

/// What a trained operator is: stored in its file, checked on load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatorSpec {
    pub task: EditTask,
    pub order: usize,
    pub width: usize,
    pub hidden_layers: usize,
    pub residual: bool,
    /// Side of the training images (filter sizes are in its pixels).
    pub training_size: u32,
}

impl OperatorSpec {
    pub fn partials(&self) -> Result<Partials, InrError> {
        Partials::new(self.order)
    }

    pub fn num_features(&self) -> usize {
        taylor::num_partials(self.order)
    }

    /// `(fan_in, fan_out)` of every layer, input to output (one output).
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        operator_shapes(self.num_features(), self.width, self.hidden_layers)
    }

    fn validate(&self) -> Result<(), String> {
        self.task.validate().map_err(|e| e.to_string())?;
        if self.order > MAX_ORDER {
            return Err(format!("derivative order {} is above the maximum {MAX_ORDER}", self.order));
        }
        if !(1..=MAX_OPERATOR_WIDTH).contains(&self.width) || !(1..=MAX_OPERATOR_LAYERS).contains(&self.hidden_layers) {
            return Err(format!(
                "operator of {} layers of {} is outside 1..={MAX_OPERATOR_LAYERS} layers of 1..={MAX_OPERATOR_WIDTH}",
                self.hidden_layers, self.width
            ));
        }
        Ok(())
    }
}

/// A trained operator as plain data: layers (ReLU between them), feature standardisation.
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorWeights {
    pub spec: OperatorSpec,
    pub layers: Vec<LayerWeights>,
    /// Per-feature mean subtracted before the network.
    pub feature_shift: Vec<f32>,
    /// Per-feature spread divided by before the network.
    pub feature_scale: Vec<f32>,
}

impl OperatorWeights {
    /// Checks every size against the spec and that all numbers are finite.
    pub fn validate(&self) -> Result<(), String> {
        self.spec.validate()?;
        let shapes = self.spec.layer_shapes();
        if shapes.len() != self.layers.len() {
            return Err(format!("expected {} layers, found {}", shapes.len(), self.layers.len()));
        }
        for (index, ((fan_in, fan_out), layer)) in shapes.iter().zip(&self.layers).enumerate() {
            if layer.weight.len() != fan_in * fan_out || layer.bias.len() != *fan_out {
                return Err(format!("layer {index}: expected a {fan_out}×{fan_in} weight and {fan_out} biases"));
            }
            if layer.weight.iter().chain(&layer.bias).any(|v| !v.is_finite()) {
                return Err(format!("layer {index} holds NaN or infinite values"));
            }
        }
        let features = self.spec.num_features();
        if self.feature_shift.len() != features || self.feature_scale.len() != features {
            return Err(format!("feature standardisation must have {features} entries"));
        }
        if self.feature_shift.iter().any(|v| !v.is_finite())
            || self.feature_scale.iter().any(|v| !(v.is_finite() && *v > 0.0))
        {
            return Err("feature standardisation holds invalid values".into());
        }
        Ok(())
    }

    /// The edited values of `rows` raw stacks (`rows × P`, one colour channel each).
    pub fn apply_rows(&self, stacks: &[f32]) -> Vec<f32> {
        let p = self.spec.num_features();
        let rows = stacks.len() / p;
        let mut out = vec![0.0_f32; rows];
        const BLOCK: usize = 256;
        stacks.par_chunks(BLOCK * p).zip(out.par_chunks_mut(BLOCK)).for_each_init(
            || (vec![0.0_f32; BLOCK * self.spec.width.max(p)], vec![0.0_f32; BLOCK * self.spec.width.max(p)]),
            |(a, b), (block, out_block)| {
                let n = block.len() / p;
                for (row, dst) in block.chunks_exact(p).zip(a.chunks_exact_mut(p)) {
                    for (k, d) in dst.iter_mut().enumerate() {
                        *d = (row[k] - self.feature_shift[k]) / self.feature_scale[k];
                    }
                }
                let (mut current, mut next) = (a, b);
                let shapes = self.spec.layer_shapes();
                let last = shapes.len() - 1;
                for (index, ((fan_in, fan_out), layer)) in shapes.into_iter().zip(&self.layers).enumerate() {
                    matmul(
                        MatMut::from_row_major_slice_mut(&mut next[..n * fan_out], n, fan_out),
                        Accum::Replace,
                        MatRef::from_row_major_slice(&current[..n * fan_in], n, fan_in),
                        MatRef::from_row_major_slice(&layer.weight, fan_out, fan_in).transpose(),
                        1.0,
                        Par::Seq,
                    );
                    for row in next[..n * fan_out].chunks_exact_mut(fan_out) {
                        for (v, b) in row.iter_mut().zip(&layer.bias) {
                            *v += b;
                            if index != last {
                                *v = v.max(0.0);
                            }
                        }
                    }
                    std::mem::swap(&mut current, &mut next);
                }
                for ((o, &v), row) in out_block.iter_mut().zip(&current[..n]).zip(block.chunks_exact(p)) {
                    *o = if self.spec.residual { row[0] + v } else { v };
                }
            },
        );
        out
    }

    /// Saves as safetensors: `layers.{i}.weight`/`bias`, `features.shift`, `features.scale`, and
    /// the spec as JSON under `sparsefield.insp`.
    pub fn save(&self, path: &Path) -> Result<(), WeightsFileError> {
        let spec = serde_json::to_string(&self.spec)
            .map_err(|e| WeightsFileError::Format { path: path.to_owned(), reason: e.to_string() })?;
        let mut tensors = layer_tensors(&self.spec.layer_shapes(), &self.layers);
        tensors.push(("features.shift".into(), vec![self.feature_shift.len()], &self.feature_shift));
        tensors.push(("features.scale".into(), vec![self.feature_scale.len()], &self.feature_scale));
        write_f32_safetensors(path, &tensors, HashMap::from([(SPEC_KEY.to_owned(), spec)]))
    }

    /// Loads what [`OperatorWeights::save`] wrote, checking every shape.
    pub fn load(path: &Path) -> Result<Self, WeightsFileError> {
        let bytes = crate::files::read_capped(path, crate::files::SMALL_WEIGHTS)
            .map_err(|source| WeightsFileError::Read { path: path.to_owned(), source })?;
        Self::from_safetensors_bytes(&bytes, path)
    }

    /// Parses an operator file held in memory; `path` is used in messages.
    pub fn from_safetensors_bytes(bytes: &[u8], path: &Path) -> Result<Self, WeightsFileError> {
        let format_err = |reason: String| WeightsFileError::Format { path: path.to_owned(), reason };
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| format_err(format!("not a safetensors file ({e})")))?;
        let Some(spec_json) = header.metadata().as_ref().and_then(|m| m.get(SPEC_KEY)) else {
            let hint = if header.metadata().as_ref().is_some_and(|m| m.contains_key("sparsefield.siren")) {
                "this is an INR, not an operator; pass it as the INR to edit"
            } else {
                "this file was not written by SparseField's INR edit"
            };
            return Err(format_err(format!("no `{SPEC_KEY}` entry in the metadata; {hint}")));
        };
        let spec: OperatorSpec =
            serde_json::from_str(spec_json).map_err(|e| format_err(format!("bad `{SPEC_KEY}` metadata: {e}")))?;
        spec.validate().map_err(format_err)?;
        let tensors = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| format_err(format!("not a safetensors file ({e})")))?;
        let layers = read_layers(&tensors, &spec.layer_shapes(), path)?;
        let features = spec.num_features();
        let weights = Self {
            feature_shift: read_f32_tensor(&tensors, "features.shift", &[features], path)?,
            feature_scale: read_f32_tensor(&tensors, "features.scale", &[features], path)?,
            spec,
            layers,
        };
        weights.validate().map_err(format_err)?;
        Ok(weights)
    }
}

/// Renders the edit of `inr` by `operator` at `width × height` (clamped to [0, 1]) in bands,
/// reporting rows done through `on_progress`; `None` when `control` is cancelled.
pub fn render_edit(
    operator: &OperatorWeights,
    inr: &SirenWeights,
    width: u32,
    height: u32,
    control: &RunControl,
    on_progress: &mut dyn FnMut(u32),
) -> Result<Option<ImageData>, InrError> {
    if width == 0 || height == 0 || width > 8192 || height > 8192 {
        return Err(InrError::Config(format!("edits render up to 8192×8192, got {width}×{height}")));
    }
    operator.validate().map_err(InrError::Config)?;
    let partials = operator.spec.partials()?;
    let channels = inr.config.out_features;
    let rows_per_band = (u32::try_from(APPLY_CHUNK_POINTS).unwrap_or(u32::MAX) / width).max(1);
    let mut pixels = Vec::with_capacity(width as usize * height as usize * channels);
    let mut row = 0;
    while row < height {
        if !control.checkpoint() {
            return Ok(None);
        }
        let rows = rows_per_band.min(height - row);
        let coords: Vec<f32> = (row..row + rows)
            .flat_map(|j| (0..width).flat_map(move |i| [pixel_centre(i, width), pixel_centre(j, height)]))
            .collect();
        let stacks = taylor::derivative_stack(inr, &partials, &coords)?;
        pixels.extend(operator.apply_rows(&stacks).into_iter().map(|v| v.clamp(0.0, 1.0)));
        row += rows;
        on_progress(row);
    }
    Ok(Some(ImageData::new(width, height, channels, pixels)?))
}
