//! The pruning lab's commands and its [`Lab`] interface.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;

use super::PruneState;
use super::panel::{PruneMode, PruneSettings, prune_controls_ui, prune_main_ui};
use crate::compute::prune::data::DataSource;
use crate::labs::{Lab, LabCommands, LabCx, apply_picked};
use crate::ui::FileDialog;

/// What the pruning lab's panel asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum PruneCommand {
    /// Open a file dialog; its answer arrives as the matching command.
    Pick(PruneFile),
    /// Sweep the pruning fraction with the lab's settings.
    Sweep,
    ResetSettings,
    ExportRun(PathBuf),
    ExportSweep(PathBuf),
    /// Use this data set for pruning at initialization (loaded in the background).
    SetData(DataSource),
    /// Compare the pruning-at-init methods with the lab's settings.
    Compare,
    ExportInit(PathBuf),
}

/// Which file or folder a pruning-lab dialog is picking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PruneFile {
    ExportRun,
    ExportSweep,
    /// A Fashion-MNIST or class-per-folder data set.
    OpenData,
    ExportInit,
}

impl PruneFile {
    fn dialog(self) -> FileDialog {
        match self {
            Self::ExportRun => FileDialog::save("CSV", &["csv"], "prune_run.csv"),
            Self::ExportSweep => FileDialog::save("CSV", &["csv"], "prune_sweep.csv"),
            Self::OpenData => FileDialog::folder().titled("Fashion-MNIST folder, or one sub-folder per class"),
            Self::ExportInit => FileDialog::save("CSV", &["csv"], "prune_init.csv"),
        }
    }
}

/// The pruning lab: random masks at initialization, live theory runs and sweeps.
#[derive(Default)]
pub struct PruneLab {
    pub settings: PruneSettings,
    pub state: PruneState,
    commands: Vec<PruneCommand>,
}

impl PruneLab {
    pub const KEY: &'static str = "prune";

    fn command_for(&self, file: PruneFile, path: PathBuf) -> PruneCommand {
        match file {
            PruneFile::ExportRun => PruneCommand::ExportRun(path),
            PruneFile::ExportSweep => PruneCommand::ExportSweep(path),
            PruneFile::OpenData => PruneCommand::SetData(DataSource::for_folder(&path, self.settings.folder_side)),
            PruneFile::ExportInit => PruneCommand::ExportInit(path),
        }
    }
}

impl LabCommands for PruneLab {
    type Command = PruneCommand;

    fn apply(&mut self, command: PruneCommand, cx: &mut LabCx<'_>) -> Result<Option<String>, String> {
        match command {
            PruneCommand::Pick(file) => {
                cx.pick_file(file.dialog(), file);
                Ok(None)
            }
            PruneCommand::Sweep => self.state.start_sweep(&self.settings, Arc::clone(cx.waker)).map(|()| None),
            PruneCommand::ResetSettings => {
                let (mode, source) = (self.settings.mode, self.settings.source.clone());
                self.settings = PruneSettings { mode, source, ..PruneSettings::default() };
                Ok(Some("Pruning settings reset to their defaults.".into()))
            }
            PruneCommand::ExportRun(path) => self.state.export_run(&path).map(Some),
            PruneCommand::ExportSweep(path) => self.state.export_sweep(&path).map(Some),
            PruneCommand::SetData(source) => {
                let label = source.label();
                self.settings.source = source.clone();
                self.settings.mode = PruneMode::Images;
                self.state.load_data(source, cx.waker);
                Ok(Some(format!("Loading {label}.")))
            }
            PruneCommand::Compare => {
                let settings = &self.settings;
                self.state.start_compare(&settings.init, &settings.source, Arc::clone(cx.waker)).map(|()| None)
            }
            PruneCommand::ExportInit(path) => self.state.export_init(&path).map(Some),
        }
    }
}

impl Lab for PruneLab {
    lab_plumbing!(settings);

    fn key(&self) -> &'static str {
        Self::KEY
    }

    fn title(&self) -> &'static str {
        "Pruning — random masks at init"
    }

    fn description(&self) -> &'static str {
        "Prune a two-layer net at random before training and watch generalization rise, peak and collapse."
    }

    fn poll(&mut self, cx: &mut LabCx<'_>) {
        let notes = self.state.poll(cx.ctx, &self.settings, cx.active, cx.waker);
        cx.notify_all(notes);
    }

    fn sidebar_ui(&mut self, ui: &mut egui::Ui, _cx: &mut LabCx<'_>) {
        let state = self.state.panel_state(&self.settings);
        prune_controls_ui(ui, &mut self.settings, &state, &mut self.commands);
    }

    fn main_ui(&mut self, ui: &mut egui::Ui, _cx: &mut LabCx<'_>) {
        let state = self.state.panel_state(&self.settings);
        prune_main_ui(ui, &mut self.settings, &state, &mut self.commands);
    }

    fn file_picked(&mut self, request: Box<dyn Any + Send>, path: PathBuf, cx: &mut LabCx<'_>) {
        apply_picked(self, request, path, cx, |lab, file: PruneFile, path| Some(lab.command_for(file, path)));
    }

    fn accepts_drop(&self, path: &Path, active: bool) -> bool {
        active && path.is_dir()
    }

    fn dropped(&mut self, path: PathBuf, cx: &mut LabCx<'_>) {
        let outcome = self.apply(self.command_for(PruneFile::OpenData, path), cx);
        cx.report(outcome);
    }

    fn drop_hint(&self) -> Option<&'static str> {
        Some("an image data set folder (pruning and hard-sample labs)")
    }

    fn restore_previous_version(&mut self, storage: &dyn eframe::Storage) {
        #[derive(Default, serde::Deserialize)]
        #[serde(default)]
        struct Previous {
            prune: PruneSettings,
        }
        if let Some(previous) = crate::labs::previous_version::<Previous>(storage) {
            self.settings = previous.prune;
            self.settings.sanitize();
        }
    }
}
