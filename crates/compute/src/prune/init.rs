//! Pruning at initialization on real images: an MLP or a small CNN (candle), five ways to score
//! the weights before training (random, magnitude, SNIP, GraSP, SynFlow), masks fixed through
//! training, and the accuracy each reaches at each sparsity.
//!
//! Scores (higher is kept): random — uniform, kept per layer at the same density; magnitude —
//! `|θ|`; SNIP — `|θ ⊙ ∂L/∂θ|`; GraSP — `−(−θ ⊙ Hg)`, i.e. the weights whose removal would reduce
//! the gradient flow `gᵀg` least are pruned first, with `Hg` from a central difference of
//! gradients along `g`; SynFlow — `θ ⊙ ∂R/∂θ` of `R = 1ᵀ f(1)` through the network with absolute
//! weights, pruned iteratively on an exponential schedule without data. All but random rank the
//! weights of every layer together.

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::PruneError;
use super::data::{ImageSet, LabelledData};
use crate::control::RunControl;

/// Most weights a network may have (the scores are kept in f64 per method).
const MAX_PARAMETERS: usize = 20_000_000;

/// The network pruned.
pub use crate::nets::ModelKind;

/// How weights are scored before training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    Random,
    Magnitude,
    Snip,
    Grasp,
    SynFlow,
}

impl Method {
    pub const ALL: [Self; 5] = [Self::Random, Self::Magnitude, Self::Snip, Self::Grasp, Self::SynFlow];

    pub fn label(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::Magnitude => "magnitude",
            Self::Snip => "SNIP",
            Self::Grasp => "GraSP",
            Self::SynFlow => "SynFlow",
        }
    }

    pub fn cli_name(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::Magnitude => "magnitude",
            Self::Snip => "snip",
            Self::Grasp => "grasp",
            Self::SynFlow => "synflow",
        }
    }

    pub fn from_cli_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.cli_name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Random => "Keep weights at random, the same fraction in every layer",
            Self::Magnitude => "Keep the largest initial weights |θ| (all layers ranked together)",
            Self::Snip => "Keep the weights with the largest connection sensitivity |θ·∂L/∂θ| on a batch",
            Self::Grasp => "Prune the weights whose removal reduces the gradient flow least (−θ·Hg)",
            Self::SynFlow => "Keep the weights carrying the most synaptic flow, iteratively and without data",
        }
    }
}

/// Settings of a comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InitConfig {
    pub model: ModelKind,
    /// Units of each hidden MLP layer.
    pub hidden: usize,
    pub methods: Vec<Method>,
    /// Fractions of weights removed (0 is the dense baseline, trained once).
    pub sparsities: Vec<f64>,
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f64,
    /// Training images used (0: all).
    pub train_limit: usize,
    /// Samples the data-driven scores (SNIP, GraSP) look at.
    pub score_samples: usize,
    pub synflow_iterations: usize,
    pub seed: u64,
}

impl Default for InitConfig {
    fn default() -> Self {
        Self {
            model: ModelKind::Mlp,
            hidden: 100,
            methods: Method::ALL.to_vec(),
            sparsities: vec![0.0, 0.5, 0.8, 0.9, 0.95, 0.98],
            epochs: 15,
            batch: 64,
            learning_rate: 1e-3,
            train_limit: 0,
            score_samples: 256,
            synflow_iterations: 100,
            seed: 0,
        }
    }
}

impl InitConfig {
    /// The networks a comparison trains, in order: the dense one (when sparsity 0 is asked
    /// for) once, then every method at every other sparsity.
    pub fn runs(&self) -> Vec<(Option<Method>, f64)> {
        let dense = self.sparsities.contains(&0.0).then_some((None, 0.0));
        let pruned = self
            .methods
            .iter()
            .flat_map(|&method| self.sparsities.iter().filter(|&&s| s > 0.0).map(move |&s| (Some(method), s)));
        dense.into_iter().chain(pruned).collect()
    }

