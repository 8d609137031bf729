//! Full-batch gradient descent on the network itself (hidden weights and biases trained, output
//! signs fixed) with the squared loss `L = ½ Σᵢ (f(xᵢ) − yᵢ)²`, beside the two predictions of the
//! kernel regime: the linearized residual `r ← (I − η K) r` with the Gram matrix at
//! initialization, and the bound `L(0) · exp(−η λ_min t)`.

use faer::Par;
use rayon::prelude::*;

use super::NtkError;
use super::data::Dataset;
use super::kernel::HiddenLayer;
use crate::control::RunControl;
use crate::linalg::{a_bt, at_b};

/// One step of a run: losses before the step's update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainPoint {
    pub step: usize,
    /// The network's loss.
    pub loss: f64,
    /// `½‖(I − ηK)ᵗ r₀‖²`, the kernel regime's prediction.
    pub linear: f64,
    /// `L(0) · exp(−η λ_min t)`.
    pub bound: f64,
}

/// A finished (or cancelled) run.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainRun {
    pub points: Vec<TrainPoint>,
    pub learning_rate: f64,
    pub lambda_min: f64,
    pub cancelled: bool,
}

/// The loss, and its gradients with respect to the weights (`m × d`, zero where pruned) and biases.
pub fn loss_and_gradients(layer: &HiddenLayer, data: &Dataset) -> (f64, Vec<f64>, Vec<f64>) {
    let (n, m, d) = (data.points.n, layer.width, layer.dim);
    let mut pre = vec![0.0; n * m];
    a_bt(&mut pre, &data.points.values, &layer.weights, (n, m, d), Par::rayon(0));
    #[allow(clippy::cast_precision_loss)]
    let scale = 1.0 / (m as f64).sqrt();
    // Row i of `pre` becomes ∂L/∂(pre-activation) = scale · aᵣ · 1[zᵢᵣ > 0] · rᵢ.
    let loss: f64 = pre
        .par_chunks_mut(m)
        .zip(&data.targets)
        .map(|(row, &y)| {
            let mut f = 0.0;
            for ((z, &b), &a) in row.iter_mut().zip(&layer.bias).zip(&layer.signs) {
                let active = *z > b;
                if active {
                    f += a * (*z - b);
                }
                *z = if active { a * scale } else { 0.0 };
            }
            let residual = f * scale - y;
            row.iter_mut().for_each(|g| *g *= residual);
            0.5 * residual * residual
        })
        .sum();
    let mut grad_w = vec![0.0; m * d];
    at_b(&mut grad_w, &pre, &data.points.values, (n, m, d), Par::rayon(0));
    if let Some(mask) = &layer.mask {
        grad_w.iter_mut().zip(mask).for_each(|(g, &keep)| *g = if keep { *g } else { 0.0 });
    }
    // f depends on −b, so ∂L/∂bᵣ = −Σᵢ ∂L/∂zᵢᵣ.
    let mut grad_b = vec![0.0; m];
    for row in pre.chunks_exact(m) {
        grad_b.iter_mut().zip(row).for_each(|(g, v)| *g -= v);
    }
    (loss, grad_w, grad_b)
}

/// Trains a copy of `layer` on `data` for `steps` steps of size `learning_rate`. `kernel` is the
/// Gram matrix at initialization and `lambda_min` its smallest eigenvalue (the predictions use
/// them). `on_point` sees every step.
#[allow(clippy::too_many_arguments)]
pub fn train(
    layer: &HiddenLayer,
    data: &Dataset,
    kernel: &[f64],
    lambda_min: f64,
    learning_rate: f64,
    steps: usize,
    control: &RunControl,
    on_point: &mut dyn FnMut(&TrainPoint),
) -> Result<TrainRun, NtkError> {
    let n = data.points.n;
    if data.targets.len() != n || kernel.len() != n * n || layer.dim != data.points.d {
        return Err(NtkError::Config("the network, the data and the Gram matrix do not fit together".into()));
    }
    if !(learning_rate.is_finite() && learning_rate > 0.0) {
        return Err(NtkError::Config(format!("the step size must be positive (got {learning_rate})")));
    }
    let mut net = layer.clone();
    let mut residual: Vec<f64> = net.outputs(&data.points).iter().zip(&data.targets).map(|(f, y)| f - y).collect();
    let mut kr = vec![0.0; n];
    let mut points = Vec::with_capacity(steps + 1);
    let mut initial = None;
    let mut cancelled = false;
    for step in 0..=steps {
        if !control.checkpoint() {
            cancelled = true;
            break;
        }
        let (loss, grad_w, grad_b) = loss_and_gradients(&net, data);
        let l0 = *initial.get_or_insert(loss);
        #[allow(clippy::cast_precision_loss)]
        let t = step as f64;
        let point = TrainPoint {
            step,
            loss,
            linear: 0.5 * residual.iter().map(|r| r * r).sum::<f64>(),
            bound: l0 * (-learning_rate * lambda_min.max(0.0) * t).exp(),
        };
        on_point(&point);
        points.push(point);
        if step == steps {
            break;
        }
        net.weights.iter_mut().zip(&grad_w).for_each(|(w, g)| *w -= learning_rate * g);
        net.bias.iter_mut().zip(&grad_b).for_each(|(b, g)| *b -= learning_rate * g);
        kr.par_iter_mut().enumerate().for_each(|(i, v)| {
            *v = kernel[i * n..(i + 1) * n].iter().zip(&residual).map(|(k, r)| k * r).sum();
        });
        residual.iter_mut().zip(&kr).for_each(|(r, k)| *r -= learning_rate * k);
    }
    Ok(TrainRun { points, learning_rate, lambda_min, cancelled })
}
