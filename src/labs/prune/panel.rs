//! The pruning lab: the two-layer theory model with a live pruning-fraction slider, its training
//! curves, and the sweep of test accuracy against the pruning fraction.

use eframe::egui;
use egui_plot::{FilledArea, Line, MarkerShape, PlotPoints, Points, VLine};
use serde::{Deserialize, Serialize};

use super::{PruneCommand, PruneFile};
use crate::compute::prune::data::{DEBIAN_FASHION_MNIST, DataSource};
use crate::compute::prune::init::{InitConfig, InitResult, LayerInfo, Method, ModelKind};
use crate::compute::prune::theory::{DEFAULT_FRACTIONS, SweepPoint, TheoryConfig, TheoryPoint, mean_std};
use crate::ui::theme;
use crate::ui::plot_key::{Dash, LogAxes, Series, key_ui};

/// Which half of the lab is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PruneMode {
    /// The two-layer theory model with the live slider.
    #[default]
    Theory,
    /// Pruning-at-initialization methods on real images.
    Images,
}

/// Sparsities the real-images comparison offers.
pub const SPARSITY_CHOICES: [f64; 8] = [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99];

/// Everything the user sets in the pruning lab; persisted between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PruneSettings {
    /// The model, data and training of the live run (its `prune` is the slider).
    pub theory: TheoryConfig,
    /// Seeds per pruning fraction in a sweep.
    pub sweep_seeds: usize,
    /// Pruning fractions of a sweep: the default 20, or this many evenly from 0 to 0.99.
    pub sweep_points: usize,
    pub mode: PruneMode,
    /// The real-images comparison.
    pub source: DataSource,
    pub init: InitConfig,
    /// Folder images are resized to this side.
    pub folder_side: usize,
    /// The mask shown: result index into the comparison, and layer.
    pub mask_result: usize,
    pub mask_layer: usize,
}

impl Default for PruneSettings {
    fn default() -> Self {
        Self {
            theory: TheoryConfig::default(),
            sweep_seeds: 5,
            sweep_points: 0,
            mode: PruneMode::Theory,
            source: DataSource::Digits,
            init: InitConfig::default(),
            folder_side: 28,
            mask_result: 1,
            mask_layer: 0,
        }
    }
}

impl PruneSettings {
    /// Brings values from an old or edited settings file back into the ranges the controls offer.
    pub fn sanitize(&mut self) {
        if self.theory.validate().is_err() {
            self.theory = TheoryConfig::default();
        }
        self.theory.prune = self.theory.prune.clamp(0.0, MAX_PRUNE);
        self.sweep_seeds = self.sweep_seeds.clamp(1, 50);
        if self.sweep_points != 0 {
            self.sweep_points = self.sweep_points.clamp(3, 100);
        }
        if self.init.validate().is_err() {
            self.init = InitConfig::default();
        }
        self.folder_side = self.folder_side.clamp(8, 64);
    }

    pub fn sweep_fractions(&self) -> Vec<f64> {
        if self.sweep_points == 0 {
            return DEFAULT_FRACTIONS.to_vec();
        }
        let n = self.sweep_points.max(2);
        #[allow(clippy::cast_precision_loss)]
        (0..n).map(|i| i as f64 / (n - 1) as f64 * MAX_PRUNE).collect()
    }
}

/// Largest pruning fraction the slider offers.
pub const MAX_PRUNE: f64 = 0.99;

/// The last finished run, for the header.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub prune: f64,
    pub kept_fraction: f64,
    pub last: TheoryPoint,
    pub seconds: f64,
    /// Whether the Gram solver ran it.
    pub gram: bool,
}

/// What the lab shows, read-only.
pub struct PrunePanelState<'a> {
    pub running: bool,
    pub history: &'a [TheoryPoint],
    pub summary: Option<&'a RunSummary>,
    pub sweep: Option<&'a [SweepPoint]>,
    /// The sweep was run with other model or data settings.
    pub sweep_stale: bool,
    pub sweeping: bool,
    pub sweep_progress: Option<f32>,
    /// The loaded data set's summary, or why it failed.
    pub data_summary: Option<Result<&'a str, &'a str>>,
    pub loading_data: bool,
    pub comparing: bool,
    pub compare_progress: Option<f32>,
    pub init_results: &'a [InitResult],
    pub layers: &'a [LayerInfo],
    /// Texture of the mask shown and its size (columns, rows).
    pub mask_texture: Option<(&'a egui::TextureHandle, [usize; 2])>,
}

