//! Image quality metrics.

use crate::image_io::ImageData;

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

/// Structural similarity (Wang et al. 2004) with an 11×11 Gaussian window (σ = 1.5),
/// `C₁ = (0.01)²`, `C₂ = (0.03)²` for signals in [0, 1], averaged over valid window positions and
/// channels. Images smaller than the window use the largest odd window that fits.
pub fn ssim(a: &ImageData, b: &ImageData) -> f64 {
    debug_assert_eq!((a.width, a.height, a.channels), (b.width, b.height, b.channels));
    let (w, h, channels) = (a.width as usize, a.height as usize, a.channels);
    let size = 11.min(w).min(h);
    let size = if size % 2 == 0 { size - 1 } else { size }.max(1);
    let sigma = 1.5_f64;
    #[allow(clippy::cast_precision_loss)]
    let half = (size / 2) as f64;
    #[allow(clippy::cast_precision_loss)]
    let kernel: Vec<f64> = (0..size).map(|i| (-((i as f64 - half).powi(2)) / (2.0 * sigma * sigma)).exp()).collect();
    let norm: f64 = kernel.iter().sum();
    let kernel: Vec<f64> = kernel.iter().map(|k| k / norm).collect();
    let (c1, c2) = (0.01_f64.powi(2), 0.03_f64.powi(2));
    let (out_w, out_h) = (w - size + 1, h - size + 1);
    let mut total = 0.0;
    for c in 0..channels {
        let px = |img: &ImageData, x: usize, y: usize| f64::from(img.pixels[(y * w + x) * channels + c]);
        // Separable filtering of x, y, x², y², xy: horizontal pass, then vertical.
        let mut horizontal = vec![[0.0_f64; 5]; out_w * h];
        for y in 0..h {
            for x in 0..out_w {
                let mut acc = [0.0; 5];
                for (k, &g) in kernel.iter().enumerate() {
                    let (u, v) = (px(a, x + k, y), px(b, x + k, y));
                    for (s, val) in acc.iter_mut().zip([u, v, u * u, v * v, u * v]) {
                        *s += g * val;
                    }
                }
                horizontal[y * out_w + x] = acc;
            }
        }
        for y in 0..out_h {
            for x in 0..out_w {
                let mut m = [0.0; 5];
                for (k, &g) in kernel.iter().enumerate() {
                    for (s, val) in m.iter_mut().zip(horizontal[(y + k) * out_w + x]) {
                        *s += g * val;
                    }
                }
                let [mu_a, mu_b, aa, bb, ab] = m;
                let (var_a, var_b, cov) = (aa - mu_a * mu_a, bb - mu_b * mu_b, ab - mu_a * mu_b);
                total += ((2.0 * mu_a * mu_b + c1) * (2.0 * cov + c2))
                    / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2));
            }
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let count = (out_w * out_h * channels).max(1) as f64;
    total / count
}

/// Mean and (population) standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    #[allow(clippy::cast_precision_loss)]
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}
