//! The lift lab's commands and its [`Lab`] interface.

use std::any::Any;
use std::path::{Path, PathBuf};

use eframe::egui;

use super::LiftState;
use super::panel::{DepthSetting, LiftSettings, lift_controls_ui, lift_main_ui};
use crate::labs::{Lab, LabCommands, LabCx, Shared, SharedField, apply_picked, claim_export_folder};
use crate::ui::{FileDialog, IMAGE_EXTENSIONS, extension_of};

/// What the lift lab's panel asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum LiftCommand {
    /// Open a file dialog; its answer arrives as the matching command.
    Pick(LiftFile),
    /// Lift this photo.
    LoadImage(PathBuf),
    UseExample,
    /// Use this depth file as the rough depth.
    LoadDepth(PathBuf),
    LoadMask(PathBuf),
    ClearMask,
    Start,
    ResetSettings,
    /// Write the lift's files into this folder.
    Export(PathBuf),
}

/// Which file or folder a lift-lab dialog is picking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiftFile {
    /// The photo to lift.
    OpenImage,
    /// A rough depth file (16-bit PNG or .npy).
    OpenDepth,
    OpenMask,
    /// A folder for the lift's files.
    Export,
}

impl LiftFile {
    fn dialog(self) -> FileDialog {
        match self {
            Self::OpenImage => FileDialog::image().titled("Photo to lift"),
            Self::OpenDepth => FileDialog::open("Depth", &["png", "npy"]).titled("Rough depth (16-bit PNG or .npy)"),
            Self::OpenMask => FileDialog::image().titled("Mask (white = object)"),
            Self::Export => FileDialog::folder().titled("Folder for the lift's files"),
        }
    }

    fn command(self, path: PathBuf) -> LiftCommand {
        match self {
            Self::OpenImage => LiftCommand::LoadImage(path),
            Self::OpenDepth => LiftCommand::LoadDepth(path),
            Self::OpenMask => LiftCommand::LoadMask(path),
            Self::Export => LiftCommand::Export(path),
        }
    }
}

/// The lift lab: one photo to a radiance field that looks right from every side.
#[derive(Default)]
pub struct LiftLab {
    pub settings: LiftSettings,
    pub state: LiftState,
    commands: Vec<LiftCommand>,
}

impl LiftLab {
    pub const KEY: &'static str = "lift";
}

impl LabCommands for LiftLab {
    type Command = LiftCommand;

    fn apply(&mut self, command: LiftCommand, cx: &mut LabCx<'_>) -> Result<Option<String>, String> {
        match command {
            LiftCommand::Pick(file) => {
                cx.pick_file(file.dialog(), file);
                Ok(None)
            }
            LiftCommand::LoadImage(path) => LiftState::check_photo(&path, &self.settings).map(|()| {
                self.state.forget_files();
                self.settings.image = Some(path.clone());
                // A mask or depth file belongs to the previous photo.
                self.settings.mask_file = None;
                self.settings.depth = DepthSetting::Inflate;
                self.settings.disparity = false;
                cx.show_lab();
                Some(format!("Loaded {}; press ▶ Lift.", path.display()))
            }),
            LiftCommand::UseExample => {
                self.state.forget_files();
                self.settings.image = None;
                self.settings.mask_file = None;
                if matches!(self.settings.depth, DepthSetting::File(_)) {
                    self.settings.depth = DepthSetting::Inflate;
                }
                Ok(None)
            }
            LiftCommand::LoadDepth(path) => {
                crate::compute::lift::input::load_depth_file(&path, false).map_err(|e| e.to_string()).map(|map| {
                    self.state.forget_files();
                    self.settings.depth = DepthSetting::File(path.clone());
                    cx.show_lab();
                    Some(format!("Rough depth from {} ({}×{}).", path.display(), map.width, map.height))
                })
            }
            LiftCommand::LoadMask(path) => {
                crate::compute::image_io::load_image(&path).map_err(|e| e.to_string()).map(|_| {
                    self.state.forget_files();
                    self.settings.mask_file = Some(path.clone());
                    Some(format!("Mask from {}.", path.display()))
                })
            }
            LiftCommand::ClearMask => {
                self.settings.mask_file = None;
                Ok(None)
            }
            LiftCommand::Start => self.state.start(&self.settings, cx.waker).map(|()| None),
            LiftCommand::ResetSettings => {
                let defaults = LiftSettings::default();
                self.settings.lift = defaults.lift;
                self.settings.use_ranking = defaults.use_ranking;
                self.settings.resolution = defaults.resolution;
                self.settings.mask = defaults.mask;
                Ok(Some("Lift settings reset to their defaults (the photo and depth file stay).".into()))
            }
            LiftCommand::Export(path) => claim_export_folder(&path, "lift export")
                .and_then(|()| self.state.start_export(path, self.settings.export_size, cx.waker))
                .map(|()| None),
        }
    }
}

