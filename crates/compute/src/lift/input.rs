//! The lab's input: one photo, its foreground mask and a rough depth, brought to the training
//! resolution.
//!
//! - Mask: the image's alpha channel when it has a meaningful one, else an automatic matte: the
//!   background is whatever is reachable from the image border through pixels whose colour is
//!   within a threshold of the border's median colour (so object pixels of the background's
//!   colour stay foreground unless they touch it).
//! - Rough depth: a file (16-bit PNG or NPY; distance or disparity), or a silhouette "inflation":
//!   `h = √(d·(2·d_max − d))` from the mask's Euclidean distance transform `d` (exact for a disc,
//!   where it gives a hemisphere). Only the order of depths is ever used.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::LiftError;
use crate::image_io::{self, ImageData};

/// The largest training side; the field and the reference rays grow with its square.
pub const MAX_RESOLUTION: u32 = 256;
pub const MIN_RESOLUTION: u32 = 16;

/// A loaded photo: straight RGB and, when the file has one, its alpha.
#[derive(Clone, Debug, PartialEq)]
pub struct LiftImage {
    pub width: u32,
    pub height: u32,
    /// `[r, g, b]` per pixel, row-major.
    pub rgb: Vec<f32>,
    pub alpha: Option<Vec<f32>>,
    /// File name (or "built-in example") for titles and messages.
    pub name: String,
}

impl LiftImage {
    /// Loads a PNG or JPEG, keeping its alpha channel.
    pub fn load(path: &Path) -> Result<Self, LiftError> {
        let loaded = image_io::load_image_with_alpha(path)?;
        Ok(Self::from_image_data(&loaded.image, &path.display().to_string()))
    }

    pub fn from_image_data(image: &ImageData, name: &str) -> Self {
        let n = image.num_pixels();
        let c = image.channels;
        let mut rgb = Vec::with_capacity(3 * n);
        let mut alpha = (c == 4).then(|| Vec::with_capacity(n));
        for px in image.pixels.chunks_exact(c) {
            if c < 3 {
                rgb.extend_from_slice(&[px[0]; 3]);
            } else {
                rgb.extend_from_slice(&px[..3]);
            }
            if let Some(a) = alpha.as_mut() {
                a.push(px[3]);
            }
        }
        Self { width: image.width, height: image.height, rgb, alpha, name: name.to_owned() }
    }

    pub fn num_pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// True when the alpha channel separates something from something: some pixels mostly
    /// transparent and some mostly opaque.
    pub fn has_meaningful_alpha(&self) -> bool {
        self.alpha.as_ref().is_some_and(|a| a.iter().any(|&v| v < 0.5) && a.iter().any(|&v| v >= 0.5))
    }
}

/// Where the mask comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaskSource {
    /// The alpha channel when meaningful, else the border matte.
    #[default]
    Auto,
    /// Always the border matte (ignores alpha).
    Border,
}

/// How the mask was made, for the UI and `metrics.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaskOrigin {
    Alpha,
    BorderMatte,
    File,
}

impl MaskOrigin {
    /// What to do when this mask leaves almost nothing, or almost everything, as the object.
    pub fn advice(self) -> &'static str {
        match self {
            Self::Alpha => {
                "Re-export the photo with the object opaque and the background transparent, or save it without \
                 an alpha channel to use the border matte"
            }
            Self::BorderMatte => {
                "Raise or lower the mask threshold, give the photo a plain background, or save it with an alpha \
                 channel that marks the object"
            }
            Self::File => "Check the mask file: white marks the object, black the background",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Alpha => "alpha channel",
            Self::BorderMatte => "border matte",
            Self::File => "mask file",
        }
    }
}

/// [`MaskOrigin::advice`], unless the photo's alpha channel was ignored for being the same
/// everywhere: then that is what to fix.
fn mask_advice(image: &LiftImage, origin: MaskOrigin) -> &'static str {
    match &image.alpha {
        Some(alpha) if origin == MaskOrigin::BorderMatte && !image.has_meaningful_alpha() => {
            if alpha.iter().all(|&a| a < 0.5) {
                "The photo's alpha channel is transparent everywhere, so it was ignored: re-export the photo with the \
                 object opaque and the background transparent"
            } else {
                "The photo's alpha channel is opaque everywhere, so it marks no object: re-export the photo with the \
                 background transparent, or give it a plain background"
            }
        }
        _ => origin.advice(),
    }
}

