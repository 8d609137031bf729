//! The INR viewport on the GPU: a compute pass evaluates the SIREN (or its derivatives, or its
//! error against the image) per pixel into a storage buffer, progressively; a render pass shows the
//! buffer through a colour map inside egui.
//!
//! Long-lived objects (pipelines, the network's buffers, each view's buffers) live in [`InrGpu`],
//! kept in egui-wgpu's callback resources; the per-frame [`InrViewCallback`] carries only small
//! values and `Arc`s, and weights are uploaded only when their generation changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use eframe::egui_wgpu::{self, wgpu};
use wgpu::util::DeviceExt;

use super::gpu_types::{DisplayParamsUniform, EvalParamsUniform, NetworkUniform};
use super::progressive::{LEVELS, Progressive, WorkItem};
use crate::compute::image_io::ImageData;
use crate::compute::inr::SirenWeights;

/// The largest view grid side evaluated (bounds buffer sizes).
pub const MAX_GRID_SIDE: u32 = 2048;
const WORKGROUP: u32 = 8;
const VALUE_BYTES: u64 = 16;

/// What a view shows; the numbers are the shader's `MODE_*` constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ViewMode {
    Value = 0,
    Gradient = 1,
    Laplacian = 2,
    Error = 3,
}

impl ViewMode {
    /// Cost of a pixel relative to a plain evaluation (the 4-jet carries four numbers per neuron).
    pub fn cost_factor(self) -> usize {
        match self {
            Self::Value | Self::Error => 1,
            Self::Gradient | Self::Laplacian => 4,
        }
    }
}

/// The rectangle of INR coordinates a view shows (`[-1, 1]²` is the whole image).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewWindow {
    pub min: [f32; 2],
    pub max: [f32; 2],
}

impl ViewWindow {
    pub const FULL: Self = Self { min: [-1.0, -1.0], max: [1.0, 1.0] };

    /// Centre of cell `(0, 0)` and the step between cells for a `grid`.
    pub fn origin_and_step(&self, grid: (u32, u32)) -> ([f32; 2], [f32; 2]) {
        #[allow(clippy::cast_precision_loss)]
        let step = [(self.max[0] - self.min[0]) / grid.0 as f32, (self.max[1] - self.min[1]) / grid.1 as f32];
        ([self.min[0] + 0.5 * step[0], self.min[1] + 0.5 * step[1]], step)
    }
}

/// Shared between a view's callback and the UI: how far the refinement has come.
#[derive(Debug, Default)]
pub struct ViewFeedback {
    done: AtomicBool,
    /// Downsampling factor of what is shown (0: nothing yet).
    shown_factor: AtomicU32,
}

impl ViewFeedback {
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }

    /// 1 = full resolution, 8 = an eighth; `None` before anything was drawn.
    pub fn shown_factor(&self) -> Option<u32> {
        match self.shown_factor.load(Ordering::Relaxed) {
            0 => None,
            f => Some(f),
        }
    }
}

/// Network weights with a generation number that changes whenever they do.
#[derive(Clone)]
pub struct Versioned<T> {
    pub value: Arc<T>,
    pub generation: u64,
}

/// Everything one view needs for one frame.
#[derive(Clone)]
pub struct ViewRequest {
    pub view_id: u64,
    pub network: Versioned<SirenWeights>,
    pub reference: Option<Versioned<ImageData>>,
    pub window: ViewWindow,
    pub mode: ViewMode,
    /// Full-resolution grid (usually the view's size in physical pixels).
    pub grid: (u32, u32),
    /// Colour-map scale for derivative and error views.
    pub scale: f32,
    /// Pixel evaluations allowed this frame.
    pub budget_pixels: u64,
    /// Where the renderer reports its progress for the UI.
    pub feedback: Arc<ViewFeedback>,
}

impl ViewRequest {
    /// A hash of everything that changes the computed values (not the colour map).
    pub fn content_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.network.generation.hash(&mut h);
        self.reference.as_ref().map(|r| r.generation).hash(&mut h);
        self.mode.hash(&mut h);
        for v in self.window.min.iter().chain(&self.window.max) {
            v.to_bits().hash(&mut h);
        }
        h.finish()
    }
}

struct Pipelines {
    evaluate: wgpu::ComputePipeline,
    display: wgpu::RenderPipeline,
    network_layout: wgpu::BindGroupLayout,
    eval_layout: wgpu::BindGroupLayout,
    display_layout: wgpu::BindGroupLayout,
}

