//! Loading a data set's images: headers checked first, each distinct file decoded once, decoding
//! batched and downscaled band by band.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use glam::Vec3;
use image::ImageReader;
use rayon::prelude::*;

use super::*;
use crate::image_io::{self, ImageError, MAX_IMAGE_SIDE, header_limits};

// ---------------------------------------------------------------------------------------------
// Loading images.

/// A view as loaded: the view, and whether its image has an alpha value below 1. Clones share
/// the pixels.
#[derive(Clone)]
pub(super) struct LoadedView {
    pub(super) view: View,
    pub(super) has_alpha: bool,
}

/// One frame of one split, for messages: the transforms file and the frame.
#[derive(Clone, Copy)]
pub(super) struct FrameAt<'a> {
    pub(super) file: &'a TransformsFile,
    pub(super) frame: &'a FrameSpec,
}

impl FrameAt<'_> {
    pub(super) fn image_error(self, source: ImageError) -> DatasetError {
        DatasetError::Image { file: self.file.path.clone(), location: frame_location(self.frame.index), source }
    }
}

/// An image file's size and the bytes its decoder will hold, from its header.
#[derive(Clone, Copy)]
pub(super) struct Header {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) stored_bytes: u64,
}

/// An image decoded once and shared by every frame that names it.
pub(super) struct Decoded {
    pub(super) rgba: Arc<[[f32; 4]]>,
    pub(super) has_alpha: bool,
}

