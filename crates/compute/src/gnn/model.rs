//! Graph networks whose weights are either trained (the dense baseline) or drawn once and masked
//! by trained scores: untrained GNN tickets (UGTs) and edge-popup.
//!
//! The masking follows the UGTs repository: every layer's weights and scores are drawn
//! Kaiming-uniform (fan-in, ReLU gain); the mask keeps the weights whose score reaches one
//! **global** threshold, the percentile of all layers' scores (raw, no absolute value) at the
//! current sparsity; the scores learn through a straight-through estimator (the mask's gradient
//! is taken as the identity, so a score's gradient is its masked weight's gradient times the
//! weight); the sparsity ramps linearly from 0 to its target over the first half of training,
//! and evaluation always uses the target. Edge-popup keeps the top scores of each layer
//! separately, at the target sparsity from the start.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::attention::{AttentionPass, Neighbourhoods};
use super::graph::{Graph, SparseRows};
use super::sparse::{SparseOperator, gcn_adjacency};
use crate::optim::FlatAdam;

/// The layer type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// Graph convolutions: `Â H W`.
    Gcn,
    /// Graph isomorphism layers as in the repository: `(I + D⁻¹A) H W`.
    Gin,
    /// Graph attention, multi-head.
    Gat,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Self::Gcn => "GCN",
            Self::Gin => "GIN",
            Self::Gat => "GAT",
        }
    }
}

/// How the network's weights come about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Weights drawn once and masked by scores above one global threshold, with gradual sparsity.
    Ugt,
    /// The same with a top-k per layer at the target sparsity from the start.
    EdgePopup,
    /// The weights trained (no mask).
    Dense,
}

/// How masked networks draw their fixed weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightInit {
    /// Uniform in ±√(6 / fan-in).
    KaimingUniform,
    /// ±√(2 / fan-in) with a random sign.
    SignedConstant,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GnnConfig {
    pub arch: Arch,
    /// Attention heads of each GAT layer (hidden layers are `heads × hidden` wide).
    pub heads: usize,
    pub method: Method,
    pub layers: usize,
    pub hidden: usize,
    /// Share of weights masked out at the end (masked methods).
    pub sparsity: f64,
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Dropout on each layer's input (the dense baseline; masked networks run without, as in the
    /// repository).
    pub dropout: f64,
    pub init: WeightInit,
    pub seed: u64,
}

