//! All maths: data loading, models, training loops, metrics. Synchronous, seeded, no UI or GPU.

pub mod colormap;
pub mod control;
pub mod fastmath;
pub mod image_io;
pub mod inr;
pub mod metrics;
pub mod nerf;

/// The device models train on: the first CUDA GPU when built with the `cuda` feature and one is
/// present, otherwise the CPU (where the fused kernels run).
pub fn default_device() -> candle_core::Device {
    #[cfg(feature = "cuda")]
    if let Ok(device) = candle_core::Device::new_cuda(0) {
        return device;
    }
    candle_core::Device::Cpu
}
