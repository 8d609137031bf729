//! The NeRF lab: data and training settings in the sidebar; the orbitable viewport (GPU fast
//! path while moving, the full field when the camera rests), training-camera frustums, and the
//! loss and PSNR plots.

use eframe::egui::{self, pos2, vec2};
use glam::Vec3;
use serde::{Deserialize, Serialize};

use super::DataSource;
use super::{NerfCommand, NerfFile};
use crate::compute::nerf::TrainConfig;
use crate::compute::nerf::bake::{BakedGrid, ViewMode};
use crate::compute::nerf::dataset::Dataset;
use crate::compute::nerf::orbit::Orbit;
use crate::jobs::JobStatus;
pub use crate::ui::orbit_viewer::{NerfViewState, ViewerPanelState, ViewportOptions, viewport_ui};
use crate::ui::theme;

/// Everything the user sets in the NeRF lab; persisted between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NerfSettings {
    pub steps: u64,
    pub learning_rate: f64,
    pub batch_samples: usize,
    pub seed: u64,
    pub random_background: bool,
    /// Integer downscale of data set folders.
    pub downscale: u32,
    /// Image size of the demo scene.
    pub demo_size: u32,
    pub mode: ViewMode,
    pub show_frustums: bool,
    pub turntable: bool,
    /// Render the full field on the CPU when the camera rests, also while training (slows it).
    pub refine_while_training: bool,
    /// Longer side of the full-quality frame.
    pub refine_size: u32,
    pub export_size: u32,
    pub turntable_frames: usize,
}

impl Default for NerfSettings {
    fn default() -> Self {
        let train = TrainConfig::default();
        Self {
            steps: train.steps,
            learning_rate: train.learning_rate,
            batch_samples: train.target_samples_per_batch,
            seed: train.seed,
            random_background: train.random_background,
            downscale: 1,
            demo_size: 128,
            mode: ViewMode::Rgb,
            show_frustums: true,
            turntable: false,
            refine_while_training: false,
            refine_size: 384,
            export_size: 512,
            turntable_frames: 60,
        }
    }
}

impl NerfSettings {
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            steps: self.steps,
            seed: self.seed,
            learning_rate: self.learning_rate,
            target_samples_per_batch: self.batch_samples,
            random_background: self.random_background,
            ..TrainConfig::default()
        }
    }

    /// Brings values from an old or edited settings file back into the controls' ranges.
    pub fn sanitize(&mut self) {
        let d = Self::default();
        if self.train_config().validate().is_err() {
            (self.steps, self.learning_rate, self.batch_samples) = (d.steps, d.learning_rate, d.batch_samples);
        }
        self.batch_samples = self.batch_samples.clamp(1 << 10, 1 << 20);
        self.downscale = self.downscale.clamp(1, 16);
        self.demo_size = self.demo_size.clamp(32, 1024);
        self.refine_size = self.refine_size.clamp(64, 1024);
        self.export_size = self.export_size.clamp(16, 4096);
        self.turntable_frames = self.turntable_frames.clamp(1, 720);
    }
}

/// One point of the training plots.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NerfStepRecord {
    pub step: u64,
    pub loss: f64,
    pub psnr_db: f64,
    pub samples_per_ray: f64,
    pub elapsed_secs: f64,
}

/// What the panels read from the lab.
pub struct NerfPanelState<'a> {
    pub gpu: Result<(), &'a str>,
    pub dataset: Option<&'a Dataset>,
    pub source: Option<&'a DataSource>,
    pub loading: bool,
    pub training: bool,
    pub history: &'a [NerfStepRecord],
    pub summary: Option<&'a str>,
    pub train_status: Option<&'a JobStatus>,
    /// The field shown and its camera.
    pub viewer: ViewerPanelState<'a>,
}

