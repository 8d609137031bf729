//! `sparsefield bench htl`: training the dense and pruned populations of the hard-sample lab on
//! the built-in digits, against the same work in plain PyTorch (`benches/pytorch_htl.py`).

// Counts of samples and seconds: far below 2^52.
#![allow(clippy::cast_precision_loss)]

use std::time::Instant;

use anyhow::Context as _;
use clap::Args;

use crate::compute::control::RunControl;
use crate::compute::htl::attend::AttendConfig;
use crate::compute::htl::data;
use crate::compute::htl::lesion::{self, SyntheticConfig};
use crate::compute::htl::pie::{self};
use crate::compute::htl::population::{self, PopulationConfig};
use crate::compute::htl::seg::{self, SegConfig};

/// `benches/pytorch_htl.py` on the development machine (PyTorch 2.15), 5 + 5 models: its best
/// time, with one thread (two threads took 6.3–8.8 s).
const PYTORCH_SECONDS: f64 = 5.72;

#[derive(Debug, Args)]
pub struct HtlBenchArgs {
    /// Models in each population.
    #[arg(long, default_value_t = 5)]
    pub models: usize,
    /// Timed repetitions (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
}

pub fn bench_htl(args: &HtlBenchArgs) -> anyhow::Result<()> {
    let data = data::builtin_digits();
    let config = PopulationConfig { models: args.models, ..PopulationConfig::default() };
    config.validate()?;
    let samples = (config.models * config.epochs_per_model() * data.data.train.len()) as f64;
    let time = |threads: usize| -> anyhow::Result<(f64, population::Populations)> {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        let mut best: Option<(f64, population::Populations)> = None;
        for _ in 0..args.repeats.max(1) {
            let start = Instant::now();
            let pops = pool
                .install(|| population::train_populations(&data, &config, &RunControl::new(), &|_| {}))?
                .context("cancelled")?;
            let seconds = start.elapsed().as_secs_f64();
            if best.as_ref().is_none_or(|(b, _)| seconds < *b) {
                best = Some((seconds, pops));
            }
        }
        best.context("no repetition ran")
    };
    let threads = rayon::current_num_threads();
    let (all, pops) = time(threads)?;
    let (one, _) = time(1)?;
    let mean = |accuracies: Vec<f64>| accuracies.iter().sum::<f64>() / accuracies.len().max(1) as f64;
    let train = pie::score_split(&pops, &data, data::Split::Train);
    println!(
        "htl: {} dense + {} pruned MLPs 64→128→128→10 on the built-in digits, {} + {} epochs, batch {} (best of {})",
        config.models,
        config.models,
        config.epochs,
        config.finetune_epochs,
        config.batch,
        args.repeats.max(1)
    );
    println!(
        "  both populations, {threads} threads: {all:.2} s ({:.0} samples/s); PyTorch's best {PYTORCH_SECONDS:.2} s → {:.1}× its speed",
        samples / all,
        PYTORCH_SECONDS / all
    );
    println!(
        "  one thread: {one:.2} s ({:.0} samples/s) → {:.1}× PyTorch on one thread",
        samples / one,
        PYTORCH_SECONDS / one
    );
    println!(
        "  test accuracy: dense {:.1}%, pruned {:.1}%; {} PIE among {} training samples",
        100.0 * mean(pops.dense().iter().map(|t| t.test.accuracy).collect()),
        100.0 * mean(pops.pruned().iter().map(|t| t.test.accuracy).collect()),
        train.iter().filter(|s| s.pie).count(),
        train.len()
    );
    // Localization: the default study on the synthetic lesions (supervised).
    let lesions = lesion::synthetic(&SyntheticConfig::default())?;
    let seg_config = SegConfig::default();
    let report = seg::localize(&lesions, &seg_config, Some(&AttendConfig::default()), &RunControl::new(), &|_, _| {})?
        .context("cancelled")?;
    let side = lesions.train.side;
    println!(
        "  localization: {} + {} + {} segmentation nets on {} synthetic {side}×{side} lesions, {} + {} epochs: {:.1} s, \
         {:.0} images/s ({:.1} M pixels/s)",
        seg_config.models,
        seg_config.models,
        seg_config.models,
        lesions.train.len(),
        seg_config.epochs,
        seg_config.finetune_epochs,
        report.seconds,
        report.samples_per_second,
        report.samples_per_second * (side * side) as f64 / 1e6
    );
    Ok(())
}
