//! Loading and saving images: strict checks, clear errors, f32 pixels in [0, 1].

use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};

use image::{ColorType, DynamicImage, ImageDecoder, ImageReader};

/// The largest accepted width or height; larger headers are refused before any pixel is decoded.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// Limits for reading an image's header: no size limit (the size is checked afterwards, so the
/// message can say it), but little memory, so that a compressed metadata chunk (a PNG `iCCP`
/// bomb) cannot allocate gigabytes before the size check.
pub fn header_limits() -> image::Limits {
    let mut limits = image::Limits::no_limits();
    limits.max_alloc = Some(64 << 20);
    limits
}

/// The most memory decoding one image may take: its pixels as stored plus their f32 copy. Checked
/// from the header, before decoding (8192×8192 RGB at 8 bits needs 960 MiB).
pub const MAX_DECODE_BYTES: u64 = 1 << 30;
/// What the pixel pass may allocate beyond the decoded pixels (metadata chunks such as ICC
/// profiles; a compressed `iCCP` or `zTXt` chunk can claim gigabytes).
const METADATA_ALLOWANCE_BYTES: u64 = 64 << 20;

/// A row-major image with 1 (gray) or 3 (RGB) channels (4, RGBA, only from
/// [`load_image_with_alpha`]), values in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct ImageData {
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub pixels: Vec<f32>,
}

impl ImageData {
    pub fn new(width: u32, height: u32, channels: usize, pixels: Vec<f32>) -> Result<Self, ImageError> {
        let expected = width as usize * height as usize * channels;
        if !(channels == 1 || channels == 3) || pixels.len() != expected || width == 0 || height == 0 {
            return Err(ImageError::Shape { width, height, channels, len: pixels.len() });
        }
        Ok(Self { width, height, channels, pixels })
    }

    pub fn num_pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// Pixel `(x, y)`, channel `c`.
    pub fn at(&self, x: u32, y: u32, c: usize) -> f32 {
        self.pixels[(y as usize * self.width as usize + x as usize) * self.channels + c]
    }

    /// Gamma-encoded 8-bit RGBA, as image files and egui textures want it.
    pub fn to_rgba8(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.num_pixels() * 4);
        for px in self.pixels.chunks_exact(self.channels) {
            let rgb = if self.channels == 1 { [px[0]; 3] } else { [px[0], px[1], px[2]] };
            out.extend(rgb.iter().map(|&v| to_u8(v)));
            out.push(255);
        }
        out
    }

    /// Downscales (never upscales) so that the longer side is at most `max_side`, keeping the
    /// aspect ratio; returns `self` unchanged when it already fits.
    pub fn downscaled_to(self, max_side: u32) -> Self {
        let longer = self.width.max(self.height);
        if longer <= max_side || max_side == 0 {
            return self;
        }
        let scale = f64::from(max_side) / f64::from(longer);
        let (new_w, new_h) = (scaled_side(self.width, scale), scaled_side(self.height, scale));
        self.resized(new_w, new_h, image::imageops::FilterType::Lanczos3)
    }

    /// Resized to `width × height` with `filter` (gray or RGB), values clamped to [0, 1].
    pub fn resized(&self, width: u32, height: u32, filter: image::imageops::FilterType) -> Self {
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
        let (pixels, channels) = if self.channels == 1 {
            let buf = image::ImageBuffer::<image::Luma<f32>, _>::from_raw(self.width, self.height, self.pixels.clone())
                .map(|b| image::imageops::resize(&b, width, height, filter).into_raw());
            (buf, 1)
        } else {
            let buf = image::ImageBuffer::<image::Rgb<f32>, _>::from_raw(self.width, self.height, self.pixels.clone())
                .map(|b| image::imageops::resize(&b, width, height, filter).into_raw());
            (buf, 3)
        };
        let pixels = pixels.unwrap_or_else(|| vec![0.0; width as usize * height as usize * channels]);
        Self { width, height, channels, pixels: pixels.into_iter().map(|v| v.clamp(0.0, 1.0)).collect() }
    }
}