/// Loads the images of several splits (each a transforms file and frames of it). Every check that
/// a header can answer comes first, for all splits: sizes against `w`/`h`, against the downscale
/// factor and against the split's first image, and the memory of the decoded views, counted once
/// per distinct file (the val split often names the test images, and one image may serve many
/// frames) against [`MAX_DATASET_BYTES`]. Each distinct file is then decoded once, at most
/// [`image_io::MAX_DECODE_BYTES`] of stored pixels at a time across the parallel decoders, and
/// downscaled band by band, so the full-size image never exists in f32.
pub(super) fn load_splits(
    splits: &[(&TransformsFile, &[FrameSpec])],
    factor: u32,
) -> Result<Vec<Vec<LoadedView>>, DatasetError> {
    let mut headers: HashMap<&Path, Header> = HashMap::new();
    // Distinct files in order of first use, each with the first frame naming it.
    let mut distinct: Vec<(FrameAt<'_>, Header)> = Vec::new();
    for &(file, frames) in splits {
        let mut first: Option<(usize, Header)> = None;
        for frame in frames {
            let at = FrameAt { file, frame };
            let header = match headers.get(frame.canonical.as_path()) {
                Some(header) => *header,
                None => {
                    let header = read_header(&frame.canonical, &frame.image).map_err(|e| at.image_error(e))?;
                    headers.insert(&frame.canonical, header);
                    distinct.push((at, header));
                    header
                }
            };
            check_frame_size(at, header, first, factor)?;
            first.get_or_insert((frame.index, header));
        }
    }
    let f = u64::from(factor.max(1));
    let view_bytes = |h: &Header| (u64::from(h.width) / f) * (u64::from(h.height) / f) * 16;
    let total: u64 = distinct.iter().map(|(_, h)| view_bytes(h)).fold(0, u64::saturating_add);
    if total > MAX_DATASET_BYTES {
        #[allow(clippy::cast_precision_loss)] // a size in GiB for a message
        let gib = total as f64 / f64::from(1 << 30);
        return Err(DatasetError::BadValue {
            file: splits[0].0.path.clone(),
            location: TOP_LEVEL.to_owned(),
            key: "frames".to_owned(),
            problem: format!(
                "the data set's {} distinct images (all splits together) would take {gib:.1} GiB of memory once \
                 loaded; the most is {} GiB. Load them downscaled (--downscale, or Downscale in the app).",
                distinct.len(),
                MAX_DATASET_BYTES >> 30
            ),
        });
    }
    // Batches whose stored pixels fit the decoder's budget together, decoded in parallel.
    let mut decoded: HashMap<&Path, Decoded> = HashMap::new();
    let mut rest = &distinct[..];
    while !rest.is_empty() {
        let mut bytes = 0_u64;
        let take = rest
            .iter()
            .take_while(|(_, h)| {
                bytes = bytes.saturating_add(h.stored_bytes);
                bytes <= image_io::MAX_DECODE_BYTES
            })
            .count()
            .max(1);
        let (batch, later) = rest.split_at(take);
        rest = later;
        let results: Vec<Result<Decoded, DatasetError>> = batch
            .par_iter()
            .map(|&(at, header)| decode_downscaled(at.frame, header, factor).map_err(|e| at.image_error(e)))
            .collect();
        for ((at, _), result) in batch.iter().zip(results) {
            decoded.insert(&at.frame.canonical, result?);
        }
    }
    let mut out = Vec::with_capacity(splits.len());
    for &(_, frames) in splits {
        let mut views = Vec::with_capacity(frames.len());
        for frame in frames {
            let (Some(header), Some(image)) =
                (headers.get(frame.canonical.as_path()), decoded.get(frame.canonical.as_path()))
            else {
                unreachable!("every frame's image was read above");
            };
            let camera = frame.intrinsics.camera(header.width, header.height, frame.world_from_camera);
            let camera = if factor > 1 { camera.downscaled(factor) } else { camera };
            views.push(LoadedView {
                view: View { camera, rgba: Arc::clone(&image.rgba), source: frame.image.clone() },
                has_alpha: image.has_alpha,
            });
        }
        out.push(views);
    }
    Ok(out)
}

/// The size checks of one frame: against its `w`/`h`, the downscale factor, and the first image
/// of its split (`first`: that frame's index and header).
pub(super) fn check_frame_size(
    at: FrameAt<'_>,
    header: Header,
    first: Option<(usize, Header)>,
    factor: u32,
) -> Result<(), DatasetError> {
    let (file, frame) = (at.file.path.clone(), at.frame);
    let (width, height) = (header.width, header.height);
    let (expected_w, expected_h) = (frame.intrinsics.w.unwrap_or(width), frame.intrinsics.h.unwrap_or(height));
    let location = frame_location(frame.index);
    let image = frame.image.clone();
    if (expected_w, expected_h) != (width, height) {
        return Err(DatasetError::ImageSize {
            file,
            location,
            image,
            width,
            height,
            expected: format!("\"w\" and \"h\" say {expected_w}×{expected_h}; fix them or the image"),
        });
    }
    if width < factor || height < factor {
        return Err(DatasetError::DownscaleTooLarge { file, location, image, width, height, factor });
    }
    match first {
        Some((first_index, first)) if (first.width, first.height) != (width, height) => Err(DatasetError::ImageSize {
            file,
            location,
            image,
            width,
            height,
            expected: format!(
                "frame {first_index} is {}×{}; all images of a split must have the same size, so resize them",
                first.width, first.height
            ),
        }),
        _ => Ok(()),
    }
}

/// Reads an image's header alone, refusing sizes beyond [`MAX_IMAGE_SIDE`] before anything is
/// allocated for pixels.
pub(super) fn read_header(path: &Path, shown: &Path) -> Result<Header, ImageError> {
    let read_error = |source| ImageError::Read { path: shown.to_owned(), source };
    let decode_error = |e: image::ImageError| ImageError::Decode { path: shown.to_owned(), reason: e.to_string() };
    let mut reader = BufReader::new(File::open(path).map_err(read_error)?);
    let mut header = ImageReader::new(&mut reader).with_guessed_format().map_err(read_error)?;
    if !matches!(header.format(), Some(image::ImageFormat::Png | image::ImageFormat::Jpeg)) {
        return Err(ImageError::UnknownFormat { path: shown.to_owned() });
    }
    header.limits(header_limits());
    let decoder = header.into_decoder().map_err(decode_error)?;
    let (width, height) = image::ImageDecoder::dimensions(&decoder);
    if width == 0 || height == 0 {
        return Err(ImageError::Empty { path: shown.to_owned(), width, height });
    }
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(ImageError::TooLarge { path: shown.to_owned(), width, height, max: MAX_IMAGE_SIDE });
    }
    Ok(Header { width, height, stored_bytes: image::ImageDecoder::total_bytes(&decoder) })
}

