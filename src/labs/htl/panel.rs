//! The hard-sample lab: train dense and pruned populations, browse the samples they disagree on
//! (Hooker et al.'s PIE), see which classes and groups they come from, and retrain attending to
//! them.

use eframe::egui;
use egui_plot::{Bar, BarChart, Legend, Plot};
use serde::{Deserialize, Serialize};

use super::HtlResults;
use super::{HtlCommand, HtlFile};
use crate::compute::htl::HtlConfig;
use crate::compute::htl::attend::{AttendConfig, Schedule};
use crate::compute::htl::data::{AttributeSpec, HtlSource, Split};
use crate::compute::htl::files::votes_text;
use crate::compute::htl::lesion::SyntheticConfig;
use crate::compute::htl::pie::{RankBy, SampleScore};
use crate::compute::htl::population::PopulationConfig;
use crate::compute::htl::seg::{SegAccuracy, SegConfig};
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

fn weak(ui: &egui::Ui, text: impl Into<String>) -> egui::RichText {
    egui::RichText::new(text.into()).color(theme::weak_text_colour(ui))
}

fn file_name(path: &std::path::Path) -> String {
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
                    "A table with a file-name column and attribute columns (e.g. a group), joined to the samples by file name",
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

const DENSE: egui::Color32 = egui::Color32::from_rgb(31, 119, 180);
const PRUNED: egui::Color32 = egui::Color32::from_rgb(214, 39, 40);
const ATTENDED: egui::Color32 = egui::Color32::from_rgb(44, 160, 44);
const GROUP: egui::Color32 = egui::Color32::from_rgb(148, 103, 189);

fn percent(v: f64) -> String {
    if v.is_finite() { format!("{:.1}%", 100.0 * v) } else { "—".into() }
}

/// The central part: live sliders, status, the gallery, the selected sample, the rates and the comparison.
pub fn htl_main_ui(
    ui: &mut egui::Ui,
    settings: &mut HtlSettings,
    state: &HtlPanelState<'_>,
    commands: &mut Vec<HtlCommand>,
) {
    if settings.task == Task::Localize {
        localize_main_ui(ui, settings, state, commands);
        return;
    }
    ui.horizontal_wrapped(|ui| {
        let label = ui.strong("sparsity");
        ui.add_sized(
            [220.0, 24.0],
            egui::Slider::new(&mut settings.population.sparsity, 0.0..=0.99).step_by(0.01).fixed_decimals(2),
        )
        .labelled_by(label.id)
        .on_hover_text("Fraction of each layer's weights the pruned population loses");
        let label = ui.strong("hard weight");
        ui.add(egui::Slider::new(&mut settings.attend.weight, 1.0..=50.0).logarithmic(true).fixed_decimals(1))
            .labelled_by(label.id)
            .on_hover_text("Loss multiplier of the hard training samples when attending");
        if state.running {
            ui.spinner();
        }
        if let Some(progress) = state.progress {
            ui.add(egui::ProgressBar::new(progress).desired_width(100.0).show_percentage());
        }
        if state.cancelled
            && ui.button("▶ Resume").on_hover_text("The analysis was cancelled: run it to the end").clicked()
        {
            commands.push(HtlCommand::Resume);
        }
    });
    status_line(ui, state);
    ui.separator();
    let total_width = ui.available_width();
    let left_width = (total_width * 0.55).max(320.0);
    let right_width = (total_width - left_width - 2.0 * theme::SPACING).max(240.0);
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.set_width(left_width);
            gallery_ui(ui, settings, state);
        });
        ui.separator();
        ui.vertical(|ui| {
            ui.set_width(right_width);
            egui::ScrollArea::vertical().id_salt("htl right").show(ui, |ui| {
                selected_ui(ui, settings, state);
                rates_ui(ui, settings, state, right_width);
                comparison_ui(ui, state, right_width);
            });
        });
    });
}

