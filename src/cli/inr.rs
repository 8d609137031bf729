//! `sparsefield inr fit|render`.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};

use crate::compute::colormap;
use crate::compute::control::{RunControl, RunEvent};
use crate::compute::image_io::{self, ImageData};
use crate::compute::inr::insp::EditKind;
use crate::compute::inr::{self, BatchMode, FieldView, FitConfig, Siren, SirenWeights};

#[derive(Debug, Subcommand)]
pub enum InrCommand {
    /// Fit a SIREN to an image; writes inr.safetensors, reconstruction.png and metrics.json.
    Fit(FitArgs),
    /// Render a saved INR at any resolution (value, gradient magnitude or Laplacian) as PNG.
    Render(RenderArgs),
    /// Edit an INR without decoding it (INSP): train or load an operator over its derivatives,
    /// apply it, and compare with the same filter on pixels. Writes operator.safetensors,
    /// edited.png, reference.png, baseline PNGs and metrics.json.
    Edit(Box<EditArgs>),
    /// INSP-ConvNet: fit a SIREN to every digit, classify the SIRENs from their derivative
    /// stacks, compare with the same CNN on pixels. Writes metrics.json and confusion CSVs.
    Classify(ClassifyArgs),
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Digits CSV (64 pixels 0–16, then the label; .gz accepted). Default: the built-in 1797.
    #[arg(long)]
    pub digits: Option<PathBuf>,
    /// Use only the first N digits (0: all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Steps of each digit's SIREN fit.
    #[arg(long, default_value_t = 300)]
    pub inr_steps: u64,
    /// Width of each digit's SIREN.
    #[arg(long, default_value_t = 32)]
    pub inr_width: usize,
    /// Highest derivative order in the stack.
    #[arg(long, default_value_t = 2)]
    pub order: usize,
    /// Training epochs of each classifier.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EditOpArg {
    Blur,
    BoxBlur,
    Denoise,
    Deblur,
    Inpaint,
    /// Learn from --pairs of (input, target) images.
    Custom,
}

