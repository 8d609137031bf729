//! `sparsefield nerf train|eval|render|make-dataset`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use crate::compute::control::{RunControl, RunEvent};
use crate::compute::image_io;
use crate::compute::nerf::checkpoint;
use crate::compute::nerf::dataset::{self, Dataset, LoadOptions};
use crate::compute::nerf::orbit::Orbit;
use crate::compute::nerf::render::RenderOutput;
use crate::compute::nerf::synth::{self, DemoSpec};
use crate::compute::nerf::turntable::{GifWriter, turntable};
use crate::compute::nerf::{self, NerfSnapshot, TrainConfig};

#[derive(Debug, Subcommand)]
pub enum NerfCommand {
    /// Train a radiance field; writes the checkpoint, metrics.json, history.csv and test-view renders.
    Train(TrainArgs),
    /// Score a checkpoint on a data set's test views (PSNR, SSIM).
    Eval(EvalArgs),
    /// Render a 360° turntable of a checkpoint as a GIF or a folder of PNGs.
    Render(RenderArgs),
    /// Render a triangle mesh (OBJ, PLY, OFF) or the built-in demo scene into a Blender-format data set.
    MakeDataset(MakeDatasetArgs),
}

/// Where the data comes from.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// A Blender/NeRF-synthetic or instant-ngp data set folder, or `demo` for the built-in scene.
    #[arg(long, default_value = "demo")]
    pub data: String,
    /// Integer downscale factor applied to every image of a data set folder.
    #[arg(long, default_value_t = 1)]
    pub downscale: u32,
    /// Image size of the built-in demo scene.
    #[arg(long, default_value_t = 128)]
    pub demo_size: u32,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, default_value_t = 2000)]
    pub steps: u64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Adam learning rate at the start (decays ×0.1 over the run).
    #[arg(long, default_value_t = 1e-2)]
    pub lr: f64,
    /// Samples per batch (the ray count adapts to it).
    #[arg(long, default_value_t = 1 << 16)]
    pub batch_samples: usize,
    /// Continue from a checkpoint folder.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A checkpoint folder written by `nerf train` or the app.
    #[arg(long)]
    pub ckpt: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Also write the renders and metrics.json here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[arg(long)]
    pub ckpt: PathBuf,
    /// Frames in the full turn.
    #[arg(long, default_value_t = 60)]
    pub orbit: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 256)]
    pub size: u32,
    /// Elevation above the horizon in degrees (default: the checkpoint's).
    #[arg(long)]
    pub elevation: Option<f32>,
    /// A `.gif` file, or a folder for numbered PNGs.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct MakeDatasetArgs {
    /// A triangle mesh: .obj, .ply or .off. Without it, the built-in demo scene is rendered.
    #[arg(long)]
    pub mesh: Option<PathBuf>,
    /// Training views (validation gets a tenth, test a fifth of this, at least 1 each).
    #[arg(long, default_value_t = 100)]
    pub views: usize,
    #[arg(long, default_value_t = 256)]
    pub size: u32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The mesh's up axis is +Y (as in most OBJ files); it is turned so that +Z is up.
    #[arg(long)]
    pub y_up: bool,
    /// The data set folder; one already there is replaced only with the top-level --force.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(command: NerfCommand) -> anyhow::Result<()> {
    match command {
        NerfCommand::Train(args) => train(&args),
        NerfCommand::Eval(args) => eval(&args),
        NerfCommand::Render(args) => render(&args),
        NerfCommand::MakeDataset(args) => make_dataset(&args),
    }
}

/// Largest image side the CLI renders or generates.
const MAX_SIDE: u32 = 4096;

