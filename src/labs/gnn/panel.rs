//! The GNN tickets lab: live controls for the method, the sparsity and the depth; the graph view
//! (nodes coloured by class, prediction or correctness; zoom, pan, hover); accuracy against
//! sparsity for the three methods, training, the masks, depth and over-smoothing, and the
//! held-out classes.

use std::path::PathBuf;

use eframe::egui;
use egui_plot::{Bar, BarChart, FilledArea, HLine, PlotPoints, VLine};
use serde::{Deserialize, Serialize};

use super::{GnnCommand, GnnFile, ViewFrame};
use crate::compute::gnn::csbm::CsbmSpec;
use crate::compute::gnn::files::{OOD_BINS, histogram, histogram_range, method_name};
use crate::compute::gnn::live::{DataSource, GnnResults, LabConfig};
use crate::compute::gnn::model::{Arch, GnnConfig, Method};
use crate::compute::gnn::study::cell_means;
use crate::ui::plot_key::{Dash, Series, key_ui};
use crate::ui::theme;

/// Where the lab's graph comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataKind {
    #[default]
    Cora,
    Csbm,
    Folder,
}

/// What the graph view's colours say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColourBy {
    #[default]
    Class,
    Prediction,
    Correct,
}

/// Everything the user sets in the GNN lab; persisted between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GnnSettings {
    pub source: DataKind,
    pub folder: Option<PathBuf>,
    pub csbm: CsbmSpec,
    pub arch: Arch,
    pub heads: usize,
    pub method: Method,
    pub sparsity: f64,
    pub layers: usize,
    pub hidden: usize,
    pub epochs: usize,
    pub lr: f64,
    pub seed: u64,
    pub sweep: bool,
    pub sweep_seeds: u64,
    pub depth: bool,
    pub ood: bool,
    pub colour_by: ColourBy,
    /// The layer whose mask is pictured.
    pub mask_layer: usize,
}

impl Default for GnnSettings {
    fn default() -> Self {
        let net = GnnConfig::default();
        let lab = LabConfig::default();
        Self {
            source: DataKind::Cora,
            folder: None,
            csbm: CsbmSpec::default(),
            arch: net.arch,
            heads: net.heads,
            method: net.method,
            sparsity: net.sparsity,
            layers: net.layers,
            hidden: net.hidden,
            epochs: net.epochs,
            lr: net.lr,
            seed: net.seed,
            sweep: lab.sweep,
            sweep_seeds: lab.sweep_seeds,
            depth: lab.depth,
            ood: lab.ood,
            colour_by: ColourBy::Class,
            mask_layer: 0,
        }
    }
}

/// Largest sparsity the slider offers.
pub const MAX_SPARSITY: f64 = 0.99;
/// Most layers the slider offers.
pub const MAX_LAYERS: usize = 32;

impl GnnSettings {
    /// The study these settings describe.
    pub fn config(&self) -> LabConfig {
        let data = match (self.source, &self.folder) {
            (DataKind::Csbm, _) => DataSource::Csbm(self.csbm),
            (DataKind::Folder, Some(dir)) => DataSource::Folder(dir.clone()),
            (DataKind::Cora | DataKind::Folder, _) => DataSource::Cora,
        };
        let dense = self.method == Method::Dense;
        LabConfig {
            data,
            net: GnnConfig {
                arch: self.arch,
                heads: self.heads,
                method: self.method,
                sparsity: self.sparsity,
                layers: self.layers,
                hidden: self.hidden,
                epochs: self.epochs,
                lr: self.lr,
                // Dense training with the usual GCN weight decay (as the sweeps train it).
                weight_decay: if dense { 5e-4 } else { 0.0 },
                seed: self.seed,
                ..GnnConfig::default()
            },
            sweep: self.sweep,
            sweep_seeds: self.sweep_seeds,
            depth: self.depth,
            ood: self.ood,
        }
    }

