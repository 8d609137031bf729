//! Lesion localization data: a built-in synthetic skin-lesion set (textured skin-like
//! backgrounds, lesions of varied size, shape, colour and contrast, an imbalanced skin-tone
//! group, masks and boxes as ground truth) and real image/mask pairs read from a folder.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::HtlError;
use super::data::{AttributeSpec, group_samples};
use crate::image_io::{self, ImageData};

/// Most pixels (over all images) a localization study takes: each keeps 108 features (≈ 1.7 GB
/// at this limit).
pub const MAX_PIXELS: usize = 4_000_000;

/// Images `n × 3 × side × side` in [0, 1] with binary masks `n × side × side`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LesionSet {
    pub side: usize,
    pub images: Vec<f32>,
    pub masks: Vec<f32>,
    pub groups: Vec<u16>,
    pub names: Vec<String>,
}

impl LesionSet {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn pixels(&self) -> usize {
        self.side * self.side
    }

    pub fn mask(&self, i: usize) -> &[f32] {
        &self.masks[i * self.pixels()..(i + 1) * self.pixels()]
    }

    /// Sample `i` as an RGB image.
    pub fn image(&self, i: usize) -> ImageData {
        let n = self.pixels();
        let planes = &self.images[i * 3 * n..(i + 1) * 3 * n];
        let pixels = (0..n).flat_map(|p| [planes[p], planes[n + p], planes[2 * n + p]]).collect();
        #[allow(clippy::cast_possible_truncation)]
        ImageData { width: self.side as u32, height: self.side as u32, channels: 3, pixels }
    }

    /// The samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        let n = self.pixels();
        let mut out = Self { side: self.side, ..Self::default() };
        for &i in indices {
            out.images.extend_from_slice(&self.images[i * 3 * n..(i + 1) * 3 * n]);
            out.masks.extend_from_slice(self.mask(i));
            out.groups.push(self.groups[i]);
            out.names.push(self.names[i].clone());
        }
        out
    }
}

/// The smallest box `(x0, y0, x1, y1)` (inclusive) holding every mask pixel, `None` for an empty mask.
pub fn bounding_box(mask: &[f32], side: usize) -> Option<(usize, usize, usize, usize)> {
    let mut bounds: Option<(usize, usize, usize, usize)> = None;
    for (p, &m) in mask.iter().enumerate() {
        if m > 0.5 {
            let (x, y) = (p % side, p / side);
            bounds = Some(bounds.map_or((x, y, x, y), |(a, b, c, d)| (a.min(x), b.min(y), c.max(x), d.max(y))));
        }
    }
    bounds
}

/// Training and test lesions with group names.
#[derive(Clone, Debug, PartialEq)]
pub struct LesionData {
    pub name: String,
    pub train: LesionSet,
    pub test: LesionSet,
    pub groups: Vec<String>,
}

impl LesionData {
    pub fn summary(&self) -> String {
        let counts: Vec<String> = self
            .groups
            .iter()
            .enumerate()
            .map(|(g, name)| {
                let n = self.train.groups.iter().chain(&self.test.groups).filter(|&&x| usize::from(x) == g).count();
                format!("{name} {n}")
            })
            .collect();
        format!(
            "{}: {} training and {} test images, {}×{}; groups: {}",
            self.name,
            self.train.len(),
            self.test.len(),
            self.train.side,
            self.train.side,
            counts.join(", ")
        )
    }
}

/// The built-in synthetic set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyntheticConfig {
    pub train: usize,
    pub test: usize,
    pub side: usize,
    /// Fraction of images with dark skin (the under-represented group).
    pub dark_fraction: f64,
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self { train: 600, test: 200, side: 32, dark_fraction: 0.2, seed: 0 }
    }
}

impl SyntheticConfig {
    pub fn validate(&self) -> Result<(), HtlError> {
        if !(16..=128).contains(&self.side) {
            return Err(HtlError::Config(format!("the lesion image side must be 16 to 128, got {}", self.side)));
        }
        if self.train < 4 || self.test < 1 || self.train + self.test > 100_000 {
            return Err(HtlError::Config(format!(
                "needs 4 or more training and 1 or more test images, 100000 in all; got {} and {}",
                self.train, self.test
            )));
        }
        if (self.train + self.test) * self.side * self.side > MAX_PIXELS {
            return Err(HtlError::Config(format!(
                "{} images of {}×{} are {} pixels; the study takes up to {MAX_PIXELS} (fewer or smaller images)",
                self.train + self.test,
                self.side,
                self.side,
                (self.train + self.test) * self.side * self.side
            )));
        }
        if !(0.0..=1.0).contains(&self.dark_fraction) {
            return Err(HtlError::Config(format!("the dark fraction must be 0 to 1, got {}", self.dark_fraction)));
        }
        Ok(())
    }
}

/// Group names of the synthetic set.
pub const SKIN_GROUPS: [&str; 2] = ["light skin", "dark skin"];

