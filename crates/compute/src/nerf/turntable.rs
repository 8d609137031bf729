//! Turntables of a trained field: frames rendered one by one around an orbit, and an animated GIF
//! written safely. The CLI, the NeRF lab's export and the lift lab's results all use these.

use std::path::{Path, PathBuf};

use super::orbit::Orbit;
use super::render::render_camera;
use super::train::NerfSnapshot;
use crate::image_io::ImageData;

/// A GIF that could not be made or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write ({reason})")]
pub struct GifError {
    pub path: PathBuf,
    pub reason: String,
}

impl GifError {
    fn new(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self { path: path.to_owned(), reason: reason.to_string() }
    }
}

/// Renders a turntable of `snapshot` frame by frame, handing each to `sink` (which writes it),
/// so that long turntables never sit in memory; `on_frame` sees each frame's index first and
/// may stop the render by returning `false`.
pub fn turntable<E>(
    snapshot: &NerfSnapshot,
    orbit: &Orbit,
    frames: usize,
    size: u32,
    mut on_frame: impl FnMut(usize) -> bool,
    mut sink: impl FnMut(usize, &ImageData) -> Result<(), E>,
) -> Result<bool, E> {
    for (i, camera) in orbit.turntable(frames, size, size).iter().enumerate() {
        if !on_frame(i) {
            return Ok(false);
        }
        let image = render_camera(&snapshot.weights, &snapshot.occupancy, &snapshot.march, camera, snapshot.background)
            .rgb_image();
        sink(i, &image)?;
    }
    Ok(true)
}

/// An endlessly looping GIF built frame by frame in memory and written by [`GifWriter::finish`]
/// through `compute::files::write_atomic`: a failed write is an error, never a truncated GIF.
pub struct GifWriter {
    encoder: Option<image::codecs::gif::GifEncoder<SharedBuffer>>,
    buffer: SharedBuffer,
    path: PathBuf,
    delay: image::Delay,
}

/// The GIF's bytes, shared with the encoder (which only lets go of its writer when dropped).
#[derive(Clone, Default)]
struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("the GIF buffer is poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl GifWriter {
    pub fn create(path: &Path, fps: u32) -> Result<Self, GifError> {
        use image::codecs::gif::{GifEncoder, Repeat};
        let buffer = SharedBuffer::default();
        let mut encoder = GifEncoder::new_with_speed(buffer.clone(), 10);
        encoder.set_repeat(Repeat::Infinite).map_err(|e| GifError::new(path, e))?;
        Ok(Self {
            encoder: Some(encoder),
            buffer,
            path: path.to_owned(),
            delay: image::Delay::from_numer_denom_ms(1000, fps.max(1)),
        })
    }

    pub fn add(&mut self, frame: &ImageData) -> Result<(), GifError> {
        let buffer = image::RgbaImage::from_raw(frame.width, frame.height, frame.to_rgba8())
            .ok_or_else(|| GifError::new(&self.path, "a frame's size does not match its pixels"))?;
        let encoder = self.encoder.as_mut().ok_or_else(|| GifError::new(&self.path, "the GIF is already finished"))?;
        encoder
            .encode_frame(image::Frame::from_parts(buffer, 0, 0, self.delay))
            .map_err(|e| GifError::new(&self.path, e))
    }

    /// Ends the GIF and writes it to its file.
    pub fn finish(mut self) -> Result<(), GifError> {
        // Dropping the encoder writes the GIF's trailer.
        drop(self.encoder.take());
        let bytes = std::mem::take(
            &mut *self.buffer.0.lock().map_err(|_| GifError::new(&self.path, "the GIF buffer is poisoned"))?,
        );
        crate::files::write_atomic(&self.path, bytes).map_err(|e| GifError::new(&self.path, e))
    }
}
