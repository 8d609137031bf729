//! The StegaNeRF lab: stage 1, the secret and stage 2's settings in the sidebar; the orbit
//! viewport of the marked field beside the secret recovered from the view at rest, the stage-1
//! render of the same view and their difference ×10; the robustness panel (one attack live, or
//! the sweep over all of them) and the training plots.

use eframe::egui::{self, vec2};
use serde::{Deserialize, Serialize};

use super::lab::{StegaCommand, StegaFile};
use super::{StegaState, VIEW_SIDE};
use crate::compute::nerf::bake::ViewMode;
use crate::compute::stega::attacks::Attack;
use crate::compute::stega::embed::{EmbedConfig, EmbedMetrics};
use crate::compute::stega::loss::LossWeights;
use crate::compute::stega::message;
use crate::compute::stega::secret::{DEFAULT_SECRET_SIDE, MAX_SECRET_BITS, MAX_SECRET_SIDE, MIN_SECRET_SIDE};
use crate::ui::orbit_viewer::{NerfViewState, ViewportOptions, viewport_ui};
use crate::ui::theme;

/// What kind of secret to hide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretChoice {
    #[default]
    Image,
    Text,
    Bits,
}

/// Everything the user sets in the StegaNeRF lab; persisted between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StegaSettings {
    pub secret: SecretChoice,
    /// The secret image (the built-in coffee.png when `None`).
    pub secret_image: Option<std::path::PathBuf>,
    pub secret_side: u32,
    pub text: String,
    pub bits: usize,
    pub steps: u64,
    pub seed: u64,
    pub masking: bool,
    pub augment: bool,
    pub field_lr: f64,
    pub weights: LossWeights,
    pub decoder_trains_field: bool,
    #[serde(default = "default_render_weight_end")]
    pub render_weight_end: f64,
    #[serde(default = "default_nets_only_share")]
    pub nets_only_share: f64,
    /// The robustness panel's attack (an index into [`Attack::KINDS`]) and each kind's strength.
    pub attack: usize,
    pub strengths: [f64; 6],
    pub attack_on: bool,
    pub turntable: bool,
}

impl Default for StegaSettings {
    fn default() -> Self {
        let cfg = EmbedConfig::default();
        Self {
            secret: SecretChoice::Image,
            secret_image: None,
            secret_side: DEFAULT_SECRET_SIDE,
            text: "Hidden in plain sight".into(),
            bits: 64,
            steps: cfg.steps,
            seed: cfg.seed,
            masking: cfg.masking,
            augment: cfg.augment,
            field_lr: cfg.field_lr,
            weights: cfg.weights,
            decoder_trains_field: cfg.decoder_trains_field,
            render_weight_end: cfg.render_weight_end,
            nets_only_share: cfg.nets_only_share,
            attack: 2,
            strengths: Attack::TABLE_STRENGTHS,
            attack_on: false,
            turntable: false,
        }
    }
}

fn default_render_weight_end() -> f64 {
    EmbedConfig::default().render_weight_end
}

fn default_nets_only_share() -> f64 {
    EmbedConfig::default().nets_only_share
}

impl StegaSettings {
    pub fn embed_config(&self) -> EmbedConfig {
        EmbedConfig {
            steps: self.steps,
            seed: self.seed,
            masking: self.masking,
            augment: self.augment,
            field_lr: self.field_lr,
            weights: self.weights,
            decoder_trains_field: self.decoder_trains_field,
            render_weight_end: self.render_weight_end,
            nets_only_share: self.nets_only_share,
            ..EmbedConfig::default()
        }
    }

    /// The robustness panel's attack, if on.
    pub fn attack(&self) -> Option<Attack> {
        let kind = Attack::KINDS.get(self.attack)?;
        self.attack_on.then(|| kind.with_strength(self.strengths[self.attack]))
    }