const HELP: &str = "Data: each sample is two patches, the signal y·μ and Gaussian noise ξ orthogonal to μ. \
The network has m ReLU^q neurons per class; every first-layer weight is kept with probability 1 − p by a random \
mask fixed at initialization, and gradient descent trains what is kept.\n\n\
Defaults (d = 2000, n = 40, μ = 12·e₁, m = 20, ReLU³, σ₀ = 0.01, step 0.5, 400 steps) show three regimes: \
unpruned, the noise is so much larger than the signal that the net memorizes it (train loss → 0, test ≈ 60%); \
pruning helps, since a neuron that keeps μ's coordinate sees the whole signal but only a 1 − p share of the noise \
(test near 100% around p = 0.75–0.85); at very large p hardly any neuron keeps the signal, and the net fits the \
training set from noise alone: train loss still small, test accuracy at chance.\n\n\
Signal learning is max_r ⟨w_{j,r}, j·μ⟩ averaged over the classes; noise memorization is max_r ⟨w_{yᵢ,r}, ξᵢ⟩ \
averaged over the training samples.";

/// The sidebar part.
pub fn prune_controls_ui(
    ui: &mut egui::Ui,
    settings: &mut PruneSettings,
    state: &PrunePanelState<'_>,
    commands: &mut Vec<PruneCommand>,
) {
    ui.horizontal(|ui| {
        ui.selectable_value(&mut settings.mode, PruneMode::Theory, "Theory model")
            .on_hover_text("The two-layer feature-learning model, with a live pruning slider");
        ui.selectable_value(&mut settings.mode, PruneMode::Images, "Real images")
            .on_hover_text("Random, magnitude, SNIP, GraSP and SynFlow on digits, Fashion-MNIST or your images");
    });
    if settings.mode == PruneMode::Images {
        images_controls_ui(ui, settings, state, commands);
        return;
    }
    egui::CollapsingHeader::new("About this lab").default_open(false).show(ui, |ui| {
        ui.label(egui::RichText::new(HELP).color(theme::weak_text_colour(ui)));
    });
    let config = &mut settings.theory;
    egui::CollapsingHeader::new("Data").default_open(true).show(ui, |ui| {
        ui.add(egui::Slider::new(&mut config.dim, 50..=20_000).logarithmic(true).text("dimension d"))
            .on_hover_text("Dimension of each patch (signal and noise)");
        ui.add(egui::Slider::new(&mut config.signal_norm, 0.5..=50.0).logarithmic(true).text("‖μ‖"))
            .on_hover_text("Signal strength");
        let max_coords = config.dim.min(200);
        ui.add(egui::Slider::new(&mut config.signal_coords, 1..=max_coords).logarithmic(true).text("μ coordinates"))
            .on_hover_text("How many coordinates the signal spans, with equal weights (1: ‖μ‖·e₁, the sparse signal)");
        ui.add(egui::Slider::new(&mut config.noise_std, 0.0..=5.0).text("σ_p (noise)"));
        ui.add(egui::Slider::new(&mut config.n_train, 4..=1000).logarithmic(true).text("training samples"));
        ui.add(egui::Slider::new(&mut config.n_test, 50..=10_000).logarithmic(true).text("test samples"));
        ui.add(egui::Slider::new(&mut config.label_flip, 0.0..=0.5).text("label noise"))
            .on_hover_text("Fraction of training labels flipped (the signal patch keeps the true label)");
    });
    egui::CollapsingHeader::new("Model and training").default_open(true).show(ui, |ui| {
        ui.add(egui::Slider::new(&mut config.width, 1..=200).logarithmic(true).text("neurons m"))
            .on_hover_text("m: ReLU^q neurons per class");
        ui.add(egui::Slider::new(&mut config.power, 1..=4).text("activation power q"))
            .on_hover_text("σ(z) = max(z, 0)^q; 1 is ReLU");
        ui.add(
            egui::Slider::new(&mut config.init_std, 1e-4..=1.0)
                .logarithmic(true)
                .text("init σ₀")
                .custom_formatter(|v, _| format!("{v:.1e}")),
        );
        ui.add(egui::Slider::new(&mut config.learning_rate, 0.01..=5.0).logarithmic(true).text("step size"));
        ui.add(egui::Slider::new(&mut config.steps, 10..=5000).logarithmic(true).text("GD steps"))
            .on_hover_text("Full-batch gradient-descent steps on the logistic loss");
        ui.horizontal(|ui| {
            let label = ui.label("seed");
            ui.add(egui::DragValue::new(&mut config.seed).range(0..=1_000_000)).labelled_by(label.id);
        });
    });
    egui::CollapsingHeader::new("Sweep").default_open(true).show(ui, |ui| {
        ui.add(egui::Slider::new(&mut settings.sweep_seeds, 1..=50).text("seeds per p"));
        ui.horizontal(|ui| {
            ui.radio_value(&mut settings.sweep_points, 0, "20 default p")
                .on_hover_text("0 to 0.99, denser near the peak and the collapse");
            if ui.radio(settings.sweep_points != 0, "evenly").clicked() && settings.sweep_points == 0 {
                settings.sweep_points = 21;
            }
        });
        if settings.sweep_points != 0 {
            ui.add(egui::Slider::new(&mut settings.sweep_points, 3..=100).text("fractions"));
        }
        let runs = settings.sweep_fractions().len() * settings.sweep_seeds;
        if ui
            .add_enabled(!state.sweeping, egui::Button::new("Run sweep"))
            .on_hover_text(format!("{runs} runs with these settings, in the background"))
            .clicked()
        {
            commands.push(PruneCommand::Sweep);
        }
    });
    ui.add_space(theme::SPACING);
    ui.horizontal(|ui| {
        if ui.button("Reset").on_hover_text("Every setting of this lab back to its default").clicked() {
            commands.push(PruneCommand::ResetSettings);
        }
        if ui.add_enabled(!state.history.is_empty(), egui::Button::new("Export run…")).clicked() {
            commands.push(PruneCommand::Pick(PruneFile::ExportRun));
        }
        if ui.add_enabled(state.sweep.is_some(), egui::Button::new("Export sweep…")).clicked() {
            commands.push(PruneCommand::Pick(PruneFile::ExportSweep));
        }
    });
}

