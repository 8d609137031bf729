//! INR editing (INSP): closed-form derivative stacks, pixel-domain filters, the operator.

use candle_core::{DType, Device, Tensor};
use sparsefield::compute::inr::taylor::{self, Partials};
use sparsefield::compute::inr::{self, FieldView, Siren, SirenConfig, SirenWeights, derivatives};

fn test_siren(channels: usize, seed: u64) -> SirenWeights {
    SirenWeights::init(SirenConfig::image(channels, 24, 2, 30.0), seed)
}

fn test_points() -> Vec<f64> {
    // A fixed scatter over the square, away from nothing in particular.
    (0..40).flat_map(|k| [((k * 37) % 97) as f64 / 48.5 - 1.0, ((k * 61) % 89) as f64 / 44.5 - 1.0]).collect()
}

/// `(value, dx, dy, dxx, dxy, dyy)` in pixel units from the candle closed form in f64, `(n, C)` each.
fn jet2_f64(weights: &SirenWeights, points: &[f64]) -> [Vec<Vec<f64>>; 6] {
    let model = Siren::new(weights, &Device::Cpu, DType::F64).unwrap();
    let xs = Tensor::from_slice(points, (points.len() / 2, 2), &Device::Cpu).unwrap();
    let jet = derivatives::jet2(&model, &xs).unwrap();
    let read = |t: &Tensor, offset: f64| -> Vec<Vec<f64>> {
        t.to_vec2::<f64>().unwrap().into_iter().map(|row| row.into_iter().map(|v| 0.5 * v + offset).collect()).collect()
    };
    [
        read(&jet.value, 0.5),
        read(&jet.dx, 0.0),
        read(&jet.dy, 0.0),
        read(&jet.dxx, 0.0),
        read(&jet.dxy, 0.0),
        read(&jet.dyy, 0.0),
    ]
}

/// Asserts that `got[point][c]` matches `want[point][c]` within `rel` of the largest `|want|`.
fn assert_close(name: &str, got: &[Vec<f64>], want: &[Vec<f64>], rel: f64) {
    let scale = want.iter().flatten().fold(0.0_f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{name}: reference is zero everywhere");
    for (point, (g, w)) in got.iter().zip(want).enumerate() {
        for (c, (a, b)) in g.iter().zip(w).enumerate() {
            assert!((a - b).abs() <= rel * scale, "{name} at point {point} channel {c}: {a} vs {b} (scale {scale})");
        }
    }
}

/// `stack[point][c][k]` as `[point][c]` for partial `(i, j)`.
fn partial(stack: &[f32], partials: &Partials, channels: usize, i: usize, j: usize) -> Vec<Vec<f64>> {
    let k = partials.index_of(i, j).unwrap();
    stack
        .chunks_exact(channels * partials.len())
        .map(|point| point.chunks_exact(partials.len()).map(|ch| f64::from(ch[k])).collect())
        .collect()
}

#[test]
fn partials_are_listed_by_order_with_mixed_ones() {
    let partials = Partials::new(4).unwrap();
    assert_eq!(partials.len(), 15);
    let labels: Vec<String> = (0..6).map(|k| partials.label(k)).collect();
    assert_eq!(labels, ["f", "∂x", "∂y", "∂xx", "∂xy", "∂yy"]);
    assert_eq!(partials.label(14), "∂yyyy");
    assert_eq!(partials.index_of(2, 2), Some(12));
    assert!(Partials::new(taylor::MAX_ORDER + 1).is_err());
}

#[test]
fn taylor_stack_matches_the_second_order_closed_form_in_f64() {
    let weights = test_siren(3, 7);
    let points = test_points();
    let coords: Vec<f32> = points.iter().map(|&v| v as f32).collect();
    let partials = Partials::new(2).unwrap();
    let stack = taylor::derivative_stack(&weights, &partials, &coords).unwrap();
    let reference = jet2_f64(&weights, &points);
    for ((i, j), want) in [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)].into_iter().zip(&reference) {
        assert_close(
            &partials.label(partials.index_of(i, j).unwrap()),
            &partial(&stack, &partials, 3, i, j),
            want,
            2e-4,
        );
    }
}

