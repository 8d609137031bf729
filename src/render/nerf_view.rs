//! The NeRF viewer on the GPU: a compute pass marches every pixel through the baked grid
//! (`shaders/nerf_view.wgsl`) into a value buffer that `inr_display.wgsl` shows in the view's
//! rectangle; a full-quality frame rendered on the CPU can be shown in its place.
//!
//! Pacing: one march in flight per view. A march dispatched in one frame is submitted with that
//! frame; the next frame asks the queue to report its completion, which gives the measured GPU
//! time that sizes the next interactive frame. Nothing is dispatched while the last is running,
//! so a slow software adapter shows frames late instead of queueing them up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use eframe::egui_wgpu::wgpu;

use super::gpu_types::{DisplayParamsUniform, NerfViewUniform};
use super::inr_view::buffer_entry;
use crate::compute::nerf::bake::{BakedGrid, MAX_STEPS, ViewMode};
use crate::compute::nerf::camera::Camera;

const WORKGROUP: u32 = 8;
const VALUE_BYTES: u64 = 16;
/// A march not reported done after this long is assumed lost (e.g. a device reset).
const GIVE_UP_SECS: f64 = 10.0;

pub use super::Versioned;

/// A frame rendered elsewhere (the CPU renderer of the full field), shown as is.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuFrame {
    /// Identifies the camera, mode and weights it was rendered for.
    pub key: u64,
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<[f32; 4]>,
}

/// What the view reports back to the UI.
#[derive(Debug, Default)]
pub struct NerfViewFeedback {
    /// Seconds the last completed march took (f64 bits), 0 before the first.
    gpu_secs: AtomicU64,
    /// Pixels of the last completed march.
    gpu_pixels: AtomicU64,
    /// Key of what is on screen now.
    shown_key: AtomicU64,
}

impl NerfViewFeedback {
    /// Seconds and pixels of the last completed GPU frame.
    pub fn last_gpu_frame(&self) -> Option<(f64, u64)> {
        let secs = f64::from_bits(self.gpu_secs.load(Ordering::Relaxed));
        (secs > 0.0).then(|| (secs, self.gpu_pixels.load(Ordering::Relaxed)))
    }

    /// The key of what the view shows (see [`NerfViewRequest::key`]).
    pub fn shown_key(&self) -> u64 {
        self.shown_key.load(Ordering::Relaxed)
    }
}

/// One frame's request for one view.
#[derive(Clone, Debug)]
pub struct NerfViewRequest {
    pub view_id: u64,
    pub grid: Option<Versioned<BakedGrid>>,
    /// The camera at the resolution to march (its width × height).
    pub camera: Camera,
    pub mode: ViewMode,
    pub depth_range: (f32, f32),
    /// When set, shown instead of marching.
    pub cpu_frame: Option<Arc<CpuFrame>>,
    pub feedback: Arc<NerfViewFeedback>,
}

impl NerfViewRequest {
    /// Identifies what a march for this request would show.
    pub fn key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let c = &self.camera;
        (c.width, c.height).hash(&mut h);
        for v in [c.fx, c.fy, c.cx, c.cy, self.depth_range.0, self.depth_range.1] {
            v.to_bits().hash(&mut h);
        }
        for v in c.world_from_camera.to_cols_array() {
            v.to_bits().hash(&mut h);
        }
        self.mode.hash(&mut h);
        self.grid.as_ref().map(|g| g.generation).hash(&mut h);
        h.finish()
    }
}

/// `ViewParams` for a march of `grid` from `camera`.
pub fn view_uniform(grid: &BakedGrid, camera: &Camera, mode: ViewMode, depth_range: (f32, f32)) -> NerfViewUniform {
    let m = camera.world_from_camera;
    let b = grid.scene_box;
    NerfViewUniform {
        origin: m.w_axis.to_array(),
        right: m.x_axis.to_array(),
        up: m.y_axis.to_array(),
        back: m.z_axis.to_array(),
        intrinsics: [camera.fx, camera.fy, camera.cx, camera.cy],
        box_min: [b.min.x, b.min.y, b.min.z, grid.step],
        box_max: [b.max.x, b.max.y, b.max.z, 0.0],
        background: [grid.background.x, grid.background.y, grid.background.z, 1.0],
        depth_range: [depth_range.0, depth_range.1, 0.0, 0.0],
        size: [camera.width, camera.height, mode.code(), grid.resolution],
        grid: [grid.coarse_resolution, crate::compute::nerf::bake::BLOCK, MAX_STEPS, 0],
    }
}

