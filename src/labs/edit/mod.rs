//! The INR-edit lab's state and actions: the INR being edited (the "subject"), the operator, the
//! training job, the job that evaluates the edit and the comparison views.

mod lab;
pub mod panel;
mod views;

pub use lab::{EditCommand, EditFile, EditLab};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;

use self::panel::{EditPanelState, EditSettings, EditViewImage};
use crate::compute::control::RunEvent;
use crate::compute::image_io::{self, ImageData};
use crate::compute::inr::classify::{self, ClassifyConfig, ClassifyProgress, ClassifySummary};
use crate::compute::inr::insp::{self, EditKind, EditTask, OperatorStep, OperatorWeights};
use crate::compute::inr::taylor;
use crate::compute::inr::{self, BatchMode, FitConfig, Siren, SirenWeights};
use crate::jobs::{Job, JobControl, JobId, JobUpdate, Waker};
use crate::render::edit_gpu::EditGpu;
use crate::ui::widgets::{JobRow, Level};

use crate::ui::widgets::Notes;

pub use crate::compute::inr::insp::Subject;
pub use views::{EditDevice, EditZoom, EvaluatedEdit, ZOOM_GRID, ZoomBackend, ZoomImage, evaluate};

/// Zoom grids the CPU may use, smallest first (the GPU always uses [`ZOOM_GRID`]).
const ZOOM_GRIDS: [u32; 3] = [64, 128, ZOOM_GRID];
/// CPU seconds a zoom view may take while it follows the view or the training; the full grid is
/// computed once both rest.
const ZOOM_CPU_BUDGET_SECS: f64 = 0.5;
/// Rows of the zoom grid computed between checks for cancellation.
const ZOOM_ROWS_PER_CHUNK: u32 = 16;
use views::{ZoomKey, partial_texture, view_textures};

struct ShownEdit {
    evaluated: EvaluatedEdit,
    textures: Vec<EditViewImage>,
    /// Partial shown by the derivative inspector, and its texture.
    inspected: Option<(usize, egui::TextureHandle, f32)>,
}

#[derive(Default)]
pub struct EditState {
    pub zoom: EditZoom,
    classify_job: Option<Job<(), Option<ClassifySummary>>>,
    classify_result: Option<ClassifySummary>,
    device: Option<EditDevice>,
    zoom_job: Option<Job<(), ZoomImage>>,
    zoom_shown: Option<(egui::TextureHandle, ZoomKey, bool, f64)>,
    train_job: Option<Job<OperatorWeights, insp::OperatorOutcome>>,
    eval_job: Option<Job<(), EvaluatedEdit>>,
    export_job: Option<Job<(), String>>,
    operator: Option<(Arc<OperatorWeights>, u64)>,
    operator_name: String,
    subject: Option<(Subject, u64)>,
    history: Vec<OperatorStep>,
    shown: Option<ShownEdit>,
    next_generation: u64,
    /// The (operator, subject) generations to evaluate once the running evaluation ends.
    eval_pending: bool,
    /// The key of the running evaluation, and of the last one that failed (not retried).
    eval_running: Option<(u64, u64)>,
    eval_failed: Option<(u64, u64)>,
    zoom_running: Option<ZoomKey>,
    zoom_failed: Option<ZoomKey>,
    /// The grid of the zoom being computed.
    zoom_running_grid: u32,
    /// CPU seconds per point of the last zoom computed on the CPU (sizes the next one).
    zoom_cpu_cost: Option<f64>,
    /// When the last zoom ended and how long it took (spaces them out while the operator trains).
    zoom_finished: Option<(std::time::Instant, f64)>,
    /// The subject's generation when training started: its result replaces only that one.
    subject_at_training_start: Option<u64>,
}

impl EditState {
    /// Lets the zoom view use this device.
    pub fn set_device(&mut self, device: EditDevice) {
        self.device = Some(device);
    }

    /// The device the edit is rendered on with `backend`, if any.
    fn gpu_for(&self, backend: ZoomBackend) -> Option<&EditDevice> {
        let (operator, _) = self.operator.as_ref()?;
        // The shader carries polynomials up to order 4; higher orders run on the CPU.
        if operator.spec.order > crate::render::edit_gpu::GPU_MAX_ORDER {
            return None;
        }
        match backend {
            ZoomBackend::Cpu => None,
            ZoomBackend::Gpu => self.device.as_ref(),
            ZoomBackend::Auto => self.device.as_ref().filter(|d| !d.software),
        }
    }

