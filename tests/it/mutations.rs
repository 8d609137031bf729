//! Seeded mutations of valid files for every loader that parses bytes: truncation at many points,
//! bit flips, bytes set to 0x00/0xFF/0x80, numbers in the text replaced by extremes (0, -1, 2³¹,
//! 2⁶³, NaN, 1e39), multibyte and invalid UTF-8 inserted. Every case must end in an error or a
//! valid result, never a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparsefield::compute::{image_io, inr, lift, nerf};

/// The mutants of `valid`: deterministic for a seed.
fn mutants(valid: &[u8], seed: u64, random_cases: usize) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    let len = valid.len();
    // Truncation at every 1/64th and around both ends.
    for cut in (0..=64).map(|k| k * len / 64).chain([1, 2, len.saturating_sub(1), len.saturating_sub(2)]) {
        out.push(valid[..cut.min(len)].to_vec());
    }
    for _ in 0..random_cases {
        let mut bytes = valid.to_vec();
        match rng.random_range(0..5) {
            0 => {
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..len);
                    bytes[at] ^= 1 << rng.random_range(0..8);
                }
            }
            1 => {
                let at = rng.random_range(0..len);
                bytes[at] = [0x00, 0xFF, 0x80, 0xC3][rng.random_range(0..4)];
            }
            2 => {
                // A run of ASCII digits becomes an extreme value.
                let starts: Vec<usize> = (0..len)
                    .filter(|&i| bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()))
                    .collect();
                if let Some(&start) = starts.get(rng.random_range(0..starts.len().max(1))) {
                    let end = (start..len).find(|&i| !bytes[i].is_ascii_digit()).unwrap_or(len);
                    let value =
                        ["0", "-1", "2147483648", "9223372036854775808", "NaN", "1e39", "é"][rng.random_range(0..7)];
                    bytes.splice(start..end, value.bytes());
                }
            }
            3 => {
                let at = rng.random_range(0..=len);
                let text: &[u8] =
                    [&b"\xc3\xa9"[..], "€".as_bytes(), b"\xff\xfe", "\u{1F600}".as_bytes()][rng.random_range(0..4)];
                bytes.splice(at..at, text.iter().copied());
            }
            _ => {
                // A repeated block: lengths and counts stop matching.
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..64)).min(len);
                let block = bytes[start..end].to_vec();
                bytes.splice(start..start, block);
            }
        }
        out.push(bytes);
    }
    out
}

/// Runs `load` on every mutant of `valid`; fails listing the mutants that panicked.
fn survives(what: &str, valid: &[u8], seed: u64, random_cases: usize, load: impl Fn(&[u8])) -> usize {
    assert!(catch_unwind(AssertUnwindSafe(|| load(valid))).is_ok(), "{what}: the valid file itself panics");
    let cases = mutants(valid, seed, random_cases);
    let panicked: Vec<usize> = cases
        .iter()
        .enumerate()
        .filter(|(_, bytes)| catch_unwind(AssertUnwindSafe(|| load(bytes))).is_err())
        .map(|(i, _)| i)
        .collect();
    assert!(panicked.is_empty(), "{what}: mutants {panicked:?} of {} panicked (seed {seed})", cases.len());
    cases.len()
}

#[test]
fn loaders_never_panic_on_mutated_files() {
    let mut total = 0;
    // Images: PNG (gray, RGB, 16-bit) and JPEG.
    let pixels: Vec<u8> = (0..12 * 9 * 3).map(|i| (i * 7 % 256) as u8).collect();
    for (format, color, data) in [
        (image::ImageFormat::Png, image::ExtendedColorType::Rgb8, pixels.clone()),
        (image::ImageFormat::Png, image::ExtendedColorType::L16, pixels[..12 * 9 * 2].to_vec()),
        (image::ImageFormat::Jpeg, image::ExtendedColorType::Rgb8, pixels.clone()),
    ] {
        let mut encoded = std::io::Cursor::new(Vec::new());
        image::write_buffer_with_format(&mut encoded, &data, 12, 9, color, format).unwrap();
        total += survives(&format!("{format:?} {color:?}"), encoded.get_ref(), 1, 400, |bytes| {
            let _ = image_io::load_image_bytes(bytes, "m.png");
        });
    }
    // A .npy depth map.
    let depth: Vec<u8> = (0..12).flat_map(|i| (i as f32 * 0.5).to_le_bytes()).collect();
    total += survives("npy", &super::lift::npy_bytes("<f4", "(3, 4)", false, &depth), 2, 400, |bytes| {
        let _ = lift::input::read_npy(bytes);
    });
    // INR weights (safetensors with a JSON configuration in its header).
    let dir = super::common::temp_dir("mutations");
    let path = dir.join("w.safetensors");
    inr::SirenWeights::init(inr::SirenConfig::image(1, 8, 2, 30.0), 0).save(&path, &[("note", "x".into())]).unwrap();
    total += survives("safetensors", &std::fs::read(&path).unwrap(), 3, 400, |bytes| {
        let _ = inr::SirenWeights::from_safetensors_bytes(bytes, Path::new("m.safetensors"));
    });
    // Meshes: OBJ, PLY and OFF of a tetrahedron.
    let obj =
        b"# tetrahedron\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nvn 0 0 1\nf 1 2 3\nf 1//1 2//1 4//1\nf 1 3 4\nf 2 3 4\n";
    let off = b"OFF\n4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n";
    let ply = b"ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n\
element face 4\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n";
    for (name, bytes, seed) in [("m.obj", &obj[..], 4), ("m.off", &off[..], 5), ("m.ply", &ply[..], 6)] {
        assert!(nerf::synth::mesh::read_mesh(bytes, Path::new(name)).is_ok(), "{name} is valid");
        total += survives(name, bytes, seed, 400, |bytes| {
            let _ = nerf::synth::mesh::read_mesh(bytes, Path::new(name));
        });
    }
    assert!(total > 3000, "{total} cases");
}

#[test]
fn the_harness_reports_a_loader_that_panics() {
    // A parser that slices a header without checking the length: the truncations catch it.
    let result = catch_unwind(|| {
        survives("fragile", b"HEADER01 and the rest of a file", 7, 20, |bytes| {
            let _ = &bytes[..8];
        })
    });
    let message = result.expect_err("a panicking loader fails the check");
    let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("fragile") && text.contains("panicked"), "{text}");
}