#[test]
fn taylor_orders_three_and_four_match_finite_differences() {
    let weights = test_siren(1, 11);
    let points = test_points();
    let coords: Vec<f32> = points.iter().map(|&v| v as f32).collect();
    let partials = Partials::new(4).unwrap();
    let stack = taylor::derivative_stack(&weights, &partials, &coords).unwrap();
    // Central differences of the f64 closed-form second derivatives.
    let h = 1e-4;
    let shifted = |dx: f64, dy: f64| {
        let moved: Vec<f64> = points.chunks_exact(2).flat_map(|p| [p[0] + dx, p[1] + dy]).collect();
        jet2_f64(&weights, &moved)
    };
    let (centre, xp, xm, yp, ym) =
        (shifted(0.0, 0.0), shifted(h, 0.0), shifted(-h, 0.0), shifted(0.0, h), shifted(0.0, -h));
    let first = |plus: &[Vec<f64>], minus: &[Vec<f64>]| -> Vec<Vec<f64>> {
        plus.iter().zip(minus).map(|(p, m)| vec![(p[0] - m[0]) / (2.0 * h)]).collect()
    };
    let second = |plus: &[Vec<f64>], mid: &[Vec<f64>], minus: &[Vec<f64>]| -> Vec<Vec<f64>> {
        plus.iter().zip(mid).zip(minus).map(|((p, c), m)| vec![(p[0] - 2.0 * c[0] + m[0]) / (h * h)]).collect()
    };
    let (dxx, dxy, dyy) = (3, 4, 5);
    let checks = [
        ("∂xxx", (3, 0), first(&xp[dxx], &xm[dxx])),
        ("∂xxy via ∂y of ∂xx", (2, 1), first(&yp[dxx], &ym[dxx])),
        ("∂xxy via ∂x of ∂xy", (2, 1), first(&xp[dxy], &xm[dxy])),
        ("∂xyy", (1, 2), first(&yp[dxy], &ym[dxy])),
        ("∂yyy", (0, 3), first(&yp[dyy], &ym[dyy])),
        ("∂xxxx", (4, 0), second(&xp[dxx], &centre[dxx], &xm[dxx])),
        ("∂xxxy", (3, 1), second(&xp[dxy], &centre[dxy], &xm[dxy])),
        ("∂xxyy via ∂yy of ∂xx", (2, 2), second(&yp[dxx], &centre[dxx], &ym[dxx])),
        ("∂xxyy via ∂xx of ∂yy", (2, 2), second(&xp[dyy], &centre[dyy], &xm[dyy])),
        ("∂xyyy", (1, 3), second(&yp[dxy], &centre[dxy], &ym[dxy])),
        ("∂yyyy", (0, 4), second(&yp[dyy], &centre[dyy], &ym[dyy])),
    ];
    for (name, (i, j), want) in checks {
        assert_close(name, &partial(&stack, &partials, 1, i, j), &want, 2e-3);
    }
}

#[test]
fn laplacian_of_the_stack_matches_the_lab_view() {
    let weights = test_siren(3, 3);
    let partials = Partials::new(3).unwrap();
    let (w, h) = (9, 7);
    let stack = taylor::stack_at_pixels(&weights, &partials, w, h).unwrap();
    let model = Siren::new(&weights, &Device::Cpu, DType::F32).unwrap();
    let view = inr::field_values(&model, FieldView::Laplacian, w, h).unwrap();
    let values = inr::field_values(&model, FieldView::Value, w, h).unwrap();
    let (xx, yy, f) = (partials.index_of(2, 0).unwrap(), partials.index_of(0, 2).unwrap(), 0);
    let scale = view.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
    for (n, point) in stack.chunks_exact(3 * partials.len()).enumerate() {
        for (c, ch) in point.chunks_exact(partials.len()).enumerate() {
            let laplacian = ch[xx] + ch[yy];
            assert!((laplacian - view[n * 3 + c]).abs() <= 1e-3 * scale, "pixel {n} channel {c}");
            assert!((ch[f] - values[n * 3 + c]).abs() <= 1e-4, "value at pixel {n} channel {c}");
        }
    }
}

#[test]
fn derivative_stack_rejects_odd_coordinates_and_bad_weights() {
    let mut weights = test_siren(1, 0);
    let partials = Partials::new(2).unwrap();
    assert!(taylor::derivative_stack(&weights, &partials, &[0.0, 0.1, 0.2]).is_err());
    weights.layers[0].bias[0] = f32::NAN;
    let error = taylor::derivative_stack(&weights, &partials, &[0.0, 0.1]).unwrap_err().to_string();
    assert!(error.contains("NaN"), "{error}");
}

