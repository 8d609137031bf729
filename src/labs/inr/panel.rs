//! The INR lab: settings in the sidebar; original, INR and a derived view side by side, sharing
//! pan and zoom; loss and PSNR plots.

use std::sync::Arc;

use eframe::egui::{self, Rect, Sense, Vec2, pos2, vec2};
use eframe::egui_wgpu;
use serde::{Deserialize, Serialize};

use super::{InrCommand, InrFile};
use crate::compute::image_io::ImageData;
use crate::compute::inr::{BatchMode, DisplayScales, FitConfig, SirenWeights, StepRecord};
use crate::render::inr_view::{Budget, InrViewCallback, Versioned, ViewFeedback, ViewMode, ViewRequest, ViewWindow};
use crate::ui::{BuiltinImage, theme};

/// Everything the user sets in the INR lab; persisted between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InrSettings {
    pub fit: FitConfig,
    /// Longer side of the training image; larger images are downscaled to it.
    pub training_size: u32,
    /// Size of PNG exports.
    pub export_width: u32,
    pub export_height: u32,
    /// What the third view shows.
    pub third_view: ViewMode,
    /// Error that maps to the top of the colour map, in pixel units.
    pub error_scale: f32,
}

impl Default for InrSettings {
    /// Sized so the demo visibly converges within a minute on a laptop CPU.
    fn default() -> Self {
        Self {
            fit: FitConfig { width: 128, steps: 1000, learning_rate: 2e-4, ..FitConfig::default() },
            training_size: 256,
            export_width: 1024,
            export_height: 1024,
            third_view: ViewMode::Error,
            error_scale: 0.1,
        }
    }
}

impl InrSettings {
    /// Brings values from an old or edited settings file back into the ranges the controls offer.
    pub fn sanitize(&mut self) {
        let defaults = Self::default();
        self.training_size = self.training_size.clamp(32, 4096);
        self.export_width = self.export_width.clamp(1, 8192);
        self.export_height = self.export_height.clamp(1, 8192);
        if !(self.error_scale.is_finite() && self.error_scale > 0.0) {
            self.error_scale = defaults.error_scale;
        }
        if self.fit.validate(1).is_err() {
            self.fit = defaults.fit;
        }
    }
}

/// Pan, zoom and refinement state of the views (not persisted).
pub struct InrViewState {
    /// INR coordinate at the views' centre.
    pub centre: [f32; 2],
    /// 1 shows the whole image.
    pub zoom: f32,
    /// `Unlimited` renders every view completely each frame (tests); `Adaptive` refines over frames.
    pub budget: Budget,
    pub feedback: [Arc<ViewFeedback>; 2],
    last_keys: [u64; 2],
    /// When (egui's input time) each view's content last changed: a pan or zoom in progress.
    last_change: [f64; 2],
}

impl Default for InrViewState {
    fn default() -> Self {
        Self {
            centre: [0.0, 0.0],
            zoom: 1.0,
            budget: Budget::Adaptive,
            feedback: [Arc::default(), Arc::default()],
            last_keys: [0; 2],
            last_change: [f64::NEG_INFINITY; 2],
        }
    }
}

const MIN_ZOOM: f32 = 0.5;
/// Time between frames while a view refines.
const REFINE_FRAME_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// The same while the fit runs: on a software adapter the views' work takes CPU time from the
/// fit (at 100 ms the fit ran at a tenth of its command-line speed); below 250 ms, so frames keep
/// coming.
const REFINE_FRAME_INTERVAL_TRAINING: std::time::Duration = std::time::Duration::from_millis(240);
const MAX_ZOOM: f32 = 64.0;
/// A view whose content changed this recently is being panned or zoomed: it gets the budget
/// for smooth frames ([`Budget::Interactive`]) rather than for fast refinement.
const INTERACTION_SECS: f64 = 0.3;

impl InrViewState {
    pub fn window(&self) -> ViewWindow {
        let half = 1.0 / self.zoom;
        ViewWindow {
            min: [self.centre[0] - half, self.centre[1] - half],
            max: [self.centre[0] + half, self.centre[1] + half],
        }
    }

