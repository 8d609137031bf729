//! `sparsefield prune run|sweep`: the random-pruning theory model from the command line.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::compute::control::RunControl;
use crate::compute::image_io;
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
    }
}

fn run_once(args: &RunArgs) -> anyhow::Result<()> {
    let config = args.model.config(args.p);
    config.validate()?;
    super::prepare_output_dir(&args.out)?;
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
    super::prepare_output_dir(&args.out)?;
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
    std::fs::write(path, text).with_context(|| format!("{}: cannot write", path.display()))
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
