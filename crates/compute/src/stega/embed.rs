//! StegaNeRF's stage 2: a trained field (stage 1, kept frozen as the reference) is fine-tuned so
//! that every view it renders carries a secret a decoder recovers, while its renders stay close
//! to the reference's.
//!
//! Only appearance moves: the colour MLP is trained, the hash table and the density MLP are not
//! (the field's backward stops at the colour MLP, see [`FieldOp::appearance_only`]), and the
//! occupancy grid is the reference's, so occupancy and depth stay what they were, bit for bit.
//! Each step renders one whole view (a training camera or a random orbit camera) through the
//! NeRF trainer's pieces — the marcher, [`render_samples`], the fused field — twice over the same
//! samples: the marked field with gradients and the reference without. Both views go to the
//! classifier and the decoder (box-averaged to the decoder's side) and the loss of
//! [`super::loss::stega_loss`] trains the colour MLP, the decoder and the classifier together.
//!
//! Adaptive gradient masking: each colour layer's step is scaled by `(e_min / e_g)³` (its mean
//! |weight| against the smallest layer's). Adam divides a gradient by its own running scale, so a
//! constant factor on the gradient would cancel; the factor scales the layer's learning rate
//! instead, which is what masking the gradient does under plain gradient descent.
//!
//! With augmentation on, half the steps pass both views through a random attack (noise, blur,
//! JPEG, crop, rotation, downscale up to the robustness table's strengths) before the nets see
//! them; the attacks are not differentiable, so their change is added as a constant (the
//! straight-through estimator): the gradient reaches the field as if no attack happened.

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::attacks::{Attack, AttackError};
use super::decoder::{Decoder, DecoderError, Recovered, SecretKind};
use super::loss::{DecoderOutput, LossInputs, LossWeights, masking_factors, stega_loss};
use super::message;
use super::nets::{self, DecoderKind, NetsConfig};
use super::secret::Secret;
use crate::control::{Metrics, RunControl, RunEvent};
use crate::image_io::ImageData;
use crate::metrics;
use crate::nerf::camera::Camera;
use crate::nerf::field::FieldWeights;
use crate::nerf::field_op::{FieldLayout, FieldOp, Workspace};
use crate::nerf::orbit::Orbit;
use crate::nerf::sampler::march;
use crate::nerf::train::{NerfSnapshot, RenderedRays, render_samples};
use crate::optim::FlatAdam;
use crate::train_loop::{self, Schedule, Steps, Trained};

/// Adam's learning rate for the decoder's template (see [`super::nets`]).
pub const TEMPLATE_LR: f64 = 0.05;

/// The render PSNR a step reports at most.
pub const MAX_RENDER_PSNR_DB: f64 = 100.0;

/// The decoder's side for bit secrets (an image secret's side is its own).
pub const BITS_DECODER_SIDE: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("invalid settings: {0}")]
    Config(String),
    #[error("computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("training diverged at step {step} (loss {loss}); lower the learning rates")]
    Diverged { step: u64, loss: f64 },
    #[error(transparent)]
    Decoder(#[from] DecoderError),
    #[error(transparent)]
    Attack(#[from] AttackError),
}

/// Stage 2's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbedConfig {
    pub steps: u64,
    pub seed: u64,
    /// Channels of the decoder's and classifier's first layers.
    pub nets_width: usize,
    /// Views are rendered at about this side while training (a whole multiple of the decoder's).
    pub render_side: u32,
    /// Adam learning rate of the colour MLP (decays ×0.1 over the run), and of the two nets.
    pub field_lr: f64,
    pub nets_lr: f64,
    pub weights: LossWeights,
    /// Adaptive gradient masking of the colour layers.
    pub masking: bool,
    /// Random attacks on half the steps' views (robustness training).
    pub augment: bool,
    /// Share of steps that render a random orbit camera instead of a training camera.
    pub orbit_share: f64,
    /// Let the decoder's terms reach the field too (as in the repository's loss); off, the
    /// field moves only to stay close to stage 1 and to be recognised by the classifier.
    pub decoder_trains_field: bool,
    /// The render term's weight rises geometrically from `weights.render` to this between
    /// [`RAMP_START`] and [`FIELD_STOP`] of the run: the field's signature starts at the
    /// repository's balance, and fidelity is tightened once the classifier has found it (1: no
    /// ramp).
    pub render_weight_end: f64,
    /// Share of the run, at its end, in which the field is frozen and only the decoder and the
    /// classifier learn, on the final field.
    pub nets_only_share: f64,
    pub snapshot_interval_secs: f64,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        Self {
            steps: 600,
            seed: 0,
            nets_width: 16,
            render_side: 128,
            field_lr: 2e-4,
            nets_lr: 2e-3,
            weights: LossWeights::default(),
            masking: true,
            augment: false,
            orbit_share: 0.5,
            decoder_trains_field: false,
            render_weight_end: 40.0,
            nets_only_share: 0.2,
            snapshot_interval_secs: 1.0,
        }
    }
}

