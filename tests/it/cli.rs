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
