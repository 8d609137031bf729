//! The lab's studies over many runs: accuracy against sparsity for the three methods, accuracy
//! and over-smoothing (MAD) against depth, and out-of-distribution detection of held-out classes.

use std::sync::Arc;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::graph::Graph;
use super::model::{self, GnnConfig, GnnError, GnnSummary, Method};
use crate::control::RunControl;

/// Rows of the similarity matrix computed at once (bounds MAD's memory on large graphs).
const MAD_BLOCK: usize = 512;

/// Mean average cosine distance of the rows of `h` (`n × d`, row-major), as Chen et al. (2020)
/// define it: `Dᵢⱼ = 1 − cos(hᵢ, hⱼ)`, each node's mean over its non-zero distances, then the
/// mean over nodes with a non-zero mean. Zero rows (nodes whose ReLUs are all off) have no
/// direction and are left out: scikit-learn's convention, distance 1 from everything, would
/// score a network whose last layer died as perfectly spread. 0 when every row points the same
/// way (or fewer than two rows are non-zero); larger is more spread.
pub fn mad(h: &[f32], n: usize, d: usize) -> f64 {
    if n == 0 || d == 0 {
        return 0.0;
    }
    let mut unit = Vec::with_capacity(n * d);
    for row in h[..n * d].chunks_exact(d) {
        let norm = row.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt();
        if norm > 0.0 {
            #[allow(clippy::cast_possible_truncation)]
            let inv = (1.0 / norm) as f32;
            unit.extend(row.iter().map(|v| v * inv));
        }
    }
    let n = unit.len() / d;
    if n < 2 {
        return 0.0;
    }
    let all = MatRef::from_row_major_slice(&unit, n, d);
    let (mut total, mut counted) = (0.0_f64, 0_usize);
    let mut block = vec![0.0_f32; MAD_BLOCK.min(n) * n];
    for start in (0..n).step_by(MAD_BLOCK) {
        let rows = MAD_BLOCK.min(n - start);
        let out = MatMut::from_row_major_slice_mut(&mut block[..rows * n], rows, n);
        matmul(out, Accum::Replace, all.subrows(start, rows), all.transpose(), 1.0, Par::rayon(0));
        for similarities in block[..rows * n].chunks_exact(n) {
            let (mut sum, mut nonzero) = (0.0_f64, 0_usize);
            for &s in similarities {
                let distance = (1.0 - f64::from(s)).clamp(0.0, 2.0);
                // Rounding leaves ~1e-7 between a row and itself.
                if distance > 1e-6 {
                    sum += distance;
                    nonzero += 1;
                }
            }
            if nonzero > 0 {
                #[allow(clippy::cast_precision_loss)]
                let mean = sum / nonzero as f64;
                total += mean;
                counted += 1;
            }
        }
    }
    #[allow(clippy::cast_precision_loss)]
    if counted == 0 { 0.0 } else { total / counted as f64 }
}