    fn zoom_key(&self, backend: ZoomBackend) -> Option<ZoomKey> {
        let (_, op_gen) = self.operator.as_ref()?;
        let (_, subject_gen) = self.subject.as_ref()?;
        let on_gpu = self.gpu_for(backend).is_some();
        Some((*op_gen, *subject_gen, self.zoom.centre.map(f32::to_bits), self.zoom.zoom.to_bits(), on_gpu))
    }

    /// The zoom grid the CPU can compute within [`ZOOM_CPU_BUDGET_SECS`] (judged by the last CPU
    /// zoom; the smallest before any), the full grid on the GPU.
    fn zoom_grid(&self, on_gpu: bool) -> u32 {
        if on_gpu {
            return ZOOM_GRID;
        }
        let Some(per_point) = self.zoom_cpu_cost else { return ZOOM_GRIDS[0] };
        ZOOM_GRIDS.into_iter().rev().find(|&g| per_point * f64::from(g * g) <= ZOOM_CPU_BUDGET_SECS).unwrap_or(ZOOM_GRIDS[0])
    }

    fn start_zoom(&mut self, key: ZoomKey, grid: u32, waker: &Waker) {
        let (Some((operator, _)), Some((subject, _))) = (&self.operator, &self.subject) else { return };
        let (operator, inr, window) = (Arc::clone(operator), Arc::clone(&subject.inr), self.zoom.window());
        let device = if key.4 { self.device.clone() } else { None };
        let job = Job::spawn("insp-zoom", Arc::clone(waker), move |control, _sink| {
            let start = std::time::Instant::now();
            let grid = (grid, grid);
            let channels = inr.config.out_features;
            let pixels: Vec<f32> = match &device {
                Some(gpu) => gpu
                    .pipelines
                    .get_or_init(|| EditGpu::new(&gpu.device))
                    .evaluate(&gpu.device, &gpu.queue, &operator, &inr, window, grid)?
                    .into_iter()
                    .flat_map(|px| px.into_iter().take(channels))
                    .collect(),
                None => {
                    let (origin, step) = window.origin_and_step(grid);
                    let partials = operator.spec.partials().map_err(|e| e.to_string())?;
                    // A band of rows at a time, so that a newer view cancels this one quickly.
                    let mut pixels = Vec::with_capacity((grid.0 * grid.1) as usize * channels);
                    for first in (0..grid.1).step_by(ZOOM_ROWS_PER_CHUNK as usize) {
                        let rows = first..(first + ZOOM_ROWS_PER_CHUNK).min(grid.1);
                        if control.is_cancelled() {
                            return Err(crate::jobs::CANCELLED.to_owned());
                        }
                        #[allow(clippy::cast_precision_loss)]
                        let coords: Vec<f32> = rows
                            .flat_map(|j| {
                                (0..grid.0)
                                    .flat_map(move |i| [origin[0] + step[0] * i as f32, origin[1] + step[1] * j as f32])
                            })
                            .collect();
                        let stacks = taylor::derivative_stack(&inr, &partials, &coords).map_err(|e| e.to_string())?;
                        pixels.extend(operator.apply_rows(&stacks));
                    }
                    pixels
                }
            };
            let pixels = pixels.into_iter().map(|v| v.clamp(0.0, 1.0)).collect();
            let image = ImageData::new(grid.0, grid.1, channels, pixels).map_err(|e| e.to_string())?;
            Ok(ZoomImage { image, on_gpu: device.is_some(), seconds: start.elapsed().as_secs_f64(), key })
        });
        if let Ok(job) = job {
            self.zoom_job = Some(job);
        }
    }

