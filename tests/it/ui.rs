//! The app under egui_kittest on a software wgpu adapter: opening, training, cancelling, snapshots.

use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};
use sparsefield::app::{AppOptions, SparseFieldApp};
use sparsefield::compute::inr::{FitConfig, SirenConfig, SirenWeights};
use sparsefield::labs::edit::{EditCommand, EditLab, ZOOM_GRID};
use sparsefield::labs::gnn::{GnnCommand, GnnLab};
use sparsefield::labs::htl::{HtlCommand, HtlLab};
use sparsefield::labs::inr::panel::InrSettings;
use sparsefield::labs::inr::{InrCommand, InrLab};
use sparsefield::labs::lift::{LiftCommand, LiftLab};
use sparsefield::labs::nerf::{NerfCommand, NerfLab};
use sparsefield::labs::ntk::{NtkCommand, NtkLab};
use sparsefield::labs::prune::{PruneCommand, PruneLab};
use sparsefield::render::inr_view::Budget;
use sparsefield::ui::Command;
use sparsefield::ui::widgets::Level;

use super::common::temp_dir;

/// Per-pixel colour difference tolerated in snapshots, and how many pixels may exceed it: software
/// rasterisers differ slightly in anti-aliasing between Mesa versions.
fn snapshot_options() -> SnapshotOptions {
    SnapshotOptions::new().threshold(2.0).max_failed_pixels(400)
}

fn harness(gpu: bool) -> Harness<'static, SparseFieldApp> {
    harness_sized(gpu, egui::vec2(1280.0, 820.0))
}

/// [`harness`] with a window of `size`.
fn harness_sized(gpu: bool, size: egui::Vec2) -> Harness<'static, SparseFieldApp> {
    let builder = Harness::builder().with_size(size).with_render_every_step(true);
    let builder = if gpu { builder.wgpu_setup(sparsefield::render::wgpu_setup()) } else { builder };
    let mut harness = builder.build_eframe(|cc| SparseFieldApp::new(cc, AppOptions::default()));
    if let Ok(info) = harness.state().gpu_status() {
        super::common::expect_backend(&info.backend);
    }
    // Tests render each view completely in one frame, so that frames are deterministic.
    harness.state_mut().lab_mut::<InrLab>().state.view.budget = Budget::Unlimited;
    harness
}

/// Steps the app until `done` holds, or fails after `secs`.
fn step_until(
    harness: &mut Harness<'static, SparseFieldApp>,
    secs: u64,
    what: &str,
    done: impl Fn(&SparseFieldApp) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn app_opens_on_the_inr_lab_with_the_builtin_image() {
    let mut harness = harness(true);
    harness.run();
    assert_eq!(harness.state().active_lab(), InrLab::KEY);
    let image = harness.state().lab::<InrLab>().state.image().expect("the built-in image is loaded");
    assert_eq!((image.width, image.height, image.channels), (256, 256, 1));
    harness.get_by_label("INR — fit an image");
    harness.get_by_label("Original");
    harness.get_by_label("▶ Train");
    assert!(harness.state().gpu_status().is_ok(), "a wgpu adapter was given: {:?}", harness.state().gpu_status());
}

#[test]
fn train_shows_progress_and_cancel_stops_it() {
    let mut harness = harness(true);
    {
        let fit = &mut harness.state_mut().lab_mut::<InrLab>().settings.fit;
        fit.width = 32;
        fit.hidden_layers = 2;
        fit.steps = 1_000_000;
        fit.snapshot_interval_secs = 0.2;
    }
    harness.run();
    harness.get_by_label("▶ Train").click();
    step_until(&mut harness, 60, "training progress", |app| {
        app.lab::<InrLab>().state.fit_job().is_some_and(|job| job.status().step >= 5)
            && app.lab::<InrLab>().state.network().is_some()
    });
    assert!(harness.state().lab::<InrLab>().state.is_training());
    harness.get_by_label_contains("step ");
    assert!(!harness.state().lab::<InrLab>().state.history().is_empty(), "the plots have data");
    harness.get_by_label("✖ Cancel").click();
    step_until(&mut harness, 30, "the job to stop", |app| !app.lab::<InrLab>().state.is_training());
    let cancelled =
        harness.state().notifications().iter().any(|n| n.level == Level::Warning && n.text.contains("cancelled"));
    assert!(cancelled, "{:?}", harness.state().notifications());
    assert!(harness.query_by_label("✖ Cancel").is_none(), "the job bar is empty again");
    assert!(harness.state().lab::<InrLab>().state.network().is_some(), "a cancelled fit keeps what it reached");
}

#[test]
fn bad_image_shows_an_error_and_keeps_the_current_image() {
    let mut harness = harness(true);
    harness.run();
    let dir = temp_dir("ui_bad_image");
    let path = dir.join("broken.png");
    std::fs::write(&path, b"\x89PNG\r\n\x1a\n broken").unwrap();
    let ctx = harness.ctx.clone();
    harness.state_mut().apply_to::<InrLab>(&ctx, InrCommand::LoadImage(path));
    harness.run();
    let errors: Vec<_> = harness.state().notifications().iter().filter(|n| n.level == Level::Error).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].text.contains("broken.png"));
    assert_eq!(harness.state().lab::<InrLab>().state.image().map(|i| i.width), Some(256), "the camera image stays");
    harness.get_by_label_contains("broken.png");
}

#[test]
fn inr_lab_snapshot() {
    let mut harness = harness(true);
    // A deterministic INR: the seeded initialisation, loaded from a file like a user would.
    let dir = temp_dir("ui_snapshot");
    let path = dir.join("init.safetensors");
    SirenWeights::init(SirenConfig::image(1, 64, 3, 30.0), 0).save(&path, &[]).unwrap();
    let ctx = harness.ctx.clone();
    harness.state_mut().apply_to::<InrLab>(&ctx, InrCommand::LoadInr(path));
    harness.state_mut().apply(&ctx, Command::ClearNotifications);
    harness.run();
    harness.snapshot_options("inr_lab", &snapshot_options());
}

#[test]
fn without_a_gpu_the_app_opens_and_names_the_driver_package() {
    let mut harness = harness(false);
    harness.run();
    assert!(harness.state().gpu_status().is_err());
    assert!(
        harness.get_all_by_label_contains("mesa-vulkan-drivers").count() >= 2,
        "both GPU views and the notification say so"
    );
    harness.get_by_label("▶ Train");
}

