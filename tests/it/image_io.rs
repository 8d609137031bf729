//! Image loading: every kind of bad input gives an error that names the file.

use sparsefield::compute::image_io::{self, ImageData, ImageError, MAX_IMAGE_SIDE};

use super::common::temp_dir;

fn png_bytes(width: u32, height: u32, color: image::ExtendedColorType, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    image::write_buffer_with_format(
        &mut std::io::Cursor::new(&mut out),
        data,
        width,
        height,
        color,
        image::ImageFormat::Png,
    )
    .unwrap();
    out
}

/// A PNG whose IHDR claims `width × height` (valid CRCs), with one tiny IDAT chunk: what a
/// decompression bomb or a damaged header looks like to a decoder's header pass.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(b"IHDR");
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit gray, deflate, no filter, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |body: &[u8]| {
        out.extend_from_slice(&u32::try_from(body.len() - 4).unwrap().to_be_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&crc32(body).to_be_bytes());
    };
    chunk(&ihdr);
    // An empty zlib stream.
    chunk(b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01");
    chunk(b"IEND");
    out
}

/// CRC-32 (ISO-HDLC), as PNG chunks use.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn gray_rgb_and_alpha_load_with_the_right_channels() {
    let dir = temp_dir("image_kinds");
    let gray = write(&dir, "gray.png", &png_bytes(2, 1, image::ExtendedColorType::L8, &[0, 255]));
    let loaded = image_io::load_image(&gray).unwrap();
    assert_eq!(loaded.image, ImageData::new(2, 1, 1, vec![0.0, 1.0]).unwrap());
    assert!(loaded.notices.is_empty());

    let rgba = write(&dir, "rgba.png", &png_bytes(1, 1, image::ExtendedColorType::Rgba8, &[255, 0, 51, 7]));
    let loaded = image_io::load_image(&rgba).unwrap();
    assert_eq!(loaded.image.channels, 3);
    assert_eq!(loaded.image.pixels, vec![1.0, 0.0, 0.2]);
    assert!(loaded.notices.iter().any(|n| n.contains("alpha")), "{:?}", loaded.notices);
}

#[test]
fn sixteen_bit_png_keeps_its_precision() {
    let dir = temp_dir("image_16bit");
    // 16-bit gray samples 0, 1 and 65535 (the encoder takes native-endian bytes): 1/65535 is lost at 8 bits.
    let data: Vec<u8> = [0_u16, 1, 65535].iter().flat_map(|v| v.to_ne_bytes()).collect();
    let path = write(&dir, "deep.png", &png_bytes(3, 1, image::ExtendedColorType::L16, &data));
    let loaded = image_io::load_image(&path).unwrap();
    assert_eq!(loaded.image.channels, 1);
    assert_eq!(loaded.image.pixels[0], 0.0);
    assert!((loaded.image.pixels[1] - 1.0 / 65535.0).abs() < 1e-9, "{}", loaded.image.pixels[1]);
    assert_eq!(loaded.image.pixels[2], 1.0);
    assert!(loaded.notices.iter().any(|n| n.contains("16-bit")));
}

#[test]
fn bad_inputs_give_errors_that_name_the_file() {
    let dir = temp_dir("image_bad");
    let good = png_bytes(8, 8, image::ExtendedColorType::L8, &[128; 64]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated.png", good[..good.len() / 2].to_vec(), "decode"),
        (
            "corrupt.png",
            {
                let mut b = good.clone();
                let n = b.len();
                for byte in &mut b[40..n - 12] {
                    *byte ^= 0x5A;
                }
                b
            },
            "decode",
        ),
        ("notes.png", b"these are notes, not pixels".to_vec(), "not a PNG or JPEG"),
        ("empty.png", Vec::new(), "not a PNG or JPEG"),
        ("zero.png", png_header_only(0, 5), "dimensions"),
        ("huge.png", png_header_only(60_000, 60_000), "60000×60000"),
    ];
    for (name, bytes, needle) in cases {
        let path = write(&dir, name, &bytes);
        let err = image_io::load_image(&path).expect_err(name);
        let message = err.to_string();
        assert!(message.contains(name), "{name}: message {message:?} should name the file");
        assert!(message.contains(needle), "{name}: message {message:?} should say {needle:?}");
    }
    let missing = image_io::load_image(&dir.join("missing.png")).unwrap_err();
    assert!(matches!(missing, ImageError::NotFound { .. }));
    assert!(missing.to_string().contains("missing.png"));
}

