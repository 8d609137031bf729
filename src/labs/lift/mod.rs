//! The NeuralLift-360 lab's state in the app: the photo (or built-in example) prepared with the
//! current mask and depth settings, the lift job, the orbit viewer (the NeRF lab's viewer, fed
//! with the lift's snapshots), the reference and novel views rendered from the latest snapshot
//! in the background, and the export job.

mod lab;
pub mod panel;

pub use lab::{LiftCommand, LiftFile, LiftLab};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;

use self::panel::{DepthSetting, LiftPanelState, LiftSettings, NOVEL_AZIMUTHS_DEG};
use crate::compute::control::RunEvent;
use crate::compute::image_io::ImageData;
use crate::compute::lift::example::{self, BACKGROUND, ExampleTruth};
use crate::compute::lift::input::{self, DepthChoice, LiftImage, LiftInput, MaskSettings};
use crate::compute::lift::train::{self, LiftConfig, LiftMetrics, LiftRecord, LiftSummary};
use crate::compute::nerf::NerfSnapshot;
use crate::jobs::{Job, JobControl, JobId, JobUpdate, Waker};
use crate::ui::widgets::{JobRow, Level};

use crate::ui::orbit_viewer::OrbitViewer;

use crate::ui::widgets::Notes;

/// Photos are brought to at most this side on load, so that re-matting stays interactive.
const MAX_PHOTO_SIDE: u32 = 1024;
/// Side of the novel-view thumbnails.
const NOVEL_SIZE: u32 = 64;
/// Seconds between renders of the reference and novel views while a lift runs.
const VIEWS_INTERVAL_SECS: f64 = 2.0;

/// The loaded photo and what it was loaded for: path (none = example), resolution, field of
/// view and elevation (the example is rendered for them).
type CachedPhoto = (Option<PathBuf>, u32, f32, f32, Arc<LiftImage>);

/// What the prepared input depends on.
#[derive(Clone, Debug, PartialEq)]
struct InputKey {
    image: Option<PathBuf>,
    mask_file: Option<PathBuf>,
    mask: MaskSettings,
    depth: DepthSetting,
    disparity: bool,
    resolution: u32,
    fov_deg: f32,
    elevation_deg: f32,
}

/// Renders of a snapshot for the side views.
pub struct LiftViews {
    /// The lift these views belong to (see [`LiftState::start`]).
    pub run: u64,
    pub step: u64,
    pub render: ImageData,
    pub depth: ImageData,
    pub novel: Vec<ImageData>,
    pub metrics: LiftMetrics,
}

/// Textures of the input and the latest views.
#[derive(Default)]
pub struct LiftTextures {
    pub photo: Option<egui::TextureHandle>,
    pub mask: Option<egui::TextureHandle>,
    pub depth: Option<egui::TextureHandle>,
    pub render: Option<egui::TextureHandle>,
    pub render_depth: Option<egui::TextureHandle>,
    pub novel: Vec<egui::TextureHandle>,
    pub truth: Vec<(f32, egui::TextureHandle)>,
}

#[derive(Default)]
pub struct LiftState {
    /// The orbit viewer (its snapshot is the lift's latest).
    pub viewer: OrbitViewer,
    photo: Option<CachedPhoto>,
    key: Option<InputKey>,
    pub input: Option<Arc<LiftInput>>,
    pub truth: Option<Arc<ExampleTruth>>,
    /// Why the current settings give no input (the previous input stays).
    pub problem: Option<String>,
    job: Option<Job<NerfSnapshot, LiftSummary>>,
    /// Counts lifts, so that views rendered for an earlier one are dropped.
    run: u64,
    /// The configuration and input of the field shown.
    lifted: Option<(LiftConfig, Arc<LiftInput>, Option<Arc<ExampleTruth>>)>,
    pub history: Vec<LiftRecord>,
    /// `(step, mean PSNR of the true views at 90° and 180°)` of the example, from view renders.
    pub novel_history: Vec<(u64, f64)>,
    views_job: Option<Job<(), LiftViews>>,
    last_views: f64,
    views_pending: bool,
    pub views: Option<LiftViews>,
    export_job: Option<Job<(), String>>,
    pub textures: LiftTextures,
    pub summary: Option<String>,
}

impl LiftState {
    pub fn is_lifting(&self) -> bool {
        self.job.as_ref().is_some_and(|j| !j.is_finished())
    }