struct GridBuffers {
    generation: u64,
    values: wgpu::Buffer,
    coarse: wgpu::Buffer,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Flight {
    Idle,
    /// Dispatched in a frame that has been submitted since.
    Submitted {
        at: Instant,
        pixels: u64,
    },
    Waiting {
        since: Instant,
        ticket: u64,
    },
}

struct ViewTarget {
    uniform: wgpu::Buffer,
    display_uniform: wgpu::Buffer,
    values: wgpu::Buffer,
    capacity_pixels: u64,
    march_bind_group: Option<(u64, wgpu::BindGroup)>,
    display_bind_group: wgpu::BindGroup,
    displayable: bool,
    flight: Arc<Mutex<Flight>>,
    ticket: u64,
    shown_key: Option<u64>,
}

/// All GPU state of NeRF views; one per device.
pub struct NerfGpu {
    march: wgpu::ComputePipeline,
    display: wgpu::RenderPipeline,
    march_layout: wgpu::BindGroupLayout,
    display_layout: wgpu::BindGroupLayout,
    linear_output: bool,
    grid: Option<GridBuffers>,
    views: HashMap<u64, ViewTarget>,
}

fn lock(flight: &Mutex<Flight>) -> std::sync::MutexGuard<'_, Flight> {
    flight.lock().unwrap_or_else(PoisonError::into_inner)
}

