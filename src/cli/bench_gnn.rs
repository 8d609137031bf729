//! `sparsefield bench gnn`: GCN, GIN or GAT tickets on Cora against the UGTs repository's figures.

use std::sync::Arc;

use clap::Args;

use crate::compute::control::RunControl;
use crate::compute::gnn::model::{self, GnnConfig, Method};
use crate::compute::gnn::planetoid;
use crate::compute::metrics::mean_std;

#[derive(Debug, Args)]
pub struct GnnBenchArgs {
    /// Sparsities of the masked runs.
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.9,0.99")]
    pub sparsities: Vec<f64>,
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    #[arg(long, default_value_t = GnnConfig::default().epochs)]
    pub epochs: usize,
    #[arg(long, value_enum, default_value_t = super::gnn::ModelArg::Gcn)]
    pub model: super::gnn::ModelArg,
    /// Also run each setting in plain PyTorch (`python3 benches/pytorch_gnn.py`, GCN only; needs
    /// python3 with torch, numpy and scipy) and print the speed ratio.
    #[arg(long)]
    pub pytorch: bool,
}

/// The plain PyTorch twin's figures for one setting: (mean test accuracy, mean seconds per run).
fn pytorch_twin(method: Method, sparsity: f64, seeds: u64, epochs: usize) -> anyhow::Result<(f64, f64)> {
    let args = [
        "--method".to_string(),
        crate::compute::gnn::files::method_name(method).to_string(),
        "--sparsity".to_string(),
        sparsity.to_string(),
        "--seeds".to_string(),
        seeds.to_string(),
        "--epochs".to_string(),
        epochs.to_string(),
        "--threads".to_string(),
        "2".to_string(),
    ];
    let last = super::bench::python_twin("pytorch_gnn.py", &args, "torch numpy scipy")?;
    // The last line: "… test 0.7812 ± 0.0190, 14.23 s per run".
    let number_after = |key: &str| -> Option<f64> {
        let at = last.find(key)? + key.len();
        last[at..].split(|c: char| c.is_whitespace() || c == ',').find(|w| !w.is_empty())?.parse().ok()
    };
    let accuracy = number_after("test ");
    let seconds = last.split(", ").last().and_then(|t| t.split_whitespace().next()).and_then(|t| t.parse().ok());
    match (accuracy, seconds) {
        (Some(a), Some(s)) => Ok((a, s)),
        _ => anyhow::bail!("could not read the PyTorch twin's result from its last line: {last:?}"),
    }
}

/// The repository's figures for 2-layer networks on Cora (notebook and figure, read by eye).
const ANCHORS: &str = "UGTs repository: GCN UGT 81.3% at 0.9, ≈70% at 0.99, edge-popup ≈52% at 0.99, dense ≈81%; \
GAT UGT 82.0% at 0.95, ≈80% at 0.99, edge-popup ≈46% at 0.99";

pub fn run(args: &GnnBenchArgs) -> anyhow::Result<()> {
    let cora = Arc::new(planetoid::cora()?);
    let arch = super::gnn::arch_of(args.model);
    if args.pytorch && arch != model::Arch::Gcn {
        anyhow::bail!("--pytorch compares GCN runs only (benches/pytorch_gnn.py is a GCN)");
    }
    println!(
        "Cora: {} nodes, {} edges, {} classes; 2-layer {}, 256 hidden, {} epochs, {} seeds",
        cora.num_nodes,
        cora.edges.len() / 2,
        cora.num_classes,
        arch.name(),
        args.epochs,
        args.seeds
    );
    println!("{ANCHORS}");
    let mut runs: Vec<(Method, f64)> = vec![(Method::Dense, 0.0)];
    for &s in &args.sparsities {
        runs.push((Method::Ugt, s));
        runs.push((Method::EdgePopup, s));
    }
    for (method, sparsity) in runs {
        let mut accs = Vec::new();
        let mut secs = Vec::new();
        for seed in 0..args.seeds {
            let config = GnnConfig {
                arch,
                method,
                sparsity,
                epochs: args.epochs,
                seed,
                weight_decay: if method == Method::Dense { 5e-4 } else { 0.0 },
                ..GnnConfig::default()
            };
            let (summary, _) = model::train(Arc::clone(&cora), &config, &RunControl::new(), &mut |_| {})?;
            accs.push(summary.test_acc);
            secs.push(summary.seconds);
        }
        let (m, sd) = mean_std(&accs);
        let seconds = mean_std(&secs).0;
        #[allow(clippy::cast_precision_loss)]
        let per_epoch_ms = 1e3 * seconds / args.epochs as f64;
        println!(
            "{method:?} at sparsity {sparsity:.2}: test {:.1}% ± {:.1} over {} seeds; {:.2} s per run ({:.1} ms per epoch)",
            100.0 * m,
            100.0 * sd,
            accs.len(),
            seconds,
            per_epoch_ms
        );
        if args.pytorch {
            let (accuracy, twin_seconds) = pytorch_twin(method, sparsity, args.seeds, args.epochs)?;
            println!(
                "  plain PyTorch (benches/pytorch_gnn.py, 2 threads): test {:.1}%, {twin_seconds:.2} s per run → {:.1}× its speed",
                100.0 * accuracy,
                twin_seconds / seconds
            );
        }
    }
    Ok(())
}
