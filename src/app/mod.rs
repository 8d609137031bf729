//! The eframe application: owns the state, the jobs and the GPU resources, draws the shell
//! (lab list, job bar, notifications) and applies the UI's commands after each frame.

pub use crate::labs::edit;
pub use crate::labs::htl;
pub use crate::labs::inr;
pub use crate::labs::lift;
pub use crate::labs::nerf;
pub use crate::labs::ntk;
pub use crate::labs::prune;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use eframe::egui;
use serde::{Deserialize, Serialize};

use crate::jobs::Waker;
use crate::labs::Lab;
use crate::labs::edit::panel::{EditPair, EditSettings, edit_controls_ui, edit_main_ui};
use crate::labs::htl::panel::{HtlSettings, htl_controls_ui, htl_main_ui};
use crate::labs::inr::panel::{InrSettings, inr_controls_ui, inr_main_ui};
use crate::labs::lift::panel::{DepthSetting, LiftSettings, lift_controls_ui, lift_main_ui};
use crate::labs::nerf::panel::{NerfSettings, nerf_controls_ui, nerf_main_ui};
use crate::labs::ntk::panel::{NtkSettings, SourceKind, ntk_controls_ui, ntk_main_ui};
use crate::labs::prune::panel::{PruneMode, PruneSettings, prune_controls_ui, prune_main_ui};
use crate::render::inr_view::{InrGpu, WarmUp};
use crate::ui::theme::{self, ThemeChoice};
use crate::ui::widgets::{Level, Notification, job_bar_ui, lab_list_ui, notifications_ui};
use crate::ui::{Command, FileRequest, LabId};
use edit::EditLab;
use htl::HtlLab;
use inr::{ImageSource, InrLab};
use lift::LiftLab;
use nerf::{DataSource, NerfLab};
use ntk::NtkLab;
use prune::PruneLab;

/// Persisted between runs (eframe storage).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub theme: ThemeChoice,
    pub lab: LabId,
    pub inr: InrSettings,
    pub inr_image: ImageSource,
    pub edit: EditSettings,
    pub prune: PruneSettings,
    pub ntk: NtkSettings,
    pub htl: HtlSettings,
    pub lift: LiftSettings,
    pub nerf: NerfSettings,
    pub nerf_data: DataSource,
    /// Start fitting the current image when the app opens.
    pub train_on_start: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            theme: ThemeChoice::default(),
            lab: LabId::default(),
            inr: InrSettings::default(),
            inr_image: ImageSource::default(),
            edit: EditSettings::default(),
            prune: PruneSettings::default(),
            ntk: NtkSettings::default(),
            htl: HtlSettings::default(),
            lift: LiftSettings::default(),
            nerf: NerfSettings::default(),
            nerf_data: DataSource::default(),
            train_on_start: true,
        }
    }
}

/// How the app starts.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Read saved settings from eframe storage.
    pub restore_settings: bool,
    /// Honour `train_on_start` (off in tests).
    pub allow_autostart: bool,
    /// Why wgpu is unavailable, when the caller already knows.
    pub gpu_problem: Option<String>,
}

/// Longest wait between a job event and the repaint that shows it.
const JOB_REPAINT_INTERVAL: Duration = Duration::from_millis(200);
/// Notifications kept at most.
const MAX_NOTIFICATIONS: usize = 50;
/// A file dialog that answers faster than this did not open (no portal available).
const DIALOG_UNAVAILABLE_SECS: f64 = 0.15;

struct PendingDialog {
    request: FileRequest,
    answer: Receiver<Option<PathBuf>>,
    opened: Instant,
}

/// The wgpu adapter in use, for the status bar.
#[derive(Clone, Debug)]
pub struct GpuInfo {
    pub backend: String,
    pub adapter: String,
}

pub struct SparseFieldApp {
    settings: Settings,
    inr: InrLab,
    edit: EditLab,
    prune: PruneLab,
    ntk: NtkLab,
    htl: HtlLab,
    lift: LiftLab,
    nerf: NerfLab,
    /// Train the NeRF as soon as its data set has loaded (train-on-start with the NeRF lab).
    nerf_autostart: bool,
    notifications: Vec<Notification>,
    next_notification_id: u64,
    /// `Err(why)` when live rendering is unavailable.
    gpu: Result<GpuInfo, String>,
    waker: Waker,
    dialog: Option<PendingDialog>,
    /// The input image of a custom training pair whose target is being picked.
    pair_input: Option<PathBuf>,
    applied_theme: Option<ThemeChoice>,
}