#[test]
fn continue_training_extends_the_history_and_saved_files_remember_the_steps() {
    let mut harness = harness(false);
    {
        let fit = &mut harness.state_mut().lab_mut::<InrLab>().settings.fit;
        fit.width = 16;
        fit.hidden_layers = 1;
        // The steps slider's smallest value (the UI would raise anything lower to it).
        fit.steps = 10;
    }
    let ctx = harness.ctx.clone();
    harness.state_mut().apply_to::<InrLab>(&ctx, InrCommand::Train);
    step_until(&mut harness, 60, "the first fit", |app| {
        !app.lab::<InrLab>().state.is_training() && app.lab::<InrLab>().state.network().is_some()
    });
    harness.state_mut().apply_to::<InrLab>(&ctx, InrCommand::ContinueTraining);
    step_until(&mut harness, 60, "the continued fit", |app| !app.lab::<InrLab>().state.is_training());
    let steps: Vec<u64> = harness.state().lab::<InrLab>().state.history().iter().map(|r| r.step).collect();
    assert_eq!(steps, (1..=20).collect::<Vec<_>>(), "the continued fit's steps follow the first's");

    // A saved INR carries its step count; loading it and continuing counts on from there.
    let dir = temp_dir("ui_continue");
    let path = dir.join("ten.safetensors");
    harness.state_mut().apply_to::<InrLab>(&ctx, InrCommand::SaveInr(path.clone()));
    harness.state_mut().apply_to::<InrLab>(&ctx, InrCommand::ClearInr);
    assert!(harness.state().lab::<InrLab>().state.network().is_none());
    harness.state_mut().apply_to::<InrLab>(&ctx, InrCommand::LoadInr(path));
    assert!(harness.state().lab::<InrLab>().state.history().is_empty());
    harness.state_mut().apply_to::<InrLab>(&ctx, InrCommand::ContinueTraining);
    step_until(&mut harness, 60, "the fit of the loaded INR", |app| !app.lab::<InrLab>().state.is_training());
    let steps: Vec<u64> = harness.state().lab::<InrLab>().state.history().iter().map(|r| r.step).collect();
    assert_eq!(steps, (21..=30).collect::<Vec<_>>());
    let errors: Vec<_> = harness.state().notifications().iter().filter(|n| n.level == Level::Error).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn settings_from_an_old_or_edited_file_are_brought_into_range() {
    let defaults = InrSettings::default();
    let mut settings = InrSettings {
        training_size: 0,
        export_width: 0,
        error_scale: f32::NAN,
        fit: FitConfig { width: 100_000, ..defaults.fit.clone() },
        ..defaults.clone()
    };
    settings.sanitize();
    assert_eq!(settings.training_size, 32);
    assert_eq!(settings.export_width, 1);
    assert_eq!(settings.error_scale, defaults.error_scale);
    assert_eq!(settings.fit, defaults.fit);
}

#[test]
fn nerf_lab_opens_on_the_demo_scene_trains_live_and_orbits_on_drag() {
    let mut harness = harness(true);
    {
        let nerf = &mut harness.state_mut().lab_mut::<NerfLab>().settings;
        nerf.demo_size = 32;
        nerf.steps = 1_000_000;
        nerf.batch_samples = 4096;
    }
    harness.run();
    harness.get_by_label("NeRF — radiance fields").click();
    step_until(&mut harness, 120, "the demo scene to load", |app| app.lab::<NerfLab>().state.dataset.is_some());
    harness.run();
    assert!(harness.get_all_by_label_contains("demo: 100 train / 10 val / 20 test views, 32×32").count() >= 1);
    harness.get_by_label("▶ Train").click();
    step_until(&mut harness, 180, "training progress and a baked view", |app| {
        app.lab::<NerfLab>().state.train_job().is_some_and(|job| job.status().step >= 3)
            && app.lab::<NerfLab>().state.viewer.baked.is_some()
    });
    harness.run();
    assert!(!harness.state().lab::<NerfLab>().state.history.is_empty(), "the plots have data");
    harness.get_by_label_contains("step ");
    assert!(
        harness.state().lab::<NerfLab>().state.viewer.view.shown.contains("fast preview"),
        "{}",
        harness.state().lab::<NerfLab>().state.viewer.view.shown
    );

    // Dragging across the viewport orbits the camera.
    let before = harness.state().lab::<NerfLab>().state.viewer.view.orbit;
    let centre = egui::pos2(760.0, 330.0);
    harness.hover_at(centre);
    harness.drag_at(centre);
    harness.step();
    for k in 1..=10 {
        harness.hover_at(centre + egui::vec2(8.0 * k as f32, 3.0 * k as f32));
        harness.step();
    }
    harness.drop_at(centre + egui::vec2(80.0, 30.0));
    harness.step();
    let after = harness.state().lab::<NerfLab>().state.viewer.view.orbit;
    assert!((after.azimuth - before.azimuth).abs() > 0.3, "azimuth {} → {}", before.azimuth, after.azimuth);
    assert!((after.elevation - before.elevation).abs() > 0.1, "elevation {} → {}", before.elevation, after.elevation);

    harness.get_by_label("✖ Cancel").click();
    step_until(&mut harness, 60, "training to stop", |app| !app.lab::<NerfLab>().state.is_training());
    assert!(harness.state().lab::<NerfLab>().state.viewer.snapshot.is_some(), "a stopped training keeps its field");
    let errors: Vec<_> = harness.state().notifications().iter().filter(|n| n.level == Level::Error).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn a_bad_nerf_data_set_shows_an_error_and_keeps_the_current_one() {
    let mut harness = harness(false);
    harness.state_mut().lab_mut::<NerfLab>().settings.demo_size = 32;
    let ctx = harness.ctx.clone();
    harness.state_mut().apply(&ctx, Command::SelectLab(NerfLab::KEY));
    step_until(&mut harness, 120, "the demo scene to load", |app| app.lab::<NerfLab>().state.dataset.is_some());
    let dir = temp_dir("ui_bad_nerf");
    std::fs::write(dir.join("transforms_train.json"), r#"{"camera_angle_x": "wide", "frames": []}"#).unwrap();
    std::fs::write(dir.join("transforms_test.json"), r#"{"camera_angle_x": 0.7, "frames": []}"#).unwrap();
    harness.state_mut().apply_to::<NerfLab>(&ctx, NerfCommand::LoadData(dir));
    step_until(&mut harness, 30, "the load to fail", |app| app.notifications().iter().any(|n| n.level == Level::Error));
    let error = harness.state().notifications().iter().find(|n| n.level == Level::Error).unwrap().text.clone();
    assert!(error.contains("transforms_train.json"), "{error}");
    assert_eq!(
        harness.state().lab::<NerfLab>().state.dataset.as_ref().map(|d| d.name.as_str()),
        Some("demo"),
        "the demo stays"
    );
}

#[test]
fn nerf_checkpoints_and_exports_from_the_app() {
    let mut harness = harness(false);
    {
        let nerf = &mut harness.state_mut().lab_mut::<NerfLab>().settings;
        nerf.demo_size = 32;
        nerf.steps = 8;
        nerf.batch_samples = 4096;
        nerf.export_size = 24;
        nerf.turntable_frames = 3;
    }
    let ctx = harness.ctx.clone();
    harness.state_mut().apply(&ctx, Command::SelectLab(NerfLab::KEY));
    step_until(&mut harness, 120, "the demo scene to load", |app| app.lab::<NerfLab>().state.dataset.is_some());
    harness.state_mut().apply_to::<NerfLab>(&ctx, NerfCommand::Train);
    step_until(&mut harness, 120, "training to finish", |app| {
        !app.lab::<NerfLab>().state.is_training() && app.lab::<NerfLab>().state.viewer.snapshot.is_some()
    });
    assert_eq!(harness.state().lab::<NerfLab>().state.viewer.snapshot.as_ref().map(|s| s.step), Some(8));

    let dir = temp_dir("ui_nerf_files");
    harness.state_mut().apply_to::<NerfLab>(&ctx, NerfCommand::SaveCheckpoint(dir.join("ckpt")));
    assert!(dir.join("ckpt/nerf.safetensors").is_file());
    harness.state_mut().apply_to::<NerfLab>(&ctx, NerfCommand::ExportView(dir.join("view.png")));
    step_until(&mut harness, 60, "the PNG export", |_| dir.join("view.png").is_file());
    step_until(&mut harness, 60, "the export job to end", |app| app.lab::<NerfLab>().state.jobs().is_empty());
    harness.state_mut().apply_to::<NerfLab>(&ctx, NerfCommand::ExportTurntable(dir.join("turn.gif")));
    step_until(&mut harness, 60, "the GIF export", |app| {
        app.lab::<NerfLab>().state.jobs().is_empty() && dir.join("turn.gif").is_file()
    });
    let png = sparsefield::compute::image_io::load_image(&dir.join("view.png")).unwrap().image;
    assert_eq!((png.width, png.height), (24, 24));
    assert!(std::fs::read(dir.join("turn.gif")).unwrap().starts_with(b"GIF89a"));

    // Loading the checkpoint back restores the field at its step.
    harness.state_mut().apply_to::<NerfLab>(&ctx, NerfCommand::Train);
    step_until(&mut harness, 120, "the second run", |app| !app.lab::<NerfLab>().state.is_training());
    harness.state_mut().apply_to::<NerfLab>(&ctx, NerfCommand::LoadCheckpoint(dir.join("ckpt")));
    assert_eq!(harness.state().lab::<NerfLab>().state.viewer.snapshot.as_ref().map(|s| s.step), Some(8));
    // A folder that is not a checkpoint is refused and the field stays.
    harness.state_mut().apply_to::<NerfLab>(&ctx, NerfCommand::LoadCheckpoint(dir.clone()));
    let errors: Vec<_> = harness.state().notifications().iter().filter(|n| n.level == Level::Error).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].text.contains("config.json"), "{}", errors[0].text);
    assert!(harness.state().lab::<NerfLab>().state.viewer.snapshot.is_some());
}

#[test]
fn edit_lab_trains_an_operator_and_shows_the_comparison() {
    use sparsefield::compute::inr::insp::{EditKind, EditTask, OperatorConfig};
    use sparsefield::labs::edit::ZoomBackend;
    // Tall enough that the sidebar's sections reached below (classify digits) are on screen.
    let mut harness = harness_sized(true, egui::vec2(1280.0, 900.0));
    {
        harness.state_mut().lab_mut::<InrLab>().settings.training_size = 32;
        let edit = &mut harness.state_mut().lab_mut::<EditLab>().settings;
        edit.task = EditTask::new(EditKind::GaussianBlur);
        edit.operator =
            OperatorConfig { order: 2, width: 16, hidden_layers: 2, steps: 60, batch: 256, ..edit.operator.clone() };
        edit.fit_steps = 40;
        edit.fit_width = 16;
        // The software adapter would pick the CPU; the shader path is what this test is about.
        edit.zoom_backend = ZoomBackend::Gpu;
    }
    harness.run_steps(6);
    assert_eq!(harness.state().lab::<InrLab>().state.image().unwrap().width, 32, "the training size applies");
    harness.get_by_label("INR edit — process INRs").click();
    harness.run_steps(6);
    assert_eq!(harness.state().active_lab(), EditLab::KEY);
    harness.get_by_label_contains("No operator yet");
    // The primary button above the views (the sidebar's one may be scrolled under the messages).
    harness.get_by_label("▶ Train operator").click();
    step_until(&mut harness, 120, "the operator and its views", |app| {
        !app.lab::<EditLab>().state.is_training()
            && app.lab::<EditLab>().state.operator().is_some()
            && app.lab::<EditLab>().state.is_up_to_date()
    });
    harness.run_steps(6);
    // The views take the edit from the shader too when the GPU is asked for.
    harness.get_by_label_contains("INSP edit (GPU shader) · ");
    harness.get_by_label_contains("Input INR · ");
    harness.get_by_label_contains("pixels: same filter · ");
    harness.get_by_label("|edit − target|");
    harness.get_by_label("derivative channel");
    assert!(!harness.state().lab::<EditLab>().state.history().is_empty(), "the plots have data");
    step_until(&mut harness, 120, "the zoom view from the GPU shader", |app| {
        app.lab::<EditLab>().state.zoom_is_up_to_date(ZoomBackend::Gpu)
    });
    assert_eq!(harness.state().lab::<EditLab>().state.zoom_on_gpu(), Some(true));
    harness.run_steps(6);
    harness.get_by_label_contains("GPU shader · ");
    // Zooming in renders the continuous function again, at the new window.
    harness.state_mut().lab_mut::<EditLab>().state.zoom.zoom = 8.0;
    step_until(&mut harness, 120, "the zoomed view", |app| {
        app.lab::<EditLab>().state.zoom_is_up_to_date(ZoomBackend::Gpu)
    });
    harness.run_steps(6);
    harness.get_by_label_contains("INSP edit ×8.0");
    // On the CPU the zoom view comes small first (within its time budget), then at the full grid
    // once nothing changes; after a view the user leaves at once, the one kept comes refined.
    harness.state_mut().lab_mut::<EditLab>().settings.zoom_backend = ZoomBackend::Cpu;
    step_until(&mut harness, 120, "the first CPU zoom view", |app| {
        app.lab::<EditLab>().state.zoom_is_up_to_date(ZoomBackend::Cpu)
    });
    let first = harness.state().lab::<EditLab>().state.zoom_grid_shown();
    assert!(first < Some(ZOOM_GRID as usize), "the CPU's first zoom view is a small one: {first:?}");
    step_until(&mut harness, 120, "the full CPU zoom view", |app| {
        let state = &app.lab::<EditLab>().state;
        state.zoom_is_up_to_date(ZoomBackend::Cpu) && state.zoom_grid_shown() == Some(ZOOM_GRID as usize)
    });
    harness.state_mut().lab_mut::<EditLab>().state.zoom.zoom = 4.0;
    harness.run_steps(2);
    harness.state_mut().lab_mut::<EditLab>().state.zoom.zoom = 2.0;
    step_until(&mut harness, 120, "the refined CPU zoom view at ×2", |app| {
        let state = &app.lab::<EditLab>().state;
        state.zoom_is_up_to_date(ZoomBackend::Cpu) && state.zoom_grid_shown() == Some(ZOOM_GRID as usize)
    });
    harness.run_steps(3);
    harness.get_by_label_contains("INSP edit ×2.0");
    let errors: Vec<_> = harness.state().notifications().iter().filter(|n| n.level == Level::Error).collect();
    assert!(errors.is_empty(), "{errors:?}");

    // Save and reload the operator; a bad file is reported and changes nothing.
    let dir = temp_dir("ui_edit");
    let ctx = harness.ctx.clone();
    let path = dir.join("blur.safetensors");
    harness.state_mut().apply_to::<EditLab>(&ctx, EditCommand::SaveOperator(path.clone()));
    assert!(path.is_file());
    let before = harness.state().lab::<EditLab>().state.operator().cloned();
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, b"not an operator").unwrap();
    harness.state_mut().apply_to::<EditLab>(&ctx, EditCommand::LoadOperator(bad));
    let last = harness.state().notifications().last().unwrap();
    assert_eq!(last.level, Level::Error);
    assert!(last.text.contains("bad.safetensors"), "{}", last.text);
    assert_eq!(harness.state().lab::<EditLab>().state.operator().cloned(), before);
    harness.state_mut().apply_to::<EditLab>(&ctx, EditCommand::LoadOperator(path));
    assert_eq!(harness.state().lab::<EditLab>().state.operator().cloned(), before);
    assert_eq!(harness.state().notifications().last().unwrap().level, Level::Success);

    // INSP-ConvNet on a few digits: both accuracies and a confusion matrix appear.
    {
        let classify = &mut harness.state_mut().lab_mut::<EditLab>().settings.classify;
        (classify.limit, classify.inr_steps, classify.epochs) = (100, 30, 3);
    }
    harness.get_by_label("INSP-ConvNet: classify digits").click();
    harness.run_steps(6);
    // The button sits below the sidebar's visible area at this window size: apply its command.
    harness.get_by_label("Run on digits");
    harness.state_mut().apply_to::<EditLab>(&ctx, EditCommand::Classify);
    assert!(harness.state().lab::<EditLab>().state.is_classifying(), "{:?}", harness.state().notifications().last());
    step_until(&mut harness, 180, "the digit classification", |app| !app.lab::<EditLab>().state.is_classifying());
    assert!(
        harness.state().lab::<EditLab>().state.classification().is_some(),
        "{:?}",
        harness.state().notifications().last()
    );
    harness.run_steps(6);
    harness.get_by_label_contains("INSP-ConvNet (derivative stack): ");
    harness.get_by_label_contains("CNN (pixels): ");
    harness.get_by_label("Confusion:");
    let summary = harness.state().lab::<EditLab>().state.classification().unwrap();
    assert_eq!(summary.test, 20);

    // A custom edit learnt from a pair of images picked in the lab: the negative of a crop.
    use sparsefield::compute::image_io::{ImageData, save_png};
    assert!(harness.query_all_by_label("crops per image").next().is_some(), "the crops slider");
    let lab_image = harness.state().lab::<InrLab>().state.image().unwrap().as_ref().clone();
    let negative = ImageData { pixels: lab_image.pixels.iter().map(|v| 1.0 - v).collect(), ..lab_image.clone() };
    let (input, target, rgb) = (dir.join("in.png"), dir.join("negative.png"), dir.join("rgb.png"));
    save_png(&lab_image, &input).unwrap();
    save_png(&negative, &target).unwrap();
    let other_kind = ImageData::new(
        lab_image.width,
        lab_image.height,
        4 - lab_image.channels,
        vec![0.5; (lab_image.width * lab_image.height) as usize * (4 - lab_image.channels)],
    )
    .unwrap();
    save_png(&other_kind, &rgb).unwrap();
    harness.state_mut().apply_to::<EditLab>(&ctx, EditCommand::AddPair(input.clone(), rgb));
    let last = harness.state().notifications().last().unwrap();
    assert_eq!(last.level, Level::Error, "{}", last.text);
    assert!(last.text.contains("rgb.png"), "{}", last.text);
    assert!(harness.state().lab::<EditLab>().settings.pairs.is_empty());
    harness.state_mut().apply_to::<EditLab>(&ctx, EditCommand::AddPair(input, target));
    assert_eq!(
        harness.state().lab::<EditLab>().settings.pairs.len(),
        1,
        "{:?}",
        harness.state().notifications().last()
    );
    harness.state_mut().lab_mut::<EditLab>().settings.task = EditTask::new(EditKind::Custom);
    harness.state_mut().lab_mut::<EditLab>().settings.operator.steps = 400;
    harness.run_steps(6);
    harness.get_by_label("Add pair…");
    harness.get_by_label_contains("in.png → negative.png");
    harness.state_mut().apply_to::<EditLab>(&ctx, EditCommand::Train);
    step_until(&mut harness, 180, "the custom operator and its views", |app| {
        !app.lab::<EditLab>().state.is_training()
            && app.lab::<EditLab>().state.operator().is_some_and(|op| op.spec.task.kind == EditKind::Custom)
            && app.lab::<EditLab>().state.is_up_to_date()
    });
    let errors: Vec<_> = harness.state().notifications().iter().filter(|n| n.level == Level::Error).collect();
    assert_eq!(errors.len(), 2, "only the bad file and the bad pair: {errors:?}");
    let history = harness.state().lab::<EditLab>().state.history();
    let (first, last) = (history.first().unwrap(), history.last().unwrap());
    assert!(last.psnr_db > first.psnr_db + 3.0, "the negative is learnt: {} → {} dB", first.psnr_db, last.psnr_db);
}

#[test]
fn pruning_lab_slider_restarts_the_run_and_the_sweep_plots() {
    use sparsefield::compute::prune::theory::TheoryConfig;
    let mut harness = harness(false);
    {
        let settings = &mut harness.state_mut().lab_mut::<PruneLab>().settings;
        settings.theory = TheoryConfig { dim: 400, n_test: 200, steps: 100, prune: 0.5, ..TheoryConfig::default() };
        (settings.sweep_seeds, settings.sweep_points) = (2, 4);
    }
    harness.run_steps(4);
    assert_eq!(harness.state().lab::<PruneLab>().state.runs_started(), 0, "the lab trains only when it is open");
    harness.get_by_label("Pruning — random masks at init").click();
    step_until(&mut harness, 60, "the first run", |app| {
        app.lab::<PruneLab>().state.summary().is_some() && !app.lab::<PruneLab>().state.is_running()
    });
    assert_eq!(harness.state().lab::<PruneLab>().state.runs_started(), 1);
    let history = harness.state().lab::<PruneLab>().state.history();
    assert_eq!(history.len(), 101, "steps 0..=100");
    assert!(history.last().unwrap().train_loss < history[0].train_loss);
    harness.run_steps(4);
    harness.get_by_label_contains("p = 0.50: ");
    harness.get_by_label("Signal learning  max ⟨w, j·μ⟩");

    // One key press on the slider: a new run at the new fraction starts at once.
    harness.get_by_role_and_label(egui::accesskit::Role::Slider, "pruning fraction p").focus();
    harness.run_steps(2);
    harness.key_press(egui::Key::ArrowRight);
    harness.run_steps(2);
    let prune = harness.state().lab::<PruneLab>().settings.theory.prune;
    assert!((prune - 0.51).abs() < 1e-9, "the slider moved one step: {prune}");
    assert_eq!(harness.state().lab::<PruneLab>().state.runs_started(), 2, "moving the slider starts a run");
    assert_eq!(harness.state().lab::<PruneLab>().state.run_config().unwrap().prune, prune);
    step_until(&mut harness, 60, "the second run", |app| {
        app.lab::<PruneLab>().state.summary().is_some_and(|s| (s.prune - 0.51).abs() < 1e-9)
            && !app.lab::<PruneLab>().state.is_running()
    });
    let kept = harness.state().lab::<PruneLab>().state.summary().unwrap().kept_fraction;
    assert!((kept - 0.49).abs() < 0.02, "about 49% of the weights kept: {kept}");

    // The sweep: 4 fractions × 2 seeds, then its plot. The button may sit below the sidebar's
    // visible area at this window size: apply its command.
    harness.get_by_label("Run sweep");
    let ctx = harness.ctx.clone();
    harness.state_mut().apply_to::<PruneLab>(&ctx, PruneCommand::Sweep);
    harness.run_steps(2);
    step_until(&mut harness, 120, "the sweep", |app| {
        !app.lab::<PruneLab>().state.is_sweeping() && app.lab::<PruneLab>().state.sweep().is_some()
    });
    let sweep = harness.state().lab::<PruneLab>().state.sweep().unwrap();
    assert_eq!(sweep.len(), 4);
    assert_eq!(sweep[3].prune, 0.99);
    assert!(sweep.iter().all(|p| p.test_accuracy.len() == 2));
    harness.run_steps(4);
    harness.get_by_label("Test accuracy, mean ± std over 2 seeds");
    let errors: Vec<_> = harness.state().notifications().iter().filter(|n| n.level == Level::Error).collect();
    assert!(errors.is_empty(), "{errors:?}");

    // Exports: CSV and a PNG chart beside it.
    let dir = temp_dir("ui_prune");
    harness.state_mut().apply_to::<PruneLab>(&ctx, PruneCommand::ExportSweep(dir.join("sweep.csv")));
    harness.state_mut().apply_to::<PruneLab>(&ctx, PruneCommand::ExportRun(dir.join("run.csv")));
    for file in ["sweep.csv", "sweep.png", "sweep_runs.csv", "run.csv", "run.png"] {
        assert!(dir.join(file).is_file(), "{file}: {:?}", harness.state().notifications().last());
    }
    assert_eq!(std::fs::read_to_string(dir.join("sweep.csv")).unwrap().lines().count(), 5);
    // An export to a folder that does not exist is reported, not fatal.
    harness.state_mut().apply_to::<PruneLab>(&ctx, PruneCommand::ExportRun(dir.join("missing/run.csv")));
    let last = harness.state().notifications().last().unwrap();
    assert_eq!(last.level, Level::Error);
    assert!(last.text.contains("missing"), "{}", last.text);
}

#[test]
fn pruning_lab_compares_methods_on_real_images_and_shows_masks() {
    use sparsefield::compute::prune::data::DataSource;
    use sparsefield::compute::prune::init::{InitConfig, Method};
    use sparsefield::labs::prune::panel::PruneMode;
    let mut harness = harness(false);
    {
        let settings = &mut harness.state_mut().lab_mut::<PruneLab>().settings;
        settings.init = InitConfig {
            hidden: 16,
            methods: vec![Method::Random, Method::SynFlow],
            sparsities: vec![0.0, 0.8],
            epochs: 2,
            train_limit: 300,
            synflow_iterations: 5,
            ..InitConfig::default()
        };
    }
    harness.get_by_label("Pruning — random masks at init").click();
    harness.run_steps(2);
    let theory_runs = harness.state().lab::<PruneLab>().state.runs_started();
    harness.get_by_label("Real images").click();
    step_until(&mut harness, 60, "the digits", |app| app.lab::<PruneLab>().state.image_data().is_some());
    assert_eq!(harness.state().lab::<PruneLab>().settings.mode, PruneMode::Images);
    // Changing a theory setting now starts nothing: only the shown half trains.
    harness.state_mut().lab_mut::<PruneLab>().settings.theory.prune = 0.3;
    harness.run_steps(4);
    assert_eq!(
        harness.state().lab::<PruneLab>().state.runs_started(),
        theory_runs,
        "no theory run while real images are shown"
    );
    harness.run_steps(2);
    assert!(harness.query_all_by_label_contains("1438 training and 359 test images").next().is_some());
    harness.get_by_label("Run comparison");
    let ctx = harness.ctx.clone();
    harness.state_mut().apply_to::<PruneLab>(&ctx, PruneCommand::Compare);
    assert!(harness.state().lab::<PruneLab>().state.is_comparing(), "{:?}", harness.state().notifications().last());
    step_until(&mut harness, 120, "the comparison", |app| {
        !app.lab::<PruneLab>().state.is_comparing() && app.lab::<PruneLab>().state.init_results().len() == 3
    });
    harness.run_steps(4);
    harness.get_by_label("Test accuracy after training against sparsity");
    harness.get_by_label("Kept per layer");
    harness.get_by_label_contains("Mask of the layer: 16 outputs × 64 inputs");
    let results = harness.state().lab::<PruneLab>().state.init_results();
    assert!(results[0].method.is_none());
    assert_eq!(results[1].method, Some(Method::Random));
    // Random keeps the same fraction of every layer.
    assert!(results[1].densities.iter().all(|d| (d - 0.2).abs() < 0.02), "{:?}", results[1].densities);
    // A data set that cannot load is reported and the lab keeps going.
    let missing = temp_dir("ui_prune_images").join("nothing-here");
    std::fs::create_dir_all(&missing).unwrap();
    harness
        .state_mut()
        .apply_to::<PruneLab>(&ctx, PruneCommand::SetData(DataSource::Folder { path: missing, side: 16 }));
    step_until(&mut harness, 30, "the failed load", |app| !app.lab::<PruneLab>().state.is_loading_data());
    let last = harness.state().notifications().last().unwrap();
    assert_eq!(last.level, Level::Error, "{}", last.text);
    assert!(last.text.contains("nothing-here"), "{}", last.text);
    assert_eq!(harness.state().lab::<PruneLab>().state.init_results().len(), 3, "earlier results stay");
    let dir = temp_dir("ui_prune_export");
    harness.state_mut().apply_to::<PruneLab>(&ctx, PruneCommand::ExportInit(dir.join("init.csv")));
    assert!(dir.join("init.csv").is_file() && dir.join("init.png").is_file());
}

#[test]
fn ntk_lab_bias_slider_updates_the_spectrum_and_exports_everything() {
    use sparsefield::labs::ntk::panel::{NtkSettings, SourceKind};
    let mut harness = harness(false);
    {
        let settings = &mut harness.state_mut().lab_mut::<NtkLab>().settings;
        *settings = NtkSettings { n: 60, d: 5, width: 256, steps: 50, ..NtkSettings::default() };
    }
    harness.run_steps(4);
    assert_eq!(harness.state().lab::<NtkLab>().state.analyses_started(), 0, "the lab computes only when it is open");
    harness.get_by_label("NTK — spectra and sparse activation").click();
    let finished = |app: &SparseFieldApp| {
        let r = app.lab::<NtkLab>().state.results();
        !app.lab::<NtkLab>().state.is_running() && r.spectrum.is_some() && r.training_done && r.distance.is_some()
    };
    step_until(&mut harness, 120, "the first analysis", finished);
    let first = harness.state().lab::<NtkLab>().state.results().clone();
    assert_eq!(first.config.bias, 0.0);
    let spectrum = first.spectrum.as_ref().unwrap();
    assert_eq!(spectrum.eigenvalues.len(), 60);
    assert!(first.training.as_ref().unwrap().dense.is_none(), "B = 0 and p = 0 is the dense net already");
    harness.run_steps(3);
    harness.get_by_label_contains("B = 0.00, m = 256, p = 0.00: λ_min");
    harness.get_by_label("Eigenvalues, largest first (log₁₀)");
    // Every glyph of the help text exists in the fonts (a missing one panics when drawn).
    harness.get_by_label("About this lab").click();
    harness.run_steps(2);
    harness.get_by_label_contains("The neural tangent kernel of the weights and biases");

    // One key press on the bias slider: the spectrum is recomputed for the new bias; the sweep
    // over the bias (which does not depend on it) is kept.
    harness.get_by_role_and_label(egui::accesskit::Role::Slider, "bias B").focus();
    harness.run_steps(2);
    harness.key_press(egui::Key::ArrowRight);
    harness.run_steps(2);
    let bias = harness.state().lab::<NtkLab>().settings.bias;
    assert!((bias - 0.05).abs() < 1e-9, "the slider moved one step: {bias}");
    step_until(&mut harness, 5, "an analysis for the moved slider", |app| {
        app.lab::<NtkLab>().state.analyses_started() == 2
    });
    step_until(&mut harness, 120, "the analysis at the new bias", |app| {
        finished(app) && (app.lab::<NtkLab>().state.results().config.bias - 0.05).abs() < 1e-9
    });
    let second = harness.state().lab::<NtkLab>().state.results().clone();
    let moved = second.spectrum.as_ref().unwrap();
    assert_ne!(moved.eigenvalues, spectrum.eigenvalues, "the spectrum follows the bias");
    assert!(moved.active_fraction < spectrum.active_fraction);
    assert!(std::sync::Arc::ptr_eq(second.lambda.as_ref().unwrap(), first.lambda.as_ref().unwrap()));
    assert_eq!(second.distance.as_ref().unwrap()[0].bias, 0.05);
    let training = second.training.as_ref().unwrap();
    assert_eq!(training.chosen.points.len(), 51);
    assert!(training.dense.is_some(), "B > 0: the dense net is trained for comparison");

    // Every table and chart into a folder.
    let ctx = harness.ctx.clone();
    let dir = temp_dir("ui_ntk_export");
    harness.state_mut().apply_to::<NtkLab>(&ctx, NtkCommand::Export(dir.clone()));
    for file in
        ["eigenvalues.csv", "gram.csv", "gram.png", "spectrum.png", "lambda_min.csv", "distance.png", "training.csv"]
    {
        assert!(dir.join(file).is_file(), "{file}: {:?}", harness.state().notifications().last());
    }
    // Exporting again into the same folder is fine; a folder of someone else's files is refused.
    harness.state_mut().apply_to::<NtkLab>(&ctx, NtkCommand::Export(dir.clone()));
    let last = format!("{:?}", harness.state().notifications().last());
    assert!(last.contains("Wrote"), "{last}");
    let mine = temp_dir("ui_ntk_export_mine");
    std::fs::write(mine.join("gram.png"), "mine").unwrap();
    harness.state_mut().apply_to::<NtkLab>(&ctx, NtkCommand::Export(mine.clone()));
    assert_eq!(std::fs::read_to_string(mine.join("gram.png")).unwrap(), "mine");
    let last = format!("{:?}", harness.state().notifications().last());
    assert!(last.contains("did not write (gram.png)") && last.contains("new or empty folder"), "{last}");
    harness.state_mut().apply(&ctx, Command::ClearNotifications);

    // Cancelling keeps what was finished; Resume finishes the rest.
    harness.state_mut().lab_mut::<NtkLab>().settings.steps = 5000;
    step_until(&mut harness, 30, "training with the new steps", |app| {
        app.lab::<NtkLab>().state.results().config.steps == 5000
    });
    let job =
        harness.state().lab::<NtkLab>().state.jobs().first().map(|row| row.id).expect("an analysis for the new steps");
    harness.state_mut().apply(&ctx, Command::CancelJob(job));
    step_until(&mut harness, 60, "the cancelled analysis to stop", |app| !app.lab::<NtkLab>().state.is_running());
    assert!(!harness.state().lab::<NtkLab>().state.results().training_done);
    assert!(harness.state().lab::<NtkLab>().state.results().spectrum.is_some(), "the spectrum of these settings stays");
    assert_eq!(harness.state().notifications().last().unwrap().level, Level::Warning);
    harness.run_steps(2);
    harness.get_by_label("▶ Resume");
    harness.state_mut().apply_to::<NtkLab>(&ctx, NtkCommand::Resume);
    step_until(&mut harness, 120, "the resumed analysis", |app| {
        finished(app)
            && app.lab::<NtkLab>().state.results().training.as_ref().is_some_and(|t| t.chosen.points.len() == 5001)
    });

    // A bad CSV is reported and changes nothing; a good one becomes the data.
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "1,2\n3,x\n").unwrap();
    harness.state_mut().apply_to::<NtkLab>(&ctx, NtkCommand::LoadCsv(bad));
    let last = harness.state().notifications().last().unwrap();
    assert_eq!(last.level, Level::Error);
    assert!(last.text.contains("bad.csv") && last.text.contains("line 2"), "{}", last.text);
    assert_eq!(harness.state().lab::<NtkLab>().settings.source, SourceKind::Random);
    let good = dir.join("points.csv");
    std::fs::write(&good, (0..30).map(|i| format!("{i},1,{}\n", i % 7)).collect::<String>()).unwrap();
    harness.state_mut().apply_to::<NtkLab>(&ctx, NtkCommand::LoadCsv(good));
    assert_eq!(harness.state().lab::<NtkLab>().settings.source, SourceKind::Csv);
    step_until(&mut harness, 120, "the analysis of the CSV points", |app| {
        finished(app)
            && app.lab::<NtkLab>().state.results().data.as_ref().is_some_and(|d| d.points.n == 30 && d.points.d == 3)
    });
    let errors = harness.state().notifications().iter().filter(|n| n.level == Level::Error).count();
    assert_eq!(errors, 1, "only the bad file: {:?}", harness.state().notifications());
}

