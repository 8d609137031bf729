//! Seeded mutations of valid files for every loader that parses bytes: truncation at many points,
//! bit flips, bytes set to 0x00/0xFF/0x80, numbers in the text replaced by extremes (0, -1, 2³¹,
//! 2⁶³, NaN, 1e39), multibyte and invalid UTF-8 inserted. Every case must end in an error or a
//! valid result, never a panic, and never a single allocation above [`alloc_cap::CAP`] (the test
//! binary's allocator counts them).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparsefield::compute::{htl, image_io, inr, lift, nerf, ntk, prune};

use super::alloc_cap;
use super::common::temp_dir;

/// The mutation tests run one at a time, so that a count of large allocations belongs to one case.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

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

/// Runs `load` on every mutant of `valid`; fails listing the mutants that panicked or asked for a
/// block larger than [`alloc_cap::CAP`].
fn survives(what: &str, valid: &[u8], seed: u64, random_cases: usize, load: impl Fn(&[u8]) -> bool) -> usize {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = |bytes: &[u8]| -> Result<bool, String> {
        let (before, _) = alloc_cap::over_cap();
        let outcome = catch_unwind(AssertUnwindSafe(|| load(bytes)));
        let (after, largest) = alloc_cap::over_cap();
        match outcome {
            Err(_) => Err("panicked".into()),
            Ok(_) if after > before => Err(format!("asked for {largest} bytes in one block")),
            Ok(accepted) => Ok(accepted),
        }
    };
    match run(valid) {
        Ok(true) => {}
        Ok(false) => panic!("{what}: the valid file is refused"),
        Err(problem) => panic!("{what}: the valid file itself {problem}"),
    }
    let cases = mutants(valid, seed, random_cases);
    let failed: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, bytes)| run(bytes).err().map(|problem| format!("{i} {problem}")))
        .collect();
    assert!(failed.is_empty(), "{what}: of {} mutants (seed {seed}), {failed:?}", cases.len());
    cases.len()
}

/// [`survives`] for loaders that read a path: each mutant is written to `path` first.
fn survives_as_file(
    what: &str,
    valid: &[u8],
    path: &Path,
    seed: u64,
    random_cases: usize,
    load: impl Fn(&Path) -> bool,
) -> usize {
    survives(what, valid, seed, random_cases, |bytes| {
        std::fs::write(path, bytes).unwrap();
        load(path)
    })
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
            image_io::load_image_bytes(bytes, "m.png").is_ok()
        });
    }
    // A .npy depth map.
    let depth: Vec<u8> = (0..12).flat_map(|i| (i as f32 * 0.5).to_le_bytes()).collect();
    total += survives("npy", &super::lift::npy_bytes("<f4", "(3, 4)", false, &depth), 2, 400, |bytes| {
        lift::input::read_npy(bytes).is_ok()
    });
    // INR weights (safetensors with a JSON configuration in its header).
    let dir = temp_dir("mutations");
    let path = dir.join("w.safetensors");
    inr::SirenWeights::init(inr::SirenConfig::image(1, 8, 2, 30.0), 0).save(&path, &[("note", "x".into())]).unwrap();
    total += survives("safetensors", &std::fs::read(&path).unwrap(), 3, 400, |bytes| {
        inr::SirenWeights::from_safetensors_bytes(bytes, Path::new("m.safetensors")).is_ok()
    });
    // Meshes: OBJ, PLY and OFF of a tetrahedron.
    let obj =
        b"# tetrahedron\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nvn 0 0 1\nf 1 2 3\nf 1//1 2//1 4//1\nf 1 3 4\nf 2 3 4\n";
    let off = b"OFF\n4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n";
    let ply = b"ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n\
element face 4\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n";
    for (name, bytes, seed) in [("m.obj", &obj[..], 4), ("m.off", &off[..], 5), ("m.ply", &ply[..], 6)] {
        assert!(nerf::synth::mesh::read_mesh(bytes, Path::new(name)).is_ok(), "{name} is valid");
        total += survives(name, bytes, seed, 400, |bytes| nerf::synth::mesh::read_mesh(bytes, Path::new(name)).is_ok());
    }
    assert!(total > 3000, "{total} cases");
}

