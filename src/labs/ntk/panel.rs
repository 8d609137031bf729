//! The NTK lab: live sliders for the bias, the width and pruning; the Gram matrix, its spectrum
//! beside the limit's, training against the kernel's prediction, and the sweeps over the bias and
//! the width.

use std::path::PathBuf;

use eframe::egui;
use egui_plot::{MarkerShape, PlotPoints, VLine};
use serde::{Deserialize, Serialize};

use super::NtkResults;
use super::{NtkCommand, NtkFile};
use crate::compute::ntk::analysis::{MAX_BIAS, NtkConfig};
use crate::compute::ntk::data::{DIGITS, NtkData};
use crate::compute::ntk::files::{LINEAR_FLOOR, NUMERICALLY_ZERO};
use crate::compute::ntk::train::TrainRun;
use crate::ui::theme;
use crate::ui::plot_key::{Dash, Key, LogAxes, Series, key_ui};

/// Most points the lab computes with (the command line takes more).
pub const APP_MAX_POINTS: usize = 3000;

/// Where the lab's points come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    #[default]
    Random,
    Clustered,
    Digits,
    Csv,
}

/// Everything the user sets in the NTK lab; persisted between runs. Each data source keeps its
/// own values, so switching back and forth loses nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NtkSettings {
    pub source: SourceKind,
    pub n: usize,
    pub d: usize,
    pub clusters: usize,
    pub spread_deg: f64,
    pub digits: usize,
    pub csv: Option<PathBuf>,
    pub width: usize,
    pub bias: f64,
    pub prune: f64,
    pub seed: u64,
    pub steps: usize,
    pub step_scale: f64,
    pub compare_dense: bool,
}

impl Default for NtkSettings {
    fn default() -> Self {
        let config = NtkConfig::default();
        Self {
            source: SourceKind::Random,
            n: 200,
            d: 10,
            clusters: 4,
            spread_deg: 20.0,
            digits: 300,
            csv: None,
            width: config.width,
            bias: config.bias,
            prune: config.prune,
            seed: config.seed,
            steps: config.steps,
            step_scale: config.step_scale,
            compare_dense: config.compare_dense,
        }
    }
}

impl NtkSettings {
    /// The study these settings describe.
    pub fn config(&self) -> NtkConfig {
        let data = match (self.source, &self.csv) {
            (SourceKind::Clustered, _) => {
                NtkData::Clustered { n: self.n, d: self.d, clusters: self.clusters, spread_deg: self.spread_deg }
            }
            (SourceKind::Digits, _) => NtkData::Digits { n: self.digits },
            (SourceKind::Csv, Some(path)) => NtkData::Csv(path.clone()),
            (SourceKind::Random | SourceKind::Csv, _) => NtkData::Random { n: self.n, d: self.d },
        };
        NtkConfig {
            data,
            width: self.width,
            bias: self.bias,
            prune: self.prune,
            seed: self.seed,
            steps: self.steps,
            step_scale: self.step_scale,
            compare_dense: self.compare_dense,
        }
    }

    /// Brings values from an old or edited settings file back into the ranges the controls offer.
    pub fn sanitize(&mut self) {
        let defaults = Self::default();
        let clamp_f = |v: f64, lo: f64, hi: f64, default: f64| if v.is_finite() { v.clamp(lo, hi) } else { default };
        self.n = self.n.clamp(2, APP_MAX_POINTS);
        self.d = self.d.clamp(1, 1000);
        self.clusters = self.clusters.clamp(1, self.n);
        self.spread_deg = clamp_f(self.spread_deg, 0.0, 90.0, defaults.spread_deg);
        self.digits = self.digits.clamp(10, DIGITS);
        self.width = self.width.clamp(16, 16_384);
        self.bias = clamp_f(self.bias, 0.0, MAX_BIAS, 0.0);
        self.prune = clamp_f(self.prune, 0.0, MAX_PRUNE, 0.0);
        self.steps = self.steps.clamp(10, 20_000);
        self.step_scale = clamp_f(self.step_scale, 0.05, 1.9, 1.0);
        if self.source == SourceKind::Csv && self.csv.is_none() {
            self.source = SourceKind::Random;
        }
    }
}

