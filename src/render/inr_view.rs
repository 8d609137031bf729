//! The INR viewport on the GPU: a compute pass evaluates the SIREN (or its derivatives, or its
//! error against the image) per pixel into a storage buffer, progressively; a render pass shows the
//! buffer through a colour map inside egui.
//!
//! Long-lived objects (pipelines, the network's buffers, each view's buffers) live in [`InrGpu`],
//! kept in egui-wgpu's callback resources; the per-frame [`InrViewCallback`] carries only small
//! values and `Arc`s, and weights are uploaded only when their generation changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use eframe::egui_wgpu::wgpu;
use wgpu::util::DeviceExt;

use super::gpu_types::{DisplayParamsUniform, EvalParamsUniform, NetworkUniform};
use super::progressive::{LEVELS, Pacer, Progressive, WorkItem};
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
    /// The shaders are still being compiled (software adapters, first run only).
    compiling: AtomicBool,
}

impl ViewFeedback {
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }

    pub fn is_compiling(&self) -> bool {
        self.compiling.load(Ordering::Relaxed)
    }

    /// 1 = full resolution, 8 = an eighth; `None` before anything was drawn.
    pub fn shown_factor(&self) -> Option<u32> {
        match self.shown_factor.load(Ordering::Relaxed) {
            0 => None,
            f => Some(f),
        }
    }
}

pub use super::Versioned;

/// How much evaluation work a view may submit per frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// As much as the adapter does in [`Pacer::TARGET_SECS`], measured from the GPU's
    /// completion times (see [`Pacer`]): a resting view sharpens quickly.
    Adaptive,
    /// Half that, while the user pans or zooms: frames stay smooth.
    Interactive,
    /// A twelfth of it, while a job trains: the view still refines, and on a software adapter
    /// (whose GPU time is CPU time) the job keeps the machine.
    Background,
    /// Everything at full resolution in one frame (tests, exports).
    Unlimited,
}

impl Budget {
    /// The share of the pacer's budget.
    fn share(self) -> f64 {
        match self {
            Self::Adaptive | Self::Unlimited => 1.0,
            Self::Interactive => 0.5,
            Self::Background => 1.0 / 12.0,
        }
    }
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
    /// egui's frame number: views of one frame share the GPU budget.
    pub frame: u64,
    /// How much to evaluate per frame.
    pub budget: Budget,
    /// Where the renderer reports its progress for the UI.
    pub feedback: Arc<ViewFeedback>,
}

impl ViewRequest {
    /// A request that evaluates `weights` completely in one frame, without a reference image
    /// (warm-up, exports, tests).
    pub fn one_shot(weights: Arc<SirenWeights>, mode: ViewMode, window: ViewWindow, grid: (u32, u32)) -> Self {
        Self {
            view_id: 0,
            network: Versioned { value: weights, generation: 1 },
            reference: None,
            window,
            mode,
            grid,
            scale: 1.0,
            frame: 0,
            budget: Budget::Unlimited,
            feedback: Arc::default(),
        }
    }

    /// A hash of what the user changes (reference image, mode, window): a change restarts the
    /// refinement. New weights (training) do not; they are picked up level by level.
    pub fn content_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.network.value.config.width.hash(&mut h);
        self.network.value.config.hidden_layers.hash(&mut h);
        self.reference.as_ref().map(|r| r.generation).hash(&mut h);
        self.mode.hash(&mut h);
        for v in self.window.min.iter().chain(&self.window.max) {
            v.to_bits().hash(&mut h);
        }
        h.finish()
    }
}

struct Pipelines {
    evaluate_value: wgpu::ComputePipeline,
    evaluate_derivatives: wgpu::ComputePipeline,
    display: wgpu::RenderPipeline,
    network_layout: wgpu::BindGroupLayout,
    eval_layout: wgpu::BindGroupLayout,
    display_layout: wgpu::BindGroupLayout,
}

