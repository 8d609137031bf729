//! Sweeps over the bias and the width: λ_min of the empirical and limiting Gram matrices against
//! B, the fraction of active neurons against B, and the empirical kernel's distance to its limit
//! against m.

use faer::Par;

use super::NtkError;
use super::kernel::{HiddenLayer, Points, eigenvalues, limit_kernel, normal_cdf};
use crate::control::RunControl;
use crate::linalg::a_bt;

/// Biases the lab sweeps by default: 0 to 3 in steps of ¼.
pub const DEFAULT_BIASES: [f64; 13] = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0];
/// Widths the λ_min sweep compares by default.
pub const DEFAULT_WIDTHS: [usize; 3] = [256, 1024, 4096];
/// Widths of the distance-to-the-limit sweep by default: 16 to 16384, doubling.
pub const DISTANCE_WIDTHS: [usize; 11] = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];

/// λ_min and λ_max at one bias for one width (`None`: the m → ∞ kernel).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BiasPoint {
    pub bias: f64,
    pub width: Option<usize>,
    pub lambda_min: f64,
    pub lambda_max: f64,
    /// Fraction of (point, neuron) pairs active; `1 − Φ(B)` for the limit.
    pub active_fraction: f64,
}

/// The empirical kernel's distance to the limit at one width.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DistancePoint {
    pub bias: f64,
    pub width: usize,
    /// `‖K_m − K‖_F / ‖K‖_F`.
    pub relative_frobenius: f64,
    /// `max |K_m − K|`.
    pub max_abs: f64,
}

/// The fraction of active (point, neuron) pairs at one bias: measured with the network's weights
/// and in theory, `1 − Φ(B)` (`⟨w, x⟩ ~ N(0, 1)` for unit `x` and unpruned `w`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActivePoint {
    pub bias: f64,
    pub measured: f64,
    pub theory: f64,
}

fn check_lists(biases: &[f64], widths: &[usize]) -> Result<(), NtkError> {
    if biases.is_empty() {
        return Err(NtkError::Config("a sweep needs at least one bias".into()));
    }
    if let Some((k, b)) = biases.iter().enumerate().find(|(_, b)| !b.is_finite()) {
        return Err(NtkError::Config(format!("bias {} of the list is {b}; every bias must be a finite number", k + 1)));
    }
    if widths.iter().any(|&m| !(1..=1_000_000).contains(&m)) {
        return Err(NtkError::Config("widths must be 1 to 1000000".into()));
    }
    Ok(())
}

/// λ_min against the bias for each width and for the limit. `on_done(done, total)` after each
/// Gram; `None` when cancelled.
pub fn lambda_min_vs_bias(
    points: &Points,
    biases: &[f64],
    widths: &[usize],
    prune: f64,
    seed: u64,
    control: &RunControl,
    on_done: &mut dyn FnMut(usize, usize),
) -> Result<Option<Vec<BiasPoint>>, NtkError> {
    check_lists(biases, widths)?;
    let total = biases.len() * (widths.len() + 1);
    let mut out = Vec::with_capacity(total);
    for &bias in biases {
        for width in widths.iter().copied().map(Some).chain([None]) {
            if !control.checkpoint() {
                return Ok(None);
            }
            let (gram, active_fraction) = match width {
                Some(m) => {
                    let layer = HiddenLayer::new(m, points.d, bias, prune, seed)?;
                    (layer.empirical_kernel(points)?, layer.active_fraction(points))
                }
                None => (limit_kernel(points, bias), normal_cdf(-bias)),
            };
            let values = eigenvalues(&gram, points.n)?;
            out.push(BiasPoint {
                bias,
                width,
                lambda_min: values.first().copied().unwrap_or(f64::NAN),
                lambda_max: values.last().copied().unwrap_or(f64::NAN),
                active_fraction,
            });
            on_done(out.len(), total);
        }
    }
    Ok(Some(out))
}

/// The empirical kernel's distance to the limit at bias `bias` for each width. With `prune > 0`
/// the limit is still the unpruned one, so the distance levels off instead of vanishing.
pub fn distance_vs_width(
    points: &Points,
    bias: f64,
    widths: &[usize],
    prune: f64,
    seed: u64,
    control: &RunControl,
    on_done: &mut dyn FnMut(usize, usize),
) -> Result<Option<Vec<DistancePoint>>, NtkError> {
    check_lists(&[bias], widths)?;
    let limit = limit_kernel(points, bias);
    let norm = limit.iter().map(|v| v * v).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    let mut out = Vec::with_capacity(widths.len());
    for &width in widths {
        if !control.checkpoint() {
            return Ok(None);
        }
        let kernel = HiddenLayer::new(width, points.d, bias, prune, seed)?.empirical_kernel(points)?;
        let (mut sum, mut max_abs) = (0.0, 0.0_f64);
        for (a, b) in kernel.iter().zip(&limit) {
            let e = a - b;
            sum += e * e;
            max_abs = max_abs.max(e.abs());
        }
        out.push(DistancePoint { bias, width, relative_frobenius: sum.sqrt() / norm, max_abs });
        on_done(out.len(), widths.len());
    }
    Ok(Some(out))
}

/// The active fraction of `layer`'s neurons on `points` at each bias (the layer's own bias is
/// replaced).
pub fn active_vs_bias(layer: &HiddenLayer, points: &Points, biases: &[f64]) -> Vec<ActivePoint> {
    let (n, m) = (points.n, layer.width);
    let mut pre = vec![0.0; n * m];
    a_bt(&mut pre, &points.values, &layer.weights, (n, m, layer.dim), Par::rayon(0));
    pre.sort_unstable_by(f64::total_cmp);
    #[allow(clippy::cast_precision_loss)]
    let total = pre.len().max(1) as f64;
    biases
        .iter()
        .map(|&bias| {
            // Entries strictly above the bias.
            let above = pre.len() - pre.partition_point(|&v| v <= bias);
            #[allow(clippy::cast_precision_loss)]
            let measured = above as f64 / total;
            ActivePoint { bias, measured, theory: normal_cdf(-bias) }
        })
        .collect()
}