/// Share of the run after which the render weight starts rising (see
/// [`EmbedConfig::render_weight_end`]).
pub const RAMP_START: f64 = 0.25;

impl EmbedConfig {
    /// Where the field stops learning: the share of the run before the nets-only tail.
    pub fn field_stop(&self) -> f64 {
        1.0 - self.nets_only_share
    }

    /// The loss weights at `progress` (0–1) of the run.
    pub fn weights_at(&self, progress: f64) -> LossWeights {
        let span = (self.field_stop() - RAMP_START).max(1e-9);
        let t = ((progress - RAMP_START) / span).clamp(0.0, 1.0);
        let ratio = self.render_weight_end / self.weights.render.max(1e-12);
        let mut w = self.weights;
        if self.weights.render > 0.0 {
            w.render *= ratio.powf(t);
        }
        w
    }

    pub fn validate(&self) -> Result<(), EmbedError> {
        let bad = |m: String| Err(EmbedError::Config(m));
        if self.steps == 0 {
            return bad("steps must be at least 1".into());
        }
        if !(4..=128).contains(&self.nets_width) {
            return bad(format!("the nets' width must be 4–128, got {}", self.nets_width));
        }
        if !(8..=512).contains(&self.render_side) {
            return bad(format!("the render side must be 8–512 px, got {}", self.render_side));
        }
        for (name, lr) in [("field", self.field_lr), ("nets", self.nets_lr)] {
            if !(lr.is_finite() && lr > 0.0 && lr < 1.0) {
                return bad(format!("the {name} learning rate must be in (0, 1), got {lr}"));
            }
        }
        if !(self.render_weight_end.is_finite() && self.render_weight_end > 0.0 && self.render_weight_end <= 1e4) {
            return bad(format!("the final render weight must be in (0, 10000], got {}", self.render_weight_end));
        }
        if !(self.nets_only_share.is_finite() && (0.0..=0.9).contains(&self.nets_only_share)) {
            return bad(format!("the nets-only share must be in [0, 0.9], got {}", self.nets_only_share));
        }
        let w = self.weights;
        if ![w.render, w.secret, w.blank, w.class].iter().all(|v| v.is_finite() && *v >= 0.0) {
            return bad("loss weights must be finite and not negative".into());
        }
        if !(0.0..=1.0).contains(&self.orbit_share) {
            return bad(format!("the orbit share must be in [0, 1], got {}", self.orbit_share));
        }
        Ok(())
    }
}

/// The decoder shape that fits `secret`.
pub fn nets_config(secret: &Secret, width: usize) -> Result<NetsConfig, EmbedError> {
    let config = match secret {
        Secret::Image(image) => NetsConfig { side: image.width as usize, width, kind: DecoderKind::Image },
        Secret::Text { bits, .. } | Secret::Bits(bits) => {
            NetsConfig { side: BITS_DECODER_SIDE, width, kind: DecoderKind::Bits(bits.len()) }
        }
    };
    config.validate().map_err(|e| EmbedError::Config(format!("{e} (the secret image's side)")))?;
    Ok(config)
}

fn secret_kind(secret: &Secret) -> SecretKind {
    match secret {
        Secret::Image(_) => SecretKind::Image,
        Secret::Text { .. } => SecretKind::Text,
        Secret::Bits(_) => SecretKind::Bits,
    }
}

