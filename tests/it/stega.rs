//! The StegaNeRF lab's compute pieces: framed messages and the attacks on rendered views.

use sparsefield::compute::image_io::ImageData;
use sparsefield::compute::metrics;
use sparsefield::compute::stega::attacks::{Attack, AttackError};
use sparsefield::compute::stega::message::{
    MessageError, bit_accuracy, decode_bytes, decode_text, encode_bytes, encode_text, framed_bits, random_bits,
};

fn image(width: u32, height: u32, channels: usize, f: impl Fn(u32, u32, usize) -> f32) -> ImageData {
    let mut pixels = Vec::new();
    for y in 0..height {
        for x in 0..width {
            for c in 0..channels {
                pixels.push(f(x, y, c));
            }
        }
    }
    ImageData::new(width, height, channels, pixels).unwrap()
}

#[test]
fn text_survives_the_round_trip_and_any_flipped_bit_is_caught() {
    let text = "Hidden in a NeRF ✓ — 64 px";
    let bits = encode_text(text).unwrap();
    assert_eq!(bits.len(), framed_bits(text.len()));
    assert_eq!(decode_text(&bits).unwrap(), text);
    // A decoder with room for more bits than the message needs: the rest is ignored.
    let mut padded = bits.clone();
    padded.extend(random_bits(40, 7));
    assert_eq!(decode_text(&padded).unwrap(), text);
    // Every single flipped bit is detected (CRC-32 catches all of them).
    for k in 0..bits.len() {
        let mut corrupted = bits.clone();
        corrupted[k] = !corrupted[k];
        let result = decode_text(&corrupted);
        assert!(matches!(result, Err(MessageError::Checksum | MessageError::BadLength { .. })), "bit {k}: {result:?}");
    }
    assert!(matches!(decode_bytes(&bits[..20]), Err(MessageError::TooShort(20))));
    assert!(matches!(encode_bytes(&vec![0; 70_000]), Err(MessageError::TooLong(70_000))));
    // Bytes that are not UTF-8 are a message, but not text.
    let bits = encode_bytes(&[0xff, 0xfe]).unwrap();
    assert_eq!(decode_bytes(&bits).unwrap(), vec![0xff, 0xfe]);
    assert_eq!(decode_text(&bits), Err(MessageError::NotText));
    assert_eq!(decode_text(&encode_text("").unwrap()).unwrap(), "");
}

#[test]
fn random_bits_are_seeded_and_scored_by_bit_accuracy() {
    let bits = random_bits(4096, 3);
    assert_eq!(bits, random_bits(4096, 3));
    assert_ne!(bits, random_bits(4096, 4));
    let ones = bits.iter().filter(|&&b| b).count() as f64 / 4096.0;
    assert!((ones - 0.5).abs() < 0.03, "{ones}");
    let mut recovered = bits.clone();
    for b in recovered.iter_mut().take(1024) {
        *b = !*b;
    }
    assert!((bit_accuracy(&recovered, &bits) - 0.75).abs() < 1e-12);
    assert_eq!(bit_accuracy(&bits[..10], &bits), 0.0, "lengths differ");
}