fn scaled_side(side: u32, scale: f64) -> u32 {
    // Sides are at most MAX_IMAGE_SIDE, so the rounded value fits in u32.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let scaled = (f64::from(side) * scale).round() as u32;
    scaled.max(1)
}

/// Quantises a [0, 1] value to 8 bits (values outside are clamped).
pub fn to_u8(v: f32) -> u8 {
    // Clamped to [0, 255] first, so the cast is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let q = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    q
}

/// An image and what the loader had to change to make it usable.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    pub image: ImageData,
    /// Human-readable notes, e.g. "alpha channel dropped".
    pub notices: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: file not found. Check the path, or pick the file with Open image….")]
    NotFound { path: PathBuf },
    #[error("{path}: cannot read the file ({source}).")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a PNG or JPEG image (the file's first bytes match no supported format).")]
    UnknownFormat { path: PathBuf },
    #[error("{path}: the image is {width}×{height} pixels; it must be at least 1×1. The file is probably damaged.")]
    Empty { path: PathBuf, width: u32, height: u32 },
    #[error(
        "{path}: the image claims to be {width}×{height} pixels; the largest accepted is {max}×{max}. \
         Downscale it with an image editor first."
    )]
    TooLarge { path: PathBuf, width: u32, height: u32, max: u32 },
    #[error(
        "{path}: decoding this {width}×{height} image needs {needed_mib} MiB; the most is {max_mib} MiB. \
         Downscale it with an image editor first."
    )]
    TooMuchMemory { path: PathBuf, width: u32, height: u32, needed_mib: u64, max_mib: u64 },
    #[error("{path}: cannot decode the image ({reason}). The file may be truncated or corrupt; re-export it as PNG.")]
    Decode { path: PathBuf, reason: String },
    #[error("{path}: images are written as PNG; name the file .png instead of .{extension}.")]
    NotPngName { path: PathBuf, extension: String },
    #[error("{path}: cannot write the image ({reason}). Check that the folder exists and is writable.")]
    Write { path: PathBuf, reason: String },
    #[error("image of {width}×{height}×{channels} needs {} values, got {len}", *width as usize * *height as usize * channels)]
    Shape { width: u32, height: u32, channels: usize, len: usize },
}

/// Opens an image file; a missing file gets its own message.
fn open(path: &Path) -> Result<std::fs::File, ImageError> {
    std::fs::File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ImageError::NotFound { path: path.to_owned() }
        } else {
            ImageError::Read { path: path.to_owned(), source }
        }
    })
}

/// Loads a PNG or JPEG file.
pub fn load_image(path: &Path) -> Result<LoadedImage, ImageError> {
    let file = open(path)?;
    decode(BufReader::new(file), path, false)
}

/// Loads a PNG or JPEG file keeping its alpha channel: 4 channels (RGBA, straight alpha) when the
/// file has one, otherwise 3 (or 1 for gray files).
pub fn load_image_with_alpha(path: &Path) -> Result<LoadedImage, ImageError> {
    let file = open(path)?;
    decode(BufReader::new(file), path, true)
}

/// Decodes an image held in memory; `name` is used in messages.
pub fn load_image_bytes(bytes: &[u8], name: &str) -> Result<LoadedImage, ImageError> {
    decode(Cursor::new(bytes), Path::new(name), false)
}

