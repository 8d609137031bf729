//! Headless entry points: `sparsefield <lab> <command> ...`, the same compute code as the app.

pub mod bench;
mod bench_gan;
mod bench_gnn;
mod bench_htl;
mod bench_insp;
mod bench_lift;
mod bench_ntk;
mod bench_prune;
mod bench_stega;
pub mod gnn;
pub mod htl;
pub mod inr;
mod inr_edit;
pub mod lift;
pub mod nerf;
pub mod ntk;
pub mod prune;
pub mod stega;

use clap::{Parser, Subcommand};

/// SparseField: see how network structure shapes learning. Without a command, opens the app.
#[derive(Debug, Parser)]
#[command(name = "sparsefield", version, about, long_about = None)]
pub struct Cli {
    /// Write into an output folder that holds other files (files of the same names are replaced),
    /// and let `nerf make-dataset` replace an existing data set.
    #[arg(long, global = true)]
    pub force: bool,
    #[command(subcommand)]
    pub command: Option<LabCommand>,
}

/// The top-level `--force`, set once by [`run_with`].
static FORCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `--force` was given.
pub fn forced() -> bool {
    FORCE.load(std::sync::atomic::Ordering::Relaxed)
}

/// The subcommands and their dispatch in one list: each entry is a variant holding the
/// module's command (or arguments) type, and calls that module's `run`. Adding a lab's commands
/// is one entry here.
macro_rules! lab_commands {
    ($($(#[$attr:meta])* $variant:ident => $module:ident :: $ty:ident;)*) => {
        #[derive(Debug, Subcommand)]
        pub enum LabCommand {
            $($(#[$attr])* $variant($module::$ty),)*
        }

        /// Runs a headless command.
        pub fn run(command: LabCommand) -> anyhow::Result<()> {
            match command {
                $(LabCommand::$variant(command) => $module::run(command),)*
            }
        }
    };
}

lab_commands! {
    /// Implicit neural representations: fit a SIREN to an image, render it at any size.
    #[command(subcommand)]
    Inr => inr::InrCommand;
    /// Neural radiance fields: train on multi-view images, evaluate, render turntables, make data sets.
    #[command(subcommand)]
    Nerf => nerf::NerfCommand;
    /// Neural tangent kernels of one-hidden-layer ReLU nets with bias: Gram matrices and spectra.
    #[command(subcommand)]
    Ntk => ntk::NtkCommand;
    /// Pruning at initialization: the two-layer theory model, one run or a sweep over the pruning fraction.
    #[command(subcommand)]
    Prune => prune::PruneCommand;
    /// Hard-to-learn samples: dense vs pruned populations (PIE), then training that attends to them.
    #[command(subcommand)]
    Htl => htl::HtlCommand;
    /// NeuralLift-360: lift one photo (or the built-in example) to a 360° object; writes a
    /// checkpoint, a turntable GIF, views and metrics.json.
    Lift => lift::LiftArgs;
    /// StegaNeRF: hide an image, a text or bits in a trained field, recover it from any image,
    /// and sweep attacks.
    #[command(subcommand)]
    Stega => stega::StegaCommand;
    /// Untrained GNN tickets: sparse masks over random, never-trained graph networks, and their
    /// trained baselines, on Cora or any Planetoid folder.
    #[command(subcommand)]
    Gnn => gnn::GnnCommand;
    /// Time a lab's standard workload and print its figures.
    #[command(subcommand)]
    Bench => bench::BenchLab;
}

/// Runs a headless command with the top-level options.
pub fn run_with(command: LabCommand, force: bool) -> anyhow::Result<()> {
    FORCE.store(force, std::sync::atomic::Ordering::Relaxed);
    run(command)
}

/// A progress bar on stderr for `total` steps (hidden when stderr is not a terminal).
pub fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta} left) {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(what.to_owned());
    bar
}

/// Moves `bar` to a progress event's step, with its PSNR (when it reports one) as the message.
pub fn show_progress<S>(bar: &indicatif::ProgressBar, event: &crate::compute::control::RunEvent<S>) {
    if let crate::compute::control::RunEvent::Progress { step, metrics, .. } = event {
        bar.set_position(*step);
        if let Some((_, psnr)) = metrics.iter().find(|(n, _)| *n == "psnr_db") {
            bar.set_message(format!("{psnr:.2} dB"));
        }
    }
}

/// Refuses an output location that is one of the command's inputs, holds one, or lies inside one
/// (a data set folder, a checkpoint): a command's outputs never replace what it reads.
pub fn check_output_apart(out: &std::path::Path, inputs: &[&std::path::Path]) -> anyhow::Result<()> {
    // Compare real locations: the output may not exist yet, so resolve its nearest existing parent.
    let resolve = |path: &std::path::Path| -> std::path::PathBuf {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let mut existing = absolute.as_path();
        let mut rest = Vec::new();
        while !existing.exists() {
            match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_owned());
                    existing = parent;
                }
                _ => break,
            }
        }
        let mut resolved = std::fs::canonicalize(existing).unwrap_or_else(|_| existing.to_owned());
        resolved.extend(rest.iter().rev());
        resolved
    };
    let out_real = resolve(out);
    for input in inputs {
        let input_real = resolve(input);
        if out_real.starts_with(&input_real) || input_real.starts_with(&out_real) {
            anyhow::bail!(
                "{}: the output would go into the input {} (or hold it), and could replace what is read; \
                 pick another --out",
                out.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// Claims `dir` as the output folder of `command` (like `"nerf eval"`) before any long work:
/// creates it if needed, checks that files can be written there, and marks it with
/// `compute::files::OUTPUT_MARKER`. A folder that already holds files is refused unless it is an earlier output
/// of the same command or `--force` was given, so that fixed output names (`r_0.png`,
/// `metrics.json`) never replace a user's files.
pub fn prepare_output_dir(dir: &std::path::Path, command: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let writer = format!("sparsefield {command}");
    if !forced() {
        let foreign = crate::compute::files::foreign_files(dir, &writer)
            .with_context(|| format!("{}: cannot list the output folder", dir.display()))?;
        if let Some(foreign) = foreign {
            anyhow::bail!(
                "{}; pick a new or empty folder for --out, or pass --force to write into it (files of the same \
                 names are replaced)",
                foreign.describe(&writer)
            );
        }
    }
    crate::compute::files::mark_output_dir(dir, &writer).with_context(|| {
        format!("{}: cannot create the output folder or write in it; pick a writable --out", dir.display())
    })
}

/// Creates the folder an output file goes into, if needed, and checks that it is writable. The
/// folder is not claimed: the file's own name was chosen by the user.
pub fn prepare_parent_dir(file: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let Some(dir) = file.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the folder for {}", dir.display(), file.display()))?;
    let probe = dir.join(".sparsefield-write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("{}: the folder is not writable; pick another place for the file", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}