#[test]
fn gnn_lab_sparsity_slider_retrains_and_the_accuracy_changes() {
    use sparsefield::labs::gnn::panel::{DataKind, GnnSettings};
    let mut harness = harness(false);
    {
        let settings = &mut harness.state_mut().lab_mut::<GnnLab>().settings;
        *settings = GnnSettings { hidden: 32, epochs: 40, sweep_seeds: 1, ..GnnSettings::default() };
    }
    harness.run_steps(4);
    assert_eq!(harness.state().lab::<GnnLab>().state.analyses_started(), 0, "the lab computes only when it is open");
    harness.get_by_label("GNN tickets — untrained subnetworks").click();
    let finished = |app: &SparseFieldApp| {
        let r = app.lab::<GnnLab>().state.results();
        !app.lab::<GnnLab>().state.is_running() && r.run_done && r.sweep_done && r.ood.is_some() && r.layout.is_some()
    };
    step_until(&mut harness, 300, "the first study", finished);
    harness.run_steps(3);
    let first = harness.state().lab::<GnnLab>().state.results().clone();
    let run = first.run.as_ref().unwrap();
    assert_eq!(run.predictions.len(), 2708);
    assert!((run.summary.sparsity_reached - 0.9).abs() < 1e-3);
    assert_eq!(first.sweep.as_ref().unwrap().len(), 7 * 2 + 1, "UGT and edge-popup at 7 sparsities, dense once");
    harness.get_by_label_contains("GCN 2 layers, ugt sparsity 0.90: test accuracy");
    harness.get_by_label_contains("cora: 2708 nodes, 5278 edges");
    harness.get_by_label("About this lab").click();
    harness.run_steps(2);
    harness.get_by_label_contains("Untrained GNN tickets: the weights are drawn once");

    // One key press on the sparsity slider: the network is trained again at the new sparsity
    // and its predictions change; the sweep (which covers every sparsity) is kept.
    harness.get_by_role_and_label(egui::accesskit::Role::Slider, "sparsity").focus();
    harness.run_steps(2);
    harness.key_press(egui::Key::ArrowRight);
    harness.run_steps(2);
    let sparsity = harness.state().lab::<GnnLab>().settings.sparsity;
    assert!((sparsity - 0.91).abs() < 1e-9, "the slider moved one step: {sparsity}");
    step_until(&mut harness, 5, "a study for the moved slider", |app| {
        app.lab::<GnnLab>().state.analyses_started() == 2
    });
    step_until(&mut harness, 300, "the study at the new sparsity", |app| {
        finished(app) && (app.lab::<GnnLab>().state.results().config.net.sparsity - 0.91).abs() < 1e-9
    });
    harness.run_steps(3);
    let second = harness.state().lab::<GnnLab>().state.results().clone();
    let moved = second.run.as_ref().unwrap();
    assert!((moved.summary.sparsity_reached - 0.91).abs() < 1e-3);
    assert_ne!(moved.predictions, run.predictions, "the network follows the slider");
    assert!(std::sync::Arc::ptr_eq(second.sweep.as_ref().unwrap(), first.sweep.as_ref().unwrap()));
    assert!(std::sync::Arc::ptr_eq(second.layout.as_ref().unwrap(), first.layout.as_ref().unwrap()));
    harness.get_by_label_contains(&format!("ugt sparsity 0.91: test accuracy {:.1}%", 100.0 * moved.summary.test_acc));

    // Every table and chart into a folder.
    let ctx = harness.ctx.clone();
    let dir = temp_dir("ui_gnn_export");
    harness.state_mut().apply_to::<GnnLab>(&ctx, GnnCommand::Export(dir.clone()));
    for file in ["metrics.json", "history.csv", "predictions.csv", "sweep.csv", "sweep.png", "ood.json", "ood.png"] {
        assert!(dir.join(file).is_file(), "{file}: {:?}", harness.state().notifications().last());
    }
    let predictions = std::fs::read_to_string(dir.join("predictions.csv")).unwrap();
    assert_eq!(predictions.lines().count(), 2709);

    // A folder without a graph is reported and changes nothing; a plain one becomes the data.
    let empty = temp_dir("ui_gnn_empty");
    harness.state_mut().apply_to::<GnnLab>(&ctx, GnnCommand::LoadFolder(empty));
    let last = harness.state().notifications().last().unwrap();
    assert_eq!(last.level, Level::Error);
    assert!(last.text.contains("ui_gnn_empty") && last.text.contains("edges.csv"), "{}", last.text);
    assert_eq!(harness.state().lab::<GnnLab>().settings.source, DataKind::Cora);
    let plain = temp_dir("ui_gnn_plain");
    let edges: String = (0..60).map(|i| format!("{},{}\n", i, (i + 1) % 60)).collect();
    let labels: String = (0..60).map(|i| format!("{i},{}\n", (i / 20))).collect();
    std::fs::write(plain.join("edges.csv"), edges).unwrap();
    std::fs::write(plain.join("labels.csv"), labels).unwrap();
    harness.state_mut().apply_to::<GnnLab>(&ctx, GnnCommand::LoadFolder(plain));
    assert_eq!(harness.state().lab::<GnnLab>().settings.source, DataKind::Folder);
    step_until(&mut harness, 300, "the study of the plain folder", |app| {
        finished(app) && app.lab::<GnnLab>().state.results().graph.as_ref().is_some_and(|g| g.num_nodes == 60)
    });
    let errors = harness.state().notifications().iter().filter(|n| n.level == Level::Error).count();
    assert_eq!(errors, 1, "only the empty folder: {:?}", harness.state().notifications());
}

