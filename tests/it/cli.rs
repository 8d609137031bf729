//! The `sparsefield` binary, headless: `inr fit`, `inr render`, and bad input.

use std::process::Command;

use sparsefield::compute::image_io::{self, ImageData};
use sparsefield::compute::inr::SirenWeights;

use super::common::{builtin_crop, temp_dir};
use sparsefield::ui::BuiltinImage;

fn sparsefield() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sparsefield"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "should have failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn inr_fit_writes_weights_reconstruction_and_metrics() {
    let dir = temp_dir("cli_fit");
    let image_path = dir.join("crop.png");
    image_io::save_png(&builtin_crop(BuiltinImage::Camera, 48), &image_path).unwrap();
    let out = dir.join("out");
    let stdout = run_ok(
        sparsefield()
            .args(["inr", "fit", "--steps", "150", "--width", "128", "--out"])
            .arg(&out)
            .arg("--image")
            .arg(&image_path),
    );
    assert!(stdout.contains("PSNR"), "{stdout}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let psnr = metrics["psnr_db"].as_f64().unwrap();
    assert!(psnr > 25.0 && psnr < 80.0, "PSNR {psnr}");
    assert_eq!(metrics["steps"], 150);
    assert!(metrics["ms_per_step"].as_f64().unwrap() > 0.0);
    assert!(metrics["seconds"].as_f64().unwrap() > 0.0);
    let recon = image_io::load_image(&out.join("reconstruction.png")).unwrap().image;
    assert_eq!((recon.width, recon.height, recon.channels), (48, 48, 1));
    // The reported PSNR is the reconstruction's (up to 8-bit rounding of the PNG).
    let original = image_io::load_image(&image_path).unwrap().image;
    let png_psnr = sparsefield::compute::metrics::psnr_db(&recon, &original);
    assert!((png_psnr - psnr).abs() < 1.0, "PNG {png_psnr} vs metrics {psnr}");
    let weights = SirenWeights::load(&out.join("inr.safetensors")).unwrap();
    assert_eq!(weights.config.width, 128);

    // Render the saved INR larger, and its derivative views.
    let big = dir.join("big.png");
    run_ok(
        sparsefield()
            .args(["inr", "render", "--width", "96", "--height", "64", "--inr"])
            .arg(out.join("inr.safetensors"))
            .arg("--out")
            .arg(&big),
    );
    let big = image_io::load_image(&big).unwrap().image;
    assert_eq!((big.width, big.height), (96, 64));
    let lap = dir.join("lap.png");
    run_ok(
        sparsefield()
            .args(["inr", "render", "--view", "laplacian", "--width", "32", "--height", "32", "--inr"])
            .arg(out.join("inr.safetensors"))
            .arg("--out")
            .arg(&lap),
    );
    assert_eq!(image_io::load_image(&lap).unwrap().image.channels, 3);
}

#[test]
fn inr_fit_on_bad_input_exits_nonzero_with_a_message() {
    let dir = temp_dir("cli_bad");
    let missing = run_err(
        sparsefield().args(["inr", "fit", "--out"]).arg(dir.join("o")).arg("--image").arg(dir.join("missing.png")),
    );
    assert!(missing.contains("missing.png") && missing.contains("not found"), "{missing}");

    let corrupt = dir.join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let err = run_err(sparsefield().args(["inr", "fit", "--out"]).arg(dir.join("o")).arg("--image").arg(&corrupt));
    assert!(err.contains("corrupt.png"), "{err}");

    let text = dir.join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let err = run_err(sparsefield().args(["inr", "fit", "--out"]).arg(dir.join("o")).arg("--image").arg(&text));
    assert!(err.contains("not a PNG or JPEG"), "{err}");

    // An --out below a regular file cannot be created.
    let good = dir.join("good.png");
    image_io::save_png(&ImageData::new(4, 4, 1, vec![0.5; 16]).unwrap(), &good).unwrap();
    let blocker = dir.join("file");
    std::fs::write(&blocker, "").unwrap();
    let err = run_err(
        sparsefield().args(["inr", "fit", "--steps", "1", "--image"]).arg(&good).arg("--out").arg(blocker.join("sub")),
    );
    assert!(err.contains("output folder"), "{err}");
    // --size 0 used to mean "no downscale" without a word.
    let err = run_err(
        sparsefield()
            .args(["inr", "fit", "--steps", "1", "--size", "0", "--image"])
            .arg(&good)
            .arg("--out")
            .arg(dir.join("o0")),
    );
    assert!(err.contains("--size"), "{err}");

    let err = run_err(
        sparsefield()
            .args(["inr", "fit", "--steps", "1", "--width", "4096", "--out"])
            .arg(dir.join("o2"))
            .arg("--image")
            .arg(&good),
    );
    assert!(err.contains("width"), "{err}");

    let err = run_err(sparsefield().args(["inr", "render", "--inr"]).arg(&text).arg("--out").arg(dir.join("x.png")));
    assert!(err.contains("notes.txt"), "{err}");
}

#[test]
fn nerf_make_dataset_train_eval_and_render() {
    let dir = temp_dir("cli_nerf");
    let data = dir.join("demo");
    let stdout =
        run_ok(sparsefield().args(["nerf", "make-dataset", "--views", "12", "--size", "24", "--out"]).arg(&data));
    assert!(stdout.contains("12 train"), "{stdout}");
    for file in ["transforms_train.json", "transforms_val.json", "transforms_test.json", "train/r_0.png"] {
        assert!(data.join(file).is_file(), "{file} missing");
    }
    // A mesh of its own: a coloured cube in OBJ.
    let obj = dir.join("cube.obj");
    let mut text = String::new();
    for v in 0..8 {
        let (x, y, z) = (v & 1, (v >> 1) & 1, (v >> 2) & 1);
        text.push_str(&format!("v {x} {y} {z} {} {} {}\n", x as f32 * 0.8 + 0.1, y as f32 * 0.8 + 0.1, 0.5));
    }
    text.push_str("f 1 3 4 2\nf 5 6 8 7\nf 1 2 6 5\nf 3 7 8 4\nf 1 5 7 3\nf 2 4 8 6\n");
    std::fs::write(&obj, text).unwrap();
    let mesh_data = dir.join("cube");
    run_ok(
        sparsefield()
            .args(["nerf", "make-dataset", "--views", "6", "--size", "16", "--mesh"])
            .arg(&obj)
            .arg("--out")
            .arg(&mesh_data),
    );
    assert!(mesh_data.join("test/r_0.png").is_file());

    let ckpt = dir.join("ckpt");
    let stdout = run_ok(
        sparsefield()
            .args(["nerf", "train", "--steps", "40", "--batch-samples", "4096", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&ckpt),
    );
    assert!(stdout.contains("test PSNR"), "{stdout}");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ckpt.join("metrics.json")).unwrap()).unwrap();
    for key in ["psnr_db", "ssim", "seconds", "steps"] {
        assert!(metrics[key].is_number(), "metrics.json lacks {key}: {metrics}");
    }
    let psnr = metrics["psnr_db"].as_f64().unwrap();
    assert!(psnr > 12.0 && psnr < 60.0, "PSNR {psnr} after 40 steps");
    assert_eq!(metrics["steps"].as_u64(), Some(40));
    for file in
        ["nerf.safetensors", "config.json", "history.csv", "test/r_0.png", "test/depth_0.png", "test/opacity_0.png"]
    {
        assert!(ckpt.join(file).is_file(), "{file} missing");
    }
    let stdout = run_ok(sparsefield().args(["nerf", "eval", "--ckpt"]).arg(&ckpt).arg("--data").arg(&data));
    assert!(stdout.contains(&format!("{psnr:.2} dB")), "eval gives the training run's PSNR: {stdout}");
    let gif = dir.join("turntable.gif");
    run_ok(
        sparsefield()
            .args(["nerf", "render", "--orbit", "3", "--size", "24", "--ckpt"])
            .arg(&ckpt)
            .arg("--out")
            .arg(&gif),
    );
    let bytes = std::fs::read(&gif).unwrap();
    assert!(bytes.starts_with(b"GIF89a"), "a GIF file");
    let frames = dir.join("frames");
    run_ok(
        sparsefield()
            .args(["nerf", "render", "--orbit", "2", "--size", "16", "--ckpt"])
            .arg(&ckpt)
            .arg("--out")
            .arg(&frames),
    );
    let frame = image_io::load_image(&frames.join("frame_0001.png")).unwrap().image;
    assert_eq!((frame.width, frame.height), (16, 16));
    // A non-finite elevation is refused instead of rendering blank frames.
    let err = run_err(
        sparsefield()
            .args(["nerf", "render", "--orbit", "2", "--size", "16", "--elevation", "NaN", "--ckpt"])
            .arg(&ckpt)
            .arg("--out")
            .arg(dir.join("nan.gif")),
    );
    assert!(err.contains("--elevation"), "{err}");
    assert!(!dir.join("nan.gif").exists());
}

