//! A trained decoder and classifier pair: recovers the secret from any image (a render, a
//! screenshot, a photo of a screen) with the classifier's score that it carries one, and the
//! `decoder.safetensors` file they are kept in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::message;
use super::nets::{DecoderKind, NetsConfig, classify, decode};
use crate::image_io::ImageData;

pub const DECODER_FILE: &str = "decoder.safetensors";
const FORMAT: &str = "sparsefield-stega-decoder-1";

/// Why a decoder file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DecoderError {
    #[error("{path}: cannot read ({source}). Pass the decoder.safetensors that `sparsefield stega embed` wrote.")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot write ({source})")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("decoding failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// What kind of secret the decoder recovers (a text is framed bits, decoded back to text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    Image,
    Text,
    Bits,
}

impl SecretKind {
    fn name(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Text => "text",
            Self::Bits => "bits",
        }
    }
}

/// The decoder D and classifier C of one marked field.
#[derive(Clone, Debug)]
pub struct Decoder {
    pub config: NetsConfig,
    pub secret: SecretKind,
    pub decoder: Vec<Tensor>,
    pub classifier: Vec<Tensor>,
    /// The score from which an image counts as carrying the secret: calibrated on views of the
    /// marked field that stage 2 did not train on (0.5 for decoders saved without one).
    pub threshold: f32,
}

/// The classifier's threshold before calibration.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// What the decoder reads from one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovery {
    /// The classifier's probability that the image carries a secret.
    pub score: f32,
    /// The decoder's threshold on that score.
    pub threshold: f32,
    pub secret: Recovered,
}

/// The decoder's output.
#[derive(Clone, Debug, PartialEq)]
pub enum Recovered {
    Image(ImageData),
    Bits(Vec<bool>),
}

impl Recovery {
    /// Whether the classifier says the image carries a secret.
    pub fn carries_secret(&self) -> bool {
        self.score >= self.threshold
    }

    /// The recovered text of a text secret: the framed bytes when the header and checksum hold.
    pub fn text(&self) -> Option<Result<String, message::MessageError>> {
        match &self.secret {
            Recovered::Bits(bits) => Some(message::decode_text(bits)),
            Recovered::Image(_) => None,
        }
    }
}

impl Recovered {
    /// A picture of the output: the image itself, or the bits as a square grid of cells (white =
    /// 1, black = 0, gray past the last bit).
    pub fn to_image(&self) -> ImageData {
        match self {
            Self::Image(image) => image.clone(),
            Self::Bits(bits) => {
                const CELL: usize = 8;
                let root = bits.len().isqrt();
                let cols = if root * root < bits.len() { root + 1 } else { root.max(1) };
                let rows = bits.len().div_ceil(cols).max(1);
                let (w, h) = (cols * CELL, rows * CELL);
                let mut pixels = vec![0.5_f32; w * h * 3];
                for (i, &bit) in bits.iter().enumerate() {
                    let (cx, cy) = ((i % cols) * CELL, (i / cols) * CELL);
                    for y in cy..cy + CELL {
                        for x in cx..cx + CELL {
                            let border = x == cx || y == cy;
                            let v = if border { 0.5 } else { f32::from(u8::from(bit)) };
                            pixels[(y * w + x) * 3..(y * w + x) * 3 + 3].fill(v);
                        }
                    }
                }
                #[allow(clippy::cast_possible_truncation)]
                ImageData { width: w as u32, height: h as u32, channels: 3, pixels }
            }
        }
    }
}

