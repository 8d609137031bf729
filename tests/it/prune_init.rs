//! Pruning at initialization: loaders and their errors, each method's scores against a hand
//! computation on a tiny MLP, mask selection, masks held through training, the comparison.

use std::path::Path;

use sparsefield::compute::control::RunControl;
use sparsefield::compute::prune::data::{self, DataSource, ImageSet, LabelledData};
use sparsefield::compute::prune::init::{self, InitConfig, Method, ModelKind, Net};

use super::common::temp_dir;

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn idx_files_load_plain_or_gzipped_and_bad_ones_say_what_is_wrong() {
    let dir = temp_dir("prune_fashion_idx");
    let pixels: Vec<u8> = (0..3 * 2 * 2).map(|v| (v * 20) as u8).collect();
    std::fs::write(dir.join("train-images-idx3-ubyte"), idx(&[3, 2, 2], &pixels)).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gzip(&idx(&[3], &[0, 1, 9]))).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gzip(&idx(&[1, 2, 2], &[255, 0, 0, 255]))).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[1], &[3])).unwrap();
    let loaded = data::load_fashion_mnist(&dir).unwrap();
    assert_eq!((loaded.train.len(), loaded.test.len(), loaded.train.height, loaded.train.width), (3, 1, 2, 2));
    assert_eq!(loaded.train.labels, vec![0, 1, 9]);
    assert_eq!(loaded.train.pixels[1], 20.0 / 255.0);
    assert_eq!(loaded.test.pixels, vec![1.0, 0.0, 0.0, 1.0]);
    assert_eq!(loaded.classes[9], "Ankle boot", "a folder named for Fashion-MNIST gets its class names");
    let mnist = temp_dir("prune_mnist_idx");
    for name in
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte"]
    {
        std::fs::copy(dir.join(name), mnist.join(name)).unwrap();
    }
    assert_eq!(data::load_fashion_mnist(&mnist).unwrap().classes[9], "9", "other IDX folders get label numbers");

    let check = |bytes: Vec<u8>, want: &str| {
        let path = dir.join("bad-idx");
        std::fs::write(&path, bytes).unwrap();
        let error = data::read_idx(&path).unwrap_err().to_string();
        assert!(error.contains("bad-idx") && error.contains(want), "{error}");
    };
    check(b"PNG...".to_vec(), "not an IDX file");
    check(vec![0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0], "not unsigned bytes");
    check(idx(&[2, 2, 2], &[1, 2, 3]), "holds 3 bytes");
    check(vec![0x1f, 0x8b, 1, 2, 3], "gzip");
    // A gzip bomb: 2 KB compressed, 274 million pixels. With a limit only the images kept are
    // decoded into memory (the rest is read and counted); without one it is refused from the header.
    let count = (data::MAX_IDX_VALUES / 784 + 1) as u32;
    let bomb = dir.join("bomb-images.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &idx(&[count, 28, 28], &[])).unwrap();
    for _ in 0..count {
        std::io::Write::write_all(&mut encoder, &[0; 784]).unwrap();
    }
    std::fs::write(&bomb, encoder.finish().unwrap()).unwrap();
    let bomb_labels = dir.join("bomb-labels");
    std::fs::write(&bomb_labels, idx(&[count], &vec![3; count as usize])).unwrap();
    let ten = data::load_idx_pair_limited(&bomb, &bomb_labels, Some(10)).unwrap();
    assert_eq!((ten.len(), ten.pixels.len()), (10, 7840));
    let error = data::load_idx_pair(&bomb, &bomb_labels).unwrap_err().to_string();
    assert!(error.contains("bomb-images.gz") && error.contains("--train-limit"), "{error}");
    // Images larger than the lab takes.
    let big = dir.join("big-images");
    std::fs::write(&big, idx(&[1, 300, 300], &vec![0; 90_000])).unwrap();
    let error = data::load_idx_pair(&big, &dir.join("train-labels-idx1-ubyte.gz")).unwrap_err().to_string();
    assert!(error.contains("300×300") && error.contains("256×256"), "{error}");
    // Labels that do not match the images.
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[2], &[3, 4])).unwrap();
    let error = data::load_fashion_mnist(&dir).unwrap_err().to_string();
    assert!(error.contains("2 labels for 1 images"), "{error}");
    // One class in training is refused; a test class never seen in training is warned about.
    let classes = temp_dir("prune_idx_classes");
    std::fs::write(classes.join("train-images-idx3-ubyte"), idx(&[3, 1, 1], &[0, 1, 2])).unwrap();
    std::fs::write(classes.join("t10k-images-idx3-ubyte"), idx(&[2, 1, 1], &[0, 1])).unwrap();
    std::fs::write(classes.join("t10k-labels-idx1-ubyte"), idx(&[2], &[0, 5])).unwrap();
    std::fs::write(classes.join("train-labels-idx1-ubyte"), idx(&[3], &[4, 4, 4])).unwrap();
    let error = data::load_fashion_mnist(&classes).unwrap_err().to_string();
    assert!(error.contains("all 3 training images are of one class (4)"), "{error}");
    std::fs::write(classes.join("train-labels-idx1-ubyte"), idx(&[3], &[4, 0, 4])).unwrap();
    let summary = data::load_fashion_mnist(&classes).unwrap().summary();
    assert!(summary.contains("warning: class 5 occurs in the test set but never in training"), "{summary}");
    let digits = "1,".repeat(64) + "7\n";
    let error = sparsefield::compute::inr::classify::parse_digits(&digits.repeat(3), "d.csv").unwrap_err().to_string();
    assert!(error.contains("all 3 digits are labelled 7"), "{error}");
    // A folder without the files names them and the package.
    let empty = temp_dir("prune_idx_empty");
    let error = data::load_fashion_mnist(&empty).unwrap_err().to_string();
    assert!(error.contains("train-images-idx3-ubyte") && error.contains("t10k-labels-idx1-ubyte"), "{error}");
    let error = DataSource::FashionMnist(data::DEBIAN_FASHION_MNIST.into()).load().unwrap_err().to_string();
    assert!(error.contains("dataset-fashion-mnist"), "{error}");
}