mod filters {
    use sparsefield::compute::filters;
    use sparsefield::compute::image_io::ImageData;

    fn impulse(size: u32) -> ImageData {
        let mut pixels = vec![0.0; (size * size) as usize];
        pixels[(size / 2 * size + size / 2) as usize] = 1.0;
        ImageData::new(size, size, 1, pixels).unwrap()
    }

    #[test]
    fn gaussian_blur_of_an_impulse_is_the_sampled_gaussian() {
        let sigma = 1.5_f32;
        let blurred = filters::gaussian_blur(&impulse(21), sigma);
        let norm: f32 = (-10..=10).map(|k: i32| (-((k * k) as f32) / (2.0 * sigma * sigma)).exp()).take(21).sum();
        // Kernel radius ⌈3σ⌉ = 5: the 1-D normaliser only counts those taps.
        let norm5: f32 = (-5..=5).map(|k: i32| (-((k * k) as f32) / (2.0 * sigma * sigma)).exp()).sum();
        assert!(norm > norm5);
        for (dx, dy) in [(0, 0), (1, 0), (2, 1), (3, 3), (5, 0)] {
            let want = (-((dx * dx + dy * dy) as f32) / (2.0 * sigma * sigma)).exp() / (norm5 * norm5);
            let got = blurred.at(10 + dx, 10 + dy, 0);
            assert!((got - want).abs() < 1e-6, "({dx}, {dy}): {got} vs {want}");
        }
        assert_eq!(blurred.at(10 + 6, 10, 0), 0.0, "beyond the radius");
        let total: f32 = blurred.pixels.iter().sum();
        assert!((total - 1.0).abs() < 1e-5, "blur keeps the mass: {total}");
    }

