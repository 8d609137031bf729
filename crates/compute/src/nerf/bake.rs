//! Baking a field into a regular grid of `(r, g, b, σ)` for the viewer's fast path, and the CPU
//! twin of the GPU ray marcher over such a grid (`shaders/nerf_view.wgsl`), which the tests
//! compare against the shader.
//!
//! The grid has `resolution³` points spanning the scene box (vertex-centred: point `i` sits at
//! `min + i/(resolution−1)·size`), sampled trilinearly. Colour is view-independent: the mean of
//! the field's colour over four tetrahedral directions. A coarse grid of `BLOCK³`-cell blocks holds
//! each block's largest density so that marching skips empty blocks in one step.

use glam::Vec3;
use rayon::prelude::*;

use super::camera::{Camera, Ray, SceneBox};
use super::train::NerfSnapshot;

/// Grid cells per coarse block along each axis.
pub const BLOCK: u32 = 4;
/// Marching stops once the transmittance falls below this.
pub const MIN_TRANSMITTANCE: f32 = 1e-3;
/// A block whose largest density absorbs less than this over one step counts as empty.
pub const EMPTY_ABSORPTION: f32 = 1e-4;
/// At most this many samples per ray.
pub const MAX_STEPS: u32 = 2048;

/// What the viewer shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ViewMode {
    #[default]
    Rgb,
    Depth,
    Opacity,
}

impl ViewMode {
    pub const ALL: [Self; 3] = [Self::Rgb, Self::Depth, Self::Opacity];

    pub fn label(self) -> &'static str {
        match self {
            Self::Rgb => "RGB",
            Self::Depth => "Depth",
            Self::Opacity => "Opacity",
        }
    }

    /// The shader's code for this mode.
    pub fn code(self) -> u32 {
        match self {
            Self::Rgb => 0,
            Self::Depth => 1,
            Self::Opacity => 2,
        }
    }
}

/// A baked field.
#[derive(Clone, Debug, PartialEq)]
pub struct BakedGrid {
    pub resolution: u32,
    pub scene_box: SceneBox,
    /// `(r, g, b, σ)` per grid point, `x + res·(y + res·z)`.
    pub values: Vec<[f32; 4]>,
    pub coarse_resolution: u32,
    /// Largest σ per block, `x + cres·(y + cres·z)`.
    pub coarse_max: Vec<f32>,
    /// Distance between samples along a ray.
    pub step: f32,
    pub background: Vec3,
    /// The training step the field had reached.
    pub source_step: u64,
}

impl BakedGrid {
    /// A grid from explicit values (tests, other labs); computes the coarse grid. Needs 2–1024
    /// points per axis, `resolution³` values, a positive step and a non-empty box.
    pub fn from_values(
        resolution: u32,
        scene_box: SceneBox,
        values: Vec<[f32; 4]>,
        step: f32,
        background: Vec3,
    ) -> Result<Self, String> {
        if !(2..=1024).contains(&resolution) || values.len() != (resolution as usize).pow(3) {
            return Err(format!(
                "a baked grid needs 2–1024 points per axis and resolution³ values, got {resolution} and {}",
                values.len()
            ));
        }
        let size = scene_box.size();
        if !(step.is_finite() && step > 0.0 && size.is_finite() && size.min_element() > 0.0) {
            return Err("a baked grid needs a positive step and a non-empty scene box".into());
        }
        let coarse_resolution = (resolution - 1).div_ceil(BLOCK).max(1);
        let r = resolution as usize;
        let cr = coarse_resolution as usize;
        let mut coarse_max = vec![0.0_f32; cr * cr * cr];
        for (c, m) in coarse_max.iter_mut().enumerate() {
            let (bx, by, bz) = (c % cr, (c / cr) % cr, c / (cr * cr));
            let span = |b: usize| (b * BLOCK as usize)..=((b + 1) * BLOCK as usize).min(r - 1);
            for z in span(bz) {
                for y in span(by) {
                    for x in span(bx) {
                        *m = m.max(values[x + r * (y + r * z)][3]);
                    }
                }
            }
        }
        Ok(Self { resolution, scene_box, values, coarse_resolution, coarse_max, step, background, source_step: 0 })
    }

    /// Trilinear sample at `u ∈ [0, 1]³` (clamped).
    pub fn sample(&self, u: Vec3) -> [f32; 4] {
        let r = self.resolution as usize;
        #[allow(clippy::cast_precision_loss)]
        let scale = (self.resolution - 1) as f32;
        let x = u.clamp(Vec3::ZERO, Vec3::ONE) * scale;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let cell = |v: f32| (v as usize).min(r - 2);
        let (ix, iy, iz) = (cell(x.x), cell(x.y), cell(x.z));
        #[allow(clippy::cast_precision_loss)]
        let f = x - Vec3::new(ix as f32, iy as f32, iz as f32);
        let at = |dx: usize, dy: usize, dz: usize| self.values[(ix + dx) + r * ((iy + dy) + r * (iz + dz))];
        let mut out = [0.0_f32; 4];
        for (k, o) in out.iter_mut().enumerate() {
            let c00 = at(0, 0, 0)[k] * (1.0 - f.x) + at(1, 0, 0)[k] * f.x;
            let c10 = at(0, 1, 0)[k] * (1.0 - f.x) + at(1, 1, 0)[k] * f.x;
            let c01 = at(0, 0, 1)[k] * (1.0 - f.x) + at(1, 0, 1)[k] * f.x;
            let c11 = at(0, 1, 1)[k] * (1.0 - f.x) + at(1, 1, 1)[k] * f.x;
            let c0 = c00 * (1.0 - f.y) + c10 * f.y;
            let c1 = c01 * (1.0 - f.y) + c11 * f.y;
            *o = c0 * (1.0 - f.z) + c1 * f.z;
        }
        out
    }