/// `camera`'s centred square, `side` pixels across.
pub fn square_camera(camera: &Camera, side: u32) -> Camera {
    #[allow(clippy::cast_precision_loss)]
    let (w, h, side_f) = (camera.width as f32, camera.height as f32, side as f32);
    let square = w.min(h);
    let s = side_f / square;
    Camera {
        width: side,
        height: side,
        fx: camera.fx * s,
        fy: camera.fy * s,
        cx: (camera.cx - 0.5 * (w - square)) * s,
        cy: (camera.cy - 0.5 * (h - square)) * s,
        world_from_camera: camera.world_from_camera,
    }
}

/// Training cameras around `orbit` (for a field without a data set, e.g. a lift result), and
/// test cameras half-way between them and a little higher, so that none is trained on.
pub fn orbit_cameras(orbit: &Orbit, side: u32) -> (Vec<Camera>, Vec<Camera>) {
    const TRAIN: usize = 100;
    const TEST: usize = 20;
    let mut test_orbit = *orbit;
    #[allow(clippy::cast_precision_loss)]
    let half_step = std::f32::consts::PI / TEST as f32;
    test_orbit.azimuth += half_step;
    test_orbit.elevation += 0.1;
    (orbit.turntable(TRAIN, side, side), test_orbit.turntable(TEST, side, side))
}

/// The marked field and its decoder, shared read-only.
#[derive(Clone, Debug)]
pub struct StegaSnapshot {
    pub field: NerfSnapshot,
    pub decoder: Arc<Decoder>,
    pub step: u64,
}

/// One step's figures (the loss terms unweighted).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbedRecord {
    pub step: u64,
    pub loss: f64,
    /// PSNR of the marked view against the reference's.
    pub render_psnr_db: f64,
    pub secret_loss: f64,
    pub blank_loss: f64,
    pub class_loss: f64,
    pub elapsed_secs: f64,
}

/// Stage 2's state; one [`Embedder::step`] is one rendered view.
pub struct Embedder {
    cfg: EmbedConfig,
    nets_config: NetsConfig,
    secret_kind: SecretKind,
    output: DecoderOutput,
    reference: NerfSnapshot,
    reference_params: Var,
    params: Vec<f32>,
    weights: FieldWeights,
    /// Each colour layer's range in the flat parameters, with its own Adam state.
    colour_groups: Vec<(Range<usize>, FlatAdam)>,
    decoder: Vec<Var>,
    classifier: Vec<Var>,
    nets_optimizer: AdamW,
    template_optimizer: AdamW,
    workspace: Arc<Mutex<Workspace>>,
    cameras: Vec<Camera>,
    orbit: Orbit,
    target: Tensor,
    blank: Tensor,
    rng: ChaCha8Rng,
    step: u64,
}

