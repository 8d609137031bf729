//! The StyleNAT lab's compute: neighbourhood attention.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparsefield::compute::gan::na::{self, NaError, NaShape, Window};

fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0_f32..1.0)).collect()
}

/// The window start along an axis found by search, not by the kernel's formula: among the
/// positions of the query's subgrid, the run of `k` whose centre is nearest the query.
fn window_start(i: usize, n: usize, k: usize, d: usize) -> usize {
    let sub = i / d;
    let sub_len = (i % d..n).step_by(d).count();
    (0..=sub_len - k).min_by_key(|&s| (s + k / 2).abs_diff(sub)).unwrap()
}

/// Softmax attention over every pixel, the keys outside each query's window masked out, the bias
/// added by the key's offset from the query in subgrid steps.
fn masked_full_attention(
    shape: NaShape,
    windows: &[Window],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    bias: &[f32],
    scale: f32,
) -> Vec<f32> {
    let (h, wd, c) = (shape.height, shape.width, shape.channels);
    let mut out = vec![0.0_f32; shape.len()];
    for bh in 0..shape.batch * shape.heads {
        let head = bh % shape.heads;
        let (kk, d) = (windows[head].kernel, windows[head].dilation);
        let side = 2 * kk - 1;
        let bias_at: usize = windows[..head].iter().map(|w| (2 * w.kernel - 1).pow(2)).sum();
        let base = bh * h * wd * c;
        for y in 0..h {
            for x in 0..wd {
                let (sy, sx) = (window_start(y, h, kk, d), window_start(x, wd, kk, d));
                let mut logits = vec![f64::NEG_INFINITY; h * wd];
                for ky in 0..h {
                    for kx in 0..wd {
                        let inside = ky % d == y % d
                            && kx % d == x % d
                            && (sy..sy + kk).contains(&(ky / d))
                            && (sx..sx + kk).contains(&(kx / d));
                        if !inside {
                            continue;
                        }
                        let qv = &q[base + (y * wd + x) * c..][..c];
                        let kv = &k[base + (ky * wd + kx) * c..][..c];
                        let mut z: f64 = qv.iter().zip(kv).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>()
                            * f64::from(scale);
                        if !bias.is_empty() {
                            let oy = ky / d + kk - 1 - y / d;
                            let ox = kx / d + kk - 1 - x / d;
                            z += f64::from(bias[bias_at + oy * side + ox]);
                        }
                        logits[ky * wd + kx] = z;
                    }
                }
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = logits.iter().map(|z| (z - max).exp()).collect();
                let sum: f64 = weights.iter().sum();
                assert_eq!(weights.iter().filter(|&&w| w > 0.0).count(), kk * kk, "k² keys per query");
                for (key, w) in weights.iter().enumerate() {
                    for ch in 0..c {
                        out[base + (y * wd + x) * c + ch] += (w / sum * f64::from(v[base + key * c + ch])) as f32;
                    }
                }
            }
        }
    }
    out
}

/// The fused forward equals masked full attention for several kernels and dilations, odd and
/// non-square sizes, every border position, with the relative-position bias.
#[test]
fn neighbourhood_attention_equals_masked_full_attention() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (height, width, kernel, dilation) in
        [(7, 9, 3, 1), (9, 7, 5, 1), (8, 11, 3, 2), (13, 10, 3, 3), (9, 9, 3, 3), (12, 12, 7, 1), (11, 7, 1, 4)]
    {
        let shape = NaShape { batch: 2, heads: 2, height, width, channels: 5 };
        let window = Window::new(kernel, dilation);
        let windows = [window; 2];
        let (q, k, v) = (random(&mut rng, shape.len()), random(&mut rng, shape.len()), random(&mut rng, shape.len()));
        let bias = random(&mut rng, shape.heads * window.bias_len());
        let scale = 0.6;
        let ours = na::forward(shape, &windows, &q, &k, &v, &bias, scale).unwrap();
        let reference = masked_full_attention(shape, &windows, &q, &k, &v, &bias, scale);
        for (i, (a, b)) in ours.out.iter().zip(&reference).enumerate() {
            assert!((a - b).abs() < 1e-5, "{height}×{width}, k {kernel}, d {dilation}: [{i}] {a} vs {b}");
        }
        for row in ours.attention.chunks_exact(window.keys()) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        let no_bias = na::forward(shape, &windows, &q, &k, &v, &[], scale).unwrap();
        let reference = masked_full_attention(shape, &windows, &q, &k, &v, &[], scale);
        assert!(no_bias.out.iter().zip(&reference).all(|(a, b)| (a - b).abs() < 1e-5));
    }
}