#[test]
fn huge_header_is_refused_before_decoding() {
    // The decoder would need 3.6 GB for this image; the refusal must come from the header check.
    let err = image_io::load_image_bytes(&png_header_only(60_000, 60_000), "huge.png").unwrap_err();
    assert!(matches!(err, ImageError::TooLarge { width: 60_000, height: 60_000, max: MAX_IMAGE_SIDE, .. }), "{err}");
}

#[test]
fn an_image_within_the_sides_but_too_big_to_decode_is_refused_from_its_header() {
    // 16000² gray: 244 MiB stored + 977 MiB as f32 = 1221 MiB > the 1024 MiB budget; the file is
    // a few dozen bytes.
    let err = image_io::load_image_bytes(&png_header_only(16_000, 16_000), "big.png").unwrap_err();
    assert!(
        matches!(err, ImageError::TooMuchMemory { width: 16_000, height: 16_000, needed_mib: 1221, max_mib: 1024, .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("big.png") && message.contains("1221 MiB") && message.contains("Downscale"), "{message}");
    // 8000² gray needs 61 + 244 MiB: past the header check, it fails on its missing pixel data
    // (the file holds none), not on memory.
    let err = image_io::load_image_bytes(&png_header_only(8000, 8000), "ok_size.png").unwrap_err();
    assert!(matches!(err, ImageError::Decode { .. }), "{err}");
}

#[test]
fn downscaling_keeps_aspect_and_never_upscales() {
    let image = ImageData::new(400, 100, 1, vec![0.5; 40_000]).unwrap();
    let small = image.clone().downscaled_to(200);
    assert_eq!((small.width, small.height), (200, 50));
    assert!(small.pixels.iter().all(|v| (v - 0.5).abs() < 1e-5));
    let same = image.clone().downscaled_to(1000);
    assert_eq!(same, image);
}

#[test]
fn png_round_trip_and_unwritable_destination() {
    let dir = temp_dir("image_save");
    let image = ImageData::new(3, 2, 3, (0..18).map(|i| i as f32 / 17.0).collect()).unwrap();
    let path = dir.join("out.png");
    image_io::save_png(&image, &path).unwrap();
    let back = image_io::load_image(&path).unwrap().image;
    for (a, b) in image.pixels.iter().zip(&back.pixels) {
        assert!((a - b).abs() <= 0.5 / 255.0 + 1e-6);
    }
    let err = image_io::save_png(&image, &dir.join("no/such/folder/out.png")).unwrap_err().to_string();
    assert!(err.contains("no/such/folder"), "{err}");
    // PNG bytes under another name are refused, and nothing is written.
    let jpg = dir.join("out.jpg");
    let err = image_io::save_png(&image, &jpg).unwrap_err().to_string();
    assert!(err.contains("out.jpg") && err.contains(".png"), "{err}");
    assert!(!jpg.exists());
    image_io::save_png(&image, &dir.join("upper.PNG")).unwrap();
}

#[test]
fn a_truncated_jpeg_is_refused_and_a_whole_one_loads() {
    // A 64×48 RGB gradient as JPEG, then the same file cut short.
    let (width, height) = (64_u32, 48_u32);
    let rgb: Vec<u8> = (0..width * height).flat_map(|i| [(i % 251) as u8, (i / 7 % 251) as u8, 128]).collect();
    let mut jpeg = std::io::Cursor::new(Vec::new());
    image::write_buffer_with_format(
        &mut jpeg,
        &rgb,
        width,
        height,
        image::ExtendedColorType::Rgb8,
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    let jpeg = jpeg.into_inner();
    let whole = image_io::load_image_bytes(&jpeg, "whole.jpg").unwrap().image;
    assert_eq!((whole.width, whole.height, whole.channels), (width, height, 3));
    for keep in [jpeg.len() * 3 / 4, jpeg.len() / 2, jpeg.len() - 2] {
        let err = image_io::load_image_bytes(&jpeg[..keep], "cut.jpg").unwrap_err().to_string();
        assert!(err.contains("cut.jpg") && err.contains("truncated"), "{keep} of {} bytes: {err}", jpeg.len());
    }
    // Bytes after the end marker (some cameras append data) do not matter.
    let mut trailing = jpeg.clone();
    trailing.extend_from_slice(b"extra bytes after the image");
    assert!(image_io::load_image_bytes(&trailing, "trailing.jpg").is_ok());
}
