//! Training a field on a data set (nerfstudio's trainer): random pixel batches from all training
//! views, stratified marching through the occupancy grid, compositing over a random background
//! for RGBA data, MSE, Adam with an exponential learning-rate schedule, occupancy updates from the
//! field. Evaluation renders the test views and scores PSNR and SSIM.

use std::sync::Arc;
use std::time::Instant;

use std::sync::Mutex;

use candle_core::{Device, Tensor, Var};
use glam::Vec3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use crate::optim::FlatAdam;

use super::camera::{Ray, SceneBox};
use super::dataset::{Dataset, View};
use super::field::{FieldConfig, FieldWeights, SH_DIM, sh_encode};
use super::field_op::{FieldOp, INPUT_DIM, Workspace};
use super::render::{RenderOutput, render_camera};
use super::sampler::{MarchSettings, OccupancyGrid, march};
use super::volume::{CompositeOp, PackedSamples};
use crate::control::{Metrics, RunControl, RunEvent};
use crate::metrics;
use crate::train_loop::{self, Schedule, Steps, Trained};

#[derive(Debug, thiserror::Error)]
pub enum NerfError {
    #[error("invalid settings: {0}")]
    Config(String),
    #[error("computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("training diverged at step {step} (loss {loss}); lower the learning rate")]
    Diverged { step: u64, loss: f64 },
    #[error(transparent)]
    Checkpoint(#[from] super::checkpoint::CheckpointError),
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub steps: u64,
    pub seed: u64,
    pub field: FieldConfig,
    /// Adam learning rate at the start; it decays exponentially to `lr · lr_final_ratio`.
    pub learning_rate: f64,
    pub lr_final_ratio: f64,
    /// Samples per batch the ray count adapts to (instant-ngp's target batch).
    pub target_samples_per_batch: usize,
    pub max_rays_per_batch: usize,
    /// Samples across the scene box's diagonal.
    pub march_steps: u32,
    pub occupancy_resolution: u32,
    pub occupancy_update_every: u64,
    /// Composite RGBA data over a random colour per ray while training (so the field learns
    /// transparency instead of painting the background into the scene).
    pub random_background: bool,
    pub snapshot_interval_secs: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 2000,
            seed: 0,
            field: FieldConfig::default(),
            learning_rate: 1e-2,
            lr_final_ratio: 0.1,
            target_samples_per_batch: 1 << 16,
            max_rays_per_batch: 4096,
            march_steps: 256,
            occupancy_resolution: 64,
            occupancy_update_every: 16,
            random_background: true,
            snapshot_interval_secs: 1.0,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), NerfError> {
        self.field.validate().map_err(NerfError::Config)?;
        if self.steps == 0 {
            return Err(NerfError::Config("steps must be at least 1".into()));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return Err(NerfError::Config(format!("learning rate must be in (0, 1), got {}", self.learning_rate)));
        }
        if !(self.lr_final_ratio.is_finite() && self.lr_final_ratio > 0.0 && self.lr_final_ratio <= 1.0) {
            return Err(NerfError::Config(format!(
                "final learning-rate ratio must be in (0, 1], got {}",
                self.lr_final_ratio
            )));
        }
        if !(64..=4096).contains(&self.march_steps) {
            return Err(NerfError::Config(format!("march steps must be 64–4096, got {}", self.march_steps)));
        }
        if !(8..=256).contains(&self.occupancy_resolution) {
            return Err(NerfError::Config(format!(
                "occupancy resolution must be 8–256, got {}",
                self.occupancy_resolution
            )));
        }
        if self.max_rays_per_batch == 0 || self.target_samples_per_batch == 0 || self.occupancy_update_every == 0 {
            return Err(NerfError::Config("batch sizes and the occupancy interval must be at least 1".into()));
        }
        Ok(())
    }

    pub fn march_settings(&self, scene_box: &SceneBox) -> MarchSettings {
        MarchSettings::for_box(scene_box, self.march_steps)
    }