/// The median colour of the image's border pixels (per channel).
pub fn border_colour(rgb: &[f32], width: u32, height: u32) -> [f32; 3] {
    let (w, h) = (width as usize, height as usize);
    let mut border = Vec::new();
    for y in 0..h {
        for x in 0..w {
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                border.push(y * w + x);
            }
        }
    }
    let mut out = [0.0; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let mut values: Vec<f32> = border.iter().map(|&k| rgb[3 * k + c]).collect();
        values.sort_by(f32::total_cmp);
        *o = values.get(values.len() / 2).copied().unwrap_or(1.0);
    }
    out
}

/// Foreground mask (1 = object) by flood-filling the background from the border: a pixel is
/// background when it is within `threshold` (Euclidean RGB distance) of the border's median
/// colour and 4-connected to the border through such pixels.
pub fn border_matte(rgb: &[f32], width: u32, height: u32, threshold: f32) -> Vec<f32> {
    let (w, h) = (width as usize, height as usize);
    let bg = border_colour(rgb, width, height);
    let near = |k: usize| {
        let d2: f32 = (0..3).map(|c| (rgb[3 * k + c] - bg[c]).powi(2)).sum();
        d2 <= threshold * threshold
    };
    let mut background = vec![false; w * h];
    let mut stack = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let k = y * w + x;
            if (x == 0 || y == 0 || x + 1 == w || y + 1 == h) && near(k) && !background[k] {
                background[k] = true;
                stack.push(k);
            }
        }
    }
    while let Some(k) = stack.pop() {
        let (x, y) = (k % w, k / w);
        let mut visit = |n: usize| {
            if !background[n] && near(n) {
                background[n] = true;
                stack.push(n);
            }
        };
        if x > 0 {
            visit(k - 1);
        }
        if x + 1 < w {
            visit(k + 1);
        }
        if y > 0 {
            visit(k - w);
        }
        if y + 1 < h {
            visit(k + w);
        }
    }
    background.iter().map(|&b| if b { 0.0 } else { 1.0 }).collect()
}

/// The mask of `image`: alpha or border matte as `source` and the image allow.
pub fn make_mask(image: &LiftImage, source: MaskSource, threshold: f32) -> (Vec<f32>, MaskOrigin) {
    match (&image.alpha, source) {
        (Some(alpha), MaskSource::Auto) if image.has_meaningful_alpha() => (alpha.clone(), MaskOrigin::Alpha),
        _ => (border_matte(&image.rgb, image.width, image.height, threshold), MaskOrigin::BorderMatte),
    }
}

/// Squared Euclidean distance transform of one line (Felzenszwalb and Huttenlocher's lower
/// envelope of parabolas): `out[q] = min_p (q − p)² + f[p]`.
fn edt_1d(f: &[f32], out: &mut [f32]) {
    let n = f.len();
    let mut v = vec![0_usize; n];
    let mut z = vec![0.0_f32; n + 1];
    let mut k = 0;
    z[0] = f32::NEG_INFINITY;
    z[1] = f32::INFINITY;
    #[allow(clippy::cast_precision_loss)]
    let sq = |i: usize| (i * i) as f32;
    #[allow(clippy::cast_precision_loss)]
    let fl = |i: usize| i as f32;
    let mut first = None;
    for q in 0..n {
        if !f[q].is_finite() {
            continue;
        }
        let Some(_) = first else {
            first = Some(q);
            v[0] = q;
            continue;
        };
        loop {
            let p = v[k];
            let s = ((f[q] + sq(q)) - (f[p] + sq(p))) / (2.0 * (fl(q) - fl(p)));
            if s <= z[k] && k > 0 {
                k -= 1;
            } else {
                k += 1;
                v[k] = q;
                z[k] = s;
                z[k + 1] = f32::INFINITY;
                break;
            }
        }
    }
    if first.is_none() {
        out.fill(f32::INFINITY);
        return;
    }
    let mut k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while z[k + 1] < fl(q) {
            k += 1;
        }
        let p = v[k];
        *o = (fl(q) - fl(p)).powi(2) + f[p];
    }
}