impl NerfGpu {
    pub fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Self {
        use wgpu::BufferBindingType::{Storage, Uniform};
        let compute = wgpu::ShaderStages::COMPUTE;
        let march_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("nerf march"),
            entries: &[
                buffer_entry(0, compute, Uniform),
                buffer_entry(1, compute, Storage { read_only: true }),
                buffer_entry(2, compute, Storage { read_only: true }),
                buffer_entry(3, compute, Storage { read_only: false }),
            ],
        });
        let fragment = wgpu::ShaderStages::FRAGMENT;
        let display_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("nerf display"),
            entries: &[buffer_entry(0, fragment, Uniform), buffer_entry(1, fragment, Storage { read_only: true })],
        });
        let march_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("nerf_view.wgsl"),
            source: wgpu::ShaderSource::Wgsl(super::SHADERS[2].1.into()),
        });
        let march_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("nerf march"),
            bind_group_layouts: &[Some(&march_layout)],
            immediate_size: 0,
        });
        let march = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("nerf march"),
            layout: Some(&march_pipeline_layout),
            module: &march_module,
            entry_point: Some("march_main"),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            cache: None,
        });
        let display = super::display_pipeline(device, &display_layout, target_format, "nerf display");
        Self {
            march,
            display,
            march_layout,
            display_layout,
            linear_output: target_format.is_srgb(),
            grid: None,
            views: HashMap::new(),
        }
    }

    fn upload_grid(&mut self, device: &wgpu::Device, grid: &Versioned<BakedGrid>) {
        if self.grid.as_ref().is_some_and(|g| g.generation == grid.generation) {
            return;
        }
        use wgpu::util::DeviceExt as _;
        let values = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("nerf baked grid"),
            contents: bytemuck::cast_slice(&grid.value.values),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let coarse = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("nerf coarse grid"),
            contents: bytemuck::cast_slice(&grid.value.coarse_max),
            usage: wgpu::BufferUsages::STORAGE,
        });
        self.grid = Some(GridBuffers { generation: grid.generation, values, coarse });
        // Bind groups refer to the old buffers.
        for view in self.views.values_mut() {
            view.march_bind_group = None;
        }
    }

    fn view_target(&mut self, device: &wgpu::Device, view_id: u64, pixels: u64) -> &mut ViewTarget {
        let target = match self.views.remove(&view_id) {
            Some(view) if view.capacity_pixels >= pixels => view,
            old => self.new_target(device, pixels, old.map(|v| v.flight)),
        };
        self.views.entry(view_id).insert_entry(target).into_mut()
    }

    fn new_target(&self, device: &wgpu::Device, pixels: u64, flight: Option<Arc<Mutex<Flight>>>) -> ViewTarget {
        let capacity_pixels = pixels.max(64 * 64).next_power_of_two();
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("nerf view params"),
            size: size_of::<NerfViewUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let display_uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("nerf display params"),
            size: size_of::<DisplayParamsUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let values = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("nerf view values"),
            size: capacity_pixels * VALUE_BYTES,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let display_bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("nerf display"),
            layout: &self.display_layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: display_uniform.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: values.as_entire_binding() },
            ],
        });
        ViewTarget {
            uniform,
            display_uniform,
            values,
            capacity_pixels,
            march_bind_group: None,
            display_bind_group,
            displayable: false,
            flight: flight.unwrap_or_else(|| Arc::new(Mutex::new(Flight::Idle))),
            ticket: 0,
            shown_key: None,
        }
    }

    fn set_display(&self, queue: &wgpu::Queue, view: &ViewTarget, width: u32, height: u32) {
        let display = DisplayParamsUniform {
            grid_width: width,
            grid_height: height,
            mode: 0,
            channels: 3,
            scale: 1.0,
            linear_output: u32::from(self.linear_output),
            _pad: [0; 2],
        };
        queue.write_buffer(&view.display_uniform, 0, bytemuck::bytes_of(&display));
    }

    /// Uploads, dispatches or shows what `request` asks for (called from `prepare`).
    pub fn prepare_view(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        request: &NerfViewRequest,
    ) {
        if let Some(grid) = &request.grid {
            self.upload_grid(device, grid);
        }
        // Pacing: hear about the completion of a march submitted with an earlier frame.
        if let Some(view) = self.views.get_mut(&request.view_id) {
            let state = *lock(&view.flight);
            match state {
                Flight::Submitted { at, pixels } => {
                    view.ticket += 1;
                    let ticket = view.ticket;
                    *lock(&view.flight) = Flight::Waiting { since: at, ticket };
                    let shared = view.flight.clone();
                    let feedback = request.feedback.clone();
                    queue.on_submitted_work_done(move || {
                        let mut flight = lock(&shared);
                        if matches!(*flight, Flight::Waiting { ticket: t, .. } if t == ticket) {
                            feedback.gpu_secs.store(at.elapsed().as_secs_f64().to_bits(), Ordering::Relaxed);
                            feedback.gpu_pixels.store(pixels, Ordering::Relaxed);
                            *flight = Flight::Idle;
                        }
                    });
                }
                Flight::Waiting { since, .. } => {
                    let _ = device.poll(wgpu::PollType::Poll);
                    let mut flight = lock(&view.flight);
                    if *flight != Flight::Idle && since.elapsed().as_secs_f64() > GIVE_UP_SECS {
                        *flight = Flight::Idle;
                    }
                }
                Flight::Idle => {}
            }
        }

        // While a march runs, its buffers stay as they are (and on screen).
        if self.views.get(&request.view_id).is_some_and(|v| *lock(&v.flight) != Flight::Idle) {
            return;
        }
        if let Some(frame) = &request.cpu_frame {
            let pixels = u64::from(frame.width) * u64::from(frame.height);
            let view = self.view_target(device, request.view_id, pixels);
            if view.shown_key != Some(frame.key) && *lock(&view.flight) == Flight::Idle {
                queue.write_buffer(&view.values, 0, bytemuck::cast_slice(&frame.pixels));
                view.shown_key = Some(frame.key);
                view.displayable = true;
                request.feedback.shown_key.store(frame.key, Ordering::Relaxed);
                let view = &self.views[&request.view_id];
                self.set_display(queue, view, frame.width, frame.height);
            }
            return;
        }
        let Some(grid) = &request.grid else { return };
        let key = request.key();
        let (width, height) = (request.camera.width.max(1), request.camera.height.max(1));
        let pixels = u64::from(width) * u64::from(height);
        let grid_generation = grid.generation;
        let march_layout = self.march_layout.clone();
        let march_pipeline = self.march.clone();
        let (Some(grid_buffers_values), Some(grid_buffers_coarse)) =
            (self.grid.as_ref().map(|g| g.values.clone()), self.grid.as_ref().map(|g| g.coarse.clone()))
        else {
            return;
        };
        let view = self.view_target(device, request.view_id, pixels);
        if view.shown_key == Some(key) || *lock(&view.flight) != Flight::Idle {
            return;
        }
        if view.march_bind_group.as_ref().is_none_or(|(g, _)| *g != grid_generation) {
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("nerf march"),
                layout: &march_layout,
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: view.uniform.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: grid_buffers_values.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: grid_buffers_coarse.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 3, resource: view.values.as_entire_binding() },
                ],
            });
            view.march_bind_group = Some((grid_generation, bind_group));
        }
        let uniform = view_uniform(&grid.value, &request.camera, request.mode, request.depth_range);
        queue.write_buffer(&view.uniform, 0, bytemuck::bytes_of(&uniform));
        if let Some((_, bind_group)) = &view.march_bind_group {
            let mut pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("nerf march"), timestamp_writes: None });
            pass.set_pipeline(&march_pipeline);
            pass.set_bind_group(0, bind_group, &[]);
            pass.dispatch_workgroups(width.div_ceil(WORKGROUP), height.div_ceil(WORKGROUP), 1);
        }
        *lock(&view.flight) = Flight::Submitted { at: Instant::now(), pixels };
        view.shown_key = Some(key);
        view.displayable = true;
        request.feedback.shown_key.store(key, Ordering::Relaxed);
        let view = &self.views[&request.view_id];
        self.set_display(queue, view, width, height);
    }

    /// Draws a view into the current viewport (egui-wgpu sets it to the view's rectangle).
    pub fn paint_view(&self, render_pass: &mut wgpu::RenderPass<'static>, view_id: u64) {
        let Some(view) = self.views.get(&view_id).filter(|v| v.displayable) else {
            return;
        };
        render_pass.set_pipeline(&self.display);
        render_pass.set_bind_group(0, &view.display_bind_group, &[]);
        render_pass.draw(0..3, 0..1);
    }

    /// Marches every request in turn, each in its own submission, and waits for the last: the
    /// seconds this took (benchmarks; no read-back).
    pub fn time_marches(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        requests: &[NerfViewRequest],
    ) -> Result<f64, String> {
        let start = Instant::now();
        for request in requests {
            if let Some(view) = self.views.get_mut(&request.view_id) {
                *lock(&view.flight) = Flight::Idle;
                view.shown_key = None;
            }
            let mut encoder =
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("nerf march (timed)") });
            self.prepare_view(device, queue, &mut encoder, request);
            queue.submit([encoder.finish()]);
        }
        device
            .poll(wgpu::PollType::Wait { submission_index: None, timeout: Some(std::time::Duration::from_secs(600)) })
            .map_err(|e| format!("waiting for the GPU failed: {e}"))?;
        Ok(start.elapsed().as_secs_f64())
    }

    /// Marches `request` now and reads the result back (tests, exports). Blocks.
    pub fn march_blocking(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        request: &NerfViewRequest,
    ) -> Result<Vec<[f32; 4]>, String> {
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("nerf march (blocking)") });
        if let Some(view) = self.views.get_mut(&request.view_id) {
            *lock(&view.flight) = Flight::Idle;
            view.shown_key = None;
        }
        self.prepare_view(device, queue, &mut encoder, request);
        queue.submit([encoder.finish()]);
        let view = self.views.get(&request.view_id).ok_or("the view was not created")?;
        *lock(&view.flight) = Flight::Idle;
        let pixels = u64::from(request.camera.width) * u64::from(request.camera.height);
        let size = pixels * VALUE_BYTES;
        super::read_vec4_buffer(device, queue, &view.values, size)
    }
}

/// The per-frame paint callback of one NeRF view.
pub type NerfViewCallback = super::ViewCallback<NerfGpu>;

impl super::GpuViews for NerfGpu {
    type Request = NerfViewRequest;

    fn prepare_request(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        request: &NerfViewRequest,
    ) {
        self.prepare_view(device, queue, encoder, request);
    }

    fn paint_request(&self, render_pass: &mut wgpu::RenderPass<'static>, request: &NerfViewRequest) {
        self.paint_view(render_pass, request.view_id);
    }
}