impl Embedder {
    /// Stage 2 of `reference` (stage 1) carrying `secret`, trained on `train_cameras` and random
    /// cameras of `orbit`.
    pub fn new(
        reference: &NerfSnapshot,
        train_cameras: &[Camera],
        orbit: &Orbit,
        secret: &Secret,
        cfg: &EmbedConfig,
    ) -> Result<Self, EmbedError> {
        cfg.validate()?;
        if train_cameras.is_empty() {
            return Err(EmbedError::Config("stage 2 needs at least one training camera".into()));
        }
        orbit.validate().map_err(EmbedError::Config)?;
        let nets_config = nets_config(secret, cfg.nets_width)?;
        let side = nets_config.side;
        let k = (cfg.render_side as usize).div_ceil(side).max(1);
        let render_side = u32::try_from(k * side).map_err(|_| EmbedError::Config("render side too large".into()))?;
        let device = Device::Cpu;
        let (decoder, classifier) = nets_config.init(cfg.seed, &device)?;
        // The decoder's template (its last two parameters) learns at its own, faster rate: it
        // holds one logit per secret value, each of which must travel a few units.
        let (rest, template) = decoder.split_at(decoder.len() - 2);
        let nets_optimizer = AdamW::new(
            rest.iter().chain(&classifier).cloned().collect(),
            ParamsAdamW { lr: cfg.nets_lr, weight_decay: 0.0, ..ParamsAdamW::default() },
        )?;
        let template_optimizer = AdamW::new(
            template.to_vec(),
            ParamsAdamW { lr: TEMPLATE_LR, weight_decay: 0.0, ..ParamsAdamW::default() },
        )?;
        let output = match nets_config.kind {
            DecoderKind::Image => DecoderOutput::Pixels,
            DecoderKind::Bits(_) => DecoderOutput::BitLogits,
        };
        let shape: Vec<usize> = match nets_config.kind {
            DecoderKind::Image => vec![1, side, side, 3],
            DecoderKind::Bits(n) => vec![1, n],
        };
        let as_target = |values: Vec<f32>| -> candle_core::Result<Tensor> {
            let t = Tensor::from_vec(values, shape.as_slice(), &device)?;
            if shape.len() == 4 { t.permute((0, 3, 1, 2))?.contiguous() } else { Ok(t) }
        };
        // "No message" for bits: every bit undecided (logit 0); the classifier tells clean views.
        let blank = match nets_config.kind {
            DecoderKind::Image => secret.blank(),
            DecoderKind::Bits(n) => vec![0.5; n],
        };
        let weights = (*reference.weights).clone();
        let params = weights.flatten();
        let layout = FieldLayout::new(&weights.config);
        let colour_groups = layout.layers[2..]
            .iter()
            .map(|slot| {
                let range = slot.weight_offset..slot.bias_offset + slot.fan_out;
                let adam = FlatAdam::new(range.len(), 0.9, 0.99, 1e-15);
                (range, adam)
            })
            .collect();
        Ok(Self {
            cfg: *cfg,
            nets_config,
            secret_kind: secret_kind(secret),
            output,
            reference_params: Var::from_slice(&params, params.len(), &device)?,
            reference: reference.clone(),
            params,
            weights,
            colour_groups,
            decoder,
            classifier,
            nets_optimizer,
            template_optimizer,
            workspace: Arc::new(Mutex::new(Workspace::default())),
            cameras: train_cameras.iter().map(|c| square_camera(c, render_side)).collect(),
            orbit: *orbit,
            target: as_target(secret.target())?,
            blank: as_target(blank)?,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x57E6A),
            step: 0,
        })
    }

    pub fn nets_config(&self) -> NetsConfig {
        self.nets_config
    }

    /// The current masking factors of the colour layers (1 each with masking off).
    pub fn masking_factors(&self) -> Vec<f64> {
        if !self.cfg.masking {
            return vec![1.0; self.colour_groups.len()];
        }
        let energies: Vec<f64> = self
            .colour_groups
            .iter()
            .map(|(range, _)| {
                let group = &self.params[range.clone()];
                #[allow(clippy::cast_precision_loss)]
                let n = group.len().max(1) as f64;
                group.iter().map(|w| f64::from(w.abs())).sum::<f64>() / n
            })
            .collect();
        masking_factors(&energies)
    }

    fn pick_camera(&mut self) -> Camera {
        let side = self.cameras[0].width;
        if self.rng.random::<f64>() < self.cfg.orbit_share {
            random_orbit_camera(&self.orbit, side, &mut self.rng)
        } else {
            self.cameras[self.rng.random_range(0..self.cameras.len())]
        }
    }

    /// A random attack up to the robustness table's strengths.
    fn random_attack(&mut self) -> Attack {
        let r = &mut self.rng;
        match r.random_range(0..6) {
            0 => Attack::Noise { sigma: r.random_range(0.0..0.06) },
            1 => Attack::Blur { sigma: r.random_range(0.3..1.2) },
            2 => Attack::Jpeg { quality: r.random_range(60..=95) },
            3 => Attack::Crop { fraction: r.random_range(0.0..0.15) },
            4 => Attack::Rotate { degrees: r.random_range(-6.0..6.0) },
            _ => Attack::Downscale { factor: r.random_range(1.0..2.0) },
        }
    }

    /// `x` (`1 × 3 × s × s`) after `attack`, the change added as a constant.
    fn attacked(x: &Tensor, attack: Attack, seed: u64) -> Result<Tensor, EmbedError> {
        let (_, _, h, w) = x.dims4()?;
        let pixels = x.detach().squeeze(0)?.permute((1, 2, 0))?.flatten_all()?.to_vec1::<f32>()?;
        #[allow(clippy::cast_possible_truncation)]
        let image = ImageData { width: w as u32, height: h as u32, channels: 3, pixels };
        let after = attack.apply(&image, seed)?;
        let after = Tensor::from_vec(after.pixels, (1, h, w, 3), x.device())?.permute((0, 3, 1, 2))?;
        Ok(x.add(&after.sub(&x.detach())?)?)
    }

    /// Colour over the reference's background, `rays × 3`.
    fn composite(&self, rendered: &RenderedRays) -> candle_core::Result<Tensor> {
        let bg = Tensor::from_slice(&self.reference.background.to_array(), (1, 3), &Device::Cpu)?;
        rendered.colour.add(&bg.broadcast_mul(&rendered.opacity.affine(-1.0, 1.0)?)?)
    }

    /// One step: one view, marked and reference, through the nets; returns its figures.
    pub fn step(&mut self) -> Result<EmbedRecord, EmbedError> {
        let start = Instant::now();
        self.step += 1;
        let device = Device::Cpu;
        let occupancy = Arc::clone(&self.reference.occupancy);
        let mut samples = None;
        for _ in 0..16 {
            let camera = self.pick_camera();
            let side = camera.width;
            let rays: Vec<_> = (0..side * side).map(|k| camera.pixel_ray(k % side, k / side)).collect();
            let jitter: Vec<f32> = (0..rays.len()).map(|_| self.rng.random()).collect();
            let marched = march(&rays, &jitter, &occupancy, &self.reference.march);
            if marched.num_samples() > 0 {
                samples = Some((Arc::new(marched), side as usize));
                break;
            }
        }
        let Some((samples, side)) = samples else {
            return Err(EmbedError::Config("no camera sees anything of the scene (is the field empty?)".into()));
        };
        let config = self.weights.config;
        let grid = Arc::clone(&self.weights.grid);
        let params = Var::from_slice(&self.params, self.params.len(), &device)?;
        // This step's place in the run (the first step is 1/steps); past the field's stop only
        // the nets learn, so the marked view is rendered without a backward.
        #[allow(clippy::cast_precision_loss)]
        let progress = (self.step as f64 / self.cfg.steps as f64).min(1.0);
        let field_learns = progress < self.cfg.field_stop();
        let marked = if field_learns {
            let op =
                FieldOp::training(config, Arc::clone(&grid), Arc::clone(&self.workspace), self.step).appearance_only();
            self.composite(&render_samples(&samples, &occupancy.scene_box, &params, op, false)?)?
        } else {
            let op = FieldOp::evaluation(config, Arc::clone(&grid));
            self.composite(&render_samples(&samples, &occupancy.scene_box, &params, op, false)?)?.detach()
        };
        let op = FieldOp::evaluation(config, grid);
        let clean = self
            .composite(&render_samples(&samples, &occupancy.scene_box, &self.reference_params, op, false)?)?
            .detach();
        let as_image =
            |t: &Tensor| -> candle_core::Result<Tensor> { t.reshape((1, side, side, 3))?.permute((0, 3, 1, 2)) };
        let (mut marked_view, mut clean_view) = (as_image(&marked)?, as_image(&clean)?);
        if self.cfg.augment && self.rng.random::<bool>() {
            let attack = self.random_attack();
            let seed = self.rng.random();
            marked_view = Self::attacked(&marked_view, attack, seed)?;
            clean_view = Self::attacked(&clean_view, attack, seed ^ 1)?;
        }
        let k = side / self.nets_config.side;
        let down = |t: Tensor| if k > 1 { t.avg_pool2d(k) } else { Ok(t) };
        let batch = Tensor::cat(&[down(marked_view)?, down(clean_view)?], 0)?;
        let decoder = crate::nets::tensors(&self.decoder);
        let classifier = crate::nets::tensors(&self.classifier);
        let class_logits = nets::classify(&batch, &classifier)?;
        // The field learns to be recognised (the classifier's term) and to stay close to stage 1;
        // with `decoder_trains_field` off the decoder's terms train the decoder alone.
        let decoder_input = if self.cfg.decoder_trains_field { batch } else { batch.detach() };
        // The decoder reads the classifier's verdict as given: were the decoder's loss to reach the
        // classifier, it would train the score to whatever suits the decoder (inverted scores
        // included) instead of "is this view marked?".
        let decoded = nets::decode(&self.nets_config, &decoder_input, &class_logits.detach(), &decoder)?;
        let class_labels = Tensor::from_slice(&[1.0_f32, 0.0], 2, &device)?;
        let terms = stega_loss(
            &LossInputs {
                render: &marked,
                reference: &clean,
                decoded_marked: &decoded.narrow(0, 0, 1)?,
                decoded_clean: &decoded.narrow(0, 1, 1)?,
                secret: &self.target,
                blank: &self.blank,
                class_logits: &class_logits,
                class_labels: &class_labels,
                output: self.output,
            },
            self.cfg.weights_at(progress),
        )?;
        let loss = terms.total.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if !loss.is_finite() {
            return Err(EmbedError::Diverged { step: self.step, loss });
        }
        let grads = terms.total.backward()?;
        // The field's rate decays tenfold over the run; it stops learning at the nets-only tail.
        let lr = self.cfg.field_lr * 0.1_f64.powf(progress);
        let factors = self.masking_factors();
        if let Some(grad) = grads.get(params.as_tensor()).filter(|_| field_learns) {
            let grad = grad.to_vec1::<f32>()?;
            for ((range, adam), factor) in self.colour_groups.iter_mut().zip(factors) {
                #[allow(clippy::cast_possible_truncation)]
                adam.step_seq(&mut self.params[range.clone()], &grad[range.clone()], (lr * factor) as f32);
            }
        }
        self.nets_optimizer.step(&grads)?;
        self.template_optimizer.step(&grads)?;
        Ok(EmbedRecord {
            step: self.step,
            loss,
            // Identical renders (the first step) would read as infinitely many dB.
            render_psnr_db: metrics::psnr_from_mse(terms.render).min(MAX_RENDER_PSNR_DB),
            secret_loss: terms.secret,
            blank_loss: terms.blank,
            class_loss: terms.class,
            elapsed_secs: start.elapsed().as_secs_f64(),
        })
    }

    /// The trained decoder and classifier (copies).
    pub fn decoder(&self) -> Result<Decoder, EmbedError> {
        let copy =
            |vars: &[Var]| -> candle_core::Result<Vec<Tensor>> { vars.iter().map(|v| v.as_tensor().copy()).collect() };
        Ok(Decoder {
            threshold: super::decoder::DEFAULT_THRESHOLD,
            config: self.nets_config,
            secret: self.secret_kind,
            decoder: copy(&self.decoder)?,
            classifier: copy(&self.classifier)?,
        })
    }

    /// The marked field and the decoder now.
    pub fn snapshot(&mut self) -> Result<StegaSnapshot, EmbedError> {
        self.weights.assign_flat(&self.params);
        let field = NerfSnapshot {
            weights: Arc::new(self.weights.clone()),
            occupancy: Arc::clone(&self.reference.occupancy),
            march: self.reference.march,
            background: self.reference.background,
            step: self.reference.step + self.step,
        };
        Ok(StegaSnapshot { field, decoder: Arc::new(self.decoder()?), step: self.step })
    }
}

