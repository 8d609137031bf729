//! The NeuralLift-360 lab: one photo (or the built-in example), its mask and rough depth, the
//! lift's settings; the orbit viewport of the forming object, the reference view beside the
//! render from the reference camera, a strip of views around it, and the losses.

use std::path::PathBuf;

use eframe::egui;
use egui::vec2;
use egui_plot::PlotPoints;
use serde::{Deserialize, Serialize};

use super::{LiftCommand, LiftFile};
use super::{LiftTextures, LiftViews};
use crate::compute::lift::input::{LiftInput, MAX_RESOLUTION, MIN_RESOLUTION, MaskOrigin, MaskSettings, MaskSource};
use crate::compute::lift::train::{LiftConfig, LiftRecord, PriorKind};
use crate::compute::nerf::bake::ViewMode;
use crate::jobs::JobStatus;
use crate::ui::plot_key::{Dash, LogAxes, Series, key_ui};
use crate::ui::orbit_viewer::{NerfViewState, ViewerPanelState, ViewportOptions, viewport_ui};
use crate::ui::theme;

/// Azimuths (degrees from the reference) of the novel-view strip.
pub const NOVEL_AZIMUTHS_DEG: [f32; 8] = [0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0];

/// Where the rough depth comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum DepthSetting {
    #[default]
    Inflate,
    File(PathBuf),
    /// The built-in example's true depth.
    True,
}

/// Everything the user sets in the lift lab; persisted between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiftSettings {
    /// The photo; `None` is the built-in example.
    pub image: Option<PathBuf>,
    pub mask_file: Option<PathBuf>,
    pub mask: MaskSettings,
    pub depth: DepthSetting,
    /// The depth file holds disparity (larger = nearer).
    pub disparity: bool,
    pub resolution: u32,
    pub lift: LiftConfig,
    pub use_ranking: bool,
    pub mode: ViewMode,
    pub turntable: bool,
    pub refine_size: u32,
    /// Side of the exported views and turntable frames.
    pub export_size: u32,
}

impl Default for LiftSettings {
    fn default() -> Self {
        Self {
            image: None,
            mask_file: None,
            mask: MaskSettings::default(),
            depth: DepthSetting::Inflate,
            disparity: false,
            resolution: 64,
            lift: LiftConfig::default(),
            use_ranking: true,
            mode: ViewMode::Rgb,
            turntable: false,
            refine_size: 256,
            export_size: 256,
        }
    }
}

impl LiftSettings {
    /// The lift's configuration (the ranking loss off when unticked).
    pub fn config(&self) -> LiftConfig {
        let mut cfg = self.lift;
        if !self.use_ranking {
            cfg.rank_weight = 0.0;
        }
        cfg.snapshot_interval_secs = 1.0;
        cfg
    }

    /// Brings restored settings into range; an invalid lift configuration gets the defaults.
    pub fn sanitize(&mut self) {
        self.resolution = self.resolution.clamp(MIN_RESOLUTION, MAX_RESOLUTION);
        if !(self.mask.threshold.is_finite() && (0.0..=2.0).contains(&self.mask.threshold)) {
            self.mask.threshold = MaskSettings::default().threshold;
        }
        if self.lift.validate().is_err() {
            self.lift = LiftConfig::default();
        }
        self.refine_size = self.refine_size.clamp(64, 1024);
        self.export_size = self.export_size.clamp(16, 1024);
        if self.image.is_some() && self.depth == DepthSetting::True {
            self.depth = DepthSetting::Inflate;
        }
    }
}

/// What the panels read from the lab.
pub struct LiftPanelState<'a> {
    pub input: Option<&'a LiftInput>,
    pub problem: Option<&'a str>,
    pub lifting: bool,
    pub status: Option<&'a JobStatus>,
    pub history: &'a [LiftRecord],
    pub novel_history: &'a [(u64, f64)],
    pub views: Option<&'a LiftViews>,
    pub textures: &'a LiftTextures,
    pub summary: Option<&'a str>,
    pub has_field: bool,
}

