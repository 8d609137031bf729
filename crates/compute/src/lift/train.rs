//! The lift: a field fitted to one view, its rough depth order and a prior.
//!
//! Each step marches one batch made of three groups of rays through the occupancy grid, runs the
//! fused field once and composites colour, opacity and depth per ray:
//! 1. reference rays (random pixels, then ranking pairs): RGB over a random background per ray
//!    (so the field learns transparency) and opacity against the mask; the pairs' depths (with
//!    the far plane behind whatever is transparent) keep the rough depth's order;
//! 2. with the geometric prior, rays of the mirrored camera behind the object: the camera
//!    reflected through the plane across the view axis sees the reflected object, and after
//!    turning it right-handed its image is the reference mirrored left–right. The silhouette of
//!    the object from behind is the mirrored reference silhouette for every object (exactly for
//!    a distant camera); the colours are right for front/back symmetric objects, so they get a
//!    smaller weight;
//! 3. the silhouette hull: rays of cameras turned about the vertical axis (any azimuth, the
//!    reference elevation) whose opacity should match the reference silhouette made left–right
//!    symmetric. Exact for solids of revolution, a rough "as deep as it is wide" for other
//!    objects, so it has its own weight; without it nothing bounds the object along the
//!    reference rays and side views show the silhouette extruded;
//! 4. rays of random cameras around the object: the binary entropy of their opacity, so that
//!    unseen views end in a crisp surface rather than fog.
//!
//! The reference mask also carves the occupancy grid: a cell none of whose corners projects
//! into the (slightly dilated) mask can hold no density the photo would not have shown, so it
//! stays empty from the first step. Marching skips it, which makes the early steps (when the
//! grid is otherwise still full) several times cheaper.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use glam::Vec3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::LiftError;
use super::example::{BACKGROUND, ExampleTruth};
use super::input::LiftInput;
use super::rank::{ranking_loss_tensor, sample_pairs};
use crate::control::{Metrics, RunControl, RunEvent};
use crate::image_io::ImageData;
use crate::metrics;
use crate::nerf::camera::{Camera, Ray, SceneBox};
use crate::nerf::field::{FieldConfig, FieldWeights};
use crate::nerf::field_op::{FieldLayout, FieldOp, Workspace};
use crate::nerf::hash_encoding::HashGridConfig;
use crate::nerf::orbit::Orbit;
use crate::nerf::render::{RenderOutput, render_camera};
use crate::nerf::sampler::{MarchSettings, OccupancyGrid, march};
use crate::nerf::train::{FlatAdam, NerfSnapshot, RenderedRays, render_samples};
use crate::train_loop::{self, Schedule, Steps, Trained};

/// Distance of the reference camera from the object's centre.
pub const CAMERA_DISTANCE: f32 = 4.0;
/// Half side of the scene box around the object.
pub const SCENE_HALF_SIZE: f32 = 1.5;
/// Elevation range (degrees) of the random cameras the prior looks through.
const PRIOR_ELEVATION_DEG: (f32, f32) = (-20.0, 50.0);

/// What pushes unseen views towards plausibility.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PriorKind {
    /// Mirrored silhouette and colours from behind, the silhouette hull from the sides, crisp
    /// opacity everywhere.
    #[default]
    Geometric,
    /// Nothing beyond the reference view (a baseline).
    None,
}

impl PriorKind {
    pub const ALL: [Self; 2] = [Self::Geometric, Self::None];

