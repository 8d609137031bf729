//! The classifier whose populations expose hard samples: an MLP `input → h → h → classes` with
//! ReLU, trained on a per-sample weighted cross-entropy, optionally with a fixed weight mask.
//! Forward and backward are written out over faer's matrix products: for nets this small,
//! candle's per-operation overhead costs more than the arithmetic.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::control::RunControl;
use crate::dense;
use crate::linalg::clear_upper_vector_state;
use crate::optim::FlatAdam;
use crate::prune::data::ImageSet;

/// A fully connected ReLU classifier over flat parameters `[W₀, b₀, W₁, b₁, W₂, b₂]`, each `Wₗ`
/// row-major `fan_out × fan_in`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// `(fan_in, fan_out)` of each layer.
    shapes: Vec<(usize, usize)>,
    /// Where each layer's weight starts in `params`; its bias follows.
    offsets: Vec<usize>,
    pub params: Vec<f32>,
}

/// How one network is trained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainSpec {
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f32,
    /// Seeds the order of the samples.
    pub seed: u64,
}

impl Mlp {
    /// PyTorch's `nn.Linear` initialisation, `U(±1/√fan_in)` for weights and biases.
    pub fn new(input: usize, hidden: usize, classes: usize, seed: u64) -> Self {
        let shapes = vec![(input, hidden), (hidden, hidden), (hidden, classes)];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut params = Vec::new();
        let mut offsets = Vec::new();
        for &(fan_in, fan_out) in &shapes {
            offsets.push(params.len());
            #[allow(clippy::cast_precision_loss)]
            let bound = 1.0 / (fan_in as f32).sqrt();
            params.extend((0..(fan_in + 1) * fan_out).map(|_| rng.random_range(-bound..=bound)));
        }
        Self { shapes, offsets, params }
    }

    pub fn shapes(&self) -> &[(usize, usize)] {
        &self.shapes
    }

    pub fn classes(&self) -> usize {
        self.shapes.last().map_or(0, |s| s.1)
    }

    pub fn input(&self) -> usize {
        self.shapes.first().map_or(0, |s| s.0)
    }

    /// The range of `params` holding layer `l`'s weight matrix (not its bias).
    pub fn weight_range(&self, l: usize) -> std::ops::Range<usize> {
        let (fan_in, fan_out) = self.shapes[l];
        self.offsets[l]..self.offsets[l] + fan_in * fan_out
    }

    /// A mask over `params` keeping `1 − sparsity` of each layer's weights by magnitude (ties to
    /// the lower index); biases are always kept.
    pub fn magnitude_mask(&self, sparsity: f64) -> Vec<f32> {
        let scores: Vec<Vec<f64>> = (0..self.shapes.len())
            .map(|l| self.params[self.weight_range(l)].iter().map(|w| f64::from(w.abs())).collect())
            .collect();
        let keep = crate::prune::init::select(&scores, 1.0 - sparsity, false);
        let mut mask = vec![1.0; self.params.len()];
        for (l, layer) in keep.iter().enumerate() {
            let range = self.weight_range(l);
            for (m, &k) in mask[range].iter_mut().zip(layer) {
                *m = if k { 1.0 } else { 0.0 };
            }
        }
        mask
    }

    /// Fraction of each layer's weights that are exactly zero.
    pub fn layer_sparsity(&self) -> Vec<f64> {
        (0..self.shapes.len())
            .map(|l| {
                let w = &self.params[self.weight_range(l)];
                #[allow(clippy::cast_precision_loss)]
                let zero = w.iter().filter(|&&v| v == 0.0).count() as f64 / w.len().max(1) as f64;
                zero
            })
            .collect()
    }

    /// The layers as `(name, shape, values)` tensors named `{prefix}fc{l}.weight` and `.bias`
    /// (PyTorch's `nn.Linear` layout), for safetensors files.
    pub fn tensors(&self, prefix: &str) -> Vec<(String, Vec<usize>, &[f32])> {
        let mut out = Vec::new();
        for (l, &(fan_in, fan_out)) in self.shapes.iter().enumerate() {
            let range = self.weight_range(l);
            out.push((format!("{prefix}fc{}.weight", l + 1), vec![fan_out, fan_in], &self.params[range.clone()]));
            out.push((
                format!("{prefix}fc{}.bias", l + 1),
                vec![fan_out],
                &self.params[range.end..range.end + fan_out],
            ));
        }
        out
    }

    /// `out ← input · Wₗᵀ + bₗ` for `n` rows.
    fn linear(&self, out: &mut [f32], input: &[f32], l: usize, n: usize) {
        dense::linear(out, input, &self.params, self.offsets[l], self.shapes[l], n);
    }

    /// Hidden activations of every layer but the last, and the logits, for `n` rows of `x`.
    fn forward(&self, x: &[f32], n: usize) -> (Vec<Vec<f32>>, Vec<f32>) {
        let last = self.shapes.len() - 1;
        let mut hidden: Vec<Vec<f32>> = Vec::with_capacity(last);
        for l in 0..last {
            let mut h = vec![0.0; n * self.shapes[l].1];
            self.linear(&mut h, hidden.last().map_or(x, Vec::as_slice), l, n);
            h.iter_mut().for_each(|v| *v = v.max(0.0));
            hidden.push(h);
        }
        let mut logits = vec![0.0; n * self.classes()];
        self.linear(&mut logits, hidden.last().map_or(x, Vec::as_slice), last, n);
        clear_upper_vector_state();
        (hidden, logits)
    }

