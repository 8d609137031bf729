//! Hard samples for lesion localization: a small segmentation network (a per-pixel MLP over a
//! multi-scale box-mean pyramid, trained with the lab's fused MLP on the CPU), dense and magnitude-pruned populations, samples whose modal masks differ
//! between the populations (the PIE rule carried over to masks: the IoU of the two pixelwise
//! majority masks below a threshold), training that attends to them, and mean IoU and Dice
//! overall, per group and on the hard samples — supervised, or with only a fraction of the masks
//! labelled and pseudo-labels for the rest.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::HtlError;
use super::attend::{AttendConfig, sample_weights};
use super::lesion::{LesionData, LesionSet};
use super::mlp::{Mlp, TrainSpec};
use crate::control::RunControl;
use crate::prune::data::ImageSet;

/// How the segmentation populations are trained and compared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SegConfig {
    pub models: usize,
    /// Units of each of the two hidden layers.
    pub hidden: usize,
    pub epochs: usize,
    pub finetune_epochs: usize,
    /// Pixels per batch.
    pub batch: usize,
    pub learning_rate: f32,
    pub sparsity: f64,
    pub seed: u64,
    /// A sample is hard when the IoU of the dense and pruned majority masks is below this.
    pub agreement_threshold: f64,
    /// Fraction of the training masks used as labels; the rest get pseudo-labels (1: supervised).
    pub labelled_fraction: f64,
}

impl Default for SegConfig {
    fn default() -> Self {
        Self {
            models: 3,
            hidden: 32,
            epochs: 8,
            finetune_epochs: 3,
            batch: 512,
            learning_rate: 2e-3,
            sparsity: 0.5,
            seed: 0,
            agreement_threshold: 0.9,
            labelled_fraction: 1.0,
        }
    }
}

impl SegConfig {
    pub fn validate(&self) -> Result<(), HtlError> {
        let check = |ok: bool, what: String| if ok { Ok(()) } else { Err(HtlError::Config(what)) };
        check((1..=32).contains(&self.models), format!("models must be 1 to 32, got {}", self.models))?;
        check((2..=1024).contains(&self.hidden), format!("hidden units must be 2 to 1024, got {}", self.hidden))?;
        check((1..=500).contains(&self.epochs), format!("epochs must be 1 to 500, got {}", self.epochs))?;
        check(
            self.finetune_epochs <= 500,
            format!("fine-tuning epochs must be at most 500, got {}", self.finetune_epochs),
        )?;
        check((1..=65_536).contains(&self.batch), format!("the batch must be 1 to 65536 pixels, got {}", self.batch))?;
        check(
            self.learning_rate > 0.0 && self.learning_rate <= 1.0,
            format!("the learning rate must be in (0, 1], got {}", self.learning_rate),
        )?;
        check((0.0..=0.99).contains(&self.sparsity), format!("the sparsity must be 0 to 0.99, got {}", self.sparsity))?;
        check(
            (0.0..=1.0).contains(&self.agreement_threshold),
            format!("the agreement threshold must be 0 to 1, got {}", self.agreement_threshold),
        )?;
        check(
            self.labelled_fraction > 0.0 && self.labelled_fraction <= 1.0,
            format!("the labelled fraction must be in (0, 1], got {}", self.labelled_fraction),
        )
    }
}

/// Scales (box sides, pixels) of the means each pixel's features sample.
pub const SCALES: [usize; 4] = [1, 2, 4, 8];
/// Features per pixel: 3 colours × a 3×3 grid × each scale.
pub const FEATURES: usize = 3 * 9 * SCALES.len();