/// The sidebar: data set, training settings, checkpoints and exports.
pub fn nerf_controls_ui(
    ui: &mut egui::Ui,
    settings: &mut NerfSettings,
    state: &NerfPanelState<'_>,
    commands: &mut Vec<NerfCommand>,
) {
    ui.heading("Data set");
    match (state.dataset, state.source) {
        (Some(data), Some(source)) => {
            ui.label(data.summary()).on_hover_text(source.display_name());
        }
        _ if state.loading => {
            ui.label("loading…");
        }
        _ => {
            ui.label("none loaded");
        }
    }
    ui.horizontal(|ui| {
        if ui
            .add_enabled(!state.training, egui::Button::new("Demo scene"))
            .on_hover_text("The built-in procedural scene, rendered by the CPU ray tracer (no download)")
            .clicked()
        {
            commands.push(NerfCommand::UseDemo);
        }
        if ui
            .add_enabled(!state.training, egui::Button::new("Open folder…"))
            .on_hover_text("A Blender/NeRF-synthetic (transforms_train.json …) or instant-ngp (transforms.json) folder; or drop it on the window")
            .clicked()
        {
            commands.push(NerfCommand::Pick(NerfFile::OpenData));
        }
    });
    egui::Grid::new("nerf data settings").num_columns(2).show(ui, |ui| {
        let label =
            ui.label("Downscale").on_hover_text("Shrink every image of a data set folder by this factor when loading");
        ui.add(egui::DragValue::new(&mut settings.downscale).range(1..=16).suffix("×")).labelled_by(label.id);
        ui.end_row();
        let label = ui.label("Demo size").on_hover_text("Image side of the demo scene's views");
        ui.add(egui::DragValue::new(&mut settings.demo_size).range(32..=1024).suffix(" px")).labelled_by(label.id);
        ui.end_row();
    });

    ui.separator();
    ui.heading("Training");
    egui::Grid::new("nerf train settings").num_columns(2).show(ui, |ui| {
        let label = ui.label("Steps");
        ui.add(egui::DragValue::new(&mut settings.steps).range(1..=1_000_000)).labelled_by(label.id);
        ui.end_row();
        let label = ui.label("Learning rate").on_hover_text("Adam's rate at the start; it decays tenfold over the run");
        ui.add(egui::DragValue::new(&mut settings.learning_rate).range(1e-5..=0.5).speed(1e-4)).labelled_by(label.id);
        ui.end_row();
        let label = ui
            .label("Samples / batch")
            .on_hover_text("The number of rays per batch adapts to keep about this many samples");
        ui.add(egui::DragValue::new(&mut settings.batch_samples).range(1024..=1_048_576).speed(256))
            .labelled_by(label.id);
        ui.end_row();
        let label = ui.label("Seed");
        ui.add(egui::DragValue::new(&mut settings.seed)).labelled_by(label.id);
        ui.end_row();
    });
    ui.checkbox(&mut settings.random_background, "Random background")
        .on_hover_text("Composite RGBA images over a random colour per ray, so transparency is learned");
    ui.horizontal(|ui| {
        let can_train = state.dataset.is_some() && !state.training && !state.loading;
        if ui
            .add_enabled(can_train, egui::Button::new("▶ Train"))
            .on_hover_text("Train a new field from scratch")
            .clicked()
        {
            commands.push(NerfCommand::Train);
        }
        if ui
            .add_enabled(can_train && state.viewer.snapshot.is_some(), egui::Button::new("Continue"))
            .on_hover_text("Train the current field for more steps")
            .clicked()
        {
            commands.push(NerfCommand::Continue);
        }
        if ui.button("Reset").on_hover_text("Training settings back to their defaults").clicked() {
            commands.push(NerfCommand::ResetSettings);
        }
    });
    if let Some(summary) = state.summary {
        ui.label(summary);
    }

    ui.separator();
    ui.heading("Field");
    ui.horizontal(|ui| {
        if ui
            .add_enabled(state.viewer.snapshot.is_some(), egui::Button::new("Save…"))
            .on_hover_text("Save the field as a checkpoint folder (nerf.safetensors + config.json)")
            .clicked()
        {
            commands.push(NerfCommand::Pick(NerfFile::SaveCheckpoint));
        }
        if ui
            .add_enabled(!state.training, egui::Button::new("Load…"))
            .on_hover_text("Load a checkpoint folder written by the app or `sparsefield nerf train`")
            .clicked()
        {
            commands.push(NerfCommand::Pick(NerfFile::OpenCheckpoint));
        }
    });
    egui::Grid::new("nerf export settings").num_columns(2).show(ui, |ui| {
        let label = ui.label("Export size");
        ui.add(egui::DragValue::new(&mut settings.export_size).range(16..=4096).suffix(" px")).labelled_by(label.id);
        ui.end_row();
        let label = ui.label("Turntable frames");
        ui.add(egui::DragValue::new(&mut settings.turntable_frames).range(1..=720)).labelled_by(label.id);
        ui.end_row();
    });
    ui.horizontal(|ui| {
        let has_field = state.viewer.snapshot.is_some();
        if ui
            .add_enabled(has_field, egui::Button::new("Export view…"))
            .on_hover_text("Render the current view of the full field as a PNG")
            .clicked()
        {
            commands.push(NerfCommand::Pick(NerfFile::ExportView));
        }
        if ui
            .add_enabled(has_field, egui::Button::new("Export turntable…"))
            .on_hover_text("Render a 360° turntable from the current view as an animated GIF")
            .clicked()
        {
            commands.push(NerfCommand::Pick(NerfFile::ExportTurntable));
        }
    });
}