    /// The density threshold of the occupancy grid: a sample of that density absorbs 1% of the
    /// light over one step.
    pub fn occupancy_threshold(&self, scene_box: &SceneBox) -> f32 {
        0.01 / self.march_settings(scene_box).step
    }
}

/// Everything a renderer needs from a trained (or training) field. Shared read-only.
#[derive(Clone, Debug)]
pub struct NerfSnapshot {
    pub weights: Arc<FieldWeights>,
    pub occupancy: Arc<OccupancyGrid>,
    pub march: MarchSettings,
    pub background: Vec3,
    pub step: u64,
}

/// One step's figures.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: u64,
    pub loss: f64,
    /// PSNR of the batch (training pixels).
    pub psnr_db: f64,
    pub num_rays: usize,
    pub num_samples: usize,
    pub elapsed_secs: f64,
}

/// Test-view scores.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    pub psnr_db: f64,
    pub ssim: f64,
    pub per_view_psnr_db: Vec<f64>,
    pub per_view_ssim: Vec<f64>,
}

#[derive(Clone, Debug)]
pub struct TrainSummary {
    pub snapshot: NerfSnapshot,
    pub steps_done: u64,
    pub cancelled: bool,
    pub seconds: f64,
    pub history: Vec<StepRecord>,
}

/// Owns the model, optimizer and sampler state; one call to [`Trainer::step`] is one batch.
pub struct Trainer {
    cfg: TrainConfig,
    dataset: Arc<Dataset>,
    /// The current weights; `params` is their flat copy that training updates.
    weights: FieldWeights,
    params: Vec<f32>,
    optimizer: FlatAdam,
    workspace: Arc<Mutex<Workspace>>,
    occupancy: OccupancyGrid,
    march: MarchSettings,
    rng: ChaCha8Rng,
    /// Start of each training view's pixels in the concatenation of all of them.
    view_starts: Vec<usize>,
    rays_per_batch: usize,
    step: u64,
    /// The step this run started from (a resumed checkpoint's), for the learning-rate schedule.
    first_step: u64,
    /// Print each step's phase times (`SPARSEFIELD_PROFILE` set).
    profile: bool,
}