#[test]
fn gnn_settings_from_an_edited_file_are_brought_into_range() {
    use sparsefield::labs::gnn::panel::{DataKind, GnnSettings};
    let mut settings = GnnSettings {
        sparsity: f64::NAN,
        layers: 0,
        hidden: 1_000_000,
        source: DataKind::Folder,
        folder: None,
        ..GnnSettings::default()
    };
    settings.csbm.homophily = 7.0;
    settings.sanitize();
    assert_eq!(settings.sparsity, GnnSettings::default().sparsity);
    assert_eq!((settings.layers, settings.hidden), (1, 512));
    assert_eq!(settings.csbm.homophily, 1.0);
    assert_eq!(settings.source, DataKind::Cora, "no folder to read");
    settings.config().net.validate().unwrap();
}

#[test]
fn ntk_settings_from_an_edited_file_are_brought_into_range() {
    use sparsefield::labs::ntk::panel::{NtkSettings, SourceKind};
    let mut settings = NtkSettings {
        bias: f64::NAN,
        width: 0,
        prune: 3.0,
        step_scale: 100.0,
        source: SourceKind::Csv,
        csv: None,
        ..NtkSettings::default()
    };
    settings.sanitize();
    assert_eq!(settings.bias, 0.0);
    assert_eq!(settings.width, 16);
    assert!(settings.prune < 1.0 && settings.step_scale < 2.0);
    assert_eq!(settings.source, SourceKind::Random, "no CSV file to read");
    settings.config().validate().unwrap();
}