/// A window as large as the map at dilation 1 is full attention: every query sees every pixel.
#[test]
fn a_window_the_size_of_the_map_is_full_attention() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let shape = NaShape { batch: 1, heads: 3, height: 5, width: 5, channels: 4 };
    let (q, k, v) = (random(&mut rng, shape.len()), random(&mut rng, shape.len()), random(&mut rng, shape.len()));
    let ours = na::forward(shape, &[Window::new(5, 1); 3], &q, &k, &v, &[], 0.5).unwrap();
    for bh in 0..3 {
        let base = bh * 25 * 4;
        for p in 0..25 {
            let logits: Vec<f32> =
                (0..25).map(|j| 0.5 * (0..4).map(|c| q[base + p * 4 + c] * k[base + j * 4 + c]).sum::<f32>()).collect();
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = logits.iter().map(|z| (z - max).exp()).collect();
            let sum: f32 = e.iter().sum();
            for c in 0..4 {
                let expected: f32 = (0..25).map(|j| e[j] / sum * v[base + j * 4 + c]).sum();
                assert!((ours.out[base + p * 4 + c] - expected).abs() < 1e-5);
            }
        }
    }
}

/// Window placement and bias offsets on a hand-checked axis: 10 pixels, k = 3, d = 3.
#[test]
fn windows_shift_inward_at_the_borders_within_each_subgrid() {
    let w = Window::new(3, 3);
    // Subgrid of residue 0: pixels 0, 3, 6, 9. Pixel 0 (first) sees 0, 3, 6 with offsets from
    // the query 0, 1, 2 → bias indices 2, 3, 4; pixel 9 (last) sees 3, 6, 9 → offsets −2..0.
    assert_eq!(w.axis(0, 10), (0, 2));
    assert_eq!(w.axis(3, 10), (0, 1));
    assert_eq!(w.axis(6, 10), (3, 1));
    assert_eq!(w.axis(9, 10), (3, 0));
    // Residue 1: pixels 1, 4, 7 (three: the window is the whole subgrid).
    assert_eq!(w.axis(1, 10), (1, 2));
    assert_eq!(w.axis(7, 10), (1, 0));
    assert_eq!(Window::new(5, 1).axis(4, 9), (2, 2), "interior: centred, offsets −2..2 at bias indices 2..6");
    assert_eq!(Window::new(4, 1).validate(9, 9), Err(NaError::Kernel(4)));
    assert_eq!(Window::new(3, 0).validate(9, 9), Err(NaError::Dilation(0)));
    assert!(matches!(Window::new(3, 4).validate(16, 11), Err(NaError::TooLarge { side: 11, .. })));
    let shape = NaShape { batch: 1, heads: 1, height: 4, width: 4, channels: 2 };
    let err = na::forward(shape, &[Window::new(3, 1)], &[0.0; 31], &[0.0; 32], &[0.0; 32], &[], 1.0).err().unwrap();
    assert_eq!(err.to_string(), "q holds 31 values, the shape needs 32");
    let err = na::forward(shape, &[Window::new(3, 1); 2], &[0.0; 32], &[0.0; 32], &[0.0; 32], &[], 1.0).err().unwrap();
    assert_eq!(err.to_string(), "the window list holds 2 values, the shape needs 1");
}

/// The backward against central finite differences of `L = Σ r ⊙ out` for q, k, v and the bias.
#[test]
fn neighbourhood_attention_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (height, width, kernel, dilation) in [(5, 6, 3, 1), (7, 6, 3, 2)] {
        let shape = NaShape { batch: 2, heads: 2, height, width, channels: 3 };
        // One head local, one dilated: a hydra pair.
        let windows = [Window::new(kernel, 1), Window::new(kernel, dilation)];
        let bias_len: usize = windows.iter().map(Window::bias_len).sum();
        let mut inputs = [
            random(&mut rng, shape.len()),
            random(&mut rng, shape.len()),
            random(&mut rng, shape.len()),
            random(&mut rng, bias_len),
        ];
        let r = random(&mut rng, shape.len());
        let scale = 0.7;
        let loss = |t: &[Vec<f32>; 4]| -> f64 {
            let f = na::forward(shape, &windows, &t[0], &t[1], &t[2], &t[3], scale).unwrap();
            f.out.iter().zip(&r).map(|(o, r)| f64::from(*o) * f64::from(*r)).sum()
        };
        let f = na::forward(shape, &windows, &inputs[0], &inputs[1], &inputs[2], &inputs[3], scale).unwrap();
        let grads = na::backward(shape, &windows, &inputs[0], &inputs[1], &inputs[2], &f.attention, &r, scale).unwrap();
        let analytic = [grads.q, grads.k, grads.v, grads.bias];
        for t in 0..4 {
            for i in (0..inputs[t].len()).step_by(7) {
                let h = 1e-2_f32;
                let old = inputs[t][i];
                inputs[t][i] = old + h;
                let up = loss(&inputs);
                inputs[t][i] = old - h;
                let down = loss(&inputs);
                inputs[t][i] = old;
                let numeric = (up - down) / (2.0 * f64::from(h));
                let a = f64::from(analytic[t][i]);
                assert!((numeric - a).abs() < 2e-3 * (1.0 + a.abs()), "tensor {t} [{i}]: {numeric} vs {a}");
            }
        }
        assert!(analytic[3].iter().any(|g| g.abs() > 1e-3), "the bias gets a gradient");
    }
}