    /// Brings values from an old or edited settings file back into the ranges the controls offer.
    pub fn sanitize(&mut self) {
        let defaults = Self::default();
        let clamp_f = |v: f64, lo: f64, hi: f64, default: f64| if v.is_finite() { v.clamp(lo, hi) } else { default };
        self.heads = self.heads.clamp(1, 8);
        self.sparsity = clamp_f(self.sparsity, 0.0, MAX_SPARSITY, defaults.sparsity);
        self.layers = self.layers.clamp(1, MAX_LAYERS);
        self.hidden = self.hidden.clamp(8, 512);
        self.epochs = self.epochs.clamp(10, 2000);
        self.lr = clamp_f(self.lr, 1e-4, 0.1, defaults.lr);
        self.sweep_seeds = self.sweep_seeds.clamp(1, 5);
        let c = &mut self.csbm;
        c.nodes = c.nodes.clamp(100, 20_000);
        c.classes = c.classes.clamp(2, 10);
        c.degree = clamp_f(c.degree, 0.5, 20.0, 4.0);
        c.homophily = clamp_f(c.homophily, 0.0, 1.0, 0.8);
        c.signal = clamp_f(c.signal, 0.0, 1.0, 0.3);
        if self.source == DataKind::Folder && self.folder.is_none() {
            self.source = DataKind::Cora;
        }
    }
}

/// What the lab shows, read-only.
pub struct GnnPanelState<'a> {
    pub running: bool,
    pub progress: Option<f32>,
    pub results: &'a GnnResults,
    /// The results shown belong to the current settings.
    pub current: bool,
    pub cancelled: bool,
    pub problem: Option<&'a str>,
    pub mask_texture: Option<&'a egui::TextureHandle>,
}

const HELP: &str = "Untrained GNN tickets: the weights are drawn once (Kaiming uniform) and never trained; a score per \
weight is, and the network uses only the weights whose score passes one threshold shared by all layers, so that a \
share s of them (the sparsity) is masked out. The scores learn through the mask as if it were not there \
(straight-through), and the sparsity rises from 0 to s over the first half of training.\n\n\
Edge-popup keeps the top scores of each layer separately, at s from the start; dense trains the weights themselves.\n\n\
GCN layers are Â·H·W with Â = D^-½(A+I)D^-½; GIN layers (I + D⁻¹A)·H·W; GAT layers attend over each node's \
neighbourhood. Deep GCNs over-smooth: every node's representation tends to the same direction, which the mean \
average cosine distance (MAD) between nodes measures.";

