//! The NeRF lab's commands and its [`Lab`] interface.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;
use serde::{Deserialize, Serialize};

use super::panel::{NerfSettings, nerf_controls_ui, nerf_main_ui};
use super::{DataSource, NerfState};
use crate::compute::nerf::checkpoint::{CONFIG_FILE, WEIGHTS_FILE};
use crate::labs::{Lab, LabCommands, LabCx, Shared, SharedField, apply_picked, from_json, previous_version, to_json};
use crate::ui::FileDialog;
use crate::ui::widgets::Level;

/// What the NeRF lab's panel asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum NerfCommand {
    /// Open a file dialog; its answer arrives as the matching command.
    Pick(NerfFile),
    /// Load the built-in demo scene.
    UseDemo,
    /// Load a data set folder.
    LoadData(PathBuf),
    Train,
    Continue,
    ResetSettings,
    SaveCheckpoint(PathBuf),
    LoadCheckpoint(PathBuf),
    ExportView(PathBuf),
    ExportTurntable(PathBuf),
}

/// Which file or folder a NeRF-lab dialog is picking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NerfFile {
    /// A data set folder.
    OpenData,
    /// A checkpoint folder.
    OpenCheckpoint,
    SaveCheckpoint,
    ExportView,
    ExportTurntable,
}

impl NerfFile {
    fn dialog(self) -> FileDialog {
        match self {
            Self::OpenData => FileDialog::folder().titled("NeRF data set folder (transforms_*.json)"),
            Self::OpenCheckpoint => FileDialog::folder().titled("NeRF checkpoint folder"),
            Self::SaveCheckpoint => FileDialog::folder().titled("Folder for the checkpoint"),
            Self::ExportView => FileDialog::save("PNG", &["png"], "nerf.png"),
            Self::ExportTurntable => FileDialog::save("GIF", &["gif"], "turntable.gif"),
        }
    }

    fn command(self, path: PathBuf) -> NerfCommand {
        match self {
            Self::OpenData => NerfCommand::LoadData(path),
            Self::OpenCheckpoint => NerfCommand::LoadCheckpoint(path),
            Self::SaveCheckpoint => NerfCommand::SaveCheckpoint(path),
            Self::ExportView => NerfCommand::ExportView(path),
            Self::ExportTurntable => NerfCommand::ExportTurntable(path),
        }
    }
}

/// What the NeRF lab keeps between runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Saved {
    settings: NerfSettings,
    data: DataSource,
}

/// The NeRF lab: train a radiance field and orbit it while it learns.
#[derive(Default)]
pub struct NerfLab {
    pub settings: NerfSettings,
    /// The data set to load when the lab is first shown (the last one used).
    pub data: DataSource,
    pub state: NerfState,
    /// Train as soon as the data set has loaded (train-on-start).
    autostart: bool,
    commands: Vec<NerfCommand>,
}

impl NerfLab {
    pub const KEY: &'static str = "nerf";

    /// Starts loading the data set if there is none and none is loading.
    fn ensure_data(&mut self, cx: &mut LabCx<'_>) {
        if self.state.dataset.is_none() && !self.state.is_loading() {
            let source = self.data.clone();
            if let Err(message) = self.state.start_load(source, &self.settings, Arc::clone(cx.waker)) {
                cx.notify(Level::Error, message);
            }
        }
    }

    fn load(&mut self, source: DataSource, cx: &LabCx<'_>) -> Result<Option<String>, String> {
        self.state.start_load(source.clone(), &self.settings, Arc::clone(cx.waker)).map(|()| {
            self.data = source;
            None
        })
    }
}

impl LabCommands for NerfLab {
    type Command = NerfCommand;

    fn apply(&mut self, command: NerfCommand, cx: &mut LabCx<'_>) -> Result<Option<String>, String> {
        let waker = Arc::clone(cx.waker);
        match command {
            NerfCommand::Pick(file) => {
                cx.pick_file(file.dialog(), file);
                Ok(None)
            }
            NerfCommand::UseDemo => self.load(DataSource::Demo, cx),
            NerfCommand::LoadData(path) => self.load(DataSource::Folder(path), cx),
            NerfCommand::Train => self.state.start_training(&self.settings, false, waker).map(|()| None),
            NerfCommand::Continue => self.state.start_training(&self.settings, true, waker).map(|()| None),
            NerfCommand::ResetSettings => {
                let defaults = NerfSettings::default();
                let s = &mut self.settings;
                (s.steps, s.learning_rate, s.batch_samples, s.seed, s.random_background) = (
                    defaults.steps,
                    defaults.learning_rate,
                    defaults.batch_samples,
                    defaults.seed,
                    defaults.random_background,
                );
                Ok(Some("NeRF training settings reset to their defaults.".into()))
            }
            NerfCommand::SaveCheckpoint(path) => self.state.save_checkpoint(&path).map(Some),
            NerfCommand::LoadCheckpoint(path) => self.state.load_checkpoint(&path, cx.waker).map(Some),
            NerfCommand::ExportView(path) => self.state.start_export(path, &self.settings, false, waker).map(|()| None),
            NerfCommand::ExportTurntable(path) => {
                self.state.start_export(path, &self.settings, true, waker).map(|()| None)
            }
        }
    }
}