const IMAGES_HELP: &str = "Each method scores every weight of a freshly initialized network, keeps the best \
(1 − sparsity), and the network trains with that mask fixed. All runs start from the same initial weights; the \
dense network is trained once as the reference. Random keeps the same fraction of every layer; the others rank \
all layers together, so they can empty a layer (layer collapse) — SynFlow is built to avoid that.";

fn images_controls_ui(
    ui: &mut egui::Ui,
    settings: &mut PruneSettings,
    state: &PrunePanelState<'_>,
    commands: &mut Vec<PruneCommand>,
) {
    egui::CollapsingHeader::new("About pruning at init").default_open(false).show(ui, |ui| {
        ui.label(egui::RichText::new(IMAGES_HELP).color(theme::weak_text_colour(ui)));
    });
    egui::CollapsingHeader::new("Data").default_open(true).show(ui, |ui| {
        let is_digits = settings.source == DataSource::Digits;
        if ui.radio(is_digits, "built-in digits (8×8)").clicked() && !is_digits {
            commands.push(PruneCommand::SetData(DataSource::Digits));
        }
        let is_fashion = matches!(settings.source, DataSource::FashionMnist(_));
        if ui
            .radio(is_fashion, "Fashion-MNIST")
            .on_hover_text(format!(
                "IDX files; {DEBIAN_FASHION_MNIST} when Debian's dataset-fashion-mnist is installed"
            ))
            .clicked()
            && !is_fashion
        {
            commands.push(PruneCommand::SetData(DataSource::FashionMnist(DEBIAN_FASHION_MNIST.into())));
        }
        let is_folder = matches!(settings.source, DataSource::Folder { .. });
        ui.horizontal(|ui| {
            ui.add_enabled(false, egui::RadioButton::new(is_folder, "image folder"));
            if ui
                .button("Choose folder…")
                .on_hover_text(
                    "Fashion-MNIST IDX files, or one sub-folder of images per class (or drop the folder on the window)",
                )
                .clicked()
            {
                commands.push(PruneCommand::Pick(PruneFile::OpenData));
            }
        });
        if is_folder {
            ui.add(egui::Slider::new(&mut settings.folder_side, 8..=64).text("image side"))
                .on_hover_text("Images are resized to this square size; reload the folder to apply");
        }
        match state.data_summary {
            Some(Ok(summary)) => {
                ui.label(egui::RichText::new(summary).color(theme::weak_text_colour(ui)));
            }
            Some(Err(problem)) => {
                ui.colored_label(theme::error_colour(ui), problem);
            }
            None if state.loading_data => {
                ui.horizontal(|ui| {
                    crate::ui::widgets::busy_ui(ui);
                    ui.label("loading…");
                });
            }
            None => {}
        }
    });
    let config = &mut settings.init;
    egui::CollapsingHeader::new("Model and training").default_open(true).show(ui, |ui| {
        ui.horizontal(|ui| {
            for kind in ModelKind::ALL {
                ui.radio_value(&mut config.model, kind, kind.label());
            }
        });
        if config.model == ModelKind::Mlp {
            ui.add(egui::Slider::new(&mut config.hidden, 8..=1024).logarithmic(true).text("hidden units"));
        }
        ui.add(egui::Slider::new(&mut config.epochs, 1..=100).text("epochs"));
        ui.add(
            egui::Slider::new(&mut config.learning_rate, 1e-4..=1e-1)
                .logarithmic(true)
                .text("learning rate")
                .custom_formatter(|v, _| format!("{v:.1e}")),
        )
        .on_hover_text("Adam");
        ui.add(egui::Slider::new(&mut config.batch, 8..=512).logarithmic(true).text("batch"));
        ui.add(egui::Slider::new(&mut config.train_limit, 0..=60_000).logarithmic(true).text("training images"))
            .on_hover_text("Use only the first N training images (0: all)");
        ui.horizontal(|ui| {
            let label = ui.label("seed");
            ui.add(egui::DragValue::new(&mut config.seed).range(0..=1_000_000)).labelled_by(label.id);
        });
    });
    egui::CollapsingHeader::new("Methods and sparsities").default_open(true).show(ui, |ui| {
        for method in Method::ALL {
            let mut on = config.methods.contains(&method);
            if ui.checkbox(&mut on, method.label()).on_hover_text(method.description()).changed() {
                if on {
                    config.methods.push(method);
                    config.methods.sort_by_key(|m| Method::ALL.iter().position(|x| x == m));
                } else {
                    config.methods.retain(|m| *m != method);
                }
            }
        }
        ui.label("sparsities");
        ui.horizontal_wrapped(|ui| {
            for s in SPARSITY_CHOICES {
                let mut on = config.sparsities.contains(&s);
                if ui.checkbox(&mut on, format!("{s}")).changed() {
                    if on {
                        config.sparsities.push(s);
                        config.sparsities.sort_by(f64::total_cmp);
                    } else {
                        config.sparsities.retain(|x| *x != s);
                    }
                }
            }
        });
        ui.add(egui::Slider::new(&mut config.synflow_iterations, 1..=200).text("SynFlow rounds"));
    });
    ui.add_space(theme::SPACING);
    ui.horizontal(|ui| {
        let ready = !state.comparing && !config.methods.is_empty() && !config.sparsities.is_empty();
        if ui
            .add_enabled(ready, egui::Button::new("Run comparison"))
            .on_hover_text("Train every method at every sparsity in the background")
            .clicked()
        {
            commands.push(PruneCommand::Compare);
        }
        if ui.add_enabled(!state.init_results.is_empty(), egui::Button::new("Export results…")).clicked() {
            commands.push(PruneCommand::Pick(PruneFile::ExportInit));
        }
    });
}

