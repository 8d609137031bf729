//! `sparsefield bench stega`: StegaNeRF on the NeRF demo scene at 128², scored on test cameras
//! never used in stage 2, against the goals and a published re-run's robustness figures.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use crate::compute::control::RunControl;
use crate::compute::image_io::{self, BuiltinImage};
use crate::compute::nerf::synth::{DemoSpec, demo_dataset};
use crate::compute::nerf::{self, NerfSnapshot, TrainConfig, checkpoint};
use crate::compute::stega::attacks::Attack;
use crate::compute::stega::embed::{self, EmbedConfig, EmbedMetrics};
use crate::compute::stega::loss::LossWeights;
use crate::compute::stega::robustness::{self, SweepRow};
use crate::compute::stega::secret::Secret;
use crate::compute::stega::view;

/// A published re-run of StegaNeRF with 32-bit messages: bit accuracy clean and under noise
/// σ = 0.05, JPEG q = 75 and a 10% crop.
const ANCHORS: [(&str, f64); 4] = [("clean", 0.9315), ("noise", 0.5448), ("jpeg", 0.7328), ("crop", 0.7587)];

#[derive(Debug, Args)]
pub struct StegaBenchArgs {
    /// Stage 1: a checkpoint of the demo scene at 128² (trained here for 2000 steps when absent).
    #[arg(long)]
    pub ckpt: Option<PathBuf>,
    /// Stage-2 steps of every run.
    #[arg(long, default_value_t = EmbedConfig::default().steps)]
    pub steps: u64,
    /// The runs: `image` (a 64² image), `fidelity` (the same with render weight 10), `bits` (64
    /// bits, then the robustness table), `robust` (64 bits trained against attacks), `masking`
    /// (the image without the gradient mask).
    #[arg(long, value_delimiter = ',', default_value = "image,bits")]
    pub runs: Vec<String>,
    /// Write each run's metrics (and the stage-1 checkpoint, when trained here) into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// One run's figures.
#[derive(Clone, Debug, serde::Serialize)]
struct RunFigures {
    name: String,
    seconds: f64,
    steps_per_sec: f64,
    /// Seconds to render and decode one 128² view (the lab's view at rest).
    view_secs: f64,
    metrics: EmbedMetrics,
    table: Vec<SweepRow>,
}

pub fn run(args: &StegaBenchArgs) -> anyhow::Result<()> {
    for name in &args.runs {
        if !["image", "fidelity", "bits", "robust", "masking"].contains(&name.as_str()) {
            anyhow::bail!("unknown run `{name}`; pick from image, fidelity, bits, robust, masking");
        }
    }
    if let Some(out) = &args.out {
        super::prepare_output_dir(out, "bench stega")?;
    }
    let data = Arc::new(demo_dataset(&DemoSpec { size: 128, ..DemoSpec::default() }));
    let (stage1, orbit) = match &args.ckpt {
        Some(dir) => {
            let (snapshot, config) = checkpoint::load(dir)?;
            (snapshot, config.orbit)
        }
        None => {
            eprintln!("stage 1: training the demo scene (2000 steps)…");
            let started = Instant::now();
            let cfg = TrainConfig { steps: 2000, snapshot_interval_secs: 0.0, ..TrainConfig::default() };
            let summary = nerf::train(data.clone(), &cfg, None, &RunControl::new(), &mut |_| {})?;
            eprintln!("stage 1 trained in {:.0} s", started.elapsed().as_secs_f64());
            let orbit = crate::compute::nerf::orbit::Orbit::from_views(&data.train, data.scene_box.center());
            if let Some(out) = &args.out {
                checkpoint::save(&summary.snapshot, &orbit, &out.join("stage1"), Default::default())?;
            }
            (summary.snapshot, orbit)
        }
    };
    let train: Vec<_> = data.train.iter().map(|v| v.camera).collect();
    let test: Vec<_> = data.test.iter().map(|v| v.camera).collect();
    let truths: Vec<_> = data.test.iter().map(|v| v.composited_image(data.background)).collect();
    let coffee = image_io::load_image_bytes(BuiltinImage::Coffee.bytes(), "coffee.png")?.image;
    let mut all = Vec::new();
    for name in &args.runs {
        let (secret, cfg) = match name.as_str() {
            "image" => (Secret::image(&coffee, 64)?, EmbedConfig { steps: args.steps, ..EmbedConfig::default() }),
            "fidelity" => (
                Secret::image(&coffee, 64)?,
                EmbedConfig {
                    steps: args.steps,
                    weights: LossWeights { render: 10.0, ..LossWeights::default() },
                    ..EmbedConfig::default()
                },
            ),
            "masking" => (
                Secret::image(&coffee, 64)?,
                EmbedConfig { steps: args.steps, masking: false, ..EmbedConfig::default() },
            ),
            "bits" => (Secret::bits(64, 1)?, EmbedConfig { steps: args.steps, ..EmbedConfig::default() }),
            _ => (Secret::bits(64, 1)?, EmbedConfig { steps: args.steps, augment: true, ..EmbedConfig::default() }),
        };
        let figures = one_run(name, &stage1, &train, &test, &truths, &orbit, &secret, &cfg)?;
        report(&figures);
        all.push(figures);
    }
    if let Some(out) = &args.out {
        crate::compute::files::write_atomic(out.join("bench.json"), serde_json::to_string_pretty(&all)?)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn one_run(
    name: &str,
    stage1: &NerfSnapshot,
    train: &[crate::compute::nerf::Camera],
    test: &[crate::compute::nerf::Camera],
    truths: &[crate::compute::image_io::ImageData],
    orbit: &crate::compute::nerf::orbit::Orbit,
    secret: &Secret,
    cfg: &EmbedConfig,
) -> anyhow::Result<RunFigures> {
    let bar = super::progress_bar(cfg.steps, name);
    let control = RunControl::new();
    let summary = embed::embed(stage1, train, orbit, secret, cfg, &control, &mut |event| {
        super::show_progress(&bar, &event);
    })?;
    bar.finish_and_clear();
    let (metrics, renders) = embed::evaluate(stage1, &summary.snapshot, secret, test, truths, &control)?;
    let table = if matches!(secret, Secret::Image(_)) {
        Vec::new()
    } else {
        let mut rows = vec![robustness::score_attack(
            &summary.snapshot.decoder,
            secret,
            Attack::Noise { sigma: 0.0 },
            &renders.marked,
            &renders.clean,
        )?];
        for attack in Attack::TABLE {
            rows.push(robustness::score_attack(
                &summary.snapshot.decoder,
                secret,
                attack,
                &renders.marked,
                &renders.clean,
            )?);
        }
        rows
    };
    // What the lab does when the viewer comes to rest: render the view (marked and stage 1) at
    // 128² and decode it.
    let started = Instant::now();
    let renders = view::render_pair(&summary.snapshot.field, stage1, &orbit.camera(128, 128));
    view::recover_view(renders, &summary.snapshot.decoder, None, 0)?;
    let view_secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let steps_per_sec = summary.steps_done as f64 / summary.seconds.max(1e-9);
    Ok(RunFigures { name: name.to_owned(), seconds: summary.seconds, steps_per_sec, view_secs, metrics, table })
}

fn report(f: &RunFigures) {
    let m = &f.metrics;
    println!(
        "{}: {:.0} s ({:.2} steps/s; goal ≤ 600 s); a view at rest rendered and decoded in {:.2} s (goal ≤ 1)",
        f.name, f.seconds, f.steps_per_sec, f.view_secs
    );
    println!(
        "  render vs stage 1 {:.2} dB (goal ≥ 35), SSIM {:.4}; vs ground truth {:.2} dB, stage 1 {:.2} dB (goal: drop ≤ 0.5)",
        m.render_psnr_vs_stage1_db,
        m.render_ssim,
        m.render_psnr_vs_ground_truth_db.unwrap_or(f64::NAN),
        m.stage1_psnr_vs_ground_truth_db.unwrap_or(f64::NAN)
    );
    if let Some(p) = m.recovery_psnr_db {
        println!(
            "  secret {p:.2} dB (goal ≥ 25), SSIM {:.3} (goal ≥ 0.9); from clean views {:.2} dB",
            m.recovery_ssim.unwrap_or(f64::NAN),
            m.clean_recovery_psnr_db.unwrap_or(f64::NAN)
        );
    }
    if let Some(a) = m.bit_accuracy {
        println!(
            "  bit accuracy {:.2}% (goal ≥ 99), clean views {:.2}%",
            100.0 * a,
            100.0 * m.clean_bit_accuracy.unwrap_or(f64::NAN)
        );
    }
    let range = |v: &[f32]| v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let ((marked_low, marked_high), (clean_low, clean_high)) = (range(&m.marked_scores), range(&m.clean_scores));
    println!(
        "  classifier {:.1}% right (goal ≥ 99) at its calibrated threshold {:.3}: marked views scored \
         {marked_low:.3}–{marked_high:.3}, clean views {clean_low:.3}–{clean_high:.3}",
        100.0 * m.classifier_accuracy,
        m.classifier_threshold
    );
    for row in &f.table {
        let anchor = ANCHORS
            .iter()
            .find(|(n, _)| if row.strength == 0.0 && row.attack == "noise" { *n == "clean" } else { *n == row.attack })
            .map_or(String::new(), |(_, a)| format!(" (published re-run {:.2}%)", 100.0 * a));
        println!(
            "  {:<9} {:>5.2}: bits {:.2}%{anchor}, classifier {:.1}%",
            row.attack,
            row.strength,
            100.0 * row.recovery,
            100.0 * row.classifier_accuracy
        );
    }
}
