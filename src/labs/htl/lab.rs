//! The hard-sample lab's commands and its [`Lab`] interface.

use std::any::Any;
use std::path::{Path, PathBuf};

use eframe::egui;

use super::HtlState;
use super::panel::{HtlSettings, Task, htl_controls_ui, htl_main_ui};
use crate::compute::htl::data::{self, AttributeSpec, HtlSource};
use crate::labs::{Lab, LabCommands, LabCx, apply_picked, claim_export_folder};
use crate::ui::{FileDialog, extension_of};

/// What the hard-sample lab's panel asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum HtlCommand {
    /// Open a file dialog; its answer arrives as the matching command.
    Pick(HtlFile),
    /// Use these samples.
    SetSource(HtlSource),
    /// Join this attribute CSV to the samples.
    LoadAttributes(PathBuf),
    ClearAttributes,
    ResetSettings,
    /// Run the cancelled or failed analysis again.
    Resume,
    /// Write the lab's files into this folder.
    Export(PathBuf),
    /// Run the lesion localization study with the lab's settings.
    Localize,
    /// Localize lesions of this folder (images/ and masks/).
    SetLesionFolder(PathBuf),
    UseSyntheticLesions,
}

/// Which file or folder a hard-sample-lab dialog is picking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HtlFile {
    /// A Fashion-MNIST or class-per-folder data set.
    OpenData,
    /// A CSV of per-sample attributes.
    OpenAttributes,
    /// A folder for the lab's files.
    Export,
    /// A folder of lesion images and masks.
    OpenLesions,
}

impl HtlFile {
    fn dialog(self) -> FileDialog {
        match self {
            Self::OpenData => FileDialog::folder().titled("Fashion-MNIST folder, or one sub-folder per class"),
            Self::OpenAttributes => FileDialog::open("CSV", &["csv", "txt"]),
            Self::Export => FileDialog::folder().titled("Folder for the hard-sample files"),
            Self::OpenLesions => FileDialog::folder().titled("Lesion folder with images/ and masks/"),
        }
    }
}

/// The hard-sample lab: what pruned networks forget, and attending to it.
#[derive(Default)]
pub struct HtlLab {
    pub settings: HtlSettings,
    pub state: HtlState,
    commands: Vec<HtlCommand>,
}

impl HtlLab {
    pub const KEY: &'static str = "htl";

    fn command_for(&self, file: HtlFile, path: PathBuf) -> HtlCommand {
        match file {
            HtlFile::OpenData => HtlCommand::SetSource(HtlSource::for_folder(&path, self.settings.folder_side)),
            HtlFile::OpenAttributes => HtlCommand::LoadAttributes(path),
            HtlFile::Export => HtlCommand::Export(path),
            HtlFile::OpenLesions => HtlCommand::SetLesionFolder(path),
        }
    }

    /// Reads `source` once so that a bad folder is reported at once and the current data stay.
    fn set_source(&mut self, source: HtlSource, cx: &mut LabCx<'_>) -> Result<Option<String>, String> {
        let data = data::load(&source, None).map_err(|e| e.to_string())?;
        let settings = &mut self.settings;
        if settings.source == source {
            // The same data again: it may have changed on disk.
            self.state.reload();
        } else {
            // Attributes name the samples of the old data.
            settings.attributes = None;
        }
        if let HtlSource::Folder { side, .. } = &source {
            settings.folder_side = *side;
        }
        if matches!(source, HtlSource::FashionMnist(_)) && settings.train_limit == 0 {
            // 60,000 images per model is minutes on a laptop; the slider goes back to all.
            settings.train_limit = 10_000;
        }
        settings.source = source;
        settings.selected = None;
        cx.show_lab();
        Ok(Some(format!("Hard-sample lab: {}.", data.summary())))
    }

    fn load_attributes(&mut self, path: PathBuf, cx: &mut LabCx<'_>) -> Result<Option<String>, String> {
        self.state.read_attribute_columns(&path)?;
        // Joined once here so that a table that names no sample (or is malformed) is reported at
        // once and the current groups stay.
        let spec = AttributeSpec { path: path.clone(), column: None };
        data::load(&self.settings.config().source, Some(&spec)).map_err(|e| e.to_string())?;
        let same = self.settings.attributes.as_ref().is_some_and(|a| a.path == path);
        if same {
            self.state.reload();
        }
        let column = self.settings.attributes.take().filter(|_| same).and_then(|a| a.column);
        self.settings.attributes = Some(AttributeSpec { path, column });
        self.settings.group_filter = None;
        cx.show_lab();
        Ok(Some("Attributes loaded; the groups follow the chosen column.".into()))
    }
}

