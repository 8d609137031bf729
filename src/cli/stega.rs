//! `sparsefield stega embed|recover|attack`: hide a secret in a trained field, recover it from any
//! image, and measure how it survives attacks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{ArgGroup, Args, Subcommand};
use serde::{Deserialize, Serialize};

use super::nerf::{DataArgs, load_data};
use crate::compute::control::{RunControl, RunEvent};
use crate::compute::image_io::{self, ImageData};
use crate::compute::nerf::camera::Camera;
use crate::compute::nerf::checkpoint;
use crate::compute::nerf::orbit::Orbit;
use crate::compute::nerf::turntable::{GifWriter, turntable};
use crate::compute::stega::attacks::Attack;
use crate::compute::stega::decoder::{DECODER_FILE, Decoder, with_inset};
use crate::compute::stega::embed::{self, EmbedConfig, EmbedMetrics};
use crate::compute::stega::loss::LossWeights;
use crate::compute::stega::robustness;
use crate::compute::stega::secret::{DEFAULT_SECRET_SIDE, Secret};
use crate::compute::stega::view;

#[derive(Debug, Subcommand)]
pub enum StegaCommand {
    /// Hide a secret (an image, a text or random bits) in a trained field: writes the marked
    /// checkpoint, decoder.safetensors, metrics.json, history.csv and a turntable with the
    /// recovered secret inset.
    Embed(EmbedArgs),
    /// Recover the secret from any image with a decoder, and say whether the image carries one.
    Recover(RecoverArgs),
    /// The robustness sweep of an embed run: each attack at increasing strength on the test
    /// views, as attack.csv and attack.png.
    Attack(AttackArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["secret", "text", "bits"])))]
pub struct EmbedArgs {
    /// Stage 1: a checkpoint folder written by `nerf train`, `lift` or the app.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// The training and test cameras: the checkpoint's data set (`demo`, a folder), or `orbit`
    /// for cameras around the checkpoint's orbit (a lift result; no ground truth then).
    #[command(flatten)]
    pub data: DataArgs,
    /// An image to hide (PNG or JPEG; its centred square is used).
    #[arg(long)]
    pub secret: Option<PathBuf>,
    /// The side the secret image is brought to (32–128, a multiple of 8).
    #[arg(long, default_value_t = DEFAULT_SECRET_SIDE)]
    pub secret_side: u32,
    /// A text message to hide (UTF-8).
    #[arg(long)]
    pub text: Option<String>,
    /// Hide this many random bits (seeded by --seed).
    #[arg(long)]
    pub bits: Option<usize>,
    #[arg(long, default_value_t = EmbedConfig::default().steps)]
    pub steps: u64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Adam learning rate of the colour MLP (decays tenfold over the run).
    #[arg(long, default_value_t = EmbedConfig::default().field_lr)]
    pub field_lr: f64,
    /// Adam learning rate of the decoder and the classifier.
    #[arg(long, default_value_t = EmbedConfig::default().nets_lr)]
    pub nets_lr: f64,
    /// The loss weights: render, secret, blank, classifier (the repository's by default).
    #[arg(long, value_delimiter = ',', default_values_t = default_weights())]
    pub weights: Vec<f64>,
    /// Let the decoder's loss terms train the field as well (the repository's coupling); by
    /// default the field follows only the render term and the classifier's.
    #[arg(long)]
    pub decoder_trains_field: bool,
    /// The render weight rises from the first of --weights to this between 25% of the steps and
    /// the field's stop (1: no ramp).
    #[arg(long, default_value_t = EmbedConfig::default().render_weight_end)]
    pub render_weight_end: f64,
    /// Share of the steps, at the end, in which the field is frozen and only the decoder and the
    /// classifier learn.
    #[arg(long, default_value_t = EmbedConfig::default().nets_only_share)]
    pub nets_only_share: f64,
    /// Turn the adaptive gradient masking off.
    #[arg(long)]
    pub no_masking: bool,
    /// Train with random attacks (noise, blur, JPEG, crop, rotation, downscale) on half the views.
    #[arg(long)]
    pub augment: bool,
    /// Frames of the turntable GIF (0: none).
    #[arg(long, default_value_t = 48)]
    pub turntable: usize,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// A decoder.safetensors written by `stega embed` or the app.
    #[arg(long)]
    pub decoder: PathBuf,
    /// The image to read (PNG or JPEG: a render, a screenshot, a photo of a screen).
    #[arg(long)]
    pub image: PathBuf,
    /// Output folder for recovered.png and recovery.json.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct AttackArgs {
    /// The output folder of `stega embed`.
    #[arg(long)]
    pub run: PathBuf,
    /// Test views to attack (at most; the run's test cameras).
    #[arg(long, default_value_t = 8)]
    pub views: usize,
    #[arg(long)]
    pub out: PathBuf,
}

