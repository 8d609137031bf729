//! The pruning lab's state: the live run that follows the settings (restarted whenever they
//! change), the sweep over pruning fractions, and exports.

mod lab;
pub mod panel;

pub use lab::{PruneCommand, PruneFile, PruneLab};

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use self::panel::{PruneMode, PrunePanelState, PruneSettings, RunSummary};
use crate::compute::control::{RunEvent, Throttle};
use crate::compute::image_io;
use crate::compute::prune::data::{DataSource, LabelledData};
use crate::compute::prune::init::{self, InitConfig, InitProgress, InitResult, LayerInfo};
use crate::compute::prune::theory::{
    self, RunOptions, Solver, SweepPoint, TheoryConfig, TheoryData, TheoryInit, TheoryPoint,
};
use crate::compute::prune::{files, plots};
use crate::jobs::{Job, JobControl, JobId, JobUpdate, Waker};
use crate::ui::widgets::{JobRow, Level};
use eframe::egui;

use crate::ui::live::LiveAnalysis;
use crate::ui::widgets::Notes;

/// What the live run has computed so far (its snapshots and its result).
#[derive(Clone, Default)]
pub struct PruneRun {
    history: Vec<TheoryPoint>,
    /// Set when the run has finished.
    summary: Option<RunSummary>,
    /// The data it drew and their settings, for the next run with the same data settings.
    data: Option<(TheoryConfig, Arc<TheoryData>)>,
}

/// Which mask a texture shows: result, layer, and the results' generation.
type MaskKey = (usize, usize, u64);

/// The data settings (everything that changes the draw).
fn data_key(config: &TheoryConfig) -> TheoryConfig {
    TheoryConfig { width: 0, power: 0, init_std: 0.0, learning_rate: 0.0, steps: 0, prune: 0.0, ..config.clone() }
}

#[derive(Default)]
pub struct PruneState {
    /// The run that follows the theory settings, and what it has computed.
    live: LiveAnalysis<TheoryConfig, PruneRun>,
    run: PruneRun,
    sweep_job: Option<Job<(), Option<Vec<SweepPoint>>>>,
    sweep_config: Option<TheoryConfig>,
    sweep: Option<(TheoryConfig, Vec<SweepPoint>)>,
    /// Real images: the data set (and what it was loaded from), or why it failed.
    data_job: Option<(Job<(), LabelledData>, DataSource)>,
    retired_data: Vec<Job<(), LabelledData>>,
    image_data: Option<(DataSource, Arc<LabelledData>)>,
    data_summary: Option<Result<String, String>>,
    data_failed: Option<DataSource>,
    compare_job: Option<Job<Vec<InitResult>, Option<Vec<InitResult>>>>,
    init_results: Vec<InitResult>,
    layers: Vec<LayerInfo>,
    /// The mask texture, and the (result, layer, results generation) it shows.
    mask_texture: Option<(egui::TextureHandle, [usize; 2], MaskKey)>,
    results_generation: u64,
}

impl PruneState {
    pub fn is_running(&self) -> bool {
        self.live.is_running()
    }

    pub fn is_sweeping(&self) -> bool {
        self.sweep_job.as_ref().is_some_and(|j| !j.is_finished())
    }

    /// Runs started so far (the UI shows it; tests read it).
    pub fn runs_started(&self) -> u64 {
        self.live.starts()
    }

    pub fn history(&self) -> &[TheoryPoint] {
        &self.run.history
    }

    pub fn summary(&self) -> Option<&RunSummary> {
        self.run.summary.as_ref()
    }

    /// The settings the shown run used.
    pub fn run_config(&self) -> Option<&TheoryConfig> {
        self.live.started()
    }

    pub fn sweep(&self) -> Option<&[SweepPoint]> {
        self.sweep.as_ref().map(|(_, points)| points.as_slice())
    }

    pub fn init_results(&self) -> &[InitResult] {
        &self.init_results
    }

    pub fn is_comparing(&self) -> bool {
        self.compare_job.as_ref().is_some_and(|j| !j.is_finished())
    }

    pub fn image_data(&self) -> Option<&LabelledData> {
        self.image_data.as_ref().map(|(_, d)| d.as_ref())
    }

    pub fn is_loading_data(&self) -> bool {
        self.data_job.is_some()
    }

