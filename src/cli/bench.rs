//! `sparsefield bench <lab>`: times each lab's standard workload.

use std::time::Instant;

use clap::{Args, Subcommand};

use crate::compute::image_io;
use crate::compute::inr::{BatchMode, FitConfig, Trainer};
use crate::ui::BuiltinImage;

#[derive(Debug, Subcommand)]
pub enum BenchLab {
    /// SIREN 2→256×3→1 on the built-in 256×256 camera image, full batch, Adam.
    Inr(InrBenchArgs),
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
    }
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