    /// The photo at its loaded size: from the cache, the disk, or the example renderer.
    fn photo(&mut self, settings: &LiftSettings) -> Result<Arc<LiftImage>, String> {
        let cfg = settings.config();
        let wanted = (settings.image.clone(), settings.resolution, cfg.fov_deg, cfg.elevation_deg);
        if let Some((path, res, fov, elevation, photo)) = &self.photo {
            let same_example = path.is_none() && *res == wanted.1 && *fov == wanted.2 && *elevation == wanted.3;
            if (path.is_some() && *path == wanted.0) || same_example {
                return Ok(photo.clone());
            }
        }
        let photo = match &settings.image {
            Some(path) => load_photo(path)?,
            None => example::example_image(&cfg.reference_orbit(), settings.resolution, settings.resolution),
        };
        let photo = Arc::new(photo);
        self.photo = Some((wanted.0, wanted.1, wanted.2, wanted.3, photo.clone()));
        Ok(photo)
    }

    /// Forgets the loaded photo and prepared input, so that files are read again (a file
    /// opened again may have changed on disk).
    pub fn forget_files(&mut self) {
        self.photo = None;
        self.key = None;
    }

    /// Checks that a photo can be lifted with the current settings before it replaces the
    /// current one.
    pub fn check_photo(path: &Path, settings: &LiftSettings) -> Result<(), String> {
        let photo = load_photo(path)?;
        input::prepare(&photo, settings.mask, None, &DepthChoice::Inflate, settings.resolution)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Prepares the input when the settings that shape it changed; failures keep the previous
    /// input and say why.
    fn refresh_input(&mut self, ctx: &egui::Context, settings: &LiftSettings) {
        let cfg = settings.config();
        let key = InputKey {
            image: settings.image.clone(),
            mask_file: settings.mask_file.clone(),
            mask: settings.mask,
            depth: settings.depth.clone(),
            disparity: settings.disparity,
            resolution: settings.resolution,
            // The camera shapes only the example's render.
            fov_deg: if settings.image.is_none() { cfg.fov_deg } else { 0.0 },
            elevation_deg: if settings.image.is_none() { cfg.elevation_deg } else { 0.0 },
        };
        if self.key.as_ref() == Some(&key) {
            return;
        }
        self.key = Some(key);
        let result = self.photo(settings).and_then(|photo| {
            let orbit = cfg.reference_orbit();
            let depth = match &settings.depth {
                DepthSetting::Inflate => DepthChoice::Inflate,
                DepthSetting::File(path) => DepthChoice::File { path: path.clone(), disparity: settings.disparity },
                DepthSetting::True if settings.image.is_none() => {
                    DepthChoice::Given(example::example_depth(&orbit, settings.resolution, settings.resolution))
                }
                DepthSetting::True => return Err("the true depth exists only for the built-in example".into()),
            };
            let input =
                input::prepare(&photo, settings.mask, settings.mask_file.as_deref(), &depth, settings.resolution)
                    .map_err(|e| e.to_string())?;
            let truth = settings
                .image
                .is_none()
                .then(|| Arc::new(example::example_truth(&orbit, settings.resolution, settings.resolution)));
            Ok((input, truth))
        });
        match result {
            Ok((input, truth)) => {
                self.problem = None;
                self.textures.photo = Some(crate::ui::widgets::image_texture(
                    ctx,
                    "lift-photo",
                    &input.composited(BACKGROUND.to_array()),
                ));
                self.textures.mask = Some(crate::ui::widgets::image_texture(ctx, "lift-mask", &input.mask_image()));
                self.textures.depth = Some(crate::ui::widgets::image_texture(ctx, "lift-depth", &input.depth_image()));
                self.textures.truth = truth
                    .as_ref()
                    .map(|t| {
                        t.views
                            .iter()
                            .map(|v| (v.azimuth_deg, crate::ui::widgets::image_texture(ctx, "lift-truth", &v.image)))
                            .collect()
                    })
                    .unwrap_or_default();
                self.input = Some(Arc::new(input));
                self.truth = truth;
            }
            Err(message) => self.problem = Some(message),
        }
    }

    /// Starts a lift of the current input with the current settings.
    pub fn start(&mut self, settings: &LiftSettings, waker: &Waker) -> Result<(), String> {
        if self.is_lifting() {
            return Err("a lift is already running; cancel it first".into());
        }
        if let Some(problem) = &self.problem {
            return Err(format!("{problem} (fix the settings before lifting)"));
        }
        let input = self.input.clone().ok_or("open a photo first (or use the built-in example)")?;
        let cfg = settings.config();
        cfg.validate().map_err(|e| e.to_string())?;
        let run_input = input.clone();
        let job = Job::spawn("lift", waker.clone(), move |control, sink| {
            train::lift(run_input, &cfg, control, &mut |event| sink.send(event)).map_err(|e| e.to_string())
        })
        .map_err(|e| format!("cannot start the lift: {e}"))?;
        self.job = Some(job);
        self.run += 1;
        self.lifted = Some((cfg, input, self.truth.clone()));
        self.history.clear();
        self.novel_history.clear();
        self.views = None;
        self.textures.render = None;
        self.textures.render_depth = None;
        self.textures.novel.clear();
        self.viewer.clear_field();
        self.viewer.view.orbit = cfg.reference_orbit();
        self.viewer.orbit_home = cfg.reference_orbit();
        self.summary = Some("lifting…".into());
        Ok(())
    }

    /// Renders the reference and novel views of the shown field in the background.
    fn start_views(&mut self, waker: &Waker) {
        let (Some(snapshot), Some((cfg, input, truth))) = (self.viewer.snapshot.clone(), self.lifted.clone()) else {
            return;
        };
        let run = self.run;
        let job = Job::spawn("lift-views", waker.clone(), move |_control, _sink| {
            let (metrics, render) = train::evaluate(&snapshot, &input, &cfg, truth.as_deref());
            let near = train::CAMERA_DISTANCE - 1.5;
            let novel = NOVEL_AZIMUTHS_DEG
                .iter()
                .map(|&a| train::render_azimuth(&snapshot, &cfg, a, NOVEL_SIZE, NOVEL_SIZE).rgb_image())
                .collect();
            Ok(LiftViews {
                run,
                step: snapshot.step,
                render: render.rgb_image(),
                depth: render.depth_image(near, near + 3.0),
                novel,
                metrics,
            })
        });
        match job {
            Ok(job) => {
                self.views_job = Some(job);
                self.views_pending = false;
            }
            Err(_) => self.views_pending = true,
        }
    }

    /// Follows the settings, collects job results; returns messages for the notification area.
    pub fn poll(&mut self, ctx: &egui::Context, settings: &LiftSettings, waker: &Waker) -> Notes {
        let mut notes = Notes::new();
        self.refresh_input(ctx, settings);
        let mut new_snapshot = None;
        let mut fresh = false;
        if let Some(job) = &mut self.job {
            for update in job.poll() {
                match update {
                    JobUpdate::Progress { step, metrics, elapsed_secs } => {
                        let m = |name: &str| metrics.iter().find(|(n, _)| *n == name).map_or(f64::NAN, |(_, v)| *v);
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        self.history.push(LiftRecord {
                            step,
                            loss: m("loss"),
                            psnr_db: m("psnr_db"),
                            mask_loss: m("mask"),
                            rank_loss: m("rank"),
                            rank_violations: m("rank_violations"),
                            symmetry_loss: m("symmetry"),
                            hull_loss: m("hull"),
                            entropy: m("entropy"),
                            samples: m("samples").max(0.0) as usize,
                            elapsed_secs,
                        });
                    }
                    JobUpdate::Snapshot(snapshot) => {
                        fresh |= self.viewer.snapshot.is_none();
                        new_snapshot = Some(snapshot);
                    }
                    JobUpdate::Finished(Ok(summary)) => {
                        fresh |= self.viewer.snapshot.is_none();
                        new_snapshot = Some(Arc::new(summary.snapshot.clone()));
                        let psnr = summary.history.last().map_or(f64::NAN, |r| r.psnr_db);
                        let line = format!(
                            "{} steps in {:.0} s · reference {:.1} dB",
                            summary.steps_done, summary.seconds, psnr
                        );
                        notes.push(if summary.cancelled {
                            (Level::Warning, format!("Lift stopped; kept what it reached ({line})."))
                        } else {
                            (Level::Success, format!("Lift finished: {line}."))
                        });
                        self.summary = Some(line);
                        // Every step's figures, for the export (progress events are thinned).
                        self.history.clone_from(&summary.history);
                        self.views_pending = true;
                    }
                    JobUpdate::Finished(Err(message)) => {
                        notes.push((Level::Error, format!("Lift failed: {message}")));
                        self.summary = None;
                    }
                    JobUpdate::Started { .. } => {}
                }
            }
        }
        if let Some(snapshot) = new_snapshot {
            self.viewer.show_snapshot(snapshot, fresh, waker);
            self.views_pending = true;
        }
        self.viewer.poll();
        if let Some(job) = &mut self.views_job {
            for update in job.poll() {
                if let JobUpdate::Finished(Ok(views)) = update
                    && views.run == self.run
                {
                    self.textures.render = Some(crate::ui::widgets::image_texture(ctx, "lift-render", &views.render));
                    self.textures.render_depth =
                        Some(crate::ui::widgets::image_texture(ctx, "lift-render-depth", &views.depth));
                    self.textures.novel = views
                        .novel
                        .iter()
                        .map(|image| crate::ui::widgets::image_texture(ctx, "lift-novel", image))
                        .collect();
                    if let Some(psnr) = views.metrics.novel_mean_psnr_db() {
                        self.novel_history.retain(|(s, _)| *s < views.step);
                        self.novel_history.push((views.step, psnr));
                    }
                    self.views = Some(views);
                }
            }
        }
        if self.views_job.as_ref().is_some_and(Job::is_finished) {
            self.views_job = None;
        }
        let now = ctx.input(|i| i.time);
        if self.views_pending && self.views_job.is_none() && now - self.last_views >= VIEWS_INTERVAL_SECS {
            self.last_views = now;
            self.start_views(waker);
        } else if self.views_pending {
            ctx.request_repaint_after(std::time::Duration::from_millis(500));
        }
        crate::ui::widgets::poll_message_job(&mut self.export_job, "Export", &mut notes);
        notes
    }

    /// Writes the lift's files (checkpoint, turntable GIF, views, metrics, history) into `dir`.
    pub fn start_export(&mut self, dir: PathBuf, size: u32, waker: &Waker) -> Result<(), String> {
        if self.export_job.as_ref().is_some_and(|j| !j.is_finished()) {
            return Err("an export is already running".into());
        }
        let snapshot = self.viewer.snapshot.clone().ok_or("lift something first")?;
        let (cfg, input, truth) = self.lifted.clone().ok_or("lift something first")?;
        let history = self.history.clone();
        let seconds = history.last().map_or(0.0, |r| r.elapsed_secs);
        let job = Job::spawn("lift-export", waker.clone(), move |control, sink| {
            let frames = crate::compute::lift::files::TURNTABLE_FRAMES as u64;
            sink.send(RunEvent::Started { total_steps: frames });
            crate::compute::lift::files::write_results(
                &dir,
                &input,
                &cfg,
                &snapshot,
                &history,
                truth.as_deref(),
                size.clamp(16, 1024),
                seconds,
                |i| {
                    sink.send(RunEvent::Progress { step: i as u64, metrics: Vec::new(), elapsed_secs: 0.0 });
                    control.checkpoint()
                },
            )
            .map_err(|e| crate::compute::errors::describe(&e))?;
            Ok(format!("Wrote the lift (checkpoint, turntable.gif, views, metrics.json) to {}", dir.display()))
        })
        .map_err(|e| format!("cannot start the export: {e}"))?;
        self.export_job = Some(job);
        Ok(())
    }

    pub fn jobs(&self) -> Vec<JobRow<'_>> {
        [JobRow::of(self.job.as_ref(), "Lift"), JobRow::of(self.export_job.as_ref(), "Export lift")]
            .into_iter()
            .flatten()
            .collect()
    }

