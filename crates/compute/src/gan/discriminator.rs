//! The discriminator, a small convolutional network, and the R1 penalty on its input gradient.
//!
//! R1 (`γ/2 · E‖∇ₓD(x)‖²` on real images) needs the gradient of an input gradient, and candle's
//! second-order gradients are not to be trusted, so the input gradient is written out in closed
//! form with candle's first-order ops (each convolution's transpose is a convolution with the
//! flipped, transposed kernel; each pooling's is a spread; LeakyReLU's slope is taken at the
//! forward's sign), and the penalty's parameter gradient is ordinary backpropagation through that.
//!
//! Layers: a 3×3 convolution from the image's channels, then per halving a 3×3 convolution and a
//! 2×2 average pooling down to 4×4, LeakyReLU after each convolution, and a linear score.

use candle_core::{D, DType, Device, Result, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};

const SLOPE: f64 = 0.2;

/// One 3×3 convolution (equalised learning rate) and whether a pooling follows it.
struct Conv {
    weight: Tensor,
    bias: Tensor,
    scale: f64,
    pool: bool,
}

pub struct Discriminator {
    pub vars: VarMap,
    convs: Vec<Conv>,
    head_weight: Tensor,
    head_bias: Tensor,
    head_scale: f64,
    channels: usize,
}

/// What the forward keeps for the closed-form input gradient.
pub struct Scored {
    /// One score per image.
    pub scores: Tensor,
    /// Each convolution's output before its LeakyReLU.
    pre: Vec<Tensor>,
}

impl Discriminator {
    /// For `channels`-wide features on `image_channels × size × size` images (`size` a power of
    /// two ≥ 4), parameters of `dtype` drawn from `seed`.
    pub fn new(
        image_channels: usize,
        size: usize,
        channels: usize,
        dtype: DType,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        if !size.is_power_of_two() || size < 4 {
            candle_core::bail!("the discriminator takes square images of a power-of-two side ≥ 4, got {size}");
        }
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, dtype, device);
        let halvings = size.trailing_zeros() as usize - 2;
        let conv = |name: String, fan_in: usize, pool: bool| -> Result<Conv> {
            let vb = vb.pp(name);
            #[allow(clippy::cast_precision_loss)]
            let scale = 1.0 / ((fan_in * 9) as f64).sqrt();
            Ok(Conv {
                weight: vb.get_with_hints((channels, fan_in, 3, 3), "weight", Init::Randn { mean: 0.0, stdev: 1.0 })?,
                bias: vb.get_with_hints(channels, "bias", Init::Const(0.0))?,
                scale,
                pool,
            })
        };
        let mut convs = vec![conv("from_image".into(), image_channels, false)?];
        for i in 0..halvings {
            convs.push(conv(format!("down{i}"), channels, true)?);
        }
        let head_vb = vb.pp("head");
        let head_weight =
            head_vb.get_with_hints((1, channels * 16), "weight", Init::Randn { mean: 0.0, stdev: 1.0 })?;
        let head_bias = head_vb.get_with_hints(1, "bias", Init::Const(0.0))?;
        #[allow(clippy::cast_precision_loss)]
        let head_scale = 1.0 / ((channels * 16) as f64).sqrt();
        super::layers::redraw_seeded(&vars, seed)?;
        Ok(Self { vars, convs, head_weight, head_bias, head_scale, channels })
    }

    /// Scores of `x` (`batch × C × size × size`).
    pub fn forward(&self, x: &Tensor) -> Result<Scored> {
        let mut h = x.clone();
        let mut pre = Vec::with_capacity(self.convs.len());
        for conv in &self.convs {
            let z = h.conv2d(&(&conv.weight * conv.scale)?, 1, 1, 1, 1)?.broadcast_add(&conv.bias.reshape((
                1,
                (),
                1,
                1,
            ))?)?;
            h = z.maximum(&(&z * SLOPE)?)?;
            pre.push(z);
            if conv.pool {
                h = h.avg_pool2d(2)?;
            }
        }
        let flat = h.flatten_from(1)?;
        let scores = flat
            .matmul(&(&self.head_weight * self.head_scale)?.t()?)?
            .broadcast_add(&self.head_bias)?
            .squeeze(D::Minus1)?;
        Ok(Scored { scores, pre })
    }

    /// `∂(Σ scores)/∂x`, one gradient image per input, in closed form from what `scored` kept:
    /// differentiable with respect to the parameters by candle's first-order backpropagation.
    pub fn input_gradient(&self, scored: &Scored) -> Result<Tensor> {
        let last = scored.pre.last().ok_or_else(|| candle_core::Error::msg("no layers"))?;
        let batch = last.dim(0)?;
        let head = (&self.head_weight * self.head_scale)?.reshape((1, self.channels, 4, 4))?;
        let mut g = head.repeat((batch, 1, 1, 1))?;
        for (conv, z) in self.convs.iter().zip(&scored.pre).rev() {
            if conv.pool {
                let (_, _, h, w) = g.dims4()?;
                g = (g.upsample_nearest2d(2 * h, 2 * w)? * 0.25)?;
            }
            // LeakyReLU's slope where the forward was (a constant of the graph).
            let slope = ((z.ge(0.0)?.to_dtype(z.dtype())? * (1.0 - SLOPE))? + SLOPE)?.detach();
            g = (g * slope)?;
            g = g.conv2d(&flipped_transpose(&(&conv.weight * conv.scale)?)?, 1, 1, 1, 1)?;
        }
        Ok(g)
    }

    /// The R1 penalty `γ/2 · mean over the batch of ‖∇ₓD(x)‖²` on `x`, and the scores.
    pub fn r1(&self, x: &Tensor, gamma: f64) -> Result<(Tensor, Tensor)> {
        let scored = self.forward(x)?;
        let g = self.input_gradient(&scored)?;
        let penalty = (g.sqr()?.sum((1, 2, 3))?.mean_all()? * (gamma / 2.0))?;
        Ok((penalty, scored.scores))
    }
}

/// `Wᵀ` with each kernel rotated by 180°: a stride-1 convolution's input gradient is the output
/// gradient convolved with it.
fn flipped_transpose(w: &Tensor) -> Result<Tensor> {
    let (_, _, kh, kw) = w.dims4()?;
    let rev = |n: usize| -> Result<Tensor> {
        let order: Vec<u32> =
            (0..n).rev().map(|i| u32::try_from(i).map_err(candle_core::Error::wrap)).collect::<Result<_>>()?;
        Tensor::from_vec(order, n, w.device())
    };
    w.index_select(&rev(kh)?, 2)?.index_select(&rev(kw)?, 3)?.transpose(0, 1)?.contiguous()
}
