//! Hard-to-learn samples: populations of dense and magnitude-pruned classifiers, the samples
//! where their modal predictions differ (Hooker et al.'s pruning-identified exemplars, PIE),
//! continuous hardness scores, per-class and per-group rates, and training that attends to the
//! hard samples by up-weighting them.

pub mod attend;
pub mod data;
pub mod files;
pub mod lesion;
pub mod mlp;
pub mod pie;
pub mod population;
pub mod seg;
pub mod study;

/// Problems with hard-sample settings or data.
#[derive(Debug, thiserror::Error)]
pub enum HtlError {
    #[error("invalid settings: {0}")]
    Config(String),
    #[error("{path}: {reason}")]
    Data { path: std::path::PathBuf, reason: String },
    /// A problem with a data set as a whole (not one file) or a failed computation; the message
    /// says which.
    #[error("{0}")]
    Other(String),
}

impl From<crate::prune::PruneError> for HtlError {
    fn from(error: crate::prune::PruneError) -> Self {
        use crate::prune::PruneError;
        match error {
            PruneError::Data { path, reason } => Self::Data { path, reason },
            PruneError::Config(reason) => Self::Config(reason),
            other => Self::Other(other.to_string()),
        }
    }
}

/// One complete study: data, populations and attention.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HtlConfig {
    pub source: data::HtlSource,
    pub attributes: Option<data::AttributeSpec>,
    /// Use only the first N training samples (0: all).
    pub train_limit: usize,
    pub population: population::PopulationConfig,
    pub attend: attend::AttendConfig,
}

impl HtlConfig {
    /// Whether `other` reads the same samples.
    pub fn same_data(&self, other: &Self) -> bool {
        self.source == other.source && self.attributes == other.attributes && self.train_limit == other.train_limit
    }

    /// Whether `other` trains the same populations on the same samples.
    pub fn same_populations(&self, other: &Self) -> bool {
        self.same_data(other) && self.population == other.population
    }
}