    pub fn validate(&self) -> Result<(), PruneError> {
        let bad = |what: String| Err(PruneError::Config(what));
        if self.methods.is_empty() || self.sparsities.is_empty() {
            return bad("pick at least one method and one sparsity".into());
        }
        if let Some(s) = self.sparsities.iter().find(|s| !(0.0..1.0).contains(*s)) {
            return bad(format!("sparsities must be in [0, 1), got {s}"));
        }
        if !(4..=4096).contains(&self.hidden) || !(1..=1000).contains(&self.epochs) || !(1..=4096).contains(&self.batch)
        {
            return bad(format!(
                "hidden units must be 4 to 4096, epochs 1 to 1000 and the batch 1 to 4096 (got {}, {}, {})",
                self.hidden, self.epochs, self.batch
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return bad(format!("the learning rate must be in (0, 1), got {}", self.learning_rate));
        }
        if !(1..=4096).contains(&self.score_samples) || !(1..=10_000).contains(&self.synflow_iterations) {
            return bad("score samples must be 1 to 4096 and SynFlow iterations 1 to 10000".into());
        }
        Ok(())
    }
}

/// One prunable layer's shape, for display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub name: String,
    pub shape: Vec<usize>,
}

/// The network: parameters `[w₀, b₀, w₁, b₁, …]`, f32.
pub struct Net {
    kind: ModelKind,
    vars: Vec<Var>,
    input: (usize, usize, usize),
    layers: Vec<LayerInfo>,
}

impl Net {
    pub fn new(
        kind: ModelKind,
        input: (usize, usize, usize),
        hidden: usize,
        classes: usize,
        seed: u64,
    ) -> Result<Self, PruneError> {
        let layers = layer_shapes(kind, input, hidden, classes)?;
        let shapes: Vec<Vec<usize>> = layers.iter().map(|layer| layer.shape.clone()).collect();
        let vars = crate::nets::init_params(&shapes, seed, &Device::Cpu)?;
        Ok(Self { kind, vars, input, layers })
    }

    pub fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    /// Current values of the prunable weights, one vector per layer.
    pub fn weights(&self) -> Result<Vec<Vec<f32>>, PruneError> {
        (0..self.layers.len()).map(|l| Ok(self.vars[2 * l].as_tensor().flatten_all()?.to_vec1::<f32>()?)).collect()
    }

    /// Current biases, one vector per layer.
    pub fn biases(&self) -> Result<Vec<Vec<f32>>, PruneError> {
        (0..self.layers.len()).map(|l| Ok(self.vars[2 * l + 1].as_tensor().flatten_all()?.to_vec1::<f32>()?)).collect()
    }

    /// Replaces the prunable weights (one vector per layer, in layer order).
    pub fn set_weights(&self, weights: &[Vec<f32>]) -> Result<(), PruneError> {
        for (l, values) in weights.iter().enumerate() {
            let var = &self.vars[2 * l];
            var.set(&Tensor::from_slice(values, var.as_tensor().shape(), &Device::Cpu)?)?;
        }
        Ok(())
    }

    /// Logits of `x` (`n × C × H × W`) through the network with parameters `params`.
    fn forward_with(&self, x: &Tensor, params: &[Tensor]) -> candle_core::Result<Tensor> {
        self.kind.forward(x, params)
    }

    fn batch(&self, set: &ImageSet, indices: &[usize], dtype: DType) -> candle_core::Result<(Tensor, Tensor)> {
        let size = set.image_size();
        let mut values = Vec::with_capacity(indices.len() * size);
        for &i in indices {
            values.extend_from_slice(&set.pixels[i * size..(i + 1) * size]);
        }
        let (c, h, w) = self.input;
        let x = Tensor::from_vec(values, (indices.len(), c, h, w), &Device::Cpu)?.to_dtype(dtype)?;
        let y = Tensor::from_vec(
            indices.iter().map(|&i| u32::from(set.labels[i])).collect::<Vec<u32>>(),
            indices.len(),
            &Device::Cpu,
        )?;
        Ok((x, y))
    }

