//! Files the GNN lab and commands write: a run's metrics, history and predictions, sweep and
//! depth tables (CSV), their charts (PNG) and the out-of-distribution result (JSON and a
//! histogram).

use std::path::{Path, PathBuf};

use super::graph::Graph;
use super::layout::Layout;
use super::live::RunResult;
use super::model::{GnnConfig, Method};
use super::study::{OodResult, SweepRow, cell_means};
use crate::chart::{self, PALETTE, Panel, Series};
use crate::image_io::{self, ImageData};

#[derive(Debug, thiserror::Error)]
#[error("{}: cannot write ({reason})", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub reason: String,
}

fn write_text(path: &Path, text: &str) -> Result<PathBuf, WriteError> {
    crate::files::write_atomic(path, text).map_err(|e| WriteError { path: path.to_owned(), reason: e.to_string() })?;
    Ok(path.to_owned())
}

fn write_png(path: &Path, image: &ImageData) -> Result<PathBuf, WriteError> {
    image_io::save_png(image, path).map_err(|e| WriteError { path: path.to_owned(), reason: e.to_string() })?;
    Ok(path.to_owned())
}

pub fn method_name(method: Method) -> &'static str {
    match method {
        Method::Ugt => "ugt",
        Method::EdgePopup => "edge-popup",
        Method::Dense => "dense",
    }
}

fn colour(method: Method) -> [f32; 3] {
    match method {
        Method::Ugt => PALETTE[0],
        Method::EdgePopup => PALETTE[1],
        Method::Dense => PALETTE[2],
    }
}

/// The header of a sweep's CSV (`mad` lists each layer's MAD, separated by spaces).
pub const SWEEP_HEADER: &str = "method,sparsity,layers,seed,test_acc,val_acc,sparsity_reached,seconds,mad";

/// One row per run.
pub fn sweep_csv(rows: &[SweepRow]) -> String {
    let mut out = String::from(SWEEP_HEADER);
    out.push('\n');
    for r in rows {
        let mad: Vec<String> = r.mad.iter().map(|m| format!("{m:.6}")).collect();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{:.4},{}\n",
            method_name(r.method),
            r.sparsity,
            r.layers,
            r.seed,
            r.test_acc,
            r.val_acc,
            r.sparsity_reached,
            r.seconds,
            mad.join(" ")
        ));
    }
    out
}

/// Mean test accuracy against sparsity per method, ± one standard deviation over seeds shaded;
/// the dense network (no sparsity) as a dashed line.
pub fn sweep_panel(rows: &[SweepRow], title: &str) -> Panel {
    let means = cell_means(rows, |r| r.test_acc);
    let mut series = Vec::new();
    for method in [Method::Ugt, Method::EdgePopup] {
        let cells: Vec<_> = means.iter().filter(|c| c.0 == method).collect();
        if cells.is_empty() {
            continue;
        }
        series.push(Series {
            label: method_name(method).into(),
            colour: colour(method),
            points: cells.iter().map(|c| (c.1, c.3)).collect(),
            band: cells.iter().map(|c| (c.1, c.3 - c.4, c.3 + c.4)).collect(),
            markers: true,
            ..Series::default()
        });
    }
    Panel {
        title: title.into(),
        x_label: "sparsity".into(),
        y_range: Some((0.0, 1.0)),
        reference: means.iter().find(|c| c.0 == Method::Dense).map(|c| c.3),
        series,
        ..Panel::default()
    }
}

/// Writes `sweep.csv` and `sweep.png` into `dir`.
pub fn write_sweep(dir: &Path, rows: &[SweepRow], title: &str) -> Result<Vec<PathBuf>, WriteError> {
    Ok(vec![
        write_text(&dir.join("sweep.csv"), &sweep_csv(rows))?,
        write_png(&dir.join("sweep.png"), &chart::render(&[sweep_panel(rows, title)], 1, 900, 560))?,
    ])
}

