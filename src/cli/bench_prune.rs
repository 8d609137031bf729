//! `sparsefield bench prune`: the theory model's single run (both solvers) and the default sweep.

use std::time::Instant;

use clap::Args;

use crate::compute::control::RunControl;
use crate::compute::prune::theory::{
    self, DEFAULT_FRACTIONS, RunOptions, Solver, TheoryConfig, TheoryData, TheoryInit,
};

/// The same sweep written plainly in PyTorch (`benches/pytorch_prune.py`, 2 threads, this
/// machine class): seconds for 20 fractions × 5 seeds at default sizes.
const PYTORCH_SWEEP_SECS: f64 = 33.6;
/// One epoch of the digits MLP (64→100→100→10, Adam, batch 64, 1438 images) in plain PyTorch
/// (`benches/pytorch_prune.py --digits`, 2 threads).
const PYTORCH_DIGITS_EPOCH_MS: f64 = 18.7;

#[derive(Debug, Args)]
pub struct PruneBenchArgs {
    /// Seeds per fraction in the timed sweep.
    #[arg(long, default_value_t = 5)]
    pub seeds: usize,
    /// Timed repetitions of the single run (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Timed epochs of the digits MLP.
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
}

pub fn bench_prune(args: &PruneBenchArgs) -> anyhow::Result<()> {
    let config = TheoryConfig::default();
    let start = Instant::now();
    let data = TheoryData::generate(&config);
    let data_ms = start.elapsed().as_secs_f64() * 1e3;
    let init = TheoryInit::new(&config);
    println!(
        "prune theory model: d = {}, n = {} (+{} test), m = {} per class, {} GD steps; data drawn in {data_ms:.0} ms",
        config.dim, config.n_train, config.n_test, config.width, config.steps
    );
    for solver in [Solver::Gram, Solver::Explicit] {
        let mut times: Vec<f64> = (0..args.repeats.max(1))
            .map(|_| {
                let options = RunOptions { solver, history: false, parallel: false, test_every: 0 };
                let start = Instant::now();
                let run = theory::train(&config, &data, &init, options, &RunControl::new(), &mut |_| {});
                run.map(|_| start.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_, _>>()?;
        times.sort_by(f64::total_cmp);
        println!("  one run, {solver:?} solver, one thread: median {:.1} ms", times[times.len() / 2]);
    }
    let start = Instant::now();
    let points = theory::sweep(&config, &DEFAULT_FRACTIONS, args.seeds, &RunControl::new(), &mut |_, _| {})?
        .ok_or_else(|| anyhow::anyhow!("cancelled"))?;
    let seconds = start.elapsed().as_secs_f64();
    let runs = points.len() * args.seeds;
    #[allow(clippy::cast_precision_loss)]
    let ms_per_run = 1e3 * seconds / runs as f64;
    println!(
        "  sweep: {} fractions × {} seeds = {runs} runs in {seconds:.2} s ({ms_per_run:.0} ms per run, {} threads)",
        points.len(),
        args.seeds,
        rayon::current_num_threads()
    );
    if args.seeds == 5 {
        println!(
            "  reference: plain PyTorch {PYTORCH_SWEEP_SECS:.1} s (benches/pytorch_prune.py) → {:.1}× its speed",
            PYTORCH_SWEEP_SECS / seconds
        );
    }
    for point in &points {
        let (mean, std) = theory::mean_std(&point.test_accuracy);
        println!("    p = {:.2}: test {:.1}% ± {:.1}", point.prune, 100.0 * mean, 100.0 * std);
    }
    bench_digits_epoch(args.epochs)
}

/// Epochs of the dense digits MLP (the pruning-at-init workload's unit of work).
fn bench_digits_epoch(epochs: usize) -> anyhow::Result<()> {
    use crate::compute::prune::data::builtin_digits;
    use crate::compute::prune::init::{self, InitConfig, ModelKind, Net};
    let data = builtin_digits();
    let config = InitConfig { epochs: epochs.max(1), ..InitConfig::default() };
    let net = Net::new(ModelKind::Mlp, (1, 8, 8), config.hidden, 10, 0)?;
    let masks: Vec<Vec<bool>> = net.layers().iter().map(|l| vec![true; l.shape.iter().product()]).collect();
    let start = Instant::now();
    let trained = init::train_masked(&net, &masks, &data, &config, &RunControl::new(), &mut |_, _| {})?
        .ok_or_else(|| anyhow::anyhow!("cancelled"))?;
    #[allow(clippy::cast_precision_loss)]
    let ms = start.elapsed().as_secs_f64() * 1e3 / config.epochs as f64;
    println!(
        "  digits MLP 64→{h}→{h}→10, Adam, batch {b}, {n} images: {ms:.1} ms per epoch (test accuracy {:.1}% after {e})",
        100.0 * trained.0,
        h = config.hidden,
        b = config.batch,
        n = data.train.len(),
        e = config.epochs
    );
    println!(
        "  reference: plain PyTorch {PYTORCH_DIGITS_EPOCH_MS:.1} ms per epoch → {:.1}× its speed",
        PYTORCH_DIGITS_EPOCH_MS / ms
    );
    Ok(())
}
