//! Volume rendering by alpha compositing: for samples `i` along a ray with density `σᵢ`, colour
//! `cᵢ` and step `δᵢ`, `αᵢ = 1 − exp(−σᵢδᵢ)`, transmittance `Tᵢ = Πⱼ<ᵢ (1 − αⱼ)`, weight
//! `wᵢ = Tᵢαᵢ`; the ray's colour is `Σ wᵢcᵢ` and its opacity `Σ wᵢ`.
//!
//! Rays are packed (nerfacc's layout): the samples of ray `r` are `offsets[r]..offsets[r+1]` of
//! flat arrays, so rays with few samples after empty-space skipping cost little. The compositing
//! is a candle `CustomOp2` of `(σ, rgb)` with the closed-form backward
//! `∂L/∂σᵢ = δᵢ (Tᵢ₊₁ gᵢ − Σₖ>ᵢ wₖ gₖ)`, `gₖ = ∂L/∂C · cₖ + ∂L/∂A (+ ∂L/∂D · tₖ with depth)`.

use std::sync::Arc;

use crate::cpu_f32_slice;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

/// Samples along a batch of rays, packed.
#[derive(Clone, Debug, Default)]
pub struct PackedSamples {
    /// `offsets[r]..offsets[r + 1]` are ray `r`'s samples; `len = num_rays + 1`.
    pub offsets: Vec<usize>,
    /// Distance along the ray of each sample's midpoint.
    pub t: Vec<f32>,
    /// Length of each sample's interval.
    pub deltas: Vec<f32>,
    /// World positions of the samples, `[x, y, z]` each.
    pub positions: Vec<f32>,
    /// Unit direction of each sample's ray, `[x, y, z]` each.
    pub directions: Vec<f32>,
}

impl PackedSamples {
    pub fn num_rays(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn num_samples(&self) -> usize {
        self.t.len()
    }

    pub fn range(&self, ray: usize) -> std::ops::Range<usize> {
        self.offsets[ray]..self.offsets[ray + 1]
    }
}

/// One ray's composited result.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Composited {
    pub rgb: [f32; 3],
    pub opacity: f32,
    /// Expected distance `Σ wᵢtᵢ` (not divided by the opacity).
    pub depth: f32,
}

/// Composites one ray's samples front to back.
pub fn composite(sigmas: &[f32], rgbs: &[f32], deltas: &[f32], t: &[f32]) -> Composited {
    let mut out = Composited::default();
    let mut transmittance = 1.0_f32;
    for (i, ((&sigma, &delta), &ti)) in sigmas.iter().zip(deltas).zip(t).enumerate() {
        let alpha = 1.0 - (-sigma.max(0.0) * delta).exp();
        let w = transmittance * alpha;
        for c in 0..3 {
            out.rgb[c] += w * rgbs[3 * i + c];
        }
        out.opacity += w;
        out.depth += w * ti;
        transmittance *= 1.0 - alpha;
    }
    out
}

/// The compositing of a packed batch: `(σ (N,), rgb (N, 3)) → (R, 4)` (rgb, opacity per ray),
/// or `(R, 5)` with the expected distance `Σ wᵢtᵢ` last when `depth` is set.
pub struct CompositeOp {
    pub samples: Arc<PackedSamples>,
    pub depth: bool,
}

impl CompositeOp {
    /// Colour and opacity per ray.
    pub fn new(samples: Arc<PackedSamples>) -> Self {
        Self { samples, depth: false }
    }

    /// Colour, opacity and expected distance per ray.
    pub fn with_depth(samples: Arc<PackedSamples>) -> Self {
        Self { samples, depth: true }
    }

    fn columns(&self) -> usize {
        if self.depth { 5 } else { 4 }
    }

    fn check(&self, sigmas: &[f32], rgbs: &[f32]) -> Result<()> {
        let n = self.samples.num_samples();
        if sigmas.len() != n || rgbs.len() != 3 * n || self.samples.offsets.last().copied().unwrap_or(0) != n {
            candle_core::bail!(
                "compositing: {} densities and {} colours for {} packed samples",
                sigmas.len(),
                rgbs.len() / 3,
                n
            );
        }
        Ok(())
    }
}

impl CustomOp2 for CompositeOp {
    fn name(&self) -> &'static str {
        "composite"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let sigmas = f32_slice_of(s1, l1, "densities")?;
        let rgbs = f32_slice_of(s2, l2, "colours")?;
        self.check(sigmas, rgbs)?;
        let samples = &self.samples;
        let columns = self.columns();
        let mut out = vec![0.0_f32; samples.num_rays() * columns];
        out.par_chunks_mut(columns).enumerate().for_each(|(r, o)| {
            let range = samples.range(r);
            let c = composite(
                &sigmas[range.clone()],
                &rgbs[3 * range.start..3 * range.end],
                &samples.deltas[range.clone()],
                &samples.t[range],
            );
            o[..4].copy_from_slice(&[c.rgb[0], c.rgb[1], c.rgb[2], c.opacity]);
            if columns == 5 {
                o[4] = c.depth;
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((samples.num_rays(), columns))))
    }

