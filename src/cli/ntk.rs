//! `sparsefield ntk spectrum`: the Gram matrix of the empirical or limiting NTK and its spectrum.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::compute::control::RunControl;
use crate::compute::ntk::analysis::{self, NtkConfig, Which};
use crate::compute::ntk::data::NtkData;
use crate::compute::ntk::files;
use crate::compute::ntk::kernel::{HiddenLayer, eigenvalues, limit_kernel};
use crate::compute::ntk::lanczos::extreme_eigenvalues;
use crate::compute::ntk::sweep::{DEFAULT_WIDTHS, DISTANCE_WIDTHS, distance_vs_width, lambda_min_vs_bias};

#[derive(Debug, Subcommand)]
pub enum NtkCommand {
    /// The NTK Gram matrix of a one-hidden-layer ReLU net with bias on points of the sphere, and
    /// all its eigenvalues; writes eigenvalues.csv, metrics.json and (with --gram) gram.csv.
    Spectrum(SpectrumArgs),
    /// Train the network itself (weights and biases, squared loss, full-batch GD) beside the
    /// kernel regime's predictions; writes training.csv, training.png and metrics.json.
    Train(TrainArgs),
    /// λ_min against the bias for several widths and the limit, and the empirical kernel's
    /// distance to the limit against the width; writes lambda_min.csv/png and distance.csv/png.
    Sweep(SweepArgs),
}

/// Where the points come from (random on the sphere unless another source is given).
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Points as CSV, one per row (rows are scaled to unit length).
    #[arg(long, conflicts_with_all = ["clusters", "digits", "n", "d"])]
    pub data: Option<PathBuf>,
    /// Random points: how many.
    #[arg(long, default_value_t = 500)]
    pub n: usize,
    /// Random points: dimension.
    #[arg(long, default_value_t = 10, conflicts_with = "digits")]
    pub d: usize,
    /// Clustered points: this many centres, each point at --spread degrees from its centre.
    #[arg(long, conflicts_with = "digits")]
    pub clusters: Option<usize>,
    /// Clustered points: angle between a point and its centre, in degrees.
    #[arg(long, default_value_t = 20.0, requires = "clusters")]
    pub spread: f64,
    /// The first --n built-in 8×8 digits, centred and put on the sphere (64 dimensions).
    #[arg(long)]
    pub digits: bool,
}

impl DataArgs {
    fn source(&self) -> NtkData {
        if let Some(path) = &self.data {
            NtkData::Csv(path.clone())
        } else if self.digits {
            NtkData::Digits { n: self.n }
        } else if let Some(clusters) = self.clusters {
            NtkData::Clustered { n: self.n, d: self.d, clusters, spread_deg: self.spread }
        } else {
            NtkData::Random { n: self.n, d: self.d }
        }
    }
}

/// The network: bias, width, pruning and seed.
#[derive(Debug, Args)]
pub struct NetArgs {
    /// Bias at initialization B.
    #[arg(long, default_value_t = 0.0)]
    pub bias: f64,
    /// Hidden width m.
    #[arg(long, default_value_t = 1024)]
    pub width: usize,
    /// Fraction of hidden weights pruned at random (the mask stays fixed while training).
    #[arg(long, default_value_t = 0.0)]
    pub prune: f64,
    /// Seed of the points, the weights and the mask.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct SpectrumArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub net: NetArgs,
    /// The m → ∞ kernel (⟨x,x'⟩+1)·P(Z₁ > B, Z₂ > B) of the unpruned net instead of the empirical
    /// one (--width is then ignored).
    #[arg(long, conflicts_with = "prune")]
    pub limit: bool,
    /// Also write the Gram matrix as gram.csv.
    #[arg(long)]
    pub gram: bool,
    /// Only the K smallest and K largest eigenvalues (Lanczos; much faster for large n).
    #[arg(long, value_name = "K", value_parser = positive)]
    pub extreme: Option<usize>,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub net: NetArgs,
    /// Gradient-descent steps.
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Step size η as a multiple of 1/λ_max of the network's Gram matrix at initialization, in (0, 2).
    #[arg(long, default_value_t = 1.0)]
    pub step_scale: f64,
    /// Do not train the dense network (B = 0, nothing pruned) for comparison.
    #[arg(long)]
    pub no_dense: bool,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Biases, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])]
    pub bias: Vec<f64>,
    /// Widths compared with the limit in the λ_min sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_WIDTHS.to_vec())]
    pub width: Vec<usize>,
    /// Widths of the distance-to-the-limit sweep (at every bias), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = DISTANCE_WIDTHS.to_vec())]
    pub distance_width: Vec<usize>,
    /// Fraction of hidden weights pruned at random.
    #[arg(long, default_value_t = 0.0)]
    pub prune: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(command: NtkCommand) -> anyhow::Result<()> {
    match command {
        NtkCommand::Spectrum(args) => spectrum(&args),
        NtkCommand::Train(args) => train(&args),
        NtkCommand::Sweep(args) => sweep(&args),
    }
}

