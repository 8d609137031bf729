//! The few smallest and largest eigenvalues of a large Gram matrix without the full
//! decomposition: Lanczos with full reorthogonalization on `K` for the largest, and on
//! `(K + δI)⁻¹` through a Cholesky factor (shift-invert) for the smallest. Matrix–vector
//! products are `O(n²)`, the factorization `n³/3` in blocked form, far below the tridiagonal
//! reduction a full decomposition needs when n is large.

use faer::linalg::solvers::Solve;
use faer::{Mat, Side};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::NtkError;
use super::kernel::eigenvalues;

/// Below this size the full decomposition is as quick: it is used instead.
const FULL_BELOW: usize = 200;
/// Ritz pairs count as converged when their residual is below this fraction of the largest
/// Ritz value.
const TOLERANCE: f64 = 1e-11;
/// A smallest eigenvalue below this fraction of the largest counts as zero (singular matrix).
const SINGULAR: f64 = 1e-8;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Most Lanczos steps before giving up on convergence (the full decomposition is used then).
fn max_steps(n: usize, count: usize) -> usize {
    (30 * count).max(300).min(n)
}

/// The `count` largest eigenvalues of the symmetric operator `apply` on ℝⁿ, descending; `None`
/// when they did not converge within [`max_steps`].
fn lanczos_top(
    n: usize,
    count: usize,
    apply: &mut dyn FnMut(&[f64], &mut [f64]),
) -> Result<Option<Vec<f64>>, NtkError> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x001A_2C05);
    let mut v: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    let norm = dot(&v, &v).sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    let mut basis: Vec<Vec<f64>> = vec![v];
    let (mut alpha, mut beta): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut w = vec![0.0; n];
    loop {
        let j = basis.len() - 1;
        apply(&basis[j], &mut w);
        let a = dot(&w, &basis[j]);
        alpha.push(a);
        // Full reorthogonalization, twice ("twice is enough").
        for _ in 0..2 {
            for q in &basis {
                let c = dot(&w, q);
                w.iter_mut().zip(q).for_each(|(x, y)| *x -= c * y);
            }
        }
        let b = dot(&w, &w).sqrt();
        let size = alpha.len();
        let exhausted = size == n || b <= f64::EPSILON * a.abs().max(beta.iter().copied().fold(0.0, f64::max));
        let last = size >= max_steps(n, count);
        if exhausted || last || size >= count && (size % 8 == 0 || size == count) {
            // Ritz values of the tridiagonal T and their residuals β·|last component|.
            let t = Mat::<f64>::from_fn(size, size, |r, c| match r.abs_diff(c) {
                0 => alpha[r],
                1 => beta[r.min(c)],
                _ => 0.0,
            });
            let evd = t.self_adjoint_eigen(Side::Lower).map_err(|_| NtkError::Eigen)?;
            let (values, vectors) = (evd.S().column_vector(), evd.U());
            let scale = values.iter().fold(0.0_f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
            let converged = (0..count.min(size)).all(|k| {
                let i = size - 1 - k;
                b * vectors[(size - 1, i)].abs() <= TOLERANCE * scale
            });
            if (exhausted || converged) && size >= count {
                return Ok(Some((0..count).map(|k| values[size - 1 - k]).collect()));
            }
            if exhausted || last {
                return Ok(None);
            }
        }
        beta.push(b);
        basis.push(w.iter().map(|x| x / b).collect());
    }
}

/// The `count` smallest (ascending) and `count` largest (descending) eigenvalues of the symmetric
/// positive semi-definite `n × n` matrix `k`.
pub fn extreme_eigenvalues(k: &[f64], n: usize, count: usize) -> Result<(Vec<f64>, Vec<f64>), NtkError> {
    if k.len() != n * n || n == 0 {
        return Err(NtkError::Config(format!("{} values do not make a {n} × {n} matrix", k.len())));
    }
    let count = count.clamp(1, n);
    let full = || -> Result<(Vec<f64>, Vec<f64>), NtkError> {
        let all = eigenvalues(k, n)?;
        Ok((all[..count].to_vec(), all.iter().rev().take(count).copied().collect()))
    };
    if n < FULL_BELOW || 4 * count >= n {
        return full();
    }
    let mut product = |x: &[f64], y: &mut [f64]| {
        y.par_iter_mut().enumerate().for_each(|(i, out)| *out = dot(&k[i * n..(i + 1) * n], x));
    };
    let Some(largest) = lanczos_top(n, count, &mut product)? else { return full() };
    if largest[0] <= 0.0 {
        // No neuron fires anywhere: the matrix is zero.
        return full();
    }
    let top = largest[0];
    // Shift-invert about −δ: (K + δI)⁻¹ has eigenvalues 1/(λ + δ), largest for the smallest λ.
    // δ keeps the factorization alive when K is singular to round-off.
    let mut shift = 1e-10 * top;
    let llt = loop {
        let shifted = Mat::<f64>::from_fn(n, n, |i, j| k[i * n + j] + if i == j { shift } else { 0.0 });
        match shifted.llt(Side::Lower) {
            Ok(llt) => break llt,
            Err(_) if shift < 1e-4 * top => shift *= 100.0,
            Err(_) => {
                return Err(NtkError::Config(
                    "the matrix is not positive semi-definite; its smallest eigenvalues need the full decomposition"
                        .into(),
                ));
            }
        }
    };
    let mut solve = |x: &[f64], y: &mut [f64]| {
        let mut column = Mat::<f64>::from_fn(n, 1, |i, _| x[i]);
        llt.solve_in_place(column.as_mut());
        y.iter_mut().enumerate().for_each(|(i, v)| *v = column[(i, 0)]);
    };
    let Some(inverted) = lanczos_top(n, count, &mut solve)? else { return full() };
    let smallest: Vec<f64> = inverted.iter().map(|mu| 1.0 / mu - shift).collect();
    // A numerically singular matrix has its zero eigenvalue many times over, and one Lanczos
    // vector finds each distinct value only once: count them with the full decomposition.
    if smallest[0] < SINGULAR * top {
        return full();
    }
    Ok((smallest, largest))
}