/// Loads `--data` (a folder, or `demo`).
pub fn load_data(args: &DataArgs) -> anyhow::Result<Dataset> {
    if args.data == "demo" {
        if !(8..=MAX_SIDE).contains(&args.demo_size) {
            bail!("--demo-size must be 8–{MAX_SIDE}, got {}", args.demo_size);
        }
        return Ok(synth::demo_dataset(&DemoSpec { size: args.demo_size, ..DemoSpec::default() }));
    }
    let options = LoadOptions { downscale: args.downscale, ..LoadOptions::default() };
    let data = dataset::load_dataset(Path::new(&args.data), &options)?;
    for notice in &data.notices {
        eprintln!("note: {notice}");
    }
    for warning in &data.warnings {
        eprintln!("warning: {}: {warning}", args.data);
    }
    Ok(data)
}

/// The paths a command reads: the data set folder (unless it is the built-in demo) and `others`.
fn inputs_of<'a, const N: usize>(data: &'a DataArgs, others: [Option<&'a Path>; N]) -> Vec<&'a Path> {
    let mut inputs: Vec<&Path> = others.into_iter().flatten().collect();
    if data.data != "demo" {
        inputs.push(Path::new(&data.data));
    }
    inputs
}

fn write_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    crate::compute::files::write_atomic(path, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// Writes `renders` as `dir/r_{i}.png`, `depth_{i}.png`, `opacity_{i}.png`.
fn write_renders(renders: &[RenderOutput], dir: &Path, depth_range: (f32, f32)) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the folder", dir.display()))?;
    for (i, render) in renders.iter().enumerate() {
        image_io::save_png(&render.rgb_image(), &dir.join(format!("r_{i}.png")))?;
        image_io::save_png(&render.depth_image(depth_range.0, depth_range.1), &dir.join(format!("depth_{i}.png")))?;
        image_io::save_png(&render.opacity_image(), &dir.join(format!("opacity_{i}.png")))?;
    }
    Ok(())
}

/// Near and far depth of the scene box seen from `orbit`'s distance.
fn depth_range(snapshot: &NerfSnapshot, orbit: &Orbit) -> (f32, f32) {
    let half_diagonal = 0.5 * snapshot.occupancy.scene_box.size().length();
    ((orbit.radius - half_diagonal).max(0.0), orbit.radius + half_diagonal)
}

fn train(args: &TrainArgs) -> anyhow::Result<()> {
    let data = Arc::new(load_data(&args.data)?);
    super::check_output_apart(&args.out, &inputs_of(&args.data, [args.resume.as_deref()]))?;
    super::prepare_output_dir(&args.out, "nerf train")?;
    let init = match &args.resume {
        Some(dir) => Some(checkpoint::load(dir)?.0),
        None => None,
    };
    let cfg = TrainConfig {
        steps: args.steps,
        seed: args.seed,
        learning_rate: args.lr,
        target_samples_per_batch: args.batch_samples,
        ..TrainConfig::default()
    };
    eprintln!("{}", data.summary());
    let bar = super::progress_bar(args.steps, "train");
    let control = RunControl::new();
    let summary = nerf::train(data.clone(), &cfg, init.as_ref(), &control, &mut |event| {
        if let RunEvent::Progress { step, metrics, .. } = event {
            bar.set_position(step);
            let get = |name: &str| metrics.iter().find(|(n, _)| *n == name).map_or(f64::NAN, |(_, v)| *v);
            bar.set_message(format!(
                "{:.2} dB batch, {:.0} samples/ray, {:.1}% occupied",
                get("psnr_db"),
                get("samples_per_ray"),
                100.0 * get("occupancy")
            ));
        }
    })?;
    bar.finish_and_clear();
    let train_seconds = summary.seconds;

    let eval_bar = super::progress_bar(data.test.len() as u64, "eval");
    let (scores, renders) = nerf::evaluate(&summary.snapshot, &data.test, &control);
    eval_bar.finish_and_clear();
    let orbit = Orbit::from_views(&data.train, data.scene_box.center());
    let samples: usize = summary.history.iter().map(|r| r.num_samples).sum();
    #[allow(clippy::cast_precision_loss)]
    let (steps_per_sec, samples_per_sec) =
        (summary.steps_done as f64 / train_seconds.max(1e-9), samples as f64 / train_seconds.max(1e-9));
    let metrics = serde_json::json!({
        "psnr_db": scores.psnr_db,
        "ssim": scores.ssim,
        "seconds": train_seconds,
        "steps": summary.steps_done,
        "steps_per_sec": steps_per_sec,
        "samples_per_sec": samples_per_sec,
        "per_view_psnr_db": scores.per_view_psnr_db,
        "per_view_ssim": scores.per_view_ssim,
        "dataset": data.summary(),
        "seed": args.seed,
        "learning_rate": args.lr,
    });
    let info = HashMap::from([
        ("dataset".to_owned(), serde_json::json!(data.summary())),
        ("psnr_db".to_owned(), serde_json::json!(scores.psnr_db)),
        ("ssim".to_owned(), serde_json::json!(scores.ssim)),
    ]);
    checkpoint::save(&summary.snapshot, &orbit, &args.out, info)?;
    write_json(&args.out.join("metrics.json"), &metrics)?;
    let mut csv = String::from("step,loss,psnr_db,rays,samples,elapsed_secs\n");
    for r in &summary.history {
        csv.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.step, r.loss, r.psnr_db, r.num_rays, r.num_samples, r.elapsed_secs
        ));
    }
    crate::compute::files::write_atomic(args.out.join("history.csv"), csv)
        .with_context(|| format!("{}: cannot write history.csv", args.out.display()))?;
    write_renders(&renders, &args.out.join("test"), depth_range(&summary.snapshot, &orbit))?;
    println!(
        "test PSNR {:.2} dB, SSIM {:.4} after {} steps in {:.1} s ({steps_per_sec:.2} steps/s, {:.0} samples/s); wrote {}",
        scores.psnr_db,
        scores.ssim,
        summary.steps_done,
        train_seconds,
        samples_per_sec,
        args.out.display()
    );
    Ok(())
}

