//! SparseField's compute layer: all maths (data loading, models, training loops, metrics). Synchronous,
//! seeded, no UI or GPU: the app, the command line and the tests share it, and it builds without the GUI stack.

pub mod chart;
pub mod colormap;
pub mod control;
pub mod dense;
pub mod errors;
pub mod fastmath;
pub mod files;
pub mod filters;
pub mod gan;
pub mod gnn;
pub mod htl;
pub mod image_io;
pub mod inr;
pub mod lift;
pub mod linalg;
pub mod metrics;
pub mod nerf;
pub mod nets;
pub mod ntk;
pub mod optim;
pub mod prune;
pub mod stega;
pub mod train_loop;

/// The device models train on: the first CUDA GPU when built with the `cuda` feature and one is
/// present, otherwise the CPU (where the fused kernels run).
pub fn default_device() -> candle_core::Device {
    #[cfg(feature = "cuda")]
    if let Ok(device) = candle_core::Device::new_cuda(0) {
        return device;
    }
    candle_core::Device::Cpu
}

/// The check every fused op's backward starts with: the forward it differentiates stored its
/// activations in `workspace` (tagged with that forward's generation), and no other forward has
/// run since. Returns the locked workspace; `op` names the op in errors.
pub fn backward_workspace<'a, W>(
    workspace: &'a Option<(std::sync::Arc<std::sync::Mutex<W>>, u64)>,
    generation_of: impl Fn(&W) -> u64,
    op: &str,
) -> candle_core::Result<std::sync::MutexGuard<'a, W>> {
    let Some((workspace, generation)) = workspace else {
        candle_core::bail!("{op}: an evaluation-only forward has no backward");
    };
    let ws = workspace.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if generation_of(&ws) != *generation {
        candle_core::bail!("{op}: another forward pass ran since this one; backward needs its own activations");
    }
    Ok(ws)
}

/// The contiguous f32 values of a CPU tensor's storage, for custom ops; `op` and `what` name the
/// op and the operand in errors.
pub fn cpu_f32_slice<'a>(
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
    op: &str,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let candle_core::CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: {what} must be f32");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: {what} must be contiguous");
    };
    Ok(&data[start..end])
}
