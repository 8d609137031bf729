//! Neural tangent kernels of one-hidden-layer ReLU networks with trainable bias:
//! `f(x) = (1/√m) Σ_r a_r σ(⟨w_r, x⟩ − b_r)`, `w_r ~ N(0, I)`, `a_r = ±1` fixed, `b_r = B` at
//! initialization, inputs on the unit sphere.
//!
//! The empirical kernel (gradients with respect to `w` and `b`) is
//! `K_m(x, x') = (1/m) Σ_r (⟨x, x'⟩ + 1) · 1[⟨w_r, x⟩ > B] · 1[⟨w_r, x'⟩ > B]`; as `m → ∞` it tends
//! to `K(x, x') = (⟨x, x'⟩ + 1) · P(Z₁ > B, Z₂ > B)` with `(Z₁, Z₂)` standard bivariate normal of
//! correlation `⟨x, x'⟩`. With a pruning mask `M` on the weights, the `⟨x, x'⟩` of neuron `r`
//! becomes `⟨M_r ⊙ x, x'⟩` and its activation uses `w_r ⊙ M_r`.

pub mod kernel;

/// Problems with NTK settings or data.
#[derive(Debug, thiserror::Error)]
pub enum NtkError {
    #[error("invalid settings: {0}")]
    Config(String),
    #[error("the eigendecomposition did not converge")]
    Eigen,
}
