//! The style-based generator's layers as candle graphs: the mapping network (z → w) and the
//! modulated convolution (StyleGAN2's weight modulation and demodulation). Weights are stored at
//! unit variance and scaled by `1/√fan-in` when used (the equalised learning rate).

use candle_core::{D, Result, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Draws again, from a seeded stream, every parameter of `vars` that starts random (named
/// `…weight` or `…constant`; biases keep their constant starts), N(0, 1), in the order of their
/// names: candle's CPU random source cannot be seeded, and runs must repeat.
pub fn redraw_seeded(vars: &VarMap, seed: u64) -> Result<()> {
    let data = vars.data().lock().map_err(|_| candle_core::Error::msg("a parameter map's lock was poisoned"))?;
    let mut names: Vec<&String> = data.keys().filter(|n| n.ends_with("weight") || n.ends_with("constant")).collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let values: Vec<f32> = (0..var.elem_count()).map(|_| rng.sample(StandardNormal)).collect();
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

/// LeakyReLU's slope below zero in the mapping network.
const SLOPE: f64 = 0.2;

/// `x / √(mean(x²) + ε)` over each row: the mapping network's input normalisation.
pub fn pixel_norm(x: &Tensor) -> Result<Tensor> {
    x.broadcast_div(&(x.sqr()?.mean_keepdim(D::Minus1)? + 1e-8)?.sqrt()?)
}

/// A fully connected layer with an equalised learning rate: `x · (W/√fan-in)ᵀ + b`.
#[derive(Clone, Debug)]
pub struct EqualLinear {
    weight: Tensor,
    bias: Tensor,
    scale: f64,
}

impl EqualLinear {
    /// `bias_init` is the bias's starting value (1 for the style affines, so that styles start
    /// at one).
    pub fn new(vb: &VarBuilder, fan_in: usize, fan_out: usize, bias_init: f64) -> Result<Self> {
        let weight = vb.get_with_hints((fan_out, fan_in), "weight", Init::Randn { mean: 0.0, stdev: 1.0 })?;
        let bias = vb.get_with_hints(fan_out, "bias", Init::Const(bias_init))?;
        #[allow(clippy::cast_precision_loss)]
        let scale = 1.0 / (fan_in as f64).sqrt();
        Ok(Self { weight, bias, scale })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.broadcast_matmul(&(&self.weight * self.scale)?.t()?)?.broadcast_add(&self.bias)
    }
}

/// The mapping network: `z` normalised, then `layers` equalised linear layers with LeakyReLU.
#[derive(Clone, Debug)]
pub struct Mapping {
    layers: Vec<EqualLinear>,
}

impl Mapping {
    pub fn new(vb: &VarBuilder, z_dim: usize, w_dim: usize, layers: usize) -> Result<Self> {
        let layers = (0..layers)
            .map(|l| EqualLinear::new(&vb.pp(format!("fc{l}")), if l == 0 { z_dim } else { w_dim }, w_dim, 0.0))
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// `z` (`batch × z_dim`) to `w` (`batch × w_dim`).
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let mut x = pixel_norm(z)?;
        for layer in &self.layers {
            let y = layer.forward(&x)?;
            x = y.maximum(&(&y * SLOPE)?)?;
        }
        Ok(x)
    }
}

/// A `k × k` convolution whose input channels are scaled per sample by a style from `w`
/// (modulation) and whose output channels are then renormalised to unit expected variance
/// (demodulation): the per-sample weights `W'ₒᵢ = Wₒᵢ·sᵢ / √(Σᵢₖ (Wₒᵢₖ·sᵢ)² + ε)`. Computed by
/// scaling the input and the output instead of building per-sample weights (the same result).
#[derive(Clone, Debug)]
pub struct ModConv {
    weight: Tensor,
    affine: EqualLinear,
    scale: f64,
    kernel: usize,
    demodulate: bool,
}

impl ModConv {
    pub fn new(
        vb: &VarBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        w_dim: usize,
        demodulate: bool,
    ) -> Result<Self> {
        let weight = vb.get_with_hints(
            (out_channels, in_channels, kernel, kernel),
            "weight",
            Init::Randn { mean: 0.0, stdev: 1.0 },
        )?;
        let affine = EqualLinear::new(&vb.pp("affine"), w_dim, in_channels, 1.0)?;
        #[allow(clippy::cast_precision_loss)]
        let scale = 1.0 / ((in_channels * kernel * kernel) as f64).sqrt();
        Ok(Self { weight, affine, scale, kernel, demodulate })
    }

    /// Each sample's styles, `batch × in_channels`.
    pub fn styles(&self, w: &Tensor) -> Result<Tensor> {
        self.affine.forward(w)
    }

    /// The weights as used (`out × in × k × k`, equalised).
    pub fn weight(&self) -> Result<Tensor> {
        &self.weight * self.scale
    }

    /// `x` (`batch × in × H × W`) with styles from `w` (`batch × w_dim`); same-size output.
    pub fn forward(&self, x: &Tensor, w: &Tensor) -> Result<Tensor> {
        let (batch, in_channels, _, _) = x.dims4()?;
        let styles = self.styles(w)?;
        let weight = self.weight()?;
        let modulated = x.broadcast_mul(&styles.reshape((batch, in_channels, 1, 1))?)?;
        let y = modulated.conv2d(&weight, self.kernel / 2, 1, 1, 1)?;
        if !self.demodulate {
            return Ok(y);
        }
        // Σᵢₖ (Wₒᵢₖ sᵢ)² = Σᵢ sᵢ² Σₖ Wₒᵢₖ².
        let out_channels = weight.dim(0)?;
        let squares = weight.sqr()?.sum((2, 3))?;
        let demod = (styles.sqr()?.matmul(&squares.t()?)? + 1e-8)?.sqrt()?.recip()?;
        y.broadcast_mul(&demod.reshape((batch, out_channels, 1, 1))?)
    }
}

/// A transformer layer over a feature map whose attention is neighbourhood attention: per pixel,
/// a layer norm modulated by the style (`(1 + γ(w))·LN(x) + β(w)`), attention over each head's
/// window (hydra heads: each head its own kernel and dilation, with its own relative-position
/// bias) and a projection, added to the input; then a two-layer MLP, also residual. Everything but
/// the attention acts on each pixel alone, so a pixel's output depends only on the pixels of its
/// windows.
#[derive(Clone, Debug)]
pub struct NaBlock {
    windows: Vec<super::na::Window>,
    channels: usize,
    style: EqualLinear,
    qkv: EqualLinear,
    bias: Tensor,
    proj: EqualLinear,
    mlp_in: EqualLinear,
    mlp_out: EqualLinear,
}

impl NaBlock {
    /// `channels` split evenly over the heads (one window per head).
    pub fn new(vb: &VarBuilder, channels: usize, w_dim: usize, windows: Vec<super::na::Window>) -> Result<Self> {
        let heads = windows.len();
        if heads == 0 || !channels.is_multiple_of(heads) {
            candle_core::bail!("{channels} channels cannot be split evenly over {heads} heads");
        }
        let bias_len: usize = windows.iter().map(super::na::Window::bias_len).sum();
        Ok(Self {
            channels,
            style: EqualLinear::new(&vb.pp("style"), w_dim, 2 * channels, 0.0)?,
            qkv: EqualLinear::new(&vb.pp("qkv"), channels, 3 * channels, 0.0)?,
            bias: vb.get_with_hints(bias_len, "relative_bias", Init::Const(0.0))?,
            proj: EqualLinear::new(&vb.pp("proj"), channels, channels, 0.0)?,
            mlp_in: EqualLinear::new(&vb.pp("mlp_in"), channels, 2 * channels, 0.0)?,
            mlp_out: EqualLinear::new(&vb.pp("mlp_out"), 2 * channels, channels, 0.0)?,
            windows,
        })
    }

    /// `x` (`batch × channels × H × W`) with styles from `w` (`batch × w_dim`); same shape out.
    pub fn forward(&self, x: &Tensor, w: &Tensor) -> Result<Tensor> {
        let (batch, channels, height, width) = x.dims4()?;
        if channels != self.channels {
            candle_core::bail!("the NA block has {} channels, its input {channels}", self.channels);
        }
        let heads = self.windows.len();
        let per_head = channels / heads;
        let pixels = x.permute((0, 2, 3, 1))?.contiguous()?; // B × H × W × C
        let style = self.style.forward(w)?.reshape((batch, 1, 1, 2 * channels))?;
        let (gamma, beta) = (style.narrow(3, 0, channels)?, style.narrow(3, channels, channels)?);
        let normed = candle_nn::ops::layer_norm(
            &pixels,
            &Tensor::ones(channels, x.dtype(), x.device())?,
            &Tensor::zeros(channels, x.dtype(), x.device())?,
            1e-5,
        )?;
        let modulated = normed.broadcast_mul(&(gamma + 1.0)?)?.broadcast_add(&beta)?;
        let qkv = self
            .qkv
            .forward(&modulated)?
            .reshape((batch, height, width, 3, heads, per_head))?
            .permute((3, 0, 4, 1, 2, 5))?
            .contiguous()?;
        #[allow(clippy::cast_precision_loss)]
        let scale = 1.0 / (per_head as f32).sqrt();
        let attended = super::na_op::neighbourhood_attention(&qkv, &self.bias, &self.windows, scale)?
            .permute((0, 2, 3, 1, 4))?
            .reshape((batch, height, width, channels))?;
        let pixels = (pixels + self.proj.forward(&attended)?)?;
        let hidden = self.mlp_in.forward(&pixels)?;
        let hidden = hidden.maximum(&(&hidden * SLOPE)?)?;
        let pixels = (&pixels + self.mlp_out.forward(&hidden)?)?;
        pixels.permute((0, 3, 1, 2))?.contiguous()
    }
}