/// Euclidean distance (in pixels) from each foreground pixel (`mask > 0.5`) to the nearest
/// background pixel; pixels outside the image count as background, so a full mask still has
/// finite distances. Background pixels get 0.
pub fn distance_transform(mask: &[f32], width: u32, height: u32) -> Vec<f32> {
    // Pad by one pixel of background on every side.
    let (w, h) = (width as usize + 2, height as usize + 2);
    let mut grid = vec![0.0_f32; w * h];
    for y in 0..height as usize {
        for x in 0..width as usize {
            if mask[y * width as usize + x] > 0.5 {
                grid[(y + 1) * w + x + 1] = f32::INFINITY;
            }
        }
    }
    let mut line = vec![0.0_f32; w.max(h)];
    let mut col = vec![0.0_f32; h];
    for x in 0..w {
        for y in 0..h {
            col[y] = grid[y * w + x];
        }
        edt_1d(&col, &mut line[..h]);
        for y in 0..h {
            grid[y * w + x] = line[y];
        }
    }
    let mut row = vec![0.0_f32; w];
    for y in 0..h {
        row.copy_from_slice(&grid[y * w..(y + 1) * w]);
        edt_1d(&row, &mut line[..w]);
        grid[y * w..(y + 1) * w].copy_from_slice(&line[..w]);
    }
    let mut out = Vec::with_capacity(width as usize * height as usize);
    for y in 0..height as usize {
        for x in 0..width as usize {
            out.push(grid[(y + 1) * w + x + 1].sqrt());
        }
    }
    out
}

/// The inflation depth of a mask: `max_h − h` with `h = √(d·(2·d_max − d))` inside the mask
/// (smaller = nearer, 0 at the top of the bulge) and NaN outside.
pub fn inflation_depth(mask: &[f32], width: u32, height: u32) -> Vec<f32> {
    let d = distance_transform(mask, width, height);
    let d_max = d.iter().copied().fold(0.0_f32, f32::max);
    let heights: Vec<f32> = d.iter().map(|&d| (d * (2.0 * d_max - d)).max(0.0).sqrt()).collect();
    let h_max = heights.iter().copied().fold(0.0_f32, f32::max);
    heights.iter().zip(mask).map(|(&h, &m)| if m > 0.5 { h_max - h } else { f32::NAN }).collect()
}

/// A depth map read from a file: larger = farther (disparity files are inverted on load); NaN
/// where the file holds no valid value.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthMap {
    pub width: u32,
    pub height: u32,
    pub values: Vec<f32>,
}

/// Reads a rough depth: a PNG (8- or 16-bit gray; colour is averaged) or a NumPy `.npy` array
/// `(H, W)`, `(1, H, W)` or `(H, W, 1)` of float or integer type. With `disparity`, the file
/// holds inverse depth (larger = nearer, as MiDaS and Depth Anything write) and is negated.
pub fn load_depth_file(path: &Path, disparity: bool) -> Result<DepthMap, LiftError> {
    let is_npy = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let mut map = if is_npy {
        let bytes = crate::files::read_capped(path, crate::files::NPY).map_err(|e| LiftError::DepthFile {
            path: path.to_owned(),
            reason: format!("cannot read the file ({e})"),
        })?;
        read_npy(&bytes).map_err(|reason| LiftError::DepthFile { path: path.to_owned(), reason })?
    } else {
        let image = image_io::load_image(path)?.image;
        let values = image
            .pixels
            .chunks_exact(image.channels)
            .map(|px| {
                let n = px.len().min(3);
                px[..n].iter().sum::<f32>() / f32::from(u8::try_from(n).unwrap_or(3))
            })
            .collect();
        DepthMap { width: image.width, height: image.height, values }
    };
    if disparity {
        for v in &mut map.values {
            *v = -*v;
        }
    }
    let valid = map.values.iter().filter(|v| v.is_finite()).count();
    if valid == 0 {
        return Err(LiftError::DepthFile {
            path: path.to_owned(),
            reason: "holds no finite depth value. Export the depth again, or use --inflate.".into(),
        });
    }
    Ok(map)
}

