//! `sparsefield lift`: one photo (or the built-in example) → a NeRF checkpoint, a turntable GIF,
//! the reference and novel views, `metrics.json` and the loss history.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;
use clap::{Args, ValueEnum};

use crate::compute::control::{RunControl, RunEvent};
use crate::compute::lift::example::{self, ExampleTruth};
use crate::compute::lift::files;
use crate::compute::lift::input::{self, DepthChoice, LiftImage, LiftInput, MaskSettings, MaskSource};
use crate::compute::lift::train::{self, LiftConfig, PriorKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PriorArg {
    /// Mirrored silhouette and colours from behind, crisp opacity on random views.
    Geometric,
    /// The reference view only (a baseline).
    None,
}

impl From<PriorArg> for PriorKind {
    fn from(p: PriorArg) -> Self {
        match p {
            PriorArg::Geometric => Self::Geometric,
            PriorArg::None => Self::None,
        }
    }
}

#[derive(Debug, Args)]
pub struct LiftArgs {
    /// The photo (PNG or JPEG; an alpha channel is used as the mask). Without it, the built-in
    /// example is lifted and also scored against its true views.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// A mask image of the photo's size (white = object) instead of alpha or the border matte.
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Ignore the alpha channel and matte against the border colour.
    #[arg(long)]
    pub border_matte: bool,
    /// Colour distance (0–2, RGB in [0, 1]) below which border-connected pixels are background.
    #[arg(long, default_value_t = MaskSettings::default().threshold)]
    pub mask_threshold: f32,
    /// Rough depth file: 16-bit PNG or .npy, larger = farther (see --disparity).
    #[arg(long, conflicts_with_all = ["inflate", "true_depth"])]
    pub depth: Option<PathBuf>,
    /// The depth file holds disparity (larger = nearer), as MiDaS and Depth Anything write.
    #[arg(long, requires = "depth")]
    pub disparity: bool,
    /// Rough depth from the silhouette's distance transform (the default without --depth).
    #[arg(long)]
    pub inflate: bool,
    /// Built-in example only: use its true depth as the rough depth (a perfect estimator).
    #[arg(long)]
    pub true_depth: bool,
    /// What makes unseen views plausible.
    #[arg(long, value_enum, default_value_t = PriorArg::Geometric)]
    pub prior: PriorArg,
    /// Turn the depth ranking loss off (for comparison).
    #[arg(long)]
    pub no_rank: bool,
    #[arg(long, default_value_t = LiftConfig::default().steps)]
    pub steps: u64,
    /// Longer side of the training image in pixels (16–256).
    #[arg(long, default_value_t = 64)]
    pub resolution: u32,
    /// Field of view of the photo across its shorter side, in degrees.
    #[arg(long, default_value_t = LiftConfig::default().fov_deg)]
    pub fov: f32,
    /// Elevation of the photo's camera above the object's equator, in degrees.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub elevation: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Side of the turntable frames and view images in pixels.
    #[arg(long, default_value_t = 128)]
    pub size: u32,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
}

/// The lift's input and, for the built-in example, its true views.
pub fn load_input(
    image: Option<&Path>,
    mask_file: Option<&Path>,
    mask: MaskSettings,
    depth: &DepthChoice,
    true_depth: bool,
    resolution: u32,
    cfg: &LiftConfig,
) -> anyhow::Result<(LiftInput, Option<ExampleTruth>)> {
    if let Some(path) = image {
        if true_depth {
            bail!("--true-depth is only for the built-in example (it has no meaning for {})", path.display());
        }
        let photo = LiftImage::load(path)?;
        return Ok((input::prepare(&photo, mask, mask_file, depth, resolution)?, None));
    }
    if !(input::MIN_RESOLUTION..=input::MAX_RESOLUTION).contains(&resolution) {
        bail!("--resolution must be {}–{}, got {resolution}", input::MIN_RESOLUTION, input::MAX_RESOLUTION);
    }
    let orbit = cfg.reference_orbit();
    let photo = example::example_image(&orbit, resolution, resolution);
    let depth = if true_depth {
        DepthChoice::Given(example::example_depth(&orbit, resolution, resolution))
    } else {
        depth.clone()
    };
    let input = input::prepare(&photo, mask, mask_file, &depth, resolution)?;
    Ok((input, Some(example::example_truth(&orbit, resolution, resolution))))
}

// Every subcommand's `run` takes its command by value, for the one dispatch in `cli/mod.rs`.
#[allow(clippy::needless_pass_by_value)]
pub fn run(args: LiftArgs) -> anyhow::Result<()> {
    let args = &args;
    if !(16..=1024).contains(&args.size) {
        bail!("--size must be 16–1024, got {}", args.size);
    }
    let cfg = LiftConfig {
        steps: args.steps,
        seed: args.seed,
        fov_deg: args.fov,
        elevation_deg: args.elevation,
        prior: args.prior.into(),
        rank_weight: if args.no_rank { 0.0 } else { LiftConfig::default().rank_weight },
        ..LiftConfig::default()
    };
    cfg.validate()?;
    let mask = MaskSettings {
        source: if args.border_matte { MaskSource::Border } else { MaskSource::Auto },
        threshold: args.mask_threshold,
    };
    let depth = match &args.depth {
        Some(path) => DepthChoice::File { path: path.clone(), disparity: args.disparity },
        None => DepthChoice::Inflate,
    };
    let (input, truth) =
        load_input(args.image.as_deref(), args.mask.as_deref(), mask, &depth, args.true_depth, args.resolution, &cfg)?;
    super::prepare_output_dir(&args.out, "lift")?;
    for notice in &input.notices {
        eprintln!("note: {notice}");
    }
    eprintln!(
        "{}: {}×{}, mask from the {} ({:.0}% of pixels), {} depth, {} prior{}",
        input.name,
        input.width,
        input.height,
        input.mask_origin.label(),
        100.0 * input.coverage(),
        files::depth_label(&input),
        cfg.prior.label(),
        if cfg.rank_weight > 0.0 { ", ranking loss" } else { ", no ranking loss" }
    );
    let input = Arc::new(input);
    let bar = super::progress_bar(cfg.steps, "lift");
    let control = RunControl::new();
    let summary = train::lift(input.clone(), &cfg, &control, &mut |event| {
        if let RunEvent::Progress { step, metrics, .. } = event {
            bar.set_position(step);
            let get = |name: &str| metrics.iter().find(|(n, _)| *n == name).map_or(f64::NAN, |(_, v)| *v);
            bar.set_message(format!(
                "{:.1} dB reference, {:.0}% pairs misordered",
                get("psnr_db"),
                100.0 * get("rank_violations")
            ));
        }
    })?;
    bar.finish_and_clear();
    let frames_bar = super::progress_bar(files::TURNTABLE_FRAMES as u64, "turntable");
    let metrics = files::write_results(
        &args.out,
        &input,
        &cfg,
        &summary.snapshot,
        &summary.history,
        truth.as_ref(),
        args.size,
        summary.seconds,
        |i| {
            frames_bar.set_position(i as u64);
            true
        },
    )?;
    frames_bar.finish_and_clear();
    let mut line = format!(
        "reference view {:.2} dB, mask IoU {:.3} after {} steps in {:.1} s",
        metrics.reference_psnr_db, metrics.mask_iou, summary.steps_done, summary.seconds
    );
    if let Some(novel) = metrics.novel_mean_psnr_db() {
        line.push_str(&format!("; true views at 90°/180°: {novel:.2} dB"));
    }
    println!("{line}; wrote {}", args.out.display());
    Ok(())
}