pub(crate) fn buffer_entry(
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
        let eval_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("inr evaluate"),
            bind_group_layouts: &[Some(&network_layout), Some(&eval_layout)],
            immediate_size: 0,
        });
        let compute_pipeline = |entry_point: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry_point),
                layout: Some(&eval_pipeline_layout),
                module: &eval_module,
                entry_point: Some(entry_point),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            })
        };
        let evaluate_value = compute_pipeline("evaluate_value");
        let evaluate_derivatives = compute_pipeline("evaluate_derivatives");
        let display = super::display_pipeline(device, &display_layout, target_format, "inr display");
        Self { evaluate_value, evaluate_derivatives, display, network_layout, eval_layout, display_layout }
    }
}

/// A view's copy of the network: weights change only when the view starts a new level, so that
/// every level is computed with one set of weights even while training replaces them.
struct NetworkBuffers {
    uniform: wgpu::Buffer,
    weights: wgpu::Buffer,
    reference: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    weights_generation: u64,
    reference_generation: Option<u64>,
}

struct ViewBuffers {
    network: Option<NetworkBuffers>,
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
    /// Mode, channel count and colour scale of what the shown buffer holds (until a new level
    /// completes after a change of mode, the old values keep their old colour map).
    shown_mode: ViewMode,
    shown_channels: u32,
    shown_scale: f32,
}

/// All GPU state of INR views; one per device.
pub struct InrGpu {
    pipelines: Pipelines,
    pacer: Pacer,
    /// When set, views wait until its warm-up is done (see [`warm_up_shaders`]).
    warm_up: Option<Arc<WarmUp>>,
    /// The warm-up's measurement seeds the pacer once; after that the pacer adapts on its own.
    throughput_seeded: bool,
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
        width4: to_u32(weights.config.width.div_ceil(4)),
        out_features: to_u32(weights.config.out_features),
        omega0: weights.config.omega0,
        reference_width: reference.map_or(0, |r| r.width),
        reference_height: reference.map_or(0, |r| r.height),
        reference_channels: reference.map_or(1, |r| to_u32(r.channels)),
    }
}

/// The weights in the shader's vec4 layout (see the header of `shaders/inr.wgsl`): the first
/// layer as `(w_x, w_y, b, 0)` per neuron, later layers as rows zero-padded to a multiple of 4,
/// each followed by its zero-padded biases.
pub fn gpu_weight_layout(weights: &SirenWeights) -> Vec<[f32; 4]> {
    let width = weights.config.width;
    let padded = |values: &[f32]| -> Vec<[f32; 4]> {
        values.chunks(4).map(|c| std::array::from_fn(|k| c.get(k).copied().unwrap_or(0.0))).collect()
    };
    let mut out = Vec::new();
    let Some((first, rest)) = weights.layers.split_first() else { return out };
    for (j, w) in first.weight.chunks_exact(2).enumerate() {
        out.push([w[0], w[1], first.bias[j], 0.0]);
    }
    for layer in rest {
        for row in layer.weight.chunks_exact(width) {
            out.extend(padded(row));
        }
        // `width4` vec4s for a hidden layer, one for the output layer.
        out.extend(padded(&layer.bias));
    }
    out
}

/// Creates or updates a view's network buffers to `request`'s weights and reference.
fn sync_network(
    pipelines: &Pipelines,
    network: &mut Option<NetworkBuffers>,
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    request: &ViewRequest,
) {
    let weights = &request.network.value;
    let reference = request.reference.as_ref().map(|r| r.value.as_ref());
    let reference_generation = request.reference.as_ref().map(|r| r.generation);
    let uniform = network_uniform(weights, reference);
    let layout = gpu_weight_layout(weights);
    let reference_data = reference_values(reference);
    let fits = network.as_ref().is_some_and(|n| {
        n.weights.size() == (layout.len() * 16) as u64 && n.reference.size() == (reference_data.len() * 4) as u64
    });
    if let Some(n) = network.as_mut().filter(|_| fits) {
        if n.weights_generation != request.network.generation {
            queue.write_buffer(&n.weights, 0, bytemuck::cast_slice(&layout));
            n.weights_generation = request.network.generation;
        }
        if n.reference_generation != reference_generation {
            queue.write_buffer(&n.reference, 0, bytemuck::cast_slice(&reference_data));
            n.reference_generation = reference_generation;
        }
        queue.write_buffer(&n.uniform, 0, bytemuck::bytes_of(&uniform));
        return;
    }
    let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
    let uniform_buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("inr network uniform"),
        contents: bytemuck::bytes_of(&uniform),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    });
    let weights_buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("inr weights"),
        contents: bytemuck::cast_slice(&layout),
        usage: storage,
    });
    let reference_buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("inr reference image"),
        contents: bytemuck::cast_slice(&reference_data),
        usage: storage,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("inr network"),
        layout: &pipelines.network_layout,
        entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: uniform_buffer.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 1, resource: weights_buffer.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 2, resource: reference_buffer.as_entire_binding() },
        ],
    });
    *network = Some(NetworkBuffers {
        uniform: uniform_buffer,
        weights: weights_buffer,
        reference: reference_buffer,
        bind_group,
        weights_generation: request.network.generation,
        reference_generation,
    });
}