/// The sidebar part.
pub fn gnn_controls_ui(
    ui: &mut egui::Ui,
    settings: &mut GnnSettings,
    state: &GnnPanelState<'_>,
    commands: &mut Vec<GnnCommand>,
) {
    let weak = theme::weak_text_colour(ui);
    egui::CollapsingHeader::new("About this lab").default_open(false).show(ui, |ui| {
        ui.label(egui::RichText::new(HELP).color(weak));
    });
    egui::CollapsingHeader::new("Data").default_open(true).show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            ui.radio_value(&mut settings.source, DataKind::Cora, "Cora")
                .on_hover_text("The Cora citation graph (2708 papers, 7 topics), built in");
            ui.radio_value(&mut settings.source, DataKind::Csbm, "block model")
                .on_hover_text("A contextual stochastic block model: classes, homophily and feature signal set by hand");
            ui.add_enabled_ui(settings.folder.is_some(), |ui| {
                ui.radio_value(&mut settings.source, DataKind::Folder, "folder");
            });
        });
        if settings.source == DataKind::Csbm {
            let c = &mut settings.csbm;
            ui.add(egui::Slider::new(&mut c.nodes, 100..=20_000).logarithmic(true).text("nodes"));
            ui.add(egui::Slider::new(&mut c.classes, 2..=10).text("classes"));
            ui.add(egui::Slider::new(&mut c.degree, 0.5..=20.0).text("mean degree"));
            ui.add(egui::Slider::new(&mut c.homophily, 0.0..=1.0).text("homophily"))
                .on_hover_text("Expected share of edges joining nodes of the same class");
            ui.add(egui::Slider::new(&mut c.signal, 0.0..=1.0).text("feature signal"))
                .on_hover_text("Share of each node's words drawn from its class's block of the vocabulary");
        }
        ui.horizontal(|ui| {
            if ui
                .button("Open folder…")
                .on_hover_text(
                    "A Planetoid raw folder (ind.<name>.x, …, as PyTorch Geometric keeps them) or a folder with edges.csv \
                     and labels.csv (features.csv and split.csv optional); or drop the folder on the window",
                )
                .clicked()
            {
                commands.push(GnnCommand::Pick(GnnFile::OpenFolder));
            }
            if let Some(path) = &settings.folder {
                let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
                ui.label(egui::RichText::new(name).color(weak)).on_hover_text(path.display().to_string());
            }
        });
        if let Some(g) = &state.results.graph {
            let homophily = g.edge_homophily().map_or_else(|| "–".into(), |h| format!("{h:.2}"));
            ui.label(
                egui::RichText::new(format!(
                    "{}: {} nodes, {} edges, {} features, {} classes; homophily {homophily}; split {}/{}/{}",
                    g.name,
                    g.num_nodes,
                    g.edges.len() / 2,
                    g.features.cols,
                    g.num_classes,
                    g.split.train.len(),
                    g.split.val.len(),
                    g.split.test.len()
                ))
                .color(weak),
            );
        }
    });
    egui::CollapsingHeader::new("Network").default_open(true).show(ui, |ui| {
        ui.horizontal(|ui| {
            for arch in [Arch::Gcn, Arch::Gin, Arch::Gat] {
                ui.radio_value(&mut settings.arch, arch, arch.name());
            }
        });
        if settings.arch == Arch::Gat {
            ui.add(egui::Slider::new(&mut settings.heads, 1..=8).text("heads"))
                .on_hover_text("Attention heads per layer; hidden layers are heads × hidden wide");
        }
        ui.add(egui::Slider::new(&mut settings.hidden, 8..=512).logarithmic(true).text("hidden"));
        ui.add(egui::Slider::new(&mut settings.epochs, 10..=2000).logarithmic(true).text("epochs"))
            .on_hover_text("Full-batch epochs; the repository trains 400");
        ui.add(egui::Slider::new(&mut settings.lr, 1e-4..=0.1).logarithmic(true).text("learning rate"))
            .on_hover_text("AdamW on the scores (or the weights, dense)");
        ui.horizontal(|ui| {
            let label = ui.label("seed");
            ui.add(egui::DragValue::new(&mut settings.seed).range(0..=1_000_000))
                .labelled_by(label.id)
                .on_hover_text("Draws the weights and the scores");
        });
    });
    egui::CollapsingHeader::new("Studies").default_open(true).show(ui, |ui| {
        ui.checkbox(&mut settings.sweep, "accuracy against sparsity")
            .on_hover_text("UGT and edge-popup at 7 sparsities and the dense network, each with several seeds; moving the sparsity or the method keeps it");
        ui.add_enabled(settings.sweep, egui::Slider::new(&mut settings.sweep_seeds, 1..=5).text("seeds"));
        ui.checkbox(&mut settings.depth, "depth and over-smoothing")
            .on_hover_text("UGT and dense at 2, 4, 8, 16 and 32 layers, with each layer's MAD (slow: deep networks of this width take minutes)");
        ui.checkbox(&mut settings.ood, "held-out classes")
            .on_hover_text("Train with 40% of the classes held out, then tell their test nodes from the seen ones by the top softmax");
    });
    ui.add_space(theme::SPACING);
    ui.horizontal(|ui| {
        if ui.button("Reset").on_hover_text("Every setting of this lab back to its default").clicked() {
            commands.push(GnnCommand::ResetSettings);
        }
        if ui
            .add_enabled(state.results.run_done, egui::Button::new("Export all…"))
            .on_hover_text("The run's metrics, history and predictions, and every study's CSV and chart, into a folder")
            .clicked()
        {
            commands.push(GnnCommand::Pick(GnnFile::Export));
        }
    });
}