fn default_weights() -> Vec<f64> {
    let w = LossWeights::default();
    vec![w.render, w.secret, w.blank, w.class]
}

pub fn run(command: StegaCommand) -> anyhow::Result<()> {
    match command {
        StegaCommand::Embed(args) => embed_command(&args),
        StegaCommand::Recover(args) => recover_command(&args),
        StegaCommand::Attack(args) => attack_command(&args),
    }
}

/// What `stega attack` needs of an embed run, in its `stega.json`.
#[derive(Debug, Serialize, Deserialize)]
struct RunRecord {
    /// The stage-1 checkpoint (absolute).
    stage1: PathBuf,
    data: String,
    demo_size: u32,
    downscale: u32,
    /// "image" (secret.png), or the text, or the bits as 0/1 characters.
    secret_kind: String,
    text: Option<String>,
    bits: Option<String>,
    config: EmbedConfig,
}

const RUN_FILE: &str = "stega.json";
const SECRET_FILE: &str = "secret.png";

/// Training cameras, test cameras and their images (none for `orbit`).
fn cameras(data: &DataArgs, orbit: &Orbit, side: u32) -> anyhow::Result<(Vec<Camera>, Vec<Camera>, Vec<ImageData>)> {
    if data.data == "orbit" {
        let (train, test) = embed::orbit_cameras(orbit, side);
        return Ok((train, test, Vec::new()));
    }
    let dataset = load_data(data)?;
    if dataset.train.is_empty() || dataset.test.is_empty() {
        bail!(
            "{}: stage 2 needs training and test views; this data set has {} and {}",
            data.data,
            dataset.train.len(),
            dataset.test.len()
        );
    }
    let train = dataset.train.iter().map(|v| v.camera).collect();
    let test = dataset.test.iter().map(|v| v.camera).collect();
    let truths = dataset.test.iter().map(|v| v.composited_image(dataset.background)).collect();
    Ok((train, test, truths))
}

