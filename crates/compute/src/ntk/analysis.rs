//! One NTK study as the lab and the command line run it: the network's settings, its spectrum
//! beside the limit's, and training of the network (and of the dense one for comparison).

use serde::{Deserialize, Serialize};

use super::NtkError;
use super::data::{Dataset, NtkData};
use super::kernel::{HiddenLayer, eigenvalues, limit_kernel};
use super::sweep::{ActivePoint, DEFAULT_BIASES, active_vs_bias};
use super::train::{TrainPoint, TrainRun, train};
use crate::control::RunControl;

/// Everything that defines a study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NtkConfig {
    pub data: NtkData,
    /// Hidden width m.
    pub width: usize,
    /// Bias at initialization B.
    pub bias: f64,
    /// Fraction of hidden weights pruned at random (the mask is fixed during training).
    pub prune: f64,
    pub seed: u64,
    /// Gradient-descent steps.
    pub steps: usize,
    /// The step size as a multiple of 1/λ_max of the network's own Gram matrix (below 2 is stable
    /// in the kernel regime).
    pub step_scale: f64,
    /// Also train the dense network (B = 0, nothing pruned) on the same data for comparison.
    pub compare_dense: bool,
}

impl Default for NtkConfig {
    fn default() -> Self {
        Self {
            data: NtkData::default(),
            width: 1024,
            bias: 0.0,
            prune: 0.0,
            seed: 0,
            steps: 1000,
            step_scale: 1.0,
            compare_dense: true,
        }
    }
}

/// Largest bias the lab offers.
pub const MAX_BIAS: f64 = 4.0;

impl NtkConfig {
    pub fn validate(&self) -> Result<(), NtkError> {
        if !(1..=1_000_000).contains(&self.width) {
            return Err(NtkError::Config(format!("the width must be 1 to 1000000 (got {})", self.width)));
        }
        if !self.bias.is_finite() || !(0.0..1.0).contains(&self.prune) {
            return Err(NtkError::Config(format!(
                "the bias must be finite and the pruning fraction in [0, 1) (got B = {}, p = {})",
                self.bias, self.prune
            )));
        }
        if self.steps > 1_000_000 || !(self.step_scale > 0.0 && self.step_scale < 2.0) {
            return Err(NtkError::Config(format!(
                "steps must be at most 1000000 and the step scale in (0, 2), where gradient descent on the \
                 linearized network converges (got {} and {})",
                self.steps, self.step_scale
            )));
        }
        Ok(())
    }

    /// Refuses sizes whose buffers (n × m activations, m × d weights) would not fit in memory.
    pub fn check_size(&self, n: usize, d: usize) -> Result<(), NtkError> {
        check_size(n, d, self.width)
    }

    /// Whether training compares with the dense network (asked for, and this one is not dense).
    pub fn trains_dense(&self) -> bool {
        self.compare_dense && (self.bias != 0.0 || self.prune > 0.0)
    }

    /// The settings the dense comparison depends on (its run is the same for every bias and
    /// pruning fraction).
    pub fn dense_key(&self) -> NtkConfig {
        NtkConfig { bias: 0.0, prune: 0.0, compare_dense: true, ..self.clone() }
    }

    /// The settings that change the points.
    pub fn data_key(&self) -> (NtkData, u64) {
        (self.data.clone(), self.seed)
    }

    /// The network at initialization.
    pub fn layer(&self, dim: usize) -> Result<HiddenLayer, NtkError> {
        HiddenLayer::new(self.width, dim, self.bias, self.prune, self.seed)
    }
}

/// Most entries of the `n × m` activation buffers (8 bytes each).
pub const MAX_ACTIVATIONS: usize = 1 << 30;

/// Most entries of the `m × d` first-layer weights (8 bytes each).
pub const MAX_WEIGHTS: usize = 1 << 27;

/// Refuses `n` points in `d` dimensions with width `m` when the `n × m` activations or the `m × d`
/// weights would not fit in memory: checked before anything of that size is allocated.
pub fn check_size(n: usize, d: usize, width: usize) -> Result<(), NtkError> {
    if d.saturating_mul(width) > MAX_WEIGHTS {
        return Err(NtkError::Config(format!(
            "width {width} × dimension {d} needs {} GB for the first layer's weights alone (the most is {} GB); \
             use a smaller width or fewer dimensions",
            d.saturating_mul(width) / (1 << 27),
            MAX_WEIGHTS / (1 << 27)
        )));
    }
    if n.saturating_mul(width) > MAX_ACTIVATIONS {
        return Err(NtkError::Config(format!(
            "{n} points × width {width} needs {} GB for the activations alone; use fewer points or a smaller width",
            n.saturating_mul(width) / (1 << 27)
        )));
    }
    Ok(())
}