impl Trainer {
    pub fn new(dataset: Arc<Dataset>, cfg: &TrainConfig, init: Option<&NerfSnapshot>) -> Result<Self, NerfError> {
        cfg.validate()?;
        if dataset.train.is_empty() {
            return Err(NerfError::Config(format!("data set {} has no training views", dataset.name)));
        }
        let mut weights = FieldWeights::init(cfg.field, cfg.seed);
        let march = cfg.march_settings(&dataset.scene_box);
        let mut occupancy = OccupancyGrid::new(
            cfg.occupancy_resolution,
            dataset.scene_box,
            cfg.occupancy_threshold(&dataset.scene_box),
        );
        let mut step = 0;
        if let Some(init) = init {
            if init.weights.config != cfg.field {
                return Err(NerfError::Config(
                    "the checkpoint's field configuration differs from the training settings".into(),
                ));
            }
            weights = (*init.weights).clone();
            if init.occupancy.resolution == occupancy.resolution && init.occupancy.scene_box == dataset.scene_box {
                occupancy = (*init.occupancy).clone();
            }
            step = init.step;
        }
        let params = weights.flatten();
        let optimizer = FlatAdam::new(params.len(), 0.9, 0.99, 1e-15);
        let mut view_starts = Vec::with_capacity(dataset.train.len() + 1);
        let mut total = 0;
        for view in &dataset.train {
            view_starts.push(total);
            total += view.rgba.len();
        }
        view_starts.push(total);
        let rays_per_batch = (cfg.target_samples_per_batch / 64).clamp(64, cfg.max_rays_per_batch);
        Ok(Self {
            cfg: *cfg,
            dataset,
            weights,
            params,
            optimizer,
            workspace: Arc::new(Mutex::new(Workspace::default())),
            occupancy,
            march,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x4E_E7F),
            view_starts,
            rays_per_batch,
            step,
            first_step: step,
            profile: std::env::var_os("SPARSEFIELD_PROFILE").is_some(),
        })
    }

    pub fn step_count(&self) -> u64 {
        self.step
    }

    pub fn occupancy(&self) -> &OccupancyGrid {
        &self.occupancy
    }

    /// The current weights (brought up to date with the flat parameters).
    pub fn weights(&mut self) -> &FieldWeights {
        self.weights.assign_flat(&self.params);
        &self.weights
    }

    pub fn snapshot(&mut self) -> Result<NerfSnapshot, NerfError> {
        Ok(NerfSnapshot {
            weights: Arc::new(self.weights().clone()),
            occupancy: Arc::new(self.occupancy.clone()),
            march: self.march,
            background: self.dataset.background,
            step: self.step,
        })
    }

    /// Draws a batch: rays, their target colours and backgrounds.
    fn batch(&mut self) -> (Vec<Ray>, Vec<f32>, Vec<f32>) {
        let n = self.rays_per_batch;
        let total = self.view_starts[self.view_starts.len() - 1];
        let mut rays = Vec::with_capacity(n);
        let mut targets = Vec::with_capacity(3 * n);
        let mut backgrounds = Vec::with_capacity(3 * n);
        for _ in 0..n {
            let k = self.rng.random_range(0..total);
            let v = self.view_starts.partition_point(|&s| s <= k) - 1;
            let view: &View = &self.dataset.train[v];
            let pixel = k - self.view_starts[v];
            let width = view.camera.width as usize;
            #[allow(clippy::cast_possible_truncation)]
            let (i, j) = ((pixel % width) as u32, (pixel / width) as u32);
            rays.push(view.camera.pixel_ray(i, j));
            let background = if self.dataset.has_alpha && self.cfg.random_background {
                Vec3::new(self.rng.random(), self.rng.random(), self.rng.random())
            } else {
                self.dataset.background
            };
            let target = view.composited(pixel, background);
            targets.extend_from_slice(&[target.x, target.y, target.z]);
            backgrounds.extend_from_slice(&[background.x, background.y, background.z]);
        }
        (rays, targets, backgrounds)
    }

    /// One optimization step; returns its figures.
    pub fn step(&mut self) -> Result<StepRecord, NerfError> {
        let start = Instant::now();
        self.step += 1;
        #[allow(clippy::cast_precision_loss)]
        let progress = ((self.step - self.first_step) as f64 / self.cfg.steps as f64).min(1.0);
        #[allow(clippy::cast_possible_truncation)]
        let lr = (self.cfg.learning_rate * self.cfg.lr_final_ratio.powf(progress)) as f32;

        let t_phase = Instant::now();
        let (rays, targets, backgrounds) = self.batch();
        let jitter: Vec<f32> = (0..rays.len()).map(|_| self.rng.random()).collect();
        let samples = Arc::new(march(&rays, &jitter, &self.occupancy, &self.march));
        let num_rays = rays.len();
        let num_samples = samples.num_samples();
        let t_march = t_phase.elapsed().as_secs_f64();
        let device = Device::Cpu;
        let targets = Tensor::from_vec(targets, (num_rays, 3), &device)?;
        let backgrounds = Tensor::from_vec(backgrounds, (num_rays, 3), &device)?;
        let mut param_var = None;
        let loss = if num_samples == 0 {
            // Nothing occupied on these rays: the prediction is the background, nothing to learn.
            (&backgrounds - &targets)?.sqr()?.mean_all()?
        } else {
            let params = Var::from_slice(&self.params, self.params.len(), &device)?;
            let op = FieldOp::training(self.cfg.field, self.weights.grid.clone(), self.workspace.clone(), self.step);
            let RenderedRays { colour, opacity, .. } =
                render_samples(&samples, &self.occupancy.scene_box, &params, op, false)?;
            param_var = Some(params);
            let prediction = (colour + backgrounds.broadcast_mul(&(1.0 - opacity)?)?)?;
            (prediction - &targets)?.sqr()?.mean_all()?
        };
        let loss_value = f64::from(loss.to_scalar::<f32>()?);
        let t_forward = t_phase.elapsed().as_secs_f64();
        if !loss_value.is_finite() {
            return Err(NerfError::Diverged { step: self.step, loss: loss_value });
        }
        if let Some(params) = param_var {
            let grads = loss.backward()?;
            let t_backward = t_phase.elapsed().as_secs_f64();
            let grad = grads
                .get(params.as_tensor())
                .ok_or_else(|| NerfError::Config("no gradient reached the field's parameters".into()))?
                .to_vec1::<f32>()?;
            self.optimizer.step(&mut self.params, &grad, lr);
            let t_adam = t_phase.elapsed().as_secs_f64();
            if self.profile {
                eprintln!(
                    "march {:.1} forward {:.1} backward {:.1} adam {:.1} ms",
                    1e3 * t_march,
                    1e3 * (t_forward - t_march),
                    1e3 * (t_backward - t_forward),
                    1e3 * (t_adam - t_backward)
                );
            }
        }
        // Adapt the ray count so that batches hold about the target number of samples.
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        if num_samples > 0 {
            let per_ray = num_samples as f64 / num_rays as f64;
            let wanted = (self.cfg.target_samples_per_batch as f64 / per_ray.max(1.0)) as usize;
            self.rays_per_batch = wanted.clamp(64, self.cfg.max_rays_per_batch);
        }
        if self.step.is_multiple_of(self.cfg.occupancy_update_every) {
            self.update_occupancy()?;
        }
        Ok(StepRecord {
            step: self.step,
            loss: loss_value,
            psnr_db: metrics::psnr_from_mse(loss_value),
            num_rays,
            num_samples,
            elapsed_secs: start.elapsed().as_secs_f64(),
        })
    }

    /// Re-estimates the occupancy grid from the current field.
    pub fn update_occupancy(&mut self) -> Result<(), NerfError> {
        self.weights.assign_flat(&self.params);
        let weights = &self.weights;
        let scene_box = self.occupancy.scene_box;
        // Early on, forget fast so that the all-occupied start clears within a few updates.
        let decay = if self.step < 256 { 0.5 } else { 0.95 };
        self.occupancy.update(&mut self.rng, decay, |points| weights.density(&scene_box.normalize_points(points)));
        Ok(())
    }
}

