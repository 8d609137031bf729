//! Colour maps for derivative and error images: the CPU twins of `heat` and `diverging` in
//! `shaders/inr_display.wgsl` (same stops), for images written by the command line.

const HEAT_STOPS: [[f32; 3]; 5] =
    [[0.0, 0.0, 0.02], [0.33, 0.06, 0.43], [0.80, 0.22, 0.27], [0.98, 0.65, 0.10], [0.99, 0.98, 0.75]];
const DIVERGING_NEGATIVE: [f32; 3] = [0.13, 0.35, 0.80];
const DIVERGING_ZERO: [f32; 3] = [0.97, 0.97, 0.97];
const DIVERGING_POSITIVE: [f32; 3] = [0.80, 0.15, 0.15];

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/// Dark to bright for `t ∈ [0, 1]` (clamped).
pub fn heat(t: f32) -> [f32; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) * 4.0 };
    // t is in [0, 4]: the truncation picks the segment.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = (t as usize).min(3);
    #[allow(clippy::cast_precision_loss)]
    let frac = t - i as f32;
    mix(HEAT_STOPS[i], HEAT_STOPS[i + 1], frac)
}

/// Blue (negative), white (zero), red (positive) for `t ∈ [-1, 1]` (clamped).
pub fn diverging(t: f32) -> [f32; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(-1.0, 1.0) };
    if t < 0.0 { mix(DIVERGING_ZERO, DIVERGING_NEGATIVE, -t) } else { mix(DIVERGING_ZERO, DIVERGING_POSITIVE, t) }
}
