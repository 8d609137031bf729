//! The INR-edit lab: pick an edit, train (or load) an operator over the INR's derivatives, and
//! compare its result with the same edit done on pixels; inspect the derivative channels.

use std::path::PathBuf;

use eframe::egui;
use serde::{Deserialize, Serialize};

use super::{EditCommand, EditFile};
use super::{EditZoom, ZoomBackend};
use crate::compute::inr::classify::{ClassifyConfig, ClassifySummary};
use crate::compute::inr::insp::{EditKind, EditTask, OperatorConfig, OperatorStep, OperatorWeights};
use crate::ui::theme;
use crate::ui::widgets::loss_psnr_plots_ui;

/// Everything the user sets in the edit lab; persisted between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EditSettings {
    pub task: EditTask,
    pub operator: OperatorConfig,
    /// Steps of every INR fitted for training (corrupted images, extra training images).
    pub fit_steps: u64,
    pub fit_width: usize,
    /// Use the INR lab's image as a training example.
    pub train_on_current: bool,
    /// More training examples.
    pub training_images: Vec<PathBuf>,
    /// Random square crops taken from each training image (0: the whole image); a crop's side is
    /// the INR lab's training size.
    pub crops: u32,
    /// Training pairs of the custom edit.
    pub pairs: Vec<EditPair>,
    /// The partial shown by the derivative inspector.
    pub inspect: usize,
    /// INSP-ConvNet on the built-in digits.
    pub classify: ClassifyConfig,
    /// Which confusion matrix is shown: INSP-ConvNet's (true) or the pixel CNN's.
    pub show_insp_confusion: bool,
    /// Where the zoom view is computed.
    pub zoom_backend: ZoomBackend,
    pub export_width: u32,
    pub export_height: u32,
}

impl Default for EditSettings {
    /// Quick on a laptop CPU: a 128-wide fit and a few hundred operator steps.
    fn default() -> Self {
        Self {
            task: EditTask::new(EditKind::GaussianBlur),
            operator: OperatorConfig { steps: 400, ..OperatorConfig::default() },
            fit_steps: 300,
            fit_width: 128,
            train_on_current: true,
            training_images: Vec::new(),
            crops: 0,
            pairs: Vec::new(),
            inspect: 1,
            classify: ClassifyConfig { limit: 600, ..ClassifyConfig::default() },
            show_insp_confusion: true,
            zoom_backend: ZoomBackend::Auto,
            export_width: 1024,
            export_height: 1024,
        }
    }
}

impl EditSettings {
    /// Brings values from an old or edited settings file back into the ranges the controls offer.
    pub fn sanitize(&mut self) {
        let defaults = Self::default();
        if self.task.validate().is_err() {
            self.task = EditTask::new(self.task.kind);
        }
        if self.operator.validate().is_err() || self.operator.order > 4 {
            self.operator = defaults.operator;
        }
        if self.classify.validate().is_err() {
            self.classify = defaults.classify.clone();
        }
        self.fit_steps = self.fit_steps.clamp(10, 20_000);
        self.crops = self.crops.min(MAX_CROPS);
        self.fit_width = self.fit_width.clamp(8, 256);
        self.export_width = self.export_width.clamp(1, 8192);
        self.export_height = self.export_height.clamp(1, 8192);
    }
}

/// Most crops per training image the lab offers.
pub const MAX_CROPS: u32 = 16;

/// A training example of the custom edit: the INR of `input` should become `target`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditPair {
    pub input: PathBuf,
    pub target: PathBuf,
}

/// One comparison view.
pub struct EditViewImage {
    pub title: String,
    /// Against the target, when one is known.
    pub psnr_db: Option<f64>,
    pub texture: egui::TextureHandle,
}

/// What the lab shows, read-only.
pub struct EditPanelState<'a> {
    pub training: bool,
    pub operator: Option<(&'a OperatorWeights, &'a str)>,
    /// Name of the INR being edited.
    pub subject: Option<&'a str>,
    pub history: &'a [OperatorStep],
    pub views: &'a [EditViewImage],
    pub partial_labels: Vec<String>,
    /// Inspected partial, its texture and the value at the top of its colour map.
    pub inspected: Option<(usize, &'a egui::TextureHandle, f32)>,
    /// The views are being brought up to date.
    pub evaluating: bool,
    /// The zoom view: texture, where it was computed, seconds it took.
    pub zoom: Option<(&'a egui::TextureHandle, &'static str, f64)>,
    pub zooming: bool,
    pub classifying: bool,
    pub classification: Option<&'a ClassifySummary>,
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into())
}