    /// Loads `source` in the background (the comparison waits for it).
    pub fn load_data(&mut self, source: DataSource, waker: &Waker) {
        if self.data_job.as_ref().is_some_and(|(_, s)| *s == source) {
            return;
        }
        let loading = source.clone();
        let job = Job::spawn("prune-data", Arc::clone(waker), move |_control, _sink| {
            loading.load().map_err(|e| e.to_string())
        });
        self.data_summary = None;
        // A load in flight is left to finish on its own (dropping it would wait for it here).
        if let Some((old, _)) = self.data_job.take() {
            self.retired_data.push(old);
        }
        match job {
            Ok(job) => self.data_job = Some((job, source)),
            Err(e) => self.data_summary = Some(Err(format!("cannot start loading: {e}"))),
        }
    }

    /// Trains every method at every sparsity on the loaded data set.
    pub fn start_compare(&mut self, config: &InitConfig, source: &DataSource, waker: Waker) -> Result<(), String> {
        if self.is_comparing() {
            return Err("a comparison is already running; cancel it first".into());
        }
        config.validate().map_err(|e| e.to_string())?;
        let data = match &self.image_data {
            Some((loaded, data)) if loaded == source => Arc::clone(data),
            _ if self.data_job.is_some() => return Err("the data set is still loading; try again in a moment".into()),
            _ => return Err(format!("{} is not loaded; pick a data set that loads", source.label())),
        };
        let layers = init::layer_infos(&data, config).map_err(|e| e.to_string())?;
        let config = config.clone();
        let job = Job::spawn("prune-compare", waker, move |control, sink| {
            sink.send(RunEvent::Started { total_steps: (config.runs().len() * config.epochs) as u64 });
            let start = Instant::now();
            let mut results = Vec::new();
            let mut epochs = 0_u64;
            init::compare(&data, &config, control, &mut |progress| match progress {
                InitProgress::Epoch { accuracy, .. } => {
                    epochs += 1;
                    sink.send(RunEvent::Progress {
                        step: epochs,
                        metrics: vec![("test_accuracy", accuracy)],
                        elapsed_secs: start.elapsed().as_secs_f64(),
                    });
                }
                InitProgress::RunDone { result, .. } => {
                    results.push(result);
                    sink.send(RunEvent::Snapshot(Arc::new(results.clone())));
                }
            })
            .map_err(|e| e.to_string())
        })
        .map_err(|e| format!("cannot start the comparison: {e}"))?;
        self.compare_job = Some(job);
        self.init_results.clear();
        self.layers = layers;
        self.results_generation += 1;
        Ok(())
    }

    /// Writes the comparison as CSV and its chart as a PNG beside it.
    pub fn export_init(&self, path: &Path) -> Result<String, String> {
        if self.init_results.is_empty() {
            return Err("there are no results to export; run a comparison first".into());
        }
        write_csv_and_chart(
            path,
            &files::init_csv(&self.init_results, &self.layers),
            &plots::init_chart(&self.init_results, 960, 540),
        )
    }

    fn poll_images(
        &mut self,
        ctx: &egui::Context,
        settings: &PruneSettings,
        active: bool,
        waker: &Waker,
        notes: &mut Notes,
    ) {
        if let Some((job, source)) = &mut self.data_job {
            for update in job.poll() {
                match update {
                    JobUpdate::Finished(Ok(data)) => {
                        self.data_summary = Some(Ok(data.summary()));
                        self.image_data = Some((source.clone(), Arc::new(data)));
                        self.data_failed = None;
                    }
                    JobUpdate::Finished(Err(message)) => {
                        notes.push((Level::Error, format!("Loading the data failed: {message}")));
                        self.data_summary = Some(Err(message));
                        self.data_failed = Some(source.clone());
                    }
                    _ => {}
                }
            }
        }
        if self.data_job.as_ref().is_some_and(|(j, _)| j.is_finished()) {
            self.data_job = None;
        }
        let wanted = &settings.source;
        let loaded = self.image_data.as_ref().map(|(s, _)| s);
        if active
            && settings.mode == PruneMode::Images
            && loaded != Some(wanted)
            && self.data_job.is_none()
            && self.data_failed.as_ref() != Some(wanted)
        {
            self.load_data(wanted.clone(), waker);
        }
        if let Some(job) = &mut self.compare_job {
            for update in job.poll() {
                match update {
                    JobUpdate::Snapshot(results) => {
                        self.init_results = results.as_ref().clone();
                        self.results_generation += 1;
                    }
                    JobUpdate::Finished(Ok(Some(results))) => {
                        notes.push((Level::Success, compare_note(&results)));
                        self.init_results = results;
                        self.results_generation += 1;
                    }
                    JobUpdate::Finished(Ok(None)) => notes.push((Level::Warning, "Comparison cancelled.".into())),
                    JobUpdate::Finished(Err(message)) => {
                        notes.push((Level::Error, format!("The comparison failed: {message}")));
                    }
                    _ => {}
                }
            }
        }
        if self.compare_job.as_ref().is_some_and(Job::is_finished) {
            self.compare_job = None;
        }
        // The mask picture follows the chosen network and layer.
        let key = (settings.mask_result, settings.mask_layer, self.results_generation);
        if self.mask_texture.as_ref().is_none_or(|(_, _, k)| *k != key) {
            let max_side = ctx.input(|i| i.max_texture_side).max(64);
            self.mask_texture =
                self.mask_image(settings.mask_result, settings.mask_layer, max_side).map(|(image, size)| {
                    let texture = ctx.load_texture("prune mask", image, egui::TextureOptions::NEAREST);
                    (texture, size, key)
                });
        }
    }