#[test]
fn htl_lab_gallery_shows_hard_samples_and_attending_reuses_the_populations() {
    use sparsefield::compute::htl::data::Split;
    use sparsefield::compute::htl::population::PopulationConfig;
    let mut harness = harness(false);
    {
        let settings = &mut harness.state_mut().lab_mut::<HtlLab>().settings;
        settings.population = PopulationConfig { models: 3, epochs: 15, finetune_epochs: 3, ..Default::default() };
    }
    harness.run_steps(4);
    assert_eq!(harness.state().lab::<HtlLab>().state.analyses_started(), 0, "the lab computes only when it is open");
    harness.get_by_label("Hard samples — what pruning forgets").click();
    let finished = |app: &SparseFieldApp| {
        let r = app.lab::<HtlLab>().state.results();
        !app.lab::<HtlLab>().state.is_running() && (r.comparison.is_some() || r.comparison_note.is_some())
    };
    step_until(&mut harness, 120, "the first analysis", finished);
    harness.run_steps(3);
    let first = harness.state().lab::<HtlLab>().state.results().clone();
    let pie_train = first.train_scores.as_ref().unwrap().iter().filter(|s| s.pie).count();
    assert!(pie_train > 0, "the default run finds hard training samples");
    assert!(first.comparison.is_some());

    // The gallery: 48 thumbnails, hardest first (PIE samples lead), each a clickable image.
    let gallery = harness.state().lab::<HtlLab>().state.gallery().to_vec();
    assert_eq!(gallery.len(), 48);
    assert!(gallery[0].score.pie && gallery[0].rank == 1);
    let by = sparsefield::compute::htl::pie::RankBy::Pie;
    assert!(gallery.windows(2).all(|w| by.score(&w[0].score) >= by.score(&w[1].score)), "hardest first");
    harness.get_by_label_contains("Gallery: 48 of 1438 matching training samples");
    let name = first.data.as_ref().unwrap().train_names[gallery[0].score.index].clone();
    harness.get_by_label(&format!("sample {name}")).click();
    harness.run_steps(2);
    assert_eq!(harness.state().lab::<HtlLab>().settings.selected, Some((Split::Train, gallery[0].score.index)));
    harness.get_by_label_contains("dense modal");
    harness.get_by_label("PIE rate per group, % of training samples");
    // Every glyph of the help text exists in the fonts (a missing one panics when drawn).
    harness.get_by_label("About this lab").click();
    harness.run_steps(2);
    harness.get_by_label_contains("pruning-identified exemplar");

    // PIE only: the gallery keeps exactly the PIE samples.
    harness.get_by_label("PIE only").click();
    harness.run_steps(2);
    let shown = harness.state().lab::<HtlLab>().state.gallery();
    assert_eq!(shown.len(), pie_train.min(48));
    assert!(shown.iter().all(|item| item.score.pie));

    // A new weight retrains only the attended models: the populations are reused.
    harness.state_mut().lab_mut::<HtlLab>().settings.attend.weight = 6.0;
    step_until(&mut harness, 5, "an analysis for the new weight", |app| {
        app.lab::<HtlLab>().state.analyses_started() == 2
    });
    step_until(&mut harness, 120, "the analysis with the new weight", |app| {
        finished(app) && (app.lab::<HtlLab>().state.results().config.attend.weight - 6.0).abs() < 1e-6
    });
    let second = harness.state().lab::<HtlLab>().state.results().clone();
    assert!(std::sync::Arc::ptr_eq(second.populations.as_ref().unwrap(), first.populations.as_ref().unwrap()));
    assert_ne!(second.comparison.as_ref().unwrap().attended, first.comparison.as_ref().unwrap().attended);

    // One key press on the sparsity slider trains new populations.
    harness.get_by_role_and_label(egui::accesskit::Role::Slider, "sparsity").focus();
    harness.run_steps(2);
    harness.key_press(egui::Key::ArrowRight);
    harness.run_steps(2);
    let sparsity = harness.state().lab::<HtlLab>().settings.population.sparsity;
    assert!((sparsity - 0.51).abs() < 1e-9, "the slider moved one step: {sparsity}");
    step_until(&mut harness, 120, "the analysis at the new sparsity", |app| {
        finished(app) && (app.lab::<HtlLab>().state.results().config.population.sparsity - 0.51).abs() < 1e-9
    });
    let third = harness.state().lab::<HtlLab>().state.results().clone();
    assert!(!std::sync::Arc::ptr_eq(third.populations.as_ref().unwrap(), first.populations.as_ref().unwrap()));

    // Everything into a folder; a bad attribute file is reported and changes nothing.
    let ctx = harness.ctx.clone();
    let dir = temp_dir("ui_htl_export");
    harness.state_mut().apply_to::<HtlLab>(&ctx, HtlCommand::Export(dir.clone()));
    for file in
        ["scores.csv", "hardest_train.png", "hardest_test.png", "rates.png", "models.safetensors", "metrics.json"]
    {
        assert!(dir.join(file).is_file(), "{file}: {:?}", harness.state().notifications().last());
    }
    let bad = dir.join("attributes.csv");
    std::fs::write(&bad, "just_one_column\nx\n").unwrap();
    harness.state_mut().apply_to::<HtlLab>(&ctx, HtlCommand::LoadAttributes(bad));
    let last = harness.state().notifications().last().unwrap();
    assert_eq!(last.level, Level::Error);
    assert!(last.text.contains("attributes.csv"), "{}", last.text);
    assert!(harness.state().lab::<HtlLab>().settings.attributes.is_none());
}

#[test]
fn htl_lab_localizes_synthetic_lesions_on_request() {
    use sparsefield::compute::htl::lesion::SyntheticConfig;
    use sparsefield::compute::htl::seg::SegConfig;
    use sparsefield::labs::htl::panel::Task;
    let mut harness = harness(false);
    {
        let settings = &mut harness.state_mut().lab_mut::<HtlLab>().settings;
        settings.lesions = SyntheticConfig { train: 120, test: 40, side: 24, ..SyntheticConfig::default() };
        settings.seg = SegConfig { epochs: 3, finetune_epochs: 1, agreement_threshold: 0.97, ..SegConfig::default() };
        settings.task = Task::Localize;
    }
    harness.run_steps(2);
    harness.get_by_label("Hard samples — what pruning forgets").click();
    harness.run_steps(2);
    harness.get_by_label("localize lesions");
    assert_eq!(
        harness.state().lab::<HtlLab>().state.analyses_started(),
        0,
        "the classification analysis waits while localizing"
    );
    harness.get_by_label_contains("Run the study to see the hard lesions");
    harness.get_by_label("▶ Run localization").click();
    step_until(&mut harness, 120, "the localization study", |app| app.lab::<HtlLab>().state.seg_view().is_some());
    harness.run_steps(3);
    let view = harness.state().lab::<HtlLab>().state.seg_view().unwrap();
    assert_eq!(view.report.train_scores.len(), 120);
    assert!(view.report.attended.is_some());
    assert!(view.report.dense.iou > 0.3, "IoU {}", view.report.dense.iou);
    harness.get_by_label("Hardest training lesions");
    harness.get_by_label("mean IoU (Dice)");
    harness.get_by_label("dark skin");
    let ctx = harness.ctx.clone();
    let dir = temp_dir("ui_htl_localize_export");
    harness.state_mut().apply_to::<HtlLab>(&ctx, HtlCommand::Export(dir.clone()));
    for file in ["seg_scores.csv", "hardest_lesions_train.png", "localize.csv", "localize.png", "metrics.json"] {
        assert!(dir.join(file).is_file(), "{file}: {:?}", harness.state().notifications().last());
    }
    harness.get_by_label("About localization").click();
    harness.run_steps(2);
    harness.get_by_label_contains("Lesion localization: each model is a small segmentation network");
}