    /// Parameters as f64 tensors, with weights replaced by `weights` when given.
    fn params_f64(&self, weights: Option<&[Vec<f64>]>) -> candle_core::Result<Vec<Tensor>> {
        self.vars
            .iter()
            .enumerate()
            .map(|(k, var)| match (weights, k % 2) {
                (Some(w), 0) => Tensor::from_slice(&w[k / 2], var.as_tensor().shape(), &Device::Cpu),
                _ => var.as_tensor().to_dtype(DType::F64),
            })
            .collect()
    }

    /// Gradient of the mean cross-entropy on `(x, y)` with respect to each layer's weights, in f64.
    fn weight_gradient(&self, params: &[Tensor], x: &Tensor, y: &Tensor) -> candle_core::Result<Vec<Vec<f64>>> {
        let vars: Vec<Var> = params.iter().map(Var::from_tensor).collect::<candle_core::Result<_>>()?;
        let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let loss = candle_nn::loss::cross_entropy(&self.forward_with(x, &tensors)?, y)?;
        let grads = loss.backward()?;
        (0..self.layers.len())
            .map(|l| match grads.get(vars[2 * l].as_tensor()) {
                Some(g) => g.flatten_all()?.to_vec1::<f64>(),
                None => Ok(vec![0.0; vars[2 * l].as_tensor().elem_count()]),
            })
            .collect()
    }
}

/// Per-layer scores of `method` for `net` (higher: keep), and for SynFlow the mask it settles on.
pub fn scores(
    method: Method,
    net: &Net,
    data: &ImageSet,
    config: &InitConfig,
    density: f64,
) -> Result<Vec<Vec<f64>>, PruneError> {
    let weights: Vec<Vec<f64>> = net.weights()?.into_iter().map(|w| w.into_iter().map(f64::from).collect()).collect();
    let sample: Vec<usize> = {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5C0E);
        // Only from the images training will use.
        let limit = if config.train_limit == 0 { data.len() } else { config.train_limit.min(data.len()) };
        let mut all: Vec<usize> = (0..limit).collect();
        all.shuffle(&mut rng);
        all.truncate(config.score_samples.min(data.len()));
        all
    };
    Ok(match method {
        Method::Random => {
            let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x4A4D);
            weights.iter().map(|w| w.iter().map(|_| rng.random::<f64>()).collect()).collect()
        }
        Method::Magnitude => weights.iter().map(|w| w.iter().map(|v| v.abs()).collect()).collect(),
        Method::Snip => {
            let (x, y) = net.batch(data, &sample, DType::F64)?;
            let grads = net.weight_gradient(&net.params_f64(None)?, &x, &y)?;
            weights.iter().zip(&grads).map(|(w, g)| w.iter().zip(g).map(|(w, g)| (w * g).abs()).collect()).collect()
        }
        Method::Grasp => {
            let (x, y) = net.batch(data, &sample, DType::F64)?;
            let hg = hessian_gradient(net, &weights, &x, &y)?;
            // GraSP's score is −θ ⊙ Hg and the largest are pruned: keep by its negation.
            weights.iter().zip(&hg).map(|(w, hg)| w.iter().zip(hg).map(|(w, h)| w * h).collect()).collect()
        }
        Method::SynFlow => synflow(net, &weights, config.synflow_iterations, density)?,
    })
}

/// `H g` (Hessian of the loss times its gradient, both at the weights) by a central difference
/// of gradients: `(∇L(θ + εĝ) − ∇L(θ − εĝ)) / 2ε · ‖g‖`.
pub fn hessian_gradient(net: &Net, weights: &[Vec<f64>], x: &Tensor, y: &Tensor) -> Result<Vec<Vec<f64>>, PruneError> {
    let g = net.weight_gradient(&net.params_f64(Some(weights))?, x, y)?;
    let norm = g.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
    if norm == 0.0 {
        return Ok(g.iter().map(|layer| vec![0.0; layer.len()]).collect());
    }
    let scale = weights.iter().flatten().map(|v| v * v).sum::<f64>().sqrt().max(1.0);
    let eps = 1e-4 * scale;
    let shifted = |sign: f64| -> Result<Vec<Vec<f64>>, PruneError> {
        let moved: Vec<Vec<f64>> = weights
            .iter()
            .zip(&g)
            .map(|(w, g)| w.iter().zip(g).map(|(w, g)| w + sign * eps * g / norm).collect())
            .collect();
        Ok(net.weight_gradient(&net.params_f64(Some(&moved))?, x, y)?)
    };
    let (plus, minus) = (shifted(1.0)?, shifted(-1.0)?);
    Ok(plus
        .iter()
        .zip(&minus)
        .map(|(p, m)| p.iter().zip(m).map(|(p, m)| (p - m) / (2.0 * eps) * norm).collect())
        .collect())
}

