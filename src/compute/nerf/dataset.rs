//! Multi-view data sets: the Blender / NeRF-synthetic format and its instant-ngp / nerfstudio
//! variant, loaded strictly.

use std::path::PathBuf;

use glam::Vec3;

use super::camera::{Camera, SceneBox};

/// One posed image. Pixels are straight (not premultiplied) RGBA in [0, 1], row-major; `alpha`
/// is 1 everywhere for images without an alpha channel.
#[derive(Clone, Debug)]
pub struct View {
    pub camera: Camera,
    pub rgba: Vec<[f32; 4]>,
    /// Where the image came from (for messages); empty for generated views.
    pub source: PathBuf,
}

impl View {
    /// Pixel `k` composited over `background`.
    pub fn composited(&self, k: usize, background: Vec3) -> Vec3 {
        let [r, g, b, a] = self.rgba[k];
        Vec3::new(r, g, b) * a + background * (1.0 - a)
    }
}

/// A data set: training, validation and test views of one scene inside `scene_box`.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// A short name for titles and file names.
    pub name: String,
    pub train: Vec<View>,
    pub val: Vec<View>,
    pub test: Vec<View>,
    pub scene_box: SceneBox,
    /// True when the images carry a meaningful alpha channel (then training uses random
    /// backgrounds and evaluation composites over `background`).
    pub has_alpha: bool,
    /// The background that evaluation and the viewer composite over.
    pub background: Vec3,
    /// Things the loader accepted but could not honour (e.g. lens distortion), to show the user.
    pub notices: Vec<String>,
}

/// Options applied while loading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadOptions {
    /// Integer downscale factor of every image (1 = full size).
    pub downscale: u32,
    /// The background colour RGBA images are composited over for evaluation.
    pub background: Vec3,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { downscale: 1, background: Vec3::ONE }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{0}")]
    Todo(String),
}