/// `frame` (RGB) with `inset` scaled to a third of its width in the bottom-right corner, framed
/// in white.
pub fn with_inset(frame: &ImageData, inset: &ImageData) -> ImageData {
    let side = (frame.width / 3).max(4);
    let small = super::attacks::resize(inset, side, side);
    let mut out = frame.clone();
    let (x0, y0) = (frame.width.saturating_sub(side + 4), frame.height.saturating_sub(side + 4));
    for y in y0.saturating_sub(1)..(y0 + side + 1).min(frame.height) {
        for x in x0.saturating_sub(1)..(x0 + side + 1).min(frame.width) {
            let o = ((y * frame.width + x) * 3) as usize;
            let inside = x >= x0 && y >= y0 && x < x0 + side && y < y0 + side;
            for c in 0..3 {
                out.pixels[o + c] = if inside { small.at(x - x0, y - y0, c.min(small.channels - 1)) } else { 1.0 };
            }
        }
    }
    out
}

/// `image` as the decoder sees it: RGB, its centred square, brought to `side × side` (a box
/// average when the square is a whole multiple of the side, as in training; bilinear otherwise).
pub fn decoder_view(image: &ImageData, side: u32) -> ImageData {
    let square = image.width.min(image.height);
    let window = crate::filters::crop(image, (image.width - square) / 2, (image.height - square) / 2, square, square);
    let rgb = if window.channels == 3 {
        window
    } else {
        let pixels = window.pixels.iter().flat_map(|&v| [v; 3]).collect();
        ImageData { channels: 3, pixels, ..window }
    };
    if square >= side && square.is_multiple_of(side) {
        box_average(&rgb, square / side)
    } else {
        super::attacks::resize(&rgb, side, side)
    }
}

/// The mean of each `k × k` block of an RGB image whose sides are multiples of `k`.
fn box_average(image: &ImageData, k: u32) -> ImageData {
    if k == 1 {
        return image.clone();
    }
    let (w, h) = (image.width / k, image.height / k);
    let mut pixels = vec![0.0_f32; (w * h * 3) as usize];
    #[allow(clippy::cast_precision_loss)]
    let scale = 1.0 / (k * k) as f32;
    for y in 0..image.height {
        for x in 0..image.width {
            let o = (((y / k) * w + x / k) * 3) as usize;
            for c in 0..3 {
                pixels[o + c] += scale * image.at(x, y, c);
            }
        }
    }
    ImageData { width: w, height: h, channels: 3, pixels }
}

/// Images (already `side × side` RGB) as an `n × 3 × side × side` tensor.
pub fn views_tensor(views: &[ImageData], device: &Device) -> candle_core::Result<Tensor> {
    let side = views.first().map_or(0, |v| v.width as usize);
    let data: Vec<f32> = views.iter().flat_map(|v| v.pixels.iter().copied()).collect();
    Tensor::from_vec(data, (views.len(), side, side, 3), device)?.permute((0, 3, 1, 2))?.contiguous()
}

