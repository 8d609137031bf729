//! The PIE rule and hardness scores. A sample is a pruning-identified exemplar when the modal
//! prediction of the pruned population differs from the dense population's (Hooker et al.);
//! continuous scores rank the rest: the fraction of pruned models that leave the dense modal
//! class, error rates and the mean losses of both populations.

use serde::{Deserialize, Serialize};

use super::data::{HtlData, Split};
use super::population::{Populations, Trained};

/// One sample's votes and scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleScore {
    /// Index in its split.
    pub index: usize,
    pub label: u16,
    pub group: u16,
    pub dense_mode: u16,
    pub pruned_mode: u16,
    /// The PIE rule: the two modal predictions differ.
    pub pie: bool,
    /// Votes of each population, per class.
    pub dense_votes: Vec<u16>,
    pub pruned_votes: Vec<u16>,
    /// Fraction of pruned models whose prediction is not the dense modal class.
    pub disagreement: f64,
    /// Fraction of each population's models that misclassify the sample.
    pub dense_error: f64,
    pub pruned_error: f64,
    /// Mean cross-entropy on the true label over each population.
    pub dense_loss: f64,
    pub pruned_loss: f64,
}

/// The class with the most votes; ties go to the lowest class number.
pub fn modal(votes: &[u16]) -> u16 {
    let best = votes.iter().enumerate().fold((0, 0), |best, (class, &v)| if v > best.1 { (class, v) } else { best });
    u16::try_from(best.0).unwrap_or(0)
}

/// Per-class vote counts of `predictions` (one slice per model) for sample `i`.
fn votes(predictions: &[&[u16]], i: usize, classes: usize) -> Vec<u16> {
    let mut counts = vec![0_u16; classes];
    for p in predictions {
        if let Some(c) = counts.get_mut(usize::from(p[i])) {
            *c = c.saturating_add(1);
        }
    }
    counts
}

#[allow(clippy::cast_precision_loss)]
fn mean(values: impl Iterator<Item = f64>, n: usize) -> f64 {
    values.sum::<f64>() / n.max(1) as f64
}

/// Scores every sample from the predictions and losses of the two populations (one slice per
/// model, all of the same length as `labels`).
pub fn score_samples(
    dense: (&[&[u16]], &[&[f32]]),
    pruned: (&[&[u16]], &[&[f32]]),
    labels: &[u16],
    groups: &[u16],
    classes: usize,
) -> Vec<SampleScore> {
    let (dense_predictions, dense_losses) = dense;
    let (pruned_predictions, pruned_losses) = pruned;
    (0..labels.len())
        .map(|i| {
            let dense_votes = votes(dense_predictions, i, classes);
            let pruned_votes = votes(pruned_predictions, i, classes);
            let dense_mode = modal(&dense_votes);
            let pruned_mode = modal(&pruned_votes);
            let label = labels[i];
            let wrong = |p: &[&[u16]]| mean(p.iter().map(|m| f64::from(u8::from(m[i] != label))), p.len());
            SampleScore {
                index: i,
                label,
                group: groups.get(i).copied().unwrap_or(0),
                dense_mode,
                pruned_mode,
                pie: dense_mode != pruned_mode,
                disagreement: mean(
                    pruned_predictions.iter().map(|m| f64::from(u8::from(m[i] != dense_mode))),
                    pruned_predictions.len(),
                ),
                dense_error: wrong(dense_predictions),
                pruned_error: wrong(pruned_predictions),
                dense_loss: mean(dense_losses.iter().map(|l| f64::from(l[i])), dense_losses.len()),
                pruned_loss: mean(pruned_losses.iter().map(|l| f64::from(l[i])), pruned_losses.len()),
                dense_votes,
                pruned_votes,
            }
        })
        .collect()
}

/// Scores the samples of `split` from trained populations.
pub fn score_split(populations: &Populations, data: &HtlData, split: Split) -> Vec<SampleScore> {
    fn pick(models: Vec<&Trained>, split: Split) -> (Vec<&[u16]>, Vec<&[f32]>) {
        models
            .into_iter()
            .map(|t| {
                let e = if split == Split::Train { &t.train } else { &t.test };
                (e.predictions.as_slice(), e.losses.as_slice())
            })
            .unzip()
    }
    let (dp, dl) = pick(populations.dense(), split);
    let (pp, pl) = pick(populations.pruned(), split);
    score_samples((&dp, &dl), (&pp, &pl), &data.set(split).labels, data.groups_of(split), data.data.classes.len())
}

/// How samples are ranked, hardest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RankBy {
    /// PIE samples first, then by disagreement, then by the pruned population's loss.
    #[default]
    Pie,
    /// Fraction of pruned models leaving the dense modal class, then pruned loss.
    Disagreement,
    /// Mean loss of the pruned population.
    PrunedLoss,
    /// Pruned minus dense mean loss: what pruning costs this sample.
    LossGap,
}

impl RankBy {
    pub const ALL: [Self; 4] = [Self::Pie, Self::Disagreement, Self::PrunedLoss, Self::LossGap];

    pub fn label(self) -> &'static str {
        match self {
            Self::Pie => "PIE, then disagreement",
            Self::Disagreement => "vote disagreement",
            Self::PrunedLoss => "pruned loss",
            Self::LossGap => "loss gap (pruned − dense)",
        }
    }

    pub fn cli_name(self) -> &'static str {
        match self {
            Self::Pie => "pie",
            Self::Disagreement => "disagreement",
            Self::PrunedLoss => "pruned-loss",
            Self::LossGap => "loss-gap",
        }
    }

    /// The number shown as a sample's score under this ranking.
    pub fn score(self, s: &SampleScore) -> f64 {
        match self {
            Self::Pie => f64::from(u8::from(s.pie)) + s.disagreement,
            Self::Disagreement => s.disagreement,
            Self::PrunedLoss => s.pruned_loss,
            Self::LossGap => s.pruned_loss - s.dense_loss,
        }
    }
}

/// Positions in `scores` from the hardest sample to the easiest; ties go to the lower index.
pub fn rank(scores: &[SampleScore], by: RankBy) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (&scores[a], &scores[b]);
        by.score(sb)
            .total_cmp(&by.score(sa))
            .then(sb.pruned_loss.total_cmp(&sa.pruned_loss))
            .then(sa.index.cmp(&sb.index))
    });
    order
}

/// How many of a category's samples are hard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub name: String,
    pub hard: usize,
    pub total: usize,
}

impl Rate {
    pub fn fraction(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let f = self.hard as f64 / self.total.max(1) as f64;
        f
    }
}

/// PIE rates of each category, `category(sample)` indexing `names`.
pub fn rates(scores: &[SampleScore], names: &[String], category: impl Fn(&SampleScore) -> usize) -> Vec<Rate> {
    let mut out: Vec<Rate> = names.iter().map(|n| Rate { name: n.clone(), hard: 0, total: 0 }).collect();
    for s in scores {
        if let Some(rate) = out.get_mut(category(s)) {
            rate.total += 1;
            rate.hard += usize::from(s.pie);
        }
    }
    out
}

/// PIE rates per class and per group.
pub fn class_and_group_rates(scores: &[SampleScore], data: &HtlData) -> (Vec<Rate>, Vec<Rate>) {
    (rates(scores, &data.data.classes, |s| usize::from(s.label)), rates(scores, &data.groups, |s| usize::from(s.group)))
}