/// The network's Gram matrix and spectrum beside the limit's.
#[derive(Clone, Debug, PartialEq)]
pub struct Spectrum {
    pub n: usize,
    /// Empirical Gram matrix, `n × n` row-major.
    pub gram: Vec<f64>,
    /// Its eigenvalues, ascending.
    pub eigenvalues: Vec<f64>,
    /// Eigenvalues of the m → ∞ kernel of the unpruned network at the same bias, ascending.
    pub limit_eigenvalues: Vec<f64>,
    /// Fraction of (point, neuron) pairs active.
    pub active_fraction: f64,
    /// Active fraction against the bias with these weights, and `1 − Φ(B)`.
    pub active_curve: Vec<ActivePoint>,
    pub seconds: f64,
}

impl Spectrum {
    pub fn lambda_min(&self) -> f64 {
        self.eigenvalues.first().copied().unwrap_or(f64::NAN)
    }

    pub fn lambda_max(&self) -> f64 {
        self.eigenvalues.last().copied().unwrap_or(f64::NAN)
    }

    pub fn limit_lambda_min(&self) -> f64 {
        self.limit_eigenvalues.first().copied().unwrap_or(f64::NAN)
    }
}

/// The spectrum of `config`'s network on `data`.
pub fn spectrum(config: &NtkConfig, data: &Dataset) -> Result<Spectrum, NtkError> {
    spectrum_with(config, data, &RunControl::new())?.ok_or(NtkError::Config("cancelled".into()))
}

/// [`spectrum`], checking `control` between its stages; `None` when cancelled.
pub fn spectrum_with(config: &NtkConfig, data: &Dataset, control: &RunControl) -> Result<Option<Spectrum>, NtkError> {
    config.validate()?;
    config.check_size(data.points.n, data.points.d)?;
    let start = std::time::Instant::now();
    let points = &data.points;
    let layer = config.layer(points.d)?;
    let gram = layer.empirical_kernel(points)?;
    if !control.checkpoint() {
        return Ok(None);
    }
    let values = eigenvalues(&gram, points.n)?;
    if !control.checkpoint() {
        return Ok(None);
    }
    let limit = limit_kernel(points, config.bias);
    if !control.checkpoint() {
        return Ok(None);
    }
    let limit_eigenvalues = eigenvalues(&limit, points.n)?;
    let mut biases: Vec<f64> = (0..=32).map(|k| f64::from(k) * MAX_BIAS / 32.0).collect();
    biases.extend(DEFAULT_BIASES);
    biases.push(config.bias);
    biases.sort_by(f64::total_cmp);
    biases.dedup();
    Ok(Some(Spectrum {
        n: points.n,
        active_fraction: layer.active_fraction(points),
        active_curve: active_vs_bias(&layer, points, &biases),
        gram,
        eigenvalues: values,
        limit_eigenvalues,
        seconds: start.elapsed().as_secs_f64(),
    }))
}

/// Which network a training step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The network of the settings.
    Chosen,
    /// The dense comparison (B = 0, nothing pruned).
    Dense,
}

/// Training of the chosen network and, when asked, of the dense one.
#[derive(Clone, Debug, PartialEq)]
pub struct Training {
    pub chosen: TrainRun,
    pub dense: Option<TrainRun>,
}

/// Trains `config`'s network (whose spectrum is `spectrum`) and, with `compare_dense`, the dense
/// network on the same data (unless the chosen one is dense already). `known_dense` is a dense
/// run of the same [`NtkConfig::dense_key`], used instead of training it again. `None` when
/// cancelled.
pub fn training(
    config: &NtkConfig,
    data: &Dataset,
    spectrum: &Spectrum,
    known_dense: Option<&TrainRun>,
    control: &RunControl,
    on_point: &mut dyn FnMut(Which, &TrainPoint),
) -> Result<Option<Training>, NtkError> {
    config.validate()?;
    config.check_size(data.points.n, data.points.d)?;
    let layer = config.layer(data.points.d)?;
    let eta = config.step_scale / spectrum.lambda_max().max(f64::MIN_POSITIVE);
    let chosen = train(&layer, data, &spectrum.gram, spectrum.lambda_min(), eta, config.steps, control, &mut |p| {
        on_point(Which::Chosen, p);
    })?;
    if chosen.cancelled {
        return Ok(None);
    }
    let dense = if !config.trains_dense() {
        None
    } else if let Some(run) = known_dense {
        Some(run.clone())
    } else {
        let dense_layer = config.dense_key().layer(data.points.d)?;
        let gram = dense_layer.empirical_kernel(&data.points)?;
        let values = eigenvalues(&gram, data.points.n)?;
        let (lambda_min, lambda_max) = (values[0], values[values.len() - 1]);
        let eta = config.step_scale / lambda_max.max(f64::MIN_POSITIVE);
        let run = train(&dense_layer, data, &gram, lambda_min, eta, config.steps, control, &mut |p| {
            on_point(Which::Dense, p);
        })?;
        if run.cancelled {
            return Ok(None);
        }
        Some(run)
    };
    Ok(Some(Training { chosen, dense }))
}