#[test]
fn image_folders_load_one_class_per_sub_folder_and_bad_ones_are_named() {
    use sparsefield::compute::image_io::{ImageData, save_png};
    let dir = temp_dir("prune_folder");
    for (class, value) in [("cats", 0.2), ("dogs", 0.8)] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for k in 0..5 {
            let image = ImageData::new(12, 10, 1, vec![value; 120]).unwrap();
            save_png(&image, &dir.join(class).join(format!("{k}.png"))).unwrap();
        }
    }
    std::fs::write(dir.join("cats").join("notes.txt"), "ignored").unwrap();
    let loaded = data::load_image_folder(&dir, 8).unwrap();
    assert_eq!(loaded.classes, vec!["cats", "dogs"]);
    assert_eq!((loaded.train.len(), loaded.test.len()), (8, 2), "a fifth of each class held out");
    assert_eq!((loaded.train.channels, loaded.train.height, loaded.train.width), (1, 8, 8));
    for (i, &label) in loaded.train.labels.iter().enumerate() {
        let want = if label == 0 { 0.2 } else { 0.8 };
        assert!((loaded.train.pixels[i * 64 + 27] - want).abs() < 0.01);
    }
    // An unreadable image names itself; one class is not enough; an empty class is named.
    std::fs::write(dir.join("dogs").join("broken.png"), b"not a png").unwrap();
    let error = data::load_image_folder(&dir, 8).unwrap_err().to_string();
    assert!(error.contains("broken.png"), "{error}");
    std::fs::remove_file(dir.join("dogs").join("broken.png")).unwrap();
    std::fs::create_dir_all(dir.join("zebras")).unwrap();
    let error = data::load_image_folder(&dir, 8).unwrap_err().to_string();
    assert!(error.contains("zebras") && error.contains("no PNG or JPEG"), "{error}");
    let single = temp_dir("prune_folder_single");
    std::fs::create_dir_all(single.join("only")).unwrap();
    let error = data::load_image_folder(&single, 8).unwrap_err().to_string();
    assert!(error.contains("two sub-folders"), "{error}");
    assert!(data::load_image_folder(Path::new("/nonexistent/folder"), 8).is_err());
}