fn buffer_entry(
    binding: u32,
    visibility: wgpu::ShaderStages,
    ty: wgpu::BufferBindingType,
) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility,
        ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    }
}

impl Pipelines {
    fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Self {
        use wgpu::BufferBindingType::{Storage, Uniform};
        let compute = wgpu::ShaderStages::COMPUTE;
        let network_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("inr network"),
            entries: &[
                buffer_entry(0, compute, Uniform),
                buffer_entry(1, compute, Storage { read_only: true }),
                buffer_entry(2, compute, Storage { read_only: true }),
            ],
        });
        let eval_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("inr view evaluation"),
            entries: &[buffer_entry(0, compute, Uniform), buffer_entry(1, compute, Storage { read_only: false })],
        });
        let fragment = wgpu::ShaderStages::FRAGMENT;
        let display_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("inr view display"),
            entries: &[buffer_entry(0, fragment, Uniform), buffer_entry(1, fragment, Storage { read_only: true })],
        });
        let eval_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("inr.wgsl"),
            source: wgpu::ShaderSource::Wgsl(super::SHADERS[0].1.into()),
        });
        let display_module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("inr_display.wgsl"),
            source: wgpu::ShaderSource::Wgsl(super::SHADERS[1].1.into()),
        });
        let eval_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("inr evaluate"),
            bind_group_layouts: &[Some(&network_layout), Some(&eval_layout)],
            immediate_size: 0,
        });
        let evaluate = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("inr evaluate"),
            layout: Some(&eval_pipeline_layout),
            module: &eval_module,
            entry_point: Some("evaluate"),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            cache: None,
        });
        let display_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("inr display"),
            bind_group_layouts: &[Some(&display_layout)],
            immediate_size: 0,
        });
        let display = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("inr display"),
            layout: Some(&display_pipeline_layout),
            vertex: wgpu::VertexState {
                module: &display_module,
                entry_point: Some("display_vertex"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &display_module,
                entry_point: Some("display_fragment"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: target_format,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });
        Self { evaluate, display, network_layout, eval_layout, display_layout }
    }
}

struct NetworkBuffers {
    uniform: wgpu::Buffer,
    weights: wgpu::Buffer,
    reference: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    weights_generation: u64,
    reference_generation: Option<u64>,
}

struct ViewBuffers {
    eval_uniform: wgpu::Buffer,
    display_uniform: wgpu::Buffer,
    /// Two value buffers: one shown, one being filled.
    values: [wgpu::Buffer; 2],
    eval_bind_groups: [wgpu::BindGroup; 2],
    display_bind_groups: [wgpu::BindGroup; 2],
    capacity_pixels: u64,
    shown_index: usize,
    progressive: Progressive,
    /// Set by `prepare` when there is something to show.
    displayable: bool,
}

/// All GPU state of INR views; one per device.
pub struct InrGpu {
    pipelines: Pipelines,
    network: Option<NetworkBuffers>,
    views: HashMap<u64, ViewBuffers>,
    linear_output: bool,
}

fn reference_values(reference: Option<&ImageData>) -> Vec<f32> {
    // Storage buffers may not be empty.
    reference.map_or_else(|| vec![0.0], |image| image.pixels.clone())
}

fn network_uniform(weights: &SirenWeights, reference: Option<&ImageData>) -> NetworkUniform {
    let to_u32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    NetworkUniform {
        num_layers: to_u32(weights.layers.len()),
        width: to_u32(weights.config.width),
        out_features: to_u32(weights.config.out_features),
        omega0: weights.config.omega0,
        reference_width: reference.map_or(0, |r| r.width),
        reference_height: reference.map_or(0, |r| r.height),
        reference_channels: reference.map_or(1, |r| to_u32(r.channels)),
        _pad: 0,
    }
}

impl InrGpu {
    /// Builds the pipelines. `target_format` is the format views are painted into.
    pub fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Self {
        Self {
            pipelines: Pipelines::new(device, target_format),
            network: None,
            views: HashMap::new(),
            linear_output: target_format.is_srgb(),
        }
    }

