//! What may happen to a rendered view before its secret is recovered, each at a strength a slider
//! or a sweep sets: Gaussian noise, Gaussian blur, JPEG compression, a crop, a rotation and a
//! downscale. Every attack returns an image of the input's size (a decoder reads a fixed size).

use crate::filters;
use crate::image_io::{ImageData, to_u8};

/// Why an attack could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    #[error("attacks take gray or RGB images; this one has {0} channels")]
    Channels(usize),
    #[error("JPEG round trip failed: {0}")]
    Jpeg(String),
}

/// One attack and its strength.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Attack {
    /// Independent Gaussian noise of this standard deviation (pixel values in [0, 1]), clamped.
    Noise { sigma: f32 },
    /// Gaussian blur of this standard deviation in pixels.
    Blur { sigma: f32 },
    /// A JPEG round trip at this quality (1–100).
    Jpeg { quality: u8 },
    /// Removes this fraction of the area: the centred window of √(1 − fraction) of each side,
    /// scaled back to the full size.
    Crop { fraction: f32 },
    /// A rotation by this many degrees about the centre (counter-clockwise on screen); corners
    /// take the nearest edge's colour.
    Rotate { degrees: f32 },
    /// Scaled down by this factor (at least 1) and back up.
    Downscale { factor: f32 },
}

impl Attack {
    /// Each kind at no strength (what a sweep starts from).
    pub const KINDS: [Self; 6] = [
        Self::Noise { sigma: 0.0 },
        Self::Blur { sigma: 0.0 },
        Self::Jpeg { quality: 100 },
        Self::Crop { fraction: 0.0 },
        Self::Rotate { degrees: 0.0 },
        Self::Downscale { factor: 1.0 },
    ];

    /// The attack's kind, e.g. "jpeg" (CSV columns, CLI names).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Noise { .. } => "noise",
            Self::Blur { .. } => "blur",
            Self::Jpeg { .. } => "jpeg",
            Self::Crop { .. } => "crop",
            Self::Rotate { .. } => "rotate",
            Self::Downscale { .. } => "downscale",
        }
    }

    /// The strength as one number: σ, σ in px, quality, area fraction, degrees or factor.
    pub fn strength(&self) -> f64 {
        match *self {
            Self::Noise { sigma } | Self::Blur { sigma } => f64::from(sigma),
            Self::Jpeg { quality } => f64::from(quality),
            Self::Crop { fraction } => f64::from(fraction),
            Self::Rotate { degrees } => f64::from(degrees),
            Self::Downscale { factor } => f64::from(factor),
        }
    }

    /// What [`Attack::strength`] measures, for axes.
    pub fn strength_name(&self) -> &'static str {
        match self {
            Self::Noise { .. } => "sigma",
            Self::Blur { .. } => "sigma (px)",
            Self::Jpeg { .. } => "quality",
            Self::Crop { .. } => "area removed",
            Self::Rotate { .. } => "degrees",
            Self::Downscale { .. } => "factor",
        }
    }

    /// The same kind at `strength` (see [`Attack::strength`]; a quality is rounded, 1–100).
    #[must_use]
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub fn with_strength(&self, strength: f64) -> Self {
        let s = strength as f32;
        match self {
            Self::Noise { .. } => Self::Noise { sigma: s.max(0.0) },
            Self::Blur { .. } => Self::Blur { sigma: s.max(0.0) },
            Self::Jpeg { .. } => Self::Jpeg { quality: strength.round().clamp(1.0, 100.0) as u8 },
            Self::Crop { .. } => Self::Crop { fraction: s.clamp(0.0, 0.99) },
            Self::Rotate { .. } => Self::Rotate { degrees: s },
            Self::Downscale { .. } => Self::Downscale { factor: s.max(1.0) },
        }
    }

    /// The strengths a robustness sweep visits, weakest (none) first.
    pub fn sweep_strengths(&self) -> &'static [f64] {
        match self {
            Self::Noise { .. } => &[0.0, 0.01, 0.02, 0.05, 0.1, 0.2],
            Self::Blur { .. } => &[0.0, 0.5, 1.0, 1.5, 2.0, 3.0],
            Self::Jpeg { .. } => &[100.0, 90.0, 75.0, 50.0, 30.0, 10.0],
            Self::Crop { .. } => &[0.0, 0.1, 0.2, 0.3, 0.5, 0.7],
            Self::Rotate { .. } => &[0.0, 2.5, 5.0, 10.0, 15.0, 30.0],
            Self::Downscale { .. } => &[1.0, 1.5, 2.0, 3.0, 4.0, 6.0],
        }
    }

    /// The attacks of the robustness table (the published re-run's strengths).
    pub const TABLE: [Self; 5] = [
        Self::Noise { sigma: 0.05 },
        Self::Blur { sigma: 1.0 },
        Self::Jpeg { quality: 75 },
        Self::Crop { fraction: 0.1 },
        Self::Rotate { degrees: 5.0 },
    ];

    /// The strengths of [`Attack::TABLE`] for each of [`Attack::KINDS`] (a downscale ×2 for the
    /// kind the table leaves out): where the lab's sliders start.
    pub const TABLE_STRENGTHS: [f64; 6] = [0.05, 1.0, 75.0, 0.1, 5.0, 2.0];

    /// The attack's name and strength, e.g. "JPEG q = 75".
    pub fn label(&self) -> String {
        match *self {
            Self::Noise { sigma } => format!("noise σ = {sigma:.3}"),
            Self::Blur { sigma } => format!("blur σ = {sigma:.2} px"),
            Self::Jpeg { quality } => format!("JPEG q = {quality}"),
            Self::Crop { fraction } => format!("crop {:.0}% of the area", 100.0 * fraction),
            Self::Rotate { degrees } => format!("rotation {degrees:.1}°"),
            Self::Downscale { factor } => format!("downscale ×{factor:.2}"),
        }
    }

    /// `image` after the attack; `seed` drives the noise.
    pub fn apply(&self, image: &ImageData, seed: u64) -> Result<ImageData, AttackError> {
        if !matches!(image.channels, 1 | 3) {
            return Err(AttackError::Channels(image.channels));
        }
        Ok(match *self {
            Self::Noise { sigma } if sigma > 0.0 => filters::add_gaussian_noise(image, sigma, seed),
            Self::Blur { sigma } if sigma > 0.0 => filters::gaussian_blur(image, sigma),
            Self::Jpeg { quality } => jpeg_round_trip(image, quality)?,
            Self::Crop { fraction } if fraction > 0.0 => crop_and_rescale(image, fraction),
            Self::Rotate { degrees } if degrees != 0.0 => rotate(image, degrees),
            Self::Downscale { factor } if factor > 1.0 => {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let side = |s: u32| ((f64::from(s) / f64::from(factor)).round() as u32).max(1);
                let small = resize(image, side(image.width), side(image.height));
                resize(&small, image.width, image.height)
            }
            _ => image.clone(),
        })
    }
}

