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
