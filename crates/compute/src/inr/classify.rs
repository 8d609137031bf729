//! INSP-ConvNet on handwritten digits: every digit becomes a small SIREN, a CNN classifies the
//! SIRENs from their closed-form derivative stacks sampled at the pixel centres (value and every
//! partial up to the chosen order as input channels), and the same CNN on the pixels alone is
//! the baseline. Both train on the same split with the same seed.

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::taylor::{self, Partials};
use super::{BatchMode, FitConfig, InrError, SirenWeights};
use crate::control::RunControl;
use crate::image_io::ImageData;
use crate::nets::ModelKind;

/// Side of a digit image.
pub const DIGIT_SIDE: u32 = 8;
const DIGIT_PIXELS: usize = 64;
const CLASSES: usize = 10;

/// Labelled 8×8 gray digits, pixels in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Digits {
    pub images: Vec<[f32; DIGIT_PIXELS]>,
    pub labels: Vec<u8>,
}

impl Digits {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Digit `index` as an image.
    pub fn image(&self, index: usize) -> ImageData {
        ImageData { width: DIGIT_SIDE, height: DIGIT_SIDE, channels: 1, pixels: self.images[index].to_vec() }
    }

    /// The first `n` digits (all when `n` is 0 or larger than the set).
    pub fn truncated(mut self, n: usize) -> Self {
        if n > 0 && n < self.len() {
            self.images.truncate(n);
            self.labels.truncate(n);
        }
        self
    }
}

/// Parses the UCI/scikit-learn digits CSV: 64 pixel values (0–16) then the label (0–9) per line.
pub fn parse_digits(text: &str, name: &str) -> Result<Digits, InrError> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |what: String| InrError::Data(format!("{name}, line {}: {what}", number + 1));
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != DIGIT_PIXELS + 1 {
            return Err(bad(format!(
                "expected 65 comma-separated numbers (64 pixels, then the label), found {}",
                fields.len()
            )));
        }
        let mut image = [0.0_f32; DIGIT_PIXELS];
        for (pixel, field) in image.iter_mut().zip(&fields) {
            let value: f32 = field.trim().parse().map_err(|_| bad(format!("`{field}` is not a number")))?;
            if !(0.0..=16.0).contains(&value) {
                return Err(bad(format!("pixel value {value} is outside 0–16")));
            }
            *pixel = value / 16.0;
        }
        let label: f32 = fields[DIGIT_PIXELS].trim().parse().map_err(|_| bad("the label is not a number".into()))?;
        if !(0.0..=9.0).contains(&label) || label.fract() != 0.0 {
            return Err(bad(format!("label {label} is not a digit 0–9")));
        }
        images.push(image);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        labels.push(label as u8);
    }
    if labels.is_empty() {
        return Err(InrError::Data(format!("{name}: no digits found")));
    }
    if labels.iter().all(|&l| l == labels[0]) {
        return Err(InrError::Data(format!(
            "{name}: all {} digits are labelled {}; a classifier needs at least two classes",
            labels.len(),
            labels[0]
        )));
    }
    Ok(Digits { images, labels })
}

/// Reads a digits CSV, gzip-compressed when the name ends in `.gz`.
pub fn load_digits(path: &Path) -> Result<Digits, InrError> {
    let name = path.display().to_string();
    let bytes = crate::files::read_capped(path, crate::files::TABLE)
        .map_err(|e| InrError::Data(format!("{name}: cannot read ({e})")))?;
    digits_from_bytes(&bytes, &name)
}

fn digits_from_bytes(bytes: &[u8], name: &str) -> Result<Digits, InrError> {
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let text = crate::files::read_capped_from(flate2::read::GzDecoder::new(bytes), crate::files::TABLE)
            .map_err(|e| InrError::Data(format!("{name}: not a readable gzip text file ({e})")))?;
        String::from_utf8(text).map_err(|_| InrError::Data(format!("{name}: not a text file")))?
    } else {
        String::from_utf8(bytes.to_vec()).map_err(|_| InrError::Data(format!("{name}: not a text file")))?
    };
    parse_digits(&text, name)
}

/// The 1797 digits shipped with the program.
pub fn builtin_digits() -> Digits {
    digits_from_bytes(include_bytes!("../../../../assets/digits.csv.gz"), "digits.csv.gz")
        .unwrap_or_else(|e| panic!("the bundled digits are valid: {e}"))
}

/// Settings of the comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifyConfig {
    /// Digits used (0: all).
    pub limit: usize,
    /// SIREN per digit: width, hidden layers, ω₀, steps.
    pub inr_width: usize,
    pub inr_layers: usize,
    pub inr_omega0: f32,
    pub inr_steps: u64,
    /// Highest derivative order in the stack.
    pub order: usize,
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f64,
    /// Share of the digits held out for testing.
    pub test_fraction: f32,
    pub seed: u64,
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        Self {
            limit: 0,
            inr_width: 32,
            inr_layers: 2,
            inr_omega0: 10.0,
            inr_steps: 300,
            order: 2,
            epochs: 30,
            batch: 64,
            learning_rate: 2e-3,
            test_fraction: 0.2,
            seed: 0,
        }
    }
}