/// Hydra heads: the heads split evenly over the groups' windows, in order; a hydra layer is each
/// head attending with its group's window (checked against masked full attention with a local
/// 3×3, a dilated 3×3 and a 5×5 group), its attention weights per head sized by its own k.
#[test]
fn hydra_heads_split_evenly_and_attend_with_their_groups_windows() {
    let groups = [Window::new(3, 1), Window::new(3, 3), Window::new(5, 1)];
    let windows = na::hydra(6, &groups).unwrap();
    assert_eq!(windows, [groups[0], groups[0], groups[1], groups[1], groups[2], groups[2]]);
    assert_eq!(na::hydra(4, &groups), Err(NaError::Groups { heads: 4, groups: 3 }));
    assert_eq!(na::hydra(4, &[]), Err(NaError::Groups { heads: 4, groups: 0 }));
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let shape = NaShape { batch: 2, heads: 6, height: 10, width: 9, channels: 4 };
    let (q, k, v) = (random(&mut rng, shape.len()), random(&mut rng, shape.len()), random(&mut rng, shape.len()));
    let bias = random(&mut rng, windows.iter().map(Window::bias_len).sum());
    let ours = na::forward(shape, &windows, &q, &k, &v, &bias, 0.5).unwrap();
    let reference = masked_full_attention(shape, &windows, &q, &k, &v, &bias, 0.5);
    assert!(ours.out.iter().zip(&reference).all(|(a, b)| (a - b).abs() < 1e-5));
    assert_eq!(ours.attention.len(), 2 * 90 * (9 + 9 + 9 + 9 + 25 + 25));
}

/// Random q, k, v, bias and output weights `r` for a hydra pair (a local 3×3 head and a 3×3 head
/// at dilation 2) of `shape`.
struct HydraCase {
    windows: Vec<Window>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    bias: Vec<f32>,
    r: Vec<f32>,
}

fn hydra_case(seed: u64, shape: NaShape) -> HydraCase {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let windows = na::hydra(2, &[Window::new(3, 1), Window::new(3, 2)]).unwrap();
    let (q, k, v) = (random(&mut rng, shape.len()), random(&mut rng, shape.len()), random(&mut rng, shape.len()));
    let bias = random(&mut rng, windows.iter().map(Window::bias_len).sum());
    let r = random(&mut rng, shape.len());
    HydraCase { windows, q, k, v, bias, r }
}

/// Element by element within 1e-4 (relative above 1).
fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() < 1e-4 * (1.0 + y.abs()), "{what} [{i}]: {x} vs {y}");
    }
}

/// The fused op and the same attention by candle's generic ops (masked full attention with
/// autograd) agree on the output and on every gradient, hydra heads and bias included.
#[test]
fn the_fused_op_agrees_with_candle_masked_full_attention() {
    let shape = NaShape { batch: 2, heads: 2, height: 9, width: 8, channels: 4 };
    let HydraCase { windows, q, k, v, bias, r } = hydra_case(5, shape);
    let ours = na::forward(shape, &windows, &q, &k, &v, &bias, 0.5).unwrap();
    let grads = na::backward(shape, &windows, &q, &k, &v, &ours.attention, &r, 0.5).unwrap();
    let (out, reference) = na::masked_full_attention_candle(shape, &windows, &q, &k, &v, &bias, &r, 0.5).unwrap();
    assert_close(&ours.out, &out, "out");
    assert_close(&grads.q, &reference.q, "dq");
    assert_close(&grads.k, &reference.k, "dk");
    assert_close(&grads.v, &reference.v, "dv");
    assert_close(&grads.bias, &reference.bias, "d bias");
}