/// Every pixel's features, rows `n·side² × FEATURES`: at each scale `s`, the mean colour of the
/// `s × s` boxes centred on the pixel and on its 8 neighbours `s` pixels away (clamped to the
/// image) — a fixed multi-scale pyramid that the network reads like a first convolution layer.
pub fn pixel_features(set: &LesionSet) -> Vec<f32> {
    let side = set.side;
    let n = set.pixels();
    let stride = side + 1;
    let mut out = Vec::with_capacity(set.len() * n * FEATURES);
    let mut integral = vec![0.0_f64; 3 * stride * stride];
    for i in 0..set.len() {
        let planes = &set.images[i * 3 * n..(i + 1) * 3 * n];
        for c in 0..3 {
            let table = &mut integral[c * stride * stride..(c + 1) * stride * stride];
            for y in 0..side {
                let mut row = 0.0;
                for x in 0..side {
                    row += f64::from(planes[c * n + y * side + x]);
                    table[(y + 1) * stride + x + 1] = table[y * stride + x + 1] + row;
                }
            }
        }
        #[allow(
            clippy::cast_possible_wrap,
            clippy::cast_sign_loss,
            clippy::cast_possible_truncation,
            clippy::cast_precision_loss
        )]
        let box_mean = |c: usize, cx: i64, cy: i64, s: usize| -> f32 {
            let half = (s / 2) as i64;
            let limit = side as i64;
            let (x0, y0) = ((cx - half).clamp(0, limit - 1), (cy - half).clamp(0, limit - 1));
            let (x1, y1) = ((cx - half + s as i64).clamp(x0 + 1, limit), (cy - half + s as i64).clamp(y0 + 1, limit));
            let t = &integral[c * stride * stride..];
            let at = |x: i64, y: i64| t[y as usize * stride + x as usize];
            let sum = at(x1, y1) - at(x0, y1) - at(x1, y0) + at(x0, y0);
            (sum / ((x1 - x0) * (y1 - y0)) as f64) as f32
        };
        for y in 0..side {
            for x in 0..side {
                #[allow(clippy::cast_possible_wrap)]
                let (cx, cy) = (x as i64, y as i64);
                for &s in &SCALES {
                    #[allow(clippy::cast_possible_wrap)]
                    let step = s as i64;
                    for dy in [-step, 0, step] {
                        for dx in [-step, 0, step] {
                            for c in 0..3 {
                                out.push(box_mean(c, cx + dx, cy + dy, s));
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// One row per pixel of the images at `images` (features, and labels from `targets` > 0.5).
fn pixel_rows(set: &LesionSet, features: &[f32], targets: &[f32], images: &[usize]) -> ImageSet {
    let n = set.pixels();
    let mut pixels = Vec::with_capacity(images.len() * n * FEATURES);
    let mut labels = Vec::with_capacity(images.len() * n);
    for &i in images {
        pixels.extend_from_slice(&features[i * n * FEATURES..(i + 1) * n * FEATURES]);
        labels.extend(targets[i * n..(i + 1) * n].iter().map(|&t| u16::from(t > 0.5)));
    }
    ImageSet { channels: 1, height: 1, width: FEATURES, pixels, labels }
}

/// The segmentation network: per pixel, its multi-scale features through an MLP with two hidden
/// ReLU layers to lesion / skin logits — a fully convolutional network whose first layer reads
/// the fixed box-mean pyramid. Training uses the hard-sample lab's fused MLP (weighted
/// cross-entropy per pixel, every pixel of an image carrying the image's weight).
#[derive(Clone, Debug, PartialEq)]
pub struct SegNet {
    pub mlp: Mlp,
}

impl SegNet {
    pub fn new(hidden: usize, seed: u64) -> Self {
        Self { mlp: Mlp::new(FEATURES, hidden, 2, seed) }
    }

    /// Trains on the pixel `rows` of images `0..images`, image `i`'s pixels weighted by
    /// `weights(epoch)[i]`; `false` when cancelled.
    #[allow(clippy::too_many_arguments)]
    fn train(
        &mut self,
        rows: &ImageSet,
        pixels: usize,
        (epochs, config): (usize, &SegConfig),
        seed: u64,
        mask: Option<&[f32]>,
        weights: &dyn Fn(usize) -> Vec<f32>,
        control: &RunControl,
        on_epoch: &mut dyn FnMut(),
    ) -> bool {
        let spec = TrainSpec { epochs, batch: config.batch, learning_rate: config.learning_rate, seed };
        let per_pixel = |epoch: usize| -> Vec<f32> {
            let image_weights = weights(epoch);
            if image_weights.is_empty() {
                return Vec::new();
            }
            image_weights.iter().flat_map(|&w| std::iter::repeat_n(w, pixels)).collect()
        };
        self.mlp.train(rows, spec, mask, &per_pixel, control, &mut |_, _| on_epoch())
    }

    /// Binary masks of the images whose pixel rows are `rows`.
    fn predict(&self, rows: &ImageSet, pixels: usize) -> Masks {
        let (predictions, _) = self.mlp.predict(rows);
        predictions.chunks(pixels).map(|m| m.iter().map(|&p| p == 1).collect()).collect()
    }
}

/// Intersection over union of two binary masks (1 when both are empty).
pub fn iou(a: &[bool], b: &[bool]) -> f64 {
    let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let union = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    #[allow(clippy::cast_precision_loss)]
    if union == 0 { 1.0 } else { inter as f64 / union as f64 }
}

/// Dice coefficient `2|A ∩ B| / (|A| + |B|)` (1 when both are empty).
pub fn dice(a: &[bool], b: &[bool]) -> f64 {
    let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let total = a.iter().filter(|x| **x).count() + b.iter().filter(|x| **x).count();
    #[allow(clippy::cast_precision_loss)]
    if total == 0 { 1.0 } else { 2.0 * inter as f64 / total as f64 }
}

/// Pixelwise majority of binary masks (ties count as lesion only with a strict majority).
pub fn majority(masks: &[&[bool]]) -> Vec<bool> {
    let n = masks.first().map_or(0, |m| m.len());
    (0..n).map(|p| 2 * masks.iter().filter(|m| m[p]).count() > masks.len()).collect()
}

/// One sample's localization scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegScore {
    pub index: usize,
    pub group: u16,
    /// Mean IoU and Dice of each population's masks against the ground truth.
    pub dense_iou: f64,
    pub pruned_iou: f64,
    pub dense_dice: f64,
    pub pruned_dice: f64,
    /// IoU of the dense and the pruned majority masks.
    pub agreement: f64,
    /// `agreement` below the threshold: the modal masks differ.
    pub hard: bool,
    /// The pixelwise majority masks of both populations.
    #[serde(skip)]
    pub dense_modal: Vec<bool>,
    #[serde(skip)]
    pub pruned_modal: Vec<bool>,
}

/// Binary masks (probability > 0.5) of one model on a set.
type Masks = Vec<Vec<bool>>;

/// One model pair's masks: dense and pruned on the training set, then on the test set, and the
/// pruned model's layer sparsity.
type PopulationMasks = (Masks, Masks, Masks, Masks, Vec<f64>);

fn to_masks(probabilities: &[f32], pixels: usize) -> Masks {
    probabilities.chunks(pixels).map(|m| m.iter().map(|&p| p > 0.5).collect()).collect()
}

fn truth(set: &LesionSet) -> Masks {
    to_masks(&set.masks, set.pixels())
}

/// Scores every sample from the masks of both populations (`model × sample`).
pub fn score_masks(dense: &[Masks], pruned: &[Masks], truth: &Masks, groups: &[u16], threshold: f64) -> Vec<SegScore> {
    #[allow(clippy::cast_precision_loss)]
    let mean = |models: &[Masks], i: usize, f: fn(&[bool], &[bool]) -> f64| {
        models.iter().map(|m| f(&m[i], &truth[i])).sum::<f64>() / models.len().max(1) as f64
    };
    (0..truth.len())
        .map(|i| {
            let dense_modal = majority(&dense.iter().map(|m| m[i].as_slice()).collect::<Vec<_>>());
            let pruned_modal = majority(&pruned.iter().map(|m| m[i].as_slice()).collect::<Vec<_>>());
            let agreement = iou(&dense_modal, &pruned_modal);
            SegScore {
                index: i,
                group: groups.get(i).copied().unwrap_or(0),
                dense_iou: mean(dense, i, iou),
                pruned_iou: mean(pruned, i, iou),
                dense_dice: mean(dense, i, dice),
                pruned_dice: mean(pruned, i, dice),
                agreement,
                hard: agreement < threshold,
                dense_modal,
                pruned_modal,
            }
        })
        .collect()
}

/// Mean IoU and Dice of a population on the test set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SegAccuracy {
    pub iou: f64,
    pub iou_std: f64,
    pub dice: f64,
    pub per_group_iou: Vec<f64>,
    pub per_group_dice: Vec<f64>,
    /// On the test samples marked hard (NaN when none).
    pub hard_iou: f64,
    pub hard_dice: f64,
}

fn accuracy(models: &[Masks], truth: &Masks, groups: &[u16], group_count: usize, hard: &[bool]) -> SegAccuracy {
    let mean_where = |f: fn(&[bool], &[bool]) -> f64, keep: &dyn Fn(usize) -> bool| -> f64 {
        let kept: Vec<usize> = (0..truth.len()).filter(|&i| keep(i)).collect();
        if kept.is_empty() || models.is_empty() {
            return f64::NAN;
        }
        let total: f64 = models.iter().map(|m| kept.iter().map(|&i| f(&m[i], &truth[i])).sum::<f64>()).sum();
        #[allow(clippy::cast_precision_loss)]
        let mean = total / (kept.len() * models.len()) as f64;
        mean
    };
    #[allow(clippy::cast_precision_loss)]
    let per_model: Vec<f64> = models
        .iter()
        .map(|m| (0..truth.len()).map(|i| iou(&m[i], &truth[i])).sum::<f64>() / truth.len().max(1) as f64)
        .collect();
    let (iou_mean, iou_std) = crate::prune::theory::mean_std(&per_model);
    SegAccuracy {
        iou: iou_mean,
        iou_std,
        dice: mean_where(dice, &|_| true),
        per_group_iou: (0..group_count).map(|g| mean_where(iou, &|i| usize::from(groups[i]) == g)).collect(),
        per_group_dice: (0..group_count).map(|g| mean_where(dice, &|i| usize::from(groups[i]) == g)).collect(),
        hard_iou: mean_where(iou, &|i| hard.get(i).copied().unwrap_or(false)),
        hard_dice: mean_where(dice, &|i| hard.get(i).copied().unwrap_or(false)),
    }
}

/// Everything a localization study reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalizeReport {
    pub config: SegConfig,
    pub attend: Option<AttendConfig>,
    /// Training masks used as labels (the rest had pseudo-labels).
    pub labelled: usize,
    pub dense: SegAccuracy,
    pub pruned: SegAccuracy,
    /// Attending to the hard training samples (when asked for and there are some).
    pub attended: Option<SegAccuracy>,
    /// Why attention was asked for but not run.
    pub note: Option<String>,
    pub hard_train: usize,
    pub hard_test: usize,
    pub train_scores: Vec<SegScore>,
    pub test_scores: Vec<SegScore>,
    /// Final layer sparsity of the first pruned model.
    pub pruned_layer_sparsity: Vec<f64>,
    pub seconds: f64,
    /// Training samples seen per second over every model.
    pub samples_per_second: f64,
}

/// Runs the study: (pseudo-)labels, dense and pruned populations, hard samples and, with
/// `attend`, attended training; `on_epoch(done, total)` after each epoch of any model. `None`
/// when cancelled.
pub fn localize(
    data: &LesionData,
    config: &SegConfig,
    attend: Option<&AttendConfig>,
    control: &RunControl,
    on_epoch: &(dyn Fn(usize, usize) + Sync),
) -> Result<Option<LocalizeReport>, HtlError> {
    config.validate()?;
    if let Some(attend) = attend {
        attend.validate()?;
    }
    if data.train.is_empty() || data.test.is_empty() {
        return Err(HtlError::Other(format!("{}: needs training and test images", data.name)));
    }
    let pixels_in_all = (data.train.len() + data.test.len()) * data.train.pixels();
    if pixels_in_all > super::lesion::MAX_PIXELS {
        return Err(HtlError::Config(format!(
            "{}: {pixels_in_all} pixels in all; the study keeps {FEATURES} features per pixel in memory and takes up \
             to {} (fewer or smaller images)",
            data.name,
            super::lesion::MAX_PIXELS
        )));
    }
    let start = Instant::now();
    let train = &data.train;
    let n = train.len();
    let pixels = train.pixels();
    let all: Vec<usize> = (0..n).collect();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let labelled_count = ((config.labelled_fraction * n as f64).ceil() as usize).clamp(1, n);
    let semi = labelled_count < n;
    let attended_epochs = if attend.is_some() { config.models * config.epochs } else { 0 };
    let total = config.models * (config.epochs + config.finetune_epochs)
        + attended_epochs
        + if semi { config.epochs } else { 0 };
    let done = AtomicUsize::new(0);
    let tick = || on_epoch(done.fetch_add(1, Ordering::Relaxed) + 1, total);
    let unit = |_: usize| Vec::new();
    let features = pixel_features(train);
    let test_rows = pixel_rows(
        &data.test,
        &pixel_features(&data.test),
        &data.test.masks,
        &(0..data.test.len()).collect::<Vec<_>>(),
    );
    let mut seen = 0_usize;
    // Targets: the true masks, or for semi-supervision the labelled ones and pseudo-labels from
    // a model trained on them.
    let targets: Vec<f32> = if semi {
        let mut order = all.clone();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed ^ 0x1abe));
        let labelled = &order[..labelled_count];
        let mut teacher = SegNet::new(config.hidden, config.seed ^ 0x7eac);
        let labelled_rows = pixel_rows(train, &features, &train.masks, labelled);
        if !teacher.train(
            &labelled_rows,
            pixels,
            (config.epochs, config),
            config.seed,
            None,
            &unit,
            control,
            &mut || tick(),
        ) {
            return Ok(None);
        }
        seen += config.epochs * labelled_count;
        let pseudo = teacher.predict(&pixel_rows(train, &features, &train.masks, &all), pixels);
        let mut targets: Vec<f32> = pseudo.iter().flatten().map(|&p| f32::from(u8::from(p))).collect();
        for &i in labelled {
            targets[i * pixels..(i + 1) * pixels].copy_from_slice(train.mask(i));
        }
        targets
    } else {
        train.masks.clone()
    };
    // Every image in order: the rows are the features themselves.
    let rows = ImageSet {
        channels: 1,
        height: 1,
        width: FEATURES,
        pixels: features,
        labels: targets.iter().map(|&t| u16::from(t > 0.5)).collect(),
    };
    // Both populations.
    let pairs: Vec<Option<PopulationMasks>> = (0..config.models)
        .into_par_iter()
        .map(|k| {
            let seed = config.seed.wrapping_add(k as u64);
            let mut dense = SegNet::new(config.hidden, seed);
            if !dense.train(&rows, pixels, (config.epochs, config), seed, None, &unit, control, &mut || tick()) {
                return None;
            }
            let mut pruned = dense.clone();
            let mask = pruned.mlp.magnitude_mask(config.sparsity);
            let fine = (config.finetune_epochs, config);
            if !pruned.train(&rows, pixels, fine, seed ^ 0xf1e7, Some(&mask), &unit, control, &mut || tick()) {
                return None;
            }
            Some((
                dense.predict(&rows, pixels),
                pruned.predict(&rows, pixels),
                dense.predict(&test_rows, data.test.pixels()),
                pruned.predict(&test_rows, data.test.pixels()),
                pruned.mlp.layer_sparsity(),
            ))
        })
        .collect();
    let Some(populations) = pairs.into_iter().collect::<Option<Vec<_>>>() else { return Ok(None) };
    seen += config.models * (config.epochs + config.finetune_epochs) * n;
    let (dense_train, pruned_train): (Vec<Masks>, Vec<Masks>) =
        populations.iter().map(|p| (p.0.clone(), p.1.clone())).unzip();
    let (dense_test, pruned_test): (Vec<Masks>, Vec<Masks>) =
        populations.iter().map(|p| (p.2.clone(), p.3.clone())).unzip();
    let threshold = config.agreement_threshold;
    let train_scores = score_masks(&dense_train, &pruned_train, &truth(train), &train.groups, threshold);
    let test_scores = score_masks(&dense_test, &pruned_test, &truth(&data.test), &data.test.groups, threshold);
    let top_fraction = attend.map_or(0.0, |a| a.top_fraction);
    let hard_train: Vec<bool> = if top_fraction > 0.0 {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| train_scores[a].agreement.total_cmp(&train_scores[b].agreement).then(a.cmp(&b)));
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let count = ((top_fraction * n as f64).ceil() as usize).min(n);
        let mut hard = vec![false; n];
        for &i in &order[..count] {
            hard[i] = true;
        }
        hard
    } else {
        train_scores.iter().map(|s| s.hard).collect()
    };
    let hard_test: Vec<bool> = test_scores.iter().map(|s| s.hard).collect();
    let test_truth = truth(&data.test);
    let groups = data.groups.len();
    let mut note = None;
    let attended = match attend {
        Some(_) if !hard_train.iter().any(|&h| h) => {
            note = Some(
                "No hard training lesion: the dense and pruned majority masks agree at these settings, so there is \
                 nothing to attend to; raise the sparsity or the agreement threshold."
                    .to_owned(),
            );
            None
        }
        Some(attend) => {
            let weights = |epoch: usize| sample_weights(&hard_train, attend, epoch, config.epochs);
            let attended: Vec<Option<Masks>> = (0..config.models)
                .into_par_iter()
                .map(|k| {
                    let seed = config.seed.wrapping_add(k as u64);
                    let mut net = SegNet::new(config.hidden, seed);
                    let trained =
                        net.train(&rows, pixels, (config.epochs, config), seed, None, &weights, control, &mut || {
                            tick();
                        });
                    trained.then(|| net.predict(&test_rows, data.test.pixels()))
                })
                .collect();
            let Some(masks) = attended.into_iter().collect::<Option<Vec<_>>>() else { return Ok(None) };
            seen += config.models * config.epochs * n;
            Some(accuracy(&masks, &test_truth, &data.test.groups, groups, &hard_test))
        }
        None => None,
    };
    let seconds = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let samples_per_second = seen as f64 / seconds.max(1e-9);
    Ok(Some(LocalizeReport {
        config: config.clone(),
        attend: attend.cloned(),
        labelled: labelled_count,
        dense: accuracy(&dense_test, &test_truth, &data.test.groups, groups, &hard_test),
        pruned: accuracy(&pruned_test, &test_truth, &data.test.groups, groups, &hard_test),
        attended,
        note,
        hard_train: hard_train.iter().filter(|&&h| h).count(),
        hard_test: hard_test.iter().filter(|&&h| h).count(),
        train_scores,
        test_scores,
        pruned_layer_sparsity: populations.first().map(|p| p.4.clone()).unwrap_or_default(),
        seconds,
        samples_per_second,
    }))
}
