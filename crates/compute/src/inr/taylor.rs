//! Closed-form input derivatives of a SIREN up to any order, mixed partials included ("Taylor
//! mode"): every neuron carries the truncated bivariate Taylor polynomial of its value around the
//! evaluation point, `Σ c_ij dxⁱ dyʲ` over `i + j ≤ K`, so that `∂ⁱ⁺ʲf/∂xⁱ∂yʲ = i!·j!·c_ij`.
//!
//! A linear layer maps every coefficient through `W` (the bias only touches `c_00`): one matmul of
//! `(points·P) × fan_in` rows, `P = (K+1)(K+2)/2`. A sine layer composes `sin` with the polynomial
//! `u = u₀ + p`: `sin(u₀ + p) = Σ_m sin⁽ᵐ⁾(u₀)/m! · pᵐ`, the powers of `p` (no constant term)
//! truncated at degree `K`. Nothing here uses automatic differentiation, whose second-order
//! gradients are wrong in the pinned candle.
//!
//! The stack is laid out `(points, channels, P)`, partials in [`Partials`] order, in pixel units:
//! the value is `(f + 1)/2` and the derivatives are those of that function with respect to the
//! `[-1, 1]` image coordinates.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::InrError;
use super::siren_op::{LayerSlot, layer_slots};
use super::weights::SirenWeights;
use crate::fastmath;

/// Highest derivative order offered.
pub const MAX_ORDER: usize = 6;
/// Points per block: a block's coefficient buffers (`points · P × width`) stay in L2.
const BLOCK_POINTS: usize = 16;

/// How many partials there are up to `order`: `(K+1)(K+2)/2`.
pub fn num_partials(order: usize) -> usize {
    (order + 1) * (order + 2) / 2
}

/// The partial derivatives `∂ⁱ⁺ʲ/∂xⁱ∂yʲ` with `i + j ≤ order`, ordered by total order and then by
/// the power of `y`: `f, ∂x, ∂y, ∂xx, ∂xy, ∂yy, ∂xxx, …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partials {
    order: usize,
    indices: Vec<(usize, usize)>,
    /// `(k, a, b)`: the product of two polynomials without constant terms adds `x_a · y_b` to
    /// coefficient `k`.
    products: Vec<(usize, usize, usize)>,
}

impl Partials {
    /// All partials up to `order` (at most [`MAX_ORDER`]).
    pub fn new(order: usize) -> Result<Self, InrError> {
        if order > MAX_ORDER {
            return Err(InrError::Config(format!("derivative order must be at most {MAX_ORDER}, got {order}")));
        }
        let indices: Vec<(usize, usize)> = (0..=order).flat_map(|n| (0..=n).map(move |j| (n - j, j))).collect();
        let position = |i: usize, j: usize| indices.iter().position(|&p| p == (i, j));
        let mut products = Vec::new();
        for (k, &(i, j)) in indices.iter().enumerate() {
            for (a, &(ai, aj)) in indices.iter().enumerate().skip(1) {
                if ai <= i && aj <= j && (i - ai, j - aj) != (0, 0) {
                    let b = position(i - ai, j - aj).unwrap_or(0);
                    products.push((k, a, b));
                }
            }
        }
        Ok(Self { order, indices, products })
    }

    pub fn order(&self) -> usize {
        self.order
    }

    /// Number of partials, `(K+1)(K+2)/2`.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// `(i, j)` of every partial, in stack order.
    pub fn indices(&self) -> &[(usize, usize)] {
        &self.indices
    }

    /// `(k, a, b)`: in a product of two polynomials without constant terms, `x_a · y_b` adds to
    /// coefficient `k` (the GPU twin reads this table).
    pub fn products(&self) -> &[(usize, usize, usize)] {
        &self.products
    }

    /// Where `∂ⁱ⁺ʲ/∂xⁱ∂yʲ` sits in the stack, if within the order.
    pub fn index_of(&self, i: usize, j: usize) -> Option<usize> {
        self.indices.iter().position(|&p| p == (i, j))
    }

