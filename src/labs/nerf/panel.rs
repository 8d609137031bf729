//! The NeRF lab: data and training settings in the sidebar; the orbitable viewport (GPU fast
//! path while moving, the full field when the camera rests), training-camera frustums, and the
//! loss and PSNR plots.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use eframe::egui::{self, Sense, pos2, vec2};
use eframe::egui_wgpu;
use glam::Vec3;
use serde::{Deserialize, Serialize};

use super::DataSource;
use crate::compute::nerf::bake::{BakedGrid, ViewMode};
use crate::compute::nerf::camera::Camera;
use crate::compute::nerf::dataset::Dataset;
use crate::compute::nerf::orbit::Orbit;
use crate::compute::nerf::{NerfSnapshot, TrainConfig};
use crate::jobs::JobStatus;
use crate::render::nerf_view::{CpuFrame, NerfViewCallback, NerfViewFeedback, NerfViewRequest, Versioned};
use crate::ui::{Command, FileRequest, theme};

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

/// A full-quality frame the view would like rendered (the app forwards it to the worker).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefineWanted {
    pub key: u64,
    pub field_id: u64,
    pub camera: Camera,
    pub mode: ViewMode,
    pub depth_range: (f32, f32),
}

/// The viewport's camera and interaction state (not persisted).
#[derive(Debug)]
pub struct NerfViewState {
    pub orbit: Orbit,
    /// `ui.input().time` of the last camera change.
    pub last_change: f64,
    pub feedback: Arc<NerfViewFeedback>,
    /// Pixels the interactive (moving) frames march; adapted to the measured GPU time.
    pub interactive_pixels: f64,
    pub refine_wanted: Option<RefineWanted>,
    /// What the last frame showed, for the status line and tests.
    pub shown: String,
}

impl Default for NerfViewState {
    fn default() -> Self {
        Self {
            orbit: Orbit::default(),
            last_change: f64::NEG_INFINITY,
            feedback: Arc::new(NerfViewFeedback::default()),
            interactive_pixels: 96.0 * 96.0,
            refine_wanted: None,
            shown: String::new(),
        }
    }
}

/// Seconds without camera changes after which the view counts as resting.
const REST_SECS: f64 = 0.3;
/// Target duration of an interactive GPU frame.
const INTERACTIVE_FRAME_SECS: f64 = 1.0 / 20.0;
/// Radians per second of the auto-turntable.
const TURNTABLE_SPEED: f32 = 0.5;

/// What the panels read from the lab.
pub struct NerfPanelState<'a> {
    pub gpu: Result<(), &'a str>,
    pub dataset: Option<&'a Dataset>,
    pub source: Option<&'a DataSource>,
    pub loading: bool,
    pub training: bool,
    pub snapshot: Option<&'a NerfSnapshot>,
    pub field_id: u64,
    pub baked: Option<Versioned<BakedGrid>>,
    pub history: &'a [NerfStepRecord],
    pub cpu_frame: Option<(Arc<CpuFrame>, f64)>,
    pub refining: bool,
    pub summary: Option<&'a str>,
    pub orbit_home: Orbit,
    pub train_status: Option<&'a JobStatus>,
}