    fn bwd(
        &self,
        sigmas: &Tensor,
        rgbs: &Tensor,
        _res: &Tensor,
        grad_out: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_out = grad_out.contiguous()?;
        let (sigmas_c, rgbs_c) = (sigmas.contiguous()?, rgbs.contiguous()?);
        let (g_storage, g_layout) = grad_out.storage_and_layout();
        let (s_storage, s_layout) = sigmas_c.storage_and_layout();
        let (c_storage, c_layout) = rgbs_c.storage_and_layout();
        let (Storage::Cpu(g_cpu), Storage::Cpu(s_cpu), Storage::Cpu(c_cpu)) = (&*g_storage, &*s_storage, &*c_storage)
        else {
            candle_core::bail!("compositing runs on the CPU only");
        };
        let grad = f32_slice_of(g_cpu, g_layout, "output gradient")?;
        let sig = f32_slice_of(s_cpu, s_layout, "densities")?;
        let col = f32_slice_of(c_cpu, c_layout, "colours")?;
        self.check(sig, col)?;
        let samples = &self.samples;
        let columns = self.columns();
        if grad.len() != samples.num_rays() * columns {
            candle_core::bail!("compositing backward: gradient of the wrong size");
        }
        let n = samples.num_samples();
        let mut grad_sigma = vec![0.0_f32; n];
        let mut grad_rgb = vec![0.0_f32; 3 * n];
        // Split the flat outputs at ray boundaries so rays run in parallel.
        let mut sigma_parts = Vec::with_capacity(samples.num_rays());
        let mut rgb_parts = Vec::with_capacity(samples.num_rays());
        let (mut rest_s, mut rest_c) = (grad_sigma.as_mut_slice(), grad_rgb.as_mut_slice());
        for r in 0..samples.num_rays() {
            let len = samples.range(r).len();
            let (a, b) = rest_s.split_at_mut(len);
            let (c, d) = rest_c.split_at_mut(3 * len);
            sigma_parts.push(a);
            rgb_parts.push(c);
            rest_s = b;
            rest_c = d;
        }
        sigma_parts.into_par_iter().zip(rgb_parts).enumerate().for_each(|(r, (gs, gc))| {
            let range = samples.range(r);
            let g = &grad[columns * r..columns * (r + 1)];
            let g_rgb = [g[0], g[1], g[2]];
            let g_opacity = g[3];
            let g_depth = if columns == 5 { g[4] } else { 0.0 };
            let sig = &sig[range.clone()];
            let col = &col[3 * range.start..3 * range.end];
            let ts = &samples.t[range.clone()];
            let deltas = &samples.deltas[range];
            // Forward again: weights and per-sample `g`, then suffix sums of `w·g`.
            let mut transmittance = 1.0_f32;
            let mut total = 0.0_f32; // Σ wₖgₖ over all samples
            for (i, (&sigma, &delta)) in sig.iter().zip(deltas).enumerate() {
                let alpha = 1.0 - (-sigma.max(0.0) * delta).exp();
                let w = transmittance * alpha;
                let c = &col[3 * i..3 * i + 3];
                let g = g_rgb[0] * c[0] + g_rgb[1] * c[1] + g_rgb[2] * c[2] + g_opacity + g_depth * ts[i];
                total += w * g;
                for k in 0..3 {
                    gc[3 * i + k] = w * g_rgb[k];
                }
                transmittance *= 1.0 - alpha;
            }
            let mut transmittance = 1.0_f32;
            let mut prefix = 0.0_f32; // Σ wₖgₖ over k ≤ i
            for (i, (&sigma, &delta)) in sig.iter().zip(deltas).enumerate() {
                let alpha = 1.0 - (-sigma.max(0.0) * delta).exp();
                let w = transmittance * alpha;
                let c = &col[3 * i..3 * i + 3];
                let g = g_rgb[0] * c[0] + g_rgb[1] * c[1] + g_rgb[2] * c[2] + g_opacity + g_depth * ts[i];
                prefix += w * g;
                transmittance *= 1.0 - alpha;
                let after = total - prefix;
                gs[i] = if sigma > 0.0 { delta * (transmittance * g - after) } else { 0.0 };
            }
        });
        let (d_s, d_c) = (sigmas.device().clone(), rgbs.device().clone());
        drop((g_storage, s_storage, c_storage));
        Ok((Some(Tensor::from_vec(grad_sigma, n, &d_s)?), Some(Tensor::from_vec(grad_rgb, (n, 3), &d_c)?)))
    }
}

fn f32_slice_of<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    cpu_f32_slice(storage, layout, "compositing", what)
}