/// Colours of classes (and of methods).
const PALETTE: [egui::Color32; 10] = [
    egui::Color32::from_rgb(31, 119, 180),
    egui::Color32::from_rgb(255, 127, 14),
    egui::Color32::from_rgb(44, 160, 44),
    egui::Color32::from_rgb(214, 39, 40),
    egui::Color32::from_rgb(148, 103, 189),
    egui::Color32::from_rgb(140, 86, 75),
    egui::Color32::from_rgb(227, 119, 194),
    egui::Color32::from_rgb(127, 127, 127),
    egui::Color32::from_rgb(188, 189, 34),
    egui::Color32::from_rgb(23, 190, 207),
];

fn method_colour(method: Method) -> egui::Color32 {
    match method {
        Method::Ugt => PALETTE[0],
        Method::EdgePopup => PALETTE[3],
        Method::Dense => PALETTE[2],
    }
}

/// The central part: the live controls, the graph view and the plots.
pub fn gnn_main_ui(ui: &mut egui::Ui, settings: &mut GnnSettings, state: &GnnPanelState<'_>, commands: &mut Vec<GnnCommand>) {
    ui.horizontal_wrapped(|ui| {
        for method in [Method::Ugt, Method::EdgePopup, Method::Dense] {
            ui.radio_value(&mut settings.method, method, method_name(method));
        }
        let label = ui.strong("sparsity");
        ui.add_enabled_ui(settings.method != Method::Dense, |ui| {
            ui.add_sized([220.0, 24.0], egui::Slider::new(&mut settings.sparsity, 0.0..=MAX_SPARSITY).step_by(0.01).fixed_decimals(2))
                .labelled_by(label.id)
                .on_hover_text("Share of the weights masked out (UGT and edge-popup)");
        });
        let label = ui.strong("layers");
        ui.add(egui::Slider::new(&mut settings.layers, 1..=MAX_LAYERS).logarithmic(true))
            .labelled_by(label.id)
            .on_hover_text("Graph layers; deep GCNs over-smooth");
        if state.running {
            crate::ui::widgets::busy_ui(ui);
        }
        if let Some(progress) = state.progress {
            ui.add(egui::ProgressBar::new(progress).desired_width(100.0).show_percentage());
        }
        if state.cancelled
            && ui.button("▶ Resume").on_hover_text("The study was cancelled: finish it (what it had finished is kept)").clicked()
        {
            commands.push(GnnCommand::Resume);
        }
    });
    let r = state.results;
    match (r.run.as_ref().filter(|_| r.run_done), state.problem) {
        (_, Some(problem)) if !state.running => {
            ui.colored_label(theme::error_colour(ui), problem);
        }
        (Some(run), _) => {
            let stale = if state.current { "" } else { " (updating…)" };
            let s = &run.summary;
            let sparsity = if r.config.net.method == Method::Dense {
                "dense".to_string()
            } else {
                format!("sparsity {:.2}", s.sparsity_reached)
            };
            ui.label(format!(
                "{} {} layers, {} {sparsity}: test accuracy {:.1}% (best validation {:.1}% after {} epochs) · {:.1} s{stale}",
                r.config.net.arch.name(),
                r.config.net.layers,
                method_name(r.config.net.method),
                100.0 * s.test_acc,
                100.0 * s.val_acc,
                s.best_epoch,
                s.seconds
            ));
        }
        (None, _) => {
            ui.label("Training…");
        }
    }
    ui.separator();
    let spacing = theme::SPACING;
    let height = ui.available_height() - ui.spacing().interact_size.y;
    let graph_side = (ui.available_width() * 0.42).min(height).max(160.0);
    let plot_width = ((ui.available_width() - graph_side - 3.0 * spacing) / 2.0).max(120.0);
    let plot_height = ((height - 4.0 * ui.spacing().interact_size.y) / 3.0).max(80.0);
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.horizontal(|ui| {
                ui.label("Colour by");
                ui.radio_value(&mut settings.colour_by, ColourBy::Class, "class");
                ui.radio_value(&mut settings.colour_by, ColourBy::Prediction, "prediction");
                ui.radio_value(&mut settings.colour_by, ColourBy::Correct, "right / wrong");
            });
            graph_view_ui(ui, r, settings.colour_by, graph_side - ui.spacing().interact_size.y);
        });
        ui.vertical(|ui| {
            ui.set_width(plot_width);
            sweep_plot(ui, r, settings, plot_width, plot_height);
            masks_ui(ui, r, settings, state.mask_texture, plot_width, plot_height);
            depth_plot(ui, r, plot_width, plot_height);
        });
        ui.vertical(|ui| {
            ui.set_width(plot_width);
            training_plot(ui, r, plot_width, plot_height);
            density_plot(ui, r, plot_width, plot_height);
            ood_plot(ui, r, plot_width, plot_height);
        });
    });
}