    pub fn label(self) -> &'static str {
        match self {
            Self::Geometric => "geometric",
            Self::None => "none",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Self::Geometric => {
                "The view from behind shows the mirrored silhouette (true for every object) and mirrored \
                 colours (true for front/back symmetric objects); views from the sides show the silhouette \
                 (true for objects turned on a lathe, roughly true for objects as deep as they are wide); \
                 random views keep a crisp opacity."
            }
            Self::None => "Only the reference view: the baseline the priors are measured against.",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiftConfig {
    pub steps: u64,
    pub seed: u64,
    /// Field of view of the photo across its shorter side (degrees; the horizontal one for square
    /// and portrait photos).
    pub fov_deg: f32,
    /// Elevation of the reference camera above the object's equator (degrees).
    pub elevation_deg: f32,
    pub field: FieldConfig,
    /// Let colours depend on the view direction. Off by default: one photo says nothing about
    /// how colours change with the direction, and a view-dependent field paints unseen views
    /// with whatever its direction inputs make up. Off, the colour network's weights on the
    /// direction's non-constant harmonics stay zero, so every renderer sees a diffuse field.
    pub view_dependent: bool,
    pub learning_rate: f64,
    pub lr_final_ratio: f64,
    /// Random reference pixels per step (the ranking pairs come on top).
    pub reference_rays: usize,
    /// Weight of the reference view's RGB loss (the paper's ~40).
    pub rgb_weight: f32,
    pub mask_weight: f32,
    /// Weight of the depth ranking loss; 0 turns it off.
    pub rank_weight: f32,
    pub rank_pairs: usize,
    /// Margin of the ranking loss (world units; the object spans about 2).
    pub rank_margin: f32,
    /// Pairs whose rough depths differ by less than this fraction of the range are not used.
    pub rank_min_gap: f32,
    pub prior: PriorKind,
    /// Weights of the mirrored view's silhouette and colours (geometric prior).
    pub symmetry_mask_weight: f32,
    pub symmetry_rgb_weight: f32,
    /// Weight of the silhouette hull from the sides (geometric prior); 0 turns it off.
    pub hull_weight: f32,
    /// Rays per step through the mirrored camera and through random cameras.
    pub prior_rays: usize,
    /// Weight of the opacity entropy on random views.
    pub entropy_weight: f32,
    pub march_steps: u32,
    pub occupancy_resolution: u32,
    pub snapshot_interval_secs: f64,
}

impl Default for LiftConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            seed: 0,
            fov_deg: 40.0,
            elevation_deg: 0.0,
            field: FieldConfig {
                hash: HashGridConfig {
                    num_levels: 12,
                    features_per_level: 2,
                    log2_table_size: 16,
                    base_resolution: 16,
                    max_resolution: 256,
                },
                ..FieldConfig::default()
            },
            view_dependent: false,
            learning_rate: 1e-2,
            lr_final_ratio: 0.1,
            reference_rays: 1024,
            rgb_weight: 40.0,
            mask_weight: 20.0,
            rank_weight: 10.0,
            rank_pairs: 256,
            rank_margin: 0.01,
            rank_min_gap: 0.05,
            prior: PriorKind::Geometric,
            symmetry_mask_weight: 10.0,
            symmetry_rgb_weight: 4.0,
            hull_weight: 5.0,
            prior_rays: 512,
            entropy_weight: 0.5,
            march_steps: 256,
            occupancy_resolution: 64,
            snapshot_interval_secs: 1.0,
        }
    }
}

impl LiftConfig {
    pub fn validate(&self) -> Result<(), LiftError> {
        let bad = |m: String| Err(LiftError::Config(m));
        self.field.validate().map_err(LiftError::Config)?;
        if !(1..=1_000_000).contains(&self.steps) {
            return bad(format!("steps must be 1–1000000, got {}", self.steps));
        }
        if !(self.fov_deg.is_finite() && (10.0..=120.0).contains(&self.fov_deg)) {
            return bad(format!("field of view must be 10–120°, got {}", self.fov_deg));
        }
        if !(self.elevation_deg.is_finite() && (-80.0..=80.0).contains(&self.elevation_deg)) {
            return bad(format!("elevation must be −80–80°, got {}", self.elevation_deg));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return bad(format!("learning rate must be in (0, 1), got {}", self.learning_rate));
        }
        if !(self.lr_final_ratio.is_finite() && self.lr_final_ratio > 0.0 && self.lr_final_ratio <= 1.0) {
            return bad(format!("final learning-rate ratio must be in (0, 1], got {}", self.lr_final_ratio));
        }
        if !(16..=16_384).contains(&self.reference_rays) || self.rank_pairs > 8192 || self.prior_rays > 16_384 {
            return bad("reference rays must be 16–16384, ranking pairs and prior rays at most 8192 and 16384".into());
        }
        let weights = [
            self.rgb_weight,
            self.mask_weight,
            self.rank_weight,
            self.rank_margin,
            self.rank_min_gap,
            self.symmetry_mask_weight,
            self.symmetry_rgb_weight,
            self.hull_weight,
            self.entropy_weight,
        ];
        if weights.iter().any(|w| !(w.is_finite() && (0.0..=1000.0).contains(w))) {
            return bad("loss weights and the ranking margin must be 0–1000".into());
        }
        if !(64..=1024).contains(&self.march_steps) || !(16..=128).contains(&self.occupancy_resolution) {
            return bad("march steps must be 64–1024 and the occupancy resolution 16–128".into());
        }
        Ok(())
    }

