//! The SIREN: fitting quality, closed-form derivatives, the fused op, files.

use candle_core::{DType, Device, Module, Tensor};
use sparsefield::compute::control::{RunControl, RunEvent};
use sparsefield::compute::inr::{self, BatchMode, FieldView, FitConfig, Siren, SirenConfig, SirenWeights, derivatives};
use sparsefield::ui::BuiltinImage;

use super::common::{builtin_crop, temp_dir};

fn quick_fit_config(steps: u64) -> FitConfig {
    FitConfig { steps, snapshot_interval_secs: 0.0, ..FitConfig::default() }
}

#[test]
fn siren_fits_a_64px_crop_to_30_db_within_300_steps() {
    let image = builtin_crop(BuiltinImage::Camera, 64);
    let control = RunControl::new();
    let mut events = 0;
    let summary = inr::fit(&image, &quick_fit_config(300), None, &control, &mut |_| events += 1).unwrap();
    assert!(summary.psnr_db >= 30.0, "PSNR {:.2} dB after 300 steps", summary.psnr_db);
    assert_eq!(summary.steps_done, 300);
    assert!(!summary.cancelled);
    assert_eq!(summary.history.len(), 300);
    // Loss fell by orders of magnitude; the history's PSNR agrees with the final evaluation
    // (full batch: the last step's loss is the whole image's, before its own update).
    assert!(summary.history[299].loss < summary.history[0].loss / 100.0);
    assert!((summary.history[299].psnr_db - summary.psnr_db).abs() < 1.5);
    assert!(events >= 2, "Started and Progress events expected");
}

