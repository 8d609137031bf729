//! The GNN lab's commands and its [`Lab`] interface.

use std::any::Any;
use std::path::{Path, PathBuf};

use eframe::egui;

use super::GnnState;
use super::panel::{DataKind, GnnSettings, gnn_controls_ui, gnn_main_ui};
use crate::compute::gnn::live::DataSource;
use crate::compute::gnn::{plain, planetoid};
use crate::labs::{Lab, LabCommands, LabCx, apply_picked, claim_export_folder};
use crate::ui::FileDialog;

/// What the GNN lab's panel asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum GnnCommand {
    /// Open a file dialog; its answer arrives as the matching command.
    Pick(GnnFile),
    ResetSettings,
    /// Finish the cancelled study.
    Resume,
    /// Use the graph in this folder.
    LoadFolder(PathBuf),
    /// Write every table and chart into this folder.
    Export(PathBuf),
}

/// Which folder a GNN-lab dialog is picking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GnnFile {
    /// A Planetoid raw folder or a plain graph folder.
    OpenFolder,
    /// A folder for every table and chart.
    Export,
}

impl GnnFile {
    fn dialog(self) -> FileDialog {
        match self {
            Self::OpenFolder => FileDialog::folder().titled("A graph folder (Planetoid raw files, or edges.csv and labels.csv)"),
            Self::Export => FileDialog::folder().titled("Folder for the GNN tables and charts"),
        }
    }

    fn command(self, path: PathBuf) -> GnnCommand {
        match self {
            Self::OpenFolder => GnnCommand::LoadFolder(path),
            Self::Export => GnnCommand::Export(path),
        }
    }
}

/// The GNN lab: untrained graph-network tickets.
#[derive(Default)]
pub struct GnnLab {
    pub settings: GnnSettings,
    pub state: GnnState,
    commands: Vec<GnnCommand>,
}

impl GnnLab {
    pub const KEY: &'static str = "gnn";
}

impl LabCommands for GnnLab {
    type Command = GnnCommand;

    fn apply(&mut self, command: GnnCommand, cx: &mut LabCx<'_>) -> Result<Option<String>, String> {
        match command {
            GnnCommand::Pick(file) => {
                cx.pick_file(file.dialog(), file);
                Ok(None)
            }
            GnnCommand::ResetSettings => {
                let folder = self.settings.folder.take();
                self.settings = GnnSettings { folder, ..GnnSettings::default() };
                Ok(None)
            }
            // Read once here so that a bad folder is reported at once and the current graph stays.
            GnnCommand::LoadFolder(path) => match DataSource::Folder(path.clone()).load() {
                Ok(graph) => {
                    if self.settings.source == DataKind::Folder && self.settings.folder.as_ref() == Some(&path) {
                        // The same folder again: its files may have changed.
                        self.state.reload();
                    }
                    self.settings.folder = Some(path);
                    self.settings.source = DataKind::Folder;
                    cx.show_lab();
                    Ok(Some(format!(
                        "Loaded {}: {} nodes, {} edges, {} classes.",
                        graph.name,
                        graph.num_nodes,
                        graph.edges.len() / 2,
                        graph.num_classes
                    )))
                }
                Err(e) => Err(e),
            },
            GnnCommand::Export(path) => {
                claim_export_folder(&path, "GNN export").and_then(|()| self.state.export(&path)).map(Some)
            }
            GnnCommand::Resume => {
                self.state.resume();
                Ok(None)
            }
        }
    }
}

impl Lab for GnnLab {
    lab_plumbing!(settings);

    fn key(&self) -> &'static str {
        Self::KEY
    }

    fn title(&self) -> &'static str {
        "GNN tickets — untrained subnetworks"
    }

    fn description(&self) -> &'static str {
        "Sparse subnetworks of random, never-trained GCN, GIN and GAT that match trained ones on Cora; deep GNNs and over-smoothing."
    }

    fn poll(&mut self, cx: &mut LabCx<'_>) {
        let notes = self.state.poll(cx.ctx, &self.settings.config(), self.settings.mask_layer, cx.active, cx.waker);
        cx.notify_all(notes);
    }

    fn sidebar_ui(&mut self, ui: &mut egui::Ui, _cx: &mut LabCx<'_>) {
        let state = self.state.panel_state(&self.settings.config());
        gnn_controls_ui(ui, &mut self.settings, &state, &mut self.commands);
    }

    fn main_ui(&mut self, ui: &mut egui::Ui, _cx: &mut LabCx<'_>) {
        let state = self.state.panel_state(&self.settings.config());
        gnn_main_ui(ui, &mut self.settings, &state, &mut self.commands);
    }

    fn file_picked(&mut self, request: Box<dyn Any + Send>, path: PathBuf, cx: &mut LabCx<'_>) {
        apply_picked(self, request, path, cx, |_, file: GnnFile, path| Some(file.command(path)));
    }

    fn accepts_drop(&self, path: &Path, _active: bool) -> bool {
        path.is_dir() && (plain::is_plain(path) || planetoid::is_planetoid(path))
    }

    fn dropped(&mut self, path: PathBuf, cx: &mut LabCx<'_>) {
        let outcome = self.apply(GnnCommand::LoadFolder(path), cx);
        cx.report(outcome);
    }

    fn drop_hint(&self) -> Option<&'static str> {
        Some("a graph folder (GNN lab)")
    }
}
