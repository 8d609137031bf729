//! The style-based generator's layers as candle graphs: the mapping network (z → w) and the
//! modulated convolution (StyleGAN2's weight modulation and demodulation). Weights are stored at
//! unit variance and scaled by `1/√fan-in` when used (the equalised learning rate).

use candle_core::{D, Result, Tensor};
use candle_nn::{Init, VarBuilder};

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
        x.matmul(&(&self.weight * self.scale)?.t()?)?.broadcast_add(&self.bias)
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
