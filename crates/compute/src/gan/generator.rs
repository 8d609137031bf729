//! The style-based generator built on neighbourhood attention: a mapping network (z → w), a
//! learned constant 4×4 input, and per resolution (4, 8, …, the output size) two modulated 3×3
//! convolutions (the first after a nearest-neighbour upsampling) and one NA transformer block,
//! with a modulated 1×1 "to gray" head per resolution whose outputs are upsampled and summed
//! (StyleGAN2's skip generator).

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::layers::{Mapping, ModConv, NaBlock};
use super::na::{self, Window};

/// How the attention heads of each block see the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attention {
    /// Every head a `k × k` window at dilation 1.
    Local,
    /// Half the heads local, half at dilation resolution / 8 (sparse-global), where the map is
    /// at least 16 wide; the paper's hydra heads.
    Hydra,
    /// Every head sees the whole map.
    Full,
}

/// The generator's sizes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    pub z_dim: usize,
    pub w_dim: usize,
    pub mapping_layers: usize,
    /// Output side: 16 or 32 (any power of two ≥ 8).
    pub size: usize,
    pub channels: usize,
    pub heads: usize,
    /// The attention kernel of local and sparse-global heads (odd).
    pub kernel: usize,
    pub attention: Attention,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            z_dim: 64,
            w_dim: 64,
            mapping_layers: 4,
            size: 32,
            channels: 64,
            heads: 4,
            kernel: 7,
            attention: Attention::Hydra,
        }
    }
}

impl GeneratorConfig {
    /// The resolutions of the blocks: 4, 8, …, size.
    pub fn resolutions(&self) -> Vec<usize> {
        std::iter::successors(Some(4), |&r| (r < self.size).then_some(r * 2)).collect()
    }

    /// Each head's window at a `side × side` resolution. At 4×4 every kind is full attention (as
    /// in the paper); a kernel wider than the map shrinks to the largest odd one that fits.
    pub fn windows(&self, side: usize) -> Result<Vec<Window>> {
        if side <= 4 || self.attention == Attention::Full {
            return Ok(vec![Window::full(side); self.heads]);
        }
        let largest_odd = if side.is_multiple_of(2) { side - 1 } else { side };
        let k = self.kernel.min(largest_odd);
        let local = Window::new(k, 1);
        let groups = match self.attention {
            Attention::Hydra if side >= 16 => {
                let dilation = side / 8;
                let k_sparse = k.min(side / dilation - usize::from((side / dilation).is_multiple_of(2)));
                vec![local, Window::new(k_sparse, dilation)]
            }
            _ => vec![local],
        };
        na::hydra(self.heads, &groups).map_err(candle_core::Error::wrap)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if !self.size.is_power_of_two() || !(8..=64).contains(&self.size) {
            return Err(format!("the output size must be a power of two from 8 to 64, got {}", self.size));
        }
        if self.heads == 0 || !self.channels.is_multiple_of(self.heads) {
            return Err(format!("{} channels cannot be split over {} heads", self.channels, self.heads));
        }
        if self.attention == Attention::Hydra && !self.heads.is_multiple_of(2) {
            return Err(format!("hydra attention splits the heads in two halves; {} heads", self.heads));
        }
        if self.kernel.is_multiple_of(2) || self.kernel == 0 {
            return Err(format!("the attention kernel must be odd, got {}", self.kernel));
        }
        if self.z_dim == 0 || self.w_dim == 0 || self.mapping_layers == 0 || self.channels == 0 {
            return Err("the latent sizes, mapping layers and channels must be at least 1".into());
        }
        Ok(())
    }
}

/// One resolution's layers.
struct Stage {
    conv0: ModConv,
    conv1: ModConv,
    block: NaBlock,
    to_gray: ModConv,
    gray_bias: Tensor,
}

/// The generator and its parameters (in `vars`, for the optimiser and for saving).
pub struct Generator {
    pub config: GeneratorConfig,
    pub vars: VarMap,
    mapping: Mapping,
    constant: Tensor,
    stages: Vec<Stage>,
}

/// LeakyReLU (slope 0.2).
fn leaky(x: &Tensor) -> Result<Tensor> {
    x.maximum(&(x * 0.2)?)
}

