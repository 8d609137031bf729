//! Training that attends to hard samples: the hard training samples' losses are multiplied by a
//! weight (from the first epoch, after a warm-up half, or ramped up linearly), and the result is
//! compared with plain training from the same seeds — overall, per class, per group and on the
//! hard samples.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::HtlError;
use super::data::{HtlData, Split};
use super::pie::{RankBy, SampleScore, rank};
use super::population::{Evaluation, PopulationConfig, Trained, train_dense};
use crate::control::RunControl;

/// When the hard samples get their extra weight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Schedule {
    /// From the first epoch.
    #[default]
    Constant,
    /// Plain weights for the first half of the epochs, then the full weight.
    AfterWarmup,
    /// From 1 up to the full weight, linearly over the epochs.
    Ramp,
}

impl Schedule {
    pub const ALL: [Self; 3] = [Self::Constant, Self::AfterWarmup, Self::Ramp];

    pub fn label(self) -> &'static str {
        match self {
            Self::Constant => "constant",
            Self::AfterWarmup => "after warm-up",
            Self::Ramp => "linear ramp",
        }
    }

    pub fn cli_name(self) -> &'static str {
        match self {
            Self::Constant => "constant",
            Self::AfterWarmup => "warmup",
            Self::Ramp => "ramp",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Constant => "hard samples weigh the full weight from the first epoch",
            Self::AfterWarmup => "plain training for the first half of the epochs, then the full weight",
            Self::Ramp => "the weight grows linearly from 1 at the first epoch to the full weight at the last",
        }
    }
}

/// How training attends to the hard samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttendConfig {
    /// Loss multiplier of a hard sample (1: plain training).
    pub weight: f32,
    pub schedule: Schedule,
    /// 0: the hard set is the PIE training samples; otherwise this fraction of the training
    /// samples, hardest first by the PIE ranking.
    pub top_fraction: f64,
}

impl Default for AttendConfig {
    fn default() -> Self {
        Self { weight: 3.0, schedule: Schedule::Constant, top_fraction: 0.0 }
    }
}

impl AttendConfig {
    pub fn validate(&self) -> Result<(), HtlError> {
        if !(1.0..=100.0).contains(&self.weight) {
            return Err(HtlError::Config(format!("the hard-sample weight must be 1 to 100, got {}", self.weight)));
        }
        if !(0.0..=1.0).contains(&self.top_fraction) {
            return Err(HtlError::Config(format!(
                "the hard fraction must be 0 (PIE rule) to 1, got {}",
                self.top_fraction
            )));
        }
        Ok(())
    }

    /// The multiplier of a hard sample's loss at `epoch` (from 0) of `epochs`.
    pub fn weight_at(&self, epoch: usize, epochs: usize) -> f32 {
        match self.schedule {
            Schedule::Constant => self.weight,
            Schedule::AfterWarmup => {
                if epoch < epochs / 2 {
                    1.0
                } else {
                    self.weight
                }
            }
            Schedule::Ramp => {
                #[allow(clippy::cast_precision_loss)]
                let t = if epochs <= 1 { 1.0 } else { epoch as f32 / (epochs - 1) as f32 };
                (self.weight - 1.0).mul_add(t.min(1.0), 1.0)
            }
        }
    }
}

/// Every training sample's loss weight at `epoch`: [`AttendConfig::weight_at`] for hard ones, 1 for the rest.
pub fn sample_weights(hard: &[bool], config: &AttendConfig, epoch: usize, epochs: usize) -> Vec<f32> {
    let w = config.weight_at(epoch, epochs);
    hard.iter().map(|&h| if h { w } else { 1.0 }).collect()
}

/// Which training samples are attended to: the PIE samples, or the top fraction by the PIE ranking.
pub fn hard_set(train_scores: &[SampleScore], config: &AttendConfig) -> Vec<bool> {
    if config.top_fraction <= 0.0 {
        return train_scores.iter().map(|s| s.pie).collect();
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let count = ((config.top_fraction * train_scores.len() as f64).ceil() as usize).min(train_scores.len());
    let mut hard = vec![false; train_scores.len()];
    for &i in &rank(train_scores, RankBy::Pie)[..count] {
        hard[train_scores[i].index] = true;
    }
    hard
}

/// Accuracy of a population, averaged over its models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PopulationAccuracy {
    /// Test accuracy of each model.
    pub per_model: Vec<f64>,
    pub mean: f64,
    pub std: f64,
    /// Mean test accuracy per class and per group.
    pub per_class: Vec<f64>,
    pub per_group: Vec<f64>,
    /// Mean test accuracy on the test samples marked hard (NaN when there are none).
    pub hard_test: f64,
    /// Mean training accuracy on the attended training samples (NaN when there are none).
    pub hard_train: f64,
}

