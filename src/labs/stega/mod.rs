//! The StegaNeRF lab's state in the app: stage 1 (a field from the NeRF or lift lab, or a
//! checkpoint), the secret, the embed job and its snapshots in the orbit viewer, what the decoder
//! recovers from the view at rest (after the robustness panel's attack), recoveries from image
//! files, the robustness sweep and exports.

mod lab;
pub mod panel;

pub use lab::{StegaCommand, StegaFile, StegaLab};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;

use self::panel::{SecretChoice, StegaSettings};
use crate::compute::control::RunEvent;
use crate::compute::image_io::{self, BuiltinImage, ImageData};
use crate::compute::nerf::NerfSnapshot;
use crate::compute::nerf::camera::Camera;
use crate::compute::nerf::checkpoint;
use crate::compute::nerf::orbit::Orbit;
use crate::compute::stega::attacks::Attack;
use crate::compute::stega::decoder::{DECODER_FILE, Decoder, Recovery};
use crate::compute::stega::embed::{self, EmbedConfig, EmbedMetrics, EmbedSummary, StegaSnapshot};
use crate::compute::stega::robustness::{self, SweepRow};
use crate::compute::stega::secret::Secret;
use crate::compute::stega::view::{self, ViewRecovery, ViewRenders};
use crate::jobs::{Job, JobControl, JobId, JobUpdate, Waker};
use crate::labs::SharedField;
use crate::ui::orbit_viewer::OrbitViewer;
use crate::ui::widgets::{JobRow, Level, Notes, control_job_of, image_texture};

/// Side of the views the lab decodes (the decoder reads them at its own side).
pub const VIEW_SIDE: u32 = 128;
/// Test views the robustness sweep attacks.
const SWEEP_VIEWS: usize = 6;

/// The field being marked, with its cameras.
pub struct Stage1 {
    pub label: String,
    pub snapshot: Arc<NerfSnapshot>,
    pub orbit: Orbit,
    pub train: Arc<Vec<Camera>>,
    pub test: Arc<Vec<Camera>>,
    /// The data set's images of the test cameras (none for a field without a data set).
    pub truths: Arc<Vec<ImageData>>,
    /// Stage 2 renders views about this size: the data set's images', or [`VIEW_SIDE`].
    pub render_side: u32,
}

impl Stage1 {
    /// A field another lab shares.
    pub fn from_shared(field: &SharedField, from: &str) -> Self {
        let render_side = field
            .dataset
            .as_ref()
            .and_then(|d| d.train.first())
            .map_or(VIEW_SIDE, |v| v.camera.width.min(v.camera.height).clamp(32, 256));
        let (train, test, truths) = match &field.dataset {
            Some(data) => (
                data.train.iter().map(|v| v.camera).collect(),
                data.test.iter().map(|v| v.camera).collect(),
                data.test.iter().map(|v| v.composited_image(data.background)).collect(),
            ),
            None => {
                let (train, test) = embed::orbit_cameras(&field.orbit, VIEW_SIDE);
                (train, test, Vec::new())
            }
        };
        Self {
            label: format!("{from}: {}", field.name),
            snapshot: Arc::clone(&field.snapshot),
            orbit: field.orbit,
            train: Arc::new(train),
            test: Arc::new(test),
            truths: Arc::new(truths),
            render_side,
        }
    }

    /// A checkpoint folder: its cameras are around its orbit.
    pub fn from_checkpoint(dir: &Path) -> Result<Self, String> {
        let (snapshot, config) = checkpoint::load(dir).map_err(|e| e.to_string())?;
        let (train, test) = embed::orbit_cameras(&config.orbit, VIEW_SIDE);
        Ok(Self {
            label: format!("{} (step {})", dir.display(), snapshot.step),
            snapshot: Arc::new(snapshot),
            orbit: config.orbit,
            train: Arc::new(train),
            test: Arc::new(test),
            truths: Arc::new(Vec::new()),
            render_side: VIEW_SIDE,
        })
    }
}