fn status_line(ui: &mut egui::Ui, state: &HtlPanelState<'_>) {
    let r = state.results;
    if let (Some(problem), false) = (state.problem, state.running) {
        ui.colored_label(theme::error_colour(ui), problem);
        return;
    }
    let Some(pops) = &r.populations else {
        let models = r.config.population.models;
        ui.label(if r.data.is_none() {
            "Loading the data…".to_owned()
        } else {
            format!("Training the populations: {} of {models} model pairs finished…", r.models_done)
        });
        return;
    };
    #[allow(clippy::cast_precision_loss)]
    let mean = |acc: Vec<f64>| acc.iter().sum::<f64>() / acc.len().max(1) as f64;
    let dense = mean(pops.dense().iter().map(|t| t.test.accuracy).collect());
    let pruned = mean(pops.pruned().iter().map(|t| t.test.accuracy).collect());
    let count = |s: Option<&std::sync::Arc<Vec<SampleScore>>>| s.map_or(0, |s| s.iter().filter(|x| x.pie).count());
    let stale = if state.current { "" } else { " (updating…)" };
    ui.label(format!(
        "Test accuracy: dense {} · pruned at {:.2} {} ({} models each, {:.1} s) · PIE: {} training, {} test samples{stale}",
        percent(dense),
        pops.config.sparsity,
        percent(pruned),
        pops.pairs.len(),
        pops.seconds,
        count(r.train_scores.as_ref()),
        count(r.test_scores.as_ref()),
    ));
}

fn gallery_ui(ui: &mut egui::Ui, settings: &mut HtlSettings, state: &HtlPanelState<'_>) {
    let r = state.results;
    ui.horizontal_wrapped(|ui| {
        for split in Split::ALL {
            ui.radio_value(&mut settings.split, split, split.label());
        }
        egui::ComboBox::from_id_salt("htl rank").selected_text(format!("rank: {}", settings.rank_by.label())).show_ui(
            ui,
            |ui| {
                for by in RankBy::ALL {
                    ui.selectable_value(&mut settings.rank_by, by, by.label());
                }
            },
        );
        if let Some(data) = &r.data {
            let class_text = settings
                .class_filter
                .and_then(|c| data.data.classes.get(usize::from(c)))
                .map_or_else(|| "all classes".to_owned(), |c| format!("class {c}"));
            egui::ComboBox::from_id_salt("htl class").selected_text(class_text).show_ui(ui, |ui| {
                ui.selectable_value(&mut settings.class_filter, None, "all classes");
                for (k, name) in data.data.classes.iter().enumerate() {
                    ui.selectable_value(&mut settings.class_filter, u16::try_from(k).ok(), name);
                }
            });
            let group_text = settings
                .group_filter
                .and_then(|g| data.groups.get(usize::from(g)))
                .map_or_else(|| "all groups".to_owned(), |g| format!("group {g}"));
            egui::ComboBox::from_id_salt("htl group").selected_text(group_text).show_ui(ui, |ui| {
                ui.selectable_value(&mut settings.group_filter, None, "all groups");
                for (k, name) in data.groups.iter().enumerate() {
                    ui.selectable_value(&mut settings.group_filter, u16::try_from(k).ok(), name);
                }
            });
        }
        ui.checkbox(&mut settings.pie_only, "PIE only");
        ui.add(egui::Slider::new(&mut settings.gallery_count, 8..=200).logarithmic(true).text("shown"));
    });
    let Some(data) = &r.data else { return };
    let split_len = data.set(settings.split).len();
    ui.label(weak(
        ui,
        format!(
            "Gallery: {} of {} matching {} samples, hardest first. Red frame: PIE. Caption: rank, label → dense / pruned vote.",
            state.gallery.len(),
            state.gallery_total,
            settings.split.label(),
        ),
    ));
    if state.gallery.is_empty() && r.scores(settings.split).is_some() {
        ui.label(format!("No sample of the {split_len} passes these filters."));
    }
    let cell = 64.0;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let columns = ((ui.available_width() / (cell + 10.0)).floor() as usize).max(1);
    egui::ScrollArea::vertical().id_salt("htl gallery").show(ui, |ui| {
        ui.add_space(4.0);
        egui::Grid::new("htl gallery grid").spacing([6.0, 6.0]).show(ui, |ui| {
            for (k, item) in state.gallery.iter().enumerate() {
                let s = &item.score;
                let name = data.names_of(item.split).get(s.index).cloned().unwrap_or_default();
                ui.vertical(|ui| {
                    let image = egui::Image::new((item.texture.id(), egui::vec2(cell, cell)))
                        .sense(egui::Sense::click())
                        .alt_text(format!("sample {name}"));
                    let response = ui.add(image);
                    let selected = settings.selected == Some((item.split, s.index));
                    let stroke = if s.pie {
                        egui::Stroke::new(2.5, PRUNED)
                    } else if selected {
                        egui::Stroke::new(2.5, DENSE)
                    } else {
                        egui::Stroke::new(1.0, theme::weak_text_colour(ui))
                    };
                    ui.painter().rect_stroke(response.rect.expand(1.5), 2.0, stroke, egui::StrokeKind::Outside);
                    if selected && s.pie {
                        ui.painter().rect_stroke(
                            response.rect.expand(4.5),
                            2.0,
                            egui::Stroke::new(2.0, DENSE),
                            egui::StrokeKind::Outside,
                        );
                    }
                    let class = |c: u16| data.data.classes.get(usize::from(c)).cloned().unwrap_or_default();
                    let response = response.on_hover_text(format!(
                        "{name}\nlabel {} · group {}\ndense votes {} → {}\npruned votes {} → {}\ndisagreement {:.2} · loss dense {:.3}, pruned {:.3}",
                        class(s.label),
                        data.groups.get(usize::from(s.group)).cloned().unwrap_or_default(),
                        votes_text(&s.dense_votes),
                        class(s.dense_mode),
                        votes_text(&s.pruned_votes),
                        class(s.pruned_mode),
                        s.disagreement,
                        s.dense_loss,
                        s.pruned_loss,
                    ));
                    if response.clicked() {
                        settings.selected = Some((item.split, s.index));
                    }
                    ui.label(
                        egui::RichText::new(format!("#{} {}→{}/{}", item.rank, s.label, s.dense_mode, s.pruned_mode))
                            .small(),
                    );
                });
                if (k + 1) % columns == 0 {
                    ui.end_row();
                }
            }
        });
    });
}

