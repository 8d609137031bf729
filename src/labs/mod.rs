//! Labs as vertical slices: each folder holds one lab's state, commands, jobs and panel, behind the
//! [`Lab`] trait. The shell (`app`) knows labs only through [`registry`]; a lab uses other labs
//! only through `compute`, the shared modules of `ui` and the [`Shared`] board.

/// The parts of a [`Lab`] impl that every lab writes the same way, for use inside `impl Lab`:
/// the job bar through `self.state.jobs()`/`control_job`, and pending commands kept in
/// `self.commands`. With `settings`, also `persist`/`restore` of `self.settings` (a type with
/// `sanitize`) as JSON.
macro_rules! lab_plumbing {
    () => {
        fn jobs(&self) -> Vec<$crate::ui::widgets::JobRow<'_>> {
            self.state.jobs()
        }

        fn control_job(&mut self, id: $crate::jobs::JobId, action: &dyn Fn(&mut dyn $crate::jobs::JobControl)) -> bool {
            self.state.control_job(id, |job| action(job))
        }

        fn apply_pending(&mut self, cx: &mut $crate::labs::LabCx<'_>) {
            let commands = std::mem::take(&mut self.commands);
            $crate::labs::apply_all(self, commands, cx);
        }
    };
    (settings) => {
        lab_plumbing!();

        fn persist(&self) -> Option<String> {
            $crate::labs::to_json(&self.settings)
        }

        fn restore(&mut self, json: &str) {
            self.settings = $crate::labs::from_json(json);
            self.settings.sanitize();
        }
    };
}

/// Declares the lab modules and [`registry`] from one list: adding a lab is one line in it.
macro_rules! labs {
    ($($module:ident :: $lab:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// Every lab, in the order the lab list shows them.
        pub fn registry() -> Vec<Box<dyn Lab>> {
            vec![$(Box::new($module::$lab::default())),*]
        }
    };
}

labs!(
    inr::InrLab,
    edit::EditLab,
    nerf::NerfLab,
    lift::LiftLab,
    stega::StegaLab,
    prune::PruneLab,
    ntk::NtkLab,
    htl::HtlLab,
    gnn::GnnLab,
);

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::compute::image_io::ImageData;
use crate::compute::inr::SirenWeights;
use crate::jobs::{JobControl, JobId, Waker};
use crate::ui::FileDialog;
use crate::ui::widgets::{JobRow, Level, Notes};

/// What labs publish for one another (each frame, before any lab runs): data that one lab makes
/// and another may use, without either naming the other.
#[derive(Clone, Default)]
pub struct Shared {
    /// The image being fitted as an INR and, when fitted to that image, its network.
    pub current_inr: CurrentInr,
    /// Start training as the app opens (a checkbox some labs show).
    pub train_on_start: bool,
    /// A request to fit an INR to the current image (the edit lab opening with train-on-start
    /// needs one); the INR lab takes it up on its next poll.
    pub fit_current_inr: bool,
    /// The NeRF lab's field (trained or loaded), with its data set.
    pub nerf_field: Option<SharedField>,
    /// The lift lab's result.
    pub lift_field: Option<SharedField>,
}

/// A radiance field one lab has, for labs that work on fields (the StegaNeRF lab marks one).
#[derive(Clone)]
pub struct SharedField {
    pub snapshot: Arc<crate::compute::nerf::NerfSnapshot>,
    /// Where the viewer and turntables start.
    pub orbit: crate::compute::nerf::orbit::Orbit,
    /// The data set it was trained on (its cameras and images), if any.
    pub dataset: Option<Arc<crate::compute::nerf::Dataset>>,
    /// Still training: the snapshot will change.
    pub training: bool,
    /// What it is, e.g. "demo scene, step 2000".
    pub name: String,
}

/// An image and the INR fitted to it, as the INR lab publishes them.
#[derive(Clone, Default)]
pub struct CurrentInr {
    pub image: Option<Arc<ImageData>>,
    pub name: String,
    /// `None` unless the network was fitted to `image`.
    pub network: Option<Arc<SirenWeights>>,
    /// Training steps behind `network`.
    pub network_step: u64,
    /// A fit of `image` is running: `network` is a snapshot that will improve.
    pub fitting: bool,
}

/// What a lab may ask of the shell while it polls, draws or applies a command.
#[derive(Default)]
pub struct Requests {
    pub notes: Notes,
    /// Bring this lab on screen.
    pub show: bool,
    /// Open this file dialog; the path comes back through [`Lab::file_picked`] with the request.
    pub dialog: Option<(FileDialog, Box<dyn Any + Send>)>,
}

/// The context the shell hands a lab.
pub struct LabCx<'a> {
    pub ctx: &'a egui::Context,
    /// Repaints the window; jobs call it when something new is waiting.
    pub waker: &'a Waker,
    /// `Err(why)` when live GPU rendering is unavailable.
    pub gpu: Result<(), &'a str>,
    /// Whether this lab is on screen.
    pub active: bool,
    pub shared: &'a mut Shared,
    pub requests: &'a mut Requests,
}

impl LabCx<'_> {
    pub fn notify(&mut self, level: Level, text: impl Into<String>) {
        self.requests.notes.push((level, text.into()));
    }

    pub fn notify_all(&mut self, notes: Notes) {
        self.requests.notes.extend(notes);
    }

    /// Shows a command's outcome: a success message, nothing, or an error.
    pub fn report(&mut self, result: Result<Option<String>, String>) {
        match result {
            Ok(Some(message)) => self.notify(Level::Success, message),
            Ok(None) => {}
            Err(message) => self.notify(Level::Error, message),
        }
    }

    /// Brings the lab on screen (after it took a file meant for it, say).
    pub fn show_lab(&mut self) {
        self.requests.show = true;
    }

    /// Opens a file dialog; the path picked comes back as `request` through [`Lab::file_picked`].
    pub fn pick_file<R: Any + Send>(&mut self, dialog: FileDialog, request: R) {
        if self.requests.dialog.is_some() {
            self.notify(Level::Info, "A file dialog is already open.");
            return;
        }
        self.requests.dialog = Some((dialog, Box::new(request)));
    }
}