    /// The orbit of the reference camera: the object at the origin, +Z up, the camera on +X.
    pub fn reference_orbit(&self) -> Orbit {
        Orbit {
            target: Vec3::ZERO,
            up: Vec3::Z,
            radius: CAMERA_DISTANCE,
            azimuth: 0.0,
            elevation: self.elevation_deg.to_radians(),
            fov_x: self.fov_deg.to_radians(),
        }
    }

    /// The camera behind the object, mirrored through the plane across the view axis (its image
    /// is the reference mirrored left–right).
    pub fn mirrored_orbit(&self) -> Orbit {
        let reference = self.reference_orbit();
        Orbit { azimuth: reference.azimuth + std::f32::consts::PI, elevation: -reference.elevation, ..reference }
    }

    pub fn scene_box(&self) -> SceneBox {
        SceneBox::cube(SCENE_HALF_SIZE)
    }
}

/// One step's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiftRecord {
    pub step: u64,
    pub loss: f64,
    /// PSNR of the reference pixels of the batch.
    pub psnr_db: f64,
    pub mask_loss: f64,
    pub rank_loss: f64,
    /// Fraction of ranking pairs in the wrong order (margin ignored).
    pub rank_violations: f64,
    pub symmetry_loss: f64,
    pub hull_loss: f64,
    pub entropy: f64,
    /// Samples marched in the step's batch.
    pub samples: usize,
    pub elapsed_secs: f64,
}

/// Scores of a lifted field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiftMetrics {
    /// PSNR of the reference view (over white) against the photo composited over white.
    pub reference_psnr_db: f64,
    /// IoU of the rendered opacity (> 0.5) with the mask (> 0.5) at the reference camera.
    pub mask_iou: f64,
    /// For the built-in example: `(azimuth from the reference in degrees, PSNR)` of true views.
    pub novel_psnr_db: Vec<(f32, f64)>,
    /// For the built-in example: IoU of the rendered and true silhouettes of the same views.
    pub novel_silhouette_iou: Vec<(f32, f64)>,
}

impl LiftMetrics {
    /// Mean PSNR of the true views at 90° and 180° (the lab's headline figure), if scored.
    pub fn novel_mean_psnr_db(&self) -> Option<f64> {
        mean_at_90_180(&self.novel_psnr_db)
    }

    /// Mean silhouette IoU of the true views at 90° and 180°, if scored.
    pub fn novel_mean_iou(&self) -> Option<f64> {
        mean_at_90_180(&self.novel_silhouette_iou)
    }
}

fn mean_at_90_180(values: &[(f32, f64)]) -> Option<f64> {
    let picked: Vec<f64> =
        values.iter().filter(|(a, _)| (*a - 90.0).abs() < 1e-3 || (*a - 180.0).abs() < 1e-3).map(|&(_, p)| p).collect();
    #[allow(clippy::cast_precision_loss)]
    (!picked.is_empty()).then(|| picked.iter().sum::<f64>() / picked.len() as f64)
}

/// IoU of two masks thresholded at 0.5 (1 when both are empty).
pub fn mask_iou(a: &[f32], b: &[f32]) -> f64 {
    let (mut inter, mut union) = (0_usize, 0_usize);
    for (&a, &b) in a.iter().zip(b) {
        let (a, b) = (a > 0.5, b > 0.5);
        inter += usize::from(a && b);
        union += usize::from(a || b);
    }
    #[allow(clippy::cast_precision_loss)]
    if union == 0 { 1.0 } else { inter as f64 / union as f64 }
}

/// The end of a lift.
#[derive(Clone, Debug)]
pub struct LiftSummary {
    pub snapshot: NerfSnapshot,
    pub steps_done: u64,
    pub cancelled: bool,
    pub seconds: f64,
    pub history: Vec<LiftRecord>,
}

/// Owns the field, optimizer and sampler state of one lift; one call to [`Lifter::step`] is one
/// batch.
pub struct Lifter {
    cfg: LiftConfig,
    input: Arc<LiftInput>,
    weights: FieldWeights,
    params: Vec<f32>,
    optimizer: FlatAdam,
    workspace: Arc<Mutex<Workspace>>,
    occupancy: OccupancyGrid,
    march: MarchSettings,
    rng: ChaCha8Rng,
    reference: Camera,
    mirrored: Camera,
    /// Distance standing in for "nothing hit" in the ranking depth.
    far: f32,
    /// Flat indices of the colour network's weights on the direction's non-constant harmonics,
    /// held at zero for a diffuse field.
    direction_weights: Vec<usize>,
    /// Occupancy cells inside the reference silhouette's cone (the others stay empty).
    allowed: Vec<bool>,
    step: u64,
}