    /// Index of the block containing `u ∈ [0, 1]³`, and the block's bounds in `u`.
    fn block_of(&self, u: Vec3) -> (usize, Vec3, Vec3) {
        #[allow(clippy::cast_precision_loss)]
        let block_size = BLOCK as f32 / (self.resolution - 1) as f32;
        let cr = self.coarse_resolution as usize;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let idx = |v: f32| ((v / block_size).max(0.0) as usize).min(cr - 1);
        let (bx, by, bz) = (idx(u.x), idx(u.y), idx(u.z));
        #[allow(clippy::cast_precision_loss)]
        let lo = Vec3::new(bx as f32, by as f32, bz as f32) * block_size;
        (bx + cr * (by + cr * bz), lo, lo + Vec3::splat(block_size))
    }

    /// Marches `ray` from `near` to `far` as the renderer does: sample k sits at
    /// near + (k + ½)·step (counted, not summed, so it always advances), an empty block is skipped
    /// to the first sample past its exit, and at most [`MAX_STEPS`] iterations are taken.
    /// `visit(t, value)` gets each sample in an occupied block and says whether to go on.
    fn march(&self, ray: &Ray, (near, far): (f32, f32), mut visit: impl FnMut(f32, [f32; 4]) -> bool) {
        let (size, step) = (self.scene_box.size(), self.step);
        let mut k = 0_u32;
        let mut steps = 0;
        while steps < MAX_STEPS {
            steps += 1;
            #[allow(clippy::cast_precision_loss)]
            let t = near + (k as f32 + 0.5) * step;
            if t >= far {
                break;
            }
            let u = (ray.at(t) - self.scene_box.min) / size;
            let (block, lo, hi) = self.block_of(u);
            if self.coarse_max[block] * step < EMPTY_ABSORPTION {
                // Jump to the first sample past the block's exit.
                let inv = size / ray.direction;
                let exit = t + ((lo - u) * inv).max((hi - u) * inv).min_element().max(0.0);
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
                let next = ((exit - near) / step - 0.5).ceil().max(k as f32 + 1.0) as u32;
                k = next;
                continue;
            }
            if !visit(t, self.sample(u)) {
                break;
            }
            k += 1;
        }
    }

    /// Fraction of light that passes straight from `from` to `to` through the grid's density
    /// (1 where nothing lies between): whether a point is hidden from a camera. Marches like the
    /// renderer and stops once almost nothing gets through.
    pub fn transmittance_between(&self, from: Vec3, to: Vec3) -> f32 {
        /// Optical depth past which the rest does not matter (transmittance below 1e-4).
        const OPAQUE: f32 = 9.2;
        let offset = to - from;
        let length = offset.length();
        if !(length > 0.0 && length.is_finite()) {
            return 1.0;
        }
        let ray = Ray { origin: from, direction: offset / length };
        let Some((near, far)) = self.scene_box.intersect(&ray, 0.0) else { return 1.0 };
        let mut optical = 0.0_f32;
        self.march(&ray, (near, far.min(length)), |_, [.., sigma]| {
            optical += sigma.max(0.0) * self.step;
            optical < OPAQUE
        });
        (-optical).exp()
    }

    /// The CPU twin of `shaders/nerf_view.wgsl`: marches `camera`'s pixel `(i, j)` and returns
    /// the displayed colour for `mode` (depth shown bright-near between `depth_range`).
    pub fn render_pixel(&self, camera: &Camera, i: u32, j: u32, mode: ViewMode, depth_range: (f32, f32)) -> [f32; 3] {
        let ray = camera.pixel_ray(i, j);
        let mut rgb = Vec3::ZERO;
        let mut transmittance = 1.0_f32;
        let mut depth = 0.0_f32;
        if let Some(range) = self.scene_box.intersect(&ray, 0.0) {
            self.march(&ray, range, |t, [r, g, b, sigma]| {
                let alpha = 1.0 - (-sigma.max(0.0) * self.step).exp();
                let w = transmittance * alpha;
                rgb += w * Vec3::new(r, g, b);
                depth += w * t;
                transmittance *= 1.0 - alpha;
                transmittance > MIN_TRANSMITTANCE
            });
        }
        let opacity = 1.0 - transmittance;
        match mode {
            ViewMode::Rgb => (rgb + transmittance * self.background).to_array(),
            ViewMode::Opacity => [opacity; 3],
            ViewMode::Depth => {
                let d = if opacity > 0.05 { depth / opacity } else { depth_range.1 };
                let v = (1.0 - (d - depth_range.0) / (depth_range.1 - depth_range.0).max(1e-6)).clamp(0.0, 1.0);
                [v; 3]
            }
        }
    }

