//! `sparsefield gnn train|sweep|depth|ood`: untrained GNN tickets (and their baselines) from the
//! command line.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::compute::control::{RunControl, RunEvent};
use crate::compute::gnn::csbm::CsbmSpec;
use crate::compute::gnn::graph::Graph;
use crate::compute::gnn::live::DataSource;
use crate::compute::gnn::model::{self, Arch, GnnConfig, Method, WeightInit};
use crate::compute::gnn::{files, live, study};

#[derive(Debug, Subcommand)]
pub enum GnnCommand {
    /// Train one network on a node-classification data set. Writes metrics.json (test_acc of the
    /// epoch with the best validation accuracy, val_acc, sparsity_reached, each layer's kept
    /// share, seconds), history.csv (loss, sparsity and accuracies per epoch) and
    /// predictions.csv (node, label, prediction, split, degree).
    Train(TrainArgs),
    /// Accuracy against sparsity for each method, seeds as spread: sweep.csv (one row per run)
    /// and sweep.png (means with ± one standard deviation shaded, dense as a dashed line).
    Sweep(SweepArgs),
    /// Accuracy and over-smoothing against depth: depth.csv (one row per run, each layer's MAD)
    /// and depth.png.
    Depth(DepthArgs),
    /// Out-of-distribution detection: train with a share of the classes held out, then tell the
    /// held-out classes' test nodes from the seen ones by confidence. ood.json (AUROC of max
    /// softmax and max logit, in-distribution accuracy) and ood.png (confidence histograms).
    Ood(OodArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelArg {
    /// Graph convolutions, Â·H·W with Â = D^-½(A+I)D^-½.
    Gcn,
    /// Graph isomorphism layers, (I + D⁻¹A)·H·W (the repository's: ε = 0, mean aggregation).
    Gin,
    /// Graph attention over each neighbourhood and the node itself (--heads heads).
    Gat,
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

/// The block model's settings (with --data csbm).
#[derive(Debug, Clone, Args)]
pub struct CsbmArgs {
    #[arg(long, default_value_t = CsbmSpec::default().nodes)]
    pub csbm_nodes: usize,
    #[arg(long, default_value_t = CsbmSpec::default().classes)]
    pub csbm_classes: usize,
    /// Mean number of neighbours per node.
    #[arg(long, default_value_t = CsbmSpec::default().degree)]
    pub csbm_degree: f64,
    /// Expected share of edges within a class.
    #[arg(long, default_value_t = CsbmSpec::default().homophily)]
    pub csbm_homophily: f64,
    /// Share of each node's words drawn from its class's block of the vocabulary.
    #[arg(long, default_value_t = CsbmSpec::default().signal)]
    pub csbm_signal: f64,
    #[arg(long, default_value_t = CsbmSpec::default().features)]
    pub csbm_features: usize,
    /// Seed of the drawn graph.
    #[arg(long, default_value_t = 0)]
    pub csbm_seed: u64,
}

impl CsbmArgs {
    pub fn spec(&self) -> CsbmSpec {
        CsbmSpec {
            nodes: self.csbm_nodes,
            classes: self.csbm_classes,
            degree: self.csbm_degree,
            homophily: self.csbm_homophily,
            signal: self.csbm_signal,
            features: self.csbm_features,
            seed: self.csbm_seed,
            ..CsbmSpec::default()
        }
    }
}

/// What every GNN command trains: the data and the network.
#[derive(Debug, Args)]
pub struct NetArgs {
    /// `cora` (built in), `csbm` (a contextual stochastic block model, --csbm-* options), a
    /// folder of Planetoid raw files (ind.<name>.x, …; PyTorch Geometric's <root>/<Name>/raw or
    /// its parent), or a folder with edges.csv and labels.csv (features.csv and split.csv
    /// optional).
    #[arg(long, default_value = "cora")]
    pub data: String,
    #[command(flatten)]
    pub csbm: CsbmArgs,
    #[arg(long, value_enum, default_value_t = ModelArg::Gcn)]
    pub model: ModelArg,
    /// Attention heads per GAT layer (hidden layers are heads × hidden wide).
    #[arg(long, default_value_t = GnnConfig::default().heads)]
    pub heads: usize,
    #[arg(long, default_value_t = GnnConfig::default().hidden)]
    pub hidden: usize,
    #[arg(long, default_value_t = GnnConfig::default().epochs)]
    pub epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = GnnConfig::default().lr)]
    pub lr: f64,
    /// Weight decay (sweeps give dense training at least 5e-4, the usual GCN setting).
    #[arg(long, default_value_t = GnnConfig::default().weight_decay)]
    pub weight_decay: f64,
    /// Dropout on each layer's input (dense training only).
    #[arg(long, default_value_t = GnnConfig::default().dropout)]
    pub dropout: f64,
    /// How masked networks draw their fixed weights.
    #[arg(long, value_enum, default_value_t = InitArg::KaimingUniform)]
    pub init: InitArg,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub net: NetArgs,
    #[arg(long, value_enum, default_value_t = MethodArg::Ugt)]
    pub method: MethodArg,
    /// Share of weights masked out (ugt, edge-popup).
    #[arg(long, default_value_t = GnnConfig::default().sparsity)]
    pub sparsity: f64,
    #[arg(long, default_value_t = GnnConfig::default().layers)]
    pub layers: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the network's starting tensors here (little-endian f32: each layer's W, then
    /// each layer's scores), the file `benches/pytorch_gnn.py --init` starts from.
    #[arg(long)]
    pub save_start: Option<PathBuf>,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Sparsities of the masked methods (dense trains once).
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.3,0.5,0.7,0.9,0.95,0.99")]
    pub sparsity: Vec<f64>,
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ugt,edge-popup,dense")]
    pub methods: Vec<MethodArg>,
    #[arg(long, default_value_t = GnnConfig::default().layers)]
    pub layers: usize,
    /// Seeds 0, 1, … of each cell.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct DepthArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Depths (layers) to train.
    #[arg(long, value_delimiter = ',', default_value = "2,4,8,16,32")]
    pub layers: Vec<usize>,
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ugt,dense")]
    pub methods: Vec<MethodArg>,
    /// Sparsity of the masked methods.
    #[arg(long, default_value_t = GnnConfig::default().sparsity)]
    pub sparsity: f64,
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct OodArgs {
    #[command(flatten)]
    pub net: NetArgs,
    #[arg(long, value_enum, default_value_t = MethodArg::Ugt)]
    pub method: MethodArg,
    #[arg(long, default_value_t = GnnConfig::default().sparsity)]
    pub sparsity: f64,
    #[arg(long, default_value_t = GnnConfig::default().layers)]
    pub layers: usize,
    /// Share of the classes held out of training (seeded choice).
    #[arg(long, default_value_t = 0.4)]
    pub held_out: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(command: GnnCommand) -> anyhow::Result<()> {
    match command {
        GnnCommand::Train(args) => train(&args),
        GnnCommand::Sweep(args) => sweep(&args),
        GnnCommand::Depth(args) => depth(&args),
        GnnCommand::Ood(args) => ood(&args),
    }
}

/// The data set `data` names: `cora`, `csbm` (with `spec`), a plain graph folder (edges.csv,
/// labels.csv, …) or a Planetoid folder.
pub fn load_data(data: &str, spec: &CsbmSpec) -> anyhow::Result<Graph> {
    let source = if data.eq_ignore_ascii_case("cora") {
        DataSource::Cora
    } else if data.eq_ignore_ascii_case("csbm") {
        DataSource::Csbm(*spec)
    } else {
        DataSource::Folder(data.into())
    };
    source.load().map_err(anyhow::Error::msg)
}

fn method_of(method: MethodArg) -> Method {
    match method {
        MethodArg::Ugt => Method::Ugt,
        MethodArg::EdgePopup => Method::EdgePopup,
        MethodArg::Dense => Method::Dense,
    }
}

/// The layer type `model` names.
pub fn arch_of(model: ModelArg) -> Arch {
    match model {
        ModelArg::Gcn => Arch::Gcn,
        ModelArg::Gin => Arch::Gin,
        ModelArg::Gat => Arch::Gat,
    }
}

/// The configuration `net` describes, with `method`, `sparsity`, `layers` and `seed`.
pub fn config_of(net: &NetArgs, method: MethodArg, sparsity: f64, layers: usize, seed: u64) -> GnnConfig {
    GnnConfig {
        arch: arch_of(net.model),
        heads: net.heads,
        method: method_of(method),
        layers,
        hidden: net.hidden,
        sparsity,
        epochs: net.epochs,
        lr: net.lr,
        weight_decay: net.weight_decay,
        dropout: net.dropout,
        init: match net.init {
            InitArg::KaimingUniform => WeightInit::KaimingUniform,
            InitArg::SignedConstant => WeightInit::SignedConstant,
        },
        seed,
    }
}

/// Trains `grid` on `graph` with a progress bar, each finished run's accuracy as its message.
fn run_grid(
    graph: &Arc<Graph>,
    grid: &[GnnConfig],
    with_mad: bool,
    what: &str,
) -> anyhow::Result<Vec<study::SweepRow>> {
    for config in grid {
        config.validate()?;
    }
    let bar = super::progress_bar(grid.len() as u64, what);
    let rows = study::run_grid(graph, grid, with_mad, &RunControl::new(), &mut |k, row| {
        bar.set_position(k as u64 + 1);
        bar.set_message(format!(
            "{} s={} L={} seed {}: {:.1}%",
            files::method_name(row.method),
            row.sparsity,
            row.layers,
            row.seed,
            100.0 * row.test_acc
        ));
    })?;
    bar.finish_and_clear();
    Ok(rows)
}

fn print_cells(rows: &[study::SweepRow]) {
    for (method, sparsity, layers, mean, std, n) in study::cell_means(rows, |r| r.test_acc) {
        println!(
            "{:>10} sparsity {sparsity:<5} layers {layers:>2}: test {:.1} ± {:.1}% ({n} seeds)",
            files::method_name(method),
            100.0 * mean,
            100.0 * std
        );
    }
}

fn sweep(args: &SweepArgs) -> anyhow::Result<()> {
    let base = config_of(&args.net, MethodArg::Ugt, 0.5, args.layers, 0);
    if let Some(bad) = args.sparsity.iter().find(|s| !(s.is_finite() && (0.0..1.0).contains(*s))) {
        anyhow::bail!("--sparsity: {bad} is not in [0, 1)");
    }
    if !(1..=100).contains(&args.seeds) {
        anyhow::bail!("--seeds must be 1–100, got {}", args.seeds);
    }
    let methods: Vec<Method> = args.methods.iter().map(|&m| method_of(m)).collect();
    let grid = study::sweep_grid(&base, &methods, &args.sparsity, &[args.layers], args.seeds);
    let graph = Arc::new(load_data(&args.net.data, &args.net.csbm.spec())?);
    super::prepare_output_dir(&args.out, "gnn sweep")?;
    let rows = run_grid(&graph, &grid, false, "gnn sweep")?;
    let title = format!("{} {} on {}", base.arch.name(), args.layers, graph.name);
    let written = files::write_sweep(&args.out, &rows, &title)?;
    print_cells(&rows);
    println!("wrote {}", written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(())
}

fn depth(args: &DepthArgs) -> anyhow::Result<()> {
    let base = config_of(&args.net, MethodArg::Ugt, args.sparsity, 2, 0);
    if !(1..=100).contains(&args.seeds) {
        anyhow::bail!("--seeds must be 1–100, got {}", args.seeds);
    }
    let methods: Vec<Method> = args.methods.iter().map(|&m| method_of(m)).collect();
    let grid = study::sweep_grid(&base, &methods, &[args.sparsity], &args.layers, args.seeds);
    let graph = Arc::new(load_data(&args.net.data, &args.net.csbm.spec())?);
    super::prepare_output_dir(&args.out, "gnn depth")?;
    let rows = run_grid(&graph, &grid, true, "gnn depth")?;
    let title = format!("{} on {}", base.arch.name(), graph.name);
    let written = files::write_depth(&args.out, &rows, &title)?;
    print_cells(&rows);
    for r in &rows {
        let hidden = r.mad.len().saturating_sub(1);
        println!(
            "{:>10} layers {:>2} seed {}: MAD of the hidden layers {}",
            files::method_name(r.method),
            r.layers,
            r.seed,
            r.mad[..hidden].iter().map(|m| format!("{m:.3}")).collect::<Vec<_>>().join(" ")
        );
    }
    println!("wrote {}", written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(())
}

fn ood(args: &OodArgs) -> anyhow::Result<()> {
    let config = config_of(&args.net, args.method, args.sparsity, args.layers, args.seed);
    config.validate()?;
    if !(args.held_out.is_finite() && args.held_out > 0.0 && args.held_out < 1.0) {
        anyhow::bail!("--held-out: the held-out share must be in (0, 1), got {}", args.held_out);
    }
    let graph = load_data(&args.net.data, &args.net.csbm.spec())?;
    super::prepare_output_dir(&args.out, "gnn ood")?;
    let result = study::ood(&graph, &config, args.held_out, &RunControl::new())?;
    let written = files::write_ood(&args.out, &result)?;
    println!(
        "{}: classes {:?} held out; seen-class test accuracy {:.1}%; AUROC of held-out vs seen: max softmax {:.3}, max logit {:.3}",
        graph.name,
        result.held_out,
        100.0 * result.in_distribution_acc,
        result.auroc_softmax,
        result.auroc_logit
    );
    println!("wrote {}", written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(())
}

fn train(args: &TrainArgs) -> anyhow::Result<()> {
    let config = config_of(&args.net, args.method, args.sparsity, args.layers, args.seed);
    config.validate()?;
    let graph = Arc::new(load_data(&args.net.data, &args.net.csbm.spec())?);
    super::prepare_output_dir(&args.out, "gnn train")?;
    if let Some(path) = &args.save_start {
        // The trainer draws the same tensors from the same seed.
        let start = model::Gnn::new(&graph, &config)?;
        let bytes: Vec<u8> =
            start.weights().iter().chain(start.scores()).flatten().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(path, bytes).map_err(|e| anyhow::anyhow!("could not write {}: {e}", path.display()))?;
    }
    let bar = super::progress_bar(config.epochs as u64, "gnn train");
    let (mut trainer, summary, history) =
        model::train_keeping(Arc::clone(&graph), &config, &RunControl::new(), &mut |event| {
            if let RunEvent::Progress { step, metrics, .. } = event {
                bar.set_position(step);
                let get = |name: &str| metrics.iter().find(|(n, _)| *n == name).map_or(f64::NAN, |(_, v)| *v);
                bar.set_message(format!("val {:.1}%, test {:.1}%", 100.0 * get("val_acc"), 100.0 * get("test_acc")));
            }
        })?;
    bar.finish_and_clear();
    let run = live::run_result(&mut trainer, summary, history);
    files::write_run(&args.out, &graph, &config, &run, None)?;
    println!(
        "{} ({} nodes, {} edges): {} {:?} at sparsity {:.3}: test {:.1}% (epoch {} of {}, best validation {:.1}%) in {:.2} s",
        graph.name,
        graph.num_nodes,
        graph.edges.len() / 2,
        config.arch.name(),
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
