//! Pinhole cameras in the NeRF convention (OpenGL: the camera looks down −Z, +Y is up, +X right)
//! and the rays through their pixel centres.

use glam::{Mat3, Mat4, Vec3};
use serde::{Deserialize, Serialize};

/// A pinhole camera: intrinsics in pixels and the camera-to-world transform.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    pub width: u32,
    pub height: u32,
    /// Focal lengths in pixels.
    pub fx: f32,
    pub fy: f32,
    /// Principal point in pixels (the image centre is `(width/2, height/2)`).
    pub cx: f32,
    pub cy: f32,
    /// Camera-to-world, OpenGL convention (columns: right, up, back, position).
    pub world_from_camera: Mat4,
}

/// A ray `origin + t·direction` with a unit `direction`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ray {
    pub origin: Vec3,
    pub direction: Vec3,
}

impl Ray {
    pub fn at(&self, t: f32) -> Vec3 {
        self.origin + t * self.direction
    }
}

impl Camera {
    /// A camera with horizontal field of view `fov_x_radians` and the principal point at the
    /// image centre (Blender's `camera_angle_x`).
    pub fn from_fov_x(width: u32, height: u32, fov_x_radians: f32, world_from_camera: Mat4) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let (w, h) = (width as f32, height as f32);
        let focal = 0.5 * w / (0.5 * fov_x_radians).tan();
        Self { width, height, fx: focal, fy: focal, cx: 0.5 * w, cy: 0.5 * h, world_from_camera }
    }

    /// A camera at `eye` looking at `target`, world up `+Z` (as Blender scenes are) unless the view
    /// is vertical, then `+Y`.
    pub fn look_at(width: u32, height: u32, fov_x_radians: f32, eye: Vec3, target: Vec3) -> Self {
        let back = (eye - target).normalize_or(Vec3::Z);
        let world_up = if back.cross(Vec3::Z).length_squared() < 1e-8 { Vec3::Y } else { Vec3::Z };
        let right = world_up.cross(back).normalize();
        let up = back.cross(right);
        let world_from_camera = Mat4::from_cols(right.extend(0.0), up.extend(0.0), back.extend(0.0), eye.extend(1.0));
        Self::from_fov_x(width, height, fov_x_radians, world_from_camera)
    }

    pub fn num_pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }

    pub fn position(&self) -> Vec3 {
        self.world_from_camera.w_axis.truncate()
    }

    /// Rotation part of the camera-to-world transform.
    pub fn rotation(&self) -> Mat3 {
        Mat3::from_mat4(self.world_from_camera)
    }

    /// The ray through image point `(u, v)` in pixels (`(i + 0.5, j + 0.5)` is the centre of pixel
    /// `(i, j)`, rows from the top).
    pub fn ray_through(&self, u: f32, v: f32) -> Ray {
        let d_camera = Vec3::new((u - self.cx) / self.fx, -(v - self.cy) / self.fy, -1.0);
        Ray { origin: self.position(), direction: (self.rotation() * d_camera).normalize() }
    }

    /// The ray through the centre of pixel `(i, j)`.
    pub fn pixel_ray(&self, i: u32, j: u32) -> Ray {
        #[allow(clippy::cast_precision_loss)]
        self.ray_through(i as f32 + 0.5, j as f32 + 0.5)
    }

    /// Feeds every field, floats by their bits, to `state` (cache keys of rendered views).
    pub fn hash_bits<H: std::hash::Hasher>(&self, state: &mut H) {
        use std::hash::Hash;
        (self.width, self.height).hash(state);
        for v in self.world_from_camera.to_cols_array().into_iter().chain([self.fx, self.fy, self.cx, self.cy]) {
            v.to_bits().hash(state);
        }
    }

    /// The same camera for an image `factor` times smaller (intrinsics scaled accordingly).
    #[must_use]
    pub fn downscaled(&self, factor: u32) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let s = 1.0 / factor.max(1) as f32;
        Self {
            width: (self.width / factor.max(1)).max(1),
            height: (self.height / factor.max(1)).max(1),
            fx: self.fx * s,
            fy: self.fy * s,
            cx: self.cx * s,
            cy: self.cy * s,
            world_from_camera: self.world_from_camera,
        }
    }
}

/// An axis-aligned box that contains the scene; the field is defined inside it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SceneBox {
    pub min: Vec3,
    pub max: Vec3,
}

impl SceneBox {
    /// The cube `[-half, half]³`.
    pub fn cube(half: f32) -> Self {
        Self { min: Vec3::splat(-half), max: Vec3::splat(half) }
    }

    pub fn size(&self) -> Vec3 {
        self.max - self.min
    }

    pub fn center(&self) -> Vec3 {
        0.5 * (self.min + self.max)
    }

    /// Maps a world point to `[0, 1]³` (inside the box).
    pub fn normalize(&self, p: Vec3) -> Vec3 {
        (p - self.min) / self.size()
    }

    /// [`SceneBox::normalize`] of flat `[x, y, z, …]` points, in parallel.
    pub fn normalize_points(&self, points: &[f32]) -> Vec<f32> {
        use rayon::prelude::*;
        points.par_chunks(3).flat_map_iter(|p| self.normalize(Vec3::new(p[0], p[1], p[2])).to_array()).collect()
    }

    /// Entry and exit distances of `ray` through the box (slab method), `None` when it misses or
    /// the box lies behind the origin. The entry distance is clamped to `t_min`.
    pub fn intersect(&self, ray: &Ray, t_min: f32) -> Option<(f32, f32)> {
        let inv = ray.direction.recip();
        let t0 = (self.min - ray.origin) * inv;
        let t1 = (self.max - ray.origin) * inv;
        let near = t0.min(t1).max_element().max(t_min);
        let far = t0.max(t1).min_element();
        (far > near).then_some((near, far))
    }
}
