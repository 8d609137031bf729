//! The CPU renderer of a field: march each pixel's ray through the occupied cells, query the
//! field, composite over a background. Used for evaluation, exports and the viewer's
//! full-quality frames, and as the reference for the GPU fast path.

use glam::Vec3;
use rayon::prelude::*;

use super::camera::{Camera, Ray};
use super::field::FieldWeights;
use super::sampler::{MarchSettings, OccupancyGrid, march};
use super::volume::composite;
use crate::image_io::ImageData;

/// Rays per chunk: bounds the memory of packed samples.
const CHUNK_RAYS: usize = 4096;

/// Colour, expected depth and opacity of every pixel of a view.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderOutput {
    pub width: u32,
    pub height: u32,
    /// RGB composited over the background, row-major.
    pub rgb: Vec<f32>,
    /// Expected distance along the ray divided by the opacity (0 where nothing is hit).
    pub depth: Vec<f32>,
    pub opacity: Vec<f32>,
}

impl RenderOutput {
    pub fn rgb_image(&self) -> ImageData {
        ImageData { width: self.width, height: self.height, channels: 3, pixels: self.rgb.clone() }
    }

    /// Depth mapped to [0, 1] between `near` and `far` (near is bright), background black.
    pub fn depth_image(&self, near: f32, far: f32) -> ImageData {
        let span = (far - near).max(1e-6);
        let pixels = self
            .depth
            .iter()
            .zip(&self.opacity)
            .map(|(&d, &a)| if a < 0.05 { 0.0 } else { (1.0 - (d - near) / span).clamp(0.0, 1.0) })
            .collect();
        ImageData { width: self.width, height: self.height, channels: 1, pixels }
    }

    pub fn opacity_image(&self) -> ImageData {
        let pixels = self.opacity.iter().map(|a| a.clamp(0.0, 1.0)).collect();
        ImageData { width: self.width, height: self.height, channels: 1, pixels }
    }
}

/// Renders `rays` (deterministic sample positions) and returns per-ray `(rgb, depth, opacity)`.
pub fn render_rays(
    weights: &FieldWeights,
    grid: &OccupancyGrid,
    settings: &MarchSettings,
    rays: &[Ray],
    background: Vec3,
) -> Vec<([f32; 3], f32, f32)> {
    let mut out = Vec::with_capacity(rays.len());
    for chunk in rays.chunks(CHUNK_RAYS) {
        let jitter = vec![0.5_f32; chunk.len()];
        let samples = march(chunk, &jitter, grid, settings);
        let field = weights.query(&grid.scene_box.normalize_points(&samples.positions), &samples.directions);
        let composited: Vec<_> = (0..samples.num_rays())
            .into_par_iter()
            .map(|r| {
                let range = samples.range(r);
                let c = composite(
                    &field.sigma[range.clone()],
                    &field.rgb[3 * range.start..3 * range.end],
                    &samples.deltas[range.clone()],
                    &samples.t[range],
                );
                let rest = 1.0 - c.opacity;
                let rgb =
                    [c.rgb[0] + rest * background.x, c.rgb[1] + rest * background.y, c.rgb[2] + rest * background.z];
                let depth = if c.opacity > 1e-6 { c.depth / c.opacity } else { 0.0 };
                (rgb, depth, c.opacity)
            })
            .collect();
        out.extend(composited);
    }
    out
}

/// Renders every pixel of `camera`.
pub fn render_camera(
    weights: &FieldWeights,
    grid: &OccupancyGrid,
    settings: &MarchSettings,
    camera: &Camera,
    background: Vec3,
) -> RenderOutput {
    let rays: Vec<Ray> =
        (0..camera.height).flat_map(|j| (0..camera.width).map(move |i| camera.pixel_ray(i, j))).collect();
    let results = render_rays(weights, grid, settings, &rays, background);
    let mut out = RenderOutput {
        width: camera.width,
        height: camera.height,
        rgb: Vec::with_capacity(rays.len() * 3),
        depth: Vec::with_capacity(rays.len()),
        opacity: Vec::with_capacity(rays.len()),
    };
    for (rgb, depth, opacity) in results {
        out.rgb.extend_from_slice(&rgb);
        out.depth.push(depth);
        out.opacity.push(opacity);
    }
    out
}