/// Parses a NumPy `.npy` file holding one 2-D depth map.
pub fn read_npy(bytes: &[u8]) -> Result<DepthMap, String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a NumPy .npy file (the magic string \\x93NUMPY is missing)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}; save it with numpy.save")),
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("the .npy header is truncated or not text")?;
    let field = |key: &str| -> Result<&str, String> {
        let at = header.find(&format!("'{key}'")).ok_or(format!("the .npy header has no '{key}'"))?;
        let rest = header[at + key.len() + 2..].trim_start();
        Ok(rest.strip_prefix(':').unwrap_or(rest).trim_start())
    };
    let descr = field("descr")?;
    let descr = descr.strip_prefix('\'').and_then(|d| d.split('\'').next()).unwrap_or("");
    let fortran = field("fortran_order")?.starts_with("True");
    let shape_text = field("shape")?;
    let shape_text = shape_text.trim_start_matches('(').split(')').next().unwrap_or("");
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape entry `{s}` in the .npy header")))
        .collect::<Result<_, _>>()?;
    let (h, w) = match shape.as_slice() {
        [h, w] | [1, h, w] | [h, w, 1] => (*h, *w),
        _ => {
            return Err(format!(
                "holds an array of shape {shape:?}; a depth map must be (H, W), (1, H, W) or (H, W, 1)"
            ));
        }
    };
    let max = image_io::MAX_IMAGE_SIDE as usize;
    if h == 0 || w == 0 || h > max || w > max {
        return Err(format!("holds a {w}×{h} array; sides must be 1–{max}"));
    }
    // Split by characters, not bytes: the header is the user's text and may hold any character.
    let mut chars = descr.chars();
    let endian = chars.next();
    let kind = chars.as_str();
    if descr.is_empty() {
        return Err("has an empty `descr` (value type) in its header; save the array with numpy.save".to_owned());
    }
    match endian {
        Some('<' | '|' | '=') => {}
        Some('>') => {
            return Err(format!("holds big-endian data ({descr}); save it as little-endian (numpy's default)"));
        }
        _ => return Err(format!("holds values of type `{descr}`; use float32, float64 or an integer type")),
    }
    let size = match kind {
        "f4" | "i4" | "u4" => 4,
        "f8" | "i8" | "u8" => 8,
        "u2" | "i2" | "f2" => 2,
        "u1" | "b1" | "i1" => 1,
        _ => return Err(format!("holds values of type `{descr}`; use float32, float64 or an integer type")),
    };
    let data = &bytes[start + header_len..];
    if data.len() < w * h * size {
        return Err(format!(
            "is truncated: a {w}×{h} array of `{descr}` needs {} bytes of data, the file has {}",
            w * h * size,
            data.len()
        ));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let value = |k: usize| -> f32 {
        let b = &data[k * size..(k + 1) * size];
        match kind {
            "f4" => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            "f8" => f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32,
            "i4" => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            "u4" => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            "i8" => i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32,
            "u8" => u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32,
            "u2" => f32::from(u16::from_le_bytes([b[0], b[1]])),
            "i2" => f32::from(i16::from_le_bytes([b[0], b[1]])),
            "f2" => half_to_f32(u16::from_le_bytes([b[0], b[1]])),
            "i1" => f32::from(b[0].cast_signed()),
            _ => f32::from(b[0]),
        }
    };
    let mut values = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            values[y * w + x] = value(if fortran { x * h + y } else { y * w + x });
        }
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(DepthMap { width: w as u32, height: h as u32, values })
}

/// IEEE half → f32.
fn half_to_f32(bits: u16) -> f32 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f32::from(bits & 0x3ff);
    match exponent {
        0 => sign * mantissa * 2_f32.powi(-24),
        31 if mantissa == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + mantissa / 1024.0) * 2_f32.powi(e - 15),
    }
}

