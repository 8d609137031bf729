//! The INSP training pipeline, shared by the edit lab, `sparsefield inr edit` and the benchmark:
//! examples from images and pairs, INRs fitted to them, their derivative stacks gathered into a
//! [`TrainingSet`], and (for the lab) the whole run from one image to a trained operator.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{EditKind, EditTask, OperatorConfig, OperatorSummary, OperatorWeights, TrainingSet, train_operator};
use crate::control::{RunControl, RunEvent};
use crate::filters;
use crate::image_io::ImageData;
use crate::inr::{FitConfig, InrError, SirenWeights};

/// A custom training pair from two image files, both downscaled to `size` (0: as they are).
/// They must have the same size and colour kind.
pub fn load_pair(input: &Path, target: &Path, size: u32) -> Result<(ImageData, ImageData), InrError> {
    let load = |path: &Path| -> Result<ImageData, InrError> {
        let image = crate::image_io::load_image(path)?.image;
        Ok(if size == 0 { image } else { image.downscaled_to(size) })
    };
    let (a, b) = (load(input)?, load(target)?);
    if (a.width, a.height, a.channels) != (b.width, b.height, b.channels) {
        return Err(InrError::Config(format!(
            "{} ({}×{}, {} channels) and {} ({}×{}, {} channels) differ; a pair needs two images of the same size \
             and colour kind",
            input.display(),
            a.width,
            a.height,
            a.channels,
            target.display(),
            b.width,
            b.height,
            b.channels
        )));
    }
    Ok((a, b))
}

/// The training views of one image: `crops` random `size × size` windows (seeded), or the whole
/// image downscaled to `size` when `crops` is 0 or the image is smaller than a window.
pub fn training_views(image: &ImageData, size: u32, crops: u32, seed: u64) -> Vec<ImageData> {
    if crops == 0 || image.width < size || image.height < size {
        return vec![image.clone().downscaled_to(size)];
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..crops)
        .map(|_| {
            let x = rng.random_range(0..=image.width - size);
            let y = rng.random_range(0..=image.height - size);
            filters::crop(image, x, y, size, size)
        })
        .collect()
}

/// One training example of an operator.
#[derive(Clone, Debug)]
pub enum Example {
    /// A clean image: its INR is fitted to the image as the task degrades it, and the target is
    /// what the task makes of the clean image.
    Clean(ImageData),
    /// A given pair (custom edits): the INR is fitted to `input` as it is.
    Pair { input: ImageData, target: ImageData },
}

/// The INSP training pipeline's first half, shared by the edit lab, `sparsefield inr edit` and
/// the benchmark: fits an INR to each example's input (a clean image degraded as `task` says,
/// seeded by `seed + index`, or a given pair's input) and adds its derivative stack with the
/// target to `set`. `on_fit(index, step, psnr_db, elapsed_secs)` follows the fits. `Ok(false)` when cancelled.
pub fn add_examples(
    set: &mut TrainingSet,
    examples: &[Example],
    task: EditTask,
    fit: &FitConfig,
    seed: u64,
    control: &RunControl,
    on_fit: &mut dyn FnMut(usize, u64, f64, f64),
) -> Result<bool, InrError> {
    task.validate()?;
    for (index, example) in examples.iter().enumerate() {
        let (input, target) = match example {
            Example::Clean(clean) => (task.degrade(clean, seed.wrapping_add(index as u64)), task.target(clean)),
            Example::Pair { input, target } => (input.clone(), target.clone()),
        };
        let summary = crate::inr::fit(&input, fit, None, control, &mut |event| {
            if let RunEvent::Progress { step, metrics, elapsed_secs } = event {
                let psnr = metrics.iter().find(|(n, _)| *n == "psnr_db").map_or(f64::NAN, |(_, v)| *v);
                on_fit(index, step, psnr, elapsed_secs);
            }
        })?;
        if summary.cancelled {
            return Ok(false);
        }
        set.add_pair(&summary.weights, &target)?;
    }
    Ok(true)
}

/// [`add_examples`] of clean images into a new set; `Ok(None)` when cancelled.
pub fn build_training_set(
    cleans: &[ImageData],
    task: EditTask,
    fit: &FitConfig,
    order: usize,
    seed: u64,
    control: &RunControl,
    on_fit: &mut dyn FnMut(usize, u64, f64, f64),
) -> Result<Option<TrainingSet>, InrError> {
    let mut set = TrainingSet::new(order);
    let examples: Vec<Example> = cleans.iter().cloned().map(Example::Clean).collect();
    Ok(add_examples(&mut set, &examples, task, fit, seed, control, on_fit)?.then_some(set))
}

/// The INR being edited and what its edit is compared with.
#[derive(Clone, Debug)]
pub struct Subject {
    pub inr: Arc<SirenWeights>,
    /// The pixels the INR was fitted to (the corrupted image for restorations).
    pub input: Arc<ImageData>,
    /// The clean image, when known (not for INR files). The reference an edit is scored against
    /// is derived from it and the operator's own edit.
    pub clean: Option<Arc<ImageData>>,
    pub name: String,
}