fn bits_string(bits: &[bool]) -> String {
    bits.iter().map(|&b| if b { '1' } else { '0' }).collect()
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    crate::compute::files::write_atomic(path, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// Prints the scores of an embed run.
fn report(metrics: &EmbedMetrics) -> String {
    let mut line =
        format!("marked vs stage 1: {:.2} dB, SSIM {:.4}", metrics.render_psnr_vs_stage1_db, metrics.render_ssim);
    if let (Some(m), Some(c)) = (metrics.render_psnr_vs_ground_truth_db, metrics.stage1_psnr_vs_ground_truth_db) {
        line.push_str(&format!("; vs ground truth {m:.2} dB (stage 1 {c:.2} dB)"));
    }
    if let Some(p) = metrics.recovery_psnr_db {
        line.push_str(&format!(
            "; secret recovered at {p:.2} dB, SSIM {:.3} (from clean views {:.2} dB)",
            metrics.recovery_ssim.unwrap_or(f64::NAN),
            metrics.clean_recovery_psnr_db.unwrap_or(f64::NAN)
        ));
    }
    if let Some(a) = metrics.bit_accuracy {
        line.push_str(&format!(
            "; bit accuracy {:.2}% (clean views {:.2}%)",
            100.0 * a,
            100.0 * metrics.clean_bit_accuracy.unwrap_or(f64::NAN)
        ));
    }
    if let Some(t) = metrics.text_recovered {
        line.push_str(&format!("; text read back from {:.0}% of views", 100.0 * t));
    }
    line.push_str(&format!("; classifier {:.1}% right", 100.0 * metrics.classifier_accuracy));
    line
}

fn embed_command(args: &EmbedArgs) -> anyhow::Result<()> {
    let secret = if let Some(path) = &args.secret {
        Secret::image_file(path, args.secret_side)?
    } else if let Some(text) = &args.text {
        Secret::text(text)?
    } else {
        Secret::bits(args.bits.unwrap_or(64), args.seed)?
    };
    if args.weights.len() != 4 {
        bail!("--weights takes four numbers (render,secret,blank,classifier), got {}", args.weights.len());
    }
    super::check_output_apart(&args.out, &[&args.ckpt])?;
    let (stage1, stage1_config) = checkpoint::load(&args.ckpt)?;
    let size = args.data.demo_size;
    let (train_cameras, test_cameras, truths) = cameras(&args.data, &stage1_config.orbit, size)?;
    let cfg = EmbedConfig {
        steps: args.steps,
        seed: args.seed,
        masking: !args.no_masking,
        augment: args.augment,
        field_lr: args.field_lr,
        nets_lr: args.nets_lr,
        decoder_trains_field: args.decoder_trains_field,
        render_weight_end: args.render_weight_end,
        nets_only_share: args.nets_only_share,
        // Views at the data set's image size (the demo's, or 128² around an orbit).
        render_side: train_cameras.first().map_or(128, |c| c.width.min(c.height).clamp(32, 256)),
        weights: LossWeights {
            render: args.weights[0],
            secret: args.weights[1],
            blank: args.weights[2],
            class: args.weights[3],
        },
        ..EmbedConfig::default()
    };
    cfg.validate()?;
    embed::nets_config(&secret, cfg.nets_width)?;
    super::prepare_output_dir(&args.out, "stega embed")?;
    eprintln!("stage 2: {} into {} ({} training cameras)", secret.describe(), args.ckpt.display(), train_cameras.len());
    let bar = super::progress_bar(args.steps, "embed");
    let control = RunControl::new();
    let summary = embed::embed(&stage1, &train_cameras, &stage1_config.orbit, &secret, &cfg, &control, &mut |event| {
        if let RunEvent::Progress { step, metrics, .. } = &event {
            bar.set_position(*step);
            let get = |name: &str| metrics.iter().find(|(n, _)| *n == name).map_or(f64::NAN, |(_, v)| *v);
            bar.set_message(format!("render {:.1} dB, secret loss {:.4}", get("render_psnr_db"), get("secret_loss")));
        }
    })?;
    bar.finish_and_clear();
    let eval_bar = super::progress_bar(test_cameras.len() as u64, "eval");
    let (metrics, renders) = embed::evaluate(&stage1, &summary.snapshot, &secret, &test_cameras, &truths, &control)?;
    eval_bar.finish_and_clear();

    let decoder = &summary.snapshot.decoder;
    let info = HashMap::from([
        ("stega_secret".to_owned(), serde_json::json!(secret.describe())),
        ("stega_stage1".to_owned(), serde_json::json!(args.ckpt.display().to_string())),
    ]);
    checkpoint::save(&summary.snapshot.field, &stage1_config.orbit, &args.out, info)?;
    decoder.save(&args.out.join(DECODER_FILE))?;
    let (secret_kind, text, bits) = match &secret {
        Secret::Image(image) => {
            image_io::save_png(image, &args.out.join(SECRET_FILE))?;
            ("image", None, None)
        }
        Secret::Text { text, .. } => ("text", Some(text.clone()), None),
        Secret::Bits(bits) => ("bits", None, Some(bits_string(bits))),
    };
    let record = RunRecord {
        stage1: std::path::absolute(&args.ckpt).unwrap_or_else(|_| args.ckpt.clone()),
        data: args.data.data.clone(),
        demo_size: args.data.demo_size,
        downscale: args.data.downscale,
        secret_kind: secret_kind.to_owned(),
        text,
        bits,
        config: cfg,
    };
    write_json(&args.out.join(RUN_FILE), &record)?;
    #[allow(clippy::cast_precision_loss)]
    let steps_per_sec = summary.steps_done as f64 / summary.seconds.max(1e-9);
    let mut json = serde_json::to_value(&metrics)?;
    if let Some(object) = json.as_object_mut() {
        object.insert("seconds".into(), serde_json::json!(summary.seconds));
        object.insert("steps".into(), serde_json::json!(summary.steps_done));
        object.insert("steps_per_sec".into(), serde_json::json!(steps_per_sec));
        object.insert("secret".into(), serde_json::json!(secret.describe()));
        object.insert("masking".into(), serde_json::json!(cfg.masking));
        object.insert("augment".into(), serde_json::json!(cfg.augment));
    }
    write_json(&args.out.join("metrics.json"), &json)?;
    let mut csv = String::from("step,loss,render_psnr_db,secret_loss,blank_loss,class_loss,elapsed_secs\n");
    for r in &summary.history {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            r.step, r.loss, r.render_psnr_db, r.secret_loss, r.blank_loss, r.class_loss, r.elapsed_secs
        ));
    }
    crate::compute::files::write_atomic(args.out.join("history.csv"), csv)
        .with_context(|| format!("{}: cannot write history.csv", args.out.display()))?;
    let test_dir = args.out.join("test");
    std::fs::create_dir_all(&test_dir).with_context(|| format!("{}: cannot create", test_dir.display()))?;
    let recovered = decoder.recover_all(&renders.marked)?;
    for (i, ((marked, clean), recovery)) in
        renders.marked.iter().zip(&renders.clean).zip(&recovered).enumerate().take(4)
    {
        image_io::save_png(marked, &test_dir.join(format!("marked_{i}.png")))?;
        image_io::save_png(clean, &test_dir.join(format!("stage1_{i}.png")))?;
        image_io::save_png(&recovery.secret.to_image(), &test_dir.join(format!("recovered_{i}.png")))?;
    }
    if args.turntable > 0 {
        let path = args.out.join("turntable.gif");
        let mut gif = GifWriter::create(&path, 12)?;
        let mut failure = None;
        turntable(
            &summary.snapshot.field,
            &stage1_config.orbit,
            args.turntable,
            size.max(96),
            |_| true,
            |_, frame| match decoder.recover(frame) {
                Ok(recovery) => gif.add(&with_inset(frame, &recovery.secret.to_image())),
                Err(e) => {
                    failure = Some(e);
                    Ok(())
                }
            },
        )?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        gif.finish()?;
    }
    println!(
        "{} after {} steps in {:.1} s ({steps_per_sec:.2} steps/s); wrote {}",
        report(&metrics),
        summary.steps_done,
        summary.seconds,
        args.out.display()
    );
    Ok(())
}