/// What the shell asks of every lab, whichever it is.
pub trait Lab: Any {
    /// A short stable name: the key of the lab's saved settings and of `sparsefield`'s lab list.
    fn key(&self) -> &'static str;
    fn title(&self) -> &'static str;
    fn description(&self) -> &'static str;

    /// Called once as the app opens, after [`Lab::restore`]. `autostart` when the user asked to
    /// start training on open (only the lab on screen gets it).
    fn open(&mut self, _cx: &mut LabCx<'_>, _autostart: bool) {}
    /// Called once when the window has a wgpu device (not in a window without one).
    fn gpu_ready(&mut self, _render_state: &eframe::egui_wgpu::RenderState) {}
    /// The user switched to this lab.
    fn shown(&mut self, _cx: &mut LabCx<'_>) {}

    /// Takes in what the lab's jobs sent; called every frame, on screen or not.
    fn poll(&mut self, cx: &mut LabCx<'_>);
    /// Writes what this lab shares with others into `shared`.
    fn publish(&self, _shared: &mut Shared) {}

    /// The lab's running jobs, for the top bar, in the order the shell's queue runs them while the
    /// lab is on screen.
    fn jobs(&self) -> Vec<JobRow<'_>>;
    /// Applies `action` (pause, resume, cancel) to the lab's job `id`; false when it has none.
    fn control_job(&mut self, id: JobId, action: &dyn Fn(&mut dyn JobControl)) -> bool;

    /// The controls in the sidebar. Commands the user gives are kept and applied after the frame.
    fn sidebar_ui(&mut self, ui: &mut egui::Ui, cx: &mut LabCx<'_>);
    /// The lab's main area.
    fn main_ui(&mut self, ui: &mut egui::Ui, cx: &mut LabCx<'_>);
    /// Applies the commands given during the frame.
    fn apply_pending(&mut self, cx: &mut LabCx<'_>);
    /// A file dialog opened by [`LabCx::pick_file`] answered with `path`.
    fn file_picked(&mut self, request: Box<dyn Any + Send>, path: PathBuf, cx: &mut LabCx<'_>);

    /// Whether the lab takes a file or folder dropped on the window. The lab on screen is asked
    /// first with `active`; then every lab, in the registry's order, without.
    fn accepts_drop(&self, _path: &Path, _active: bool) -> bool {
        false
    }
    /// A dropped file or folder the lab accepted.
    fn dropped(&mut self, _path: PathBuf, _cx: &mut LabCx<'_>) {}
    /// What the lab takes when dropped, for the drop overlay ("a NeRF data set folder").
    fn drop_hint(&self) -> Option<&'static str> {
        None
    }

    /// The settings to keep until the next start, as JSON.
    fn persist(&self) -> Option<String>;
    /// Reads what [`Lab::persist`] wrote (of this or an older version), bringing values into range.
    fn restore(&mut self, json: &str);
    /// Reads the lab's part of what versions before labs kept their own settings saved (one RON
    /// struct under eframe's app key), when there is nothing under the lab's own key yet.
    fn restore_previous_version(&mut self, _storage: &dyn eframe::Storage) {}
}

/// A lab's own commands: data its panel returns and the shell applies after the frame.
pub trait LabCommands: Lab {
    type Command;
    /// Applies one command; `Ok(Some(message))` is shown as a success.
    fn apply(&mut self, command: Self::Command, cx: &mut LabCx<'_>) -> Result<Option<String>, String>;
}

/// Applies `commands` in order, reporting each outcome.
pub fn apply_all<L: LabCommands>(lab: &mut L, commands: Vec<L::Command>, cx: &mut LabCx<'_>) {
    for command in commands {
        let outcome = lab.apply(command, cx);
        cx.report(outcome);
    }
}

/// Turns a dialog's answer back into the lab's command: `request` is what the lab passed to
/// [`LabCx::pick_file`]; `to_command` maps it and the path (or declines).
pub fn apply_picked<L: LabCommands, R: 'static>(
    lab: &mut L,
    request: Box<dyn Any + Send>,
    path: PathBuf,
    cx: &mut LabCx<'_>,
    to_command: impl FnOnce(&mut L, R, PathBuf) -> Option<L::Command>,
) {
    if let Ok(request) = request.downcast::<R>()
        && let Some(command) = to_command(lab, *request, path)
    {
        let outcome = lab.apply(command, cx);
        cx.report(outcome);
    }
}

/// The lab's part of the settings an earlier version saved, read as `T` (a struct naming the
/// lab's fields of the old one, with defaults), for [`Lab::restore_previous_version`].
pub fn previous_version<T: DeserializeOwned>(storage: &dyn eframe::Storage) -> Option<T> {
    eframe::get_value(storage, eframe::APP_KEY)
}

/// `value` as JSON for [`Lab::persist`].
pub fn to_json<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_string(value).ok()
}

/// Reads JSON written by [`to_json`]; anything unreadable gives the defaults.
pub fn from_json<T: DeserializeOwned + Default>(json: &str) -> T {
    serde_json::from_str(json).unwrap_or_default()
}

/// Checks that an export may write its fixed file names into `dir` (a new or empty folder, or an
/// earlier export of the same kind) and marks it as that export's; the app never writes over a
/// folder of someone else's files.
pub fn claim_export_folder(dir: &Path, what: &str) -> Result<(), String> {
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