fn selected_ui(ui: &mut egui::Ui, settings: &HtlSettings, state: &HtlPanelState<'_>) {
    let r = state.results;
    let (Some((split, index)), Some(data)) = (settings.selected, &r.data) else {
        ui.label(weak(ui, "Click a sample to see it large with both populations' votes."));
        return;
    };
    let Some(s) = r.scores(split).and_then(|scores| scores.get(index)) else { return };
    let class = |c: u16| data.data.classes.get(usize::from(c)).cloned().unwrap_or_default();
    ui.horizontal_top(|ui| {
        if let Some(texture) = state.selected_texture {
            ui.add(egui::Image::new((texture.id(), egui::vec2(160.0, 160.0))));
        }
        ui.vertical(|ui| {
            ui.strong(data.names_of(split).get(index).cloned().unwrap_or_default());
            ui.label(format!(
                "{} sample {index} · label {} · group {}",
                split.label(),
                class(s.label),
                data.groups.get(usize::from(s.group)).cloned().unwrap_or_default()
            ));
            ui.label(format!(
                "dense modal {} · pruned modal {}{}",
                class(s.dense_mode),
                class(s.pruned_mode),
                if s.pie { " · PIE" } else { "" }
            ));
            ui.label(format!(
                "wrong: {:.0}% dense, {:.0}% pruned · loss {:.3} → {:.3}",
                100.0 * s.dense_error,
                100.0 * s.pruned_error,
                s.dense_loss,
                s.pruned_loss
            ));
            #[allow(clippy::cast_precision_loss)]
            let bars = |votes: &[u16], offset: f64| -> Vec<Bar> {
                votes.iter().enumerate().map(|(c, &v)| Bar::new(c as f64 + offset, f64::from(v)).width(0.38)).collect()
            };
            let width = ui.available_width().min(360.0);
            category_plot(
                ui,
                ("htl votes", 100.0),
                &data.data.classes,
                width,
                vec![
                    BarChart::new("dense votes", bars(&s.dense_votes, -0.2)).color(DENSE),
                    BarChart::new("pruned votes", bars(&s.pruned_votes, 0.2)).color(PRUNED),
                ],
                None,
            );
        });
    });
    ui.separator();
}