/// One synthetic image (3 planes) and its mask, from `rng`.
fn synthetic_sample(rng: &mut ChaCha8Rng, side: usize, dark: bool) -> (Vec<f32>, Vec<f32>) {
    let n = side * side;
    #[allow(clippy::cast_precision_loss)]
    let s = side as f32;
    let jitter = |rng: &mut ChaCha8Rng| rng.random_range(-0.04..0.04);
    let base: [f32; 3] = if dark {
        [0.42 + jitter(rng), 0.28 + jitter(rng), 0.20 + jitter(rng)]
    } else {
        [0.86 + jitter(rng), 0.66 + jitter(rng), 0.56 + jitter(rng)]
    };
    // Skin texture: a few low-frequency waves and fine noise.
    let waves: Vec<(f32, f32, f32, f32)> = (0..3)
        .map(|_| {
            (
                rng.random_range(0.5..3.0) / s,
                rng.random_range(0.5..3.0) / s,
                rng.random_range(0.0..std::f32::consts::TAU),
                rng.random_range(0.01..0.04),
            )
        })
        .collect();
    // The lesion: an ellipse with a wobbly border.
    let radius = rng.random_range(0.1..0.28) * s;
    let aspect = rng.random_range(0.6..1.0);
    let angle = rng.random_range(0.0..std::f32::consts::PI);
    let margin = radius + 1.5;
    let (cx, cy) = (rng.random_range(margin..s - margin), rng.random_range(margin..s - margin));
    let wobble: [(f32, f32); 2] = [
        (rng.random_range(0.0..0.18), rng.random_range(0.0..std::f32::consts::TAU)),
        (rng.random_range(0.0..0.12), rng.random_range(0.0..std::f32::consts::TAU)),
    ];
    let contrast = rng.random_range(0.15..0.6);
    let tint = [1.0 - contrast, 1.0 - 1.25 * contrast, 1.0 - 1.3 * contrast];
    let hair = rng
        .random_bool(0.3)
        .then(|| (rng.random_range(0.0..s), rng.random_range(0.0..s), rng.random_range(0.0..std::f32::consts::PI)));
    let mut planes = vec![0.0; 3 * n];
    let mut mask = vec![0.0; n];
    for y in 0..side {
        for x in 0..side {
            #[allow(clippy::cast_precision_loss)]
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let texture: f32 = waves
                .iter()
                .map(|(fx, fy, phase, amp)| amp * ((fx * px + fy * py) * std::f32::consts::TAU + phase).sin())
                .sum::<f32>()
                + rng.random_range(-0.025..0.025);
            // Distance to the border along the ray from the centre, in units of the local radius.
            let (dx, dy) = (px - cx, py - cy);
            let (u, v) = (dx * angle.cos() + dy * angle.sin(), -dx * angle.sin() + dy * angle.cos());
            let phi = v.atan2(u);
            let local = radius
                * (1.0 + wobble[0].0 * (2.0 * phi + wobble[0].1).sin() + wobble[1].0 * (3.0 * phi + wobble[1].1).sin());
            let r = (u * u + (v / aspect) * (v / aspect)).sqrt();
            let inside = r < local;
            // A one-pixel soft edge.
            let blend = (local - r + 0.5).clamp(0.0, 1.0);
            let on_hair = hair.is_some_and(|(hx, hy, ha)| ((px - hx) * ha.sin() - (py - hy) * ha.cos()).abs() < 0.6);
            for c in 0..3 {
                let skin = base[c] + texture;
                let lesion = skin * tint[c];
                let mut value = skin * (1.0 - blend) + lesion * blend;
                if on_hair {
                    value *= 0.35;
                }
                planes[c * n + y * side + x] = value.clamp(0.0, 1.0);
            }
            mask[y * side + x] = f32::from(u8::from(inside));
        }
    }
    (planes, mask)
}

/// The synthetic lesion set: each image drawn from its own seeded stream.
pub fn synthetic(config: &SyntheticConfig) -> Result<LesionData, HtlError> {
    config.validate()?;
    let make = |count: usize, stream: u64, prefix: &str| -> LesionSet {
        let mut set = LesionSet { side: config.side, ..LesionSet::default() };
        for i in 0..count {
            let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
            rng.set_stream(stream.wrapping_mul(1 << 32).wrapping_add(i as u64));
            let dark = rng.random_bool(config.dark_fraction);
            let (planes, mask) = synthetic_sample(&mut rng, config.side, dark);
            set.images.extend(planes);
            set.masks.extend(mask);
            set.groups.push(u16::from(dark));
            set.names.push(format!("{prefix}-{i:05}"));
        }
        set
    };
    Ok(LesionData {
        name: format!("synthetic lesions ({:.0}% dark skin)", 100.0 * config.dark_fraction),
        train: make(config.train, 1, "train"),
        test: make(config.test, 2, "test"),
        groups: SKIN_GROUPS.iter().map(|s| (*s).to_owned()).collect(),
    })
}

