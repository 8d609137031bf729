//! The hard-sample lab: train dense and pruned populations, browse the samples they disagree on
//! (Hooker et al.'s PIE), see which classes and groups they come from, and retrain attending to
//! them.

use eframe::egui;
use serde::{Deserialize, Serialize};

use super::HtlResults;
use super::{HtlCommand, HtlFile};
use crate::compute::htl::HtlConfig;
use crate::compute::htl::attend::{AttendConfig, Schedule};
use crate::compute::htl::data::{AttributeSpec, HtlSource, Split};
use crate::compute::htl::lesion::SyntheticConfig;
use crate::compute::htl::pie::{RankBy, SampleScore};
use crate::compute::htl::population::PopulationConfig;
use crate::compute::htl::seg::SegConfig;
use crate::ui::theme;

/// What the lab studies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Task {
    #[default]
    Classify,
    Localize,
}

/// Everything the user sets in the hard-sample lab; persisted between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HtlSettings {
    pub task: Task,
    pub source: HtlSource,
    pub attributes: Option<AttributeSpec>,
    /// Use only the first N training samples (0: all).
    pub train_limit: usize,
    /// Side a folder's images are resized to.
    pub folder_side: usize,
    pub population: PopulationConfig,
    pub attend: AttendConfig,
    /// Attend to the top fraction instead of the PIE samples.
    pub use_top_fraction: bool,
    pub top_fraction: f64,
    pub rank_by: RankBy,
    pub split: Split,
    pub class_filter: Option<u16>,
    pub group_filter: Option<u16>,
    pub pie_only: bool,
    pub gallery_count: usize,
    /// The sample shown large.
    pub selected: Option<(Split, usize)>,
    /// Localization: the segmentation study, the synthetic set (its side also sizes folder images)
    /// and a lesion folder used instead of it.
    pub seg: SegConfig,
    pub lesions: SyntheticConfig,
    pub lesion_folder: Option<std::path::PathBuf>,
}

impl Default for HtlSettings {
    fn default() -> Self {
        Self {
            source: HtlSource::Digits,
            attributes: None,
            train_limit: 0,
            folder_side: 28,
            population: PopulationConfig::default(),
            attend: AttendConfig::default(),
            use_top_fraction: false,
            top_fraction: 0.05,
            rank_by: RankBy::Pie,
            split: Split::Train,
            class_filter: None,
            group_filter: None,
            pie_only: false,
            gallery_count: 48,
            selected: None,
            task: Task::Classify,
            seg: SegConfig::default(),
            lesions: SyntheticConfig::default(),
            lesion_folder: None,
        }
    }
}

impl HtlSettings {
    /// The study these settings describe.
    pub fn config(&self) -> HtlConfig {
        let source = match &self.source {
            HtlSource::Folder { path, .. } => HtlSource::Folder { path: path.clone(), side: self.folder_side },
            other => other.clone(),
        };
        HtlConfig {
            source,
            attributes: self.attributes.clone(),
            train_limit: self.train_limit,
            population: self.population.clone(),
            attend: AttendConfig {
                top_fraction: if self.use_top_fraction { self.top_fraction } else { 0.0 },
                ..self.attend.clone()
            },
        }
    }

    /// Brings values from an old or edited settings file back into the ranges the controls offer.
    pub fn sanitize(&mut self) {
        let d = PopulationConfig::default();
        let p = &mut self.population;
        p.models = p.models.clamp(1, MAX_MODELS);
        p.hidden = p.hidden.clamp(8, 1024);
        p.epochs = p.epochs.clamp(1, 500);
        p.finetune_epochs = p.finetune_epochs.min(200);
        p.batch = p.batch.clamp(4, 1024);
        if !(p.learning_rate.is_finite() && (1e-5..=0.5).contains(&p.learning_rate)) {
            p.learning_rate = d.learning_rate;
        }
        p.sparsity = if p.sparsity.is_finite() { p.sparsity.clamp(0.0, 0.99) } else { d.sparsity };
        let a = &mut self.attend;
        a.weight = if a.weight.is_finite() { a.weight.clamp(1.0, 50.0) } else { AttendConfig::default().weight };
        a.top_fraction = 0.0;
        self.top_fraction = if self.top_fraction.is_finite() { self.top_fraction.clamp(0.001, 0.5) } else { 0.05 };
        self.folder_side = self.folder_side.clamp(4, 128);
        self.gallery_count = self.gallery_count.clamp(8, 200);
        if self.seg.validate().is_err() {
            self.seg = SegConfig::default();
        }
        if self.lesions.validate().is_err() {
            self.lesions = SyntheticConfig::default();
        }
    }
}