/// Bars over named categories 0, 1, 2, …; `(id, height)` of the plot.
fn category_plot(
    ui: &mut egui::Ui,
    (id, height): (&str, f32),
    names: &[String],
    width: f32,
    charts: Vec<BarChart>,
    y_max: Option<f64>,
) {
    let names = names.to_vec();
    let legend = charts.len() > 1;
    let mut plot = Plot::new(id)
        .height(height)
        .width(width)
        .include_y(0.0)
        .x_grid_spacer(egui_plot::uniform_grid_spacer(|_| [1.0, 1.0, 1.0]))
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .custom_x_axes(vec![
            egui_plot::AxisHints::new_x()
                .formatter(move |mark, _| {
                    let k = mark.value.round();
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let name = (k >= 0.0 && (mark.value - k).abs() < 1e-6).then(|| names.get(k as usize)).flatten();
                    name.cloned().unwrap_or_default()
                })
                // Every category is named, however narrow.
                .label_spacing(8.0..=12.0),
        ]);
    if let Some(y) = y_max {
        plot = plot.include_y(y);
    }
    if legend {
        plot = plot.legend(Legend::default());
    }
    plot.show(ui, |plot| {
        for chart in charts {
            plot.bar_chart(chart);
        }
    });
}

fn rates_ui(ui: &mut egui::Ui, settings: &HtlSettings, state: &HtlPanelState<'_>, width: f32) {
    let r = state.results;
    let (Some(data), Some(scores)) = (&r.data, r.scores(settings.split)) else { return };
    let (classes, groups) = crate::compute::htl::pie::class_and_group_rates(scores, data);
    #[allow(clippy::cast_precision_loss)]
    let bars = |rates: &[crate::compute::htl::pie::Rate]| -> Vec<Bar> {
        rates
            .iter()
            .enumerate()
            .map(|(k, rate)| {
                Bar::new(k as f64, 100.0 * rate.fraction())
                    .width(0.7)
                    .name(format!("{}: {} of {}", rate.name, rate.hard, rate.total))
            })
            .collect()
    };
    ui.label(format!("PIE rate per class, % of {} samples", settings.split.label()));
    let class_names: Vec<String> = classes.iter().map(|c| c.name.clone()).collect();
    category_plot(
        ui,
        ("htl class rates", 150.0),
        &class_names,
        width,
        vec![BarChart::new("PIE %", bars(&classes)).color(PRUNED)],
        None,
    );
    ui.label(format!("PIE rate per group, % of {} samples", settings.split.label()));
    let group_names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    category_plot(
        ui,
        ("htl group rates", 150.0),
        &group_names,
        width,
        vec![BarChart::new("PIE %", bars(&groups)).color(GROUP)],
        None,
    );
    let shares: Vec<String> = groups
        .iter()
        .map(|g| {
            let hard_total: usize = groups.iter().map(|x| x.hard).sum();
            #[allow(clippy::cast_precision_loss)]
            let share = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
            format!(
                "{}: {:.0}% of samples, {:.0}% of PIE",
                g.name,
                share(g.total, scores.len()),
                share(g.hard, hard_total)
            )
        })
        .collect();
    ui.label(weak(ui, shares.join(" · ")));
    ui.separator();
}