fn eval(args: &EvalArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        super::check_output_apart(out, &inputs_of(&args.data, [Some(args.ckpt.as_path())]))?;
        super::prepare_output_dir(out, "nerf eval")?;
    }
    let (snapshot, config) = checkpoint::load(&args.ckpt)?;
    let data = load_data(&args.data)?;
    if data.test.is_empty() {
        bail!("{}: the data set has no test views", args.data.data);
    }
    let control = RunControl::new();
    let start = std::time::Instant::now();
    let (scores, renders) = nerf::evaluate(&snapshot, &data.test, &control);
    if let Some(out) = &args.out {
        write_renders(&renders, out, depth_range(&snapshot, &config.orbit))?;
        let metrics = serde_json::json!({
            "psnr_db": scores.psnr_db,
            "ssim": scores.ssim,
            "per_view_psnr_db": scores.per_view_psnr_db,
            "per_view_ssim": scores.per_view_ssim,
            "seconds": start.elapsed().as_secs_f64(),
            "dataset": data.summary(),
            "steps": snapshot.step,
        });
        write_json(&out.join("metrics.json"), &metrics)?;
    }
    println!(
        "test PSNR {:.2} dB, SSIM {:.4} over {} views ({})",
        scores.psnr_db,
        scores.ssim,
        data.test.len(),
        data.summary()
    );
    Ok(())
}

