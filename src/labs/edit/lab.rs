//! The INR-edit lab's commands and its [`Lab`] interface.

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use eframe::egui;

use super::panel::{EditPair, EditSettings, edit_controls_ui, edit_main_ui};
use super::{EditDevice, EditState};
use crate::labs::{Lab, LabCommands, LabCx, apply_picked};
use crate::ui::FileDialog;

/// What the edit lab's panel asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum EditCommand {
    /// Open a file dialog; its answer arrives as the matching command.
    Pick(EditFile),
    /// Train an operator for the lab's settings.
    Train,
    ResetSettings,
    AddTrainingImage(PathBuf),
    /// The input of a custom pair was picked: ask for its target.
    PickPairTarget(PathBuf),
    /// Add a custom training pair (input, target).
    AddPair(PathBuf, PathBuf),
    LoadOperator(PathBuf),
    SaveOperator(PathBuf),
    /// Edit this INR file.
    LoadSubject(PathBuf),
    /// Edit the INR lab's current INR.
    UseLabInr,
    Export(PathBuf),
    /// Run INSP-ConvNet against the pixel CNN on the built-in digits.
    Classify,
}

/// Which file an edit-lab dialog is picking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditFile {
    AddTrainingImage,
    /// The input image of a custom training pair (its target is asked for next).
    AddPairInput,
    AddPairTarget,
    OpenOperator,
    SaveOperator,
    /// An INR to edit.
    OpenSubject,
    Export,
}

impl EditFile {
    fn dialog(self) -> FileDialog {
        match self {
            Self::AddTrainingImage => FileDialog::image(),
            Self::AddPairInput => FileDialog::image().titled("Training pair: the input image"),
            Self::AddPairTarget => FileDialog::image().titled("Training pair: the target image"),
            Self::OpenOperator | Self::OpenSubject => FileDialog::open("safetensors", &["safetensors"]),
            Self::SaveOperator => FileDialog::save("Operator", &["safetensors"], "operator.safetensors"),
            Self::Export => FileDialog::save("PNG", &["png"], "edit.png"),
        }
    }
}

/// The INR-edit lab: process INRs through operators that read their derivatives.
#[derive(Default)]
pub struct EditLab {
    pub settings: EditSettings,
    pub state: EditState,
    /// The input image of a custom training pair whose target is being picked.
    pair_input: Option<PathBuf>,
    /// Train the operator as soon as the INR lab's fit ends.
    train_after_fit: bool,
    commands: Vec<EditCommand>,
}

impl EditLab {
    pub const KEY: &'static str = "edit";

    fn command_for(&mut self, file: EditFile, path: PathBuf) -> Option<EditCommand> {
        Some(match file {
            EditFile::AddTrainingImage => EditCommand::AddTrainingImage(path),
            EditFile::AddPairInput => EditCommand::PickPairTarget(path),
            EditFile::AddPairTarget => EditCommand::AddPair(self.pair_input.take()?, path),
            EditFile::OpenOperator => EditCommand::LoadOperator(path),
            EditFile::SaveOperator => EditCommand::SaveOperator(path),
            EditFile::OpenSubject => EditCommand::LoadSubject(path),
            EditFile::Export => EditCommand::Export(path),
        })
    }
}

impl LabCommands for EditLab {
    type Command = EditCommand;

    fn apply(&mut self, command: EditCommand, cx: &mut LabCx<'_>) -> Result<Option<String>, String> {
        let waker = Arc::clone(cx.waker);
        match command {
            EditCommand::Pick(file) => {
                cx.pick_file(file.dialog(), file);
                Ok(None)
            }
            EditCommand::Train => {
                let inr = &cx.shared.current_inr;
                if inr.fitting && inr.network.is_some() {
                    cx.notify(
                        crate::ui::widgets::Level::Info,
                        format!("Training on the INR lab's snapshot at step {} (its fit is still running).", inr.network_step),
                    );
                }
                let inr = &cx.shared.current_inr;
                let (image, name, network) = (inr.image.clone(), inr.name.clone(), inr.network.clone());
                self.state.start_training(&self.settings, image, &name, network, waker).map(|()| None)
            }
            EditCommand::ResetSettings => {
                let training_images = std::mem::take(&mut self.settings.training_images);
                let pairs = std::mem::take(&mut self.settings.pairs);
                self.settings = EditSettings { training_images, pairs, ..EditSettings::default() };
                Ok(Some("Edit settings reset to their defaults (training images and pairs kept).".into()))
            }
            EditCommand::PickPairTarget(input) => match crate::compute::image_io::load_image(&input) {
                Ok(_) => {
                    self.pair_input = Some(input);
                    cx.pick_file(EditFile::AddPairTarget.dialog(), EditFile::AddPairTarget);
                    Ok(None)
                }
                Err(e) => Err(e.to_string()),
            },
            EditCommand::AddPair(input, target) => {
                let pair = EditPair { input, target };
                if self.settings.pairs.contains(&pair) {
                    return Ok(Some("That pair is already a training example.".into()));
                }
                crate::compute::inr::insp::load_pair(&pair.input, &pair.target, 0).map_err(|e| e.to_string())?;
                let message = format!("Added the pair {} → {}.", pair.input.display(), pair.target.display());
                self.settings.pairs.push(pair);
                Ok(Some(message))
            }
            EditCommand::AddTrainingImage(path) => match crate::compute::image_io::load_image(&path) {
                Ok(_) if self.settings.training_images.contains(&path) => {
                    Ok(Some(format!("{} is already a training image.", path.display())))
                }
                Ok(_) => {
                    self.settings.training_images.push(path.clone());
                    Ok(Some(format!("Added {} as a training image.", path.display())))
                }
                Err(e) => Err(e.to_string()),
            },
            EditCommand::LoadOperator(path) => self.state.load_operator(&path).map(|(message, task)| {
                self.settings.task = task;
                Some(message)
            }),
            EditCommand::SaveOperator(path) => self.state.save_operator(&path).map(Some),
            EditCommand::LoadSubject(path) => self.state.load_subject(&path, self.settings.task).map(Some),
            EditCommand::UseLabInr => {
                let inr = &cx.shared.current_inr;
                self.state.use_lab_inr(inr.network.clone(), inr.image.clone(), &inr.name).map(Some)
            }
            EditCommand::Classify => self.state.start_classification(&self.settings.classify, waker).map(|()| None),
            EditCommand::Export(path) => self.state.start_export(path, &self.settings, waker).map(|()| None),
        }
    }
}