/// Largest pruning fraction the slider offers.
pub const MAX_PRUNE: f64 = 0.95;

/// What the lab shows, read-only.
pub struct NtkPanelState<'a> {
    pub running: bool,
    pub progress: Option<f32>,
    pub results: &'a NtkResults,
    /// The results shown belong to the current settings.
    pub current: bool,
    /// The analysis was cancelled before it finished.
    pub cancelled: bool,
    pub problem: Option<&'a str>,
    pub gram_texture: Option<&'a egui::TextureHandle>,
}

const HELP: &str = "f(x) = (1/√m) Σ_r a_r ReLU(⟨w_r, x⟩ − b_r) with w_r ~ N(0, I), a_r = ±1 fixed and every bias starting at \
B; inputs on the unit sphere. A neuron fires on x only when ⟨w_r, x⟩ > B, so a large B makes the activations \
sparse: a fraction 1 − Φ(B) of them.\n\n\
The neural tangent kernel of the weights and biases is K_m(x, x') = (1/m) Σ_r (⟨x, x'⟩ + 1)·1[⟨w_r, x⟩ > B]·1[⟨w_r, x'⟩ > B]; \
as m → ∞ it becomes (⟨x, x'⟩ + 1)·P(Z₁ > B, Z₂ > B) with Z₁, Z₂ standard normals of correlation ⟨x, x'⟩.\n\n\
Gradient descent on ½‖f − y‖² with step η shrinks the loss at least like exp(−η λ_min t)·L(0) while the kernel stays \
near its initial value (wide networks); the dashed lines are that prediction. The step is a multiple of 1/λ_max, so \
the rate per step is about that multiple over the condition number λ_max/λ_min.";