impl Lab for LiftLab {
    lab_plumbing!(settings);

    fn key(&self) -> &'static str {
        Self::KEY
    }

    fn title(&self) -> &'static str {
        "NeuralLift-360 — one photo to 360°"
    }

    fn description(&self) -> &'static str {
        "Lift one photo to a radiance field that looks right from every side, and orbit it while it forms."
    }

    fn poll(&mut self, cx: &mut LabCx<'_>) {
        let notes = self.state.poll(cx.ctx, &self.settings, cx.waker);
        cx.notify_all(notes);
    }

    fn publish(&self, shared: &mut Shared) {
        shared.lift_field = self.state.viewer.snapshot.as_ref().map(|snapshot| SharedField {
            snapshot: std::sync::Arc::clone(snapshot),
            orbit: self.state.viewer.orbit_home,
            dataset: None,
            training: self.state.is_lifting(),
            name: format!("lift result, step {}", snapshot.step),
        });
    }

    fn sidebar_ui(&mut self, ui: &mut egui::Ui, _cx: &mut LabCx<'_>) {
        let state = self.state.panel_state();
        lift_controls_ui(ui, &mut self.settings, &state, &mut self.commands);
    }

    fn main_ui(&mut self, ui: &mut egui::Ui, cx: &mut LabCx<'_>) {
        let mut view = std::mem::take(&mut self.state.viewer.view);
        let viewer = self.state.viewer.panel_state(cx.gpu, self.state.is_lifting());
        let state = self.state.panel_state();
        lift_main_ui(ui, &mut self.settings, &mut view, &viewer, &state, &mut self.commands);
        drop((state, viewer));
        self.state.viewer.view = view;
        self.state.viewer.forward_refine(cx.waker);
    }

    fn file_picked(&mut self, request: Box<dyn Any + Send>, path: PathBuf, cx: &mut LabCx<'_>) {
        apply_picked(self, request, path, cx, |_, file: LiftFile, path| Some(file.command(path)));
    }

    /// Depth files (.npy) whichever lab is on screen; photos when the lab is.
    fn accepts_drop(&self, path: &Path, active: bool) -> bool {
        let extension = extension_of(path);
        path.is_file() && (extension == "npy" || (active && IMAGE_EXTENSIONS.contains(&extension.as_str())))
    }

    fn dropped(&mut self, path: PathBuf, cx: &mut LabCx<'_>) {
        let command =
            if extension_of(&path) == "npy" { LiftCommand::LoadDepth(path) } else { LiftCommand::LoadImage(path) };
        let outcome = self.apply(command, cx);
        cx.report(outcome);
    }

    fn drop_hint(&self) -> Option<&'static str> {
        Some("a depth map (.npy) for the lift")
    }

    fn restore_previous_version(&mut self, storage: &dyn eframe::Storage) {
        #[derive(Default, serde::Deserialize)]
        #[serde(default)]
        struct Previous {
            lift: LiftSettings,
        }
        if let Some(previous) = crate::labs::previous_version::<Previous>(storage) {
            self.settings = previous.lift;
            self.settings.sanitize();
        }
    }
}