/// Test accuracy and the last hidden layer's MAD against depth, per method (log depth axis).
pub fn depth_panels(rows: &[SweepRow], title: &str) -> Vec<Panel> {
    #[allow(clippy::cast_precision_loss)]
    let by_depth = |value: &dyn Fn(&SweepRow) -> f64, method: Method| -> Series {
        let cells: Vec<_> = cell_means(rows, value).into_iter().filter(|c| c.0 == method).collect();
        Series {
            label: method_name(method).into(),
            colour: colour(method),
            points: cells.iter().map(|c| (c.2 as f64, c.3)).collect(),
            band: cells.iter().map(|c| (c.2 as f64, c.3 - c.4, c.3 + c.4)).collect(),
            markers: true,
            ..Series::default()
        }
    };
    let methods: Vec<Method> = [Method::Ugt, Method::EdgePopup, Method::Dense]
        .into_iter()
        .filter(|m| rows.iter().any(|r| r.method == *m))
        .collect();
    let last_hidden = |r: &SweepRow| r.mad.len().checked_sub(2).and_then(|i| r.mad.get(i)).copied().unwrap_or(f64::NAN);
    vec![
        Panel {
            title: format!("{title}: test accuracy"),
            x_label: "layers".into(),
            log_x: true,
            y_range: Some((0.0, 1.0)),
            series: methods.iter().map(|&m| by_depth(&|r| r.test_acc, m)).collect(),
            ..Panel::default()
        },
        Panel {
            title: "MAD of the last hidden layer".into(),
            x_label: "layers".into(),
            log_x: true,
            y_range: Some((0.0, 1.0)),
            series: methods.iter().map(|&m| by_depth(&last_hidden, m)).collect(),
            ..Panel::default()
        },
    ]
}

/// Writes `depth.csv` and `depth.png` into `dir`.
pub fn write_depth(dir: &Path, rows: &[SweepRow], title: &str) -> Result<Vec<PathBuf>, WriteError> {
    Ok(vec![
        write_text(&dir.join("depth.csv"), &sweep_csv(rows))?,
        write_png(&dir.join("depth.png"), &chart::render(&depth_panels(rows, title), 2, 1400, 560))?,
    ])
}

/// Bins of the max-softmax confidence.
pub const OOD_BINS: usize = 12;