/// The sidebar part.
pub fn ntk_controls_ui(
    ui: &mut egui::Ui,
    settings: &mut NtkSettings,
    state: &NtkPanelState<'_>,
    commands: &mut Vec<NtkCommand>,
) {
    egui::CollapsingHeader::new("About this lab").default_open(false).show(ui, |ui| {
        ui.label(egui::RichText::new(HELP).color(theme::weak_text_colour(ui)));
    });
    egui::CollapsingHeader::new("Data").default_open(true).show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            ui.radio_value(&mut settings.source, SourceKind::Random, "random")
                .on_hover_text("Points uniform on the sphere, random ±1 targets");
            ui.radio_value(&mut settings.source, SourceKind::Clustered, "clusters")
                .on_hover_text("Points around random centres; targets +1 for even clusters, −1 for odd ones");
            ui.radio_value(&mut settings.source, SourceKind::Digits, "digits")
                .on_hover_text("The built-in 8×8 digits, centred and scaled onto the sphere in 64 dimensions; +1 for 0–4, −1 for 5–9");
            ui.add_enabled_ui(settings.csv.is_some(), |ui| {
                ui.radio_value(&mut settings.source, SourceKind::Csv, "CSV file");
            });
        });
        match settings.source {
            SourceKind::Random | SourceKind::Clustered => {
                ui.add(egui::Slider::new(&mut settings.n, 2..=APP_MAX_POINTS).logarithmic(true).text("points n"));
                ui.add(egui::Slider::new(&mut settings.d, 1..=1000).logarithmic(true).text("dimension d"));
                if settings.source == SourceKind::Clustered {
                    let max = settings.n.max(1);
                    ui.add(egui::Slider::new(&mut settings.clusters, 1..=max.min(100)).text("clusters"));
                    ui.add(egui::Slider::new(&mut settings.spread_deg, 0.0..=90.0).text("spread (°)"))
                        .on_hover_text("Angle between each point and its cluster's centre: small spreads make near-duplicate points and a tiny λ_min");
                }
            }
            SourceKind::Digits => {
                ui.add(egui::Slider::new(&mut settings.digits, 10..=DIGITS).logarithmic(true).text("digits"));
            }
            SourceKind::Csv => {}
        }
        ui.horizontal(|ui| {
            if ui
                .button("Open CSV…")
                .on_hover_text("One point per row, comma-separated; rows are scaled to unit length (or drop a .csv on the window)")
                .clicked()
            {
                commands.push(NtkCommand::Pick(NtkFile::OpenPoints));
            }
            if let Some(path) = &settings.csv {
                let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
                ui.label(egui::RichText::new(name).color(theme::weak_text_colour(ui))).on_hover_text(path.display().to_string());
            }
        });
        if settings.source == SourceKind::Csv {
            ui.label(egui::RichText::new("Rows are scaled to unit length; targets are random ±1.").color(theme::weak_text_colour(ui)));
        }
        if let Some(data) = &state.results.data {
            ui.label(
                egui::RichText::new(format!("{} points in {} dimensions", data.points.n, data.points.d))
                    .color(theme::weak_text_colour(ui)),
            );
        }
    });
    egui::CollapsingHeader::new("Training").default_open(true).show(ui, |ui| {
        ui.add(egui::Slider::new(&mut settings.steps, 10..=20_000).logarithmic(true).text("GD steps"))
            .on_hover_text("Full-batch gradient descent on ½‖f − y‖², weights and biases trained");
        ui.add(egui::Slider::new(&mut settings.step_scale, 0.05..=1.9).text("step × λ_max")).on_hover_text(
            "η = this / λ_max of the network's Gram matrix at initialization (below 2 is stable in the kernel regime)",
        );
        ui.checkbox(&mut settings.compare_dense, "compare with the dense net")
            .on_hover_text("Also train the network with B = 0 and nothing pruned on the same data");
        ui.horizontal(|ui| {
            let label = ui.label("seed");
            ui.add(egui::DragValue::new(&mut settings.seed).range(0..=1_000_000))
                .labelled_by(label.id)
                .on_hover_text("Draws the points, the weights and the mask");
        });
    });
    ui.add_space(theme::SPACING);
    ui.horizontal(|ui| {
        if ui.button("Reset").on_hover_text("Every setting of this lab back to its default").clicked() {
            commands.push(NtkCommand::ResetSettings);
        }
        if ui
            .add_enabled(state.results.spectrum.is_some(), egui::Button::new("Export all…"))
            .on_hover_text("Every plot's data as CSV and every plot as PNG, into a folder")
            .clicked()
        {
            commands.push(NtkCommand::Pick(NtkFile::Export));
        }
    });
}

fn log_points(points: impl Iterator<Item = [f64; 2]>) -> PlotPoints<'static> {
    points.filter(|p| p[1] > 0.0 && p[1].is_finite()).map(|[x, y]| [x, y.log10()]).collect()
}

/// The training plot's key: colours name the nets, dashes the quantities.
const LOSS: &str = "loss";
const LINEARIZED: &str = "linearized (kernel frozen)";
const BOUND: &str = "exp(−ηλ_min t)·L(0)";

fn training_key(neutral: egui::Color32, dense: bool) -> Vec<Series> {
    let mut key = vec![Series::new("this net", CHOSEN).swatch()];
    if dense {
        key.push(Series::new("dense", DENSE).swatch());
    }
    key.push(Series::new(LOSS, neutral));
    key.push(Series::new(LINEARIZED, neutral).dash(Dash::Dotted));
    key.push(Series::new(BOUND, neutral).dash(Dash::Dashed));
    key
}

