//! Pruning at initialization: the two-layer feature-learning model of the theory (random masks
//! fixed through gradient descent) and its sweeps over the pruning fraction.

pub mod files;
pub mod plots;
pub mod theory;

/// Problems with pruning settings or data.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("invalid settings: {0}")]
    Config(String),
}
