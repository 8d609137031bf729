//! The NeRF lab's state in the app: the data set, the training job, the latest snapshot, the
//! viewer's worker thread (baking snapshots for the GPU fast path, rendering full-quality frames
//! of the field on the CPU when the camera rests), checkpoints and exports.

mod lab;
pub mod panel;

pub use lab::{NerfCommand, NerfFile, NerfLab};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use self::panel::{NerfPanelState, NerfSettings, NerfStepRecord};
use crate::compute::control::RunEvent;
use crate::compute::nerf::checkpoint;
use crate::compute::nerf::dataset::{self, Dataset, LoadOptions};
use crate::compute::nerf::orbit::Orbit;
use crate::compute::nerf::render::render_camera;
use crate::compute::nerf::synth::{self, DemoSpec};
use crate::compute::nerf::{self, NerfSnapshot, TrainSummary};
use crate::jobs::{Job, JobControl, JobId, JobUpdate, Waker};
use crate::ui::orbit_viewer::OrbitViewer;
use crate::ui::widgets::{JobRow, Level};

use crate::ui::widgets::Notes;

/// Where the data set comes from; persisted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataSource {
    #[default]
    Demo,
    Folder(PathBuf),
}

impl DataSource {
    pub fn display_name(&self) -> String {
        match self {
            Self::Demo => "built-in demo scene".into(),
            Self::Folder(path) => path.display().to_string(),
        }
    }
}

pub use crate::compute::nerf::bake::{BAKE_MAX_QUERIES, BAKE_RESOLUTION};
/// The NeRF lab's data set, jobs and viewer.
#[derive(Default)]
pub struct NerfState {
    pub dataset: Option<Arc<Dataset>>,
    pub source: Option<DataSource>,
    load_job: Option<(Job<(), Dataset>, DataSource)>,
    train_job: Option<Job<NerfSnapshot, TrainSummary>>,
    export_job: Option<Job<(), String>>,
    pub history: Vec<NerfStepRecord>,
    history_offset: u64,
    /// The field shown, its camera and the worker that bakes and refines it.
    pub viewer: OrbitViewer,
    pub summary: Option<String>,
}

impl NerfState {
    pub fn is_training(&self) -> bool {
        self.train_job.as_ref().is_some_and(|j| !j.is_finished())
    }

    pub fn is_loading(&self) -> bool {
        self.load_job.as_ref().is_some_and(|(j, _)| !j.is_finished())
    }

    pub fn train_job(&self) -> Option<&Job<NerfSnapshot, TrainSummary>> {
        self.train_job.as_ref()
    }

    /// Starts loading a data set in the background; the current one stays until it succeeds.
    pub fn start_load(&mut self, source: DataSource, settings: &NerfSettings, waker: Waker) -> Result<(), String> {
        if self.is_training() {
            return Err("stop training before loading another data set".into());
        }
        let downscale = settings.downscale;
        let demo_size = settings.demo_size;
        let what = source.clone();
        let job = Job::spawn("nerf-load", waker, move |_control, _sink| match what {
            DataSource::Demo => Ok(synth::demo_dataset(&DemoSpec { size: demo_size, ..DemoSpec::default() })),
            DataSource::Folder(path) => {
                dataset::load_dataset(&path, &LoadOptions { downscale, ..LoadOptions::default() })
                    .map_err(|e| e.to_string())
            }
        })
        .map_err(|e| format!("cannot start loading: {e}"))?;
        self.load_job = Some((job, source));
        Ok(())
    }

    pub fn start_training(&mut self, settings: &NerfSettings, resume: bool, waker: Waker) -> Result<(), String> {
        if self.is_training() {
            return Err("training is already running; cancel it first".into());
        }
        let data = self.dataset.clone().ok_or("load a data set first (the demo scene loads at start)")?;
        let cfg = settings.train_config();
        cfg.validate().map_err(|e| e.to_string())?;
        let init = if resume {
            Some(self.viewer.snapshot.as_ref().ok_or("there is no field to continue; press Train")?.as_ref().clone())
        } else {
            self.history.clear();
            self.viewer.clear_field();
            None
        };
        let offset = if resume { self.viewer.snapshot.as_ref().map_or(0, |s| s.step) } else { 0 };
        self.history.retain(|r| r.step <= offset);
        self.history_offset = offset;
        let job = Job::spawn("nerf-train", waker, move |control, sink| {
            nerf::train(data, &cfg, init.as_ref(), control, &mut |event| sink.send(event)).map_err(|e| e.to_string())
        })
        .map_err(|e| format!("cannot start training: {e}"))?;
        self.train_job = Some(job);
        self.summary = Some(if resume { "continuing…".into() } else { "training…".into() });
        Ok(())
    }