fn data_error(path: &Path, reason: impl Into<String>) -> HtlError {
    HtlError::Data { path: path.to_owned(), reason: reason.into() }
}

fn image_files(dir: &Path) -> Result<Vec<PathBuf>, HtlError> {
    Ok(crate::prune::data::image_files(dir)?)
}

fn stem(path: &Path) -> String {
    path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

/// `image` resized to `side × side` as RGB planes (gray images repeated).
fn planes(image: &ImageData, side: u32) -> Vec<f32> {
    let rgb: Vec<f32> =
        if image.channels == 3 { image.pixels.clone() } else { image.pixels.iter().flat_map(|&v| [v, v, v]).collect() };
    let resized = image::ImageBuffer::<image::Rgb<f32>, _>::from_raw(image.width, image.height, rgb)
        .map(|b| image::imageops::resize(&b, side, side, image::imageops::FilterType::Triangle).into_raw())
        .unwrap_or_default();
    let n = (side * side) as usize;
    let mut out = vec![0.0; 3 * n];
    for p in 0..n {
        for c in 0..3 {
            out[c * n + p] = resized.get(p * 3 + c).copied().unwrap_or(0.0).clamp(0.0, 1.0);
        }
    }
    out
}

/// Image/mask pairs from `dir/images` and `dir/masks` (a mask named like its image's stem,
/// optionally with `_mask` or `_segmentation` after it; white = lesion), resized to `side × side`;
/// a fifth held out for testing (seeded). Groups from the attribute CSV when given.
pub fn load_folder(dir: &Path, side: usize, attributes: Option<&AttributeSpec>) -> Result<LesionData, HtlError> {
    if !(16..=128).contains(&side) {
        return Err(data_error(dir, format!("the image side must be 16 to 128 pixels, got {side}")));
    }
    let (images_dir, masks_dir) = (dir.join("images"), dir.join("masks"));
    if !images_dir.is_dir() || !masks_dir.is_dir() {
        return Err(data_error(dir, "needs two sub-folders: images/ (the photos) and masks/ (one mask per photo)"));
    }
    let images = image_files(&images_dir)?;
    if images.is_empty() {
        return Err(data_error(&images_dir, "holds no PNG or JPEG images"));
    }
    let masks = image_files(&masks_dir)?;
    let side_u32 = u32::try_from(side).unwrap_or(32);
    let mut set = LesionSet { side, ..LesionSet::default() };
    if images.len() * side * side > MAX_PIXELS {
        return Err(data_error(
            &images_dir,
            format!(
                "{} images of {side}×{side} exceed the study's {MAX_PIXELS} pixels; use a smaller side",
                images.len()
            ),
        ));
    }
    for image_path in &images {
        let name = stem(image_path);
        let mask_path = masks
            .iter()
            .find(|m| {
                let s = stem(m);
                s == name || s == format!("{name}_mask") || s == format!("{name}_segmentation")
            })
            .ok_or_else(|| {
                data_error(
                    image_path,
                    format!("has no mask in {} (looked for {name}.png, {name}_mask.png)", masks_dir.display()),
                )
            })?;
        let image = image_io::load_image(image_path).map_err(|e| data_error(image_path, e.to_string()))?.image;
        let mask = image_io::load_image(mask_path).map_err(|e| data_error(mask_path, e.to_string()))?.image;
        if (image.width, image.height) != (mask.width, mask.height) {
            return Err(data_error(
                mask_path,
                format!(
                    "is {}×{} but its image {} is {}×{}; masks must match their images",
                    mask.width,
                    mask.height,
                    image_path.display(),
                    image.width,
                    image.height
                ),
            ));
        }
        set.images.extend(planes(&image, side_u32));
        let mask_planes = planes(&mask, side_u32);
        set.masks.extend(mask_planes[..side * side].iter().map(|&v| f32::from(u8::from(v > 0.5))));
        set.names.push(image_path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()));
        set.groups.push(0);
    }
    if set.len() < 5 {
        return Err(data_error(dir, format!("{} image/mask pairs; needs at least 5", set.len())));
    }
    let mut order: Vec<usize> = (0..set.len()).collect();
    rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut ChaCha8Rng::seed_from_u64(0));
    let held = (set.len() / 5).max(1);
    let (mut test, mut train) = (order[..held].to_vec(), order[held..].to_vec());
    test.sort_unstable();
    train.sort_unstable();
    let mut data = LesionData {
        name: format!("lesions in {}", dir.display()),
        train: set.subset(&train),
        test: set.subset(&test),
        groups: vec!["all".into()],
    };
    if let Some(spec) = attributes {
        let (groups, [train_groups, test_groups]) =
            group_samples(spec, [&data.train.names, &data.test.names], &data.name)?;
        data.train.groups = train_groups;
        data.test.groups = test_groups;
        data.groups = groups;
    }
    Ok(data)
}
