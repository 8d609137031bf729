//! A contextual stochastic block model: a graph whose classes, homophily and feature signal are
//! set by hand, for experiments where the truth is known.
//!
//! Each class owns a block of the vocabulary; a node's features are `words` draws (binary bag
//! of words, like Cora's), each from its class's block with probability `signal` and from the
//! whole vocabulary otherwise. Each edge starts at a uniformly drawn node and ends at a node of
//! the same class with probability `homophily`, of another class otherwise, so the share of
//! same-class edges is `homophily` in expectation.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::graph::{Graph, SparseRows, planetoid_like_split, undirected_edges};
use super::model::GnnError;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsbmSpec {
    pub nodes: usize,
    pub classes: usize,
    /// Mean number of neighbours per node.
    pub degree: f64,
    /// Expected share of edges joining nodes of the same class.
    pub homophily: f64,
    /// Share of a node's words drawn from its class's block (0: features carry no class).
    pub signal: f64,
    /// Vocabulary size (feature columns).
    pub features: usize,
    /// Words drawn per node.
    pub words: usize,
    pub seed: u64,
}

impl Default for CsbmSpec {
    fn default() -> Self {
        Self { nodes: 2000, classes: 5, degree: 4.0, homophily: 0.8, signal: 0.3, features: 500, words: 20, seed: 0 }
    }
}

impl CsbmSpec {
    pub fn validate(&self) -> Result<(), GnnError> {
        let bad = |m: String| Err(GnnError::Config(m));
        if !(10..=1_000_000).contains(&self.nodes) {
            return bad(format!("CSBM nodes must be 10–1000000, got {}", self.nodes));
        }
        if !(2..=64).contains(&self.classes) || self.classes * 2 > self.nodes {
            return bad(format!("CSBM classes must be 2–64 with at least 2 nodes each, got {}", self.classes));
        }
        #[allow(clippy::cast_precision_loss)]
        let most = (self.nodes / self.classes - 1).min(100) as f64;
        if !(self.degree.is_finite() && self.degree >= 0.0 && self.degree <= most) {
            return bad(format!("CSBM mean degree must be 0–{most} here, got {}", self.degree));
        }
        if !(self.homophily.is_finite() && (0.0..=1.0).contains(&self.homophily)) {
            return bad(format!("CSBM homophily must be in [0, 1], got {}", self.homophily));
        }
        if !(self.signal.is_finite() && (0.0..=1.0).contains(&self.signal)) {
            return bad(format!("CSBM feature signal must be in [0, 1], got {}", self.signal));
        }
        if !(self.classes..=100_000).contains(&self.features) {
            return bad(format!(
                "CSBM features must be {}–100000 (one block per class), got {}",
                self.classes, self.features
            ));
        }
        if !(1..=1000).contains(&self.words) {
            return bad(format!("CSBM words per node must be 1–1000, got {}", self.words));
        }
        Ok(())
    }
}

/// Draws the graph `spec` describes (the same spec gives the same graph), with a split in
/// Planetoid's proportions.
pub fn generate(spec: &CsbmSpec) -> Result<Graph, GnnError> {
    spec.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let (n, k) = (spec.nodes, spec.classes);
    let mut labels: Vec<u32> = (0..n).filter_map(|i| u32::try_from(i % k).ok()).collect();
    labels.shuffle(&mut rng);
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); k];
    for (node, &c) in labels.iter().enumerate() {
        members[c as usize].push(u32::try_from(node).map_err(|_| GnnError::Config("too many nodes".into()))?);
    }
    // Features: each word from the class's block with probability `signal`.
    let block = spec.features / k;
    let mut features = SparseRows { rows: n, cols: spec.features, ..SparseRows::default() };
    features.indptr.push(0);
    let mut words = Vec::with_capacity(spec.words);
    for &c in &labels {
        words.clear();
        for _ in 0..spec.words {
            let word = if rng.random::<f64>() < spec.signal {
                c as usize * block + rng.random_range(0..block)
            } else {
                rng.random_range(0..spec.features)
            };
            words.push(u32::try_from(word).unwrap_or(0));
        }
        words.sort_unstable();
        words.dedup();
        features.indices.extend_from_slice(&words);
        features.values.extend(std::iter::repeat_n(1.0_f32, words.len()));
        features.indptr.push(features.indices.len());
    }
    // Edges: n·degree/2 distinct undirected pairs.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let wanted = (n as f64 * spec.degree / 2.0).round() as usize;
    let mut pairs = std::collections::HashSet::with_capacity(wanted);
    let mut tries = 0_usize;
    while pairs.len() < wanted && tries < wanted * 20 + 100 {
        tries += 1;
        let a = rng.random_range(0..n);
        let own = labels[a] as usize;
        let b = if rng.random::<f64>() < spec.homophily {
            members[own][rng.random_range(0..members[own].len())]
        } else {
            let other = (own + rng.random_range(1..k)) % k;
            members[other][rng.random_range(0..members[other].len())]
        } as usize;
        if a != b {
            pairs.insert((a.min(b), a.max(b)));
        }
    }
    let mut pairs: Vec<(u32, u32)> =
        pairs.into_iter().filter_map(|(a, b)| Some((u32::try_from(a).ok()?, u32::try_from(b).ok()?))).collect();
    pairs.sort_unstable();
    let labels: Vec<Option<u32>> = labels.into_iter().map(Some).collect();
    let split = planetoid_like_split(&labels, k, &mut rng);
    Ok(Graph {
        name: format!("csbm (h = {}, signal = {})", spec.homophily, spec.signal),
        num_nodes: n,
        features,
        labels,
        num_classes: k,
        edges: undirected_edges(pairs),
        split,
    })
}