fn training_lines(plot: &mut egui_plot::PlotUi<'_>, run: &TrainRun, net: &Series, key: &Key, linear: bool) {
    if !key.shows(&net.name) {
        return;
    }
    let series = |quantity: &str, dash: Dash| Series::new(format!("{} {quantity}", net.name), net.colour).dash(dash);
    #[allow(clippy::cast_precision_loss)]
    let loss = log_points(run.points.iter().map(|p| [p.step as f64, p.loss]));
    #[allow(clippy::cast_precision_loss)]
    let bound = log_points(run.points.iter().map(|p| [p.step as f64, p.bound]));
    if key.shows(LOSS) {
        plot.line(series(LOSS, Dash::Solid).line(loss));
    }
    if linear && key.shows(LINEARIZED) {
        let floor = run.points.first().map_or(0.0, |p| p.loss * LINEAR_FLOOR);
        #[allow(clippy::cast_precision_loss)]
        let linearized = log_points(run.points.iter().filter(|p| p.linear > floor).map(|p| [p.step as f64, p.linear]));
        plot.line(series(LINEARIZED, Dash::Dotted).line(linearized));
    }
    if key.shows(BOUND) {
        plot.line(series(BOUND, Dash::Dashed).line(bound));
    }
}

const CHOSEN: egui::Color32 = egui::Color32::from_rgb(31, 119, 180);
const DENSE: egui::Color32 = egui::Color32::from_rgb(214, 39, 40);
const LIMIT: egui::Color32 = egui::Color32::from_rgb(150, 150, 150);
const WIDTH_COLOURS: [egui::Color32; 3] = [
    egui::Color32::from_rgb(255, 127, 14),
    egui::Color32::from_rgb(44, 160, 44),
    egui::Color32::from_rgb(148, 103, 189),
];