/// The sidebar: data set, training settings, checkpoints and exports.
pub fn nerf_controls_ui(
    ui: &mut egui::Ui,
    settings: &mut NerfSettings,
    state: &NerfPanelState<'_>,
    commands: &mut Vec<Command>,
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
            commands.push(Command::NerfUseDemo);
        }
        if ui
            .add_enabled(!state.training, egui::Button::new("Open folder…"))
            .on_hover_text("A Blender/NeRF-synthetic (transforms_train.json …) or instant-ngp (transforms.json) folder; or drop it on the window")
            .clicked()
        {
            commands.push(Command::PickFile(FileRequest::OpenNerfData));
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
            commands.push(Command::NerfTrain);
        }
        if ui
            .add_enabled(can_train && state.snapshot.is_some(), egui::Button::new("Continue"))
            .on_hover_text("Train the current field for more steps")
            .clicked()
        {
            commands.push(Command::NerfContinue);
        }
        if ui.button("Reset").on_hover_text("Training settings back to their defaults").clicked() {
            commands.push(Command::NerfResetSettings);
        }
    });
    if let Some(summary) = state.summary {
        ui.label(summary);
    }

    ui.separator();
    ui.heading("Field");
    ui.horizontal(|ui| {
        if ui
            .add_enabled(state.snapshot.is_some(), egui::Button::new("Save…"))
            .on_hover_text("Save the field as a checkpoint folder (nerf.safetensors + config.json)")
            .clicked()
        {
            commands.push(Command::PickFile(FileRequest::SaveNerfCheckpoint));
        }
        if ui
            .add_enabled(!state.training, egui::Button::new("Load…"))
            .on_hover_text("Load a checkpoint folder written by the app or `sparsefield nerf train`")
            .clicked()
        {
            commands.push(Command::PickFile(FileRequest::OpenNerfCheckpoint));
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
        let has_field = state.snapshot.is_some();
        if ui
            .add_enabled(has_field, egui::Button::new("Export view…"))
            .on_hover_text("Render the current view of the full field as a PNG")
            .clicked()
        {
            commands.push(Command::PickFile(FileRequest::ExportNerfView));
        }
        if ui
            .add_enabled(has_field, egui::Button::new("Export turntable…"))
            .on_hover_text("Render a 360° turntable from the current view as an animated GIF")
            .clicked()
        {
            commands.push(Command::PickFile(FileRequest::ExportNerfTurntable));
        }
    });
}

fn depth_range(orbit: &Orbit, snapshot: Option<&NerfSnapshot>, baked: Option<&BakedGrid>) -> (f32, f32) {
    let half = snapshot
        .map(|s| s.occupancy.scene_box)
        .or_else(|| baked.map(|b| b.scene_box))
        .map_or(1.5, |b| 0.5 * b.size().length());
    ((orbit.radius - half).max(0.0), orbit.radius + half)
}

/// `(width, height)` with about `pixels` pixels and the aspect of `size`, at most `size`.
fn grid_for(size: egui::Vec2, pixels: f64) -> (u32, u32) {
    let aspect = f64::from(size.x.max(1.0)) / f64::from(size.y.max(1.0));
    let h = (pixels / aspect).sqrt().clamp(8.0, f64::from(size.y.max(8.0)));
    let w = (h * aspect).clamp(8.0, f64::from(size.x.max(8.0)));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (w.round() as u32, h.round() as u32)
}

/// Identifies a full-quality frame: camera, mode, and `(field id, training step)`.
fn frame_key(camera: &Camera, mode: ViewMode, field: (u64, u64)) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (camera.width, camera.height, field).hash(&mut h);
    mode.hash(&mut h);
    for v in camera.world_from_camera.to_cols_array() {
        v.to_bits().hash(&mut h);
    }
    h.finish()
}

/// Applies mouse input to the orbit; returns whether the camera moved.
fn orbit_input(ui: &egui::Ui, response: &egui::Response, view: &mut NerfViewState, home: Orbit) -> bool {
    let mut changed = false;
    let orbit = &mut view.orbit;
    let shift = ui.input(|i| i.modifiers.shift);
    if response.dragged_by(egui::PointerButton::Primary) && !shift {
        let d = response.drag_delta();
        orbit.azimuth -= d.x * 0.01;
        orbit.elevation = (orbit.elevation + d.y * 0.01).clamp(-1.5, 1.5);
        changed |= d != egui::Vec2::ZERO;
    }
    if response.dragged_by(egui::PointerButton::Secondary)
        || (shift && response.dragged_by(egui::PointerButton::Primary))
    {
        let d = response.drag_delta();
        let camera = orbit.camera(64, 64);
        let scale = orbit.radius * 0.0015;
        let right = camera.rotation().x_axis;
        let up = camera.rotation().y_axis;
        orbit.target += (-d.x * right + d.y * up) * scale;
        changed |= d != egui::Vec2::ZERO;
    }
    if response.hovered() {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        if scroll != 0.0 {
            orbit.radius = (orbit.radius * (-scroll * 0.002).exp()).clamp(0.2, 100.0);
            changed = true;
        }
    }
    if response.double_clicked() {
        *orbit = home;
        changed = true;
    }
    changed
}