fn weak(ui: &mut egui::Ui, text: impl Into<String>) {
    ui.label(egui::RichText::new(text.into()).color(theme::weak_text_colour(ui)));
}

/// The sidebar: photo, mask, depth, lift settings, export.
pub fn lift_controls_ui(
    ui: &mut egui::Ui,
    settings: &mut LiftSettings,
    state: &LiftPanelState<'_>,
    commands: &mut Vec<LiftCommand>,
) {
    ui.heading("Photo");
    let name = settings.image.as_ref().map_or("built-in example".to_owned(), |p| p.display().to_string());
    ui.label(format!("Lifting: {name}"));
    ui.horizontal(|ui| {
        if ui.button("Open photo…").on_hover_text("A PNG or JPEG; an alpha channel is used as the mask (or drop one on the window while this lab is open)").clicked() {
            commands.push(LiftCommand::Pick(LiftFile::OpenImage));
        }
        if ui
            .add_enabled(settings.image.is_some(), egui::Button::new("Built-in example"))
            .on_hover_text(
                "A render of an object whose true views from every side are known, so novel views are scored",
            )
            .clicked()
        {
            commands.push(LiftCommand::UseExample);
        }
    });
    weak(ui, "Or drop a photo on the window while this lab is open.");
    if let Some(input) = state.input {
        weak(
            ui,
            format!(
                "{}×{} for training · object {:.0}% of the view · mask from the {}",
                input.width,
                input.height,
                100.0 * input.coverage(),
                input.mask_origin.label()
            ),
        );
        for notice in &input.notices {
            weak(ui, notice);
        }
    }
    if let Some(problem) = state.problem {
        ui.colored_label(theme::error_colour(ui), problem);
        weak(ui, "The previous input stays until the settings give a usable one.");
    }

    ui.separator();
    ui.heading("Mask");
    ui.horizontal(|ui| {
        ui.selectable_value(&mut settings.mask.source, MaskSource::Auto, "Alpha or matte")
            .on_hover_text("The alpha channel when the photo has one, else the border matte");
        ui.selectable_value(&mut settings.mask.source, MaskSource::Border, "Border matte")
            .on_hover_text("Ignore alpha: background is what is connected to the border and close to its colour");
    });
    let matte_used = settings.mask_file.is_none()
        && (settings.mask.source == MaskSource::Border
            || state.input.is_some_and(|i| i.mask_origin == MaskOrigin::BorderMatte));
    ui.add_enabled(
        matte_used,
        egui::Slider::new(&mut settings.mask.threshold, 0.01..=0.6).text("Matte threshold").step_by(0.01),
    )
    .on_hover_text(
        "Colour distance (RGB in 0–1) below which pixels connected to the border count as background. \
         Raise it when background specks stay in the mask; lower it when parts of the object vanish.",
    );
    ui.horizontal(|ui| {
        if ui.button("Mask file…").on_hover_text("A mask image (white = object) of the photo's aspect ratio").clicked()
        {
            commands.push(LiftCommand::Pick(LiftFile::OpenMask));
        }
        if let Some(path) = &settings.mask_file {
            ui.label(path.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()));
            if ui.small_button("✖").on_hover_text("Use alpha or the matte again").clicked() {
                commands.push(LiftCommand::ClearMask);
            }
        }
    });

    ui.separator();
    ui.heading("Rough depth");
    weak(ui, "Only its order is used (ranking loss), so any scale or shift works.");
    ui.horizontal(|ui| {
        if ui
            .selectable_label(settings.depth == DepthSetting::Inflate, "Inflate")
            .on_hover_text("From the silhouette: a bulge that is highest far from the outline")
            .clicked()
        {
            settings.depth = DepthSetting::Inflate;
        }
        if ui
            .selectable_label(matches!(settings.depth, DepthSetting::File(_)), "File…")
            .on_hover_text("A 16-bit PNG or .npy depth map of the photo (e.g. from MiDaS or Depth Anything)")
            .clicked()
        {
            commands.push(LiftCommand::Pick(LiftFile::OpenDepth));
        }
        if ui
            .add_enabled(
                settings.image.is_none(),
                egui::Button::selectable(settings.depth == DepthSetting::True, "True depth"),
            )
            .on_hover_text("The built-in example's exact depth: what a perfect depth estimator would give")
            .clicked()
        {
            settings.depth = DepthSetting::True;
        }
    });
    if let DepthSetting::File(path) = &settings.depth {
        weak(ui, path.display().to_string());
        ui.checkbox(&mut settings.disparity, "File holds disparity")
            .on_hover_text("Larger values are nearer (MiDaS, Depth Anything); leave off for metric depth");
    }

    ui.separator();
    ui.heading("Lift");
    egui::ComboBox::from_label("Prior")
        .selected_text(settings.lift.prior.label())
        .show_ui(ui, |ui| {
            for prior in PriorKind::ALL {
                ui.selectable_value(&mut settings.lift.prior, prior, prior.label()).on_hover_text(prior.help());
            }
        })
        .response
        .on_hover_text(settings.lift.prior.help());
    ui.checkbox(&mut settings.use_ranking, "Depth ranking loss")
        .on_hover_text("Rendered depths keep the rough depth's order on pixel pairs inside the mask");
    ui.add(egui::Slider::new(&mut settings.lift.steps, 100..=10_000).logarithmic(true).text("Steps"));
    ui.add(egui::Slider::new(&mut settings.resolution, MIN_RESOLUTION..=MAX_RESOLUTION).text("Training size"))
        .on_hover_text("Longer side of the training image in pixels; 64 lifts in a few minutes on two CPU cores");
    ui.add(egui::Slider::new(&mut settings.lift.fov_deg, 10.0..=120.0).text("Field of view °"))
        .on_hover_text("Field of view of the photo's camera across its shorter side");
    ui.add(egui::Slider::new(&mut settings.lift.elevation_deg, -60.0..=60.0).text("Elevation °"))
        .on_hover_text("How far above the object's equator the photo was taken");
    egui::CollapsingHeader::new("Loss weights").show(ui, |ui| {
        let weight = |ui: &mut egui::Ui, value: &mut f32, label: &str, help: &str| {
            ui.add(egui::Slider::new(value, 0.0..=100.0).logarithmic(true).text(label)).on_hover_text(help);
        };
        weight(ui, &mut settings.lift.rgb_weight, "Reference RGB", "The photo's colours (the paper's ~40)");
        weight(ui, &mut settings.lift.mask_weight, "Reference mask", "Opacity against the mask");
        weight(ui, &mut settings.lift.rank_weight, "Depth ranking", "Keeping the rough depth's order");
        weight(ui, &mut settings.lift.symmetry_mask_weight, "Back silhouette", "Mirrored silhouette from behind");
        weight(ui, &mut settings.lift.symmetry_rgb_weight, "Back colours", "Mirrored colours from behind");
        weight(ui, &mut settings.lift.hull_weight, "Side silhouette", "The silhouette seen from every side");
        weight(ui, &mut settings.lift.entropy_weight, "Opacity entropy", "Crisp opacity on random views");
        ui.checkbox(&mut settings.lift.view_dependent, "View-dependent colour")
            .on_hover_text("Let colours change with the direction (one photo rarely supports it)");
        ui.add(egui::DragValue::new(&mut settings.lift.seed).prefix("seed "));
    });
    ui.horizontal(|ui| {
        let start = ui.add_enabled(!state.lifting && state.input.is_some(), egui::Button::new("▶ Lift"));
        if start.on_hover_text("Optimise a field from the photo in the background").clicked() {
            commands.push(LiftCommand::Start);
        }
        if ui.button("Reset settings").on_hover_text("Lift settings back to their defaults").clicked() {
            commands.push(LiftCommand::ResetSettings);
        }
    });
    if let Some(status) = state.status {
        ui.add(egui::ProgressBar::new(status.fraction()).show_percentage());
    }
    if let Some(summary) = state.summary {
        weak(ui, summary);
    }
    ui.separator();
    ui.add(egui::Slider::new(&mut settings.export_size, 16..=1024).logarithmic(true).text("Export size"))
        .on_hover_text("Side of the exported views and turntable frames in pixels");
    if ui
        .add_enabled(state.has_field, egui::Button::new("Export…"))
        .on_hover_text(
            "Checkpoint, turntable GIF, reference and novel views, metrics.json and the losses, into a folder",
        )
        .clicked()
    {
        commands.push(LiftCommand::Pick(LiftFile::Export));
    }
}