impl Steps for Embedder {
    type Record = EmbedRecord;
    type Snapshot = StegaSnapshot;
    type Error = EmbedError;

    fn step(&mut self, _step: u64) -> Result<EmbedRecord, EmbedError> {
        Embedder::step(self)
    }

    fn stamp(&self, record: &mut EmbedRecord, elapsed_secs: f64) {
        record.elapsed_secs = elapsed_secs;
    }

    fn metrics(&self, record: &EmbedRecord) -> Metrics {
        vec![
            ("loss", record.loss),
            ("render_psnr_db", record.render_psnr_db),
            ("secret_loss", record.secret_loss),
            ("blank_loss", record.blank_loss),
            ("class_loss", record.class_loss),
        ]
    }

    fn snapshot(&mut self, _step: u64) -> Result<StegaSnapshot, EmbedError> {
        Embedder::snapshot(self)
    }
}

/// What a finished (or cancelled) stage 2 gives.
#[derive(Clone, Debug)]
pub struct EmbedSummary {
    pub snapshot: StegaSnapshot,
    pub history: Vec<EmbedRecord>,
    pub steps_done: u64,
    pub cancelled: bool,
    pub seconds: f64,
}

/// Runs stage 2 for `cfg.steps` steps, reporting progress and snapshots; cancelling returns what
/// was learned so far.
pub fn embed(
    reference: &NerfSnapshot,
    train_cameras: &[Camera],
    orbit: &Orbit,
    secret: &Secret,
    cfg: &EmbedConfig,
    control: &RunControl,
    on_event: &mut dyn FnMut(RunEvent<StegaSnapshot>),
) -> Result<EmbedSummary, EmbedError> {
    let mut embedder = Embedder::new(reference, train_cameras, orbit, secret, cfg)?;
    let schedule = Schedule { steps: cfg.steps, snapshot_interval_secs: cfg.snapshot_interval_secs };
    let Trained { history, steps_done, cancelled, seconds, mut snapshot } =
        train_loop::train(&mut embedder, schedule, control, on_event)?;
    if !cancelled {
        let cameras = calibration_cameras(orbit, embedder.cameras[0].width, cfg.seed);
        let (marked, clean) = super::view::render_views(&snapshot.field, reference, &cameras);
        let score = |views: &[ImageData]| -> Result<Vec<f32>, EmbedError> {
            Ok(snapshot.decoder.recover_all(views)?.into_iter().map(|r| r.score).collect())
        };
        let threshold = super::decoder::calibrate_threshold(&score(&marked)?, &score(&clean)?);
        snapshot.decoder = Arc::new(Decoder { threshold, ..(*snapshot.decoder).clone() });
    }
    Ok(EmbedSummary { snapshot, history, steps_done, cancelled, seconds })
}