impl Steps for Trainer {
    type Record = StepRecord;
    type Snapshot = NerfSnapshot;
    type Error = NerfError;

    fn step(&mut self, _step: u64) -> Result<StepRecord, NerfError> {
        Trainer::step(self)
    }

    fn stamp(&self, record: &mut StepRecord, elapsed_secs: f64) {
        record.elapsed_secs = elapsed_secs;
    }

    #[allow(clippy::cast_precision_loss)]
    fn metrics(&self, record: &StepRecord) -> Metrics {
        vec![
            ("loss", record.loss),
            ("psnr_db", record.psnr_db),
            ("rays", record.num_rays as f64),
            ("samples_per_ray", record.num_samples as f64 / record.num_rays.max(1) as f64),
            ("occupancy", f64::from(self.occupancy().occupancy())),
        ]
    }

    fn snapshot(&mut self, _step: u64) -> Result<NerfSnapshot, NerfError> {
        Trainer::snapshot(self)
    }
}

/// Field inputs per sample: the position normalized to the scene box, then the SH encoding of
/// its ray's direction.
pub fn field_inputs(samples: &super::volume::PackedSamples, scene_box: &SceneBox) -> Vec<f32> {
    let mut inputs = vec![0.0_f32; samples.num_samples() * INPUT_DIM];
    inputs
        .par_chunks_mut(INPUT_DIM * 1024)
        .zip(samples.positions.par_chunks(3 * 1024).zip(samples.directions.par_chunks(3 * 1024)))
        .for_each(|(out, (p, d))| {
            for ((o, p), d) in out.chunks_exact_mut(INPUT_DIM).zip(p.chunks_exact(3)).zip(d.chunks_exact(3)) {
                let u = scene_box.normalize(Vec3::new(p[0], p[1], p[2]));
                o[..3].copy_from_slice(&[u.x, u.y, u.z]);
                sh_encode([d[0], d[1], d[2]], &mut o[3..3 + SH_DIM]);
            }
        });
    inputs
}