#[test]
fn fit_is_reproducible_for_a_seed_and_differs_across_seeds() {
    let image = builtin_crop(BuiltinImage::Camera, 16);
    let cfg = FitConfig {
        width: 32,
        hidden_layers: 2,
        steps: 5,
        batch: BatchMode::Random { pixels: 64 },
        ..quick_fit_config(5)
    };
    let run = |seed| {
        let cfg = FitConfig { seed, ..cfg.clone() };
        inr::fit(&image, &cfg, None, &RunControl::new(), &mut |_| {}).unwrap().weights
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

#[test]
fn cancelled_fit_returns_what_it_reached() {
    let image = builtin_crop(BuiltinImage::Camera, 16);
    let cfg = FitConfig { width: 16, hidden_layers: 1, ..quick_fit_config(1_000_000) };
    let control = RunControl::new();
    let summary = inr::fit(&image, &cfg, None, &control, &mut |event| {
        if let RunEvent::Progress { step, .. } = event
            && step >= 3
        {
            control.cancel();
        }
    })
    .unwrap();
    assert!(summary.cancelled);
    assert!(summary.steps_done >= 3 && summary.steps_done < 1_000_000);
    assert_eq!(Some(summary.psnr_db), summary.history.last().map(|r| r.psnr_db), "the last step's PSNR");
    summary.weights.validate().unwrap();
}

#[test]
fn fit_rejects_bad_settings_with_a_message() {
    let image = builtin_crop(BuiltinImage::Camera, 8);
    for (cfg, needle) in [
        (FitConfig { width: 1000, ..quick_fit_config(1) }, "width"),
        (FitConfig { learning_rate: -1.0, ..quick_fit_config(1) }, "learning rate"),
        (FitConfig { omega0: f32::NAN, ..quick_fit_config(1) }, "omega0"),
        (quick_fit_config(0), "steps"),
        (FitConfig { batch: BatchMode::Random { pixels: 0 }, ..quick_fit_config(1) }, "batch"),
    ] {
        let err = inr::fit(&image, &cfg, None, &RunControl::new(), &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains(needle), "{err:?} should mention {needle}");
    }
}

fn small_weights(seed: u64, channels: usize) -> SirenWeights {
    SirenWeights::init(SirenConfig::image(channels, 24, 3, 30.0), seed)
}

/// Central differences of the network in f64 against the closed-form jet (also f64).
#[test]
fn closed_form_derivatives_match_finite_differences() {
    let weights = small_weights(7, 3);
    let model = Siren::new(&weights, &Device::Cpu, DType::F64).unwrap();
    let points: Vec<f64> = vec![0.1, -0.3, -0.7, 0.45, 0.93, 0.02, -0.5, -0.5];
    let n = points.len() / 2;
    let xs = Tensor::from_vec(points.clone(), (n, 2), &Device::Cpu).unwrap();
    let jet = derivatives::jet2(&model, &xs).unwrap();
    let h = 1e-4;
    let eval = |dx: f64, dy: f64| -> Vec<f64> {
        let shifted: Vec<f64> = points.chunks(2).flat_map(|p| [p[0] + dx, p[1] + dy]).collect();
        let t = Tensor::from_vec(shifted, (n, 2), &Device::Cpu).unwrap();
        model.forward(&t).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    };
    let f0 = eval(0.0, 0.0);
    let (fxp, fxm, fyp, fym) = (eval(h, 0.0), eval(-h, 0.0), eval(0.0, h), eval(0.0, -h));
    let (fpp, fpm, fmp, fmm) = (eval(h, h), eval(h, -h), eval(-h, h), eval(-h, -h));
    let get = |t: &Tensor| -> Vec<f64> { t.flatten_all().unwrap().to_vec1().unwrap() };
    let (value, dx, dy) = (get(&jet.value), get(&jet.dx), get(&jet.dy));
    let (dxx, dxy, dyy) = (get(&jet.dxx), get(&jet.dxy), get(&jet.dyy));
    let lap = get(&jet.laplacian().unwrap());
    for k in 0..f0.len() {
        let fd_dx = (fxp[k] - fxm[k]) / (2.0 * h);
        let fd_dy = (fyp[k] - fym[k]) / (2.0 * h);
        let fd_dxx = (fxp[k] - 2.0 * f0[k] + fxm[k]) / (h * h);
        let fd_dyy = (fyp[k] - 2.0 * f0[k] + fym[k]) / (h * h);
        let fd_dxy = (fpp[k] - fpm[k] - fmp[k] + fmm[k]) / (4.0 * h * h);
        // Truncation error ~h²·f''' with f''' ~ ω³ ~ 3e4 → ~3e-4 on first derivatives of size ~10–100;
        // second differences also lose ~1e-16/h² ~ 1e-8 to rounding.
        let close = |a: f64, b: f64, what: &str| {
            let tol = 1e-3 * (1.0 + b.abs());
            assert!((a - b).abs() < tol, "{what}[{k}]: closed form {a}, finite difference {b}");
        };
        close(value[k], f0[k], "value");
        close(dx[k], fd_dx, "∂x");
        close(dy[k], fd_dy, "∂y");
        close(dxx[k], fd_dxx, "∂xx");
        close(dyy[k], fd_dyy, "∂yy");
        close(dxy[k], fd_dxy, "∂xy");
        close(lap[k], fd_dxx + fd_dyy, "∇²");
    }
    // The derivatives are not trivially zero.
    assert!(dx.iter().map(|v| v.abs()).sum::<f64>() > 1.0);
    assert!(dxx.iter().map(|v| v.abs()).sum::<f64>() > 10.0);
}

/// The fused op against the same network built from candle's generic ops: values and the
/// gradient of every parameter, for gray and RGB outputs and row counts that are not multiples of
/// the op's block size.
#[test]
fn fused_siren_matches_the_candle_graph_in_values_and_gradients() {
    for (channels, width, layers, rows) in [(1, 37, 3, 1100), (3, 16, 1, 7)] {
        let weights = SirenWeights::init(SirenConfig::image(channels, width, layers, 30.0), 13);
        let model = Siren::new(&weights, &Device::Cpu, DType::F32).unwrap();
        let coords: Vec<f32> = (0..rows * 2).map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0).collect();
        let xs = Tensor::from_vec(coords, (rows, 2), &Device::Cpu).unwrap();
        let upstream: Vec<f32> = (0..rows * channels).map(|i| ((i * 104_729) % 997) as f32 / 997.0 - 0.5).collect();
        let g = Tensor::from_vec(upstream, (rows, channels), &Device::Cpu).unwrap();
        let run = |fused: bool| -> (Vec<f32>, Vec<f32>) {
            let y = if fused { model.forward(&xs) } else { model.forward_unfused(&xs) }.unwrap();
            let grads = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let flat = |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
            (flat(&y), flat(grads.get(model.vars()[0].as_tensor()).unwrap()))
        };
        let (y_fused, g_fused) = run(true);
        let (y_ref, g_ref) = run(false);
        let y_eval: Vec<f32> = model.evaluate(&xs).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let max_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0_f32, f32::max);
        let max_abs = |a: &[f32]| a.iter().fold(0.0_f32, |m, x| m.max(x.abs()));
        // Pre-activations reach ~30 in f32; summation order and sine implementations differ by a
        // few ulp of the argument, ~1e-5 after the sine.
        assert!(max_diff(&y_fused, &y_ref) < 5e-5, "values differ by {}", max_diff(&y_fused, &y_ref));
        assert_eq!(y_fused, y_eval, "training and evaluation forwards agree exactly");
        let scale = max_abs(&g_ref);
        assert!(scale > 1.0, "the gradient is not trivial");
        // Per parameter, within 1e-4 of the largest gradient (ω = 30 per layer amplifies rounding).
        assert!(
            max_diff(&g_fused, &g_ref) < 1e-4 * scale,
            "gradients differ by {} (scale {scale})",
            max_diff(&g_fused, &g_ref)
        );
    }
}

#[test]
fn fused_backward_refuses_stale_activations() {
    let weights = small_weights(4, 1);
    let model = Siren::new(&weights, &Device::Cpu, DType::F32).unwrap();
    let xs = Tensor::from_vec(inr::pixel_coords(4, 4), (16, 2), &Device::Cpu).unwrap();
    let first = model.forward(&xs).unwrap().sum_all().unwrap();
    let _second = model.forward(&xs).unwrap();
    let err = first.backward().unwrap_err().to_string();
    assert!(err.contains("another forward pass"), "{err}");
}