/// The central part: the live sliders and the six plots.
pub fn ntk_main_ui(
    ui: &mut egui::Ui,
    settings: &mut NtkSettings,
    state: &NtkPanelState<'_>,
    commands: &mut Vec<NtkCommand>,
) {
    let marker_colour = theme::weak_text_colour(ui);
    ui.horizontal_wrapped(|ui| {
        let label = ui.strong("bias B");
        ui.add_sized(
            [260.0, 24.0],
            egui::Slider::new(&mut settings.bias, 0.0..=MAX_BIAS).step_by(0.05).fixed_decimals(2),
        )
        .labelled_by(label.id)
        .on_hover_text(
            "Every hidden bias at initialization; a neuron fires when ⟨w, x⟩ > B (a fraction 1 − Φ(B) of the time)",
        );
        let label = ui.strong("width m");
        ui.add(egui::Slider::new(&mut settings.width, 16..=16_384).logarithmic(true))
            .labelled_by(label.id)
            .on_hover_text("Hidden neurons");
        let label = ui.strong("pruned p");
        ui.add(egui::Slider::new(&mut settings.prune, 0.0..=MAX_PRUNE).step_by(0.01).fixed_decimals(2))
            .labelled_by(label.id)
            .on_hover_text("Fraction of hidden weights removed at random (the mask stays fixed while training)");
        if state.running {
            crate::ui::widgets::busy_ui(ui);
        }
        if let Some(progress) = state.progress {
            ui.add(egui::ProgressBar::new(progress).desired_width(100.0).show_percentage());
        }
        if state.cancelled
            && ui
                .button("▶ Resume")
                .on_hover_text("The analysis was cancelled: finish it (what it had finished is kept)")
                .clicked()
        {
            commands.push(NtkCommand::Resume);
        }
    });
    let r = state.results;
    match (&r.spectrum, state.problem) {
        (_, Some(problem)) if !state.running => {
            ui.colored_label(theme::error_colour(ui), problem);
        }
        (Some(s), _) => {
            let stale = if state.current { "" } else { " (updating…)" };
            let limit_name = if r.config.prune > 0.0 { "dense limit" } else { "limit" };
            ui.label(format!(
                "B = {:.2}, m = {}, p = {:.2}: λ_min {:.3e} ({limit_name} {:.3e}) · λ_max {:.3e} · active {:.1}% (1 − Φ(B) = {:.1}%) · {:.0} ms{stale}",
                r.config.bias,
                r.config.width,
                r.config.prune,
                s.lambda_min(),
                s.limit_lambda_min(),
                s.lambda_max(),
                100.0 * s.active_fraction,
                100.0 * crate::compute::ntk::kernel::normal_cdf(-r.config.bias),
                1000.0 * s.seconds,
            ));
        }
        (None, _) => {
            ui.label("Computing the kernel…");
        }
    }
    ui.separator();
    let spacing = theme::SPACING;
    let width = ((ui.available_width() - 2.0 * spacing) / 3.0).max(120.0);
    let height = ((ui.available_height() - 3.0 * ui.spacing().interact_size.y) / 2.0).max(100.0);
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.set_width(width);
            ui.label("Gram matrix K_m(x_i, x_j)");
            if let Some(texture) = state.gram_texture {
                let side = width.min(height);
                ui.add(egui::Image::new((texture.id(), egui::vec2(side, side))))
                    .on_hover_text("Dark 0, bright the largest entry; points in data order");
            }
        });
        ui.vertical(|ui| {
            ui.label("Eigenvalues, largest first (log₁₀)");
            spectrum_plot(ui, r, width, height);
        });
        ui.vertical(|ui| {
            ui.label("Training loss (log₁₀) and the kernel's predictions");
            let dense = r.training.as_ref().is_some_and(|t| t.dense.is_some());
            let entries = training_key(marker_colour, dense);
            let key = key_ui(ui, "ntk training", &entries);
            crate::ui::plot_key::new_plot("ntk training")
                .width(width)
                .height(key.rest(height))
                .x_axis_label("step")
                .log10_y()
                .show(ui, |plot| {
                    if let Some(training) = &r.training {
                        training_lines(plot, &training.chosen, &entries[0], &key, true);
                        if let Some(dense) = &training.dense {
                            training_lines(plot, dense, &entries[1], &key, false);
                        }
                    }
                });
        });
    });
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label("Active fraction against B");
            let entries = [
                Series::new("measured", CHOSEN),
                Series::new("1 − Φ(B)", LIMIT).dash(Dash::Dashed),
                Series::new("B", marker_colour),
            ];
            let key = key_ui(ui, "ntk active", &entries);
            crate::ui::plot_key::new_plot("ntk active")
                .width(width)
                .height(key.rest(height))
                .x_axis_label("bias B")
                .include_y(0.0)
                .include_y(0.55)
                .show(ui, |plot| {
                    if let Some(s) = &r.spectrum {
                        let measured: PlotPoints<'static> =
                            s.active_curve.iter().map(|p| [p.bias, p.measured]).collect();
                        let theory: PlotPoints<'static> = s.active_curve.iter().map(|p| [p.bias, p.theory]).collect();
                        for (series, points) in entries.iter().zip([measured, theory]) {
                            if key.shows(&series.name) {
                                plot.line(series.line(points));
                            }
                        }
                    }
                    if key.shows("B") {
                        plot.vline(VLine::new("B", settings.bias).color(marker_colour));
                    }
                });
        });
        ui.vertical(|ui| {
            ui.label("λ_min against B (log₁₀)");
            lambda_plot(ui, r, (settings.bias, marker_colour), width, height);
        });
        ui.vertical(|ui| {
            ui.label(format!("‖K_m − K‖_F / ‖K‖_F against m at B = {:.2} (log–log)", r.config.bias));
            distance_plot(ui, r, width, height);
        });
    });
}

