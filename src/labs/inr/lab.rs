//! The INR lab's commands and its [`Lab`] interface.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;
use serde::{Deserialize, Serialize};

use super::panel::{InrSettings, inr_controls_ui, inr_main_ui};
use super::{ImageSource, InrState};
use crate::labs::{CurrentInr, Lab, LabCommands, LabCx, Shared, apply_picked, from_json, previous_version, to_json};
use crate::ui::{BuiltinImage, FileDialog, extension_of};

/// What the INR lab's panel asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum InrCommand {
    /// Open a file dialog; its answer arrives as the matching command.
    Pick(InrFile),
    LoadImage(PathBuf),
    UseBuiltinImage(BuiltinImage),
    LoadInr(PathBuf),
    SaveInr(PathBuf),
    ExportPng(PathBuf),
    /// Start fitting from scratch.
    Train,
    /// Continue fitting the current INR with the current settings.
    ContinueTraining,
    /// Forget the loaded INR's weights and training history.
    ClearInr,
    ResetSettings,
}

/// Which file an INR-lab dialog is picking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InrFile {
    OpenImage,
    OpenInr,
    SaveInr,
    ExportPng,
}

impl InrFile {
    fn dialog(self) -> FileDialog {
        match self {
            Self::OpenImage => FileDialog::image(),
            Self::OpenInr => FileDialog::open("INR", &["safetensors"]),
            Self::SaveInr => FileDialog::save("INR", &["safetensors"], "inr.safetensors"),
            Self::ExportPng => FileDialog::save("PNG", &["png"], "inr.png"),
        }
    }

    fn command(self, path: PathBuf) -> InrCommand {
        match self {
            Self::OpenImage => InrCommand::LoadImage(path),
            Self::OpenInr => InrCommand::LoadInr(path),
            Self::SaveInr => InrCommand::SaveInr(path),
            Self::ExportPng => InrCommand::ExportPng(path),
        }
    }
}

/// What the INR lab keeps between runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Saved {
    settings: InrSettings,
    image: ImageSource,
}

/// The INR lab: fit a SIREN to an image.
#[derive(Default)]
pub struct InrLab {
    pub settings: InrSettings,
    /// Where the current image came from (reopened on the next start).
    pub image_source: ImageSource,
    pub state: InrState,
    commands: Vec<InrCommand>,
}

impl InrLab {
    pub const KEY: &'static str = "inr";

    fn load_image(&mut self, cx: &mut LabCx<'_>, source: ImageSource) {
        match self.state.load_image(cx.ctx, source.clone(), &self.settings) {
            Ok(notes) => {
                self.image_source = source;
                cx.notify_all(notes);
            }
            Err(message) => cx.notify(crate::ui::widgets::Level::Error, message),
        }
    }
}

impl LabCommands for InrLab {
    type Command = InrCommand;

    fn apply(&mut self, command: InrCommand, cx: &mut LabCx<'_>) -> Result<Option<String>, String> {
        let waker = Arc::clone(cx.waker);
        match command {
            InrCommand::Pick(file) => {
                cx.pick_file(file.dialog(), file);
                Ok(None)
            }
            InrCommand::LoadImage(path) => {
                self.load_image(cx, ImageSource::File(path));
                Ok(None)
            }
            InrCommand::UseBuiltinImage(builtin) => {
                self.load_image(cx, ImageSource::Builtin(builtin));
                Ok(None)
            }
            InrCommand::LoadInr(path) => self.state.load_inr(&path, &mut self.settings).map(Some),
            InrCommand::SaveInr(path) => self.state.save_inr(&path).map(Some),
            InrCommand::ExportPng(path) => self.state.start_export(path, &self.settings, waker).map(|()| None),
            InrCommand::Train => self.state.start_fit(&self.settings, false, waker).map(|()| None),
            InrCommand::ContinueTraining => self.state.start_fit(&self.settings, true, waker).map(|()| None),
            InrCommand::ClearInr => {
                self.state.clear_inr();
                Ok(None)
            }
            InrCommand::ResetSettings => {
                let defaults = InrSettings::default();
                self.settings.fit = defaults.fit;
                self.settings.training_size = defaults.training_size;
                Ok(Some("Model and training settings reset to their defaults.".into()))
            }
        }
    }
}