/// SynFlow scores after `iterations` rounds of pruning towards `density`; pruned weights score 0.
fn synflow(net: &Net, weights: &[Vec<f64>], iterations: usize, density: f64) -> Result<Vec<Vec<f64>>, PruneError> {
    let (c, h, w) = net.input;
    let ones = Tensor::ones((1, c, h, w), DType::F64, &Device::Cpu)?;
    let mut mask: Vec<Vec<bool>> = weights.iter().map(|w| vec![true; w.len()]).collect();
    let mut scores = Vec::new();
    for k in 1..=iterations {
        let absolute: Vec<Vec<f64>> = weights
            .iter()
            .zip(&mask)
            .map(|(w, m)| w.iter().zip(m).map(|(w, &keep)| if keep { w.abs() } else { 0.0 }).collect())
            .collect();
        let params: Vec<Tensor> =
            net.params_f64(Some(&absolute))?.into_iter().map(|t| t.abs()).collect::<candle_core::Result<_>>()?;
        let vars: Vec<Var> = params.iter().map(Var::from_tensor).collect::<candle_core::Result<_>>()?;
        let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let flow = net.forward_with(&ones, &tensors)?.sum_all()?;
        let grads = flow.backward()?;
        scores = (0..absolute.len())
            .map(|l| {
                let g = match grads.get(vars[2 * l].as_tensor()) {
                    Some(g) => g.flatten_all()?.to_vec1::<f64>()?,
                    None => vec![0.0; absolute[l].len()],
                };
                Ok(absolute[l].iter().zip(&g).map(|(w, g)| w * g).collect())
            })
            .collect::<Result<Vec<Vec<f64>>, PruneError>>()?;
        #[allow(clippy::cast_precision_loss)]
        let keep = density.powf(k as f64 / iterations as f64);
        mask = select(&scores, keep, true);
    }
    Ok(scores
        .iter()
        .zip(&mask)
        .map(|(s, m)| s.iter().zip(m).map(|(s, &k)| if k { *s } else { 0.0 }).collect())
        .collect())
}

/// Keeps `density` of the weights with the highest scores: over all layers together (`global`)
/// or the same fraction of each layer. Ties go to the lower index.
pub fn select(scores: &[Vec<f64>], density: f64, global: bool) -> Vec<Vec<bool>> {
    let keep_count = |n: usize| -> usize {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let k = (density * n as f64).round() as usize;
        k.min(n)
    };
    let rank = |items: &mut Vec<(f64, usize, usize)>| {
        items.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    };
    let mut masks: Vec<Vec<bool>> = scores.iter().map(|s| vec![false; s.len()]).collect();
    if global {
        let mut all: Vec<(f64, usize, usize)> =
            scores.iter().enumerate().flat_map(|(l, s)| s.iter().enumerate().map(move |(i, &v)| (v, l, i))).collect();
        rank(&mut all);
        let k = keep_count(all.len());
        for &(_, l, i) in &all[..k] {
            masks[l][i] = true;
        }
    } else {
        for (l, s) in scores.iter().enumerate() {
            let mut items: Vec<(f64, usize, usize)> = s.iter().enumerate().map(|(i, &v)| (v, l, i)).collect();
            rank(&mut items);
            for &(_, _, i) in &items[..keep_count(items.len())] {
                masks[l][i] = true;
            }
        }
    }
    masks
}