    /// Layer `layer`'s mask of result `result` as an image: one row per output unit, one column
    /// per input (a convolution's inputs × 3 × 3 side by side). Masks wider or taller than
    /// `max_side` are shown in blocks, each grey by the fraction it keeps.
    fn mask_image(&self, result: usize, layer: usize, max_side: usize) -> Option<(egui::ColorImage, [usize; 2])> {
        let mask = self.init_results.get(result)?.masks.get(layer)?;
        let shape = &self.layers.get(layer)?.shape;
        let rows = *shape.first()?;
        let columns = mask.len() / rows.max(1);
        if rows == 0 || columns == 0 || rows * columns != mask.len() {
            return None;
        }
        let block = rows.max(columns).div_ceil(max_side.min(4096)).max(1);
        let (out_w, out_h) = (columns.div_ceil(block), rows.div_ceil(block));
        let mut kept = vec![0_u32; out_w * out_h];
        let mut count = vec![0_u32; out_w * out_h];
        for (k, &keep) in mask.iter().enumerate() {
            let at = (k / columns / block) * out_w + (k % columns) / block;
            kept[at] += u32::from(keep);
            count[at] += 1;
        }
        let pixels: Vec<egui::Color32> = kept
            .iter()
            .zip(&count)
            .map(|(&k, &n)| {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let level = 30 + (225 * k / n.max(1)) as u8;
                egui::Color32::from_gray(level)
            })
            .collect();
        Some((egui::ColorImage::new([out_w, out_h], pixels), [columns, rows]))
    }

    pub fn start_sweep(&mut self, settings: &PruneSettings, waker: Waker) -> Result<(), String> {
        if self.is_sweeping() {
            return Err("a sweep is already running; cancel it first".into());
        }
        let config = settings.theory.clone();
        let fractions = settings.sweep_fractions();
        let seeds = settings.sweep_seeds;
        for &p in &fractions {
            TheoryConfig { prune: p, ..config.clone() }.validate().map_err(|e| e.to_string())?;
        }
        let run_config = config.clone();
        let job = Job::spawn("prune-sweep", waker, move |control, sink| {
            let total = (fractions.len() * seeds) as u64;
            sink.send(RunEvent::Started { total_steps: total });
            let start = Instant::now();
            theory::sweep(&run_config, &fractions, seeds, control, &mut |done, _| {
                sink.send(RunEvent::Progress {
                    step: done as u64,
                    metrics: Vec::new(),
                    elapsed_secs: start.elapsed().as_secs_f64(),
                });
            })
            .map_err(|e| e.to_string())
        })
        .map_err(|e| format!("cannot start the sweep: {e}"))?;
        self.sweep_job = Some(job);
        self.sweep_config = Some(config);
        Ok(())
    }

    /// Writes the shown run's steps as CSV, and its curves as a PNG beside it.
    pub fn export_run(&self, path: &Path) -> Result<String, String> {
        let history = &self.run.history;
        if history.is_empty() {
            return Err("there is no run to export yet".into());
        }
        write_csv_and_chart(path, &files::history_csv(history), &plots::run_curves(history, 960, 640))
    }

