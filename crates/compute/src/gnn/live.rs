//! The GNN lab's staged study of one setting: the data, one run of the chosen network (with its
//! history, predictions and masks), the graph's layout, then the sweep over sparsity, the depth
//! study and the out-of-distribution study, each started from whatever an earlier study of a
//! nearby setting left valid, reporting everything computed so far as it goes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::csbm::{self, CsbmSpec};
use super::graph::Graph;
use super::layout::{self, Layout};
use super::model::{self, EpochRecord, GnnConfig, GnnSummary, Method};
use super::study::{self, OodResult, SweepRow};
use super::{plain, planetoid};
use crate::control::{RunControl, RunEvent, Throttle};
use crate::image_io::ImageData;

/// Sparsities of the lab's sweep.
pub const SWEEP_SPARSITIES: [f64; 7] = [0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99];
/// Depths of the lab's depth study.
pub const DEPTHS: [usize; 5] = [2, 4, 8, 16, 32];
/// Rounds of the force-directed layout.
pub const LAYOUT_ROUNDS: usize = 150;
/// Side of a mask picture (blocks of weights averaged to fit).
pub const MASK_PICTURE_SIDE: usize = 128;

/// Where the lab's graph comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DataSource {
    Cora,
    Csbm(CsbmSpec),
    /// A Planetoid raw folder or a plain CSV folder.
    Folder(PathBuf),
}

impl DataSource {
    pub fn load(&self) -> Result<Graph, String> {
        match self {
            Self::Cora => planetoid::cora().map_err(|e| e.to_string()),
            Self::Csbm(spec) => csbm::generate(spec).map_err(|e| e.to_string()),
            Self::Folder(dir) if plain::is_plain(dir) => plain::load(dir).map_err(|e| e.to_string()),
            Self::Folder(dir) => planetoid::load(dir).map_err(|e| match e {
                planetoid::PlanetoidError::NotFound(_) => {
                    format!(
                        "{e}; or a plain graph folder: edges.csv and labels.csv (features.csv and split.csv optional)"
                    )
                }
                e => e.to_string(),
            }),
        }
    }
}

/// What the lab studies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabConfig {
    pub data: DataSource,
    pub net: GnnConfig,
    /// Accuracy against sparsity for the three methods.
    pub sweep: bool,
    pub sweep_seeds: u64,
    /// Accuracy and MAD against depth (slow: deep networks).
    pub depth: bool,
    /// Held-out classes' detection.
    pub ood: bool,
}

impl Default for LabConfig {
    fn default() -> Self {
        Self { data: DataSource::Cora, net: GnnConfig::default(), sweep: true, sweep_seeds: 2, depth: false, ood: true }
    }
}

impl LabConfig {
    /// The settings the sweep depends on (not the method, sparsity or seed of the single run).
    fn sweep_key(&self) -> (GnnConfig, u64) {
        let net = GnnConfig { method: Method::Ugt, sparsity: 0.0, seed: 0, ..self.net };
        (net, self.sweep_seeds)
    }

    /// The settings the depth study depends on (not the depth, method or seed of the single run).
    fn depth_key(&self) -> GnnConfig {
        GnnConfig { method: Method::Ugt, layers: 0, seed: 0, ..self.net }
    }
}

/// A layer's mask, averaged over blocks to at most [`MASK_PICTURE_SIDE`]² (grey, 1: all kept).
#[derive(Clone, Debug, PartialEq)]
pub struct MaskPicture {
    /// The tensor's shape (rows = fan-in).
    pub rows: usize,
    pub cols: usize,
    pub image: ImageData,
}

/// One run of the lab's network.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunResult {
    pub summary: GnnSummary,
    pub history: Vec<EpochRecord>,
    /// Each node's predicted class at the end (target sparsity).
    pub predictions: Vec<u32>,
    /// Share of weights kept in each layer (all tensors of a layer together).
    pub layer_density: Vec<f64>,
    /// Each layer's weight mask.
    pub masks: Vec<MaskPicture>,
}

/// Everything computed for one setting so far. Each snapshot carries all of it.
#[derive(Clone, Debug, Default)]
pub struct GnnResults {
    pub config: LabConfig,
    pub graph: Option<Arc<Graph>>,
    pub layout: Option<Arc<Layout>>,
    /// The run so far (complete once `run_done`).
    pub run: Option<Arc<RunResult>>,
    pub run_done: bool,
    /// Sweep rows so far (complete once `sweep_done`).
    pub sweep: Option<Arc<Vec<SweepRow>>>,
    pub sweep_done: bool,
    pub depth: Option<Arc<Vec<SweepRow>>>,
    pub depth_done: bool,
    pub ood: Option<Arc<OodResult>>,
}