/// The mask `method` keeps at `sparsity` for `net` at its current (initial) weights.
pub fn prune_mask(
    method: Method,
    net: &Net,
    data: &ImageSet,
    config: &InitConfig,
    sparsity: f64,
) -> Result<Vec<Vec<bool>>, PruneError> {
    let density = 1.0 - sparsity;
    if sparsity == 0.0 {
        return Ok(net.layers.iter().map(|l| vec![true; l.shape.iter().product()]).collect());
    }
    let scores = scores(method, net, data, config, density)?;
    Ok(select(&scores, density, method != Method::Random))
}

/// One trained network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitResult {
    pub method: Option<Method>,
    pub sparsity: f64,
    pub test_accuracy: f64,
    pub train_loss: f64,
    /// Kept fraction of each layer.
    pub densities: Vec<f64>,
    /// Test accuracy after each epoch.
    pub history: Vec<f64>,
    pub seconds: f64,
    #[serde(skip)]
    pub masks: Vec<Vec<bool>>,
}

/// Trains `net` with its weights held to `masks`; `None` when cancelled.
pub fn train_masked(
    net: &Net,
    masks: &[Vec<bool>],
    data: &LabelledData,
    config: &InitConfig,
    control: &RunControl,
    on_epoch: &mut dyn FnMut(usize, f64),
) -> Result<Option<(f64, f64, Vec<f64>)>, PruneError> {
    let mask_tensors: Vec<Tensor> = net
        .layers
        .iter()
        .zip(masks)
        .map(|(layer, m)| {
            let values: Vec<f32> = m.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
            Tensor::from_vec(values, layer.shape.as_slice(), &Device::Cpu)
        })
        .collect::<candle_core::Result<_>>()?;
    let apply_masks = || -> candle_core::Result<()> {
        for (l, mask) in mask_tensors.iter().enumerate() {
            let var = &net.vars[2 * l];
            var.set(&var.as_tensor().mul(mask)?)?;
        }
        Ok(())
    };
    apply_masks()?;
    let mut optimizer = AdamW::new(
        net.vars.clone(),
        ParamsAdamW { lr: config.learning_rate, weight_decay: 0.0, ..ParamsAdamW::default() },
    )?;
    let train = &data.train;
    let limit = if config.train_limit == 0 { train.len() } else { config.train_limit.min(train.len()) };
    let mut order: Vec<usize> = (0..limit).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x7A17);
    let mut history = Vec::new();
    let mut last_loss = f64::NAN;
    for epoch in 1..=config.epochs {
        order.shuffle(&mut rng);
        let (mut loss_sum, mut batches) = (0.0, 0_u32);
        for batch in order.chunks(config.batch) {
            if !control.checkpoint() {
                return Ok(None);
            }
            let (x, y) = net.batch(train, batch, DType::F32)?;
            let params: Vec<Tensor> = net.vars.iter().map(|v| v.as_tensor().clone()).collect();
            let loss = candle_nn::loss::cross_entropy(&net.forward_with(&x, &params)?, &y)?;
            // Pruned weights get no gradient: masks zero theirs before the step.
            let mut grads = loss.backward()?;
            for (l, mask) in mask_tensors.iter().enumerate() {
                let weight = net.vars[2 * l].as_tensor();
                if let Some(g) = grads.remove(weight) {
                    grads.insert(weight, g.mul(mask)?);
                }
            }
            optimizer.step(&grads)?;
            apply_masks()?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?);
            batches += 1;
        }
        last_loss = loss_sum / f64::from(batches.max(1));
        if !last_loss.is_finite() {
            return Err(PruneError::Diverged {
                what: "the training loss",
                value: last_loss,
                at: format!("epoch {epoch}"),
                advice: "Lower the learning rate.",
            });
        }
        let accuracy = test_accuracy(net, &data.test)?;
        history.push(accuracy);
        on_epoch(epoch, accuracy);
    }
    let accuracy = history.last().copied().unwrap_or(f64::NAN);
    Ok(Some((accuracy, last_loss, history)))
}