    pub fn reset(&mut self) {
        self.centre = [0.0, 0.0];
        self.zoom = 1.0;
    }

    /// Zooms by `factor` keeping the point at `uv` (0..1 in the view) fixed.
    pub fn zoom_at(&mut self, uv: Vec2, factor: f32) {
        let new_zoom = (self.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
        for axis in 0..2 {
            let offset = (uv[axis] - 0.5) * 2.0;
            let point = self.centre[axis] + offset / self.zoom;
            self.centre[axis] = point - offset / new_zoom;
        }
        self.zoom = new_zoom;
    }

    /// Pans by a drag of `delta` points in a view of `size` points.
    pub fn pan(&mut self, delta: Vec2, size: Vec2) {
        for axis in 0..2 {
            self.centre[axis] -= delta[axis] / size[axis].max(1.0) * 2.0 / self.zoom;
        }
    }
}

/// What the lab shows, read-only.
pub struct InrPanelState<'a> {
    /// Training image, its texture and a display name.
    pub image: Option<(&'a Arc<ImageData>, &'a egui::TextureHandle, &'a str)>,
    pub reference: Option<Versioned<ImageData>>,
    pub network: Option<Versioned<SirenWeights>>,
    pub scales: DisplayScales,
    pub history: &'a [StepRecord],
    pub training: bool,
    /// `Err(hint)` when live rendering is unavailable.
    pub gpu: Result<(), &'a str>,
    /// One line about the current INR (steps, PSNR).
    pub summary: Option<&'a str>,
}

/// The sidebar part: image, model, training and file controls.
pub fn inr_controls_ui(
    ui: &mut egui::Ui,
    settings: &mut InrSettings,
    state: &InrPanelState<'_>,
    commands: &mut Vec<InrCommand>,
) {
    egui::CollapsingHeader::new("Image").default_open(true).show(ui, |ui| {
        match state.image {
            Some((image, _, name)) => {
                let kind = if image.channels == 1 { "gray" } else { "RGB" };
                ui.label(format!("{name}: {}×{} {kind}", image.width, image.height));
            }
            None => {
                ui.colored_label(theme::warning_colour(ui), "No image loaded");
            }
        }
        ui.horizontal(|ui| {
            if ui.button("Open image…").on_hover_text("Pick a PNG or JPEG (or drop one on the window)").clicked() {
                commands.push(InrCommand::Pick(InrFile::OpenImage));
            }
            ui.menu_button("Built-in", |ui| {
                for builtin in BuiltinImage::ALL {
                    if ui.button(builtin.label()).clicked() {
                        commands.push(InrCommand::UseBuiltinImage(builtin));
                        ui.close();
                    }
                }
            });
        });
        ui.add(egui::Slider::new(&mut settings.training_size, 32..=1024).text("training size").logarithmic(true))
            .on_hover_text(
                "Longer side of the training image in pixels; larger images are downscaled (never upscaled)",
            );
    });

    egui::CollapsingHeader::new("Model").default_open(true).show(ui, |ui| {
        let fit = &mut settings.fit;
        ui.add(egui::Slider::new(&mut fit.hidden_layers, 1..=8).text("hidden layers"))
            .on_hover_text("Number of sine layers");
        ui.add(egui::Slider::new(&mut fit.width, 8..=256).text("width"))
            .on_hover_text("Neurons per hidden layer (the GPU view supports up to 256)");
        ui.add(egui::Slider::new(&mut fit.omega0, 1.0..=100.0).text("ω₀"))
            .on_hover_text("Frequency scale of the sine layers: higher fits finer detail but can alias");
        let channels = state.image.map_or(1, |(img, _, _)| img.channels);
        let params = fit.siren_config(channels).num_parameters();
        ui.label(egui::RichText::new(format!("{params} parameters")).color(theme::weak_text_colour(ui)));
    });

    egui::CollapsingHeader::new("Training").default_open(true).show(ui, |ui| {
        let fit = &mut settings.fit;
        ui.add(
            egui::Slider::new(&mut fit.learning_rate, 1e-5..=1e-2)
                .logarithmic(true)
                .text("learning rate")
                .custom_formatter(|v, _| format!("{v:.1e}")),
        )
        .on_hover_text("Adam step size; SIREN's paper uses 1e-4");
        ui.add(egui::Slider::new(&mut fit.steps, 10..=20_000).logarithmic(true).text("steps"));
        ui.horizontal(|ui| {
            let mut full = matches!(fit.batch, BatchMode::Full);
            if ui.radio_value(&mut full, true, "full batch").on_hover_text("Every pixel in every step").changed()
                || ui
                    .radio_value(&mut full, false, "random pixels")
                    .on_hover_text("A fresh random sample of pixels each step: faster steps, noisier")
                    .changed()
            {
                fit.batch = if full { BatchMode::Full } else { BatchMode::Random { pixels: 8192 } };
            }
        });
        if let BatchMode::Random { pixels } = &mut fit.batch {
            ui.add(egui::Slider::new(pixels, 256..=262_144).logarithmic(true).text("pixels per step"));
        }
        ui.add(egui::DragValue::new(&mut fit.seed).prefix("seed "))
            .on_hover_text("Seeds the initial weights and the pixel batches: same seed, same result");
        ui.add_space(theme::SPACING);
        ui.horizontal(|ui| {
            let can_train = state.image.is_some() && !state.training;
            if ui
                .add_enabled(can_train, egui::Button::new("▶ Train"))
                .on_hover_text("Fit a fresh SIREN to the image in the background")
                .on_disabled_hover_text("Needs an image, and no fit running")
                .clicked()
            {
                commands.push(InrCommand::Train);
            }
            let can_continue = can_train && state.network.is_some();
            if ui
                .add_enabled(can_continue, egui::Button::new("⏩ Continue"))
                .on_hover_text("Train the current INR further with these settings")
                .clicked()
            {
                commands.push(InrCommand::ContinueTraining);
            }
        });
        if ui.button("↺ Reset settings").on_hover_text("Back to the default model and training settings").clicked() {
            commands.push(InrCommand::ResetSettings);
        }
    });

    egui::CollapsingHeader::new("Files").default_open(true).show(ui, |ui| {
        let has_network = state.network.is_some();
        ui.horizontal(|ui| {
            if ui
                .add_enabled(has_network, egui::Button::new("Save INR…"))
                .on_hover_text("Weights and configuration as .safetensors")
                .clicked()
            {
                commands.push(InrCommand::Pick(InrFile::SaveInr));
            }
            if ui.button("Load INR…").on_hover_text("A .safetensors file saved by this lab (or drop one on the window)").clicked() {
                commands.push(InrCommand::Pick(InrFile::OpenInr));
            }
        });
        ui.horizontal(|ui| {
            ui.add(egui::DragValue::new(&mut settings.export_width).range(1..=8192).suffix(" px"));
            ui.label("×");
            ui.add(egui::DragValue::new(&mut settings.export_height).range(1..=8192).suffix(" px"));
        });
        if ui
            .add_enabled(has_network, egui::Button::new("Export PNG…"))
            .on_hover_text("Render the INR at this resolution (a continuous function: any size works)")
            .clicked()
        {
            commands.push(InrCommand::Pick(InrFile::ExportPng));
        }
    });
}

/// The central part: three views with shared pan/zoom, then the plots.
pub fn inr_main_ui(
    ui: &mut egui::Ui,
    settings: &mut InrSettings,
    view: &mut InrViewState,
    state: &InrPanelState<'_>,
    commands: &mut Vec<InrCommand>,
) {
    let _ = commands;
    ui.horizontal(|ui| {
        ui.heading("INR lab");
        if let Some(summary) = state.summary {
            ui.label(summary);
        }
    });
    ui.label(
        egui::RichText::new(format!("Drag to pan · scroll to zoom · double-click to reset · zoom {:.1}×", view.zoom))
            .color(theme::weak_text_colour(ui)),
    );

    let aspect = state.image.map_or(1.0, |(img, _, _)| {
        #[allow(clippy::cast_precision_loss)]
        let a = img.width as f32 / img.height as f32;
        a
    });
    let available = ui.available_size();
    let gap = theme::SPACING;
    let plots_height = theme::MIN_PLOT_HEIGHT + 60.0;
    let max_w = ((available.x - 2.0 * gap) / 3.0).max(64.0);
    let max_h = (available.y - plots_height - 40.0).max(64.0);
    let view_size = fit_size(vec2(max_w, max_h), aspect);

    let window = view.window();
    let mut interactions = Vec::new();
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = gap;
        // Original
        ui.vertical(|ui| {
            view_header_ui(ui, |ui| {
                ui.label("Original");
            });
            let (rect, response) = ui.allocate_exact_size(view_size, Sense::click_and_drag());
            interactions.push((rect, response));
            ui.painter().rect_filled(rect, theme::VIEW_ROUNDING, theme::view_background(ui));
            if let Some((_, texture, _)) = state.image {
                let image_rect = inr_rect_on_screen(rect, window);
                ui.painter_at(rect).image(
                    texture.id(),
                    image_rect,
                    Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
                    egui::Color32::WHITE,
                );
            }
            ui.painter().rect_stroke(rect, theme::VIEW_ROUNDING, theme::view_border(ui), egui::StrokeKind::Inside);
        });
        // INR and the derived view
        for (slot, mode) in [(0, ViewMode::Value), (1, settings.third_view)] {
            ui.vertical(|ui| {
                view_header_ui(ui, |ui| {
                    if slot == 0 {
                        ui.label(refinement_label("INR (wgpu)", &view.feedback[slot]));
                        return;
                    }
                    egui::ComboBox::from_id_salt("inr third view")
                        .selected_text(mode_label(settings.third_view))
                        .show_ui(ui, |ui| {
                            for m in [ViewMode::Error, ViewMode::Gradient, ViewMode::Laplacian] {
                                ui.selectable_value(&mut settings.third_view, m, mode_label(m));
                            }
                        })
                        .response
                        .on_hover_text(
                            "Error against the image, or the INR's analytic gradient magnitude or Laplacian",
                        );
                    ui.label(refinement_label("", &view.feedback[slot]));
                });
                let (rect, response) = ui.allocate_exact_size(view_size, Sense::click_and_drag());
                interactions.push((rect, response));
                ui.painter().rect_filled(rect, theme::VIEW_ROUNDING, theme::view_background(ui));
                match (&state.gpu, &state.network) {
                    (Err(hint), _) => {
                        ui.put(
                            rect.shrink(8.0),
                            egui::Label::new(egui::RichText::new(*hint).color(theme::warning_colour(ui))).wrap(),
                        );
                    }
                    (Ok(()), None) => {
                        ui.put(rect, egui::Label::new("Press Train, or load an INR"));
                    }
                    (Ok(()), Some(network)) => {
                        let scale = match mode {
                            ViewMode::Error => settings.error_scale,
                            ViewMode::Gradient => state.scales.gradient,
                            ViewMode::Laplacian => state.scales.laplacian,
                            ViewMode::Value => 1.0,
                        };
                        let ppp = ui.ctx().pixels_per_point();
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        let grid = ((rect.width() * ppp).round() as u32, (rect.height() * ppp).round() as u32);
                        let now = ui.input(|i| i.time);
                        let request = ViewRequest {
                            view_id: slot as u64,
                            network: network.clone(),
                            reference: state.reference.clone(),
                            window,
                            mode,
                            grid,
                            scale,
                            frame: ui.ctx().cumulative_frame_nr(),
                            budget: match view.budget {
                                Budget::Adaptive if state.training => Budget::Background,
                                Budget::Adaptive if now - view.last_change[slot] < INTERACTION_SECS => {
                                    Budget::Interactive
                                }
                                budget => budget,
                            },
                            feedback: Arc::clone(&view.feedback[slot]),
                        };
                        let key = request.content_key();
                        // While shaders compile, the warm-up thread wakes the UI when it is done.
                        let refining = !view.feedback[slot].is_done() && !view.feedback[slot].is_compiling();
                        if key != view.last_keys[slot] {
                            view.last_keys[slot] = key;
                            view.last_change[slot] = now;
                            ui.ctx().request_repaint();
                        } else if refining {
                            // Refinement goes on at a modest frame rate: on a software adapter
                            // every frame costs CPU time that training needs.
                            let interval =
                                if state.training { REFINE_FRAME_INTERVAL_TRAINING } else { REFINE_FRAME_INTERVAL };
                            ui.ctx().request_repaint_after(interval);
                        }
                        ui.painter().add(egui_wgpu::Callback::new_paint_callback(rect, InrViewCallback::new(request)));
                    }
                }
                ui.painter().rect_stroke(rect, theme::VIEW_ROUNDING, theme::view_border(ui), egui::StrokeKind::Inside);
            });
        }
    });
    if settings.third_view == ViewMode::Error {
        ui.add(egui::Slider::new(&mut settings.error_scale, 0.005..=1.0).logarithmic(true).text("error colour range"))
            .on_hover_text("Absolute error (pixel values in [0, 1]) shown at full brightness");
    }

    handle_view_input(ui, view, &interactions);
    plots_ui(ui, state.history);
}

