//! `sparsefield bench lift`: the built-in example lifted with each prior, with and without the
//! ranking loss (and with its true depth), scored against its true views as it trains.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use crate::compute::lift::example;
use crate::compute::lift::input::{self, DepthChoice, MaskSettings};
use crate::compute::lift::train::{self, LiftConfig, Lifter, PriorKind};

#[derive(Debug, Args)]
pub struct LiftBenchArgs {
    /// Steps of each lift.
    #[arg(long, default_value_t = LiftConfig::default().steps)]
    pub steps: u64,
    /// Training image side.
    #[arg(long, default_value_t = 64)]
    pub resolution: u32,
    /// Score the true views every this many steps (scoring time is not counted).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub eval_every: u64,
    /// Only the default configuration (geometric prior, ranking loss, inflation depth).
    #[arg(long)]
    pub quick: bool,
}

/// Silhouette IoU (mean of the true views at 90° and 180°) from which the object counts as
/// recognisable all around.
const RECOGNISABLE_IOU: f64 = 0.8;

pub fn run(args: &LiftBenchArgs) -> anyhow::Result<()> {
    let variants: &[(&str, PriorKind, bool, bool)] = &[
        ("geometric prior, ranking loss, inflation depth", PriorKind::Geometric, true, false),
        ("geometric prior, no ranking loss", PriorKind::Geometric, false, false),
        ("geometric prior, ranking loss, true depth", PriorKind::Geometric, true, true),
        ("no prior, ranking loss, inflation depth", PriorKind::None, true, false),
    ];
    let variants = if args.quick { &variants[..1] } else { variants };
    println!(
        "lift bench: built-in example at {0}×{0}, {1} steps, {2} threads",
        args.resolution,
        args.steps,
        rayon::current_num_threads()
    );
    println!("(anchors on their own benchmarks: NeuralLift-360 reference view 12.55 dB, Zero-1-to-3 23.96 dB)");
    for &(name, prior, rank, true_depth) in variants {
        let mut cfg = LiftConfig { steps: args.steps, prior, ..LiftConfig::default() };
        if !rank {
            cfg.rank_weight = 0.0;
        }
        let orbit = cfg.reference_orbit();
        let r = args.resolution;
        let photo = example::example_image(&orbit, r, r);
        let depth =
            if true_depth { DepthChoice::Given(example::example_depth(&orbit, r, r)) } else { DepthChoice::Inflate };
        let input = Arc::new(input::prepare(&photo, MaskSettings::default(), None, &depth, r)?);
        let truth = example::example_truth(&orbit, r, r);
        let mut lifter = Lifter::new(input.clone(), &cfg)?;
        let mut seconds = 0.0;
        let mut recognisable = None;
        let mut last = None;
        println!("\n{name}");
        println!("  {:>6} {:>8} {:>14} {:>16} {:>16}", "step", "secs", "reference dB", "90°/180° dB", "90°/180° IoU");
        for step in 1..=args.steps {
            let start = Instant::now();
            lifter.step()?;
            seconds += start.elapsed().as_secs_f64();
            if step % args.eval_every == 0 || step == args.steps {
                let snapshot = lifter.snapshot();
                let (metrics, _) = train::evaluate(&snapshot, &input, &cfg, Some(&truth));
                let (psnr, iou) =
                    (metrics.novel_mean_psnr_db().unwrap_or(f64::NAN), metrics.novel_mean_iou().unwrap_or(f64::NAN));
                println!("  {step:>6} {seconds:>8.1} {:>14.2} {psnr:>16.2} {iou:>16.3}", metrics.reference_psnr_db);
                if recognisable.is_none() && iou >= RECOGNISABLE_IOU {
                    recognisable = Some((step, seconds));
                }
                last = Some(metrics);
            }
        }
        #[allow(clippy::cast_precision_loss)]
        if let Some(m) = last {
            let when = recognisable.map_or_else(
                || format!("silhouettes never reached IoU {RECOGNISABLE_IOU}"),
                |(s, t)| format!("recognisable (silhouette IoU ≥ {RECOGNISABLE_IOU}) at step {s}, {t:.0} s"),
            );
            println!(
                "  → reference {:.2} dB, mask IoU {:.3}, true views 90°/180° {:.2} dB; {when}; {:.0} ms/step",
                m.reference_psnr_db,
                m.mask_iou,
                m.novel_mean_psnr_db().unwrap_or(f64::NAN),
                1e3 * seconds / args.steps as f64
            );
        }
    }
    Ok(())
}