/// Views on which the classifier's threshold is calibrated after stage 2.
pub const CALIBRATION_VIEWS: usize = 24;

/// Cameras around `orbit` at seeded azimuths and heights that stage 2 did not pick (its own
/// random stream), for calibrating the classifier's threshold; not the test cameras.
pub fn calibration_cameras(orbit: &Orbit, side: u32, seed: u64) -> Vec<Camera> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xCA11_B8A7);
    (0..CALIBRATION_VIEWS).map(|_| random_orbit_camera(orbit, side, &mut rng)).collect()
}

/// A camera of `orbit` at a random azimuth and a height up to ±0.2 from the orbit's.
fn random_orbit_camera(orbit: &Orbit, side: u32, rng: &mut ChaCha8Rng) -> Camera {
    let mut o = *orbit;
    o.azimuth = rng.random_range(0.0..std::f32::consts::TAU);
    o.elevation += rng.random_range(-0.2..0.2);
    o.camera(side, side)
}

/// How well `recovered` matches `secret`: PSNR in dB for an image, bit accuracy in [0, 1] for bits.
pub fn recovery_quality(secret: &Secret, recovered: &Recovered) -> f64 {
    match (secret, recovered) {
        (Secret::Image(truth), Recovered::Image(image)) => metrics::psnr_db(image, truth),
        (Secret::Text { bits, .. } | Secret::Bits(bits), Recovered::Bits(got)) => message::bit_accuracy(got, bits),
        _ => f64::NAN,
    }
}

