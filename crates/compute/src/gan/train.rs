//! Training the NA generator against the discriminator: the non-saturating logistic loss, R1 on
//! real images every step, Adam with β = (0, 0.99) for both networks, and an exponential moving
//! average of the generator's parameters (the copy that is sampled from).

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::discriminator::Discriminator;
use super::generator::{Generator, GeneratorConfig};

/// Training settings. The repository trains at 256² with G 4e-5 : D 2e-4 and R1 γ = 10; here the
/// ratio of 1 : 5 is kept at ten times the rates (small networks, few steps), and γ is scaled
/// with the number of pixels, γ = 10 · (size / 256)².
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GanConfig {
    pub generator: GeneratorConfig,
    pub d_channels: usize,
    pub batch: usize,
    pub lr_g: f64,
    pub lr_d: f64,
    /// `None`: 10 · (size / 256)².
    pub r1_gamma: Option<f64>,
    pub ema_decay: f64,
    pub seed: u64,
}

impl Default for GanConfig {
    fn default() -> Self {
        Self {
            generator: GeneratorConfig {
                z_dim: 32,
                w_dim: 32,
                mapping_layers: 3,
                size: 16,
                channels: 32,
                heads: 4,
                kernel: 5,
                ..GeneratorConfig::default()
            },
            d_channels: 32,
            batch: 32,
            lr_g: 4e-4,
            lr_d: 2e-3,
            r1_gamma: None,
            ema_decay: 0.995,
            seed: 0,
        }
    }
}

impl GanConfig {
    pub fn gamma(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let ratio = self.generator.size as f64 / 256.0;
        self.r1_gamma.unwrap_or(10.0 * ratio * ratio)
    }
}

/// One step's losses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GanLosses {
    pub d: f64,
    pub g: f64,
    pub r1: f64,
}

/// `log(1 + eˣ)`, stable for large |x|.
fn softplus(x: &Tensor) -> Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// Images `n × 1 × side × side` in [−1, 1] from `images` (each `from × from`, values in [0, 1]),
/// resized bilinearly (pixel centres aligned).
pub fn prepare_images(images: &[Vec<f32>], from: usize, side: usize, device: &Device) -> Result<Tensor> {
    let mut out = Vec::with_capacity(images.len() * side * side);
    #[allow(clippy::cast_precision_loss)]
    let ratio = from as f32 / side as f32;
    for image in images {
        if image.len() != from * from {
            candle_core::bail!("an image holds {} values, expected {}", image.len(), from * from);
        }
        for y in 0..side {
            for x in 0..side {
                #[allow(clippy::cast_precision_loss)]
                let (sy, sx) = (((y as f32 + 0.5) * ratio - 0.5).max(0.0), ((x as f32 + 0.5) * ratio - 0.5).max(0.0));
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let (y0, x0) = ((sy as usize).min(from - 1), (sx as usize).min(from - 1));
                let (y1, x1) = ((y0 + 1).min(from - 1), (x0 + 1).min(from - 1));
                #[allow(clippy::cast_precision_loss)]
                let (fy, fx) = (sy - y0 as f32, sx - x0 as f32);
                let at = |yy: usize, xx: usize| image[yy * from + xx];
                let v = (1.0 - fy) * ((1.0 - fx) * at(y0, x0) + fx * at(y0, x1))
                    + fy * ((1.0 - fx) * at(y1, x0) + fx * at(y1, x1));
                out.push(2.0 * v - 1.0);
            }
        }
    }
    Tensor::from_vec(out, (images.len(), 1, side, side), device)
}

pub struct GanTrainer {
    pub config: GanConfig,
    pub generator: Generator,
    pub discriminator: Discriminator,
    /// The moving average of the generator's parameters, by name.
    ema: Vec<(Var, Tensor)>,
    g_opt: AdamW,
    d_opt: AdamW,
    data: Tensor,
    rng: ChaCha8Rng,
    pub steps: u64,
}

