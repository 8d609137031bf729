//! The hard-sample lab's main area: status, gallery, the selected sample, rates and the
//! dense/pruned/attended comparison.

use eframe::egui;
use egui_plot::{Bar, BarChart};

use super::HtlCommand;
use super::panel::{HtlPanelState, HtlSettings, Task, weak};
use crate::compute::htl::data::Split;
use crate::compute::htl::files::votes_text;
use crate::compute::htl::pie::{RankBy, SampleScore};
use crate::ui::plot_key::{Key, Series, key_ui};
use crate::ui::theme;

use super::localize::localize_main_ui;

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
            crate::ui::widgets::busy_ui(ui);
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
        "Test accuracy: dense {} · pruned at {:.2} {} ({} models each) · PIE: {} training, {} test samples · {:.1} s{stale}",
        percent(dense),
        pops.config.sparsity,
        percent(pruned),
        pops.pairs.len(),
        count(r.train_scores.as_ref()),
        count(r.test_scores.as_ref()),
        pops.seconds,
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
                    ("dense votes", DENSE, bars(&s.dense_votes, -0.2)),
                    ("pruned votes", PRUNED, bars(&s.pruned_votes, 0.2)),
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
    charts: Vec<(&str, egui::Color32, Vec<Bar>)>,
    y_max: Option<f64>,
) {
    let names = names.to_vec();
    // Several charts get a key above the plot (it covers no bar); clicking an entry hides its bars.
    let key = if charts.len() > 1 {
        let entries: Vec<Series> = charts.iter().map(|(name, colour, _)| Series::new(*name, *colour).swatch()).collect();
        key_ui(ui, id, &entries)
    } else {
        Key::default()
    };
    let mut plot = crate::ui::plot_key::new_plot(id)
        .height(key.rest(height))
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
    plot.show(ui, |plot| {
        for (name, colour, bars) in charts {
            if key.shows(name) {
                plot.bar_chart(BarChart::new(name, bars).color(colour));
            }
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
        vec![("PIE %", PRUNED, bars(&classes))],
        None,
    );
    ui.label(format!("PIE rate per group, % of {} samples", settings.split.label()));
    let group_names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    category_plot(
        ui,
        ("htl group rates", 150.0),
        &group_names,
        width,
        vec![("PIE %", GROUP, bars(&groups))],
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
            ("plain", DENSE, bars(values(&c.plain), -0.2)),
            ("attended", ATTENDED, bars(values(&c.attended), 0.2)),
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