fn training_images_ui(ui: &mut egui::Ui, settings: &mut EditSettings, commands: &mut Vec<EditCommand>) {
    ui.checkbox(&mut settings.train_on_current, "Train on the current image")
        .on_hover_text("The INR lab's image; untick to show how the operator generalises to it");
    let mut remove = None;
    for (index, path) in settings.training_images.iter().enumerate() {
        ui.horizontal(|ui| {
            if ui.small_button("✖").on_hover_text("Remove this training image").clicked() {
                remove = Some(index);
            }
            ui.label(file_name(path)).on_hover_text(path.display().to_string());
        });
    }
    if let Some(index) = remove {
        settings.training_images.remove(index);
    }
    if ui.button("Add training image…").on_hover_text("An INR is fitted to it (corrupted as the edit says)").clicked()
    {
        commands.push(EditCommand::Pick(EditFile::AddTrainingImage));
    }
    ui.add(egui::Slider::new(&mut settings.crops, 0..=MAX_CROPS).text("crops per image")).on_hover_text(
        "Random square crops of each added image, as large as the INR lab's training size, each fitted by its own \
         INR (0: the whole image, downscaled)",
    );
}

fn training_pairs_ui(ui: &mut egui::Ui, settings: &mut EditSettings, commands: &mut Vec<EditCommand>) {
    if settings.pairs.is_empty() {
        ui.label(egui::RichText::new("No pairs yet.").color(theme::weak_text_colour(ui)));
    }
    let mut remove = None;
    for (index, pair) in settings.pairs.iter().enumerate() {
        ui.horizontal(|ui| {
            if ui.small_button("✖").on_hover_text("Remove this pair").clicked() {
                remove = Some(index);
            }
            ui.label(format!("{} → {}", file_name(&pair.input), file_name(&pair.target))).on_hover_text(format!(
                "{}\n→ {}",
                pair.input.display(),
                pair.target.display()
            ));
        });
    }
    if let Some(index) = remove {
        settings.pairs.remove(index);
    }
    if ui
        .button("Add pair…")
        .on_hover_text("Pick an input image, then its target (same size and colour kind)")
        .clicked()
    {
        commands.push(EditCommand::Pick(EditFile::AddPairInput));
    }
}