/// The candle op: inside an autograd graph (a loss built from candle's ops around it) its output
/// and the gradients reaching q, k, v (stacked) and the bias are the fused kernels' and equal the
/// candle masked-full-attention reference's; with an empty bias it is attention without one.
#[test]
fn the_candle_op_differentiates_like_masked_full_attention() {
    use candle_core::{Device, Tensor, Var};
    use sparsefield::compute::gan::na_op::neighbourhood_attention;
    let shape = NaShape { batch: 2, heads: 2, height: 8, width: 7, channels: 3 };
    let HydraCase { windows, q, k, v, bias, r } = hydra_case(6, shape);
    let (out, reference) = na::masked_full_attention_candle(shape, &windows, &q, &k, &v, &bias, &r, 0.4).unwrap();
    let device = Device::Cpu;
    let qkv: Vec<f32> = [q.clone(), k.clone(), v.clone()].concat();
    let qkv = Var::from_tensor(&Tensor::from_vec(qkv, (3, 2, 2, 8, 7, 3), &device).unwrap()).unwrap();
    let bias_var = Var::from_slice(&bias, bias.len(), &device).unwrap();
    let ours = neighbourhood_attention(qkv.as_tensor(), bias_var.as_tensor(), &windows, 0.4).unwrap();
    assert_eq!(ours.dims(), [2, 2, 8, 7, 3]);
    let r_t = Tensor::from_slice(&r, (2, 2, 8, 7, 3), &device).unwrap();
    let grads = (&ours * &r_t).unwrap().sum_all().unwrap().backward().unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_close(&flat(&ours), &out, "out");
    let d_qkv = flat(grads.get(&qkv).unwrap());
    let n = shape.len();
    assert_close(&d_qkv[..n], &reference.q, "dq");
    assert_close(&d_qkv[n..2 * n], &reference.k, "dk");
    assert_close(&d_qkv[2 * n..], &reference.v, "dv");
    assert_close(&flat(grads.get(&bias_var).unwrap()), &reference.bias, "d bias");
    let empty = Tensor::zeros(0, candle_core::DType::F32, &device).unwrap();
    let plain = neighbourhood_attention(qkv.as_tensor(), &empty, &windows, 0.4).unwrap();
    let expected = na::forward(shape, &windows, &q, &k, &v, &[], 0.4).unwrap().out;
    assert_close(&flat(&plain), &expected, "no bias");
    let err = neighbourhood_attention(qkv.as_tensor(), &empty, &windows[..1], 0.4).unwrap_err();
    assert!(err.to_string().contains("2 heads but 1 windows"), "{err}");
}

/// The modulated convolution equals its formula: per sample, weights `W·s` demodulated to
/// `W'ₒᵢₖ = Wₒᵢₖ sᵢ / √(Σᵢₖ (Wₒᵢₖ sᵢ)² + ε)` and a plain convolution with them; without
/// demodulation, `W·s`. With unit-variance input the demodulated output has about unit variance.
#[test]
fn modulated_convolution_matches_per_sample_weights() {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};
    use sparsefield::compute::gan::layers::ModConv;
    let device = Device::Cpu;
    for demodulate in [true, false] {
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
        let conv = ModConv::new(&vb, 4, 5, 3, 6, demodulate).unwrap();
        let x = Tensor::randn(0_f32, 1.0, (3, 4, 7, 6), &device).unwrap();
        let w = Tensor::randn(0_f32, 1.0, (3, 6), &device).unwrap();
        let ours = conv.forward(&x, &w).unwrap();
        assert_eq!(ours.dims(), [3, 5, 7, 6]);
        let styles = conv.styles(&w).unwrap();
        let weight = conv.weight().unwrap();
        for b in 0..3 {
            let s = styles.get(b).unwrap().reshape((1, 4, 1, 1)).unwrap();
            let mut wb = weight.broadcast_mul(&s).unwrap();
            if demodulate {
                let norm = (wb.sqr().unwrap().sum_keepdim((1, 2, 3)).unwrap() + 1e-8).unwrap().sqrt().unwrap();
                wb = wb.broadcast_div(&norm).unwrap();
            }
            let expected = x.get(b).unwrap().unsqueeze(0).unwrap().conv2d(&wb, 1, 1, 1, 1).unwrap();
            let got = ours.get(b).unwrap().unsqueeze(0).unwrap();
            let diff = (got - &expected).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-4, "demodulate {demodulate}, sample {b}: {diff}");
        }
        if demodulate {
            let big = Tensor::randn(0_f32, 1.0, (8, 4, 16, 16), &device).unwrap();
            let w = Tensor::randn(0_f32, 1.0, (8, 6), &device).unwrap();
            let var = conv.forward(&big, &w).unwrap().sqr().unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap();
            assert!((0.6..1.2).contains(&var), "demodulated output variance {var}");
        }
    }
}

/// The mapping network normalises z (a scaled z maps to the same w) and gives one w per sample.
#[test]
fn mapping_network_normalises_its_input() {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};
    use sparsefield::compute::gan::layers::{Mapping, pixel_norm};
    let device = Device::Cpu;
    let vars = VarMap::new();
    let mapping = Mapping::new(&VarBuilder::from_varmap(&vars, DType::F32, &device), 8, 16, 3).unwrap();
    let z = Tensor::randn(0_f32, 1.0, (5, 8), &device).unwrap();
    let w = mapping.forward(&z).unwrap();
    assert_eq!(w.dims(), [5, 16]);
    let w_scaled = mapping.forward(&(&z * 7.0).unwrap()).unwrap();
    let diff = (w - w_scaled).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(diff < 1e-4, "{diff}");
    let norms = pixel_norm(&z).unwrap().sqr().unwrap().mean(1).unwrap().to_vec1::<f32>().unwrap();
    assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-4), "{norms:?}");
    assert_eq!(vars.all_vars().len(), 6, "three layers, each a weight and a bias");
}