impl SparseFieldApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> Self {
        let mut settings: Settings = if options.restore_settings {
            cc.storage.and_then(|s| eframe::get_value(s, eframe::APP_KEY)).unwrap_or_default()
        } else {
            Settings::default()
        };
        settings.inr.sanitize();
        settings.edit.sanitize();
        settings.prune.sanitize();
        settings.ntk.sanitize();
        settings.htl.sanitize();
        settings.nerf.sanitize();
        settings.lift.sanitize();
        let mut edit_device = None;
        let gpu = match &cc.wgpu_render_state {
            Some(render_state) => {
                let mut inr_gpu = InrGpu::new(&render_state.device, render_state.target_format);
                inr_gpu.wait_for(spawn_shader_warm_up(render_state.adapter.clone(), cc.egui_ctx.clone()));
                let nerf_gpu = crate::render::nerf_view::NerfGpu::new(&render_state.device, render_state.target_format);
                let mut renderer = render_state.renderer.write();
                renderer.callback_resources.insert(inr_gpu);
                renderer.callback_resources.insert(nerf_gpu);
                drop(renderer);
                let info = render_state.adapter.get_info();
                // The edit lab's GPU work runs in jobs off the UI thread: on OpenGL it needs a context
                // of its own (see `render::background_device`); elsewhere it shares the UI's device.
                let device_and_queue = if info.backend == eframe::egui_wgpu::wgpu::Backend::Gl {
                    crate::render::background_device(&render_state.adapter)
                        .map_err(|e| eprintln!("warning: {e}; the edit lab renders on the CPU"))
                        .ok()
                } else {
                    Some((render_state.device.clone(), render_state.queue.clone()))
                };
                edit_device = device_and_queue.map(|(device, queue)| edit::EditDevice {
                    device,
                    queue,
                    pipelines: Arc::default(),
                    software: info.device_type == eframe::egui_wgpu::wgpu::DeviceType::Cpu,
                });
                Ok(GpuInfo {
                    backend: format!("{:?}", info.backend),
                    adapter: format!("{} ({})", info.name, info.driver_info),
                })
            }
            None => Err(options.gpu_problem.unwrap_or_else(|| crate::render::DRIVER_HINT.to_owned())),
        };
        theme::install_fonts(&cc.egui_ctx);
        let ctx = cc.egui_ctx.clone();
        // Job events repaint at most a few times a second: on a software adapter every frame costs
        // CPU time that the job itself needs.
        let waker: Waker = Arc::new(move || ctx.request_repaint_after(JOB_REPAINT_INTERVAL));
        let mut app = Self {
            settings,
            inr: InrLab::default(),
            edit: EditLab::default(),
            prune: PruneLab::default(),
            ntk: NtkLab::default(),
            htl: HtlLab::default(),
            lift: LiftLab::default(),
            nerf: NerfLab::default(),
            nerf_autostart: false,
            notifications: Vec::new(),
            next_notification_id: 1,
            gpu,
            waker,
            dialog: None,
            pair_input: None,
            applied_theme: None,
        };
        if let Err(problem) = &app.gpu {
            app.notify(Level::Warning, problem.clone());
        }
        if let Some(device) = edit_device {
            app.edit.set_device(device);
        }
        let source = app.settings.inr_image.clone();
        app.load_inr_image(&cc.egui_ctx, source.clone());
        if app.inr.image().is_none() && source != ImageSource::default() {
            app.load_inr_image(&cc.egui_ctx, ImageSource::default());
        }
        let autostart = options.allow_autostart && app.settings.train_on_start;
        match app.settings.lab {
            LabId::Inr | LabId::Edit if autostart => app.apply(&cc.egui_ctx, Command::Train),
            LabId::Nerf => {
                app.nerf_autostart = autostart;
                app.ensure_nerf_data();
            }
            LabId::Inr | LabId::Edit | LabId::Prune | LabId::Ntk | LabId::Htl | LabId::Lift => {}
        }
        app
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    pub fn inr(&self) -> &InrLab {
        &self.inr
    }

    pub fn inr_mut(&mut self) -> &mut InrLab {
        &mut self.inr
    }

    pub fn prune(&self) -> &PruneLab {
        &self.prune
    }

    pub fn ntk(&self) -> &NtkLab {
        &self.ntk
    }

    pub fn htl(&self) -> &HtlLab {
        &self.htl
    }

    pub fn lift(&self) -> &LiftLab {
        &self.lift
    }

    pub fn edit(&self) -> &EditLab {
        &self.edit
    }

    pub fn edit_mut(&mut self) -> &mut EditLab {
        &mut self.edit
    }

    pub fn nerf(&self) -> &NerfLab {
        &self.nerf
    }

    pub fn nerf_mut(&mut self) -> &mut NerfLab {
        &mut self.nerf
    }

    /// Starts loading the NeRF lab's data set if it has none and none is loading.
    fn ensure_nerf_data(&mut self) {
        if self.nerf.dataset.is_none() && !self.nerf.is_loading() {
            let source = self.settings.nerf_data.clone();
            if let Err(message) = self.nerf.start_load(source, &self.settings.nerf, Arc::clone(&self.waker)) {
                self.notify(Level::Error, message);
            }
        }
    }

    /// Every lab, in the job bar's order.
    fn labs(&self) -> [&dyn Lab; 7] {
        [&self.inr, &self.edit, &self.prune, &self.ntk, &self.htl, &self.nerf, &self.lift]
    }

    fn labs_mut(&mut self) -> [&mut dyn Lab; 7] {
        [&mut self.inr, &mut self.edit, &mut self.prune, &mut self.ntk, &mut self.htl, &mut self.nerf, &mut self.lift]
    }

    pub fn notifications(&self) -> &[Notification] {
        &self.notifications
    }

    pub fn gpu_status(&self) -> Result<&GpuInfo, &str> {
        self.gpu.as_ref().map_err(String::as_str)
    }

    fn notify(&mut self, level: Level, text: impl Into<String>) {
        self.notifications.push(Notification { id: self.next_notification_id, level, text: text.into() });
        self.next_notification_id += 1;
        if self.notifications.len() > MAX_NOTIFICATIONS {
            self.notifications.remove(0);
        }
    }

    fn notify_all(&mut self, notes: Vec<(Level, String)>) {
        for (level, text) in notes {
            self.notify(level, text);
        }
    }

    fn load_inr_image(&mut self, ctx: &egui::Context, source: ImageSource) {
        match self.inr.load_image(ctx, source.clone(), &self.settings.inr) {
            Ok(notes) => {
                self.settings.inr_image = source;
                self.notify_all(notes);
            }
            Err(message) => self.notify(Level::Error, message),
        }
    }