fn comparison_ui(ui: &mut egui::Ui, state: &HtlPanelState<'_>, width: f32) {
    let r = state.results;
    if let Some(note) = &r.comparison_note {
        ui.label(weak(ui, note.clone()));
        return;
    }
    let (Some(c), Some(data)) = (&r.comparison, &r.data) else {
        if r.populations.is_some() {
            ui.label("Training while attending to the hard samples…");
        }
        return;
    };
    ui.label(format!(
        "Plain vs attending to {} hard training samples (weight {:.1}, {}), test accuracy %",
        c.hard_train_count,
        c.attend.weight,
        c.attend.schedule.label()
    ));
    let mut names = vec!["all".to_owned(), "hard test".to_owned(), "hard train".to_owned()];
    names.extend(data.groups.iter().cloned());
    let values = |a: &crate::compute::htl::attend::PopulationAccuracy| -> Vec<f64> {
        [a.mean, a.hard_test, a.hard_train].into_iter().chain(a.per_group.iter().copied()).collect()
    };
    #[allow(clippy::cast_precision_loss)]
    let bars = |values: Vec<f64>, offset: f64| -> Vec<Bar> {
        values
            .into_iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(k, v)| Bar::new(k as f64 + offset, 100.0 * v).width(0.38))
            .collect()
    };
    category_plot(
        ui,
        ("htl comparison", 150.0),
        &names,
        width,
        vec![
            BarChart::new("plain", bars(values(&c.plain), -0.2)).color(DENSE),
            BarChart::new("attended", bars(values(&c.attended), 0.2)).color(ATTENDED),
        ],
        Some(100.0),
    );
    egui::CollapsingHeader::new("Table: overall, hard samples, groups and classes").default_open(false).show(
        ui,
        |ui| {
            egui::Grid::new("htl comparison table").striped(true).show(ui, |ui| {
                ui.strong("");
                ui.strong("plain");
                ui.strong("attended");
                ui.end_row();
                let mut row = |name: String, p: f64, a: f64| {
                    ui.label(name);
                    ui.label(percent(p));
                    ui.label(percent(a));
                    ui.end_row();
                };
                row(
                    format!("test (± {:.1} / {:.1})", 100.0 * c.plain.std, 100.0 * c.attended.std),
                    c.plain.mean,
                    c.attended.mean,
                );
                row(format!("hard test ({})", c.hard_test_count), c.plain.hard_test, c.attended.hard_test);
                row(format!("hard train ({})", c.hard_train_count), c.plain.hard_train, c.attended.hard_train);
                for (k, g) in data.groups.iter().enumerate() {
                    row(format!("group {g}"), c.plain.per_group[k], c.attended.per_group[k]);
                }
                for (k, class) in data.data.classes.iter().enumerate() {
                    row(format!("class {class}"), c.plain.per_class[k], c.attended.per_class[k]);
                }
            });
        },
    );
}

const LOCALIZE_HELP: &str = "Lesion localization: each model is a small segmentation network (per pixel, the mean colours \
of boxes of 1, 2, 4 and 8 pixels on a 3×3 grid around it, through an MLP with two hidden layers) trained on pixel-wise \
cross-entropy. Model k of the pruned population is model k of the dense one, magnitude-pruned and fine-tuned. A sample \
is hard when the IoU of the two populations' majority masks falls below the agreement threshold — the PIE rule carried \
over to masks. Attending multiplies the hard images' pixel losses by the weight. With fewer than all masks labelled, a \
model trained on the labelled ones gives pseudo-labels to the rest (semi-supervised).\n\n\
The built-in synthetic set draws skin-like textured backgrounds (20% dark skin, the under-represented group), lesions of \
varied size, shape, colour and contrast, and occasional hairs; its masks are the ground truth.";