impl EditOpArg {
    pub fn kind(self) -> EditKind {
        match self {
            Self::Blur => EditKind::GaussianBlur,
            Self::BoxBlur => EditKind::BoxBlur,
            Self::Denoise => EditKind::Denoise,
            Self::Deblur => EditKind::Deblur,
            Self::Inpaint => EditKind::Inpaint,
            Self::Custom => EditKind::Custom,
        }
    }
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["inr", "image"])))]
pub struct EditArgs {
    /// The edit: mimic a filter (blur, box-blur) or undo a corruption (denoise, deblur, inpaint).
    /// Optional with --operator (its own edit is used).
    #[arg(long, value_enum)]
    pub op: Option<EditOpArg>,
    /// The INR to edit (saved by `inr fit` or the app).
    #[arg(long)]
    pub inr: Option<PathBuf>,
    /// Instead of --inr: a clean image. It is corrupted as --op says (noise, blur, scribbles),
    /// an INR is fitted to that, and the edit is scored against the true target.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// With --inr: the clean image to score a restoration against (filters default to the
    /// INR's own decoding, filtered).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Apply a saved operator instead of training one.
    #[arg(long)]
    pub operator: Option<PathBuf>,
    /// Images to train the operator on (comma-separated); default: the --image, or for filters the
    /// --inr's decoding.
    #[arg(long, value_delimiter = ',')]
    pub train_images: Vec<PathBuf>,
    /// With --op custom: training pairs INPUT=TARGET (comma-separated), images of equal size.
    #[arg(long, value_delimiter = ',')]
    pub pairs: Vec<String>,
    /// Random --size crops taken from each training image (0: the whole image, downscaled).
    #[arg(long, default_value_t = 0)]
    pub crops: u32,
    /// Longer side of the test image and of the training images.
    #[arg(long, default_value_t = 256)]
    pub size: u32,
    /// Gaussian sigma in pixels (blur, deblur).
    #[arg(long, default_value_t = 2.0)]
    pub sigma: f32,
    /// Box radius in pixels (box-blur).
    #[arg(long, default_value_t = 2)]
    pub radius: u32,
    /// Noise standard deviation in [0, 1] pixel units (denoise).
    #[arg(long, default_value_t = 0.1)]
    pub noise: f32,
    /// Fraction of pixels under scribbles (inpaint).
    #[arg(long, default_value_t = 0.06)]
    pub coverage: f32,
    /// Highest derivative order fed to the operator.
    #[arg(long, default_value_t = 4)]
    pub order: usize,
    /// Operator hidden width.
    #[arg(long, default_value_t = 256)]
    pub op_width: usize,
    /// Operator hidden layers.
    #[arg(long, default_value_t = 4)]
    pub op_layers: usize,
    /// Operator training steps.
    #[arg(long, default_value_t = 1000)]
    pub op_steps: u64,
    /// Operator learning rate (Adam).
    #[arg(long, default_value_t = 1e-3)]
    pub op_lr: f64,
    /// Pixel channels per operator step.
    #[arg(long, default_value_t = 4096)]
    pub op_batch: usize,
    /// Learn the value itself instead of a correction to it (the paper's form; slower to train).
    #[arg(long)]
    pub no_residual: bool,
    /// Steps for every INR this command fits.
    #[arg(long, default_value_t = 500)]
    pub fit_steps: u64,
    /// Width of the INRs this command fits.
    #[arg(long, default_value_t = 256)]
    pub fit_width: usize,
    /// Hidden layers of the INRs this command fits.
    #[arg(long, default_value_t = 3)]
    pub fit_layers: usize,
    /// Also render the edit at this size (e.g. 1024x1024): it is a continuous function.
    #[arg(long)]
    pub render_size: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct FitArgs {
    /// PNG or JPEG image (gray or RGB; alpha is dropped).
    #[arg(long)]
    pub image: PathBuf,
    /// Longer side of the training image; larger images are downscaled.
    #[arg(long, default_value_t = 256)]
    pub size: u32,
    #[arg(long, default_value_t = 2000)]
    pub steps: u64,
    /// Neurons per hidden layer (at most 256).
    #[arg(long, default_value_t = 256)]
    pub width: usize,
    /// Hidden sine layers.
    #[arg(long, default_value_t = 3)]
    pub layers: usize,
    #[arg(long, default_value_t = 30.0)]
    pub omega0: f32,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Pixels per step (random sample); 0 = every pixel (full batch).
    #[arg(long, default_value_t = 0)]
    pub batch: usize,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ViewArg {
    Value,
    Gradient,
    Laplacian,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// An INR saved by `inr fit` or the app.
    #[arg(long)]
    pub inr: PathBuf,
    #[arg(long, default_value_t = 1024)]
    pub width: u32,
    #[arg(long, default_value_t = 1024)]
    pub height: u32,
    #[arg(long, value_enum, default_value_t = ViewArg::Value)]
    pub view: ViewArg,
    /// Instead of --view: one partial derivative, named by its variables (`x`, `xy`, `xxyy`; up to
    /// order 6), mean over channels on a blue–white–red map scaled to its 99th percentile.
    #[arg(long)]
    pub partial: Option<String>,
    /// PNG file to write.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(command: InrCommand) -> anyhow::Result<()> {
    match command {
        InrCommand::Fit(args) => fit(&args),
        InrCommand::Render(args) => render(&args),
        InrCommand::Edit(args) => super::inr_edit::edit(&args),
        InrCommand::Classify(args) => super::inr_edit::classify(&args),
    }
}

fn fit(args: &FitArgs) -> anyhow::Result<()> {
    if args.size == 0 {
        bail!("--size must be at least 1 pixel (the longer side the image is downscaled to), got 0");
    }
    super::check_output_apart(&args.out, &[&args.image])?;
    let loaded = image_io::load_image(&args.image)?;
    for notice in &loaded.notices {
        eprintln!("note: {notice}");
    }
    super::prepare_output_dir(&args.out, "inr fit")?;
    let image = loaded.image.downscaled_to(args.size);
    let cfg = FitConfig {
        width: args.width,
        hidden_layers: args.layers,
        omega0: args.omega0,
        learning_rate: args.lr,
        steps: args.steps,
        batch: if args.batch == 0 { BatchMode::Full } else { BatchMode::Random { pixels: args.batch } },
        seed: args.seed,
        snapshot_interval_secs: 0.0,
    };
    let bar = super::progress_bar(args.steps, "fit");
    let control = RunControl::new();
    let summary = inr::fit(&image, &cfg, None, &control, &mut |event| super::show_progress(&bar, &event))?;
    bar.finish_and_clear();

    let weights_path = args.out.join("inr.safetensors");
    let source = args.image.display().to_string();
    summary
        .weights
        .save(&weights_path, &[("sparsefield.image", source), ("sparsefield.steps", summary.steps_done.to_string())])?;
    let model = Siren::new(&summary.weights, &crate::compute::default_device(), candle_core::DType::F32)?;
    let reconstruction = inr::reconstruct(&model, image.width, image.height)?;
    image_io::save_png(&reconstruction, &args.out.join("reconstruction.png"))?;
    let metrics = serde_json::json!({
        "psnr_db": summary.psnr_db,
        "steps": summary.steps_done,
        "ms_per_step": summary.ms_per_step,
        "seconds": summary.seconds,
        "final_loss": summary.history.last().map(|r| r.loss),
        "image": { "width": image.width, "height": image.height, "channels": image.channels },
        "model": summary.weights.config,
        "learning_rate": args.lr,
        "seed": args.seed,
    });
    let metrics_path = args.out.join("metrics.json");
    crate::compute::files::write_atomic(&metrics_path, serde_json::to_string_pretty(&metrics)?)
        .with_context(|| format!("{}: cannot write", metrics_path.display()))?;
    println!(
        "PSNR {:.2} dB after {} steps ({:.1} ms/step, {:.1} s); wrote {}",
        summary.psnr_db,
        summary.steps_done,
        summary.ms_per_step,
        summary.seconds,
        args.out.display()
    );
    Ok(())
}

fn render(args: &RenderArgs) -> anyhow::Result<()> {
    super::check_output_apart(&args.out, &[&args.inr])?;
    let weights = SirenWeights::load(&args.inr)?;
    super::prepare_parent_dir(&args.out)?;
    if let Some(name) = &args.partial {
        let image = partial_image(&weights, name, args)?;
        image_io::save_png(&image, &args.out)?;
        println!("wrote {} ({}×{}, ∂{name})", args.out.display(), image.width, image.height);
        return Ok(());
    }
    let image = match args.view {
        ViewArg::Value => {
            let bar = super::progress_bar(u64::from(args.height), "render");
            let control = RunControl::new();
            let image = inr::render_image(&weights, args.width, args.height, &control, &mut |event| {
                if let RunEvent::Progress { step, .. } = event {
                    bar.set_position(step);
                }
            })?;
            bar.finish_and_clear();
            match image {
                Some(image) => image,
                None => bail!("rendering was cancelled"),
            }
        }
        ViewArg::Gradient | ViewArg::Laplacian => derivative_image(&weights, args)?,
    };
    image_io::save_png(&image, &args.out)?;
    println!("wrote {} ({}×{})", args.out.display(), image.width, image.height);
    Ok(())
}

/// One partial derivative (mean over channels) on the diverging map, scaled by its 99th percentile.
fn partial_image(weights: &SirenWeights, name: &str, args: &RenderArgs) -> anyhow::Result<ImageData> {
    use crate::compute::inr::taylor::{self, Partials};
    let name = name.trim_start_matches('∂');
    if name.is_empty() || !name.chars().all(|c| c == 'x' || c == 'y') {
        bail!("--partial must name the variables of a derivative, like x, yy or xxy; got `{name}`");
    }
    let (i, j) = (name.matches('x').count(), name.matches('y').count());
    if args.width == 0 || args.height == 0 || args.width > 4096 || args.height > 4096 {
        bail!("partial views render up to 4096×4096, got {}×{}", args.width, args.height);
    }
    let partials = Partials::new(i + j)?;
    let k = partials.index_of(i, j).ok_or_else(|| anyhow::anyhow!("no partial ∂{name}"))?;
    let stack = taylor::stack_at_pixels(weights, &partials, args.width, args.height)?;
    let (p, channels) = (partials.len(), weights.config.out_features);
    #[allow(clippy::cast_precision_loss)]
    let values: Vec<f32> = stack
        .chunks_exact(p * channels)
        .map(|px| px.iter().skip(k).step_by(p).sum::<f32>() / channels as f32)
        .collect();
    let mut magnitudes: Vec<f32> = values.iter().map(|v| v.abs()).filter(|v| v.is_finite()).collect();
    if magnitudes.is_empty() {
        bail!(
            "{}: ∂{name} overflows everywhere (the derivatives of this INR are too large in f32); pick a lower order",
            args.inr.display()
        );
    }
    let index = (magnitudes.len() * 99 / 100).min(magnitudes.len() - 1);
    let scale = magnitudes.select_nth_unstable_by(index, f32::total_cmp).1.max(1e-6);
    let pixels = values.iter().flat_map(|&v| colormap::diverging(v / scale)).collect();
    println!("∂{name}: colour range ±{scale:.4e}");
    Ok(ImageData::new(args.width, args.height, 3, pixels)?)
}

/// A colour-mapped derivative view (mean over channels), scaled by its 99th percentile.
fn derivative_image(weights: &SirenWeights, args: &RenderArgs) -> anyhow::Result<ImageData> {
    if args.width == 0 || args.height == 0 || args.width > 8192 || args.height > 8192 {
        bail!("derivative views render up to 8192×8192, got {}×{}", args.width, args.height);
    }
    let model = Siren::new(weights, &crate::compute::default_device(), candle_core::DType::F32)?;
    let scales = inr::display_scales(&model)?;
    let view = if matches!(args.view, ViewArg::Gradient) { FieldView::GradientMagnitude } else { FieldView::Laplacian };
    let values = inr::field_values(&model, view, args.width, args.height)?;
    let channels = weights.config.out_features;
    #[allow(clippy::cast_precision_loss)]
    let mean = |px: &[f32]| px.iter().sum::<f32>() / px.len() as f32;
    let pixels = values
        .chunks_exact(channels)
        .flat_map(|px| match view {
            FieldView::GradientMagnitude => colormap::heat(mean(px) / scales.gradient),
            _ => colormap::diverging(mean(px) / scales.laplacian),
        })
        .collect();
    Ok(ImageData::new(args.width, args.height, 3, pixels)?)
}