    #[test]
    fn filters_keep_constant_images_and_box_blur_averages() {
        let flat = ImageData::new(9, 7, 3, vec![0.3; 9 * 7 * 3]).unwrap();
        for out in [
            filters::gaussian_blur(&flat, 2.0),
            filters::box_blur(&flat, 2),
            filters::median3(&flat),
            filters::binomial3(&flat),
            filters::unsharp_mask(&flat, 1.0, 1.0),
        ] {
            assert!(out.pixels.iter().all(|v| (v - 0.3).abs() < 1e-6));
        }
        // A vertical step: the 3-wide box at the edge sees one bright column of three.
        let step: Vec<f32> = (0..8 * 8).map(|i| if i % 8 >= 4 { 1.0 } else { 0.0 }).collect();
        let step = ImageData::new(8, 8, 1, step).unwrap();
        let boxed = filters::box_blur(&step, 1);
        assert!((boxed.at(3, 4, 0) - 1.0 / 3.0).abs() < 1e-6);
        assert!((boxed.at(4, 4, 0) - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn median_removes_isolated_specks_and_thin_lines() {
        let speck = filters::median3(&impulse(9));
        assert!(speck.pixels.iter().all(|&v| v == 0.0));
        let mut line = vec![0.2; 9 * 9];
        (0..9).for_each(|x| line[4 * 9 + x] = 1.0);
        let cleaned = filters::median3(&ImageData::new(9, 9, 1, line).unwrap());
        assert!(cleaned.pixels.iter().all(|&v| (v - 0.2).abs() < 1e-6));
    }

    #[test]
    fn noise_has_the_requested_spread_and_is_seeded() {
        let grey = ImageData::new(64, 64, 1, vec![0.5; 64 * 64]).unwrap();
        let noisy = filters::add_gaussian_noise(&grey, 0.05, 3);
        let n = noisy.pixels.len() as f64;
        let mean = noisy.pixels.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let std = (noisy.pixels.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
        assert!((std - 0.05).abs() < 0.003, "std {std}");
        assert_eq!(noisy, filters::add_gaussian_noise(&grey, 0.05, 3));
        assert_ne!(noisy, filters::add_gaussian_noise(&grey, 0.05, 4));
    }

    #[test]
    fn scribbles_cover_about_what_was_asked() {
        let mask = filters::scribble_mask(128, 96, 0.06, 1);
        let covered = mask.iter().filter(|&&m| m).count() as f32 / mask.len() as f32;
        assert!((0.06..0.075).contains(&covered), "coverage {covered}");
        assert_eq!(mask, filters::scribble_mask(128, 96, 0.06, 1));
    }

    #[test]
    fn crops_stay_inside_the_image() {
        let image = ImageData::new(10, 6, 1, (0..60).map(|v| v as f32 / 60.0).collect()).unwrap();
        let crop = filters::crop(&image, 2, 1, 4, 3);
        assert_eq!((crop.width, crop.height), (4, 3));
        assert_eq!(crop.at(0, 0, 0), image.at(2, 1, 0));
        assert_eq!(crop.at(3, 2, 0), image.at(5, 3, 0));
        let clipped = filters::crop(&image, 8, 4, 5, 5);
        assert_eq!((clipped.width, clipped.height), (2, 2));
    }

    #[test]
    fn training_views_are_seeded_crops_found_in_the_image_or_the_whole_image() {
        use sparsefield::compute::inr::insp::training_views;
        // Every pixel distinct, so a crop's first pixel says where it came from.
        let image = ImageData::new(20, 12, 1, (0..240).map(|v| v as f32 / 240.0).collect()).unwrap();
        let views = training_views(&image, 8, 5, 3);
        assert_eq!(views.len(), 5);
        for view in &views {
            assert_eq!((view.width, view.height), (8, 8));
            let first = (view.at(0, 0, 0) * 240.0).round() as u32;
            let (x, y) = (first % 20, first / 20);
            assert!(x + 8 <= 20 && y + 8 <= 12, "crop at ({x}, {y}) leaves the image");
            assert_eq!(*view, filters::crop(&image, x, y, 8, 8));
        }
        assert_eq!(views, training_views(&image, 8, 5, 3), "seeded");
        assert_ne!(views, training_views(&image, 8, 5, 4));
        // No crops, or an image smaller than a crop: the whole image, downscaled.
        for (size, crops) in [(10, 0), (16, 3)] {
            let whole = training_views(&image, size, crops, 3);
            assert_eq!(whole, vec![image.clone().downscaled_to(size)]);
        }
    }
}

mod operator {
    use std::path::Path;

    use sparsefield::compute::control::RunControl;
    use sparsefield::compute::image_io::ImageData;
    use sparsefield::compute::inr::insp::{self, EditKind, EditTask, OperatorConfig, OperatorWeights, TrainingSet};
    use sparsefield::compute::inr::{BatchMode, FitConfig, SirenWeights};
    use sparsefield::ui::BuiltinImage;

    use crate::common::{builtin_crop, temp_dir};

    fn tiny_fit() -> FitConfig {
        FitConfig {
            width: 32,
            hidden_layers: 2,
            steps: 150,
            learning_rate: 1e-3,
            batch: BatchMode::Full,
            snapshot_interval_secs: 0.0,
            ..FitConfig::default()
        }
    }

    fn tiny_operator(order: usize, steps: u64) -> OperatorConfig {
        OperatorConfig {
            order,
            width: 32,
            hidden_layers: 2,
            steps,
            batch: 256,
            snapshot_interval_secs: 0.0,
            ..OperatorConfig::default()
        }
    }

    fn tiny_training_set(task: EditTask, order: usize) -> TrainingSet {
        let clean = builtin_crop(BuiltinImage::Camera, 24);
        insp::build_training_set(&[clean], task, &tiny_fit(), order, 0, &RunControl::new(), &mut |_, _, _, _| {})
            .unwrap()
            .unwrap()
    }

    #[test]
    fn training_an_operator_learns_a_blur() {
        let task = EditTask { sigma: 1.5, ..EditTask::new(EditKind::GaussianBlur) };
        let set = tiny_training_set(task, 3);
        assert_eq!(set.len(), 24 * 24);
        let mut events = 0;
        let summary =
            insp::train_operator(&set, task, &tiny_operator(3, 300), &RunControl::new(), &mut |_| events += 1).unwrap();
        assert_eq!(summary.steps_done, 300);
        assert!(events >= 2);
        let first: f64 = summary.history[..10].iter().map(|r| r.loss).sum::<f64>() / 10.0;
        let last: f64 = summary.history[290..].iter().map(|r| r.loss).sum::<f64>() / 10.0;
        assert!(last < first / 4.0, "loss {first} → {last}");
        assert!(
            summary.final_psnr_db > summary.initial_psnr_db + 6.0,
            "PSNR {:.2} → {:.2} dB",
            summary.initial_psnr_db,
            summary.final_psnr_db
        );
    }

    #[test]
    fn a_fresh_residual_operator_is_the_identity_and_the_cpu_evaluator_matches_a_reference() {
        use sparsefield::compute::inr::insp::OperatorMlp;
        // A fresh residual operator: the last layer is zero, so it returns the INR's value.
        let config = tiny_operator(2, 1);
        let fresh = OperatorMlp::init(&config, 6);
        let last = fresh.layers().pop().unwrap();
        assert!(last.weight.iter().chain(&last.bias).all(|&v| v == 0.0));
        assert!(fresh.layers()[0].weight.iter().any(|&v| v != 0.0));
        let values = [0.3_f32, 0.7];
        let (loss, _) = fresh.loss_and_gradient(&[0.5; 12], &values, &values);
        assert_eq!(loss, 0.0, "identity: the output equals the value");

        // After training, the parallel evaluator agrees with a scalar reference.
        let task = EditTask::new(EditKind::BoxBlur);
        let set = tiny_training_set(task, 2);
        let weights =
            insp::train_operator(&set, task, &tiny_operator(2, 20), &RunControl::new(), &mut |_| {}).unwrap().weights;
        let stacks: Vec<f32> =
            (0..30).flat_map(|r| (0..6).map(move |k| ((r * 7 + k * 3) % 11) as f32 / 5.0 - 1.0)).collect();
        let got = weights.apply_rows(&stacks);
        for (row, (stack, g)) in stacks.chunks_exact(6).zip(&got).enumerate() {
            assert!((g - reference_apply(&weights, stack)).abs() < 1e-4, "row {row}");
        }
        assert!(got.iter().zip(stacks.chunks_exact(6)).any(|(g, st)| (g - st[0]).abs() > 1e-3), "trained ≠ identity");
    }

    #[test]
    fn edits_scale_their_filter_sizes_with_the_image() {
        let task = EditTask { sigma: 2.0, box_radius: 2, ..EditTask::new(EditKind::GaussianBlur) };
        let double = task.at_scale(2.0);
        assert_eq!((double.sigma, double.box_radius), (4.0, 4));
        assert_eq!(task.at_scale(1.0), task);
        assert_eq!(task.at_scale(0.01).box_radius, 1, "never below one pixel");
    }

    /// Straightforward scalar evaluation of the operator.
    fn reference_apply(weights: &OperatorWeights, stack: &[f32]) -> f32 {
        let mut h: Vec<f64> = stack
            .iter()
            .zip(&weights.feature_shift)
            .zip(&weights.feature_scale)
            .map(|((v, s), d)| f64::from((v - s) / d))
            .collect();
        let last = weights.layers.len() - 1;
        for (index, layer) in weights.layers.iter().enumerate() {
            let fan_in = h.len();
            h = layer
                .bias
                .iter()
                .enumerate()
                .map(|(o, &b)| {
                    let z =
                        f64::from(b) + (0..fan_in).map(|i| f64::from(layer.weight[o * fan_in + i]) * h[i]).sum::<f64>();
                    if index == last { z } else { z.max(0.0) }
                })
                .collect();
        }
        (f64::from(stack[0]) + h[0]) as f32
    }

    #[test]
    fn custom_pairs_load_alike_and_mismatches_name_both_files() {
        use sparsefield::compute::image_io::save_png;
        let dir = temp_dir("insp-pairs");
        let image = |w: u32, h: u32, c: usize| ImageData::new(w, h, c, vec![0.25; (w * h) as usize * c]).unwrap();
        let (input, target, small, gray) =
            (dir.join("in.png"), dir.join("out.png"), dir.join("small.png"), dir.join("gray.png"));
        save_png(&image(40, 20, 3), &input).unwrap();
        save_png(&image(40, 20, 3), &target).unwrap();
        save_png(&image(30, 20, 3), &small).unwrap();
        save_png(&image(40, 20, 1), &gray).unwrap();
        let (a, b) = insp::load_pair(&input, &target, 16).unwrap();
        assert_eq!((a.width, a.height, b.width, b.height), (16, 8, 16, 8), "both downscaled to 16");
        assert_eq!(insp::load_pair(&input, &target, 0).unwrap().0.width, 40, "0 keeps the size");
        for other in [&small, &gray] {
            let error = insp::load_pair(&input, other, 0).unwrap_err().to_string();
            assert!(error.contains("in.png") && error.contains(other.to_str().unwrap()), "{error}");
            assert!(error.contains("same size and colour kind"), "{error}");
        }
        let missing = insp::load_pair(&input, &dir.join("none.png"), 0).unwrap_err().to_string();
        assert!(missing.contains("none.png"), "{missing}");
    }

    #[test]
    fn operator_files_round_trip_and_bad_files_say_what_is_wrong() {
        let task = EditTask::new(EditKind::Denoise);
        let set = tiny_training_set(task, 2);
        let weights =
            insp::train_operator(&set, task, &tiny_operator(2, 3), &RunControl::new(), &mut |_| {}).unwrap().weights;
        let dir = temp_dir("insp-files");
        let path = dir.join("op.safetensors");
        weights.save(&path).unwrap();
        assert_eq!(OperatorWeights::load(&path).unwrap(), weights);

        let inr_path = dir.join("inr.safetensors");
        SirenWeights::init(sparsefield::compute::inr::SirenConfig::image(1, 8, 1, 30.0), 0)
            .save(&inr_path, &[])
            .unwrap();
        let error = OperatorWeights::load(&inr_path).unwrap_err().to_string();
        assert!(error.contains("this is an INR, not an operator"), "{error}");
        assert!(error.contains("inr.safetensors"), "{error}");

        let text = dir.join("notes.safetensors");
        std::fs::write(&text, "hello").unwrap();
        assert!(OperatorWeights::load(&text).unwrap_err().to_string().contains("not a safetensors file"));
        assert!(
            OperatorWeights::load(Path::new("/nonexistent/op.safetensors"))
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );

        // A spec that does not match the tensors.
        let mut wrong = weights.clone();
        wrong.spec.order = 3;
        wrong.save(&dir.join("wrong.safetensors")).unwrap_err();
        // Forge a spec that does not match the tensors: the width in the metadata says 16.
        let bytes_path = dir.join("shapes.safetensors");
        weights.save(&bytes_path).unwrap();
        let mut bytes = std::fs::read(&bytes_path).unwrap();
        let at = bytes.windows(5).position(|w| w == b"width").unwrap();
        let digits = at + bytes[at..].windows(2).position(|w| w == b"32").unwrap();
        assert!(digits - at < 10);
        bytes[digits..digits + 2].copy_from_slice(b"16");
        std::fs::write(&bytes_path, &bytes).unwrap();
        let error = OperatorWeights::load(&bytes_path).unwrap_err().to_string();
        assert!(error.contains("shape"), "{error}");
    }

    #[test]
    fn edits_render_at_any_size_and_stop_when_cancelled() {
        let task = EditTask::new(EditKind::GaussianBlur);
        let set = tiny_training_set(task, 2);
        let op =
            insp::train_operator(&set, task, &tiny_operator(2, 5), &RunControl::new(), &mut |_| {}).unwrap().weights;
        let inr = SirenWeights::init(sparsefield::compute::inr::SirenConfig::image(3, 16, 2, 30.0), 4);
        let mut rows = Vec::new();
        let image: ImageData =
            insp::render_edit(&op, &inr, 40, 30, &RunControl::new(), &mut |r| rows.push(r)).unwrap().unwrap();
        assert_eq!((image.width, image.height, image.channels), (40, 30, 3));
        assert_eq!(rows.last(), Some(&30));
        let control = RunControl::new();
        control.cancel();
        assert!(insp::render_edit(&op, &inr, 40, 30, &control, &mut |_| {}).unwrap().is_none());
        assert!(insp::render_edit(&op, &inr, 0, 30, &RunControl::new(), &mut |_| {}).is_err());
    }
}

#[test]
fn operator_gradient_matches_finite_differences() {
    use sparsefield::compute::inr::insp::{OperatorConfig, OperatorMlp};
    let config =
        OperatorConfig { order: 1, width: 8, hidden_layers: 2, residual: true, seed: 5, ..OperatorConfig::default() };
    let mut net = OperatorMlp::init(&config, 3);
    // Give the zero-initialised last layer values so that every gradient is non-trivial.
    let n = net.params().len();
    for (k, p) in net.params_mut()[n - 9..].iter_mut().enumerate() {
        *p = 0.1 * (k as f32 - 4.0);
    }
    let rows = 40;
    let x: Vec<f32> = (0..rows * 3).map(|k| ((k * 29) % 17) as f32 / 8.0 - 1.0).collect();
    let values: Vec<f32> = (0..rows).map(|k| (k % 5) as f32 / 5.0).collect();
    let targets: Vec<f32> = (0..rows).map(|k| (k % 7) as f32 / 7.0).collect();
    let (loss, grads) = net.loss_and_gradient(&x, &values, &targets);
    assert!(loss > 0.0);
    let h = 1e-2_f32;
    let mut checked = 0;
    for index in (0..n).step_by(3) {
        let original = net.params()[index];
        net.params_mut()[index] = original + h;
        let (plus, _) = net.loss_and_gradient(&x, &values, &targets);
        net.params_mut()[index] = original - h;
        let (minus, _) = net.loss_and_gradient(&x, &values, &targets);
        net.params_mut()[index] = original;
        let numeric = (plus - minus) / (2.0 * f64::from(h));
        let analytic = f64::from(grads[index]);
        // ReLU kinks make a few finite differences meaningless; they are rare at these inputs.
        assert!(
            (numeric - analytic).abs() <= 2e-3 + 2e-2 * analytic.abs(),
            "parameter {index}: {analytic} vs {numeric}"
        );
        checked += 1;
    }
    assert!(checked > 20);
}

mod classify {
    use sparsefield::compute::control::RunControl;
    use sparsefield::compute::inr::classify::{self, ClassifyConfig, ClassifyProgress};

    #[test]
    fn builtin_digits_load_and_bad_files_say_which_line() {
        let digits = classify::builtin_digits();
        assert_eq!(digits.len(), 1797);
        for label in 0..10 {
            let count = digits.labels.iter().filter(|&&l| l == label).count();
            assert!((170..=190).contains(&count), "digit {label}: {count}");
        }
        assert!(digits.images.iter().flatten().all(|v| (0.0..=1.0).contains(v)));
        let good = format!("{}3\n{}5\n", "16,".repeat(64), "0,".repeat(64));
        let parsed = classify::parse_digits(&good, "two.csv").unwrap();
        assert_eq!((parsed.labels[0], parsed.images[0][0], parsed.labels[1]), (3, 1.0, 5));
        let short = format!("{good}1,2,3\n");
        let error = classify::parse_digits(&short, "short.csv").unwrap_err().to_string();
        assert!(error.contains("short.csv, line 3") && error.contains("65"), "{error}");
        let bright = format!("{}3\n", "17,".repeat(64));
        assert!(classify::parse_digits(&bright, "b.csv").unwrap_err().to_string().contains("outside 0–16"));
        let label = format!("{}12\n", "1,".repeat(64));
        assert!(classify::parse_digits(&label, "l.csv").unwrap_err().to_string().contains("not a digit"));
        assert!(classify::parse_digits("", "empty.csv").unwrap_err().to_string().contains("no digits"));
    }

    #[test]
    fn both_classifiers_learn_digits_from_inrs_and_pixels() {
        let digits = classify::builtin_digits();
        let config = ClassifyConfig { limit: 150, inr_steps: 60, epochs: 12, ..ClassifyConfig::default() };
        let mut fitted = 0;
        let mut epochs = 0;
        let summary = classify::run_classification(&digits, &config, &RunControl::new(), &mut |p| match p {
            ClassifyProgress::FittingInrs { done, .. } => fitted = done,
            ClassifyProgress::Training { .. } => epochs += 1,
        })
        .unwrap()
        .unwrap();
        assert_eq!(fitted, 150);
        assert_eq!(epochs, 24);
        assert_eq!((summary.train, summary.test), (120, 30));
        assert!(summary.inr_psnr_db > 25.0, "digit INRs fit: {:.1} dB", summary.inr_psnr_db);
        assert_eq!(summary.insp.input_channels, 6);
        for report in [&summary.insp, &summary.cnn] {
            // Chance is 10%.
            assert!(report.accuracy > 0.5, "{}: {:.2}", report.name, report.accuracy);
            let total: u32 = report.confusion.iter().flatten().sum();
            assert_eq!(total, 30);
            let diagonal: u32 = (0..10).map(|i| report.confusion[i][i]).sum();
            assert!((f64::from(diagonal) / 30.0 - report.accuracy).abs() < 1e-9);
        }
        let control = RunControl::new();
        control.cancel();
        assert!(classify::run_classification(&digits, &config, &control, &mut |_| {}).unwrap().is_none());
        let tiny = ClassifyConfig { limit: 5, ..config };
        assert!(classify::run_classification(&digits, &tiny, &RunControl::new(), &mut |_| {}).is_err());
    }
}