fn localize_controls_ui(
    ui: &mut egui::Ui,
    settings: &mut HtlSettings,
    state: &HtlPanelState<'_>,
    commands: &mut Vec<HtlCommand>,
) {
    egui::CollapsingHeader::new("About localization").default_open(false).show(ui, |ui| {
        ui.label(weak(ui, LOCALIZE_HELP));
    });
    egui::CollapsingHeader::new("Lesions").default_open(true).show(ui, |ui| {
        match &settings.lesion_folder {
            Some(path) => {
                ui.label(weak(ui, format!("folder {}", file_name(path)))).on_hover_text(path.display().to_string());
            }
            None => {
                ui.label(weak(ui, "built-in synthetic lesions"));
            }
        }
        ui.horizontal_wrapped(|ui| {
            if ui
                .add_enabled(settings.lesion_folder.is_some(), egui::Button::new("Synthetic"))
                .on_hover_text("The built-in synthetic skin lesions")
                .clicked()
            {
                commands.push(HtlCommand::UseSyntheticLesions);
            }
            if ui
                .button("Lesion folder…")
                .on_hover_text("A folder with images/ and masks/ (a mask per image, same name, white = lesion)")
                .clicked()
            {
                commands.push(HtlCommand::Pick(HtlFile::OpenLesions));
            }
        });
        let l = &mut settings.lesions;
        ui.add(egui::Slider::new(&mut l.side, 16..=64).text("image side (px)"));
        if settings.lesion_folder.is_none() {
            ui.add(egui::Slider::new(&mut l.train, 20..=5000).logarithmic(true).text("training images"));
            ui.add(egui::Slider::new(&mut l.test, 10..=2000).logarithmic(true).text("test images"));
            ui.add(egui::Slider::new(&mut l.dark_fraction, 0.0..=1.0).text("dark skin fraction"))
                .on_hover_text("Share of images with dark skin, the under-represented group at the default 0.2");
        }
    });
    egui::CollapsingHeader::new("Networks").default_open(true).show(ui, |ui| {
        let c = &mut settings.seg;
        ui.add(egui::Slider::new(&mut c.models, 1..=MAX_MODELS).text("models each"));
        ui.add(egui::Slider::new(&mut c.hidden, 8..=256).logarithmic(true).text("hidden units"));
        ui.add(egui::Slider::new(&mut c.epochs, 1..=100).logarithmic(true).text("epochs"));
        ui.add(egui::Slider::new(&mut c.finetune_epochs, 0..=50).text("fine-tune epochs"));
        ui.add(egui::Slider::new(&mut c.learning_rate, 1e-4..=0.1).logarithmic(true).text("learning rate"));
        ui.horizontal(|ui| {
            let label = ui.label("seed");
            ui.add(egui::DragValue::new(&mut c.seed).range(0..=1_000_000)).labelled_by(label.id);
        });
    });
    egui::ComboBox::from_label("attention schedule").selected_text(settings.attend.schedule.label()).show_ui(
        ui,
        |ui| {
            for schedule in Schedule::ALL {
                ui.selectable_value(&mut settings.attend.schedule, schedule, schedule.label())
                    .on_hover_text(schedule.description());
            }
        },
    );
    ui.add_space(theme::SPACING);
    ui.horizontal(|ui| {
        if ui.button("Reset").on_hover_text("Every setting of this lab back to its default (the data stay)").clicked() {
            commands.push(HtlCommand::ResetSettings);
        }
        if ui
            .add_enabled(state.seg.is_some(), egui::Button::new("Export all…"))
            .on_hover_text("seg_scores.csv, the contact sheets, localize.csv/png and metrics.json, into a folder")
            .clicked()
        {
            commands.push(HtlCommand::Pick(HtlFile::Export));
        }
    });
    if let Some(view) = state.seg {
        ui.label(weak(ui, view.data.summary()));
    }
}

fn seg_row(ui: &mut egui::Ui, name: &str, values: [f64; 3]) {
    let f = |v: f64| if v.is_finite() { format!("{v:.3}") } else { "—".into() };
    ui.label(name);
    for v in values {
        ui.label(f(v));
    }
    ui.end_row();
}