#[test]
fn noise_has_the_asked_standard_deviation() {
    let gray = image(128, 128, 1, |_, _, _| 0.5);
    let noisy = Attack::Noise { sigma: 0.05 }.apply(&gray, 1).unwrap();
    let n = noisy.pixels.len() as f64;
    let mean = noisy.pixels.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let std = (noisy.pixels.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!((mean - 0.5).abs() < 0.002 && (std - 0.05).abs() < 0.002, "mean {mean}, std {std}");
    assert_eq!(noisy, Attack::Noise { sigma: 0.05 }.apply(&gray, 1).unwrap(), "seeded");
    assert_eq!(Attack::Noise { sigma: 0.0 }.apply(&gray, 1).unwrap(), gray);
}

#[test]
fn blur_spreads_an_impulse_into_the_gaussian() {
    let impulse = image(31, 31, 1, |x, y, _| if (x, y) == (15, 15) { 1.0 } else { 0.0 });
    let sigma = 1.5_f32;
    let blurred = Attack::Blur { sigma }.apply(&impulse, 0).unwrap();
    let total: f32 = blurred.pixels.iter().sum();
    assert!((total - 1.0).abs() < 1e-4, "the blur keeps the total: {total}");
    // The continuous Gaussian, normalised over the same support, at a few offsets.
    let g = |d: f32| (-d * d / (2.0 * sigma * sigma)).exp();
    let norm: f32 = (-5..=5).map(|d| g(d as f32)).sum();
    for (dx, dy) in [(0, 0), (1, 0), (0, 2), (3, 1), (-2, -2)] {
        let expected = g(dx as f32) * g(dy as f32) / (norm * norm);
        let got = blurred.at((15 + dx) as u32, (15 + dy) as u32, 0);
        assert!((got - expected).abs() < 1e-4, "({dx}, {dy}): {got} vs {expected}");
    }
}

#[test]
fn jpeg_loses_more_at_lower_quality_and_keeps_the_size() {
    let smooth = image(64, 48, 3, |x, y, c| (x as f32 / 63.0 + y as f32 / 47.0 + c as f32 * 0.2) / 2.4);
    let high = Attack::Jpeg { quality: 95 }.apply(&smooth, 0).unwrap();
    let low = Attack::Jpeg { quality: 10 }.apply(&smooth, 0).unwrap();
    assert_eq!((high.width, high.height, high.channels), (64, 48, 3));
    let (p_high, p_low) = (metrics::psnr_db(&high, &smooth), metrics::psnr_db(&low, &smooth));
    assert!(p_high > 35.0 && p_low < p_high - 3.0, "q95 {p_high:.1} dB, q10 {p_low:.1} dB");
    let gray = image(32, 32, 1, |x, _, _| x as f32 / 31.0);
    assert_eq!(Attack::Jpeg { quality: 75 }.apply(&gray, 0).unwrap().channels, 1);
}

#[test]
fn a_crop_keeps_the_centre_and_scales_it_back() {
    // A horizontal ramp 0 → 1: removing three quarters of the area keeps the middle half of each
    // side, so the result ramps from about 0.25 to about 0.75.
    let ramp = image(64, 64, 1, |x, _, _| x as f32 / 63.0);
    let cropped = Attack::Crop { fraction: 0.75 }.apply(&ramp, 0).unwrap();
    assert_eq!((cropped.width, cropped.height), (64, 64));
    let (left, right) = (cropped.at(0, 32, 0), cropped.at(63, 32, 0));
    assert!((left - 16.0 / 63.0).abs() < 0.02 && (right - 47.0 / 63.0).abs() < 0.02, "{left} … {right}");
    assert!(cropped.pixels.windows(2).take(63).all(|w| w[1] >= w[0] - 1e-6), "still a ramp");
}

#[test]
fn rotations_move_pixels_where_the_angle_says() {
    let side = 9;
    let asymmetric = image(side, side, 3, |x, y, c| (x * 7 + y * 3 + c as u32) as f32 / 100.0);
    assert_eq!(Attack::Rotate { degrees: 0.0 }.apply(&asymmetric, 0).unwrap(), asymmetric);
    // A quarter turn counter-clockwise on screen (y down): output (x, y) shows input (2c − y, x),
    // exactly, since both fall on pixel centres.
    let quarter = Attack::Rotate { degrees: 90.0 }.apply(&asymmetric, 0).unwrap();
    let c = (side - 1) / 2;
    for y in 0..side {
        for x in 0..side {
            for ch in 0..3 {
                let expected = asymmetric.at(2 * c - y, x, ch);
                let got = quarter.at(x, y, ch);
                assert!((got - expected).abs() < 1e-5, "({x}, {y}) ch {ch}: {got} vs {expected}");
            }
        }
    }
    // The pixel right of the centre ends up above it.
    assert!((quarter.at(c, c - 1, 0) - asymmetric.at(c + 1, c, 0)).abs() < 1e-5);
    // A small turn leaves the centre where it is.
    let small = Attack::Rotate { degrees: 5.0 }.apply(&asymmetric, 0).unwrap();
    assert!((small.at(c, c, 1) - asymmetric.at(c, c, 1)).abs() < 1e-5);
}

#[test]
fn a_downscale_loses_detail_but_not_the_mean() {
    let checker = image(32, 32, 1, |x, y, _| if (x + y) % 2 == 0 { 1.0 } else { 0.0 });
    assert_eq!(Attack::Downscale { factor: 1.0 }.apply(&checker, 0).unwrap(), checker);
    let down = Attack::Downscale { factor: 2.0 }.apply(&checker, 0).unwrap();
    assert_eq!((down.width, down.height), (32, 32));
    let mean = down.pixels.iter().sum::<f32>() / 1024.0;
    let spread = down.pixels.iter().map(|v| (v - mean).abs()).fold(0.0_f32, f32::max);
    assert!((mean - 0.5).abs() < 0.05 && spread < 0.3, "mean {mean}, spread {spread}");
    let flat = image(20, 20, 3, |_, _, c| 0.2 + 0.3 * c as f32);
    let back = Attack::Downscale { factor: 3.0 }.apply(&flat, 0).unwrap();
    assert!(back.pixels.iter().zip(&flat.pixels).all(|(a, b)| (a - b).abs() < 1e-5));
}

#[test]
fn attacks_refuse_images_they_cannot_take() {
    let rgba = ImageData { width: 4, height: 4, channels: 4, pixels: vec![0.5; 64] };
    let error = Attack::Blur { sigma: 1.0 }.apply(&rgba, 0).unwrap_err();
    assert!(matches!(error, AttackError::Channels(4)));
    assert!(error.to_string().contains("4 channels"));
    for kind in Attack::KINDS {
        assert!(!kind.label().is_empty());
    }
}

#[test]
fn the_stage_two_loss_is_its_formula() {
    use candle_core::{Device, Tensor};
    use sparsefield::compute::stega::loss::{
        DecoderOutput, LossInputs, LossWeights, bce_with_logits, energy, masking_factors, stega_loss,
    };
    let dev = Device::Cpu;
    let t = |v: &[f32]| Tensor::new(v, &dev).unwrap();
    let bce = |z: f64, y: f64| -(y * (1.0 / (1.0 + (-z).exp())).ln() + (1.0 - y) * (1.0 / (1.0 + z.exp())).ln());
    // Binary cross-entropy with logits, against its definition, also where a naive form overflows.
    let z = [-3.0_f32, -0.5, 0.0, 2.0, 40.0];
    let y = [0.0_f32, 1.0, 1.0, 0.0, 1.0];
    let expected = z.iter().zip(&y).map(|(&z, &y)| bce(f64::from(z), f64::from(y))).sum::<f64>() / 5.0;
    let got = bce_with_logits(&t(&z), &t(&y)).unwrap().to_scalar::<f32>().unwrap();
    assert!((f64::from(got) - expected).abs() < 1e-5, "{got} vs {expected}");
    let huge = bce_with_logits(&t(&[-200.0]), &t(&[1.0])).unwrap().to_scalar::<f32>().unwrap();
    assert!((huge - 200.0).abs() < 1e-3 && huge.is_finite(), "{huge}");

    let (render, reference) = (t(&[0.2, 0.4, 0.6, 0.8]), t(&[0.25, 0.4, 0.5, 0.8]));
    let (marked, secret) = (t(&[0.9, 0.1, 0.5]), t(&[1.0, 0.0, 0.25]));
    let (clean, blank) = (t(&[0.1, 0.2, 0.0]), t(&[0.0, 0.0, 0.0]));
    let (logits, labels) = (t(&[1.5, -0.5]), t(&[1.0, 0.0]));
    let inputs = LossInputs {
        render: &render,
        reference: &reference,
        decoded_marked: &marked,
        decoded_clean: &clean,
        secret: &secret,
        blank: &blank,
        class_logits: &logits,
        class_labels: &labels,
        output: DecoderOutput::Pixels,
    };
    let terms = stega_loss(&inputs, LossWeights::default()).unwrap();
    let render_mse = (0.05_f64.powi(2) + 0.1_f64.powi(2)) / 4.0;
    let secret_mse = (0.01 + 0.01 + 0.0625) / 3.0;
    let blank_mse = (0.01 + 0.04) / 3.0;
    let class_bce = (bce(1.5, 1.0) + bce(-0.5, 0.0)) / 2.0;
    for (got, expected) in
        [(terms.render, render_mse), (terms.secret, secret_mse), (terms.blank, blank_mse), (terms.class, class_bce)]
    {
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }
    let total = f64::from(terms.total.to_scalar::<f32>().unwrap());
    let expected = render_mse + 0.5 * secret_mse + 0.5 * blank_mse + 0.01 * class_bce;
    assert!((total - expected).abs() < 1e-6, "{total} vs {expected}");
    // Bit secrets: the decoder terms become cross-entropies on logits.
    let bits = LossInputs { output: DecoderOutput::BitLogits, ..inputs };
    let terms = stega_loss(&bits, LossWeights::default()).unwrap();
    let expected = (bce(0.9, 1.0) + bce(0.1, 0.0) + bce(0.5, 0.25)) / 3.0;
    assert!((terms.secret - expected).abs() < 1e-6, "{} vs {expected}", terms.secret);
    // The masking factor: (e_min / e)³ per group, by mean |w|.
    assert_eq!(masking_factors(&[0.5, 1.0, 0.25]), vec![0.125, 0.015625, 1.0]);
    assert_eq!(masking_factors(&[0.0, 2.0]), vec![1.0, 1.0]);
    assert!((energy(&t(&[-1.0, 3.0, 0.0, -2.0])).unwrap() - 1.5).abs() < 1e-9);
}

#[test]
fn secrets_are_prepared_or_refused_with_the_reason() {
    use sparsefield::compute::stega::secret::{MAX_SECRET_BITS, Secret, SecretError};
    // A gray, wide image: its centred square, made RGB, at the asked side.
    let wide = image(90, 60, 1, |x, _, _| x as f32 / 89.0);
    let Secret::Image(secret) = Secret::image(&wide, 32).unwrap() else { panic!("an image secret") };
    assert_eq!((secret.width, secret.height, secret.channels), (32, 32, 3));
    let (left, right) = (secret.at(0, 16, 0), secret.at(31, 16, 2));
    assert!((left - 15.0 / 89.0).abs() < 0.03 && (right - 74.0 / 89.0).abs() < 0.03, "{left} … {right}");
    assert!(matches!(Secret::image(&wide, 16), Err(SecretError::Side(16))));
    assert!(matches!(Secret::image(&wide, 256), Err(SecretError::Side(256))));
    // Text and bits: targets of 0/1, blank all zero.
    let text = Secret::text("hi").unwrap();
    assert_eq!(text.target().len(), 16 + 16 + 32);
    assert!(text.target().iter().all(|&v| v == 0.0 || v == 1.0));
    assert!(text.blank().iter().all(|&v| v == 0.0));
    assert!(matches!(Secret::text(&"x".repeat(600)), Err(SecretError::TextTooLong(_))));
    assert_eq!(Secret::bits(64, 1).unwrap().target().len(), 64);
    assert!(matches!(Secret::bits(0, 1), Err(SecretError::BitCount(0))));
    assert!(matches!(Secret::bits(MAX_SECRET_BITS + 1, 1), Err(SecretError::BitCount(_))));
    // An unreadable file is named in the message.
    let dir = super::common::temp_dir("stega_secret");
    let path = dir.join("secret.png");
    std::fs::write(&path, b"not a picture").unwrap();
    let message = Secret::image_file(&path, 64).unwrap_err().to_string();
    assert!(message.contains("secret.png"), "{message}");
}

/// The decoder and classifier: output shapes, and gradients (through the classifier-guided
/// decoder into both nets) against central finite differences in f64.
#[test]
fn decoder_and_classifier_gradients_match_finite_differences() {
    use candle_core::{DType, Device, Tensor, Var};
    use sparsefield::compute::stega::nets::{DecoderKind, NetsConfig, classify, decode};
    let dev = Device::Cpu;
    for kind in [DecoderKind::Image, DecoderKind::Bits(5)] {
        let config = NetsConfig { side: 8, width: 3, kind };
        config.validate().unwrap();
        let (dec, cls) = config.init(3, &dev).unwrap();
        let to64 = |vars: &[Var]| -> Vec<Var> {
            vars.iter().map(|v| Var::from_tensor(&v.as_tensor().to_dtype(DType::F64).unwrap()).unwrap()).collect()
        };
        let (dec, cls) = (to64(&dec), to64(&cls));
        let views = Tensor::rand(0.0, 1.0, (2, 3, 8, 8), &dev).unwrap().to_dtype(DType::F64).unwrap();
        let loss_of = |dec: &[Tensor], cls: &[Tensor]| -> Tensor {
            let logits = classify(&views, cls).unwrap();
            let out = decode(&config, &views, &logits, dec).unwrap();
            let weights =
                Tensor::arange(0.0, out.elem_count() as f64, &dev).unwrap().affine(0.37, 0.0).unwrap().sin().unwrap();
            out.flatten_all()
                .unwrap()
                .mul(&weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .add(&logits.sqr().unwrap().sum_all().unwrap())
                .unwrap()
        };
        let tensors = |vars: &[Var]| -> Vec<Tensor> { vars.iter().map(|v| v.as_tensor().clone()).collect() };
        let out_shape = {
            let logits = classify(&views, &tensors(&cls)).unwrap();
            assert_eq!(logits.dims(), [2]);
            decode(&config, &views, &logits, &tensors(&dec)).unwrap().dims().to_vec()
        };
        match kind {
            DecoderKind::Image => assert_eq!(out_shape, [2, 3, 8, 8]),
            DecoderKind::Bits(n) => assert_eq!(out_shape, [2, n]),
        }
        let grads = loss_of(&tensors(&dec), &tensors(&cls)).backward().unwrap();
        let eps = 1e-6;
        let mut largest = 0.0_f64;
        for (net, index, element) in [(0, 0, 5), (0, 2, 11), (0, 4, 3), (0, 6, 1), (1, 0, 7), (1, 2, 4), (1, 4, 0)] {
            let vars = if net == 0 { &dec } else { &cls };
            let var = &vars[index];
            let analytic: Vec<f64> = grads.get(var).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let values: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let shifted = |delta: f64| -> f64 {
                let mut v = values.clone();
                v[element] += delta;
                let mut dec_t = tensors(&dec);
                let mut cls_t = tensors(&cls);
                let t = Tensor::from_vec(v, var.as_tensor().shape(), &dev).unwrap();
                if net == 0 {
                    dec_t[index] = t;
                } else {
                    cls_t[index] = t;
                }
                loss_of(&dec_t, &cls_t).to_scalar::<f64>().unwrap()
            };
            let numeric = (shifted(eps) - shifted(-eps)) / (2.0 * eps);
            let got = analytic[element];
            largest = largest.max(numeric.abs());
            assert!(
                (got - numeric).abs() <= 1e-5 * (1.0 + numeric.abs()),
                "{kind:?} net {net} param {index}[{element}]: {got} vs {numeric}"
            );
        }
        assert!(largest > 1e-3, "the checked gradients are not all zero ({largest})");
    }
    assert!(NetsConfig { side: 12, width: 4, kind: DecoderKind::Image }.validate().is_err());
}

/// A small trained field on the tiny demo scene (stage 1) and the scene.
fn stage_one(
    steps: u64,
) -> (sparsefield::compute::nerf::NerfSnapshot, std::sync::Arc<sparsefield::compute::nerf::Dataset>) {
    use sparsefield::compute::control::RunControl;
    let data = super::nerf_train::tiny_scene();
    let summary = sparsefield::compute::nerf::train(
        data.clone(),
        &super::nerf_train::tiny_config(steps),
        None,
        &RunControl::new(),
        &mut |_| {},
    )
    .unwrap();
    (summary.snapshot, data)
}

/// A 32² secret with structure a decoder must get right (not a flat colour).
fn secret_image() -> ImageData {
    image(32, 32, 3, |x, y, c| match c {
        0 => x as f32 / 31.0,
        1 => y as f32 / 31.0,
        _ => {
            if (x / 8 + y / 8) % 2 == 0 {
                0.9
            } else {
                0.1
            }
        }
    })
}

#[test]
fn the_appearance_only_field_op_gives_the_colour_gradient_and_nothing_else() {
    use candle_core::{Device, Tensor, Var};
    use sparsefield::compute::nerf::field::FieldWeights;
    use sparsefield::compute::nerf::field_op::{FieldLayout, FieldOp, INPUT_DIM, Workspace};
    use std::sync::{Arc, Mutex};
    let config = super::nerf_train::tiny_config(1).field;
    let weights = FieldWeights::init(config, 5);
    let layout = FieldLayout::new(&config);
    let flat = weights.flatten();
    let rows = 300;
    let inputs: Vec<f32> = (0..rows * INPUT_DIM).map(|k| (k * 37 % 101) as f32 / 101.0).collect();
    let grad_of = |op: FieldOp| -> Vec<f32> {
        let params = Var::from_slice(&flat, flat.len(), &Device::Cpu).unwrap();
        let x = Tensor::from_vec(inputs.clone(), (rows, INPUT_DIM), &Device::Cpu).unwrap();
        let out = x.apply_op2(params.as_tensor(), op).unwrap();
        // A loss that reaches both the density and the colour.
        let loss = out.sqr().unwrap().sum_all().unwrap();
        loss.backward().unwrap().get(params.as_tensor()).unwrap().to_vec1::<f32>().unwrap()
    };
    let workspace = || Arc::new(Mutex::new(Workspace::default()));
    let full = grad_of(FieldOp::training(config, weights.grid.clone(), workspace(), 1));
    let colour_only = grad_of(FieldOp::training(config, weights.grid.clone(), workspace(), 1).appearance_only());
    let colour_start = layout.layers[2].weight_offset;
    assert!(full[..colour_start].iter().any(|g| *g != 0.0), "the full op reaches the geometry");
    assert!(colour_only[..colour_start].iter().all(|g| *g == 0.0), "geometry gets no gradient");
    assert_eq!(&colour_only[colour_start..], &full[colour_start..], "the colour gradient is the full op's");
    assert!(colour_only[colour_start..].iter().any(|g| *g != 0.0));
}

#[test]
fn stage_two_leaves_geometry_bit_for_bit_and_carries_the_secret() {
    use sparsefield::compute::control::RunControl;
    use sparsefield::compute::nerf::render::render_camera;
    use sparsefield::compute::stega::embed::{EmbedConfig, embed, evaluate};
    use sparsefield::compute::stega::secret::Secret;
    let (stage1, data) = stage_one(400);
    let secret = Secret::image(&secret_image(), 32).unwrap();
    let cameras: Vec<_> = data.train.iter().map(|v| v.camera).collect();
    let orbit = sparsefield::compute::nerf::orbit::Orbit::from_views(&data.train, data.scene_box.center());
    let cfg = EmbedConfig {
        steps: 250,
        nets_width: 8,
        render_side: 32,
        field_lr: 2e-3,
        // On a 32² scene the classifier alone does not get the field moving in 250 steps; the
        // repository's coupling does, with its constant weights (a fidelity ramp would pull the
        // coupled field back to stage 1).
        decoder_trains_field: true,
        render_weight_end: 1.0,
        nets_only_share: 0.0,
        snapshot_interval_secs: 0.0,
        ..EmbedConfig::default()
    };
    let summary = embed(&stage1, &cameras, &orbit, &secret, &cfg, &RunControl::new(), &mut |_| {}).unwrap();
    let marked = &summary.snapshot;
    // Geometry: the hash table, the density MLP and the occupancy grid are the stage-1 ones, bit for bit.
    assert_eq!(marked.field.weights.table, stage1.weights.table);
    assert_eq!(marked.field.weights.density, stage1.weights.density);
    assert_eq!(marked.field.occupancy.occupied, stage1.occupancy.occupied);
    assert_eq!(marked.field.occupancy.density, stage1.occupancy.density);
    assert_ne!(marked.field.weights.colour, stage1.weights.colour, "the colour MLP was trained");
    for view in &data.test {
        let before = render_camera(&stage1.weights, &stage1.occupancy, &stage1.march, &view.camera, stage1.background);
        let after = render_camera(
            &marked.field.weights,
            &marked.field.occupancy,
            &marked.field.march,
            &view.camera,
            stage1.background,
        );
        assert_eq!(before.depth, after.depth, "depth unchanged");
        assert_eq!(before.opacity, after.opacity, "opacity unchanged");
    }
    // On test cameras never trained on: the secret comes back far above the blank baseline, clean
    // views do not give it, and the renders stay close to stage 1's.
    let test_cameras: Vec<_> = data.test.iter().map(|v| v.camera).collect();
    let truths: Vec<_> = data.test.iter().map(|v| v.composited_image(data.background)).collect();
    let (scores, _) = evaluate(&stage1, marked, &secret, &test_cameras, &truths, &RunControl::new()).unwrap();
    let Secret::Image(truth) = &secret else { unreachable!() };
    let blank = ImageData::new(32, 32, 3, vec![0.0; 32 * 32 * 3]).unwrap();
    let baseline = metrics::psnr_db(&blank, truth);
    let recovery = scores.recovery_psnr_db.unwrap();
    assert!(recovery > baseline + 8.0, "recovered at {recovery:.2} dB against {baseline:.2} dB for blank: {scores:?}");
    assert!(scores.clean_recovery_psnr_db.unwrap() < recovery - 5.0, "{scores:?}");
    assert!(scores.render_psnr_vs_stage1_db > 25.0, "{scores:?}");
    let drop = scores.stage1_psnr_vs_ground_truth_db.unwrap() - scores.render_psnr_vs_ground_truth_db.unwrap();
    assert!(drop < 3.0, "the render lost {drop:.2} dB against ground truth: {scores:?}");
}

#[test]
fn a_decoder_file_round_trips_and_a_wrong_one_is_refused_naming_the_file() {
    use sparsefield::compute::stega::decoder::{Decoder, Recovered, SecretKind};
    use sparsefield::compute::stega::nets::{DecoderKind, NetsConfig};
    let dir = super::common::temp_dir("stega_decoder");
    let config = NetsConfig { side: 32, width: 4, kind: DecoderKind::Bits(24) };
    let (d, c) = config.init(3, &candle_core::Device::Cpu).unwrap();
    let decoder = Decoder {
        config,
        secret: SecretKind::Text,
        decoder: sparsefield::compute::nets::tensors(&d),
        classifier: sparsefield::compute::nets::tensors(&c),
        threshold: 0.62,
    };
    let path = dir.join("decoder.safetensors");
    decoder.save(&path).unwrap();
    let loaded = Decoder::load(&path).unwrap();
    assert_eq!(loaded.config, config);
    assert_eq!(loaded.secret, SecretKind::Text);
    assert_eq!(loaded.threshold, 0.62, "the calibrated threshold round-trips");
    // The same answer from the loaded copy, for an image of another size and shape.
    let view = image(50, 40, 3, |x, y, c| ((x * 3 + y * 5 + c as u32) % 11) as f32 / 10.0);
    let (a, b) = (decoder.recover(&view).unwrap(), loaded.recover(&view).unwrap());
    assert_eq!(a, b);
    assert!(matches!(&a.secret, Recovered::Bits(bits) if bits.len() == 24));
    // A decoder of another size: its tensors do not fit the metadata.
    let other = NetsConfig { side: 64, ..config };
    let (d2, c2) = other.init(3, &candle_core::Device::Cpu).unwrap();
    let mismatched = Decoder {
        config,
        decoder: sparsefield::compute::nets::tensors(&d2),
        classifier: sparsefield::compute::nets::tensors(&c2),
        secret: SecretKind::Text,
        threshold: 0.5,
    };
    let bad = dir.join("other.safetensors");
    mismatched.save(&bad).unwrap();
    let error = Decoder::load(&bad).unwrap_err().to_string();
    assert!(
        error.contains("other.safetensors") && error.contains("decoder.6") && error.contains("expected"),
        "{error}"
    );
    std::fs::write(dir.join("junk.safetensors"), b"junk").unwrap();
    let error = Decoder::load(&dir.join("junk.safetensors")).unwrap_err().to_string();
    assert!(error.contains("junk.safetensors") && error.contains("not a safetensors file"), "{error}");
    let error = Decoder::load(&dir.join("missing.safetensors")).unwrap_err().to_string();
    assert!(error.contains("missing.safetensors") && error.contains("cannot read"), "{error}");
}

#[test]
fn the_decoder_sees_a_whole_multiple_as_the_training_pool_does() {
    use candle_core::Device;
    use sparsefield::compute::stega::decoder::{decoder_view, views_tensor};
    let big = image(64, 64, 3, |x, y, c| ((x * 7 + y * 13 + 5 * c as u32) % 17) as f32 / 16.0);
    let pooled = views_tensor(std::slice::from_ref(&big), &Device::Cpu).unwrap().avg_pool2d(2).unwrap();
    let view = decoder_view(&big, 32);
    let as_tensor = views_tensor(std::slice::from_ref(&view), &Device::Cpu).unwrap();
    let diff = (pooled - as_tensor).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(diff < 1e-6, "{diff}");
    // A wide image: its centred square.
    let wide = image(96, 64, 1, |x, _, _| if (16..80).contains(&x) { 1.0 } else { 0.0 });
    let seen = decoder_view(&wide, 32);
    assert_eq!((seen.width, seen.height, seen.channels), (32, 32, 3));
    assert!(seen.pixels.iter().all(|v| (*v - 1.0).abs() < 1e-6), "only the centred square is read");
}

#[test]
fn a_square_camera_sees_the_centre_of_the_original() {
    use sparsefield::compute::nerf::camera::Camera;
    use sparsefield::compute::stega::embed::square_camera;
    let camera = Camera::look_at(160, 100, 0.8, glam::Vec3::new(3.0, 1.0, 2.0), glam::Vec3::ZERO);
    let square = square_camera(&camera, 50);
    assert_eq!((square.width, square.height), (50, 50));
    // The ray through the square's corner pixel goes where the original's pixel at the same spot
    // of its centred 100×100 window goes.
    let a = square.ray_through(0.5, 0.5);
    let b = camera.ray_through(30.0 + 1.0, 1.0);
    assert!((a.direction - b.direction).length() < 1e-5, "{a:?} {b:?}");
    let centre = square.ray_through(25.0, 25.0);
    let original = camera.ray_through(80.0, 50.0);
    assert!((centre.direction - original.direction).length() < 1e-5);
}

#[test]
fn the_sweep_visits_every_strength_and_writes_its_table() {
    use sparsefield::compute::control::RunControl;
    use sparsefield::compute::stega::decoder::{Decoder, SecretKind};
    use sparsefield::compute::stega::nets::{DecoderKind, NetsConfig};
    use sparsefield::compute::stega::robustness::{sweep, sweep_csv};
    use sparsefield::compute::stega::secret::Secret;
    let config = NetsConfig { side: 32, width: 4, kind: DecoderKind::Image };
    let (d, c) = config.init(1, &candle_core::Device::Cpu).unwrap();
    let decoder = Decoder {
        config,
        secret: SecretKind::Image,
        decoder: sparsefield::compute::nets::tensors(&d),
        classifier: sparsefield::compute::nets::tensors(&c),
        threshold: 0.5,
    };
    let secret = Secret::image(&secret_image(), 32).unwrap();
    let views = vec![secret_image(); 2];
    let rows = sweep(&decoder, &secret, &views, &views, &RunControl::new(), |_| true).unwrap();
    let expected: usize = Attack::KINDS.iter().map(|k| k.sweep_strengths().len()).sum();
    assert_eq!(rows.len(), expected);
    assert!(rows.iter().all(|r| r.recovery.is_finite() && (0.0..=1.0).contains(&r.classifier_accuracy)));
    // An untrained classifier says the same of marked and clean (identical) views: half right.
    assert!(rows.iter().all(|r| (r.classifier_accuracy - 0.5).abs() < 1e-9), "{rows:?}");
    let csv = sweep_csv(&rows);
    assert_eq!(csv.lines().count(), expected + 1);
    assert!(csv.starts_with("attack,strength,recovery"));
    let mut seen = 0;
    let stopped = sweep(&decoder, &secret, &views, &views, &RunControl::new(), |_| {
        seen += 1;
        seen < 3
    })
    .unwrap();
    assert_eq!(stopped.len(), 3);
}

/// The render weight rises geometrically from the repository's weight to the final one between
/// the ramp's start and the field's stop, and stays there; the other weights do not move.
#[test]
fn the_fidelity_ramp_follows_its_schedule() {
    use sparsefield::compute::stega::embed::{EmbedConfig, RAMP_START};
    let cfg = EmbedConfig { render_weight_end: 30.0, nets_only_share: 0.2, ..EmbedConfig::default() };
    let start = cfg.weights.render;
    assert_eq!(cfg.weights_at(0.0), cfg.weights);
    assert_eq!(cfg.weights_at(RAMP_START), cfg.weights);
    let middle = (RAMP_START + 0.8) / 2.0;
    assert!((cfg.weights_at(middle).render - start * 30.0_f64.sqrt()).abs() < 1e-9);
    assert!((cfg.weights_at(0.8).render - 30.0).abs() < 1e-9);
    assert!((cfg.weights_at(1.0).render - 30.0).abs() < 1e-9);
    let w = cfg.weights_at(0.6);
    assert_eq!((w.secret, w.blank, w.class), (cfg.weights.secret, cfg.weights.blank, cfg.weights.class));
    assert!((cfg.field_stop() - 0.8).abs() < 1e-12);
    let flat = EmbedConfig { render_weight_end: 1.0, ..EmbedConfig::default() };
    assert_eq!(flat.weights_at(0.7), flat.weights, "no ramp");
    assert!(EmbedConfig { nets_only_share: 0.95, ..EmbedConfig::default() }.validate().is_err());
    assert!(EmbedConfig { render_weight_end: 0.0, ..EmbedConfig::default() }.validate().is_err());
}

/// The threshold sits in the gap between clean and marked scores, as many standard deviations
/// (of logits) from either side's mean, or where the fewest views are called wrong when they
/// overlap; without scores it is 0.5.
#[test]
fn the_classifier_threshold_is_calibrated_between_the_two_sets() {
    use sparsefield::compute::stega::decoder::{DEFAULT_THRESHOLD, calibrate_threshold};
    let logit = |p: f64| (p / (1.0 - p)).ln();
    let mean_sd = |v: &[f64]| {
        let l: Vec<f64> = v.iter().map(|&p| logit(p)).collect();
        let m = l.iter().sum::<f64>() / l.len() as f64;
        (m, (l.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / l.len() as f64).sqrt())
    };
    // Separable, as on the demo: clean spread widely up to 0.64, marked tight from 0.82; the
    // equal-z point in logits lies past the gap's middle, towards the tight side.
    let (clean, marked) = ([0.001, 0.2, 0.64], [0.82, 0.9, 0.96]);
    let ((mc, sc), (mm, sm)) = (mean_sd(&clean), mean_sd(&marked));
    let z = (mc * sm + mm * sc) / (sc + sm);
    let expected = (1.0 / (1.0 + (-z).exp())).clamp(0.64 + 0.009, 0.82 - 0.009);
    let t = calibrate_threshold(&marked.map(|v| v as f32), &clean.map(|v| v as f32));
    assert!((f64::from(t) - expected).abs() < 1e-5, "{t} vs {expected}");
    assert!(t > 0.73 && t < 0.82, "{t}");
    // Equal spreads: the middle in logits.
    let t = calibrate_threshold(&[0.8, 0.9], &[0.1, 0.2]);
    let middle = 0.5 * (logit(0.8) + logit(0.9) + logit(0.1) + logit(0.2)) / 2.0;
    assert!((f64::from(t) - 1.0 / (1.0 + (-middle).exp())).abs() < 1e-5, "{t}");
    // Overlapping: one marked view at 0.3 among clean ones; the best cut calls it wrong only.
    let t = calibrate_threshold(&[0.3, 0.8, 0.9], &[0.1, 0.2, 0.4]);
    let errors = [0.3_f32, 0.8, 0.9].iter().filter(|&&s| s < t).count()
        + [0.1_f32, 0.2, 0.4].iter().filter(|&&s| s >= t).count();
    assert_eq!(errors, 1, "{t}");
    assert!((0.4..0.8).contains(&t), "{t}");
    assert_eq!(calibrate_threshold(&[], &[0.2]), DEFAULT_THRESHOLD);
    assert_eq!(calibrate_threshold(&[f32::NAN], &[0.2]), DEFAULT_THRESHOLD);
}