impl InrGpu {
    /// Builds the pipelines. `target_format` is the format views are painted into.
    pub fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Self {
        Self {
            pipelines: Pipelines::new(device, target_format),
            pacer: Pacer::default(),
            warm_up: None,
            throughput_seeded: false,
            views: HashMap::new(),
            linear_output: target_format.is_srgb(),
        }
    }

    /// Makes views wait for `warm_up` before their first evaluation, so that compiling the
    /// shaders (tens of seconds on a software adapter, once per machine) happens in
    /// [`warm_up_shaders`] on another device instead of blocking the UI's queue; its throughput
    /// measurement then sizes each frame's work.
    pub fn wait_for(&mut self, warm_up: Arc<WarmUp>) {
        self.warm_up = Some(warm_up);
    }
}

impl ViewBuffers {
    /// Buffers for a view of up to `pixels` values.
    fn new(pipelines: &Pipelines, device: &wgpu::Device, pixels: u64) -> Self {
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
        let eval_bind_groups = [0, 1].map(|i| bind(&pipelines.eval_layout, "inr view eval", &eval_uniform, &values[i]));
        let display_bind_groups =
            [0, 1].map(|i| bind(&pipelines.display_layout, "inr view display", &display_uniform, &values[i]));
        Self {
            network: None,
            eval_uniform,
            display_uniform,
            values,
            eval_bind_groups,
            display_bind_groups,
            capacity_pixels: capacity,
            shown_index: 0,
            progressive: Progressive::default(),
            displayable: false,
            shown_mode: ViewMode::Value,
            shown_channels: 1,
            shown_scale: 1.0,
        }
    }
}

/// The buffers of view `view_id`, (re)allocated when they cannot hold `pixels` values.
fn view_buffers<'a>(
    pipelines: &Pipelines,
    views: &'a mut HashMap<u64, ViewBuffers>,
    device: &wgpu::Device,
    view_id: u64,
    pixels: u64,
) -> &'a mut ViewBuffers {
    views
        .entry(view_id)
        .and_modify(|view| {
            if view.capacity_pixels < pixels {
                *view = ViewBuffers::new(pipelines, device, pixels);
            }
        })
        .or_insert_with(|| ViewBuffers::new(pipelines, device, pixels))
}