    /// Brings values from an old or edited settings file back into the controls' ranges.
    pub fn sanitize(&mut self) {
        let d = Self::default();
        self.secret_side = (self.secret_side.clamp(MIN_SECRET_SIDE, MAX_SECRET_SIDE) / 8) * 8;
        self.bits = self.bits.clamp(1, MAX_SECRET_BITS);
        if self.embed_config().validate().is_err() {
            (self.steps, self.field_lr, self.weights) = (d.steps, d.field_lr, d.weights);
            (self.render_weight_end, self.nets_only_share) = (d.render_weight_end, d.nets_only_share);
        }
        if self.attack >= Attack::KINDS.len() {
            self.attack = d.attack;
        }
        for (s, kind) in self.strengths.iter_mut().zip(Attack::KINDS) {
            let range = kind.sweep_strengths();
            let (lo, hi) = (range[0].min(range[range.len() - 1]), range[0].max(range[range.len() - 1]));
            if !s.is_finite() {
                *s = lo;
            }
            *s = s.clamp(lo, hi);
        }
    }
}

/// What the panels read from the lab.
pub struct StegaPanelState<'a> {
    pub state: &'a StegaState,
    pub nerf_field: Option<String>,
    pub lift_field: Option<String>,
}

/// One line of an embed's scores.
pub fn metrics_line(m: &EmbedMetrics) -> String {
    let mut line = format!("render {:.1} dB vs stage 1", m.render_psnr_vs_stage1_db);
    if let Some(p) = m.recovery_psnr_db {
        line.push_str(&format!(", secret {p:.1} dB"));
    }
    if let Some(a) = m.bit_accuracy {
        line.push_str(&format!(", bits {:.1}% right", 100.0 * a));
    }
    line.push_str(&format!(", classifier {:.0}%", 100.0 * m.classifier_accuracy));
    line
}