impl LabCommands for HtlLab {
    type Command = HtlCommand;

    fn apply(&mut self, command: HtlCommand, cx: &mut LabCx<'_>) -> Result<Option<String>, String> {
        match command {
            HtlCommand::Pick(file) => {
                cx.pick_file(file.dialog(), file);
                Ok(None)
            }
            HtlCommand::SetSource(source) => self.set_source(source, cx),
            HtlCommand::LoadAttributes(path) => self.load_attributes(path, cx),
            HtlCommand::ClearAttributes => {
                self.settings.attributes = None;
                self.settings.group_filter = None;
                Ok(None)
            }
            HtlCommand::ResetSettings => {
                let s = &self.settings;
                let (source, attributes, folder_side) = (s.source.clone(), s.attributes.clone(), s.folder_side);
                let (task, lesion_folder) = (s.task, s.lesion_folder.clone());
                self.settings =
                    HtlSettings { source, attributes, folder_side, task, lesion_folder, ..HtlSettings::default() };
                Ok(None)
            }
            HtlCommand::Resume => {
                self.state.resume();
                Ok(None)
            }
            HtlCommand::Export(path) => claim_export_folder(&path, "hard-sample export")
                .and_then(|()| self.state.export(&path, &self.settings))
                .map(Some),
            HtlCommand::Localize => self.state.start_localize(&self.settings, cx.waker).map(|()| None),
            HtlCommand::SetLesionFolder(path) => {
                self.settings.lesion_folder = Some(path);
                self.settings.task = Task::Localize;
                cx.show_lab();
                Ok(Some("Lesion folder set; ▶ Run localization reads it.".into()))
            }
            HtlCommand::UseSyntheticLesions => {
                self.settings.lesion_folder = None;
                Ok(None)
            }
        }
    }
}

impl Lab for HtlLab {
    lab_plumbing!(settings);

    fn key(&self) -> &'static str {
        Self::KEY
    }

    fn title(&self) -> &'static str {
        "Hard samples — what pruning forgets"
    }

    fn description(&self) -> &'static str {
        "Find the samples pruned networks forget (PIE), see which classes and groups they come from, and attend to them."
    }

    fn poll(&mut self, cx: &mut LabCx<'_>) {
        let notes = self.state.poll(cx.ctx, &self.settings, cx.active, cx.waker);
        cx.notify_all(notes);
    }

    fn sidebar_ui(&mut self, ui: &mut egui::Ui, _cx: &mut LabCx<'_>) {
        let state = self.state.panel_state(&self.settings);
        htl_controls_ui(ui, &mut self.settings, &state, &mut self.commands);
    }

    fn main_ui(&mut self, ui: &mut egui::Ui, _cx: &mut LabCx<'_>) {
        let state = self.state.panel_state(&self.settings);
        htl_main_ui(ui, &mut self.settings, &state, &mut self.commands);
    }

    fn file_picked(&mut self, request: Box<dyn Any + Send>, path: PathBuf, cx: &mut LabCx<'_>) {
        apply_picked(self, request, path, cx, |lab, file: HtlFile, path| Some(lab.command_for(file, path)));
    }

    /// On screen, the lab takes folders (samples, or lesions when they hold `masks/`) and
    /// attribute CSVs.
    fn accepts_drop(&self, path: &Path, active: bool) -> bool {
        active && (path.is_dir() || extension_of(path) == "csv")
    }

    fn dropped(&mut self, path: PathBuf, cx: &mut LabCx<'_>) {
        let file = if !path.is_dir() {
            HtlFile::OpenAttributes
        } else if path.join("masks").is_dir() {
            HtlFile::OpenLesions
        } else {
            HtlFile::OpenData
        };
        let outcome = self.apply(self.command_for(file, path), cx);
        cx.report(outcome);
    }

    fn drop_hint(&self) -> Option<&'static str> {
        Some("a CSV of hard-sample attributes")
    }

    fn restore_previous_version(&mut self, storage: &dyn eframe::Storage) {
        #[derive(Default, serde::Deserialize)]
        #[serde(default)]
        struct Previous {
            htl: HtlSettings,
        }
        if let Some(previous) = crate::labs::previous_version::<Previous>(storage) {
            self.settings = previous.htl;
            self.settings.sanitize();
        }
    }
}