impl Default for GnnConfig {
    /// The UGTs repository's Cora settings: AdamW at 0.01 without weight decay, 400 epochs, 256
    /// hidden units, two layers.
    fn default() -> Self {
        Self {
            arch: Arch::Gcn,
            heads: 1,
            method: Method::Ugt,
            layers: 2,
            hidden: 256,
            sparsity: 0.9,
            epochs: 400,
            lr: 0.01,
            weight_decay: 0.0,
            dropout: 0.5,
            init: WeightInit::KaimingUniform,
            seed: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GnnError {
    #[error("{0}")]
    Config(String),
    #[error("the data set cannot be trained on: {0}")]
    Data(String),
}

impl GnnConfig {
    pub fn validate(&self) -> Result<(), GnnError> {
        let bad = |m: String| Err(GnnError::Config(m));
        if !(1..=64).contains(&self.layers) {
            return bad(format!("layers must be 1–64, got {}", self.layers));
        }
        if !(1..=4096).contains(&self.hidden) {
            return bad(format!("hidden units must be 1–4096, got {}", self.hidden));
        }
        if !(1..=16).contains(&self.heads) {
            return bad(format!("attention heads must be 1–16, got {}", self.heads));
        }
        if self.arch == Arch::Gat && self.heads * self.hidden > 4096 {
            return bad(format!("heads × hidden must be at most 4096, got {}", self.heads * self.hidden));
        }
        if !(self.sparsity.is_finite() && (0.0..1.0).contains(&self.sparsity)) {
            return bad(format!("sparsity must be in [0, 1), got {}", self.sparsity));
        }
        if !(1..=100_000).contains(&self.epochs) {
            return bad(format!("epochs must be 1–100000, got {}", self.epochs));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr < 10.0) {
            return bad(format!("the learning rate must be in (0, 10), got {}", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!("weight decay must be ≥ 0, got {}", self.weight_decay));
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return bad(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }

    /// The sparsity the mask has at `epoch` (0-based) while training: a linear ramp from 0 over the
    /// first half for UGTs, the target throughout for edge-popup, none for dense training.
    pub fn sparsity_at(&self, epoch: usize) -> f64 {
        match self.method {
            Method::Dense => 0.0,
            Method::EdgePopup => self.sparsity,
            Method::Ugt => {
                #[allow(clippy::cast_precision_loss)]
                let half = (self.epochs as f64 / 2.0).max(1.0);
                #[allow(clippy::cast_precision_loss)]
                let t = epoch as f64;
                if t < half { self.sparsity * t / half } else { self.sparsity }
            }
        }
    }
}

/// Row-normalised features (each row sums to 1, as PyTorch Geometric's `NormalizeFeatures`).
pub fn normalise_rows(features: &SparseRows) -> SparseRows {
    let mut out = features.clone();
    for r in 0..out.rows {
        let span = out.indptr[r]..out.indptr[r + 1];
        let sum: f32 = out.values[span.clone()].iter().sum();
        if sum != 0.0 {
            out.values[span].iter_mut().for_each(|v| *v /= sum);
        }
    }
    out
}

/// The threshold at `sparsity` over all values of `parts`: the score below which that share of
/// them lies (the repository's `kthvalue` rule, k = 1 + round(sparsity·(n−1))).
pub fn global_threshold(parts: &[&[f32]], sparsity: f64) -> f32 {
    let n: usize = parts.iter().map(|p| p.len()).sum();
    if n == 0 {
        return f32::NEG_INFINITY;
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let k = ((sparsity * (n - 1) as f64).round() as usize).min(n - 1);
    kth_smallest(parts, k)
}

/// The `k`-th smallest (from 0, in `f32::total_cmp` order) of all values of `parts`, in two passes
/// and without copying them all (a full sort of Cora's 370k scores took most of an epoch, a
/// selection over a copy a tenth): a histogram of the top 16 bits of each value's order key finds
/// the bucket that holds it, and only that bucket's values are selected among.
fn kth_smallest(parts: &[&[f32]], k: usize) -> f32 {
    // total_cmp's key: flip every bit of negatives, the sign bit of the rest.
    let key = |v: f32| {
        let bits = v.to_bits();
        if bits >> 31 == 1 { !bits } else { bits | 0x8000_0000 }
    };
    let bucket_of = |v: f32| (key(v) >> 16) as usize;
    let mut counts = vec![0_u32; 1 << 16];
    for part in parts {
        part.iter().for_each(|&v| counts[bucket_of(v)] += 1);
    }
    let mut before = 0;
    let mut bucket = 0;
    for (b, &count) in counts.iter().enumerate() {
        let count = count as usize;
        if before + count > k {
            bucket = b;
            break;
        }
        before += count;
    }
    let mut within: Vec<f32> =
        parts.iter().flat_map(|p| p.iter().copied()).filter(|&v| bucket_of(v) == bucket).collect();
    *within.select_nth_unstable_by(k - before, f32::total_cmp).1
}

/// Each layer's threshold at `sparsity`: a score at or above it is kept. One global threshold, or
/// each layer's own (`per_layer`); at sparsity 0 everything is kept.
pub fn thresholds(scores: &[Vec<f32>], sparsity: f64, per_layer: bool) -> Vec<f32> {
    if sparsity <= 0.0 {
        return vec![f32::NEG_INFINITY; scores.len()];
    }
    if per_layer {
        scores.iter().map(|s| global_threshold(&[s], sparsity)).collect()
    } else {
        let parts: Vec<&[f32]> = scores.iter().map(Vec::as_slice).collect();
        vec![global_threshold(&parts, sparsity); scores.len()]
    }
}

/// Keep-masks (1 kept, 0 dropped) of each layer's scores at `sparsity` (see [`thresholds`]).
pub fn masks(scores: &[Vec<f32>], sparsity: f64, per_layer: bool) -> Vec<Vec<f32>> {
    let keep = |s: &[f32], threshold: f32| s.iter().map(|&v| f32::from(u8::from(v >= threshold))).collect();
    scores.iter().zip(thresholds(scores, sparsity, per_layer)).map(|(s, t)| keep(s, t)).collect()
}

/// A graph network (no biases, as in the repository), logits from the last layer; forward and
/// backward written out over flat row-major arrays (sparse products for the features and the
/// propagation, faer for the dense ones): candle's per-op overhead and thread barriers took most
/// of each epoch's time. Per layer, with `H` its input:
/// - GCN: `Â H W`, `Â = D^-½ (A + I) D^-½`;
/// - GIN: `(I + D⁻¹A) H W`, the repository's GIN (ε = 0, mean over the neighbours, a one-layer
///   MLP);
/// - GAT: attention over each neighbourhood and the node itself, heads concatenated in hidden
///   layers and averaged in the last; its attention vectors are masked like the weights.
///
/// ReLU between layers. The parameters are a list of tensors: each layer's `W` (`fan_in × out`,
/// row-major), and for GAT its `a_src` and `a_dst` (`heads × width`) after it.
pub struct Gnn {
    pub config: GnnConfig,
    features: SparseOperator,
    /// GCN's Â or GIN's `I + D⁻¹A` (and its transpose, for the backward).
    propagation: Option<SparseOperator>,
    /// GAT's neighbourhoods.
    attention: Option<Neighbourhoods>,
    layers: Vec<LayerShape>,
    /// The backward's operators cut to the nodes its gradients can reach (GCN, GIN).
    backward: Option<Backward>,
    /// The weights: trained for dense, fixed otherwise.
    params: Vec<Vec<f32>>,
    /// A score per weight (masked methods).
    scores: Vec<Vec<f32>>,
    optimizers: Vec<FlatAdam>,
    rng: ChaCha8Rng,
}

/// The loss reads the logits of the labelled training nodes only, so the gradient with respect to
/// a layer's output is zero outside the nodes within reach of them: the last layer's at those
/// nodes, each layer below at the neighbours (in the propagation) of the layer above's. The
/// backward's sparse products skip the rest: each layer's `Pᵀ` keeps only the columns of nodes
/// its incoming gradient can be non-zero at, and the features' `Xᵀ` only the nodes the first
/// layer's can (two thirds of Cora's for two layers). The results are exactly the full products'.
struct Backward {
    /// The labelled training nodes, node count and edge count the cut was made for (a loss on
    /// another graph or split takes the full products).
    train: Vec<usize>,
    nodes: usize,
    edges: usize,
    /// Per layer, the cut `Pᵀ` (`None`: nothing to cut).
    propagation_t: Vec<Option<SparseRows>>,
    /// The cut `Xᵀ` (`None`: nothing to cut).
    features_t: Option<SparseRows>,
}

impl Backward {
    fn new(propagation: &SparseOperator, features: &SparseRows, graph: &Graph, layers: usize) -> Self {
        let n = propagation.matrix().rows;
        let train = labelled_train(graph);
        let mut reach = vec![false; n];
        train.iter().for_each(|&t| reach[t] = true);
        let mut propagation_t = vec![None; layers];
        for slot in propagation_t.iter_mut().rev() {
            let full = propagation.transposed();
            let cut = keep_columns(full, &reach);
            // The next layer down's gradient is non-zero only at the rows this product fills.
            let next: Vec<bool> = (0..n).map(|r| cut.indptr[r + 1] > cut.indptr[r]).collect();
            if cut.nnz() < full.nnz() {
                *slot = Some(cut);
            }
            reach = next;
        }
        let features_t = if reach.iter().all(|&r| r) {
            None
        } else {
            let kept = (0..features.rows).map(|r| reach[r].then_some(r)).collect::<Vec<_>>();
            Some(features.gather(&kept).transpose())
        };
        Self { train, nodes: graph.num_nodes, edges: graph.edges.len(), propagation_t, features_t }
    }

    /// Whether the cut holds for a loss on `graph`.
    fn fits(&self, graph: &Graph) -> bool {
        graph.num_nodes == self.nodes && graph.edges.len() == self.edges && labelled_train(graph) == self.train
    }
}

/// `m` with only the entries in the columns `keep` marks.
fn keep_columns(m: &SparseRows, keep: &[bool]) -> SparseRows {
    let mut out = SparseRows { rows: m.rows, cols: m.cols, ..SparseRows::default() };
    out.indptr.push(0);
    for r in 0..m.rows {
        for (c, v) in m.row(r).filter(|&(c, _)| keep[c]) {
            #[allow(clippy::cast_possible_truncation)]
            out.indices.push(c as u32);
            out.values.push(v);
        }
        out.indptr.push(out.indices.len());
    }
    out
}

/// The labelled training nodes of `graph`: where the loss reads the logits.
fn labelled_train(graph: &Graph) -> Vec<usize> {
    graph.split.train.iter().copied().filter(|&n| graph.labels.get(n).is_some_and(Option::is_some)).collect()
}

/// One layer's widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LayerShape {
    fan_in: usize,
    heads: usize,
    /// Output width of each head.
    width: usize,
    /// The last layer: heads averaged, no ReLU.
    last: bool,
}

impl LayerShape {
    /// Width of `H·W`.
    fn projected(&self) -> usize {
        self.heads * self.width
    }

    /// Width of the layer's output.
    fn output(&self) -> usize {
        if self.last { self.width } else { self.projected() }
    }
}

fn kaiming_bound(fan_in: usize) -> f32 {
    #[allow(clippy::cast_precision_loss)]
    let bound = (6.0 / fan_in as f32).sqrt();
    bound
}

/// A row-major `rows × cols` view.
fn rows(values: &[f32], rows: usize, cols: usize) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice(values, rows, cols)
}

/// `a · b` (`n × k` times `k × m`) as a new row-major `n × m` array, on all cores.
fn product(a: MatRef<'_, f32>, b: MatRef<'_, f32>) -> Vec<f32> {
    let (n, m) = (a.nrows(), b.ncols());
    let mut out = vec![0.0; n * m];
    matmul(MatMut::from_row_major_slice_mut(&mut out, n, m), Accum::Replace, a, b, 1.0, Par::rayon(0));
    out
}

/// `I + D⁻¹A`: each node plus the mean of its neighbours (a node without neighbours keeps itself).
pub fn gin_propagation(edges: &[(u32, u32)], num_nodes: usize) -> SparseRows {
    let mut out = SparseRows { rows: num_nodes, cols: num_nodes, ..SparseRows::default() };
    out.indptr.push(0);
    for (node, list) in super::graph::neighbours_and_self(edges, num_nodes).iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let share = 1.0 / (list.len() - 1).max(1) as f32;
        for &n in list.iter() {
            out.indices.push(n);
            out.values.push(if n as usize == node { 1.0 } else { share });
        }
        out.indptr.push(out.indices.len());
    }
    out
}

/// What one layer's forward keeps for the backward.
#[derive(Default)]
struct LayerPass {
    /// The layer's input after ReLU and dropout (`None` for the first layer: the features).
    input: Option<Vec<f32>>,
    /// Dropout scale per element of the input (empty: none).
    keep: Vec<f32>,
    /// `H·W` (GAT).
    projected: Vec<f32>,
    attention: Option<AttentionPass>,
}

/// What the forward pass keeps for the backward.
struct Pass {
    layers: Vec<LayerPass>,
    logits: Vec<f32>,
}

impl Gnn {
    pub fn new(graph: &Graph, config: &GnnConfig) -> Result<Self, GnnError> {
        config.validate()?;
        if graph.num_classes < 2 {
            return Err(GnnError::Data(format!("{} classes; node classification needs at least 2", graph.num_classes)));
        }
        if graph.num_nodes == 0 || graph.features.cols == 0 {
            return Err(GnnError::Data("no nodes or no features".into()));
        }
        let heads = if config.arch == Arch::Gat { config.heads } else { 1 };
        let layers: Vec<LayerShape> = (0..config.layers)
            .map(|l| {
                let last = l + 1 == config.layers;
                LayerShape {
                    fan_in: if l == 0 { graph.features.cols } else { heads * config.hidden },
                    heads,
                    width: if last { graph.num_classes } else { config.hidden },
                    last,
                }
            })
            .collect();
        // Tensor shapes (fan-in, count): W, then GAT's two attention vectors.
        let shapes: Vec<(usize, usize)> = layers
            .iter()
            .flat_map(|s| {
                let mut v = vec![(s.fan_in, s.fan_in * s.projected())];
                if config.arch == Arch::Gat {
                    v.extend([(s.width, s.projected()); 2]);
                }
                v
            })
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let draw = |rng: &mut ChaCha8Rng, fan_in: usize, n: usize, init: WeightInit| -> Vec<f32> {
            let bound = kaiming_bound(fan_in);
            match init {
                WeightInit::KaimingUniform => (0..n).map(|_| rng.random_range(-bound..bound)).collect(),
                WeightInit::SignedConstant => {
                    #[allow(clippy::cast_precision_loss)]
                    let c = (2.0 / fan_in as f32).sqrt();
                    (0..n).map(|_| if rng.random::<bool>() { c } else { -c }).collect()
                }
            }
        };
        let params: Vec<Vec<f32>> = shapes.iter().map(|&(fan_in, n)| draw(&mut rng, fan_in, n, config.init)).collect();
        // Scores after all weights, so that every method draws the same weights for a seed.
        let scores: Vec<Vec<f32>> = if config.method == Method::Dense {
            Vec::new()
        } else {
            shapes.iter().map(|&(fan_in, n)| draw(&mut rng, fan_in, n, WeightInit::KaimingUniform)).collect()
        };
        let optimizers = params.iter().map(|w| FlatAdam::new(w.len(), 0.9, 0.999, 1e-8)).collect();
        let (propagation, attention) = match config.arch {
            Arch::Gcn => (Some(SparseOperator::new(gcn_adjacency(&graph.edges, graph.num_nodes))), None),
            Arch::Gin => (Some(SparseOperator::new(gin_propagation(&graph.edges, graph.num_nodes))), None),
            Arch::Gat => (None, Some(Neighbourhoods::new(&graph.edges, graph.num_nodes))),
        };
        let features = SparseOperator::new(normalise_rows(&graph.features));
        let backward = propagation.as_ref().map(|p| Backward::new(p, features.matrix(), graph, config.layers));
        Ok(Self {
            config: *config,
            features,
            propagation,
            attention,
            layers,
            backward,
            params,
            scores,
            optimizers,
            rng,
        })
    }

    /// The fixed (masked methods) or trained (dense) parameter tensors.
    pub fn weights(&self) -> &[Vec<f32>] {
        &self.params
    }

    /// The scores of the masked methods (empty for dense training), shaped as [`Gnn::weights`].
    pub fn scores(&self) -> &[Vec<f32>] {
        &self.scores
    }

    /// Classes the network tells apart.
    pub fn num_classes(&self) -> usize {
        self.layers.last().map_or(0, |s| s.width)
    }

    /// Each layer's weight matrix shape (fan-in, outputs).
    pub fn weight_shapes(&self) -> Vec<(usize, usize)> {
        self.layers.iter().map(|s| (s.fan_in, s.projected())).collect()
    }

    /// How many parameter tensors each layer has (1, or 3 for GAT).
    pub fn tensors_per_layer(&self) -> usize {
        if self.config.arch == Arch::Gat { 3 } else { 1 }
    }

    /// The masks at `sparsity` (all ones for dense training).
    pub fn current_masks(&self, sparsity: f64) -> Vec<Vec<f32>> {
        if self.config.method == Method::Dense {
            return self.params.iter().map(|w| vec![1.0; w.len()]).collect();
        }
        masks(&self.scores, sparsity, self.config.method == Method::EdgePopup)
    }

    /// Each tensor's effective values at `sparsity`: `W ⊙ mask`.
    pub fn effective_weights(&self, sparsity: f64) -> Vec<Vec<f32>> {
        if self.config.method == Method::Dense {
            return self.params.clone();
        }
        let thresholds = thresholds(&self.scores, sparsity, self.config.method == Method::EdgePopup);
        self.params
            .iter()
            .zip(&self.scores)
            .zip(thresholds)
            .map(|((w, s), t)| w.iter().zip(s).map(|(&w, &s)| if s >= t { w } else { 0.0 }).collect())
            .collect()
    }

    fn forward(&mut self, effective: &[Vec<f32>], dropout: f64) -> Pass {
        let n = self.features.matrix().rows;
        let per = self.tensors_per_layer();
        let mut pass = Pass { layers: Vec::new(), logits: Vec::new() };
        let (mut h, mut keep): (Option<Vec<f32>>, Vec<f32>) = (None, Vec::new());
        for (l, shape) in self.layers.iter().enumerate() {
            let w = &effective[l * per];
            let projected = match &h {
                None => self.features.matrix().matmul_dense(w, shape.projected()),
                Some(h) => product(rows(h, n, shape.fan_in), rows(w, shape.fan_in, shape.projected())),
            };
            let mut record = LayerPass { input: h.take(), keep: std::mem::take(&mut keep), ..LayerPass::default() };
            let mut z = match (&self.propagation, &self.attention) {
                (Some(p), _) => p.matrix().matmul_dense(&projected, shape.projected()),
                (None, Some(att)) => {
                    let (a_src, a_dst) = (&effective[l * per + 1], &effective[l * per + 2]);
                    let (out, attention) = att.forward(&projected, a_src, a_dst, shape.heads, shape.width, shape.last);
                    record.projected = projected;
                    record.attention = Some(attention);
                    out
                }
                (None, None) => unreachable!("every network has a propagation or attention"),
            };
            pass.layers.push(record);
            if shape.last {
                pass.logits = z;
                break;
            }
            z.iter_mut().for_each(|v| *v = v.max(0.0));
            if dropout > 0.0 {
                #[allow(clippy::cast_possible_truncation)]
                let scale = (1.0 / (1.0 - dropout)) as f32;
                // Dropped where a uniform 32-bit draw falls below dropout · 2³², drawn a block at
                // a time (a float per element took a quarter of a dense epoch).
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let cut = (dropout * 4_294_967_296.0) as u64;
                let mut bits = vec![0_u32; z.len()];
                self.rng.fill(&mut bits[..]);
                keep = bits.iter().map(|&b| if u64::from(b) < cut { 0.0 } else { scale }).collect();
                z.iter_mut().zip(&keep).for_each(|(v, k)| *v *= k);
            }
            h = Some(z);
        }
        pass
    }

    /// Logits of every node (`nodes × classes`, row-major) with `effective` weights, no dropout.
    pub fn logits(&mut self, effective: &[Vec<f32>]) -> Vec<f32> {
        self.forward(effective, 0.0).logits
    }

    /// Every layer's output (after ReLU; the logits last), no dropout: the node representations
    /// the depth study measures.
    pub fn representations(&mut self, effective: &[Vec<f32>]) -> Vec<(usize, Vec<f32>)> {
        let pass = self.forward(effective, 0.0);
        let widths: Vec<usize> = self.layers.iter().map(LayerShape::output).collect();
        let mut out: Vec<(usize, Vec<f32>)> =
            pass.layers.into_iter().skip(1).zip(&widths).filter_map(|(r, &w)| r.input.map(|h| (w, h))).collect();
        out.push((*widths.last().expect("at least one layer"), pass.logits));
        out
    }

    /// The mean cross-entropy on `graph`'s labelled training nodes and its gradient with respect
    /// to each effective tensor; `dropout` on the hidden layers' inputs.
    pub fn loss_and_gradients(&mut self, graph: &Graph, effective: &[Vec<f32>], dropout: f64) -> (f64, Vec<Vec<f32>>) {
        let (loss, grads, _) = self.loss_gradients_logits(graph, effective, dropout);
        (loss, grads)
    }

    /// [`Gnn::loss_and_gradients`], and the logits of the forward pass.
    fn loss_gradients_logits(
        &mut self,
        graph: &Graph,
        effective: &[Vec<f32>],
        dropout: f64,
    ) -> (f64, Vec<Vec<f32>>, Vec<f32>) {
        let n = self.features.matrix().rows;
        let per = self.tensors_per_layer();
        let pass = self.forward(effective, dropout);
        let classes = self.layers.last().expect("at least one layer").width;
        let (loss, mut g) = cross_entropy_gradient(&pass.logits, classes, graph, &graph.split.train);
        let cut = self.backward.as_ref().filter(|b| b.fits(graph));
        let mut grads = vec![Vec::new(); effective.len()];
        for (l, (shape, record)) in self.layers.iter().zip(&pass.layers).enumerate().rev() {
            let width = shape.projected();
            // The gradient with respect to H·W.
            let dy = match (&self.propagation, &self.attention, &record.attention) {
                (Some(p), _, _) => cut
                    .and_then(|c| c.propagation_t[l].as_ref())
                    .unwrap_or_else(|| p.transposed())
                    .matmul_dense(&g, width),
                (None, Some(att), Some(attention)) => {
                    let (a_src, a_dst) = (&effective[l * per + 1], &effective[l * per + 2]);
                    let (dx, d_src, d_dst) = att.backward(
                        &g,
                        &record.projected,
                        attention,
                        a_src,
                        a_dst,
                        shape.heads,
                        shape.width,
                        shape.last,
                    );
                    grads[l * per + 1] = d_src;
                    grads[l * per + 2] = d_dst;
                    dx
                }
                _ => unreachable!("every network has a propagation or attention"),
            };
            let Some(input) = &record.input else {
                let features_t = cut.and_then(|c| c.features_t.as_ref()).unwrap_or_else(|| self.features.transposed());
                grads[l * per] = features_t.matmul_dense(&dy, width);
                break;
            };
            grads[l * per] = product(rows(input, n, shape.fan_in).transpose(), rows(&dy, n, width));
            // dH = dY · Wᵀ, then through the dropout and the ReLU below.
            let mut dh = product(rows(&dy, n, width), rows(&effective[l * per], shape.fan_in, width).transpose());
            // Selects rather than branches, so that the loops vectorise.
            if record.keep.is_empty() {
                dh.iter_mut().zip(input).for_each(|(d, &h)| *d = if h > 0.0 { *d } else { 0.0 });
            } else {
                dh.iter_mut().zip(input).zip(&record.keep).for_each(|((d, &h), &k)| {
                    let kept = *d * k;
                    *d = if h > 0.0 { kept } else { 0.0 };
                });
            }
            g = dh;
        }
        (loss, grads, pass.logits)
    }

    /// The loss at `sparsity` and the gradient of what trains: the weights (dense) or the scores,
    /// straight through the mask (a score's gradient is its masked weight's times the weight).
    /// Training forms the scores' product inside Adam instead ([`FlatAdam::step_product`]).
    pub fn trainable_gradients(&mut self, graph: &Graph, sparsity: f64) -> (f64, Vec<Vec<f32>>) {
        let (loss, grads, _) = self.training_pass(graph, sparsity);
        if self.config.method == Method::Dense {
            return (loss, grads);
        }
        let grads =
            grads.iter().zip(&self.params).map(|(g, w)| g.iter().zip(w).map(|(g, w)| g * w).collect()).collect();
        (loss, grads)
    }

    /// The dropout a training step applies.
    fn train_dropout(&self) -> f64 {
        if self.config.method == Method::Dense { self.config.dropout } else { 0.0 }
    }

    /// A training pass at `sparsity`: the loss, the effective tensors' gradients and the logits.
    fn training_pass(&mut self, graph: &Graph, sparsity: f64) -> (f64, Vec<Vec<f32>>, Vec<f32>) {
        let effective = self.effective_weights(sparsity);
        let dropout = self.train_dropout();
        self.loss_gradients_logits(graph, &effective, dropout)
    }

    /// One full-batch training step at `sparsity` (AdamW on the weights or the scores).
    pub fn train_step(&mut self, graph: &Graph, sparsity: f64) -> f64 {
        self.train_step_logits(graph, sparsity).0
    }

    /// [`Gnn::train_step`], and the logits of the network as it was before the step (the
    /// training pass's).
    fn train_step_logits(&mut self, graph: &Graph, sparsity: f64) -> (f64, Vec<f32>) {
        let (loss, grads, logits) = self.training_pass(graph, sparsity);
        #[allow(clippy::cast_possible_truncation)]
        let (lr, decay) = (self.config.lr as f32, (self.config.lr * self.config.weight_decay) as f32);
        let dense = self.config.method == Method::Dense;
        for (l, grad) in grads.into_iter().enumerate() {
            if dense {
                let params = &mut self.params[l];
                if decay > 0.0 {
                    params.iter_mut().for_each(|p| *p -= decay * *p);
                }
                self.optimizers[l].step(params, &grad, lr);
            } else {
                let scores = &mut self.scores[l];
                if decay > 0.0 {
                    scores.iter_mut().for_each(|p| *p -= decay * *p);
                }
                // Straight through the mask: a score's gradient is its weight's times the weight.
                self.optimizers[l].step_product(scores, &grad, &self.params[l], lr);
            }
        }
        (loss, logits)
    }
}

/// Mean cross-entropy of row-major `logits` (`n × classes`) on the labelled `nodes`, and its
/// gradient with respect to the logits (zero on other rows).
pub fn cross_entropy_gradient(logits: &[f32], classes: usize, graph: &Graph, nodes: &[usize]) -> (f64, Vec<f32>) {
    let mut grad = vec![0.0_f32; logits.len()];
    let labelled: Vec<(usize, u32)> = nodes.iter().filter_map(|&n| graph.labels[n].map(|l| (n, l))).collect();
    if labelled.is_empty() {
        return (0.0, grad);
    }
    #[allow(clippy::cast_precision_loss)]
    let inv = 1.0 / labelled.len() as f64;
    let mut loss = 0.0;
    for (node, label) in labelled {
        let row = &logits[node * classes..(node + 1) * classes];
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
        let label = label as usize;
        loss -= (f64::from(row[label] - max) - sum.ln()) * inv;
        for (c, g) in grad[node * classes..(node + 1) * classes].iter_mut().enumerate() {
            let p = f64::from(row[c] - max).exp() / sum;
            #[allow(clippy::cast_possible_truncation)]
            {
                *g = ((p - f64::from(u8::from(c == label))) * inv) as f32;
            }
        }
    }
    (loss, grad)
}

/// Share of labelled `nodes` whose largest logit is their class.
pub fn accuracy(logits: &[f32], classes: usize, graph: &Graph, nodes: &[usize]) -> f64 {
    let (mut right, mut total) = (0_usize, 0_usize);
    for &n in nodes {
        if let Some(l) = graph.labels[n] {
            total += 1;
            let row = &logits[n * classes..(n + 1) * classes];
            let predicted = (0..classes).fold(0, |best, c| if row[c] > row[best] { c } else { best });
            right += usize::from(predicted == l as usize);
        }
    }
    #[allow(clippy::cast_precision_loss)]
    if total == 0 { 0.0 } else { right as f64 / total as f64 }
}

/// One epoch's figures: the network at the start of the epoch scored at the target sparsity (as
/// the repository evaluates), and the epoch's training loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: u64,
    pub loss: f64,
    /// The mask's sparsity during this epoch's training step.
    pub sparsity: f64,
    pub train_acc: f64,
    pub val_acc: f64,
    pub test_acc: f64,
    pub elapsed_secs: f64,
}

/// The figures of a run: the test accuracy of the state with the best validation accuracy (the
/// first such), as the repository reports; `best_epoch` counts the updates that state had.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GnnSummary {
    pub best_epoch: u64,
    pub val_acc: f64,
    pub test_acc: f64,
    /// Share of weights masked out at the end (0 for dense training).
    pub sparsity_reached: f64,
    pub seconds: f64,
}

/// Trains a [`Gnn`] one epoch per step (full batch) and keeps the best validation epoch.
pub struct GnnTrainer {
    pub model: Gnn,
    graph: std::sync::Arc<Graph>,
    best: GnnSummary,
}

impl GnnTrainer {
    pub fn new(graph: std::sync::Arc<Graph>, config: &GnnConfig) -> Result<Self, GnnError> {
        let model = Gnn::new(&graph, config)?;
        Ok(Self { model, graph, best: GnnSummary { val_acc: -1.0, ..GnnSummary::default() } })
    }

    /// The target sparsity (0 for dense training).
    pub fn target(&self) -> f64 {
        if self.model.config.method == Method::Dense { 0.0 } else { self.model.config.sparsity }
    }

    /// Logits of every node at the target sparsity (no dropout), `nodes × classes`.
    pub fn evaluate(&mut self) -> Vec<f32> {
        let effective = self.model.effective_weights(self.target());
        self.model.logits(&effective)
    }

    /// Accuracies of `logits`, the network after `updates` updates; the best validation state
    /// is kept (the first of equals).
    fn score(&mut self, logits: &[f32], updates: u64) -> EpochRecord {
        let graph = std::sync::Arc::clone(&self.graph);
        let (classes, split) = (graph.num_classes, &graph.split);
        let record = EpochRecord {
            epoch: updates,
            loss: f64::NAN,
            sparsity: self.target(),
            train_acc: accuracy(logits, classes, &graph, &split.train),
            val_acc: accuracy(logits, classes, &graph, &split.val),
            test_acc: accuracy(logits, classes, &graph, &split.test),
            elapsed_secs: 0.0,
        };
        if record.val_acc > self.best.val_acc {
            self.best.best_epoch = updates;
            self.best.val_acc = record.val_acc;
            self.best.test_acc = record.test_acc;
        }
        record
    }

    /// Scores the network after the last update (the epochs score it at their start).
    pub fn finish(&mut self, updates: u64) {
        let logits = self.evaluate();
        self.score(&logits, updates);
    }

    /// The share of all weights the target mask drops.
    pub fn sparsity_reached(&self) -> f64 {
        let masks = self.model.current_masks(self.target());
        let total: usize = masks.iter().map(Vec::len).sum();
        let dropped: usize = masks.iter().flatten().filter(|&&m| m == 0.0).count();
        #[allow(clippy::cast_precision_loss)]
        let share = dropped as f64 / total.max(1) as f64;
        share
    }
}

impl crate::train_loop::Steps for GnnTrainer {
    type Record = EpochRecord;
    type Snapshot = GnnSummary;
    type Error = GnnError;

    /// Epoch `step`'s accuracies are the network's at the start of the epoch. Where the training
    /// pass is the evaluation (the target mask, no dropout: the second half of a UGT run,
    /// edge-popup throughout) its logits serve both, which saves a third of the epoch.
    fn step(&mut self, step: u64) -> Result<EpochRecord, GnnError> {
        let epoch = usize::try_from(step - 1).unwrap_or(usize::MAX);
        let sparsity = self.model.config.sparsity_at(epoch);
        let graph = std::sync::Arc::clone(&self.graph);
        let shared = sparsity == self.target() && self.model.train_dropout() == 0.0;
        let before = if shared { None } else { Some(self.evaluate()) };
        let (loss, pass_logits) = self.model.train_step_logits(&graph, sparsity);
        if !loss.is_finite() {
            return Err(GnnError::Data(format!("the loss diverged at epoch {step} ({loss})")));
        }
        let logits = before.unwrap_or(pass_logits);
        let mut record = self.score(&logits, step - 1);
        record.epoch = step;
        record.loss = loss;
        record.sparsity = sparsity;
        Ok(record)
    }

    fn stamp(&self, record: &mut EpochRecord, elapsed_secs: f64) {
        record.elapsed_secs = elapsed_secs;
    }

    fn metrics(&self, record: &EpochRecord) -> crate::control::Metrics {
        vec![("loss", record.loss), ("val_acc", record.val_acc), ("test_acc", record.test_acc)]
    }

    fn snapshot(&mut self, _step: u64) -> Result<GnnSummary, GnnError> {
        let mut summary = self.best;
        summary.sparsity_reached = self.sparsity_reached();
        Ok(summary)
    }
}

/// Trains a network on `graph` for `config.epochs` epochs and returns its figures and history.
pub fn train(
    graph: std::sync::Arc<Graph>,
    config: &GnnConfig,
    control: &crate::control::RunControl,
    on_event: &mut dyn FnMut(crate::control::RunEvent<GnnSummary>),
) -> Result<(GnnSummary, Vec<EpochRecord>), GnnError> {
    let (_, summary, history) = train_keeping(graph, config, control, on_event)?;
    Ok((summary, history))
}

/// [`train`], keeping the trainer (the network as it ends) for further measurements.
pub fn train_keeping(
    graph: std::sync::Arc<Graph>,
    config: &GnnConfig,
    control: &crate::control::RunControl,
    on_event: &mut dyn FnMut(crate::control::RunEvent<GnnSummary>),
) -> Result<(GnnTrainer, GnnSummary, Vec<EpochRecord>), GnnError> {
    let mut trainer = GnnTrainer::new(graph, config)?;
    let schedule = crate::train_loop::Schedule { steps: config.epochs as u64, snapshot_interval_secs: 0.0 };
    let trained = crate::train_loop::train(&mut trainer, schedule, control, on_event)?;
    trainer.finish(trained.steps_done);
    let mut summary = crate::train_loop::Steps::snapshot(&mut trainer, trained.steps_done)?;
    summary.seconds = trained.seconds;
    Ok((trainer, summary, trained.history))
}