/// What the embed job gives: the run and its scores on the test cameras.
pub struct EmbedOutcome {
    pub summary: EmbedSummary,
    pub metrics: Option<EmbedMetrics>,
}

/// What a recovery from an image file showed.
pub struct FileRecovery {
    pub path: PathBuf,
    pub recovery: Recovery,
}

/// The lab's images as textures.
#[derive(Default)]
pub struct StegaTextures {
    pub secret: Option<egui::TextureHandle>,
    pub recovered: Option<egui::TextureHandle>,
    pub stage1: Option<egui::TextureHandle>,
    pub difference: Option<egui::TextureHandle>,
    pub attacked: Option<egui::TextureHandle>,
    pub file_recovered: Option<egui::TextureHandle>,
}

/// One point of the training plots: step, secret loss, render PSNR against stage 1.
pub type StegaStepRecord = (f64, f64, f64);

#[derive(Default)]
pub struct StegaState {
    pub stage1: Option<Stage1>,
    /// The secret of the current settings (rebuilt when they change), or why there is none.
    secret: Option<Result<Arc<Secret>, String>>,
    secret_settings: Option<(SecretChoice, Option<PathBuf>, u32, String, usize, u64)>,
    embed_job: Option<Job<StegaSnapshot, EmbedOutcome>>,
    /// The marked field and decoder shown (the embed run's latest).
    pub marked: Option<StegaSnapshot>,
    /// The decoder that reads images: the marked field's, or one loaded from a file.
    pub decoder: Option<Arc<Decoder>>,
    pub viewer: OrbitViewer,
    pub history: Vec<StegaStepRecord>,
    pub metrics: Option<EmbedMetrics>,
    /// The view being recovered (its key and its renders' key) and the job doing it.
    recover_job: Option<(u64, u64, Job<(), ViewRecovery>)>,
    /// The latest recovered view and its key.
    pub view: Option<(u64, Arc<ViewRecovery>)>,
    /// The latest renders and their key (camera and field): a new attack reuses them.
    renders: Option<(u64, Arc<ViewRenders>)>,
    pub from_file: Option<FileRecovery>,
    sweep_job: Option<Job<(), Vec<SweepRow>>>,
    pub sweep: Vec<SweepRow>,
    export_job: Option<Job<(), String>>,
    pub textures: StegaTextures,
    pub summary: Option<String>,
}

impl StegaState {
    pub fn is_embedding(&self) -> bool {
        self.embed_job.as_ref().is_some_and(|j| !j.is_finished())
    }

    pub fn is_sweeping(&self) -> bool {
        self.sweep_job.as_ref().is_some_and(|j| !j.is_finished())
    }

    pub fn is_recovering(&self) -> bool {
        self.recover_job.is_some()
    }

    pub fn embed_status(&self) -> Option<&crate::jobs::JobStatus> {
        self.embed_job.as_ref().filter(|j| !j.is_finished()).map(Job::status)
    }

    /// Takes `stage1` as the field to mark (the marked field and its views are dropped).
    pub fn set_stage1(&mut self, stage1: Stage1, waker: &Waker) -> Result<Option<String>, String> {
        if self.is_embedding() {
            return Err("stop embedding before choosing another field".into());
        }
        let message = format!("Stage 1: {}", stage1.label);
        self.viewer.orbit_home = stage1.orbit;
        self.viewer.view.orbit = stage1.orbit;
        self.viewer.show_snapshot(Arc::clone(&stage1.snapshot), true, waker);
        self.stage1 = Some(stage1);
        self.marked = None;
        self.view = None;
        self.renders = None;
        self.metrics = None;
        self.history.clear();
        self.sweep.clear();
        self.summary = None;
        Ok(Some(message))
    }