#[test]
fn nerf_bad_input_exits_non_zero_with_a_message() {
    let dir = temp_dir("cli_nerf_bad");
    let err = run_err(
        sparsefield().args(["nerf", "train", "--data"]).arg(dir.join("nowhere")).arg("--out").arg(dir.join("o")),
    );
    assert!(err.contains("nowhere"), "{err}");
    let bad_obj = dir.join("bad.obj");
    std::fs::write(&bad_obj, "v 0 0 0\nv 1 0 0\nf 1 2 9\n").unwrap();
    let err =
        run_err(sparsefield().args(["nerf", "make-dataset", "--mesh"]).arg(&bad_obj).arg("--out").arg(dir.join("m")));
    assert!(err.contains("bad.obj"), "{err}");
    let err = run_err(
        sparsefield().args(["nerf", "render", "--ckpt"]).arg(dir.join("no_ckpt")).arg("--out").arg(dir.join("t.gif")),
    );
    assert!(err.contains("config.json"), "{err}");
    let err = run_err(sparsefield().args(["nerf", "make-dataset", "--size", "0", "--out"]).arg(dir.join("z")));
    assert!(err.contains("--size"), "{err}");
}

/// Small settings so that `inr edit` runs in seconds.
const TINY_EDIT: [&str; 18] = [
    "--size",
    "20",
    "--fit-steps",
    "60",
    "--fit-width",
    "32",
    "--fit-layers",
    "2",
    "--order",
    "2",
    "--op-width",
    "16",
    "--op-layers",
    "2",
    "--op-steps",
    "40",
    "--op-batch",
    "128",
];

