//! The NeuralLift-360 lab's compute: one photo → a NeRF that looks right from every side.
//!
//! A field (the NeRF lab's hash-grid field, sampler and compositor) is fitted to the reference
//! view (RGB and mask), keeps the order of a rough depth through a ranking loss on pixel pairs,
//! and is pushed towards plausible unseen views by a prior. The prior here is geometric — the
//! view from behind shows the mirrored silhouette (exact for every object) and, for objects that
//! are front/back symmetric, the mirrored colours — with opacity entropy on random views so
//! that they stay crisp.
//!
//! - [`input`]: the photo, its mask (alpha or border matte) and rough depth (file or inflation).
//! - [`rank`]: the depth ranking loss.
//! - [`example`]: the built-in example, a render whose true views all around are known.
//! - [`train`]: the lift itself, its figures and the scores against true views.

pub mod example;
pub mod files;
pub mod input;
pub mod rank;
pub mod train;

use std::path::PathBuf;

pub use input::{DepthChoice, LiftImage, LiftInput, MaskSettings, MaskSource};
pub use train::{LiftConfig, LiftMetrics, LiftSummary, PriorKind, lift};

#[derive(Debug, thiserror::Error)]
pub enum LiftError {
    #[error(transparent)]
    Image(#[from] crate::image_io::ImageError),
    #[error("{path}: {reason}")]
    DepthFile { path: PathBuf, reason: String },
    #[error(
        "{path}: the {what} is {}×{} pixels but the image is {}×{}; it must have the image's aspect ratio \
         (export it from the same photo).",
        size.0, size.1, image.0, image.1
    )]
    Mismatch { path: PathBuf, what: &'static str, size: (u32, u32), image: (u32, u32) },
    /// `advice` depends on where the mask came from.
    #[error("{name}: {detail}. {advice}")]
    EmptyMask { name: String, detail: String, advice: &'static str },
    #[error("invalid settings: {0}")]
    Config(String),
    #[error("computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{path}: cannot write ({reason})")]
    Write { path: PathBuf, reason: String },
    #[error(transparent)]
    Checkpoint(#[from] crate::nerf::checkpoint::CheckpointError),
    #[error("the lift diverged at step {step} (loss {loss}); lower the learning rate")]
    Diverged { step: u64, loss: f64 },
}
