//! StegaNeRF's stage-2 loss, the repository's terms and default weights:
//! `w_render · MSE(render, stage-1 render) + w_secret · MSE(D(render), secret) + w_blank ·
//! MSE(D(stage-1 render), blank) + w_class · BCE(C(·), marked?)`.
//!
//! For bit secrets the two decoder terms are binary cross-entropies on the decoder's logits.

use candle_core::{Result, Tensor};

/// The weights of the four terms.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LossWeights {
    pub render: f64,
    pub secret: f64,
    pub blank: f64,
    pub class: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self { render: 1.0, secret: 0.5, blank: 0.5, class: 0.01 }
    }
}

/// How the decoder's output is compared with its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecoderOutput {
    /// Pixel values (an image secret): mean squared error.
    Pixels,
    /// Logits of bits: binary cross-entropy.
    BitLogits,
}

/// Each term (unweighted) and the weighted total.
#[derive(Clone, Debug)]
pub struct LossTerms {
    pub total: Tensor,
    pub render: f64,
    pub secret: f64,
    pub blank: f64,
    pub class: f64,
}

fn mse(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.sub(b)?.sqr()?.mean_all()
}

/// Mean binary cross-entropy of `logits` against 0/1 `targets`, in the stable form
/// `max(z, 0) − z·y + ln(1 + e^(−|z|))`.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let relu = logits.relu()?;
    let softplus = logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    relu.sub(&logits.mul(targets)?)?.add(&softplus)?.mean_all()
}

fn decoder_term(output: DecoderOutput, decoded: &Tensor, target: &Tensor) -> Result<Tensor> {
    match output {
        DecoderOutput::Pixels => mse(decoded, target),
        DecoderOutput::BitLogits => bce_with_logits(decoded, target),
    }
}

/// Inputs of one stage-2 step: the marked render and the stage-1 render of the same patch, the
/// decoder's output for each, its target for a marked view and for a clean one, and the
/// classifier's logits for a batch of views with their labels (1 = marked).
pub struct LossInputs<'a> {
    pub render: &'a Tensor,
    pub reference: &'a Tensor,
    pub decoded_marked: &'a Tensor,
    pub decoded_clean: &'a Tensor,
    pub secret: &'a Tensor,
    pub blank: &'a Tensor,
    pub class_logits: &'a Tensor,
    pub class_labels: &'a Tensor,
    pub output: DecoderOutput,
}

/// The weighted loss and its terms.
pub fn stega_loss(inputs: &LossInputs<'_>, weights: LossWeights) -> Result<LossTerms> {
    let render = mse(inputs.render, inputs.reference)?;
    let secret = decoder_term(inputs.output, inputs.decoded_marked, inputs.secret)?;
    let blank = decoder_term(inputs.output, inputs.decoded_clean, inputs.blank)?;
    let class = bce_with_logits(&inputs.class_logits.flatten_all()?, &inputs.class_labels.flatten_all()?)?;
    let total = render
        .affine(weights.render, 0.0)?
        .add(&secret.affine(weights.secret, 0.0)?)?
        .add(&blank.affine(weights.blank, 0.0)?)?
        .add(&class.affine(weights.class, 0.0)?)?;
    let value = |t: &Tensor| -> Result<f64> { t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>() };
    Ok(LossTerms {
        render: value(&render)?,
        secret: value(&secret)?,
        blank: value(&blank)?,
        class: value(&class)?,
        total,
    })
}

/// The adaptive gradient mask of a parameter group: `(e_min / e_g)³`, where `e_g` is the group's
/// mean |weight| and `e_min` the smallest over the groups (groups of large weights move less).
pub fn masking_factors(group_energies: &[f64]) -> Vec<f64> {
    let e_min = group_energies.iter().copied().filter(|e| *e > 0.0).fold(f64::INFINITY, f64::min);
    group_energies.iter().map(|&e| if e > 0.0 && e_min.is_finite() { (e_min / e).powi(3) } else { 1.0 }).collect()
}

/// The mean |weight| of a tensor (a group's energy for [`masking_factors`]).
pub fn energy(weights: &Tensor) -> Result<f64> {
    weights.abs()?.mean_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()
}