    /// Collects job and worker results; returns messages for the notification area.
    pub fn poll(&mut self, waker: &Waker) -> Notes {
        let mut notes = Notes::new();
        if let Some((job, source)) = &mut self.load_job {
            let source = source.clone();
            for update in job.poll() {
                match update {
                    JobUpdate::Finished(Ok(data)) => {
                        for notice in &data.notices {
                            notes.push((Level::Info, notice.clone()));
                        }
                        for warning in &data.warnings {
                            notes.push((Level::Warning, format!("{}: {warning}", data.name)));
                        }
                        notes.push((Level::Success, format!("Loaded {}", data.summary())));
                        self.viewer.orbit_home = Orbit::from_views(&data.train, data.scene_box.center());
                        self.viewer.view.orbit = self.viewer.orbit_home;
                        self.dataset = Some(Arc::new(data));
                        self.source = Some(source.clone());
                        self.viewer.clear_field();
                        self.history.clear();
                        self.summary = None;
                    }
                    JobUpdate::Finished(Err(message)) => {
                        notes.push((Level::Error, format!("{message} (kept the current data set)")));
                    }
                    _ => {}
                }
            }
        }
        if self.load_job.as_ref().is_some_and(|(j, _)| j.is_finished()) {
            self.load_job = None;
        }
        let offset = self.history_offset;
        let mut new_snapshot = None;
        if let Some(job) = &mut self.train_job {
            for update in job.poll() {
                match update {
                    JobUpdate::Progress { step, metrics, elapsed_secs } => {
                        let metric =
                            |name: &str| metrics.iter().find(|(n, _)| *n == name).map_or(f64::NAN, |(_, v)| *v);
                        self.history.push(NerfStepRecord {
                            step: step + offset,
                            loss: metric("loss"),
                            psnr_db: metric("psnr_db"),
                            samples_per_ray: metric("samples_per_ray"),
                            elapsed_secs,
                        });
                    }
                    JobUpdate::Snapshot(snapshot) => new_snapshot = Some(snapshot),
                    JobUpdate::Finished(Ok(summary)) => {
                        new_snapshot = Some(Arc::new(summary.snapshot.clone()));
                        let psnr = summary.history.last().map_or(f64::NAN, |r| r.psnr_db);
                        let line = format!(
                            "{} steps in {:.0} s · batch {:.2} dB",
                            summary.steps_done + offset,
                            summary.seconds,
                            psnr
                        );
                        notes.push(if summary.cancelled {
                            (Level::Warning, format!("Training stopped; kept what it reached ({line})."))
                        } else {
                            (Level::Success, format!("Training finished: {line}."))
                        });
                        self.summary = Some(line);
                    }
                    JobUpdate::Finished(Err(message)) => {
                        notes.push((Level::Error, format!("Training failed: {message}")));
                        self.summary = None;
                    }
                    JobUpdate::Started { .. } => {}
                }
            }
        }
        // Snapshots count steps from the checkpoint a run resumed (the trainer starts there).
        if let Some(snapshot) = new_snapshot {
            self.viewer.adopt_snapshot(snapshot, waker);
        }
        crate::ui::widgets::poll_message_job(&mut self.export_job, "Export", &mut notes);
        self.viewer.poll();
        notes
    }

