//! Fitting a SIREN to an image with Adam: the function behind the lab's Train button, the
//! `inr fit` command and the benchmark.

use candle_core::{Module, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{DisplayScales, InrError, Siren, SirenConfig, SirenWeights, display_scales, pixel_coords, reconstruct};
use crate::control::{Metrics, RunControl, RunEvent};
use crate::image_io::ImageData;
use crate::metrics;
use crate::train_loop::{self, Schedule, Steps, Trained};

/// Pixels per step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchMode {
    /// Every pixel, every step.
    Full,
    /// A fresh uniform random sample of this many pixels each step.
    Random { pixels: usize },
}

/// Everything that defines a fit besides the image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    pub width: usize,
    pub hidden_layers: usize,
    pub omega0: f32,
    pub learning_rate: f64,
    pub steps: u64,
    pub batch: BatchMode,
    pub seed: u64,
    /// Seconds between snapshots sent to viewers (0 disables them).
    pub snapshot_interval_secs: f64,
}

impl Default for FitConfig {
    /// The paper's image-fitting setup: 3 hidden layers of 256, ω₀ = 30, Adam at 1e-4.
    fn default() -> Self {
        Self {
            width: 256,
            hidden_layers: 3,
            omega0: 30.0,
            learning_rate: 1e-4,
            steps: 2000,
            batch: BatchMode::Full,
            seed: 0,
            snapshot_interval_secs: 0.5,
        }
    }
}

impl FitConfig {
    pub fn siren_config(&self, channels: usize) -> SirenConfig {
        SirenConfig::image(channels, self.width, self.hidden_layers, self.omega0)
    }

    pub fn validate(&self, channels: usize) -> Result<(), InrError> {
        self.siren_config(channels).validate().map_err(InrError::Config)?;
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return Err(InrError::Config(format!("learning rate must be in (0, 1), got {}", self.learning_rate)));
        }
        if self.steps == 0 {
            return Err(InrError::Config("steps must be at least 1".into()));
        }
        if let BatchMode::Random { pixels } = self.batch
            && pixels == 0
        {
            return Err(InrError::Config("a random batch needs at least 1 pixel".into()));
        }
        Ok(())
    }
}

/// What viewers receive while a fit runs.
#[derive(Clone, Debug)]
pub struct InrSnapshot {
    pub weights: SirenWeights,
    pub step: u64,
    pub scales: DisplayScales,
}

impl InrSnapshot {
    /// Snapshot of a model (copies its weights out).
    pub fn of(model: &Siren, step: u64) -> Result<Self, InrError> {
        Ok(Self { weights: model.to_weights()?, step, scales: display_scales(model)? })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: u64,
    pub loss: f64,
    /// PSNR of the step's batch in [0, 1] pixel units (the whole image in full-batch mode).
    pub psnr_db: f64,
}

/// The outcome of a fit; cancelled fits return what they reached.
#[derive(Clone, Debug)]
pub struct FitSummary {
    pub weights: SirenWeights,
    pub steps_done: u64,
    pub cancelled: bool,
    /// PSNR of the reconstruction (clamped to [0, 1]) against the whole image; for a cancelled
    /// fit, the last step's batch PSNR.
    pub psnr_db: f64,
    pub ms_per_step: f64,
    pub seconds: f64,
    pub history: Vec<StepRecord>,
    pub scales: DisplayScales,
}

/// One model, its optimiser and its data: the training step shared by [`fit`] and the benchmark.
pub struct Trainer {
    model: Siren,
    optimizer: AdamW,
    coords: Tensor,
    targets: Tensor,
    batch: BatchMode,
    rng: ChaCha8Rng,
}

impl Trainer {
    /// Prepares a fit of `image`, starting from `init` when given (its shape must match `cfg`).
    pub fn new(image: &ImageData, cfg: &FitConfig, init: Option<&SirenWeights>) -> Result<Self, InrError> {
        cfg.validate(image.channels)?;
        let siren_config = cfg.siren_config(image.channels);
        let weights = match init {
            Some(w) if w.config == siren_config => w.clone(),
            Some(w) => {
                let (a, b) = (w.config, siren_config);
                return Err(InrError::Config(format!(
                    "the INR is {}×{} with {} outputs (ω₀ {}) but the settings ask for {}×{} with {} outputs (ω₀ {}); \
                     match the settings to continue training it",
                    a.width,
                    a.hidden_layers,
                    a.out_features,
                    a.omega0,
                    b.width,
                    b.hidden_layers,
                    b.out_features,
                    b.omega0
                )));
            }
            None => SirenWeights::init(siren_config, cfg.seed),
        };
        let device = crate::default_device();
        let model = Siren::new(&weights, &device, candle_core::DType::F32)?;
        let optimizer = AdamW::new(
            model.vars(),
            ParamsAdamW { lr: cfg.learning_rate, weight_decay: 0.0, ..ParamsAdamW::default() },
        )?;
        let num_pixels = image.num_pixels();
        let coords = Tensor::from_vec(pixel_coords(image.width, image.height), (num_pixels, 2), &device)?;
        let targets: Vec<f32> = image.pixels.iter().map(|&p| 2.0 * p - 1.0).collect();
        let targets = Tensor::from_vec(targets, (num_pixels, image.channels), &device)?;
        Ok(Self {
            model,
            optimizer,
            coords,
            targets,
            batch: cfg.batch,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5EED_BA7C),
        })
    }