impl Lab for EditLab {
    lab_plumbing!(settings);

    fn key(&self) -> &'static str {
        Self::KEY
    }

    fn title(&self) -> &'static str {
        "INR edit — process INRs"
    }

    fn description(&self) -> &'static str {
        "Blur, denoise, deblur or inpaint an INR without decoding it: an operator reads its derivatives."
    }

    /// With train-on-start, the INR lab fits its image: the edit lab edits that INR.
    fn open(&mut self, cx: &mut LabCx<'_>, autostart: bool) {
        if autostart {
            cx.shared.fit_current_inr = true;
        }
    }

    fn gpu_ready(&mut self, render_state: &eframe::egui_wgpu::RenderState) {
        use eframe::egui_wgpu::wgpu;
        let info = render_state.adapter.get_info();
        // The lab's GPU work runs in jobs off the UI thread: on OpenGL it needs a context of its
        // own (see `render::background_device`); elsewhere it shares the UI's device.
        let device_and_queue = if info.backend == wgpu::Backend::Gl {
            crate::render::background_device(&render_state.adapter)
                .map_err(|e| eprintln!("warning: {e}; the edit lab renders on the CPU"))
                .ok()
        } else {
            Some((render_state.device.clone(), render_state.queue.clone()))
        };
        if let Some((device, queue)) = device_and_queue {
            self.state.set_device(EditDevice {
                device,
                queue,
                pipelines: Arc::default(),
                software: info.device_type == wgpu::DeviceType::Cpu,
            });
        }
    }

    fn poll(&mut self, cx: &mut LabCx<'_>) {
        let notes = self.state.poll(cx.ctx, cx.waker, self.settings.inspect, self.settings.zoom_backend);
        cx.notify_all(notes);
        if self.train_after_fit && !cx.shared.current_inr.fitting {
            self.train_after_fit = false;
            let outcome = self.apply(EditCommand::Train, cx);
            cx.report(outcome);
        }
    }

    fn sidebar_ui(&mut self, ui: &mut egui::Ui, cx: &mut LabCx<'_>) {
        let inr = &cx.shared.current_inr;
        if inr.fitting {
            // Training now would learn from a snapshot that is still improving: say which one.
            ui.label(format!(
                "The INR lab is still fitting {}: training now uses its snapshot at step {}.",
                inr.name, inr.network_step
            ));
            let label = if self.train_after_fit { "✔ Trains when the fit ends" } else { "Train when the fit ends" };
            if ui
                .selectable_label(self.train_after_fit, label)
                .on_hover_text("Start training the operator on the finished INR (click again to cancel)")
                .clicked()
            {
                self.train_after_fit = !self.train_after_fit;
            }
            ui.separator();
        }
        let state = self.state.panel_state();
        edit_controls_ui(ui, &mut self.settings, &state, &mut self.commands);
    }

    fn main_ui(&mut self, ui: &mut egui::Ui, _cx: &mut LabCx<'_>) {
        let mut zoom = self.state.zoom;
        let state = self.state.panel_state();
        edit_main_ui(ui, &mut self.settings, &mut zoom, &state, &mut self.commands);
        drop(state);
        self.state.zoom = zoom;
    }

    fn file_picked(&mut self, request: Box<dyn Any + Send>, path: PathBuf, cx: &mut LabCx<'_>) {
        apply_picked(self, request, path, cx, |lab, file: EditFile, path| lab.command_for(file, path));
    }

    fn restore_previous_version(&mut self, storage: &dyn eframe::Storage) {
        #[derive(Default, serde::Deserialize)]
        #[serde(default)]
        struct Previous {
            edit: EditSettings,
        }
        if let Some(previous) = crate::labs::previous_version::<Previous>(storage) {
            self.settings = previous.edit;
            self.settings.sanitize();
        }
    }
}