impl Lifter {
    pub fn new(input: Arc<LiftInput>, cfg: &LiftConfig) -> Result<Self, LiftError> {
        cfg.validate()?;
        if input.rgb.len() != 3 * input.num_pixels() || input.mask.len() != input.num_pixels() {
            return Err(LiftError::Config("the input's colours or mask do not match its size".into()));
        }
        let weights = FieldWeights::init(cfg.field, cfg.seed);
        let direction_weights = if cfg.view_dependent { Vec::new() } else { direction_weight_indices(&cfg.field) };
        let scene_box = cfg.scene_box();
        let march = MarchSettings::for_box(&scene_box, cfg.march_steps);
        let mut occupancy = OccupancyGrid::new(cfg.occupancy_resolution, scene_box, 0.01 / march.step);
        let reference = cfg.reference_orbit().camera(input.width, input.height);
        let allowed = silhouette_cells(&occupancy, &reference, &input.mask, input.width, input.height);
        for ((o, d), &a) in occupancy.occupied.iter_mut().zip(occupancy.density.iter_mut()).zip(&allowed) {
            if !a {
                (*o, *d) = (false, 0.0);
            }
        }
        let mut params = weights.flatten();
        for &k in &direction_weights {
            params[k] = 0.0;
        }
        let optimizer = FlatAdam::new(params.len(), 0.9, 0.99, 1e-15);
        let (w, h) = (input.width, input.height);
        Ok(Self {
            cfg: *cfg,
            weights,
            params,
            optimizer,
            workspace: Arc::new(Mutex::new(Workspace::default())),
            occupancy,
            march,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x11F7),
            reference,
            mirrored: cfg.mirrored_orbit().camera(w, h),
            far: CAMERA_DISTANCE + SCENE_HALF_SIZE * 3_f32.sqrt(),
            direction_weights,
            allowed,
            step: 0,
            input,
        })
    }

    pub fn step_count(&self) -> u64 {
        self.step
    }

    pub fn occupancy(&self) -> &OccupancyGrid {
        &self.occupancy
    }

    pub fn snapshot(&mut self) -> NerfSnapshot {
        self.weights.assign_flat(&self.params);
        NerfSnapshot {
            weights: Arc::new(self.weights.clone()),
            occupancy: Arc::new(self.occupancy.clone()),
            march: self.march,
            background: BACKGROUND,
            step: self.step,
        }
    }

    fn pixel_ray(camera: &Camera, width: u32, k: usize) -> Ray {
        let w = width as usize;
        #[allow(clippy::cast_possible_truncation)]
        camera.pixel_ray((k % w) as u32, (k / w) as u32)
    }

    /// A random background and the reference pixel `k` composited over it (from `pixel`'s
    /// colours and mask), pushed to the target lists.
    fn push_target(&mut self, k: usize, targets: &mut Vec<f32>, masks: &mut Vec<f32>, backgrounds: &mut Vec<f32>) {
        let bg = [self.rng.random::<f32>(), self.rng.random::<f32>(), self.rng.random::<f32>()];
        let m = self.input.mask[k];
        for (c, b) in bg.iter().enumerate() {
            targets.push(self.input.rgb[3 * k + c] * m + b * (1.0 - m));
        }
        masks.push(m);
        backgrounds.extend_from_slice(&bg);
    }

    /// One optimization step; returns its figures.
    pub fn step(&mut self) -> Result<LiftRecord, LiftError> {
        let start = Instant::now();
        self.step += 1;
        #[allow(clippy::cast_precision_loss)]
        let progress = (self.step as f64 / self.cfg.steps as f64).min(1.0);
        #[allow(clippy::cast_possible_truncation)]
        let lr = (self.cfg.learning_rate * self.cfg.lr_final_ratio.powf(progress)) as f32;
        let (width, height) = (self.input.width, self.input.height);
        let num_pixels = self.input.num_pixels();

        // Group 1: reference pixels, then the ranking pairs (near half, far half).
        let mut rays = Vec::new();
        let (mut targets, mut masks, mut backgrounds) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..self.cfg.reference_rays {
            let k = self.rng.random_range(0..num_pixels);
            rays.push(Self::pixel_ray(&self.reference, width, k));
            self.push_target(k, &mut targets, &mut masks, &mut backgrounds);
        }
        let (near, far) = if self.cfg.rank_weight > 0.0 {
            let input = self.input.clone();
            sample_pairs(&input.depth, &input.mask, self.cfg.rank_pairs, self.cfg.rank_min_gap, &mut self.rng)
        } else {
            (Vec::new(), Vec::new())
        };
        for &k in near.iter().chain(&far) {
            rays.push(Self::pixel_ray(&self.reference, width, k));
            self.push_target(k, &mut targets, &mut masks, &mut backgrounds);
        }
        let num_reference = rays.len();
        // Group 2: the mirrored camera, whose pixel (i, j) should show reference pixel (w−1−i, j).
        let geometric = self.cfg.prior == PriorKind::Geometric;
        let num_mirrored = if geometric { self.cfg.prior_rays } else { 0 };
        let w = width as usize;
        for _ in 0..num_mirrored {
            let k = self.rng.random_range(0..num_pixels);
            rays.push(Self::pixel_ray(&self.mirrored, width, k));
            let (i, j) = (k % w, k / w);
            self.push_target(j * w + (w - 1 - i), &mut targets, &mut masks, &mut backgrounds);
        }
        // Group 3: cameras turned about the vertical axis; opacity target only (the colour
        // target is a placeholder that no loss reads).
        let num_hull = if geometric && self.cfg.hull_weight > 0.0 { self.cfg.prior_rays } else { 0 };
        let reference_orbit = self.cfg.reference_orbit();
        for _ in 0..num_hull {
            let orbit = Orbit { azimuth: self.rng.random_range(0.0..std::f32::consts::TAU), ..reference_orbit };
            let k = self.rng.random_range(0..num_pixels);
            rays.push(Self::pixel_ray(&orbit.camera(width, height), width, k));
            let (i, j) = (k % w, k / w);
            masks.push(0.5 * (self.input.mask[k] + self.input.mask[j * w + (w - 1 - i)]));
            targets.extend_from_slice(&[0.0; 3]);
            backgrounds.extend_from_slice(&[0.0; 3]);
        }
        // Group 4: random cameras around the object (no targets).
        let num_random = if geometric && self.cfg.entropy_weight > 0.0 { self.cfg.prior_rays } else { 0 };
        for _ in 0..num_random {
            let orbit = Orbit {
                azimuth: self.rng.random_range(0.0..std::f32::consts::TAU),
                elevation: self.rng.random_range(PRIOR_ELEVATION_DEG.0..PRIOR_ELEVATION_DEG.1).to_radians(),
                ..reference_orbit
            };
            let camera = orbit.camera(width, height);
            let k = self.rng.random_range(0..num_pixels);
            rays.push(Self::pixel_ray(&camera, width, k));
        }
        let num_rays = rays.len();
        let jitter: Vec<f32> = (0..num_rays).map(|_| self.rng.random()).collect();
        let samples = Arc::new(march(&rays, &jitter, &self.occupancy, &self.march));
        let mut record = LiftRecord { step: self.step, samples: samples.num_samples(), ..LiftRecord::default() };
        if samples.num_samples() == 0 {
            // Nothing occupied on these rays: nothing to learn from them.
            self.maybe_update_occupancy();
            record.elapsed_secs = start.elapsed().as_secs_f64();
            return Ok(record);
        }
        let device = Device::Cpu;
        let n_targets = num_reference + num_mirrored + num_hull;
        let targets = Tensor::from_vec(targets, (n_targets, 3), &device)?;
        let masks = Tensor::from_vec(masks, (n_targets, 1), &device)?;
        let backgrounds = Tensor::from_vec(backgrounds, (n_targets, 3), &device)?;
        let params = Var::from_slice(&self.params, self.params.len(), &device)?;
        let op = FieldOp::training(self.cfg.field, self.weights.grid.clone(), self.workspace.clone(), self.step);
        let RenderedRays { colour, opacity, depth } =
            render_samples(&samples, &self.occupancy.scene_box, &params, op, true)?;
        let depth = depth.expect("asked for the depth");
        // Rays that hit nothing end on the far plane.
        let depth = (depth + ((1.0 - &opacity)? * f64::from(self.far))?)?.squeeze(1)?;

        let targeted = |t: &Tensor, start: usize, len: usize| t.narrow(0, start, len);
        let prediction = (targeted(&colour, 0, n_targets)?
            + backgrounds.broadcast_mul(&(1.0 - targeted(&opacity, 0, n_targets)?)?)?)?;
        let rgb_err = (prediction - &targets)?.sqr()?;
        let mask_err = (targeted(&opacity, 0, n_targets)? - &masks)?.sqr()?;
        let rgb_ref = rgb_err.narrow(0, 0, num_reference)?.mean_all()?;
        let mask_ref = mask_err.narrow(0, 0, num_reference)?.mean_all()?;
        let mut loss = ((&rgb_ref * f64::from(self.cfg.rgb_weight))? + (&mask_ref * f64::from(self.cfg.mask_weight))?)?;
        record.psnr_db = metrics::psnr_from_mse(f64::from(rgb_ref.to_scalar::<f32>()?));
        record.mask_loss = f64::from(mask_ref.to_scalar::<f32>()?);
        if !near.is_empty() {
            let p = near.len();
            let base = self.cfg.reference_rays;
            let near_depth = depth.narrow(0, base, p)?;
            let far_depth = depth.narrow(0, base + p, p)?;
            let rank = ranking_loss_tensor(&near_depth, &far_depth, f64::from(self.cfg.rank_margin))?;
            record.rank_loss = f64::from(rank.to_scalar::<f32>()?);
            let (a, b) = (near_depth.to_vec1::<f32>()?, far_depth.to_vec1::<f32>()?);
            #[allow(clippy::cast_precision_loss)]
            let violations = a.iter().zip(&b).filter(|(a, b)| a >= b).count() as f64 / p as f64;
            record.rank_violations = violations;
            loss = (loss + (rank * f64::from(self.cfg.rank_weight))?)?;
        }
        if num_mirrored > 0 {
            let rgb_m = rgb_err.narrow(0, num_reference, num_mirrored)?.mean_all()?;
            let mask_m = mask_err.narrow(0, num_reference, num_mirrored)?.mean_all()?;
            let symmetry = ((rgb_m * f64::from(self.cfg.symmetry_rgb_weight))?
                + (mask_m * f64::from(self.cfg.symmetry_mask_weight))?)?;
            record.symmetry_loss = f64::from(symmetry.to_scalar::<f32>()?);
            loss = (loss + symmetry)?;
        }
        if num_hull > 0 {
            let hull = mask_err.narrow(0, num_reference + num_mirrored, num_hull)?.mean_all()?;
            record.hull_loss = f64::from(hull.to_scalar::<f32>()?);
            loss = (loss + (hull * f64::from(self.cfg.hull_weight))?)?;
        }
        if num_random > 0 {
            let a = opacity.narrow(0, n_targets, num_random)?.clamp(1e-4_f32, 1.0 - 1e-4)?;
            let entropy = ((&a * a.log()?)? + ((1.0 - &a)? * (1.0 - &a)?.log()?)?)?.neg()?.mean_all()?;
            record.entropy = f64::from(entropy.to_scalar::<f32>()?);
            loss = (loss + (entropy * f64::from(self.cfg.entropy_weight))?)?;
        }
        let loss_value = f64::from(loss.to_scalar::<f32>()?);
        if !loss_value.is_finite() {
            return Err(LiftError::Diverged { step: self.step, loss: loss_value });
        }
        record.loss = loss_value;
        let grads = loss.backward()?;
        let grad = grads
            .get(params.as_tensor())
            .ok_or_else(|| LiftError::Config("no gradient reached the field's parameters".into()))?
            .to_vec1::<f32>()?;
        let mut grad = grad;
        for &k in &self.direction_weights {
            grad[k] = 0.0;
        }
        self.optimizer.step(&mut self.params, &grad, lr);
        self.maybe_update_occupancy();
        record.elapsed_secs = start.elapsed().as_secs_f64();
        Ok(record)
    }

    fn maybe_update_occupancy(&mut self) {
        if !self.step.is_multiple_of(16) {
            return;
        }
        self.weights.assign_flat(&self.params);
        let weights = &self.weights;
        let scene_box = self.occupancy.scene_box;
        let decay = if self.step < 256 { 0.5 } else { 0.95 };
        self.occupancy.update(&mut self.rng, decay, |points| weights.density(&scene_box.normalize_points(points)));
        for (o, &a) in self.occupancy.occupied.iter_mut().zip(&self.allowed) {
            *o &= a;
        }
    }
}