/// Decodes a frame's image to RGBA in [0, 1] (gray expanded, missing alpha = 1) at `1/factor` of
/// its size. Only the stored pixels, one band of rows in f32 and the result are held at once.
pub(super) fn decode_downscaled(frame: &FrameSpec, header: Header, factor: u32) -> Result<Decoded, ImageError> {
    let shown = &frame.image;
    let read_error = |source| ImageError::Read { path: shown.clone(), source };
    let reader = BufReader::new(File::open(&frame.canonical).map_err(read_error)?);
    let (dynamic, color) = image_io::decode_checked(reader, shown, |_| 0)?;
    let (width, height) = (header.width, header.height);
    if (dynamic.width(), dynamic.height()) != (width, height) {
        return Err(ImageError::Decode {
            path: shown.clone(),
            reason: format!(
                "the header says {width}×{height} but the data is {}×{}",
                dynamic.width(),
                dynamic.height()
            ),
        });
    }
    let factor = factor.max(1);
    let used_rows = height / factor * factor;
    // Whole blocks of rows, about 16 rows or one block, whichever is more.
    let band_rows = factor * (16 / factor).max(1);
    let mut rgba = Vec::with_capacity((width / factor) as usize * (height / factor) as usize);
    let mut transparent = false;
    for top in (0..used_rows).step_by(band_rows as usize) {
        let rows = band_rows.min(used_rows - top);
        let band = dynamic.crop_imm(0, top, width, rows).to_rgba32f().into_raw();
        let band: Vec<[f32; 4]> = band.chunks_exact(4).map(|p| [p[0], p[1], p[2], p[3]]).collect();
        transparent |= color.has_alpha() && band.iter().any(|pixel| pixel[3] < 1.0);
        if factor > 1 {
            rgba.extend(box_downscale(&band, width, factor));
        } else {
            rgba.extend(band);
        }
    }
    Ok(Decoded { rgba: rgba.into(), has_alpha: transparent })
}

/// Box (area) filter: each output pixel averages a `factor × factor` block; the rows and columns
/// left over at the right and bottom are dropped, as [`Camera::downscaled`] does. Colours are
/// averaged weighted by alpha (premultiplied), so transparent pixels do not bleed their colour;
/// a fully transparent block keeps the plain average.
pub(super) fn box_downscale(rgba: &[[f32; 4]], width: u32, factor: u32) -> Vec<[f32; 4]> {
    let (width, factor) = (width as usize, factor.max(1) as usize);
    let height = rgba.len() / width.max(1);
    let (new_width, new_height) = (width / factor, height / factor);
    #[allow(clippy::cast_precision_loss)] // factor ≤ MAX_IMAGE_SIDE, so factor² is exact in f32
    let inv_area = 1.0 / (factor * factor) as f32;
    let mut out = Vec::with_capacity(new_width * new_height);
    for y in 0..new_height {
        for x in 0..new_width {
            let (mut premultiplied, mut straight, mut alpha) = (Vec3::ZERO, Vec3::ZERO, 0.0);
            for row in rgba.chunks_exact(width).skip(y * factor).take(factor) {
                for &[r, g, b, a] in row.iter().skip(x * factor).take(factor) {
                    let colour = Vec3::new(r, g, b);
                    premultiplied += a * colour;
                    straight += colour;
                    alpha += a;
                }
            }
            let colour = if alpha > 0.0 { premultiplied / alpha } else { straight * inv_area };
            out.push([colour.x, colour.y, colour.z, alpha * inv_area]);
        }
    }
    out
}