    /// Starts the zoom view the current state needs, if any: a budget-sized one for new content
    /// (spaced out while the operator trains, so that the zoom takes at most a quarter of the
    /// machine), then the full grid once training rests.
    fn schedule_zoom(&mut self, ctx: &egui::Context, backend: ZoomBackend, waker: &Waker) {
        let Some(key) = self.zoom_key(backend) else { return };
        // A newer view (pan or zoom) than the one being computed is not wanted any more; nor is a
        // full-grid refine (outside the time budget) of an operator or INR that has changed.
        if let (Some(job), Some(running)) = (&self.zoom_job, self.zoom_running)
            && ((running.2, running.3) != (key.2, key.3)
                || (running != key && self.zoom_running_grid > self.zoom_grid(key.4)))
        {
            job.cancel();
        }
        if self.zoom_job.is_some() || self.zoom_failed == Some(key) {
            return;
        }
        let shown = self.zoom_shown.as_ref().map(|(texture, shown, _, _)| (*shown, texture.size()[0]));
        let training = self.is_training();
        let grid = match shown {
            Some((shown, _)) if shown != key => self.zoom_grid(key.4),
            None => self.zoom_grid(key.4),
            Some((_, size)) if !training && size < ZOOM_GRID as usize => ZOOM_GRID,
            Some(_) => return,
        };
        // Only the operator changed (a training snapshot): wait until the last zoom has rested
        // three times as long as it ran.
        let only_training = shown.is_some_and(|(shown, _)| (shown.1, shown.2, shown.3, shown.4) == (key.1, key.2, key.3, key.4));
        if training && only_training
            && let Some((at, seconds)) = self.zoom_finished
        {
            let wait = 3.0 * seconds - at.elapsed().as_secs_f64();
            if wait > 0.0 {
                ctx.request_repaint_after(std::time::Duration::from_secs_f64(wait));
                return;
            }
        }
        self.zoom_running = Some(key);
        self.zoom_running_grid = grid;
        self.start_zoom(key, grid, waker);
    }

    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    pub fn is_training(&self) -> bool {
        self.train_job.as_ref().is_some_and(|j| !j.is_finished())
    }

    pub fn operator(&self) -> Option<&OperatorWeights> {
        self.operator.as_ref().map(|(op, _)| op.as_ref())
    }

    pub fn subject(&self) -> Option<&Subject> {
        self.subject.as_ref().map(|(s, _)| s)
    }

    pub fn history(&self) -> &[OperatorStep] {
        &self.history
    }

    /// Whether the views show the current operator on the current subject.
    /// Whether the zoom view shows the current state (computed where `backend` says).
    pub fn zoom_is_up_to_date(&self, backend: ZoomBackend) -> bool {
        let key = self.zoom_key(backend);
        key.is_some() && self.zoom_shown.as_ref().map(|(_, k, _, _)| *k) == key
    }

    /// The side of the grid of the zoom view shown (the CPU starts small and refines).
    pub fn zoom_grid_shown(&self) -> Option<usize> {
        self.zoom_shown.as_ref().map(|(texture, _, _, _)| texture.size()[0])
    }

    /// Whether the zoom view was last computed by the GPU shader.
    pub fn zoom_on_gpu(&self) -> Option<bool> {
        self.zoom_shown.as_ref().map(|(_, _, on_gpu, _)| *on_gpu)
    }

    fn current_key(&self) -> Option<(u64, u64)> {
        Some((self.operator.as_ref()?.1, self.subject.as_ref()?.1))
    }

    pub fn is_up_to_date(&self) -> bool {
        let key = (self.operator.as_ref().map_or(0, |o| o.1), self.subject.as_ref().map_or(0, |s| s.1));
        self.shown.as_ref().is_some_and(|s| s.evaluated.key == key) && !self.eval_pending
    }