    /// Logits of `n` rows of `x` (`n × input`).
    pub fn logits(&self, x: &[f32], n: usize) -> Vec<f32> {
        self.forward(x, n).1
    }

    /// The weighted mean cross-entropy `(1/n) Σᵢ wᵢ ℓᵢ` of `n` rows of `x` with `labels`, and
    /// its gradient with respect to `params`, written into `grads` (overwritten).
    pub fn loss_and_gradient(&self, x: &[f32], labels: &[u16], weights: &[f32], grads: &mut [f32]) -> f64 {
        let n = labels.len();
        let classes = self.classes();
        let (hidden, logits) = self.forward(x, n);
        #[allow(clippy::cast_precision_loss)]
        let inv_n = 1.0 / n.max(1) as f32;
        // ∂/∂logits = wᵢ/n · (softmax − one-hot).
        let mut g = logits;
        let mut loss = 0.0_f64;
        for ((row, &label), &w) in g.chunks_exact_mut(classes).zip(labels).zip(weights) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let label = usize::from(label);
            // −log softmax = log Σ exp(zₖ − max) − (z_label − max), finite however small the softmax.
            let shifted = row[label] - max;
            let mut sum = 0.0_f32;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            loss += f64::from(w) * (f64::from(sum.ln()) - f64::from(shifted));
            for v in row.iter_mut() {
                *v *= w * inv_n / sum;
            }
            row[label] -= w * inv_n;
        }
        grads.iter_mut().for_each(|v| *v = 0.0);
        dense::backward(&self.shapes, &self.offsets, &self.params, (x, &hidden), g, grads);
        clear_upper_vector_state();
        #[allow(clippy::cast_precision_loss)]
        let mean = loss / n.max(1) as f64;
        mean
    }

    /// Trains with Adam on shuffled batches of `set`, sample `i` weighted by
    /// `weights(epoch)[i]` (epochs count from 0); with a `mask`, masked parameters get no
    /// gradient and stay zero. Calls `on_epoch(epoch, mean loss)` after each epoch; `false`
    /// when `control` cancelled the run.
    pub fn train(
        &mut self,
        set: &ImageSet,
        spec: TrainSpec,
        mask: Option<&[f32]>,
        weights: &dyn Fn(usize) -> Vec<f32>,
        control: &RunControl,
        on_epoch: &mut dyn FnMut(usize, f64),
    ) -> bool {
        let size = set.image_size();
        let mut adam = FlatAdam::new(self.params.len(), 0.9, 0.999, 1e-8);
        let mut grads = vec![0.0; self.params.len()];
        if let Some(mask) = mask {
            self.params.iter_mut().zip(mask).for_each(|(p, m)| *p *= m);
        }
        let mut order: Vec<usize> = (0..set.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        rng.set_stream(0x5348_5546);
        let batch = spec.batch.max(1);
        let mut x = Vec::with_capacity(batch * size);
        let mut labels = Vec::with_capacity(batch);
        let mut batch_weights = Vec::with_capacity(batch);
        for epoch in 0..spec.epochs {
            let epoch_weights = weights(epoch);
            order.shuffle(&mut rng);
            let (mut loss_sum, mut batches) = (0.0, 0_u32);
            for chunk in order.chunks(batch) {
                if !control.checkpoint() {
                    return false;
                }
                x.clear();
                labels.clear();
                batch_weights.clear();
                for &i in chunk {
                    x.extend_from_slice(&set.pixels[i * size..(i + 1) * size]);
                    labels.push(set.labels[i]);
                    batch_weights.push(epoch_weights.get(i).copied().unwrap_or(1.0));
                }
                loss_sum += self.loss_and_gradient(&x, &labels, &batch_weights, &mut grads);
                batches += 1;
                if let Some(mask) = mask {
                    grads.iter_mut().zip(mask).for_each(|(g, m)| *g *= m);
                }
                adam.step_seq(&mut self.params, &grads, spec.learning_rate);
                if let Some(mask) = mask {
                    self.params.iter_mut().zip(mask).for_each(|(p, m)| *p *= m);
                }
            }
            on_epoch(epoch, loss_sum / f64::from(batches.max(1)));
        }
        true
    }

    /// The predicted class and the cross-entropy on the true label of every sample of `set`.
    pub fn predict(&self, set: &ImageSet) -> (Vec<u16>, Vec<f32>) {
        let size = set.image_size();
        let classes = self.classes();
        let mut predictions = Vec::with_capacity(set.len());
        let mut losses = Vec::with_capacity(set.len());
        for start in (0..set.len()).step_by(512) {
            let end = (start + 512).min(set.len());
            let logits = self.logits(&set.pixels[start * size..end * size], end - start);
            for (row, &label) in logits.chunks_exact(classes).zip(&set.labels[start..end]) {
                let (best, max) =
                    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |a, (k, &v)| if v > a.1 { (k, v) } else { a });
                let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
                losses.push(sum.ln() + max - row[usize::from(label)]);
                predictions.push(u16::try_from(best).unwrap_or(u16::MAX));
            }
        }
        (predictions, losses)
    }
}
