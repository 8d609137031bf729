//! The INR lab: image, fit job, current INR, export job (`InrState`); its commands and the
//! [`Lab`](crate::labs::Lab) interface are in `lab.rs`, its panel in `panel.rs`.

mod lab;
pub mod panel;

pub use lab::{InrCommand, InrFile, InrLab};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;
use serde::{Deserialize, Serialize};

use self::panel::{InrPanelState, InrSettings, InrViewState};
use crate::compute::image_io::{self, ImageData};
use crate::compute::inr::{self, DisplayScales, FitSummary, InrSnapshot, Siren, SirenWeights, StepRecord};
use crate::jobs::{Job, JobControl, JobId, JobUpdate, Waker};
use crate::render::inr_view::Versioned;
use crate::ui::BuiltinImage;
use crate::ui::widgets::{JobRow, Level, poll_message_job};

/// Where the current image came from (persisted so the next start reopens it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ImageSource {
    Builtin(BuiltinImage),
    File(PathBuf),
}

impl Default for ImageSource {
    fn default() -> Self {
        Self::Builtin(BuiltinImage::Camera)
    }
}

impl ImageSource {
    pub fn display_name(&self) -> String {
        match self {
            Self::Builtin(b) => b.file_name().to_owned(),
            Self::File(path) => {
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
            }
        }
    }
}

pub use crate::ui::widgets::Notes;

pub struct LoadedInrImage {
    source: ImageSource,
    /// As decoded.
    full: Arc<ImageData>,
    /// Downscaled to the training size.
    training: Versioned<ImageData>,
    training_size: u32,
    texture: egui::TextureHandle,
    name: String,
}

/// The INR lab's images, jobs and results.
pub struct InrState {
    pub view: InrViewState,
    image: Option<LoadedInrImage>,
    fit_job: Option<Job<InrSnapshot, FitSummary>>,
    export_job: Option<Job<(), String>>,
    network: Option<Versioned<SirenWeights>>,
    scales: DisplayScales,
    history: Vec<StepRecord>,
    summary: Option<String>,
    next_generation: u64,
    /// Steps done before the running fit started (a continued fit counts from 1 again).
    history_offset: u64,
    /// Training steps behind the weights in `network`.
    network_step: u64,
    /// The training image the running fit uses.
    fit_image: Option<u64>,
    /// The training image (its generation) that `network` was fitted to; `None` for loaded files.
    network_image: Option<u64>,
}

impl Default for InrState {
    fn default() -> Self {
        Self {
            view: InrViewState::default(),
            image: None,
            fit_job: None,
            export_job: None,
            network: None,
            scales: DisplayScales { gradient: 1.0, laplacian: 1.0 },
            history: Vec::new(),
            summary: None,
            next_generation: 1,
            history_offset: 0,
            network_step: 0,
            fit_image: None,
            network_image: None,
        }
    }
}

impl InrState {
    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    pub fn image(&self) -> Option<&Arc<ImageData>> {
        self.image.as_ref().map(|i| &i.training.value)
    }

    pub fn image_source(&self) -> Option<&ImageSource> {
        self.image.as_ref().map(|i| &i.source)
    }

    pub fn network(&self) -> Option<&Versioned<SirenWeights>> {
        self.network.as_ref()
    }

    /// The current INR when it was fitted to the current training image (not a loaded file, not
    /// an earlier image).
    pub fn network_of_current_image(&self) -> Option<Arc<SirenWeights>> {
        let image = self.image.as_ref()?;
        let network = self.network.as_ref()?;
        (self.network_image == Some(image.training.generation)).then(|| Arc::clone(&network.value))
    }

    /// Training steps behind the current INR.
    pub fn network_step(&self) -> u64 {
        self.network_step
    }

    pub fn history(&self) -> &[StepRecord] {
        &self.history
    }

    pub fn is_training(&self) -> bool {
        self.fit_job.as_ref().is_some_and(|j| !j.is_finished())
    }

    pub fn fit_job(&self) -> Option<&Job<InrSnapshot, FitSummary>> {
        self.fit_job.as_ref()
    }

