//! Graph networks whose weights are either trained (the dense baseline) or drawn once and masked
//! by trained scores: untrained GNN tickets (UGTs) and edge-popup.
//!
//! The masking follows the UGTs repository: every layer's weights and scores are drawn
//! Kaiming-uniform (fan-in, ReLU gain); the mask keeps the weights whose score reaches one
//! **global** threshold, the percentile of all layers' scores (raw, no absolute value) at the
//! current sparsity; the scores learn through a straight-through estimator (the mask's gradient
//! is taken as the identity, so a score's gradient is its masked weight's gradient times the
//! weight); the sparsity ramps linearly from 0 to its target over the first half of training,
//! and evaluation always uses the target. Edge-popup keeps the top scores of each layer
//! separately, at the target sparsity from the start.

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::graph::{Graph, SparseRows};
use super::sparse::{SparseOperator, gcn_adjacency};

/// How the network's weights come about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Weights drawn once and masked by scores above one global threshold, with gradual sparsity.
    Ugt,
    /// The same with a top-k per layer at the target sparsity from the start.
    EdgePopup,
    /// The weights trained (no mask).
    Dense,
}

/// How masked networks draw their fixed weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightInit {
    /// Uniform in ±√(6 / fan-in).
    KaimingUniform,
    /// ±√(2 / fan-in) with a random sign.
    SignedConstant,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GnnConfig {
    pub method: Method,
    pub layers: usize,
    pub hidden: usize,
    /// Share of weights masked out at the end (masked methods).
    pub sparsity: f64,
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Dropout on each layer's input (the dense baseline; masked networks run without, as in the
    /// repository).
    pub dropout: f64,
    pub init: WeightInit,
    pub seed: u64,
}