/// Area resampling of a `channels`-channel image to `new_w × new_h`: each output pixel averages
/// the finite input values whose centres fall in its footprint (the nearest one when none do,
/// as when enlarging). NaN where every such value is NaN.
pub fn resample(values: &[f32], channels: usize, width: u32, height: u32, new_w: u32, new_h: u32) -> Vec<f32> {
    let (w, h) = (width as usize, height as usize);
    let (nw, nh) = (new_w as usize, new_h as usize);
    let mut out = vec![f32::NAN; nw * nh * channels];
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let span = |i: usize, n: usize, src: usize| {
        let scale = src as f64 / n as f64;
        // Input pixel centres c + 0.5 inside [i·scale, (i+1)·scale).
        let lo = (i as f64 * scale - 0.5).ceil().max(0.0) as usize;
        let hi = (((i + 1) as f64 * scale - 0.5).ceil().max(0.0) as usize).min(src);
        if lo < hi {
            lo..hi
        } else {
            let centre = (((i as f64 + 0.5) * scale) as usize).min(src - 1);
            centre..centre + 1
        }
    };
    for y in 0..nh {
        let ys = span(y, nh, h);
        for x in 0..nw {
            let xs = span(x, nw, w);
            for c in 0..channels {
                let (mut sum, mut count) = (0.0_f64, 0_u32);
                for sy in ys.clone() {
                    for sx in xs.clone() {
                        let v = values[(sy * w + sx) * channels + c];
                        if v.is_finite() {
                            sum += f64::from(v);
                            count += 1;
                        }
                    }
                }
                if count > 0 {
                    #[allow(clippy::cast_possible_truncation)]
                    let mean = (sum / f64::from(count)) as f32;
                    out[(y * nw + x) * channels + c] = mean;
                }
            }
        }
    }
    out
}

/// The training size of a `width × height` image: the longer side becomes `resolution` (never
/// more than the image has).
pub fn training_size(width: u32, height: u32, resolution: u32) -> (u32, u32) {
    let longer = width.max(height).max(1);
    let target = resolution.min(longer);
    let scale = f64::from(target) / f64::from(longer);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let side = |s: u32| ((f64::from(s) * scale).round() as u32).max(1);
    (side(width), side(height))
}

/// Which rough depth to use.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum DepthChoice {
    /// The silhouette inflation.
    #[default]
    Inflate,
    /// A file; `disparity` when it holds inverse depth.
    File { path: PathBuf, disparity: bool },
    /// Given values at the training resolution (the built-in example's true depth, tests).
    Given(Vec<f32>),
}

/// Where the rough depth came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DepthOrigin {
    Inflation,
    File,
    Given,
}

/// Everything the lift trains on, at the training resolution.
#[derive(Clone, Debug)]
pub struct LiftInput {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Straight RGB per pixel.
    pub rgb: Vec<f32>,
    /// Foreground in [0, 1].
    pub mask: Vec<f32>,
    pub mask_origin: MaskOrigin,
    /// Rough depth (larger = farther), NaN where unknown; only its order inside the mask is used.
    pub depth: Vec<f32>,
    pub depth_origin: DepthOrigin,
    /// Things the loader changed or could not honour.
    pub notices: Vec<String>,
}

