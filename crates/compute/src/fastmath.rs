//! Vectorisable single-precision sine and cosine for the hot loops of sine networks.
//!
//! `std`'s `f32::sin` calls libm once per element, which dominates a SIREN training step. Here the
//! argument is reduced to [-π/4, π/4] with a three-part π/2 (Cody–Waite) and the quadrant is
//! applied with bit operations, so loops over slices compile to SIMD code. The polynomials are
//! the minimax ones of Cephes' `sinf`/`cosf`. Accurate to a few ulp for |x| < 1e5 (tested against
//! `f64::sin`).

const FRAC_2_PI: f32 = std::f32::consts::FRAC_2_PI;
// π/2 = PIO2_A + PIO2_B + PIO2_C; PIO2_A has 8 significant bits so k·PIO2_A is exact.
const PIO2_A: f32 = 1.570_312_5;
const PIO2_B: f32 = 4.837_513e-4;
const PIO2_C: f32 = 7.549_79e-8;
/// Adding and subtracting 1.5·2²³ rounds an f32 to the nearest integer without a branch.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// Returns `(sin x, cos x)`.
#[inline(always)]
pub fn sin_cos(x: f32) -> (f32, f32) {
    let shifted = x * FRAC_2_PI + ROUND_MAGIC;
    let k = shifted - ROUND_MAGIC;
    // The low mantissa bits of `shifted` hold k + 2²² in binary, so its two lowest bits are
    // k mod 4: the quadrant, without a float-to-int conversion (which would not vectorise).
    let quadrant = shifted.to_bits();
    let r = ((x - k * PIO2_A) - k * PIO2_B) - k * PIO2_C;
    let z = r * r;
    let s = r + r * z * ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 1.666_665_5e-1);
    let c = 1.0 - 0.5 * z + z * z * ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2);
    let swap = quadrant & 1 != 0;
    let (a, b) = if swap { (c, s) } else { (s, c) };
    let sin_sign = (quadrant & 2) << 30;
    let cos_sign = (quadrant.wrapping_add(1) & 2) << 30;
    (f32::from_bits(a.to_bits() ^ sin_sign), f32::from_bits(b.to_bits() ^ cos_sign))
}

#[inline(always)]
pub fn sin(x: f32) -> f32 {
    sin_cos(x).0
}

#[inline(always)]
pub fn cos(x: f32) -> f32 {
    sin_cos(x).1
}