fn recover_command(args: &RecoverArgs) -> anyhow::Result<()> {
    super::check_output_apart(&args.out, &[&args.decoder, &args.image])?;
    let decoder = Decoder::load(&args.decoder)?;
    let image = image_io::load_image(&args.image)?.image;
    super::prepare_output_dir(&args.out, "stega recover")?;
    let recovery = decoder.recover(&image)?;
    image_io::save_png(&recovery.secret.to_image(), &args.out.join("recovered.png"))?;
    let text = recovery.text().map(|t| t.map_err(|e| e.to_string()));
    let bits = match &recovery.secret {
        crate::compute::stega::decoder::Recovered::Bits(bits) => Some(bits_string(bits)),
        crate::compute::stega::decoder::Recovered::Image(_) => None,
    };
    let json = serde_json::json!({
        "image": args.image.display().to_string(),
        "score": recovery.score,
        "threshold": recovery.threshold,
        "carries_secret": recovery.carries_secret(),
        "text": text.as_ref().and_then(|t| t.as_ref().ok()),
        "text_error": text.as_ref().and_then(|t| t.as_ref().err()),
        "bits": bits,
    });
    write_json(&args.out.join("recovery.json"), &json)?;
    let verdict = if recovery.carries_secret() { "carries a secret" } else { "no secret found" };
    let what = match text {
        Some(Ok(text)) if recovery.carries_secret() => format!("; text «{text}»"),
        Some(Err(e)) if recovery.carries_secret() => format!("; the bits do not read as a text ({e})"),
        _ => String::new(),
    };
    println!(
        "{}: {verdict} (classifier score {:.3}, threshold {:.3}){what}; wrote {}",
        args.image.display(),
        recovery.score,
        recovery.threshold,
        args.out.join("recovered.png").display()
    );
    Ok(())
}

