//! `sparsefield prune run|sweep`: the random-pruning theory model from the command line.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::compute::control::RunControl;
use crate::compute::image_io;
use crate::compute::prune::data::DataSource;
use crate::compute::prune::init::{self, InitConfig, InitProgress, Method, ModelKind};
use crate::compute::prune::theory::{self, DEFAULT_FRACTIONS, RunOptions, TheoryConfig, TheoryData, TheoryInit};
use crate::compute::prune::{files, plots};

#[derive(Debug, Subcommand)]
pub enum PruneCommand {
    /// Train the two-layer model once at one pruning fraction; writes history.csv, curves.png,
    /// weights.safetensors (effective weights and mask) and metrics.json.
    Run(RunArgs),
    /// Final test accuracy and train loss against the pruning fraction over several seeds;
    /// writes sweep.csv, runs.csv, sweep.png and metrics.json.
    Sweep(SweepArgs),
    /// Pruning at initialization on real images: random, magnitude, SNIP, GraSP and SynFlow at
    /// each sparsity, masks fixed through training; writes results.csv, accuracy.png,
    /// masks.safetensors and metrics.json.
    Init(InitArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DataArg {
    /// The 1797 built-in 8×8 digits.
    Digits,
    /// Fashion-MNIST IDX files (in --path, default /usr/share/datasets/fashion-mnist).
    FashionMnist,
    /// A folder with one sub-folder of images per class (--path).
    Folder,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModelArg {
    Mlp,
    Cnn,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[arg(long, value_enum, default_value = "digits")]
    pub data: DataArg,
    /// The data folder for fashion-mnist and folder.
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// Side images of a folder data set are resized to.
    #[arg(long, default_value_t = 28)]
    pub image_size: usize,
    #[arg(long, value_enum, default_value = "mlp")]
    pub model: ModelArg,
    /// Hidden units of each MLP layer.
    #[arg(long, default_value_t = InitConfig::default().hidden)]
    pub hidden: usize,
    /// Methods (comma-separated): random, magnitude, snip, grasp, synflow.
    #[arg(long, value_delimiter = ',', default_value = "random,magnitude,snip,grasp,synflow")]
    pub methods: Vec<String>,
    /// Sparsities (fractions of weights removed; 0 trains the dense network once).
    #[arg(long, value_delimiter = ',', default_value = "0,0.5,0.8,0.9,0.95,0.98")]
    pub sparsity: Vec<f64>,
    #[arg(long, default_value_t = InitConfig::default().epochs)]
    pub epochs: usize,
    #[arg(long, default_value_t = InitConfig::default().batch)]
    pub batch: usize,
    #[arg(long, default_value_t = InitConfig::default().learning_rate)]
    pub lr: f64,
    /// Use only the first N training images (0: all).
    #[arg(long, default_value_t = 0)]
    pub train_limit: usize,
    /// Training samples SNIP and GraSP score on.
    #[arg(long, default_value_t = InitConfig::default().score_samples)]
    pub score_samples: usize,
    #[arg(long, default_value_t = InitConfig::default().synflow_iterations)]
    pub synflow_iterations: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

impl InitArgs {
    pub fn source(&self) -> anyhow::Result<DataSource> {
        Ok(match self.data {
            DataArg::Digits => DataSource::Digits,
            DataArg::FashionMnist => DataSource::FashionMnist(
                self.path.clone().unwrap_or_else(|| PathBuf::from(crate::compute::prune::data::DEBIAN_FASHION_MNIST)),
            ),
            DataArg::Folder => DataSource::Folder {
                path: self.path.clone().context("--data folder needs --path DIR (one sub-folder per class)")?,
                side: self.image_size,
            },
        })
    }

    pub fn config(&self) -> anyhow::Result<InitConfig> {
        let methods = self
            .methods
            .iter()
            .map(|name| {
                Method::from_cli_name(name).with_context(|| {
                    format!("unknown method `{name}`; pick from random, magnitude, snip, grasp, synflow")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let config = InitConfig {
            model: match self.model {
                ModelArg::Mlp => ModelKind::Mlp,
                ModelArg::Cnn => ModelKind::Cnn,
            },
            hidden: self.hidden,
            methods,
            sparsities: self.sparsity.clone(),
            epochs: self.epochs,
            batch: self.batch,
            learning_rate: self.lr,
            train_limit: self.train_limit,
            score_samples: self.score_samples,
            synflow_iterations: self.synflow_iterations,
            seed: self.seed,
        };
        config.validate()?;
        Ok(config)
    }
}

/// The model, data and training flags shared by `run` and `sweep`.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Dimension d of each patch.
    #[arg(long, default_value_t = TheoryConfig::default().dim)]
    pub dim: usize,
    /// ‖μ‖, the signal strength.
    #[arg(long, default_value_t = TheoryConfig::default().signal_norm)]
    pub signal_norm: f64,
    /// Coordinates μ spans (1: ‖μ‖·e₁).
    #[arg(long, default_value_t = TheoryConfig::default().signal_coords)]
    pub signal_coords: usize,
    /// σ_p, the noise standard deviation.
    #[arg(long, default_value_t = TheoryConfig::default().noise_std)]
    pub noise_std: f64,
    #[arg(long, default_value_t = TheoryConfig::default().n_train)]
    pub n_train: usize,
    #[arg(long, default_value_t = TheoryConfig::default().n_test)]
    pub n_test: usize,
    /// Fraction of training labels flipped.
    #[arg(long, default_value_t = TheoryConfig::default().label_flip)]
    pub label_flip: f64,
    /// Neurons per class (m).
    #[arg(long, default_value_t = TheoryConfig::default().width)]
    pub width: usize,
    /// Activation power q: max(z, 0)^q (1 is ReLU).
    #[arg(long, default_value_t = TheoryConfig::default().power)]
    pub power: u32,
    /// σ₀, the initial weights' standard deviation.
    #[arg(long, default_value_t = TheoryConfig::default().init_std)]
    pub init_std: f64,
    /// Gradient-descent step size.
    #[arg(long, default_value_t = TheoryConfig::default().learning_rate)]
    pub lr: f64,
    /// Full-batch gradient-descent steps.
    #[arg(long, default_value_t = TheoryConfig::default().steps)]
    pub steps: usize,
    /// Seed of the data, initial weights and masks (a sweep uses seed, seed+1, ...).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl ModelArgs {
    pub fn config(&self, prune: f64) -> TheoryConfig {
        TheoryConfig {
            dim: self.dim,
            signal_norm: self.signal_norm,
            signal_coords: self.signal_coords,
            noise_std: self.noise_std,
            n_train: self.n_train,
            n_test: self.n_test,
            label_flip: self.label_flip,
            width: self.width,
            power: self.power,
            init_std: self.init_std,
            learning_rate: self.lr,
            steps: self.steps,
            prune,
            seed: self.seed,
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Pruning fraction p: each first-layer weight is kept with probability 1 − p.
    #[arg(long, default_value_t = 0.5)]
    pub p: f64,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Score the test set every N steps (0: about 50 times over the run).
    #[arg(long, default_value_t = 0)]
    pub test_every: usize,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Pruning fractions (comma-separated, each in [0, 1)).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_FRACTIONS)]
    pub p: Vec<f64>,
    /// Seeds per fraction.
    #[arg(long, default_value_t = 5)]
    pub seeds: usize,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(command: PruneCommand) -> anyhow::Result<()> {
    match command {
        PruneCommand::Run(args) => run_once(&args),
        PruneCommand::Sweep(args) => sweep(&args),
        PruneCommand::Init(args) => init(&args),
    }
}

fn init(args: &InitArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let source = args.source()?;
    super::prepare_output_dir(&args.out, "prune init")?;
    let data = source.load_with_train_limit(config.train_limit)?;
    eprintln!("{}", data.summary());
    let layers = init::layer_infos(&data, &config)?;
    let bar = super::progress_bar((config.runs().len() * config.epochs) as u64, "train");
    let mut done_epochs = 0_u64;
    let results = init::compare(&data, &config, &RunControl::new(), &mut |progress| match progress {
        InitProgress::Epoch { .. } => {
            done_epochs += 1;
            bar.set_position(done_epochs);
        }
        InitProgress::RunDone { result, .. } => {
            bar.set_message(format!(
                "{} at {:.2}: {:.1}%",
                result.method.map_or("dense", Method::label),
                result.sparsity,
                100.0 * result.test_accuracy
            ));
        }
    })?
    .context("cancelled")?;
    bar.finish_and_clear();
    write(&args.out.join("results.csv"), &files::init_csv(&results, &layers))?;
    image_io::save_png(&plots::init_chart(&results, 960, 540), &args.out.join("accuracy.png"))?;
    save_masks(&args.out.join("masks.safetensors"), &results, &layers, &config)?;
    let metrics = serde_json::json!({
        "data": data.summary(),
        "config": config,
        "layers": layers,
        "results": results,
    });
    write(&args.out.join("metrics.json"), &serde_json::to_string_pretty(&metrics)?)?;
    println!("{:>10}  {:>8}  {:>14}", "method", "sparsity", "test accuracy");
    for r in &results {
        println!(
            "{:>10}  {:>8.3}  {:>13.1}%",
            r.method.map_or("dense", Method::label),
            r.sparsity,
            100.0 * r.test_accuracy
        );
    }
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Each method's masks at its largest sparsity, as `{method}.{layer}` tensors (1 kept, 0 pruned).
fn save_masks(
    path: &Path,
    results: &[init::InitResult],
    layers: &[init::LayerInfo],
    config: &InitConfig,
) -> anyhow::Result<()> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for method in &config.methods {
        let Some(result) =
            results.iter().filter(|r| r.method == Some(*method)).max_by(|a, b| a.sparsity.total_cmp(&b.sparsity))
        else {
            continue;
        };
        for (layer, mask) in layers.iter().zip(&result.masks) {
            let values = mask.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
            tensors.push((format!("{}.{}", method.cli_name(), layer.name), layer.shape.clone(), values));
        }
    }
    if tensors.is_empty() {
        return Ok(());
    }
    let views: Vec<(String, Vec<usize>, &[f32])> =
        tensors.iter().map(|(name, shape, values)| (name.clone(), shape.clone(), values.as_slice())).collect();
    let metadata = std::collections::HashMap::from([(
        "sparsefield.prune_init".to_owned(),
        serde_json::to_string(config).unwrap_or_default(),
    )]);
    crate::compute::inr::weights::write_f32_safetensors(path, &views, metadata)?;
    Ok(())
}

fn run_once(args: &RunArgs) -> anyhow::Result<()> {
    let config = args.model.config(args.p);
    config.validate()?;
    super::prepare_output_dir(&args.out, "prune run")?;
    let data = TheoryData::generate(&config);
    let init = TheoryInit::new(&config);
    let test_every = if args.test_every == 0 { (config.steps / 50).max(1) } else { args.test_every };
    let options = RunOptions { test_every, ..RunOptions::default() };
    let bar = super::progress_bar(config.steps as u64, "train");
    let run = theory::train(&config, &data, &init, options, &RunControl::new(), &mut |point| {
        bar.set_position(point.step as u64);
        if point.test_accuracy.is_finite() {
            bar.set_message(format!("loss {:.2e}, test {:.1}%", point.train_loss, 100.0 * point.test_accuracy));
        }
    })?;
    bar.finish_and_clear();
    write(&args.out.join("history.csv"), &files::history_csv(&run.history))?;
    image_io::save_png(&plots::run_curves(&run.history, 960, 640), &args.out.join("curves.png"))?;
    save_weights(&args.out.join("weights.safetensors"), &run.weights, &init, &config)?;
    let last = run.last;
    let metrics = serde_json::json!({
        "config": config,
        "kept_fraction": run.kept_fraction,
        "final": last,
        "seconds": run.seconds,
        "solver": format!("{:?}", run.solver),
    });
    write(&args.out.join("metrics.json"), &serde_json::to_string_pretty(&metrics)?)?;
    println!(
        "p = {}: train loss {:.3e}, train accuracy {:.1}%, test accuracy {:.1}%, signal {:.3}, noise {:.3} ({:.3} s)",
        config.prune,
        last.train_loss,
        100.0 * last.train_accuracy,
        100.0 * last.test_accuracy,
        last.signal,
        last.noise,
        run.seconds
    );
    println!("wrote {}", args.out.display());
    Ok(())
}

fn sweep(args: &SweepArgs) -> anyhow::Result<()> {
    let config = args.model.config(0.0);
    config.validate()?;
    if args.seeds == 0 || args.seeds > 1000 {
        anyhow::bail!("--seeds must be 1 to 1000, got {}", args.seeds);
    }
    super::prepare_output_dir(&args.out, "prune sweep")?;
    let start = std::time::Instant::now();
    let bar = super::progress_bar((args.p.len() * args.seeds) as u64, "sweep");
    let points = theory::sweep(&config, &args.p, args.seeds, &RunControl::new(), &mut |done, _| {
        bar.set_position(done as u64);
    })?
    .context("the sweep was cancelled")?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    write(&args.out.join("sweep.csv"), &files::sweep_csv(&points))?;
    write(&args.out.join("runs.csv"), &files::runs_csv(&points))?;
    image_io::save_png(&plots::sweep_chart(&points, 960, 640), &args.out.join("sweep.png"))?;
    let summary: Vec<serde_json::Value> = points
        .iter()
        .map(|point| {
            let (test, test_std) = theory::mean_std(&point.test_accuracy);
            let (loss, _) = theory::mean_std(&point.train_loss);
            serde_json::json!({"p": point.prune, "test_accuracy_mean": test, "test_accuracy_std": test_std,
                "train_loss_mean": loss})
        })
        .collect();
    let metrics = serde_json::json!({
        "config": config,
        "seeds": args.seeds,
        "runs": points.len() * args.seeds,
        "seconds": seconds,
        "points": summary,
    });
    write(&args.out.join("metrics.json"), &serde_json::to_string_pretty(&metrics)?)?;
    println!("{:>6}  {:>14}  {:>12}", "p", "test accuracy", "train loss");
    for point in &points {
        let (test, std) = theory::mean_std(&point.test_accuracy);
        let (loss, _) = theory::mean_std(&point.train_loss);
        println!("{:>6.3}  {:>7.1}% ± {:>4.1}  {:>12.3e}", point.prune, 100.0 * test, 100.0 * std, loss);
    }
    println!("{} runs in {seconds:.2} s; wrote {}", points.len() * args.seeds, args.out.display());
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    crate::compute::files::write_atomic(path, text).with_context(|| format!("{}: cannot write", path.display()))
}

/// `weights` (`2m × d`, the effective weights w ⊙ M) and `mask` (1 kept, 0 pruned) as f32.
fn save_weights(path: &Path, weights: &[f64], init: &TheoryInit, config: &TheoryConfig) -> anyhow::Result<()> {
    #[allow(clippy::cast_possible_truncation)]
    let w: Vec<f32> = weights.iter().map(|&v| v as f32).collect();
    let mask: Vec<f32> = init.mask.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
    let shape = vec![init.rows, init.dim];
    let metadata = std::collections::HashMap::from([(
        "sparsefield.prune".to_owned(),
        serde_json::to_string(config).unwrap_or_default(),
    )]);
    crate::compute::inr::weights::write_f32_safetensors(
        path,
        &[("weights".to_owned(), shape.clone(), &w), ("mask".to_owned(), shape, &mask)],
        metadata,
    )?;
    Ok(())
}