/// The NA transformer block keeps the map's shape, trains every parameter (each gets a gradient),
/// and is local: changing one input pixel changes the outputs only at the pixels whose windows
/// hold it (here a local 3×3 head and a 3×3 head at dilation 2).
#[test]
fn na_block_is_local_to_its_windows_and_trains_every_parameter() {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};
    use sparsefield::compute::gan::layers::NaBlock;
    let device = Device::Cpu;
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
    let windows = na::hydra(2, &[Window::new(3, 1), Window::new(3, 2)]).unwrap();
    let block = NaBlock::new(&vb, 8, 4, windows.clone()).unwrap();
    let x = Tensor::randn(0_f32, 1.0, (1, 8, 9, 9), &device).unwrap();
    let w = Tensor::randn(0_f32, 1.0, (1, 4), &device).unwrap();
    let y = block.forward(&x, &w).unwrap();
    assert_eq!(y.dims(), [1, 8, 9, 9]);
    // Nudge pixel (0, 0), each channel differently (a shift of all channels alike would vanish in
    // the layer norm): only outputs whose windows hold it may move.
    let mut values = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for c in 0..8 {
        values[c * 81] += 0.3 * (c as f32 - 3.5);
    }
    let nudged = block.forward(&Tensor::from_vec(values, (1, 8, 9, 9), &device).unwrap(), &w).unwrap();
    let moved = (nudged - &y).unwrap().abs().unwrap().sum(1).unwrap().squeeze(0).unwrap().to_vec2::<f32>().unwrap();
    let sees_origin = |py: usize, px: usize| {
        windows.iter().any(|win| {
            let (y0, _) = win.axis(py, 9);
            let (x0, _) = win.axis(px, 9);
            (0..win.kernel).any(|t| y0 + t * win.dilation == 0) && (0..win.kernel).any(|t| x0 + t * win.dilation == 0)
        })
    };
    let mut inside = 0;
    for (py, row) in moved.iter().enumerate() {
        for (px, &change) in row.iter().enumerate() {
            if sees_origin(py, px) {
                assert!(change > 1e-6, "pixel ({py}, {px}) sees (0, 0) but did not move");
                inside += 1;
            } else {
                assert!(change < 1e-6, "pixel ({py}, {px}) moved by {change} but no window holds (0, 0)");
            }
        }
    }
    assert!(inside > 4 && inside < 81, "{inside} pixels see (0, 0)");
    let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    for var in vars.all_vars() {
        let g = grads.get(&var).expect("every parameter is in the graph");
        assert!(g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0, "{:?}", var.shape());
    }
    assert!(NaBlock::new(&vb.pp("bad"), 9, 4, windows).is_err(), "9 channels over 2 heads");
}

