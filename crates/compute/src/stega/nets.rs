//! Stage 2's decoder D and classifier C, small convolutional nets kept as parameter lists like
//! [`crate::nets`]: C scores whether a view carries a secret; D reads the view (resized to the
//! decoder's side) with C's score as a fourth channel — classifier-guided decoding, as in the
//! paper's code — and outputs the secret image or the secret's bit logits.
//!
//! D: conv3×3(4→w) · ReLU → conv3×3 stride 2 (w→2w) · ReLU → conv3×3(2w→2w) · ReLU → nearest ×2,
//! joined with the first layer's features → conv3×3(3w→w) · ReLU → for an image, conv1×1(w→3);
//! for bits, the middle features average-pooled 4×4 → linear to the bit logits. To these logits
//! D adds a learned template (an image of logits, or one logit per bit) scaled by C's score, and
//! an image ends in a sigmoid: `D(v) = σ(U(v, s) + s·T)`. A convolutional net is blind to where it
//! is and would draw a fixed picture only blurred; the template is where D keeps the secret's
//! detail, the score decides whether it shows, and U draws what the view itself says.
//! C: conv3×3 stride 2 (3→w) · ReLU → conv3×3 stride 2 (w→2w) · ReLU → mean → linear(2w→1).

use candle_core::{Device, Tensor, Var};

use crate::nets::init_params;

/// What the decoder outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecoderKind {
    /// An RGB image of the decoder's side.
    Image,
    /// Logits of this many bits.
    Bits(usize),
}

/// The two nets' shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetsConfig {
    /// Views are resized to `side × side` before decoding (a multiple of 8).
    pub side: usize,
    /// Channels of the first layers.
    pub width: usize,
    pub kind: DecoderKind,
}

impl NetsConfig {
    /// Refuses sides the pooling cannot take and empty nets.
    pub fn validate(&self) -> Result<(), String> {
        if self.side < 8 || !self.side.is_multiple_of(8) {
            return Err(format!("the decoder's side must be a multiple of 8 (at least 8), not {}", self.side));
        }
        if self.width == 0 || matches!(self.kind, DecoderKind::Bits(0)) {
            return Err("the decoder needs at least one channel and one bit".into());
        }
        Ok(())
    }

    fn decoder_shapes(&self) -> Vec<Vec<usize>> {
        let w = self.width;
        let mut shapes = vec![vec![w, 4, 3, 3], vec![2 * w, w, 3, 3], vec![2 * w, 2 * w, 3, 3]];
        match self.kind {
            DecoderKind::Image => {
                shapes.push(vec![w, 3 * w, 3, 3]);
                shapes.push(vec![3, w, 1, 1]);
                // The template: one logit per pixel and channel (its "bias" a per-channel offset).
                shapes.push(vec![3, self.side * self.side]);
            }
            DecoderKind::Bits(bits) => {
                shapes.push(vec![bits, 2 * w * (self.side / 8) * (self.side / 8)]);
                // The template: one logit per bit (weight and bias both, added).
                shapes.push(vec![bits, 1]);
            }
        }
        shapes
    }

    fn classifier_shapes(&self) -> Vec<Vec<usize>> {
        let w = self.width;
        vec![vec![w, 3, 3, 3], vec![2 * w, w, 3, 3], vec![1, 2 * w]]
    }

    /// The weight shapes of the decoder's layers and of the classifier's (each followed by its
    /// bias in the parameter lists).
    pub fn shapes(&self) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
        (self.decoder_shapes(), self.classifier_shapes())
    }

    /// Freshly initialised decoder and classifier parameters (see [`init_params`]).
    pub fn init(&self, seed: u64, device: &Device) -> candle_core::Result<(Vec<Var>, Vec<Var>)> {
        Ok((
            init_params(&self.decoder_shapes(), seed, device)?,
            init_params(&self.classifier_shapes(), seed ^ 0x5eed, device)?,
        ))
    }
}

fn conv(x: &Tensor, w: &Tensor, b: &Tensor, stride: usize) -> candle_core::Result<Tensor> {
    let padding = w.dim(2)? / 2;
    x.conv2d(w, padding, stride, 1, 1)?.broadcast_add(&b.reshape((1, (), 1, 1))?)
}

/// C's logit (marked?) for each view in `views` (`n × 3 × side × side`), shape `n`.
pub fn classify(views: &Tensor, params: &[Tensor]) -> candle_core::Result<Tensor> {
    let h = conv(views, &params[0], &params[1], 2)?.relu()?;
    let h = conv(&h, &params[2], &params[3], 2)?.relu()?;
    let pooled = h.mean(3)?.mean(2)?;
    pooled.matmul(&params[4].t()?)?.broadcast_add(&params[5])?.squeeze(1)
}

/// D's output for `views` (`n × 3 × side × side`) given C's logits for them (`n`): an image
/// `n × 3 × side × side` in [0, 1], or bit logits `n × bits`.
pub fn decode(
    config: &NetsConfig,
    views: &Tensor,
    class_logits: &Tensor,
    params: &[Tensor],
) -> candle_core::Result<Tensor> {
    let (n, _, side, _) = views.dims4()?;
    let score = candle_nn::ops::sigmoid(class_logits)?.reshape((n, 1, 1, 1))?.broadcast_as((n, 1, side, side))?;
    let x = Tensor::cat(&[views, &score.contiguous()?], 1)?;
    let gate = candle_nn::ops::sigmoid(class_logits)?.reshape((n, 1))?;
    let e1 = conv(&x, &params[0], &params[1], 1)?.relu()?;
    let e2 = conv(&e1, &params[2], &params[3], 2)?.relu()?;
    let mid = conv(&e2, &params[4], &params[5], 1)?.relu()?;
    match config.kind {
        DecoderKind::Image => {
            let up = mid.upsample_nearest2d(side, side)?;
            let d = conv(&Tensor::cat(&[&up, &e1], 1)?, &params[6], &params[7], 1)?.relu()?;
            let template = params[10].broadcast_add(&params[11].reshape((3, 1))?)?.reshape((1, 3 * side * side))?;
            let gated = gate.broadcast_mul(&template)?.reshape((n, 3, side, side))?;
            candle_nn::ops::sigmoid(&conv(&d, &params[8], &params[9], 1)?.add(&gated)?)
        }
        DecoderKind::Bits(bits) => {
            let pooled = mid.avg_pool2d(4)?.flatten_from(1)?;
            let template = params[8].reshape((1, bits))?.add(&params[9].reshape((1, bits))?)?;
            pooled.matmul(&params[6].t()?)?.broadcast_add(&params[7])?.add(&gate.broadcast_mul(&template)?)
        }
    }
}