    /// Loads an image; on failure the current image stays and the error is returned.
    pub fn load_image(
        &mut self,
        ctx: &egui::Context,
        source: ImageSource,
        settings: &InrSettings,
    ) -> Result<Notes, String> {
        let loaded = match &source {
            ImageSource::Builtin(b) => image_io::load_image_bytes(b.bytes(), b.file_name()),
            ImageSource::File(path) => image_io::load_image(path),
        }
        .map_err(|e| e.to_string())?;
        let full = Arc::new(loaded.image);
        let name = source.display_name();
        let generation = self.generation();
        let (training, texture) = training_image(ctx, &full, settings.training_size, &name);
        let mut notes: Notes = loaded.notices.into_iter().map(|n| (Level::Info, n)).collect();
        if training.width != full.width {
            notes.push((
                Level::Info,
                format!(
                    "{name}: downscaled from {}×{} to {}×{} for training.",
                    full.width, full.height, training.width, training.height
                ),
            ));
        }
        self.image = Some(LoadedInrImage {
            source,
            full,
            training: Versioned { value: Arc::new(training), generation },
            training_size: settings.training_size,
            texture,
            name,
        });
        Ok(notes)
    }

    /// Re-derives the training image when the training size setting changed (once the slider is
    /// let go: downscaling a large image on every step of a drag would stall the window).
    pub fn sync_training_size(&mut self, ctx: &egui::Context, settings: &InrSettings) {
        let Some(current) = &self.image else { return };
        if current.training_size == settings.training_size || ctx.input(|i| i.pointer.any_down()) {
            return;
        }
        let full = Arc::clone(&current.full);
        let name = current.name.clone();
        let generation = self.generation();
        let (training, texture) = training_image(ctx, &full, settings.training_size, &name);
        if let Some(image) = &mut self.image {
            image.training = Versioned { value: Arc::new(training), generation };
            image.texture = texture;
            image.training_size = settings.training_size;
        }
    }

    /// Starts a fit; `resume` continues from the current INR.
    pub fn start_fit(&mut self, settings: &InrSettings, resume: bool, waker: Waker) -> Result<(), String> {
        if self.is_training() {
            return Err("a fit is already running; cancel it first".into());
        }
        let image_generation = self.image.as_ref().ok_or("load an image first")?.training.generation;
        let image = self.image.as_ref().ok_or("load an image first")?.training.value.clone();
        let cfg = settings.fit.clone();
        cfg.validate(image.channels).map_err(|e| e.to_string())?;
        let init = if resume {
            let network = self.network.as_ref().ok_or("there is no INR to continue")?;
            if network.value.config != cfg.siren_config(image.channels) {
                return Err("the current INR's shape differs from the settings (layers, width, ω₀, channels); \
                            press Train to start afresh"
                    .into());
            }
            Some(network.value.as_ref().clone())
        } else {
            self.history.clear();
            None
        };
        let step_offset = if resume { self.network_step } else { 0 };
        // Progress beyond the weights being continued (a failed fit's last steps) is dropped.
        self.history.retain(|r| r.step <= step_offset);
        let job = Job::spawn("inr-fit", waker, move |control, sink| {
            inr::fit(&image, &cfg, init.as_ref(), control, &mut |event| {
                sink.send(event);
            })
            .map(|mut summary| {
                for record in &mut summary.history {
                    record.step += step_offset;
                }
                summary.steps_done += step_offset;
                summary
            })
            .map_err(|e| e.to_string())
        })
        .map_err(|e| format!("cannot start the fit: {e}"))?;
        self.fit_job = Some(job);
        self.fit_image = Some(image_generation);
        self.history_offset = step_offset;
        self.summary = Some(if resume { "continuing…".into() } else { "training…".into() });
        Ok(())
    }