#[test]
fn lift_lab_lifts_the_example_live_exports_and_refuses_a_bad_photo() {
    let mut harness = harness(true);
    {
        let lift = &mut harness.state_mut().lab_mut::<LiftLab>().settings;
        lift.resolution = 32;
        lift.lift.steps = 1_000_000;
        lift.lift.reference_rays = 256;
        lift.lift.prior_rays = 128;
        lift.lift.rank_pairs = 64;
        lift.lift.march_steps = 128;
        lift.lift.occupancy_resolution = 32;
        lift.export_size = 24;
    }
    harness.run();
    harness.get_by_label("NeuralLift-360 — one photo to 360°").click();
    harness.run();
    assert_eq!(harness.state().active_lab(), LiftLab::KEY);
    let input = harness.state().lab::<LiftLab>().state.input.clone().expect("the built-in example is prepared");
    assert_eq!((input.width, input.height), (32, 32));
    for label in ["photo", "mask", "rough depth", "render", "Open photo…", "Prior"] {
        // ("mask" is also a loss term in the plot's key.)
        assert!(harness.query_all_by_label(label).next().is_some(), "{label}");
    }
    assert!(
        harness.state().lab::<LiftLab>().state.viewer.view.shown.contains("Press Lift"),
        "{}",
        harness.state().lab::<LiftLab>().state.viewer.view.shown
    );
    // The lab's main action is in the view's toolbar (always in view) as well as in the sidebar.
    let buttons: Vec<_> = harness.get_all_by_label("▶ Lift").collect();
    assert_eq!(buttons.len(), 2);
    buttons.last().unwrap().click();
    harness.run_steps(2);
    assert!(harness.state().lab::<LiftLab>().state.is_lifting(), "{:?}", harness.state().notifications().last());
    let ctx = harness.ctx.clone();
    step_until(&mut harness, 180, "lift progress, a baked view and rendered side views", |app| {
        let lift = &app.lab::<LiftLab>().state;
        lift.jobs().first().is_some_and(|j| j.status.step >= 3) && lift.viewer.baked.is_some() && lift.views.is_some()
    });
    harness.run();
    let shown = harness.state().lab::<LiftLab>().state.viewer.view.shown.clone();
    assert!(shown.contains("fast preview") || shown.contains("full field"), "{shown}");
    assert!(!harness.state().lab::<LiftLab>().state.history.is_empty(), "the plots have data");
    let views = harness.state().lab::<LiftLab>().state.views.as_ref().unwrap();
    assert_eq!(views.novel.len(), 8);
    assert_eq!(views.metrics.novel_psnr_db.len(), 3, "the example's true views are scored");

    harness.get_by_label("✖ Cancel").click();
    step_until(&mut harness, 60, "the lift to stop", |app| !app.lab::<LiftLab>().state.is_lifting());
    assert!(harness.state().lab::<LiftLab>().state.viewer.snapshot.is_some(), "a stopped lift keeps its field");

    let dir = temp_dir("ui_lift_export");
    let _ = std::fs::remove_dir_all(&dir);
    harness.state_mut().apply_to::<LiftLab>(&ctx, LiftCommand::Export(dir.clone()));
    step_until(&mut harness, 120, "the export", |app| {
        app.lab::<LiftLab>().state.jobs().is_empty() && dir.join("turntable.gif").is_file()
    });
    for file in ["nerf.safetensors", "config.json", "metrics.json", "history.csv", "reference.png", "views.png"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }

    // A corrupt photo is refused with its name; the example stays.
    let bad = temp_dir("ui_lift_bad").join("broken.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n not really").unwrap();
    harness.state_mut().apply_to::<LiftLab>(&ctx, LiftCommand::LoadImage(bad));
    let error = harness.state().notifications().iter().find(|n| n.level == Level::Error).map(|n| n.text.clone());
    assert!(error.as_deref().is_some_and(|e| e.contains("broken.png")), "{error:?}");
    assert!(harness.state().lab::<LiftLab>().settings.image.is_none());
    assert!(harness.state().lab::<LiftLab>().state.input.is_some());
}

/// A file dropped on the window, as the windowing layer hands it to egui.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn drop_file(harness: &mut Harness<'static, SparseFieldApp>, path: &std::path::Path) {
    harness.input_mut().dropped_files.push(std::sync::Arc::new(Dropped(path.to_owned())));
    harness.run_steps(2);
}

#[test]
fn dropped_files_go_to_the_lab_that_takes_them() {
    use sparsefield::compute::prune::data::DataSource;
    use sparsefield::labs::ntk::panel::SourceKind;
    let dir = temp_dir("ui-drops");
    let mut harness = harness(false);
    harness.run_steps(2);

    // A CSV of points on the INR lab: only the NTK lab takes it, and comes on screen.
    let points = dir.join("points.csv");
    std::fs::write(&points, (0..20).map(|i| format!("{i},1,{}\n", i % 5)).collect::<String>()).unwrap();
    drop_file(&mut harness, &points);
    assert_eq!(harness.state().active_lab(), NtkLab::KEY);
    assert_eq!(harness.state().lab::<NtkLab>().settings.source, SourceKind::Csv);
    assert_eq!(harness.state().lab::<NtkLab>().settings.csv.as_deref(), Some(points.as_path()));

    // A folder on the pruning lab is that lab's data set; on another lab, a NeRF data set.
    let folder = dir.join("classes");
    std::fs::create_dir_all(folder.join("a")).unwrap();
    harness.get_by_label("Pruning — random masks at init").click();
    harness.run_steps(2);
    drop_file(&mut harness, &folder);
    assert_eq!(harness.state().active_lab(), PruneLab::KEY);
    assert!(
        matches!(&harness.state().lab::<PruneLab>().settings.source, DataSource::Folder { path, .. } if path == &folder),
        "{:?}",
        harness.state().lab::<PruneLab>().settings.source
    );
    harness.get_by_label("INR — fit an image").click();
    harness.run_steps(2);
    drop_file(&mut harness, &folder);
    assert_eq!(harness.state().active_lab(), NerfLab::KEY, "the NeRF lab takes folders elsewhere");

    // A file no lab takes is refused with what each lab would take.
    let odd = dir.join("mesh.xyz");
    std::fs::write(&odd, "0 0 0\n").unwrap();
    drop_file(&mut harness, &odd);
    let last = harness.state().notifications().last().unwrap().clone();
    assert_eq!(last.level, Level::Error);
    assert!(last.text.contains("mesh.xyz") && last.text.contains("unsupported file type"), "{}", last.text);
    assert!(last.text.contains("NeRF data set") && last.text.contains("CSV of points"), "{}", last.text);
}

/// Settings survive a restart: every lab reads back what it saved.
#[test]
fn every_lab_restores_the_settings_it_saved() {
    let mut harness = harness(false);
    harness.run_steps(1);
    harness.state_mut().lab_mut::<NerfLab>().settings.steps = 1234;
    harness.state_mut().lab_mut::<InrLab>().settings.training_size = 48;
    harness.state_mut().lab_mut::<NtkLab>().settings.bias = 0.75;
    harness.state_mut().lab_mut::<HtlLab>().settings.population.models = 7;
    harness.state_mut().lab_mut::<LiftLab>().settings.export_size = 96;
    harness.state_mut().lab_mut::<EditLab>().settings.fit_steps = 77;
    harness.state_mut().lab_mut::<PruneLab>().settings.sweep_points = 9;
    harness.state_mut().lab_mut::<sparsefield::labs::stega::StegaLab>().settings.steps = 321;
    harness.state_mut().lab_mut::<GnnLab>().settings.hidden = 64;
    let mut fresh = sparsefield::labs::registry();
    let app = harness.state();
    assert_eq!(app.labs().count(), fresh.len());
    for (used, lab) in app.labs().zip(&mut fresh) {
        let key = lab.key();
        assert_eq!(used.key(), key);
        let saved = used.persist().unwrap_or_else(|| panic!("{key} saves its settings"));
        assert_ne!(Some(&saved), lab.persist().as_ref(), "{key}: the changed setting is saved");
        lab.restore(&saved);
        assert_eq!(lab.persist().as_ref(), Some(&saved), "{key} reads back what it saved");
        // Unreadable saved settings give the defaults instead of an error.
        lab.restore("{ not json");
    }
    let nerf = fresh.iter().find(|lab| lab.key() == NerfLab::KEY).unwrap();
    assert!(!nerf.persist().unwrap().contains("1234"), "unreadable settings fall back to the defaults");
}

/// eframe's storage, in memory.
#[derive(Default)]
struct MemoryStorage(std::collections::HashMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }

    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }

    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }

    fn flush(&mut self) {}
}