/// The sidebar part.
pub fn edit_controls_ui(
    ui: &mut egui::Ui,
    settings: &mut EditSettings,
    state: &EditPanelState<'_>,
    commands: &mut Vec<EditCommand>,
) {
    egui::CollapsingHeader::new("Edit").default_open(true).show(ui, |ui| {
        let task = &mut settings.task;
        egui::ComboBox::from_label("operation").selected_text(task.kind.label()).show_ui(ui, |ui| {
            for kind in EditKind::ALL {
                ui.selectable_value(&mut task.kind, kind, kind.label()).on_hover_text(kind.description());
            }
        });
        ui.label(egui::RichText::new(task.kind.description()).color(theme::weak_text_colour(ui)));
        match task.kind {
            EditKind::GaussianBlur | EditKind::Deblur => {
                ui.add(egui::Slider::new(&mut task.sigma, 0.5..=6.0).text("σ (px)"))
                    .on_hover_text("Standard deviation of the Gaussian, in pixels of the training image");
            }
            EditKind::BoxBlur => {
                ui.add(egui::Slider::new(&mut task.box_radius, 1..=5).text("radius (px)"))
                    .on_hover_text("The box is (2r+1)² pixels");
            }
            EditKind::Denoise => {
                ui.add(egui::Slider::new(&mut task.noise, 0.01..=0.3).text("noise σ"))
                    .on_hover_text("Standard deviation of the added Gaussian noise, in [0, 1] pixel units");
            }
            EditKind::Inpaint => {
                ui.add(egui::Slider::new(&mut task.coverage, 0.01..=0.2).text("coverage"))
                    .on_hover_text("Fraction of pixels under the white scribbles");
            }
            EditKind::Custom => {
                ui.label("Add pairs of images under Training data: an INR is fitted to each input, and the operator learns to turn it into the target.");
            }
        }
    });

    egui::CollapsingHeader::new("Operator").default_open(true).show(ui, |ui| {
        let op = &mut settings.operator;
        ui.add(egui::Slider::new(&mut op.order, 1..=4).text("order"))
            .on_hover_text("Highest order of the INR's derivatives fed to the operator (all mixed partials included)");
        ui.add(egui::Slider::new(&mut op.width, 16..=256).text("width"));
        ui.add(egui::Slider::new(&mut op.hidden_layers, 1..=6).text("hidden layers"));
        ui.add(egui::Slider::new(&mut op.steps, 50..=5000).logarithmic(true).text("steps"));
        ui.add(
            egui::Slider::new(&mut op.learning_rate, 1e-5..=1e-2)
                .logarithmic(true)
                .text("learning rate")
                .custom_formatter(|v, _| format!("{v:.1e}")),
        )
        .on_hover_text("Adam step size (the paper uses 1e-4 without the residual form)");
        ui.checkbox(&mut op.residual, "residual")
            .on_hover_text("Learn a correction to the INR's value (starts as the identity; trains much faster)");
    });

    egui::CollapsingHeader::new("Training data").default_open(true).show(ui, |ui| {
        if settings.task.kind == EditKind::Custom {
            training_pairs_ui(ui, settings, commands);
        } else {
            training_images_ui(ui, settings, commands);
        }
        ui.add(egui::Slider::new(&mut settings.fit_steps, 50..=2000).logarithmic(true).text("INR fit steps"))
            .on_hover_text("Steps for each INR fitted to a training image or a corrupted image");
    });

    egui::CollapsingHeader::new("INSP-ConvNet: classify digits").default_open(false).show(ui, |ui| {
        let config = &mut settings.classify;
        ui.label(
            egui::RichText::new(
                "A SIREN per 8×8 digit; a CNN classifies them from their derivative stacks, against the same CNN on pixels.",
            )
            .color(theme::weak_text_colour(ui)),
        );
        ui.add(egui::Slider::new(&mut config.limit, 100..=1797).text("digits"))
            .on_hover_text("How many of the 1797 built-in digits to use (a fifth is held out for testing)");
        ui.add(egui::Slider::new(&mut config.order, 0..=4).text("order"))
            .on_hover_text("Highest order of the INR derivatives INSP-ConvNet reads (0: the INR's values only)");
        ui.add(egui::Slider::new(&mut config.inr_steps, 20..=1000).logarithmic(true).text("INR steps"));
        ui.add(egui::Slider::new(&mut config.epochs, 1..=100).text("epochs"));
        if ui.add_enabled(!state.classifying, egui::Button::new("Run on digits")).clicked() {
            commands.push(EditCommand::Classify);
        }
        if let Some(summary) = state.classification {
            for report in [&summary.insp, &summary.cnn] {
                ui.label(format!("{}: {:.1}%", report.name, 100.0 * report.accuracy));
            }
            ui.horizontal(|ui| {
                ui.label("Confusion:");
                ui.radio_value(&mut settings.show_insp_confusion, true, "INSP");
                ui.radio_value(&mut settings.show_insp_confusion, false, "pixels");
            });
            let report = if settings.show_insp_confusion { &summary.insp } else { &summary.cnn };
            confusion_ui(ui, &report.confusion);
        }
    });

    ui.add_space(theme::SPACING);
    ui.horizontal(|ui| {
        let train = ui
            .add_enabled(!state.training, egui::Button::new("Train operator"))
            .on_hover_text("Fit what is needed and train the operator in the background");
        if train.clicked() {
            commands.push(EditCommand::Train);
        }
        if ui.button("Reset").on_hover_text("Edit, operator and training settings back to their defaults").clicked() {
            commands.push(EditCommand::ResetSettings);
        }
    });
    ui.horizontal(|ui| {
        if ui.button("Load operator…").on_hover_text("An operator (.safetensors) saved by this lab or `sparsefield inr edit`").clicked() {
            commands.push(EditCommand::Pick(EditFile::OpenOperator));
        }
        if ui.add_enabled(state.operator.is_some(), egui::Button::new("Save operator…")).clicked() {
            commands.push(EditCommand::Pick(EditFile::SaveOperator));
        }
    });
    ui.horizontal(|ui| {
        if ui.button("Edit an INR file…").on_hover_text("Apply the operator to a saved INR").clicked() {
            commands.push(EditCommand::Pick(EditFile::OpenSubject));
        }
        if ui.button("INR lab's").on_hover_text("Edit the INR lab's current INR again").clicked() {
            commands.push(EditCommand::UseLabInr);
        }
    });
    ui.horizontal(|ui| {
        let label = ui.label("Export");
        ui.add(egui::DragValue::new(&mut settings.export_width).range(1..=8192).suffix(" px")).labelled_by(label.id);
        ui.label("×");
        ui.add(egui::DragValue::new(&mut settings.export_height).range(1..=8192).suffix(" px")).labelled_by(label.id);
        let ready = state.operator.is_some() && state.subject.is_some();
        if ui.add_enabled(ready, egui::Button::new("PNG…")).on_hover_text("Render the edit at this size").clicked() {
            commands.push(EditCommand::Pick(EditFile::Export));
        }
    });
}