fn spectrum(args: &SpectrumArgs) -> anyhow::Result<()> {
    let points = args.data.source().load(args.net.seed)?.points;
    if !(1..=1_000_000).contains(&args.net.width) {
        anyhow::bail!("--width must be 1 to 1000000, got {}", args.net.width);
    }
    if !args.limit {
        crate::compute::ntk::analysis::check_size(points.n, points.d, args.net.width)?;
    }
    super::prepare_output_dir(&args.out, "ntk spectrum")?;
    let start = std::time::Instant::now();
    let layer = HiddenLayer::new(
        if args.limit { 1 } else { args.net.width },
        points.d,
        args.net.bias,
        args.net.prune,
        args.net.seed,
    )?;
    let gram = if args.limit { limit_kernel(&points, args.net.bias) } else { layer.empirical_kernel(&points)? };
    let gram_seconds = start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    let n = points.n;
    // (rank in ascending order, eigenvalue)
    let ranked: Vec<(usize, f64)> = match args.extreme {
        Some(count) => {
            let (smallest, largest) = extreme_eigenvalues(&gram, n, count)?;
            let mut ranked: Vec<(usize, f64)> = smallest.into_iter().enumerate().collect();
            let first_large = n - largest.len();
            ranked.extend(largest.into_iter().rev().enumerate().map(|(k, v)| (first_large + k, v)));
            ranked.sort_by_key(|(k, _)| *k);
            ranked.dedup_by_key(|(k, _)| *k);
            ranked
        }
        None => eigenvalues(&gram, n)?.into_iter().enumerate().collect(),
    };
    let values: Vec<f64> = ranked.iter().map(|(_, v)| *v).collect();
    let eigen_seconds = start.elapsed().as_secs_f64();
    let mut csv = String::from("index,eigenvalue\n");
    for (k, v) in &ranked {
        let _ = writeln!(csv, "{k},{v}");
    }
    let write = |name: &str, text: &str| {
        let path = args.out.join(name);
        crate::compute::files::write_atomic(&path, text).with_context(|| format!("{}: cannot write", path.display()))
    };
    write("eigenvalues.csv", &csv)?;
    if args.gram {
        let mut text = String::new();
        for row in gram.chunks_exact(points.n) {
            let line: Vec<String> = row.iter().map(f64::to_string).collect();
            let _ = writeln!(text, "{}", line.join(","));
        }
        write("gram.csv", &text)?;
    }
    let (lambda_min, lambda_max) =
        (values.first().copied().unwrap_or(f64::NAN), values.last().copied().unwrap_or(f64::NAN));
    let active = if args.limit {
        crate::compute::ntk::kernel::normal_cdf(-args.net.bias)
    } else {
        layer.active_fraction(&points)
    };
    let metrics = serde_json::json!({
        "n": points.n,
        "d": points.d,
        "bias": args.net.bias,
        "width": if args.limit { serde_json::Value::Null } else { args.net.width.into() },
        "prune": args.net.prune,
        "limit": args.limit,
        "lambda_min": lambda_min,
        "lambda_max": lambda_max,
        "active_fraction": active,
        "extreme": args.extreme,
        "gram_seconds": gram_seconds,
        "eigen_seconds": eigen_seconds,
    });
    write("metrics.json", &serde_json::to_string_pretty(&metrics)?)?;
    println!(
        "{} points in {} dimensions, B = {}: λ_min {lambda_min:.4e}, λ_max {lambda_max:.4e}, active {:.1}% (Gram {:.0} ms, eigenvalues {:.0} ms)",
        points.n,
        points.d,
        args.net.bias,
        100.0 * active,
        gram_seconds * 1e3,
        eigen_seconds * 1e3
    );
    println!("wrote {}", args.out.display());
    Ok(())
}

