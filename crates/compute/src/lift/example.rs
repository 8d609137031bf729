//! The built-in example: the lift example object (see
//! [`lift_example_scene`](crate::nerf::synth::demo::lift_example_scene)) rendered from
//! the reference camera, with its true views from other sides (for scoring novel views) and its
//! true depth (a perfect "monocular estimate", for comparison with the inflation).

use glam::Vec3;
use rayon::prelude::*;

use super::input::LiftImage;
use crate::image_io::ImageData;
use crate::nerf::camera::Camera;
use crate::nerf::orbit::Orbit;
use crate::nerf::synth::demo::lift_example_scene;

/// The example's name in titles and files.
pub const EXAMPLE_NAME: &str = "built-in example";
/// Azimuths (degrees from the reference camera) of the true views the lift is scored on.
pub const TRUE_VIEW_AZIMUTHS_DEG: [f32; 3] = [90.0, 180.0, 270.0];

/// One true view of the example.
#[derive(Clone, Debug)]
pub struct TrueView {
    pub azimuth_deg: f32,
    pub camera: Camera,
    /// Composited over white.
    pub image: ImageData,
    /// The object's coverage of each pixel.
    pub alpha: Vec<f32>,
}

/// The example's true views.
#[derive(Clone, Debug, Default)]
pub struct ExampleTruth {
    pub views: Vec<TrueView>,
}

fn over_white(rgba: &[[f32; 4]]) -> Vec<f32> {
    rgba.iter().flat_map(|&[r, g, b, a]| [r * a + 1.0 - a, g * a + 1.0 - a, b * a + 1.0 - a]).collect()
}

/// The example photo (RGBA) seen from `orbit`'s camera at `width × height`.
pub fn example_image(orbit: &Orbit, width: u32, height: u32) -> LiftImage {
    let camera = orbit.camera(width, height);
    let rgba = lift_example_scene().render(&camera);
    let rgb = rgba.iter().flat_map(|p| [p[0], p[1], p[2]]).collect();
    let alpha = rgba.iter().map(|p| p[3]).collect();
    LiftImage { width, height, rgb, alpha: Some(alpha), name: EXAMPLE_NAME.to_owned() }
}

/// The example's true views at [`TRUE_VIEW_AZIMUTHS_DEG`] from `orbit` (same elevation).
pub fn example_truth(orbit: &Orbit, width: u32, height: u32) -> ExampleTruth {
    let scene = lift_example_scene();
    let views = TRUE_VIEW_AZIMUTHS_DEG
        .par_iter()
        .map(|&azimuth_deg| {
            let camera = Orbit { azimuth: orbit.azimuth + azimuth_deg.to_radians(), ..*orbit }.camera(width, height);
            let rgba = scene.render(&camera);
            let pixels = over_white(&rgba);
            let alpha = rgba.iter().map(|p| p[3]).collect();
            TrueView { azimuth_deg, camera, image: ImageData { width, height, channels: 3, pixels }, alpha }
        })
        .collect();
    ExampleTruth { views }
}

/// The true distance along each pixel's central ray to the example's surface (NaN where the ray
/// misses), at the reference camera.
pub fn example_depth(orbit: &Orbit, width: u32, height: u32) -> Vec<f32> {
    let camera = orbit.camera(width, height);
    let scene = lift_example_scene();
    (0..height)
        .into_par_iter()
        .flat_map_iter(|j| {
            let scene = &scene;
            (0..width).map(move |i| scene.intersect(&camera.pixel_ray(i, j)).map_or(f32::NAN, |hit| hit.t))
        })
        .collect()
}

/// White, the background every lift renders over.
pub const BACKGROUND: Vec3 = Vec3::ONE;
