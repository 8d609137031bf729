//! All maths: data loading, models, training loops, metrics. Synchronous, seeded, no UI or GPU.

pub mod colormap;
pub mod control;
pub mod fastmath;
pub mod image_io;
pub mod inr;
pub mod metrics;