fn train(args: &TrainArgs) -> anyhow::Result<()> {
    let config = NtkConfig {
        data: args.data.source(),
        width: args.net.width,
        bias: args.net.bias,
        prune: args.net.prune,
        seed: args.net.seed,
        steps: args.steps,
        step_scale: args.step_scale,
        compare_dense: !args.no_dense,
    };
    config.validate()?;
    let data = config.data.load(config.seed)?;
    super::prepare_output_dir(&args.out, "ntk train")?;
    let spectrum = analysis::spectrum(&config, &data)?;
    let runs = if config.trains_dense() { 2 } else { 1 };
    let bar = super::progress_bar((runs * (config.steps + 1)) as u64, "train");
    let start = std::time::Instant::now();
    let training = analysis::training(&config, &data, &spectrum, None, &RunControl::new(), &mut |which, point| {
        let offset = if which == Which::Dense { config.steps + 1 } else { 0 };
        bar.set_position((offset + point.step + 1) as u64);
        if point.step % 50 == 0 {
            bar.set_message(format!("loss {:.3e}", point.loss));
        }
    })?
    .ok_or_else(|| anyhow::anyhow!("training was cancelled"))?;
    bar.finish_and_clear();
    let written = files::write_all(&args.out, None, None, None, Some(&training), false).map_err(anyhow::Error::msg)?;
    let summary = |run: &crate::compute::ntk::train::TrainRun| {
        let last = run.points.last().copied();
        serde_json::json!({
            "learning_rate": run.learning_rate,
            "lambda_min": run.lambda_min,
            "initial_loss": run.points.first().map(|p| p.loss),
            "final_loss": last.map(|p| p.loss),
            "final_linearized": last.map(|p| p.linear),
            "final_bound": last.map(|p| p.bound),
        })
    };
    let metrics = serde_json::json!({
        "n": data.points.n,
        "d": data.points.d,
        "data": config.data.label(),
        "bias": config.bias,
        "width": config.width,
        "prune": config.prune,
        "steps": config.steps,
        "step_scale": config.step_scale,
        "lambda_max": spectrum.lambda_max(),
        "active_fraction": spectrum.active_fraction,
        "chosen": summary(&training.chosen),
        "dense": training.dense.as_ref().map(summary),
        "seconds": start.elapsed().as_secs_f64(),
    });
    let path = args.out.join("metrics.json");
    crate::compute::files::write_atomic(&path, serde_json::to_string_pretty(&metrics)?)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    let describe = |run: &crate::compute::ntk::train::TrainRun| {
        let (first, last) = (run.points.first(), run.points.last());
        format!(
            "loss {:.3e} → {:.3e} (bound {:.3e}, η λ_min = {:.2e})",
            first.map_or(f64::NAN, |p| p.loss),
            last.map_or(f64::NAN, |p| p.loss),
            last.map_or(f64::NAN, |p| p.bound),
            run.learning_rate * run.lambda_min
        )
    };
    println!("B = {}, p = {}: {}", config.bias, config.prune, describe(&training.chosen));
    if let Some(dense) = &training.dense {
        println!("dense (B = 0, p = 0): {}", describe(dense));
    }
    println!("wrote {} files to {}", written.len() + 1, args.out.display());
    Ok(())
}

fn sweep(args: &SweepArgs) -> anyhow::Result<()> {
    if !(0.0..1.0).contains(&args.prune) {
        anyhow::bail!("--prune must be in [0, 1), got {}", args.prune);
    }
    let points = args.data.source().load(args.seed)?.points;
    for &width in args.width.iter().chain(&args.distance_width) {
        crate::compute::ntk::analysis::check_size(points.n, points.d, width)?;
    }
    super::prepare_output_dir(&args.out, "ntk sweep")?;
    let control = RunControl::new();
    let total = args.bias.len() * (args.width.len() + 1 + args.distance_width.len());
    let bar = super::progress_bar(total as u64, "sweep");
    let lambda =
        lambda_min_vs_bias(&points, &args.bias, &args.width, args.prune, args.seed, &control, &mut |done, _| {
            bar.set_position(done as u64);
        })?
        .ok_or_else(|| anyhow::anyhow!("the sweep was cancelled"))?;
    let mut distance = Vec::new();
    for &bias in &args.bias {
        let offset = lambda.len() + distance.len();
        let rows =
            distance_vs_width(&points, bias, &args.distance_width, args.prune, args.seed, &control, &mut |done, _| {
                bar.set_position((offset + done) as u64);
            })?
            .ok_or_else(|| anyhow::anyhow!("the sweep was cancelled"))?;
        distance.extend(rows);
    }
    bar.finish_and_clear();
    let written =
        files::write_all(&args.out, None, Some(&lambda), Some(&distance), None, false).map_err(anyhow::Error::msg)?;
    for p in lambda.iter().filter(|p| p.width.is_none()) {
        println!("B = {}: limit λ_min {:.4e}, active {:.1}%", p.bias, p.lambda_min, 100.0 * p.active_fraction);
    }
    println!("wrote {} files to {}", written.len(), args.out.display());
    Ok(())
}

/// A whole number of at least 1.
fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(k) => Ok(k),
        Err(e) => Err(e.to_string()),
    }
}
