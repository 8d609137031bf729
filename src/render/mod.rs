//! wgpu rendering: device setup with the adapter's full limits, the INR view pipelines, and
//! progressive refinement. WGSL lives in `shaders/`.

pub mod edit_gpu;
pub mod gpu_types;
pub mod inr_view;
pub mod nerf_view;
pub mod progressive;

use std::sync::Arc;

use eframe::egui_wgpu;
/// wgpu as eframe re-exports it (one version for the app, the renderers and the benches).
pub use eframe::egui_wgpu::wgpu;

/// Every WGSL file, by name, as compiled into the binary.
pub const SHADERS: [(&str, &str); 4] = [
    ("inr.wgsl", include_str!("../../shaders/inr.wgsl")),
    ("inr_display.wgsl", include_str!("../../shaders/inr_display.wgsl")),
    ("nerf_view.wgsl", include_str!("../../shaders/nerf_view.wgsl")),
    ("inr_edit.wgsl", include_str!("../../shaders/inr_edit.wgsl")),
];

/// What to tell a user whose machine has no usable wgpu adapter.
pub const DRIVER_HINT: &str = "Live rendering needs a Vulkan or OpenGL driver. On headless Linux install one with \
     `apt-get install mesa-vulkan-drivers libvulkan1` (software Vulkan), or set WGPU_BACKEND=gl to use Mesa's OpenGL.";

/// Device descriptor asking for everything the adapter offers. egui-wgpu's default asks WebGL2
/// limits on the GL backend, which allow no storage buffers at all.
pub fn full_limits_descriptor(adapter: &wgpu::Adapter) -> wgpu::DeviceDescriptor<'static> {
    wgpu::DeviceDescriptor {
        label: Some("sparsefield device"),
        required_limits: adapter.limits(),
        ..Default::default()
    }
}

/// The wgpu setup for the app and the UI tests: backends from `WGPU_BACKEND`, full limits.
pub fn wgpu_setup() -> egui_wgpu::WgpuSetup {
    let mut setup = egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    setup.instance_descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    setup.device_descriptor = Arc::new(full_limits_descriptor);
    egui_wgpu::WgpuSetup::CreateNew(setup)
}

fn request_adapter() -> Result<wgpu::Adapter, String> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
        .map_err(|e| format!("no wgpu adapter ({e}). {DRIVER_HINT}"))
}

/// Checks whether any wgpu adapter can be had, without opening a window.
pub fn probe_adapter() -> Result<wgpu::AdapterInfo, String> {
    request_adapter().map(|adapter| adapter.get_info())
}

/// A device of its own for background GPU work (shader warm-up, the edit lab's jobs) beside the UI's
/// device on `backend`.
///
/// On OpenGL every device of one adapter shares the adapter's single context and its lock: work on
/// a second device of the UI's adapter stalls the UI's frames (wgpu-hal gives up after 6 s and
/// panics, and a frame drawn meanwhile can come out empty). A second instance has a context of its
/// own. On the other backends a second device of the UI's adapter runs independently.
pub fn background_device(adapter: &wgpu::Adapter) -> Result<(wgpu::Device, wgpu::Queue), String> {
    let info = adapter.get_info();
    let own_adapter;
    let adapter = if info.backend == wgpu::Backend::Gl {
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        descriptor.backends = wgpu::Backends::GL;
        let instance = wgpu::Instance::new(descriptor);
        own_adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .map_err(|e| format!("no second OpenGL context for background GPU work ({e})"))?;
        &own_adapter
    } else {
        adapter
    };
    pollster::block_on(adapter.request_device(&full_limits_descriptor(adapter)))
        .map_err(|e| format!("cannot open a second device for background GPU work: {e}"))
}

/// A device without a window, for tests and offscreen work.
pub struct HeadlessGpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
}

impl HeadlessGpu {
    pub fn new() -> Result<Self, String> {
        let adapter = request_adapter()?;
        let (device, queue) = pollster::block_on(adapter.request_device(&full_limits_descriptor(&adapter)))
            .map_err(|e| format!("the wgpu adapter refused a device ({e}). {DRIVER_HINT}"))?;
        Ok(Self { device, queue, info: adapter.get_info() })
    }
}

/// The pipeline that shows a view's values (`inr_display.wgsl`) in the viewport egui-wgpu sets
/// to the view's rectangle; `layout` binds its `DisplayParams` and value buffer.
pub(crate) fn display_pipeline(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    target_format: wgpu::TextureFormat,
    label: &str,
) -> wgpu::RenderPipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(SHADERS[1].1.into()),
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(label),
        layout: Some(&pipeline_layout),
        vertex: wgpu::VertexState {
            module: &module,
            entry_point: Some("display_vertex"),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            buffers: &[],
        },
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module: &module,
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
    })
}

/// Copies the first `size` bytes of `buffer` (vec4<f32> values) back to the CPU. Blocks.
pub(crate) fn read_vec4_buffer(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    buffer: &wgpu::Buffer,
    size: u64,
) -> Result<Vec<[f32; 4]>, String> {
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
    encoder.copy_buffer_to_buffer(buffer, 0, &readback, 0, size);
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
    let values = bytemuck::cast_slice::<u8, f32>(&data).chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]).collect();
    drop(data);
    readback.unmap();
    Ok(values)
}

/// A value that changes as a whole (network weights, a baked grid), tagged with a generation that
/// changes whenever it does, so that a view replaces its GPU copy only then.
#[derive(Clone, Debug)]
pub struct Versioned<T> {
    pub generation: u64,
    pub value: std::sync::Arc<T>,
}

/// A renderer kept in egui-wgpu's callback resources that draws views identified by an id: each
/// frame a view's request is prepared (compute work encoded) and then painted.
pub trait GpuViews: Send + Sync + 'static {
    type Request: Send + Sync + 'static;
    fn prepare_request(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        request: &Self::Request,
    );
    fn paint_request(&self, render_pass: &mut wgpu::RenderPass<'static>, request: &Self::Request);
}

/// The per-frame paint callback of one view of the renderer `G` (the INR and NeRF views).
pub struct ViewCallback<G: GpuViews> {
    pub request: G::Request,
    renderer: std::marker::PhantomData<fn() -> G>,
}

impl<G: GpuViews> ViewCallback<G> {
    pub fn new(request: G::Request) -> Self {
        Self { request, renderer: std::marker::PhantomData }
    }
}

impl<G: GpuViews> egui_wgpu::CallbackTrait for ViewCallback<G> {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen_descriptor: &egui_wgpu::ScreenDescriptor,
        egui_encoder: &mut wgpu::CommandEncoder,
        callback_resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(gpu) = callback_resources.get_mut::<G>() {
            gpu.prepare_request(device, queue, egui_encoder, &self.request);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: eframe::egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        callback_resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(gpu) = callback_resources.get::<G>() {
            gpu.paint_request(render_pass, &self.request);
        }
    }
}