    /// Applies one command from the UI (also usable by tests).
    pub fn apply(&mut self, ctx: &egui::Context, command: Command) {
        let result: Result<Option<String>, String> = match command {
            Command::SelectLab(lab) => {
                self.settings.lab = lab;
                if lab == LabId::Nerf {
                    self.ensure_nerf_data();
                }
                Ok(None)
            }
            Command::ToggleTheme => {
                self.settings.theme = self.settings.theme.toggled();
                Ok(None)
            }
            Command::PauseJob(id, paused) => {
                let _ = self.labs_mut().into_iter().any(|lab| lab.control_job(id, &|job| job.set_paused(paused)));
                Ok(None)
            }
            Command::CancelJob(id) => {
                let _ = self.labs_mut().into_iter().any(|lab| lab.control_job(id, &|job| job.cancel()));
                Ok(None)
            }
            Command::DismissNotification(id) => {
                self.notifications.retain(|n| n.id != id);
                Ok(None)
            }
            Command::ClearNotifications => {
                self.notifications.clear();
                Ok(None)
            }
            Command::PickFile(request) => {
                self.open_dialog(request);
                Ok(None)
            }
            Command::LoadImage(path) => {
                self.load_inr_image(ctx, ImageSource::File(path));
                Ok(None)
            }
            Command::UseBuiltinImage(builtin) => {
                self.load_inr_image(ctx, ImageSource::Builtin(builtin));
                Ok(None)
            }
            Command::LoadInr(path) => self.inr.load_inr(&path, &mut self.settings.inr).map(Some),
            Command::SaveInr(path) => self.inr.save_inr(&path).map(Some),
            Command::ExportPng(path) => {
                self.inr.start_export(path, &self.settings.inr, Arc::clone(&self.waker)).map(|()| None)
            }
            Command::Train => self.inr.start_fit(&self.settings.inr, false, Arc::clone(&self.waker)).map(|()| None),
            Command::ContinueTraining => {
                self.inr.start_fit(&self.settings.inr, true, Arc::clone(&self.waker)).map(|()| None)
            }
            Command::ClearInr => {
                self.inr.clear_inr();
                Ok(None)
            }
            Command::NerfUseDemo => {
                self.nerf.start_load(DataSource::Demo, &self.settings.nerf, Arc::clone(&self.waker)).map(|()| {
                    self.settings.nerf_data = DataSource::Demo;
                    None
                })
            }
            Command::NerfLoadData(path) => {
                let source = DataSource::Folder(path);
                self.nerf.start_load(source.clone(), &self.settings.nerf, Arc::clone(&self.waker)).map(|()| {
                    self.settings.nerf_data = source;
                    None
                })
            }
            Command::NerfTrain => {
                self.nerf.start_training(&self.settings.nerf, false, Arc::clone(&self.waker)).map(|()| None)
            }
            Command::NerfContinue => {
                self.nerf.start_training(&self.settings.nerf, true, Arc::clone(&self.waker)).map(|()| None)
            }
            Command::NerfResetSettings => {
                let defaults = NerfSettings::default();
                let s = &mut self.settings.nerf;
                (s.steps, s.learning_rate, s.batch_samples, s.seed, s.random_background) = (
                    defaults.steps,
                    defaults.learning_rate,
                    defaults.batch_samples,
                    defaults.seed,
                    defaults.random_background,
                );
                Ok(Some("NeRF training settings reset to their defaults.".into()))
            }
            Command::NerfSaveCheckpoint(path) => self.nerf.save_checkpoint(&path).map(Some),
            Command::NerfLoadCheckpoint(path) => self.nerf.load_checkpoint(&path, &self.waker).map(Some),
            Command::NerfExportView(path) => {
                self.nerf.start_export(path, &self.settings.nerf, false, Arc::clone(&self.waker)).map(|()| None)
            }
            Command::NerfExportTurntable(path) => {
                self.nerf.start_export(path, &self.settings.nerf, true, Arc::clone(&self.waker)).map(|()| None)
            }
            Command::PruneSweep => self.prune.start_sweep(&self.settings.prune, Arc::clone(&self.waker)).map(|()| None),
            Command::PruneResetSettings => {
                let (mode, source) = (self.settings.prune.mode, self.settings.prune.source.clone());
                self.settings.prune = PruneSettings { mode, source, ..PruneSettings::default() };
                Ok(Some("Pruning settings reset to their defaults.".into()))
            }
            Command::PruneExportRun(path) => self.prune.export_run(&path).map(Some),
            Command::PruneExportSweep(path) => self.prune.export_sweep(&path).map(Some),
            Command::PruneSetData(source) => {
                let label = source.label();
                self.settings.prune.source = source.clone();
                self.settings.prune.mode = PruneMode::Images;
                self.prune.load_data(source, &self.waker);
                Ok(Some(format!("Loading {label}.")))
            }
            Command::PruneCompare => {
                let settings = &self.settings.prune;
                self.prune.start_compare(&settings.init, &settings.source, Arc::clone(&self.waker)).map(|()| None)
            }
            Command::PruneExportInit(path) => self.prune.export_init(&path).map(Some),
            Command::NtkResetSettings => {
                let csv = self.settings.ntk.csv.take();
                self.settings.ntk = NtkSettings { csv, ..NtkSettings::default() };
                Ok(None)
            }
            Command::NtkLoadCsv(path) => {
                // Read once here so that a bad file is reported at once and the current data stay.
                match crate::compute::ntk::load_points_csv(&path) {
                    Ok(points) => {
                        if self.settings.ntk.source == SourceKind::Csv && self.settings.ntk.csv.as_ref() == Some(&path)
                        {
                            // The same file again: it may have changed on disk.
                            self.ntk.reload();
                        }
                        self.settings.ntk.csv = Some(path);
                        self.settings.ntk.source = SourceKind::Csv;
                        self.settings.lab = LabId::Ntk;
                        Ok(Some(format!("Loaded {} points in {} dimensions.", points.n, points.d)))
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Command::NtkExport(path) => {
                claim_export_folder(&path, "NTK export").and_then(|()| self.ntk.export(&path)).map(Some)
            }
            Command::NtkResume => {
                self.ntk.resume();
                Ok(None)
            }
            // Read once here so that a bad folder is reported at once and the current data stay.
            Command::HtlSetSource(source) => match crate::compute::htl::data::load(&source, None) {
                Err(e) => Err(e.to_string()),
                Ok(data) => {
                    if self.settings.htl.source == source {
                        // The same data again: it may have changed on disk.
                        self.htl.reload();
                    } else {
                        // Attributes name the samples of the old data.
                        self.settings.htl.attributes = None;
                    }
                    if let crate::compute::htl::data::HtlSource::Folder { side, .. } = &source {
                        self.settings.htl.folder_side = *side;
                    }
                    if matches!(source, crate::compute::htl::data::HtlSource::FashionMnist(_))
                        && self.settings.htl.train_limit == 0
                    {
                        // 60,000 images per model is minutes on a laptop; the slider goes back to all.
                        self.settings.htl.train_limit = 10_000;
                    }
                    self.settings.htl.source = source;
                    self.settings.htl.selected = None;
                    self.settings.lab = LabId::Htl;
                    Ok(Some(format!("Hard-sample lab: {}.", data.summary())))
                }
            },
            Command::HtlLoadAttributes(path) => match self.htl.read_attribute_columns(&path).and_then(|()| {
                // Joined once here so that a table that names no sample (or is malformed) is
                // reported at once and the current groups stay.
                let spec = crate::compute::htl::data::AttributeSpec { path: path.clone(), column: None };
                crate::compute::htl::data::load(&self.settings.htl.config().source, Some(&spec))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }) {
                Ok(()) => {
                    let same = self.settings.htl.attributes.as_ref().is_some_and(|a| a.path == path);
                    if same {
                        self.htl.reload();
                    }
                    let column = self.settings.htl.attributes.take().filter(|_| same).and_then(|a| a.column);
                    self.settings.htl.attributes = Some(crate::compute::htl::data::AttributeSpec { path, column });
                    self.settings.htl.group_filter = None;
                    self.settings.lab = LabId::Htl;
                    Ok(Some("Attributes loaded; the groups follow the chosen column.".into()))
                }
                Err(e) => Err(e),
            },
            Command::HtlClearAttributes => {
                self.settings.htl.attributes = None;
                self.settings.htl.group_filter = None;
                Ok(None)
            }
            Command::HtlResetSettings => {
                let (source, attributes, side) = (
                    self.settings.htl.source.clone(),
                    self.settings.htl.attributes.clone(),
                    self.settings.htl.folder_side,
                );
                let (task, lesion_folder) = (self.settings.htl.task, self.settings.htl.lesion_folder.clone());
                self.settings.htl = HtlSettings {
                    source,
                    attributes,
                    folder_side: side,
                    task,
                    lesion_folder,
                    ..HtlSettings::default()
                };
                Ok(None)
            }
            Command::HtlResume => {
                self.htl.resume();
                Ok(None)
            }
            Command::HtlExport(path) => claim_export_folder(&path, "hard-sample export")
                .and_then(|()| self.htl.export(&path, &self.settings.htl))
                .map(Some),
            Command::HtlLocalize => self.htl.start_localize(&self.settings.htl, &self.waker).map(|()| None),
            Command::HtlSetLesionFolder(path) => {
                self.settings.htl.lesion_folder = Some(path);
                self.settings.htl.task = crate::labs::htl::panel::Task::Localize;
                self.settings.lab = LabId::Htl;
                Ok(Some("Lesion folder set; ▶ Run localization reads it.".into()))
            }
            Command::HtlUseSyntheticLesions => {
                self.settings.htl.lesion_folder = None;
                Ok(None)
            }
            Command::LiftLoadImage(path) => LiftLab::check_photo(&path, &self.settings.lift).map(|()| {
                self.lift.forget_files();
                self.settings.lift.image = Some(path.clone());
                // A mask or depth file belongs to the previous photo.
                self.settings.lift.mask_file = None;
                self.settings.lift.depth = DepthSetting::Inflate;
                self.settings.lift.disparity = false;
                self.settings.lab = LabId::Lift;
                Some(format!("Loaded {}; press ▶ Lift.", path.display()))
            }),
            Command::LiftUseExample => {
                self.lift.forget_files();
                self.settings.lift.image = None;
                self.settings.lift.mask_file = None;
                if matches!(self.settings.lift.depth, DepthSetting::File(_)) {
                    self.settings.lift.depth = DepthSetting::Inflate;
                }
                Ok(None)
            }
            Command::LiftLoadDepth(path) => {
                crate::compute::lift::input::load_depth_file(&path, false).map_err(|e| e.to_string()).map(|map| {
                    self.lift.forget_files();
                    self.settings.lift.depth = DepthSetting::File(path.clone());
                    self.settings.lab = LabId::Lift;
                    Some(format!("Rough depth from {} ({}×{}).", path.display(), map.width, map.height))
                })
            }
            Command::LiftLoadMask(path) => {
                crate::compute::image_io::load_image(&path).map_err(|e| e.to_string()).map(|_| {
                    self.lift.forget_files();
                    self.settings.lift.mask_file = Some(path.clone());
                    Some(format!("Mask from {}.", path.display()))
                })
            }
            Command::LiftClearMask => {
                self.settings.lift.mask_file = None;
                Ok(None)
            }
            Command::LiftStart => self.lift.start(&self.settings.lift, &self.waker).map(|()| None),
            Command::LiftResetSettings => {
                let defaults = LiftSettings::default();
                self.settings.lift.lift = defaults.lift;
                self.settings.lift.use_ranking = defaults.use_ranking;
                self.settings.lift.resolution = defaults.resolution;
                self.settings.lift.mask = defaults.mask;
                Ok(Some("Lift settings reset to their defaults (the photo and depth file stay).".into()))
            }
            Command::LiftExport(path) => claim_export_folder(&path, "lift export")
                .and_then(|()| self.lift.start_export(path, self.settings.lift.export_size, &self.waker))
                .map(|()| None),
            Command::EditTrain => {
                let image = self.inr.image().cloned();
                let name = self.settings.inr_image.display_name();
                let lab_inr = self.inr.network_of_current_image();
                self.edit
                    .start_training(&self.settings.edit, image, &name, lab_inr, Arc::clone(&self.waker))
                    .map(|()| None)
            }
            Command::EditResetSettings => {
                let training_images = std::mem::take(&mut self.settings.edit.training_images);
                let pairs = std::mem::take(&mut self.settings.edit.pairs);
                self.settings.edit = EditSettings { training_images, pairs, ..EditSettings::default() };
                Ok(Some("Edit settings reset to their defaults (training images and pairs kept).".into()))
            }
            Command::EditPickPairTarget(input) => match crate::compute::image_io::load_image(&input) {
                Ok(_) => {
                    self.pair_input = Some(input);
                    self.open_dialog(FileRequest::AddEditPairTarget);
                    Ok(None)
                }
                Err(e) => Err(e.to_string()),
            },
            Command::EditAddPair(input, target) => {
                let pair = EditPair { input, target };
                if self.settings.edit.pairs.contains(&pair) {
                    Ok(Some("That pair is already a training example.".into()))
                } else {
                    crate::compute::inr::insp::load_pair(&pair.input, &pair.target, 0).map_err(|e| e.to_string()).map(
                        |_| {
                            let message =
                                format!("Added the pair {} → {}.", pair.input.display(), pair.target.display());
                            self.settings.edit.pairs.push(pair);
                            Some(message)
                        },
                    )
                }
            }
            Command::EditAddTrainingImage(path) => match crate::compute::image_io::load_image(&path) {
                Ok(_) if self.settings.edit.training_images.contains(&path) => {
                    Ok(Some(format!("{} is already a training image.", path.display())))
                }
                Ok(_) => {
                    self.settings.edit.training_images.push(path.clone());
                    Ok(Some(format!("Added {} as a training image.", path.display())))
                }
                Err(e) => Err(e.to_string()),
            },
            Command::EditLoadOperator(path) => self.edit.load_operator(&path).map(|(message, task)| {
                self.settings.edit.task = task;
                Some(message)
            }),
            Command::EditSaveOperator(path) => self.edit.save_operator(&path).map(Some),
            Command::EditLoadSubject(path) => self.edit.load_subject(&path, self.settings.edit.task).map(Some),
            Command::EditUseLabInr => {
                let name = self.settings.inr_image.display_name();
                let inr = self.inr.network_of_current_image();
                self.edit.use_lab_inr(inr, self.inr.image().cloned(), &name).map(Some)
            }
            Command::EditClassify => {
                self.edit.start_classification(&self.settings.edit.classify, Arc::clone(&self.waker)).map(|()| None)
            }
            Command::EditExport(path) => {
                self.edit.start_export(path, &self.settings.edit, Arc::clone(&self.waker)).map(|()| None)
            }
            Command::ResetInrSettings => {
                let defaults = InrSettings::default();
                self.settings.inr.fit = defaults.fit;
                self.settings.inr.training_size = defaults.training_size;
                Ok(Some("Model and training settings reset to their defaults.".into()))
            }
        };
        match result {
            Ok(Some(message)) => self.notify(Level::Success, message),
            Ok(None) => {}
            Err(message) => self.notify(Level::Error, message),
        }
    }

    fn open_dialog(&mut self, request: FileRequest) {
        if self.dialog.is_some() {
            self.notify(Level::Info, "A file dialog is already open.");
            return;
        }
        let (sender, answer) = std::sync::mpsc::channel();
        let waker = Arc::clone(&self.waker);
        let spawned = std::thread::Builder::new().name("sf-file-dialog".into()).spawn(move || {
            let dialog = rfd::FileDialog::new();
            let path = match request {
                FileRequest::OpenImage => dialog.add_filter("Images", &["png", "jpg", "jpeg"]).pick_file(),
                FileRequest::OpenInr => dialog.add_filter("INR", &["safetensors"]).pick_file(),
                FileRequest::SaveInr => {
                    dialog.add_filter("INR", &["safetensors"]).set_file_name("inr.safetensors").save_file()
                }
                FileRequest::ExportPng => dialog.add_filter("PNG", &["png"]).set_file_name("inr.png").save_file(),
                FileRequest::OpenNerfData | FileRequest::OpenNerfCheckpoint | FileRequest::SaveNerfCheckpoint => {
                    dialog.pick_folder()
                }
                FileRequest::ExportNerfView => dialog.add_filter("PNG", &["png"]).set_file_name("nerf.png").save_file(),
                FileRequest::ExportNerfTurntable => {
                    dialog.add_filter("GIF", &["gif"]).set_file_name("turntable.gif").save_file()
                }
                FileRequest::AddEditTrainingImage => dialog.add_filter("Images", &["png", "jpg", "jpeg"]).pick_file(),
                FileRequest::AddEditPairInput => dialog
                    .set_title("Training pair: the input image")
                    .add_filter("Images", &["png", "jpg", "jpeg"])
                    .pick_file(),
                FileRequest::AddEditPairTarget => dialog
                    .set_title("Training pair: the target image")
                    .add_filter("Images", &["png", "jpg", "jpeg"])
                    .pick_file(),
                FileRequest::OpenOperator | FileRequest::OpenEditSubject => {
                    dialog.add_filter("safetensors", &["safetensors"]).pick_file()
                }
                FileRequest::SaveOperator => {
                    dialog.add_filter("Operator", &["safetensors"]).set_file_name("operator.safetensors").save_file()
                }
                FileRequest::ExportEdit => dialog.add_filter("PNG", &["png"]).set_file_name("edit.png").save_file(),
                FileRequest::ExportPruneRun => {
                    dialog.add_filter("CSV", &["csv"]).set_file_name("prune_run.csv").save_file()
                }
                FileRequest::ExportPruneSweep => {
                    dialog.add_filter("CSV", &["csv"]).set_file_name("prune_sweep.csv").save_file()
                }
                FileRequest::OpenPruneData => dialog.pick_folder(),
                FileRequest::ExportPruneInit => {
                    dialog.add_filter("CSV", &["csv"]).set_file_name("prune_init.csv").save_file()
                }
                FileRequest::OpenNtkPoints => dialog.add_filter("CSV", &["csv", "txt"]).pick_file(),
                FileRequest::ExportNtk => dialog.set_title("Folder for the NTK tables and charts").pick_folder(),
                FileRequest::OpenHtlData => {
                    dialog.set_title("Fashion-MNIST folder, or one sub-folder per class").pick_folder()
                }
                FileRequest::OpenHtlAttributes => dialog.add_filter("CSV", &["csv", "txt"]).pick_file(),
                FileRequest::ExportHtl => dialog.set_title("Folder for the hard-sample files").pick_folder(),
                FileRequest::OpenHtlLesions => dialog.set_title("Lesion folder with images/ and masks/").pick_folder(),
                FileRequest::OpenLiftImage => {
                    dialog.set_title("Photo to lift").add_filter("Images", &["png", "jpg", "jpeg"]).pick_file()
                }
                FileRequest::OpenLiftDepth => dialog
                    .set_title("Rough depth (16-bit PNG or .npy)")
                    .add_filter("Depth", &["png", "npy"])
                    .pick_file(),
                FileRequest::OpenLiftMask => {
                    dialog.set_title("Mask (white = object)").add_filter("Images", &["png", "jpg", "jpeg"]).pick_file()
                }
                FileRequest::ExportLift => dialog.set_title("Folder for the lift's files").pick_folder(),
            };
            let _ = sender.send(path);
            waker();
        });
        match spawned {
            Ok(_) => {
                self.dialog = Some(PendingDialog { request, answer, opened: Instant::now() });
            }
            Err(e) => self.notify(Level::Error, format!("cannot open a file dialog: {e}")),
        }
    }

    fn poll_dialog(&mut self, ctx: &egui::Context) {
        let Some(pending) = &self.dialog else { return };
        let answer = match pending.answer.try_recv() {
            Ok(answer) => answer,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => None,
        };
        let quick = pending.opened.elapsed() < Duration::from_secs_f64(DIALOG_UNAVAILABLE_SECS);
        let request = pending.request;
        self.dialog = None;
        match answer {
            Some(path) => {
                let command = match request {
                    FileRequest::OpenImage => Command::LoadImage(path),
                    FileRequest::OpenInr => Command::LoadInr(path),
                    FileRequest::SaveInr => Command::SaveInr(path),
                    FileRequest::ExportPng => Command::ExportPng(path),
                    FileRequest::OpenNerfData => Command::NerfLoadData(path),
                    FileRequest::OpenNerfCheckpoint => Command::NerfLoadCheckpoint(path),
                    FileRequest::SaveNerfCheckpoint => Command::NerfSaveCheckpoint(path),
                    FileRequest::ExportNerfView => Command::NerfExportView(path),
                    FileRequest::ExportNerfTurntable => Command::NerfExportTurntable(path),
                    FileRequest::AddEditTrainingImage => Command::EditAddTrainingImage(path),
                    FileRequest::AddEditPairInput => Command::EditPickPairTarget(path),
                    FileRequest::AddEditPairTarget => match self.pair_input.take() {
                        Some(input) => Command::EditAddPair(input, path),
                        None => return,
                    },
                    FileRequest::OpenOperator => Command::EditLoadOperator(path),
                    FileRequest::SaveOperator => Command::EditSaveOperator(path),
                    FileRequest::OpenEditSubject => Command::EditLoadSubject(path),
                    FileRequest::ExportEdit => Command::EditExport(path),
                    FileRequest::ExportPruneRun => Command::PruneExportRun(path),
                    FileRequest::ExportPruneSweep => Command::PruneExportSweep(path),
                    FileRequest::OpenPruneData => Command::PruneSetData(self.prune_source_for(&path)),
                    FileRequest::ExportPruneInit => Command::PruneExportInit(path),
                    FileRequest::OpenNtkPoints => Command::NtkLoadCsv(path),
                    FileRequest::ExportNtk => Command::NtkExport(path),
                    FileRequest::OpenHtlData => Command::HtlSetSource(self.htl_source_for(&path)),
                    FileRequest::OpenHtlAttributes => Command::HtlLoadAttributes(path),
                    FileRequest::ExportHtl => Command::HtlExport(path),
                    FileRequest::OpenHtlLesions => Command::HtlSetLesionFolder(path),
                    FileRequest::OpenLiftImage => Command::LiftLoadImage(path),
                    FileRequest::OpenLiftDepth => Command::LiftLoadDepth(path),
                    FileRequest::OpenLiftMask => Command::LiftLoadMask(path),
                    FileRequest::ExportLift => Command::LiftExport(path),
                };
                self.apply(ctx, command);
            }
            None if quick => self.notify(
                Level::Warning,
                "No file dialog could be opened (is xdg-desktop-portal running?). Drop the file on the window instead, \
                 or use the command line.",
            ),
            None => {}
        }
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        for file in dropped {
            let path = file.path().to_path_buf();
            if path.is_dir() && self.settings.lab == LabId::Prune {
                let source = self.prune_source_for(&path);
                self.apply(ctx, Command::PruneSetData(source));
                continue;
            }
            if path.is_dir() && self.settings.lab == LabId::Htl && path.join("masks").is_dir() {
                self.apply(ctx, Command::HtlSetLesionFolder(path));
                continue;
            }
            if path.is_dir() && self.settings.lab == LabId::Htl {
                let source = self.htl_source_for(&path);
                self.apply(ctx, Command::HtlSetSource(source));
                continue;
            }
            if path.is_dir() {
                let command = if path.join(crate::compute::nerf::checkpoint::CONFIG_FILE).is_file()
                    && path.join(crate::compute::nerf::checkpoint::WEIGHTS_FILE).is_file()
                {
                    Command::NerfLoadCheckpoint(path)
                } else {
                    Command::NerfLoadData(path)
                };
                self.settings.lab = LabId::Nerf;
                self.apply(ctx, command);
                continue;
            }
            let extension = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
            match extension.as_str() {
                "png" | "jpg" | "jpeg" if self.settings.lab == LabId::Lift => {
                    self.apply(ctx, Command::LiftLoadImage(path));
                }
                "npy" => self.apply(ctx, Command::LiftLoadDepth(path)),
                "png" | "jpg" | "jpeg" => self.apply(ctx, Command::LoadImage(path)),
                "csv" if self.settings.lab == LabId::Htl => self.apply(ctx, Command::HtlLoadAttributes(path)),
                "csv" => self.apply(ctx, Command::NtkLoadCsv(path)),
                "safetensors" => self.apply(ctx, Command::LoadInr(path)),
                _ => self.notify(
                    Level::Error,
                    format!(
                        "{}: unsupported file type; drop a PNG or JPEG image, an INR (.safetensors), a CSV of points (NTK lab), or a NeRF data set or checkpoint folder.",
                        path.display()
                    ),
                ),
            }
        }
    }

    /// A folder as a pruning data set: Fashion-MNIST when it holds the IDX files, else one
    /// sub-folder per class.
    fn prune_source_for(&self, path: &std::path::Path) -> crate::compute::prune::data::DataSource {
        use crate::compute::prune::data::DataSource;
        let idx = ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"].iter().any(|n| path.join(n).is_file());
        if idx {
            DataSource::FashionMnist(path.to_owned())
        } else {
            DataSource::Folder { path: path.to_owned(), side: self.settings.prune.folder_side }
        }
    }

    /// A folder as hard-sample data: Fashion-MNIST when it holds the IDX files, else one sub-folder per class.
    fn htl_source_for(&self, path: &std::path::Path) -> crate::compute::htl::data::HtlSource {
        use crate::compute::htl::data::HtlSource;
        match self.prune_source_for(path) {
            crate::compute::prune::data::DataSource::FashionMnist(dir) => HtlSource::FashionMnist(dir),
            _ => HtlSource::Folder { path: path.to_owned(), side: self.settings.htl.folder_side },
        }
    }

    fn drop_overlay_ui(ctx: &egui::Context) {
        if ctx.input(|i| i.raw.hovered_files.is_empty()) {
            return;
        }
        let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("drop overlay")));
        let rect = ctx.content_rect();
        painter.rect_filled(rect, 0.0, theme::drop_overlay());
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            "Drop a PNG/JPEG image, an INR (.safetensors), a CSV (NTK points or hard-sample attributes), or a data set / checkpoint folder",
            egui::FontId::proportional(22.0),
            egui::Color32::WHITE,
        );
    }
}

