//! The pruning lab: the two-layer theory model with a live pruning-fraction slider, its training
//! curves, and the sweep of test accuracy against the pruning fraction.

use eframe::egui;
use egui_plot::{FilledArea, Legend, Line, Plot, PlotPoints, Points, VLine};
use serde::{Deserialize, Serialize};

use super::super::{Command, FileRequest, theme};
use crate::compute::prune::theory::{DEFAULT_FRACTIONS, SweepPoint, TheoryConfig, TheoryPoint, mean_std};

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
}

impl Default for PruneSettings {
    fn default() -> Self {
        Self { theory: TheoryConfig::default(), sweep_seeds: 5, sweep_points: 0 }
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
    commands: &mut Vec<Command>,
) {
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
        ui.add(egui::Slider::new(&mut config.width, 1..=200).logarithmic(true).text("neurons per class m"));
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
            commands.push(Command::PruneSweep);
        }
    });
    ui.add_space(theme::SPACING);
    ui.horizontal(|ui| {
        if ui.button("Reset").on_hover_text("Every setting of this lab back to its default").clicked() {
            commands.push(Command::PruneResetSettings);
        }
        if ui.add_enabled(!state.history.is_empty(), egui::Button::new("Export run…")).clicked() {
            commands.push(Command::PickFile(FileRequest::ExportPruneRun));
        }
        if ui.add_enabled(state.sweep.is_some(), egui::Button::new("Export sweep…")).clicked() {
            commands.push(Command::PickFile(FileRequest::ExportPruneSweep));
        }
    });
}

/// The central part: the slider, the run's curves, the sweep.
pub fn prune_main_ui(ui: &mut egui::Ui, settings: &mut PruneSettings, state: &PrunePanelState<'_>) {
    ui.horizontal(|ui| {
        let label = ui.strong("pruning fraction p");
        let slider = egui::Slider::new(&mut settings.theory.prune, 0.0..=MAX_PRUNE).step_by(0.01).fixed_decimals(2);
        ui.add_sized([ui.available_width().min(420.0), 24.0], slider)
            .labelled_by(label.id)
            .on_hover_text("Each first-layer weight is kept with probability 1 − p; moving this retrains at once");
        if state.running {
            ui.spinner();
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
    sweep_ui(ui, settings, state);
}

fn steps_of(history: &[TheoryPoint], f: fn(&TheoryPoint) -> f64) -> PlotPoints<'static> {
    #[allow(clippy::cast_precision_loss)]
    history.iter().filter(|p| f(p).is_finite()).map(|p| [p.step as f64, f(p)]).collect()
}

fn run_curves_ui(ui: &mut egui::Ui, history: &[TheoryPoint], height: f32) {
    let width = (ui.available_width() - theme::SPACING) / 2.0;
    let (loss_colour, test_colour) = (theme::loss_colour(ui), theme::psnr_colour(ui));
    let plot = |id: &str| Plot::new(id.to_owned()).width(width).height(height).x_axis_label("step");
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label("Train loss (log₁₀)");
            plot("prune loss")
                .y_axis_formatter(|mark, _| {
                    let power = mark.value.round();
                    if (mark.value - power).abs() < 1e-6 { format!("1e{power:.0}") } else { String::new() }
                })
                .show(ui, |plot| {
                    plot.line(
                        Line::new("train loss", steps_of(history, |p| p.train_loss.max(1e-30).log10()))
                            .color(loss_colour),
                    );
                });
        });
        ui.vertical(|ui| {
            ui.label("Accuracy");
            plot("prune accuracy").include_y(0.0).include_y(1.0).legend(Legend::default()).show(ui, |plot| {
                plot.line(Line::new("train", steps_of(history, |p| p.train_accuracy)).color(loss_colour));
                plot.line(Line::new("test", steps_of(history, |p| p.test_accuracy)).color(test_colour));
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

fn sweep_ui(ui: &mut egui::Ui, settings: &PruneSettings, state: &PrunePanelState<'_>) {
    ui.horizontal(|ui| {
        ui.strong("Sweep: final test accuracy against p");
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
                "Run sweep (left) trains every pruning fraction with several seeds: accuracy rises with p, peaks, then falls to chance while the training loss still goes to zero.",
            )
            .color(theme::weak_text_colour(ui)),
        );
        return;
    };
    let stats: Vec<(f64, (f64, f64), f64)> =
        points.iter().map(|p| (p.prune, mean_std(&p.test_accuracy), mean_std(&p.train_loss).0)).collect();
    let xs: Vec<f64> = stats.iter().map(|s| s.0).collect();
    let lows: Vec<f64> = stats.iter().map(|s| s.1.0 - s.1.1).collect();
    let highs: Vec<f64> = stats.iter().map(|s| s.1.0 + s.1.1).collect();
    let width = (ui.available_width() - theme::SPACING) / 2.0;
    let height = (ui.available_height() - 2.0 * ui.spacing().interact_size.y).max(80.0);
    let (accuracy_colour, loss_colour) = (theme::psnr_colour(ui), theme::loss_colour(ui));
    let marker_colour = theme::weak_text_colour(ui);
    let seeds = points.first().map_or(0, |p| p.seeds.len());
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label(format!("Test accuracy, mean ± std over {seeds} seeds"));
            Plot::new("prune sweep accuracy")
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
            Plot::new("prune sweep loss")
                .width(width)
                .height(height)
                .x_axis_label("pruning fraction p")
                .y_axis_formatter(|mark, _| {
                    let power = mark.value.round();
                    if (mark.value - power).abs() < 1e-6 { format!("1e{power:.0}") } else { String::new() }
                })
                .show(ui, |plot| {
                    let loss: PlotPoints<'static> = stats.iter().map(|s| [s.0, s.2.max(1e-30).log10()]).collect();
                    plot.line(Line::new("train loss", loss).color(loss_colour));
                    plot.vline(VLine::new("p", settings.theory.prune).color(marker_colour));
                });
        });
    });
}