impl Decoder {
    /// Recovers what each image carries (any size; see [`decoder_view`]).
    pub fn recover_all(&self, images: &[ImageData]) -> Result<Vec<Recovery>, DecoderError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let side = u32::try_from(self.config.side).unwrap_or(u32::MAX);
        let views: Vec<ImageData> = images.iter().map(|image| decoder_view(image, side)).collect();
        let x = views_tensor(&views, &Device::Cpu)?;
        let logits = classify(&x, &self.classifier)?;
        let out = decode(&self.config, &x, &logits, &self.decoder)?;
        let scores = candle_nn::ops::sigmoid(&logits)?.to_vec1::<f32>()?;
        let mut recoveries = Vec::with_capacity(images.len());
        for (i, score) in scores.into_iter().enumerate() {
            let secret = match self.config.kind {
                DecoderKind::Image => {
                    let pixels = out.get(i)?.permute((1, 2, 0))?.flatten_all()?.to_vec1::<f32>()?;
                    Recovered::Image(ImageData { width: side, height: side, channels: 3, pixels })
                }
                DecoderKind::Bits(_) => {
                    Recovered::Bits(out.get(i)?.to_vec1::<f32>()?.into_iter().map(|z| z > 0.0).collect())
                }
            };
            recoveries.push(Recovery { score, threshold: self.threshold, secret });
        }
        Ok(recoveries)
    }

    /// [`Decoder::recover_all`] for one image.
    pub fn recover(&self, image: &ImageData) -> Result<Recovery, DecoderError> {
        let mut all = self.recover_all(std::slice::from_ref(image))?;
        Ok(all.remove(0))
    }

    /// Writes the decoder to `path` (safetensors; the shape in its metadata).
    pub fn save(&self, path: &Path) -> Result<(), DecoderError> {
        let format_err = |reason: String| DecoderError::Format { path: path.to_owned(), reason };
        let mut tensors = Vec::new();
        for (prefix, params) in [("decoder", &self.decoder), ("classifier", &self.classifier)] {
            for (i, t) in params.iter().enumerate() {
                let values = t.flatten_all()?.to_vec1::<f32>()?;
                let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                tensors.push((format!("{prefix}.{i}"), t.dims().to_vec(), bytes));
            }
        }
        let views = tensors
            .iter()
            .map(|(name, shape, bytes)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .map(|view| (name.clone(), view))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format_err(e.to_string()))?;
        let bits = match self.config.kind {
            DecoderKind::Image => 0,
            DecoderKind::Bits(n) => n,
        };
        let metadata = HashMap::from([
            ("format".to_owned(), FORMAT.to_owned()),
            ("side".to_owned(), self.config.side.to_string()),
            ("width".to_owned(), self.config.width.to_string()),
            ("bits".to_owned(), bits.to_string()),
            ("secret".to_owned(), self.secret.name().to_owned()),
            ("threshold".to_owned(), self.threshold.to_string()),
        ]);
        let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| format_err(e.to_string()))?;
        crate::files::write_atomic(path, bytes).map_err(|source| DecoderError::Write { path: path.to_owned(), source })
    }

    /// Reads a decoder written by [`Decoder::save`], checking every tensor's shape.
    pub fn load(path: &Path) -> Result<Self, DecoderError> {
        let bytes = crate::files::read_capped(path, crate::files::SMALL_WEIGHTS)
            .map_err(|source| DecoderError::Read { path: path.to_owned(), source })?;
        let format_err = |reason: String| DecoderError::Format { path: path.to_owned(), reason };
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| format_err(format!("not a safetensors file ({e})")))?;
        let tensors = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| format_err(format!("not a safetensors file ({e})")))?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let field = |name: &str| {
            metadata.get(name).ok_or_else(|| {
                format_err(format!("metadata `{name}` is missing (not a decoder written by `sparsefield stega embed`)"))
            })
        };
        if field("format")? != FORMAT {
            return Err(format_err(format!("format `{}` is not `{FORMAT}`", field("format")?)));
        }
        let number = |name: &str| -> Result<usize, DecoderError> {
            field(name)?.parse().map_err(|_| format_err(format!("metadata `{name}` is not a whole number")))
        };
        let (side, width, bits) = (number("side")?, number("width")?, number("bits")?);
        let secret = match field("secret")?.as_str() {
            "image" => SecretKind::Image,
            "text" => SecretKind::Text,
            "bits" => SecretKind::Bits,
            other => return Err(format_err(format!("unknown secret kind `{other}`"))),
        };
        let threshold = match metadata.get("threshold") {
            None => DEFAULT_THRESHOLD,
            Some(text) => match text.parse::<f32>() {
                Ok(t) if t > 0.0 && t < 1.0 => t,
                _ => return Err(format_err(format!("metadata `threshold` is `{text}`, not a number between 0 and 1"))),
            },
        };
        let kind = if secret == SecretKind::Image { DecoderKind::Image } else { DecoderKind::Bits(bits) };
        let config = NetsConfig { side, width, kind };
        config.validate().map_err(&format_err)?;
        if side > 1024 || width > 256 || bits > super::secret::MAX_SECRET_BITS {
            return Err(format_err(format!("side {side}, width {width} or {bits} bits is out of range")));
        }
        let (decoder_shapes, classifier_shapes) = config.shapes();
        let read = |prefix: &str, shapes: &[Vec<usize>]| -> Result<Vec<Tensor>, DecoderError> {
            let mut params = Vec::with_capacity(2 * shapes.len());
            for (i, shape) in shapes.iter().flat_map(|s| [s.clone(), vec![s[0]]]).enumerate() {
                let name = format!("{prefix}.{i}");
                let view = tensors.tensor(&name).map_err(|_| format_err(format!("tensor `{name}` is missing")))?;
                if view.dtype() != safetensors::Dtype::F32 || view.shape() != shape.as_slice() {
                    return Err(format_err(format!(
                        "tensor `{name}` is {:?} {:?}, expected F32 {shape:?} (a decoder of another secret size or kind?)",
                        view.dtype(),
                        view.shape()
                    )));
                }
                let values: Vec<f32> =
                    view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                if values.iter().any(|v| !v.is_finite()) {
                    return Err(format_err(format!("tensor `{name}` holds NaN or infinite values")));
                }
                params.push(Tensor::from_vec(values, shape, &Device::Cpu)?);
            }
            Ok(params)
        };
        Ok(Self {
            decoder: read("decoder", &decoder_shapes)?,
            classifier: read("classifier", &classifier_shapes)?,
            config,
            secret,
            threshold,
        })
    }
}

