//! Every colour and spacing of the app, for the light and the dark theme.

use eframe::egui::{self, Color32};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThemeChoice {
    #[default]
    Dark,
    Light,
}

impl ThemeChoice {
    pub fn toggled(self) -> Self {
        match self {
            Self::Dark => Self::Light,
            Self::Light => Self::Dark,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Dark => "☀ Light theme",
            Self::Light => "🌙 Dark theme",
        }
    }
}

/// Installs the fonts: egui's defaults (with its monochrome emoji fonts, for the icons on buttons)
/// plus Hack as a fallback of the proportional family, for maths symbols such as ∇ and →.
pub fn install_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    if let Some(proportional) = fonts.families.get_mut(&egui::FontFamily::Proportional) {
        proportional.insert(1.min(proportional.len()), "Hack".to_owned());
    }
    ctx.set_fonts(fonts);
}

/// Applies the theme to the whole context.
pub fn apply(ctx: &egui::Context, choice: ThemeChoice) {
    ctx.set_theme(match choice {
        ThemeChoice::Dark => egui::Theme::Dark,
        ThemeChoice::Light => egui::Theme::Light,
    });
    ctx.all_styles_mut(|style| {
        style.spacing.item_spacing = egui::vec2(SPACING, SPACING * 0.75);
        style.spacing.button_padding = egui::vec2(6.0, 3.0);
    });
}

/// Gap between widgets.
pub const SPACING: f32 = 8.0;
/// Width of the left side panel.
pub const SIDE_PANEL_WIDTH: f32 = 290.0;
/// Smallest height of a training plot.
pub const MIN_PLOT_HEIGHT: f32 = 150.0;
/// Corner radius of the image views.
pub const VIEW_ROUNDING: u8 = 4;

fn is_dark(ui: &egui::Ui) -> bool {
    ui.visuals().dark_mode
}

pub fn error_colour(ui: &egui::Ui) -> Color32 {
    if is_dark(ui) { Color32::from_rgb(255, 110, 100) } else { Color32::from_rgb(190, 30, 30) }
}

pub fn warning_colour(ui: &egui::Ui) -> Color32 {
    if is_dark(ui) { Color32::from_rgb(240, 190, 80) } else { Color32::from_rgb(160, 100, 0) }
}

pub fn info_colour(ui: &egui::Ui) -> Color32 {
    ui.visuals().text_color()
}

pub fn success_colour(ui: &egui::Ui) -> Color32 {
    if is_dark(ui) { Color32::from_rgb(120, 210, 130) } else { Color32::from_rgb(20, 130, 40) }
}

/// Secondary text (hints, units).
pub fn weak_text_colour(ui: &egui::Ui) -> Color32 {
    ui.visuals().weak_text_color()
}

pub fn loss_colour(ui: &egui::Ui) -> Color32 {
    if is_dark(ui) { Color32::from_rgb(250, 140, 60) } else { Color32::from_rgb(210, 90, 10) }
}

pub fn psnr_colour(ui: &egui::Ui) -> Color32 {
    if is_dark(ui) { Color32::from_rgb(90, 170, 250) } else { Color32::from_rgb(20, 90, 190) }
}

/// Background behind image views (outside the image).
pub fn view_background(ui: &egui::Ui) -> Color32 {
    if is_dark(ui) { Color32::from_gray(24) } else { Color32::from_gray(210) }
}

pub fn view_border(ui: &egui::Ui) -> egui::Stroke {
    egui::Stroke::new(1.0, ui.visuals().widgets.noninteractive.bg_stroke.color)
}

/// Overlay shown while files are dragged over the window.
pub fn drop_overlay() -> Color32 {
    Color32::from_black_alpha(180)
}

/// Text drawn over the 3D view (on any background).
pub fn overlay_text_colour() -> Color32 {
    Color32::from_rgb(255, 200, 60)
}

/// Training-camera frustums in the 3D view.
pub fn frustum_colour() -> Color32 {
    Color32::from_rgba_unmultiplied(255, 170, 40, 140)
}
