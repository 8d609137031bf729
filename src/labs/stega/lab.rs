//! The StegaNeRF lab's commands and its [`Lab`] interface.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;

use super::panel::{SecretChoice, StegaPanelState, StegaSettings, stega_controls_ui, stega_main_ui};
use super::{Stage1, StegaState};
use crate::compute::nerf::camera::Camera;
use crate::compute::nerf::checkpoint::{CONFIG_FILE, WEIGHTS_FILE};
use crate::compute::stega::attacks::Attack;
use crate::labs::{Lab, LabCommands, LabCx, apply_picked};
use crate::ui::{FileDialog, IMAGE_EXTENSIONS, extension_of};

/// What the StegaNeRF lab's panel asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum StegaCommand {
    /// Open a file dialog; its answer arrives as the matching command.
    Pick(StegaFile),
    /// Mark the NeRF lab's field, or the lift lab's result.
    UseNerfField,
    UseLiftField,
    LoadCheckpoint(PathBuf),
    /// Use this image as the secret.
    LoadSecret(PathBuf),
    Embed,
    /// Decode the view at rest (rendered with `camera`) after `attack`.
    RecoverView { camera: Camera, camera_key: u64, attack: Option<Attack> },
    /// Decode an image file.
    RecoverImage(PathBuf),
    LoadDecoder(PathBuf),
    Sweep,
    Export(PathBuf),
}

/// Which file or folder a StegaNeRF-lab dialog is picking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StegaFile {
    OpenCheckpoint,
    OpenSecret,
    RecoverImage,
    OpenDecoder,
    Export,
}

impl StegaFile {
    fn dialog(self) -> FileDialog {
        match self {
            Self::OpenCheckpoint => FileDialog::folder().titled("NeRF checkpoint folder to mark"),
            Self::OpenSecret => FileDialog::image().titled("Image to hide"),
            Self::RecoverImage => FileDialog::image().titled("Image to read the secret from"),
            Self::OpenDecoder => FileDialog::open("Decoder", &["safetensors"]).titled("decoder.safetensors"),
            Self::Export => FileDialog::folder().titled("Folder for the marked field"),
        }
    }

    fn command(self, path: PathBuf) -> StegaCommand {
        match self {
            Self::OpenCheckpoint => StegaCommand::LoadCheckpoint(path),
            Self::OpenSecret => StegaCommand::LoadSecret(path),
            Self::RecoverImage => StegaCommand::RecoverImage(path),
            Self::OpenDecoder => StegaCommand::LoadDecoder(path),
            Self::Export => StegaCommand::Export(path),
        }
    }
}

/// The StegaNeRF lab: hide a secret in a trained field and recover it from any view.
#[derive(Default)]
pub struct StegaLab {
    pub settings: StegaSettings,
    pub state: StegaState,
    commands: Vec<StegaCommand>,
}

impl StegaLab {
    pub const KEY: &'static str = "stega";

    /// Takes the NeRF lab's field when there is none yet (the lab opens ready to embed).
    fn adopt_default_field(&mut self, cx: &mut LabCx<'_>) {
        if self.state.stage1.is_none()
            && let Some(field) = cx.shared.nerf_field.as_ref().filter(|f| !f.training)
        {
            let stage1 = Stage1::from_shared(field, "NeRF lab");
            let outcome = self.state.set_stage1(stage1, cx.waker);
            cx.report(outcome.map(|_| None));
        }
    }
}

impl LabCommands for StegaLab {
    type Command = StegaCommand;

