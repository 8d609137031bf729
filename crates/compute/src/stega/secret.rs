//! The secret a field is made to carry: an image brought to a square side (64² by default,
//! 32²–128²), a text message, or random bits. Text and bits are both bit strings to the decoder;
//! an image is pixels.

use std::path::Path;

use super::message::{self, MessageError};
use crate::image_io::{self, ImageData, ImageError};

/// The side a secret image is brought to by default, and the range allowed.
pub const DEFAULT_SECRET_SIDE: u32 = 64;
pub const MIN_SECRET_SIDE: u32 = 32;
pub const MAX_SECRET_SIDE: u32 = 128;
/// The most bits a bit secret (or a framed text) may take.
pub const MAX_SECRET_BITS: usize = 4096;

/// Why a secret cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("the secret image side must be {MIN_SECRET_SIDE}–{MAX_SECRET_SIDE} px; {0} was asked")]
    Side(u32),
    #[error("a bit secret takes 1–{MAX_SECRET_BITS} bits; {0} were asked")]
    BitCount(usize),
    #[error("the text takes {0} bits with its header and checksum; at most {MAX_SECRET_BITS} fit (shorten it)")]
    TextTooLong(usize),
    #[error(transparent)]
    Message(#[from] MessageError),
}

/// What the decoder must recover.
#[derive(Clone, Debug, PartialEq)]
pub enum Secret {
    /// An RGB image, `side × side`.
    Image(ImageData),
    /// A text, framed as bits (see [`message::encode_text`]).
    Text { text: String, bits: Vec<bool> },
    /// Random bits (scored by bit accuracy).
    Bits(Vec<bool>),
}

impl Secret {
    /// `image` as a secret: gray made RGB, cropped to its centred square and resized to `side`.
    pub fn image(image: &ImageData, side: u32) -> Result<Self, SecretError> {
        if !(MIN_SECRET_SIDE..=MAX_SECRET_SIDE).contains(&side) {
            return Err(SecretError::Side(side));
        }
        let square = image.width.min(image.height);
        let window =
            crate::filters::crop(image, (image.width - square) / 2, (image.height - square) / 2, square, square);
        let rgb = if window.channels == 3 {
            window
        } else {
            let pixels = window.pixels.iter().flat_map(|&v| [v, v, v]).collect();
            ImageData { channels: 3, pixels, ..window }
        };
        Ok(Self::Image(super::attacks::resize(&rgb, side, side)))
    }

    /// The image file at `path` as a secret (see [`Secret::image`]); errors name the file.
    pub fn image_file(path: &Path, side: u32) -> Result<Self, SecretError> {
        let loaded = image_io::load_image(path)?;
        Self::image(&loaded.image, side)
    }

    /// A text message as a secret.
    pub fn text(text: &str) -> Result<Self, SecretError> {
        let bits = message::encode_text(text)?;
        if bits.len() > MAX_SECRET_BITS {
            return Err(SecretError::TextTooLong(bits.len()));
        }
        Ok(Self::Text { text: text.to_owned(), bits })
    }

    /// `count` seeded random bits as a secret.
    pub fn bits(count: usize, seed: u64) -> Result<Self, SecretError> {
        if !(1..=MAX_SECRET_BITS).contains(&count) {
            return Err(SecretError::BitCount(count));
        }
        Ok(Self::Bits(message::random_bits(count, seed)))
    }

    /// The decoder's target: pixel values for an image (row-major RGB), 0/1 for bits.
    pub fn target(&self) -> Vec<f32> {
        match self {
            Self::Image(image) => image.pixels.clone(),
            Self::Text { bits, .. } | Self::Bits(bits) => bits.iter().map(|&b| f32::from(u8::from(b))).collect(),
        }
    }

    /// What "no secret" decodes to: black for an image, all zero bits otherwise (the classifier
    /// tells such a view from a marked one).
    pub fn blank(&self) -> Vec<f32> {
        vec![0.0; self.target().len()]
    }

    /// A short description, e.g. "64×64 image" or "text, 22 bytes (224 bits)".
    pub fn describe(&self) -> String {
        match self {
            Self::Image(image) => format!("{}×{} image", image.width, image.height),
            Self::Text { text, bits } => format!("text, {} bytes ({} bits)", text.len(), bits.len()),
            Self::Bits(bits) => format!("{} random bits", bits.len()),
        }
    }
}