    /// Writes the sweep as CSV (means and spreads), every run as `<name>_runs.csv`, and the chart.
    pub fn export_sweep(&self, path: &Path) -> Result<String, String> {
        let (_, points) = self.sweep.as_ref().ok_or("there is no sweep to export; run one first")?;
        let runs = path.with_file_name(format!(
            "{}_runs.csv",
            path.file_stem().map_or_else(|| "sweep".into(), |s| s.to_string_lossy())
        ));
        crate::compute::files::write_atomic(&runs, files::runs_csv(points))
            .map_err(|e| format!("{}: cannot write: {e}", runs.display()))?;
        write_csv_and_chart(path, &files::sweep_csv(points), &plots::sweep_chart(points, 960, 640))
    }

    /// Collects job updates; (re)starts the live run when `active` and the settings changed.
    pub fn poll(&mut self, ctx: &egui::Context, settings: &PruneSettings, active: bool, waker: &Waker) -> Notes {
        let mut notes = Notes::new();
        self.poll_images(ctx, settings, active, waker, &mut notes);
        let active = active && settings.mode == PruneMode::Theory;
        self.retired_data.retain_mut(|job| {
            let _ = job.poll();
            !job.is_finished()
        });
        if active && self.live.started() != Some(&settings.theory) && settings.theory.validate().is_err() {
            // Nothing shown may belong to other settings than the ones asked for (the drawn data
            // stay cached for when the settings are valid again).
            self.run = PruneRun { data: self.run.data.take(), ..PruneRun::default() };
        }
        let waker = Arc::clone(waker);
        notes.extend(self.live.poll(ctx, (&settings.theory, active), "The run", &mut self.run, |config, shown| {
            spawn_run(config, shown, waker)
        }));
        if let Some(job) = &mut self.sweep_job {
            for update in job.poll() {
                match update {
                    JobUpdate::Finished(Ok(Some(points))) => {
                        notes.push((Level::Success, sweep_note(&points)));
                        if let Some(config) = self.sweep_config.take() {
                            self.sweep = Some((config, points));
                        }
                    }
                    JobUpdate::Finished(Ok(None)) => notes.push((Level::Warning, "Sweep cancelled.".into())),
                    JobUpdate::Finished(Err(message)) => {
                        notes.push((Level::Error, format!("The sweep failed: {message}")));
                    }
                    _ => {}
                }
            }
        }
        if self.sweep_job.as_ref().is_some_and(Job::is_finished) {
            self.sweep_job = None;
        }
        notes
    }

    /// The live run, the sweep and the comparison of methods: each shows in the job bar and
    /// takes its turn in the shell's queue, the live run first (it follows the p slider).
    pub fn jobs(&self) -> Vec<JobRow<'_>> {
        let mut rows = self.live.job_rows("Pruning run");
        if let Some(job) = self.sweep_job.as_ref().filter(|j| !j.is_finished()) {
            rows.push(JobRow {
                id: job.id(),
                name: "Pruning sweep",
                status: job.status(),
                cancelling: job.is_cancelled(),
            });
        }
        if let Some(job) = self.compare_job.as_ref().filter(|j| !j.is_finished()) {
            rows.push(JobRow {
                id: job.id(),
                name: "Pruning methods",
                status: job.status(),
                cancelling: job.is_cancelled(),
            });
        }
        rows
    }

    pub fn control_job(&mut self, id: JobId, action: impl FnOnce(&mut dyn JobControl)) -> bool {
        if self.live.owns(id) {
            return self.live.control_job(id, action);
        }
        if let Some(job) = self.sweep_job.as_mut().filter(|j| j.id() == id) {
            action(job);
            return true;
        }
        if let Some(job) = self.compare_job.as_mut().filter(|j| j.id() == id) {
            action(job);
            return true;
        }
        false
    }

    pub fn panel_state(&self, settings: &PruneSettings) -> PrunePanelState<'_> {
        let sweep_matches = self.sweep.as_ref().map(|(config, _)| same_but_prune(config, &settings.theory));
        PrunePanelState {
            running: self.is_running(),
            history: &self.run.history,
            summary: self.run.summary.as_ref(),
            sweep: self.sweep.as_ref().map(|(_, points)| points.as_slice()),
            sweep_stale: sweep_matches == Some(false),
            sweeping: self.is_sweeping(),
            sweep_progress: self.sweep_job.as_ref().map(|j| j.status().fraction()),
            data_summary: self.data_summary.as_ref().map(|r| r.as_deref().map_err(String::as_str)),
            loading_data: self.data_job.is_some(),
            comparing: self.is_comparing(),
            compare_progress: self.compare_job.as_ref().map(|j| j.status().fraction()),
            init_results: &self.init_results,
            layers: &self.layers,
            mask_texture: self.mask_texture.as_ref().map(|(t, size, _)| (t, *size)),
        }
    }
}