impl LiftInput {
    pub fn num_pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// Moves the object so that its mask's bounding box is centred in the image (when it is off
    /// by more than 2 px and 2% of the side): the lift turns the object about the image's centre,
    /// which the mirrored and side views assume to be the object's axis. Pixels moved in are
    /// background (the border colour, no mask, unknown depth).
    pub fn centre(&mut self) {
        let (w, h) = (self.width as usize, self.height as usize);
        let inside: Vec<usize> = (0..w * h).filter(|&k| self.mask[k] > 0.5).collect();
        if inside.is_empty() {
            return;
        }
        let (mut x0, mut x1, mut y0, mut y1) = (w, 0, h, 0);
        for &k in &inside {
            let (x, y) = (k % w, k / w);
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        #[allow(clippy::cast_possible_wrap)] // image sides are at most 256 here
        let offset = |lo: usize, hi: usize, n: usize| -> i64 {
            let shift = (n as i64 - (lo + hi + 1) as i64) / 2;
            let tolerance = 2.max(n as i64 / 50);
            if shift.abs() > tolerance { shift } else { 0 }
        };
        let (dx, dy) = (offset(x0, x1, w), offset(y0, y1, h));
        if dx == 0 && dy == 0 {
            return;
        }
        let bg = border_colour(&self.rgb, self.width, self.height);
        let (mut rgb, mut mask, mut depth) = (Vec::with_capacity(3 * w * h), vec![0.0; w * h], vec![f32::NAN; w * h]);
        for _ in 0..w * h {
            rgb.extend_from_slice(&bg);
        }
        #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss, clippy::cast_possible_truncation)]
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                let (sx, sy) = (x - dx, y - dy);
                if !(0..w as i64).contains(&sx) || !(0..h as i64).contains(&sy) {
                    continue;
                }
                let (k, s) = ((y as usize) * w + x as usize, (sy as usize) * w + sx as usize);
                rgb[3 * k..3 * k + 3].copy_from_slice(&self.rgb[3 * s..3 * s + 3]);
                mask[k] = self.mask[s];
                depth[k] = self.depth[s];
            }
        }
        (self.rgb, self.mask, self.depth) = (rgb, mask, depth);
        self.notices.push(format!(
            "{}: the object was moved by ({dx}, {dy}) pixels to the centre of the view, about which the lift turns it.",
            self.name
        ));
    }

    /// Fraction of pixels in the mask.
    pub fn coverage(&self) -> f32 {
        #[allow(clippy::cast_precision_loss)]
        let frac = self.mask.iter().filter(|&&m| m > 0.5).count() as f32 / self.num_pixels().max(1) as f32;
        frac
    }

    /// The reference image composited over `background` (what the reference view should show).
    pub fn composited(&self, background: [f32; 3]) -> ImageData {
        let pixels = self
            .rgb
            .chunks_exact(3)
            .zip(&self.mask)
            .flat_map(|(c, &m)| (0..3).map(move |k| c[k] * m + background[k] * (1.0 - m)))
            .collect();
        ImageData { width: self.width, height: self.height, channels: 3, pixels }
    }

    /// The mask as a gray image.
    pub fn mask_image(&self) -> ImageData {
        ImageData { width: self.width, height: self.height, channels: 1, pixels: self.mask.clone() }
    }

    /// The rough depth as a gray image (near = bright, unknown = black).
    pub fn depth_image(&self) -> ImageData {
        let finite = || self.depth.iter().copied().filter(|v| v.is_finite());
        let lo = finite().fold(f32::INFINITY, f32::min);
        let hi = finite().fold(f32::NEG_INFINITY, f32::max);
        let span = (hi - lo).max(1e-6);
        let pixels =
            self.depth.iter().map(|&d| if d.is_finite() { 0.15 + 0.85 * (hi - d) / span } else { 0.0 }).collect();
        ImageData { width: self.width, height: self.height, channels: 1, pixels }
    }
}

/// Mask settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaskSettings {
    pub source: MaskSource,
    /// Colour distance (RGB in [0, 1]) below which border-connected pixels are background.
    pub threshold: f32,
}

impl Default for MaskSettings {
    fn default() -> Self {
        Self { source: MaskSource::Auto, threshold: 0.12 }
    }
}

/// Whether two sizes have the same aspect ratio (within 2%, as rounding of a scaled copy allows).
fn same_aspect(a: (u32, u32), b: (u32, u32)) -> bool {
    let aspect = |(w, h): (u32, u32)| f64::from(w) / f64::from(h.max(1));
    (aspect(a) / aspect(b) - 1.0).abs() <= 0.02
}

