//! The NeRF lab's compute: multi-view data sets (loading, synthesis), the radiance field (hash
//! encoding + small MLPs), ray sampling with an occupancy grid, volume rendering, training and
//! evaluation.
//!
//! The pieces follow nerfstudio's split — encoding → field → sampler → volume renderer → model →
//! trainer — so that later labs (StegaNeRF, NeuralLift-360) reuse them.

pub mod camera;
pub mod dataset;
pub mod synth;

pub use camera::{Camera, Ray, SceneBox};
pub use dataset::{Dataset, DatasetError, LoadOptions, View};