    /// Collects job updates; returns messages for the notification area.
    pub fn poll(&mut self) -> Notes {
        let mut notes = Notes::new();
        let step_offset = self.history_offset;
        if let Some(job) = &mut self.fit_job {
            for update in job.poll() {
                match update {
                    JobUpdate::Started { .. } => {}
                    JobUpdate::Progress { step, metrics, .. } => {
                        let metric =
                            |name: &str| metrics.iter().find(|(n, _)| *n == name).map_or(f64::NAN, |(_, v)| *v);
                        self.history.push(StepRecord {
                            step: step + step_offset,
                            loss: metric("loss"),
                            psnr_db: metric("psnr_db"),
                        });
                    }
                    JobUpdate::Snapshot(snapshot) => {
                        self.network_image = self.fit_image;
                        self.network_step = snapshot.step + step_offset;
                        self.next_generation += 1;
                        self.network = Some(Versioned {
                            value: Arc::new(snapshot.weights.clone()),
                            generation: self.next_generation,
                        });
                        self.scales = snapshot.scales;
                    }
                    JobUpdate::Finished(Ok(summary)) => {
                        self.network_image = self.fit_image;
                        self.network_step = summary.steps_done;
                        self.next_generation += 1;
                        self.network = Some(Versioned {
                            value: Arc::new(summary.weights.clone()),
                            generation: self.next_generation,
                        });
                        self.scales = summary.scales;
                        // The summary's history is complete (progress events are throttled).
                        self.history.retain(|r| r.step <= step_offset);
                        self.history.extend(summary.history.iter().copied());
                        let line = format!(
                            "{} steps · {:.2} dB · {:.0} ms/step",
                            summary.steps_done, summary.psnr_db, summary.ms_per_step
                        );
                        notes.push(if summary.cancelled {
                            (
                                Level::Warning,
                                format!(
                                    "Fit cancelled at step {}; kept what it reached ({:.2} dB).",
                                    summary.steps_done, summary.psnr_db
                                ),
                            )
                        } else {
                            (Level::Success, format!("Fit finished: {line}."))
                        });
                        self.summary = Some(line);
                    }
                    JobUpdate::Finished(Err(message)) => {
                        notes.push((Level::Error, format!("Fit failed: {message}")));
                        // The INR stays at its last snapshot; so does the history.
                        let kept = self.network_step;
                        self.history.retain(|r| r.step <= kept);
                        self.summary = None;
                    }
                }
            }
        }
        poll_message_job(&mut self.export_job, "Export", &mut notes);
        notes
    }

