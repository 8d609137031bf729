//! The eframe application shell: the frame, the top bar with every lab's jobs, the lab list,
//! notifications, file dialogs, dropped files and saved settings. It knows labs only through
//! [`crate::labs::registry`] and the [`Lab`] trait.

mod dialogs;
mod drops;
mod frame_log;
mod queue;
mod settings;
mod top_bar;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use eframe::egui;

use self::dialogs::Dialog;
pub use self::settings::{ShellSettings, restore, save};
use crate::jobs::Waker;
use crate::labs::{Lab, LabCommands, LabCx, Requests, Shared};
use crate::render::inr_view::{InrGpu, WarmUp};
use crate::ui::Command;
use crate::ui::theme::{self, ThemeChoice};
use crate::ui::widgets::{LabEntry, Level, Notification, lab_list_ui, notifications_ui};

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

/// The wgpu adapter in use, for the status bar.
#[derive(Clone, Debug)]
pub struct GpuInfo {
    pub backend: String,
    pub adapter: String,
}

pub struct SparseFieldApp {
    shell: ShellSettings,
    labs: Vec<Box<dyn Lab>>,
    shared: Shared,
    notifications: Vec<Notification>,
    next_notification_id: u64,
    /// `Err(why)` when live rendering is unavailable.
    gpu: Result<GpuInfo, String>,
    waker: Waker,
    dialog: Option<Dialog>,
    queue: queue::JobQueue,
    frame_log: Option<frame_log::FrameLog>,
    applied_theme: Option<ThemeChoice>,
    /// Where the sidebar was last drawn (layout tests check that nothing runs past it).
    sidebar_rect: egui::Rect,
}