/// The real-images part: accuracy against sparsity per method, and the masks.
fn images_main_ui(
    ui: &mut egui::Ui,
    settings: &mut PruneSettings,
    state: &PrunePanelState<'_>,
    commands: &mut Vec<PruneCommand>,
) {
    ui.horizontal(|ui| {
        let config = &settings.init;
        let ready = !state.comparing && !config.methods.is_empty() && !config.sparsities.is_empty();
        let runs = config.runs().len();
        if ui
            .add_enabled(ready, egui::Button::new("▶ Compare"))
            .on_hover_text(format!("Train {runs} networks ({} epochs each) in the background", config.epochs))
            .clicked()
        {
            commands.push(PruneCommand::Compare);
        }
        ui.strong("Pruning at initialization");
        if let Some(Ok(summary)) = state.data_summary {
            ui.label(summary);
        }
        if let Some(progress) = state.compare_progress {
            ui.add(egui::ProgressBar::new(progress).desired_width(200.0).show_percentage());
        }
    });
    ui.separator();
    if state.init_results.is_empty() {
        ui.label(
            egui::RichText::new(
                "Compare prunes a fresh network with each method at each sparsity, trains it with the mask fixed, and plots the test accuracy it reaches.",
            )
            .color(theme::weak_text_colour(ui)),
        );
        return;
    }
    let height = (ui.available_height() * 0.5).max(120.0);
    let dense = state.init_results.iter().find(|r| r.method.is_none()).map(|r| r.test_accuracy);
    ui.label("Test accuracy after training against sparsity");
    let mut entries: Vec<(Option<Method>, Series)> = Method::ALL
        .into_iter()
        .filter(|method| state.init_results.iter().any(|r| r.method == Some(*method)))
        .map(|method| (Some(method), Series::new(method.label(), method_colour(method)).marker(method_marker(method))))
        .collect();
    if dense.is_some() {
        entries.push((None, Series::new("dense", egui::Color32::GRAY).dash(Dash::Dashed)));
    }
    let series: Vec<Series> = entries.iter().map(|(_, s)| s.clone()).collect();
    let key = key_ui(ui, "prune init accuracy", &series);
    crate::ui::plot_key::new_plot("prune init accuracy")
        .height(key.rest(height))
        .x_axis_label("sparsity (fraction of weights removed)")
        .include_y(0.0)
        .include_y(1.0)
        .show(ui, |plot| {
            for (method, series) in &entries {
                if !key.shows(&series.name) {
                    continue;
                }
                let Some(method) = method else {
                    if let Some(dense) = dense {
                        plot.hline(
                            egui_plot::HLine::new("dense", dense)
                                .color(series.colour)
                                .style(Dash::Dashed.line_style()),
                        );
                    }
                    continue;
                };
                let mut points: Vec<[f64; 2]> = state
                    .init_results
                    .iter()
                    .filter(|r| r.method == Some(*method))
                    .map(|r| [r.sparsity, r.test_accuracy])
                    .collect();
                points.sort_by(|a, b| a[0].total_cmp(&b[0]));
                plot.line(series.line(points.clone()));
                plot.points(series.points(points));
            }
        });
    ui.separator();
    ui.horizontal(|ui| {
        ui.strong("Masks");
        let describe = |r: &InitResult| {
            format!("{} at {:.2}: {:.1}%", r.method.map_or("dense", Method::label), r.sparsity, 100.0 * r.test_accuracy)
        };
        let current = state.init_results.get(settings.mask_result).map_or_else(String::new, describe);
        egui::ComboBox::from_label("network").selected_text(current).show_ui(ui, |ui| {
            for (k, r) in state.init_results.iter().enumerate() {
                ui.selectable_value(&mut settings.mask_result, k, describe(r));
            }
        });
        let layer_name = state.layers.get(settings.mask_layer).map_or("", |l| l.name.as_str());
        egui::ComboBox::from_label("layer").selected_text(layer_name).show_ui(ui, |ui| {
            for (k, layer) in state.layers.iter().enumerate() {
                ui.selectable_value(&mut settings.mask_layer, k, &layer.name);
            }
        });
    });
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.set_width(260.0);
            if let Some(result) = state.init_results.get(settings.mask_result) {
                ui.label("Kept per layer");
                for (layer, density) in state.layers.iter().zip(&result.densities) {
                    #[allow(clippy::cast_possible_truncation)]
                    let bar = egui::ProgressBar::new(*density as f32).desired_width(240.0).text(format!(
                        "{} {:?}: {:.1}%",
                        layer.name,
                        layer.shape,
                        100.0 * density
                    ));
                    ui.add(bar);
                }
            }
        });
        if let Some((texture, [columns, rows])) = state.mask_texture {
            ui.vertical(|ui| {
                ui.label(format!("Mask of the layer: {rows} outputs × {columns} inputs (white: kept)"));
                // At least 240 points tall, scrolling if the window is short.
                let available = egui::vec2(ui.available_width(), ui.available_height().max(240.0) - 8.0);
                #[allow(clippy::cast_precision_loss)]
                let scale = (available.x / columns as f32).min(available.y / rows as f32).clamp(0.05, 16.0);
                #[allow(clippy::cast_precision_loss)]
                let size = egui::vec2(columns as f32 * scale, rows as f32 * scale);
                ui.add(egui::Image::new((texture.id(), size)));
            });
        }
    });
}