impl ClassifyConfig {
    pub fn validate(&self) -> Result<(), InrError> {
        self.fit_config().validate(1)?;
        Partials::new(self.order)?;
        if self.epochs == 0 || self.batch == 0 {
            return Err(InrError::Config("epochs and batch must be at least 1".into()));
        }
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            return Err(InrError::Config(format!("the test share must be in (0, 1), got {}", self.test_fraction)));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return Err(InrError::Config(format!("learning rate must be in (0, 1), got {}", self.learning_rate)));
        }
        Ok(())
    }

    fn fit_config(&self) -> FitConfig {
        FitConfig {
            width: self.inr_width,
            hidden_layers: self.inr_layers,
            omega0: self.inr_omega0,
            learning_rate: 1e-3,
            steps: self.inr_steps,
            batch: BatchMode::Full,
            seed: self.seed,
            snapshot_interval_secs: 0.0,
        }
    }
}

/// One classifier's outcome on the test split.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassifierReport {
    pub name: String,
    pub input_channels: usize,
    pub accuracy: f64,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<[u32; CLASSES]>,
    /// Per epoch: mean training loss and test accuracy.
    pub history: Vec<(f64, f64)>,
    pub seconds: f64,
}

/// Both classifiers, the INRs' fit quality and the split.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassifySummary {
    pub insp: ClassifierReport,
    pub cnn: ClassifierReport,
    /// Mean PSNR of the digit INRs against their pixels.
    pub inr_psnr_db: f64,
    pub inr_seconds: f64,
    pub train: usize,
    pub test: usize,
}

/// Progress: what stage, how far (`done` of `total`).
#[derive(Clone, Debug, PartialEq)]
pub enum ClassifyProgress {
    FittingInrs { done: usize, total: usize },
    Training { which: &'static str, epoch: usize, epochs: usize, test_accuracy: f64 },
}

/// Runs the whole comparison; `Ok(None)` when cancelled.
pub fn run_classification(
    digits: &Digits,
    config: &ClassifyConfig,
    control: &RunControl,
    on_progress: &mut dyn FnMut(ClassifyProgress),
) -> Result<Option<ClassifySummary>, InrError> {
    config.validate()?;
    let digits = digits.clone().truncated(config.limit);
    let n = digits.len();
    if n < 20 {
        return Err(InrError::Config(format!("need at least 20 digits, got {n}")));
    }
    // One SIREN per digit, fitted in parallel chunks.
    let start = Instant::now();
    let fit = config.fit_config();
    let mut inrs: Vec<SirenWeights> = Vec::with_capacity(n);
    let mut psnr_sum = 0.0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        if control.is_cancelled() {
            return Ok(None);
        }
        let fitted: Vec<Result<(SirenWeights, f64), InrError>> = chunk
            .par_iter()
            .map(|&index| {
                let summary = super::fit(&digits.image(index), &fit, None, &RunControl::new(), &mut |_| {})?;
                Ok((summary.weights, summary.psnr_db))
            })
            .collect();
        for result in fitted {
            let (weights, psnr) = result?;
            inrs.push(weights);
            psnr_sum += psnr.min(100.0);
        }
        on_progress(ClassifyProgress::FittingInrs { done: inrs.len(), total: n });
    }
    let inr_seconds = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let inr_psnr_db = psnr_sum / n as f64;

    // Inputs: (n, C, 8, 8) — the derivative stack, or the pixels.
    let partials = Partials::new(config.order)?;
    let p = partials.len();
    let mut stacks = vec![0.0_f32; n * p * DIGIT_PIXELS];
    for (index, inr) in inrs.iter().enumerate() {
        let stack = taylor::stack_at_pixels(inr, &partials, DIGIT_SIDE, DIGIT_SIDE)?;
        for (pixel, values) in stack.chunks_exact(p).enumerate() {
            for (k, &v) in values.iter().enumerate() {
                stacks[(index * p + k) * DIGIT_PIXELS + pixel] = v;
            }
        }
    }
    let mut pixels: Vec<f32> = digits.images.iter().flatten().copied().collect();

    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed ^ 0x5_EA1));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let test_count = ((n as f32 * config.test_fraction).round() as usize).clamp(1, n - 1);
    let (test, train) = order.split_at(test_count);
    let standardise = |data: &mut [f32], channels: usize| {
        for c in 0..channels {
            let values =
                || train.iter().flat_map(|&i| data[(i * channels + c) * DIGIT_PIXELS..][..DIGIT_PIXELS].iter());
            #[allow(clippy::cast_precision_loss)]
            let count = (train.len() * DIGIT_PIXELS) as f64;
            let mean = values().map(|&v| f64::from(v)).sum::<f64>() / count;
            let std = (values().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / count).sqrt().max(1e-8);
            for i in 0..n {
                for v in &mut data[(i * channels + c) * DIGIT_PIXELS..][..DIGIT_PIXELS] {
                    #[allow(clippy::cast_possible_truncation)]
                    {
                        *v = ((f64::from(*v) - mean) / std) as f32;
                    }
                }
            }
        }
    };
    standardise(&mut stacks, p);
    standardise(&mut pixels, 1);
    let data = Split { labels: &digits.labels, train, test };
    let Some(insp) = train_cnn("INSP-ConvNet (derivative stack)", &stacks, p, &data, config, control, on_progress)?
    else {
        return Ok(None);
    };
    let Some(cnn) = train_cnn("CNN (pixels)", &pixels, 1, &data, config, control, on_progress)? else {
        return Ok(None);
    };
    Ok(Some(ClassifySummary { insp, cnn, inr_psnr_db, inr_seconds, train: train.len(), test: test.len() }))
}

