//! The NeRF lab's compute: multi-view data sets (loading, synthesis), the radiance field (hash
//! encoding + small MLPs), ray sampling with an occupancy grid, volume rendering, training and
//! evaluation.
//!
//! The pieces follow nerfstudio's split — encoding → field → sampler → volume renderer → model →
//! trainer — so that later labs (StegaNeRF, NeuralLift-360) reuse them.

pub mod bake;
pub mod camera;
pub mod checkpoint;
pub mod dataset;
pub mod field;
pub mod field_op;
pub mod hash_encoding;
pub mod orbit;
pub mod render;
pub mod sampler;
pub mod synth;
pub mod train;
pub mod turntable;
pub mod volume;

pub use camera::{Camera, Ray, SceneBox};
pub use dataset::{Dataset, DatasetError, LoadOptions, View};
pub use field::{FieldConfig, FieldWeights, NerfField};
pub use train::{EvalResult, NerfError, NerfSnapshot, TrainConfig, TrainSummary, Trainer, evaluate, train};
