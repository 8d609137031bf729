//! Pixel-domain image filters and degradations: the targets INR operators learn to mimic, the
//! corruptions they learn to undo, and the simple baselines they are compared with.
//!
//! Borders replicate the edge pixel. All filters keep the image's size and channel count.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::image_io::ImageData;

/// Normalised Gaussian weights on `[-r, r]` with `r = ⌈3σ⌉` (at least 1).
pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let sigma = sigma.max(1e-3);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let radius = ((3.0 * sigma).ceil() as usize).max(1);
    #[allow(clippy::cast_precision_loss)]
    let weights: Vec<f32> = (0..=2 * radius)
        .map(|k| {
            let x = k as f32 - radius as f32;
            (-x * x / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let sum: f32 = weights.iter().sum();
    weights.into_iter().map(|w| w / sum).collect()
}

/// Convolves rows, then columns, with the odd-length `kernel` (replicated borders).
pub fn separable(image: &ImageData, kernel: &[f32]) -> ImageData {
    let (w, h, c) = (image.width as usize, image.height as usize, image.channels);
    let radius = kernel.len() / 2;
    let clamp = |v: isize, n: usize| -> usize { v.clamp(0, n.cast_signed() - 1).cast_unsigned() };
    let mut rows = vec![0.0_f32; image.pixels.len()];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                let mut sum = 0.0;
                for (k, &weight) in kernel.iter().enumerate() {
                    let sx = clamp(x.cast_signed() + k.cast_signed() - radius.cast_signed(), w);
                    sum += weight * image.pixels[(y * w + sx) * c + ch];
                }
                rows[(y * w + x) * c + ch] = sum;
            }
        }
    }
    let mut out = vec![0.0_f32; image.pixels.len()];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                let mut sum = 0.0;
                for (k, &weight) in kernel.iter().enumerate() {
                    let sy = clamp(y.cast_signed() + k.cast_signed() - radius.cast_signed(), h);
                    sum += weight * rows[(sy * w + x) * c + ch];
                }
                out[(y * w + x) * c + ch] = sum;
            }
        }
    }
    ImageData { pixels: out, ..image.clone() }
}

/// Gaussian blur with standard deviation `sigma` pixels.
pub fn gaussian_blur(image: &ImageData, sigma: f32) -> ImageData {
    separable(image, &gaussian_kernel(sigma))
}

/// Mean over the `(2r+1)²` box around each pixel.
pub fn box_blur(image: &ImageData, radius: u32) -> ImageData {
    let n = 2 * radius as usize + 1;
    #[allow(clippy::cast_precision_loss)]
    let weight = 1.0 / n as f32;
    separable(image, &vec![weight; n])
}

/// The 3×3 binomial filter `[1 2 1]/4 ⊗ [1 2 1]/4`: the smallest Gaussian-like blur.
pub fn binomial3(image: &ImageData) -> ImageData {
    separable(image, &[0.25, 0.5, 0.25])
}

/// Median of the 3×3 neighbourhood, per channel.
pub fn median3(image: &ImageData) -> ImageData {
    let (w, h, c) = (image.width as usize, image.height as usize, image.channels);
    let mut out = vec![0.0_f32; image.pixels.len()];
    let mut window = [0.0_f32; 9];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                let mut k = 0;
                for dy in [-1_isize, 0, 1] {
                    for dx in [-1_isize, 0, 1] {
                        let sx = (x.cast_signed() + dx).clamp(0, w.cast_signed() - 1).cast_unsigned();
                        let sy = (y.cast_signed() + dy).clamp(0, h.cast_signed() - 1).cast_unsigned();
                        window[k] = image.pixels[(sy * w + sx) * c + ch];
                        k += 1;
                    }
                }
                window.sort_unstable_by(f32::total_cmp);
                out[(y * w + x) * c + ch] = window[4];
            }
        }
    }
    ImageData { pixels: out, ..image.clone() }
}

/// `image + amount·(image − blur_σ(image))`, clamped to [0, 1]: the classic sharpening filter.
pub fn unsharp_mask(image: &ImageData, sigma: f32, amount: f32) -> ImageData {
    let blurred = gaussian_blur(image, sigma);
    let pixels =
        image.pixels.iter().zip(&blurred.pixels).map(|(&v, &b)| (v + amount * (v - b)).clamp(0.0, 1.0)).collect();
    ImageData { pixels, ..image.clone() }
}

/// Adds independent Gaussian noise of standard deviation `std` (pixel units) and clamps to
/// [0, 1], as a sensor would. Deterministic for a seed.
pub fn add_gaussian_noise(image: &ImageData, std: f32, seed: u64) -> ImageData {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pixels = image
        .pixels
        .iter()
        .map(|&v| {
            // Box–Muller from two uniforms in (0, 1].
            let (u1, u2): (f32, f32) = (1.0 - rng.random::<f32>(), rng.random());
            let normal = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
            (v + std * normal).clamp(0.0, 1.0)
        })
        .collect();
    ImageData { pixels, ..image.clone() }
}

/// A mask of thin (one pixel wide) random scribbles — straight strokes at random angles — that
/// covers about `coverage` of the image. `true` marks a corrupted pixel.
pub fn scribble_mask(width: u32, height: u32, coverage: f32, seed: u64) -> Vec<bool> {
    let (w, h) = (width as usize, height as usize);
    let mut mask = vec![false; w * h];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    #[allow(clippy::cast_precision_loss)]
    let target = (coverage.clamp(0.0, 0.5) * (w * h) as f32).round();
    let mut covered = 0.0_f32;
    let mut strokes = 0;
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    while covered < target && strokes < 10_000 {
        strokes += 1;
        let (x0, y0) = (rng.random_range(0.0..w as f32), rng.random_range(0.0..h as f32));
        let angle = rng.random_range(0.0..std::f32::consts::PI);
        let length = rng.random_range(0.1..0.4) * w.max(h) as f32;
        let steps = (length * 2.0) as usize;
        for s in 0..steps {
            let t = s as f32 * 0.5;
            let (x, y) = (x0 + t * angle.cos(), y0 + t * angle.sin());
            if x < 0.0 || y < 0.0 || x >= w as f32 || y >= h as f32 {
                break;
            }
            let index = y as usize * w + x as usize;
            if !mask[index] {
                mask[index] = true;
                covered += 1.0;
            }
        }
    }
    mask
}

/// Sets the masked pixels to `value` in every channel.
pub fn apply_mask(image: &ImageData, mask: &[bool], value: f32) -> ImageData {
    let mut out = image.clone();
    for (px, &masked) in out.pixels.chunks_exact_mut(image.channels).zip(mask) {
        if masked {
            px.fill(value);
        }
    }
    out
}

/// The `width × height` window at `(x, y)`, shrunk where it would leave the image.
pub fn crop(image: &ImageData, x: u32, y: u32, width: u32, height: u32) -> ImageData {
    let c = image.channels;
    let (x, y) = (x.min(image.width - 1), y.min(image.height - 1));
    let (width, height) = (width.clamp(1, image.width - x), height.clamp(1, image.height - y));
    let mut pixels = Vec::with_capacity(width as usize * height as usize * c);
    for row in y..y + height {
        let start = (row as usize * image.width as usize + x as usize) * c;
        pixels.extend_from_slice(&image.pixels[start..start + width as usize * c]);
    }
    ImageData { width, height, channels: c, pixels }
}
