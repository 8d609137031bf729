//! Pruning at initialization: the two-layer feature-learning model of the theory (random masks
//! fixed through gradient descent) and its sweeps over the pruning fraction.

pub mod data;
pub mod files;
pub mod init;
pub mod plots;
pub mod theory;

/// Problems with pruning settings or data.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("invalid settings: {0}")]
    Config(String),
    #[error("{path}: {reason}")]
    Data { path: std::path::PathBuf, reason: String },
    /// A problem with a data set as a whole; the message names it.
    #[error("{0}")]
    DataSet(String),
    #[error("computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// A run whose numbers stopped being finite; it is stopped rather than reported.
    #[error("the run diverged: {what} became {value} at {at}. {advice}")]
    Diverged { what: &'static str, value: f64, at: String, advice: &'static str },
}