fn thumbnail(ui: &mut egui::Ui, texture: Option<&egui::TextureHandle>, label: &str, side: f32) {
    ui.vertical(|ui| {
        ui.set_width(side);
        match texture {
            Some(t) => {
                ui.add(egui::Image::new(t).fit_to_exact_size(vec2(side, side)).maintain_aspect_ratio(true));
            }
            None => {
                let (rect, _) = ui.allocate_exact_size(vec2(side, side), egui::Sense::hover());
                ui.painter().rect_filled(rect, 2.0, theme::view_background(ui));
            }
        }
        ui.label(egui::RichText::new(label).small());
    });
}

/// The central panel: viewport with the reference and rendered views beside it, the novel-view
/// strip and the plots.
pub fn lift_main_ui(
    ui: &mut egui::Ui,
    settings: &mut LiftSettings,
    view: &mut NerfViewState,
    viewer: &ViewerPanelState<'_>,
    state: &LiftPanelState<'_>,
    commands: &mut Vec<LiftCommand>,
) {
    ui.horizontal(|ui| {
        ui.heading("NeuralLift-360 lab");
        // The lab's main action, also here so that it is in view without scrolling the sidebar.
        let start = ui.add_enabled(!state.lifting && state.input.is_some(), egui::Button::new("▶ Lift"));
        if start.on_hover_text("Optimise a field from the photo in the background").clicked() {
            commands.push(LiftCommand::Start);
        }
        ui.separator();
        for mode in ViewMode::ALL {
            ui.selectable_value(&mut settings.mode, mode, mode.label());
        }
        ui.separator();
        ui.checkbox(&mut settings.turntable, "Turntable").on_hover_text("Orbit automatically");
        if ui.button("⟲ Reset view").on_hover_text("Back to the reference camera").clicked() {
            view.orbit = viewer.orbit_home;
            view.last_change = ui.input(|i| i.time);
        }
    });
    weak(ui, "Drag to orbit · scroll to zoom · double-click to return to the reference camera");
    let available = ui.available_size();
    let side_column = 250.0_f32.min(available.x * 0.35);
    let plots_height = theme::MIN_PLOT_HEIGHT + 40.0;
    let strip_height = 110.0;
    let view_height = (available.y - plots_height - strip_height).max(160.0);
    ui.horizontal(|ui| {
        let options = ViewportOptions {
            view_id: 2,
            mode: settings.mode,
            turntable: settings.turntable,
            refine_size: settings.refine_size,
            refine_while_training: false,
            idle_hint: "Press Lift to see the object form",
        };
        viewport_ui(ui, vec2(available.x - side_column - 12.0, view_height), &options, view, viewer);
        ui.vertical(|ui| {
            let side = ((side_column - 12.0) / 2.0).min((view_height - 60.0) / 3.0).max(40.0);
            let t = state.textures;
            ui.horizontal(|ui| {
                thumbnail(ui, t.photo.as_ref(), "photo", side);
                thumbnail(ui, t.render.as_ref(), "render", side);
            });
            ui.horizontal(|ui| {
                thumbnail(ui, t.mask.as_ref(), "mask", side);
                thumbnail(ui, t.render_depth.as_ref(), "rendered depth", side);
            });
            ui.horizontal(|ui| {
                thumbnail(ui, t.depth.as_ref(), "rough depth", side);
                ui.vertical(|ui| {
                    if let Some(views) = state.views {
                        let m = &views.metrics;
                        ui.label(format!("step {}", views.step));
                        ui.label(format!("reference {:.1} dB", m.reference_psnr_db));
                        ui.label(format!("mask IoU {:.3}", m.mask_iou));
                        for (a, p) in &m.novel_psnr_db {
                            ui.label(format!("true {a:.0}°: {p:.1} dB"));
                        }
                    }
                });
            });
        });
    });
    ui.horizontal(|ui| {
        #[allow(clippy::cast_precision_loss)]
        let side = ((available.x - 20.0) / NOVEL_AZIMUTHS_DEG.len() as f32 - 8.0).clamp(40.0, strip_height - 24.0);
        for (k, azimuth) in NOVEL_AZIMUTHS_DEG.iter().enumerate() {
            thumbnail(ui, state.textures.novel.get(k), &format!("{azimuth:.0}°"), side);
        }
    });
    plots_ui(ui, state.history, state.novel_history);
}

