//! The feature-learning model behind "random pruning at initialization improves generalization":
//! data `x = (y·μ, ξ)` (a signal patch and a noise patch), a two-layer network whose first-layer
//! weights carry a random mask fixed through training, full-batch gradient descent on the
//! logistic loss.
//!
//! Network: `f(x) = F₊(x) − F₋(x)`, `F_j(x) = (1/m) Σ_r Σ_patches σ(⟨w_{j,r} ⊙ M_{j,r}, x_p⟩)` with
//! `σ(z) = max(z, 0)^q`; the second layer is fixed. Rows `0..m` of the weight matrix are class +1's
//! neurons, rows `m..2m` class −1's.
//!
//! Two exact solvers. *Explicit* keeps the `2m × d` weights and pays `O(m n d)` per step. *Gram*
//! uses that every gradient step adds `M_r ⊙ (Σᵢ cᵢ ξᵢ + g μ)` to row `r`: it precomputes each
//! row's masked Gram matrix `K_r[i,k] = ⟨M_r ⊙ ξᵢ, ξ_k⟩` once (`O(m n² d)`) and then runs the
//! whole descent on the `2m × n` coefficients (`O(m n²)` per step), rebuilding the weights only
//! when the test set is scored. Both give the same iterates up to rounding (tested).

use std::time::Instant;

use faer::Par;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::PruneError;
use crate::control::RunControl;
use crate::linalg::{a_b, a_bt};

/// Model, data and training settings of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TheoryConfig {
    /// Dimension `d` of each patch.
    pub dim: usize,
    /// `‖μ‖`.
    pub signal_norm: f64,
    /// How many coordinates μ spans (equal weights): 1 is the sparse signal `‖μ‖·e₁`.
    pub signal_coords: usize,
    /// `σ_p`: noise is `N(0, σ_p² (I − μμᵀ/‖μ‖²))`.
    pub noise_std: f64,
    pub n_train: usize,
    pub n_test: usize,
    /// Fraction of training labels flipped (the signal patch keeps the true label).
    pub label_flip: f64,
    /// Neurons per class, `m`.
    pub width: usize,
    /// Activation `max(z, 0)^q`; 1 is ReLU.
    pub power: u32,
    /// Standard deviation σ₀ of the initial weights.
    pub init_std: f64,
    pub learning_rate: f64,
    pub steps: usize,
    /// Pruning fraction `p`: each weight is kept with probability `1 − p`.
    pub prune: f64,
    /// Seeds the data, the initial weights and the masks.
    pub seed: u64,
}

impl Default for TheoryConfig {
    /// A setting where the three regimes show: d = 2000, n = 40, μ = 12·e₁, ReLU³.
    fn default() -> Self {
        Self {
            dim: 2000,
            signal_norm: 12.0,
            signal_coords: 1,
            noise_std: 1.0,
            n_train: 40,
            n_test: 1000,
            label_flip: 0.0,
            width: 20,
            power: 3,
            init_std: 0.01,
            learning_rate: 0.5,
            steps: 400,
            prune: 0.5,
            seed: 0,
        }
    }
}

/// The largest ‖μ‖, σ_p and σ₀ accepted: a pre-activation of 1e6 to the sixth power is still far
/// from f64's range; 1e300 overflows at once.
const MAX_SCALE: f64 = 1e6;
/// Most values (patches × dimension) the data may hold: 800 MB of f64.
const MAX_DATA_VALUES: usize = 100_000_000;
/// Most values of the weights or of one pre-activation matrix: 400 MB of f64.
const MAX_STATE_VALUES: usize = 50_000_000;

