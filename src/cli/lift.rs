//! `sparsefield lift`: one photo (or the built-in example) → a NeRF checkpoint, a turntable GIF,
//! the reference and novel views, `metrics.json` and the loss history.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use crate::compute::chart;
use crate::compute::control::{RunControl, RunEvent};
use crate::compute::image_io::{self, ImageData};
use crate::compute::lift::example::{self, ExampleTruth};
use crate::compute::lift::input::{self, DepthChoice, LiftImage, LiftInput, MaskSettings, MaskSource};
use crate::compute::lift::train::{self, LiftConfig, LiftMetrics, LiftRecord, PriorKind};
use crate::compute::nerf::checkpoint;
use crate::compute::nerf::train::NerfSnapshot;

/// Frames in the turntable GIF.
pub const TURNTABLE_FRAMES: usize = 36;

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

pub fn run(args: &LiftArgs) -> anyhow::Result<()> {
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
        depth_label(&input),
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
    let frames_bar = super::progress_bar(TURNTABLE_FRAMES as u64, "turntable");
    let metrics = write_results(
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

fn depth_label(input: &LiftInput) -> &'static str {
    match input.depth_origin {
        input::DepthOrigin::Inflation => "inflation",
        input::DepthOrigin::File => "file",
        input::DepthOrigin::Given => "true",
    }
}

fn write_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    crate::compute::files::write_atomic(path, text).with_context(|| format!("{}: cannot write", path.display()))
}

/// Writes a lift's results into `dir`: the checkpoint (`nerf.safetensors`, `config.json`; the
/// NeRF lab and `sparsefield nerf render` read it), `metrics.json`, `history.csv`,
/// `reference.png` (photo, mask, rough depth, render, rendered depth), `views.png` (eight views
/// around; with the true views below for the example) and `turntable.gif`. `on_frame` is called
/// before each turntable frame and stops the export when it returns false.
pub fn write_results(
    dir: &Path,
    input: &LiftInput,
    cfg: &LiftConfig,
    snapshot: &NerfSnapshot,
    history: &[LiftRecord],
    truth: Option<&ExampleTruth>,
    size: u32,
    seconds: f64,
    mut on_frame: impl FnMut(usize) -> bool,
) -> anyhow::Result<LiftMetrics> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the folder", dir.display()))?;
    let (metrics, render) = train::evaluate(snapshot, input, cfg, truth);
    let orbit = cfg.reference_orbit();
    let info = HashMap::from([
        ("lifted_from".to_owned(), serde_json::json!(input.name)),
        ("reference_psnr_db".to_owned(), serde_json::json!(metrics.reference_psnr_db)),
        ("mask_iou".to_owned(), serde_json::json!(metrics.mask_iou)),
    ]);
    checkpoint::save(snapshot, &orbit, dir, info)?;
    let by_azimuth = |values: &[(f32, f64)]| -> serde_json::Map<String, serde_json::Value> {
        values.iter().map(|(a, p)| (format!("{a:.0}"), serde_json::json!(p))).collect()
    };
    let novel = by_azimuth(&metrics.novel_psnr_db);
    let novel_iou = by_azimuth(&metrics.novel_silhouette_iou);
    write_json(
        &dir.join("metrics.json"),
        &serde_json::json!({
            "image": input.name,
            "width": input.width,
            "height": input.height,
            "mask": input.mask_origin.label(),
            "depth": depth_label(input),
            "prior": cfg.prior.label(),
            "ranking_loss": cfg.rank_weight > 0.0,
            "steps": snapshot.step,
            "seconds": seconds,
            "seed": cfg.seed,
            "reference_psnr_db": metrics.reference_psnr_db,
            "mask_iou": metrics.mask_iou,
            "novel_psnr_db": novel,
            "novel_mean_psnr_db_90_180": metrics.novel_mean_psnr_db(),
            "novel_silhouette_iou": novel_iou,
            "novel_mean_silhouette_iou_90_180": metrics.novel_mean_iou(),
            "config": cfg,
        }),
    )?;
    let mut csv =
        String::from("step,loss,psnr_db,mask,rank,rank_violations,symmetry,hull,entropy,samples,elapsed_secs\n");
    for r in history {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            r.step,
            r.loss,
            r.psnr_db,
            r.mask_loss,
            r.rank_loss,
            r.rank_violations,
            r.symmetry_loss,
            r.hull_loss,
            r.entropy,
            r.samples,
            r.elapsed_secs
        ));
    }
    crate::compute::files::write_atomic(dir.join("history.csv"), csv)
        .with_context(|| format!("{}: cannot write history.csv", dir.display()))?;

    let depth_range = (train::CAMERA_DISTANCE - 1.5, train::CAMERA_DISTANCE + 1.5);
    let reference = [
        input.composited(example::BACKGROUND.to_array()),
        input.mask_image(),
        input.depth_image(),
        render.rgb_image(),
        render.depth_image(depth_range.0, depth_range.1),
    ];
    let labels = ["photo", "mask", "rough depth", "render", "depth"];
    save_labelled(&reference, &labels, &dir.join("reference.png"))?;

    let azimuths: Vec<f32> = (0..8_u8).map(|k| 45.0 * f32::from(k)).collect();
    let views: Vec<ImageData> =
        azimuths.iter().map(|&a| train::render_azimuth(snapshot, cfg, a, size, size).rgb_image()).collect();
    let view_labels: Vec<String> = azimuths.iter().map(|a| format!("{a:.0} deg")).collect();
    let mut rows = vec![(views, view_labels)];
    if let Some(truth) = truth {
        let lifted: Vec<ImageData> = truth
            .views
            .iter()
            .map(|v| train::render_azimuth(snapshot, cfg, v.azimuth_deg, size, size).rgb_image())
            .collect();
        let true_images: Vec<ImageData> = truth.views.iter().map(|v| upscale(&v.image, size)).collect();
        let mut labels: Vec<String> = truth.views.iter().map(|v| format!("lift {:.0}", v.azimuth_deg)).collect();
        labels.extend(truth.views.iter().map(|v| format!("true {:.0}", v.azimuth_deg)));
        rows.push((lifted.into_iter().chain(true_images).collect(), labels));
    }
    let row_images: Vec<ImageData> = rows
        .iter()
        .map(|(images, labels)| {
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            labelled_strip(images, &labels)
        })
        .collect();
    let sheet = stack_rows(&row_images);
    image_io::save_png(&sheet, &dir.join("views.png"))?;

    let mut gif = super::nerf::GifWriter::create(&dir.join("turntable.gif"), 12)?;
    super::nerf::turntable(snapshot, &orbit, TURNTABLE_FRAMES, size, &mut on_frame, |_, frame| gif.add(frame))?;
    gif.finish()?;
    Ok(metrics)
}