/// The sidebar: stage 1, the secret, stage 2, recovery from files, export.
pub fn stega_controls_ui(
    ui: &mut egui::Ui,
    settings: &mut StegaSettings,
    panel: &StegaPanelState<'_>,
    commands: &mut Vec<StegaCommand>,
) {
    let state = panel.state;
    let embedding = state.is_embedding();
    ui.heading("Stage 1: the field");
    match &state.stage1 {
        Some(stage1) => ui.label(&stage1.label),
        None => ui.label("none chosen yet"),
    };
    ui.horizontal_wrapped(|ui| {
        let nerf = ui
            .add_enabled(!embedding && panel.nerf_field.is_some(), egui::Button::new("NeRF lab's field"))
            .on_hover_text(panel.nerf_field.as_deref().unwrap_or("Train or load a field in the NeRF lab first"))
            .on_disabled_hover_text(panel.nerf_field.as_deref().unwrap_or("Train or load a field in the NeRF lab first"));
        if nerf.clicked() {
            commands.push(StegaCommand::UseNerfField);
        }
        if ui
            .add_enabled(!embedding && panel.lift_field.is_some(), egui::Button::new("Lift result"))
            .on_hover_text(panel.lift_field.as_deref().unwrap_or("Lift a photo in the lift lab first"))
            .on_disabled_hover_text(panel.lift_field.as_deref().unwrap_or("Lift a photo in the lift lab first"))
            .clicked()
        {
            commands.push(StegaCommand::UseLiftField);
        }
        if ui
            .add_enabled(!embedding, egui::Button::new("Checkpoint…"))
            .on_hover_text("A checkpoint folder (nerf.safetensors + config.json); or drop it on the window")
            .clicked()
        {
            commands.push(StegaCommand::Pick(StegaFile::OpenCheckpoint));
        }
    });

    ui.separator();
    ui.heading("Secret");
    ui.horizontal(|ui| {
        ui.selectable_value(&mut settings.secret, SecretChoice::Image, "Image");
        ui.selectable_value(&mut settings.secret, SecretChoice::Text, "Text");
        ui.selectable_value(&mut settings.secret, SecretChoice::Bits, "Bits");
    });
    match settings.secret {
        SecretChoice::Image => {
            ui.horizontal(|ui| {
                if ui
                    .button("Open image…")
                    .on_hover_text("PNG or JPEG; its centred square is used (the built-in coffee.png until then). Or drop it on the window")
                    .clicked()
                {
                    commands.push(StegaCommand::Pick(StegaFile::OpenSecret));
                }
                let label = ui.label("side").on_hover_text("The secret is brought to this many pixels square (a multiple of 8)");
                ui.add(
                    egui::DragValue::new(&mut settings.secret_side)
                        .range(MIN_SECRET_SIDE..=MAX_SECRET_SIDE)
                        .speed(8)
                        .suffix(" px"),
                )
                .labelled_by(label.id);
                settings.secret_side = (settings.secret_side / 8) * 8;
            });
        }
        SecretChoice::Text => {
            ui.add(egui::TextEdit::singleline(&mut settings.text).hint_text("a message").desired_width(f32::INFINITY));
            ui.label(
                egui::RichText::new(format!(
                    "{} bits with its length and CRC-32",
                    message::framed_bits(settings.text.len())
                ))
                .color(theme::weak_text_colour(ui)),
            );
        }
        SecretChoice::Bits => {
            ui.horizontal(|ui| {
                let label = ui.label("Bits").on_hover_text("Random bits drawn from the seed");
                ui.add(egui::DragValue::new(&mut settings.bits).range(1..=MAX_SECRET_BITS)).labelled_by(label.id);
            });
        }
    }
    match state.secret() {
        Ok(secret) => {
            ui.horizontal(|ui| {
                if let Some(texture) = &state.textures.secret {
                    ui.add(egui::Image::new(texture).fit_to_exact_size(vec2(32.0, 32.0)));
                }
                let name = match (settings.secret, &settings.secret_image) {
                    (SecretChoice::Image, Some(path)) => {
                        path.file_name().map_or_else(String::new, |n| format!("{}, ", n.to_string_lossy()))
                    }
                    (SecretChoice::Image, None) => "coffee.png, ".to_owned(),
                    _ => String::new(),
                };
                ui.label(format!("{name}{}", secret.describe()));
            });
        }
        Err(problem) => {
            ui.colored_label(theme::error_colour(ui), problem);
        }
    }

    ui.separator();
    ui.heading("Stage 2: embed");
    ui.horizontal(|ui| {
        let label = ui.label("Steps").on_hover_text("One rendered view per step (a training camera or a random orbit camera)");
        ui.add(egui::DragValue::new(&mut settings.steps).range(1..=100_000)).labelled_by(label.id);
        let label = ui.label("Seed");
        ui.add(egui::DragValue::new(&mut settings.seed)).labelled_by(label.id);
    });
    ui.horizontal(|ui| {
        ui.checkbox(&mut settings.masking, "Masking").on_hover_text(
            "Adaptive gradient masking: colour layers with large weights move less (each layer's step × (e_min / e_layer)³)",
        );
        ui.checkbox(&mut settings.augment, "Against attacks").on_hover_text(
            "Half the steps pass the views through a random attack (noise, blur, JPEG, crop, rotation, downscale)",
        );
    });
    egui::CollapsingHeader::new("Loss weights and rate").id_salt("stega advanced").show(ui, |ui| {
        egui::Grid::new("stega weights").num_columns(4).show(ui, |ui| {
            let w = &mut settings.weights;
            for (name, value, tip) in [
                ("render", &mut w.render, "MSE of the marked render against stage 1's"),
                ("secret", &mut w.secret, "The decoder's error on marked views"),
                ("blank", &mut w.blank, "The decoder's error on clean views (target: blank)"),
                ("classifier", &mut w.class, "Binary cross-entropy of the classifier (marked or clean)"),
            ] {
                let label = ui.label(name).on_hover_text(tip);
                ui.add(egui::DragValue::new(value).range(0.0..=100.0).speed(0.01)).labelled_by(label.id);
                if name == "secret" || name == "classifier" {
                    ui.end_row();
                }
            }
        });
        ui.horizontal(|ui| {
            let label = ui.label("Colour MLP rate").on_hover_text("Adam's learning rate for the colour network (decays tenfold)");
            ui.add(egui::DragValue::new(&mut settings.field_lr).range(1e-6..=0.1).speed(1e-5)).labelled_by(label.id);
        });
        ui.horizontal(|ui| {
            let label = ui.label("render weight at the end").on_hover_text(
                "The render weight rises from the one above to this between 25% of the steps and the field's stop: \
                 the signature starts at the repository's balance, then fidelity is tightened (1: no ramp)",
            );
            ui.add(egui::DragValue::new(&mut settings.render_weight_end).range(0.01..=1000.0).speed(0.1))
                .labelled_by(label.id);
        });
        ui.horizontal(|ui| {
            let label = ui
                .label("nets alone at the end")
                .on_hover_text("Share of the steps, at the end, in which the field is frozen and only the decoder and classifier learn");
            ui.add(egui::DragValue::new(&mut settings.nets_only_share).range(0.0..=0.5).speed(0.01))
                .labelled_by(label.id);
        });
        ui.checkbox(&mut settings.decoder_trains_field, "Decoder terms train the field").on_hover_text(
            "As in the repository's loss: the decoder's terms also move the colour network. Off (default), the \
             field moves only to stay close to stage 1 and to be recognised by the classifier: renders stay closer.",
        );
    });
    let can_embed = state.stage1.is_some() && state.secret().is_ok() && !embedding;
    if ui
        .add_enabled(can_embed, egui::Button::new("▶ Embed"))
        .on_hover_text("Fine-tune the field's colour network (geometry stays frozen) so every view carries the secret")
        .on_disabled_hover_text("Choose a field (stage 1) and a secret first")
        .clicked()
    {
        commands.push(StegaCommand::Embed);
    }
    if let Some(summary) = &state.summary {
        ui.label(summary);
    }
    if let Some(m) = &state.metrics {
        metrics_grid_ui(ui, m);
    }

    ui.separator();
    ui.heading("Recover");
    ui.horizontal_wrapped(|ui| {
        if ui
            .add_enabled(state.decoder.is_some(), egui::Button::new("Recover from image…"))
            .on_hover_text("Any image (a render, a screenshot, a photo of the screen): does it carry the secret?")
            .on_disabled_hover_text("Embed a secret or open a decoder first")
            .clicked()
        {
            commands.push(StegaCommand::Pick(StegaFile::RecoverImage));
        }
        if ui.button("Open decoder…").on_hover_text("A decoder.safetensors written by the app or `sparsefield stega embed`").clicked() {
            commands.push(StegaCommand::Pick(StegaFile::OpenDecoder));
        }
    });
    if let Some(found) = &state.from_file {
        ui.horizontal(|ui| {
            if let Some(texture) = &state.textures.file_recovered {
                ui.add(egui::Image::new(texture).fit_to_exact_size(vec2(64.0, 64.0)));
            }
            ui.vertical(|ui| {
                let name = found.path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                ui.label(name);
                let verdict = if found.recovery.carries_secret() { "carries a secret" } else { "no secret found" };
                ui.label(format!("{verdict} (score {:.3}, threshold {:.3})", found.recovery.score, found.recovery.threshold))
                    .on_hover_text("The threshold was calibrated after stage 2 on views of the marked field it did not train on");
                if let Some(text) = found.recovery.text().filter(|_| found.recovery.carries_secret()) {
                    match text {
                        Ok(text) => ui.label(format!("«{text}»")),
                        Err(e) => ui.label(format!("not a text ({e})")),
                    };
                }
            });
        });
    }

    ui.separator();
    ui.heading("Export");
    ui.horizontal_wrapped(|ui| {
        if ui
            .add_enabled(state.marked.is_some(), egui::Button::new("Save marked field…"))
            .on_hover_text("A checkpoint folder (loads in the NeRF lab) with decoder.safetensors, metrics.json and the sweep")
            .clicked()
        {
            commands.push(StegaCommand::Pick(StegaFile::Export));
        }
    });
}