/// A tiny data set: `n` 1×2×2 images with 3 classes.
fn tiny_data(n: usize) -> LabelledData {
    let set = ImageSet {
        channels: 1,
        height: 2,
        width: 2,
        pixels: (0..n * 4).map(|k| ((k * 37 % 11) as f32) / 10.0).collect(),
        labels: (0..n).map(|k| (k % 3) as u16).collect(),
    };
    LabelledData {
        name: "tiny".into(),
        train: set.clone(),
        test: set,
        classes: vec!["a".into(), "b".into(), "c".into()],
    }
}

/// Forward and backward of the 3-layer MLP written out by hand, in f64: the mean cross-entropy
/// and its gradient with respect to each weight matrix.
fn hand_gradient(w: &[Vec<f64>], b: &[Vec<f64>], sizes: &[usize], set: &ImageSet) -> (f64, Vec<Vec<f64>>) {
    let n = set.len();
    let mut grads: Vec<Vec<f64>> = w.iter().map(|l| vec![0.0; l.len()]).collect();
    let mut loss = 0.0;
    for s in 0..n {
        let x: Vec<f64> = set.pixels[s * 4..(s + 1) * 4].iter().map(|&v| f64::from(v)).collect();
        let mut acts = vec![x];
        for l in 0..3 {
            let (out, inp) = (sizes[l + 1], sizes[l]);
            let a = acts.last().unwrap();
            let z: Vec<f64> =
                (0..out).map(|o| b[l][o] + (0..inp).map(|i| w[l][o * inp + i] * a[i]).sum::<f64>()).collect();
            acts.push(if l < 2 { z.iter().map(|v| v.max(0.0)).collect() } else { z });
        }
        let logits = &acts[3];
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = logits.iter().map(|v| (v - max).exp()).collect();
        let total: f64 = exp.iter().sum();
        let label = usize::from(set.labels[s]);
        loss += -(exp[label] / total).ln();
        let mut delta: Vec<f64> =
            exp.iter().enumerate().map(|(k, e)| e / total - f64::from(u8::from(k == label))).collect();
        for l in (0..3).rev() {
            let (out, inp) = (sizes[l + 1], sizes[l]);
            for o in 0..out {
                for i in 0..inp {
                    grads[l][o * inp + i] += delta[o] * acts[l][i] / n as f64;
                }
            }
            if l > 0 {
                delta = (0..inp)
                    .map(|i| {
                        let back: f64 = (0..out).map(|o| w[l][o * inp + i] * delta[o]).sum();
                        if acts[l][i] > 0.0 { back } else { 0.0 }
                    })
                    .collect();
            }
        }
    }
    (loss / n as f64, grads)
}

fn close(got: &[Vec<f64>], want: &[Vec<f64>], tolerance: f64, what: &str) {
    let scale = want.iter().flatten().fold(0.0_f64, |m, v| m.max(v.abs())).max(1e-12);
    for (l, (g, w)) in got.iter().zip(want).enumerate() {
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            assert!((a - b).abs() <= tolerance * scale, "{what}: layer {l} weight {i}: {a} vs {b} (scale {scale})");
        }
    }
}