#[test]
fn the_harness_reports_a_loader_that_panics() {
    // A parser that slices a header without checking the length: the truncations catch it.
    let result = catch_unwind(|| {
        survives("fragile", b"HEADER01 and the rest of a file", 7, 20, |bytes| bytes[..8] == *b"HEADER01")
    });
    let message = result.expect_err("a panicking loader fails the check");
    let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("fragile") && text.contains("panicked"), "{text}");
}

#[test]
fn the_harness_reports_a_loader_that_trusts_a_size_field() {
    // A parser that reserves what the first byte says, in GiB: a bit flip asks for 2 GiB or more.
    // The block is never touched, so it costs address space only.
    let result = catch_unwind(|| {
        survives("trusting", &[1, 0, 0, 0], 8, 40, |bytes| {
            let gib = usize::from(bytes.first().copied().unwrap_or(0));
            std::hint::black_box(Vec::<u8>::with_capacity(gib << 30)).capacity() > 0
        })
    });
    let message = result.expect_err("an oversized request fails the check");
    let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("trusting") && text.contains("bytes in one block"), "{text}");
}

#[test]
fn data_and_table_loaders_never_panic_on_mutated_files() {
    let dir = temp_dir("mutations_tables");
    let mut total = 0;
    // NTK points.
    total += survives_as_file("points CSV", b"x,y,z\n3,0,4\n0,2,0\n1,1,1\n", &dir.join("p.csv"), 11, 300, |p| {
        ntk::load_points_csv(p).is_ok()
    });
    // The digits CSV (plain and gzipped).
    let row = "0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,\
                  12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0,";
    let digits: String = (0..3).map(|label| format!("{row}{label}\n")).collect();
    total += survives_as_file("digits CSV", digits.as_bytes(), &dir.join("d.csv"), 12, 300, |p| {
        inr::classify::load_digits(p).is_ok()
    });
    total += survives_as_file("gzipped digits", &gzip(digits.as_bytes()), &dir.join("d.csv.gz"), 13, 300, |p| {
        inr::classify::load_digits(p).is_ok()
    });
    // IDX images and labels, plain and gzipped: mutate each file of a valid pair.
    let images: Vec<u8> =
        [0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 4].into_iter().chain((0..48).map(|i| i * 5)).collect();
    let labels: Vec<u8> = [0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2].to_vec();
    let (image_path, label_path) = (dir.join("images-idx3-ubyte"), dir.join("labels-idx1-ubyte"));
    for (name, gzipped) in [("IDX", false), ("gzipped IDX", true)] {
        let encode = |bytes: &[u8]| if gzipped { gzip(bytes) } else { bytes.to_vec() };
        std::fs::write(&label_path, encode(&labels)).unwrap();
        total += survives_as_file(&format!("{name} images"), &encode(&images), &image_path, 14, 300, |p| {
            prune::data::load_idx_pair(p, &label_path).is_ok()
        });
        std::fs::write(&image_path, encode(&images)).unwrap();
        total += survives_as_file(&format!("{name} labels"), &encode(&labels), &label_path, 15, 300, |p| {
            prune::data::load_idx_pair(&image_path, p).is_ok()
        });
    }
    // Hard-sample scores and an attribute table, against the built-in digits.
    let data = htl::data::builtin_digits();
    let mut scores = String::from("split,index,label,pie\n");
    for (split, n) in [("training", data.data.train.len()), ("test", data.data.test.len())] {
        for i in 0..n {
            scores += &format!("{split},{i},{},{}\n", i % 10, u8::from(i % 7 == 0));
        }
    }
    total += survives_as_file("scores CSV", scores.as_bytes(), &dir.join("scores.csv"), 16, 200, |p| {
        htl::files::read_hard_flags(p, &data).is_ok()
    });
    let names: [Vec<String>; 2] = [(0..6).map(|i| format!("img_{i}.png")).collect(), vec!["img_6.png".into()]];
    let table = "file,colour,\"quoted, field\"\nimg_0,red,1\nimg_1.png,blue,2\nimg_2,red,3\nimg_6,\"é\",4\n";
    let spec = htl::data::AttributeSpec { path: dir.join("attributes.csv"), column: None };
    total += survives_as_file("attribute table", table.as_bytes(), &spec.path, 17, 300, |_| {
        htl::data::group_samples(&spec, [&names[0], &names[1]], "test set").is_ok()
    });
    assert!(total > 2500, "{total} cases");
}

