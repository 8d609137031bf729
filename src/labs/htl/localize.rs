//! The hard-sample lab's lesion-localization task: its controls and its views.

use eframe::egui;

use super::panel::{HtlPanelState, HtlSettings, MAX_MODELS, file_name, weak};
use super::{HtlCommand, HtlFile};
use crate::compute::htl::attend::Schedule;
use crate::compute::htl::seg::SegAccuracy;
use crate::ui::theme;

const LOCALIZE_HELP: &str = "Lesion localization: each model is a small segmentation network (per pixel, the mean colours \
of boxes of 1, 2, 4 and 8 pixels on a 3×3 grid around it, through an MLP with two hidden layers) trained on pixel-wise \
cross-entropy. Model k of the pruned population is model k of the dense one, magnitude-pruned and fine-tuned. A sample \
is hard when the IoU of the two populations' majority masks falls below the agreement threshold — the PIE rule carried \
over to masks. Attending multiplies the hard images' pixel losses by the weight. With fewer than all masks labelled, a \
model trained on the labelled ones gives pseudo-labels to the rest (semi-supervised).\n\n\
The built-in synthetic set draws skin-like textured backgrounds (20% dark skin, the under-represented group), lesions of \
varied size, shape, colour and contrast, and occasional hairs; its masks are the ground truth.";

pub(super) fn localize_controls_ui(
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
                .on_hover_text("A folder with images/ and masks/ (a mask per image, same name, white = lesion); or drop it on the window while this lab is open")
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

pub(super) fn localize_main_ui(
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
            crate::ui::widgets::busy_ui(ui);
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
    // The sheets show at their own size (readable captions); the table is below them.
    egui::ScrollArea::vertical().id_salt("htl lesions").show(ui, |ui| {
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
    });
}