/// A marker per method, the same in the plot and its key.
fn method_marker(method: Method) -> MarkerShape {
    match method {
        Method::Random => MarkerShape::Circle,
        Method::Magnitude => MarkerShape::Square,
        Method::Snip => MarkerShape::Diamond,
        Method::Grasp => MarkerShape::Up,
        Method::SynFlow => MarkerShape::Down,
    }
}

/// A fixed colour per method, the same in the plot and its key.
fn method_colour(method: Method) -> egui::Color32 {
    match method {
        Method::Random => egui::Color32::from_rgb(230, 159, 0),
        Method::Magnitude => egui::Color32::from_rgb(86, 180, 233),
        Method::Snip => egui::Color32::from_rgb(0, 158, 115),
        Method::Grasp => egui::Color32::from_rgb(204, 121, 167),
        Method::SynFlow => egui::Color32::from_rgb(213, 94, 0),
    }
}

/// The central part: the slider, the run's curves, the sweep.
pub fn prune_main_ui(
    ui: &mut egui::Ui,
    settings: &mut PruneSettings,
    state: &PrunePanelState<'_>,
    commands: &mut Vec<PruneCommand>,
) {
    if settings.mode == PruneMode::Images {
        images_main_ui(ui, settings, state, commands);
        return;
    }
    ui.horizontal(|ui| {
        let label = ui.strong("pruning fraction p");
        let slider = egui::Slider::new(&mut settings.theory.prune, 0.0..=MAX_PRUNE).step_by(0.01).fixed_decimals(2);
        ui.add_sized([ui.available_width().min(420.0), 24.0], slider)
            .labelled_by(label.id)
            .on_hover_text("Each first-layer weight is kept with probability 1 − p; moving this retrains at once");
        if state.running {
            crate::ui::widgets::busy_ui(ui);
        }
    });
    match state.summary {
        Some(summary) => {
            let last = &summary.last;
            ui.label(format!(
                "p = {:.2}: {:.1}% of weights kept · train loss {:.2e} · train {:.1}% · test {:.1}% · signal {:.2} · noise {:.2} · {:.0} ms{}",
                summary.prune,
                100.0 * summary.kept_fraction,
                last.train_loss,
                100.0 * last.train_accuracy,
                100.0 * last.test_accuracy,
                last.signal,
                last.noise,
                1000.0 * summary.seconds,
                if summary.gram { " (Gram solver)" } else { "" }
            ));
        }
        None => {
            ui.label("Training…");
        }
    }
    ui.separator();
    let sweep_height = if state.sweep.is_some() || state.sweeping { 0.42 } else { 0.1 };
    let curves_height = (ui.available_height() * (1.0 - sweep_height) - 4.0 * ui.spacing().interact_size.y) / 2.0;
    run_curves_ui(ui, state.history, curves_height.max(80.0));
    ui.separator();
    sweep_ui(ui, settings, state, commands);
}