fn decode<R: std::io::BufRead + Seek + Read>(
    reader: R,
    path: &Path,
    keep_alpha: bool,
) -> Result<LoadedImage, ImageError> {
    // The f32 copy made below: RGBA when alpha is kept, else RGB or gray.
    let f32_values = |color: ColorType| -> u64 {
        if color.has_alpha() && keep_alpha {
            4
        } else if color.has_color() {
            3
        } else {
            1
        }
    };
    let (dynamic, color) = decode_checked(reader, path, f32_values)?;
    let (width, height) = (dynamic.width(), dynamic.height());
    let mut notices = Vec::new();
    if color.has_alpha() && !keep_alpha {
        notices.push(format!("{}: alpha channel dropped (only colour is fitted).", path.display()));
    }
    if matches!(color, ColorType::L16 | ColorType::La16 | ColorType::Rgb16 | ColorType::Rgba16) {
        notices.push(format!("{}: 16-bit image, kept at full precision.", path.display()));
    }
    let image = if keep_alpha && color.has_alpha() {
        let rgba = dynamic.to_rgba32f();
        ImageData { width, height, channels: 4, pixels: rgba.into_raw() }
    } else if color.has_color() {
        let rgb = dynamic.to_rgb32f();
        ImageData { width, height, channels: 3, pixels: rgb.into_raw() }
    } else {
        let gray = dynamic.to_luma32f();
        ImageData { width, height, channels: 1, pixels: gray.into_raw() }
    };
    Ok(LoadedImage { image, notices })
}

/// The one image decoder behind every image loader. The header pass checks the format (PNG or
/// JPEG), the sides ([`MAX_IMAGE_SIDE`]) and the memory: the pixels as stored plus the
/// `f32_values(colour type)` f32 values per pixel the caller will make of them must fit in
/// [`MAX_DECODE_BYTES`]; a JPEG must be complete. The pixel pass may allocate only the stored pixels
/// and a small allowance for metadata. Returns the image and its stored colour type.
pub fn decode_checked<R: std::io::BufRead + Seek + Read>(
    mut reader: R,
    path: &Path,
    f32_values: impl Fn(ColorType) -> u64,
) -> Result<(DynamicImage, ColorType), ImageError> {
    let read_err = |source| ImageError::Read { path: path.to_owned(), source };
    let decode_err = |e: image::ImageError| ImageError::Decode { path: path.to_owned(), reason: e.to_string() };
    let start = reader.stream_position().map_err(read_err)?;
    // First pass: the header alone, with little memory allowed, so that an oversized image is
    // refused with its real size before anything is allocated for its pixels.
    let mut header = ImageReader::new(&mut reader).with_guessed_format().map_err(read_err)?;
    match header.format() {
        Some(image::ImageFormat::Png | image::ImageFormat::Jpeg) => {}
        _ => {
            return Err(ImageError::UnknownFormat { path: path.to_owned() });
        }
    }
    header.limits(header_limits());
    let header = header.into_decoder().map_err(decode_err)?;
    let (width, height) = header.dimensions();
    if width == 0 || height == 0 {
        return Err(ImageError::Empty { path: path.to_owned(), width, height });
    }
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(ImageError::TooLarge { path: path.to_owned(), width, height, max: MAX_IMAGE_SIDE });
    }
    // Memory from the header: the stored pixels and the f32 copy made of them.
    let stored_bytes = header.total_bytes();
    let stored_color = header.color_type();
    drop(header);
    let needed_bytes = stored_bytes.saturating_add(u64::from(width) * u64::from(height) * f32_values(stored_color) * 4);
    if needed_bytes > MAX_DECODE_BYTES {
        return Err(ImageError::TooMuchMemory {
            path: path.to_owned(),
            width,
            height,
            needed_mib: needed_bytes.div_ceil(1 << 20),
            max_mib: MAX_DECODE_BYTES >> 20,
        });
    }
    reader.seek(std::io::SeekFrom::Start(start)).map_err(read_err)?;
    let mut pixels = ImageReader::new(reader).with_guessed_format().map_err(read_err)?;
    if pixels.format() == Some(image::ImageFormat::Jpeg) {
        // The JPEG decoder fills a truncated file's missing blocks with grey and reports success;
        // a complete file ends its scan with an end-of-image marker.
        let mut inner = pixels.into_inner();
        inner.seek(std::io::SeekFrom::Start(start)).map_err(read_err)?;
        if !jpeg_is_complete(&mut inner).map_err(read_err)? {
            return Err(ImageError::Decode {
                path: path.to_owned(),
                reason: "the JPEG is truncated: its image data has no end marker".to_owned(),
            });
        }
        inner.seek(std::io::SeekFrom::Start(start)).map_err(read_err)?;
        pixels = ImageReader::new(inner).with_guessed_format().map_err(read_err)?;
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(stored_bytes.saturating_add(METADATA_ALLOWANCE_BYTES));
    pixels.limits(limits);
    let decoder = pixels.into_decoder().map_err(decode_err)?;
    let color = decoder.color_type();
    let dynamic = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    Ok((dynamic, color))
}

