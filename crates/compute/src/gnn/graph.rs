//! A node-classification data set: sparse node features, labels, undirected edges and a split.

/// A sparse matrix in compressed rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseRows {
    pub rows: usize,
    pub cols: usize,
    /// `indptr[r]..indptr[r + 1]` are row `r`'s entries.
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseRows {
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Row `r`'s (column, value) entries.
    pub fn row(&self, r: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let span = self.indptr[r]..self.indptr[r + 1];
        self.indices[span.clone()].iter().zip(&self.values[span]).map(|(&c, &v)| (c as usize, v))
    }

    /// The rows `order[k]` for k = 0, 1, …: a matrix of `order.len()` rows, where `None` gives a
    /// zero row.
    pub fn gather(&self, order: &[Option<usize>]) -> Self {
        let mut out = Self { rows: order.len(), cols: self.cols, ..Self::default() };
        out.indptr.push(0);
        for source in order {
            if let Some(r) = *source {
                let span = self.indptr[r]..self.indptr[r + 1];
                out.indices.extend_from_slice(&self.indices[span.clone()]);
                out.values.extend_from_slice(&self.values[span]);
            }
            out.indptr.push(out.indices.len());
        }
        out
    }

    /// The dense row-major matrix.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut dense = vec![0.0; self.rows * self.cols];
        for r in 0..self.rows {
            for (c, v) in self.row(r) {
                dense[r * self.cols + c] += v;
            }
        }
        dense
    }
}

/// Which nodes train, validate and test.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

/// A graph with node features and labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// What the data set is called (`cora`, a folder's name, `csbm`).
    pub name: String,
    pub num_nodes: usize,
    pub features: SparseRows,
    /// Each node's class; `None` where the data set gives none (Citeseer's isolated test ids).
    pub labels: Vec<Option<u32>>,
    pub num_classes: usize,
    /// Undirected edges, each stored in both directions, sorted, without duplicates or self loops.
    pub edges: Vec<(u32, u32)>,
    pub split: Split,
}

impl Graph {
    /// The share of edges whose two ends have the same class (edges with an unlabelled end are left
    /// out); `None` without such edges.
    pub fn edge_homophily(&self) -> Option<f64> {
        let (mut same, mut total) = (0_usize, 0_usize);
        for &(a, b) in &self.edges {
            if let (Some(x), Some(y)) = (self.labels[a as usize], self.labels[b as usize]) {
                total += 1;
                same += usize::from(x == y);
            }
        }
        #[allow(clippy::cast_precision_loss)]
        (total > 0).then(|| same as f64 / total as f64)
    }
}

/// Each node's neighbours and itself, sorted and without repeats, from edges stored in both
/// directions: the pattern GCN's Â, GIN's propagation and GAT's attention share.
pub fn neighbours_and_self(edges: &[(u32, u32)], num_nodes: usize) -> Vec<Vec<u32>> {
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); num_nodes];
    for &(a, b) in edges {
        lists[a as usize].push(b);
    }
    for (node, list) in lists.iter_mut().enumerate() {
        #[allow(clippy::cast_possible_truncation)]
        list.push(node as u32);
        list.sort_unstable();
        list.dedup();
    }
    lists
}

/// `pairs` made undirected: both directions, sorted, duplicates and self loops removed.
pub fn undirected_edges(pairs: impl IntoIterator<Item = (u32, u32)>) -> Vec<(u32, u32)> {
    let mut edges: Vec<(u32, u32)> =
        pairs.into_iter().filter(|(a, b)| a != b).flat_map(|(a, b)| [(a, b), (b, a)]).collect();
    edges.sort_unstable();
    edges.dedup();
    edges
}

/// A split in Planetoid's proportions, drawn with `rng`: 20 training nodes per class (fewer on
/// small graphs), then up to 500 validation and 1000 test nodes among the other labelled ones.
pub fn planetoid_like_split(labels: &[Option<u32>], classes: usize, rng: &mut impl rand::Rng) -> Split {
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..labels.len()).filter(|&n| labels[n].is_some()).collect();
    order.shuffle(rng);
    let per_class = (order.len() / (5 * classes.max(1))).clamp(1, 20);
    let mut taken = vec![0_usize; classes];
    let mut split = Split::default();
    let mut rest = Vec::new();
    for node in order {
        let c = labels[node].map_or(0, |c| c as usize);
        if taken.get(c).is_some_and(|&t| t < per_class) {
            taken[c] += 1;
            split.train.push(node);
        } else {
            rest.push(node);
        }
    }
    let val = (rest.len() / 3).min(500);
    let test = (rest.len() - val).min(1000);
    split.val = rest[..val].to_vec();
    split.test = rest[val..val + test].to_vec();
    for part in [&mut split.train, &mut split.val, &mut split.test] {
        part.sort_unstable();
    }
    split
}
