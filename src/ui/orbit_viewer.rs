//! The orbit viewer of a radiance field, shared by the labs that show one (NeRF, lift, and any
//! lab that trains or edits a field): the camera and its mouse interaction, a worker thread that
//! bakes snapshots for the GPU fast path and renders full-quality frames on the CPU when the camera
//! rests, and the viewport that shows them.

use std::hash::{Hash, Hasher};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use eframe::egui::{self, Sense, vec2};
use eframe::egui_wgpu;

use crate::compute::nerf::NerfSnapshot;
use crate::compute::nerf::bake::{self, BakedGrid, ViewMode};
use crate::compute::nerf::camera::Camera;
use crate::compute::nerf::orbit::Orbit;
use crate::compute::nerf::render::render_camera;
use crate::jobs::Waker;
use crate::render::nerf_view::{CpuFrame, NerfViewCallback, NerfViewFeedback, NerfViewRequest, Versioned};
use crate::ui::theme;

/// The worker spends at most this share of its time baking while snapshots keep coming, so
/// that training keeps most of the CPU.
const BAKE_DUTY: f64 = 0.25;

/// What the viewer worker is asked to do; only the latest request of each kind matters.
#[derive(Default)]
struct WorkerSlots {
    /// A snapshot and the id of its field (see [`OrbitViewer::field_id`]).
    bake: Option<(u64, Arc<NerfSnapshot>)>,
    refine: Option<RefineRequest>,
    stop: bool,
}

#[derive(Clone)]
pub struct RefineRequest {
    pub key: u64,
    /// The id of the field it renders.
    pub field_id: u64,
    pub snapshot: Arc<NerfSnapshot>,
    pub camera: Camera,
    pub mode: ViewMode,
    pub depth_range: (f32, f32),
}

/// Results carry the id of the field they came from, so that late ones of a discarded field are
/// dropped.
enum WorkerResult {
    Baked(u64, BakedGrid),
    Refined(u64, CpuFrame, f64),
}

/// A thread that bakes snapshots and renders full-quality frames, latest request first.
struct ViewerWorker {
    slots: Arc<(Mutex<WorkerSlots>, Condvar)>,
    results: Receiver<WorkerResult>,
    thread: Option<JoinHandle<()>>,
}

impl ViewerWorker {
    fn spawn(waker: Waker) -> Option<Self> {
        let slots: Arc<(Mutex<WorkerSlots>, Condvar)> = Arc::default();
        let (sender, results) = channel();
        let shared = slots.clone();
        let thread = std::thread::Builder::new()
            .name("sf-nerf-viewer".into())
            .spawn(move || worker_loop(&shared, &sender, &waker))
            .ok()?;
        Some(Self { slots, results, thread: Some(thread) })
    }

    fn request(&self, f: impl FnOnce(&mut WorkerSlots)) {
        let (lock, signal) = &*self.slots;
        f(&mut lock.lock().unwrap_or_else(PoisonError::into_inner));
        signal.notify_all();
    }
}