impl SparseFieldApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> Self {
        let mut labs = crate::labs::registry();
        let shell = match cc.storage.filter(|_| options.restore_settings) {
            Some(storage) => restore(storage, &mut labs),
            None => ShellSettings::default(),
        };
        let gpu = match &cc.wgpu_render_state {
            Some(render_state) => {
                let mut inr_gpu = InrGpu::new(&render_state.device, render_state.target_format);
                inr_gpu.wait_for(spawn_shader_warm_up(render_state.adapter.clone(), cc.egui_ctx.clone()));
                let nerf_gpu = crate::render::nerf_view::NerfGpu::new(&render_state.device, render_state.target_format);
                let mut renderer = render_state.renderer.write();
                renderer.callback_resources.insert(inr_gpu);
                renderer.callback_resources.insert(nerf_gpu);
                drop(renderer);
                for lab in &mut labs {
                    lab.gpu_ready(render_state);
                }
                let info = render_state.adapter.get_info();
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
        let shared = Shared { train_on_start: shell.train_on_start, ..Shared::default() };
        let mut app = Self {
            shell,
            labs,
            shared,
            notifications: Vec::new(),
            next_notification_id: 1,
            gpu,
            waker,
            dialog: None,
            queue: queue::JobQueue::default(),
            frame_log: frame_log::FrameLog::from_env(),
            applied_theme: None,
            sidebar_rect: egui::Rect::NOTHING,
        };
        if !app.labs.iter().any(|lab| lab.key() == app.shell.lab) {
            app.shell.lab = app.labs[0].key().to_owned();
        }
        if let Err(problem) = &app.gpu {
            app.notify(Level::Warning, problem.clone());
        }
        let autostart = options.allow_autostart && app.shell.train_on_start;
        for index in 0..app.labs.len() {
            app.with_lab(&cc.egui_ctx, index, |lab, cx| {
                let autostart = autostart && cx.active;
                lab.open(cx, autostart);
            });
        }
        app
    }

    /// The registered lab of type `L`.
    ///
    /// # Panics
    /// When `L` is not in [`crate::labs::registry`].
    pub fn lab<L: Lab>(&self) -> &L {
        self.labs.iter().find_map(|lab| (lab.as_ref() as &dyn Any).downcast_ref::<L>()).expect("a registered lab")
    }

    /// The registered lab of type `L`, to change its settings.
    ///
    /// # Panics
    /// When `L` is not in [`crate::labs::registry`].
    pub fn lab_mut<L: Lab>(&mut self) -> &mut L {
        self.labs
            .iter_mut()
            .find_map(|lab| (lab.as_mut() as &mut dyn Any).downcast_mut::<L>())
            .expect("a registered lab")
    }

    /// Every lab, in the lab list's order.
    pub fn labs(&self) -> impl Iterator<Item = &dyn Lab> {
        self.labs.iter().map(AsRef::as_ref)
    }

    /// Where the sidebar was drawn in the last frame.
    pub fn sidebar_rect(&self) -> egui::Rect {
        self.sidebar_rect
    }

    /// The key of the lab on screen.
    pub fn active_lab(&self) -> &str {
        &self.shell.lab
    }

    pub fn shell_settings(&self) -> &ShellSettings {
        &self.shell
    }

    pub fn shell_settings_mut(&mut self) -> &mut ShellSettings {
        &mut self.shell
    }

    pub fn notifications(&self) -> &[Notification] {
        &self.notifications
    }

    pub fn gpu_status(&self) -> Result<&GpuInfo, &str> {
        self.gpu.as_ref().map_err(String::as_str)
    }

    fn active_index(&self) -> usize {
        self.labs.iter().position(|lab| lab.key() == self.shell.lab).unwrap_or(0)
    }

    fn notify(&mut self, level: Level, text: impl Into<String>) {
        self.notifications.push(Notification { id: self.next_notification_id, level, text: text.into() });
        self.next_notification_id += 1;
        if self.notifications.len() > MAX_NOTIFICATIONS {
            self.notifications.remove(0);
        }
    }

    /// Runs `f` on lab `index` with its context, then carries out what the lab asked for
    /// (messages, coming on screen, a file dialog).
    fn with_lab<T>(
        &mut self,
        ctx: &egui::Context,
        index: usize,
        f: impl FnOnce(&mut dyn Lab, &mut LabCx<'_>) -> T,
    ) -> T {
        for lab in &self.labs {
            lab.publish(&mut self.shared);
        }
        let active = index == self.active_index();
        let mut requests = Requests::default();
        let mut cx = LabCx {
            ctx,
            waker: &self.waker,
            gpu: self.gpu.as_ref().map(|_| ()).map_err(String::as_str),
            active,
            shared: &mut self.shared,
            requests: &mut requests,
        };
        let out = f(self.labs[index].as_mut(), &mut cx);
        let Requests { notes, show, dialog } = requests;
        for (level, text) in notes {
            self.notify(level, text);
        }
        if show {
            self.shell.lab = self.labs[index].key().to_owned();
        }
        if let Some((spec, request)) = dialog {
            self.open_dialog(index, spec, request);
        }
        out
    }

    /// Applies a command of the shell (also usable by tests).
    pub fn apply(&mut self, ctx: &egui::Context, command: Command) {
        match command {
            Command::SelectLab(key) => {
                if let Some(index) = self.labs.iter().position(|lab| lab.key() == key) {
                    self.shell.lab = key.to_owned();
                    self.with_lab(ctx, index, Lab::shown);
                }
            }
            Command::ToggleTheme => self.shell.theme = self.shell.theme.toggled(),
            Command::UseBuiltinFileBrowser(on) => self.shell.builtin_file_browser = on,
            Command::PauseJob(id, paused) => {
                if !paused && self.queue.waiting.contains(&id) {
                    // A waiting job the user resumes runs now; the queue pauses the one running.
                    self.run_now(id);
                } else {
                    self.queue.waiting.remove(&id);
                    let _ = self.labs.iter_mut().any(|lab| lab.control_job(id, &|job| job.set_paused(paused)));
                    if !paused {
                        // A job the user resumes is the one they want running.
                        self.run_now(id);
                    }
                }
                self.schedule_jobs();
            }
            Command::RunJobsTogether(on) => {
                self.shell.run_jobs_together = on;
                self.schedule_jobs();
            }
            Command::CancelJob(id) => {
                let _ = self.labs.iter_mut().any(|lab| lab.control_job(id, &|job| job.cancel()));
            }
            Command::DismissNotification(id) => self.notifications.retain(|n| n.id != id),
            Command::ClearNotifications => self.notifications.clear(),
        }
    }

    /// Applies one of lab `L`'s commands, as its panel would (also usable by tests).
    pub fn apply_to<L: LabCommands>(&mut self, ctx: &egui::Context, command: L::Command) {
        let index = self.labs.iter().position(|lab| (lab.as_ref() as &dyn Any).is::<L>()).expect("a registered lab");
        self.with_lab(ctx, index, |lab, cx| {
            let lab = (lab as &mut dyn Any).downcast_mut::<L>().expect("the lab at its index");
            let outcome = lab.apply(command, cx);
            cx.report(outcome);
        });
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
        if let Some(log) = &mut self.frame_log {
            log.frame_started(&ctx);
        }
        if self.applied_theme != Some(self.shell.theme) {
            theme::apply(&ctx, self.shell.theme);
            self.applied_theme = Some(self.shell.theme);
        }
        for index in 0..self.labs.len() {
            self.with_lab(&ctx, index, Lab::poll);
        }
        self.schedule_jobs();
        self.poll_dialog(&ctx);
        self.handle_dropped_files(&ctx);

        let mut commands = Vec::new();
        egui::Panel::top("top bar").show(ui, |ui| self.top_bar_ui(ui, &mut commands));
        if !self.notifications.is_empty() {
            // Not resizable: a resizable panel keeps its height when messages arrive and cuts them off.
            egui::Panel::bottom("notifications").resizable(false).show(ui, |ui| {
                notifications_ui(ui, &self.notifications, &mut commands);
            });
        }
        let active = self.active_index();
        let entries: Vec<LabEntry> = self
            .labs
            .iter()
            .map(|lab| LabEntry { key: lab.key(), title: lab.title(), description: lab.description() })
            .collect();
        let sidebar = egui::Panel::left("sidebar").default_size(theme::SIDE_PANEL_WIDTH).show(ui, |ui| {
            lab_list_ui(ui, &entries, &self.shell.lab, &mut commands);
            ui.separator();
            // Each lab scrolls on its own: a long lab's scroll position does not carry over.
            egui::ScrollArea::vertical().id_salt(entries[active].key).show(ui, |ui| {
                self.with_lab(&ctx, active, |lab, cx| lab.sidebar_ui(ui, cx));
            });
        });
        self.sidebar_rect = sidebar.response.rect;
        egui::CentralPanel::default().show(ui, |ui| {
            self.with_lab(&ctx, active, |lab, cx| lab.main_ui(ui, cx));
        });
        self.browser_ui(&ctx);
        self.drop_overlay_ui(&ctx);
        for command in commands {
            self.apply(&ctx, command);
        }
        for index in 0..self.labs.len() {
            self.with_lab(&ctx, index, Lab::apply_pending);
        }
        // A job started by this frame's commands waits at once if another one runs.
        self.schedule_jobs();
        if let Some(log) = &mut self.frame_log {
            let jobs = self.labs.iter().flat_map(|lab| {
                lab.jobs().into_iter().map(|row| (row.name.to_owned(), row.status.step, row.status.paused))
            });
            log.frame_ended(jobs);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.shell.train_on_start = self.shared.train_on_start;
        save(storage, &self.shell, &self.labs);
    }
}