/// Whether a JPEG stream has an end-of-image marker (`FF D9`) after its first scan (`FF DA`).
/// Inside entropy-coded data an `FF` byte is always followed by `00` or a restart marker, so
/// `FF D9` there can only be the end; earlier ones (in an embedded thumbnail) do not count.
fn jpeg_is_complete(reader: &mut impl Read) -> std::io::Result<bool> {
    let mut bytes = Vec::new();
    reader.take(1 << 30).read_to_end(&mut bytes)?;
    let Some(scan) = bytes.windows(2).position(|w| w == [0xFF, 0xDA]) else {
        return Ok(false);
    };
    Ok(bytes[scan..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// Writes 8-bit PNG (gray or RGB as the image has).
pub fn save_png(image: &ImageData, path: &Path) -> Result<(), ImageError> {
    let bytes: Vec<u8> = image.pixels.iter().map(|&v| to_u8(v)).collect();
    let color = if image.channels == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
    write_png(path, &bytes, image.width, image.height, color)
}

/// Writes 8-bit RGBA PNG.
pub fn save_rgba_png(rgba: &[u8], width: u32, height: u32, path: &Path) -> Result<(), ImageError> {
    write_png(path, rgba, width, height, image::ExtendedColorType::Rgba8)
}

/// Encodes in memory, then writes through [`crate::files::write_atomic`]: a failed write is an
/// error and never leaves a truncated PNG.
fn write_png(
    path: &Path,
    bytes: &[u8],
    width: u32,
    height: u32,
    color: image::ExtendedColorType,
) -> Result<(), ImageError> {
    let write_error = |reason: String| ImageError::Write { path: path.to_owned(), reason };
    if let Some(extension) = path.extension().filter(|e| !e.eq_ignore_ascii_case("png")) {
        return Err(ImageError::NotPngName {
            path: path.to_owned(),
            extension: extension.to_string_lossy().into_owned(),
        });
    }
    let mut encoded = std::io::Cursor::new(Vec::new());
    image::write_buffer_with_format(&mut encoded, bytes, width, height, color, image::ImageFormat::Png)
        .map_err(|e| write_error(e.to_string()))?;
    crate::files::write_atomic(path, encoded.into_inner()).map_err(|e| write_error(e.to_string()))
}

/// Built-in images, compiled into the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BuiltinImage {
    Camera,
    Coffee,
}

impl BuiltinImage {
    pub const ALL: [Self; 2] = [Self::Camera, Self::Coffee];

    pub fn label(self) -> &'static str {
        match self {
            Self::Camera => "camera.png (gray)",
            Self::Coffee => "coffee.png (RGB)",
        }
    }

    pub fn file_name(self) -> &'static str {
        match self {
            Self::Camera => "camera.png",
            Self::Coffee => "coffee.png",
        }
    }

    pub fn bytes(self) -> &'static [u8] {
        match self {
            Self::Camera => include_bytes!("../../../assets/camera.png"),
            Self::Coffee => include_bytes!("../../../assets/coffee.png"),
        }
    }
}