    /// The whole view on the CPU, row-major RGB.
    pub fn render(&self, camera: &Camera, mode: ViewMode, depth_range: (f32, f32)) -> Vec<[f32; 3]> {
        (0..camera.height)
            .into_par_iter()
            .flat_map_iter(|j| (0..camera.width).map(move |i| (i, j)))
            .map(|(i, j)| self.render_pixel(camera, i, j, mode, depth_range))
            .collect()
    }
}

/// Grid points per axis of the viewer's baked field.
pub const BAKE_RESOLUTION: u32 = 128;
/// At most about this many field evaluations per bake (a lower resolution early in training).
pub const BAKE_MAX_QUERIES: usize = 150_000;

/// Bakes `snapshot` at up to `resolution³` points (8 to 512 per axis). Points far from occupied cells are left empty
/// without querying the field; while much of the box is occupied (early in training) the
/// resolution is lowered so that at most about `max_queries` points are evaluated.
pub fn bake(snapshot: &NerfSnapshot, resolution: u32, max_queries: usize) -> BakedGrid {
    let occupied = f64::from(snapshot.occupancy.occupancy()).max(1e-3);
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let affordable = (max_queries as f64 / occupied).cbrt() as u32;
    let resolution = resolution.min(affordable).clamp(8, 512);
    let r = resolution as usize;
    let occupancy = &snapshot.occupancy;
    let scene_box = occupancy.scene_box;
    #[allow(clippy::cast_precision_loss)]
    let scale = (resolution - 1) as f32;
    let point = |idx: usize| -> Vec3 {
        let (x, y, z) = (idx % r, (idx / r) % r, idx / (r * r));
        #[allow(clippy::cast_precision_loss)]
        let u = Vec3::new(x as f32, y as f32, z as f32) / scale;
        scene_box.min + u * scene_box.size()
    };
    // A point is needed when any occupancy cell within half a cell of it is occupied.
    #[allow(clippy::cast_precision_loss)]
    let half_cell = 0.5 * scene_box.size() / occupancy.resolution as f32;
    let needed: Vec<usize> = (0..r * r * r)
        .into_par_iter()
        .filter(|&idx| {
            let p = point(idx);
            (0..8).any(|k| {
                let offset = Vec3::new(
                    if k & 1 == 0 { -1.0 } else { 1.0 },
                    if k & 2 == 0 { -1.0 } else { 1.0 },
                    if k & 4 == 0 { -1.0 } else { 1.0 },
                ) * half_cell;
                occupancy.is_occupied(p + offset)
            })
        })
        .collect();
    // Four tetrahedral directions: their mean cancels the first-degree (linear) part of the
    // view dependence exactly.
    let directions = [
        Vec3::new(1.0, 1.0, 1.0).normalize(),
        Vec3::new(1.0, -1.0, -1.0).normalize(),
        Vec3::new(-1.0, 1.0, -1.0).normalize(),
        Vec3::new(-1.0, -1.0, 1.0).normalize(),
    ];
    let mut positions = Vec::with_capacity(needed.len() * 3 * directions.len());
    let mut dirs = Vec::with_capacity(positions.capacity());
    for &idx in &needed {
        let u = scene_box.normalize(point(idx)).clamp(Vec3::ZERO, Vec3::ONE);
        for d in directions {
            positions.extend_from_slice(&[u.x, u.y, u.z]);
            dirs.extend_from_slice(&[d.x, d.y, d.z]);
        }
    }
    let field = snapshot.weights.query(&positions, &dirs);
    let mut values = vec![[0.0_f32; 4]; r * r * r];
    let n_dirs = directions.len();
    #[allow(clippy::cast_precision_loss)]
    let inv = 1.0 / n_dirs as f32;
    for (k, &idx) in needed.iter().enumerate() {
        let mut v = [0.0_f32; 4];
        for d in 0..n_dirs {
            let s = k * n_dirs + d;
            for (acc, &c) in v.iter_mut().zip(&field.rgb[3 * s..3 * s + 3]) {
                *acc += c * inv;
            }
        }
        v[3] = field.sigma[k * n_dirs];
        values[idx] = v;
    }
    let values_len = values.len();
    let mut grid = BakedGrid::from_values(resolution, scene_box, values, snapshot.march.step, snapshot.background)
        .unwrap_or_else(|_| BakedGrid {
            // Unreachable for a validated snapshot (resolution ≥ 8, step > 0); an empty grid otherwise.
            resolution,
            scene_box,
            values: vec![[0.0; 4]; values_len],
            coarse_resolution: 1,
            coarse_max: vec![0.0],
            step: 1.0,
            background: snapshot.background,
            source_step: 0,
        });
    grid.source_step = snapshot.step;
    grid
}