    pub fn control_job(&mut self, id: JobId, action: impl Fn(&mut dyn JobControl)) -> bool {
        let mut jobs: [Option<&mut dyn JobControl>; 2] = [
            self.job.as_mut().map(|j| j as &mut dyn JobControl),
            self.export_job.as_mut().map(|j| j as &mut dyn JobControl),
        ];
        crate::ui::widgets::control_job_of(&mut jobs, id, action)
    }

    pub fn panel_state(&self) -> LiftPanelState<'_> {
        LiftPanelState {
            input: self.input.as_deref(),
            problem: self.problem.as_deref(),
            lifting: self.is_lifting(),
            status: self.job.as_ref().filter(|j| !j.is_finished()).map(Job::status),
            history: &self.history,
            novel_history: &self.novel_history,
            views: self.views.as_ref(),
            textures: &self.textures,
            summary: self.summary.as_deref(),
            has_field: self.viewer.snapshot.is_some(),
        }
    }
}

/// Loads a photo with its alpha channel, brought to at most [`MAX_PHOTO_SIDE`].
fn load_photo(path: &Path) -> Result<LiftImage, String> {
    let photo = LiftImage::load(path).map_err(|e| e.to_string())?;
    let (w, h) = input::training_size(photo.width, photo.height, MAX_PHOTO_SIDE);
    if (w, h) == (photo.width, photo.height) {
        return Ok(photo);
    }
    let rgb = match &photo.alpha {
        Some(alpha) => input::resample_premultiplied(&photo.rgb, alpha, photo.width, photo.height, w, h),
        None => input::resample(&photo.rgb, 3, photo.width, photo.height, w, h),
    };
    let alpha = photo.alpha.as_ref().map(|a| input::resample(a, 1, photo.width, photo.height, w, h));
    Ok(LiftImage { width: w, height: h, rgb, alpha, name: photo.name })
}
