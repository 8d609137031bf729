//! An orbit camera around a scene (turntables, the viewer): azimuth and elevation about an `up`
//! axis, at a distance from a target, derived from a data set's training cameras.

use glam::{Mat4, Vec3};
use serde::{Deserialize, Serialize};

use super::camera::Camera;
use super::dataset::View;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Orbit {
    pub target: Vec3,
    /// Unit world up (the turntable's axis).
    pub up: Vec3,
    pub radius: f32,
    /// Radians about `up`, and above the plane normal to it.
    pub azimuth: f32,
    pub elevation: f32,
    pub fov_x: f32,
}

impl Default for Orbit {
    /// The Blender convention: +Z up, radius 4, 0.69 rad field of view, 30° above the horizon.
    fn default() -> Self {
        Self {
            target: Vec3::ZERO,
            up: Vec3::Z,
            radius: 4.0,
            azimuth: 0.0,
            elevation: 30_f32.to_radians(),
            fov_x: 0.691_111_2,
        }
    }
}

impl Orbit {
    /// Refuses a view that renders nothing or non-finite values: the up axis must be a finite,
    /// non-zero vector, the radius positive and finite (at most 10⁶), the target finite, the
    /// angles finite, the field of view between 0.1° and 179°.
    pub fn validate(&self) -> Result<(), String> {
        if !self.up.is_finite() || self.up.length() < 1e-6 {
            return Err(format!("the orbit's up axis {:?} must be a finite, non-zero vector", self.up.to_array()));
        }
        if !(self.radius.is_finite() && self.radius > 0.0 && self.radius <= 1e6) {
            return Err(format!("the orbit radius {} must be positive and at most 1e6", self.radius));
        }
        if !self.target.is_finite() || self.target.abs().max_element() > 1e6 {
            return Err(format!("the orbit target {:?} must be finite (within ±1e6)", self.target.to_array()));
        }
        if !(self.azimuth.is_finite() && self.elevation.is_finite()) {
            return Err("the orbit's azimuth and elevation must be finite".to_owned());
        }
        let (min_fov, max_fov) = (0.1_f32.to_radians(), 179_f32.to_radians());
        if !(self.fov_x >= min_fov && self.fov_x <= max_fov) {
            return Err(format!("the field of view {} rad must be between 0.1° and 179°", self.fov_x));
        }
        Ok(())
    }

    /// Fitted to training views: up = the mean of the cameras' up vectors, radius = their mean
    /// distance from `target`, the field of view of the first camera.
    pub fn from_views(views: &[View], target: Vec3) -> Self {
        let mut orbit = Self { target, ..Self::default() };
        if views.is_empty() {
            return orbit;
        }
        let up: Vec3 = views.iter().map(|v| v.camera.rotation().y_axis).sum();
        orbit.up = up.try_normalize().unwrap_or(Vec3::Z);
        #[allow(clippy::cast_precision_loss)]
        let radius = views.iter().map(|v| (v.camera.position() - target).length()).sum::<f32>() / views.len() as f32;
        if radius.is_finite() && radius > 1e-3 {
            orbit.radius = radius;
        }
        let c = &views[0].camera;
        #[allow(clippy::cast_precision_loss)]
        let fov = 2.0 * (0.5 * c.width as f32 / c.fx).atan();
        if fov.is_finite() && fov > 0.0 {
            orbit.fov_x = fov;
        }
        orbit
    }

    /// Two unit vectors spanning the plane normal to `up`.
    fn basis(&self) -> (Vec3, Vec3) {
        let reference = if self.up.dot(Vec3::X).abs() < 0.9 { Vec3::X } else { Vec3::Y };
        let a = (reference - self.up * reference.dot(self.up)).normalize();
        (a, self.up.cross(a))
    }

    pub fn eye(&self) -> Vec3 {
        let (a, b) = self.basis();
        let horizontal = a * self.azimuth.cos() + b * self.azimuth.sin();
        self.target + self.radius * (horizontal * self.elevation.cos() + self.up * self.elevation.sin())
    }

    /// The camera at this orbit position for a `width × height` image; the field of view spans
    /// the shorter side, so that a wide viewport shows more, not a cropped zoom.
    pub fn camera(&self, width: u32, height: u32) -> Camera {
        let eye = self.eye();
        let back = (eye - self.target).normalize_or(self.up);
        let right = self.up.cross(back).try_normalize().unwrap_or_else(|| self.basis().0);
        let up = back.cross(right);
        let world_from_camera = Mat4::from_cols(right.extend(0.0), up.extend(0.0), back.extend(0.0), eye.extend(1.0));
        let mut camera = Camera::from_fov_x(width, height, self.fov_x, world_from_camera);
        if height < width {
            #[allow(clippy::cast_precision_loss)]
            let focal = 0.5 * height as f32 / (0.5 * self.fov_x).tan();
            (camera.fx, camera.fy) = (focal, focal);
        }
        camera
    }

    /// `count` cameras evenly spaced in azimuth, a full turn from the current position.
    pub fn turntable(&self, count: usize, width: u32, height: u32) -> Vec<Camera> {
        (0..count)
            .map(|k| {
                #[allow(clippy::cast_precision_loss)]
                let azimuth = self.azimuth + std::f32::consts::TAU * k as f32 / count.max(1) as f32;
                Orbit { azimuth, ..*self }.camera(width, height)
            })
            .collect()
    }
}