/// Which results of `old` are still valid for `new`: what a study of `new` can start from.
pub fn reusable(old: &GnnResults, new: &LabConfig) -> GnnResults {
    let before = &old.config;
    let same_data = before.data == new.data;
    let same_run = same_data && before.net == new.net;
    let same_sweep = same_data && before.sweep_key() == new.sweep_key();
    let same_depth = same_data && before.depth_key() == new.depth_key();
    GnnResults {
        config: new.clone(),
        graph: old.graph.clone().filter(|_| same_data),
        layout: old.layout.clone().filter(|_| same_data),
        run: old.run.clone().filter(|_| same_run && old.run_done),
        run_done: same_run && old.run_done,
        // A partial sweep is kept too: the study goes on from its last row.
        sweep: old.sweep.clone().filter(|_| same_sweep),
        sweep_done: same_sweep && old.sweep_done,
        depth: old.depth.clone().filter(|_| same_depth),
        depth_done: same_depth && old.depth_done,
        ood: old.ood.clone().filter(|_| same_run),
    }
}

fn mask_pictures(masks: &[Vec<f32>], shapes: &[(usize, usize)]) -> Vec<MaskPicture> {
    masks
        .iter()
        .zip(shapes)
        .filter_map(|(mask, &(rows, cols))| {
            let (height, width) = (rows.min(MASK_PICTURE_SIDE), cols.min(MASK_PICTURE_SIDE));
            let mut kept = vec![0.0_f32; width * height];
            let mut counts = vec![0_u32; width * height];
            for r in 0..rows {
                let y = r * height / rows;
                for c in 0..cols {
                    let x = c * width / cols;
                    kept[y * width + x] += mask[r * cols + c];
                    counts[y * width + x] += 1;
                }
            }
            #[allow(clippy::cast_precision_loss)]
            kept.iter_mut().zip(&counts).for_each(|(k, &n)| *k /= n.max(1) as f32);
            let image = ImageData::new(u32::try_from(width).ok()?, u32::try_from(height).ok()?, 1, kept).ok()?;
            Some(MaskPicture { rows, cols, image })
        })
        .collect()
}

/// The run's figures after training: predictions, densities and masks of `trainer`'s network.
pub fn run_result(trainer: &mut model::GnnTrainer, summary: GnnSummary, history: Vec<EpochRecord>) -> RunResult {
    let logits = trainer.evaluate();
    let classes = trainer.model.num_classes();
    let predictions = logits
        .chunks_exact(classes)
        .map(|row| {
            let best = (0..classes).fold(0, |b, c| if row[c] > row[b] { c } else { b });
            u32::try_from(best).unwrap_or(0)
        })
        .collect();
    let masks = trainer.model.current_masks(trainer.target());
    let per = trainer.model.tensors_per_layer();
    let layer_density = masks
        .chunks(per)
        .map(|layer| {
            let total: usize = layer.iter().map(Vec::len).sum();
            let kept: f64 = layer.iter().flatten().map(|&m| f64::from(m)).sum();
            #[allow(clippy::cast_precision_loss)]
            let share = kept / total.max(1) as f64;
            share
        })
        .collect();
    // The weight matrices only (GAT's attention vectors are small).
    let shapes = trainer.model.weight_shapes();
    let weights: Vec<Vec<f32>> = masks.into_iter().step_by(per).collect();
    RunResult { summary, history, predictions, layer_density, masks: mask_pictures(&weights, &shapes) }
}

/// The sweep's and the depth study's grids for `config`.
fn grids(config: &LabConfig) -> (Vec<GnnConfig>, Vec<GnnConfig>) {
    let sweep = study::sweep_grid(
        &config.net,
        &[Method::Ugt, Method::EdgePopup, Method::Dense],
        &SWEEP_SPARSITIES,
        &[config.net.layers],
        config.sweep_seeds,
    );
    let depth = study::sweep_grid(&config.net, &[Method::Ugt, Method::Dense], &[config.net.sparsity], &DEPTHS, 1);
    (if config.sweep { sweep } else { Vec::new() }, if config.depth { depth } else { Vec::new() })
}