/// Stage 2's scores on views it never trained on (means over the views).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedMetrics {
    pub views: usize,
    /// The marked render against the stage-1 render of the same camera.
    pub render_psnr_vs_stage1_db: f64,
    pub render_ssim: f64,
    /// Both renders against the data set's images (when there are any).
    pub render_psnr_vs_ground_truth_db: Option<f64>,
    pub stage1_psnr_vs_ground_truth_db: Option<f64>,
    /// Image secrets: the secret recovered from marked views, and from stage-1 (clean) views.
    pub recovery_psnr_db: Option<f64>,
    pub recovery_ssim: Option<f64>,
    pub clean_recovery_psnr_db: Option<f64>,
    /// Bit secrets: the share of bits right, from marked and from clean views.
    pub bit_accuracy: Option<f64>,
    pub clean_bit_accuracy: Option<f64>,
    /// Text secrets: the share of marked views whose text decodes with a good checksum.
    pub text_recovered: Option<f64>,
    /// Marked views scored ≥ 0.5 and clean views < 0.5, over both.
    pub classifier_accuracy: f64,
    /// The decoder's threshold on the classifier's score (calibrated after stage 2).
    #[serde(default)]
    pub classifier_threshold: f32,
    /// The classifier's score of each marked view and each clean one, in camera order.
    #[serde(default)]
    pub marked_scores: Vec<f32>,
    #[serde(default)]
    pub clean_scores: Vec<f32>,
}

