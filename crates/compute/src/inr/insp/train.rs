//! Training an INSP operator: the training rows ([`TrainingSet`]), the hand-written MLP with its
//! closed-form gradient ([`OperatorMlp`]), and [`train_operator`] on the shared training loop.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::super::taylor::{self, Partials};
use super::super::{InrError, LayerWeights, SirenWeights};
use super::{EditTask, OperatorConfig, OperatorSpec, OperatorWeights};
use crate::control::{Metrics, RunControl, RunEvent};
use crate::image_io::ImageData;
use crate::metrics;
use crate::optim::FlatAdam;
use crate::train_loop::{self, Schedule, Steps, Trained};

/// Training rows for an operator: raw derivative stacks (one colour channel each) and the
/// values the edit should produce there.
#[derive(Clone, Debug, Default)]
pub struct TrainingSet {
    order: usize,
    stacks: Vec<f32>,
    targets: Vec<f32>,
    training_size: u32,
}

impl TrainingSet {
    pub fn new(order: usize) -> Self {
        Self { order, ..Self::default() }
    }

    /// Rows given directly: `stacks` is `rows × P` for `order`, `targets` has one value per row.
    pub fn from_rows(order: usize, stacks: Vec<f32>, targets: Vec<f32>, training_size: u32) -> Result<Self, InrError> {
        let p = Partials::new(order)?.len();
        if stacks.len() != targets.len() * p {
            return Err(InrError::Config(format!(
                "{} stack values do not make {} rows of {p} partials",
                stacks.len(),
                targets.len()
            )));
        }
        Ok(Self { order, stacks, targets, training_size })
    }

    /// Adds every pixel of `target` with the stack of `inr` at its centre.
    pub fn add_pair(&mut self, inr: &SirenWeights, target: &ImageData) -> Result<(), InrError> {
        if inr.config.out_features != target.channels {
            return Err(InrError::Config(format!(
                "the INR has {} channels but its target image has {}",
                inr.config.out_features, target.channels
            )));
        }
        let partials = Partials::new(self.order)?;
        self.stacks.extend(taylor::stack_at_pixels(inr, &partials, target.width, target.height)?);
        self.targets.extend_from_slice(&target.pixels);
        self.training_size = self.training_size.max(target.width.max(target.height));
        Ok(())
    }

    /// Number of rows (pixel channels).
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Mean and spread of every feature (spread at least 1e-6).
    fn standardisation(&self) -> (Vec<f32>, Vec<f32>) {
        let p = taylor::num_partials(self.order);
        let mut sum = vec![0.0_f64; p];
        let mut sum_sq = vec![0.0_f64; p];
        for row in self.stacks.chunks_exact(p) {
            for (k, &v) in row.iter().enumerate() {
                sum[k] += f64::from(v);
                sum_sq[k] += f64::from(v) * f64::from(v);
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let n = self.len().max(1) as f64;
        #[allow(clippy::cast_possible_truncation)]
        let shift: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        #[allow(clippy::cast_possible_truncation)]
        let scale: Vec<f32> = sum
            .iter()
            .zip(&sum_sq)
            .map(|(s, q)| ((q / n - (s / n).powi(2)).max(0.0).sqrt() as f32).max(1e-6))
            .collect();
        (shift, scale)
    }
}

/// One step's record while training an operator.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatorStep {
    pub step: u64,
    /// MSE of the batch in pixel units.
    pub loss: f64,
    pub psnr_db: f64,
}

/// The outcome of training; cancelled runs return what they reached.
#[derive(Clone, Debug)]
pub struct OperatorSummary {
    pub weights: OperatorWeights,
    pub steps_done: u64,
    pub cancelled: bool,
    pub history: Vec<OperatorStep>,
    pub ms_per_step: f64,
    pub seconds: f64,
    /// PSNR over the whole training set before and after training (pixel units).
    pub initial_psnr_db: f64,
    pub final_psnr_db: f64,
}

/// Rows per block of the fused training step; a batch splits into a fixed number of blocks so
/// that gradient sums do not depend on thread scheduling.
const TRAIN_BLOCK_ROWS: usize = 512;

/// The operator MLP for training: flat parameters (per layer `W` row-major, then `b`), forward
/// and backward by hand (ReLU between layers, MSE loss), blocks of rows in parallel.
pub struct OperatorMlp {
    shapes: Vec<(usize, usize)>,
    /// Offset of each layer's weight in `params`; its bias follows the weight.
    offsets: Vec<usize>,
    params: Vec<f32>,
    residual: bool,
}

impl OperatorMlp {
    /// PyTorch's `nn.Linear` initialisation, `U(±1/√fan_in)`; with `residual` the last layer
    /// starts at zero so that the operator starts as the identity.
    pub fn init(config: &OperatorConfig, features: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let shapes = config.layer_shapes(features);
        let last = shapes.len() - 1;
        let mut params = Vec::new();
        let mut offsets = Vec::new();
        for (index, &(fan_in, fan_out)) in shapes.iter().enumerate() {
            offsets.push(params.len());
            #[allow(clippy::cast_precision_loss)]
            let bound = 1.0 / (fan_in as f32).sqrt();
            let zero = config.residual && index == last;
            params
                .extend((0..(fan_in + 1) * fan_out).map(|_| if zero { 0.0 } else { rng.random_range(-bound..=bound) }));
        }
        Self { shapes, offsets, params, residual: config.residual }
    }