#[test]
fn inr_edit_trains_applies_and_scores_an_operator() {
    let dir = temp_dir("cli_edit");
    let image_path = dir.join("crop.png");
    image_io::save_png(&builtin_crop(BuiltinImage::Camera, 20), &image_path).unwrap();
    let out = dir.join("out");
    let stdout = run_ok(
        sparsefield()
            .args(["inr", "edit", "--op", "denoise", "--render-size", "33x17"])
            .args(TINY_EDIT)
            .arg("--image")
            .arg(&image_path)
            .arg("--out")
            .arg(&out),
    );
    assert!(stdout.contains("INSP edit (Denoise"), "{stdout}");
    assert!(stdout.contains("baseline 3×3 median"), "{stdout}");
    for file in [
        "operator.safetensors",
        "input.safetensors",
        "edited.png",
        "edited-33x17.png",
        "input.png",
        "degraded.png",
        "reference.png",
        "baseline-3x3-median.png",
        "metrics.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let psnr = metrics["results"]["insp"]["psnr_db"].as_f64().unwrap();
    assert!(psnr > 10.0 && psnr < 60.0, "PSNR {psnr}");
    assert_eq!(metrics["operator"]["order"], 2);
    assert_eq!(metrics["training"]["rows"], 400);
    let big = image_io::load_image(&out.join("edited-33x17.png")).unwrap().image;
    assert_eq!((big.width, big.height), (33, 17));

    // The saved operator applies to a saved INR, scored against a reference image.
    let again = dir.join("again");
    let stdout = run_ok(
        sparsefield()
            .args(["inr", "edit", "--operator"])
            .arg(out.join("operator.safetensors"))
            .arg("--inr")
            .arg(out.join("input.safetensors"))
            .arg("--reference")
            .arg(&image_path)
            .arg("--out")
            .arg(&again),
    );
    assert!(stdout.contains("INSP edit (Denoise"), "{stdout}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(again.join("metrics.json")).unwrap()).unwrap();
    let reapplied = metrics["results"]["insp"]["psnr_db"].as_f64().unwrap();
    assert!((reapplied - psnr).abs() < 1e-6, "same operator, same INR, same reference: {reapplied} vs {psnr}");

    // Any partial derivative of an INR as an image.
    let partial = dir.join("dxxy.png");
    let stdout = run_ok(
        sparsefield()
            .args(["inr", "render", "--partial", "xxy", "--width", "24", "--height", "16", "--inr"])
            .arg(out.join("input.safetensors"))
            .arg("--out")
            .arg(&partial),
    );
    assert!(stdout.contains("∂xxy: colour range"), "{stdout}");
    let image = image_io::load_image(&partial).unwrap().image;
    assert_eq!((image.width, image.height, image.channels), (24, 16, 3));
    let err = run_err(
        sparsefield()
            .args(["inr", "render", "--partial", "xz", "--inr"])
            .arg(out.join("input.safetensors"))
            .arg("--out")
            .arg(&partial),
    );
    assert!(err.contains("--partial"), "{err}");
}

#[test]
fn inr_edit_on_bad_input_exits_nonzero_with_a_message() {
    let dir = temp_dir("cli_edit_bad");
    let image_path = dir.join("crop.png");
    image_io::save_png(&builtin_crop(BuiltinImage::Camera, 16), &image_path).unwrap();
    let inr_path = dir.join("inr.safetensors");
    SirenWeights::init(sparsefield::compute::inr::SirenConfig::image(1, 8, 1, 30.0), 0).save(&inr_path, &[]).unwrap();
    let out = dir.join("out");
    // An INR given as the operator.
    let err = run_err(
        sparsefield()
            .args(["inr", "edit", "--operator"])
            .arg(&inr_path)
            .arg("--inr")
            .arg(&inr_path)
            .arg("--out")
            .arg(&out),
    );
    assert!(err.contains("this is an INR, not an operator"), "{err}");
    // A restoration with nothing clean to learn from.
    let err = run_err(
        sparsefield()
            .args(["inr", "edit", "--op", "deblur"])
            .args(TINY_EDIT)
            .arg("--inr")
            .arg(&inr_path)
            .arg("--out")
            .arg(&out),
    );
    assert!(err.contains("needs clean examples"), "{err}");
    // Neither an INR nor an image.
    let err = run_err(sparsefield().args(["inr", "edit", "--op", "blur", "--out"]).arg(&out));
    assert!(err.contains("--inr") || err.contains("--image"), "{err}");
    // A bad render size, and a reference of the wrong kind.
    let err = run_err(
        sparsefield()
            .args(["inr", "edit", "--op", "blur", "--render-size", "big"])
            .arg("--inr")
            .arg(&inr_path)
            .arg("--out")
            .arg(&out),
    );
    assert!(err.contains("--render-size"), "{err}");
    let rgb = dir.join("rgb.png");
    image_io::save_png(&builtin_crop(BuiltinImage::Coffee, 16), &rgb).unwrap();
    let err = run_err(
        sparsefield()
            .args(["inr", "edit", "--op", "blur"])
            .args(TINY_EDIT)
            .arg("--inr")
            .arg(&inr_path)
            .arg("--reference")
            .arg(&rgb)
            .arg("--out")
            .arg(&out),
    );
    assert!(err.contains("channels"), "{err}");
    // A missing training image is reported before any work.
    let err = run_err(
        sparsefield()
            .args(["inr", "edit", "--op", "blur", "--train-images"])
            .arg(dir.join("nope.png"))
            .arg("--image")
            .arg(&image_path)
            .arg("--out")
            .arg(&out),
    );
    assert!(err.contains("nope.png"), "{err}");
}

#[test]
fn inr_classify_writes_accuracies_and_confusion_matrices() {
    let dir = temp_dir("cli_classify");
    let out = dir.join("out");
    let stdout = run_ok(
        sparsefield()
            .args(["inr", "classify", "--limit", "60", "--inr-steps", "30", "--epochs", "3", "--out"])
            .arg(&out),
    );
    assert!(stdout.contains("INSP-ConvNet (derivative stack)") && stdout.contains("CNN (pixels)"), "{stdout}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    for which in ["insp", "cnn"] {
        let accuracy = metrics["summary"][which]["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy));
        let csv = std::fs::read_to_string(out.join(format!("confusion_{which}.csv"))).unwrap();
        assert_eq!(csv.lines().count(), 11, "{csv}");
        let total: u32 =
            csv.lines().skip(1).flat_map(|l| l.split(',').skip(1)).map(|v| v.parse::<u32>().unwrap()).sum();
        assert_eq!(total, 12, "a fifth of 60 digits are tested");
    }
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "1,2,3\n").unwrap();
    let err = run_err(sparsefield().args(["inr", "classify", "--digits"]).arg(&bad).arg("--out").arg(&out));
    assert!(err.contains("bad.csv, line 1"), "{err}");
}

#[test]
fn inr_edit_learns_a_custom_mapping_from_pairs() {
    let dir = temp_dir("cli_edit_custom");
    let input = builtin_crop(BuiltinImage::Camera, 20);
    let inverted = ImageData { pixels: input.pixels.iter().map(|v| 1.0 - v).collect(), ..input.clone() };
    let (a, b) = (dir.join("a.png"), dir.join("b.png"));
    image_io::save_png(&input, &a).unwrap();
    image_io::save_png(&inverted, &b).unwrap();
    let out = dir.join("out");
    let pair = format!("{}={}", a.display(), b.display());
    let stdout = run_ok(
        sparsefield()
            .args(["inr", "edit", "--op", "custom", "--pairs", &pair])
            .args(&TINY_EDIT[..14])
            .args(["--op-steps", "300", "--op-batch", "128"])
            .arg("--image")
            .arg(&a)
            .arg("--reference")
            .arg(&b)
            .arg("--out")
            .arg(&out),
    );
    assert!(stdout.contains("INSP edit (Custom pairs)"), "{stdout}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let insp = metrics["results"]["insp"]["psnr_db"].as_f64().unwrap();
    let none = metrics["results"]["no_edit"]["psnr_db"].as_f64().unwrap();
    assert!(insp > none + 6.0, "the operator learnt the inversion: {insp:.2} dB vs {none:.2} dB without it");

    let small = dir.join("small.png");
    image_io::save_png(&builtin_crop(BuiltinImage::Camera, 12), &small).unwrap();
    let mismatched = format!("{}={}", a.display(), small.display());
    let err = run_err(
        sparsefield()
            .args(["inr", "edit", "--op", "custom", "--pairs", &mismatched])
            .arg("--image")
            .arg(&a)
            .arg("--out")
            .arg(&out),
    );
    assert!(err.contains("small.png") && err.contains("same size"), "{err}");
    let err =
        run_err(sparsefield().args(["inr", "edit", "--op", "custom"]).arg("--image").arg(&a).arg("--out").arg(&out));
    assert!(err.contains("--pairs"), "{err}");
    let err = run_err(
        sparsefield()
            .args(["inr", "edit", "--op", "blur", "--pairs", &pair])
            .arg("--image")
            .arg(&a)
            .arg("--out")
            .arg(&out),
    );
    assert!(err.contains("--op custom"), "{err}");
}

const TINY_PRUNE: [&str; 10] = ["--dim", "300", "--n-train", "12", "--n-test", "60", "--width", "4", "--steps", "40"];

#[test]
fn prune_run_and_sweep_write_files_other_tools_read() {
    let dir = temp_dir("cli_prune");
    let out = dir.join("run");
    let stdout = run_ok(
        sparsefield()
            .args(["prune", "run", "--p", "0.5", "--test-every", "10"])
            .args(TINY_PRUNE)
            .arg("--out")
            .arg(&out),
    );
    assert!(stdout.contains("test accuracy"), "{stdout}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["config"]["prune"], 0.5);
    let kept = metrics["kept_fraction"].as_f64().unwrap();
    assert!((0.4..0.6).contains(&kept), "{kept}");
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    let rows: Vec<&str> = history.lines().collect();
    assert_eq!(rows.len(), 1 + 41, "a header and steps 0..=40");
    assert!(rows[0].starts_with("step,train_loss"));
    // The test set is scored every 10 steps: 5 filled cells.
    let scored = rows[1..].iter().filter(|r| !r.split(',').nth(3).unwrap().is_empty()).count();
    assert_eq!(scored, 5);
    let curves = image_io::load_image(&out.join("curves.png")).unwrap().image;
    assert_eq!((curves.width, curves.height), (960, 640));
    // The weights file: effective weights and the mask, zero wherever the mask is.
    let bytes = std::fs::read(out.join("weights.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (weights, mask) = (tensors.tensor("weights").unwrap(), tensors.tensor("mask").unwrap());
    assert_eq!(weights.shape(), &[8, 300]);
    let as_f32 = |b: &[u8]| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<_>>();
    let (w, m) = (as_f32(weights.data()), as_f32(mask.data()));
    assert!(w.iter().zip(&m).all(|(w, m)| *m == 1.0 || *w == 0.0));
    assert!(m.contains(&0.0) && m.contains(&1.0));

    let out = dir.join("sweep");
    run_ok(
        sparsefield().args(["prune", "sweep", "--p", "0,0.9", "--seeds", "2"]).args(TINY_PRUNE).arg("--out").arg(&out),
    );
    let sweep = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(sweep.lines().count(), 3);
    assert!(sweep.lines().nth(2).unwrap().starts_with("0.9,"));
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 1 + 4);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["runs"], 4);
    assert!(image_io::load_image(&out.join("sweep.png")).is_ok());
}

#[test]
fn prune_bad_input_exits_nonzero_with_a_message() {
    let dir = temp_dir("cli_prune_bad");
    let out = dir.join("out");
    let err = run_err(sparsefield().args(["prune", "run", "--p", "1.5"]).arg("--out").arg(&out));
    assert!(err.contains("pruning fraction"), "{err}");
    let err = run_err(sparsefield().args(["prune", "sweep", "--seeds", "0"]).arg("--out").arg(&out));
    // Errors say which value is wrong, in the user's terms, once.
    let bias = run_err(sparsefield().args(["ntk", "sweep", "--bias", "0,NaN"]).arg("--out").arg(dir.join("bias")));
    assert!(bias.contains("bias 2 of the list is NaN") && bias.matches("NaN").count() == 1, "{bias}");
    assert!(err.contains("--seeds"), "{err}");
    let err = run_err(sparsefield().args(["prune", "sweep", "--p", "0,2"]).args(TINY_PRUNE).arg("--out").arg(&out));
    assert!(err.contains("pruning fraction"), "{err}");
    let err = run_err(sparsefield().args(["prune", "run", "--dim", "1"]).arg("--out").arg(&out));
    assert!(err.contains("dimension"), "{err}");
    let file = dir.join("file");
    std::fs::write(&file, b"").unwrap();
    let err = run_err(sparsefield().args(["prune", "run"]).args(TINY_PRUNE).arg("--out").arg(file.join("sub")));
    assert!(err.contains("output folder"), "{err}");
}

#[test]
fn prune_init_compares_methods_and_writes_results_masks_and_chart() {
    let dir = temp_dir("cli_prune_init");
    let out = dir.join("out");
    let stdout = run_ok(
        sparsefield()
            .args(["prune", "init", "--methods", "random,synflow", "--sparsity", "0,0.8", "--epochs", "2"])
            .args(["--hidden", "16", "--train-limit", "400", "--synflow-iterations", "5"])
            .arg("--out")
            .arg(&out),
    );
    assert!(stdout.contains("SynFlow"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "method,sparsity,test_accuracy,train_loss,density_fc1,density_fc2,density_fc3,seconds");
    assert_eq!(rows.len(), 4, "dense, random and SynFlow at 0.8");
    assert!(rows[1].starts_with("dense,0,"));
    let bytes = std::fs::read(out.join("masks.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = tensors.names().into_iter().map(str::to_owned).collect();
    names.sort();
    assert_eq!(names, ["random.fc1", "random.fc2", "random.fc3", "synflow.fc1", "synflow.fc2", "synflow.fc3"]);
    assert_eq!(tensors.tensor("synflow.fc1").unwrap().shape(), &[16, 64]);
    assert!(image_io::load_image(&out.join("accuracy.png")).is_ok());
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["results"].as_array().unwrap().len(), 3);

    let err = run_err(sparsefield().args(["prune", "init", "--methods", "lottery"]).arg("--out").arg(&out));
    assert!(err.contains("unknown method `lottery`"), "{err}");
    let err = run_err(sparsefield().args(["prune", "init", "--data", "folder"]).arg("--out").arg(&out));
    assert!(err.contains("--path"), "{err}");
    let err = run_err(
        sparsefield().args(["prune", "init", "--data", "fashion-mnist", "--path"]).arg(&dir).arg("--out").arg(&out),
    );
    assert!(err.contains("train-images-idx3-ubyte"), "{err}");
}

#[test]
fn ntk_spectrum_writes_eigenvalues_and_metrics() {
    let dir = temp_dir("cli_ntk");
    let out = dir.join("out");
    let stdout = run_ok(
        sparsefield()
            .args(["ntk", "spectrum", "--n", "40", "--d", "5", "--width", "256", "--bias", "0.5", "--gram"])
            .arg("--out")
            .arg(&out),
    );
    assert!(stdout.contains("λ_min"), "{stdout}");
    let eigen = std::fs::read_to_string(out.join("eigenvalues.csv")).unwrap();
    assert_eq!(eigen.lines().count(), 41);
    let gram = std::fs::read_to_string(out.join("gram.csv")).unwrap();
    assert_eq!(gram.lines().count(), 40);
    assert!(gram.lines().all(|l| l.split(',').count() == 40));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let (min, max) = (metrics["lambda_min"].as_f64().unwrap(), metrics["lambda_max"].as_f64().unwrap());
    assert!(0.0 <= min && min <= max, "{min} {max}");
    let active = metrics["active_fraction"].as_f64().unwrap();
    assert!((active - 0.31).abs() < 0.08, "about 1 − Φ(0.5) active: {active}");
    // The limit kernel from a CSV file; its width is reported as null.
    let csv = dir.join("points.csv");
    std::fs::write(&csv, "1,0\n0,1\n1,1\n").unwrap();
    run_ok(sparsefield().args(["ntk", "spectrum", "--limit", "--data"]).arg(&csv).arg("--out").arg(&out));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert!(metrics["width"].is_null() && metrics["n"] == 3);
    // Bad input.
    std::fs::write(&csv, "1,0\n0\n").unwrap();
    let err = run_err(sparsefield().args(["ntk", "spectrum", "--data"]).arg(&csv).arg("--out").arg(&out));
    assert!(err.contains("points.csv") && err.contains("line 2"), "{err}");
    let err = run_err(sparsefield().args(["ntk", "spectrum", "--prune", "1.5"]).arg("--out").arg(&out));
    assert!(err.contains("pruning fraction"), "{err}");
}

#[test]
fn ntk_train_and_sweep_write_their_tables_and_charts() {
    let dir = temp_dir("cli_ntk_train");
    let out = dir.join("train");
    let stdout = run_ok(
        sparsefield()
            .args(["ntk", "train", "--n", "30", "--d", "4", "--width", "256", "--bias", "1", "--steps", "40"])
            .arg("--out")
            .arg(&out),
    );
    assert!(stdout.contains("dense (B = 0, p = 0)"), "{stdout}");
    let table = std::fs::read_to_string(out.join("training.csv")).unwrap();
    assert_eq!(table.lines().count(), 42);
    assert!(table.starts_with("step,loss,linearized,bound,dense_loss"), "{table}");
    assert!(out.join("training.png").is_file());
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let (first, last) =
        (metrics["chosen"]["initial_loss"].as_f64().unwrap(), metrics["chosen"]["final_loss"].as_f64().unwrap());
    assert!(last < first, "{first} → {last}");
    assert!(metrics["dense"]["lambda_min"].as_f64().unwrap() > 0.0);

    // Clustered points; the limit is one of the curves.
    let out = dir.join("sweep");
    run_ok(
        sparsefield()
            .args(["ntk", "sweep", "--n", "24", "--d", "5", "--clusters", "3", "--spread", "30", "--bias", "0,1"])
            .args(["--width", "64,256", "--distance-width", "32,128,512"])
            .arg("--out")
            .arg(&out),
    );
    let lambda = std::fs::read_to_string(out.join("lambda_min.csv")).unwrap();
    assert_eq!(lambda.lines().count(), 1 + 2 * 3);
    assert!(lambda.contains(",limit,"), "{lambda}");
    let distance = std::fs::read_to_string(out.join("distance.csv")).unwrap();
    assert_eq!(distance.lines().count(), 1 + 2 * 3);
    assert!(out.join("lambda_min.png").is_file() && out.join("distance.png").is_file());

    let err = run_err(sparsefield().args(["ntk", "train", "--step-scale", "9"]).arg("--out").arg(&out));
    assert!(err.contains("step scale"), "{err}");
    let err = run_err(sparsefield().args(["ntk", "sweep", "--digits", "--n", "5000"]).arg("--out").arg(&out));
    assert!(err.contains("1797"), "{err}");
}

#[test]
fn htl_find_and_attend_write_scores_sheets_and_the_comparison() {
    let dir = temp_dir("cli_htl");
    let find = dir.join("find");
    let stdout = run_ok(
        sparsefield()
            .args(["htl", "find", "--models", "3", "--epochs", "12", "--finetune-epochs", "3", "--sparsity", "0.8"])
            .args(["--sheet", "16", "--out"])
            .arg(&find),
    );
    assert!(stdout.contains("PIE of 1438 samples"), "{stdout}");
    let scores = std::fs::read_to_string(find.join("scores.csv")).unwrap();
    assert_eq!(scores.lines().count(), 1 + 1797);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(find.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["config"]["models"], 3);
    let pie_count = metrics["training"]["pie"].as_u64().unwrap();
    let csv_pie = scores.lines().filter(|l| l.starts_with("training,") && l.split(',').nth(8) == Some("1")).count();
    assert_eq!(pie_count as usize, csv_pie);
    let sparsity = metrics["pruned"]["layer_sparsity"].as_array().unwrap();
    assert!(sparsity.iter().all(|s| (s.as_f64().unwrap() - 0.8).abs() < 0.01), "{sparsity:?}");
    let sheet = image_io::load_image(&find.join("hardest_train.png")).unwrap().image;
    assert_eq!((sheet.width, sheet.height), (8 * 112, 2 * 148));
    assert!(image_io::load_image(&find.join("rates.png")).is_ok());
    assert!(std::fs::metadata(find.join("models.safetensors")).unwrap().len() > 1000);

    // Attend to the PIE samples of that run (plain models retrained from the same seeds).
    let attend = dir.join("attend");
    let stdout = run_ok(
        sparsefield()
            .args(["htl", "attend", "--models", "3", "--epochs", "12", "--finetune-epochs", "3", "--sparsity", "0.8"])
            .args(["--weight", "4", "--schedule", "ramp", "--scores"])
            .arg(find.join("scores.csv"))
            .arg("--out")
            .arg(&attend),
    );
    assert!(stdout.contains(&format!("attending to {pie_count} hard training samples")), "{stdout}");
    let comparison = std::fs::read_to_string(attend.join("comparison.csv")).unwrap();
    assert!(comparison.starts_with("measure,category,plain,attended\ntest_accuracy,all,"), "{comparison}");
    assert_eq!(comparison.lines().filter(|l| l.starts_with("class_accuracy")).count(), 10);
    assert!(comparison.contains("group_accuracy,faint scan,"));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(attend.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["comparison"]["attend"]["schedule"], "Ramp");
    assert!(image_io::load_image(&attend.join("comparison.png")).is_ok());
}

#[test]
fn htl_bad_input_exits_nonzero_with_a_message() {
    let dir = temp_dir("cli_htl_bad");
    let err = run_err(sparsefield().args(["htl", "find", "--sparsity", "1.5", "--out"]).arg(dir.join("a")));
    assert!(err.contains("sparsity must be 0 to 0.99"), "{err}");
    let err = run_err(sparsefield().args(["htl", "find", "--data", "folder", "--out"]).arg(dir.join("b")));
    assert!(err.contains("needs --path"), "{err}");
    let missing = dir.join("nope.csv");
    let err =
        run_err(sparsefield().args(["htl", "find", "--attributes"]).arg(&missing).arg("--out").arg(dir.join("c")));
    assert!(err.contains("nope.csv") && err.contains("cannot open"), "{err}");
    let bad_scores = dir.join("scores.csv");
    std::fs::write(&bad_scores, "split,index\ntraining,0\n").unwrap();
    let err = run_err(
        sparsefield()
            .args(["htl", "attend", "--models", "1", "--scores"])
            .arg(&bad_scores)
            .arg("--out")
            .arg(dir.join("d")),
    );
    assert!(err.contains("scores.csv") && err.contains("no `pie` column"), "{err}");
}

#[test]
fn htl_localize_compares_supervised_and_semi_supervised_attention() {
    let dir = temp_dir("cli_htl_localize");
    let out = dir.join("loc");
    let stdout = run_ok(
        sparsefield()
            .args(["htl", "attend", "--task", "localize", "--lesion-train", "160", "--lesion-test", "40"])
            .args(["--image-size", "24", "--epochs", "4", "--finetune-epochs", "2", "--agreement", "0.95"])
            .args(["--labelled-fraction", "1,0.5", "--out"])
            .arg(&out),
    );
    assert!(stdout.contains("100% of 160 masks labelled") && stdout.contains("50% of 160 masks labelled"), "{stdout}");
    let table = std::fs::read_to_string(out.join("localize.csv")).unwrap();
    assert!(table.starts_with("labelled_fraction,measure,category,dense,pruned,attended\n1,iou,all,"), "{table}");
    assert!(table.contains("0.5,iou,dark skin,"), "{table}");
    let scores = std::fs::read_to_string(out.join("seg_scores.csv")).unwrap();
    assert_eq!(scores.lines().count(), 1 + 160 + 40);
    assert!(scores.lines().next().unwrap().ends_with(",hard,box_x0,box_y0,box_x1,box_y1"));
    let first: Vec<&str> = scores.lines().nth(1).unwrap().split(',').collect();
    let (x0, x1): (usize, usize) = (first[10].parse().unwrap(), first[12].parse().unwrap());
    assert!(x0 <= x1 && x1 < 24, "box {first:?}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let runs = metrics["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["labelled"], 80);
    assert!(runs[0]["attended"]["iou"].as_f64().unwrap() > 0.3);
    for file in ["hardest_lesions_train.png", "hardest_lesions_test.png", "localize.png"] {
        assert!(image_io::load_image(&out.join(file)).is_ok(), "{file}");
    }

    let err = run_err(
        sparsefield().args(["htl", "find", "--task", "localize", "--lesions", "folder", "--out"]).arg(dir.join("x")),
    );
    assert!(err.contains("needs --path"), "{err}");
    let err = run_err(
        sparsefield()
            .args(["htl", "find", "--task", "localize", "--labelled-fraction", "1,0.5", "--out"])
            .arg(dir.join("y")),
    );
    assert!(err.contains("one --labelled-fraction"), "{err}");
    let err = run_err(
        sparsefield()
            .args(["htl", "find", "--task", "localize", "--labelled-fraction", "0", "--out"])
            .arg(dir.join("z")),
    );
    assert!(err.contains("labelled fraction must be in (0, 1]"), "{err}");
}

#[test]
fn lift_writes_checkpoint_turntable_and_metrics_and_refuses_bad_input() {
    let dir = temp_dir("cli_lift");
    let out = dir.join("out");
    let stdout =
        run_ok(sparsefield().args(["lift", "--steps", "40", "--resolution", "24", "--size", "32", "--out"]).arg(&out));
    assert!(stdout.contains("reference view") && stdout.contains("true views at 90°/180°"), "{stdout}");
    for file in ["nerf.safetensors", "config.json", "history.csv", "reference.png", "views.png", "turntable.gif"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["prior"], "geometric");
    assert_eq!(metrics["steps"], 40);
    // One step scores about 14 dB and a mask IoU of 0.4; 40 steps about 21 dB and 0.97.
    assert!(metrics["reference_psnr_db"].as_f64().unwrap() > 18.0, "{metrics}");
    assert!(metrics["mask_iou"].as_f64().unwrap() > 0.85, "{metrics}");
    assert!(metrics["novel_psnr_db"]["180"].as_f64().is_some(), "{metrics}");
    // The NeRF lab's renderer reads the checkpoint.
    run_ok(
        sparsefield()
            .args(["nerf", "render", "--size", "16", "--orbit", "2", "--ckpt"])
            .arg(&out)
            .arg("--out")
            .arg(dir.join("frames")),
    );

    // A photo with an alpha channel, with the ranking loss off and no prior.
    let photo = dir.join("photo.png");
    let mut rgba = image::RgbaImage::new(40, 30);
    for (x, y, p) in rgba.enumerate_pixels_mut() {
        let inside = (x as i32 - 20).pow(2) + (y as i32 - 15).pow(2) < 100;
        *p = image::Rgba([200, 40, 40, if inside { 255 } else { 0 }]);
    }
    rgba.save(&photo).unwrap();
    let out2 = dir.join("out2");
    let stdout = run_ok(
        sparsefield()
            .args([
                "lift",
                "--steps",
                "5",
                "--resolution",
                "20",
                "--size",
                "24",
                "--prior",
                "none",
                "--no-rank",
                "--image",
            ])
            .arg(&photo)
            .arg("--out")
            .arg(&out2),
    );
    assert!(!stdout.contains("true views"), "{stdout}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out2.join("metrics.json")).unwrap()).unwrap();
    assert_eq!((metrics["mask"].as_str(), metrics["ranking_loss"].as_bool()), (Some("alpha channel"), Some(false)));

    // Bad input: a missing photo, a corrupt depth file, the example's true depth for a photo.
    let err = run_err(sparsefield().args(["lift", "--image", "/nonexistent/photo.png", "--out"]).arg(dir.join("x")));
    assert!(err.contains("/nonexistent/photo.png") && err.contains("not found"), "{err}");
    let depth = dir.join("depth.npy");
    std::fs::write(&depth, b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'").unwrap();
    let err = run_err(
        sparsefield().args(["lift", "--image"]).arg(&photo).arg("--depth").arg(&depth).arg("--out").arg(dir.join("y")),
    );
    assert!(err.contains("depth.npy"), "{err}");
    let err =
        run_err(sparsefield().args(["lift", "--true-depth", "--image"]).arg(&photo).arg("--out").arg(dir.join("z")));
    assert!(err.contains("only for the built-in example"), "{err}");
}

#[test]
fn stega_embed_recover_and_attack_write_their_files_and_refuse_bad_input() {
    let dir = temp_dir("cli_stega");
    let ckpt = dir.join("ckpt");
    run_ok(sparsefield().args(["nerf", "train", "--demo-size", "32", "--steps", "150", "--out"]).arg(&ckpt));
    // A text secret; on a 32² scene the repository's coupling gets the field moving quickly.
    let run = dir.join("run");
    let stdout = run_ok(
        sparsefield()
            .args(["stega", "embed", "--demo-size", "32", "--text", "hi", "--steps", "60", "--turntable", "2"])
            .args(["--decoder-trains-field", "--field-lr", "2e-3", "--ckpt"])
            .arg(&ckpt)
            .arg("--out")
            .arg(&run),
    );
    assert!(stdout.contains("bit accuracy") && stdout.contains("classifier"), "{stdout}");
    for file in [
        "nerf.safetensors",
        "config.json",
        "decoder.safetensors",
        "metrics.json",
        "history.csv",
        "stega.json",
        "turntable.gif",
        "test/marked_0.png",
        "test/recovered_0.png",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    for key in [
        "render_psnr_vs_stage1_db",
        "render_ssim",
        "render_psnr_vs_ground_truth_db",
        "stage1_psnr_vs_ground_truth_db",
        "bit_accuracy",
        "clean_bit_accuracy",
        "text_recovered",
        "classifier_accuracy",
        "seconds",
    ] {
        assert!(metrics[key].is_number(), "{key}: {metrics}");
    }
    assert_eq!(std::fs::read_to_string(run.join("history.csv")).unwrap().lines().count(), 61);
    // The marked checkpoint is a NeRF checkpoint like any other.
    run_ok(sparsefield().args(["nerf", "eval", "--demo-size", "32", "--ckpt"]).arg(&run));

    let recovered = dir.join("recovered");
    let stdout = run_ok(
        sparsefield()
            .args(["stega", "recover", "--decoder"])
            .arg(run.join("decoder.safetensors"))
            .arg("--image")
            .arg(run.join("test/marked_0.png"))
            .arg("--out")
            .arg(&recovered),
    );
    assert!(stdout.contains("marked_0.png") && stdout.contains("classifier score"), "{stdout}");
    let recovery: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(recovered.join("recovery.json")).unwrap()).unwrap();
    assert!(recovery["score"].is_number() && recovery["bits"].as_str().is_some_and(|b| b.len() == 64), "{recovery}");
    assert!(recovered.join("recovered.png").is_file());

    let attacked = dir.join("attack");
    let stdout =
        run_ok(sparsefield().args(["stega", "attack", "--views", "2", "--run"]).arg(&run).arg("--out").arg(&attacked));
    assert!(stdout.contains("jpeg") && stdout.contains("rotate"), "{stdout}");
    let csv = std::fs::read_to_string(attacked.join("attack.csv")).unwrap();
    assert!(csv.starts_with("attack,strength,recovery,marked_score,classifier_accuracy"));
    assert_eq!(csv.lines().count(), 1 + 36);
    assert!(attacked.join("attack.png").is_file() && attacked.join("table.json").is_file());

    // Bad input: a missing checkpoint, an unreadable secret, a decoder of another secret size,
    // and weights that are not four numbers.
    let error = run_err(
        sparsefield()
            .args(["stega", "embed", "--bits", "8", "--ckpt"])
            .arg(dir.join("nope"))
            .arg("--out")
            .arg(dir.join("o1")),
    );
    assert!(error.contains("nope") && error.contains("config.json"), "{error}");
    std::fs::write(dir.join("secret.png"), b"not a png").unwrap();
    let error = run_err(
        sparsefield()
            .args(["stega", "embed", "--secret"])
            .arg(dir.join("secret.png"))
            .arg("--ckpt")
            .arg(&ckpt)
            .arg("--out")
            .arg(dir.join("o2")),
    );
    assert!(error.contains("secret.png"), "{error}");
    let error = run_err(
        sparsefield()
            .args(["stega", "embed", "--bits", "8", "--weights", "1,2", "--ckpt"])
            .arg(&ckpt)
            .arg("--out")
            .arg(dir.join("o3")),
    );
    assert!(error.contains("--weights"), "{error}");
    {
        use sparsefield::compute::stega::decoder::{Decoder, SecretKind};
        use sparsefield::compute::stega::nets::{DecoderKind, NetsConfig};
        let said = NetsConfig { side: 32, width: 4, kind: DecoderKind::Image };
        let (d, c) = NetsConfig { side: 48, ..said }.init(0, &candle_core::Device::Cpu).unwrap();
        let tensors = sparsefield::compute::nets::tensors;
        Decoder {
            config: said,
            secret: SecretKind::Image,
            decoder: tensors(&d),
            classifier: tensors(&c),
            threshold: 0.5,
        }
        .save(&dir.join("other.safetensors"))
        .unwrap();
    }
    let error = run_err(
        sparsefield()
            .args(["stega", "recover", "--decoder"])
            .arg(dir.join("other.safetensors"))
            .arg("--image")
            .arg(run.join("test/marked_0.png"))
            .arg("--out")
            .arg(dir.join("o4")),
    );
    assert!(error.contains("other.safetensors") && error.contains("expected"), "{error}");
    let error = run_err(sparsefield().args(["stega", "attack", "--run"]).arg(&ckpt).arg("--out").arg(dir.join("o5")));
    assert!(error.contains("stega.json"), "{error}");
}

#[test]
fn gnn_train_writes_metrics_and_history_and_refuses_bad_data() {
    let dir = temp_dir("cli_gnn");
    let out = dir.join("run");
    let stdout = run_ok(
        sparsefield()
            .args(["gnn", "train", "--method", "ugt", "--sparsity", "0.5", "--hidden", "32", "--epochs", "40", "--out"])
            .arg(&out)
            .arg("--save-start")
            .arg(dir.join("start.f32")),
    );
    assert!(stdout.contains("cora (2708 nodes, 5278 edges)"), "{stdout}");
    // W₁ (1433 × 32), W₂ (32 × 7), then their scores; Kaiming-uniform within ±√(6 / fan-in).
    let start: Vec<f32> = std::fs::read(dir.join("start.f32"))
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let (first, second) = (1433 * 32, 32 * 7);
    assert_eq!(start.len(), 2 * (first + second));
    let bound = |fan_in: f32| (6.0 / fan_in).sqrt();
    assert!(start[..first].iter().all(|v| v.abs() <= bound(1433.0)));
    assert!(start[first..first + second].iter().all(|v| v.abs() <= bound(32.0)));
    assert!(start[first..first + second].iter().any(|v| v.abs() > bound(1433.0)), "W₂ is drawn at its own scale");
    assert_ne!(start[..first], start[first + second..2 * first + second], "scores are drawn apart from weights");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let test_acc = metrics["test_acc"].as_f64().unwrap();
    assert!((0.4..=1.0).contains(&test_acc), "{metrics}");
    assert!((metrics["sparsity_reached"].as_f64().unwrap() - 0.5).abs() < 1e-3, "{metrics}");
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    assert!(history.starts_with("epoch,loss,sparsity,train_acc,val_acc,test_acc,elapsed_secs\n"));
    assert_eq!(history.lines().count(), 41);
    // Bad data: a folder without Planetoid files, a pickle that names a foreign global, bad flags.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = run_err(sparsefield().args(["gnn", "train", "--data"]).arg(&empty).arg("--out").arg(dir.join("o1")));
    assert!(err.contains("no Planetoid files here") && err.contains("empty"), "{err}");
    let evil = dir.join("evil");
    std::fs::create_dir_all(&evil).unwrap();
    for suffix in ["x", "y", "tx", "ty", "allx", "ally", "graph"] {
        std::fs::write(evil.join(format!("ind.evil.{suffix}")), b"\x80\x02cposix\nsystem\nq\x00.").unwrap();
    }
    std::fs::write(evil.join("ind.evil.test.index"), "1\n").unwrap();
    let err = run_err(sparsefield().args(["gnn", "train", "--data"]).arg(&evil).arg("--out").arg(dir.join("o2")));
    assert!(
        err.contains("ind.evil.x") && err.contains("refused global `posix.system`") && err.contains("at byte 2"),
        "{err}"
    );
    let err = run_err(sparsefield().args(["gnn", "train", "--sparsity", "1.5", "--out"]).arg(dir.join("o3")));
    assert!(err.contains("sparsity must be in [0, 1)"), "{err}");
}

/// `gnn sweep`, `gnn depth` and `gnn ood` on a small block model write their tables and charts;
/// `gnn train` reads a plain CSV folder; bad CSV files and settings exit non-zero naming the file.
#[test]
fn gnn_sweep_depth_ood_and_plain_folders() {
    let dir = temp_dir("cli_gnn_studies");
    let small = ["--data", "csbm", "--csbm-nodes", "400", "--hidden", "16", "--epochs", "20"];
    let out = dir.join("sweep");
    let stdout = run_ok(
        sparsefield()
            .args(["gnn", "sweep"])
            .args(small)
            .args(["--sparsity", "0.5,0.9", "--seeds", "2", "--out"])
            .arg(&out),
    );
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(csv.starts_with("method,sparsity,layers,seed,test_acc"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + (2 * 2 + 1) * 2, "ugt and edge-popup at 2 sparsities, dense, 2 seeds: {csv}");
    assert!(out.join("sweep.png").is_file());
    assert!(stdout.contains("ugt sparsity 0.9") && stdout.contains("(2 seeds)"), "{stdout}");
    let out = dir.join("depth");
    let stdout = run_ok(sparsefield().args(["gnn", "depth"]).args(small).args(["--layers", "2,4", "--out"]).arg(&out));
    let csv = std::fs::read_to_string(out.join("depth.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "ugt and dense at 2 and 4 layers: {csv}");
    // The last column lists one MAD per layer.
    assert_eq!(rows.iter().map(|r| r.rsplit(',').next().unwrap().split(' ').count()).collect::<Vec<_>>(), [2, 4, 2, 4]);
    assert!(out.join("depth.png").is_file() && stdout.contains("MAD of the hidden layers"), "{stdout}");
    let out = dir.join("ood");
    let stdout = run_ok(sparsefield().args(["gnn", "ood", "--method", "dense"]).args(small).arg("--out").arg(&out));
    let ood: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("ood.json")).unwrap()).unwrap();
    assert_eq!(ood["held_out"].as_array().unwrap().len(), 2, "40% of 5 classes");
    assert!((0.0..=1.0).contains(&ood["auroc_softmax"].as_f64().unwrap()), "{ood}");
    assert!(out.join("ood.png").is_file() && stdout.contains("AUROC"), "{stdout}");

    let plain = dir.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("edges.csv"), (0..90).map(|i| format!("{},{}\n", i, (i + 1) % 90)).collect::<String>())
        .unwrap();
    std::fs::write(plain.join("labels.csv"), (0..90).map(|i| format!("{i},c{}\n", i / 30)).collect::<String>())
        .unwrap();
    let out = dir.join("plain_run");
    let stdout = run_ok(
        sparsefield()
            .args(["gnn", "train", "--model", "gat", "--heads", "2", "--hidden", "8", "--epochs", "20", "--data"])
            .arg(&plain)
            .arg("--out")
            .arg(&out),
    );
    assert!(stdout.contains("plain (90 nodes, 90 edges): GAT"), "{stdout}");
    let predictions = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    assert_eq!(predictions.lines().count(), 91);
    std::fs::write(plain.join("labels.csv"), "0,a\n1,b\nx,a\n").unwrap();
    let err = run_err(sparsefield().args(["gnn", "train", "--data"]).arg(&plain).arg("--out").arg(dir.join("bad")));
    assert!(err.contains("labels.csv") && err.contains("line 3") && err.contains("\"x\""), "{err}");
    let err = run_err(sparsefield().args(["gnn", "ood", "--held-out", "1.5", "--out"]).arg(dir.join("bad2")));
    assert!(err.contains("held-out share"), "{err}");
    let err = run_err(
        sparsefield().args(["gnn", "train", "--data", "csbm", "--csbm-homophily", "2", "--out"]).arg(dir.join("bad3")),
    );
    assert!(err.contains("homophily"), "{err}");
}

/// `bench gan` times the fused neighbourhood attention against candle's masked full attention;
/// impossible sizes exit non-zero with the reason.
#[test]
fn bench_gan_times_the_attention_op_and_refuses_impossible_sizes() {
    let stdout = run_ok(sparsefield().args(["bench", "gan", "--size", "9", "--channels", "8", "--heads", "2"]).args([
        "--kernel",
        "3",
        "--dilation",
        "2",
        "--repeats",
        "1",
    ]));
    assert!(stdout.contains("fused op:") && stdout.contains("× its speed"), "{stdout}");
    let err = run_err(sparsefield().args(["bench", "gan", "--channels", "10", "--heads", "4"]));
    assert!(err.contains("multiple of --heads"), "{err}");
    let err = run_err(sparsefield().args(["bench", "gan", "--size", "8", "--kernel", "5", "--dilation", "2"]));
    assert!(err.contains("more than the 8-pixel side"), "{err}");
}