struct Split<'a> {
    labels: &'a [u8],
    train: &'a [usize],
    test: &'a [usize],
}

/// The small CNN (conv3×3(C→16) · ReLU · maxpool 2 · conv3×3(16→32) · ReLU · maxpool 2 ·
/// linear(128→10)) on 8×8 inputs of `channels` channels.
struct SmallCnn {
    vars: Vec<Var>,
}

impl SmallCnn {
    fn new(channels: usize, seed: u64, device: &Device) -> candle_core::Result<Self> {
        let layers = ModelKind::Cnn.layers((channels, 8, 8), 0, CLASSES).map_err(candle_core::Error::msg)?;
        let shapes: Vec<Vec<usize>> = layers.into_iter().map(|(_, shape)| shape).collect();
        Ok(Self { vars: crate::nets::init_params(&shapes, seed, device)? })
    }

    fn vars(&self) -> Vec<Var> {
        self.vars.clone()
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        ModelKind::Cnn.forward(x, &crate::nets::tensors(&self.vars))
    }
}

fn batch_tensor(data: &[f32], channels: usize, indices: &[usize], device: &Device) -> candle_core::Result<Tensor> {
    let mut values = Vec::with_capacity(indices.len() * channels * DIGIT_PIXELS);
    for &i in indices {
        values.extend_from_slice(&data[i * channels * DIGIT_PIXELS..(i + 1) * channels * DIGIT_PIXELS]);
    }
    Tensor::from_vec(values, (indices.len(), channels, 8, 8), device)
}

fn train_cnn(
    name: &'static str,
    data: &[f32],
    channels: usize,
    split: &Split<'_>,
    config: &ClassifyConfig,
    control: &RunControl,
    on_progress: &mut dyn FnMut(ClassifyProgress),
) -> Result<Option<ClassifierReport>, InrError> {
    let device = Device::Cpu;
    let start = Instant::now();
    let model = SmallCnn::new(channels, config.seed, &device)?;
    let mut optimizer = AdamW::new(
        model.vars(),
        ParamsAdamW { lr: config.learning_rate, weight_decay: 0.0, ..ParamsAdamW::default() },
    )?;
    let labels_of = |indices: &[usize]| -> candle_core::Result<Tensor> {
        Tensor::from_vec(
            indices.iter().map(|&i| u32::from(split.labels[i])).collect::<Vec<u32>>(),
            indices.len(),
            &device,
        )
    };
    let test_x = batch_tensor(data, channels, split.test, &device)?;
    let evaluate = |model: &SmallCnn| -> candle_core::Result<(f64, Vec<[u32; CLASSES]>)> {
        let predicted: Vec<u32> = model.forward(&test_x)?.argmax(1)?.to_vec1()?;
        let mut confusion = vec![[0_u32; CLASSES]; CLASSES];
        let mut correct = 0;
        for (&i, &p) in split.test.iter().zip(&predicted) {
            let truth = usize::from(split.labels[i]);
            confusion[truth][p as usize] += 1;
            correct += usize::from(truth == p as usize);
        }
        #[allow(clippy::cast_precision_loss)]
        Ok((correct as f64 / split.test.len() as f64, confusion))
    };
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xC_1A55);
    let mut order = split.train.to_vec();
    let mut history = Vec::new();
    for epoch in 1..=config.epochs {
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        let mut batches = 0;
        for batch in order.chunks(config.batch) {
            if !control.checkpoint() {
                return Ok(None);
            }
            let logits = model.forward(&batch_tensor(data, channels, batch, &device)?)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &labels_of(batch)?)?;
            optimizer.backward_step(&loss)?;
            loss_sum += f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?);
            batches += 1;
        }
        let (accuracy, _) = evaluate(&model)?;
        #[allow(clippy::cast_precision_loss)]
        history.push((loss_sum / f64::from(batches.max(1)), accuracy));
        on_progress(ClassifyProgress::Training { which: name, epoch, epochs: config.epochs, test_accuracy: accuracy });
    }
    let (accuracy, confusion) = evaluate(&model)?;
    Ok(Some(ClassifierReport {
        name: name.to_owned(),
        input_channels: channels,
        accuracy,
        confusion,
        history,
        seconds: start.elapsed().as_secs_f64(),
    }))
}
