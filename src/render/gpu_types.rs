//! Plain structs that mirror the WGSL uniform structs byte for byte (sizes tested against naga).

use bytemuck::{Pod, Zeroable};

/// `Network` in `shaders/inr.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct NetworkUniform {
    pub num_layers: u32,
    pub width: u32,
    /// `width` rounded up to a multiple of 4, divided by 4.
    pub width4: u32,
    pub out_features: u32,
    pub omega0: f32,
    pub reference_width: u32,
    pub reference_height: u32,
    pub reference_channels: u32,
}

/// `EvalParams` in `shaders/inr.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct EvalParamsUniform {
    pub origin: [f32; 2],
    pub step: [f32; 2],
    pub grid_width: u32,
    pub grid_height: u32,
    pub row_begin: u32,
    pub row_end: u32,
    pub mode: u32,
    pub _pad: [u32; 3],
}

/// `DisplayParams` in `shaders/inr_display.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct DisplayParamsUniform {
    pub grid_width: u32,
    pub grid_height: u32,
    pub mode: u32,
    pub channels: u32,
    pub scale: f32,
    pub linear_output: u32,
    pub _pad: [u32; 2],
}

/// `Params` in `shaders/inr_edit.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct EditParamsUniform {
    pub origin: [f32; 2],
    pub step: [f32; 2],
    pub grid_width: u32,
    pub pixel_begin: u32,
    pub pixel_count: u32,
    pub width: u32,
    pub omega0: f32,
    pub layer_offset: u32,
    pub fan_in: u32,
    pub out_features: u32,
    pub num_partials: u32,
    pub order: u32,
    pub num_products: u32,
    pub op_layers: u32,
    pub op_width: u32,
    pub residual: u32,
    pub _pad: [u32; 2],
}

/// `ViewParams` in `shaders/nerf_view.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct NerfViewUniform {
    pub origin: [f32; 4],
    pub right: [f32; 4],
    pub up: [f32; 4],
    pub back: [f32; 4],
    pub intrinsics: [f32; 4],
    pub box_min: [f32; 4],
    pub box_max: [f32; 4],
    pub background: [f32; 4],
    pub depth_range: [f32; 4],
    pub size: [u32; 4],
    pub grid: [u32; 4],
}

/// `(WGSL file, struct name, size of the Rust mirror)` for every mirrored struct.
pub const MIRRORS: [(&str, &str, usize); 5] = [
    ("nerf_view.wgsl", "ViewParams", size_of::<NerfViewUniform>()),
    ("inr.wgsl", "Network", size_of::<NetworkUniform>()),
    ("inr.wgsl", "EvalParams", size_of::<EvalParamsUniform>()),
    ("inr_display.wgsl", "DisplayParams", size_of::<DisplayParamsUniform>()),
    ("inr_edit.wgsl", "Params", size_of::<EditParamsUniform>()),
];