/// One loss term of a record.
type LossTerm = fn(&LiftRecord) -> f64;

/// The plots' colours (Okabe–Ito, readable in both themes and for colour-blind readers).
const LOSS_COLOURS: [egui::Color32; 4] = [
    egui::Color32::from_rgb(0, 114, 178),
    egui::Color32::from_rgb(230, 159, 0),
    egui::Color32::from_rgb(0, 158, 115),
    egui::Color32::from_rgb(204, 121, 167),
];

fn plots_ui(ui: &mut egui::Ui, history: &[LiftRecord], novel: &[(u64, f64)]) {
    // Less a title row above each plot.
    let height = (ui.available_height() - ui.spacing().interact_size.y).max(theme::MIN_PLOT_HEIGHT);
    let width = ui.available_width() / 2.0 - 8.0;
    ui.horizontal(|ui| {
        #[allow(clippy::cast_precision_loss)]
        let series = |f: fn(&LiftRecord) -> f64| -> PlotPoints<'static> {
            history.iter().filter(|r| f(r).is_finite() && f(r) > 0.0).map(|r| [r.step as f64, f(r).log10()]).collect()
        };
        ui.vertical(|ui| {
            let losses: [(Series, LossTerm); 4] = [
                (Series::new("total", LOSS_COLOURS[0]), |r| r.loss),
                (Series::new("mask", LOSS_COLOURS[1]).dash(Dash::Dashed), |r| r.mask_loss),
                (Series::new("ranking", LOSS_COLOURS[2]).dash(Dash::Dotted), |r| r.rank_loss),
                (Series::new("side silhouette", LOSS_COLOURS[3]).dash(Dash::Dashed), |r| r.hull_loss),
            ];
            let entries: Vec<Series> = losses.iter().map(|(s, _)| s.clone()).collect();
            ui.label("Loss terms (log₁₀)");
            let key = key_ui(ui, "lift losses", &entries);
            crate::ui::plot_key::new_plot("lift-losses")
                .width(width)
                .height(key.rest(height))
                .x_axis_label("step")
                .log10_y()
                .show(ui, |plot| {
                    for (s, f) in losses {
                        if key.shows(&s.name) {
                            plot.line(s.line(series(f)));
                        }
                    }
                });
        });
        #[allow(clippy::cast_precision_loss)]
        let psnr: PlotPoints<'static> =
            history.iter().filter(|r| r.psnr_db.is_finite()).map(|r| [r.step as f64, r.psnr_db]).collect();
        #[allow(clippy::cast_precision_loss)]
        let novel: Vec<[f64; 2]> = novel.iter().map(|&(s, p)| [s as f64, p]).collect();
        ui.vertical(|ui| {
            let entries = [
                Series::new("reference pixels (batch)", LOSS_COLOURS[0]),
                Series::new("true views 90°/180° (example)", LOSS_COLOURS[1]).marker(egui_plot::MarkerShape::Circle),
            ];
            ui.label("PSNR (dB)");
            let key = key_ui(ui, "lift psnr", &entries);
            crate::ui::plot_key::new_plot("lift-psnr")
                .width(width)
                .height(key.rest(height))
                .x_axis_label("step")
                .show(ui, |plot| {
                    if key.shows(&entries[0].name) {
                        plot.line(entries[0].line(psnr));
                    }
                    if key.shows(&entries[1].name) {
                        plot.line(entries[1].line(novel.clone()));
                        plot.points(entries[1].points(novel));
                    }
                });
        });
    });
}