/// The marked and stage-1 renders of some views (full size).
#[derive(Clone, Debug)]
pub struct EvalRenders {
    pub marked: Vec<ImageData>,
    pub clean: Vec<ImageData>,
}

/// Renders the test `cameras` with the marked field and the reference, and scores fidelity and
/// recovery; `truths` (the data set's images of those cameras, or none) for the PSNR against
/// ground truth.
pub fn evaluate(
    reference: &NerfSnapshot,
    marked: &StegaSnapshot,
    secret: &Secret,
    cameras: &[Camera],
    truths: &[ImageData],
    control: &RunControl,
) -> Result<(EmbedMetrics, EvalRenders), EmbedError> {
    let mut renders = EvalRenders { marked: Vec::new(), clean: Vec::new() };
    let mut sums = [0.0_f64; 4];
    for (i, camera) in cameras.iter().enumerate() {
        if control.is_cancelled() {
            break;
        }
        let super::view::ViewRenders { marked: m, stage1: c } =
            super::view::render_pair(&marked.field, reference, camera);
        sums[0] += metrics::psnr_db(&m, &c);
        sums[1] += metrics::ssim(&m, &c);
        if let Some(truth) = truths.get(i) {
            sums[2] += metrics::psnr_db(&m, truth);
            sums[3] += metrics::psnr_db(&c, truth);
        }
        renders.marked.push(m);
        renders.clean.push(c);
    }
    let n = renders.marked.len();
    if n == 0 {
        return Err(EmbedError::Config("no views to evaluate on".into()));
    }
    #[allow(clippy::cast_precision_loss)]
    let mean = |total: f64| total / n as f64;
    let from_marked = marked.decoder.recover_all(&renders.marked)?;
    let from_clean = marked.decoder.recover_all(&renders.clean)?;
    let right = from_marked.iter().filter(|r| r.carries_secret()).count()
        + from_clean.iter().filter(|r| !r.carries_secret()).count();
    #[allow(clippy::cast_precision_loss)]
    let classifier_accuracy = right as f64 / (2 * n) as f64;
    let quality = |recoveries: &[super::decoder::Recovery]| {
        mean(recoveries.iter().map(|r| recovery_quality(secret, &r.secret)).sum())
    };
    let mut scores = EmbedMetrics {
        views: n,
        render_psnr_vs_stage1_db: mean(sums[0]),
        render_ssim: mean(sums[1]),
        render_psnr_vs_ground_truth_db: (truths.len() >= n).then(|| mean(sums[2])),
        stage1_psnr_vs_ground_truth_db: (truths.len() >= n).then(|| mean(sums[3])),
        classifier_accuracy,
        classifier_threshold: marked.decoder.threshold,
        marked_scores: from_marked.iter().map(|r| r.score).collect(),
        clean_scores: from_clean.iter().map(|r| r.score).collect(),
        ..EmbedMetrics::default()
    };
    match secret {
        Secret::Image(truth) => {
            scores.recovery_psnr_db = Some(quality(&from_marked));
            scores.clean_recovery_psnr_db = Some(quality(&from_clean));
            let ssim = from_marked
                .iter()
                .map(|r| match &r.secret {
                    Recovered::Image(image) => metrics::ssim(image, truth),
                    Recovered::Bits(_) => 0.0,
                })
                .sum();
            scores.recovery_ssim = Some(mean(ssim));
        }
        Secret::Text { text, .. } => {
            scores.bit_accuracy = Some(quality(&from_marked));
            scores.clean_bit_accuracy = Some(quality(&from_clean));
            let decoded = from_marked.iter().filter(|r| matches!(r.text(), Some(Ok(t)) if t == *text)).count();
            #[allow(clippy::cast_precision_loss)]
            let share = decoded as f64 / n as f64;
            scores.text_recovered = Some(share);
        }
        Secret::Bits(_) => {
            scores.bit_accuracy = Some(quality(&from_marked));
            scores.clean_bit_accuracy = Some(quality(&from_clean));
        }
    }
    Ok((scores, renders))
}
