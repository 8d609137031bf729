//! The depth ranking loss: for pixel pairs whose rough depths say "a is nearer than b", the
//! rendered depths should keep that order by a margin:
//! `L = mean over pairs of max(0, D_a − D_b + margin)`. Only the order of the rough depth is
//! used, so a monocular estimate with an unknown scale and shift (or an inflated silhouette)
//! guides the shape without being regressed.

use candle_core::Tensor;
use rand::Rng;

/// Pixel pairs `(near[k], far[k])` whose rough depths differ by more than `min_gap` (a fraction
/// of the depth range inside the mask), drawn among mask pixels with a finite depth. Fewer than
/// `count` pairs come back when the depth is nearly flat.
pub fn sample_pairs(
    depth: &[f32],
    mask: &[f32],
    count: usize,
    min_gap: f32,
    rng: &mut impl Rng,
) -> (Vec<usize>, Vec<usize>) {
    let candidates: Vec<usize> = (0..depth.len()).filter(|&k| mask[k] > 0.5 && depth[k].is_finite()).collect();
    let (mut near, mut far) = (Vec::with_capacity(count), Vec::with_capacity(count));
    if candidates.len() < 2 {
        return (near, far);
    }
    let lo = candidates.iter().map(|&k| depth[k]).fold(f32::INFINITY, f32::min);
    let hi = candidates.iter().map(|&k| depth[k]).fold(f32::NEG_INFINITY, f32::max);
    let gap = min_gap * (hi - lo);
    for _ in 0..4 * count {
        if near.len() == count {
            break;
        }
        let a = candidates[rng.random_range(0..candidates.len())];
        let b = candidates[rng.random_range(0..candidates.len())];
        let (da, db) = (depth[a], depth[b]);
        if (da - db).abs() <= gap.max(f32::EPSILON) {
            continue;
        }
        if da < db {
            near.push(a);
            far.push(b);
        } else {
            near.push(b);
            far.push(a);
        }
    }
    (near, far)
}

/// The loss and its gradients with respect to the near and far rendered depths (closed form:
/// `±1/P` on the pairs that violate the margin, 0 elsewhere).
pub fn ranking_loss(near_depth: &[f32], far_depth: &[f32], margin: f32) -> (f32, Vec<f32>, Vec<f32>) {
    let p = near_depth.len().max(1);
    #[allow(clippy::cast_precision_loss)]
    let inv = 1.0 / p as f32;
    let mut loss = 0.0;
    let mut g_near = vec![0.0; near_depth.len()];
    let mut g_far = vec![0.0; far_depth.len()];
    for (k, (&a, &b)) in near_depth.iter().zip(far_depth).enumerate() {
        let violation = a - b + margin;
        if violation > 0.0 {
            loss += violation * inv;
            g_near[k] = inv;
            g_far[k] = -inv;
        }
    }
    (loss, g_near, g_far)
}

/// The same loss on candle tensors of rendered depths `(P,)`, differentiable.
pub fn ranking_loss_tensor(near_depth: &Tensor, far_depth: &Tensor, margin: f64) -> candle_core::Result<Tensor> {
    ((near_depth - far_depth)? + margin)?.relu()?.mean_all()
}