/// Everything [`train_for_image`] trains from.
#[derive(Clone, Debug)]
pub struct OperatorSource {
    pub task: EditTask,
    /// The image the edit is shown on (clean for filters and restorations).
    pub image: Arc<ImageData>,
    pub image_name: String,
    /// An INR already fitted to `image`: it becomes the subject of filters and custom edits. A
    /// restoration (or a run without one) fits a new INR to the image as the task corrupts it.
    pub image_inr: Option<Arc<SirenWeights>>,
    /// How the INRs of the subject and of every example are fitted.
    pub fit: FitConfig,
    pub operator: OperatorConfig,
    /// Learn from the subject's own INR and the task's target on `image` (not for custom edits).
    pub train_on_current: bool,
    /// Further clean images (not for custom edits), each cut into `crops` windows.
    pub training_images: Vec<PathBuf>,
    pub crops: u32,
    /// (input, target) image files of a custom edit.
    pub pairs: Vec<(PathBuf, PathBuf)>,
}

impl OperatorSource {
    /// The subject known before training: the image's INR for filters and custom edits.
    pub fn known_subject(&self) -> Option<Subject> {
        let custom = self.task.kind == EditKind::Custom;
        let inr = self.image_inr.as_ref().filter(|w| w.config.out_features == self.image.channels)?;
        (self.task.kind.is_filter() || custom).then(|| Subject {
            inr: Arc::clone(inr),
            input: Arc::clone(&self.image),
            clean: Some(Arc::clone(&self.image)).filter(|_| !custom),
            name: self.image_name.clone(),
        })
    }
}

/// What [`train_for_image`] hands back.
pub struct OperatorOutcome {
    pub summary: OperatorSummary,
    /// The subject fitted during the run (`None` when [`OperatorSource::known_subject`] was used).
    pub subject: Option<Subject>,
}

/// The edit lab's whole run: reads every file first (so that a bad one fails at once), fits the
/// subject when none is known, fits an INR to each example, then trains the operator. Progress
/// counts the fits' steps and then the operator's; operator snapshots go to `on_event` too.
/// `Ok(None)` when cancelled while fitting INRs (a cancelled operator returns its summary).
pub fn train_for_image(
    source: &OperatorSource,
    control: &RunControl,
    on_event: &mut dyn FnMut(RunEvent<OperatorWeights>),
) -> Result<Option<OperatorOutcome>, InrError> {
    source.task.validate()?;
    source.operator.validate()?;
    let (task, image, fit) = (source.task, &source.image, &source.fit);
    let custom = task.kind == EditKind::Custom;
    let side = image.width.max(image.height);
    let mut examples: Vec<Example> = Vec::new();
    if !custom {
        for (index, path) in source.training_images.iter().enumerate() {
            let clean = crate::image_io::load_image(path)?.image;
            let views = training_views(&clean, side, source.crops, 0xC809 + index as u64);
            examples.extend(views.into_iter().map(Example::Clean));
        }
    }
    for (input_path, target_path) in source.pairs.iter().filter(|_| custom) {
        let (input, target) = load_pair(input_path, target_path, side)?;
        if input.channels != image.channels {
            return Err(InrError::Data(format!(
                "{} has {} channels but the image has {}; pairs must be of the same colour kind",
                input_path.display(),
                input.channels,
                image.channels
            )));
        }
        examples.push(Example::Pair { input, target });
    }
    let known_subject = source.known_subject();
    let fits = u64::from(known_subject.is_none()) + examples.len() as u64;
    on_event(RunEvent::Started { total_steps: fits * fit.steps + source.operator.steps });
    let mut fitted_subject = None;
    if known_subject.is_none() {
        let degraded = task.degrade(image, 1000);
        let summary = crate::inr::fit(&degraded, fit, None, control, &mut |event| {
            if let RunEvent::Progress { step, metrics, elapsed_secs } = event {
                let psnr = metrics.iter().find(|(n, _)| *n == "psnr_db").map_or(f64::NAN, |(_, v)| *v);
                on_event(RunEvent::Progress { step, metrics: vec![("fit_psnr_db", psnr)], elapsed_secs });
            }
        })?;
        if summary.cancelled {
            return Ok(None);
        }
        fitted_subject = Some(Subject {
            inr: Arc::new(summary.weights),
            input: Arc::new(degraded),
            clean: Some(Arc::clone(image)),
            name: source.image_name.clone(),
        });
    }
    let subject = known_subject.as_ref().or(fitted_subject.as_ref()).expect("a known or fitted subject");
    let mut set = TrainingSet::new(source.operator.order);
    if source.train_on_current && !custom {
        set.add_pair(&subject.inr, &task.target(image))?;
    }
    let before = u64::from(known_subject.is_none());
    let completed = add_examples(&mut set, &examples, task, fit, 0, control, &mut |index, step, psnr, secs| {
        on_event(RunEvent::Progress {
            step: (before + index as u64) * fit.steps + step,
            metrics: vec![("fit_psnr_db", psnr)],
            elapsed_secs: secs,
        });
    })?;
    if !completed {
        return Ok(None);
    }
    let offset = fits * fit.steps;
    let summary = train_operator(&set, task, &source.operator, control, &mut |event| match event {
        RunEvent::Progress { step, metrics, elapsed_secs } => {
            on_event(RunEvent::Progress { step: offset + step, metrics, elapsed_secs });
        }
        RunEvent::Snapshot(weights) => on_event(RunEvent::Snapshot(weights)),
        RunEvent::Started { .. } => {}
    })?;
    Ok(Some(OperatorOutcome { summary, subject: fitted_subject }))
}
