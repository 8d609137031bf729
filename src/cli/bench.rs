//! `sparsefield bench <lab>`: times each lab's standard workload.

use std::time::Instant;

use clap::{Args, Subcommand};

use crate::compute::image_io;
use crate::compute::image_io::BuiltinImage;
use crate::compute::inr::{BatchMode, FitConfig, Trainer};

#[derive(Debug, Subcommand)]
pub enum BenchLab {
    /// SIREN 2→256×3→1 on the built-in 256×256 camera image, full batch, Adam.
    Inr(InrBenchArgs),
    /// NeRF on the demo scene: time to 25 and 28 dB test PSNR, then the viewer's frame rates.
    Nerf(NerfBenchArgs),
    /// INR edits: derivative-stack and operator-step timings, then each edit trained on crops of
    /// coffee.png and applied to camera.png, scored against the pixel-domain target.
    Insp(InspBenchArgs),
    /// Pruning theory model: one run with each solver, then the default sweep (20 fractions ×
    /// 5 seeds), against plain PyTorch.
    Prune(super::bench_prune::PruneBenchArgs),
    /// NTK: the empirical Gram (n = 2000, d = 10, m = 4096) and all its eigenvalues, against numpy.
    Ntk(super::bench_ntk::NtkBenchArgs),
    /// Hard samples: 5 dense + 5 pruned digit MLPs (the lab's default populations), against PyTorch.
    Htl(super::bench_htl::HtlBenchArgs),
    /// NeuralLift-360: the built-in example with each prior, with and without the ranking loss,
    /// scored against its true views while it trains.
    Lift(super::bench_lift::LiftBenchArgs),
    /// StegaNeRF on the demo scene at 128²: a 64² image and 64 bits hidden, scored on unseen test
    /// cameras, with the robustness table against a published re-run.
    Stega(super::bench_stega::StegaBenchArgs),
    /// Untrained GNN tickets on Cora: 400-epoch GCN runs (UGT, edge-popup, dense) over seeds,
    /// against the UGTs repository's figures; time per run against plain PyTorch.
    Gnn(super::bench_gnn::GnnBenchArgs),
    /// StyleNAT's neighbourhood attention (32², 64 channels, 4 heads, k = 7): forward and backward
    /// against masked full attention by candle's ops and, with --pytorch, a plain PyTorch twin.
    Gan(super::bench_gan::GanBenchArgs),
}

#[derive(Debug, Args)]
pub struct InspBenchArgs {
    /// Side of the test image and the training crops.
    #[arg(long, default_value_t = 256)]
    pub size: u32,
    /// Points whose order-4 stack is timed.
    #[arg(long, default_value_t = 65_536)]
    pub points: usize,
    /// Edits to score (comma-separated; empty: timings only).
    #[arg(long, value_delimiter = ',', default_value = "blur,box-blur,denoise,deblur,inpaint")]
    pub ops: Vec<String>,
    /// Training crops of coffee.png per edit.
    #[arg(long, default_value_t = 3)]
    pub crops: u32,
    /// Steps for every INR fitted.
    #[arg(long, default_value_t = 300)]
    pub fit_steps: u64,
    /// Operator training steps.
    #[arg(long, default_value_t = 2000)]
    pub op_steps: u64,
    /// Write the edited images here.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct NerfBenchArgs {
    /// Image side of the demo scene.
    #[arg(long, default_value_t = 128)]
    pub size: u32,
    /// Stop training after this many seconds (or once 28 dB is reached).
    #[arg(long, default_value_t = 600.0)]
    pub max_secs: f64,
    /// Training seconds between test evaluations (their time is not counted).
    #[arg(long, default_value_t = 10.0)]
    pub eval_every_secs: f64,
    /// Side of the viewer frames timed on the GPU and the CPU.
    #[arg(long, default_value_t = 256)]
    pub view_size: u32,
    /// Write the trained checkpoint here.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Skip training: time the viewer on this checkpoint.
    #[arg(long)]
    pub ckpt: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct InrBenchArgs {
    /// Timed steps (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub steps: u32,
    #[arg(long, default_value_t = 2)]
    pub warmup: u32,
    #[arg(long, default_value_t = 256)]
    pub width: usize,
    #[arg(long, default_value_t = 256)]
    pub size: u32,
}

/// PyTorch 2.x on this project's reference machine (2 cores, torch threads = 2) for the same fit.
pub const PYTORCH_REFERENCE_MS_PER_STEP: f64 = 540.0;

/// Figures of one benchmark run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InrBenchResult {
    pub pixels: usize,
    pub median_ms_per_step: f64,
    pub mean_ms_per_step: f64,
    pub min_ms_per_step: f64,
    pub gflop_per_step: f64,
}