    /// Rebuilds the secret when its settings changed; loads the image from disk (or the
    /// built-in one).
    pub fn refresh_secret(&mut self, settings: &StegaSettings, ctx: &egui::Context) {
        let key = (
            settings.secret,
            settings.secret_image.clone(),
            settings.secret_side,
            settings.text.clone(),
            settings.bits,
            settings.seed,
        );
        if self.secret_settings.as_ref() == Some(&key) {
            return;
        }
        self.secret_settings = Some(key);
        let secret = make_secret(settings).map(Arc::new);
        self.textures.secret = secret.as_ref().ok().map(|secret| {
            let picture = match secret.as_ref() {
                Secret::Image(image) => image.clone(),
                Secret::Text { bits, .. } | Secret::Bits(bits) => {
                    crate::compute::stega::decoder::Recovered::Bits(bits.clone()).to_image()
                }
            };
            image_texture(ctx, "stega secret", &picture)
        });
        self.secret = Some(secret);
    }

    /// The secret of the current settings, or why there is none.
    pub fn secret(&self) -> Result<&Arc<Secret>, String> {
        match &self.secret {
            Some(Ok(secret)) => Ok(secret),
            Some(Err(problem)) => Err(problem.clone()),
            None => Err("no secret chosen yet".into()),
        }
    }

    pub fn start_embed(&mut self, settings: &StegaSettings, waker: Waker) -> Result<Option<String>, String> {
        if self.is_embedding() {
            return Err("an embed is already running; cancel it first".into());
        }
        let stage1 = self.stage1.as_ref().ok_or("choose the field to mark first (Stage 1 above)")?;
        let secret = Arc::clone(self.secret().map_err(|e| format!("no secret: {e}"))?);
        let cfg = EmbedConfig { render_side: stage1.render_side, ..settings.embed_config() };
        cfg.validate().map_err(|e| e.to_string())?;
        embed::nets_config(&secret, cfg.nets_width).map_err(|e| e.to_string())?;
        let (reference, orbit) = (Arc::clone(&stage1.snapshot), stage1.orbit);
        let (train, test, truths) = (Arc::clone(&stage1.train), Arc::clone(&stage1.test), Arc::clone(&stage1.truths));
        let job = Job::spawn("stega-embed", waker, move |control, sink| {
            let summary = embed::embed(&reference, &train, &orbit, &secret, &cfg, control, &mut |event| {
                sink.send(event);
            })
            .map_err(|e| e.to_string())?;
            // Scores on the test cameras (skipped when cancelled: the field is kept as it is).
            let metrics = if control.is_cancelled() {
                None
            } else {
                let scoring = crate::compute::control::RunControl::new();
                Some(
                    embed::evaluate(&reference, &summary.snapshot, &secret, &test, &truths, &scoring)
                        .map_err(|e| e.to_string())?
                        .0,
                )
            };
            Ok(EmbedOutcome { summary, metrics })
        })
        .map_err(|e| format!("cannot start stage 2: {e}"))?;
        self.embed_job = Some(job);
        self.history.clear();
        self.metrics = None;
        self.sweep.clear();
        self.summary = Some("embedding…".into());
        Ok(None)
    }