fn spectrum_plot(ui: &mut egui::Ui, r: &NtkResults, width: f32, height: f32) {
    let limit_name = if r.config.prune > 0.0 { "limit m → ∞ (unpruned)" } else { "limit m → ∞" };
    let entries = [Series::new("empirical", CHOSEN), Series::new(limit_name, LIMIT).dash(Dash::Dashed)];
    let key = key_ui(ui, "ntk spectrum", &entries);
    crate::ui::plot_key::new_plot("ntk spectrum").width(width).height(key.rest(height)).x_axis_label("rank").log10_y().show(ui, |plot| {
        let Some(s) = &r.spectrum else { return };
        let floor = NUMERICALLY_ZERO * s.lambda_max();
        #[allow(clippy::cast_precision_loss)]
        let ranked = |values: &[f64]| {
            log_points(values.iter().rev().enumerate().filter(|(_, v)| **v > floor).map(|(k, &v)| [(k + 1) as f64, v]))
        };
        for (series, values) in entries.iter().zip([&s.eigenvalues, &s.limit_eigenvalues]) {
            if key.shows(&series.name) {
                plot.line(series.line(ranked(values)));
            }
        }
    });
}

fn lambda_plot(ui: &mut egui::Ui, r: &NtkResults, (bias, marker): (f64, egui::Color32), width: f32, height: f32) {
    const MARKERS: [MarkerShape; 3] = [MarkerShape::Circle, MarkerShape::Square, MarkerShape::Diamond];
    let mut widths: Vec<Option<usize>> = Vec::new();
    for p in r.lambda.iter().flat_map(|points| points.iter()) {
        if !widths.contains(&p.width) {
            widths.push(p.width);
        }
    }
    let entries: Vec<Series> = widths
        .iter()
        .enumerate()
        .map(|(k, w)| match w {
            Some(m) => Series::new(format!("m = {m}"), WIDTH_COLOURS[k % WIDTH_COLOURS.len()])
                .marker(MARKERS[k % MARKERS.len()]),
            None => Series::new("limit", LIMIT).dash(Dash::Dashed),
        })
        .chain([Series::new("B", marker)])
        .collect();
    let key = key_ui(ui, "ntk lambda", &entries);
    crate::ui::plot_key::new_plot("ntk lambda").width(width).height(key.rest(height)).x_axis_label("bias B").log10_y().show(ui, |plot| {
        if let Some(points) = &r.lambda {
            for (w, series) in widths.iter().zip(&entries) {
                if !key.shows(&series.name) {
                    continue;
                }
                let points = || {
                    log_points(
                        points
                            .iter()
                            .filter(|p| p.width == *w && p.lambda_min > NUMERICALLY_ZERO * p.lambda_max)
                            .map(|p| [p.bias, p.lambda_min]),
                    )
                };
                plot.line(series.line(points()));
                if series.marker.is_some() {
                    plot.points(series.points(points()));
                }
            }
        }
        if key.shows("B") {
            plot.vline(VLine::new("B", bias).color(marker));
        }
    });
}

fn distance_plot(ui: &mut egui::Ui, r: &NtkResults, width: f32, height: f32) {
    let entries =
        [Series::new("measured", CHOSEN).marker(MarkerShape::Circle), Series::new("∝ 1/√m", LIMIT).dash(Dash::Dashed)];
    let key = key_ui(ui, "ntk distance", &entries);
    crate::ui::plot_key::new_plot("ntk distance").width(width).height(key.rest(height)).x_axis_label("width m").log10_x().log10_y().show(
        ui,
        |plot| {
            let Some(points) = &r.distance else { return };
            #[allow(clippy::cast_precision_loss)]
            let measured = || log_points(points.iter().map(|p| [(p.width as f64).log10(), p.relative_frobenius]));
            if key.shows(&entries[0].name) {
                plot.line(entries[0].line(measured()));
                plot.points(entries[0].points(measured()));
            }
            if let Some(first) = points.first()
                && key.shows(&entries[1].name)
            {
                #[allow(clippy::cast_precision_loss)]
                let guide: PlotPoints<'static> = points
                    .iter()
                    .map(|p| {
                        let m = p.width as f64;
                        [m.log10(), (first.relative_frobenius * (first.width as f64 / m).sqrt()).log10()]
                    })
                    .collect();
                plot.line(entries[1].line(guide));
            }
        },
    );
}
