//! The small classifiers the labs train as candle graphs (see ARCHITECTURE.md, *Models*): an MLP
//! with two hidden ReLU layers and a CNN of two 3×3 convolutions, kept as parameter lists
//! `[w₀, b₀, w₁, b₁, …]` so that callers can train them, mask their weights, or differentiate at
//! other parameter values (the pruning scores do all three).

use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Which small classifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ModelKind {
    /// Two hidden ReLU layers of `hidden` units.
    #[default]
    Mlp,
    /// conv3×3(C→16) · ReLU · pool · conv3×3(16→32) · ReLU · pool · linear.
    Cnn,
}

impl ModelKind {
    pub const ALL: [Self; 2] = [Self::Mlp, Self::Cnn];

    pub fn label(self) -> &'static str {
        match self {
            Self::Mlp => "MLP",
            Self::Cnn => "small CNN",
        }
    }

    /// Each layer's name and weight shape (`out × in`, or `out × in × 3 × 3`) for `c × h × w`
    /// images and `classes` outputs; `hidden` is the MLP's width. The CNN needs images of at
    /// least 4×4.
    pub fn layers(
        self,
        (c, h, w): (usize, usize, usize),
        hidden: usize,
        classes: usize,
    ) -> Result<Vec<(&'static str, Vec<usize>)>, String> {
        Ok(match self {
            Self::Mlp => {
                vec![("fc1", vec![hidden, c * h * w]), ("fc2", vec![hidden, hidden]), ("fc3", vec![classes, hidden])]
            }
            Self::Cnn => {
                if h < 4 || w < 4 {
                    return Err(format!("the CNN needs images of at least 4×4, got {h}×{w}"));
                }
                vec![
                    ("conv1", vec![16, c, 3, 3]),
                    ("conv2", vec![32, 16, 3, 3]),
                    ("fc", vec![classes, 32 * (h / 4) * (w / 4)]),
                ]
            }
        })
    }

    /// Logits of `x` (`n × C × H × W`) through the network with parameters `params`
    /// (`[w₀, b₀, w₁, b₁, …]` of the shapes [`ModelKind::layers`] gives).
    pub fn forward(self, x: &Tensor, params: &[Tensor]) -> candle_core::Result<Tensor> {
        let layers = params.len() / 2;
        match self {
            Self::Mlp => {
                let mut h = x.flatten_from(1)?;
                for l in 0..layers {
                    h = h.matmul(&params[2 * l].t()?)?.broadcast_add(&params[2 * l + 1])?;
                    if l + 1 < layers {
                        h = h.relu()?;
                    }
                }
                Ok(h)
            }
            Self::Cnn => {
                let conv = |x: &Tensor, w: &Tensor, b: &Tensor| -> candle_core::Result<Tensor> {
                    x.conv2d(w, 1, 1, 1, 1)?.broadcast_add(&b.reshape((1, (), 1, 1))?)?.relu()?.max_pool2d(2)
                };
                let mut h = x.clone();
                for l in 0..layers - 1 {
                    h = conv(&h, &params[2 * l], &params[2 * l + 1])?;
                }
                let last = 2 * (layers - 1);
                h.flatten_from(1)?.matmul(&params[last].t()?)?.broadcast_add(&params[last + 1])
            }
        }
    }
}

/// Trainable parameters for layers of weight shapes `shapes`: each weight and then its bias drawn
/// uniformly in ±1/√fan-in (PyTorch's default for linear and convolution layers), from `seed`.
pub fn init_params(shapes: &[Vec<usize>], seed: u64, device: &Device) -> candle_core::Result<Vec<Var>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut vars = Vec::with_capacity(2 * shapes.len());
    for shape in shapes {
        let fan_in: usize = shape[1..].iter().product();
        #[allow(clippy::cast_precision_loss)]
        let bound = (1.0 / fan_in as f32).sqrt();
        let count: usize = shape.iter().product();
        let weights: Vec<f32> = (0..count).map(|_| rng.random_range(-bound..=bound)).collect();
        let bias: Vec<f32> = (0..shape[0]).map(|_| rng.random_range(-bound..=bound)).collect();
        vars.push(Var::from_tensor(&Tensor::from_vec(weights, shape.as_slice(), device)?)?);
        vars.push(Var::from_tensor(&Tensor::from_vec(bias, shape[0], device)?)?);
    }
    Ok(vars)
}

/// The tensors of `vars`, for [`ModelKind::forward`].
pub fn tensors(vars: &[Var]) -> Vec<Tensor> {
    vars.iter().map(|v| v.as_tensor().clone()).collect()
}
