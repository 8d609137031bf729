//! Optimisers over flat parameter vectors, shared by the fused training loops.

use rayon::prelude::*;

/// Adam (Kingma & Ba) over a flat parameter vector: a single parallel pass per step, where
/// candle's optimizer allocates several full-size tensors per variable.
#[derive(Clone, Debug)]
pub struct FlatAdam {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl FlatAdam {
    pub fn new(num_params: usize, beta1: f32, beta2: f32, eps: f32) -> Self {
        Self { beta1, beta2, eps, m: vec![0.0; num_params], v: vec![0.0; num_params], t: 0 }
    }

    /// [`FlatAdam::step`] on the calling thread, for small networks trained side by side.
    pub fn step_seq(&mut self, params: &mut [f32], grads: &[f32], lr: f32) {
        let k = self.advance(lr);
        update(params, grads, &mut self.m, &mut self.v, k);
    }

    /// `params ← params − lr · m̂ / (√v̂ + ε)`.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f32) {
        let k = self.advance(lr);
        params
            .par_chunks_mut(1 << 14)
            .zip(grads.par_chunks(1 << 14))
            .zip(self.m.par_chunks_mut(1 << 14).zip(self.v.par_chunks_mut(1 << 14)))
            .for_each(|((p, g), (m, v))| update(p, g, m, v, k));
    }

    /// [`FlatAdam::step`] with the gradient `grads ⊙ factors`, formed on the fly (the scores of
    /// masked networks, whose gradient is their weights' times the weights).
    pub fn step_product(&mut self, params: &mut [f32], grads: &[f32], factors: &[f32], lr: f32) {
        let k = self.advance(lr);
        const CHUNK: usize = 1 << 14;
        params
            .par_chunks_mut(CHUNK)
            .zip(grads.par_chunks(CHUNK).zip(factors.par_chunks(CHUNK)))
            .zip(self.m.par_chunks_mut(CHUNK).zip(self.v.par_chunks_mut(CHUNK)))
            .for_each(|((p, (g, f)), (m, v))| update_product(p, g, f, m, v, k));
    }

    /// Counts a step and returns the update's coefficients.
    fn advance(&mut self, lr: f32) -> [f32; 6] {
        self.t = self.t.saturating_add(1);
        let (b1, b2) = (self.beta1, self.beta2);
        [b1, b2, self.eps, 1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t), lr]
    }
}

/// [`update`] with the gradient `grads ⊙ factors`.
fn update_product(params: &mut [f32], grads: &[f32], factors: &[f32], m: &mut [f32], v: &mut [f32], k: [f32; 6]) {
    for ((((p, &g), &f), m), v) in params.iter_mut().zip(grads).zip(factors).zip(m.iter_mut()).zip(v.iter_mut()) {
        adam(p, g * f, m, v, k);
    }
}

/// One Adam update of a slice; `k` is `[β₁, β₂, ε, 1 − β₁ᵗ, 1 − β₂ᵗ, lr]`.
fn update(params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], k: [f32; 6]) {
    for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m.iter_mut()).zip(v.iter_mut()) {
        adam(p, g, m, v, k);
    }
}

/// One parameter's Adam update: `p ← p − lr · m̂ / (√v̂ + ε)`.
#[inline(always)]
fn adam(p: &mut f32, g: f32, m: &mut f32, v: &mut f32, [b1, b2, eps, c1, c2, lr]: [f32; 6]) {
    *m = b1 * *m + (1.0 - b1) * g;
    *v = b2 * *v + (1.0 - b2) * g * g;
    *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
}