    pub fn jobs(&self) -> Vec<JobRow<'_>> {
        let mut rows = Vec::new();
        if let Some(job) = self.fit_job.as_ref().filter(|j| !j.is_finished()) {
            rows.push(JobRow { id: job.id(), name: "Fit SIREN", status: job.status(), cancelling: job.is_cancelled() });
        }
        if let Some(job) = self.export_job.as_ref().filter(|j| !j.is_finished()) {
            rows.push(JobRow {
                id: job.id(),
                name: "Export PNG",
                status: job.status(),
                cancelling: job.is_cancelled(),
            });
        }
        rows
    }

    fn job_mut(&mut self, id: JobId) -> Option<JobControlRef<'_>> {
        if let Some(job) = self.fit_job.as_mut().filter(|j| j.id() == id) {
            return Some(JobControlRef::Fit(job));
        }
        if let Some(job) = self.export_job.as_mut().filter(|j| j.id() == id) {
            return Some(JobControlRef::Export(job));
        }
        None
    }

    /// Pauses or cancels one of this lab's jobs; false when the id is not one of them.
    pub fn control_job(&mut self, id: JobId, action: impl FnOnce(&mut dyn JobControl)) -> bool {
        match self.job_mut(id) {
            Some(JobControlRef::Fit(job)) => action(job),
            Some(JobControlRef::Export(job)) => action(job),
            None => return false,
        }
        true
    }

    pub fn cancel(&mut self, id: JobId) {
        self.control_job(id, |job| job.cancel());
    }

    pub fn set_paused(&mut self, id: JobId, paused: bool) {
        self.control_job(id, |job| job.set_paused(paused));
    }

    pub fn save_inr(&self, path: &Path) -> Result<String, String> {
        let network = self.network.as_ref().ok_or("there is no INR to save yet; train one first")?;
        let mut metadata = vec![("sparsefield.steps", self.network_step.to_string())];
        if let Some(image) = &self.image {
            metadata.push(("sparsefield.image", image.name.clone()));
        }
        network.value.save(path, &metadata).map_err(|e| e.to_string())?;
        Ok(format!("Saved the INR to {}.", path.display()))
    }

    /// Loads an INR; the model settings follow it so that Continue works.
    pub fn load_inr(&mut self, path: &Path, settings: &mut InrSettings) -> Result<String, String> {
        if self.is_training() {
            return Err("a fit is running; cancel it before loading another INR".into());
        }
        let (weights, metadata) = SirenWeights::load_with_metadata(path).map_err(|e| e.to_string())?;
        let model = Siren::new(&weights, &crate::compute::default_device(), candle_core::DType::F32)
            .map_err(|e| e.to_string())?;
        self.scales = inr::display_scales(&model).map_err(|e| e.to_string())?;
        let c = weights.config;
        settings.fit.width = c.width;
        settings.fit.hidden_layers = c.hidden_layers;
        settings.fit.omega0 = c.omega0;
        let generation = self.generation();
        self.network = Some(Versioned { value: Arc::new(weights), generation });
        self.network_image = None;
        self.network_step = metadata.get("sparsefield.steps").and_then(|s| s.parse().ok()).unwrap_or(0);
        self.history.clear();
        let file_name =
            path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        self.summary = Some(format!("loaded {file_name}"));
        let mut message =
            format!("Loaded the INR {} ({}×{}, ω₀ {}).", path.display(), c.width, c.hidden_layers, c.omega0);
        if let Some(image) = self.image()
            && image.channels != c.out_features
        {
            message.push_str(" Its channel count differs from the image's: the error view compares channel 1 only.");
        }
        Ok(message)
    }

    pub fn clear_inr(&mut self) {
        if !self.is_training() {
            self.network = None;
            self.network_step = 0;
            self.history.clear();
            self.summary = None;
        }
    }

    pub fn start_export(&mut self, path: PathBuf, settings: &InrSettings, waker: Waker) -> Result<(), String> {
        if self.export_job.is_some() {
            return Err("an export is already running".into());
        }
        let weights = self.network.as_ref().ok_or("there is no INR to export; train one first")?.value.clone();
        let (width, height) = (settings.export_width, settings.export_height);
        // Rendered and written off the UI thread.
        let job = Job::spawn("inr-export", waker, move |control, sink| {
            let image = inr::render_image(&weights, width, height, control, &mut |event| {
                sink.send(event);
            })
            .map_err(|e| e.to_string())?
            .ok_or(crate::jobs::CANCELLED)?;
            image_io::save_png(&image, &path).map_err(|e| e.to_string())?;
            Ok(format!("Exported {}×{} to {}.", image.width, image.height, path.display()))
        })
        .map_err(|e| format!("cannot start the export: {e}"))?;
        self.export_job = Some(job);
        Ok(())
    }

    pub fn panel_state<'a>(&'a self, gpu: Result<(), &'a str>) -> InrPanelState<'a> {
        InrPanelState {
            image: self.image.as_ref().map(|i| (&i.training.value, &i.texture, i.name.as_str())),
            reference: self.image.as_ref().map(|i| i.training.clone()),
            network: self.network.clone(),
            scales: self.scales,
            history: &self.history,
            training: self.is_training(),
            gpu,
            summary: if self.fit_job.as_ref().is_some_and(|j| !j.is_finished() && j.status().paused) {
                Some("paused")
            } else {
                self.summary.as_deref()
            },
        }
    }
}

enum JobControlRef<'a> {
    Fit(&'a mut Job<InrSnapshot, FitSummary>),
    Export(&'a mut Job<(), String>),
}

fn training_image(
    ctx: &egui::Context,
    full: &ImageData,
    training_size: u32,
    name: &str,
) -> (ImageData, egui::TextureHandle) {
    let training = full.clone().downscaled_to(training_size);
    let texture = crate::ui::widgets::image_texture(ctx, &format!("inr original {name}"), &training);
    (training, texture)
}