/// Most models per population the lab offers.
pub const MAX_MODELS: usize = 16;

/// One thumbnail of the gallery.
#[derive(Clone)]
pub struct GalleryItem {
    pub split: Split,
    /// Rank among all samples of its split (1: hardest).
    pub rank: usize,
    pub score: SampleScore,
    pub texture: egui::TextureHandle,
}

/// What the lab shows, read-only.
pub struct HtlPanelState<'a> {
    pub running: bool,
    pub progress: Option<f32>,
    pub results: &'a HtlResults,
    /// The results shown belong to the current settings.
    pub current: bool,
    pub cancelled: bool,
    pub problem: Option<&'a str>,
    pub gallery: &'a [GalleryItem],
    /// Samples that pass the gallery's filters.
    pub gallery_total: usize,
    pub selected_texture: Option<&'a egui::TextureHandle>,
    pub attribute_columns: &'a [String],
    pub seg: Option<&'a super::SegView>,
    pub seg_running: bool,
    pub seg_progress: Option<f32>,
    pub seg_problem: Option<&'a str>,
}

const HELP: &str = "Model k of each population is an MLP (two hidden ReLU layers) trained from seed + k; its pruned twin \
keeps the largest-magnitude weights of each layer and is fine-tuned with that mask fixed. A sample is a \
pruning-identified exemplar (PIE) when the most common prediction of the pruned models differs from that of the dense \
models (Hooker et al.); ties go to the lower class.\n\n\
Scores: disagreement = fraction of pruned models whose prediction is not the dense modal class; the gallery ranks PIE \
first, then by disagreement (or by the pruned models' loss, or by how much pruning raised the loss).\n\n\
Attending: the hard training samples' losses are multiplied by the weight (from the start, after a warm-up half, or \
ramped up linearly); the attended models train from the same seeds as the dense population, which serves as the plain \
baseline.\n\n\
The built-in digits carry a deliberately under-represented group: 15% are faint, noisy scans.";

pub(super) fn weak(ui: &egui::Ui, text: impl Into<String>) -> egui::RichText {
    egui::RichText::new(text.into()).color(theme::weak_text_colour(ui))
}