#[test]
fn each_method_scores_like_the_hand_computation() {
    let data = tiny_data(9);
    let config = InitConfig { hidden: 5, score_samples: 9, synflow_iterations: 1, ..InitConfig::default() };
    let net = Net::new(ModelKind::Mlp, (1, 2, 2), 5, 3, 4).unwrap();
    let sizes = [4, 5, 5, 3];
    let w: Vec<Vec<f64>> = net.weights().unwrap().iter().map(|l| l.iter().map(|&v| f64::from(v)).collect()).collect();
    let b: Vec<Vec<f64>> = net.biases().unwrap().iter().map(|l| l.iter().map(|&v| f64::from(v)).collect()).collect();
    let (_, g) = hand_gradient(&w, &b, &sizes, &data.train);

    let magnitude = init::scores(Method::Magnitude, &net, &data.train, &config, 1.0).unwrap();
    close(&magnitude, &w.iter().map(|l| l.iter().map(|v| v.abs()).collect()).collect::<Vec<_>>(), 1e-12, "magnitude");

    let snip = init::scores(Method::Snip, &net, &data.train, &config, 1.0).unwrap();
    let want: Vec<Vec<f64>> =
        w.iter().zip(&g).map(|(w, g)| w.iter().zip(g).map(|(w, g)| (w * g).abs()).collect()).collect();
    close(&snip, &want, 1e-6, "SNIP");

    // GraSP keeps by θ ⊙ Hg; Hg from the hand gradient, differenced along g with a small step.
    let grasp = init::scores(Method::Grasp, &net, &data.train, &config, 1.0).unwrap();
    let norm = g.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
    let eps = 1e-5;
    let moved = |sign: f64| -> Vec<Vec<f64>> {
        let shifted: Vec<Vec<f64>> =
            w.iter().zip(&g).map(|(w, g)| w.iter().zip(g).map(|(w, g)| w + sign * eps * g / norm).collect()).collect();
        hand_gradient(&shifted, &b, &sizes, &data.train).1
    };
    let (plus, minus) = (moved(1.0), moved(-1.0));
    let want: Vec<Vec<f64>> = w
        .iter()
        .zip(plus.iter().zip(&minus))
        .map(|(w, (p, m))| w.iter().zip(p.iter().zip(m)).map(|(w, (p, m))| w * (p - m) / (2.0 * eps) * norm).collect())
        .collect();
    close(&grasp, &want, 1e-4, "GraSP");
    assert!(grasp.iter().flatten().any(|v| v.abs() > 1e-8), "Hg is not zero here");

    // SynFlow, one round: with absolute weights and biases and an all-ones input every unit is
    // active, so R = 1ᵀ(|W₃|(|W₂|(|W₁|1 + |b₁|) + |b₂|) + |b₃|) and the score is |θ| ∂R/∂|θ|.
    let synflow = init::scores(Method::SynFlow, &net, &data.train, &config, 1.0).unwrap();
    let abs = |l: usize| -> Vec<f64> { w[l].iter().map(|v| v.abs()).collect() };
    let (a1, a2, a3) = (abs(0), abs(1), abs(2));
    let h1: Vec<f64> = (0..5).map(|o| b[0][o].abs() + (0..4).map(|i| a1[o * 4 + i]).sum::<f64>()).collect();
    let h2: Vec<f64> = (0..5).map(|o| b[1][o].abs() + (0..5).map(|i| a2[o * 5 + i] * h1[i]).sum::<f64>()).collect();
    let up3: Vec<f64> = (0..5).map(|i| (0..3).map(|o| a3[o * 5 + i]).sum()).collect();
    let up2: Vec<f64> = (0..5).map(|i| (0..5).map(|o| up3[o] * a2[o * 5 + i]).sum()).collect();
    let want = vec![
        (0..20).map(|k| a1[k] * up2[k / 4]).collect::<Vec<f64>>(),
        (0..25).map(|k| a2[k] * up3[k / 5] * h1[k % 5]).collect(),
        (0..15).map(|k| a3[k] * h2[k % 5]).collect(),
    ];
    close(&synflow, &want, 1e-9, "SynFlow");

    // Random scores are seeded and in [0, 1).
    let random = init::scores(Method::Random, &net, &data.train, &config, 1.0).unwrap();
    assert!(random.iter().flatten().all(|v| (0.0..1.0).contains(v)));
    assert_eq!(random, init::scores(Method::Random, &net, &data.train, &config, 1.0).unwrap());
}