impl TheoryConfig {
    pub fn validate(&self) -> Result<(), PruneError> {
        let bad = |what: String| Err(PruneError::Config(what));
        if !(2..=200_000).contains(&self.dim) {
            return bad(format!("the dimension d must be 2 to 200000, got {}", self.dim));
        }
        if self.signal_coords == 0 || self.signal_coords > self.dim {
            return bad(format!("μ must span 1 to d = {} coordinates, got {}", self.dim, self.signal_coords));
        }
        if !(self.signal_norm.is_finite() && self.signal_norm > 0.0 && self.signal_norm <= MAX_SCALE) {
            return bad(format!("‖μ‖ must be positive and at most {MAX_SCALE:e}, got {}", shown(self.signal_norm)));
        }
        if !(self.noise_std.is_finite() && self.noise_std >= 0.0 && self.noise_std <= MAX_SCALE) {
            return bad(format!("σ_p must be zero to {MAX_SCALE:e}, got {}", shown(self.noise_std)));
        }
        if !(2..=20_000).contains(&self.n_train) || !(1..=1_000_000).contains(&self.n_test) {
            return bad(format!(
                "n_train must be 2 to 20000 and n_test 1 to 1000000 (got {} and {})",
                self.n_train, self.n_test
            ));
        }
        if (self.n_train + self.n_test).saturating_mul(self.dim) > MAX_DATA_VALUES {
            return bad(format!(
                "(n_train + n_test) × d = {} values is too much memory; keep it under {MAX_DATA_VALUES}",
                (self.n_train + self.n_test).saturating_mul(self.dim)
            ));
        }
        let rows = 2 * self.width;
        for (what, values) in [
            ("the weights, 2m × d", rows.saturating_mul(self.dim)),
            ("the test pre-activations, 2m × n_test", rows.saturating_mul(self.n_test)),
        ] {
            if values > MAX_STATE_VALUES {
                return bad(format!(
                    "{what} = {values} values is too much memory; keep it under {MAX_STATE_VALUES} (fewer neurons or samples)"
                ));
            }
        }
        if !(0.0..=0.5).contains(&self.label_flip) {
            return bad(format!("the label-flip rate must be 0 to 0.5, got {}", self.label_flip));
        }
        if !(1..=2000).contains(&self.width) || !(1..=6).contains(&self.power) {
            return bad(format!(
                "width m must be 1 to 2000 and the power q 1 to 6 (got {} and {})",
                self.width, self.power
            ));
        }
        if !(self.init_std.is_finite() && self.init_std >= 0.0 && self.init_std <= MAX_SCALE) {
            return bad(format!("σ₀ must be zero to {MAX_SCALE:e}, got {}", shown(self.init_std)));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate <= 1e3) {
            return bad(format!("the learning rate must be in (0, 1000], got {}", self.learning_rate));
        }
        if !(1..=1_000_000).contains(&self.steps) {
            return bad(format!("steps must be 1 to 1000000, got {}", self.steps));
        }
        if !(0.0..1.0).contains(&self.prune) {
            return bad(format!("the pruning fraction must be in [0, 1), got {}", self.prune));
        }
        Ok(())
    }
}

/// A number as a person reads it: very large or small ones in exponent form.
fn shown(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) { format!("{v:e}") } else { format!("{v}") }
}

/// One draw of the data: the signal, and the noise patches and labels of both splits.
#[derive(Clone, Debug)]
pub struct TheoryData {
    pub dim: usize,
    /// μ (`d`).
    pub signal: Vec<f64>,
    /// ξᵢ, `n_train × d` row-major.
    pub train_noise: Vec<f64>,
    /// Labels trained on (±1; some flipped).
    pub train_labels: Vec<f64>,
    /// Labels the signal patches carry.
    pub train_true: Vec<f64>,
    pub test_noise: Vec<f64>,
    pub test_labels: Vec<f64>,
    /// Coordinates where μ is not zero (kept so the hot loops do not search for them).
    support: Vec<usize>,
}