/// The central part: toolbar, viewport, plots.
pub fn nerf_main_ui(
    ui: &mut egui::Ui,
    settings: &mut NerfSettings,
    view: &mut NerfViewState,
    state: &NerfPanelState<'_>,
    commands: &mut Vec<NerfCommand>,
) {
    let _ = commands;
    ui.horizontal(|ui| {
        ui.heading("NeRF lab");
        for mode in ViewMode::ALL {
            ui.selectable_value(&mut settings.mode, mode, mode.label());
        }
        ui.separator();
        ui.checkbox(&mut settings.turntable, "Turntable").on_hover_text("Orbit automatically");
        ui.checkbox(&mut settings.show_frustums, "Cameras").on_hover_text("Show the training cameras' frustums");
        ui.checkbox(&mut settings.refine_while_training, "Refine while training").on_hover_text(
            "Render the full field on the CPU whenever the camera rests, also while training (slows training)",
        );
        if ui
            .button("⟲ Reset view")
            .on_hover_text("Back to the data set's home view (or double-click the view)")
            .clicked()
        {
            view.orbit = state.viewer.orbit_home;
            view.last_change = ui.input(|i| i.time);
        }
    });
    ui.label(
        egui::RichText::new("Drag to orbit · shift- or right-drag to pan · scroll to zoom · double-click to reset")
            .color(theme::weak_text_colour(ui)),
    );
    let plots_height = theme::MIN_PLOT_HEIGHT + 50.0;
    let available = ui.available_size();
    let size = vec2(available.x, (available.y - plots_height).max(120.0));
    let options = ViewportOptions {
        view_id: 1,
        mode: settings.mode,
        turntable: settings.turntable,
        refine_size: settings.refine_size,
        refine_while_training: settings.refine_while_training,
        idle_hint: "Train (or load a checkpoint) to see the field",
    };
    let rect = viewport_ui(ui, size, &options, view, &state.viewer);
    if settings.show_frustums
        && let Some(data) = state.dataset
    {
        frustums_ui(ui, rect, &view.orbit, data, state.viewer.baked.as_ref());
    }
    plots_ui(ui, state.history);
}