/// The graph view: nodes at their layout's positions, edges as faint lines; drag to pan, scroll
/// (or pinch) to zoom, double-click to frame everything, hover a node for its figures.
fn graph_view_ui(ui: &mut egui::Ui, r: &GnnResults, colour_by: ColourBy, side: f32) {
    let side = side.max(120.0);
    let (rect, response) = ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::click_and_drag());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
    let (Some(graph), Some(layout)) = (&r.graph, &r.layout) else {
        let text = if r.graph.is_some() { "Laying out the graph…" } else { "Loading the graph…" };
        painter.text(rect.center(), egui::Align2::CENTER_CENTER, text, egui::FontId::proportional(14.0), theme::weak_text_colour(ui));
        return;
    };
    let id = response.id.with("frame");
    let mut frame: ViewFrame = ui.data(|d| d.get_temp(id)).unwrap_or_default();
    if response.dragged() {
        frame.pan += response.drag_delta() / side;
    }
    if response.double_clicked() {
        frame = ViewFrame::default();
    }
    if response.hovered() {
        let (scroll, zoom) = ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()));
        let factor = zoom * (scroll / 400.0).exp();
        if (factor - 1.0).abs() > 1e-4
            && let Some(pointer) = response.hover_pos()
        {
            // Zoom about the pointer: the point under it stays put.
            let new_zoom = (frame.zoom * factor).clamp(0.5, 60.0);
            let at = (pointer - rect.center()) / side;
            frame.pan = at - (at - frame.pan) * (new_zoom / frame.zoom);
            frame.zoom = new_zoom;
        }
    }
    ui.data_mut(|d| d.insert_temp(id, frame));
    let to_screen = |p: [f32; 2]| {
        rect.center() + (egui::vec2(p[0] - 0.5, p[1] - 0.5) * frame.zoom + frame.pan) * side
    };
    let screen: Vec<egui::Pos2> = layout.positions.iter().map(|&p| to_screen(p)).collect();
    let shown = screen.len();
    let edge_colour = theme::weak_text_colour(ui).gamma_multiply(0.25);
    for &(a, b) in &graph.edges {
        if a < b && (b as usize) < shown {
            let (p, q) = (screen[a as usize], screen[b as usize]);
            if rect.contains(p) || rect.contains(q) {
                painter.line_segment([p, q], egui::Stroke::new(0.5, edge_colour));
            }
        }
    }
    let run = r.run.as_ref().filter(|_| r.run_done);
    let prediction = |n: usize| run.and_then(|run| run.predictions.get(n).copied());
    let unknown = theme::weak_text_colour(ui);
    let colour = |n: usize| -> egui::Color32 {
        let class_colour = |c: u32| PALETTE[c as usize % PALETTE.len()];
        match colour_by {
            ColourBy::Class => graph.labels[n].map_or(unknown, class_colour),
            ColourBy::Prediction => prediction(n).map_or(unknown, class_colour),
            ColourBy::Correct => match (graph.labels[n], prediction(n)) {
                (Some(l), Some(p)) if l == p => egui::Color32::from_rgb(44, 160, 44),
                (Some(_), Some(_)) => egui::Color32::from_rgb(214, 39, 40),
                _ => unknown,
            },
        }
    };
    let radius = (1.6 * frame.zoom.sqrt()).clamp(1.2, 6.0);
    let mut training = vec![false; shown];
    for &n in graph.split.train.iter().filter(|&&n| n < shown) {
        training[n] = true;
    }
    for (n, &p) in screen.iter().enumerate() {
        if rect.contains(p) {
            painter.circle_filled(p, radius, colour(n));
            if training[n] {
                painter.circle_stroke(p, radius + 1.5, egui::Stroke::new(1.0, ui.visuals().text_color()));
            }
        }
    }
    if let Some(pointer) = response.hover_pos() {
        let nearest = screen
            .iter()
            .enumerate()
            .map(|(n, p)| (n, p.distance_sq(pointer)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|&(_, d)| d < 64.0);
        if let Some((n, _)) = nearest {
            let degree = graph.edges.partition_point(|e| (e.0 as usize) <= n) - graph.edges.partition_point(|e| (e.0 as usize) < n);
            let label = graph.labels[n].map_or_else(|| "none".into(), |l| l.to_string());
            let predicted = prediction(n).map_or_else(|| "–".into(), |p| p.to_string());
            let split = if training[n] {
                "training"
            } else if graph.split.val.binary_search(&n).is_ok() {
                "validation"
            } else if graph.split.test.binary_search(&n).is_ok() {
                "test"
            } else {
                "unused"
            };
            painter.circle_stroke(screen[n], radius + 3.0, egui::Stroke::new(1.5, ui.visuals().strong_text_color()));
            response.on_hover_text(format!("node {n} ({split})\nclass {label}, predicted {predicted}\ndegree {degree}"));
        }
    }
}