/// The range the confidence histogram spans: the scores' own (an untrained ticket's confidences
/// can all lie within a few hundredths of 1/classes), at least 0.01 wide.
pub fn histogram_range(result: &OodResult) -> (f64, f64) {
    let all = result.seen_scores.iter().chain(&result.unseen_scores).copied().filter(|v| v.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let mid = 0.5 * (lo + hi);
    let half = (0.5 * (hi - lo)).max(0.005);
    (mid - half, mid + half)
}

/// Shares of `scores` in each of [`OOD_BINS`] equal bins of `[lo, hi]`.
pub fn histogram(scores: &[f64], (lo, hi): (f64, f64)) -> Vec<f64> {
    let mut counts = [0.0; OOD_BINS];
    for &s in scores {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let bin = (((s - lo) / (hi - lo) * OOD_BINS as f64).max(0.0) as usize).min(OOD_BINS - 1);
        counts[bin] += 1.0;
    }
    #[allow(clippy::cast_precision_loss)]
    let n = scores.len().max(1) as f64;
    counts.iter().map(|c| c / n).collect()
}

/// The histogram of max-softmax confidence for seen and held-out classes' test nodes.
pub fn ood_panel(result: &OodResult) -> Panel {
    let range = histogram_range(result);
    #[allow(clippy::cast_precision_loss)]
    let bars = |label: &str, colour, scores: &[f64]| Series {
        label: label.into(),
        colour,
        points: histogram(scores, range).into_iter().enumerate().map(|(k, v)| (k as f64, v)).collect(),
        bars: true,
        ..Series::default()
    };
    #[allow(clippy::cast_precision_loss)]
    let categories =
        (0..OOD_BINS).map(|k| format!("{:.3}", range.0 + (range.1 - range.0) * k as f64 / OOD_BINS as f64)).collect();
    Panel {
        title: format!("max softmax: AUROC {:.3}", result.auroc_softmax),
        x_label: "confidence (bin start)".into(),
        series: vec![
            bars("seen classes", PALETTE[0], &result.seen_scores),
            bars("held-out classes", PALETTE[1], &result.unseen_scores),
        ],
        categories,
        ..Panel::default()
    }
}

/// Writes `ood.json` and `ood.png` into `dir`.
pub fn write_ood(dir: &Path, result: &OodResult) -> Result<Vec<PathBuf>, WriteError> {
    let json = serde_json::to_string_pretty(result)
        .map_err(|e| WriteError { path: dir.join("ood.json"), reason: e.to_string() })?;
    Ok(vec![
        write_text(&dir.join("ood.json"), &json)?,
        write_png(&dir.join("ood.png"), &chart::render(&[ood_panel(result)], 1, 900, 560))?,
    ])
}

/// The header of a run's history.
pub const HISTORY_HEADER: &str = "epoch,loss,sparsity,train_acc,val_acc,test_acc,elapsed_secs";

/// Writes one run's files into `dir`: `metrics.json` (test_acc of the best validation epoch,
/// val_acc, best_epoch, sparsity_reached, seconds, each layer's kept share, the data and the
/// configuration), `history.csv` and `predictions.csv` (node, label, prediction, split, degree,
/// and the graph view's position when laid out).
pub fn write_run(
    dir: &Path,
    graph: &Graph,
    config: &GnnConfig,
    run: &RunResult,
    layout: Option<&Layout>,
) -> Result<Vec<PathBuf>, WriteError> {
    let s = &run.summary;
    let metrics = serde_json::json!({
        "data": graph.name,
        "nodes": graph.num_nodes,
        "edges": graph.edges.len() / 2,
        "classes": graph.num_classes,
        "model": config.arch.name().to_lowercase(),
        "config": config,
        "test_acc": s.test_acc,
        "val_acc": s.val_acc,
        "best_epoch": s.best_epoch,
        "sparsity_reached": s.sparsity_reached,
        "layer_density": run.layer_density,
        "seconds": s.seconds,
    });
    let json = serde_json::to_string_pretty(&metrics)
        .map_err(|e| WriteError { path: dir.join("metrics.json"), reason: e.to_string() })?;
    let mut history = String::from(HISTORY_HEADER);
    history.push('\n');
    for r in &run.history {
        history.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            r.epoch, r.loss, r.sparsity, r.train_acc, r.val_acc, r.test_acc, r.elapsed_secs
        ));
    }
    let mut split = vec![""; graph.num_nodes];
    for (part, name) in [(&graph.split.train, "train"), (&graph.split.val, "val"), (&graph.split.test, "test")] {
        for &n in part {
            split[n] = name;
        }
    }
    let mut degree = vec![0_usize; graph.num_nodes];
    for &(a, _) in &graph.edges {
        degree[a as usize] += 1;
    }
    let mut predictions = String::from("node,label,prediction,split,degree,x,y\n");
    for node in 0..graph.num_nodes {
        let label = graph.labels[node].map_or_else(String::new, |l| l.to_string());
        let predicted = run.predictions.get(node).map_or_else(String::new, u32::to_string);
        let (x, y) = layout
            .and_then(|l| l.positions.get(node))
            .map_or_else(|| (String::new(), String::new()), |p| (format!("{:.5}", p[0]), format!("{:.5}", p[1])));
        predictions.push_str(&format!("{node},{label},{predicted},{},{},{x},{y}\n", split[node], degree[node]));
    }
    Ok(vec![
        write_text(&dir.join("metrics.json"), &json)?,
        write_text(&dir.join("history.csv"), &history)?,
        write_text(&dir.join("predictions.csv"), &predictions)?,
    ])
}