fn metrics_grid_ui(ui: &mut egui::Ui, m: &EmbedMetrics) {
    egui::Grid::new("stega metrics").num_columns(2).striped(true).show(ui, |ui| {
        let mut row = |name: &str, value: String, tip: &str| {
            ui.label(name).on_hover_text(tip);
            ui.label(value);
            ui.end_row();
        };
        row("Render vs stage 1", format!("{:.2} dB", m.render_psnr_vs_stage1_db), "PSNR of the marked views against stage 1's, on test cameras");
        if let (Some(a), Some(b)) = (m.render_psnr_vs_ground_truth_db, m.stage1_psnr_vs_ground_truth_db) {
            row("Vs ground truth", format!("{a:.2} dB (was {b:.2})"), "PSNR against the data set's test images, marked and stage 1");
        }
        if let Some(p) = m.recovery_psnr_db {
            row("Secret recovered", format!("{p:.2} dB, SSIM {:.3}", m.recovery_ssim.unwrap_or(f64::NAN)), "From the marked test views");
            row("From clean views", format!("{:.2} dB", m.clean_recovery_psnr_db.unwrap_or(f64::NAN)), "From stage 1's views: should be far lower");
        }
        if let Some(a) = m.bit_accuracy {
            row("Bits right", format!("{:.2}% (clean {:.1}%)", 100.0 * a, 100.0 * m.clean_bit_accuracy.unwrap_or(f64::NAN)), "From the marked test views, and from stage 1's");
        }
        if let Some(t) = m.text_recovered {
            row("Text read back", format!("{:.0}% of views", 100.0 * t), "Views whose bits pass the length and checksum test");
        }
        row("Classifier", format!("{:.1}% right", 100.0 * m.classifier_accuracy), "Marked views called marked and clean views called clean");
    });
}