#[test]
fn selection_keeps_the_top_scores_globally_or_per_layer() {
    let scores = vec![vec![0.9, 0.1, 0.5, 0.3], vec![0.8, 0.7]];
    let global = init::select(&scores, 0.5, true);
    assert_eq!(global, vec![vec![true, false, false, false], vec![true, true]]);
    let layerwise = init::select(&scores, 0.5, false);
    assert_eq!(layerwise, vec![vec![true, false, true, false], vec![true, false]]);
    assert!(init::select(&scores, 0.0, true).iter().flatten().all(|k| !k));
    // Ties go to the lower index.
    assert_eq!(init::select(&[vec![1.0, 1.0, 1.0]], 0.34, true), vec![vec![true, false, false]]);
}

#[test]
fn masks_keep_their_zeros_through_training_and_the_comparison_reports_every_run() {
    let data = data::builtin_digits();
    let config = InitConfig {
        hidden: 16,
        methods: vec![Method::Snip, Method::SynFlow],
        sparsities: vec![0.0, 0.9],
        epochs: 2,
        learning_rate: 1e-2,
        train_limit: 600,
        score_samples: 64,
        synflow_iterations: 10,
        ..InitConfig::default()
    };
    let net = Net::new(ModelKind::Mlp, (1, 8, 8), 16, 10, 0).unwrap();
    let before = net.weights().unwrap();
    let masks = init::prune_mask(Method::Snip, &net, &data.train, &config, 0.5).unwrap();
    let kept: usize = masks.iter().flatten().filter(|k| **k).count();
    let total: usize = masks.iter().map(Vec::len).sum();
    assert_eq!(kept, (total as f64 * 0.5).round() as usize);
    let trained =
        init::train_masked(&net, &masks, &data, &config, &RunControl::new(), &mut |_, _| {}).unwrap().unwrap();
    assert!(trained.0 > 0.2, "it learns something: {}", trained.0);
    let after = net.weights().unwrap();
    let mut moved = 0;
    for ((m, b), a) in masks.iter().flatten().zip(before.iter().flatten()).zip(after.iter().flatten()) {
        if *m {
            moved += usize::from(a != b);
        } else {
            assert_eq!(*a, 0.0, "a pruned weight is exactly zero after training");
        }
    }
    assert!(moved > kept / 2, "kept weights train ({moved} of {kept})");

    let results = init::compare(&data, &config, &RunControl::new(), &mut |_| {}).unwrap().unwrap();
    assert_eq!(results.len(), 3, "dense once, then two methods at 0.9");
    assert!(results[0].method.is_none() && results[0].densities.iter().all(|d| *d == 1.0));
    for r in &results[1..] {
        let kept: usize = r.masks.iter().flatten().filter(|k| **k).count();
        assert_eq!(kept, (total as f64 * 0.1).round() as usize, "{:?}", r.method);
        assert_eq!(r.history.len(), 2);
    }
    // Bad settings and cancellation.
    assert!(
        init::compare(&data, &InitConfig { sparsities: vec![1.0], ..config.clone() }, &RunControl::new(), &mut |_| {})
            .is_err()
    );
    let control = RunControl::new();
    control.cancel();
    assert!(init::compare(&data, &config, &control, &mut |_| {}).unwrap().is_none());
    // A network too large for memory is refused, not allocated.
    let error = Net::new(ModelKind::Mlp, (3, 256, 256), 4096, 10, 0).err().unwrap().to_string();
    assert!(error.contains("weights"), "{error}");
    // The CNN runs too, on 8×8 digits.
    let cnn =
        InitConfig { model: ModelKind::Cnn, methods: vec![Method::Grasp], sparsities: vec![0.8], epochs: 1, ..config };
    let results = init::compare(&data, &cnn, &RunControl::new(), &mut |_| {}).unwrap().unwrap();
    assert_eq!(results[0].densities.len(), 3);
}