    fn apply(&mut self, command: StegaCommand, cx: &mut LabCx<'_>) -> Result<Option<String>, String> {
        let waker = Arc::clone(cx.waker);
        match command {
            StegaCommand::Pick(file) => {
                cx.pick_file(file.dialog(), file);
                Ok(None)
            }
            StegaCommand::UseNerfField => {
                let field = cx.shared.nerf_field.as_ref().ok_or("the NeRF lab has no field yet: train or load one there")?;
                let mut outcome = self.state.set_stage1(Stage1::from_shared(field, "NeRF lab"), &waker);
                if field.training
                    && let Ok(Some(message)) = &mut outcome
                {
                    message.push_str(" (a snapshot: the NeRF lab is still training)");
                }
                outcome
            }
            StegaCommand::UseLiftField => {
                let field = cx.shared.lift_field.as_ref().ok_or("the lift lab has no result yet")?;
                self.state.set_stage1(Stage1::from_shared(field, "lift lab"), &waker)
            }
            StegaCommand::LoadCheckpoint(dir) => {
                let stage1 = Stage1::from_checkpoint(&dir)?;
                self.state.set_stage1(stage1, &waker)
            }
            StegaCommand::LoadSecret(path) => {
                crate::compute::image_io::load_image(&path).map_err(|e| e.to_string())?;
                self.settings.secret = SecretChoice::Image;
                self.settings.secret_image = Some(path.clone());
                Ok(Some(format!("Secret: {}", path.display())))
            }
            StegaCommand::Embed => {
                self.state.refresh_secret(&self.settings, cx.ctx);
                self.state.start_embed(&self.settings, waker)
            }
            StegaCommand::RecoverView { camera, camera_key, attack } => {
                self.state.request_view(camera, camera_key, attack, &waker);
                Ok(None)
            }
            StegaCommand::RecoverImage(path) => self.state.recover_file(&path, cx.ctx),
            StegaCommand::LoadDecoder(path) => self.state.load_decoder(&path),
            StegaCommand::Sweep => self.state.start_sweep(waker),
            StegaCommand::Export(dir) => self.state.start_export(dir, waker),
        }
    }
}

impl Lab for StegaLab {
    lab_plumbing!(settings);

    fn key(&self) -> &'static str {
        Self::KEY
    }

    fn title(&self) -> &'static str {
        "StegaNeRF — secrets in fields"
    }

    fn description(&self) -> &'static str {
        "Hide an image or a message in a trained radiance field so every view carries it, and recover it from any view."
    }

    fn shown(&mut self, cx: &mut LabCx<'_>) {
        self.adopt_default_field(cx);
    }

    fn poll(&mut self, cx: &mut LabCx<'_>) {
        if cx.active {
            self.adopt_default_field(cx);
        }
        self.state.refresh_secret(&self.settings, cx.ctx);
        let notes = self.state.poll(cx.ctx, cx.waker);
        cx.notify_all(notes);
    }

    fn sidebar_ui(&mut self, ui: &mut egui::Ui, cx: &mut LabCx<'_>) {
        let panel = StegaPanelState {
            state: &self.state,
            nerf_field: cx.shared.nerf_field.as_ref().map(|f| f.name.clone()),
            lift_field: cx.shared.lift_field.as_ref().map(|f| f.name.clone()),
        };
        stega_controls_ui(ui, &mut self.settings, &panel, &mut self.commands);
    }

    fn main_ui(&mut self, ui: &mut egui::Ui, cx: &mut LabCx<'_>) {
        let mut view = std::mem::take(&mut self.state.viewer.view);
        let viewer = self.state.viewer.panel_state(cx.gpu, self.state.is_embedding());
        let panel = StegaPanelState { state: &self.state, nerf_field: None, lift_field: None };
        stega_main_ui(ui, &mut self.settings, &mut view, &viewer, &panel, &mut self.commands);
        drop((panel, viewer));
        self.state.viewer.view = view;
        self.state.viewer.forward_refine(cx.waker);
    }

    fn file_picked(&mut self, request: Box<dyn Any + Send>, path: PathBuf, cx: &mut LabCx<'_>) {
        apply_picked(self, request, path, cx, |_, file: StegaFile, path| Some(file.command(path)));
    }

    fn accepts_drop(&self, path: &Path, active: bool) -> bool {
        // Images and decoders only while on screen (the INR lab takes images otherwise).
        active
            && (IMAGE_EXTENSIONS.contains(&extension_of(path).as_str())
                || extension_of(path) == "safetensors"
                || (path.join(CONFIG_FILE).is_file() && path.join(WEIGHTS_FILE).is_file()))
    }

    fn dropped(&mut self, path: PathBuf, cx: &mut LabCx<'_>) {
        let command = if path.is_dir() {
            StegaCommand::LoadCheckpoint(path)
        } else if extension_of(&path) == "safetensors" {
            StegaCommand::LoadDecoder(path)
        } else if self.state.decoder.is_some() {
            StegaCommand::RecoverImage(path)
        } else {
            StegaCommand::LoadSecret(path)
        };
        let outcome = self.apply(command, cx);
        cx.report(outcome);
    }

    fn drop_hint(&self) -> Option<&'static str> {
        Some("a checkpoint folder to mark, a secret image (or, after embedding, an image to read), or a decoder")
    }
}