    pub fn jobs(&self) -> Vec<JobRow<'_>> {
        [
            JobRow::of(self.load_job.as_ref().map(|(j, _)| j), "Load data set"),
            JobRow::of(self.train_job.as_ref(), "Train NeRF"),
            JobRow::of(self.export_job.as_ref(), "Export"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Cancels or pauses the job `id` if it is one of this lab's; returns whether it was.
    pub fn control_job(&mut self, id: JobId, action: impl Fn(&mut dyn JobControl)) -> bool {
        let mut jobs: [Option<&mut dyn JobControl>; 3] = [
            self.train_job.as_mut().map(|j| j as &mut dyn JobControl),
            self.export_job.as_mut().map(|j| j as &mut dyn JobControl),
            self.load_job.as_mut().map(|(j, _)| j as &mut dyn JobControl),
        ];
        crate::ui::widgets::control_job_of(&mut jobs, id, action)
    }

    pub fn save_checkpoint(&self, dir: &Path) -> Result<String, String> {
        let snapshot = self.viewer.snapshot.as_ref().ok_or("there is no trained field to save yet")?;
        let mut info = std::collections::HashMap::new();
        if let Some(data) = &self.dataset {
            info.insert("dataset".to_owned(), serde_json::json!(data.summary()));
        }
        checkpoint::save(snapshot, &self.viewer.orbit_home, dir, info).map_err(|e| e.to_string())?;
        Ok(format!("Saved the field (step {}) to {}", snapshot.step, dir.display()))
    }

    pub fn load_checkpoint(&mut self, dir: &Path, waker: &Waker) -> Result<String, String> {
        if self.is_training() {
            return Err("stop training before loading a checkpoint".into());
        }
        let (snapshot, config) = checkpoint::load(dir).map_err(|e| e.to_string())?;
        self.viewer.orbit_home = config.orbit;
        self.viewer.view.orbit = config.orbit;
        self.history.clear();
        self.viewer.cpu_frame = None;
        self.viewer.field_id += 1;
        let step = snapshot.step;
        self.viewer.adopt_snapshot(Arc::new(snapshot), waker);
        Ok(format!("Loaded the field of {} (step {step})", dir.display()))
    }

    /// Renders the current view (full field, CPU) to a PNG, or a turntable to a GIF, in the background.
    pub fn start_export(
        &mut self,
        path: PathBuf,
        settings: &NerfSettings,
        turntable: bool,
        waker: Waker,
    ) -> Result<(), String> {
        if self.export_job.as_ref().is_some_and(|j| !j.is_finished()) {
            return Err("an export is already running".into());
        }
        let snapshot = self.viewer.snapshot.clone().ok_or("train or load a field first")?;
        let size = settings.export_size.clamp(16, 4096);
        let frames = settings.turntable_frames.clamp(1, 720);
        let orbit = self.viewer.view.orbit;
        let job = Job::spawn("nerf-export", waker, move |control, sink| {
            if turntable {
                sink.send(RunEvent::Started { total_steps: frames as u64 });
                let mut gif =
                    crate::compute::nerf::turntable::GifWriter::create(&path, 20).map_err(|e| e.to_string())?;
                let completed = crate::compute::nerf::turntable::turntable(
                    &snapshot,
                    &orbit,
                    frames,
                    size,
                    |i| {
                        sink.send(RunEvent::Progress { step: i as u64, metrics: Vec::new(), elapsed_secs: 0.0 });
                        control.checkpoint()
                    },
                    |_, frame| gif.add(frame),
                )
                .map_err(|e| e.to_string())?;
                gif.finish().map_err(|e| e.to_string())?;
                if !completed {
                    return Ok(format!(
                        "Turntable export cancelled; {} holds the frames rendered so far.",
                        path.display()
                    ));
                }
                Ok(format!("Wrote a {frames}-frame turntable to {}", path.display()))
            } else {
                let camera = orbit.camera(size, size);
                let image = render_camera(
                    &snapshot.weights,
                    &snapshot.occupancy,
                    &snapshot.march,
                    &camera,
                    snapshot.background,
                )
                .rgb_image();
                crate::compute::image_io::save_png(&image, &path).map_err(|e| e.to_string())?;
                Ok(format!("Wrote {}", path.display()))
            }
        })
        .map_err(|e| format!("cannot start the export: {e}"))?;
        self.export_job = Some(job);
        Ok(())
    }

    pub fn panel_state<'a>(&'a self, gpu: Result<(), &'a str>) -> NerfPanelState<'a> {
        NerfPanelState {
            gpu,
            dataset: self.dataset.as_deref(),
            source: self.source.as_ref(),
            loading: self.is_loading(),
            training: self.is_training(),
            history: &self.history,
            summary: self.summary.as_deref(),
            train_status: self.train_job.as_ref().filter(|j| !j.is_finished()).map(Job::status),
            viewer: self.viewer.panel_state(gpu, self.is_training()),
        }
    }
}