#[test]
fn nerf_files_never_panic_when_mutated() {
    let dir = temp_dir("mutations_nerf");
    let mut total = 0;
    // A Blender data set of two 2×2 frames per split, and an instant-ngp one: mutate the JSON.
    image::RgbaImage::from_fn(2, 2, |x, y| image::Rgba([x as u8 * 200, y as u8 * 100, 50, 255]))
        .save(dir.join("r.png"))
        .unwrap();
    let frame = |x: f32| {
        format!(r#"{{"file_path": "./r", "transform_matrix": [[1,0,0,{x}],[0,1,0,0.5],[0,0,1,4],[0,0,0,1]]}}"#)
    };
    let split = format!(r#"{{"camera_angle_x": 0.6911, "frames": [{}, {}]}}"#, frame(0.0), frame(1.5));
    for name in ["transforms_train.json", "transforms_test.json"] {
        std::fs::write(dir.join(name), &split).unwrap();
    }
    let options = nerf::dataset::LoadOptions::default();
    total +=
        survives_as_file("Blender transforms", split.as_bytes(), &dir.join("transforms_train.json"), 21, 300, |_| {
            nerf::dataset::load_dataset(&dir, &options).is_ok()
        });
    let ngp_dir = dir.join("ngp");
    std::fs::create_dir_all(&ngp_dir).unwrap();
    std::fs::copy(dir.join("r.png"), ngp_dir.join("r.png")).unwrap();
    let ngp = format!(
        r#"{{"fl_x": 2.0, "fl_y": 2.0, "cx": 1.0, "cy": 1.0, "w": 2, "h": 2, "aabb_scale": 4, "k1": 0.1,
            "camera_model": "OPENCV", "frames": [{}, {}, {}]}}"#,
        frame(0.0),
        frame(1.0),
        frame(2.0)
    );
    total +=
        survives_as_file("instant-ngp transforms", ngp.as_bytes(), &ngp_dir.join("transforms.json"), 22, 300, |_| {
            nerf::dataset::load_dataset(&ngp_dir, &options).is_ok()
        });
    // A checkpoint's config.json.
    let data = super::nerf_train::tiny_scene();
    let summary = nerf::train(
        data.clone(),
        &super::nerf_train::tiny_config(1),
        None,
        &sparsefield::compute::control::RunControl::new(),
        &mut |_| {},
    )
    .unwrap();
    let checkpoint_dir = dir.join("checkpoint");
    let orbit = nerf::orbit::Orbit::from_views(&data.train, glam::Vec3::ZERO);
    nerf::checkpoint::save(&summary.snapshot, &orbit, &checkpoint_dir, Default::default()).unwrap();
    let config_path = checkpoint_dir.join(nerf::checkpoint::CONFIG_FILE);
    let config = std::fs::read(&config_path).unwrap();
    total += survives_as_file("checkpoint config", &config, &config_path, 23, 300, |_| {
        nerf::checkpoint::load(&checkpoint_dir).is_ok()
    });
    assert!(total > 1000, "{total} cases");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn planetoid_pickles_never_panic_on_mutation() {
    let cora = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/planetoid-cora");
    let mut total = 0;
    // The labels, the adjacency lists and (its first 4 KiB of data kept whole) a feature matrix.
    for (suffix, seed) in [("y", 21), ("graph", 22), ("x", 23)] {
        let bytes = std::fs::read(cora.join(format!("ind.cora.{suffix}"))).unwrap();
        total += survives(&format!("ind.cora.{suffix}"), &bytes, seed, 300, |bytes| {
            sparsefield::compute::gnn::pickle::parse(bytes).is_ok()
        });
    }
    assert!(total > 900, "{total} cases");
}