impl Lab for InrLab {
    lab_plumbing!();

    fn key(&self) -> &'static str {
        Self::KEY
    }

    fn title(&self) -> &'static str {
        "INR — fit an image"
    }

    fn description(&self) -> &'static str {
        "Fit a SIREN (sine-activated MLP) to an image and explore it as a continuous function."
    }

    fn open(&mut self, cx: &mut LabCx<'_>, autostart: bool) {
        let source = self.image_source.clone();
        self.load_image(cx, source.clone());
        if self.state.image().is_none() && source != ImageSource::default() {
            self.load_image(cx, ImageSource::default());
        }
        if autostart {
            let outcome = self.apply(InrCommand::Train, cx);
            cx.report(outcome);
        }
    }

    fn poll(&mut self, cx: &mut LabCx<'_>) {
        let notes = self.state.poll();
        cx.notify_all(notes);
        self.state.sync_training_size(cx.ctx, &self.settings);
        if std::mem::take(&mut cx.shared.fit_current_inr) && !self.state.is_training() {
            let outcome = self.apply(InrCommand::Train, cx);
            cx.report(outcome);
        }
    }

    fn publish(&self, shared: &mut Shared) {
        shared.current_inr = CurrentInr {
            image: self.state.image().cloned(),
            name: self.image_source.display_name(),
            network: self.state.network_of_current_image(),
            network_step: self.state.network_step(),
            fitting: self.state.is_training(),
        };
    }

    fn sidebar_ui(&mut self, ui: &mut egui::Ui, cx: &mut LabCx<'_>) {
        let state = self.state.panel_state(cx.gpu);
        inr_controls_ui(ui, &mut self.settings, &state, &mut self.commands);
        ui.separator();
        ui.checkbox(&mut cx.shared.train_on_start, "Train on start")
            .on_hover_text("Start fitting the last image as soon as the app opens");
    }

    fn main_ui(&mut self, ui: &mut egui::Ui, cx: &mut LabCx<'_>) {
        let mut view = std::mem::take(&mut self.state.view);
        let state = self.state.panel_state(cx.gpu);
        inr_main_ui(ui, &mut self.settings, &mut view, &state, &mut self.commands);
        drop(state);
        self.state.view = view;
    }

    fn file_picked(&mut self, request: Box<dyn Any + Send>, path: PathBuf, cx: &mut LabCx<'_>) {
        apply_picked(self, request, path, cx, |_, file: InrFile, path| Some(file.command(path)));
    }

    fn accepts_drop(&self, path: &Path, _active: bool) -> bool {
        path.is_file() && matches!(extension_of(path).as_str(), "png" | "jpg" | "jpeg" | "safetensors")
    }

    fn dropped(&mut self, path: PathBuf, cx: &mut LabCx<'_>) {
        let command =
            if extension_of(&path) == "safetensors" { InrCommand::LoadInr(path) } else { InrCommand::LoadImage(path) };
        let outcome = self.apply(command, cx);
        cx.report(outcome);
    }

    fn drop_hint(&self) -> Option<&'static str> {
        Some("a PNG/JPEG image or an INR (.safetensors)")
    }

    fn persist(&self) -> Option<String> {
        to_json(&Saved { settings: self.settings.clone(), image: self.image_source.clone() })
    }

    fn restore(&mut self, json: &str) {
        let Saved { mut settings, image } = from_json(json);
        settings.sanitize();
        (self.settings, self.image_source) = (settings, image);
    }

    fn restore_previous_version(&mut self, storage: &dyn eframe::Storage) {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Previous {
            inr: InrSettings,
            inr_image: ImageSource,
        }
        if let Some(Previous { mut inr, inr_image }) = previous_version(storage) {
            inr.sanitize();
            (self.settings, self.image_source) = (inr, inr_image);
        }
    }
}