/// A row of the same height above every view, whether it holds a label or a combo box.
fn view_header_ui(ui: &mut egui::Ui, add_contents: impl FnOnce(&mut egui::Ui)) {
    let height = ui.spacing().interact_size.y;
    ui.horizontal(|ui| {
        ui.set_min_height(height);
        add_contents(ui);
    });
}

fn mode_label(mode: ViewMode) -> &'static str {
    match mode {
        ViewMode::Value => "INR",
        ViewMode::Error => "Error |INR − image|",
        ViewMode::Gradient => "|∇f| (analytic)",
        ViewMode::Laplacian => "∇²f (analytic)",
    }
}

fn refinement_label(title: &str, feedback: &ViewFeedback) -> String {
    if feedback.is_compiling() {
        return format!("{title} · compiling shaders (first run only)…");
    }
    match feedback.shown_factor() {
        Some(f) if f > 1 && !feedback.is_done() => format!("{title} · refining 1/{f}"),
        _ => title.to_owned(),
    }
}

/// Where the INR's `[-1, 1]²` lands on screen in a view `rect` showing `window`.
fn inr_rect_on_screen(rect: Rect, window: ViewWindow) -> Rect {
    let to_screen = |x: f32, axis: usize| {
        let t = (x - window.min[axis]) / (window.max[axis] - window.min[axis]);
        if axis == 0 { rect.left() + t * rect.width() } else { rect.top() + t * rect.height() }
    };
    Rect::from_min_max(pos2(to_screen(-1.0, 0), to_screen(-1.0, 1)), pos2(to_screen(1.0, 0), to_screen(1.0, 1)))
}