/// The GNN lab's staged study of `results.config`, starting from what `results` already holds
/// (see [`reusable`]). Reports `Started` with its steps (the data, the run, the layout, each run
/// of the sweep and of the depth study, the held-out classes), all results so far as snapshots
/// (after each stage, after each study run and, throttled, during training) and the steps done
/// as progress. `Ok(None)` when cancelled.
pub fn study(
    mut results: GnnResults,
    control: &RunControl,
    on_event: &mut dyn FnMut(RunEvent<GnnResults>),
) -> Result<Option<GnnResults>, String> {
    let (sweep_grid, depth_grid) = grids(&results.config);
    let (sweep_steps, depth_steps) = (sweep_grid.len() as u64, depth_grid.len() as u64);
    let total = 3 + sweep_steps + depth_steps + 1;
    on_event(RunEvent::Started { total_steps: total });
    let start = Instant::now();
    let progress = |on_event: &mut dyn FnMut(RunEvent<GnnResults>), done: u64| {
        on_event(RunEvent::Progress { step: done, metrics: Vec::new(), elapsed_secs: start.elapsed().as_secs_f64() });
    };
    let config = results.config.clone();
    config.net.validate().map_err(|e| e.to_string())?;
    let graph = match &results.graph {
        Some(g) => Arc::clone(g),
        None => {
            let g = Arc::new(config.data.load()?);
            results.graph = Some(Arc::clone(&g));
            g
        }
    };
    progress(on_event, 1);
    if !results.run_done {
        let mut throttle = Throttle::new(0.25);
        let mut history = Vec::new();
        let (mut trainer, summary, full_history) =
            model::train_keeping(Arc::clone(&graph), &config.net, control, &mut |event| {
                if let RunEvent::Progress { step, metrics, elapsed_secs } = event {
                    let get = |name: &str| metrics.iter().find(|(n, _)| *n == name).map_or(f64::NAN, |(_, v)| *v);
                    history.push(EpochRecord {
                        epoch: step,
                        loss: get("loss"),
                        sparsity: f64::NAN,
                        train_acc: f64::NAN,
                        val_acc: get("val_acc"),
                        test_acc: get("test_acc"),
                        elapsed_secs,
                    });
                    if throttle.ready() {
                        results.run = Some(Arc::new(RunResult { history: history.clone(), ..RunResult::default() }));
                        on_event(RunEvent::Snapshot(Arc::new(results.clone())));
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        if control.is_cancelled() {
            return Ok(None);
        }
        results.run = Some(Arc::new(run_result(&mut trainer, summary, full_history)));
        results.run_done = true;
        on_event(RunEvent::Snapshot(Arc::new(results.clone())));
    }
    progress(on_event, 2);
    if results.layout.is_none() {
        let Some(layout) =
            layout::force_directed(graph.num_nodes, &graph.edges, LAYOUT_ROUNDS, 0, control, &mut |_| {})
        else {
            return Ok(None);
        };
        results.layout = Some(Arc::new(layout));
        on_event(RunEvent::Snapshot(Arc::new(results.clone())));
    }
    progress(on_event, 3);
    if config.sweep && !results.sweep_done {
        let steps = (3, start);
        if !grid_rows(&mut results, &graph, &sweep_grid, false, control, on_event, |r| &mut r.sweep, steps)? {
            return Ok(None);
        }
        results.sweep_done = true;
    }
    progress(on_event, 3 + sweep_steps);
    if config.depth && !results.depth_done {
        let steps = (3 + sweep_steps, start);
        if !grid_rows(&mut results, &graph, &depth_grid, true, control, on_event, |r| &mut r.depth, steps)? {
            return Ok(None);
        }
        results.depth_done = true;
    }
    progress(on_event, 3 + sweep_steps + depth_steps);
    if config.ood && results.ood.is_none() && graph.num_classes >= 3 {
        let ood = study::ood(&graph, &config.net, 0.4, control).map_err(|e| e.to_string())?;
        if control.is_cancelled() {
            return Ok(None);
        }
        results.ood = Some(Arc::new(ood));
        on_event(RunEvent::Snapshot(Arc::new(results.clone())));
    }
    progress(on_event, total);
    Ok(Some(results))
}

/// Runs what `grid` holds beyond the rows `slot` already has, a snapshot and progress (`first`
/// plus the rows so far, timed from `start`) after each; false when cancelled.
#[allow(clippy::too_many_arguments)]
fn grid_rows(
    results: &mut GnnResults,
    graph: &Arc<Graph>,
    grid: &[GnnConfig],
    with_mad: bool,
    control: &RunControl,
    on_event: &mut dyn FnMut(RunEvent<GnnResults>),
    slot: fn(&mut GnnResults) -> &mut Option<Arc<Vec<SweepRow>>>,
    (first, start): (u64, Instant),
) -> Result<bool, String> {
    let already = slot(results).as_ref().map_or(0, |rows| rows.len());
    for config in grid.iter().skip(already) {
        let rows = study::run_grid(graph, std::slice::from_ref(config), with_mad, control, &mut |_, _| {})
            .map_err(|e| e.to_string())?;
        if control.is_cancelled() {
            return Ok(false);
        }
        let mut all = slot(results).as_deref().cloned().unwrap_or_default();
        all.extend(rows);
        let rows_so_far = all.len() as u64;
        *slot(results) = Some(Arc::new(all));
        on_event(RunEvent::Snapshot(Arc::new(results.clone())));
        on_event(RunEvent::Progress {
            step: first + rows_so_far,
            metrics: Vec::new(),
            elapsed_secs: start.elapsed().as_secs_f64(),
        });
    }
    Ok(true)
}