impl Steps for Lifter {
    type Record = LiftRecord;
    type Snapshot = NerfSnapshot;
    type Error = LiftError;

    fn step(&mut self, _step: u64) -> Result<LiftRecord, LiftError> {
        Lifter::step(self)
    }

    fn stamp(&self, record: &mut LiftRecord, elapsed_secs: f64) {
        record.elapsed_secs = elapsed_secs;
    }

    #[allow(clippy::cast_precision_loss)]
    fn metrics(&self, record: &LiftRecord) -> Metrics {
        vec![
            ("loss", record.loss),
            ("psnr_db", record.psnr_db),
            ("mask", record.mask_loss),
            ("rank", record.rank_loss),
            ("rank_violations", record.rank_violations),
            ("symmetry", record.symmetry_loss),
            ("hull", record.hull_loss),
            ("samples", record.samples as f64),
            ("entropy", record.entropy),
            ("occupancy", f64::from(self.occupancy().occupancy())),
        ]
    }

    fn snapshot(&mut self, _step: u64) -> Result<NerfSnapshot, LiftError> {
        Ok(Lifter::snapshot(self))
    }
}

/// Pixels the mask is dilated by before carving (a margin for the cells' coarse projection).
const CARVE_DILATION: i64 = 2;

/// Which cells of `grid` may hold density given the reference `mask` seen by `camera`: those
/// whose projection (the pixel box around its eight projected corners) holds a pixel of the mask
/// dilated by [`CARVE_DILATION`] pixels, and those reaching behind the camera. Points outside the
/// image count as the nearest border pixel, so an object cut by the frame may continue beyond
/// it, and nothing else is assumed there.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // indices checked in range first
pub fn silhouette_cells(grid: &OccupancyGrid, camera: &Camera, mask: &[f32], width: u32, height: u32) -> Vec<bool> {
    let (w, h) = (i64::from(width), i64::from(height));
    let mut dilated = vec![false; mask.len()];
    for y in 0..h {
        for x in 0..w {
            if mask[(y * w + x) as usize] <= 0.5 {
                continue;
            }
            for dy in -CARVE_DILATION..=CARVE_DILATION {
                for dx in -CARVE_DILATION..=CARVE_DILATION {
                    let (nx, ny) = (x + dx, y + dy);
                    if (0..w).contains(&nx) && (0..h).contains(&ny) {
                        dilated[(ny * w + nx) as usize] = true;
                    }
                }
            }
        }
    }
    // Summed-area table of the dilated mask: any pixel in a box in O(1).
    let (wu, hu) = (width as usize, height as usize);
    let mut table = vec![0_u32; (wu + 1) * (hu + 1)];
    for y in 0..hu {
        let mut row = 0;
        for x in 0..wu {
            row += u32::from(dilated[y * wu + x]);
            table[(y + 1) * (wu + 1) + x + 1] = table[y * (wu + 1) + x + 1] + row;
        }
    }
    let any_in = |x0: usize, x1: usize, y0: usize, y1: usize| {
        let at = |x: usize, y: usize| table[y * (wu + 1) + x];
        at(x1 + 1, y1 + 1) + at(x0, y0) > at(x0, y1 + 1) + at(x1 + 1, y0)
    };
    let camera_from_world = camera.world_from_camera.inverse();
    (0..grid.num_cells())
        .map(|c| {
            let (centre, size) = grid.cell_bounds(c);
            let half = 0.5 * size;
            let (mut u0, mut u1, mut v0, mut v1) = (f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY);
            for k in 0..8 {
                let corner = centre
                    + Vec3::new(
                        if k & 1 == 0 { -half.x } else { half.x },
                        if k & 2 == 0 { -half.y } else { half.y },
                        if k & 4 == 0 { -half.z } else { half.z },
                    );
                let p = camera_from_world.transform_point3(corner);
                if p.z >= -1e-6 {
                    return true;
                }
                let u = camera.cx + camera.fx * p.x / -p.z;
                let v = camera.cy - camera.fy * p.y / -p.z;
                (u0, u1, v0, v1) = (u0.min(u), u1.max(u), v0.min(v), v1.max(v));
            }
            if !(u0.is_finite() && u1.is_finite() && v0.is_finite() && v1.is_finite()) {
                return true;
            }
            let px = |u: f32, n: i64| (u.floor() as i64).clamp(0, n - 1) as usize;
            any_in(px(u0, w), px(u1, w), px(v0, h), px(v1, h))
        })
        .collect()
}