/// In place of a study's plot while the study is off: what turns it on.
fn off_hint(ui: &mut egui::Ui, title: &str, hint: &str, width: f32, height: f32) {
    ui.label(title);
    let (rect, _) = ui.allocate_exact_size(egui::vec2(width, height), egui::Sense::hover());
    ui.painter().rect_stroke(rect, 4.0, egui::Stroke::new(1.0, theme::weak_text_colour(ui).gamma_multiply(0.4)), egui::StrokeKind::Inside);
    let galley =
        ui.painter().layout(hint.to_owned(), egui::FontId::proportional(13.0), theme::weak_text_colour(ui), rect.width() - 24.0);
    let at = rect.center() - galley.size() / 2.0;
    ui.painter().galley(at, galley, theme::weak_text_colour(ui));
}

fn sweep_plot(ui: &mut egui::Ui, r: &GnnResults, settings: &GnnSettings, width: f32, height: f32) {
    if !r.config.sweep {
        off_hint(ui, "Test accuracy against sparsity", "Turn on “accuracy against sparsity” under Studies", width, height);
        return;
    }
    let seeds = match r.config.sweep_seeds {
        1 => "1 seed".to_string(),
        n => format!("mean ± std over {n} seeds"),
    };
    ui.label(format!("Test accuracy against sparsity ({seeds})"));
    let marker = theme::weak_text_colour(ui);
    let entries = [
        Series::new(method_name(Method::Ugt), method_colour(Method::Ugt)).marker(egui_plot::MarkerShape::Circle),
        Series::new(method_name(Method::EdgePopup), method_colour(Method::EdgePopup)).marker(egui_plot::MarkerShape::Square),
        Series::new("dense", method_colour(Method::Dense)).dash(Dash::Dashed),
        Series::new("this sparsity", marker).dash(Dash::Dotted),
    ];
    let key = key_ui(ui, "gnn sweep", &entries);
    crate::ui::plot_key::new_plot("gnn sweep")
        .width(width)
        .height(key.rest(height))
        .x_axis_label("sparsity")
        .include_y(0.0)
        .include_y(1.0)
        .include_x(0.0)
        .include_x(1.0)
        .show(ui, |plot| {
            if let Some(rows) = &r.sweep {
                let cells = cell_means(rows, |row| row.test_acc);
                for (method, series) in [Method::Ugt, Method::EdgePopup].into_iter().zip(&entries) {
                    let mine: Vec<_> = cells.iter().filter(|c| c.0 == method).collect();
                    if mine.is_empty() || !key.shows(&series.name) {
                        continue;
                    }
                    let xs: Vec<f64> = mine.iter().map(|c| c.1).collect();
                    let lows: Vec<f64> = mine.iter().map(|c| (c.3 - c.4).clamp(0.0, 1.0)).collect();
                    let highs: Vec<f64> = mine.iter().map(|c| (c.3 + c.4).clamp(0.0, 1.0)).collect();
                    plot.add(
                        FilledArea::new(format!("{} ± std", series.name), &xs, &lows, &highs)
                            .fill_color(series.colour.gamma_multiply(0.25)),
                    );
                    let means = || -> PlotPoints<'static> { mine.iter().map(|c| [c.1, c.3]).collect() };
                    plot.line(series.line(means()));
                    plot.points(series.points(means()));
                }
                if let Some(dense) = cells.iter().find(|c| c.0 == Method::Dense)
                    && key.shows(&entries[2].name)
                {
                    plot.hline(HLine::new("dense", dense.3).color(entries[2].colour).style(Dash::Dashed.line_style()));
                }
            }
            if settings.method != Method::Dense && key.shows(&entries[3].name) {
                plot.vline(VLine::new("this sparsity", settings.sparsity).color(marker).style(Dash::Dotted.line_style()));
            }
        });
}

