//! `sparsefield htl find|attend`: hard-to-learn samples from the command line.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::compute::control::RunControl;
use crate::compute::htl::attend::{self, AttendConfig, Schedule};
use crate::compute::htl::data::{self, AttributeSpec, HtlData, HtlSource, Split};
use crate::compute::htl::files;
use crate::compute::htl::lesion::{self, LesionData, SyntheticConfig};
use crate::compute::htl::pie::{self, RankBy, SampleScore};
use crate::compute::htl::population::{self, PopulationConfig, PopulationProgress, Populations, Trained};
use crate::compute::htl::seg::SegConfig;

#[derive(Debug, Subcommand)]
pub enum HtlCommand {
    /// Train dense and pruned populations and score every sample. Classify: scores.csv (votes and
    /// scores of every sample), hardest_train.png and hardest_test.png (contact sheets),
    /// rates.png (PIE rate per class and group), models.safetensors and metrics.json. Localize:
    /// seg_scores.csv, hardest_lesions_train.png / _test.png, localize.csv and metrics.json.
    Find(FindArgs),
    /// Retrain attending to the hard training samples and compare with plain training from the
    /// same seeds. Classify: comparison.csv, comparison.png and metrics.json (and the find files
    /// when it finds the hard samples itself). Localize: the find files with the attended
    /// models, for each --labelled-fraction.
    Attend(AttendArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DataArg {
    /// The 1797 built-in 8×8 digits, 15% of them faint scans (an under-represented group).
    Digits,
    /// Fashion-MNIST IDX files (in --path, default /usr/share/datasets/fashion-mnist).
    FashionMnist,
    /// A folder with one sub-folder of images per class (--path).
    Folder,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RankArg {
    /// PIE samples first, then vote disagreement.
    Pie,
    Disagreement,
    PrunedLoss,
    LossGap,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ScheduleArg {
    Constant,
    Warmup,
    Ramp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TaskArg {
    /// Classify images (digits, Fashion-MNIST, class folders).
    Classify,
    /// Segment lesions (the synthetic set, or image/mask folders).
    Localize,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LesionArg {
    /// The built-in synthetic skin lesions (light skin and an under-represented dark-skin group).
    Synthetic,
    /// --path DIR with images/ and masks/ (a mask per image, same stem).
    Folder,
}

/// Data and population flags shared by `find` and `attend`. Training flags left out take the
/// task's defaults.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    #[arg(long, value_enum, default_value = "classify")]
    pub task: TaskArg,
    /// Classification data.
    #[arg(long, value_enum, default_value = "digits")]
    pub data: DataArg,
    /// Localization data.
    #[arg(long, value_enum, default_value = "synthetic")]
    pub lesions: LesionArg,
    /// The data folder (fashion-mnist, folder, or lesion folder).
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// Side images are resized to (classification folders: 28; lesions: 32).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Synthetic lesions: training and test images, and the dark-skin fraction.
    #[arg(long, default_value_t = SyntheticConfig::default().train)]
    pub lesion_train: usize,
    #[arg(long, default_value_t = SyntheticConfig::default().test)]
    pub lesion_test: usize,
    #[arg(long, default_value_t = SyntheticConfig::default().dark_fraction)]
    pub dark_fraction: f64,
    /// A CSV of per-sample attributes with a file-name column, joined by file name.
    #[arg(long)]
    pub attributes: Option<PathBuf>,
    /// The attribute column that holds the groups (default: the first after the file names).
    #[arg(long)]
    pub group_column: Option<String>,
    /// Use only the first N training images (classification; 0: all).
    #[arg(long, default_value_t = 0)]
    pub train_limit: usize,
    /// Models in each population (classify 5, localize 3).
    #[arg(long)]
    pub models: Option<usize>,
    /// Units of each of the two hidden layers (classify 128, localize 32).
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Dense epochs (classify 20, localize 8).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Epochs of fine-tuning after magnitude pruning (classify 5, localize 3).
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    /// Batch size (classify 32 images, localize 512 pixels).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Adam's learning rate (classify 1e-3, localize 2e-3).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Fraction of each layer's weights removed by magnitude.
    #[arg(long, default_value_t = PopulationConfig::default().sparsity)]
    pub sparsity: f64,
    /// Localize: a sample is hard when the IoU of the dense and pruned majority masks is below this.
    #[arg(long, default_value_t = SegConfig::default().agreement_threshold)]
    pub agreement: f64,
    /// Localize: fractions of the training masks used as labels (the rest get pseudo-labels);
    /// `attend` runs each, `find` takes one.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub labelled_fraction: Vec<f64>,
    /// Model k starts from seed + k.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

impl CommonArgs {
    fn source(&self) -> anyhow::Result<HtlSource> {
        Ok(match self.data {
            DataArg::Digits => HtlSource::Digits,
            DataArg::FashionMnist => HtlSource::FashionMnist(
                self.path.clone().unwrap_or_else(|| PathBuf::from(crate::compute::prune::data::DEBIAN_FASHION_MNIST)),
            ),
            DataArg::Folder => HtlSource::Folder {
                path: self.path.clone().context("--data folder needs --path DIR (one sub-folder per class)")?,
                side: self.image_size.unwrap_or(28),
            },
        })
    }

    fn config(&self) -> anyhow::Result<PopulationConfig> {
        let d = PopulationConfig::default();
        #[allow(clippy::cast_possible_truncation)]
        let config = PopulationConfig {
            models: self.models.unwrap_or(d.models),
            hidden: self.hidden.unwrap_or(d.hidden),
            epochs: self.epochs.unwrap_or(d.epochs),
            finetune_epochs: self.finetune_epochs.unwrap_or(d.finetune_epochs),
            batch: self.batch.unwrap_or(d.batch),
            learning_rate: self.lr.map_or(d.learning_rate, |lr| lr as f32),
            sparsity: self.sparsity,
            seed: self.seed,
        };
        config.validate()?;
        Ok(config)
    }

    fn seg_config(&self, labelled_fraction: f64) -> anyhow::Result<SegConfig> {
        let d = SegConfig::default();
        #[allow(clippy::cast_possible_truncation)]
        let config = SegConfig {
            models: self.models.unwrap_or(d.models),
            hidden: self.hidden.unwrap_or(d.hidden),
            epochs: self.epochs.unwrap_or(d.epochs),
            finetune_epochs: self.finetune_epochs.unwrap_or(d.finetune_epochs),
            batch: self.batch.unwrap_or(d.batch),
            learning_rate: self.lr.map_or(d.learning_rate, |lr| lr as f32),
            sparsity: self.sparsity,
            seed: self.seed,
            agreement_threshold: self.agreement,
            labelled_fraction,
        };
        config.validate()?;
        Ok(config)
    }

    fn load_lesions(&self) -> anyhow::Result<LesionData> {
        let attributes = self
            .attributes
            .as_ref()
            .map(|path| AttributeSpec { path: path.clone(), column: self.group_column.clone() });
        let data = match self.lesions {
            LesionArg::Synthetic => {
                if attributes.is_some() {
                    anyhow::bail!(
                        "the synthetic lesions carry their own groups; --attributes goes with --lesions folder"
                    );
                }
                lesion::synthetic(&SyntheticConfig {
                    train: self.lesion_train,
                    test: self.lesion_test,
                    side: self.image_size.unwrap_or(SyntheticConfig::default().side),
                    dark_fraction: self.dark_fraction,
                    seed: self.seed,
                })?
            }
            LesionArg::Folder => lesion::load_folder(
                self.path.as_deref().context("--lesions folder needs --path DIR (with images/ and masks/)")?,
                self.image_size.unwrap_or(SyntheticConfig::default().side),
                attributes.as_ref(),
            )?,
        };
        eprintln!("{}", data.summary());
        Ok(data)
    }

    fn load(&self) -> anyhow::Result<HtlData> {
        let attributes = self
            .attributes
            .as_ref()
            .map(|path| AttributeSpec { path: path.clone(), column: self.group_column.clone() });
        if attributes.is_none() && self.group_column.is_some() {
            anyhow::bail!("--group-column needs --attributes FILE.csv");
        }
        let data = data::load_with_train_limit(&self.source()?, attributes.as_ref(), self.train_limit)?;
        eprintln!("{}", data.summary());
        Ok(data)
    }
}

#[derive(Debug, Args)]
pub struct FindArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// How samples are ranked in the contact sheets and the rank column (classify).
    #[arg(long, value_enum, default_value = "pie")]
    pub rank: RankArg,
    /// Samples on each contact sheet (classify; 1 to 1000).
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub sheet: u16,
}

#[derive(Debug, Args)]
pub struct AttendArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// A scores.csv from `htl find` on the same data: its PIE samples are the hard set (otherwise
    /// the populations are trained first).
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// Loss multiplier of a hard training sample.
    #[arg(long, default_value_t = AttendConfig::default().weight)]
    pub weight: f32,
    /// When the weight applies: constant, warmup (second half of the epochs), ramp (1 → weight).
    #[arg(long, value_enum, default_value = "constant")]
    pub schedule: ScheduleArg,
    /// Attend to this fraction of the training samples, hardest first, instead of the PIE samples.
    #[arg(long, default_value_t = 0.0)]
    pub top_fraction: f64,
}

pub fn run(command: HtlCommand) -> anyhow::Result<()> {
    match command {
        HtlCommand::Find(args) => find(&args),
        HtlCommand::Attend(args) => attend_command(&args),
    }
}

fn rank_by(arg: RankArg) -> RankBy {
    match arg {
        RankArg::Pie => RankBy::Pie,
        RankArg::Disagreement => RankBy::Disagreement,
        RankArg::PrunedLoss => RankBy::PrunedLoss,
        RankArg::LossGap => RankBy::LossGap,
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    crate::compute::files::write_atomic(path, text).with_context(|| format!("{}: cannot write", path.display()))
}

/// Trains both populations with a progress bar.
fn populations(data: &HtlData, config: &PopulationConfig) -> anyhow::Result<Populations> {
    let bar = super::progress_bar((config.models * config.epochs_per_model()) as u64, "populations");
    let result = population::train_populations(data, config, &RunControl::new(), &|progress| match progress {
        PopulationProgress::Epoch { done, loss, .. } => {
            bar.set_position(done as u64);
            bar.set_message(format!("loss {loss:.3}"));
        }
        PopulationProgress::ModelDone(pair) => bar.println(format!(
            "model {}: dense {:.1}%, pruned {:.1}% test accuracy",
            pair.seed,
            100.0 * pair.dense.test.accuracy,
            100.0 * pair.pruned.test.accuracy
        )),
    })?
    .context("cancelled")?;
    bar.finish_and_clear();
    Ok(result)
}

fn split_summary(data: &HtlData, split: Split, scores: &[SampleScore], by: RankBy) -> serde_json::Value {
    let (classes, groups) = pie::class_and_group_rates(scores, data);
    let names = data.names_of(split);
    let hardest: Vec<serde_json::Value> = pie::rank(scores, by)
        .iter()
        .take(20)
        .map(|&i| {
            let s = &scores[i];
            serde_json::json!({
                "name": names.get(s.index), "label": s.label, "dense_mode": s.dense_mode,
                "pruned_mode": s.pruned_mode, "pie": s.pie, "score": by.score(s),
            })
        })
        .collect();
    serde_json::json!({
        "samples": scores.len(),
        "pie": scores.iter().filter(|s| s.pie).count(),
        "class_rates": classes,
        "group_rates": groups,
        "hardest": hardest,
    })
}

fn population_summary(models: &[&Trained]) -> serde_json::Value {
    let test: Vec<f64> = models.iter().map(|m| m.test.accuracy).collect();
    let train: Vec<f64> = models.iter().map(|m| m.train.accuracy).collect();
    let (mean, std) = crate::compute::prune::theory::mean_std(&test);
    serde_json::json!({
        "test_accuracy_mean": mean, "test_accuracy_std": std, "test_accuracy": test, "train_accuracy": train,
        "layer_sparsity": models.first().map(|m| m.mlp.layer_sparsity()),
    })
}

/// Runs the localization study for one labelled fraction with a progress bar.
fn localize_run(
    data: &LesionData,
    config: &SegConfig,
    attend: Option<&AttendConfig>,
) -> anyhow::Result<crate::compute::htl::seg::LocalizeReport> {
    let what = format!("{:.0}% labelled", 100.0 * config.labelled_fraction);
    let bar = super::progress_bar(0, &what);
    let report = crate::compute::htl::seg::localize(data, config, attend, &RunControl::new(), &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?
    .context("cancelled")?;
    bar.finish_and_clear();
    Ok(report)
}

fn print_localize(data: &LesionData, r: &crate::compute::htl::seg::LocalizeReport) {
    if let Some(note) = &r.note {
        eprintln!("{note}");
    }
    let f = |v: f64| if v.is_finite() { format!("{v:.3}") } else { "n/a".into() };
    println!(
        "{:.0}% of {} masks labelled{}: {} hard training, {} hard test samples ({:.1} s, {:.0} samples/s)",
        100.0 * r.config.labelled_fraction,
        data.train.len(),
        if r.labelled < data.train.len() { " (the rest pseudo-labelled)" } else { "" },
        r.hard_train,
        r.hard_test,
        r.seconds,
        r.samples_per_second
    );
    println!("{:>22}  {:>8}  {:>8}  {:>8}", "mean IoU", "dense", "pruned", "attended");
    let attended = r.attended.clone();
    let a =
        |get: fn(&crate::compute::htl::seg::SegAccuracy) -> f64| attended.as_ref().map_or("—".into(), |x| f(get(x)));
    println!("{:>22}  {:>8}  {:>8}  {:>8}", "all", f(r.dense.iou), f(r.pruned.iou), a(|x| x.iou));
    println!("{:>22}  {:>8}  {:>8}  {:>8}", "Dice, all", f(r.dense.dice), f(r.pruned.dice), a(|x| x.dice));
    println!("{:>22}  {:>8}  {:>8}  {:>8}", "hard test", f(r.dense.hard_iou), f(r.pruned.hard_iou), a(|x| x.hard_iou));
    for (g, name) in data.groups.iter().enumerate() {
        let at = |v: &[f64]| v.get(g).copied().map_or("—".into(), f);
        println!(
            "{:>22}  {:>8}  {:>8}  {:>8}",
            name,
            at(&r.dense.per_group_iou),
            at(&r.pruned.per_group_iou),
            attended.as_ref().map_or("—".into(), |x| at(&x.per_group_iou))
        );
    }
}

fn find_localize(args: &FindArgs) -> anyhow::Result<()> {
    let c = &args.common;
    let [fraction] = c.labelled_fraction.as_slice() else {
        anyhow::bail!("find takes one --labelled-fraction; attend compares several");
    };
    let config = c.seg_config(*fraction)?;
    super::prepare_output_dir(&c.out, "htl find")?;
    let data = c.load_lesions()?;
    let report = localize_run(&data, &config, None)?;
    files::write_localize(&c.out, &data, std::slice::from_ref(&report))?;
    print_localize(&data, &report);
    Ok(())
}

fn attend_localize(args: &AttendArgs, attend_config: &AttendConfig) -> anyhow::Result<()> {
    let c = &args.common;
    if args.scores.is_some() {
        anyhow::bail!("--scores goes with --task classify; localization finds its hard samples in the same run");
    }
    let configs = c.labelled_fraction.iter().map(|&f| c.seg_config(f)).collect::<anyhow::Result<Vec<_>>>()?;
    super::prepare_output_dir(&c.out, "htl attend")?;
    let data = c.load_lesions()?;
    let mut reports = Vec::new();
    for config in &configs {
        let report = localize_run(&data, config, Some(attend_config))?;
        print_localize(&data, &report);
        reports.push(report);
    }
    files::write_localize(&c.out, &data, &reports)?;
    Ok(())
}

fn find(args: &FindArgs) -> anyhow::Result<()> {
    if args.common.task == TaskArg::Localize {
        return find_localize(args);
    }
    let config = args.common.config()?;
    let by = rank_by(args.rank);
    let source = args.common.source()?;
    super::prepare_output_dir(&args.common.out, "htl find")?;
    let data = args.common.load()?;
    let pops = populations(&data, &config)?;
    let (train, test) = files::write_find(&args.common.out, &data, &pops, by, usize::from(args.sheet))?;
    let metrics = serde_json::json!({
        "data": data.summary(),
        "source": source.label(),
        "config": config,
        "rank_by": by.cli_name(),
        "seconds": pops.seconds,
        "dense": population_summary(&pops.dense()),
        "pruned": population_summary(&pops.pruned()),
        "training": split_summary(&data, Split::Train, &train, by),
        "test": split_summary(&data, Split::Test, &test, by),
    });
    write(&args.common.out.join("metrics.json"), &serde_json::to_string_pretty(&metrics)?)?;
    print_find(&data, &pops, &[(Split::Train, &train), (Split::Test, &test)]);
    Ok(())
}

fn print_find(data: &HtlData, pops: &Populations, splits: &[(Split, &Vec<SampleScore>)]) {
    let mean = |models: Vec<&Trained>| {
        #[allow(clippy::cast_precision_loss)]
        let m = models.iter().map(|m| m.test.accuracy).sum::<f64>() / models.len().max(1) as f64;
        100.0 * m
    };
    println!(
        "dense {:.1}%, pruned {:.1}% mean test accuracy ({} models each, {:.1} s)",
        mean(pops.dense()),
        mean(pops.pruned()),
        pops.pairs.len(),
        pops.seconds
    );
    for (split, scores) in splits {
        let (_, groups) = pie::class_and_group_rates(scores, data);
        let rates: Vec<String> = groups
            .iter()
            .map(|r| format!("{} {:.1}% ({}/{})", r.name, 100.0 * r.fraction(), r.hard, r.total))
            .collect();
        println!(
            "{}: {} PIE of {} samples; per group: {}",
            split.label(),
            scores.iter().filter(|s| s.pie).count(),
            scores.len(),
            rates.join(", ")
        );
    }
}

fn attend_config(args: &AttendArgs) -> anyhow::Result<AttendConfig> {
    let config = AttendConfig {
        weight: args.weight,
        schedule: match args.schedule {
            ScheduleArg::Constant => Schedule::Constant,
            ScheduleArg::Warmup => Schedule::AfterWarmup,
            ScheduleArg::Ramp => Schedule::Ramp,
        },
        top_fraction: args.top_fraction,
    };
    config.validate()?;
    Ok(config)
}

fn attend_command(args: &AttendArgs) -> anyhow::Result<()> {
    let attend_config = attend_config(args)?;
    if args.common.task == TaskArg::Localize {
        return attend_localize(args, &attend_config);
    }
    let config = args.common.config()?;
    let out = &args.common.out;
    super::prepare_output_dir(out, "htl attend")?;
    let data = args.common.load()?;
    let control = RunControl::new();
    // The hard set and the plain models: from a find run here, or from a scores file plus a
    // plain population.
    let (hard_train, hard_test, plain): (Vec<bool>, Vec<bool>, Vec<Trained>) = if let Some(scores) = &args.scores {
        let (train, test) = files::read_hard_flags(scores, &data)?;
        if attend_config.top_fraction > 0.0 {
            anyhow::bail!("--top-fraction ranks the samples itself; leave out --scores, or use its PIE samples");
        }
        let bar = super::progress_bar((config.models * config.epochs) as u64, "plain");
        let plain = attend::train_weighted_population(&data, &config, &train, None, &control, &|done, _| {
            bar.set_position(done as u64);
        })?
        .context("cancelled")?;
        bar.finish_and_clear();
        (train, test, plain)
    } else {
        let pops = populations(&data, &config)?;
        let (train, test) = files::write_find(out, &data, &pops, RankBy::Pie, 48)?;
        let hard_test = test.iter().map(|s| s.pie).collect();
        (attend::hard_set(&train, &attend_config), hard_test, pops.pairs.into_iter().map(|p| p.dense).collect())
    };
    let plain_refs: Vec<&Trained> = plain.iter().collect();
    let bar = super::progress_bar((config.models * config.epochs) as u64, "attended");
    let comparison =
        attend::compare(&data, &config, &attend_config, &hard_train, &hard_test, &plain_refs, &control, &|done, _| {
            bar.set_position(done as u64);
        })?
        .context("cancelled")?;
    bar.finish_and_clear();
    files::write_comparison(out, &data, &comparison)?;
    let metrics = serde_json::json!({
        "data": data.summary(),
        "config": config,
        "comparison": comparison,
    });
    write(&out.join("metrics.json"), &serde_json::to_string_pretty(&metrics)?)?;
    let pct = |v: f64| if v.is_finite() { format!("{:.1}%", 100.0 * v) } else { "n/a".into() };
    println!(
        "attending to {} hard training samples (weight {}, {}):",
        comparison.hard_train_count,
        attend_config.weight,
        attend_config.schedule.label()
    );
    println!("{:>22}  {:>8}  {:>8}", "", "plain", "attended");
    let (p, a) = (&comparison.plain, &comparison.attended);
    println!("{:>22}  {:>8}  {:>8}", "test accuracy", pct(p.mean), pct(a.mean));
    println!(
        "{:>22}  {:>8}  {:>8}",
        format!("hard test ({})", comparison.hard_test_count),
        pct(p.hard_test),
        pct(a.hard_test)
    );
    println!("{:>22}  {:>8}  {:>8}", "hard train (accuracy)", pct(p.hard_train), pct(a.hard_train));
    for (k, group) in data.groups.iter().enumerate() {
        println!("{:>22}  {:>8}  {:>8}", format!("group {group}"), pct(p.per_group[k]), pct(a.per_group[k]));
    }
    Ok(())
}
