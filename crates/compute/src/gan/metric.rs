//! Sample-quality figures on feature vectors (the features of a classifier trained on the same
//! data set; this is not Inception FID and is not comparable with published FIDs): the Fréchet
//! distance between Gaussian fits, the kernel inception distance's unbiased MMD² with the cubic
//! polynomial kernel, and precision and recall by k-nearest-neighbour manifolds.

use faer::{Mat, Side};

/// Feature vectors, `n × dim` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    pub dim: usize,
    pub values: Vec<f64>,
}

impl Features {
    pub fn new(dim: usize, values: Vec<f64>) -> Result<Self, String> {
        if dim == 0 || !values.len().is_multiple_of(dim) {
            return Err(format!("{} values do not make rows of {dim}", values.len()));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err("a feature is not finite".into());
        }
        Ok(Self { dim, values })
    }

    pub fn len(&self) -> usize {
        self.values.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// Mean and (unbiased) covariance.
    fn gaussian(&self) -> (Vec<f64>, Mat<f64>) {
        let (n, d) = (self.len(), self.dim);
        let mut mean = vec![0.0; d];
        for i in 0..n {
            mean.iter_mut().zip(self.row(i)).for_each(|(m, v)| *m += v);
        }
        #[allow(clippy::cast_precision_loss)]
        mean.iter_mut().for_each(|m| *m /= n as f64);
        #[allow(clippy::cast_precision_loss)]
        let scale = 1.0 / (n.max(2) - 1) as f64;
        let centred = Mat::<f64>::from_fn(n, d, |i, j| self.values[i * d + j] - mean[j]);
        let cov = centred.transpose() * &centred * faer::Scale(scale);
        (mean, cov)
    }
}

/// `√S` of a symmetric positive semi-definite matrix (negative eigenvalues from rounding clipped).
fn sqrt_psd(s: &Mat<f64>) -> Result<Mat<f64>, String> {
    let eigen = s.self_adjoint_eigen(Side::Lower).map_err(|e| format!("eigendecomposition failed: {e:?}"))?;
    let (u, values) = (eigen.U(), eigen.S());
    let d = s.nrows();
    let roots = Mat::<f64>::from_fn(d, d, |i, j| if i == j { values[i].max(0.0).sqrt() } else { 0.0 });
    Ok(u * roots * u.transpose())
}

/// `‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½)`, the trace of the root taken as that of
/// `(√Σ₁ Σ₂ √Σ₁)^½` (the same eigenvalues, and symmetric).
pub fn frechet_distance(a: &Features, b: &Features) -> Result<f64, String> {
    if a.dim != b.dim || a.len() < 2 || b.len() < 2 {
        return Err(format!(
            "need two sets of at least 2 vectors of one size, got {}×{} and {}×{}",
            a.len(),
            a.dim,
            b.len(),
            b.dim
        ));
    }
    let (mu_a, cov_a) = a.gaussian();
    let (mu_b, cov_b) = b.gaussian();
    let root_a = sqrt_psd(&cov_a)?;
    let middle = &root_a * &cov_b * &root_a;
    let middle = Mat::<f64>::from_fn(a.dim, a.dim, |i, j| 0.5 * (middle[(i, j)] + middle[(j, i)]));
    let eigen = middle.self_adjoint_eigenvalues(Side::Lower).map_err(|e| format!("eigenvalues failed: {e:?}"))?;
    let trace_root: f64 = eigen.iter().map(|v| v.max(0.0).sqrt()).sum();
    let trace = |m: &Mat<f64>| (0..a.dim).map(|i| m[(i, i)]).sum::<f64>();
    let mean_term: f64 = mu_a.iter().zip(&mu_b).map(|(x, y)| (x - y) * (x - y)).sum();
    Ok((mean_term + trace(&cov_a) + trace(&cov_b) - 2.0 * trace_root).max(0.0))
}

/// The unbiased MMD² between the sets with `k(x, y) = (x·y / dim + 1)³` (KID's estimator).
pub fn kernel_distance(a: &Features, b: &Features) -> Result<f64, String> {
    if a.dim != b.dim || a.len() < 2 || b.len() < 2 {
        return Err("need two sets of at least 2 vectors of one size".into());
    }
    #[allow(clippy::cast_precision_loss)]
    let dim = a.dim as f64;
    let k = |x: &[f64], y: &[f64]| (x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>() / dim + 1.0).powi(3);
    let within = |s: &Features| {
        let n = s.len();
        let mut sum = 0.0;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    sum += k(s.row(i), s.row(j));
                }
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let pairs = (n * (n - 1)) as f64;
        sum / pairs
    };
    let mut across = 0.0;
    for i in 0..a.len() {
        for j in 0..b.len() {
            across += k(a.row(i), b.row(j));
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let across = across / (a.len() * b.len()) as f64;
    Ok(within(a) + within(b) - 2.0 * across)
}

/// Precision (the share of `generated` inside the real manifold: within some real vector's
/// distance to its `k`-th nearest real neighbour) and recall (the share of `real` inside the
/// generated manifold, the same way round).
pub fn precision_recall(real: &Features, generated: &Features, k: usize) -> Result<(f64, f64), String> {
    if real.dim != generated.dim || real.len() <= k || generated.len() <= k || k == 0 {
        return Err(format!("need more than k = {k} vectors of one size in each set"));
    }
    Ok((coverage(real, generated, k), coverage(generated, real, k)))
}

/// The share of `queries` within some vector of `manifold`'s k-NN radius.
fn coverage(manifold: &Features, queries: &Features, k: usize) -> f64 {
    let distance = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| (p - q) * (p - q)).sum::<f64>();
    let radii: Vec<f64> = (0..manifold.len())
        .map(|i| {
            let mut d: Vec<f64> =
                (0..manifold.len()).filter(|&j| j != i).map(|j| distance(manifold.row(i), manifold.row(j))).collect();
            *d.select_nth_unstable_by(k - 1, f64::total_cmp).1
        })
        .collect();
    let inside = (0..queries.len())
        .filter(|&q| (0..manifold.len()).any(|i| distance(queries.row(q), manifold.row(i)) <= radii[i]))
        .count();
    #[allow(clippy::cast_precision_loss)]
    let share = inside as f64 / queries.len() as f64;
    share
}