pub(super) fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The sidebar part.
pub fn htl_controls_ui(
    ui: &mut egui::Ui,
    settings: &mut HtlSettings,
    state: &HtlPanelState<'_>,
    commands: &mut Vec<HtlCommand>,
) {
    egui::CollapsingHeader::new("About this lab").default_open(false).show(ui, |ui| {
        ui.label(weak(ui, HELP));
    });
    ui.horizontal(|ui| {
        ui.radio_value(&mut settings.task, Task::Classify, "classify images");
        ui.radio_value(&mut settings.task, Task::Localize, "localize lesions");
    });
    if settings.task == Task::Localize {
        localize_controls_ui(ui, settings, state, commands);
        return;
    }
    egui::CollapsingHeader::new("Data").default_open(true).show(ui, |ui| {
        ui.label(weak(ui, settings.source.label()));
        ui.horizontal_wrapped(|ui| {
            if ui
                .add_enabled(settings.source != HtlSource::Digits, egui::Button::new("Built-in digits"))
                .on_hover_text("1797 8×8 digits, 15% of them faint scans (an under-represented group)")
                .clicked()
            {
                commands.push(HtlCommand::SetSource(HtlSource::Digits));
            }
            if ui
                .button("Data folder…")
                .on_hover_text(
                    "Fashion-MNIST (a folder with its IDX files) or one sub-folder of images per class; or drop the folder on the window",
                )
                .clicked()
            {
                commands.push(HtlCommand::Pick(HtlFile::OpenData));
            }
        });
        if matches!(settings.source, HtlSource::Folder { .. }) {
            ui.add(egui::Slider::new(&mut settings.folder_side, 4..=128).text("image side (px)"))
                .on_hover_text("Images are resized to this square size");
        }
        ui.add(egui::Slider::new(&mut settings.train_limit, 0..=60_000).logarithmic(true).text("training samples"))
            .on_hover_text("Use only the first N training samples (0: all)");
        ui.horizontal_wrapped(|ui| {
            if ui
                .button("Attributes CSV…")
                .on_hover_text(
                    "A table with a file-name column and attribute columns (e.g. a group), joined to the samples by file name; or drop the .csv on the window while this lab is open",
                )
                .clicked()
            {
                commands.push(HtlCommand::Pick(HtlFile::OpenAttributes));
            }
            if settings.attributes.is_some() && ui.button("Clear").on_hover_text("Stop using the attribute file").clicked() {
                commands.push(HtlCommand::ClearAttributes);
            }
        });
        if let Some(spec) = &mut settings.attributes {
            ui.label(weak(ui, file_name(&spec.path))).on_hover_text(spec.path.display().to_string());
            if state.attribute_columns.len() > 1 {
                let shown = spec.column.clone().unwrap_or_else(|| "first attribute column".into());
                egui::ComboBox::from_label("group column").selected_text(shown).show_ui(ui, |ui| {
                    for column in state.attribute_columns {
                        ui.selectable_value(&mut spec.column, Some(column.clone()), column);
                    }
                });
            }
        }
        if let Some(data) = &state.results.data {
            ui.label(weak(ui, data.summary()));
        }
    });
    egui::CollapsingHeader::new("Populations").default_open(true).show(ui, |ui| {
        let p = &mut settings.population;
        ui.label(weak(ui, "The sparsity is set at the top of the lab."));
        ui.add(egui::Slider::new(&mut p.models, 1..=MAX_MODELS).text("models each"))
            .on_hover_text("Dense models, and as many pruned ones (one per dense model)");
        ui.add(egui::Slider::new(&mut p.hidden, 8..=1024).logarithmic(true).text("hidden units"));
        ui.add(egui::Slider::new(&mut p.epochs, 1..=500).logarithmic(true).text("epochs"))
            .on_hover_text("Epochs of dense training (Adam)");
        ui.add(egui::Slider::new(&mut p.finetune_epochs, 0..=200).text("fine-tune epochs"))
            .on_hover_text("Epochs of training after pruning, the mask fixed");
        ui.add(egui::Slider::new(&mut p.learning_rate, 1e-5..=0.5).logarithmic(true).text("learning rate"));
        ui.add(egui::Slider::new(&mut p.batch, 4..=1024).logarithmic(true).text("batch"));
        ui.horizontal(|ui| {
            let label = ui.label("seed");
            ui.add(egui::DragValue::new(&mut p.seed).range(0..=1_000_000))
                .labelled_by(label.id)
                .on_hover_text("Model k starts from seed + k");
        });
    });
    egui::CollapsingHeader::new("Attend to hard samples").default_open(true).show(ui, |ui| {
        ui.label(weak(ui, "The hard samples' weight is set at the top of the lab."));
        egui::ComboBox::from_label("schedule").selected_text(settings.attend.schedule.label()).show_ui(ui, |ui| {
            for schedule in Schedule::ALL {
                ui.selectable_value(&mut settings.attend.schedule, schedule, schedule.label())
                    .on_hover_text(schedule.description());
            }
        });
        ui.horizontal(|ui| {
            ui.radio_value(&mut settings.use_top_fraction, false, "PIE samples")
                .on_hover_text("Attend to the training samples the PIE rule marks");
            ui.radio_value(&mut settings.use_top_fraction, true, "top fraction")
                .on_hover_text("Attend to this fraction of the training samples, hardest first");
        });
        if settings.use_top_fraction {
            ui.add(egui::Slider::new(&mut settings.top_fraction, 0.001..=0.5).logarithmic(true).text("fraction"));
        }
    });
    ui.add_space(theme::SPACING);
    ui.horizontal(|ui| {
        if ui.button("Reset").on_hover_text("Every setting of this lab back to its default (the data stays)").clicked() {
            commands.push(HtlCommand::ResetSettings);
        }
        if ui
            .add_enabled(state.results.train_scores.is_some(), egui::Button::new("Export all…"))
            .on_hover_text(
                "scores.csv, contact sheets, rate and comparison charts, the models (safetensors) and metrics.json, into a folder",
            )
            .clicked()
        {
            commands.push(HtlCommand::Pick(HtlFile::Export));
        }
    });
}

use super::localize::localize_controls_ui;
pub use super::views::htl_main_ui;