impl GanTrainer {
    /// `data`: real images, `n × 1 × size × size` in [−1, 1].
    pub fn new(config: GanConfig, data: Tensor, device: &Device) -> Result<Self> {
        let size = config.generator.size;
        let (n, c, h, w) = data.dims4()?;
        if n == 0 || c != 1 || h != size || w != size {
            candle_core::bail!("the training images must be n × 1 × {size} × {size}, got {n} × {c} × {h} × {w}");
        }
        if config.batch == 0 {
            candle_core::bail!("the batch must hold at least one image");
        }
        let generator = Generator::new(config.generator, config.seed, device)?;
        let discriminator =
            Discriminator::new(1, size, config.d_channels, DType::F32, config.seed.wrapping_add(1), device)?;
        let adam = |lr| ParamsAdamW { lr, beta1: 0.0, beta2: 0.99, eps: 1e-8, weight_decay: 0.0 };
        let g_opt = AdamW::new(generator.vars.all_vars(), adam(config.lr_g))?;
        let d_opt = AdamW::new(discriminator.vars.all_vars(), adam(config.lr_d))?;
        let ema = generator
            .vars
            .all_vars()
            .into_iter()
            .map(|v| Ok((v.clone(), v.as_tensor().copy()?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            config,
            generator,
            discriminator,
            ema,
            g_opt,
            d_opt,
            data,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            steps: 0,
        })
    }

    fn latents(&mut self, n: usize) -> Result<Tensor> {
        let z: Vec<f32> = (0..n * self.config.generator.z_dim).map(|_| self.rng.sample(StandardNormal)).collect();
        Tensor::from_vec(z, (n, self.config.generator.z_dim), self.data.device())
    }

    fn real_batch(&mut self) -> Result<Tensor> {
        let n = u32::try_from(self.data.dim(0)?).map_err(candle_core::Error::wrap)?;
        let picks: Vec<u32> = (0..self.config.batch).map(|_| self.rng.random_range(0..n)).collect();
        let index = Tensor::from_vec(picks, self.config.batch, self.data.device())?;
        self.data.index_select(&index, 0)
    }

    /// One discriminator step (with R1) and one generator step; the EMA follows.
    pub fn step(&mut self) -> Result<GanLosses> {
        let real = self.real_batch()?;
        let z = self.latents(self.config.batch)?;
        let fake = self.generator.generate(&z, None)?.detach();
        let (r1, real_scores) = self.discriminator.r1(&real, self.config.gamma())?;
        let fake_scores = self.discriminator.forward(&fake)?.scores;
        let d_loss = ((softplus(&fake_scores)?.mean_all()? + softplus(&real_scores.neg()?)?.mean_all()?)? + &r1)?;
        self.d_opt.backward_step(&d_loss)?;

        let z = self.latents(self.config.batch)?;
        let fake = self.generator.generate(&z, None)?;
        let g_loss = softplus(&self.discriminator.forward(&fake)?.scores.neg()?)?.mean_all()?;
        self.g_opt.backward_step(&g_loss)?;

        let decay = self.config.ema_decay;
        for (var, average) in &mut self.ema {
            *average = ((&*average * decay)? + (var.as_tensor() * (1.0 - decay))?)?;
        }
        self.steps += 1;
        let scalar = |t: &Tensor| -> Result<f64> { t.to_dtype(DType::F64)?.to_scalar::<f64>() };
        Ok(GanLosses { d: scalar(&d_loss)?, g: scalar(&g_loss)?, r1: scalar(&r1)? })
    }

    /// Images from `z` by the averaged generator (its parameters swapped in for the call).
    pub fn sample_ema(&self, z: &Tensor, truncation: Option<(&Tensor, f64)>) -> Result<Tensor> {
        let live: Vec<Tensor> = self.ema.iter().map(|(v, _)| v.as_tensor().copy()).collect::<Result<_>>()?;
        for (var, average) in &self.ema {
            var.set(average)?;
        }
        let images = self.generator.generate(z, truncation);
        for ((var, _), value) in self.ema.iter().zip(&live) {
            var.set(value)?;
        }
        images
    }
}