/// Runs `python3 benches/<script>` with `args` and returns the last line it printed (where the
/// PyTorch twins put their result); a failure names the script, its status, the end of its
/// error output and the Python packages it needs.
pub fn python_twin(script: &str, args: &[String], packages: &str) -> anyhow::Result<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches").join(script);
    let output = std::process::Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("could not start python3 for {}: {e}", path.display()))?;
    if !output.status.success() {
        anyhow::bail!(
            "{} failed ({}); it needs python3 with {packages} (pip install {packages}):\n{}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).lines().rev().take(5).collect::<Vec<_>>().join("\n")
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().to_string())
}

pub fn run(lab: BenchLab) -> anyhow::Result<()> {
    match lab {
        BenchLab::Inr(args) => {
            let result = bench_inr(&args)?;
            println!("inr fit step: {}×{} pixels, SIREN 2→{}×3→1, full batch", args.size, args.size, args.width);
            println!(
                "  median {:.1} ms/step (mean {:.1}, best {:.1}) over {} steps; {:.1} GFLOP/step in matmuls → {:.0} GFLOP/s",
                result.median_ms_per_step,
                result.mean_ms_per_step,
                result.min_ms_per_step,
                args.steps,
                result.gflop_per_step,
                result.gflop_per_step / (result.median_ms_per_step / 1e3)
            );
            if args.width == 256 && args.size == 256 {
                println!(
                    "  reference: PyTorch ≈ {PYTORCH_REFERENCE_MS_PER_STEP:.0} ms/step → {:.2}× its speed",
                    PYTORCH_REFERENCE_MS_PER_STEP / result.median_ms_per_step
                );
            }
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
        BenchLab::Nerf(args) => bench_nerf(&args),
        BenchLab::Insp(args) => super::bench_insp::bench_insp(&args),
        BenchLab::Prune(args) => super::bench_prune::bench_prune(&args),
        BenchLab::Ntk(args) => super::bench_ntk::bench_ntk(&args),
        BenchLab::Htl(args) => super::bench_htl::bench_htl(&args),
        BenchLab::Lift(args) => super::bench_lift::run(&args),
        BenchLab::Stega(args) => super::bench_stega::run(&args),
        BenchLab::Gnn(args) => super::bench_gnn::run(&args),
        BenchLab::Gan(args) => super::bench_gan::run(&args),
    }
}

/// Trains on the demo scene with test evaluations in between, then times the viewer.
pub fn bench_nerf(args: &NerfBenchArgs) -> anyhow::Result<()> {
    use crate::compute::control::RunControl;
    use crate::compute::nerf::orbit::Orbit;
    use crate::compute::nerf::synth::{DemoSpec, demo_dataset};
    use crate::compute::nerf::{TrainConfig, Trainer, evaluate};
    use std::sync::Arc;

    let start = Instant::now();
    let data = Arc::new(demo_dataset(&DemoSpec { size: args.size, ..DemoSpec::default() }));
    println!("nerf demo scene: rendered by the CPU ray tracer in {:.2} s", start.elapsed().as_secs_f64());
    if let Some(dir) = &args.ckpt {
        let (snapshot, _) = crate::compute::nerf::checkpoint::load(dir)?;
        return bench_nerf_view(args, &data, &snapshot);
    }
    println!("nerf train: {}", data.summary());
    let cfg = TrainConfig { steps: 1_000_000, ..TrainConfig::default() };
    let mut trainer = Trainer::new(data.clone(), &cfg, None)?;
    let control = RunControl::new();
    let (mut train_secs, mut samples, mut next_eval) = (0.0_f64, 0_usize, args.eval_every_secs);
    let mut reached: Vec<(f64, Option<(f64, u64)>)> = vec![(25.0, None), (28.0, None)];
    let mut last_psnr = f64::NAN;
    while train_secs < args.max_secs {
        let start = Instant::now();
        let record = trainer.step()?;
        train_secs += start.elapsed().as_secs_f64();
        samples += record.num_samples;
        if train_secs >= next_eval {
            next_eval += args.eval_every_secs;
            let (scores, _) = evaluate(&trainer.snapshot()?, &data.test, &control);
            last_psnr = scores.psnr_db;
            println!(
                "  {train_secs:6.1} s  step {:5}  test {:.2} dB  SSIM {:.4}  ({} samples/ray)",
                trainer.step_count(),
                scores.psnr_db,
                scores.ssim,
                record.num_samples / record.num_rays.max(1)
            );
            for (target, at) in &mut reached {
                if at.is_none() && scores.psnr_db >= *target {
                    *at = Some((train_secs, trainer.step_count()));
                }
            }
            if reached.iter().all(|(_, at)| at.is_some()) {
                break;
            }
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let (steps_per_sec, samples_per_sec) =
        (trainer.step_count() as f64 / train_secs.max(1e-9), samples as f64 / train_secs.max(1e-9));
    println!("  {steps_per_sec:.2} steps/s, {samples_per_sec:.0} samples/s; last test PSNR {last_psnr:.2} dB");
    for (target, at) in &reached {
        match at {
            Some((secs, step)) => println!("  {target:.0} dB reached after {secs:.1} s of training (step {step})"),
            None => println!("  {target:.0} dB not reached within {:.0} s", args.max_secs),
        }
    }
    let snapshot = trainer.snapshot()?;
    if let Some(out) = &args.out {
        let orbit = Orbit::from_views(&data.train, data.scene_box.center());
        crate::compute::nerf::checkpoint::save(&snapshot, &orbit, out, Default::default())?;
    }

    bench_nerf_view(args, &data, &snapshot)
}

/// Viewer: the baked fast path on the GPU while orbiting, the full field on the CPU at rest.
fn bench_nerf_view(
    args: &NerfBenchArgs,
    data: &crate::compute::nerf::Dataset,
    snapshot: &crate::compute::nerf::NerfSnapshot,
) -> anyhow::Result<()> {
    use crate::compute::nerf::bake::{self, ViewMode};
    use crate::compute::nerf::orbit::Orbit;
    use std::sync::Arc;
    let size = args.view_size;
    let start = Instant::now();
    let grid = Arc::new(bake::bake(snapshot, bake::BAKE_RESOLUTION, bake::BAKE_MAX_QUERIES));
    println!(
        "nerf view: bake {}³ in {:.2} s ({:.1}% of the box occupied)",
        grid.resolution,
        start.elapsed().as_secs_f64(),
        100.0 * snapshot.occupancy.occupancy()
    );
    let orbit = Orbit::from_views(&data.train, data.scene_box.center());
    let cameras = orbit.turntable(24, size, size);
    match crate::render::HeadlessGpu::new() {
        Ok(gpu) => {
            use crate::render::nerf_view::{NerfGpu, NerfViewFeedback, NerfViewRequest, Versioned};
            let mut nerf_gpu = NerfGpu::new(&gpu.device, crate::render::wgpu::TextureFormat::Rgba8Unorm);
            let request = |camera| NerfViewRequest {
                view_id: 1,
                grid: Some(Versioned { generation: 1, value: grid.clone() }),
                camera,
                mode: ViewMode::Rgb,
                depth_range: (2.0, 6.0),
                cpu_frame: None,
                feedback: Arc::new(NerfViewFeedback::default()),
            };
            // The first march compiles the shader.
            let start = Instant::now();
            nerf_gpu.march_blocking(&gpu.device, &gpu.queue, &request(cameras[0])).map_err(anyhow::Error::msg)?;
            let compile = start.elapsed().as_secs_f64();
            let requests: Vec<_> = cameras.iter().map(|c| request(*c)).collect();
            let secs = nerf_gpu.time_marches(&gpu.device, &gpu.queue, &requests).map_err(anyhow::Error::msg)?;
            #[allow(clippy::cast_precision_loss)]
            let fps = cameras.len() as f64 / secs;
            println!(
                "  GPU fast path on {} ({:?}): {fps:.1} frames/s at {size}², first frame (with shader compile) {compile:.2} s",
                gpu.info.name, gpu.info.backend
            );
        }
        Err(e) => println!("  GPU fast path: skipped, {e}"),
    }
    let start = Instant::now();
    let camera = cameras[0];
    let _ = crate::compute::nerf::render::render_camera(
        &snapshot.weights,
        &snapshot.occupancy,
        &snapshot.march,
        &camera,
        snapshot.background,
    );
    println!("  full-quality frame (full field on the CPU) at {size}²: {:.2} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// Times training steps of the standard INR fit.
pub fn bench_inr(args: &InrBenchArgs) -> anyhow::Result<InrBenchResult> {
    let builtin = BuiltinImage::Camera;
    let image = image_io::load_image_bytes(builtin.bytes(), builtin.file_name())?.image.downscaled_to(args.size);
    let cfg =
        FitConfig { width: args.width, batch: BatchMode::Full, snapshot_interval_secs: 0.0, ..FitConfig::default() };
    let mut trainer = Trainer::new(&image, &cfg, None)?;
    for _ in 0..args.warmup {
        trainer.step()?;
    }
    let mut times_ms = Vec::new();
    for _ in 0..args.steps.max(1) {
        let start = Instant::now();
        trainer.step()?;
        times_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times_ms.sort_by(f64::total_cmp);
    #[allow(clippy::cast_precision_loss)]
    let mean = times_ms.iter().sum::<f64>() / times_ms.len() as f64;
    let pixels = image.num_pixels();
    // Forward is one matmul per layer; backward two (input and weight gradients).
    #[allow(clippy::cast_precision_loss)]
    let gflop = 3.0 * 2.0 * pixels as f64 * cfg.siren_config(image.channels).macs_per_point() as f64 / 1e9;
    Ok(InrBenchResult {
        pixels,
        median_ms_per_step: times_ms[times_ms.len() / 2],
        mean_ms_per_step: mean,
        min_ms_per_step: times_ms[0],
        gflop_per_step: gflop,
    })
}
