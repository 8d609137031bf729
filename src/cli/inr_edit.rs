//! `sparsefield inr edit` (train or load an INSP operator, apply it to an INR, score it) and
//! `sparsefield inr classify` (INSP-ConvNet on digits).

use std::path::Path;

use anyhow::{Context as _, bail};

use super::inr::{ClassifyArgs, EditArgs};
use crate::compute::control::RunControl;
use crate::compute::image_io::{self, ImageData};
use crate::compute::inr::insp::{self, EditKind, EditTask, OperatorConfig, OperatorWeights, TrainingSet};
use crate::compute::inr::{self, BatchMode, FitConfig, Siren, SirenWeights};
use crate::compute::metrics;

/// Runs the command.
pub fn edit(args: &EditArgs) -> anyhow::Result<()> {
    let render_size = args.render_size.as_deref().map(parse_size).transpose()?;
    let loaded_operator = args.operator.as_deref().map(OperatorWeights::load).transpose()?;
    let task = match (&loaded_operator, args.op) {
        (Some(op), Some(arg)) if op.spec.task.kind != arg.kind() => bail!(
            "{}: this operator was trained for {}, not {}; drop --op or pick another operator",
            args.operator.as_deref().unwrap_or(Path::new("")).display(),
            op.spec.task.kind.cli_name(),
            arg.kind().cli_name()
        ),
        (Some(op), _) => op.spec.task,
        (None, Some(arg)) => EditTask {
            kind: arg.kind(),
            sigma: args.sigma,
            box_radius: args.radius,
            noise: args.noise,
            coverage: args.coverage,
        },
        (None, None) => bail!("say which edit with --op, or give a trained --operator"),
    };
    task.validate()?;
    if args.size < 8 || args.size > 2048 {
        bail!("--size must be between 8 and 2048, got {}", args.size);
    }
    let fit_config = FitConfig {
        width: args.fit_width,
        hidden_layers: args.fit_layers,
        steps: args.fit_steps,
        batch: BatchMode::Full,
        seed: args.seed,
        snapshot_interval_secs: 0.0,
        ..FitConfig::default()
    };
    let op_config = OperatorConfig {
        order: args.order,
        width: args.op_width,
        hidden_layers: args.op_layers,
        residual: !args.no_residual,
        learning_rate: args.op_lr,
        steps: args.op_steps,
        batch: args.op_batch,
        seed: args.seed,
        snapshot_interval_secs: 0.0,
    };
    if loaded_operator.is_none() {
        op_config.validate()?;
    }
    fit_config.validate(1)?;
    // Read every input before any long work, so that a typo fails at once.
    let clean_test = args.image.as_deref().map(|p| load(p, args.size)).transpose()?;
    let input_inr = args.inr.as_deref().map(SirenWeights::load).transpose()?;
    let reference_image = args.reference.as_deref().map(|p| load(p, args.size)).transpose()?;
    let train_images = args.train_images.iter().map(|p| load_full(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let custom = task.kind == EditKind::Custom;
    let pairs = args.pairs.iter().map(|pair| load_pair(pair, args.size)).collect::<anyhow::Result<Vec<_>>>()?;
    if !pairs.is_empty() && !custom {
        bail!("--pairs is for --op custom; the other edits make their own pairs from --train-images");
    }
    if custom && loaded_operator.is_none() && pairs.is_empty() {
        bail!("custom needs training pairs: give --pairs INPUT.png=TARGET.png[,...]");
    }
    super::prepare_output_dir(&args.out, "inr edit")?;

    // The INR to edit, and what its edit should look like; `scored` is the edit at the scored
    // image's size (filter sizes are in pixels of the operator's training images).
    let training_size = loaded_operator.as_ref().map_or(args.size, |op| op.spec.training_size);
    #[allow(clippy::cast_precision_loss)]
    let scaled_for =
        |image: &ImageData| task.at_scale(image.width.max(image.height) as f32 / training_size.max(1) as f32);
    let (test_inr, degraded_pixels, reference) = match (&input_inr, &clean_test) {
        (Some(weights), _) => {
            let size = reference_image.as_ref().map_or((args.size, args.size), |r| (r.width, r.height));
            let decoded = decode(weights, size.0, size.1)?;
            let scored = scaled_for(&decoded);
            let reference = match (&reference_image, task.kind.is_filter()) {
                (Some(reference), false) => Some(reference.clone()),
                (Some(reference), true) => Some(scored.target(reference)),
                (None, true) => Some(scored.target(&decoded)),
                (None, false) => None,
            };
            if let Some(reference) = &reference
                && reference.channels != weights.config.out_features
            {
                bail!(
                    "the reference has {} channels but the INR has {}; give a reference of the same kind (gray or RGB)",
                    reference.channels,
                    weights.config.out_features
                );
            }
            (weights.clone(), decoded, reference)
        }
        (None, Some(clean)) => {
            let degraded = task.degrade(clean, args.seed.wrapping_add(1000));
            let weights = fit_inr(&degraded, &fit_config, "fit input")?;
            weights.save(&args.out.join("input.safetensors"), &[("sparsefield.edit_input", task.summary())])?;
            image_io::save_png(&degraded, &args.out.join("degraded.png"))?;
            let reference = if custom { reference_image.clone() } else { Some(scaled_for(clean).target(clean)) };
            if let Some(reference) = &reference
                && (reference.width, reference.height, reference.channels)
                    != (clean.width, clean.height, clean.channels)
            {
                bail!(
                    "the reference is {}×{} with {} channels but the image is {}×{} with {}; they must match",
                    reference.width,
                    reference.height,
                    reference.channels,
                    clean.width,
                    clean.height,
                    clean.channels
                );
            }
            (weights, degraded, reference)
        }
        (None, None) => bail!("give the INR to edit with --inr, or a clean --image"),
    };

    let scored = scaled_for(&degraded_pixels);

    // The operator: loaded, or trained on pairs (INR of a degraded image, target).
    let mut training_report = serde_json::Value::Null;
    let operator = if let Some(op) = loaded_operator {
        op
    } else {
        let examples: Vec<insp::Example> = if custom {
            pairs.into_iter().map(|(input, target)| insp::Example::Pair { input, target }).collect()
        } else if !train_images.is_empty() {
            train_images
                .iter()
                .enumerate()
                .flat_map(|(index, image)| {
                    insp::training_views(image, args.size, args.crops, (args.seed ^ 0xC809).wrapping_add(index as u64))
                })
                .map(insp::Example::Clean)
                .collect()
        } else if let Some(clean) = &clean_test {
            vec![insp::Example::Clean(clean.clone())]
        } else if task.kind.is_filter() {
            vec![insp::Example::Clean(degraded_pixels.clone())]
        } else {
            bail!(
                "{} needs clean examples to learn from: give --train-images (or a clean --image instead of --inr)",
                task.kind.cli_name()
            );
        };
        let mut set = TrainingSet::new(op_config.order);
        let count = examples.len();
        let fit_bar = super::progress_bar(count as u64 * fit_config.steps, "fit");
        insp::add_examples(
            &mut set,
            &examples,
            task,
            &fit_config,
            args.seed,
            &RunControl::new(),
            &mut |index, step, psnr, _| {
                fit_bar.set_position(index as u64 * fit_config.steps + step);
                fit_bar.set_message(format!("INR {}/{count} · {psnr:.2} dB", index + 1));
            },
        )?;
        fit_bar.finish_and_clear();
        let bar = super::progress_bar(op_config.steps, "operator");
        let control = RunControl::new();
        let summary =
            insp::train_operator(&set, task, &op_config, &control, &mut |event| super::show_progress(&bar, &event))?;
        bar.finish_and_clear();
        training_report = serde_json::json!({
            "images": examples.len(),
            "rows": set.len(),
            "steps": summary.steps_done,
            "ms_per_step": summary.ms_per_step,
            "seconds": summary.seconds,
            "psnr_db_before": summary.initial_psnr_db,
            "psnr_db_after": summary.final_psnr_db,
            "config": op_config,
        });
        summary.weights
    };
    operator.save(&args.out.join("operator.safetensors"))?;

    // Apply and score.
    let (w, h) = (degraded_pixels.width, degraded_pixels.height);
    let edited = render(&operator, &test_inr, w, h)?;
    image_io::save_png(&edited, &args.out.join("edited.png"))?;
    let decoded = decode(&test_inr, w, h)?;
    image_io::save_png(&decoded, &args.out.join("input.png"))?;
    if let Some((rw, rh)) = render_size {
        let large = render(&operator, &test_inr, rw, rh)?;
        image_io::save_png(&large, &args.out.join(format!("edited-{rw}x{rh}.png")))?;
    }
    let mut results = serde_json::Map::new();
    let mut lines = Vec::new();
    if let Some(reference) = &reference {
        if (reference.width, reference.height) != (w, h) {
            bail!("internal: reference and edit sizes differ");
        }
        image_io::save_png(reference, &args.out.join("reference.png"))?;
        let score = |image: &ImageData| (metrics::psnr_db(image, reference), metrics::ssim(image, reference));
        let (psnr, ssim) = score(&edited);
        lines.push(format!("INSP edit ({}): {psnr:.2} dB, SSIM {ssim:.3}", task.summary()));
        results.insert("insp".into(), serde_json::json!({ "psnr_db": psnr, "ssim": ssim }));
        let (psnr, ssim) = score(&degraded_pixels);
        lines.push(format!("no edit (the input as it is): {psnr:.2} dB"));
        results.insert("no_edit".into(), serde_json::json!({ "psnr_db": psnr, "ssim": ssim }));
        if task.kind.is_filter() {
            let (psnr, ssim) = score(&scored.target(&decoded));
            lines.push(format!("decode, then filter the pixels: {psnr:.2} dB"));
            results.insert("decode_then_filter".into(), serde_json::json!({ "psnr_db": psnr, "ssim": ssim }));
        }
        let mut baselines = Vec::new();
        for (name, image) in scored.baselines(&degraded_pixels) {
            let (psnr, ssim) = score(&image);
            lines.push(format!("baseline {name}: {psnr:.2} dB"));
            let file = format!("baseline-{}.png", slug(name));
            image_io::save_png(&image, &args.out.join(&file))?;
            baselines.push(serde_json::json!({ "name": name, "psnr_db": psnr, "ssim": ssim, "file": file }));
        }
        results.insert("baselines".into(), baselines.into());
    } else {
        lines.push("no reference image: give --reference to score the restoration".into());
    }
    let report = serde_json::json!({
        "task": task,
        "summary": task.summary(),
        "operator": operator.spec,
        "size": { "width": w, "height": h },
        "training": training_report,
        "results": results,
        "inr": args.inr.as_ref().map(|p| p.display().to_string()),
        "image": args.image.as_ref().map(|p| p.display().to_string()),
    });
    let metrics_path = args.out.join("metrics.json");
    crate::compute::files::write_atomic(&metrics_path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("{}: cannot write", metrics_path.display()))?;
    for line in lines {
        println!("{line}");
    }
    println!("wrote {}", args.out.display());
    Ok(())
}

/// `"3×3 mean"` → `"3x3-mean"`, `"Gaussian σ = 1"` → `"gaussian-sigma-1"`.
fn slug(name: &str) -> String {
    let spelled = name.to_lowercase().replace('×', "x").replace('σ', "sigma");
    let mut out = String::new();
    for ch in spelled.chars() {
        if ch.is_ascii_alphanumeric() || ch == '.' {
            out.push(ch);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

fn load_full(path: &Path) -> anyhow::Result<ImageData> {
    let loaded = image_io::load_image(path)?;
    for notice in &loaded.notices {
        eprintln!("note: {notice}");
    }
    Ok(loaded.image)
}

fn load(path: &Path, size: u32) -> anyhow::Result<ImageData> {
    Ok(load_full(path)?.downscaled_to(size))
}

/// `INPUT=TARGET` → the two images, downscaled alike; they must have the same size and channels.
fn load_pair(pair: &str, size: u32) -> anyhow::Result<(ImageData, ImageData)> {
    let Some((input, target)) = pair.split_once('=') else {
        bail!("--pairs entries look like input.png=target.png, got `{pair}`");
    };
    Ok(insp::load_pair(Path::new(input), Path::new(target), size)?)
}

/// `WxH` → `(W, H)`.
fn parse_size(text: &str) -> anyhow::Result<(u32, u32)> {
    let parsed =
        text.split_once(['x', 'X', '×']).and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)));
    match parsed {
        Some((w, h)) if (1..=8192).contains(&w) && (1..=8192).contains(&h) => Ok((w, h)),
        _ => bail!("--render-size must look like 1024x768 with sides up to 8192, got `{text}`"),
    }
}

fn fit_inr(image: &ImageData, config: &FitConfig, what: &str) -> anyhow::Result<SirenWeights> {
    let bar = super::progress_bar(config.steps, what);
    let control = RunControl::new();
    let summary = inr::fit(image, config, None, &control, &mut |event| super::show_progress(&bar, &event))?;
    bar.finish_and_clear();
    Ok(summary.weights)
}

fn decode(weights: &SirenWeights, width: u32, height: u32) -> anyhow::Result<ImageData> {
    let model = Siren::new(weights, &crate::compute::default_device(), candle_core::DType::F32)?;
    Ok(inr::reconstruct(&model, width, height)?)
}

fn render(operator: &OperatorWeights, inr: &SirenWeights, width: u32, height: u32) -> anyhow::Result<ImageData> {
    let bar = super::progress_bar(u64::from(height), "edit");
    let control = RunControl::new();
    let image = insp::render_edit(operator, inr, width, height, &control, &mut |row| bar.set_position(u64::from(row)))?;
    bar.finish_and_clear();
    image.ok_or_else(|| anyhow::anyhow!("rendering was cancelled"))
}

/// Runs `inr classify`.
pub fn classify(args: &ClassifyArgs) -> anyhow::Result<()> {
    use crate::compute::inr::classify::{self, ClassifyConfig, ClassifyProgress};
    let digits = match &args.digits {
        Some(path) => classify::load_digits(path)?,
        None => classify::builtin_digits(),
    };
    let config = ClassifyConfig {
        limit: args.limit,
        inr_steps: args.inr_steps,
        inr_width: args.inr_width,
        order: args.order,
        epochs: args.epochs,
        seed: args.seed,
        ..ClassifyConfig::default()
    };
    config.validate()?;
    super::prepare_output_dir(&args.out, "inr classify")?;
    let n = if args.limit == 0 { digits.len() } else { args.limit.min(digits.len()) };
    let bar = super::progress_bar(n as u64, "fit digit INRs");
    let control = RunControl::new();
    let summary = classify::run_classification(&digits, &config, &control, &mut |progress| match progress {
        ClassifyProgress::FittingInrs { done, .. } => bar.set_position(done as u64),
        ClassifyProgress::Training { which, epoch, epochs, test_accuracy } => {
            if epoch == 1 {
                bar.set_length(epochs as u64);
                bar.set_prefix(which);
            }
            bar.set_position(epoch as u64);
            bar.set_message(format!("test accuracy {:.1}%", 100.0 * test_accuracy));
        }
    })?
    .ok_or_else(|| anyhow::anyhow!("cancelled"))?;
    bar.finish_and_clear();
    for (tag, report) in [("insp", &summary.insp), ("cnn", &summary.cnn)] {
        let file = format!("confusion_{tag}.csv");
        let mut csv = String::from("true/predicted,0,1,2,3,4,5,6,7,8,9\n");
        for (truth, row) in report.confusion.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(u32::to_string).collect();
            csv.push_str(&format!("{truth},{}\n", cells.join(",")));
        }
        let path = args.out.join(file);
        crate::compute::files::write_atomic(&path, csv).with_context(|| format!("{}: cannot write", path.display()))?;
    }
    let metrics_path = args.out.join("metrics.json");
    let report = serde_json::json!({ "config": config, "summary": summary });
    crate::compute::files::write_atomic(&metrics_path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("{}: cannot write", metrics_path.display()))?;
    println!(
        "{} digits ({} train, {} test); digit INRs {:.1} dB on average ({:.0} s)",
        summary.train + summary.test,
        summary.train,
        summary.test,
        summary.inr_psnr_db,
        summary.inr_seconds
    );
    for report in [&summary.insp, &summary.cnn] {
        println!(
            "{}: {:.1}% test accuracy ({} input channels, {:.1} s)",
            report.name,
            100.0 * report.accuracy,
            report.input_channels,
            report.seconds
        );
    }
    println!("wrote {}", args.out.display());
    Ok(())
}
