//! wgpu rendering: device setup with the adapter's full limits, the INR view pipelines, and
//! progressive refinement. WGSL lives in `shaders/`.

pub mod gpu_types;
pub mod inr_view;
pub mod nerf_view;
pub mod progressive;

use std::sync::Arc;

use eframe::egui_wgpu::{self, wgpu};

/// Every WGSL file, by name, as compiled into the binary.
pub const SHADERS: [(&str, &str); 3] = [
    ("inr.wgsl", include_str!("../../shaders/inr.wgsl")),
    ("inr_display.wgsl", include_str!("../../shaders/inr_display.wgsl")),
    ("nerf_view.wgsl", include_str!("../../shaders/nerf_view.wgsl")),
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