fn handle_view_input(ui: &egui::Ui, view: &mut InrViewState, interactions: &[(Rect, egui::Response)]) {
    for (rect, response) in interactions {
        if response.double_clicked() {
            view.reset();
        } else if response.dragged() {
            view.pan(response.drag_delta(), rect.size());
        }
        if response.hovered() {
            let (scroll, zoom_delta) = ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()));
            let factor = (scroll * 0.002).exp() * zoom_delta;
            if (factor - 1.0).abs() > 1e-4
                && let Some(pointer) = response.hover_pos()
            {
                let uv = (pointer - rect.min) / rect.size();
                view.zoom_at(uv, factor);
            }
        }
    }
}

fn plots_ui(ui: &mut egui::Ui, history: &[StepRecord]) {
    #[allow(clippy::cast_precision_loss)]
    let points: Vec<_> = history.iter().map(|r| (r.step as f64, r.loss, r.psnr_db)).collect();
    crate::ui::widgets::loss_psnr_plots_ui(
        ui,
        "inr",
        ("Training loss (MSE, log₁₀)", "PSNR (dB)"),
        &points,
        theme::MIN_PLOT_HEIGHT,
    );
}

/// The largest size of aspect ratio `aspect` (width / height) that fits in `available`.
pub fn fit_size(available: Vec2, aspect: f32) -> Vec2 {
    if available.x / aspect <= available.y {
        vec2(available.x, available.x / aspect)
    } else {
        vec2(available.y * aspect, available.y)
    }
}
