//! Ray sampling: an occupancy grid over the scene box that marks where the field has density
//! (updated from the field during training, instant-ngp style), and stratified marching with a
//! fixed step that only emits samples in occupied cells (empty-space skipping).
//!
//! The field is consulted through a callback (nerfacc's model), so every field and every lab
//! shares this sampler.

use glam::Vec3;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::camera::{Ray, SceneBox};
use super::volume::PackedSamples;

/// Rays shorter than this from the camera are not sampled (the camera sits outside the object).
pub const NEAR_T: f32 = 0.05;

/// Which cells of a regular grid over the scene box may hold density.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OccupancyGrid {
    pub resolution: u32,
    pub scene_box: SceneBox,
    /// Running maximum-with-decay of the density sampled in each cell, `x + res·(y + res·z)`.
    pub density: Vec<f32>,
    pub occupied: Vec<bool>,
    /// Density above which a cell counts as occupied.
    pub threshold: f32,
}

impl OccupancyGrid {
    /// A grid with every cell occupied (nothing learned yet).
    pub fn new(resolution: u32, scene_box: SceneBox, threshold: f32) -> Self {
        let n = (resolution as usize).pow(3);
        Self { resolution, scene_box, density: vec![f32::MAX; n], occupied: vec![true; n], threshold }
    }

    pub fn num_cells(&self) -> usize {
        self.occupied.len()
    }

    /// Fraction of occupied cells.
    pub fn occupancy(&self) -> f32 {
        #[allow(clippy::cast_precision_loss)]
        let frac = self.occupied.iter().filter(|&&o| o).count() as f32 / self.num_cells().max(1) as f32;
        frac
    }

    /// The cell containing world point `p`, if inside the box.
    pub fn cell_of(&self, p: Vec3) -> Option<usize> {
        let u = self.scene_box.normalize(p);
        if u.min_element() < 0.0 || u.max_element() >= 1.0 {
            return None;
        }
        let r = self.resolution as usize;
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let idx = |v: f32| ((v * r as f32) as usize).min(r - 1);
        Some(idx(u.x) + r * (idx(u.y) + r * idx(u.z)))
    }

    pub fn is_occupied(&self, p: Vec3) -> bool {
        self.cell_of(p).is_some_and(|c| self.occupied[c])
    }

    /// World-space centre of cell `c` and the cell's size.
    pub fn cell_bounds(&self, c: usize) -> (Vec3, Vec3) {
        let r = self.resolution as usize;
        let (x, y, z) = (c % r, (c / r) % r, c / (r * r));
        #[allow(clippy::cast_precision_loss)]
        let (rf, ijk) = (r as f32, Vec3::new(x as f32, y as f32, z as f32));
        let size = self.scene_box.size() / rf;
        (self.scene_box.min + (ijk + 0.5) * size, size)
    }

    /// Re-estimates every cell from `density_at` (world positions `[x,y,z]…` → densities) at one
    /// random point per cell: `d ← max(decay·d, σ)`, occupied when `d` exceeds the threshold (or
    /// the mean, whichever is lower, so a faint scene still has cells).
    pub fn update(&mut self, rng: &mut impl Rng, decay: f32, density_at: impl Fn(&[f32]) -> Vec<f32>) {
        let mut points = Vec::with_capacity(self.num_cells() * 3);
        for c in 0..self.num_cells() {
            let (centre, size) = self.cell_bounds(c);
            let jitter = Vec3::new(rng.random(), rng.random(), rng.random()) - 0.5;
            let p = centre + jitter * size;
            points.extend_from_slice(&[p.x, p.y, p.z]);
        }
        let sigmas = density_at(&points);
        for (d, &s) in self.density.iter_mut().zip(&sigmas) {
            let decayed = if *d == f32::MAX { 0.0 } else { *d * decay };
            *d = decayed.max(if s.is_finite() { s } else { 0.0 });
        }
        #[allow(clippy::cast_precision_loss)]
        let mean = self.density.iter().sum::<f32>() / self.num_cells().max(1) as f32;
        let threshold = self.threshold.min(mean);
        for (o, &d) in self.occupied.iter_mut().zip(&self.density) {
            *o = d > threshold;
        }
    }
}

/// How rays are marched.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarchSettings {
    /// Distance between samples (world units).
    pub step: f32,
    /// At most this many samples per ray.
    pub max_samples: usize,
}

impl MarchSettings {
    /// `num_steps` samples across the box's diagonal.
    pub fn for_box(scene_box: &SceneBox, num_steps: u32) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let step = scene_box.size().length() / num_steps.max(1) as f32;
        Self { step, max_samples: num_steps as usize }
    }
}

/// Marches `rays` through the occupied cells of `grid`. `jitter[r] ∈ [0, 1)` shifts ray `r`'s
/// samples along the ray (stratified sampling in training; 0.5 for a deterministic render).
pub fn march(rays: &[Ray], jitter: &[f32], grid: &OccupancyGrid, settings: &MarchSettings) -> PackedSamples {
    const CHUNK: usize = 256;
    let step = settings.step;
    let parts: Vec<PackedSamples> = rays
        .par_chunks(CHUNK)
        .zip(jitter.par_chunks(CHUNK))
        .map(|(rays, jitter)| {
            let mut part = PackedSamples { offsets: vec![0], ..Default::default() };
            for (ray, &j) in rays.iter().zip(jitter) {
                if let Some((near, far)) = grid.scene_box.intersect(ray, NEAR_T) {
                    let mut t = near + j * step;
                    let mut count = 0;
                    // Also bounds the loop where `t += step` would stop changing `t`.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let max_iterations = ((far - near) / step).ceil().min(1e7) as usize + 2;
                    let mut iterations = 0;
                    while t < far && count < settings.max_samples && iterations < max_iterations {
                        iterations += 1;
                        let p = ray.at(t);
                        if grid.is_occupied(p) {
                            part.t.push(t);
                            part.deltas.push(step);
                            part.positions.extend_from_slice(&[p.x, p.y, p.z]);
                            part.directions.extend_from_slice(&[ray.direction.x, ray.direction.y, ray.direction.z]);
                            count += 1;
                        }
                        t += step;
                    }
                }
                part.offsets.push(part.t.len());
            }
            part
        })
        .collect();
    let mut out = PackedSamples { offsets: vec![0], ..Default::default() };
    for part in parts {
        let base = out.t.len();
        out.offsets.extend(part.offsets[1..].iter().map(|o| o + base));
        out.t.extend(part.t);
        out.deltas.extend(part.deltas);
        out.positions.extend(part.positions);
        out.directions.extend(part.directions);
    }
    out
}