/// The central part: toolbar, viewport, plots.
pub fn nerf_main_ui(
    ui: &mut egui::Ui,
    settings: &mut NerfSettings,
    view: &mut NerfViewState,
    state: &NerfPanelState<'_>,
    commands: &mut Vec<Command>,
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
            view.orbit = state.orbit_home;
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
    let rect = viewport_ui(ui, size, &options, view, state);
    if settings.show_frustums
        && let Some(data) = state.dataset
    {
        frustums_ui(ui, rect, &view.orbit, data);
    }
    plots_ui(ui, state.history);
}

/// How a viewport shows a field.
#[derive(Clone, Copy, Debug)]
pub struct ViewportOptions {
    /// Distinguishes viewports of different labs on the GPU.
    pub view_id: u64,
    pub mode: ViewMode,
    pub turntable: bool,
    /// Side of the full-quality CPU frame rendered when the camera rests.
    pub refine_size: u32,
    pub refine_while_training: bool,
    /// The status line before there is a field.
    pub idle_hint: &'static str,
}

/// The orbit viewport of a field (GPU fast path while moving, full field on the CPU at rest),
/// `size` points large; returns its rectangle.
pub fn viewport_ui(
    ui: &mut egui::Ui,
    size: egui::Vec2,
    options: &ViewportOptions,
    view: &mut NerfViewState,
    state: &NerfPanelState<'_>,
) -> egui::Rect {
    let settings = options;
    let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
    let now = ui.input(|i| i.time);
    if orbit_input(ui, &response, view, state.orbit_home) {
        view.last_change = now;
    }
    if settings.turntable {
        let dt = ui.input(|i| i.stable_dt).min(0.1);
        view.orbit.azimuth += TURNTABLE_SPEED * dt;
        view.last_change = now;
    }
    let moving = now - view.last_change < REST_SECS;
    ui.painter().rect_filled(rect, 0.0, theme::view_background(ui));
    view.refine_wanted = None;

    let pixels_per_point = ui.ctx().pixels_per_point();
    let display = rect.size() * pixels_per_point;
    let depth = depth_range(&view.orbit, state.snapshot, state.baked.as_ref().map(|b| b.value.as_ref()));
    let status = match (&state.gpu, &state.baked) {
        (Err(problem), _) => format!("No GPU view: {problem}"),
        (Ok(()), None) if state.training => "waiting for the first snapshot…".to_owned(),
        (Ok(()), None) if state.snapshot.is_some() => "baking the field…".to_owned(),
        (Ok(()), None) => options.idle_hint.to_owned(),
        (Ok(()), Some(grid)) => {
            if let Some((secs, pixels)) = view.feedback.last_gpu_frame() {
                #[allow(clippy::cast_precision_loss)]
                let per_pixel = secs / pixels.max(1) as f64;
                view.interactive_pixels =
                    (INTERACTIVE_FRAME_SECS / per_pixel.max(1e-12)).clamp(48.0 * 48.0, 1024.0 * 1024.0);
            }
            let full_pixels = f64::from(display.x) * f64::from(display.y);
            let refine_pixels = f64::from(settings.refine_size).powi(2);
            let step = state.snapshot.map_or(grid.value.source_step, |s| s.step);
            let refine_camera = {
                let (w, h) = grid_for(display, refine_pixels.min(full_pixels));
                view.orbit.camera(w, h)
            };
            let refine_key = frame_key(&refine_camera, settings.mode, (state.field_id, step));
            let cpu_frame = state.cpu_frame.as_ref().filter(|(f, _)| !moving && f.key == refine_key);
            let (w, h) = if moving {
                grid_for(display, view.interactive_pixels.min(full_pixels))
            } else {
                grid_for(display, refine_pixels.min(full_pixels))
            };
            let camera = view.orbit.camera(w, h);
            if !moving
                && cpu_frame.is_none()
                && state.snapshot.is_some()
                && (!state.training || settings.refine_while_training)
            {
                view.refine_wanted = Some(RefineWanted {
                    key: refine_key,
                    field_id: state.field_id,
                    camera: refine_camera,
                    mode: settings.mode,
                    depth_range: depth,
                });
            }
            let request = NerfViewRequest {
                view_id: options.view_id,
                grid: Some(grid.clone()),
                camera,
                mode: settings.mode,
                depth_range: depth,
                cpu_frame: cpu_frame.map(|(f, _)| f.clone()),
                feedback: view.feedback.clone(),
            };
            // A march skipped while the previous one ran must be retried without waiting for input.
            let wanted = request.cpu_frame.as_ref().map_or_else(|| request.key(), |f| f.key);
            if view.feedback.shown_key() != wanted {
                ui.ctx().request_repaint_after(std::time::Duration::from_millis(30));
            }
            ui.painter().add(egui_wgpu::Callback::new_paint_callback(rect, NerfViewCallback { request }));
            let gpu_ms = view
                .feedback
                .last_gpu_frame()
                .map_or(String::new(), |(s, _)| format!(" · GPU {:.0} ms/frame", 1e3 * s));
            match cpu_frame {
                Some((f, secs)) => format!("full field (CPU) {}×{} · {:.2} s · step {step}", f.width, f.height, secs),
                None => {
                    let refining = if state.refining { " · refining…" } else { "" };
                    format!(
                        "fast preview (baked {}³) {w}×{h}{gpu_ms} · step {}{refining}",
                        grid.value.resolution, grid.value.source_step
                    )
                }
            }
        }
    };
    ui.painter().text(
        rect.left_bottom() + vec2(6.0, -6.0),
        egui::Align2::LEFT_BOTTOM,
        &status,
        egui::FontId::proportional(13.0),
        theme::overlay_text_colour(),
    );
    view.shown = status;
    // Training progress repaints through the job waker; only motion and refinement need frames here.
    if moving || state.refining {
        ui.ctx().request_repaint();
    }
    rect
}