impl TheoryData {
    /// Draws data for `config` (only its data fields and seed matter).
    pub fn generate(config: &TheoryConfig) -> Self {
        let d = config.dim;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xDA7A);
        #[allow(clippy::cast_precision_loss)]
        let per_coord = config.signal_norm / (config.signal_coords as f64).sqrt();
        let mut signal = vec![0.0; d];
        signal[..config.signal_coords].fill(per_coord);
        let norm2: f64 = signal.iter().map(|v| v * v).sum();
        let noise = |n: usize, rng: &mut ChaCha8Rng| -> Vec<f64> {
            let mut out = Vec::with_capacity(n * d);
            for _ in 0..n {
                let start = out.len();
                out.extend((0..d).map(|_| config.noise_std * rng.sample::<f64, _>(StandardNormal)));
                // Remove the component along μ.
                let along: f64 = out[start..start + config.signal_coords].iter().zip(&signal).map(|(a, b)| a * b).sum();
                for (v, m) in out[start..start + config.signal_coords].iter_mut().zip(&signal) {
                    *v -= along / norm2 * m;
                }
            }
            out
        };
        let labels = |n: usize, rng: &mut ChaCha8Rng| -> Vec<f64> {
            (0..n).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect()
        };
        let train_true = labels(config.n_train, &mut rng);
        let train_labels =
            train_true.iter().map(|&y| if rng.random::<f64>() < config.label_flip { -y } else { y }).collect();
        let train_noise = noise(config.n_train, &mut rng);
        let test_labels = labels(config.n_test, &mut rng);
        let test_noise = noise(config.n_test, &mut rng);
        let support = (0..config.signal_coords).collect();
        Self { dim: d, signal, train_noise, train_labels, train_true, test_noise, test_labels, support }
    }

    pub fn n_train(&self) -> usize {
        self.train_labels.len()
    }

    pub fn n_test(&self) -> usize {
        self.test_labels.len()
    }

    /// Adds `coefficients[r] · μ` to each row `r` of `matrix` (`rows × d`).
    fn add_signal(&self, matrix: &mut [f64], coefficients: &[f64]) {
        let d = self.dim;
        for (r, &coefficient) in coefficients.iter().enumerate() {
            for &k in &self.support {
                matrix[r * d + k] += coefficient * self.signal[k];
            }
        }
    }

    /// `⟨w_r, μ⟩` for each of the `rows` rows of `weights` (`rows × d`).
    fn signal_pre(&self, weights: &[f64], rows: usize) -> Vec<f64> {
        let d = self.dim;
        (0..rows).map(|r| self.support.iter().map(|&k| weights[r * d + k] * self.signal[k]).sum()).collect()
    }
}

/// The initial (masked) weights and the masks, `2m × d` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct TheoryInit {
    pub rows: usize,
    pub dim: usize,
    pub mask: Vec<bool>,
    pub weights: Vec<f64>,
}

impl TheoryInit {
    /// Masks are nested across pruning fractions: a weight kept at `p` is kept at every smaller
    /// `p` (one uniform draw per weight, kept when it is ≥ p), and the initial values do not
    /// depend on `p`, so a sweep changes only what `p` changes.
    pub fn new(config: &TheoryConfig) -> Self {
        let (rows, dim) = (2 * config.width, config.dim);
        let mut init_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x1417);
        let mut mask_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x3A5C);
        let mut mask = Vec::with_capacity(rows * dim);
        let mut weights = Vec::with_capacity(rows * dim);
        for _ in 0..rows * dim {
            let keep = mask_rng.random::<f64>() >= config.prune;
            let w: f64 = config.init_std * init_rng.sample::<f64, _>(StandardNormal);
            mask.push(keep);
            weights.push(if keep { w } else { 0.0 });
        }
        Self { rows, dim, mask, weights }
    }

    #[allow(clippy::cast_precision_loss)]
    pub fn kept_fraction(&self) -> f64 {
        self.mask.iter().filter(|&&k| k).count() as f64 / self.mask.len().max(1) as f64
    }
}

/// Which exact solver runs the descent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Solver {
    /// Gram when the training set is small next to the steps, explicit otherwise.
    #[default]
    Auto,
    Gram,
    Explicit,
}

/// How a run reports and scores itself.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Score the test set every this many steps (and at the end); 0: only at the end.
    pub test_every: usize,
    /// Keep every step's point in the result.
    pub history: bool,
    pub solver: Solver,
    /// Threads for the matrix products (a sweep runs its runs in parallel instead).
    pub parallel: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { test_every: 0, history: true, solver: Solver::Auto, parallel: true }
    }
}