/// The generator: its windows per resolution for each attention kind, image shapes at 16² and
/// 32², a gradient for every parameter, truncation to the mean latent, style mixing, and its
/// settings' checks.
#[test]
fn generator_windows_shapes_gradients_truncation_and_mixing() {
    use candle_core::{Device, Tensor};
    use sparsefield::compute::gan::generator::{Attention, Generator, GeneratorConfig};
    let device = Device::Cpu;
    let hydra = GeneratorConfig::default();
    assert_eq!(hydra.resolutions(), [4, 8, 16, 32]);
    assert_eq!(hydra.windows(4).unwrap(), [Window::full(4); 4], "full attention at 4×4");
    assert_eq!(hydra.windows(8).unwrap(), [Window::new(7, 1); 4], "too small for a sparse-global half");
    let (local, sparse) = (Window::new(7, 1), Window::new(7, 4));
    assert_eq!(hydra.windows(32).unwrap(), [local, local, sparse, sparse]);
    assert_eq!(hydra.windows(16).unwrap()[3], Window::new(7, 2));
    let local_cfg = GeneratorConfig { attention: Attention::Local, ..hydra };
    assert_eq!(local_cfg.windows(32).unwrap(), [local; 4]);
    let full_cfg = GeneratorConfig { attention: Attention::Full, ..hydra };
    assert_eq!(full_cfg.windows(16).unwrap(), [Window::full(16); 4]);
    assert!(Window::full(4).validate(4, 4).is_ok() && Window::new(4, 1).validate(5, 5).is_err());
    for bad in [
        GeneratorConfig { size: 24, ..hydra },
        GeneratorConfig { heads: 3, channels: 64, ..hydra },
        GeneratorConfig { kernel: 4, ..hydra },
        GeneratorConfig { heads: 1, channels: 64, ..hydra },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
        assert!(Generator::new(bad, 0, &device).is_err());
    }

    let small = GeneratorConfig {
        z_dim: 8,
        w_dim: 8,
        mapping_layers: 2,
        size: 16,
        channels: 8,
        heads: 2,
        kernel: 3,
        attention: Attention::Hydra,
    };
    let g = Generator::new(small, 0, &device).unwrap();
    assert_eq!(g.style_count(), 12, "four styles at each of 4², 8², 16²");
    let z = Tensor::randn(0_f32, 1.0, (2, 8), &device).unwrap();
    let images = g.generate(&z, None).unwrap();
    assert_eq!(images.dims(), [2, 1, 16, 16]);
    let grads = images.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    for var in g.vars.all_vars() {
        let total = grads.get(&var).map(|t| t.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap());
        assert!(total.is_some_and(|t| t > 0.0), "a parameter of shape {:?} gets no gradient", var.shape());
    }
    let big = Generator::new(GeneratorConfig { size: 32, ..small }, 0, &device).unwrap();
    assert_eq!(big.generate(&z, None).unwrap().dims(), [2, 1, 32, 32]);

    // ψ = 0: every latent gives the image of the mean w.
    let w_mean = g.map(&Tensor::randn(0_f32, 1.0, (64, 8), &device).unwrap()).unwrap().mean_keepdim(0).unwrap();
    let truncated = g.generate(&z, Some((&w_mean, 0.0))).unwrap();
    let spread = (truncated.get(0).unwrap() - truncated.get(1).unwrap()).unwrap().abs().unwrap().max_all().unwrap();
    assert!(spread.to_scalar::<f32>().unwrap() < 1e-5);
    // Mixing: coarse styles from one latent, fine from another, differs from both.
    let ws = g.map(&z).unwrap();
    let (a, b) = (ws.narrow(0, 0, 1).unwrap(), ws.narrow(0, 1, 1).unwrap());
    let mixed_ws: Vec<Tensor> = (0..12).map(|i| if i < 4 { a.clone() } else { b.clone() }).collect();
    let mixed = g.synthesis(&mixed_ws).unwrap();
    for original in [images.narrow(0, 0, 1).unwrap(), images.narrow(0, 1, 1).unwrap()] {
        let d = (&mixed - original).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d > 1e-4);
    }
    assert!(g.synthesis(&mixed_ws[..3]).is_err());
}

/// The discriminator's closed-form input gradient equals finite differences of its summed
/// scores, and the R1 penalty's parameter gradient (first-order backpropagation through that
/// closed form) equals finite differences of the penalty (in f64; where a step moves a
/// pre-activation across zero the penalty jumps, and one of the one-sided differences is used).
#[test]
fn discriminator_input_gradient_and_r1_match_finite_differences() {
    use candle_core::{DType, Device, Tensor};
    use sparsefield::compute::gan::discriminator::Discriminator;
    let device = Device::Cpu;
    let d = Discriminator::new(1, 16, 4, DType::F64, 0, &device).unwrap();
    let x = Tensor::randn(0_f64, 1.0, (2, 1, 16, 16), &device).unwrap();
    let scored = d.forward(&x).unwrap();
    assert_eq!(scored.scores.dims(), [2]);
    let g = d.input_gradient(&scored).unwrap();
    assert_eq!(g.dims(), [2, 1, 16, 16]);
    let g = g.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let values = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let total = |v: &[f64]| -> f64 {
        let t = Tensor::from_slice(v, (2, 1, 16, 16), &device).unwrap();
        d.forward(&t).unwrap().scores.to_vec1::<f64>().unwrap().iter().sum()
    };
    let agrees = |up: f64, here: f64, down: f64, h: f64, a: f64| {
        let close = |n: f64| (n - a).abs() < 1e-6 + 1e-3 * n.abs().max(a.abs());
        close((up - down) / (2.0 * h)) || close((up - here) / h) || close((here - down) / h)
    };
    for i in (0..values.len()).step_by(37) {
        let h = 1e-5;
        let (mut up, mut down) = (values.clone(), values.clone());
        up[i] += h;
        down[i] -= h;
        assert!(agrees(total(&up), total(&values), total(&down), h, g[i]), "x[{i}]: {}", g[i]);
    }

    let (penalty, _) = d.r1(&x, 10.0).unwrap();
    let grads = penalty.backward().unwrap();
    let r1 = || d.r1(&x, 10.0).unwrap().0.to_scalar::<f64>().unwrap();
    let mut checked = 0;
    for var in d.vars.all_vars() {
        let Some(analytic) = grads.get(&var) else { continue };
        let analytic = analytic.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let original = var.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for i in (0..original.len()).step_by(11).take(4) {
            let at = |delta: f64| {
                let mut v = original.clone();
                v[i] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &device).unwrap()).unwrap();
                let value = r1();
                var.set(&Tensor::from_vec(original.clone(), var.shape(), &device).unwrap()).unwrap();
                value
            };
            let h = 1e-6;
            assert!(agrees(at(h), at(0.0), at(-h), h, analytic[i]), "{:?} [{i}]: {}", var.shape(), analytic[i]);
            checked += usize::from(analytic[i].abs() > 1e-4);
        }
    }
    assert!(checked >= 6, "only {checked} R1 parameter gradients were checked away from zero");
    assert!(Discriminator::new(1, 12, 4, DType::F32, 0, &device).is_err());
}