/// Fraction of `set` classified correctly.
pub fn test_accuracy(net: &Net, set: &ImageSet) -> Result<f64, PruneError> {
    let mut correct = 0_usize;
    let indices: Vec<usize> = (0..set.len()).collect();
    let params: Vec<Tensor> = net.vars.iter().map(|v| v.as_tensor().clone()).collect();
    for chunk in indices.chunks(1024) {
        let (x, _) = net.batch(set, chunk, DType::F32)?;
        let predicted: Vec<u32> = net.forward_with(&x, &params)?.argmax(1)?.to_vec1()?;
        correct += chunk.iter().zip(&predicted).filter(|(i, p)| u32::from(set.labels[**i]) == **p).count();
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(correct as f64 / set.len().max(1) as f64)
}

/// What the comparison reports while it runs.
#[derive(Clone, Debug)]
pub enum InitProgress {
    /// Run `run` of `runs` finished.
    RunDone {
        run: usize,
        runs: usize,
        result: InitResult,
    },
    Epoch {
        run: usize,
        epoch: usize,
        accuracy: f64,
    },
}

/// Every method at every sparsity, each from the same initial weights; the dense network (sparsity
/// 0) is trained once. `None` when cancelled.
pub fn compare(
    data: &LabelledData,
    config: &InitConfig,
    control: &RunControl,
    on_progress: &mut dyn FnMut(InitProgress),
) -> Result<Option<Vec<InitResult>>, PruneError> {
    config.validate()?;
    if data.train.is_empty() || data.test.is_empty() {
        return Err(PruneError::DataSet(format!("{}: needs training and test images", data.name)));
    }
    let input = (data.train.channels, data.train.height, data.train.width);
    let classes = data.classes.len();
    if let Some(label) = data.train.labels.iter().chain(&data.test.labels).find(|&&l| usize::from(l) >= classes) {
        return Err(PruneError::DataSet(format!("{}: label {label} but only {classes} classes", data.name)));
    }
    let runs = config.runs();
    let total = runs.len();
    let mut results = Vec::new();
    for (run, (method, sparsity)) in runs.into_iter().enumerate() {
        let start = Instant::now();
        let net = Net::new(config.model, input, config.hidden, classes, config.seed)?;
        let masks = prune_mask(method.unwrap_or(Method::Random), &net, &data.train, config, sparsity)?;
        let trained = train_masked(&net, &masks, data, config, control, &mut |epoch, accuracy| {
            on_progress(InitProgress::Epoch { run, epoch, accuracy });
        })?;
        let Some((test_accuracy, train_loss, history)) = trained else { return Ok(None) };
        #[allow(clippy::cast_precision_loss)]
        let densities = masks.iter().map(|m| m.iter().filter(|&&k| k).count() as f64 / m.len().max(1) as f64).collect();
        let result = InitResult {
            method,
            sparsity,
            test_accuracy,
            train_loss,
            densities,
            history,
            seconds: start.elapsed().as_secs_f64(),
            masks,
        };
        on_progress(InitProgress::RunDone { run, runs: total, result: result.clone() });
        results.push(result);
    }
    Ok(Some(results))
}

/// Per-layer shapes of the network `config` builds for `data`.
pub fn layer_infos(data: &LabelledData, config: &InitConfig) -> Result<Vec<LayerInfo>, PruneError> {
    let input = (data.train.channels, data.train.height, data.train.width);
    layer_shapes(config.model, input, config.hidden, data.classes.len())
}

/// The prunable layers of a `kind` network for `input` images (channels, height, width);
/// networks too large for memory are refused.
fn layer_shapes(
    kind: ModelKind,
    (c, h, w): (usize, usize, usize),
    hidden: usize,
    classes: usize,
) -> Result<Vec<LayerInfo>, PruneError> {
    let shapes = kind.layers((c, h, w), hidden, classes).map_err(PruneError::Config)?;
    let parameters: usize = shapes.iter().map(|(_, shape)| shape.iter().product::<usize>()).sum();
    if parameters > MAX_PARAMETERS {
        return Err(PruneError::Config(format!(
            "the {} would have {parameters} weights for {c}×{h}×{w} images; keep it under {MAX_PARAMETERS} \
             (smaller images or fewer hidden units)",
            kind.label()
        )));
    }
    Ok(shapes.into_iter().map(|(name, shape)| LayerInfo { name: name.to_owned(), shape }).collect())
}