/// Metrics after a step (step 0: at initialization).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TheoryPoint {
    pub step: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// NaN where the test set was not scored.
    pub test_accuracy: f64,
    /// Signal learning: per class j, `max_r ⟨w_{j,r}, j·μ⟩`, averaged over the two classes.
    pub signal: f64,
    /// Noise memorization: `max_r ⟨w_{yᵢ,r}, ξᵢ⟩` averaged over the training samples.
    pub noise: f64,
}

/// The outcome of one run.
#[derive(Clone, Debug)]
pub struct TheoryRun {
    pub history: Vec<TheoryPoint>,
    pub last: TheoryPoint,
    /// Final effective weights `w ⊙ M`, `2m × d`.
    pub weights: Vec<f64>,
    pub kept_fraction: f64,
    pub seconds: f64,
    pub cancelled: bool,
    pub solver: Solver,
}

fn activation(z: f64, q: u32) -> f64 {
    if z <= 0.0 { 0.0 } else { z.powi(q.cast_signed()) }
}

fn activation_slope(z: f64, q: u32) -> f64 {
    if z <= 0.0 {
        0.0
    } else if q == 1 {
        1.0
    } else {
        f64::from(q) * z.powi((q - 1).cast_signed())
    }
}

/// `log(1 + e^x)` without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// +1 for class +1's rows, −1 for class −1's.
fn row_sign(r: usize, m: usize) -> f64 {
    if r < m { 1.0 } else { -1.0 }
}

/// Network outputs from the pre-activations: `noise_pre` is `2m × n` (`⟨w_r, ξᵢ⟩`), `signal_pre`
/// is `⟨w_r, μ⟩`, `carried` the labels the signal patches carry.
fn outputs(noise_pre: &[f64], signal_pre: &[f64], carried: &[f64], m: usize, q: u32) -> Vec<f64> {
    let n = carried.len();
    #[allow(clippy::cast_precision_loss)]
    let inv_m = 1.0 / m as f64;
    let mut f = vec![0.0; n];
    for r in 0..2 * m {
        let s = row_sign(r, m) * inv_m;
        let row = &noise_pre[r * n..(r + 1) * n];
        for ((fi, &b), &y) in f.iter_mut().zip(row).zip(carried) {
            *fi += s * (activation(y * signal_pre[r], q) + activation(b, q));
        }
    }
    f
}

/// Fraction of `outputs` whose sign matches `labels` (a zero output counts half).
fn accuracy(outputs: &[f64], labels: &[f64]) -> f64 {
    let score: f64 = outputs
        .iter()
        .zip(labels)
        .map(|(&f, &y)| {
            if f == 0.0 {
                0.5
            } else if (f > 0.0) == (y > 0.0) {
                1.0
            } else {
                0.0
            }
        })
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let n = labels.len().max(1) as f64;
    score / n
}