impl Default for GnnConfig {
    /// The UGTs repository's Cora settings: AdamW at 0.01 without weight decay, 400 epochs, 256
    /// hidden units, two layers.
    fn default() -> Self {
        Self {
            method: Method::Ugt,
            layers: 2,
            hidden: 256,
            sparsity: 0.9,
            epochs: 400,
            lr: 0.01,
            weight_decay: 0.0,
            dropout: 0.5,
            init: WeightInit::KaimingUniform,
            seed: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GnnError {
    #[error("{0}")]
    Config(String),
    #[error("the data set cannot be trained on: {0}")]
    Data(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl GnnConfig {
    pub fn validate(&self) -> Result<(), GnnError> {
        let bad = |m: String| Err(GnnError::Config(m));
        if !(1..=64).contains(&self.layers) {
            return bad(format!("layers must be 1–64, got {}", self.layers));
        }
        if !(1..=4096).contains(&self.hidden) {
            return bad(format!("hidden units must be 1–4096, got {}", self.hidden));
        }
        if !(self.sparsity.is_finite() && (0.0..1.0).contains(&self.sparsity)) {
            return bad(format!("sparsity must be in [0, 1), got {}", self.sparsity));
        }
        if !(1..=100_000).contains(&self.epochs) {
            return bad(format!("epochs must be 1–100000, got {}", self.epochs));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr < 10.0) {
            return bad(format!("the learning rate must be in (0, 10), got {}", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!("weight decay must be ≥ 0, got {}", self.weight_decay));
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return bad(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }

    /// The sparsity the mask has at `epoch` (0-based) while training: a linear ramp from 0 over the
    /// first half for UGTs, the target throughout for edge-popup, none for dense training.
    pub fn sparsity_at(&self, epoch: usize) -> f64 {
        match self.method {
            Method::Dense => 0.0,
            Method::EdgePopup => self.sparsity,
            Method::Ugt => {
                #[allow(clippy::cast_precision_loss)]
                let half = (self.epochs as f64 / 2.0).max(1.0);
                #[allow(clippy::cast_precision_loss)]
                let t = epoch as f64;
                if t < half { self.sparsity * t / half } else { self.sparsity }
            }
        }
    }
}

/// Row-normalised features (each row sums to 1, as PyTorch Geometric's `NormalizeFeatures`).
pub fn normalise_rows(features: &SparseRows) -> SparseRows {
    let mut out = features.clone();
    for r in 0..out.rows {
        let span = out.indptr[r]..out.indptr[r + 1];
        let sum: f32 = out.values[span.clone()].iter().sum();
        if sum != 0.0 {
            out.values[span].iter_mut().for_each(|v| *v /= sum);
        }
    }
    out
}

/// The global threshold at `sparsity`: the score below which that share of all `scores` lies
/// (the repository's `kthvalue` rule, k = 1 + round(sparsity·(n−1))).
pub fn global_threshold(scores: &[f32], sparsity: f64) -> f32 {
    if scores.is_empty() {
        return f32::NEG_INFINITY;
    }
    let mut sorted = scores.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let k = (sparsity * (sorted.len() - 1) as f64).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

/// Keep-masks (1 kept, 0 dropped) of each layer's scores at `sparsity`: one global threshold, or
/// the top scores of each layer (`per_layer`). At sparsity 0 everything is kept.
pub fn masks(scores: &[Vec<f32>], sparsity: f64, per_layer: bool) -> Vec<Vec<f32>> {
    if sparsity <= 0.0 {
        return scores.iter().map(|s| vec![1.0; s.len()]).collect();
    }
    let keep = |s: &[f32], threshold: f32| s.iter().map(|&v| f32::from(u8::from(v >= threshold))).collect();
    if per_layer {
        scores.iter().map(|s| keep(s, global_threshold(s, sparsity))).collect()
    } else {
        let all: Vec<f32> = scores.iter().flatten().copied().collect();
        let threshold = global_threshold(&all, sparsity);
        scores.iter().map(|s| keep(s, threshold)).collect()
    }
}

/// A GCN: `H ← ReLU(Â H W)` per layer (no bias, as in the repository), logits from the last.
pub struct Gcn {
    pub config: GnnConfig,
    features: SparseOperator,
    adjacency: SparseOperator,
    /// Each layer's weights (`fan_in × fan_out`): trained for dense, fixed otherwise.
    weights: Vec<Var>,
    /// Each layer's scores (masked methods).
    scores: Vec<Var>,
    rng: ChaCha8Rng,
}

fn kaiming_bound(fan_in: usize) -> f32 {
    #[allow(clippy::cast_precision_loss)]
    let bound = (6.0 / fan_in as f32).sqrt();
    bound
}

impl Gcn {
    pub fn new(graph: &Graph, config: &GnnConfig) -> Result<Self, GnnError> {
        config.validate()?;
        if graph.num_classes < 2 {
            return Err(GnnError::Data(format!("{} classes; node classification needs at least 2", graph.num_classes)));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut dims = vec![graph.features.cols];
        dims.extend(std::iter::repeat_n(config.hidden, config.layers - 1));
        dims.push(graph.num_classes);
        let device = Device::Cpu;
        let mut weights = Vec::new();
        let mut scores = Vec::new();
        for pair in dims.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let bound = kaiming_bound(fan_in);
            let values: Vec<f32> = match config.init {
                WeightInit::KaimingUniform => (0..fan_in * fan_out).map(|_| rng.random_range(-bound..bound)).collect(),
                WeightInit::SignedConstant => {
                    #[allow(clippy::cast_precision_loss)]
                    let c = (2.0 / fan_in as f32).sqrt();
                    (0..fan_in * fan_out).map(|_| if rng.random::<bool>() { c } else { -c }).collect()
                }
            };
            weights.push(Var::from_vec(values, (fan_in, fan_out), &device)?);
        }
        // Scores after all weights, so that every method draws the same weights for a seed.
        if config.method != Method::Dense {
            for pair in dims.windows(2) {
                let (fan_in, fan_out) = (pair[0], pair[1]);
                let bound = kaiming_bound(fan_in);
                let values: Vec<f32> = (0..fan_in * fan_out).map(|_| rng.random_range(-bound..bound)).collect();
                scores.push(Var::from_vec(values, (fan_in, fan_out), &device)?);
            }
        }
        Ok(Self {
            config: *config,
            features: SparseOperator::new(normalise_rows(&graph.features)),
            adjacency: SparseOperator::new(gcn_adjacency(&graph.edges, graph.num_nodes)),
            weights,
            scores,
            rng,
        })
    }

    /// What the optimiser trains: the weights (dense) or the scores.
    pub fn trainable(&self) -> Vec<Var> {
        if self.config.method == Method::Dense { self.weights.clone() } else { self.scores.clone() }
    }

    /// The masks at `sparsity` (none for dense training).
    pub fn current_masks(&self, sparsity: f64) -> Result<Vec<Vec<f32>>, GnnError> {
        let scores: Vec<Vec<f32>> =
            self.scores.iter().map(|s| s.as_tensor().flatten_all()?.to_vec1::<f32>()).collect::<Result<_, _>>()?;
        Ok(masks(&scores, sparsity, self.config.method == Method::EdgePopup))
    }

    /// Each layer's effective weights at `sparsity`: `W ⊙ mask`, where the mask passes gradients
    /// straight through to the scores.
    fn effective_weights(&self, sparsity: f64) -> Result<Vec<Tensor>, GnnError> {
        if self.config.method == Method::Dense {
            return Ok(self.weights.iter().map(|w| w.as_tensor().clone()).collect());
        }
        let masks = self.current_masks(sparsity)?;
        self.weights
            .iter()
            .zip(&self.scores)
            .zip(masks)
            .map(|((w, s), m)| {
                let mask = Tensor::from_vec(m, s.as_tensor().shape(), &Device::Cpu)?;
                // Value: the mask; gradient: identity to the scores.
                let s = s.as_tensor();
                let ste = s.sub(&s.detach())?.add(&mask)?;
                Ok(w.as_tensor().detach().mul(&ste)?)
            })
            .collect()
    }

    /// Logits of every node (`nodes × classes`); `train` applies dropout (dense training only).
    pub fn forward(&mut self, sparsity: f64, train: bool) -> Result<Tensor, GnnError> {
        let weights = self.effective_weights(sparsity)?;
        let dropout = if train && self.config.method == Method::Dense { self.config.dropout } else { 0.0 };
        let mut h: Option<Tensor> = None;
        let last = weights.len() - 1;
        for (l, w) in weights.iter().enumerate() {
            let xw = match &h {
                None => self.features.apply(w)?,
                Some(h) => self.drop(h, dropout)?.matmul(w)?,
            };
            let z = self.adjacency.apply(&xw)?;
            h = Some(if l == last { z } else { z.relu()? });
        }
        Ok(h.expect("at least one layer"))
    }

    fn drop(&mut self, h: &Tensor, p: f64) -> Result<Tensor, GnnError> {
        if p <= 0.0 {
            return Ok(h.clone());
        }
        let n = h.elem_count();
        #[allow(clippy::cast_possible_truncation)]
        let scale = (1.0 / (1.0 - p)) as f32;
        let keep: Vec<f32> = (0..n).map(|_| if self.rng.random::<f64>() < p { 0.0 } else { scale }).collect();
        Ok(h.mul(&Tensor::from_vec(keep, h.shape(), h.device())?)?)
    }
}

/// Cross-entropy of `logits` on `nodes` (labelled ones).
pub fn loss_on(logits: &Tensor, graph: &Graph, nodes: &[usize]) -> Result<Tensor, GnnError> {
    let (index, labels): (Vec<u32>, Vec<u32>) = nodes
        .iter()
        .filter_map(|&n| {
            #[allow(clippy::cast_possible_truncation)]
            graph.labels[n].map(|l| (n as u32, l))
        })
        .unzip();
    if index.is_empty() {
        return Err(GnnError::Data("no labelled training nodes".into()));
    }
    let device = logits.device();
    let picked = logits.index_select(&Tensor::from_vec(index, labels.len(), device)?, 0)?;
    let labels = Tensor::from_vec(labels.clone(), labels.len(), device)?;
    Ok(candle_nn::loss::cross_entropy(&picked, &labels)?)
}

/// Share of labelled `nodes` whose largest logit is their class.
pub fn accuracy(logits: &Tensor, graph: &Graph, nodes: &[usize]) -> Result<f64, GnnError> {
    let predicted = logits.argmax(1)?.to_dtype(DType::U32)?.to_vec1::<u32>()?;
    let (mut right, mut total) = (0_usize, 0_usize);
    for &n in nodes {
        if let Some(l) = graph.labels[n] {
            total += 1;
            right += usize::from(predicted[n] == l);
        }
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(if total == 0 { 0.0 } else { right as f64 / total as f64 })
}

/// One epoch's figures; accuracies at the target sparsity (as the repository evaluates).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: u64,
    pub loss: f64,
    /// The mask's sparsity during this epoch's training step.
    pub sparsity: f64,
    pub train_acc: f64,
    pub val_acc: f64,
    pub test_acc: f64,
    pub elapsed_secs: f64,
}

/// The figures of a run: the test accuracy of the epoch with the best validation accuracy (the
/// first such epoch), as the repository reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GnnSummary {
    pub best_epoch: u64,
    pub val_acc: f64,
    pub test_acc: f64,
    /// Share of weights masked out at the end (0 for dense training).
    pub sparsity_reached: f64,
    pub seconds: f64,
}

/// Trains a [`Gcn`] one epoch per step (full batch) and keeps the best validation epoch.
pub struct GcnTrainer {
    pub model: Gcn,
    graph: std::sync::Arc<Graph>,
    optimizer: candle_nn::AdamW,
    best: GnnSummary,
}

impl GcnTrainer {
    pub fn new(graph: std::sync::Arc<Graph>, config: &GnnConfig) -> Result<Self, GnnError> {
        use candle_nn::Optimizer;
        let model = Gcn::new(&graph, config)?;
        let params = candle_nn::ParamsAdamW { lr: config.lr, weight_decay: config.weight_decay, ..Default::default() };
        let optimizer = candle_nn::AdamW::new(model.trainable(), params)?;
        Ok(Self { model, graph, optimizer, best: GnnSummary { val_acc: -1.0, ..GnnSummary::default() } })
    }

    /// The best epoch so far.
    pub fn summary(&self) -> GnnSummary {
        self.best
    }

    /// Logits of every node at the target sparsity (no dropout).
    pub fn evaluate(&mut self) -> Result<Tensor, GnnError> {
        let sparsity = if self.model.config.method == Method::Dense { 0.0 } else { self.model.config.sparsity };
        self.model.forward(sparsity, false)
    }

    /// The share of all weights the target mask drops.
    pub fn sparsity_reached(&self) -> Result<f64, GnnError> {
        if self.model.config.method == Method::Dense {
            return Ok(0.0);
        }
        let masks = self.model.current_masks(self.model.config.sparsity)?;
        let total: usize = masks.iter().map(Vec::len).sum();
        let dropped: usize = masks.iter().flatten().filter(|&&m| m == 0.0).count();
        #[allow(clippy::cast_precision_loss)]
        Ok(dropped as f64 / total.max(1) as f64)
    }
}

impl crate::train_loop::Steps for GcnTrainer {
    type Record = EpochRecord;
    type Snapshot = GnnSummary;
    type Error = GnnError;

    fn step(&mut self, step: u64) -> Result<EpochRecord, GnnError> {
        use candle_nn::Optimizer;
        let epoch = usize::try_from(step - 1).unwrap_or(usize::MAX);
        let sparsity = self.model.config.sparsity_at(epoch);
        let logits = self.model.forward(sparsity, true)?;
        let loss = loss_on(&logits, &self.graph, &self.graph.split.train)?;
        self.optimizer.backward_step(&loss)?;
        let loss = f64::from(loss.to_scalar::<f32>()?);
        let eval = self.evaluate()?;
        let split = &self.graph.split;
        let record = EpochRecord {
            epoch: step,
            loss,
            sparsity,
            train_acc: accuracy(&eval, &self.graph, &split.train)?,
            val_acc: accuracy(&eval, &self.graph, &split.val)?,
            test_acc: accuracy(&eval, &self.graph, &split.test)?,
            elapsed_secs: 0.0,
        };
        if record.val_acc > self.best.val_acc {
            self.best.best_epoch = step;
            self.best.val_acc = record.val_acc;
            self.best.test_acc = record.test_acc;
        }
        Ok(record)
    }

    fn stamp(&self, record: &mut EpochRecord, elapsed_secs: f64) {
        record.elapsed_secs = elapsed_secs;
    }

    fn metrics(&self, record: &EpochRecord) -> crate::control::Metrics {
        vec![("loss", record.loss), ("val_acc", record.val_acc), ("test_acc", record.test_acc)]
    }

    fn snapshot(&mut self, _step: u64) -> Result<GnnSummary, GnnError> {
        let mut summary = self.best;
        summary.sparsity_reached = self.sparsity_reached()?;
        Ok(summary)
    }
}

/// Trains a GCN on `graph` for `config.epochs` epochs and returns its figures and history.
pub fn train_gcn(
    graph: std::sync::Arc<Graph>,
    config: &GnnConfig,
    control: &crate::control::RunControl,
    on_event: &mut dyn FnMut(crate::control::RunEvent<GnnSummary>),
) -> Result<(GnnSummary, Vec<EpochRecord>), GnnError> {
    let mut trainer = GcnTrainer::new(graph, config)?;
    let schedule = crate::train_loop::Schedule { steps: config.epochs as u64, snapshot_interval_secs: 0.0 };
    let trained = crate::train_loop::train(&mut trainer, schedule, control, on_event)?;
    let mut summary = trained.snapshot;
    summary.seconds = trained.seconds;
    Ok((summary, trained.history))
}
