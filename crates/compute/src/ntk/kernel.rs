//! The limiting and empirical kernels, the orthant probability behind the limit (through Owen's
//! T function), and Gram-matrix eigenvalues.

use std::sync::OnceLock;

use faer::{Mat, Par, Side};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::NtkError;
use crate::linalg::{a_bt, mirror_lower};

/// `Φ(x)`, the standard normal distribution function, to full double precision.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Nodes and weights of 40-point Gauss–Legendre quadrature on [−1, 1].
fn gauss_legendre() -> &'static [(f64, f64)] {
    static RULE: OnceLock<Vec<(f64, f64)>> = OnceLock::new();
    RULE.get_or_init(|| {
        const N: usize = 40;
        let mut rule = Vec::with_capacity(N);
        for i in 0..N {
            // Newton's method on P_N from the Chebyshev-like first guess.
            #[allow(clippy::cast_precision_loss)]
            let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (N as f64 + 0.5)).cos();
            let mut derivative = 0.0;
            for _ in 0..100 {
                let (mut p0, mut p1) = (1.0, x);
                for k in 2..=N {
                    #[allow(clippy::cast_precision_loss)]
                    let k = k as f64;
                    let p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
                    (p0, p1) = (p1, p2);
                }
                #[allow(clippy::cast_precision_loss)]
                let n = N as f64;
                derivative = n * (x * p1 - p0) / (x * x - 1.0);
                let step = p1 / derivative;
                x -= step;
                if step.abs() < 1e-16 {
                    break;
                }
            }
            rule.push((x, 2.0 / ((1.0 - x * x) * derivative * derivative)));
        }
        rule
    })
}

/// Owen's T function `T(h, a) = (1/2π) ∫₀^a exp(−h²(1+x²)/2) / (1+x²) dx`.
pub fn owens_t(h: f64, a: f64) -> f64 {
    // T is even in h.
    let h = h.abs();
    if a < 0.0 {
        return -owens_t(h, -a);
    }
    if a == 0.0 {
        return 0.0;
    }
    if h == 0.0 {
        return a.atan() / (2.0 * std::f64::consts::PI);
    }
    if a > 1.0 {
        // T(h, a) = ½Φ(h) + ½Φ(ah) − Φ(h)Φ(ah) − T(ah, 1/a) for h ≥ 0.
        let (ph, pah) = (normal_cdf(h), normal_cdf(a * h));
        return 0.5 * ph + 0.5 * pah - ph * pah - owens_t(a * h, 1.0 / a);
    }
    let half = 0.5 * a;
    let sum: f64 = gauss_legendre()
        .iter()
        .map(|&(node, weight)| {
            let x = half * (node + 1.0);
            let s = 1.0 + x * x;
            weight * (-0.5 * h * h * s).exp() / s
        })
        .sum();
    half * sum / (2.0 * std::f64::consts::PI)
}

/// `P(Z₁ > b, Z₂ > b)` for standard normals of correlation `rho` (clamped to [−1, 1]).
pub fn orthant(rho: f64, b: f64) -> f64 {
    let rho = rho.clamp(-1.0, 1.0);
    let tail = normal_cdf(-b);
    if rho >= 1.0 {
        return tail;
    }
    if rho <= -1.0 {
        return (tail - normal_cdf(b)).max(0.0);
    }
    // Φ₂(−b, −b; ρ) = Φ(−b) − 2 T(b, √((1 − ρ)/(1 + ρ))).
    let a = ((1.0 - rho) / (1.0 + rho)).sqrt();
    (tail - 2.0 * owens_t(b, a)).max(0.0)
}

/// Points on the unit sphere, `n × d` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Points {
    pub n: usize,
    pub d: usize,
    pub values: Vec<f64>,
}

impl Points {
    /// Rows scaled to unit length; zero or non-finite rows are an error naming the row.
    pub fn normalized(n: usize, d: usize, mut values: Vec<f64>) -> Result<Self, NtkError> {
        if n == 0 || d == 0 || values.len() != n * d {
            return Err(NtkError::Config(format!("{} values do not make {n} points of dimension {d}", values.len())));
        }
        for (i, row) in values.chunks_exact_mut(d).enumerate() {
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
            if !norm.is_finite() || norm == 0.0 {
                return Err(NtkError::Config(format!(
                    "point {} has length {norm}; it cannot be put on the sphere",
                    i + 1
                )));
            }
            row.iter_mut().for_each(|v| *v /= norm);
        }
        Ok(Self { n, d, values })
    }