fn training_plot(ui: &mut egui::Ui, r: &GnnResults, width: f32, height: f32) {
    ui.label("Accuracy during training (at the target mask)");
    let entries = [Series::new("validation", PALETTE[1]), Series::new("test", PALETTE[0])];
    let key = key_ui(ui, "gnn training", &entries);
    crate::ui::plot_key::new_plot("gnn training")
        .width(width)
        .height(key.rest(height))
        .x_axis_label("epoch")
        .include_y(0.0)
        .include_y(1.0)
        .show(ui, |plot| {
            let Some(run) = &r.run else { return };
            #[allow(clippy::cast_precision_loss)]
            let curve = |f: fn(&crate::compute::gnn::model::EpochRecord) -> f64| -> PlotPoints<'static> {
                run.history.iter().map(|e| [e.epoch as f64, f(e)]).collect()
            };
            for (series, f) in entries.iter().zip([
                (|e: &crate::compute::gnn::model::EpochRecord| e.val_acc) as fn(&_) -> f64,
                |e: &crate::compute::gnn::model::EpochRecord| e.test_acc,
            ]) {
                if key.shows(&series.name) {
                    plot.line(series.line(curve(f)));
                }
            }
        });
}

fn masks_ui(
    ui: &mut egui::Ui,
    r: &GnnResults,
    settings: &mut GnnSettings,
    texture: Option<&egui::TextureHandle>,
    width: f32,
    height: f32,
) {
    let run = r.run.as_ref().filter(|_| r.run_done);
    let layers = run.map_or(0, |run| run.masks.len());
    ui.horizontal(|ui| {
        ui.label("Mask of layer");
        if layers > 0 {
            settings.mask_layer = settings.mask_layer.min(layers - 1);
            ui.add(egui::DragValue::new(&mut settings.mask_layer).range(0..=layers - 1));
        }
    });
    let (Some(run), Some(texture)) = (run, texture) else {
        ui.allocate_space(egui::vec2(width, height));
        return;
    };
    let Some(mask) = run.masks.get(settings.mask_layer) else { return };
    // Stretched to the box (a 1433 × 16 matrix would be a sliver); the shape is in the hover text.
    ui.add(egui::Image::new((texture.id(), egui::vec2(width, height)))).on_hover_text(format!(
        "{} × {} weights (fan-in down, outputs across), blocks averaged to {} × {} and stretched to fit: white kept, black masked out",
        mask.rows, mask.cols, mask.image.height, mask.image.width
    ));
}

fn density_plot(ui: &mut egui::Ui, r: &GnnResults, width: f32, height: f32) {
    ui.label("Share of weights kept per layer");
    crate::ui::plot_key::new_plot("gnn density")
        .width(width)
        .height(height)
        .x_axis_label("layer")
        .include_y(0.0)
        .include_y(1.0)
        .show(ui, |plot| {
            let Some(run) = r.run.as_ref().filter(|_| r.run_done) else { return };
            #[allow(clippy::cast_precision_loss)]
            let bars = run.layer_density.iter().enumerate().map(|(l, &d)| Bar::new(l as f64, d).width(0.7)).collect();
            plot.bar_chart(BarChart::new("kept", bars).color(PALETTE[0]));
        });
}