/// The area under the ROC curve of `positives` scored above `negatives` (the Mann–Whitney
/// statistic; ties count half). 0.5 when either side is empty.
pub fn auroc(positives: &[f64], negatives: &[f64]) -> f64 {
    if positives.is_empty() || negatives.is_empty() {
        return 0.5;
    }
    let mut all: Vec<(f64, bool)> =
        positives.iter().map(|&s| (s, true)).chain(negatives.iter().map(|&s| (s, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the positives' ranks (1-based, ties at their mean rank).
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        #[allow(clippy::cast_precision_loss)]
        let mean_rank = (i + j + 1) as f64 / 2.0;
        #[allow(clippy::cast_precision_loss)]
        let positives_here = all[i..j].iter().filter(|x| x.1).count() as f64;
        rank_sum += mean_rank * positives_here;
        i = j;
    }
    #[allow(clippy::cast_precision_loss)]
    let (p, q) = (positives.len() as f64, negatives.len() as f64);
    (rank_sum - p * (p + 1.0) / 2.0) / (p * q)
}

/// A sweep's cell: one method at one sparsity (and depth), every seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub method: Method,
    pub sparsity: f64,
    pub layers: usize,
    pub seed: u64,
    pub test_acc: f64,
    pub val_acc: f64,
    pub sparsity_reached: f64,
    pub seconds: f64,
    /// MAD of each layer's output (depth study; empty otherwise).
    pub mad: Vec<f64>,
}

/// The runs of a sweep, in order: each method, at each sparsity (dense once, at 0), at each
/// depth, each seed.
pub fn sweep_grid(
    base: &GnnConfig,
    methods: &[Method],
    sparsities: &[f64],
    depths: &[usize],
    seeds: u64,
) -> Vec<GnnConfig> {
    let mut grid = Vec::new();
    for &method in methods {
        let levels: Vec<f64> = if method == Method::Dense { vec![0.0] } else { sparsities.to_vec() };
        for &sparsity in &levels {
            for &layers in depths {
                for seed in 0..seeds {
                    grid.push(GnnConfig {
                        method,
                        sparsity: if method == Method::Dense { base.sparsity } else { sparsity },
                        layers,
                        seed: base.seed + seed,
                        weight_decay: if method == Method::Dense {
                            base.weight_decay.max(5e-4)
                        } else {
                            base.weight_decay
                        },
                        ..*base
                    });
                }
            }
        }
    }
    grid
}

/// Trains every configuration of `grid` on `graph` in turn; `with_mad` measures each layer's MAD
/// on the network as it ends. `on_done(k, row)` after run k.
pub fn run_grid(
    graph: &Arc<Graph>,
    grid: &[GnnConfig],
    with_mad: bool,
    control: &RunControl,
    on_done: &mut dyn FnMut(usize, &SweepRow),
) -> Result<Vec<SweepRow>, GnnError> {
    let mut rows = Vec::with_capacity(grid.len());
    for (k, config) in grid.iter().enumerate() {
        if control.is_cancelled() {
            break;
        }
        let (summary, mad) = one_run(graph, config, with_mad, control)?;
        let row = SweepRow {
            method: config.method,
            sparsity: if config.method == Method::Dense { 0.0 } else { config.sparsity },
            layers: config.layers,
            seed: config.seed,
            test_acc: summary.test_acc,
            val_acc: summary.val_acc,
            sparsity_reached: summary.sparsity_reached,
            seconds: summary.seconds,
            mad,
        };
        on_done(k, &row);
        rows.push(row);
    }
    Ok(rows)
}

fn one_run(
    graph: &Arc<Graph>,
    config: &GnnConfig,
    with_mad: bool,
    control: &RunControl,
) -> Result<(GnnSummary, Vec<f64>), GnnError> {
    let (mut trainer, summary, _) = model::train_keeping(Arc::clone(graph), config, control, &mut |_| {})?;
    let mad = if with_mad {
        let effective = trainer.model.effective_weights(trainer.target());
        trainer.model.representations(&effective).iter().map(|(width, h)| mad(h, graph.num_nodes, *width)).collect()
    } else {
        Vec::new()
    };
    Ok((summary, mad))
}

/// Mean and spread of a sweep's cells over seeds: `(method, sparsity, layers, mean, std, n)`.
pub fn cell_means(rows: &[SweepRow], value: impl Fn(&SweepRow) -> f64) -> Vec<(Method, f64, usize, f64, f64, usize)> {
    let mut cells: Vec<(Method, f64, usize, Vec<f64>)> = Vec::new();
    for r in rows {
        match cells.iter_mut().find(|c| c.0 == r.method && c.1 == r.sparsity && c.2 == r.layers) {
            Some(c) => c.3.push(value(r)),
            None => cells.push((r.method, r.sparsity, r.layers, vec![value(r)])),
        }
    }
    cells
        .into_iter()
        .map(|(m, s, l, v)| {
            let (mean, std) = crate::metrics::mean_std(&v);
            (m, s, l, mean, std, v.len())
        })
        .collect()
}

/// The out-of-distribution study's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OodResult {
    /// The classes held out of training (original ids).
    pub held_out: Vec<u32>,
    /// Test accuracy on the seen classes' test nodes.
    pub in_distribution_acc: f64,
    /// AUROC of "unseen class" from 1 − max softmax, and from −max logit.
    pub auroc_softmax: f64,
    pub auroc_logit: f64,
    /// Max softmax of each seen-class and each unseen-class test node.
    pub seen_scores: Vec<f64>,
    pub unseen_scores: Vec<f64>,
    pub summary: GnnSummary,
}