impl Drop for ViewerWorker {
    fn drop(&mut self) {
        self.request(|s| s.stop = true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn worker_loop(slots: &(Mutex<WorkerSlots>, Condvar), sender: &Sender<WorkerResult>, waker: &Waker) {
    let (lock, signal) = slots;
    // Baking waits until this instant (duty cycle), refinement does not.
    let mut next_bake = std::time::Instant::now();
    loop {
        let (bake_request, refine_request) = {
            let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if guard.stop {
                    return;
                }
                let now = std::time::Instant::now();
                if guard.bake.is_some() && now >= next_bake {
                    break (guard.bake.take(), None);
                }
                if guard.refine.is_some() {
                    break (None, guard.refine.take());
                }
                guard = if guard.bake.is_some() {
                    signal.wait_timeout(guard, next_bake - now).unwrap_or_else(PoisonError::into_inner).0
                } else {
                    signal.wait(guard).unwrap_or_else(PoisonError::into_inner)
                };
            }
        };
        let result = if let Some((id, snapshot)) = bake_request {
            let start = std::time::Instant::now();
            let grid = bake::bake(&snapshot, bake::BAKE_RESOLUTION, bake::BAKE_MAX_QUERIES);
            next_bake = std::time::Instant::now() + start.elapsed().mul_f64((1.0 - BAKE_DUTY) / BAKE_DUTY);
            WorkerResult::Baked(id, grid)
        } else if let Some(request) = refine_request {
            let start = std::time::Instant::now();
            let frame = refine(&request);
            WorkerResult::Refined(request.field_id, frame, start.elapsed().as_secs_f64())
        } else {
            continue;
        };
        if sender.send(result).is_err() {
            return;
        }
        waker();
    }
}

/// Renders the full field for `request` on the CPU.
pub fn refine(request: &RefineRequest) -> CpuFrame {
    let s = &request.snapshot;
    let out = render_camera(&s.weights, &s.occupancy, &s.march, &request.camera, s.background);
    let (near, far) = request.depth_range;
    let span = (far - near).max(1e-6);
    let pixels = (0..out.opacity.len())
        .map(|k| match request.mode {
            ViewMode::Rgb => [out.rgb[3 * k], out.rgb[3 * k + 1], out.rgb[3 * k + 2], 1.0],
            ViewMode::Opacity => [out.opacity[k]; 4],
            ViewMode::Depth => {
                let d = if out.opacity[k] > 0.05 { out.depth[k] } else { far };
                let v = (1.0 - (d - near) / span).clamp(0.0, 1.0);
                [v, v, v, 1.0]
            }
        })
        .collect();
    CpuFrame { key: request.key, width: out.width, height: out.height, pixels }
}

/// A field in an orbit viewer: the snapshot shown, its baked grid and refined frame, the camera.
#[derive(Default)]
pub struct OrbitViewer {
    pub snapshot: Option<Arc<NerfSnapshot>>,
    /// Changes whenever the field is discarded (new training, data set or checkpoint), not with
    /// each snapshot of a training run.
    pub field_id: u64,
    pub baked: Option<Versioned<BakedGrid>>,
    next_generation: u64,
    pub view: NerfViewState,
    worker: Option<ViewerWorker>,
    /// The refine request in progress (its key), so that it is not sent twice.
    refining: Option<u64>,
    pub cpu_frame: Option<(Arc<CpuFrame>, f64)>,
    /// Where turntables and the viewer's home position are.
    pub orbit_home: Orbit,
}

impl OrbitViewer {
    fn worker(&mut self, waker: &Waker) -> Option<&ViewerWorker> {
        if self.worker.is_none() {
            self.worker = ViewerWorker::spawn(waker.clone());
        }
        self.worker.as_ref()
    }

    pub fn adopt_snapshot(&mut self, snapshot: Arc<NerfSnapshot>, waker: &Waker) {
        self.snapshot = Some(snapshot.clone());
        let id = self.field_id;
        if let Some(worker) = self.worker(waker) {
            worker.request(|s| s.bake = Some((id, snapshot)));
        }
        // A refined frame of older weights stays until the new one is ready, but is re-rendered.
        self.refining = None;
    }

    /// Shows `snapshot`, a field from another lab's run; `fresh` discards the frames of the
    /// previous field (a new run), otherwise they stay until the new ones are ready.
    pub fn show_snapshot(&mut self, snapshot: Arc<NerfSnapshot>, fresh: bool, waker: &Waker) {
        if fresh {
            self.field_id += 1;
            self.baked = None;
            self.cpu_frame = None;
        }
        self.adopt_snapshot(snapshot, waker);
    }

    /// Forgets the field shown (a new input replaced it).
    pub fn clear_field(&mut self) {
        self.field_id += 1;
        self.snapshot = None;
        self.baked = None;
        self.cpu_frame = None;
    }

    /// Forwards the frame the viewport asked for this frame (if any) to the worker.
    pub fn forward_refine(&mut self, waker: &Waker) {
        if let (Some(wanted), Some(snapshot)) = (self.view.refine_wanted.take(), self.snapshot.clone()) {
            let request = RefineRequest {
                key: wanted.key,
                field_id: wanted.field_id,
                snapshot,
                camera: wanted.camera,
                mode: wanted.mode,
                depth_range: wanted.depth_range,
            };
            self.request_refine(request, waker);
        }
    }

    /// Asks the worker for a full-quality frame (once per key).
    pub fn request_refine(&mut self, request: RefineRequest, waker: &Waker) {
        if self.refining == Some(request.key) || self.cpu_frame.as_ref().is_some_and(|(f, _)| f.key == request.key) {
            return;
        }
        self.refining = Some(request.key);
        if let Some(worker) = self.worker(waker) {
            worker.request(|s| s.refine = Some(request));
        }
    }

    pub fn is_refining(&self) -> bool {
        self.refining.is_some()
    }

    /// Collects the worker's bakes and refined frames.
    pub fn poll(&mut self) {
        if let Some(worker) = &self.worker {
            while let Ok(result) = worker.results.try_recv() {
                match result {
                    WorkerResult::Baked(id, grid) if id == self.field_id => {
                        self.next_generation += 1;
                        self.baked = Some(Versioned { generation: self.next_generation, value: Arc::new(grid) });
                    }
                    WorkerResult::Refined(id, frame, secs) => {
                        if self.refining == Some(frame.key) {
                            self.refining = None;
                        }
                        if id == self.field_id {
                            self.cpu_frame = Some((Arc::new(frame), secs));
                        }
                    }
                    WorkerResult::Baked(..) => {}
                }
            }
        }
    }

    /// What the viewport reads; `training` says whether a run is still producing snapshots.
    pub fn panel_state<'a>(&'a self, gpu: Result<(), &'a str>, training: bool) -> ViewerPanelState<'a> {
        ViewerPanelState {
            gpu,
            training,
            snapshot: self.snapshot.as_deref(),
            field_id: self.field_id,
            baked: self.baked.clone(),
            cpu_frame: self.cpu_frame.clone(),
            refining: self.is_refining(),
            orbit_home: self.orbit_home,
        }
    }
}

/// What the viewport reads from its viewer.
pub struct ViewerPanelState<'a> {
    pub gpu: Result<(), &'a str>,
    pub training: bool,
    pub snapshot: Option<&'a NerfSnapshot>,
    pub field_id: u64,
    pub baked: Option<Versioned<BakedGrid>>,
    pub cpu_frame: Option<(Arc<CpuFrame>, f64)>,
    pub refining: bool,
    pub orbit_home: Orbit,
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
    field.hash(&mut h);
    mode.hash(&mut h);
    camera.hash_bits(&mut h);
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
    state: &ViewerPanelState<'_>,
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
            ui.painter().add(egui_wgpu::Callback::new_paint_callback(rect, NerfViewCallback::new(request)));
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
    // On a plate, so that it reads on any scene (a white background included).
    let galley =
        ui.painter().layout_no_wrap(status.clone(), egui::FontId::proportional(13.0), theme::overlay_text_colour());
    let at = rect.left_bottom() + vec2(6.0, -6.0 - galley.size().y);
    let plate = egui::Rect::from_min_size(at, galley.size()).expand2(vec2(4.0, 2.0));
    ui.painter().rect_filled(plate, 3.0, egui::Color32::from_black_alpha(170));
    ui.painter().galley(at, galley, theme::overlay_text_colour());
    view.shown = status;
    // Training progress repaints through the job waker; only motion and refinement need frames here.
    if moving || state.refining {
        ui.ctx().request_repaint();
    }
    rect
}