/// Height kept below the comparison views for the inspector, the zoom view and the plots.
const BOTTOM_ROW_HEIGHT: f32 = 300.0;

/// The central part: the comparison views, the derivative inspector and the training plots.
pub fn edit_main_ui(
    ui: &mut egui::Ui,
    settings: &mut EditSettings,
    zoom: &mut EditZoom,
    state: &EditPanelState<'_>,
    commands: &mut Vec<EditCommand>,
) {
    ui.horizontal(|ui| {
        // The sidebar's button may be scrolled away on a small screen; this one is always here.
        if ui
            .add_enabled(!state.training, egui::Button::new("▶ Train operator"))
            .on_hover_text("Fit what is needed and train the operator with the settings on the left, in the background")
            .clicked()
        {
            commands.push(EditCommand::Train);
        }
        match state.operator {
            Some((op, name)) => ui.label(format!(
                "Operator: {} · order {} ({} partials) · {}×{} · {name}",
                op.spec.task.summary(),
                op.spec.order,
                op.spec.num_features(),
                op.spec.hidden_layers,
                op.spec.width
            )),
            None => ui.label("No operator yet: train one, or load one (left)."),
        };
        if let Some(subject) = state.subject {
            ui.separator();
            ui.label(format!("Editing: {subject}"));
        }
        if state.evaluating || state.training {
            crate::ui::widgets::busy_ui(ui);
        }
    });
    ui.separator();
    if state.views.is_empty() {
        ui.label(
            "The edit of a continuous function is a continuous function: once an operator exists, its result \
             appears here next to the same edit done on pixels.",
        );
    } else {
        #[allow(clippy::cast_precision_loss)]
        let n = state.views.len() as f32;
        let side = ((ui.available_width() - theme::SPACING * (n - 1.0)) / n)
            .min(ui.available_height() - BOTTOM_ROW_HEIGHT)
            .max(64.0);
        ui.horizontal(|ui| {
            for view in state.views {
                ui.vertical(|ui| {
                    let title = match view.psnr_db {
                        Some(psnr) => format!("{} · {psnr:.2} dB", view.title),
                        None => view.title.clone(),
                    };
                    ui.label(title);
                    ui.add(egui::Image::new(&view.texture).fit_to_exact_size(egui::vec2(side, side)));
                });
            }
        });
    }
    ui.separator();
    // Inside a horizontal layout the available height is one row: measure it here.
    let small_side = (ui.available_height() - 3.0 * ui.spacing().interact_size.y).clamp(96.0, 320.0);
    ui.horizontal(|ui| {
        if !state.partial_labels.is_empty() {
            ui.vertical(|ui| {
                let current = settings.inspect.min(state.partial_labels.len() - 1);
                egui::ComboBox::from_label("derivative channel")
                    .selected_text(state.partial_labels[current].clone())
                    .show_ui(ui, |ui| {
                        for (k, label) in state.partial_labels.iter().enumerate() {
                            ui.selectable_value(&mut settings.inspect, k, label);
                        }
                    });
                if let Some((k, texture, scale)) = state.inspected {
                    ui.add(egui::Image::new(texture).fit_to_exact_size(egui::vec2(small_side, small_side)));
                    let text =
                        if k == 0 { "value".to_owned() } else { format!("blue −{scale:.3e} … red +{scale:.3e}") };
                    ui.label(egui::RichText::new(text).color(theme::weak_text_colour(ui)));
                }
            });
        }
        if state.operator.is_some() && state.subject.is_some() {
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    ui.label(format!("INSP edit ×{:.1}", zoom.zoom)).on_hover_text(
                        "The edited INR is a continuous function: scroll to zoom, drag to pan, double-click to reset",
                    );
                    egui::ComboBox::from_label("on").selected_text(settings.zoom_backend.label()).show_ui(ui, |ui| {
                        for backend in ZoomBackend::ALL {
                            ui.selectable_value(&mut settings.zoom_backend, backend, backend.label())
                                .on_hover_text(backend.description());
                        }
                    });
                    if state.zooming {
                        crate::ui::widgets::busy_ui(ui);
                    }
                });
                if let Some((texture, backend, secs)) = state.zoom {
                    let response = ui.add(
                        egui::Image::new(texture)
                            .fit_to_exact_size(egui::vec2(small_side, small_side))
                            .sense(egui::Sense::click_and_drag()),
                    );
                    zoom_interaction(ui, &response, zoom);
                    ui.label(
                        egui::RichText::new(format!("{backend} · {:.0} ms", secs * 1e3))
                            .color(theme::weak_text_colour(ui)),
                    );
                } else {
                    ui.label("rendering…");
                }
            });
        }
        ui.vertical(|ui| {
            #[allow(clippy::cast_precision_loss)]
            let points: Vec<(f64, f64, f64)> =
                state.history.iter().map(|r| (r.step as f64, r.loss, r.psnr_db)).collect();
            loss_psnr_plots_ui(ui, "edit", ("Operator loss (MSE)", "Batch PSNR (dB)"), &points, 120.0);
        });
    });
}