/// Flat indices (in [`FieldLayout`] order) of the first colour layer's weights on spherical
/// harmonics 1.. of the view direction (its inputs are the geometry features, then the 16
/// harmonics; harmonic 0 is constant).
pub fn direction_weight_indices(config: &FieldConfig) -> Vec<usize> {
    let layout = FieldLayout::new(config);
    let Some(slot) = layout.layers.get(2) else {
        return Vec::new();
    };
    let first_direction = config.num_geo_features + 1;
    (0..slot.fan_out)
        .flat_map(|o| (first_direction..slot.fan_in).map(move |c| slot.weight_offset + o * slot.fan_in + c))
        .collect()
}

/// Lifts `input` for `cfg.steps` steps, reporting progress (loss, reference PSNR, mask, ranking,
/// symmetry and entropy terms) and snapshots; cancellation returns what was learned so far.
pub fn lift(
    input: Arc<LiftInput>,
    cfg: &LiftConfig,
    control: &RunControl,
    on_event: &mut dyn FnMut(RunEvent<NerfSnapshot>),
) -> Result<LiftSummary, LiftError> {
    let mut lifter = Lifter::new(input, cfg)?;
    let schedule = Schedule { steps: cfg.steps, snapshot_interval_secs: cfg.snapshot_interval_secs };
    let Trained { history, steps_done, cancelled, seconds, snapshot } =
        train_loop::train(&mut lifter, schedule, control, on_event)?;
    Ok(LiftSummary { snapshot, steps_done, cancelled, seconds, history })
}

