//! Image quality metrics.

use crate::compute::image_io::ImageData;

/// Mean squared error over all pixels and channels.
///
/// # Panics
/// Never on images of equal shape; the caller guarantees that (debug-asserted).
pub fn mse(a: &ImageData, b: &ImageData) -> f64 {
    debug_assert_eq!((a.width, a.height, a.channels), (b.width, b.height, b.channels));
    let n = a.pixels.len().max(1);
    let sum: f64 = a
        .pixels
        .iter()
        .zip(&b.pixels)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let n = n as f64;
    sum / n
}

/// Peak signal-to-noise ratio in dB for signals in [0, 1]: `10·log10(1 / mse)`.
/// Identical images give `f64::INFINITY`.
pub fn psnr_from_mse(mse: f64) -> f64 {
    if mse <= 0.0 { f64::INFINITY } else { -10.0 * mse.log10() }
}

/// PSNR of `a` against `b`, both in [0, 1].
pub fn psnr_db(a: &ImageData, b: &ImageData) -> f64 {
    psnr_from_mse(mse(a, b))
}
