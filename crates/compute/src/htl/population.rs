//! Populations of dense and pruned classifiers: model `k` is trained densely from seed
//! `seed + k`, then its weights are magnitude-pruned layer by layer to the chosen sparsity and
//! fine-tuned with the mask fixed. Models train side by side on the rayon pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::HtlError;
use super::data::HtlData;
use super::mlp::{Mlp, TrainSpec};
use crate::control::RunControl;
use crate::prune::data::ImageSet;

/// How the populations are trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PopulationConfig {
    /// Models in each population (dense and pruned).
    pub models: usize,
    /// Units of each of the two hidden layers.
    pub hidden: usize,
    /// Epochs of dense training.
    pub epochs: usize,
    /// Epochs of fine-tuning after pruning.
    pub finetune_epochs: usize,
    pub batch: usize,
    pub learning_rate: f32,
    /// Fraction of each layer's weights removed by magnitude.
    pub sparsity: f64,
    /// Model `k` starts from seed `seed + k`.
    pub seed: u64,
}

impl Default for PopulationConfig {
    fn default() -> Self {
        Self {
            models: 5,
            hidden: 128,
            epochs: 20,
            finetune_epochs: 5,
            batch: 32,
            learning_rate: 1e-3,
            sparsity: 0.5,
            seed: 0,
        }
    }
}

impl PopulationConfig {
    pub fn validate(&self) -> Result<(), HtlError> {
        let check = |ok: bool, what: String| if ok { Ok(()) } else { Err(HtlError::Config(what)) };
        check((1..=64).contains(&self.models), format!("models per population must be 1 to 64, got {}", self.models))?;
        check((2..=4096).contains(&self.hidden), format!("hidden units must be 2 to 4096, got {}", self.hidden))?;
        check((1..=1000).contains(&self.epochs), format!("epochs must be 1 to 1000, got {}", self.epochs))?;
        check(
            self.finetune_epochs <= 1000,
            format!("fine-tuning epochs must be at most 1000, got {}", self.finetune_epochs),
        )?;
        check((1..=4096).contains(&self.batch), format!("the batch must be 1 to 4096, got {}", self.batch))?;
        check(
            self.learning_rate > 0.0 && self.learning_rate <= 1.0,
            format!("the learning rate must be in (0, 1], got {}", self.learning_rate),
        )?;
        check((0.0..=0.99).contains(&self.sparsity), format!("the sparsity must be 0 to 0.99, got {}", self.sparsity))
    }

    /// Epochs one model trains for, dense and fine-tuning together.
    pub fn epochs_per_model(&self) -> usize {
        self.epochs + self.finetune_epochs
    }

    fn spec(&self, seed: u64, epochs: usize) -> TrainSpec {
        TrainSpec { epochs, batch: self.batch, learning_rate: self.learning_rate, seed }
    }
}

/// One model's predictions and losses on a set.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub predictions: Vec<u16>,
    /// Cross-entropy on the true label.
    pub losses: Vec<f32>,
    pub accuracy: f64,
}

impl Evaluation {
    pub fn of(mlp: &Mlp, set: &ImageSet) -> Self {
        let (predictions, losses) = mlp.predict(set);
        let correct = predictions.iter().zip(&set.labels).filter(|(p, l)| p == l).count();
        #[allow(clippy::cast_precision_loss)]
        let accuracy = correct as f64 / set.len().max(1) as f64;
        Self { predictions, losses, accuracy }
    }
}

/// A trained model evaluated on the training and test sets.
#[derive(Clone, Debug, PartialEq)]
pub struct Trained {
    pub mlp: Mlp,
    pub train: Evaluation,
    pub test: Evaluation,
}

impl Trained {
    fn new(mlp: Mlp, data: &HtlData) -> Self {
        let train = Evaluation::of(&mlp, &data.data.train);
        let test = Evaluation::of(&mlp, &data.data.test);
        Self { mlp, train, test }
    }
}

/// Model `k` of both populations.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelPair {
    pub seed: u64,
    pub dense: Trained,
    pub pruned: Trained,
    pub seconds: f64,
}

/// Both populations, in seed order.
#[derive(Clone, Debug, PartialEq)]
pub struct Populations {
    pub config: PopulationConfig,
    pub pairs: Vec<ModelPair>,
    pub seconds: f64,
}

impl Populations {
    pub fn dense(&self) -> Vec<&Trained> {
        self.pairs.iter().map(|p| &p.dense).collect()
    }

    pub fn pruned(&self) -> Vec<&Trained> {
        self.pairs.iter().map(|p| &p.pruned).collect()
    }
}

/// What population training reports while it runs.
#[derive(Clone, Debug)]
pub enum PopulationProgress {
    /// `done` of `total` epochs over all models.
    Epoch { done: usize, total: usize, loss: f64 },
    /// A model of both populations is finished.
    ModelDone(Box<ModelPair>),
}

/// Trains one dense model from `seed`, sample `i` weighted by `weights(epoch)[i]`; `None` when cancelled.
pub fn train_dense(
    data: &HtlData,
    config: &PopulationConfig,
    seed: u64,
    weights: &dyn Fn(usize) -> Vec<f32>,
    control: &RunControl,
    on_epoch: &mut dyn FnMut(f64),
) -> Option<Mlp> {
    let set = &data.data.train;
    let mut mlp = Mlp::new(set.image_size(), config.hidden, data.data.classes.len(), seed);
    let done = mlp.train(set, config.spec(seed, config.epochs), None, weights, control, &mut |_, loss| on_epoch(loss));
    done.then_some(mlp)
}

/// Both populations; `None` when cancelled.
pub fn train_populations(
    data: &HtlData,
    config: &PopulationConfig,
    control: &RunControl,
    on_progress: &(dyn Fn(PopulationProgress) + Sync),
) -> Result<Option<Populations>, HtlError> {
    config.validate()?;
    data.validate()?;
    let start = Instant::now();
    let total = config.models * config.epochs_per_model();
    let done = AtomicUsize::new(0);
    let tick = |loss: f64| {
        let done = done.fetch_add(1, Ordering::Relaxed) + 1;
        on_progress(PopulationProgress::Epoch { done, total, loss });
    };
    let unit = |_: usize| Vec::new();
    let pairs: Vec<Option<ModelPair>> = (0..config.models)
        .into_par_iter()
        .map(|k| {
            let model_start = Instant::now();
            let seed = config.seed.wrapping_add(k as u64);
            let dense = train_dense(data, config, seed, &unit, control, &mut |loss| tick(loss))?;
            let mut pruned = dense.clone();
            let mask = pruned.magnitude_mask(config.sparsity);
            let spec = config.spec(seed ^ 0xF1E7, config.finetune_epochs);
            let finished = pruned.train(&data.data.train, spec, Some(&mask), &unit, control, &mut |_, loss| tick(loss));
            if !finished {
                return None;
            }
            let pair = ModelPair {
                seed,
                dense: Trained::new(dense, data),
                pruned: Trained::new(pruned, data),
                seconds: model_start.elapsed().as_secs_f64(),
            };
            on_progress(PopulationProgress::ModelDone(Box::new(pair.clone())));
            Some(pair)
        })
        .collect();
    let pairs: Option<Vec<ModelPair>> = pairs.into_iter().collect();
    Ok(pairs.map(|pairs| Populations { config: config.clone(), pairs, seconds: start.elapsed().as_secs_f64() }))
}