fn steps_of(history: &[TheoryPoint], f: fn(&TheoryPoint) -> f64) -> PlotPoints<'static> {
    #[allow(clippy::cast_precision_loss)]
    history.iter().filter(|p| f(p).is_finite()).map(|p| [p.step as f64, f(p)]).collect()
}

fn run_curves_ui(ui: &mut egui::Ui, history: &[TheoryPoint], height: f32) {
    let width = (ui.available_width() - theme::SPACING) / 2.0;
    let (loss_colour, test_colour) = (theme::loss_colour(ui), theme::psnr_colour(ui));
    let plot = |id: &str| crate::ui::plot_key::new_plot(id.to_owned()).width(width).height(height).x_axis_label("step");
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label("Train loss (log₁₀)");
            plot("prune loss").log10_y().show(ui, |plot| {
                plot.line(
                    Line::new("train loss", steps_of(history, |p| p.train_loss.max(1e-30).log10())).color(loss_colour),
                );
            });
        });
        ui.vertical(|ui| {
            ui.label("Accuracy");
            let entries = [Series::new("train", loss_colour).dash(Dash::Dashed), Series::new("test", test_colour)];
            let key = key_ui(ui, "prune accuracy", &entries);
            let accuracies: [fn(&TheoryPoint) -> f64; 2] = [|p| p.train_accuracy, |p| p.test_accuracy];
            plot("prune accuracy").height(key.rest(height)).include_y(0.0).include_y(1.0).show(ui, |plot| {
                for (series, accuracy) in entries.iter().zip(accuracies) {
                    if key.shows(&series.name) {
                        plot.line(series.line(steps_of(history, accuracy)));
                    }
                }
            });
        });
    });
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label("Signal learning  max ⟨w, j·μ⟩");
            plot("prune signal").show(ui, |plot| {
                plot.line(Line::new("signal", steps_of(history, |p| p.signal)).color(test_colour));
            });
        });
        ui.vertical(|ui| {
            ui.label("Noise memorization  max ⟨w_y, ξ⟩");
            plot("prune noise").show(ui, |plot| {
                plot.line(Line::new("noise", steps_of(history, |p| p.noise)).color(loss_colour));
            });
        });
    });
}