impl InrGpu {
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
        if let Some(warm_up) = &self.warm_up {
            let stage = match request.mode {
                ViewMode::Value | ViewMode::Error => WarmUpStage::Value,
                ViewMode::Gradient | ViewMode::Laplacian => WarmUpStage::Derivatives,
            };
            let Some(macs_per_sec) = warm_up.result(stage) else {
                request.feedback.compiling.store(true, Ordering::Relaxed);
                request.feedback.done.store(false, Ordering::Relaxed);
                return;
            };
            if !self.throughput_seeded {
                self.pacer.set_throughput(macs_per_sec);
                self.throughput_seeded = true;
            }
        }
        request.feedback.compiling.store(false, Ordering::Relaxed);
        let budget_pixels = match request.budget {
            Budget::Unlimited => Some(u64::MAX),
            budget => {
                let cost = request.network.value.config.macs_per_point() * request.mode.cost_factor();
                self.pacer.budget_pixels(request.frame, cost, budget.share())
            }
        };
        let pipeline = match request.mode {
            ViewMode::Value | ViewMode::Error => self.pipelines.evaluate_value.clone(),
            ViewMode::Gradient | ViewMode::Laplacian => self.pipelines.evaluate_derivatives.clone(),
        };
        let linear_output = u32::from(self.linear_output);
        let view = view_buffers(
            &self.pipelines,
            &mut self.views,
            device,
            request.view_id,
            u64::from(grid.0) * u64::from(grid.1),
        );
        let key = request.content_key();
        let item = match budget_pixels {
            Some(budget) => view.progressive.plan(key, grid, budget, request.network.generation),
            // The GPU is still busy with earlier work: nothing new this frame.
            None => {
                view.progressive.restart_if_changed(key, grid, request.network.generation);
                None
            }
        };
        if let Some(item) = item
            && item.row_begin == 0
        {
            // A level starts: adopt the newest weights for all of it.
            sync_network(&self.pipelines, &mut view.network, device, queue, request);
        }
        let item = item.filter(|_| view.network.is_some());
        let mut submitted = false;
        if let Some(item) = item {
            let back = 1 - view.shown_index;
            if let Some(network) = &view.network {
                if request.budget != Budget::Unlimited {
                    // Submitted at once, so the pacer can time this work alone (see `Pacer`).
                    let mut own = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("inr evaluate (paced)"),
                    });
                    encode_evaluation(queue, &mut own, &pipeline, &network.bind_group, view, back, request, item);
                    queue.submit([own.finish()]);
                    submitted = true;
                } else {
                    encode_evaluation(queue, encoder, &pipeline, &network.bind_group, view, back, request, item);
                }
            }
            view.progressive.complete(item);
            if item.completes_level {
                view.shown_index = back;
                view.displayable = true;
                view.shown_mode = request.mode;
                view.shown_channels = u32::try_from(request.network.value.config.out_features).unwrap_or(1);
            }
        }
        if view.shown_mode == request.mode {
            // The colour range follows its slider at once.
            view.shown_scale = request.scale;
        }
        if let Some((level, shown_grid)) = view.progressive.shown() {
            let display = DisplayParamsUniform {
                grid_width: shown_grid.0,
                grid_height: shown_grid.1,
                mode: view.shown_mode as u32,
                channels: view.shown_channels,
                scale: view.shown_scale.max(1e-12),
                linear_output,
                _pad: [0; 2],
            };
            queue.write_buffer(&view.display_uniform, 0, bytemuck::bytes_of(&display));
            request.feedback.shown_factor.store(LEVELS[level], Ordering::Relaxed);
        }
        request.feedback.done.store(view.progressive.is_done(), Ordering::Relaxed);
        if submitted {
            self.pacer.note_submitted(device, queue, request.frame);
        }
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
        request.budget = Budget::Unlimited;
        // A fresh view id so an interactive view's progress is untouched.
        request.view_id = u64::MAX;
        self.views.remove(&request.view_id);
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("inr evaluate") });
        self.prepare_view(device, queue, &mut encoder, &request);
        queue.submit([encoder.finish()]);
        let values = self.read_view(device, queue, request.view_id);
        self.views.remove(&request.view_id);
        values
    }

    /// Reads back what a view currently shows: `(grid, values)`, blocking until the GPU is done.
    pub fn read_view(&self, device: &wgpu::Device, queue: &wgpu::Queue, view_id: u64) -> Result<Vec<[f32; 4]>, String> {
        let view = self.views.get(&view_id).filter(|v| v.displayable).ok_or("the view shows nothing yet")?;
        let (_, grid) = view.progressive.shown().ok_or("the view shows nothing yet")?;
        let size = u64::from(grid.0) * u64::from(grid.1) * VALUE_BYTES;
        super::read_vec4_buffer(device, queue, &view.values[view.shown_index], size)
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
pub type InrViewCallback = super::ViewCallback<InrGpu>;

impl super::GpuViews for InrGpu {
    type Request = ViewRequest;

    fn prepare_request(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        request: &ViewRequest,
    ) {
        self.prepare_view(device, queue, encoder, request);
    }

    fn paint_request(&self, render_pass: &mut wgpu::RenderPass<'static>, request: &ViewRequest) {
        self.paint_view(render_pass, request.view_id);
    }
}

/// The two stages of [`warm_up_shaders`]: value views can start before derivative views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarmUpStage {
    Value,
    Derivatives,
}