    pub fn params(&self) -> &[f32] {
        &self.params
    }

    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// The layers as plain data.
    pub fn layers(&self) -> Vec<LayerWeights> {
        self.shapes
            .iter()
            .zip(&self.offsets)
            .map(|(&(fan_in, fan_out), &offset)| LayerWeights {
                weight: self.params[offset..offset + fan_in * fan_out].to_vec(),
                bias: self.params[offset + fan_in * fan_out..offset + (fan_in + 1) * fan_out].to_vec(),
            })
            .collect()
    }

    /// Sum of squared errors of a block, adding `∂(Σ err²)/∂params · scale` into `grads`.
    /// `x`: `n × P` standardised, `values`: raw INR values, `targets`: wanted outputs.
    fn block_gradient(&self, x: &[f32], values: &[f32], targets: &[f32], scale: f32, grads: &mut [f32]) -> f64 {
        let n = values.len();
        let last = self.shapes.len() - 1;
        // Forward, keeping every hidden output.
        let mut activations: Vec<Vec<f32>> = Vec::with_capacity(last);
        for (l, &(fan_in, fan_out)) in self.shapes[..last].iter().enumerate() {
            let input: &[f32] = if l == 0 { x } else { &activations[l - 1] };
            let mut h = vec![0.0_f32; n * fan_out];
            self.linear(&mut h, input, l, n);
            h.iter_mut().for_each(|v| *v = v.max(0.0));
            debug_assert_eq!(input.len(), n * fan_in);
            activations.push(h);
        }
        let mut out = vec![0.0_f32; n];
        let hidden_last: &[f32] = activations.last().map_or(x, |a| a);
        self.linear(&mut out, hidden_last, last, n);
        let mut loss = 0.0_f64;
        // ∂(Σ err²)/∂out = 2·err, scaled (scale = 1/batch for the mean).
        let g: Vec<f32> = out
            .iter()
            .zip(values)
            .zip(targets)
            .map(|((&o, &v), &t)| {
                let err = if self.residual { o + v - t } else { o - t };
                loss += f64::from(err) * f64::from(err);
                2.0 * err * scale
            })
            .collect();
        crate::dense::backward(&self.shapes, &self.offsets, &self.params, (x, &activations), g, grads);
        loss
    }

    /// `out ← input · W_lᵀ + b_l` for `n` rows.
    fn linear(&self, out: &mut [f32], input: &[f32], l: usize, n: usize) {
        crate::dense::linear(out, input, &self.params, self.offsets[l], self.shapes[l], n);
    }