/// `graph` with `share` of its classes (at least one, seeded choice) held out: their nodes lose
/// their labels (so they neither train nor validate), the other classes are renumbered
/// 0, 1, …; returns the new graph, the held-out classes and each node's original label.
pub fn hold_out_classes(graph: &Graph, share: f64, seed: u64) -> Result<(Graph, Vec<u32>), GnnError> {
    let k = graph.num_classes;
    if k < 3 {
        return Err(GnnError::Data(format!("{k} classes: holding some out needs at least 3")));
    }
    if !(share.is_finite() && share > 0.0 && share < 1.0) {
        return Err(GnnError::Config(format!("the held-out share must be in (0, 1), got {share}")));
    }
    // At least one class held out and at least two seen.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let held = ((share * k as f64).round() as usize).clamp(1, k - 2);
    #[allow(clippy::cast_possible_truncation)]
    let mut classes: Vec<u32> = (0..k as u32).collect();
    classes.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut held_out = classes[..held].to_vec();
    held_out.sort_unstable();
    let seen: Vec<u32> = (0..k).filter_map(|c| u32::try_from(c).ok()).filter(|c| !held_out.contains(c)).collect();
    let mut out = graph.clone();
    out.labels = graph
        .labels
        .iter()
        .map(|l| l.and_then(|c| seen.iter().position(|&s| s == c).and_then(|p| u32::try_from(p).ok())))
        .collect();
    out.num_classes = seen.len();
    out.name = format!("{} ({} of {} classes)", graph.name, seen.len(), k);
    Ok((out, held_out))
}

/// Trains on `graph` with `share` of its classes held out and scores how well the network's
/// confidence tells the held-out classes' test nodes from the seen ones.
pub fn ood(graph: &Graph, config: &GnnConfig, share: f64, control: &RunControl) -> Result<OodResult, GnnError> {
    let (seen_graph, held_out) = hold_out_classes(graph, share, config.seed)?;
    let seen_graph = Arc::new(seen_graph);
    let (mut trainer, summary, _) = model::train_keeping(Arc::clone(&seen_graph), config, control, &mut |_| {})?;
    let logits = trainer.evaluate();
    let classes = seen_graph.num_classes;
    let (mut seen_scores, mut unseen_scores, mut seen_logits, mut unseen_logits) = (vec![], vec![], vec![], vec![]);
    for &node in &graph.split.test {
        let Some(original) = graph.labels[node] else { continue };
        let row = &logits[node * classes..(node + 1) * classes];
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
        let (confidence, top) = (1.0 / sum, f64::from(max));
        if held_out.contains(&original) {
            unseen_scores.push(confidence);
            unseen_logits.push(top);
        } else {
            seen_scores.push(confidence);
            seen_logits.push(top);
        }
    }
    let negate = |v: &[f64]| v.iter().map(|x| -x).collect::<Vec<_>>();
    Ok(OodResult {
        in_distribution_acc: model::accuracy(&logits, classes, &seen_graph, &seen_graph.split.test),
        auroc_softmax: auroc(&negate(&unseen_scores), &negate(&seen_scores)),
        auroc_logit: auroc(&negate(&unseen_logits), &negate(&seen_logits)),
        held_out,
        seen_scores,
        unseen_scores,
        summary,
    })
}
