//! Text and bit messages as the bits a decoder recovers: a 16-bit length, the payload, and a
//! CRC-32 of both, so that a recovered message is either exactly right or known to be wrong.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bits in the length header.
const LENGTH_BITS: usize = 16;
/// Bits in the checksum.
const CHECK_BITS: usize = 32;
/// The longest message in bytes (the header's range).
pub const MAX_MESSAGE_BYTES: usize = (1 << LENGTH_BITS) - 1;

/// Why recovered bits are not a message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("the message is {0} bytes; at most {MAX_MESSAGE_BYTES} fit the length header")]
    TooLong(usize),
    #[error("{0} bits are too few for a message (the header and checksum alone take {min})", min = LENGTH_BITS + CHECK_BITS)]
    TooShort(usize),
    #[error("the header says {declared} bytes but {available} bits hold at most {fits}")]
    BadLength { declared: usize, available: usize, fits: usize },
    #[error("the checksum does not match: at least one recovered bit is wrong")]
    Checksum,
    #[error("the message is not UTF-8 text")]
    NotText,
}

fn push_bits(bits: &mut Vec<bool>, value: u64, count: usize) {
    bits.extend((0..count).rev().map(|k| (value >> k) & 1 == 1));
}

fn read_bits(bits: &[bool]) -> u64 {
    bits.iter().fold(0, |acc, &b| (acc << 1) | u64::from(b))
}

fn bytes_to_bits(bytes: &[u8]) -> Vec<bool> {
    let mut bits = Vec::with_capacity(bytes.len() * 8);
    for &byte in bytes {
        push_bits(&mut bits, u64::from(byte), 8);
    }
    bits
}

fn bits_to_bytes(bits: &[bool]) -> Vec<u8> {
    #[allow(clippy::cast_possible_truncation)]
    bits.chunks(8).map(|byte| read_bits(byte) as u8).collect()
}

/// `bytes` framed for hiding: length (16 bits, most significant first), the bytes, and a CRC-32
/// of the length and bytes.
pub fn encode_bytes(bytes: &[u8]) -> Result<Vec<bool>, MessageError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLong(bytes.len()));
    }
    let mut bits = Vec::with_capacity(LENGTH_BITS + bytes.len() * 8 + CHECK_BITS);
    push_bits(&mut bits, bytes.len() as u64, LENGTH_BITS);
    bits.extend(bytes_to_bits(bytes));
    let checksum = crc32fast::hash(&bits_to_bytes(&bits));
    push_bits(&mut bits, u64::from(checksum), CHECK_BITS);
    Ok(bits)
}

/// The bytes framed by [`encode_bytes`] at the start of `bits` (anything after them is ignored,
/// so a decoder with room for more bits than the message needs works too).
pub fn decode_bytes(bits: &[bool]) -> Result<Vec<u8>, MessageError> {
    if bits.len() < LENGTH_BITS + CHECK_BITS {
        return Err(MessageError::TooShort(bits.len()));
    }
    #[allow(clippy::cast_possible_truncation)]
    let declared = read_bits(&bits[..LENGTH_BITS]) as usize;
    let fits = (bits.len() - LENGTH_BITS - CHECK_BITS) / 8;
    if declared > fits {
        return Err(MessageError::BadLength { declared, available: bits.len(), fits });
    }
    let body_end = LENGTH_BITS + declared * 8;
    let expected = read_bits(&bits[body_end..body_end + CHECK_BITS]);
    if u64::from(crc32fast::hash(&bits_to_bytes(&bits[..body_end]))) != expected {
        return Err(MessageError::Checksum);
    }
    Ok(bits_to_bytes(&bits[LENGTH_BITS..body_end]))
}

/// A UTF-8 text framed for hiding (see [`encode_bytes`]).
pub fn encode_text(text: &str) -> Result<Vec<bool>, MessageError> {
    encode_bytes(text.as_bytes())
}

/// The text framed at the start of `bits`.
pub fn decode_text(bits: &[bool]) -> Result<String, MessageError> {
    String::from_utf8(decode_bytes(bits)?).map_err(|_| MessageError::NotText)
}

/// Bits a message of `bytes` bytes takes.
pub fn framed_bits(bytes: usize) -> usize {
    LENGTH_BITS + 8 * bytes + CHECK_BITS
}

/// `count` random bits, the same for a seed (a raw bit secret, scored by bit accuracy).
pub fn random_bits(count: usize, seed: u64) -> Vec<bool> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count).map(|_| rng.random::<bool>()).collect()
}

/// The fraction of `recovered` bits equal to `truth` (0 when the lengths differ or are zero).
pub fn bit_accuracy(recovered: &[bool], truth: &[bool]) -> f64 {
    if recovered.len() != truth.len() || truth.is_empty() {
        return 0.0;
    }
    let same = recovered.iter().zip(truth).filter(|(a, b)| a == b).count();
    #[allow(clippy::cast_precision_loss)]
    let accuracy = same as f64 / truth.len() as f64;
    accuracy
}