/// Loss, metrics and the gradient with respect to the pre-activations:
/// returns the point (test NaN), `C` (`2m × n`, ∂L/∂⟨w_r, ξᵢ⟩) and `h` (`2m`, ∂L/∂⟨w_r, μ⟩).
fn loss_and_gradient(
    noise_pre: &[f64],
    signal_pre: &[f64],
    data: &TheoryData,
    m: usize,
    q: u32,
    step: usize,
) -> (TheoryPoint, Vec<f64>, Vec<f64>) {
    let n = data.n_train();
    let f = outputs(noise_pre, signal_pre, &data.train_true, m, q);
    #[allow(clippy::cast_precision_loss)]
    let (inv_n, inv_m) = (1.0 / n as f64, 1.0 / m as f64);
    let mut loss = 0.0;
    // ∂L/∂fᵢ.
    let e: Vec<f64> = f
        .iter()
        .zip(&data.train_labels)
        .map(|(&fi, &y)| {
            loss += softplus(-y * fi);
            -y * sigmoid(-y * fi) * inv_n
        })
        .collect();
    let rows = 2 * m;
    let mut c = vec![0.0; rows * n];
    let mut h = vec![0.0; rows];
    for r in 0..rows {
        let s = row_sign(r, m) * inv_m;
        let pre = &noise_pre[r * n..(r + 1) * n];
        for (i, ((ci, &b), &ei)) in c[r * n..(r + 1) * n].iter_mut().zip(pre).zip(&e).enumerate() {
            *ci = ei * s * activation_slope(b, q);
            let y = data.train_true[i];
            h[r] += ei * s * activation_slope(y * signal_pre[r], q) * y;
        }
    }
    // Signal learning and noise memorization.
    let class_max = |sign: f64, range: std::ops::Range<usize>| {
        range.map(|r| sign * signal_pre[r]).fold(f64::NEG_INFINITY, f64::max)
    };
    let signal = 0.5 * (class_max(1.0, 0..m) + class_max(-1.0, m..rows));
    let noise = (0..n)
        .map(|i| {
            let range = if data.train_labels[i] > 0.0 { 0..m } else { m..rows };
            range.map(|r| noise_pre[r * n + i]).fold(f64::NEG_INFINITY, f64::max)
        })
        .sum::<f64>()
        * inv_n;
    let point = TheoryPoint {
        step,
        train_loss: loss * inv_n,
        train_accuracy: accuracy(&f, &data.train_labels),
        test_accuracy: f64::NAN,
        signal,
        noise,
    };
    (point, c, h)
}

fn par(parallel: bool) -> Par {
    if parallel { Par::rayon(0) } else { Par::Seq }
}

/// Test accuracy of effective weights `v` (`2m × d`).
fn test_accuracy(v: &[f64], data: &TheoryData, m: usize, q: u32, parallel: bool) -> f64 {
    let (rows, d, n) = (2 * m, data.dim, data.n_test());
    let mut pre = vec![0.0; rows * n];
    a_bt(&mut pre, v, &data.test_noise, (rows, n, d), par(parallel));
    let signal_pre = data.signal_pre(v, rows);
    accuracy(&outputs(&pre, &signal_pre, &data.test_labels, m, q), &data.test_labels)
}

/// The metrics of effective weights `weights` (`2m × d`, zero where pruned) on `data`.
pub fn evaluate(config: &TheoryConfig, data: &TheoryData, weights: &[f64]) -> Result<TheoryPoint, PruneError> {
    let (m, d, n) = (config.width, data.dim, data.n_train());
    if weights.len() != 2 * m * d || config.dim != d {
        return Err(PruneError::Config(format!("{} weights do not make 2m × d = {} × {d}", weights.len(), 2 * m)));
    }
    let mut noise_pre = vec![0.0; 2 * m * n];
    a_bt(&mut noise_pre, weights, &data.train_noise, (2 * m, n, d), Par::Seq);
    let signal_pre = data.signal_pre(weights, 2 * m);
    let (mut point, _, _) = loss_and_gradient(&noise_pre, &signal_pre, data, m, config.power, 0);
    point.test_accuracy = test_accuracy(weights, data, m, config.power, false);
    Ok(point)
}