    pub fn model(&self) -> &Siren {
        &self.model
    }

    /// One Adam step on a batch; returns the batch's MSE loss (targets in [-1, 1]).
    pub fn step(&mut self) -> Result<f64, InrError> {
        let (num_pixels, _) = self.coords.dims2()?;
        let (xs, ys) = match self.batch {
            BatchMode::Random { pixels } if pixels < num_pixels => {
                let max_index = u32::try_from(num_pixels).unwrap_or(u32::MAX);
                let idx: Vec<u32> = (0..pixels).map(|_| self.rng.random_range(0..max_index)).collect();
                let idx = Tensor::from_vec(idx, pixels, self.coords.device())?;
                (self.coords.index_select(&idx, 0)?, self.targets.index_select(&idx, 0)?)
            }
            _ => (self.coords.clone(), self.targets.clone()),
        };
        let prediction = self.model.forward(&xs)?;
        let loss = (prediction - ys)?.sqr()?.mean_all()?;
        self.optimizer.backward_step(&loss)?;
        Ok(f64::from(loss.to_scalar::<f32>()?))
    }
}

impl Steps for Trainer {
    type Record = StepRecord;
    type Snapshot = InrSnapshot;
    type Error = InrError;

    fn step(&mut self, step: u64) -> Result<StepRecord, InrError> {
        let loss = Trainer::step(self)?;
        if !loss.is_finite() {
            return Err(InrError::Config(format!(
                "training diverged at step {step} (loss is {loss}); lower the learning rate or ω₀"
            )));
        }
        // Targets span [-1, 1]: the MSE in [0, 1] pixel units is a quarter of the loss.
        Ok(StepRecord { step, loss, psnr_db: metrics::psnr_from_mse(loss / 4.0) })
    }

    fn metrics(&self, record: &StepRecord) -> Metrics {
        vec![("loss", record.loss), ("psnr_db", record.psnr_db)]
    }

    fn snapshot(&mut self, step: u64) -> Result<InrSnapshot, InrError> {
        InrSnapshot::of(self.model(), step)
    }
}

/// Fits a SIREN to `image`, starting from `init` when given (its shape must match `cfg`).
///
/// Reports `Started`, throttled `Progress` (`loss`, `psnr_db`) and `Snapshot`s through `on_event`;
/// stops early, returning what it reached, when `control` is cancelled.
pub fn fit(
    image: &ImageData,
    cfg: &FitConfig,
    init: Option<&SirenWeights>,
    control: &RunControl,
    on_event: &mut dyn FnMut(RunEvent<InrSnapshot>),
) -> Result<FitSummary, InrError> {
    let mut trainer = Trainer::new(image, cfg, init)?;
    let schedule = Schedule { steps: cfg.steps, snapshot_interval_secs: cfg.snapshot_interval_secs };
    let trained = train_loop::train(&mut trainer, schedule, control, on_event)?;
    // A cancelled fit returns at once (the app may be closing): its PSNR is the last step's.
    let psnr_db = if trained.cancelled {
        trained.history.last().map_or(f64::NAN, |r| r.psnr_db)
    } else {
        metrics::psnr_db(&reconstruct(trainer.model(), image.width, image.height)?, image)
    };
    let ms_per_step = trained.ms_per_step();
    let Trained { history, steps_done, cancelled, seconds, snapshot } = trained;
    Ok(FitSummary {
        weights: snapshot.weights,
        steps_done,
        cancelled,
        psnr_db,
        ms_per_step,
        seconds,
        history,
        scales: snapshot.scales,
    })
}