/// Training cameras as small pyramids, projected with the viewer's camera.
fn frustums_ui(ui: &egui::Ui, rect: egui::Rect, orbit: &Orbit, data: &Dataset) {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let viewer = orbit.camera(rect.width().max(1.0) as u32, rect.height().max(1.0) as u32);
    let camera_from_world = viewer.world_from_camera.inverse();
    let project = |p: Vec3| -> Option<egui::Pos2> {
        let q = camera_from_world.transform_point3(p);
        if q.z > -0.05 {
            return None;
        }
        let u = viewer.cx + viewer.fx * q.x / -q.z;
        let v = viewer.cy - viewer.fy * q.y / -q.z;
        Some(pos2(rect.left() + u, rect.top() + v))
    };
    let stroke = egui::Stroke::new(1.0, theme::frustum_colour());
    let painter = ui.painter().with_clip_rect(rect);
    let stride = data.train.len().div_ceil(200).max(1);
    for view in data.train.iter().step_by(stride) {
        let c = &view.camera;
        let depth = 0.25;
        #[allow(clippy::cast_precision_loss)]
        let corners = [(0.0, 0.0), (c.width as f32, 0.0), (c.width as f32, c.height as f32), (0.0, c.height as f32)]
            .map(|(u, v)| c.position() + c.ray_through(u, v).direction * depth);
        let Some(apex) = project(c.position()) else { continue };
        let projected: Vec<_> = corners.iter().filter_map(|&p| project(p)).collect();
        if projected.len() != 4 {
            continue;
        }
        for k in 0..4 {
            painter.line_segment([apex, projected[k]], stroke);
            painter.line_segment([projected[k], projected[(k + 1) % 4]], stroke);
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