    /// Uploads weights and reference image when their generations changed.
    fn sync_network(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, request: &ViewRequest) {
        let weights = &request.network.value;
        let reference = request.reference.as_ref().map(|r| r.value.as_ref());
        let reference_generation = request.reference.as_ref().map(|r| r.generation);
        let uniform = network_uniform(weights, reference);
        let flat = weights.flatten();
        let reference_data = reference_values(reference);
        let needs_rebuild = self.network.as_ref().is_none_or(|n| {
            n.weights.size() != (flat.len() * 4) as u64 || n.reference.size() != (reference_data.len() * 4) as u64
        });
        if needs_rebuild {
            let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
            let uniform_buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("inr network uniform"),
                contents: bytemuck::bytes_of(&uniform),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            });
            let weights_buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("inr weights"),
                contents: bytemuck::cast_slice(&flat),
                usage: storage,
            });
            let reference_buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("inr reference image"),
                contents: bytemuck::cast_slice(&reference_data),
                usage: storage,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("inr network"),
                layout: &self.pipelines.network_layout,
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: uniform_buffer.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: weights_buffer.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: reference_buffer.as_entire_binding() },
                ],
            });
            self.network = Some(NetworkBuffers {
                uniform: uniform_buffer,
                weights: weights_buffer,
                reference: reference_buffer,
                bind_group,
                weights_generation: request.network.generation,
                reference_generation,
            });
            return;
        }
        if let Some(network) = &mut self.network {
            if network.weights_generation != request.network.generation {
                queue.write_buffer(&network.weights, 0, bytemuck::cast_slice(&flat));
                queue.write_buffer(&network.uniform, 0, bytemuck::bytes_of(&uniform));
                network.weights_generation = request.network.generation;
            }
            if network.reference_generation != reference_generation {
                queue.write_buffer(&network.reference, 0, bytemuck::cast_slice(&reference_data));
                queue.write_buffer(&network.uniform, 0, bytemuck::bytes_of(&uniform));
                network.reference_generation = reference_generation;
            }
        }
    }

    fn view_buffers(&mut self, device: &wgpu::Device, view_id: u64, pixels: u64) -> &mut ViewBuffers {
        let fits = self.views.get(&view_id).is_some_and(|v| v.capacity_pixels >= pixels);
        if !fits {
            let capacity = pixels.max(64 * 64);
            let make_values = |label: &str| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: capacity * VALUE_BYTES,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                })
            };
            let values = [make_values("inr view values a"), make_values("inr view values b")];
            let make_uniform = |label: &str, size: usize| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: size as u64,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            };
            let eval_uniform = make_uniform("inr view eval params", size_of::<EvalParamsUniform>());
            let display_uniform = make_uniform("inr view display params", size_of::<DisplayParamsUniform>());
            let bind = |layout: &wgpu::BindGroupLayout, label: &str, uniform: &wgpu::Buffer, buffer: &wgpu::Buffer| {
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(label),
                    layout,
                    entries: &[
                        wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 1, resource: buffer.as_entire_binding() },
                    ],
                })
            };
            let eval_bind_groups =
                [0, 1].map(|i| bind(&self.pipelines.eval_layout, "inr view eval", &eval_uniform, &values[i]));
            let display_bind_groups =
                [0, 1].map(|i| bind(&self.pipelines.display_layout, "inr view display", &display_uniform, &values[i]));
            self.views.insert(
                view_id,
                ViewBuffers {
                    eval_uniform,
                    display_uniform,
                    values,
                    eval_bind_groups,
                    display_bind_groups,
                    capacity_pixels: capacity,
                    shown_index: 0,
                    progressive: Progressive::default(),
                    displayable: false,
                },
            );
        }
        self.views.get_mut(&view_id).unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// Encodes this frame's evaluation work for a view, updates its display parameters and
    /// reports progress into `request.feedback`.
    pub fn prepare_view(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        request: &ViewRequest,
    ) {
        let grid = (request.grid.0.clamp(1, MAX_GRID_SIDE), request.grid.1.clamp(1, MAX_GRID_SIDE));
        self.sync_network(device, queue, request);
        let Some(network_bind_group) = self.network.as_ref().map(|n| n.bind_group.clone()) else {
            return;
        };
        let linear_output = u32::from(self.linear_output);
        let pipeline = self.pipelines.evaluate.clone();
        let view = self.view_buffers(device, request.view_id, u64::from(grid.0) * u64::from(grid.1));
        let key = request.content_key();
        if let Some(item) = view.progressive.plan(key, grid, request.budget_pixels) {
            let back = 1 - view.shown_index;
            encode_evaluation(queue, encoder, &pipeline, &network_bind_group, view, back, request, item);
            view.progressive.complete(item);
            if item.completes_level {
                view.shown_index = back;
                view.displayable = true;
            }
        }
        if let Some((level, shown_grid)) = view.progressive.shown() {
            let display = DisplayParamsUniform {
                grid_width: shown_grid.0,
                grid_height: shown_grid.1,
                mode: request.mode as u32,
                channels: u32::try_from(request.network.value.config.out_features).unwrap_or(1),
                scale: request.scale.max(1e-12),
                linear_output,
                _pad: [0; 2],
            };
            queue.write_buffer(&view.display_uniform, 0, bytemuck::bytes_of(&display));
            request.feedback.shown_factor.store(LEVELS[level], Ordering::Relaxed);
        }
        request.feedback.done.store(view.progressive.is_done(), Ordering::Relaxed);
    }

    /// Draws a view's shown values into the current viewport.
    pub fn paint_view(&self, render_pass: &mut wgpu::RenderPass<'static>, view_id: u64) {
        let Some(view) = self.views.get(&view_id).filter(|v| v.displayable) else {
            return;
        };
        render_pass.set_pipeline(&self.pipelines.display);
        render_pass.set_bind_group(0, &view.display_bind_groups[view.shown_index], &[]);
        render_pass.draw(0..3, 0..1);
    }

    /// Evaluates a whole view at full resolution and reads the raw values back (row-major
    /// `[c0, c1, c2, flag]` per pixel): for tests against the CPU and for exports.
    pub fn evaluate_blocking(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        request: &ViewRequest,
    ) -> Result<Vec<[f32; 4]>, String> {
        let mut request = request.clone();
        request.budget_pixels = u64::MAX;
        // A fresh view id so an interactive view's progress is untouched.
        request.view_id = u64::MAX;
        self.views.remove(&request.view_id);
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("inr readback") });
        self.prepare_view(device, queue, &mut encoder, &request);
        let view = self.views.get(&request.view_id).ok_or("the view was not created")?;
        let pixels = u64::from(request.grid.0) * u64::from(request.grid.1);
        let size = pixels * VALUE_BYTES;
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("inr readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(&view.values[view.shown_index], 0, &readback, 0, size);
        queue.submit([encoder.finish()]);
        let slice = readback.slice(..);
        let (sender, receiver) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        device
            .poll(wgpu::PollType::Wait { submission_index: None, timeout: Some(std::time::Duration::from_secs(600)) })
            .map_err(|e| format!("waiting for the GPU failed: {e}"))?;
        receiver.recv().map_err(|e| e.to_string())?.map_err(|e| format!("reading the GPU buffer failed: {e}"))?;
        let data = slice.get_mapped_range().map_err(|e| format!("reading the GPU buffer failed: {e}"))?;
        let values: Vec<[f32; 4]> =
            bytemuck::cast_slice::<u8, f32>(&data).chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]).collect();
        drop(data);
        readback.unmap();
        self.views.remove(&request.view_id);
        Ok(values)
    }
}