/// What [`render_samples`] gives per ray, as tensors that carry the field's gradient.
pub struct RenderedRays {
    /// Composited colour over black, `rays × 3`.
    pub colour: Tensor,
    /// Accumulated opacity, `rays × 1`.
    pub opacity: Tensor,
    /// Σ weight · distance over each ray's samples, `rays × 1` (not divided by the opacity), when
    /// asked for.
    pub depth: Option<Tensor>,
}

/// The differentiable middle of every radiance-field loss: marched `samples` → the field `op`
/// with flat parameters `params` → compositing. The caller owns the rays (which pixels, which
/// cameras, what jitter) and the loss on the result: the NeRF trainer's photometric loss, the
/// lift's reference, mirrored and silhouette terms, a decoder's loss on rendered patches.
pub fn render_samples(
    samples: &Arc<PackedSamples>,
    scene_box: &SceneBox,
    params: &Var,
    op: FieldOp,
    with_depth: bool,
) -> candle_core::Result<RenderedRays> {
    let device = params.as_tensor().device();
    let inputs = Tensor::from_vec(field_inputs(samples, scene_box), (samples.num_samples(), INPUT_DIM), device)?;
    let field = inputs.apply_op2(params.as_tensor(), op)?;
    let sigma = field.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?;
    let rgb = field.narrow(1, 1, 3)?.contiguous()?;
    let composite =
        if with_depth { CompositeOp::with_depth(Arc::clone(samples)) } else { CompositeOp::new(Arc::clone(samples)) };
    let out = sigma.apply_op2(&rgb, composite)?;
    Ok(RenderedRays {
        colour: out.narrow(1, 0, 3)?,
        opacity: out.narrow(1, 3, 1)?,
        depth: if with_depth { Some(out.narrow(1, 4, 1)?) } else { None },
    })
}

/// Trains for `cfg.steps` steps (continuing from `init` when given), reporting progress and
/// snapshots; cancellation returns what was learned so far.
pub fn train(
    dataset: Arc<Dataset>,
    cfg: &TrainConfig,
    init: Option<&NerfSnapshot>,
    control: &RunControl,
    on_event: &mut dyn FnMut(RunEvent<NerfSnapshot>),
) -> Result<TrainSummary, NerfError> {
    let mut trainer = Trainer::new(dataset, cfg, init)?;
    let schedule = Schedule { steps: cfg.steps, snapshot_interval_secs: cfg.snapshot_interval_secs };
    let Trained { history, steps_done, cancelled, seconds, snapshot } =
        train_loop::train(&mut trainer, schedule, control, on_event)?;
    Ok(TrainSummary { snapshot, steps_done, cancelled, seconds, history })
}

/// Renders `views` with `snapshot` and scores them against the images composited over the
/// snapshot's background. Returns the scores and the renders.
pub fn evaluate(snapshot: &NerfSnapshot, views: &[View], control: &RunControl) -> (EvalResult, Vec<RenderOutput>) {
    let mut result = EvalResult::default();
    let mut renders = Vec::with_capacity(views.len());
    for view in views {
        if control.is_cancelled() {
            break;
        }
        let render =
            render_camera(&snapshot.weights, &snapshot.occupancy, &snapshot.march, &view.camera, snapshot.background);
        let target = view.composited_image(snapshot.background);
        let image = render.rgb_image();
        result.per_view_psnr_db.push(metrics::psnr_db(&image, &target));
        result.per_view_ssim.push(metrics::ssim(&image, &target));
        renders.push(render);
    }
    #[allow(clippy::cast_precision_loss)]
    let n = result.per_view_psnr_db.len().max(1) as f64;
    // PSNR of the mean MSE over views (as nerfstudio reports per-image means, both are common;
    // the mean of per-view PSNR is used here).
    result.psnr_db = result.per_view_psnr_db.iter().sum::<f64>() / n;
    result.ssim = result.per_view_ssim.iter().sum::<f64>() / n;
    (result, renders)
}