/// The central part: the viewport and the recovered view, the robustness panel, the plots.
pub fn stega_main_ui(
    ui: &mut egui::Ui,
    settings: &mut StegaSettings,
    view: &mut NerfViewState,
    viewer: &crate::ui::orbit_viewer::ViewerPanelState<'_>,
    panel: &StegaPanelState<'_>,
    commands: &mut Vec<StegaCommand>,
) {
    let state = panel.state;
    ui.horizontal(|ui| {
        ui.heading("StegaNeRF lab");
        ui.checkbox(&mut settings.turntable, "Turntable").on_hover_text("Orbit automatically");
        if ui.button("⟲ Reset view").on_hover_text("Back to the home view (or double-click the view)").clicked() {
            view.orbit = viewer.orbit_home;
            view.last_change = ui.input(|i| i.time);
        }
    });
    let side_column = 200.0;
    let plots_height = theme::MIN_PLOT_HEIGHT;
    let robustness_height = 150.0;
    let available = ui.available_size();
    let view_height = (available.y - plots_height - robustness_height).max(160.0);
    ui.horizontal_top(|ui| {
        let size = vec2((available.x - side_column - theme::SPACING).max(160.0), view_height);
        let options = ViewportOptions {
            view_id: 3,
            mode: ViewMode::Rgb,
            turntable: settings.turntable,
            refine_size: 256,
            refine_while_training: false,
            idle_hint: "Choose a field (stage 1) to see it here",
        };
        viewport_ui(ui, size, &options, view, viewer);
        ui.vertical(|ui| {
            ui.set_width(side_column);
            recovered_column_ui(ui, panel, (view_height / 3.0 - 24.0).clamp(48.0, side_column));
        });
    });
    // The view at rest is decoded (after the attack) once the camera stops.
    let at_rest = ui.input(|i| i.time) - view.last_change > 0.3 && !settings.turntable;
    if at_rest && state.marked.is_some() {
        let camera = view.orbit.camera(VIEW_SIDE, VIEW_SIDE);
        commands.push(StegaCommand::RecoverView { camera, camera_key: camera_key(&camera), attack: settings.attack() });
    }
    robustness_ui(ui, settings, state, commands, robustness_height);
    #[allow(clippy::cast_precision_loss)]
    crate::ui::widgets::loss_psnr_plots_ui(
        ui,
        "stega",
        ("Secret loss (log₁₀)", "Marked render vs stage 1 (dB)"),
        &state.history,
        theme::MIN_PLOT_HEIGHT - 40.0,
    );
}

fn camera_key(camera: &crate::compute::nerf::camera::Camera) -> u64 {
    use std::hash::Hasher;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    camera.hash_bits(&mut hasher);
    hasher.finish()
}

/// The secret recovered from the view at rest, stage 1's render of it, and the difference.
fn recovered_column_ui(ui: &mut egui::Ui, panel: &StegaPanelState<'_>, side: f32) {
    let state = panel.state;
    let t = &state.textures;
    let image = |ui: &mut egui::Ui, texture: Option<&egui::TextureHandle>, title: &str, tip: &str| {
        ui.label(title).on_hover_text(tip);
        match texture {
            Some(texture) => {
                ui.add(egui::Image::new(texture).fit_to_exact_size(vec2(side, side)));
            }
            None => {
                let (rect, _) = ui.allocate_exact_size(vec2(side, side), egui::Sense::hover());
                ui.painter().rect_filled(rect, 2.0, theme::view_background(ui));
            }
        }
    };
    match state.view.as_ref().map(|(_, v)| v) {
        Some(view) => {
            let r = &view.recovery;
            let verdict = if r.carries_secret() { "secret found" } else { "no secret" };
            image(ui, t.recovered.as_ref(), &format!("Recovered: {verdict} ({:.2})", r.score), "What the decoder reads from the view (after the attack below), with the classifier's score");
        }
        None if state.marked.is_some() => image(ui, None, "Recovered: waiting for the view…", "Let the view rest"),
        None => image(ui, None, "Recovered: embed a secret first", ""),
    }
    image(ui, t.stage1.as_ref(), "Stage 1, same view", "The field before the secret was embedded");
    image(ui, t.difference.as_ref(), "Difference ×10", "|marked − stage 1| amplified ten times");
}