/// Training cameras as small pyramids, projected with the viewer's camera. Where the field hides
/// a part of one (judged by the baked grid's transmittance from the viewer), that part is drawn
/// faint, so that cameras behind the object do not appear in front of it. The judgement is kept
/// until the camera or the baked grid changes.
fn frustums_ui(
    ui: &egui::Ui,
    rect: egui::Rect,
    orbit: &Orbit,
    data: &Dataset,
    baked: Option<&crate::render::Versioned<BakedGrid>>,
) {
    use std::hash::{Hash, Hasher};
    /// Pieces per edge judged hidden or not.
    const PIECES: usize = 4;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let viewer = orbit.camera(rect.width().max(1.0) as u32, rect.height().max(1.0) as u32);
    let camera_from_world = viewer.world_from_camera.inverse();
    let eye = viewer.position();
    let project = |p: Vec3| -> Option<egui::Pos2> {
        let q = camera_from_world.transform_point3(p);
        if q.z > -0.05 {
            return None;
        }
        let u = viewer.cx + viewer.fx * q.x / -q.z;
        let v = viewer.cy - viewer.fy * q.y / -q.z;
        Some(pos2(rect.left() + u, rect.top() + v))
    };
    // The edges of every frustum in view: from the camera to its image's corners, and around them.
    let stride = data.train.len().div_ceil(200).max(1);
    let mut edges: Vec<(Vec3, Vec3)> = Vec::new();
    for view in data.train.iter().step_by(stride) {
        let c = &view.camera;
        let depth = 0.25;
        #[allow(clippy::cast_precision_loss)]
        let corners = [(0.0, 0.0), (c.width as f32, 0.0), (c.width as f32, c.height as f32), (0.0, c.height as f32)]
            .map(|(u, v)| c.position() + c.ray_through(u, v).direction * depth);
        if project(c.position()).is_none() || corners.iter().any(|&p| project(p).is_none()) {
            continue;
        }
        for k in 0..4 {
            edges.push((c.position(), corners[k]));
            edges.push((corners[k], corners[(k + 1) % 4]));
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let at = |(a, b): (Vec3, Vec3), k: f32| a.lerp(b, k / PIECES as f32);
    // Which pieces the field hides, judged again only when the camera, the grid or the data change.
    let key = {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        viewer.hash_bits(&mut hasher);
        (baked.map(|b| b.generation), edges.len(), data.train.len()).hash(&mut hasher);
        hasher.finish()
    };
    let cache_id = ui.scope_id().with("frustum occlusion");
    let cached: Option<std::sync::Arc<(u64, Vec<bool>)>> = ui.data(|d| d.get_temp(cache_id));
    let hidden = match cached {
        Some(cached) if cached.0 == key => cached,
        _ => {
            #[allow(clippy::cast_precision_loss)]
            let flags = edges
                .iter()
                .flat_map(|&edge| (0..PIECES).map(move |k| at(edge, k as f32 + 0.5)))
                .map(|middle| baked.is_some_and(|grid| grid.value.transmittance_between(eye, middle) < 0.5))
                .collect();
            let fresh = std::sync::Arc::new((key, flags));
            ui.data_mut(|d| d.insert_temp(cache_id, std::sync::Arc::clone(&fresh)));
            fresh
        }
    };
    let colour = theme::frustum_colour();
    let (seen, faint) = (egui::Stroke::new(1.0, colour), egui::Stroke::new(1.0, colour.gamma_multiply(0.2)));
    let painter = ui.painter().with_clip_rect(rect);
    for (e, &edge) in edges.iter().enumerate() {
        for k in 0..PIECES {
            #[allow(clippy::cast_precision_loss)]
            let kf = k as f32;
            let (Some(p0), Some(p1)) = (project(at(edge, kf)), project(at(edge, kf + 1.0))) else { continue };
            let occluded = hidden.1.get(e * PIECES + k).copied().unwrap_or(false);
            painter.line_segment([p0, p1], if occluded { faint } else { seen });
        }
    }
}

fn plots_ui(ui: &mut egui::Ui, history: &[NerfStepRecord]) {
    #[allow(clippy::cast_precision_loss)]
    let points: Vec<_> = history.iter().map(|r| (r.step as f64, r.loss, r.psnr_db)).collect();
    crate::ui::widgets::loss_psnr_plots_ui(
        ui,
        "nerf",
        ("Training loss (MSE of the batch, log₁₀)", "Batch PSNR (dB)"),
        &points,
        theme::MIN_PLOT_HEIGHT - 40.0,
    );
}