    /// Mean squared error of a batch (`x`: `n × P` standardised features, `values`: the INR's
    /// raw values, `targets`) and its gradient with respect to the parameters.
    pub fn loss_and_gradient(&self, x: &[f32], values: &[f32], targets: &[f32]) -> (f64, Vec<f32>) {
        let p = x.len() / values.len().max(1);
        #[allow(clippy::cast_precision_loss)]
        let scale = 1.0 / values.len().max(1) as f32;
        let blocks: Vec<(f64, Vec<f32>)> = values
            .par_chunks(TRAIN_BLOCK_ROWS)
            .zip(targets.par_chunks(TRAIN_BLOCK_ROWS))
            .zip(x.par_chunks(TRAIN_BLOCK_ROWS * p))
            .map(|((v, t), xb)| {
                let mut grads = vec![0.0_f32; self.params.len()];
                let loss = self.block_gradient(xb, v, t, scale, &mut grads);
                (loss, grads)
            })
            .collect();
        let mut grads = vec![0.0_f32; self.params.len()];
        let mut loss = 0.0;
        for (block_loss, block_grads) in blocks {
            loss += block_loss;
            grads.iter_mut().zip(&block_grads).for_each(|(a, b)| *a += b);
        }
        #[allow(clippy::cast_precision_loss)]
        (loss / values.len().max(1) as f64, grads)
    }
}

/// Trains an operator on `data` for `task` with Adam on random batches.
///
/// Reports `Started`, throttled `Progress` (`loss`, `psnr_db`) and `Snapshot`s of the weights;
/// stops early, returning what it reached, when `control` is cancelled.
pub fn train_operator(
    data: &TrainingSet,
    task: EditTask,
    config: &OperatorConfig,
    control: &RunControl,
    on_event: &mut dyn FnMut(RunEvent<OperatorWeights>),
) -> Result<OperatorSummary, InrError> {
    config.validate()?;
    task.validate()?;
    if data.order != config.order {
        return Err(InrError::Config(format!(
            "the training stacks go to order {} but the operator wants order {}",
            data.order, config.order
        )));
    }
    if data.is_empty() {
        return Err(InrError::Config("no training data: add at least one INR and its target".into()));
    }
    let p = Partials::new(config.order)?.len();
    let rows = data.len();
    let (shift, scale) = data.standardisation();
    let features: Vec<f32> = data
        .stacks
        .chunks_exact(p)
        .flat_map(|row| row.iter().zip(&shift).zip(&scale).map(|((v, s), d)| (v - s) / d))
        .collect();
    let values: Vec<f32> = data.stacks.iter().step_by(p).copied().collect();
    let net = OperatorMlp::init(config, p);
    let optimizer = FlatAdam::new(net.params.len(), 0.9, 0.999, 1e-8);
    let batch = config.batch.min(rows);
    #[allow(clippy::cast_possible_truncation)]
    let learning_rate = config.learning_rate as f32;
    let spec = OperatorSpec {
        task,
        order: config.order,
        width: config.width,
        hidden_layers: config.hidden_layers,
        residual: config.residual,
        training_size: data.training_size,
    };
    let mut steps = OperatorSteps {
        net,
        optimizer,
        learning_rate,
        rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x01A5_B0A7),
        features: &features,
        values: &values,
        targets: &data.targets,
        batch: (vec![0.0; batch * p], vec![0.0; batch], vec![0.0; batch]),
        spec,
        shift,
        scale,
    };
    let initial_psnr_db = steps.whole_set_psnr(data);
    let trained = train_loop::train(
        &mut steps,
        Schedule { steps: config.steps, snapshot_interval_secs: config.snapshot_interval_secs },
        control,
        on_event,
    )?;
    let ms_per_step = trained.ms_per_step();
    let final_psnr_db = if trained.cancelled {
        trained.history.last().map_or(f64::NAN, |r| r.psnr_db)
    } else {
        steps.whole_set_psnr(data)
    };
    let Trained { history, steps_done, cancelled, seconds, snapshot: weights } = trained;
    Ok(OperatorSummary {
        weights,
        steps_done,
        cancelled,
        history,
        ms_per_step,
        seconds,
        initial_psnr_db,
        final_psnr_db,
    })
}

/// The operator's training step for [`train_loop::train`]: a random batch of rows, the loss
/// and gradient in closed form, an Adam step.
struct OperatorSteps<'a> {
    net: OperatorMlp,
    optimizer: FlatAdam,
    learning_rate: f32,
    rng: ChaCha8Rng,
    /// Standardised stacks, `rows × P`.
    features: &'a [f32],
    /// Each row's value (partial 0), for the residual.
    values: &'a [f32],
    targets: &'a [f32],
    /// The batch's features, values and targets, reused between steps.
    batch: (Vec<f32>, Vec<f32>, Vec<f32>),
    spec: OperatorSpec,
    shift: Vec<f32>,
    scale: Vec<f32>,
}

impl OperatorSteps<'_> {
    fn weights(&self) -> OperatorWeights {
        OperatorWeights {
            spec: self.spec.clone(),
            layers: self.net.layers(),
            feature_shift: self.shift.clone(),
            feature_scale: self.scale.clone(),
        }
    }

    /// PSNR of the operator's output over every training row.
    fn whole_set_psnr(&self, data: &TrainingSet) -> f64 {
        let predicted = self.weights().apply_rows(&data.stacks);
        let mse =
            predicted.iter().zip(&data.targets).map(|(a, b)| f64::from((a.clamp(0.0, 1.0) - b).powi(2))).sum::<f64>();
        #[allow(clippy::cast_precision_loss)]
        metrics::psnr_from_mse(mse / data.len() as f64)
    }
}

impl Steps for OperatorSteps<'_> {
    type Record = OperatorStep;
    type Snapshot = OperatorWeights;
    type Error = InrError;

    fn step(&mut self, step: u64) -> Result<OperatorStep, InrError> {
        let rows = self.values.len();
        let (x, v, y) = &mut self.batch;
        let p = self.features.len() / rows.max(1);
        for b in 0..v.len() {
            let row = if v.len() < rows { self.rng.random_range(0..rows) } else { b };
            x[b * p..(b + 1) * p].copy_from_slice(&self.features[row * p..(row + 1) * p]);
            v[b] = self.values[row];
            y[b] = self.targets[row];
        }
        let (loss, grads) = self.net.loss_and_gradient(x, v, y);
        self.optimizer.step(&mut self.net.params, &grads, self.learning_rate);
        if !loss.is_finite() {
            return Err(InrError::Config(format!(
                "operator training diverged at step {step} (loss is {loss}); lower the learning rate"
            )));
        }
        Ok(OperatorStep { step, loss, psnr_db: metrics::psnr_from_mse(loss) })
    }

    fn metrics(&self, record: &OperatorStep) -> Metrics {
        vec![("loss", record.loss), ("psnr_db", record.psnr_db)]
    }

    fn snapshot(&mut self, _step: u64) -> Result<OperatorWeights, InrError> {
        Ok(self.weights())
    }
}
