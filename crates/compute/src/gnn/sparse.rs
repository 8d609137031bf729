//! Sparse × dense products for graph layers: a fixed sparse matrix `S` (node features, a
//! normalised adjacency) times a dense row-major matrix, parallel over output rows, and `Sᵀ`
//! kept beside it for the backward.

use std::sync::Arc;

use rayon::prelude::*;

use super::graph::SparseRows;

/// Output rows each parallel task computes.
const ROW_BLOCK: usize = 32;

impl SparseRows {
    /// The transpose (columns become rows, each row's entries sorted by column).
    pub fn transpose(&self) -> SparseRows {
        let mut counts = vec![0_usize; self.cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for i in 0..self.cols {
            counts[i + 1] += counts[i];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0_u32; self.nnz()];
        let mut values = vec![0.0_f32; self.nnz()];
        for r in 0..self.rows {
            for (c, v) in self.row(r) {
                let at = next[c];
                next[c] += 1;
                #[allow(clippy::cast_possible_truncation)]
                {
                    indices[at] = r as u32;
                }
                values[at] = v;
            }
        }
        SparseRows { rows: self.cols, cols: self.rows, indptr, indices, values }
    }

    /// `self · dense`, where `dense` is `self.cols × width` row-major.
    pub fn matmul_dense(&self, dense: &[f32], width: usize) -> Vec<f32> {
        let mut out = vec![0.0_f32; self.rows * width];
        if width == 0 {
            return out;
        }
        let arch = pulp::Arch::new();
        out.par_chunks_mut(ROW_BLOCK * width).enumerate().for_each(|(block, out_rows)| {
            arch.dispatch(RowBlock { matrix: self, first_row: block * ROW_BLOCK, out_rows, dense, width });
        });
        out
    }
}

/// A block of output rows of [`SparseRows::matmul_dense`], compiled for the CPU's widest vectors
/// at run time (a plain closure handed to `dispatch` would be compiled for the baseline's SSE2
/// only).
struct RowBlock<'a> {
    matrix: &'a SparseRows,
    first_row: usize,
    out_rows: &'a mut [f32],
    dense: &'a [f32],
    width: usize,
}

impl pulp::WithSimd for RowBlock<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Self { matrix, first_row, out_rows, dense, width } = self;
        for (k, out_row) in out_rows.chunks_exact_mut(width).enumerate() {
            let r = first_row + k;
            let span = matrix.indptr[r]..matrix.indptr[r + 1];
            sparse_row_times_dense(out_row, &matrix.indices[span.clone()], &matrix.values[span], dense);
        }
    }
}

/// `out ← Σ values[i] · dense[indices[i]]` (rows of `out.len()` values), a block of output
/// columns at a time so that the block's sums stay in registers.
#[inline(always)]
fn sparse_row_times_dense(out: &mut [f32], indices: &[u32], values: &[f32], dense: &[f32]) {
    const LANES: usize = 32;
    let width = out.len();
    let mut start = 0;
    while start + LANES <= width {
        let mut acc = [0.0_f32; LANES];
        for (&c, &v) in indices.iter().zip(values) {
            let from = c as usize * width + start;
            let src = &dense[from..from + LANES];
            for (a, s) in acc.iter_mut().zip(src) {
                *a += v * s;
            }
        }
        out[start..start + LANES].copy_from_slice(&acc);
        start += LANES;
    }
    if start < width {
        for (&c, &v) in indices.iter().zip(values) {
            let from = c as usize * width;
            let src = &dense[from + start..from + width];
            for (o, s) in out[start..].iter_mut().zip(src) {
                *o += v * s;
            }
        }
    }
}

/// A sparse matrix ready for products in both directions.
#[derive(Clone, Debug)]
pub struct SparseOperator {
    matrix: Arc<SparseRows>,
    transpose: Arc<SparseRows>,
}

impl SparseOperator {
    pub fn new(matrix: SparseRows) -> Self {
        let transpose = Arc::new(matrix.transpose());
        Self { matrix: Arc::new(matrix), transpose }
    }

    pub fn matrix(&self) -> &SparseRows {
        &self.matrix
    }

    pub fn transposed(&self) -> &SparseRows {
        &self.transpose
    }
}

/// `D^{-1/2} (A + I) D^{-1/2}`, GCN's normalised adjacency with self loops, from undirected
/// edges (each in both directions) of `num_nodes` nodes; D counts the self loop.
pub fn gcn_adjacency(edges: &[(u32, u32)], num_nodes: usize) -> SparseRows {
    let lists = super::graph::neighbours_and_self(edges, num_nodes);
    #[allow(clippy::cast_precision_loss)]
    let scale: Vec<f32> = lists.iter().map(|l| 1.0 / (l.len() as f32).sqrt()).collect();
    let mut out = SparseRows { rows: num_nodes, cols: num_nodes, ..SparseRows::default() };
    out.indptr.push(0);
    for (node, list) in lists.iter().enumerate() {
        for &n in list {
            out.indices.push(n);
            out.values.push(scale[node] * scale[n as usize]);
        }
        out.indptr.push(out.indices.len());
    }
    out
}