impl Lab for NerfLab {
    lab_plumbing!();

    fn key(&self) -> &'static str {
        Self::KEY
    }

    fn title(&self) -> &'static str {
        "NeRF — radiance fields"
    }

    fn description(&self) -> &'static str {
        "Train a hash-grid radiance field on multi-view images and orbit it while it learns."
    }

    fn open(&mut self, cx: &mut LabCx<'_>, autostart: bool) {
        if cx.active {
            self.autostart = autostart;
            self.ensure_data(cx);
        }
    }

    fn shown(&mut self, cx: &mut LabCx<'_>) {
        self.ensure_data(cx);
    }

    fn poll(&mut self, cx: &mut LabCx<'_>) {
        let notes = self.state.poll(cx.waker);
        cx.notify_all(notes);
        if self.autostart && self.state.dataset.is_some() {
            self.autostart = false;
            let outcome = self.apply(NerfCommand::Train, cx);
            cx.report(outcome);
        }
    }

    fn publish(&self, shared: &mut Shared) {
        shared.nerf_field = self.state.viewer.snapshot.as_ref().map(|snapshot| SharedField {
            snapshot: Arc::clone(snapshot),
            orbit: self.state.viewer.orbit_home,
            dataset: self.state.dataset.clone(),
            training: self.state.is_training(),
            name: format!(
                "{}, step {}",
                self.state.dataset.as_ref().map_or_else(|| "checkpoint".to_owned(), |d| d.name.clone()),
                snapshot.step
            ),
        });
    }

    fn sidebar_ui(&mut self, ui: &mut egui::Ui, cx: &mut LabCx<'_>) {
        let state = self.state.panel_state(cx.gpu);
        nerf_controls_ui(ui, &mut self.settings, &state, &mut self.commands);
        ui.separator();
        ui.checkbox(&mut cx.shared.train_on_start, "Train on start")
            .on_hover_text("Start training on the last data set as soon as the app opens");
    }

    fn main_ui(&mut self, ui: &mut egui::Ui, cx: &mut LabCx<'_>) {
        let mut view = std::mem::take(&mut self.state.viewer.view);
        let state = self.state.panel_state(cx.gpu);
        nerf_main_ui(ui, &mut self.settings, &mut view, &state, &mut self.commands);
        drop(state);
        self.state.viewer.view = view;
        self.state.viewer.forward_refine(cx.waker);
    }

    fn file_picked(&mut self, request: Box<dyn Any + Send>, path: PathBuf, cx: &mut LabCx<'_>) {
        apply_picked(self, request, path, cx, |_, file: NerfFile, path| Some(file.command(path)));
    }

    fn accepts_drop(&self, path: &Path, _active: bool) -> bool {
        path.is_dir()
    }

    fn dropped(&mut self, path: PathBuf, cx: &mut LabCx<'_>) {
        let command = if path.join(CONFIG_FILE).is_file() && path.join(WEIGHTS_FILE).is_file() {
            NerfCommand::LoadCheckpoint(path)
        } else {
            NerfCommand::LoadData(path)
        };
        cx.show_lab();
        let outcome = self.apply(command, cx);
        cx.report(outcome);
    }

    fn drop_hint(&self) -> Option<&'static str> {
        Some("a NeRF data set or checkpoint folder")
    }

    fn persist(&self) -> Option<String> {
        to_json(&Saved { settings: self.settings.clone(), data: self.data.clone() })
    }

    fn restore(&mut self, json: &str) {
        let Saved { mut settings, data } = from_json(json);
        settings.sanitize();
        (self.settings, self.data) = (settings, data);
    }

    fn restore_previous_version(&mut self, storage: &dyn eframe::Storage) {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Previous {
            nerf: NerfSettings,
            nerf_data: DataSource,
        }
        if let Some(Previous { mut nerf, nerf_data }) = previous_version(storage) {
            nerf.sanitize();
            (self.settings, self.data) = (nerf, nerf_data);
        }
    }
}