    /// `n` points drawn uniformly on the sphere in `d` dimensions.
    pub fn random_sphere(n: usize, d: usize, seed: u64) -> Result<Self, NtkError> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let values = (0..n * d).map(|_| rng.sample::<f64, _>(StandardNormal)).collect();
        Self::normalized(n, d, values)
    }

    /// `⟨xᵢ, xⱼ⟩` for all pairs, `n × n`.
    pub fn inner_products(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.n * self.n];
        a_bt(&mut out, &self.values, &self.values, (self.n, self.n, self.d), Par::rayon(0));
        out
    }
}

/// The `m → ∞` kernel `(⟨x, x'⟩ + 1) · P(Z₁ > B, Z₂ > B)`, `n × n`.
pub fn limit_kernel(points: &Points, bias: f64) -> Vec<f64> {
    let n = points.n;
    let mut kernel = points.inner_products();
    // The lower triangle, then its mirror (the kernel is symmetric). Rows in parallel, each
    // worker with clean vector registers (see `clear_upper_vector_state`).
    kernel.par_chunks_mut(n).enumerate().for_each_init(crate::linalg::clear_upper_vector_state, |(), (i, row)| {
        for rho in row.iter_mut().take(i + 1) {
            *rho = (*rho + 1.0) * orthant(*rho, bias);
        }
    });
    mirror_lower(&mut kernel, n);
    kernel
}

/// ChaCha stream of the network's weights and signs (points use stream 0).
const NETWORK_STREAM: u64 = 1;
/// ChaCha stream of the pruning mask.
const MASK_STREAM: u64 = 2;

/// The hidden layer at initialization: weights `m × d` (zero where pruned), signs, bias `B`.
#[derive(Clone, Debug, PartialEq)]
pub struct HiddenLayer {
    pub width: usize,
    pub dim: usize,
    pub weights: Vec<f64>,
    /// `M`, `m × d`, when the weights are pruned.
    pub mask: Option<Vec<bool>>,
    pub signs: Vec<f64>,
    pub bias: Vec<f64>,
}

impl HiddenLayer {
    /// `w ~ N(0, I)`, `a = ±1` at random, `b = B`; with `prune > 0` each weight is kept with
    /// probability `1 − prune`.
    pub fn new(width: usize, dim: usize, bias: f64, prune: f64, seed: u64) -> Result<Self, NtkError> {
        if width == 0 || dim == 0 || !(0.0..1.0).contains(&prune) || !bias.is_finite() {
            return Err(NtkError::Config(format!(
                "width and dimension must be positive, the pruning fraction in [0, 1) and the bias finite \
                 (got m = {width}, d = {dim}, p = {prune}, B = {bias})"
            )));
        }
        // The network's numbers come from their own ChaCha streams: with the stream the points
        // use, the same seed would point the first neurons straight at the first points.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(NETWORK_STREAM);
        let mut weights: Vec<f64> = (0..width * dim).map(|_| rng.sample::<f64, _>(StandardNormal)).collect();
        let signs = (0..width).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect();
        let mask = (prune > 0.0).then(|| {
            let mut mask_rng = ChaCha8Rng::seed_from_u64(seed);
            mask_rng.set_stream(MASK_STREAM);
            (0..width * dim).map(|_| mask_rng.random::<f64>() >= prune).collect::<Vec<bool>>()
        });
        if let Some(mask) = &mask {
            for (w, &keep) in weights.iter_mut().zip(mask) {
                if !keep {
                    *w = 0.0;
                }
            }
        }
        Ok(Self { width, dim, weights, mask, signs, bias: vec![bias; width] })
    }

    /// `1[⟨w_r, xᵢ⟩ > b_r]`, `n × m` as 0/1.
    pub fn activations(&self, points: &Points) -> Vec<f64> {
        let (n, m) = (points.n, self.width);
        let mut pre = vec![0.0; n * m];
        a_bt(&mut pre, &points.values, &self.weights, (n, m, self.dim), Par::rayon(0));
        for row in pre.chunks_exact_mut(m) {
            for (v, b) in row.iter_mut().zip(&self.bias) {
                *v = if *v > *b { 1.0 } else { 0.0 };
            }
        }
        pre
    }