/// Settings saved by an earlier version (every lab's settings in one struct, the lab an enum)
/// are taken over by each lab; what is saved now is read back as saved.
#[test]
fn settings_of_an_earlier_version_are_taken_over_and_saved_ones_restored() {
    use sparsefield::app::{ShellSettings, restore, save};
    use sparsefield::labs::inr::ImageSource;
    use sparsefield::labs::inr::panel::InrSettings;
    use sparsefield::labs::nerf::DataSource;
    use sparsefield::labs::nerf::panel::NerfSettings;
    use sparsefield::labs::ntk::panel::NtkSettings;
    use sparsefield::ui::theme::ThemeChoice;

    /// The shape the earlier version saved (a part of it: the rest took its defaults).
    #[derive(serde::Serialize)]
    enum LabId {
        Nerf,
    }
    #[derive(serde::Serialize)]
    struct Settings {
        theme: ThemeChoice,
        lab: LabId,
        inr: InrSettings,
        inr_image: ImageSource,
        ntk: NtkSettings,
        nerf: NerfSettings,
        nerf_data: DataSource,
        train_on_start: bool,
    }
    let theme = ThemeChoice::default().toggled();
    let folder = std::path::PathBuf::from("/data/lego");
    let old = Settings {
        theme,
        lab: LabId::Nerf,
        inr: InrSettings { training_size: 64, ..InrSettings::default() },
        inr_image: ImageSource::File("/photos/cat.png".into()),
        ntk: NtkSettings { bias: 0.75, ..NtkSettings::default() },
        nerf: NerfSettings { steps: 4321, ..NerfSettings::default() },
        nerf_data: DataSource::Folder(folder.clone()),
        train_on_start: false,
    };
    let mut storage = MemoryStorage::default();
    eframe::set_value(&mut storage, eframe::APP_KEY, &old);

    let mut labs = sparsefield::labs::registry();
    let shell = restore(&storage, &mut labs);
    assert_eq!((shell.theme, shell.train_on_start), (theme, false), "the shell's settings are kept");
    let lab = |key: &str| labs.iter().find(|l| l.key() == key).unwrap().persist().unwrap();
    assert!(lab(InrLab::KEY).contains("\"training_size\":64") && lab(InrLab::KEY).contains("cat.png"));
    assert!(lab(NerfLab::KEY).contains("4321") && lab(NerfLab::KEY).contains("lego"));
    assert!(lab(NtkLab::KEY).contains("\"bias\":0.75"));
    let defaults = sparsefield::labs::registry();
    let default_of = |key: &str| defaults.iter().find(|l| l.key() == key).unwrap().persist().unwrap();
    assert_eq!(lab(HtlLab::KEY), default_of(HtlLab::KEY), "a lab the old settings did not name keeps its defaults");

    // Saved in the new layout and read back: the same, the lab on screen included.
    let shell = ShellSettings { lab: NerfLab::KEY.to_owned(), ..shell };
    let mut storage = MemoryStorage::default();
    save(&mut storage, &shell, &labs);
    let mut again = sparsefield::labs::registry();
    assert_eq!(restore(&storage, &mut again), shell);
    for (a, b) in labs.iter().zip(&again) {
        assert_eq!(a.persist(), b.persist(), "{}", a.key());
    }
}

/// Where the system's file dialog cannot open, the built-in browser picks the file: it lists the
/// folders and only the kinds the lab reads, and the path goes to the lab that asked.
#[test]
fn the_built_in_file_browser_opens_an_image_for_the_inr_lab() {
    use sparsefield::compute::image_io::{ImageData, save_png};
    use sparsefield::labs::inr::ImageSource;
    let dir = temp_dir("ui-browser");
    let photo = dir.join("photo.png");
    save_png(&ImageData::new(20, 10, 1, vec![0.5; 200]).unwrap(), &photo).unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    std::fs::create_dir_all(dir.join("more")).unwrap();
    let mut harness = harness(false);
    {
        let shell = harness.state_mut().shell_settings_mut();
        shell.builtin_file_browser = true;
        shell.recent_folders = vec![dir.clone()];
    }
    harness.run_steps(2);
    harness.get_by_label("Open image…").click();
    harness.run_steps(3);
    harness.get_by_label("Open a file");
    harness.get_by_label("📁 more");
    assert!(harness.query_by_label_contains("notes.txt").is_none(), "only the kinds the lab reads are listed");
    harness.get_by_label("🗋 photo.png").click();
    harness.run_steps(2);
    harness.get_by_label("Open").click();
    harness.run_steps(3);
    assert!(harness.query_by_label("Open a file").is_none(), "the browser closes");
    let inr = &harness.state().lab::<InrLab>();
    assert_eq!(inr.image_source, ImageSource::File(photo.clone()));
    assert_eq!(inr.state.image().map(|i| (i.width, i.height)), Some((20, 10)));
    assert_eq!(harness.state().shell_settings().recent_folders.first(), Some(&dir));

    // Cancelling changes nothing.
    harness.get_by_label("Open image…").click();
    harness.run_steps(3);
    harness.get_by_label("Cancel").click();
    harness.run_steps(3);
    assert!(harness.query_by_label("Open a file").is_none());
    assert_eq!(harness.state().lab::<InrLab>().image_source, ImageSource::File(photo));
}

/// Jobs of different labs take turns: a second heavy job waits while the first runs (the job
/// bar says so), and runs to the end once the first is cancelled.
#[test]
fn a_second_heavy_job_waits_for_the_running_one_then_runs() {
    let mut harness = harness(false);
    let ctx = harness.ctx.clone();
    {
        let fit = &mut harness.state_mut().lab_mut::<InrLab>().settings.fit;
        (fit.width, fit.hidden_layers, fit.steps, fit.snapshot_interval_secs) = (32, 2, 1_000_000, 0.2);
        let classify = &mut harness.state_mut().lab_mut::<EditLab>().settings.classify;
        (classify.limit, classify.inr_steps, classify.epochs) = (100, 30, 3);
    }
    harness.run_steps(2);
    harness.state_mut().apply_to::<InrLab>(&ctx, InrCommand::Train);
    step_until(&mut harness, 60, "the fit to run", |app| {
        app.lab::<InrLab>().state.fit_job().is_some_and(|job| job.status().step >= 3)
    });
    harness.state_mut().apply_to::<EditLab>(&ctx, EditCommand::Classify);
    harness.run_steps(3);
    assert!(harness.state().lab::<EditLab>().state.is_classifying());
    assert_eq!(harness.state().waiting_jobs().len(), 1, "the second job waits");
    harness.get_by_label_contains("waiting for the running job");
    let fit_before = harness.state().lab::<InrLab>().state.fit_job().unwrap().status().step;
    step_until(&mut harness, 60, "the first job to go on", |app| {
        app.lab::<InrLab>().state.fit_job().is_some_and(|job| job.status().step > fit_before + 5)
    });
    assert!(harness.state().lab::<EditLab>().state.is_classifying(), "it does not run while it waits");
    assert!(harness.state().lab::<EditLab>().state.classification().is_none());
    assert_eq!(harness.state().waiting_jobs().len(), 1, "the second job still waits");
    let fit = harness.state().lab::<InrLab>().state.fit_job().unwrap();
    assert!(!fit.status().paused, "the first job keeps running");
    let fit = fit.id();
    harness.state_mut().apply(&ctx, Command::CancelJob(fit));
    step_until(&mut harness, 180, "the waiting job to run and finish", |app| {
        app.lab::<EditLab>().state.classification().is_some()
    });
    assert!(harness.state().waiting_jobs().is_empty());
}

/// A click is applied in the frame that takes it in, while a fit keeps the machine busy.
#[test]
fn a_click_applies_in_the_next_frame_while_a_fit_runs() {
    let mut harness = harness(true);
    {
        let fit = &mut harness.state_mut().lab_mut::<InrLab>().settings.fit;
        (fit.width, fit.steps, fit.snapshot_interval_secs) = (64, 1_000_000, 0.2);
    }
    harness.run_steps(2);
    harness.get_by_label("▶ Train").click();
    step_until(&mut harness, 60, "the fit to run", |app| {
        app.lab::<InrLab>().state.fit_job().is_some_and(|job| job.status().step >= 3)
    });
    harness.get_by_label("⏸ Pause").click();
    harness.step();
    assert!(
        harness.state().lab::<InrLab>().state.fit_job().is_some_and(|job| job.status().paused),
        "the pause is applied by the frame that took the click in"
    );
    harness.step();
    // The job bar and the lab's own status line both say so.
    assert_eq!(harness.get_all_by_label_contains("paused").count(), 2);
    harness.get_by_label("▶ Resume").click();
    harness.step();
    assert!(harness.state().lab::<InrLab>().state.fit_job().is_some_and(|job| !job.status().paused));
    harness.get_by_label("✖ Cancel").click();
    step_until(&mut harness, 30, "the fit to stop", |app| !app.lab::<InrLab>().state.is_training());
}

/// The edit lab says when the INR lab's fit is still running and which snapshot training would
/// use, and can wait for the fit to end before it trains.
#[test]
fn the_edit_lab_names_the_inr_snapshot_it_uses_and_can_wait_for_the_fit() {
    use sparsefield::compute::inr::insp::{EditKind, EditTask, OperatorConfig};
    let mut harness = harness(false);
    let ctx = harness.ctx.clone();
    {
        let inr = &mut harness.state_mut().lab_mut::<InrLab>().settings;
        inr.training_size = 32;
        (inr.fit.width, inr.fit.steps, inr.fit.snapshot_interval_secs) = (32, 1_000_000, 0.2);
        let edit = &mut harness.state_mut().lab_mut::<EditLab>().settings;
        edit.task = EditTask::new(EditKind::GaussianBlur);
        edit.operator = OperatorConfig {
            order: 2,
            width: 16,
            hidden_layers: 2,
            steps: 1_000_000,
            batch: 256,
            ..edit.operator.clone()
        };
        edit.fit_steps = 40;
        edit.fit_width = 16;
    }
    harness.run_steps(6);
    harness.state_mut().apply_to::<InrLab>(&ctx, InrCommand::Train);
    step_until(&mut harness, 60, "an INR snapshot", |app| {
        app.lab::<InrLab>().state.fit_job().is_some_and(|job| job.status().step >= 3)
            && app.lab::<InrLab>().state.network().is_some()
    });
    harness.get_by_label("INR edit — process INRs").click();
    harness.run_steps(3);
    harness.get_by_label_contains("is still fitting");
    harness.get_by_label("Train when the fit ends").click();
    harness.run_steps(3);
    assert!(!harness.state().lab::<EditLab>().state.is_training(), "it waits for the fit");
    let fit = harness.state().lab::<InrLab>().state.fit_job().unwrap().id();
    harness.state_mut().apply(&ctx, Command::CancelJob(fit));
    step_until(&mut harness, 60, "the operator to start once the fit has ended", |app| {
        app.lab::<EditLab>().state.is_training()
    });
    assert!(harness.query_by_label_contains("is still fitting").is_none());
    let job = harness.state().lab::<EditLab>().state.jobs()[0].id;
    harness.state_mut().apply(&ctx, Command::CancelJob(job));
    step_until(&mut harness, 60, "the operator to stop", |app| !app.lab::<EditLab>().state.is_training());
}

/// Each lab keeps its own sidebar scroll position: scrolling one lab's controls leaves the next
/// lab's at the top, and coming back finds them where they were.
#[test]
fn each_lab_keeps_its_own_sidebar_scroll_position() {
    let mut harness = harness(false);
    harness.run_steps(2);
    let nerf_top = {
        harness.get_by_label("NeRF — radiance fields").click();
        harness.run_steps(3);
        harness.get_by_label("Data set").rect().top()
    };
    harness.get_by_label("INR — fit an image").click();
    harness.run_steps(3);
    let before = harness.get_by_label("Open image…").rect().top();
    for _ in 0..3 {
        harness.get_by_label("Open image…").scroll_down();
        harness.run_steps(2);
    }
    // Let the scroll animation settle.
    harness.run_steps(60);
    let scrolled = harness.get_by_label("Open image…").rect().top();
    assert!(scrolled < before - 50.0, "the INR lab's sidebar scrolled: {before} → {scrolled}");
    harness.get_by_label("NeRF — radiance fields").click();
    harness.run_steps(3);
    assert_eq!(harness.get_by_label("Data set").rect().top(), nerf_top, "the NeRF lab's sidebar is still at the top");
    harness.get_by_label("INR — fit an image").click();
    harness.run_steps(10);
    assert_eq!(
        harness.get_by_label("Open image…").rect().top(),
        scrolled,
        "the INR lab's sidebar is where it was left"
    );
}