/// The threshold that tells `marked` scores from `clean` ones best. When a gap separates them:
/// the point as many standard deviations from either side's mean, in logits (where a wide
/// spread on one side, such as clean views of poses that look marked, pulls the cut towards the
/// other), kept inside the gap; otherwise the cut with the fewest errors (the one nearest 0.5
/// among equals). Either list empty: [`DEFAULT_THRESHOLD`].
pub fn calibrate_threshold(marked: &[f32], clean: &[f32]) -> f32 {
    let finite = |v: &[f32]| v.iter().copied().filter(|x| x.is_finite()).collect::<Vec<f32>>();
    let (marked, clean) = (finite(marked), finite(clean));
    if marked.is_empty() || clean.is_empty() {
        return DEFAULT_THRESHOLD;
    }
    let lowest_marked = marked.iter().copied().fold(f32::INFINITY, f32::min);
    let highest_clean = clean.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if highest_clean < lowest_marked {
        let logit = |p: f32| {
            let p = f64::from(p.clamp(1e-6, 1.0 - 1e-6));
            (p / (1.0 - p)).ln()
        };
        let spread = |v: &[f32]| {
            let l: Vec<f64> = v.iter().map(|&p| logit(p)).collect();
            crate::metrics::mean_std(&l)
        };
        let ((mc, sc), (mm, sm)) = (spread(&clean), spread(&marked));
        // One score per side (no spread): the middle.
        let t = if sc + sm > 0.0 { (mc * sm + mm * sc) / (sc + sm) } else { 0.5 * (mc + mm) };
        #[allow(clippy::cast_possible_truncation)]
        let p = (1.0 / (1.0 + (-t).exp())) as f32;
        // Inside the gap, a little way from its ends.
        let margin = 0.05 * (lowest_marked - highest_clean);
        return p.clamp(highest_clean + margin, lowest_marked - margin);
    }
    let mut all: Vec<f32> = marked.iter().chain(&clean).copied().collect();
    all.sort_unstable_by(f32::total_cmp);
    all.dedup();
    let errors = |t: f32| marked.iter().filter(|&&s| s < t).count() + clean.iter().filter(|&&s| s >= t).count();
    let mut best = (usize::MAX, f32::INFINITY, DEFAULT_THRESHOLD);
    for pair in all.windows(2) {
        let t = 0.5 * (pair[0] + pair[1]);
        let candidate = (errors(t), (t - DEFAULT_THRESHOLD).abs(), t);
        if (candidate.0, candidate.1) < (best.0, best.1) {
            best = candidate;
        }
    }
    best.2.clamp(1e-4, 1.0 - 1e-4)
}