fn sweep_ui(ui: &mut egui::Ui, settings: &PruneSettings, state: &PrunePanelState<'_>, commands: &mut Vec<PruneCommand>) {
    ui.horizontal(|ui| {
        ui.strong("Sweep: final test accuracy against p");
        // The sidebar's button may be scrolled away on a small screen; this one is always here.
        let runs = settings.sweep_fractions().len() * settings.sweep_seeds;
        if ui
            .add_enabled(!state.sweeping, egui::Button::new("▶ Run sweep"))
            .on_hover_text(format!("{runs} runs with the sweep settings in the sidebar, in the background"))
            .clicked()
        {
            commands.push(PruneCommand::Sweep);
        }
        if let Some(progress) = state.sweep_progress {
            ui.add(egui::ProgressBar::new(progress).desired_width(160.0).show_percentage());
        }
        if state.sweep_stale {
            ui.colored_label(theme::warning_colour(ui), "run with other settings; press Run sweep to update");
        }
    });
    let Some(points) = state.sweep else {
        ui.label(
            egui::RichText::new(
                "Run sweep trains every pruning fraction with several seeds: accuracy rises with p, peaks, then falls to chance while the training loss still goes to zero.",
            )
            .color(theme::weak_text_colour(ui)),
        );
        return;
    };
    let stats: Vec<(f64, (f64, f64), f64)> =
        points.iter().map(|p| (p.prune, mean_std(&p.test_accuracy), mean_std(&p.train_loss).0)).collect();
    let xs: Vec<f64> = stats.iter().map(|s| s.0).collect();
    // ±1 std, clipped to what an accuracy can be (the band must not stretch the axis past 1).
    let lows: Vec<f64> = stats.iter().map(|s| (s.1.0 - s.1.1).clamp(0.0, 1.0)).collect();
    let highs: Vec<f64> = stats.iter().map(|s| (s.1.0 + s.1.1).clamp(0.0, 1.0)).collect();
    let width = (ui.available_width() - theme::SPACING) / 2.0;
    let height = (ui.available_height() - 2.0 * ui.spacing().interact_size.y).max(80.0);
    let (accuracy_colour, loss_colour) = (theme::psnr_colour(ui), theme::loss_colour(ui));
    let marker_colour = theme::weak_text_colour(ui);
    let seeds = points.first().map_or(0, |p| p.seeds.len());
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label(format!("Test accuracy, mean ± std over {seeds} seeds"));
            crate::ui::plot_key::new_plot("prune sweep accuracy")
                .width(width)
                .height(height)
                .x_axis_label("pruning fraction p")
                .include_y(0.4)
                .include_y(1.0)
                .show(ui, |plot| {
                    plot.add(
                        FilledArea::new("± std", &xs, &lows, &highs).fill_color(accuracy_colour.gamma_multiply(0.25)),
                    );
                    let means: PlotPoints<'static> = stats.iter().map(|s| [s.0, s.1.0]).collect();
                    plot.line(Line::new("test accuracy", means).color(accuracy_colour));
                    let marks: PlotPoints<'static> = stats.iter().map(|s| [s.0, s.1.0]).collect();
                    plot.points(Points::new("runs", marks).color(accuracy_colour).radius(3.0));
                    plot.vline(VLine::new("p", settings.theory.prune).color(marker_colour));
                });
        });
        ui.vertical(|ui| {
            ui.label("Final train loss (log₁₀)");
            crate::ui::plot_key::new_plot("prune sweep loss")
                .width(width)
                .height(height)
                .x_axis_label("pruning fraction p")
                .log10_y()
                .show(ui, |plot| {
                    let loss: PlotPoints<'static> = stats.iter().map(|s| [s.0, s.2.max(1e-30).log10()]).collect();
                    plot.line(Line::new("train loss", loss).color(loss_colour));
                    plot.vline(VLine::new("p", settings.theory.prune).color(marker_colour));
                });
        });
    });
}