/// Mean accuracy over `models` of the samples `select` keeps (NaN when it keeps none).
fn accuracy_where(evals: &[&Evaluation], labels: &[u16], select: impl Fn(usize) -> bool) -> f64 {
    let kept: Vec<usize> = (0..labels.len()).filter(|&i| select(i)).collect();
    if kept.is_empty() || evals.is_empty() {
        return f64::NAN;
    }
    let total: usize = evals.iter().map(|e| kept.iter().filter(|&&i| e.predictions[i] == labels[i]).count()).sum();
    #[allow(clippy::cast_precision_loss)]
    let accuracy = total as f64 / (kept.len() * evals.len()) as f64;
    accuracy
}

/// The accuracies of `models` on `data`, with `hard_train` and `hard_test` marking hard samples.
pub fn population_accuracy(
    models: &[&Trained],
    data: &HtlData,
    hard_train: &[bool],
    hard_test: &[bool],
) -> PopulationAccuracy {
    let test: Vec<&Evaluation> = models.iter().map(|m| &m.test).collect();
    let train: Vec<&Evaluation> = models.iter().map(|m| &m.train).collect();
    let labels = &data.data.test.labels;
    let groups = data.groups_of(Split::Test);
    let per_model: Vec<f64> = test.iter().map(|e| e.accuracy).collect();
    let (mean, std) = crate::prune::theory::mean_std(&per_model);
    PopulationAccuracy {
        mean,
        std,
        per_class: (0..data.data.classes.len())
            .map(|c| accuracy_where(&test, labels, |i| usize::from(labels[i]) == c))
            .collect(),
        per_group: (0..data.groups.len())
            .map(|g| accuracy_where(&test, labels, |i| usize::from(groups[i]) == g))
            .collect(),
        hard_test: accuracy_where(&test, labels, |i| hard_test.get(i).copied().unwrap_or(false)),
        hard_train: accuracy_where(&train, &data.data.train.labels, |i| hard_train.get(i).copied().unwrap_or(false)),
        per_model,
    }
}

/// Plain and attended training side by side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub attend: AttendConfig,
    pub hard_train_count: usize,
    pub hard_test_count: usize,
    pub plain: PopulationAccuracy,
    pub attended: PopulationAccuracy,
}

/// Trains one dense model per seed of `config`, sample weights from `hard` and `attend` (plain
/// training when `attend` is `None`); `None` when cancelled.
pub fn train_weighted_population(
    data: &HtlData,
    config: &PopulationConfig,
    hard: &[bool],
    attend: Option<&AttendConfig>,
    control: &RunControl,
    on_epoch: &(dyn Fn(usize, usize) + Sync),
) -> Result<Option<Vec<Trained>>, HtlError> {
    config.validate()?;
    data.validate()?;
    if let Some(attend) = attend {
        attend.validate()?;
    }
    if hard.len() != data.data.train.len() {
        return Err(HtlError::Config(format!(
            "the hard set marks {} samples but there are {} training samples",
            hard.len(),
            data.data.train.len()
        )));
    }
    let total = config.models * config.epochs;
    let done = AtomicUsize::new(0);
    let weights = |epoch: usize| attend.map_or_else(Vec::new, |a| sample_weights(hard, a, epoch, config.epochs));
    let models: Vec<Option<Trained>> = (0..config.models)
        .into_par_iter()
        .map(|k| {
            let seed = config.seed.wrapping_add(k as u64);
            let mlp = train_dense(data, config, seed, &weights, control, &mut |_| {
                on_epoch(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            })?;
            Some(Trained {
                train: Evaluation::of(&mlp, &data.data.train),
                test: Evaluation::of(&mlp, &data.data.test),
                mlp,
            })
        })
        .collect();
    Ok(models.into_iter().collect())
}

/// Compares `plain` models with models trained attending to `hard_train`, both from the seeds of
/// `config`; `None` when cancelled.
#[allow(clippy::too_many_arguments)]
pub fn compare(
    data: &HtlData,
    config: &PopulationConfig,
    attend: &AttendConfig,
    hard_train: &[bool],
    hard_test: &[bool],
    plain: &[&Trained],
    control: &RunControl,
    on_epoch: &(dyn Fn(usize, usize) + Sync),
) -> Result<Option<Comparison>, HtlError> {
    if !hard_train.iter().any(|&h| h) {
        return Err(HtlError::Config(
            "no hard training samples to attend to: the PIE rule found none at these settings; raise the \
             sparsity, train more models, or attend to a top fraction instead"
                .into(),
        ));
    }
    let Some(attended) = train_weighted_population(data, config, hard_train, Some(attend), control, on_epoch)? else {
        return Ok(None);
    };
    let attended: Vec<&Trained> = attended.iter().collect();
    Ok(Some(Comparison {
        attend: attend.clone(),
        hard_train_count: hard_train.iter().filter(|&&h| h).count(),
        hard_test_count: hard_test.iter().filter(|&&h| h).count(),
        plain: population_accuracy(plain, data, hard_train, hard_test),
        attended: population_accuracy(&attended, data, hard_train, hard_test),
    }))
}