    /// Fraction of (point, neuron) pairs that are active.
    pub fn active_fraction(&self, points: &Points) -> f64 {
        let active = self.activations(points);
        #[allow(clippy::cast_precision_loss)]
        let total = active.len().max(1) as f64;
        active.iter().sum::<f64>() / total
    }

    /// The empirical kernel `K_m` on `points`, `n × n`.
    pub fn empirical_kernel(&self, points: &Points) -> Result<Vec<f64>, NtkError> {
        if points.d != self.dim {
            return Err(NtkError::Config(format!("points have dimension {} but the network {}", points.d, self.dim)));
        }
        let (n, m, d) = (points.n, self.width, self.dim);
        let active = self.activations(points);
        // S = A Aᵀ, neurons active on both points: 64 neurons per word, AND and count.
        let both = co_activations(&active, n, m);
        #[allow(clippy::cast_precision_loss)]
        let inv_m = 1.0 / m as f64;
        let kernel = match &self.mask {
            None => {
                let inner = points.inner_products();
                inner.iter().zip(&both).map(|(g, s)| (g + 1.0) * s * inv_m).collect()
            }
            Some(mask) => {
                // Σ_r A_ir A_jr ⟨M_r ⊙ xᵢ, xⱼ⟩ = Σ_k x_ik x_jk (A diag(M_·k) Aᵀ)_ij.
                let mut kernel = both.clone();
                let mut masked = vec![0.0; n * m];
                let mut shared = vec![0.0; n * n];
                for k in 0..d {
                    for (idx, v) in masked.iter_mut().enumerate() {
                        let r = idx % m;
                        *v = if mask[r * d + k] { active[idx] } else { 0.0 };
                    }
                    a_bt(&mut shared, &masked, &active, (n, n, m), Par::rayon(0));
                    for i in 0..n {
                        let xi = points.values[i * d + k];
                        for j in 0..n {
                            kernel[i * n + j] += xi * points.values[j * d + k] * shared[i * n + j];
                        }
                    }
                }
                kernel.iter_mut().for_each(|v| *v *= inv_m);
                kernel
            }
        };
        Ok(kernel)
    }

    /// `f(x)` for each point.
    pub fn outputs(&self, points: &Points) -> Vec<f64> {
        let (n, m) = (points.n, self.width);
        let mut pre = vec![0.0; n * m];
        a_bt(&mut pre, &points.values, &self.weights, (n, m, self.dim), Par::rayon(0));
        #[allow(clippy::cast_precision_loss)]
        let scale = 1.0 / (m as f64).sqrt();
        (0..n)
            .map(|i| (0..m).map(|r| self.signs[r] * (pre[i * m + r] - self.bias[r]).max(0.0)).sum::<f64>() * scale)
            .collect()
    }
}

/// `A Aᵀ` for a 0/1 matrix `a` (`n × m`): how many of the `m` columns are 1 in both rows, by
/// packing each row into 64-bit words and counting the bits two rows share.
fn co_activations(a: &[f64], n: usize, m: usize) -> Vec<f64> {
    use rayon::prelude::*;
    let words = m.div_ceil(64);
    let mut bits = vec![0_u64; n * words];
    for (i, row) in a.chunks_exact(m).enumerate() {
        for (r, &v) in row.iter().enumerate() {
            if v != 0.0 {
                bits[i * words + r / 64] |= 1 << (r % 64);
            }
        }
    }
    let mut out = vec![0.0; n * n];
    // The lower triangle, then its mirror.
    out.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        let bi = &bits[i * words..(i + 1) * words];
        for (j, value) in row.iter_mut().enumerate().take(i + 1) {
            let bj = &bits[j * words..(j + 1) * words];
            let shared: u32 = bi.iter().zip(bj).map(|(x, y)| (x & y).count_ones()).sum();
            *value = f64::from(shared);
        }
    });
    mirror_lower(&mut out, n);
    out
}

/// All eigenvalues of the symmetric `n × n` matrix `k`, ascending.
pub fn eigenvalues(k: &[f64], n: usize) -> Result<Vec<f64>, NtkError> {
    if k.len() != n * n {
        return Err(NtkError::Config(format!("{} values do not make a {n} × {n} matrix", k.len())));
    }
    let matrix = Mat::<f64>::from_fn(n, n, |i, j| k[i * n + j]);
    matrix.self_adjoint_eigenvalues(Side::Lower).map_err(|_| NtkError::Eigen)
}