    /// `f`, `∂x`, `∂xy`, `∂xxyy`, …
    pub fn label(&self, k: usize) -> String {
        let (i, j) = self.indices[k];
        if i + j == 0 { "f".to_owned() } else { format!("∂{}{}", "x".repeat(i), "y".repeat(j)) }
    }

    /// `i!·j!`: from Taylor coefficient to derivative.
    fn factorial_factor(&self, k: usize) -> f32 {
        let (i, j) = self.indices[k];
        #[allow(clippy::cast_precision_loss)]
        let fact = |n: usize| (1..=n).product::<usize>() as f32;
        fact(i) * fact(j)
    }
}

/// The derivative stack of the SIREN at `coords` (`[x0, y0, x1, y1, …]`), `(points, channels, P)`.
pub fn derivative_stack(weights: &SirenWeights, partials: &Partials, coords: &[f32]) -> Result<Vec<f32>, InrError> {
    weights.validate().map_err(InrError::Config)?;
    if !coords.len().is_multiple_of(2) {
        return Err(InrError::Config("coordinates must come in (x, y) pairs".into()));
    }
    let slots = layer_slots(&weights.config);
    let params = weights.flatten();
    let channels = weights.config.out_features;
    let p = partials.len();
    let width = weights.config.width;
    let mut out = vec![0.0_f32; coords.len() / 2 * channels * p];
    let evaluator = Evaluator { slots: &slots, params: &params, omega: weights.config.omega0, partials };
    coords.par_chunks(BLOCK_POINTS * 2).zip(out.par_chunks_mut(BLOCK_POINTS * channels * p)).for_each_init(
        || Scratch::new(BLOCK_POINTS * p, width, partials.order),
        |scratch, (coords_block, out_block)| evaluator.block(coords_block, out_block, scratch),
    );
    Ok(out)
}

/// The stack at the pixel centres of a `width × height` grid, row-major.
pub fn stack_at_pixels(
    weights: &SirenWeights,
    partials: &Partials,
    width: u32,
    height: u32,
) -> Result<Vec<f32>, InrError> {
    derivative_stack(weights, partials, &super::pixel_coords(width, height))
}

struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    /// `pᵐ` for `m = 1..=K`, `P × width` each.
    powers: Vec<Vec<f32>>,
    /// `sin⁽ᵐ⁾(u₀)/m!` for `m = 1..=K`, `width` each.
    coefficients: Vec<f32>,
}

impl Scratch {
    fn new(rows: usize, width: usize, order: usize) -> Self {
        let per_point = rows / BLOCK_POINTS * width;
        Self {
            a: vec![0.0; rows * width],
            b: vec![0.0; rows * width],
            powers: vec![vec![0.0; per_point]; order],
            coefficients: vec![0.0; order * width],
        }
    }
}

struct Evaluator<'a> {
    slots: &'a [LayerSlot],
    params: &'a [f32],
    omega: f32,
    partials: &'a Partials,
}

