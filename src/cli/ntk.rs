//! `sparsefield ntk spectrum`: the Gram matrix of the empirical or limiting NTK and its spectrum.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::compute::ntk::kernel::{HiddenLayer, Points, eigenvalues, limit_kernel};
use crate::compute::ntk::load_points_csv;

#[derive(Debug, Subcommand)]
pub enum NtkCommand {
    /// The NTK Gram matrix of a one-hidden-layer ReLU net with bias on points of the sphere, and
    /// all its eigenvalues; writes eigenvalues.csv, metrics.json and (with --gram) gram.csv.
    Spectrum(SpectrumArgs),
}

#[derive(Debug, Args)]
pub struct SpectrumArgs {
    /// Points as CSV, one per row (rows are scaled to unit length). Default: random on the sphere.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Random points: how many.
    #[arg(long, default_value_t = 500)]
    pub n: usize,
    /// Random points: dimension.
    #[arg(long, default_value_t = 10)]
    pub d: usize,
    /// Bias at initialization B.
    #[arg(long, default_value_t = 0.0)]
    pub bias: f64,
    /// Hidden width m (ignored with --limit).
    #[arg(long, default_value_t = 1024)]
    pub width: usize,
    /// Fraction of hidden weights pruned at random.
    #[arg(long, default_value_t = 0.0)]
    pub prune: f64,
    /// The m → ∞ kernel (⟨x,x'⟩+1)·P(Z₁ > B, Z₂ > B) instead of the empirical one.
    #[arg(long)]
    pub limit: bool,
    /// Also write the Gram matrix as gram.csv.
    #[arg(long)]
    pub gram: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(command: NtkCommand) -> anyhow::Result<()> {
    match command {
        NtkCommand::Spectrum(args) => spectrum(&args),
    }
}

fn spectrum(args: &SpectrumArgs) -> anyhow::Result<()> {
    let points = match &args.data {
        Some(path) => load_points_csv(path)?,
        None => {
            if !(1..=crate::compute::ntk::MAX_POINTS).contains(&args.n) || !(1..=10_000).contains(&args.d) {
                anyhow::bail!("--n must be 1 to {} and --d 1 to 10000", crate::compute::ntk::MAX_POINTS);
            }
            Points::random_sphere(args.n, args.d, args.seed)?
        }
    };
    if !(1..=1_000_000).contains(&args.width) {
        anyhow::bail!("--width must be 1 to 1000000, got {}", args.width);
    }
    super::prepare_output_dir(&args.out)?;
    let start = std::time::Instant::now();
    let layer = HiddenLayer::new(args.width, points.d, args.bias, args.prune, args.seed)?;
    let gram = if args.limit { limit_kernel(&points, args.bias) } else { layer.empirical_kernel(&points)? };
    let gram_seconds = start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    let values = eigenvalues(&gram, points.n)?;
    let eigen_seconds = start.elapsed().as_secs_f64();
    let mut csv = String::from("index,eigenvalue\n");
    for (k, v) in values.iter().enumerate() {
        let _ = writeln!(csv, "{k},{v}");
    }
    let write = |name: &str, text: &str| {
        let path = args.out.join(name);
        std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))
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
    let active =
        if args.limit { crate::compute::ntk::kernel::normal_cdf(-args.bias) } else { layer.active_fraction(&points) };
    let metrics = serde_json::json!({
        "n": points.n,
        "d": points.d,
        "bias": args.bias,
        "width": if args.limit { serde_json::Value::Null } else { args.width.into() },
        "prune": args.prune,
        "limit": args.limit,
        "lambda_min": lambda_min,
        "lambda_max": lambda_max,
        "active_fraction": active,
        "gram_seconds": gram_seconds,
        "eigen_seconds": eigen_seconds,
    });
    write("metrics.json", &serde_json::to_string_pretty(&metrics)?)?;
    println!(
        "{} points in {} dimensions, B = {}: λ_min {lambda_min:.4e}, λ_max {lambda_max:.4e}, active {:.1}% (Gram {:.0} ms, eigenvalues {:.0} ms)",
        points.n,
        points.d,
        args.bias,
        100.0 * active,
        gram_seconds * 1e3,
        eigen_seconds * 1e3
    );
    println!("wrote {}", args.out.display());
    Ok(())
}