/// Training on the built-in digits at 16²: the images prepared in [−1, 1]; a seeded run repeats
/// exactly; every loss stays finite; the moving average is sampled apart from the live weights;
/// and training moves the discriminator's scores of real and generated images apart from where
/// they start.
#[test]
fn a_seeded_gan_run_on_the_digits_repeats_and_trains() {
    use candle_core::{Device, Tensor};
    use sparsefield::compute::gan::generator::GeneratorConfig;
    use sparsefield::compute::gan::train::{GanConfig, GanTrainer, prepare_images};
    let device = Device::Cpu;
    let digits = sparsefield::compute::inr::classify::builtin_digits();
    let images: Vec<Vec<f32>> = digits.images.iter().take(256).map(|i| i.to_vec()).collect();
    let data = prepare_images(&images, 8, 16, &device).unwrap();
    assert_eq!(data.dims(), [256, 1, 16, 16]);
    let values = data.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)) && values.iter().any(|&v| v > 0.5));
    let config = GanConfig {
        generator: GeneratorConfig {
            z_dim: 8,
            w_dim: 8,
            mapping_layers: 2,
            size: 16,
            channels: 8,
            heads: 2,
            kernel: 3,
            ..GeneratorConfig::default()
        },
        d_channels: 8,
        batch: 8,
        ..GanConfig::default()
    };
    assert!((config.gamma() - 10.0 / 256.0).abs() < 1e-12, "γ = 10·(16/256)²");
    let run = |steps: usize| {
        let mut trainer = GanTrainer::new(config, data.clone(), &device).unwrap();
        let losses: Vec<_> = (0..steps).map(|_| trainer.step().unwrap()).collect();
        (trainer, losses)
    };
    let (trainer, losses) = run(12);
    let (_, again) = run(12);
    assert_eq!(losses, again, "the same seed gives the same run");
    assert!(losses.iter().all(|l| l.d.is_finite() && l.g.is_finite() && l.r1 >= 0.0), "{losses:?}");
    let z = Tensor::randn(0_f32, 1.0, (4, 8), &device).unwrap();
    let live = trainer.generator.generate(&z, None).unwrap();
    let averaged = trainer.sample_ema(&z, None).unwrap();
    let gap = (&live - &averaged).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(gap > 1e-5, "the moving average lags the live generator");
    let live_again = trainer.generator.generate(&z, None).unwrap();
    assert_eq!(
        live.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        live_again.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        "sampling the average restores the live weights"
    );
    assert!(
        losses.last().unwrap().d < losses[0].d,
        "the discriminator learns: {:?} → {:?}",
        losses[0],
        losses.last().unwrap()
    );
}