impl Evaluator<'_> {
    fn block(&self, coords: &[f32], out: &mut [f32], scratch: &mut Scratch) {
        let points = coords.len() / 2;
        let p = self.partials.len();
        let rows = points * p;
        let Scratch { a, b, powers, coefficients } = scratch;
        // Input jets: x = x₀ + dx, y = y₀ + dy.
        let input = &mut a[..rows * 2];
        input.fill(0.0);
        for (point, xy) in coords.chunks_exact(2).enumerate() {
            let base = point * p * 2;
            input[base..base + 2].copy_from_slice(xy);
            if self.partials.order >= 1 {
                input[base + 2] = 1.0; // c₁₀ of x
                input[base + 2 * 2 + 1] = 1.0; // c₀₁ of y
            }
        }
        let (mut current, mut next) = (a, b);
        let last = self.slots.len() - 1;
        for (index, &slot) in self.slots.iter().enumerate() {
            let w = MatRef::from_row_major_slice(
                &self.params[slot.weight_offset..slot.bias_offset],
                slot.fan_out,
                slot.fan_in,
            );
            matmul(
                MatMut::from_row_major_slice_mut(&mut next[..rows * slot.fan_out], rows, slot.fan_out),
                Accum::Replace,
                MatRef::from_row_major_slice(&current[..rows * slot.fan_in], rows, slot.fan_in),
                w.transpose(),
                1.0,
                Par::Seq,
            );
            let bias = &self.params[slot.bias_offset..slot.bias_offset + slot.fan_out];
            for point in 0..points {
                let jet = &mut next[point * p * slot.fan_out..(point + 1) * p * slot.fan_out];
                jet[..slot.fan_out].iter_mut().zip(bias).for_each(|(v, b)| *v += b);
                if index != last {
                    self.sine(jet, slot.fan_out, powers, coefficients);
                }
            }
            std::mem::swap(&mut current, &mut next);
        }
        // `current` holds the output jets, `(points · P) × channels`.
        let channels = self.slots[last].fan_out;
        for point in 0..points {
            for k in 0..p {
                let scale = 0.5 * self.partials.factorial_factor(k);
                let offset = if k == 0 { 0.5 } else { 0.0 };
                for c in 0..channels {
                    out[(point * channels + c) * p + k] = current[(point * p + k) * channels + c] * scale + offset;
                }
            }
        }
    }

    /// `jet ← sin(ω·jet)` for one point's `P × width` coefficients.
    fn sine(&self, jet: &mut [f32], width: usize, powers: &mut [Vec<f32>], coefficients: &mut [f32]) {
        let order = self.partials.order;
        jet.iter_mut().for_each(|v| *v *= self.omega);
        if order == 0 {
            jet.iter_mut().for_each(|v| *v = fastmath::sin(*v));
            return;
        }
        // p¹ = the non-constant part; pᵐ = pᵐ⁻¹·p, truncated.
        let size = jet.len();
        powers[0][..size].copy_from_slice(jet);
        powers[0][..width].fill(0.0);
        for m in 1..order {
            let (done, rest) = powers.split_at_mut(m);
            let (prev, first) = (&done[m - 1][..size], &done[0][..size]);
            let power = &mut rest[0][..size];
            power.fill(0.0);
            for &(k, x, y) in &self.partials.products {
                let (i, j) = self.partials.indices[k];
                if i + j < m + 1 {
                    continue; // pᵐ⁺¹ has no terms below degree m + 1
                }
                let target = &mut power[k * width..(k + 1) * width];
                let (xs, ys) = (&prev[x * width..(x + 1) * width], &first[y * width..(y + 1) * width]);
                for ((t, &u), &v) in target.iter_mut().zip(xs).zip(ys) {
                    *t += u * v;
                }
            }
        }
        // sin⁽ᵐ⁾(u₀)/m! = (s, c, −s, −c, …)/m!, one row of `width` per m.
        let (values, rest) = jet.split_at_mut(width);
        for (n, v) in values.iter_mut().enumerate() {
            let (s, c) = fastmath::sin_cos(*v);
            *v = s;
            let mut factor = 1.0_f32;
            for (m, row) in coefficients.chunks_exact_mut(width).enumerate() {
                #[allow(clippy::cast_precision_loss)]
                {
                    factor /= (m + 1) as f32;
                }
                row[n] = factor * [c, -s, -c, s][m % 4];
            }
        }
        for (k, target) in rest.chunks_exact_mut(width).enumerate() {
            let k = k + 1;
            let (i, j) = self.partials.indices[k];
            target.fill(0.0);
            for (power, coefficient) in powers.iter().zip(coefficients.chunks_exact(width)).take(i + j) {
                for ((t, &q), &a) in target.iter_mut().zip(&power[k * width..(k + 1) * width]).zip(coefficient) {
                    *t += a * q;
                }
            }
        }
    }
}