/// Nearest-neighbour enlargement of a small image to `size` pixels on its longer side.
fn upscale(image: &ImageData, size: u32) -> ImageData {
    let factor = (size / image.width.max(image.height).max(1)).max(1);
    if factor == 1 {
        return image.clone();
    }
    let (w, h) = (image.width * factor, image.height * factor);
    let mut pixels = Vec::with_capacity((w * h) as usize * image.channels);
    for y in 0..h {
        for x in 0..w {
            for c in 0..image.channels {
                pixels.push(image.at(x / factor, y / factor, c));
            }
        }
    }
    ImageData { width: w, height: h, channels: image.channels, pixels }
}

/// Images side by side, each enlarged to at least 128 pixels and captioned underneath.
fn labelled_strip(images: &[ImageData], labels: &[&str]) -> ImageData {
    let enlarged: Vec<ImageData> = images.iter().map(|i| upscale(i, 128)).collect();
    let mut strip = train::strip(&enlarged);
    let caption = 12;
    let mut pixels = strip.pixels;
    pixels.extend(std::iter::repeat_n(1.0, (strip.width * caption) as usize * 3));
    strip = ImageData { height: strip.height + caption, pixels, ..strip };
    let mut x = 0_i64;
    let y = i64::from(strip.height - caption + 2);
    for (image, label) in enlarged.iter().zip(labels) {
        chart::draw_text(&mut strip, x + 4, y, label, [0.1, 0.1, 0.1]);
        x += i64::from(image.width);
    }
    strip
}

fn stack_rows(rows: &[ImageData]) -> ImageData {
    let width = rows.iter().map(|r| r.width).max().unwrap_or(1);
    let height: u32 = rows.iter().map(|r| r.height).sum::<u32>().max(1);
    let mut pixels = vec![1.0; (width * height) as usize * 3];
    let mut y0 = 0;
    for row in rows {
        for y in 0..row.height {
            let start = ((y0 + y) * width) as usize * 3;
            let src = (y * row.width) as usize * 3;
            pixels[start..start + row.width as usize * 3]
                .copy_from_slice(&row.pixels[src..src + row.width as usize * 3]);
        }
        y0 += row.height;
    }
    ImageData { width, height, channels: 3, pixels }
}

fn save_labelled(images: &[ImageData], labels: &[&str], path: &Path) -> anyhow::Result<()> {
    image_io::save_png(&labelled_strip(images, labels), path)?;
    Ok(())
}
