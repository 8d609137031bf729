//! The fast sine and cosine against `f64`'s over a wide range, and exact values at the quadrant points.

use sparsefield::compute::fastmath::sin_cos;

#[test]
fn matches_f64_reference_over_a_wide_range() {
    let mut worst_sin = 0.0_f64;
    let mut worst_cos = 0.0_f64;
    let n = 2_000_001;
    for i in 0..n {
        // Covers [-2000, 2000] densely, including multiples of π/4 boundaries.
        let x = -2000.0 + 4000.0 * f64::from(i) / f64::from(n - 1);
        #[allow(clippy::cast_possible_truncation)]
        let xf = x as f32;
        let (s, c) = sin_cos(xf);
        let xr = f64::from(xf);
        worst_sin = worst_sin.max((f64::from(s) - xr.sin()).abs());
        worst_cos = worst_cos.max((f64::from(c) - xr.cos()).abs());
    }
    // f32 holds ~7 digits; a few ulp of 1.0 is ~3e-7.
    assert!(worst_sin < 1e-6, "sin error {worst_sin}");
    assert!(worst_cos < 1e-6, "cos error {worst_cos}");
}

#[test]
fn exact_at_quadrant_points() {
    assert_eq!(sin_cos(0.0), (0.0, 1.0));
    let (s, c) = sin_cos(std::f32::consts::FRAC_PI_2);
    assert!((s - 1.0).abs() < 1e-7 && c.abs() < 1e-7);
    let (s, c) = sin_cos(-std::f32::consts::PI);
    assert!(s.abs() < 1e-6 && (c + 1.0).abs() < 1e-7);
}