/// The shared small classifiers against plain loops: the MLP layer by layer, and the CNN where
/// constant feature maps make each stage a known number.
#[test]
fn the_shared_small_nets_compute_what_their_layers_say() {
    use candle_core::{Device, Tensor};
    use sparsefield::compute::nets::{self, ModelKind};
    let device = Device::Cpu;
    // MLP on 1×2×2 images: 4 → 3 → 3 → 2.
    let layers = ModelKind::Mlp.layers((1, 2, 2), 3, 2).unwrap();
    let shapes: Vec<Vec<usize>> = layers.iter().map(|(_, s)| s.clone()).collect();
    assert_eq!(shapes, vec![vec![3, 4], vec![3, 3], vec![2, 3]]);
    let vars = nets::init_params(&shapes, 7, &device).unwrap();
    let params: Vec<Vec<f32>> = vars.iter().map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()).collect();
    for (k, p) in params.iter().enumerate() {
        let shape = &shapes[k / 2];
        let bound = (1.0 / shape[1..].iter().product::<usize>() as f32).sqrt();
        assert!(p.iter().all(|v| v.abs() <= bound), "layer {k} is drawn within ±1/√fan-in");
    }
    let x = [0.5_f32, -1.0, 0.25, 2.0];
    let mut h = x.to_vec();
    for l in 0..3 {
        let (w, b) = (&params[2 * l], &params[2 * l + 1]);
        let inputs = h.len();
        h = (0..b.len())
            .map(|o| {
                let v = b[o] + (0..inputs).map(|i| w[o * inputs + i] * h[i]).sum::<f32>();
                if l < 2 { v.max(0.0) } else { v }
            })
            .collect();
    }
    let input = Tensor::from_slice(&x, (1, 1, 2, 2), &device).unwrap();
    let logits: Vec<f32> =
        ModelKind::Mlp.forward(&input, &nets::tensors(&vars)).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    for (a, b) in logits.iter().zip(&h) {
        assert!((a - b).abs() < 1e-5, "{logits:?} vs {h:?}");
    }
    // CNN on 1×8×8 images with zero convolution weights: every map is relu(bias), pooled alike,
    // so the logits are the final layer applied to the biases repeated over the 2×2 positions.
    let layers = ModelKind::Cnn.layers((1, 8, 8), 0, 3).unwrap();
    assert_eq!(layers[2].1, vec![3, 32 * 2 * 2]);
    assert!(ModelKind::Cnn.layers((1, 3, 8), 0, 3).is_err(), "images under 4×4 are refused");
    let shapes: Vec<Vec<usize>> = layers.iter().map(|(_, s)| s.clone()).collect();
    let vars = nets::init_params(&shapes, 3, &device).unwrap();
    let mut params = nets::tensors(&vars);
    params[0] = params[0].zeros_like().unwrap();
    params[2] = params[2].zeros_like().unwrap();
    let b2: Vec<f32> = params[3].to_vec1().unwrap();
    let fc: Vec<f32> = params[4].flatten_all().unwrap().to_vec1().unwrap();
    let fc_b: Vec<f32> = params[5].to_vec1().unwrap();
    let features: Vec<f32> = b2.iter().flat_map(|&b| [b.max(0.0); 4]).collect();
    let expected: Vec<f32> =
        (0..3).map(|o| fc_b[o] + features.iter().enumerate().map(|(i, f)| fc[o * 128 + i] * f).sum::<f32>()).collect();
    let input = Tensor::ones((1, 1, 8, 8), candle_core::DType::F32, &device).unwrap();
    let logits: Vec<f32> = ModelKind::Cnn.forward(&input, &params).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    for (a, b) in logits.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-5, "{logits:?} vs {expected:?}");
    }
}