    /// Trains an operator for the settings' edit on the INR lab's image (and any extra training
    /// images); the INR lab's INR becomes the subject for filters, a fresh fit of the corrupted
    /// image for restorations.
    pub fn start_training(
        &mut self,
        settings: &EditSettings,
        image: Option<Arc<ImageData>>,
        image_name: &str,
        lab_inr: Option<Arc<SirenWeights>>,
        waker: Waker,
    ) -> Result<(), String> {
        if self.is_training() {
            return Err("an operator is already training; cancel it first".into());
        }
        settings.task.validate().map_err(|e| e.to_string())?;
        let custom = settings.task.kind == EditKind::Custom;
        settings.operator.validate().map_err(|e| e.to_string())?;
        let image = image.ok_or("load an image in the INR lab first: it is what the edit is shown on")?;
        if custom && settings.pairs.is_empty() {
            return Err(
                "the custom edit learns from pairs: add one under Training data (an input and its target)".into()
            );
        }
        if !custom && !settings.train_on_current && settings.training_images.is_empty() {
            return Err("no training data: tick “Train on the current image” or add training images".into());
        }
        let source = insp::OperatorSource {
            task: settings.task,
            image,
            image_name: image_name.to_owned(),
            image_inr: lab_inr,
            fit: FitConfig {
                width: settings.fit_width,
                hidden_layers: 3,
                steps: settings.fit_steps,
                learning_rate: 2e-4,
                batch: BatchMode::Full,
                seed: 0,
                snapshot_interval_secs: 0.0,
                ..FitConfig::default()
            },
            operator: settings.operator.clone(),
            train_on_current: settings.train_on_current && !custom,
            training_images: if custom { Vec::new() } else { settings.training_images.clone() },
            crops: settings.crops,
            pairs: settings.pairs.iter().filter(|_| custom).map(|p| (p.input.clone(), p.target.clone())).collect(),
        };
        source.fit.validate(source.image.channels).map_err(|e| e.to_string())?;
        // A filter of the lab's INR: that INR is what gets edited, from the first snapshot on;
        // otherwise the job fits an INR to the corrupted image and hands it back.
        if let Some(subject) = source.known_subject() {
            let generation = self.generation();
            self.subject = Some((subject, generation));
        }
        self.subject_at_training_start = self.subject.as_ref().map(|(_, g)| *g);
        let job = Job::spawn("insp-train", waker, move |control, sink| {
            crate::jobs::cancelled_as_error(insp::train_for_image(&source, control, &mut |event| sink.send(event)))
        })
        .map_err(|e| format!("cannot start training: {e}"))?;
        self.train_job = Some(job);
        self.history.clear();
        Ok(())
    }

    /// Runs INSP-ConvNet against the pixel CNN on the built-in digits.
    pub fn start_classification(&mut self, config: &ClassifyConfig, waker: Waker) -> Result<(), String> {
        if self.classify_job.as_ref().is_some_and(|j| !j.is_finished()) {
            return Err("the digit classification is already running".into());
        }
        config.validate().map_err(|e| e.to_string())?;
        let config = config.clone();
        let job = Job::spawn("insp-classify", waker, move |control, sink| {
            let digits = classify::builtin_digits();
            let fits = if config.limit == 0 { digits.len() } else { config.limit.min(digits.len()) };
            let total = (fits + 2 * config.epochs) as u64;
            sink.send(RunEvent::Started { total_steps: total });
            let start = std::time::Instant::now();
            let mut epochs_done = 0;
            classify::run_classification(&digits, &config, control, &mut |progress| {
                let (step, metrics) = match progress {
                    ClassifyProgress::FittingInrs { done, .. } => (done, Vec::new()),
                    ClassifyProgress::Training { test_accuracy, .. } => {
                        epochs_done += 1;
                        (fits + epochs_done, vec![("test_accuracy", test_accuracy)])
                    }
                };
                sink.send(RunEvent::Progress {
                    step: step as u64,
                    metrics,
                    elapsed_secs: start.elapsed().as_secs_f64(),
                });
            })
            .map_err(|e| e.to_string())
        })
        .map_err(|e| format!("cannot start the classification: {e}"))?;
        self.classify_job = Some(job);
        Ok(())
    }

    pub fn classification(&self) -> Option<&ClassifySummary> {
        self.classify_result.as_ref()
    }

    pub fn is_classifying(&self) -> bool {
        self.classify_job.as_ref().is_some_and(|j| !j.is_finished())
    }

    /// Edits the INR in `path` with the current operator from now on.
    pub fn load_subject(&mut self, path: &Path, task: EditTask) -> Result<String, String> {
        let weights = SirenWeights::load(path).map_err(|e| e.to_string())?;
        let size = 256;
        let model = Siren::new(&weights, &crate::compute::default_device(), candle_core::DType::F32)
            .map_err(|e| e.to_string())?;
        let decoded = inr::reconstruct(&model, size, size).map_err(|e| e.to_string())?;
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let generation = self.generation();
        self.subject =
            Some((Subject { inr: Arc::new(weights), input: Arc::new(decoded), clean: None, name }, generation));
        self.eval_pending = true;
        Ok(format!(
            "Editing {}{}.",
            path.display(),
            if task.kind.is_filter() { "" } else { " (no target image known: the views show no error)" }
        ))
    }