/// `image` resized to `width × height` with a triangle (bilinear) filter.
pub fn resize(image: &ImageData, width: u32, height: u32) -> ImageData {
    image.resized(width, height, image::imageops::FilterType::Triangle)
}

fn jpeg_round_trip(image: &ImageData, quality: u8) -> Result<ImageData, AttackError> {
    let bytes: Vec<u8> = image.pixels.iter().map(|&v| to_u8(v)).collect();
    let colour = if image.channels == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
    let mut encoded = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut encoded, quality.clamp(1, 100))
        .encode(&bytes, image.width, image.height, colour)
        .map_err(|e| AttackError::Jpeg(e.to_string()))?;
    let decoded = image::load_from_memory_with_format(&encoded, image::ImageFormat::Jpeg)
        .map_err(|e| AttackError::Jpeg(e.to_string()))?;
    let raw = if image.channels == 1 { decoded.into_luma8().into_raw() } else { decoded.into_rgb8().into_raw() };
    let pixels = raw.into_iter().map(|v| f32::from(v) / 255.0).collect();
    Ok(ImageData { pixels, ..image.clone() })
}

fn crop_and_rescale(image: &ImageData, fraction: f32) -> ImageData {
    let keep = (1.0 - fraction.clamp(0.0, 0.99)).sqrt();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let side = |s: u32| ((s as f32 * keep).round() as u32).clamp(1, s);
    let (w, h) = (side(image.width), side(image.height));
    let window = filters::crop(image, (image.width - w) / 2, (image.height - h) / 2, w, h);
    resize(&window, image.width, image.height)
}

/// Bilinear sample at `(x, y)` in pixel coordinates (pixel centres at integers), clamped to the
/// edges.
fn sample(image: &ImageData, x: f32, y: f32, c: usize) -> f32 {
    #[allow(clippy::cast_precision_loss)]
    let (max_x, max_y) = ((image.width - 1) as f32, (image.height - 1) as f32);
    let (x, y) = (x.clamp(0.0, max_x), y.clamp(0.0, max_y));
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (x0, y0) = (x0 as u32, y0 as u32);
    let (x1, y1) = ((x0 + 1).min(image.width - 1), (y0 + 1).min(image.height - 1));
    let top = image.at(x0, y0, c) * (1.0 - fx) + image.at(x1, y0, c) * fx;
    let bottom = image.at(x0, y1, c) * (1.0 - fx) + image.at(x1, y1, c) * fx;
    top * (1.0 - fy) + bottom * fy
}

fn rotate(image: &ImageData, degrees: f32) -> ImageData {
    #[allow(clippy::cast_precision_loss)]
    let (cx, cy) = ((image.width - 1) as f32 / 2.0, (image.height - 1) as f32 / 2.0);
    let (sin, cos) = degrees.to_radians().sin_cos();
    let mut pixels = Vec::with_capacity(image.pixels.len());
    for y in 0..image.height {
        for x in 0..image.width {
            // The source of output pixel (x, y): rotated back by the angle. Screen y points down,
            // so a counter-clockwise turn on screen is clockwise in these coordinates.
            #[allow(clippy::cast_precision_loss)]
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            let (sx, sy) = (cx + cos * dx - sin * dy, cy + sin * dx + cos * dy);
            for c in 0..image.channels {
                pixels.push(sample(image, sx, sy, c));
            }
        }
    }
    ImageData { pixels, ..image.clone() }
}
