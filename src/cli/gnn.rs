//! `sparsefield gnn train`: untrained GNN tickets (and their baselines) from the command line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::compute::control::{RunControl, RunEvent};
use crate::compute::gnn::graph::Graph;
use crate::compute::gnn::model::{self, GnnConfig, Method, WeightInit};
use crate::compute::gnn::planetoid;

#[derive(Debug, Subcommand)]
pub enum GnnCommand {
    /// Train one network on a node-classification data set. Writes metrics.json (test_acc of the
    /// epoch with the best validation accuracy, val_acc, sparsity_reached, seconds) and
    /// history.csv (loss, sparsity and accuracies per epoch).
    Train(TrainArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelArg {
    /// Graph convolutions, Â·H·W with Â = D^-½(A+I)D^-½.
    Gcn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// Untrained ticket: fixed random weights, trained scores, one global threshold, gradual sparsity.
    Ugt,
    /// Fixed random weights, trained scores, top-k per layer at the target from the start.
    EdgePopup,
    /// The weights trained, no mask.
    Dense,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitArg {
    KaimingUniform,
    SignedConstant,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// `cora` (built in), or a folder of Planetoid raw files (ind.<name>.x, …; PyTorch
    /// Geometric's <root>/<Name>/raw or its parent).
    #[arg(long, default_value = "cora")]
    pub data: String,
    #[arg(long, value_enum, default_value_t = ModelArg::Gcn)]
    pub model: ModelArg,
    #[arg(long, value_enum, default_value_t = MethodArg::Ugt)]
    pub method: MethodArg,
    /// Share of weights masked out (ugt, edge-popup).
    #[arg(long, default_value_t = GnnConfig::default().sparsity)]
    pub sparsity: f64,
    #[arg(long, default_value_t = GnnConfig::default().layers)]
    pub layers: usize,
    #[arg(long, default_value_t = GnnConfig::default().hidden)]
    pub hidden: usize,
    #[arg(long, default_value_t = GnnConfig::default().epochs)]
    pub epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = GnnConfig::default().lr)]
    pub lr: f64,
    #[arg(long, default_value_t = GnnConfig::default().weight_decay)]
    pub weight_decay: f64,
    /// Dropout on each layer's input (dense training only).
    #[arg(long, default_value_t = GnnConfig::default().dropout)]
    pub dropout: f64,
    /// How masked networks draw their fixed weights.
    #[arg(long, value_enum, default_value_t = InitArg::KaimingUniform)]
    pub init: InitArg,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(command: GnnCommand) -> anyhow::Result<()> {
    match command {
        GnnCommand::Train(args) => train(&args),
    }
}

/// The data set `data` names: `cora` or a Planetoid folder.
pub fn load_data(data: &str) -> anyhow::Result<Graph> {
    Ok(if data.eq_ignore_ascii_case("cora") {
        planetoid::cora()?
    } else {
        planetoid::load(std::path::Path::new(data))?
    })
}

pub fn config_of(args: &TrainArgs) -> GnnConfig {
    GnnConfig {
        method: match args.method {
            MethodArg::Ugt => Method::Ugt,
            MethodArg::EdgePopup => Method::EdgePopup,
            MethodArg::Dense => Method::Dense,
        },
        layers: args.layers,
        hidden: args.hidden,
        sparsity: args.sparsity,
        epochs: args.epochs,
        lr: args.lr,
        weight_decay: args.weight_decay,
        dropout: args.dropout,
        init: match args.init {
            InitArg::KaimingUniform => WeightInit::KaimingUniform,
            InitArg::SignedConstant => WeightInit::SignedConstant,
        },
        seed: args.seed,
    }
}

fn train(args: &TrainArgs) -> anyhow::Result<()> {
    let config = config_of(args);
    config.validate()?;
    let graph = Arc::new(load_data(&args.data)?);
    super::prepare_output_dir(&args.out, "gnn train")?;
    let bar = super::progress_bar(config.epochs as u64, "gnn train");
    let (summary, history) = model::train_gcn(Arc::clone(&graph), &config, &RunControl::new(), &mut |event| {
        if let RunEvent::Progress { step, metrics, .. } = event {
            bar.set_position(step);
            let get = |name: &str| metrics.iter().find(|(n, _)| *n == name).map_or(f64::NAN, |(_, v)| *v);
            bar.set_message(format!("val {:.1}%, test {:.1}%", 100.0 * get("val_acc"), 100.0 * get("test_acc")));
        }
    })?;
    bar.finish_and_clear();
    let metrics = serde_json::json!({
        "data": graph.name,
        "nodes": graph.num_nodes,
        "edges": graph.edges.len() / 2,
        "classes": graph.num_classes,
        "model": "gcn",
        "config": config,
        "test_acc": summary.test_acc,
        "val_acc": summary.val_acc,
        "best_epoch": summary.best_epoch,
        "sparsity_reached": summary.sparsity_reached,
        "seconds": summary.seconds,
    });
    let write = |name: &str, text: String| -> anyhow::Result<()> {
        let path = args.out.join(name);
        crate::compute::files::write_atomic(&path, text).with_context(|| format!("{}: cannot write", path.display()))
    };
    write("metrics.json", serde_json::to_string_pretty(&metrics)?)?;
    let mut csv = String::from("epoch,loss,sparsity,train_acc,val_acc,test_acc,elapsed_secs\n");
    for r in &history {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            r.epoch, r.loss, r.sparsity, r.train_acc, r.val_acc, r.test_acc, r.elapsed_secs
        ));
    }
    write("history.csv", csv)?;
    println!(
        "{} ({} nodes, {} edges): GCN {:?} at sparsity {:.3}: test {:.1}% (epoch {} of {}, best validation {:.1}%) in {:.2} s",
        graph.name,
        graph.num_nodes,
        graph.edges.len() / 2,
        config.method,
        summary.sparsity_reached,
        100.0 * summary.test_acc,
        summary.best_epoch,
        config.epochs,
        100.0 * summary.val_acc,
        summary.seconds
    );
    Ok(())
}