    /// Edits the INR lab's INR of `image` from now on.
    pub fn use_lab_inr(
        &mut self,
        inr: Option<Arc<SirenWeights>>,
        image: Option<Arc<ImageData>>,
        name: &str,
    ) -> Result<String, String> {
        let inr = inr.ok_or("the INR lab has no INR yet; fit one there first")?;
        let image = image.ok_or("the INR lab has no image")?;
        if inr.config.out_features != image.channels {
            return Err("the INR lab's INR and image differ in channels; refit the INR first".into());
        }
        // Restorations of a clean INR are scored against the clean image itself.
        let generation = self.generation();
        let clean = Some(Arc::clone(&image));
        self.subject = Some((Subject { inr, input: image, clean, name: name.to_owned() }, generation));
        self.eval_pending = true;
        Ok(format!("Editing the INR lab's INR of {name}."))
    }

    pub fn load_operator(&mut self, path: &Path) -> Result<(String, EditTask), String> {
        if self.is_training() {
            return Err("an operator is training; cancel it before loading another".into());
        }
        let operator = OperatorWeights::load(path).map_err(|e| e.to_string())?;
        let task = operator.spec.task;
        let generation = self.generation();
        self.operator = Some((Arc::new(operator), generation));
        self.operator_name =
            path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        self.history.clear();
        self.eval_pending = true;
        Ok((format!("Loaded the operator {} ({}).", path.display(), task.summary()), task))
    }

    pub fn save_operator(&self, path: &Path) -> Result<String, String> {
        let (operator, _) = self.operator.as_ref().ok_or("there is no operator to save; train one first")?;
        operator.save(path).map_err(|e| e.to_string())?;
        Ok(format!("Saved the operator to {}.", path.display()))
    }

    pub fn start_export(&mut self, path: PathBuf, settings: &EditSettings, waker: Waker) -> Result<(), String> {
        if self.export_job.is_some() {
            return Err("an export is already running".into());
        }
        let (operator, _) = self.operator.clone().ok_or("there is no operator; train or load one first")?;
        let subject = self.subject().ok_or("there is no INR to edit yet")?.inr.clone();
        let (width, height) = (settings.export_width, settings.export_height);
        let job = Job::spawn("insp-export", waker, move |control, sink| {
            sink.send(RunEvent::Started { total_steps: u64::from(height) });
            let start = std::time::Instant::now();
            let image = insp::render_edit(&operator, &subject, width, height, control, &mut |row| {
                sink.send(RunEvent::Progress {
                    step: u64::from(row),
                    metrics: Vec::new(),
                    elapsed_secs: start.elapsed().as_secs_f64(),
                });
            })
            .map_err(|e| e.to_string())?
            .ok_or(crate::jobs::CANCELLED)?;
            image_io::save_png(&image, &path).map_err(|e| e.to_string())?;
            Ok(format!("Exported the edit at {}×{} to {}.", image.width, image.height, path.display()))
        })
        .map_err(|e| format!("cannot start the export: {e}"))?;
        self.export_job = Some(job);
        Ok(())
    }

    fn start_evaluation(&mut self, waker: &Waker, backend: ZoomBackend) {
        let (Some((operator, op_gen)), Some((subject, subject_gen))) = (&self.operator, &self.subject) else {
            return;
        };
        if self.eval_job.as_ref().is_some_and(|j| !j.is_finished()) {
            return;
        }
        let (operator, subject, key) = (Arc::clone(operator), subject.clone(), (*op_gen, *subject_gen));
        self.eval_pending = false;
        if self.eval_failed == Some(key) {
            return;
        }
        self.eval_running = Some(key);
        // Training snapshots change only the operator: the subject's stack stays valid.
        let stacks = self
            .shown
            .as_ref()
            .filter(|s| s.evaluated.key.1 == key.1 && s.evaluated.partials.order() == operator.spec.order)
            .map(|s| Arc::clone(&s.evaluated.stacks));
        let gpu = self.gpu_for(backend).cloned();
        let job = Job::spawn("insp-evaluate", Arc::clone(waker), move |_control, _sink| {
            evaluate(&operator, &subject, key, stacks, gpu.as_ref()).map_err(|e| e.to_string())
        });
        match job {
            Ok(job) => self.eval_job = Some(job),
            Err(_) => self.eval_pending = true,
        }
    }