/// Renders the field from the reference camera (over white).
pub fn render_reference(snapshot: &NerfSnapshot, cfg: &LiftConfig, width: u32, height: u32) -> RenderOutput {
    let camera = cfg.reference_orbit().camera(width, height);
    render_camera(&snapshot.weights, &snapshot.occupancy, &snapshot.march, &camera, BACKGROUND)
}

/// Renders the field at `azimuth_deg` from the reference camera (same elevation).
pub fn render_azimuth(
    snapshot: &NerfSnapshot,
    cfg: &LiftConfig,
    azimuth_deg: f32,
    width: u32,
    height: u32,
) -> RenderOutput {
    let orbit = Orbit { azimuth: azimuth_deg.to_radians(), ..cfg.reference_orbit() };
    render_camera(&snapshot.weights, &snapshot.occupancy, &snapshot.march, &orbit.camera(width, height), BACKGROUND)
}

/// Scores a lifted field: the reference view against the photo, the mask, and the example's
/// true views when given.
pub fn evaluate(
    snapshot: &NerfSnapshot,
    input: &LiftInput,
    cfg: &LiftConfig,
    truth: Option<&ExampleTruth>,
) -> (LiftMetrics, RenderOutput) {
    let render = render_reference(snapshot, cfg, input.width, input.height);
    let target = input.composited(BACKGROUND.to_array());
    let reference_psnr_db = metrics::psnr_db(&render.rgb_image(), &target);
    let reference_iou = mask_iou(&render.opacity, &input.mask);
    let mut novel_psnr_db = Vec::new();
    let mut novel_silhouette_iou = Vec::new();
    for view in truth.map_or(&[][..], |t| &t.views) {
        let r = render_camera(&snapshot.weights, &snapshot.occupancy, &snapshot.march, &view.camera, BACKGROUND);
        novel_psnr_db.push((view.azimuth_deg, metrics::psnr_db(&r.rgb_image(), &view.image)));
        novel_silhouette_iou.push((view.azimuth_deg, mask_iou(&r.opacity, &view.alpha)));
    }
    (LiftMetrics { reference_psnr_db, mask_iou: reference_iou, novel_psnr_db, novel_silhouette_iou }, render)
}

/// Side-by-side strip of renders (for CLI images): each `RenderOutput`'s RGB, left to right.
pub fn strip(renders: &[ImageData]) -> ImageData {
    let height = renders.iter().map(|r| r.height).max().unwrap_or(1);
    let width: u32 = renders.iter().map(|r| r.width).sum::<u32>().max(1);
    let mut pixels = vec![1.0; (width * height) as usize * 3];
    let mut x0 = 0;
    for image in renders {
        for y in 0..image.height {
            for x in 0..image.width {
                for c in 0..3 {
                    let v = if image.channels == 1 { image.at(x, y, 0) } else { image.at(x, y, c) };
                    pixels[(((y * width) + x0 + x) as usize) * 3 + c] = v;
                }
            }
        }
        x0 += image.width;
    }
    ImageData { width, height, channels: 3, pixels }
}