impl Generator {
    /// A generator with parameters drawn from `seed`.
    pub fn new(config: GeneratorConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate().map_err(candle_core::Error::msg)?;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, device);
        let mapping = Mapping::new(&vb.pp("mapping"), config.z_dim, config.w_dim, config.mapping_layers)?;
        let c = config.channels;
        let constant = vb.get_with_hints((1, c, 4, 4), "constant", Init::Randn { mean: 0.0, stdev: 1.0 })?;
        let stages = config
            .resolutions()
            .into_iter()
            .map(|side| {
                let vb = vb.pp(format!("r{side}"));
                Ok(Stage {
                    conv0: ModConv::new(&vb.pp("conv0"), c, c, 3, config.w_dim, true)?,
                    conv1: ModConv::new(&vb.pp("conv1"), c, c, 3, config.w_dim, true)?,
                    block: NaBlock::new(&vb.pp("na"), c, config.w_dim, config.windows(side)?)?,
                    to_gray: ModConv::new(&vb.pp("to_gray"), c, 1, 1, config.w_dim, false)?,
                    gray_bias: vb.get_with_hints((1, 1, 1, 1), "gray_bias", Init::Const(0.0))?,
                })
            })
            .collect::<Result<_>>()?;
        super::layers::redraw_seeded(&vars, seed)?;
        Ok(Self { config, vars, mapping, constant, stages })
    }

    /// `w` of each latent, `batch × w_dim`.
    pub fn map(&self, z: &Tensor) -> Result<Tensor> {
        self.mapping.forward(z)
    }

    /// How many style inputs the synthesis takes: four per resolution (two convolutions, the NA
    /// block and the gray head). Style mixing gives the first ones one `w` and the rest another.
    pub fn style_count(&self) -> usize {
        4 * self.stages.len()
    }

    /// Images (`batch × 1 × size × size`) from one `w` per style input.
    pub fn synthesis(&self, ws: &[Tensor]) -> Result<Tensor> {
        if ws.len() != self.style_count() {
            candle_core::bail!("the synthesis takes {} styles, got {}", self.style_count(), ws.len());
        }
        let batch = ws[0].dim(0)?;
        let mut x = self.constant.repeat((batch, 1, 1, 1))?;
        let mut image: Option<Tensor> = None;
        for (i, stage) in self.stages.iter().enumerate() {
            let w = &ws[4 * i..4 * i + 4];
            if i > 0 {
                let (_, _, h, wd) = x.dims4()?;
                x = x.upsample_nearest2d(2 * h, 2 * wd)?;
            }
            x = leaky(&stage.conv0.forward(&x, &w[0])?)?;
            x = leaky(&stage.conv1.forward(&x, &w[1])?)?;
            x = stage.block.forward(&x, &w[2])?;
            let gray = stage.to_gray.forward(&x, &w[3])?.broadcast_add(&stage.gray_bias)?;
            image = Some(match image {
                None => gray,
                Some(previous) => {
                    let (_, _, h, wd) = previous.dims4()?;
                    (previous.upsample_nearest2d(2 * h, 2 * wd)? + gray)?
                }
            });
        }
        image.ok_or_else(|| candle_core::Error::msg("the generator has no stage"))
    }

    /// Images from latents `z` (`batch × z_dim`): one `w` for every style input, pulled towards
    /// `w_mean` by `truncation` (1: none) when a mean is given.
    pub fn generate(&self, z: &Tensor, truncation: Option<(&Tensor, f64)>) -> Result<Tensor> {
        let mut w = self.map(z)?;
        if let Some((mean, psi)) = truncation {
            w = (mean.broadcast_add(&(w.broadcast_sub(mean)? * psi)?))?;
        }
        self.synthesis(&vec![w; self.style_count()])
    }
}

/// A gallery of `images` (`n × 1 × s × s`, values in [−1, 1]) in rows of `columns`, with a
/// one-pixel gap, as a gray image in [0, 1].
pub fn image_grid(images: &Tensor, columns: usize) -> Result<crate::image_io::ImageData> {
    let (n, channels, side, side_w) = images.dims4()?;
    if channels != 1 || side != side_w || n == 0 || columns == 0 {
        candle_core::bail!("a grid takes n × 1 × s × s images, got {n} × {channels} × {side} × {side_w}");
    }
    let values = images.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let columns = columns.min(n);
    let rows = n.div_ceil(columns);
    let (width, height) = (columns * (side + 1) - 1, rows * (side + 1) - 1);
    let mut pixels = vec![0.0_f32; width * height];
    for (k, image) in values.chunks_exact(side * side).enumerate() {
        let (top, left) = ((k / columns) * (side + 1), (k % columns) * (side + 1));
        for y in 0..side {
            for x in 0..side {
                pixels[(top + y) * width + left + x] = (0.5 * (image[y * side + x] + 1.0)).clamp(0.0, 1.0);
            }
        }
    }
    let dim = |v: usize| u32::try_from(v).map_err(candle_core::Error::wrap);
    crate::image_io::ImageData::new(dim(width)?, dim(height)?, 1, pixels).map_err(candle_core::Error::wrap)
}

impl Generator {
    /// Writes the parameters to a safetensors file.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        self.vars.save(path).map_err(|e| candle_core::Error::msg(format!("could not write {}: {e}", path.display())))
    }

    /// A generator of `config` with the parameters of a file [`Generator::save`] wrote; a file
    /// that is not safetensors, lacks a tensor, or holds one of another shape is refused with
    /// its name and what to do.
    pub fn load(config: GeneratorConfig, path: &std::path::Path, device: &Device) -> Result<Self> {
        let mut generator = Self::new(config, 0, device)?;
        generator.vars.load(path).map_err(|e| {
            candle_core::Error::msg(format!(
                "{}: not this generator's parameters ({e}); it must be the generator.safetensors written with the same sizes as its gan.json",
                path.display()
            ))
        })?;
        Ok(generator)
    }
}