    /// Collects job updates, starts evaluations that are due; returns notifications.
    pub fn poll(&mut self, ctx: &egui::Context, waker: &Waker, inspect: usize, backend: ZoomBackend) -> Notes {
        let mut notes = Notes::new();
        let mut updates = Vec::new();
        if let Some(job) = &mut self.train_job {
            updates = job.poll();
        }
        for update in updates {
            match update {
                JobUpdate::Progress { step, metrics, .. } => {
                    let metric = |name: &str| metrics.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
                    if let (Some(loss), Some(psnr_db)) = (metric("loss"), metric("psnr_db")) {
                        self.history.push(OperatorStep { step, loss, psnr_db });
                    }
                }
                JobUpdate::Snapshot(weights) => {
                    let generation = self.generation();
                    self.operator = Some((weights, generation));
                    self.operator_name = "training…".into();
                    self.eval_pending = true;
                }
                JobUpdate::Finished(Ok(outcome)) => {
                    let summary = outcome.summary;
                    let generation = self.generation();
                    self.operator = Some((Arc::new(summary.weights), generation));
                    self.operator_name = format!("trained, {} steps", summary.steps_done);
                    // The user may have picked another INR to edit meanwhile: keep that one.
                    if let Some(subject) = outcome.subject
                        && self.subject.as_ref().map(|(_, g)| *g) == self.subject_at_training_start
                    {
                        let generation = self.generation();
                        self.subject = Some((subject, generation));
                    }
                    self.history = summary.history;
                    self.eval_pending = true;
                    notes.push((
                        if summary.cancelled { Level::Warning } else { Level::Success },
                        format!(
                            "Operator {}: training-set PSNR {:.2} → {:.2} dB in {} steps ({:.0} ms/step).",
                            if summary.cancelled { "cancelled" } else { "trained" },
                            summary.initial_psnr_db,
                            summary.final_psnr_db,
                            summary.steps_done,
                            summary.ms_per_step
                        ),
                    ));
                }
                JobUpdate::Finished(Err(message)) => {
                    if self.operator_name == "training…" {
                        self.operator_name = "last snapshot of an unfinished training".into();
                    }
                    if message == crate::jobs::CANCELLED {
                        notes.push((Level::Warning, "Operator training cancelled while fitting INRs.".into()));
                    } else {
                        notes.push((Level::Error, format!("Operator training failed: {message}")));
                    }
                }
                JobUpdate::Started { .. } => {}
            }
        }
        if let Some(job) = &mut self.eval_job {
            for update in job.poll() {
                match update {
                    JobUpdate::Finished(Ok(evaluated)) => {
                        if let Some(error) = &evaluated.gpu_error {
                            notes.push((
                                Level::Warning,
                                format!("The GPU edit failed ({error}); the views use the CPU."),
                            ));
                        }
                        let textures = view_textures(ctx, &evaluated);
                        self.shown = Some(ShownEdit { evaluated, textures, inspected: None });
                    }
                    JobUpdate::Finished(Err(message)) => {
                        self.eval_failed = self.eval_running;
                        notes.push((Level::Error, format!("Evaluating the edit failed: {message}")));
                    }
                    _ => {}
                }
            }
        }
        if self.eval_job.as_ref().is_some_and(Job::is_finished) {
            self.eval_job = None;
        }
        // The backend changed since the views were computed: compute them where it now says.
        if let Some(shown) = &self.shown
            && self.eval_job.is_none()
            && shown.evaluated.key == self.current_key().unwrap_or_default()
            && shown.evaluated.gpu_requested != self.gpu_for(backend).is_some()
        {
            self.eval_pending = true;
        }
        if self.eval_pending {
            self.start_evaluation(waker, backend);
        }
        if let Some(job) = &mut self.zoom_job {
            for update in job.poll() {
                match update {
                    JobUpdate::Finished(Ok(zoom)) => {
                        let size = [zoom.image.width as usize, zoom.image.height as usize];
                        let handle = ctx.load_texture(
                            "edit zoom",
                            egui::ColorImage::from_rgba_unmultiplied(size, &zoom.image.to_rgba8()),
                            egui::TextureOptions::LINEAR,
                        );
                        if !zoom.on_gpu {
                            #[allow(clippy::cast_precision_loss)]
                            let points = (size[0] * size[1]).max(1) as f64;
                            self.zoom_cpu_cost = Some(zoom.seconds / points);
                        }
                        self.zoom_finished = Some((std::time::Instant::now(), zoom.seconds));
                        self.zoom_shown = Some((handle, zoom.key, zoom.on_gpu, zoom.seconds));
                    }
                    // A newer view replaced it.
                    JobUpdate::Finished(Err(message)) if message == crate::jobs::CANCELLED => {}
                    JobUpdate::Finished(Err(message)) => {
                        // Not retried until something changes.
                        self.zoom_failed = self.zoom_running;
                        notes.push((Level::Error, format!("The zoom view failed: {message}")));
                    }
                    _ => {}
                }
            }
        }
        if self.zoom_job.as_ref().is_some_and(Job::is_finished) {
            self.zoom_job = None;
        }
        self.schedule_zoom(ctx, backend, waker);
        if let Some(shown) = &mut self.shown {
            let partials = shown.evaluated.partials.len();
            let k = inspect.min(partials - 1);
            if shown.inspected.as_ref().is_none_or(|(current, _, _)| *current != k) {
                let (texture, scale) = partial_texture(ctx, &shown.evaluated, k);
                shown.inspected = Some((k, texture, scale));
            }
        }
        if let Some(job) = &mut self.classify_job {
            for update in job.poll() {
                match update {
                    JobUpdate::Finished(Ok(Some(summary))) => {
                        notes.push((
                            Level::Success,
                            format!(
                                "Digits: INSP-ConvNet {:.1}% vs pixel CNN {:.1}% test accuracy ({} test digits).",
                                100.0 * summary.insp.accuracy,
                                100.0 * summary.cnn.accuracy,
                                summary.test
                            ),
                        ));
                        self.classify_result = Some(summary);
                    }
                    JobUpdate::Finished(Ok(None)) => notes.push((Level::Warning, "Classification cancelled.".into())),
                    JobUpdate::Finished(Err(e)) => notes.push((Level::Error, format!("Classification failed: {e}"))),
                    _ => {}
                }
            }
        }
        if self.classify_job.as_ref().is_some_and(Job::is_finished) {
            self.classify_job = None;
        }
        crate::ui::widgets::poll_message_job(&mut self.export_job, "Export", &mut notes);
        notes
    }