fn localize_main_ui(
    ui: &mut egui::Ui,
    settings: &mut HtlSettings,
    state: &HtlPanelState<'_>,
    commands: &mut Vec<HtlCommand>,
) {
    ui.horizontal_wrapped(|ui| {
        let label = ui.strong("sparsity");
        ui.add(egui::Slider::new(&mut settings.seg.sparsity, 0.0..=0.99).step_by(0.01).fixed_decimals(2))
            .labelled_by(label.id);
        let label = ui.strong("agreement");
        ui.add(egui::Slider::new(&mut settings.seg.agreement_threshold, 0.5..=1.0).fixed_decimals(2))
            .labelled_by(label.id)
            .on_hover_text("A sample is hard when the IoU of the dense and pruned majority masks is below this");
        let label = ui.strong("labelled");
        ui.add(egui::Slider::new(&mut settings.seg.labelled_fraction, 0.05..=1.0).fixed_decimals(2))
            .labelled_by(label.id)
            .on_hover_text("Fraction of the training masks used as labels; the rest get pseudo-labels (1: supervised)");
        let label = ui.strong("hard weight");
        ui.add(egui::Slider::new(&mut settings.attend.weight, 1.0..=50.0).logarithmic(true).fixed_decimals(1))
            .labelled_by(label.id);
        if ui
            .add_enabled(!state.seg_running, egui::Button::new("▶ Run localization"))
            .on_hover_text("Train both populations, find the hard lesions, attend to them (about 15 s at the defaults)")
            .clicked()
        {
            commands.push(HtlCommand::Localize);
        }
        if state.seg_running {
            ui.spinner();
        }
        if let Some(progress) = state.seg_progress {
            ui.add(egui::ProgressBar::new(progress).desired_width(100.0).show_percentage());
        }
    });
    if let (Some(problem), false) = (state.seg_problem, state.seg_running) {
        ui.colored_label(theme::error_colour(ui), problem);
    }
    let Some(view) = state.seg else {
        ui.label("Run the study to see the hard lesions and the accuracy with and without attending to them.");
        return;
    };
    let r = &view.report;
    ui.label(format!(
        "{:.0}% of {} masks labelled{} · sparsity {:.2} · {} hard training and {} hard test lesions (agreement < {:.2}) · {:.1} s, {:.0} images/s",
        100.0 * r.config.labelled_fraction,
        view.data.train.len(),
        if r.labelled < view.data.train.len() { " (the rest pseudo-labelled)" } else { "" },
        r.config.sparsity,
        r.hard_train,
        r.hard_test,
        r.config.agreement_threshold,
        r.seconds,
        r.samples_per_second,
    ));
    ui.separator();
    let half = (ui.available_width() / 2.0 - 12.0).max(100.0);
    ui.horizontal_top(|ui| {
        for (title, texture) in [("Hardest training lesions", &view.train_sheet), ("Hardest test lesions", &view.test_sheet)] {
            ui.vertical(|ui| {
                ui.label(title);
                let size = texture.size_vec2();
                let scale = (half / size.x).clamp(0.3, 1.0);
                ui.add(egui::Image::new((texture.id(), size * scale)))
                    .on_hover_text("Green: true mask · blue: dense majority · red: pruned majority · A: their agreement (IoU) · dense/pruned IoU with the truth; red captions are hard");
            });
        }
    });
    ui.separator();
    if let Some(note) = &r.note {
        ui.colored_label(theme::warning_colour(ui), note);
    }
    let empty = SegAccuracy::default();
    let attended = r.attended.as_ref().unwrap_or(&empty);
    egui::Grid::new("htl seg table").striped(true).show(ui, |ui| {
        ui.strong("mean IoU (Dice)");
        ui.strong("dense");
        ui.strong("pruned");
        ui.strong("attended");
        ui.end_row();
        seg_row(ui, "all", [r.dense.iou, r.pruned.iou, attended.iou]);
        seg_row(ui, "all, Dice", [r.dense.dice, r.pruned.dice, attended.dice]);
        seg_row(ui, &format!("hard test ({})", r.hard_test), [r.dense.hard_iou, r.pruned.hard_iou, attended.hard_iou]);
        for (g, name) in view.data.groups.iter().enumerate() {
            let at = |a: &SegAccuracy| a.per_group_iou.get(g).copied().unwrap_or(f64::NAN);
            seg_row(ui, name, [at(&r.dense), at(&r.pruned), at(attended)]);
        }
    });
    let hard_total = r.train_scores.iter().filter(|s| s.hard).count();
    let shares: Vec<String> = view
        .data
        .groups
        .iter()
        .enumerate()
        .map(|(g, name)| {
            let in_group = r.train_scores.iter().filter(|s| usize::from(s.group) == g);
            let (total, hard) = in_group.fold((0_usize, 0_usize), |(t, h), s| (t + 1, h + usize::from(s.hard)));
            #[allow(clippy::cast_precision_loss)]
            let share = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
            format!(
                "{name}: {:.0}% of lesions, {:.0}% of hard ones",
                share(total, r.train_scores.len()),
                share(hard, hard_total)
            )
        })
        .collect();
    ui.label(weak(ui, shares.join(" · ")));
}