/// Brings a photo to the training resolution with its mask (from the image, or `mask_file` when
/// given) and rough depth. Mask and depth files may be any size of the photo's aspect ratio.
pub fn prepare(
    image: &LiftImage,
    mask: MaskSettings,
    mask_file: Option<&Path>,
    depth: &DepthChoice,
    resolution: u32,
) -> Result<LiftInput, LiftError> {
    if !(MIN_RESOLUTION..=MAX_RESOLUTION).contains(&resolution) {
        return Err(LiftError::Config(format!(
            "training resolution must be {MIN_RESOLUTION}–{MAX_RESOLUTION} pixels, got {resolution}"
        )));
    }
    if !(mask.threshold.is_finite() && (0.0..=2.0).contains(&mask.threshold)) {
        return Err(LiftError::Config(format!("mask threshold must be 0–2, got {}", mask.threshold)));
    }
    let mut notices = Vec::new();
    let (full_mask, mask_origin) = match mask_file {
        Some(path) => {
            let m = image_io::load_image(path)?.image;
            if !same_aspect((m.width, m.height), (image.width, image.height)) {
                return Err(LiftError::Mismatch {
                    path: path.to_owned(),
                    what: "mask",
                    size: (m.width, m.height),
                    image: (image.width, image.height),
                });
            }
            let values: Vec<f32> = m.pixels.chunks_exact(m.channels).map(|px| px[0]).collect();
            (resample(&values, 1, m.width, m.height, image.width, image.height), MaskOrigin::File)
        }
        None => make_mask(image, mask.source, mask.threshold),
    };
    let (w, h) = training_size(image.width, image.height, resolution);
    if (w, h) != (image.width, image.height) {
        notices.push(format!("{}: {}×{} scaled to {w}×{h} for training.", image.name, image.width, image.height));
    }
    let rgb = resample_premultiplied(&image.rgb, &full_mask, image.width, image.height, w, h);
    let mask_values: Vec<f32> = resample(&full_mask, 1, image.width, image.height, w, h)
        .into_iter()
        .map(|m| if m.is_finite() { m.clamp(0.0, 1.0) } else { 0.0 })
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let coverage = mask_values.iter().filter(|&&m| m > 0.5).count() as f32 / (w * h) as f32;
    if coverage < 0.005 {
        return Err(LiftError::EmptyMask {
            name: image.name.clone(),
            detail: format!(
                "the {} leaves almost no foreground ({:.1}% of pixels)",
                mask_origin.label(),
                100.0 * coverage
            ),
            advice: mask_advice(image, mask_origin),
        });
    }
    if coverage > 0.98 {
        return Err(LiftError::EmptyMask {
            name: image.name.clone(),
            detail: format!(
                "the {} marks almost everything as foreground ({:.1}% of pixels)",
                mask_origin.label(),
                100.0 * coverage
            ),
            advice: mask_advice(image, mask_origin),
        });
    }
    let (depth, depth_origin) = match depth {
        DepthChoice::Inflate => (inflation_depth(&mask_values, w, h), DepthOrigin::Inflation),
        DepthChoice::Given(values) => {
            if values.len() != (w * h) as usize {
                return Err(LiftError::Config(format!(
                    "given depth has {} values for a {w}×{h} training image",
                    values.len()
                )));
            }
            (values.clone(), DepthOrigin::Given)
        }
        DepthChoice::File { path, disparity } => {
            let map = load_depth_file(path, *disparity)?;
            if !same_aspect((map.width, map.height), (image.width, image.height)) {
                return Err(LiftError::Mismatch {
                    path: path.clone(),
                    what: "depth",
                    size: (map.width, map.height),
                    image: (image.width, image.height),
                });
            }
            (resample(&map.values, 1, map.width, map.height, w, h), DepthOrigin::File)
        }
    };
    let mut input = LiftInput {
        name: image.name.clone(),
        width: w,
        height: h,
        rgb,
        mask: mask_values,
        mask_origin,
        depth,
        depth_origin,
        notices,
    };
    input.centre();
    Ok(input)
}

/// Area resampling of straight colours by their coverage: `rgb·α` and `α` are resampled and
/// divided, so that transparent pixels (often black) do not darken the object's edge. Where no
/// coverage is left, the plain resampled colour.
pub fn resample_premultiplied(rgb: &[f32], alpha: &[f32], width: u32, height: u32, new_w: u32, new_h: u32) -> Vec<f32> {
    let premultiplied: Vec<f32> =
        rgb.chunks_exact(3).zip(alpha).flat_map(|(c, &a)| [c[0] * a, c[1] * a, c[2] * a]).collect();
    let weighted = resample(&premultiplied, 3, width, height, new_w, new_h);
    let coverage = resample(alpha, 1, width, height, new_w, new_h);
    let plain = resample(rgb, 3, width, height, new_w, new_h);
    weighted
        .chunks_exact(3)
        .zip(&coverage)
        .zip(plain.chunks_exact(3))
        .flat_map(
            |((c, &a), p)| {
                if a > 1e-3 { [c[0] / a, c[1] / a, c[2] / a].map(|v| v.clamp(0.0, 1.0)) } else { [p[0], p[1], p[2]] }
            },
        )
        .collect()
}