/// Trains one network. `on_point` sees every step's metrics (test accuracy where scored).
pub fn train(
    config: &TheoryConfig,
    data: &TheoryData,
    init: &TheoryInit,
    options: RunOptions,
    control: &RunControl,
    on_point: &mut dyn FnMut(&TheoryPoint),
) -> Result<TheoryRun, PruneError> {
    config.validate()?;
    let (m, d, n) = (config.width, config.dim, data.n_train());
    if data.dim != d || init.dim != d || init.rows != 2 * m || n == 0 {
        return Err(PruneError::Config(
            "the data, the initial weights and the settings disagree in size; draw them from the same settings".into(),
        ));
    }
    let start = Instant::now();
    let solver = match options.solver {
        // The Gram matrices cost about as much as n/2 explicit steps, and a step on them is
        // cheaper only while n < d; they hold 2m·n² values.
        Solver::Auto if n <= 2 * config.steps && n < d && 2 * m * n * n <= MAX_STATE_VALUES => Solver::Gram,
        Solver::Auto => Solver::Explicit,
        other => other,
    };
    let mut state = match solver {
        Solver::Gram => State::gram(data, init, options.parallel),
        _ => State::Explicit { weights: init.weights.clone() },
    };
    let q = config.power;
    let lr = config.learning_rate;
    let mut history = Vec::new();
    let mut cancelled = false;
    let mut last = None;
    for step in 0..=config.steps {
        let (noise_pre, signal_pre) = state.pre_activations(data, options.parallel);
        let (mut point, c, h) = loss_and_gradient(&noise_pre, &signal_pre, data, m, q, step);
        if let Some((what, value)) = [
            ("the training loss", point.train_loss),
            ("the signal learned", point.signal),
            ("the noise memorized", point.noise),
        ]
        .into_iter()
        .find(|(_, v)| !v.is_finite())
        {
            return Err(PruneError::Diverged {
                what,
                value,
                at: format!("step {step}"),
                advice: "Lower ‖μ‖, σ_p, σ₀ or the learning rate: max(z, 0)^q overflows for large pre-activations.",
            });
        }
        let score = step == config.steps || (options.test_every > 0 && step.is_multiple_of(options.test_every));
        if score {
            point.test_accuracy =
                test_accuracy(&state.weights(data, init, options.parallel), data, m, q, options.parallel);
        }
        on_point(&point);
        if options.history {
            history.push(point);
        }
        last = Some(point);
        if step == config.steps {
            break;
        }
        if !control.checkpoint() {
            cancelled = true;
            if !score {
                let mut p = point;
                p.test_accuracy =
                    test_accuracy(&state.weights(data, init, options.parallel), data, m, q, options.parallel);
                last = Some(p);
            }
            break;
        }
        state.descend(&c, &h, lr, data, init, options.parallel);
    }
    let weights = state.weights(data, init, options.parallel);
    Ok(TheoryRun {
        history,
        last: last.unwrap_or(TheoryPoint {
            step: 0,
            train_loss: f64::NAN,
            train_accuracy: f64::NAN,
            test_accuracy: f64::NAN,
            signal: f64::NAN,
            noise: f64::NAN,
        }),
        weights,
        kept_fraction: init.kept_fraction(),
        seconds: start.elapsed().as_secs_f64(),
        cancelled,
        solver,
    })
}

/// The descent's state in one of the two forms.
enum State {
    Explicit {
        /// Effective weights, `2m × d`.
        weights: Vec<f64>,
    },
    Gram {
        /// Per row `r`: `K_r` (`n × n`).
        gram: Vec<f64>,
        /// Per row: `u_r[i] = ⟨M_r ⊙ ξᵢ, μ⟩`.
        cross: Vec<f64>,
        /// Per row: `⟨M_r ⊙ μ, μ⟩`.
        self_signal: Vec<f64>,
        /// Accumulated coefficients of ξᵢ (`2m × n`) and of μ (`2m`).
        coef_noise: Vec<f64>,
        coef_signal: Vec<f64>,
        /// Current pre-activations `⟨w_r, ξᵢ⟩` and `⟨w_r, μ⟩`.
        noise_pre: Vec<f64>,
        signal_pre: Vec<f64>,
    },
}