#[test]
fn siren_init_follows_the_paper_bounds() {
    let cfg = SirenConfig::image(1, 256, 3, 30.0);
    let w = SirenWeights::init(cfg, 0);
    w.validate().unwrap();
    let max_abs = |v: &[f32]| v.iter().fold(0.0_f32, |m, x| m.max(x.abs()));
    assert!(max_abs(&w.layers[0].weight) <= 0.5); // 1/fan_in with fan_in = 2
    let hidden_bound = (6.0_f32 / 256.0).sqrt() / 30.0;
    assert!(max_abs(&w.layers[1].weight) <= hidden_bound);
    assert!(max_abs(&w.layers[1].weight) > 0.9 * hidden_bound, "uniform draws should reach near the bound");
    assert_eq!(w.layers.len(), 4);
    assert_eq!(cfg.num_parameters(), 2 * 256 + 256 + 2 * (256 * 256 + 256) + 256 + 1);
}

#[test]
fn weights_round_trip_through_safetensors() {
    let dir = temp_dir("weights_round_trip");
    let weights = small_weights(5, 3);
    let path = dir.join("inr.safetensors");
    weights.save(&path, &[("sparsefield.image", "x.png".into())]).unwrap();
    assert_eq!(SirenWeights::load(&path).unwrap(), weights);
    // Other tools read it: plain safetensors with PyTorch's Linear layout.
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("layers.0.weight").unwrap().shape(), &[24, 2]);
    assert_eq!(st.tensor("layers.3.weight").unwrap().shape(), &[3, 24]);
}

#[test]
fn bad_weight_files_are_refused_with_the_reason() {
    let dir = temp_dir("bad_weights");
    let missing = SirenWeights::load(&dir.join("nope.safetensors")).unwrap_err().to_string();
    assert!(missing.contains("nope.safetensors"), "{missing}");
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"definitely not safetensors").unwrap();
    let err = SirenWeights::load(&junk).unwrap_err().to_string();
    assert!(err.contains("junk.safetensors") && err.contains("not a safetensors file"), "{err}");
    // A valid safetensors file without our metadata.
    let foreign = dir.join("foreign.safetensors");
    let data = [0_u8; 8];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap();
    std::fs::write(&foreign, safetensors::serialize([("x", view)], None).unwrap()).unwrap();
    let err = SirenWeights::load(&foreign).unwrap_err().to_string();
    assert!(err.contains("sparsefield.siren"), "{err}");
    // Our metadata but a tensor of the wrong shape.
    let weights = small_weights(1, 1);
    let mut broken = weights.clone();
    broken.layers[1].weight.pop();
    let path = dir.join("broken.safetensors");
    assert!(broken.save(&path, &[]).is_err(), "saving inconsistent weights must fail");
    weights.save(&path, &[]).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 10);
    assert!(SirenWeights::load(&path.with_extension("x")).is_err());
    std::fs::write(&path, &bytes).unwrap();
    let err = SirenWeights::load(&path).unwrap_err().to_string();
    assert!(err.contains("broken.safetensors"), "{err}");
}

#[test]
fn render_image_matches_reconstruct_and_is_resolution_free() {
    let weights = small_weights(9, 1);
    let model = Siren::new(&weights, &Device::Cpu, DType::F32).unwrap();
    let direct = inr::reconstruct(&model, 40, 30).unwrap();
    let mut progress = 0;
    let rendered = inr::render_image(&weights, 40, 30, &RunControl::new(), &mut |e| {
        if let RunEvent::Progress { step, .. } = e {
            progress = step;
        }
    })
    .unwrap()
    .unwrap();
    assert_eq!(direct, rendered);
    assert_eq!(progress, 30);
    // A 3× grid contains the 1× grid's pixel centres (fine index 3i + 1): same continuous function.
    let fine = inr::field_values(&model, FieldView::Value, 120, 90).unwrap();
    for (i, j) in [(0, 0), (39, 29), (17, 5)] {
        let coarse = direct.at(i, j, 0);
        let fine_value = fine[((3 * j + 1) * 120 + 3 * i + 1) as usize].clamp(0.0, 1.0);
        assert!((coarse - fine_value).abs() < 1e-5, "pixel ({i}, {j}): {coarse} vs {fine_value}");
    }
    assert!(inr::render_image(&weights, 0, 10, &RunControl::new(), &mut |_| {}).is_err());
}

#[test]
fn display_scales_are_positive_percentiles() {
    let model = Siren::new(&small_weights(2, 3), &Device::Cpu, DType::F32).unwrap();
    let scales = inr::display_scales(&model).unwrap();
    let grad = inr::field_values(&model, FieldView::GradientMagnitude, 48, 48).unwrap();
    let below = grad.iter().filter(|v| **v <= scales.gradient).count();
    #[allow(clippy::cast_precision_loss)]
    let fraction = below as f64 / grad.len() as f64;
    assert!((0.98..=1.0).contains(&fraction), "{fraction} of |∇f| values under the 99th percentile");
    assert!(scales.laplacian > 0.0);
}