/// The INR lab exports its INR as a PNG of the chosen size in the background, and says where.
#[test]
fn the_inr_lab_exports_a_png_of_the_chosen_size() {
    let mut harness = harness(false);
    let dir = temp_dir("ui_inr_export");
    let inr = dir.join("init.safetensors");
    SirenWeights::init(SirenConfig::image(1, 32, 2, 30.0), 0).save(&inr, &[]).unwrap();
    let ctx = harness.ctx.clone();
    harness.state_mut().apply_to::<InrLab>(&ctx, InrCommand::LoadInr(inr));
    {
        let settings = &mut harness.state_mut().lab_mut::<InrLab>().settings;
        (settings.export_width, settings.export_height) = (48, 20);
    }
    let png = dir.join("inr.png");
    let _ = std::fs::remove_file(&png);
    harness.state_mut().apply_to::<InrLab>(&ctx, InrCommand::ExportPng(png.clone()));
    step_until(&mut harness, 60, "the export", |app| app.lab::<InrLab>().state.jobs().is_empty());
    let image = sparsefield::compute::image_io::load_image(&png).expect("the PNG is written").image;
    assert_eq!((image.width, image.height), (48, 20));
    let last = harness.state().notifications().last().unwrap();
    assert_eq!(last.level, Level::Success);
    assert!(last.text.contains("inr.png"), "{}", last.text);
}

/// Every widget with a visible name, where it was drawn, and whether it is a plain label.
fn named_widgets(harness: &Harness<'static, SparseFieldApp>) -> Vec<(String, egui::Rect, bool)> {
    use egui::accesskit::Role;
    use egui_kittest::kittest::{By, NodeT};
    let widget = |role: Role| {
        matches!(
            role,
            Role::Label
                | Role::Button
                | Role::CheckBox
                | Role::RadioButton
                | Role::Slider
                | Role::ComboBox
                | Role::TextInput
                | Role::SpinButton
                | Role::Link
        )
    };
    harness
        .query_all(By::new().include_labels().predicate(move |node| widget(node.role())))
        .filter_map(|node| {
            let ak = node.accesskit_node();
            let name = ak.label().or_else(|| ak.value()).unwrap_or_default();
            (!name.trim().is_empty()).then(|| (name, node.rect(), ak.role() == Role::Label))
        })
        .collect()
}

/// Each lab at 1280×800 and at 1920×1080: its primary action is on screen without scrolling,
/// no name runs past the sidebar's edge or the window's, and a snapshot of each.
#[test]
fn every_lab_fits_1280x800_and_1920x1080_without_clipped_labels() {
    let labs: [(&str, &str); 9] = [
        (InrLab::KEY, "▶ Train"),
        (EditLab::KEY, "▶ Train operator"),
        (NerfLab::KEY, "▶ Train"),
        (LiftLab::KEY, "▶ Lift"),
        (sparsefield::labs::stega::StegaLab::KEY, "▶ Embed"),
        (PruneLab::KEY, "▶ Run sweep"),
        (NtkLab::KEY, "bias B"),
        (HtlLab::KEY, "sparsity"),
        (GnnLab::KEY, "sparsity"),
    ];
    let mut problems = Vec::new();
    for (width, height) in [(1280.0, 800.0), (1920.0, 1080.0)] {
        let mut harness = harness_sized(true, egui::vec2(width, height));
        let ctx = harness.ctx.clone();
        // A small GNN study (the full one takes minutes), the sweep with every curve.
        harness.state_mut().lab_mut::<GnnLab>().settings =
            sparsefield::labs::gnn::panel::GnnSettings { hidden: 16, epochs: 30, sweep_seeds: 1, ..Default::default() };
        // A third message (an error) after the two the app starts with: every one must show. The
        // path is relative and names no file, so the message (and the snapshot) is the same in
        // every checkout.
        harness.run_steps(2);
        let missing = std::path::PathBuf::from("no-such-folder/broken.png");
        harness.state_mut().apply_to::<InrLab>(&ctx, InrCommand::LoadImage(missing));
        for (key, primary) in labs {
            harness.state_mut().apply(&ctx, Command::SelectLab(key));
            harness.run_steps(3);
            step_until(&mut harness, 240, &format!("the {key} lab's jobs to finish"), |app| {
                app.labs().all(|lab| lab.jobs().is_empty())
            });
            harness.run_steps(10);
            let window = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(width, height));
            let sidebar = harness.state().sidebar_rect();
            let widgets = named_widgets(&harness);
            // The sidebar's column; below it, the messages (and sidebar items scrolled under them).
            let in_sidebar = |rect: &egui::Rect| rect.left() < sidebar.right() - 1.0 && rect.top() >= sidebar.top();
            let under_sidebar =
                |rect: &egui::Rect| rect.top() >= sidebar.bottom() - 1.0 && rect.top() <= window.bottom();
            let visible =
                |rect: &egui::Rect| window.contains_rect(*rect) && (!in_sidebar(rect) || sidebar.contains_rect(*rect));
            if !widgets.iter().any(|(name, rect, _)| name == primary && visible(rect)) {
                let found: Vec<_> = widgets.iter().filter(|(name, _, _)| name == primary).collect();
                problems.push(format!("{key} at {width}×{height}: «{primary}» not on screen ({found:?})"));
            }
            let messages: Vec<String> = harness.state().notifications().iter().map(|n| n.text.clone()).collect();
            assert!(messages.len() >= 2, "{messages:?}");
            // The newest four show without scrolling (older ones scroll).
            for message in messages.iter().rev().take(4) {
                match widgets.iter().find(|(name, _, _)| name.contains(message.as_str())) {
                    Some((_, rect, _)) if window.contains_rect(*rect) => {}
                    other => {
                        problems.push(format!("{key} at {width}×{height}: message «{message}» cut off ({other:?})"));
                    }
                }
            }
            for (name, rect, label) in &widgets {
                let clipped = if in_sidebar(rect) && !under_sidebar(rect) {
                    rect.right() > sidebar.right() + 1.0
                } else {
                    rect.right() > window.right() + 1.0
                };
                if clipped {
                    problems.push(format!("{key} at {width}×{height}: «{name}» clipped at the right ({rect:?})"));
                }
                // The central panel ends where the sidebar does (the messages are below both): a
                // control across that line is cut off (labels there may be a scroll area's edge).
                if !label
                    && !in_sidebar(rect)
                    && rect.top() < sidebar.bottom() - 1.0
                    && rect.bottom() > sidebar.bottom() + 1.0
                {
                    problems.push(format!("{key} at {width}×{height}: «{name}» cut off at the bottom ({rect:?})"));
                }
            }
            // The labs' status lines end with how long their work took (a few digits that differ
            // from run to run): a little more room than the other snapshots.
            let options = snapshot_options().max_failed_pixels(1200);
            if let Err(error) = harness.try_snapshot_options(format!("lab_{key}_{width}x{height}"), &options) {
                problems.push(format!("{key} at {width}×{height}: {error}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The StegaNeRF lab marks the NeRF lab's field: *Embed* starts a job, the secret recovered from
/// the view at rest appears and follows the camera, and an image without the secret reads as
/// clean.
#[test]
fn stega_lab_embeds_recovers_the_view_and_reads_image_files() {
    use sparsefield::labs::stega::{StegaCommand, StegaLab};
    let mut harness = harness(false);
    {
        let nerf = &mut harness.state_mut().lab_mut::<NerfLab>().settings;
        nerf.demo_size = 32;
        nerf.steps = 300;
        nerf.batch_samples = 4096;
    }
    let ctx = harness.ctx.clone();
    harness.state_mut().apply(&ctx, Command::SelectLab(NerfLab::KEY));
    step_until(&mut harness, 120, "the demo scene to load", |app| app.lab::<NerfLab>().state.dataset.is_some());
    harness.state_mut().apply_to::<NerfLab>(&ctx, NerfCommand::Train);
    step_until(&mut harness, 240, "stage 1 to train", |app| {
        !app.lab::<NerfLab>().state.is_training() && app.lab::<NerfLab>().state.viewer.snapshot.is_some()
    });
    {
        let stega = &mut harness.state_mut().lab_mut::<StegaLab>().settings;
        stega.secret_side = 32;
        stega.steps = 400;
        // A 32² scene: the repository's coupling gets the field moving within a short run.
        stega.decoder_trains_field = true;
        stega.field_lr = 2e-3;
    }
    harness.state_mut().apply(&ctx, Command::SelectLab(StegaLab::KEY));
    harness.run_steps(3);
    let label = harness.state().lab::<StegaLab>().state.stage1.as_ref().map(|s| s.label.clone());
    assert!(label.as_deref().is_some_and(|l| l.starts_with("NeRF lab")), "the NeRF lab's field is taken: {label:?}");
    harness.get_by_label("▶ Embed").click();
    harness.run_steps(2);
    assert!(
        harness.state().lab::<StegaLab>().state.is_embedding(),
        "Embed starts stage 2: {:?}",
        harness.state().notifications()
    );
    assert!(harness.state().lab::<StegaLab>().state.jobs().iter().any(|j| j.name == "Embed secret"));
    step_until(&mut harness, 600, "stage 2 to finish", |app| {
        let s = &app.lab::<StegaLab>().state;
        !s.is_embedding() && s.metrics.is_some()
    });
    let metrics = harness.state().lab::<StegaLab>().state.metrics.clone().unwrap();
    assert!(metrics.classifier_accuracy > 0.9, "{metrics:?}");
    // The view at rest is decoded; a new camera gives a new recovery.
    let view_key = |app: &SparseFieldApp| app.lab::<StegaLab>().state.view.as_ref().map(|(k, _)| *k);
    step_until(&mut harness, 60, "the view to be decoded", |app| view_key(app).is_some());
    let first = view_key(harness.state());
    let view = harness.state().lab::<StegaLab>().state.view.as_ref().unwrap().1.clone();
    assert!(view.recovery.carries_secret(), "the marked view carries the secret: score {}", view.recovery.score);
    {
        let viewer = &mut harness.state_mut().lab_mut::<StegaLab>().state.viewer;
        viewer.view.orbit.azimuth += 0.7;
        viewer.view.last_change = -10.0;
    }
    step_until(&mut harness, 60, "the new view to be decoded", |app| view_key(app).is_some() && view_key(app) != first);
    // A clean image (stage 1's render of the same view) reads as having no secret.
    let dir = temp_dir("ui_stega");
    sparsefield::compute::image_io::save_png(&view.renders.stage1, &dir.join("clean.png")).unwrap();
    harness.state_mut().apply_to::<StegaLab>(&ctx, StegaCommand::RecoverImage(dir.join("clean.png")));
    let found = harness.state().lab::<StegaLab>().state.from_file.as_ref().map(|f| f.recovery.carries_secret());
    assert_eq!(found, Some(false), "a clean image carries no secret");
    let note = harness.state().notifications().last().unwrap().text.clone();
    assert!(note.contains("clean.png") && note.contains("no secret found"), "{note}");
    harness.run_steps(2);
    harness.get_by_label_contains("no secret found (score");
}