fn render(args: &RenderArgs) -> anyhow::Result<()> {
    if !(8..=MAX_SIDE).contains(&args.size) {
        bail!("--size must be 8–{MAX_SIDE}, got {}", args.size);
    }
    if !(1..=3600).contains(&args.orbit) {
        bail!("--orbit must be 1–3600 frames, got {}", args.orbit);
    }
    super::check_output_apart(&args.out, &[&args.ckpt])?;
    let (snapshot, config) = checkpoint::load(&args.ckpt)?;
    let mut orbit = config.orbit;
    if let Some(elevation) = args.elevation {
        if !elevation.is_finite() {
            bail!("--elevation must be a number of degrees, got {elevation}");
        }
        orbit.elevation = elevation.clamp(-89.0, 89.0).to_radians();
    }
    let is_gif = args.out.extension().is_some_and(|e| e.eq_ignore_ascii_case("gif"));
    if is_gif {
        super::prepare_parent_dir(&args.out)?;
    } else {
        super::prepare_output_dir(&args.out, "nerf render")?;
    }
    let bar = super::progress_bar(args.orbit as u64, "render");
    let on_frame = |i: usize| {
        bar.set_position(i as u64);
        true
    };
    if is_gif {
        let mut gif = GifWriter::create(&args.out, 20)?;
        turntable(&snapshot, &orbit, args.orbit, args.size, on_frame, |_, frame| gif.add(frame))?;
        gif.finish()?;
    } else {
        let dir = args.out.clone();
        turntable(&snapshot, &orbit, args.orbit, args.size, on_frame, |i, frame| {
            image_io::save_png(frame, &dir.join(format!("frame_{i:04}.png")))
        })?;
    }
    bar.finish_and_clear();
    println!("wrote {} frames ({}×{}) to {}", args.orbit, args.size, args.size, args.out.display());
    Ok(())
}

/// Removes the files of a Blender-layout data set from `dir` (the transforms files and the
/// `r_<n>.png` images of each split folder), so that a replacement leaves no stale views; every
/// other file is kept.
fn remove_dataset_files(dir: &Path) -> anyhow::Result<()> {
    let remove = |path: &Path| {
        std::fs::remove_file(path).with_context(|| format!("{}: cannot remove the old data set's file", path.display()))
    };
    for name in ["transforms.json", "transforms_train.json", "transforms_val.json", "transforms_test.json"] {
        if dir.join(name).is_file() {
            remove(&dir.join(name))?;
        }
    }
    for split in ["train", "val", "test"] {
        let Ok(entries) = std::fs::read_dir(dir.join(split)) else { continue };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_view = name
                .strip_prefix("r_")
                .and_then(|rest| rest.strip_suffix(".png"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if is_view {
                remove(&entry.path())?;
            }
        }
    }
    Ok(())
}

fn make_dataset(args: &MakeDatasetArgs) -> anyhow::Result<()> {
    if !(8..=MAX_SIDE).contains(&args.size) {
        bail!("--size must be 8–{MAX_SIDE}, got {}", args.size);
    }
    if !(1..=10_000).contains(&args.views) {
        bail!("--views must be 1–10000, got {}", args.views);
    }
    if let Some(mesh) = &args.mesh {
        super::check_output_apart(&args.out, &[mesh])?;
    }
    let existing = ["transforms_train.json", "transforms.json"].iter().any(|name| args.out.join(name).exists());
    if existing && !super::forced() {
        bail!("{}: a data set is already there; pass --force to replace it, or pick another --out", args.out.display());
    }
    super::prepare_output_dir(&args.out, "nerf make-dataset")?;
    let spec = DemoSpec {
        size: args.size,
        num_train: args.views,
        num_val: (args.views / 10).max(1),
        num_test: (args.views / 5).max(1),
        seed: args.seed,
    };
    let data = match &args.mesh {
        Some(path) => {
            let mut mesh = synth::load_mesh(path)?;
            if args.y_up {
                // (x, y, z) → (x, −z, y): a quarter turn about +X takes +Y to +Z.
                for p in &mut mesh.positions {
                    *p = glam::Vec3::new(p.x, -p.z, p.y);
                }
            }
            let mut data = synth::mesh_dataset(&mesh, &spec);
            if let Some(stem) = path.file_stem() {
                data.name = stem.to_string_lossy().into_owned();
            }
            data
        }
        None => synth::demo_dataset(&spec),
    };
    for notice in &data.notices {
        eprintln!("note: {notice}");
    }
    for warning in &data.warnings {
        eprintln!("warning: {warning}");
    }
    if existing {
        remove_dataset_files(&args.out)?;
    }
    dataset::write_dataset(&data, &args.out)?;
    println!("wrote {} to {}", data.summary(), args.out.display());
    Ok(())
}