/// The progress of [`warm_up_shaders`], shared between its thread and the renderer.
#[derive(Debug, Default)]
pub struct WarmUp {
    value_done: AtomicBool,
    derivatives_done: AtomicBool,
    /// Measured throughput (multiply-adds per second, f64 bits); 0 when unknown.
    macs_per_sec: AtomicU64,
}

impl WarmUp {
    /// Marks a stage finished; the value stage brings the measured throughput when there is one.
    pub fn finish(&self, stage: WarmUpStage, macs_per_sec: Option<f64>) {
        match stage {
            WarmUpStage::Value => {
                self.macs_per_sec.store(macs_per_sec.unwrap_or(0.0).to_bits(), Ordering::Relaxed);
                self.value_done.store(true, Ordering::Release);
            }
            WarmUpStage::Derivatives => self.derivatives_done.store(true, Ordering::Release),
        }
    }

    /// Marks everything finished (after a failure: views then compile on first use).
    pub fn abandon(&self) {
        self.finish(WarmUpStage::Value, None);
        self.finish(WarmUpStage::Derivatives, None);
    }

    /// `None` while `stage` is running; then the throughput (`0.0` when unknown).
    pub fn result(&self, stage: WarmUpStage) -> Option<f64> {
        let done = match stage {
            WarmUpStage::Value => &self.value_done,
            WarmUpStage::Derivatives => &self.derivatives_done,
        };
        (done.load(Ordering::Acquire) && self.value_done.load(Ordering::Acquire))
            .then(|| f64::from_bits(self.macs_per_sec.load(Ordering::Relaxed)))
    }
}

/// Compiles every INR pipeline on a device of its own (see [`super::background_device`]) and
/// measures the adapter's throughput, reporting each stage into `progress` as soon as it is done.
///
/// Software adapters compile a compute shader when it first runs, on the queue's thread: on the
/// UI's device that would freeze the window (the derivative shader takes ~20 s with lavapipe).
/// Mesa keeps compiled shaders in its disk cache, so after this the UI's device finds them there.
/// Returns the throughput in multiply-adds per second of a value view.
pub fn warm_up_shaders(adapter: &wgpu::Adapter, progress: &WarmUp) -> Result<f64, String> {
    let (device, queue) = super::background_device(adapter)?;
    let mut gpu = InrGpu::new(&device, wgpu::TextureFormat::Rgba8Unorm);
    let request = |config, mode, grid| {
        ViewRequest::one_shot(Arc::new(SirenWeights::init(config, 0)), mode, ViewWindow::FULL, grid)
    };
    let tiny = crate::compute::inr::SirenConfig::image(1, 4, 1, 30.0);
    gpu.evaluate_blocking(&device, &queue, &request(tiny, ViewMode::Value, (1, 1)))?;
    // Throughput: grow the grid until one evaluation takes long enough to time.
    let config = crate::compute::inr::SirenConfig::image(1, 128, 3, 30.0);
    let mut grid = (32_u32, 32_u32);
    let macs_per_sec = loop {
        let start = std::time::Instant::now();
        gpu.evaluate_blocking(&device, &queue, &request(config, ViewMode::Value, grid))?;
        let secs = start.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let macs = f64::from(grid.0) * f64::from(grid.1) * config.macs_per_point() as f64;
        if secs > 0.05 || grid.0 >= 1024 {
            break macs / secs.max(1e-6);
        }
        grid = if grid.0 == grid.1 { (grid.0 * 2, grid.1) } else { (grid.0, grid.1 * 2) };
    };
    progress.finish(WarmUpStage::Value, Some(macs_per_sec));
    gpu.evaluate_blocking(&device, &queue, &request(tiny, ViewMode::Gradient, (1, 1)))?;
    progress.finish(WarmUpStage::Derivatives, None);
    Ok(macs_per_sec)
}