    pub fn jobs(&self) -> Vec<JobRow<'_>> {
        let mut rows = Vec::new();
        if let Some(job) = self.train_job.as_ref().filter(|j| !j.is_finished()) {
            rows.push(JobRow {
                id: job.id(),
                name: "Train operator",
                status: job.status(),
                cancelling: job.is_cancelled(),
            });
        }
        if let Some(job) = self.export_job.as_ref().filter(|j| !j.is_finished()) {
            rows.push(JobRow {
                id: job.id(),
                name: "Export edit",
                status: job.status(),
                cancelling: job.is_cancelled(),
            });
        }
        if let Some(job) = self.classify_job.as_ref().filter(|j| !j.is_finished()) {
            rows.push(JobRow {
                id: job.id(),
                name: "Classify digits",
                status: job.status(),
                cancelling: job.is_cancelled(),
            });
        }
        rows
    }

    /// Pauses or cancels one of this lab's jobs; false when the id is not one of them.
    pub fn control_job(&mut self, id: JobId, action: impl FnOnce(&mut dyn JobControl)) -> bool {
        if let Some(job) = self.train_job.as_mut().filter(|j| j.id() == id) {
            action(job);
            return true;
        }
        if let Some(job) = self.export_job.as_mut().filter(|j| j.id() == id) {
            action(job);
            return true;
        }
        if let Some(job) = self.classify_job.as_mut().filter(|j| j.id() == id) {
            action(job);
            return true;
        }
        false
    }

    pub fn panel_state(&self) -> EditPanelState<'_> {
        let shown = self.shown.as_ref();
        EditPanelState {
            training: self.is_training(),
            operator: self.operator().map(|op| (op, self.operator_name.as_str())),
            subject: self.subject().map(|s| s.name.as_str()),
            history: &self.history,
            views: shown.map(|s| s.textures.as_slice()).unwrap_or_default(),
            partial_labels: shown
                .map(|s| (0..s.evaluated.partials.len()).map(|k| s.evaluated.partials.label(k)).collect())
                .unwrap_or_default(),
            inspected: shown.and_then(|s| s.inspected.as_ref().map(|(k, t, scale)| (*k, t, *scale))),
            evaluating: !self.is_up_to_date()
                && self.operator.is_some()
                && self.subject.is_some()
                && self.eval_failed != self.current_key(),
            zoom: self
                .zoom_shown
                .as_ref()
                .map(|(texture, _, on_gpu, secs)| (texture, if *on_gpu { "GPU shader" } else { "CPU" }, *secs)),
            zooming: self.zoom_job.is_some(),
            classifying: self.is_classifying(),
            classification: self.classify_result.as_ref(),
        }
    }
}