/// Reads an embed run's secret back (from secret.png or stega.json).
fn run_secret(run: &Path, record: &RunRecord, side: usize) -> anyhow::Result<Secret> {
    Ok(match record.secret_kind.as_str() {
        "image" => {
            let side = u32::try_from(side).unwrap_or(u32::MAX);
            Secret::image_file(&run.join(SECRET_FILE), side)?
        }
        "text" => Secret::text(record.text.as_deref().unwrap_or_default())?,
        "bits" => Secret::Bits(record.bits.as_deref().unwrap_or_default().chars().map(|c| c == '1').collect()),
        other => bail!("{}: unknown secret kind `{other}`", run.join(RUN_FILE).display()),
    })
}

fn attack_command(args: &AttackArgs) -> anyhow::Result<()> {
    if args.views == 0 {
        bail!("--views must be at least 1");
    }
    super::check_output_apart(&args.out, &[&args.run])?;
    let record_path = args.run.join(RUN_FILE);
    let json =
        crate::compute::files::read_text_capped(&record_path, crate::compute::files::JSON).with_context(|| {
            format!("{}: cannot read; pass the folder `stega embed --out` wrote", record_path.display())
        })?;
    let record: RunRecord =
        serde_json::from_str(&json).with_context(|| format!("{}: not a stega embed record", record_path.display()))?;
    let decoder = Decoder::load(&args.run.join(DECODER_FILE))?;
    let secret = run_secret(&args.run, &record, decoder.config.side)?;
    let (marked, _) = checkpoint::load(&args.run)?;
    let (stage1, stage1_config) = checkpoint::load(&record.stage1).with_context(|| {
        format!("the stage-1 checkpoint of {} (from {})", args.run.display(), record_path.display())
    })?;
    let data = DataArgs { data: record.data.clone(), downscale: record.downscale, demo_size: record.demo_size };
    let (_, test, _) = cameras(&data, &stage1_config.orbit, record.demo_size)?;
    super::prepare_output_dir(&args.out, "stega attack")?;
    let cameras: Vec<Camera> = test.into_iter().take(args.views).collect();
    let (marked_views, clean_views) = view::render_views(&marked, &stage1, &cameras);
    let bar = super::progress_bar(robustness::sweep_len() as u64, "attack");
    let control = RunControl::new();
    let rows = robustness::sweep(&decoder, &secret, &marked_views, &clean_views, &control, |_| {
        bar.inc(1);
        true
    })?;
    bar.finish_and_clear();
    let label = if matches!(secret, Secret::Image(_)) { "PSNR (dB)" } else { "bit accuracy" };
    crate::compute::files::write_atomic(args.out.join("attack.csv"), robustness::sweep_csv(&rows))
        .with_context(|| format!("{}: cannot write attack.csv", args.out.display()))?;
    image_io::save_png(&robustness::sweep_chart(&rows, label), &args.out.join("attack.png"))?;
    let table: Vec<_> = Attack::TABLE
        .iter()
        .map(|attack| robustness::score_attack(&decoder, &secret, *attack, &marked_views, &clean_views))
        .collect::<Result<_, _>>()?;
    write_json(&args.out.join("table.json"), &table)?;
    for row in &table {
        println!(
            "{:<10} {:>6}: recovery {:.3}, classifier {:.1}% right",
            row.attack,
            row.strength,
            row.recovery,
            100.0 * row.classifier_accuracy
        );
    }
    println!("wrote attack.csv, attack.png and table.json to {}", args.out.display());
    Ok(())
}
