//! `sparsefield bench insp`: the INR-edit lab's timings and quality table.

use std::time::Instant;

use anyhow::bail;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::bench::InspBenchArgs;
use crate::compute::control::RunControl;
use crate::compute::image_io::BuiltinImage;
use crate::compute::image_io::{self, ImageData};
use crate::compute::inr::insp::{self, EditKind, EditTask, OperatorConfig, TrainingSet};
use crate::compute::inr::taylor::{self, Partials};
use crate::compute::inr::{self, BatchMode, FitConfig, SirenConfig, SirenWeights};
use crate::compute::metrics;

/// PyTorch 2.15 on this project's reference machine (2 cores, 2 threads), `benches/pytorch_insp.py`.
pub const PYTORCH_STACK_SECONDS: f64 = 11.5;
/// Same script: one operator step, batch 4096.
pub const PYTORCH_OPERATOR_STEP_MS: f64 = 29.4;

pub fn bench_insp(args: &InspBenchArgs) -> anyhow::Result<()> {
    let kinds =
        args.ops
            .iter()
            .filter(|name| !name.is_empty())
            .map(|name| {
                EditKind::FROM_CLEAN_IMAGES.into_iter().find(|k| k.cli_name() == name).ok_or_else(|| {
                    anyhow::anyhow!("unknown edit `{name}`; use blur, box-blur, denoise, deblur or inpaint")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
    let mut report = serde_json::Map::new();

    // The derivative stack of the paper's SIREN (2→256×3→1) at random points.
    let weights = SirenWeights::init(SirenConfig::image(1, 256, 3, 30.0), 0);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let coords: Vec<f32> = (0..args.points * 2).map(|_| rng.random_range(-1.0..1.0)).collect();
    for order in [2, 4] {
        let partials = Partials::new(order)?;
        let mut times = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            let stack = taylor::derivative_stack(&weights, &partials, &coords)?;
            times.push(start.elapsed().as_secs_f64());
            std::hint::black_box(stack);
        }
        times.sort_by(f64::total_cmp);
        let median = times[1];
        #[allow(clippy::cast_precision_loss)]
        let rate = args.points as f64 / median / 1e6;
        println!(
            "derivative stack, SIREN 2→256×3→1, order {order} ({} partials): {median:.2} s for {} points ({rate:.2} M points/s)",
            partials.len(),
            args.points
        );
        report.insert(format!("stack_order{order}_seconds"), median.into());
    }
    if PYTORCH_STACK_SECONDS.is_finite() && args.points == 65_536 {
        let ours = report["stack_order4_seconds"].as_f64().unwrap_or(f64::NAN);
        println!(
            "  reference: PyTorch nested autograd ≈ {PYTORCH_STACK_SECONDS:.2} s → {:.1}× its speed",
            PYTORCH_STACK_SECONDS / ours
        );
    }

    // One operator step (15 → 256×4 → 1, batch 4096) on random rows.
    let partials = Partials::new(4)?;
    let rows = 65_536;
    let stacks: Vec<f32> = (0..rows * partials.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
    let targets: Vec<f32> = (0..rows).map(|_| rng.random_range(0.0..1.0)).collect();
    let set = TrainingSet::from_rows(4, stacks, targets, 256)?;
    let config = OperatorConfig { steps: 30, snapshot_interval_secs: 0.0, ..OperatorConfig::default() };
    let summary =
        insp::train_operator(&set, EditTask::new(EditKind::Denoise), &config, &RunControl::new(), &mut |_| {})?;
    println!("operator step 15→256×4→1, batch {}: {:.1} ms", config.batch, summary.ms_per_step);
    if PYTORCH_OPERATOR_STEP_MS.is_finite() {
        println!(
            "  reference: PyTorch ≈ {PYTORCH_OPERATOR_STEP_MS:.1} ms → {:.2}× its speed",
            PYTORCH_OPERATOR_STEP_MS / summary.ms_per_step
        );
    }
    report.insert("operator_step_ms".into(), summary.ms_per_step.into());

    if kinds.is_empty() {
        println!("{}", serde_json::Value::Object(report));
        return Ok(());
    }
    if let Some(out) = &args.out {
        super::prepare_output_dir(out, "bench insp")?;
    }
    let camera = builtin(BuiltinImage::Camera)?.downscaled_to(args.size);
    let coffee = builtin(BuiltinImage::Coffee)?;
    if coffee.width < args.size || coffee.height < args.size {
        bail!("--size must be at most {} (the coffee image's shorter side)", coffee.height.min(coffee.width));
    }
    let fit = FitConfig {
        steps: args.fit_steps,
        batch: BatchMode::Full,
        snapshot_interval_secs: 0.0,
        ..FitConfig::default()
    };
    let op_config = OperatorConfig { steps: args.op_steps, snapshot_interval_secs: 0.0, ..OperatorConfig::default() };
    println!(
        "edits: operators trained on {} crops of coffee.png ({}²), applied to camera.png ({}×{}); PSNR against the target",
        args.crops, args.size, camera.width, camera.height
    );
    let mut rows_out = Vec::new();
    for kind in kinds {
        let task = EditTask::new(kind);
        let start = Instant::now();
        let crops = insp::training_views(&coffee, args.size, args.crops.max(1), 7);
        let control = RunControl::new();
        let set = insp::build_training_set(&crops, task, &fit, op_config.order, 0, &control, &mut |_, _, _, _| {})?
            .ok_or_else(|| anyhow::anyhow!("cancelled"))?;
        let trained = insp::train_operator(&set, task, &op_config, &control, &mut |_| {})?;
        let degraded = task.degrade(&camera, 1000);
        let test_inr = inr::fit(&degraded, &fit, None, &control, &mut |_| {})?.weights;
        let edited =
            insp::render_edit(&trained.weights, &test_inr, camera.width, camera.height, &control, &mut |_| {})?
                .ok_or_else(|| anyhow::anyhow!("cancelled"))?;
        let reference = task.target(&camera);
        let insp_psnr = metrics::psnr_db(&edited, &reference);
        let no_edit = metrics::psnr_db(&degraded, &reference);
        let baselines: Vec<(String, f64)> = task
            .baselines(&degraded)
            .into_iter()
            .map(|(name, image)| (name.to_owned(), metrics::psnr_db(&image, &reference)))
            .collect();
        let best = baselines.iter().map(|(_, p)| *p).fold(f64::NEG_INFINITY, f64::max);
        let baseline_text: Vec<String> = baselines.iter().map(|(n, p)| format!("{n} {p:.2}")).collect();
        println!(
            "  {:<22} INSP {insp_psnr:6.2} dB | no edit {no_edit:6.2} | baselines: {} | INSP − best baseline {:+.2} dB ({:.0} s)",
            task.summary(),
            baseline_text.join(", "),
            insp_psnr - best,
            start.elapsed().as_secs_f64()
        );
        if let Some(out) = &args.out {
            image_io::save_png(&edited, &out.join(format!("{}-edited.png", kind.cli_name())))?;
            image_io::save_png(&degraded, &out.join(format!("{}-input.png", kind.cli_name())))?;
        }
        rows_out.push(serde_json::json!({
            "edit": kind.cli_name(),
            "summary": task.summary(),
            "insp_psnr_db": insp_psnr,
            "no_edit_psnr_db": no_edit,
            "baselines": baselines,
            "training_psnr_db": trained.final_psnr_db,
            "seconds": start.elapsed().as_secs_f64(),
        }));
    }
    report.insert("edits".into(), rows_out.into());
    println!("{}", serde_json::Value::Object(report));
    Ok(())
}

fn builtin(which: BuiltinImage) -> anyhow::Result<ImageData> {
    Ok(image_io::load_image_bytes(which.bytes(), which.file_name())?.image)
}
