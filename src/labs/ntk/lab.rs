//! The NTK lab's commands and its [`Lab`] interface.

use std::any::Any;
use std::path::{Path, PathBuf};

use eframe::egui;

use super::NtkState;
use super::panel::{NtkSettings, SourceKind, ntk_controls_ui, ntk_main_ui};
use crate::labs::{Lab, LabCommands, LabCx, apply_picked, claim_export_folder};
use crate::ui::{FileDialog, extension_of};

/// What the NTK lab's panel asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum NtkCommand {
    /// Open a file dialog; its answer arrives as the matching command.
    Pick(NtkFile),
    ResetSettings,
    /// Finish the cancelled analysis.
    Resume,
    /// Use the points of this CSV file.
    LoadCsv(PathBuf),
    /// Write every table and chart into this folder.
    Export(PathBuf),
}

/// Which file or folder an NTK-lab dialog is picking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NtkFile {
    /// A CSV file of points.
    OpenPoints,
    /// A folder for every table and chart.
    Export,
}

impl NtkFile {
    fn dialog(self) -> FileDialog {
        match self {
            Self::OpenPoints => FileDialog::open("CSV", &["csv", "txt"]),
            Self::Export => FileDialog::folder().titled("Folder for the NTK tables and charts"),
        }
    }

    fn command(self, path: PathBuf) -> NtkCommand {
        match self {
            Self::OpenPoints => NtkCommand::LoadCsv(path),
            Self::Export => NtkCommand::Export(path),
        }
    }
}

/// The NTK lab: kernels of wide ReLU nets with trainable bias.
#[derive(Default)]
pub struct NtkLab {
    pub settings: NtkSettings,
    pub state: NtkState,
    commands: Vec<NtkCommand>,
}

impl NtkLab {
    pub const KEY: &'static str = "ntk";
}

impl LabCommands for NtkLab {
    type Command = NtkCommand;

    fn apply(&mut self, command: NtkCommand, cx: &mut LabCx<'_>) -> Result<Option<String>, String> {
        match command {
            NtkCommand::Pick(file) => {
                cx.pick_file(file.dialog(), file);
                Ok(None)
            }
            NtkCommand::ResetSettings => {
                let csv = self.settings.csv.take();
                self.settings = NtkSettings { csv, ..NtkSettings::default() };
                Ok(None)
            }
            // Read once here so that a bad file is reported at once and the current data stay.
            NtkCommand::LoadCsv(path) => match crate::compute::ntk::load_points_csv(&path) {
                Ok(points) => {
                    if self.settings.source == SourceKind::Csv && self.settings.csv.as_ref() == Some(&path) {
                        // The same file again: it may have changed on disk.
                        self.state.reload();
                    }
                    self.settings.csv = Some(path);
                    self.settings.source = SourceKind::Csv;
                    cx.show_lab();
                    Ok(Some(format!("Loaded {} points in {} dimensions.", points.n, points.d)))
                }
                Err(e) => Err(e.to_string()),
            },
            NtkCommand::Export(path) => {
                claim_export_folder(&path, "NTK export").and_then(|()| self.state.export(&path)).map(Some)
            }
            NtkCommand::Resume => {
                self.state.resume();
                Ok(None)
            }
        }
    }
}

impl Lab for NtkLab {
    lab_plumbing!(settings);

    fn key(&self) -> &'static str {
        Self::KEY
    }

    fn title(&self) -> &'static str {
        "NTK — spectra and sparse activation"
    }

    fn description(&self) -> &'static str {
        "Neural tangent kernels of wide ReLU nets with trainable bias: spectra, sparsity and training speed."
    }

    fn poll(&mut self, cx: &mut LabCx<'_>) {
        let notes = self.state.poll(cx.ctx, &self.settings.config(), cx.active, cx.waker);
        cx.notify_all(notes);
    }

    fn sidebar_ui(&mut self, ui: &mut egui::Ui, _cx: &mut LabCx<'_>) {
        let state = self.state.panel_state(&self.settings.config());
        ntk_controls_ui(ui, &mut self.settings, &state, &mut self.commands);
    }

    fn main_ui(&mut self, ui: &mut egui::Ui, _cx: &mut LabCx<'_>) {
        let state = self.state.panel_state(&self.settings.config());
        ntk_main_ui(ui, &mut self.settings, &state, &mut self.commands);
    }

    fn file_picked(&mut self, request: Box<dyn Any + Send>, path: PathBuf, cx: &mut LabCx<'_>) {
        apply_picked(self, request, path, cx, |_, file: NtkFile, path| Some(file.command(path)));
    }

    fn accepts_drop(&self, path: &Path, _active: bool) -> bool {
        path.is_file() && extension_of(path) == "csv"
    }

    fn dropped(&mut self, path: PathBuf, cx: &mut LabCx<'_>) {
        let outcome = self.apply(NtkCommand::LoadCsv(path), cx);
        cx.report(outcome);
    }

    fn drop_hint(&self) -> Option<&'static str> {
        Some("a CSV of points (NTK lab)")
    }

    fn restore_previous_version(&mut self, storage: &dyn eframe::Storage) {
        #[derive(Default, serde::Deserialize)]
        #[serde(default)]
        struct Previous {
            ntk: NtkSettings,
        }
        if let Some(previous) = crate::labs::previous_version::<Previous>(storage) {
            self.settings = previous.ntk;
            self.settings.sanitize();
        }
    }
}