fn depth_plot(ui: &mut egui::Ui, r: &GnnResults, width: f32, height: f32) {
    if !r.config.depth {
        off_hint(ui, "Depth and over-smoothing", "Turn on “depth and over-smoothing” under Studies (slow)", width, height);
        return;
    }
    ui.label("Depth: test accuracy and MAD of the last hidden layer");
    let neutral = theme::weak_text_colour(ui);
    let entries = [
        Series::new(method_name(Method::Ugt), method_colour(Method::Ugt)).swatch(),
        Series::new("dense", method_colour(Method::Dense)).swatch(),
        Series::new("accuracy", neutral).marker(egui_plot::MarkerShape::Circle),
        Series::new("MAD", neutral).dash(Dash::Dashed),
    ];
    let key = key_ui(ui, "gnn depth", &entries);
    crate::ui::plot_key::new_plot("gnn depth")
        .width(width)
        .height(key.rest(height))
        .x_axis_label("layers (log₂)")
        .include_y(0.0)
        .include_y(1.0)
        .show(ui, |plot| {
            let Some(rows) = &r.depth else { return };
            for (method, net) in [Method::Ugt, Method::Dense].into_iter().zip(&entries) {
                let mut mine: Vec<_> = rows.iter().filter(|row| row.method == method).collect();
                if mine.is_empty() || !key.shows(&net.name) {
                    continue;
                }
                mine.sort_by_key(|row| row.layers);
                #[allow(clippy::cast_precision_loss)]
                let x = |layers: usize| (layers as f64).log2();
                if key.shows("accuracy") {
                    let series = Series::new(format!("{} accuracy", net.name), net.colour).marker(egui_plot::MarkerShape::Circle);
                    let accuracy = || -> PlotPoints<'static> { mine.iter().map(|row| [x(row.layers), row.test_acc]).collect() };
                    plot.line(series.line(accuracy()));
                    plot.points(series.points(accuracy()));
                }
                if key.shows("MAD") {
                    let series = Series::new(format!("{} MAD", net.name), net.colour).dash(Dash::Dashed);
                    let mad: PlotPoints<'static> = mine
                        .iter()
                        .filter_map(|row| Some([x(row.layers), *row.mad.get(row.mad.len().checked_sub(2)?)?]))
                        .collect();
                    plot.line(series.line(mad));
                }
            }
        });
}

fn ood_plot(ui: &mut egui::Ui, r: &GnnResults, width: f32, height: f32) {
    if !r.config.ood {
        off_hint(ui, "Held-out classes", "Turn on “held-out classes” under Studies", width, height);
        return;
    }
    match &r.ood {
        Some(ood) => ui.label(format!(
            "Held-out classes {:?}: AUROC {:.3} (top softmax), {:.3} (top logit)",
            ood.held_out, ood.auroc_softmax, ood.auroc_logit
        )),
        None => ui.label("Held-out classes: top softmax of seen and unseen test nodes"),
    };
    let entries = [Series::new("seen classes", PALETTE[0]).swatch(), Series::new("held-out classes", PALETTE[3]).swatch()];
    let key = key_ui(ui, "gnn ood", &entries);
    crate::ui::plot_key::new_plot("gnn ood")
        .width(width)
        .height(key.rest(height))
        .x_axis_label("top softmax")
        .include_y(0.0)
        .show(ui, |plot| {
            let Some(ood) = &r.ood else { return };
            let range = histogram_range(ood);
            #[allow(clippy::cast_precision_loss)]
            let bin = (range.1 - range.0) / OOD_BINS as f64;
            #[allow(clippy::cast_precision_loss)]
            let bars = |scores: &[f64], offset: f64| -> Vec<Bar> {
                histogram(scores, range)
                    .into_iter()
                    .enumerate()
                    .map(|(k, v)| Bar::new(range.0 + (k as f64 + 0.5 + offset) * bin, v).width(0.45 * bin))
                    .collect()
            };
            for (series, (scores, offset)) in entries.iter().zip([(&ood.seen_scores, -0.225), (&ood.unseen_scores, 0.225)]) {
                if key.shows(&series.name) {
                    plot.bar_chart(BarChart::new(series.name.clone(), bars(scores, offset)).color(series.colour));
                }
            }
        });
}