/// The metric: the Fréchet distance of a set with itself is 0, grows by exactly ‖δ‖² with a shift
/// δ, and in one dimension is (μ₁ − μ₂)² + (σ₁ − σ₂)²; KID is near 0 for two samples of one
/// distribution and clearly above it for a shifted one; precision and recall are 1 for the same
/// set, 0 for a far one, and a collapsed generator keeps its precision but loses its recall.
#[test]
fn frechet_distance_kid_and_precision_recall_behave_as_their_formulas() {
    use sparsefield::compute::gan::metric::{Features, frechet_distance, kernel_distance, precision_recall};
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let gaussian = |rng: &mut ChaCha8Rng, n: usize, d: usize, shift: f64| {
        let values = (0..n * d)
            .map(|i| rng.sample::<f64, _>(rand_distr::StandardNormal) * (1.0 + (i % d) as f64 * 0.3) + shift)
            .collect();
        Features::new(d, values).unwrap()
    };
    let a = gaussian(&mut rng, 300, 6, 0.0);
    assert!(frechet_distance(&a, &a).unwrap() < 1e-8);
    let shifted =
        Features::new(6, a.values.iter().enumerate().map(|(i, v)| v + if i % 6 == 2 { 1.5 } else { 0.0 }).collect())
            .unwrap();
    assert!((frechet_distance(&a, &shifted).unwrap() - 2.25).abs() < 1e-8, "a shift adds ‖δ‖²");
    let one = |values: Vec<f64>| Features::new(1, values).unwrap();
    let (x, y) = (one(vec![1.0, 2.0, 4.0, 5.0]), one(vec![0.0, 0.0, 3.0, 9.0]));
    let stats = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (m, (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt())
    };
    let ((m1, s1), (m2, s2)) = (stats(&x.values), stats(&y.values));
    assert!((frechet_distance(&x, &y).unwrap() - ((m1 - m2).powi(2) + (s1 - s2).powi(2))).abs() < 1e-9);

    let b = gaussian(&mut rng, 300, 6, 0.0);
    let far = gaussian(&mut rng, 300, 6, 1.0);
    let (same, apart) = (kernel_distance(&a, &b).unwrap(), kernel_distance(&a, &far).unwrap());
    assert!(20.0 * same.abs() < apart, "KID {same} for one distribution vs {apart} for a shifted one");
    assert!(frechet_distance(&a, &b).unwrap() < frechet_distance(&a, &far).unwrap());

    assert_eq!(precision_recall(&a, &a, 3).unwrap(), (1.0, 1.0));
    let distant = gaussian(&mut rng, 300, 6, 100.0);
    assert_eq!(precision_recall(&a, &distant, 3).unwrap(), (0.0, 0.0));
    // Mode collapse: every generated vector is one of 20 real ones, nudged.
    let collapsed = Features::new(
        6,
        (0..300)
            .flat_map(|i| a.values[(i % 20) * 6..(i % 20) * 6 + 6].iter().map(|v| v + 1e-3).collect::<Vec<_>>())
            .collect(),
    )
    .unwrap();
    let (precision, recall) = precision_recall(&a, &collapsed, 3).unwrap();
    assert!(precision > 0.95 && recall < 0.5, "precision {precision}, recall {recall}");
    assert!(Features::new(4, vec![0.0; 7]).is_err() && Features::new(2, vec![f64::NAN, 0.0]).is_err());
    assert!(frechet_distance(&a, &x).is_err() && precision_recall(&x, &x, 4).is_err());
}

/// The generator saves and loads its parameters (the same images after a round trip); a file
/// of another generator's sizes or not safetensors at all is refused with its name; the sample
/// grid lays images out in rows with gaps, mapped from [−1, 1] to [0, 1].
#[test]
fn generator_checkpoints_round_trip_and_bad_files_are_refused() {
    use candle_core::{Device, Tensor};
    use sparsefield::compute::gan::generator::{Attention, Generator, GeneratorConfig, image_grid};
    let device = Device::Cpu;
    let dir = super::common::temp_dir("gan_checkpoint");
    let config = GeneratorConfig {
        z_dim: 8,
        w_dim: 8,
        mapping_layers: 2,
        size: 8,
        channels: 8,
        heads: 2,
        kernel: 3,
        attention: Attention::Local,
    };
    let g = Generator::new(config, 5, &device).unwrap();
    let path = dir.join("generator.safetensors");
    g.save(&path).unwrap();
    let loaded = Generator::load(config, &path, &device).unwrap();
    let z = Tensor::randn(0_f32, 1.0, (3, 8), &device).unwrap();
    let (a, b) = (g.generate(&z, None).unwrap(), loaded.generate(&z, None).unwrap());
    assert_eq!(a.flatten_all().unwrap().to_vec1::<f32>().unwrap(), b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    let wider = GeneratorConfig { channels: 16, ..config };
    let err = Generator::load(wider, &path, &device).err().unwrap().to_string();
    assert!(err.contains("generator.safetensors") && err.contains("same sizes"), "{err}");
    std::fs::write(dir.join("junk.safetensors"), b"not a tensor file").unwrap();
    let err = Generator::load(config, &dir.join("junk.safetensors"), &device).err().unwrap().to_string();
    assert!(err.contains("junk.safetensors"), "{err}");

    let images = Tensor::from_vec(
        vec![-1.0_f32, 1.0, 0.0, 3.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0],
        (3, 1, 2, 2),
        &device,
    )
    .unwrap();
    let grid = image_grid(&images, 2).unwrap();
    assert_eq!((grid.width, grid.height), (5, 5), "two columns, two rows, one-pixel gaps");
    assert_eq!(&grid.pixels[..5], &[0.0, 1.0, 0.0, 1.0, 1.0]);
    assert_eq!(&grid.pixels[5..10], &[0.5, 1.0, 0.0, 1.0, 1.0], "3 is clamped to 1");
    assert_eq!(&grid.pixels[15..17], &[0.0, 0.0]);
}