impl State {
    fn gram(data: &TheoryData, init: &TheoryInit, parallel: bool) -> Self {
        let (rows, d, n) = (init.rows, data.dim, data.n_train());
        let support = &data.support;
        let xi = &data.train_noise;
        let per_row = |r: usize, gram: &mut [f64], cross: &mut [f64]| -> f64 {
            let mask = &init.mask[r * d..(r + 1) * d];
            let masked: Vec<f64> = xi.iter().enumerate().map(|(k, &v)| if mask[k % d] { v } else { 0.0 }).collect();
            a_bt(gram, &masked, xi, (n, n, d), Par::Seq);
            for (i, u) in cross.iter_mut().enumerate() {
                *u = support.iter().map(|&k| masked[i * d + k] * data.signal[k]).sum();
            }
            support.iter().filter(|&&k| mask[k]).map(|&k| data.signal[k] * data.signal[k]).sum()
        };
        let mut gram = vec![0.0; rows * n * n];
        let mut cross = vec![0.0; rows * n];
        let self_signal: Vec<f64> = if parallel {
            gram.par_chunks_mut(n * n)
                .zip(cross.par_chunks_mut(n))
                .enumerate()
                .map(|(r, (g, c))| per_row(r, g, c))
                .collect()
        } else {
            gram.chunks_mut(n * n).zip(cross.chunks_mut(n)).enumerate().map(|(r, (g, c))| per_row(r, g, c)).collect()
        };
        let mut noise_pre = vec![0.0; rows * n];
        a_bt(&mut noise_pre, &init.weights, xi, (rows, n, d), par(parallel));
        let signal_pre = data.signal_pre(&init.weights, rows);
        Self::Gram {
            gram,
            cross,
            self_signal,
            coef_noise: vec![0.0; rows * n],
            coef_signal: vec![0.0; rows],
            noise_pre,
            signal_pre,
        }
    }

    fn pre_activations(&self, data: &TheoryData, parallel: bool) -> (Vec<f64>, Vec<f64>) {
        match self {
            Self::Explicit { weights } => {
                let (d, n) = (data.dim, data.n_train());
                let rows = weights.len() / d;
                let mut noise_pre = vec![0.0; rows * n];
                a_bt(&mut noise_pre, weights, &data.train_noise, (rows, n, d), par(parallel));
                (noise_pre, data.signal_pre(weights, rows))
            }
            Self::Gram { noise_pre, signal_pre, .. } => (noise_pre.clone(), signal_pre.clone()),
        }
    }

    /// One gradient step: row `r` moves by `−lr · M_r ⊙ (Σᵢ C[r,i] ξᵢ + h[r] μ)`.
    fn descend(&mut self, c: &[f64], h: &[f64], lr: f64, data: &TheoryData, init: &TheoryInit, parallel: bool) {
        let (d, n) = (data.dim, data.n_train());
        match self {
            Self::Explicit { weights } => {
                let rows = init.rows;
                let mut step = vec![0.0; rows * d];
                a_b(&mut step, c, &data.train_noise, (rows, n, d), par(parallel));
                data.add_signal(&mut step, h);
                for ((w, s), &keep) in weights.iter_mut().zip(&step).zip(&init.mask) {
                    if keep {
                        *w -= lr * s;
                    }
                }
            }
            Self::Gram { gram, cross, self_signal, coef_noise, coef_signal, noise_pre, signal_pre } => {
                for r in 0..init.rows {
                    let (cr, k, u) =
                        (&c[r * n..(r + 1) * n], &gram[r * n * n..(r + 1) * n * n], &cross[r * n..(r + 1) * n]);
                    let pre = &mut noise_pre[r * n..(r + 1) * n];
                    // ΔB[r,k] = −lr (Σᵢ C[r,i] K_r[i,k] + h[r] u_r[k]).
                    for (kk, b) in pre.iter_mut().enumerate() {
                        // K_r is symmetric: its row kk is its column kk.
                        let dot: f64 = cr.iter().zip(&k[kk * n..(kk + 1) * n]).map(|(a, b)| a * b).sum();
                        *b -= lr * (dot + h[r] * u[kk]);
                    }
                    let dot: f64 = cr.iter().zip(u).map(|(a, b)| a * b).sum();
                    signal_pre[r] -= lr * (dot + h[r] * self_signal[r]);
                    for (acc, &ci) in coef_noise[r * n..(r + 1) * n].iter_mut().zip(cr) {
                        *acc -= lr * ci;
                    }
                    coef_signal[r] -= lr * h[r];
                }
            }
        }
    }