/// One attack applied live to the view at rest, and the sweep over all of them.
fn robustness_ui(
    ui: &mut egui::Ui,
    settings: &mut StegaSettings,
    state: &StegaState,
    commands: &mut Vec<StegaCommand>,
    height: f32,
) {
    ui.horizontal(|ui| {
        ui.strong("Robustness");
        ui.checkbox(&mut settings.attack_on, "Attack the view").on_hover_text("Apply the attack to the view at rest before decoding it");
        let kind = Attack::KINDS[settings.attack.min(Attack::KINDS.len() - 1)];
        egui::ComboBox::from_id_salt("stega attack").selected_text(kind.kind_name()).show_ui(ui, |ui| {
            for (i, k) in Attack::KINDS.iter().enumerate() {
                ui.selectable_value(&mut settings.attack, i, k.kind_name());
            }
        });
        let range = kind.sweep_strengths();
        let (lo, hi) = (range[0].min(range[range.len() - 1]), range[0].max(range[range.len() - 1]));
        let strength = &mut settings.strengths[settings.attack.min(5)];
        ui.add(egui::Slider::new(strength, lo..=hi).text(kind.strength_name()));
        if ui
            .add_enabled(state.marked.is_some() && !state.is_sweeping(), egui::Button::new("Run sweep"))
            .on_hover_text("Every attack at increasing strength on six test views: recovery and the classifier's verdicts")
            .clicked()
        {
            commands.push(StegaCommand::Sweep);
        }
    });
    ui.horizontal_top(|ui| {
        ui.set_height(height - 30.0);
        if let (Some((_, view)), Some(texture)) = (&state.view, &state.textures.attacked) {
            ui.vertical(|ui| {
                ui.label("View as decoded");
                ui.add(egui::Image::new(texture).fit_to_exact_size(vec2(height - 54.0, height - 54.0)));
            });
            ui.vertical(|ui| {
                ui.label(format!("score {:.3} (clean view {:.3})", view.recovery.score, view.clean_recovery.score));
            });
        }
        if !state.sweep.is_empty() {
            sweep_plots_ui(ui, state, height - 30.0);
        } else if state.view.is_none() {
            ui.add(egui::Label::new(
                egui::RichText::new(
                    "Embed a secret and let the view rest: the view as the decoder reads it (after the attack, \
                     when on) shows here. Run sweep draws recovery against each attack's strength.",
                )
                .color(theme::weak_text_colour(ui)),
            )
            .wrap());
        }
    });
}

/// One small plot per attack kind: recovery against strength.
fn sweep_plots_ui(ui: &mut egui::Ui, state: &StegaState, height: f32) {
    use egui_plot::{Line, PlotPoints, Points};
    let image_secret = state.marked.as_ref().is_some_and(|m| matches!(m.decoder.config.kind, crate::compute::stega::nets::DecoderKind::Image));
    let width = ((ui.available_width() - 5.0 * theme::SPACING) / 6.0).max(60.0);
    for kind in Attack::KINDS {
        let points: Vec<[f64; 2]> =
            state.sweep.iter().filter(|r| r.attack == kind.kind_name()).map(|r| [r.strength, r.recovery]).collect();
        let colour = theme::psnr_colour(ui);
        ui.vertical(|ui| {
            ui.label(kind.kind_name());
            crate::ui::plot_key::new_plot(format!("stega sweep {}", kind.kind_name()))
                .width(width)
                .height(height - 20.0)
                .x_axis_label(kind.strength_name())
                .y_axis_label(if image_secret { "dB" } else { "bits right" })
                .show(ui, |plot| {
                    plot.line(Line::new(kind.kind_name(), PlotPoints::from(points.clone())).color(colour));
                    plot.points(Points::new(kind.kind_name(), PlotPoints::from(points)).radius(2.5).color(colour));
                });
        });
    }
}