/// Scroll zooms about the pointer, drag pans, double-click resets.
fn zoom_interaction(ui: &egui::Ui, response: &egui::Response, zoom: &mut EditZoom) {
    let size = response.rect.size();
    if response.double_clicked() {
        *zoom = EditZoom::default();
        return;
    }
    if response.dragged() {
        let delta = response.drag_delta();
        for axis in 0..2 {
            zoom.centre[axis] -= delta[axis] / size[axis].max(1.0) * 2.0 / zoom.zoom;
        }
    }
    if response.hovered() {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        if scroll != 0.0 {
            let factor = (scroll / 200.0).exp();
            let uv = response.hover_pos().map_or(egui::vec2(0.5, 0.5), |p| (p - response.rect.min) / size);
            let new_zoom = (zoom.zoom * factor).clamp(0.5, 256.0);
            for axis in 0..2 {
                let offset = (uv[axis] - 0.5) * 2.0;
                let point = zoom.centre[axis] + offset / zoom.zoom;
                zoom.centre[axis] = point - offset / new_zoom;
            }
            zoom.zoom = new_zoom;
        }
    }
}

/// A confusion matrix as a grid: rows are true digits, columns predictions; the diagonal bold.
fn confusion_ui(ui: &mut egui::Ui, confusion: &[[u32; 10]]) {
    egui::Grid::new("confusion").spacing(egui::vec2(6.0, 2.0)).show(ui, |ui| {
        ui.label(egui::RichText::new("t\\p").small());
        for p in 0..10 {
            ui.label(egui::RichText::new(p.to_string()).small().strong());
        }
        ui.end_row();
        for (truth, row) in confusion.iter().enumerate() {
            ui.label(egui::RichText::new(truth.to_string()).small().strong());
            for (p, &count) in row.iter().enumerate() {
                let text = egui::RichText::new(count.to_string()).small();
                let text = if p == truth {
                    text.strong()
                } else if count > 0 {
                    text.color(theme::warning_colour(ui))
                } else {
                    text.color(theme::weak_text_colour(ui))
                };
                ui.label(text);
            }
            ui.end_row();
        }
    });
}