#[allow(clippy::too_many_arguments)]
fn encode_evaluation(
    queue: &wgpu::Queue,
    encoder: &mut wgpu::CommandEncoder,
    pipeline: &wgpu::ComputePipeline,
    network_bind_group: &wgpu::BindGroup,
    view: &ViewBuffers,
    target: usize,
    request: &ViewRequest,
    item: WorkItem,
) {
    let (origin, step) = request.window.origin_and_step(item.grid);
    let params = EvalParamsUniform {
        origin,
        step,
        grid_width: item.grid.0,
        grid_height: item.grid.1,
        row_begin: item.row_begin,
        row_end: item.row_end,
        mode: request.mode as u32,
        _pad: [0; 3],
    };
    queue.write_buffer(&view.eval_uniform, 0, bytemuck::bytes_of(&params));
    let mut pass = encoder
        .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("inr evaluate"), timestamp_writes: None });
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, network_bind_group, &[]);
    pass.set_bind_group(1, &view.eval_bind_groups[target], &[]);
    pass.dispatch_workgroups(item.grid.0.div_ceil(WORKGROUP), (item.row_end - item.row_begin).div_ceil(WORKGROUP), 1);
}

/// The per-frame paint callback of one INR view.
pub struct InrViewCallback {
    pub request: ViewRequest,
}

impl egui_wgpu::CallbackTrait for InrViewCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen_descriptor: &egui_wgpu::ScreenDescriptor,
        egui_encoder: &mut wgpu::CommandEncoder,
        callback_resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(gpu) = callback_resources.get_mut::<InrGpu>() {
            gpu.prepare_view(device, queue, egui_encoder, &self.request);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: eframe::egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        callback_resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(gpu) = callback_resources.get::<InrGpu>() {
            gpu.paint_view(render_pass, self.request.view_id);
        }
    }
}