    /// The effective weights `w ⊙ M`.
    fn weights(&self, data: &TheoryData, init: &TheoryInit, parallel: bool) -> Vec<f64> {
        match self {
            Self::Explicit { weights } => weights.clone(),
            Self::Gram { coef_noise, coef_signal, .. } => {
                let (rows, d, n) = (init.rows, data.dim, data.n_train());
                let mut moved = vec![0.0; rows * d];
                a_b(&mut moved, coef_noise, &data.train_noise, (rows, n, d), par(parallel));
                data.add_signal(&mut moved, coef_signal);
                moved
                    .iter()
                    .zip(&init.weights)
                    .zip(&init.mask)
                    .map(|((dw, w0), &keep)| if keep { w0 + dw } else { 0.0 })
                    .collect()
            }
        }
    }
}

/// The pruning fractions of a default sweep: 20 values from 0 to 0.99, denser where the peak and
/// the collapse usually are.
pub const DEFAULT_FRACTIONS: [f64; 20] =
    [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99];

/// One pruning fraction of a sweep: the final metrics of every seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub prune: f64,
    pub seeds: Vec<u64>,
    pub test_accuracy: Vec<f64>,
    pub train_accuracy: Vec<f64>,
    pub train_loss: Vec<f64>,
    pub signal: Vec<f64>,
    pub noise: Vec<f64>,
}

pub use crate::metrics::mean_std;

/// Final metrics of `config` at each pruning fraction, for seeds `config.seed .. config.seed +
/// seeds`. Each seed's data and initial values are shared by all fractions (masks are nested).
/// Runs in parallel; `on_done(done, total)` after each batch. `None` when cancelled.
pub fn sweep(
    config: &TheoryConfig,
    fractions: &[f64],
    seeds: usize,
    control: &RunControl,
    on_done: &mut dyn FnMut(usize, usize),
) -> Result<Option<Vec<SweepPoint>>, PruneError> {
    if fractions.is_empty() || seeds == 0 {
        return Err(PruneError::Config("a sweep needs at least one pruning fraction and one seed".into()));
    }
    for &p in fractions {
        TheoryConfig { prune: p, ..config.clone() }.validate()?;
    }
    let seed_list: Vec<u64> = (0..seeds as u64).map(|s| config.seed.wrapping_add(s)).collect();
    let total = fractions.len() * seeds;
    let mut results: Vec<Option<TheoryPoint>> = vec![None; total];
    let batch = rayon::current_num_threads().max(1) * 2;
    let options = RunOptions { test_every: 0, history: false, solver: Solver::Auto, parallel: false };
    let mut done = 0;
    // One seed's data at a time: memory stays that of a single run's data.
    for (s, &seed) in seed_list.iter().enumerate() {
        if !control.checkpoint() {
            return Ok(None);
        }
        let data = TheoryData::generate(&TheoryConfig { seed, ..config.clone() });
        let indices: Vec<usize> = (0..fractions.len()).collect();
        for chunk in indices.chunks(batch) {
            if !control.checkpoint() {
                return Ok(None);
            }
            let points: Vec<Result<Option<TheoryPoint>, PruneError>> = chunk
                .par_iter()
                .map(|&f| {
                    let run_config = TheoryConfig { prune: fractions[f], seed, ..config.clone() };
                    let init = TheoryInit::new(&run_config);
                    let run = train(&run_config, &data, &init, options, control, &mut |_| {})?;
                    Ok((!run.cancelled).then_some(run.last))
                })
                .collect();
            for (point, &f) in points.into_iter().zip(chunk) {
                let Some(point) = point? else { return Ok(None) };
                results[f * seeds + s] = Some(point);
                done += 1;
            }
            on_done(done, total);
        }
    }
    let points = fractions
        .iter()
        .enumerate()
        .map(|(f, &prune)| {
            let runs: Vec<TheoryPoint> = (0..seeds).filter_map(|s| results[f * seeds + s]).collect();
            SweepPoint {
                prune,
                seeds: seed_list.clone(),
                test_accuracy: runs.iter().map(|p| p.test_accuracy).collect(),
                train_accuracy: runs.iter().map(|p| p.train_accuracy).collect(),
                train_loss: runs.iter().map(|p| p.train_loss).collect(),
                signal: runs.iter().map(|p| p.signal).collect(),
                noise: runs.iter().map(|p| p.noise).collect(),
            }
        })
        .collect();
    Ok(Some(points))
}
