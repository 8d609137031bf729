//! Neural tangent kernels of one-hidden-layer ReLU networks with trainable bias:
//! `f(x) = (1/√m) Σ_r a_r σ(⟨w_r, x⟩ − b_r)`, `w_r ~ N(0, I)`, `a_r = ±1` fixed, `b_r = B` at
//! initialization, inputs on the unit sphere.
//!
//! The empirical kernel (gradients with respect to `w` and `b`) is
//! `K_m(x, x') = (1/m) Σ_r (⟨x, x'⟩ + 1) · 1[⟨w_r, x⟩ > B] · 1[⟨w_r, x'⟩ > B]`; as `m → ∞` it tends
//! to `K(x, x') = (⟨x, x'⟩ + 1) · P(Z₁ > B, Z₂ > B)` with `(Z₁, Z₂)` standard bivariate normal of
//! correlation `⟨x, x'⟩`. With a pruning mask `M` on the weights, the `⟨x, x'⟩` of neuron `r`
//! becomes `⟨M_r ⊙ x, x'⟩` and its activation uses `w_r ⊙ M_r`.

pub mod analysis;
pub mod data;
pub mod files;
pub mod kernel;
pub mod lanczos;
pub mod study;
pub mod sweep;
pub mod train;

use std::path::Path;

use kernel::Points;

/// Problems with NTK settings or data.
#[derive(Debug, thiserror::Error)]
pub enum NtkError {
    #[error("invalid settings: {0}")]
    Config(String),
    #[error("the eigendecomposition did not converge")]
    Eigen,
    #[error("{path}: {reason}")]
    Data { path: std::path::PathBuf, reason: String },
}

/// Most points a CSV may hold (the Gram matrix is n²).
pub const MAX_POINTS: usize = 20_000;
/// The largest dimension of a point.
pub const MAX_DIMENSION: usize = 10_000;

/// Points from a CSV file: one point per row, comma-separated numbers, every row the same length;
/// a first row that is not numeric is taken as a header. Rows are scaled to unit length.
pub fn load_points_csv(path: &Path) -> Result<Points, NtkError> {
    let bad = |reason: String| NtkError::Data { path: path.to_owned(), reason };
    let text = crate::files::read_text_capped(path, crate::files::TABLE)
        .map_err(|e| bad(format!("cannot read as text ({e})")))?;
    let mut values = Vec::new();
    let (mut n, mut d) = (0, 0);
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Result<Vec<f64>, _> = line.split(',').map(|f| f.trim().parse::<f64>()).collect();
        let row = match fields {
            Ok(row) => row,
            Err(_) if n == 0 && number == 0 => continue,
            Err(_) => return Err(bad(format!("line {}: not a list of numbers", number + 1))),
        };
        if let Some(k) = row.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!("line {}: value {} is not a finite number", number + 1, k + 1)));
        }
        if row.len() > MAX_DIMENSION {
            return Err(bad(format!(
                "line {}: {} values; points may have at most {MAX_DIMENSION} dimensions",
                number + 1,
                row.len()
            )));
        }
        if d == 0 {
            d = row.len();
        } else if row.len() != d {
            return Err(bad(format!("line {}: {} values, but earlier rows have {d}", number + 1, row.len())));
        }
        values.extend(row);
        n += 1;
        if n > MAX_POINTS {
            return Err(bad(format!("more than {MAX_POINTS} points")));
        }
    }
    if n == 0 {
        return Err(bad("no points (one comma-separated row of numbers per point)".into()));
    }
    Points::normalized(n, d, values).map_err(|e| bad(e.to_string()))
}