    /// Asks for the view at rest `camera` (key `key`) to be rendered and decoded, after `attack`.
    pub fn request_view(&mut self, camera: Camera, camera_key: u64, attack: Option<Attack>, waker: &Waker) {
        let (Some(stage1), Some(marked), Some(decoder)) = (&self.stage1, &self.marked, &self.decoder) else {
            return;
        };
        let key = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (camera_key, marked.step, format!("{attack:?}")).hash(&mut hasher);
            hasher.finish()
        };
        let busy_with = self.recover_job.as_ref().map(|(k, _, _)| *k);
        if self.view.as_ref().is_some_and(|(k, _)| *k == key) || busy_with == Some(key) {
            return;
        }
        if busy_with.is_some() {
            // One at a time: the next frame asks again once this one is done.
            return;
        }
        let renders_key = camera_key ^ marked.step.rotate_left(32);
        let cached = self.renders.as_ref().filter(|(k, _)| *k == renders_key).map(|(_, r)| Arc::clone(r));
        let (field, reference, decoder) = (marked.field.clone(), Arc::clone(&stage1.snapshot), Arc::clone(decoder));
        let job = Job::spawn("stega-view", Arc::clone(waker), move |_control, _sink| {
            let renders = match cached {
                Some(renders) => (*renders).clone(),
                None => view::render_pair(&field, &reference, &camera),
            };
            view::recover_view(renders, &decoder, attack, 7).map_err(|e| e.to_string())
        });
        match job {
            Ok(job) => self.recover_job = Some((key, renders_key, job)),
            Err(e) => self.summary = Some(format!("cannot render the view: {e}")),
        }
    }

    /// Reads `path` with the current decoder.
    pub fn recover_file(&mut self, path: &Path, ctx: &egui::Context) -> Result<Option<String>, String> {
        let decoder = self
            .decoder
            .as_ref()
            .ok_or("there is no decoder yet: embed a secret first, or open a decoder.safetensors")?;
        let image = image_io::load_image(path).map_err(|e| e.to_string())?.image;
        let recovery = decoder.recover(&image).map_err(|e| e.to_string())?;
        self.textures.file_recovered = Some(image_texture(ctx, "stega file recovery", &recovery.secret.to_image()));
        let verdict = if recovery.carries_secret() {
            format!("{} carries a secret (classifier score {:.3})", path.display(), recovery.score)
        } else {
            format!("{}: no secret found (classifier score {:.3})", path.display(), recovery.score)
        };
        self.from_file = Some(FileRecovery { path: path.to_owned(), recovery });
        Ok(Some(verdict))
    }

    pub fn load_decoder(&mut self, path: &Path) -> Result<Option<String>, String> {
        let decoder = Decoder::load(path).map_err(|e| e.to_string())?;
        let message = format!(
            "Loaded the decoder of {} ({}×{} views)",
            path.display(),
            decoder.config.side,
            decoder.config.side
        );
        self.decoder = Some(Arc::new(decoder));
        Ok(Some(message))
    }

    /// Runs the robustness sweep on test views of the marked field.
    pub fn start_sweep(&mut self, waker: Waker) -> Result<Option<String>, String> {
        if self.is_sweeping() {
            return Err("a sweep is already running".into());
        }
        let (Some(stage1), Some(marked)) = (&self.stage1, &self.marked) else {
            return Err("embed a secret first".into());
        };
        let secret = Arc::clone(self.secret().map_err(|e| format!("no secret: {e}"))?);
        let cameras: Vec<Camera> = stage1.test.iter().take(SWEEP_VIEWS).copied().collect();
        let (field, reference, decoder) = (marked.field.clone(), Arc::clone(&stage1.snapshot), Arc::clone(&marked.decoder));
        let job = Job::spawn("stega-sweep", waker, move |control, sink| {
            sink.send(RunEvent::Started { total_steps: robustness::sweep_len() as u64 });
            let (marked, clean) = view::render_views(&field, &reference, &cameras);
            let mut done = 0_u64;
            robustness::sweep(&decoder, &secret, &marked, &clean, control, |_| {
                done += 1;
                sink.send(RunEvent::Progress { step: done, metrics: Vec::new(), elapsed_secs: 0.0 });
                control.checkpoint()
            })
            .map_err(|e| e.to_string())
        })
        .map_err(|e| format!("cannot start the sweep: {e}"))?;
        self.sweep_job = Some(job);
        Ok(None)
    }

    /// Writes the marked checkpoint, the decoder and the metrics into `dir`.
    pub fn start_export(&mut self, dir: PathBuf, waker: Waker) -> Result<Option<String>, String> {
        if self.export_job.as_ref().is_some_and(|j| !j.is_finished()) {
            return Err("an export is already running".into());
        }
        let (Some(stage1), Some(marked)) = (&self.stage1, &self.marked) else {
            return Err("embed a secret first".into());
        };
        crate::labs::claim_export_folder(&dir, "StegaNeRF export")?;
        let (field, decoder, orbit) = (marked.field.clone(), Arc::clone(&marked.decoder), stage1.orbit);
        let metrics = self.metrics.clone();
        let sweep = self.sweep.clone();
        let secret = self.secret().ok().map(Arc::clone);
        let job = Job::spawn("stega-export", waker, move |_control, _sink| {
            let info = std::collections::HashMap::from([(
                "stega_secret".to_owned(),
                serde_json::json!(secret.as_ref().map(|s| s.describe())),
            )]);
            checkpoint::save(&field, &orbit, &dir, info).map_err(|e| e.to_string())?;
            decoder.save(&dir.join(DECODER_FILE)).map_err(|e| e.to_string())?;
            let write = |name: &str, text: String| {
                crate::compute::files::write_atomic(dir.join(name), text)
                    .map_err(|e| format!("{}: cannot write ({e})", dir.join(name).display()))
            };
            if let Some(metrics) = metrics {
                write("metrics.json", serde_json::to_string_pretty(&metrics).map_err(|e| e.to_string())?)?;
            }
            if let Some(Secret::Image(image)) = secret.as_deref() {
                image_io::save_png(image, &dir.join("secret.png")).map_err(|e| e.to_string())?;
            }
            if !sweep.is_empty() {
                write("attack.csv", robustness::sweep_csv(&sweep))?;
                let label = if matches!(secret.as_deref(), Some(Secret::Image(_))) { "PSNR (dB)" } else { "bit accuracy" };
                image_io::save_png(&robustness::sweep_chart(&sweep, label), &dir.join("attack.png"))
                    .map_err(|e| e.to_string())?;
            }
            Ok(format!(
                "Saved the marked field, its decoder{} to {} (the folder loads in the NeRF lab)",
                if sweep.is_empty() { " and metrics" } else { ", metrics and the sweep" },
                dir.display()
            ))
        })
        .map_err(|e| format!("cannot start the export: {e}"))?;
        self.export_job = Some(job);
        Ok(None)
    }

    /// Collects job results; returns messages for the notification area.
    pub fn poll(&mut self, ctx: &egui::Context, waker: &Waker) -> Notes {
        let mut notes = Notes::new();
        let mut new_snapshot = None;
        if let Some(job) = &mut self.embed_job {
            for update in job.poll() {
                match update {
                    JobUpdate::Progress { step, metrics, .. } => {
                        let metric = |name: &str| metrics.iter().find(|(n, _)| *n == name).map_or(f64::NAN, |(_, v)| *v);
                        #[allow(clippy::cast_precision_loss)]
                        self.history.push((step as f64, metric("secret_loss"), metric("render_psnr_db")));
                    }
                    JobUpdate::Snapshot(snapshot) => new_snapshot = Some((*snapshot).clone()),
                    JobUpdate::Finished(Ok(outcome)) => {
                        new_snapshot = Some(outcome.summary.snapshot.clone());
                        let line = match &outcome.metrics {
                            Some(m) => panel::metrics_line(m),
                            None => format!("{} steps", outcome.summary.steps_done),
                        };
                        notes.push(if outcome.summary.cancelled {
                            (Level::Warning, format!("Stage 2 stopped; kept the field it reached ({line})."))
                        } else {
                            (Level::Success, format!("Secret embedded in {:.0} s: {line}.", outcome.summary.seconds))
                        });
                        self.metrics = outcome.metrics;
                        self.summary = Some(format!("{} steps in {:.0} s", outcome.summary.steps_done, outcome.summary.seconds));
                    }
                    JobUpdate::Finished(Err(message)) => {
                        notes.push((Level::Error, format!("Stage 2 failed: {message}")));
                        self.summary = None;
                    }
                    JobUpdate::Started { .. } => {}
                }
            }
        }
        if let Some(snapshot) = new_snapshot {
            self.decoder = Some(Arc::clone(&snapshot.decoder));
            self.viewer.adopt_snapshot(Arc::new(snapshot.field.clone()), waker);
            self.marked = Some(snapshot);
        }
        if let Some((key, renders_key, job)) = &mut self.recover_job {
            for update in job.poll() {
                match update {
                    JobUpdate::Finished(Ok(recovery)) => {
                        self.renders = Some((*renders_key, Arc::new(recovery.renders.clone())));
                        let t = &mut self.textures;
                        t.recovered = Some(image_texture(ctx, "stega recovered", &recovery.recovery.secret.to_image()));
                        t.stage1 = Some(image_texture(ctx, "stega stage 1", &recovery.renders.stage1));
                        t.difference = Some(image_texture(ctx, "stega difference", &recovery.difference));
                        t.attacked = Some(image_texture(ctx, "stega attacked", &recovery.attacked));
                        self.view = Some((*key, Arc::new(recovery)));
                    }
                    JobUpdate::Finished(Err(message)) => {
                        notes.push((Level::Error, format!("Recovering the view failed: {message}")));
                    }
                    _ => {}
                }
            }
        }
        if self.recover_job.as_ref().is_some_and(|(_, _, j)| j.is_finished()) {
            self.recover_job = None;
        }
        if let Some(job) = &mut self.sweep_job {
            for update in job.poll() {
                match update {
                    JobUpdate::Finished(Ok(rows)) => {
                        notes.push((Level::Success, format!("Robustness sweep done ({} attacks).", rows.len())));
                        self.sweep = rows;
                    }
                    JobUpdate::Finished(Err(e)) if e == crate::jobs::CANCELLED => {
                        notes.push((Level::Warning, "Sweep cancelled.".to_owned()));
                    }
                    JobUpdate::Finished(Err(e)) => notes.push((Level::Error, format!("Sweep failed: {e}"))),
                    _ => {}
                }
            }
        }
        crate::ui::widgets::poll_message_job(&mut self.export_job, "Export", &mut notes);
        self.viewer.poll();
        notes
    }

    pub fn jobs(&self) -> Vec<JobRow<'_>> {
        [
            JobRow::of(self.embed_job.as_ref(), "Embed secret"),
            JobRow::of(self.sweep_job.as_ref(), "Robustness sweep"),
            JobRow::of(self.export_job.as_ref(), "Export"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    pub fn control_job(&mut self, id: JobId, action: impl Fn(&mut dyn JobControl)) -> bool {
        let mut jobs: [Option<&mut dyn JobControl>; 3] = [
            self.embed_job.as_mut().map(|j| j as &mut dyn JobControl),
            self.sweep_job.as_mut().map(|j| j as &mut dyn JobControl),
            self.export_job.as_mut().map(|j| j as &mut dyn JobControl),
        ];
        control_job_of(&mut jobs, id, action)
    }
}

/// The secret the settings describe.
fn make_secret(settings: &StegaSettings) -> Result<Secret, String> {
    match settings.secret {
        SecretChoice::Image => match &settings.secret_image {
            Some(path) => Secret::image_file(path, settings.secret_side).map_err(|e| e.to_string()),
            None => {
                let builtin = BuiltinImage::Coffee;
                let loaded = image_io::load_image_bytes(builtin.bytes(), builtin.file_name()).map_err(|e| e.to_string())?;
                Secret::image(&loaded.image, settings.secret_side).map_err(|e| e.to_string())
            }
        },
        SecretChoice::Text => Secret::text(&settings.text).map_err(|e| e.to_string()),
        SecretChoice::Bits => Secret::bits(settings.bits, settings.seed).map_err(|e| e.to_string()),
    }
}