/// Starts a run of the theory model with `config`, reusing the data of `shown` when they were
/// drawn with the same data settings.
fn spawn_run(config: &TheoryConfig, shown: &PruneRun, waker: Waker) -> Result<Job<PruneRun, PruneRun>, String> {
    config.validate().map_err(|e| e.to_string())?;
    let key = data_key(config);
    let cached = shown.data.as_ref().filter(|(k, _)| *k == key).map(|(_, d)| Arc::clone(d));
    let config = config.clone();
    Job::spawn("prune-run", waker, move |control, sink| {
        sink.send(RunEvent::Started { total_steps: config.steps as u64 });
        let start = Instant::now();
        let data = cached.unwrap_or_else(|| Arc::new(TheoryData::generate(&config)));
        let drawn = Some((key, Arc::clone(&data)));
        let init = TheoryInit::new(&config);
        // About 20 scorings of the test set: they cost more than the descent itself.
        let options = RunOptions { test_every: (config.steps / 20).max(1), ..RunOptions::default() };
        let mut throttle = Throttle::new(0.1);
        let mut history = Vec::with_capacity(config.steps + 1);
        let run = theory::train(&config, &data, &init, options, control, &mut |point| {
            history.push(*point);
            if throttle.ready() {
                sink.send(RunEvent::Progress {
                    step: point.step as u64,
                    metrics: vec![("train_loss", point.train_loss)],
                    elapsed_secs: start.elapsed().as_secs_f64(),
                });
                let so_far = PruneRun { history: history.clone(), summary: None, data: drawn.clone() };
                sink.send(RunEvent::Snapshot(Arc::new(so_far)));
            }
        })
        .map_err(|e| e.to_string())?;
        if run.cancelled {
            return Err(crate::jobs::CANCELLED.into());
        }
        let summary = RunSummary {
            prune: config.prune,
            kept_fraction: run.kept_fraction,
            last: run.last,
            seconds: start.elapsed().as_secs_f64(),
            gram: run.solver == Solver::Gram,
        };
        Ok(PruneRun { history: run.history, summary: Some(summary), data: drawn })
    })
    .map_err(|e| format!("cannot start the run: {e}"))
}

fn compare_note(results: &[InitResult]) -> String {
    let highest = results.iter().map(|r| r.sparsity).fold(0.0, f64::max);
    let best = results
        .iter()
        .filter(|r| r.sparsity == highest && r.method.is_some())
        .max_by(|a, b| a.test_accuracy.total_cmp(&b.test_accuracy));
    match best {
        Some(best) => format!(
            "Comparison done: at sparsity {highest} the best is {} with {:.1}% test accuracy.",
            best.method.map_or("dense", init::Method::label),
            100.0 * best.test_accuracy
        ),
        None => "Comparison done.".into(),
    }
}

fn same_but_prune(a: &TheoryConfig, b: &TheoryConfig) -> bool {
    TheoryConfig { prune: 0.0, ..a.clone() } == TheoryConfig { prune: 0.0, ..b.clone() }
}

fn sweep_note(points: &[SweepPoint]) -> String {
    let best =
        points.iter().map(|p| (p.prune, theory::mean_std(&p.test_accuracy).0)).max_by(|a, b| a.1.total_cmp(&b.1));
    let dense = points.first().map(|p| theory::mean_std(&p.test_accuracy).0);
    match (best, dense) {
        (Some((p, best)), Some(dense)) => {
            format!("Sweep done: test accuracy {:.1}% unpruned, best {:.1}% at p = {p}.", 100.0 * dense, 100.0 * best)
        }
        _ => "Sweep done.".into(),
    }
}

fn write_csv_and_chart(path: &Path, csv: &str, chart: &image_io::ImageData) -> Result<String, String> {
    crate::compute::files::write_atomic(path, csv).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    let png = path.with_extension("png");
    image_io::save_png(chart, &png).map_err(|e| e.to_string())?;
    Ok(format!("Wrote {} and {}.", path.display(), png.display()))
}