/// Compiles the view shaders and measures the adapter on a background thread (see
/// `render::inr_view::warm_up_shaders`). If that fails, views compile on first use instead.
fn spawn_shader_warm_up(adapter: eframe::egui_wgpu::wgpu::Adapter, ctx: egui::Context) -> Arc<WarmUp> {
    let warm_up = Arc::new(WarmUp::default());
    let shared = Arc::clone(&warm_up);
    let spawned = std::thread::Builder::new().name("sf-shader-warm-up".into()).spawn(move || {
        if let Err(e) = crate::render::inr_view::warm_up_shaders(&adapter, &shared) {
            eprintln!("warning: {e}; shaders will compile on first use");
            shared.abandon();
        }
        ctx.request_repaint();
    });
    if spawned.is_err() {
        warm_up.abandon();
    }
    warm_up
}

impl eframe::App for SparseFieldApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        if self.applied_theme != Some(self.settings.theme) {
            theme::apply(&ctx, self.settings.theme);
            self.applied_theme = Some(self.settings.theme);
        }
        let notes = self.inr.poll();
        self.notify_all(notes);
        let notes = self.edit.poll(&ctx, &self.waker, self.settings.edit.inspect, self.settings.edit.zoom_backend);
        self.notify_all(notes);
        let notes = self.nerf.poll(&self.waker);
        self.notify_all(notes);
        let notes = self.prune.poll(&ctx, &self.settings.prune, self.settings.lab == LabId::Prune, &self.waker);
        self.notify_all(notes);
        let notes = self.ntk.poll(&ctx, &self.settings.ntk.config(), self.settings.lab == LabId::Ntk, &self.waker);
        self.notify_all(notes);
        let notes = self.htl.poll(&ctx, &self.settings.htl, self.settings.lab == LabId::Htl, &self.waker);
        self.notify_all(notes);
        let notes = self.lift.poll(&ctx, &self.settings.lift, &self.waker);
        self.notify_all(notes);
        if self.nerf_autostart && self.nerf.dataset.is_some() {
            self.nerf_autostart = false;
            self.apply(&ctx, Command::NerfTrain);
        }
        self.poll_dialog(&ctx);
        self.handle_dropped_files(&ctx);
        self.inr.sync_training_size(&ctx, &self.settings.inr);

        let mut commands = Vec::new();
        egui::Panel::top("top bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.strong("SparseField");
                ui.separator();
                let jobs: Vec<_> = self.labs().into_iter().flat_map(Lab::jobs).collect();
                job_bar_ui(ui, &jobs, &mut commands);
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui.button(self.settings.theme.label()).clicked() {
                        commands.push(Command::ToggleTheme);
                    }
                    match &self.gpu {
                        Ok(gpu) => ui
                            .label(
                                egui::RichText::new(format!("GPU: {}", gpu.backend)).color(theme::weak_text_colour(ui)),
                            )
                            .on_hover_text(&gpu.adapter),
                        Err(problem) => {
                            ui.colored_label(theme::warning_colour(ui), "No GPU rendering").on_hover_text(problem)
                        }
                    };
                });
            });
        });
        if !self.notifications.is_empty() {
            egui::Panel::bottom("notifications").show(ui, |ui| {
                notifications_ui(ui, &self.notifications, &mut commands);
            });
        }
        let gpu = self.gpu.as_ref().map(|_| ()).map_err(String::as_str);
        egui::Panel::left("sidebar").default_size(theme::SIDE_PANEL_WIDTH).show(ui, |ui| {
            lab_list_ui(ui, self.settings.lab, &mut commands);
            ui.separator();
            egui::ScrollArea::vertical().show(ui, |ui| match self.settings.lab {
                LabId::Inr => {
                    let state = self.inr.panel_state(gpu);
                    inr_controls_ui(ui, &mut self.settings.inr, &state, &mut commands);
                    ui.separator();
                    ui.checkbox(&mut self.settings.train_on_start, "Train on start")
                        .on_hover_text("Start fitting the last image as soon as the app opens");
                }
                LabId::Edit => {
                    let state = self.edit.panel_state();
                    edit_controls_ui(ui, &mut self.settings.edit, &state, &mut commands);
                }
                LabId::Prune => {
                    let state = self.prune.panel_state(&self.settings.prune);
                    prune_controls_ui(ui, &mut self.settings.prune, &state, &mut commands);
                }
                LabId::Ntk => {
                    let state = self.ntk.panel_state(&self.settings.ntk.config());
                    ntk_controls_ui(ui, &mut self.settings.ntk, &state, &mut commands);
                }
                LabId::Htl => {
                    let state = self.htl.panel_state(&self.settings.htl);
                    htl_controls_ui(ui, &mut self.settings.htl, &state, &mut commands);
                }
                LabId::Lift => {
                    let state = self.lift.panel_state();
                    lift_controls_ui(ui, &mut self.settings.lift, &state, &mut commands);
                }
                LabId::Nerf => {
                    let state = self.nerf.panel_state(gpu);
                    nerf_controls_ui(ui, &mut self.settings.nerf, &state, &mut commands);
                    ui.separator();
                    ui.checkbox(&mut self.settings.train_on_start, "Train on start")
                        .on_hover_text("Start training on the last data set as soon as the app opens");
                }
            });
        });
        egui::CentralPanel::default().show(ui, |ui| match self.settings.lab {
            LabId::Inr => {
                let mut view = std::mem::take(&mut self.inr.view);
                let state = self.inr.panel_state(gpu);
                inr_main_ui(ui, &mut self.settings.inr, &mut view, &state, &mut commands);
                drop(state);
                self.inr.view = view;
            }
            LabId::Edit => {
                let mut zoom = self.edit.zoom;
                let state = self.edit.panel_state();
                edit_main_ui(ui, &mut self.settings.edit, &mut zoom, &state);
                drop(state);
                self.edit.zoom = zoom;
            }
            LabId::Prune => {
                let state = self.prune.panel_state(&self.settings.prune);
                prune_main_ui(ui, &mut self.settings.prune, &state, &mut commands);
            }
            LabId::Ntk => {
                let state = self.ntk.panel_state(&self.settings.ntk.config());
                ntk_main_ui(ui, &mut self.settings.ntk, &state, &mut commands);
            }
            LabId::Htl => {
                let state = self.htl.panel_state(&self.settings.htl);
                htl_main_ui(ui, &mut self.settings.htl, &state, &mut commands);
            }
            LabId::Nerf => {
                let mut view = std::mem::take(&mut self.nerf.viewer.view);
                let state = self.nerf.panel_state(gpu);
                nerf_main_ui(ui, &mut self.settings.nerf, &mut view, &state, &mut commands);
                drop(state);
                self.nerf.viewer.view = view;
            }
            LabId::Lift => {
                let mut view = std::mem::take(&mut self.lift.viewer.view);
                let viewer = self.lift.viewer.panel_state(gpu, self.lift.is_lifting());
                let state = self.lift.panel_state();
                lift_main_ui(ui, &mut self.settings.lift, &mut view, &viewer, &state);
                drop((state, viewer));
                self.lift.viewer.view = view;
            }
        });
        self.lift.viewer.forward_refine(&self.waker);
        self.nerf.viewer.forward_refine(&self.waker);
        Self::drop_overlay_ui(&ctx);
        for command in commands {
            self.apply(&ctx, command);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }
}

/// Checks that an export may write its fixed file names into `dir` (a new or empty folder, or an
/// earlier export of the same kind) and marks it as that export's; the app never writes over a
/// folder of someone else's files.
fn claim_export_folder(dir: &std::path::Path, what: &str) -> Result<(), String> {
    use crate::compute::files;
    let writer = format!("sparsefield app: {what}");
    match files::foreign_files(dir, &writer) {
        Ok(None) => {}
        Ok(Some(foreign)) => {
            return Err(format!(
                "{}; pick a new or empty folder, so that no file of yours is replaced",
                foreign.describe(&writer)
            ));
        }
        Err(e) => return Err(format!("{}: cannot list the folder ({e})", dir.display())),
    }
    files::mark_output_dir(dir, &writer).map_err(|e| format!("{}: cannot write in the folder ({e})", dir.display()))
}
