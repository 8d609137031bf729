//! Shaders (naga validation and translation), GPU-mirroring struct sizes, the progressive
//! scheduler, and the GPU evaluation of an INR against the CPU's.

use std::sync::Arc;

use candle_core::{DType, Device};
use sparsefield::compute::image_io::ImageData;
use sparsefield::compute::inr::{self, FieldView, Siren, SirenConfig, SirenWeights};
use sparsefield::render::gpu_types::MIRRORS;
use sparsefield::render::inr_view::{
    Budget, InrGpu, Versioned, ViewMode, ViewRequest, ViewWindow, WarmUp, WarmUpStage, gpu_weight_layout,
    warm_up_shaders,
};
use sparsefield::render::progressive::{LEVELS, Pacer, Progressive, level_grid};
use sparsefield::render::{HeadlessGpu, SHADERS, wgpu_setup};

use super::common::gpu;

fn parse_and_validate(name: &str, source: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let module =
        naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    (module, info)
}

#[test]
fn every_shader_validates_and_translates_for_vulkan_and_gl() {
    let on_disk: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    assert_eq!(on_disk.len(), SHADERS.len(), "every file in shaders/ must be listed in render::SHADERS");
    for (name, source) in SHADERS {
        assert!(on_disk.iter().any(|n| n == name), "{name} is not in shaders/");
        let (module, info) = parse_and_validate(name, source);
        naga::back::spv::write_vec(&module, &info, &naga::back::spv::Options::default(), None)
            .unwrap_or_else(|e| panic!("{name} → SPIR-V: {e}"));
        // The GL backend (GLES 3.1 on Mesa's llvmpipe) compiles every entry point separately.
        for entry in &module.entry_points {
            let mut glsl = String::new();
            let options = naga::back::glsl::Options::default();
            let pipeline = naga::back::glsl::PipelineOptions {
                shader_stage: entry.stage,
                entry_point: entry.name.clone(),
                multiview: None,
            };
            naga::back::glsl::Writer::new(
                &mut glsl,
                &module,
                &info,
                &options,
                &pipeline,
                naga::proc::BoundsCheckPolicies::default(),
            )
            .and_then(|mut w| w.write())
            .unwrap_or_else(|e| panic!("{name}:{} → GLSL: {e}", entry.name));
        }
    }
}

#[test]
fn gpu_mirroring_structs_have_the_wgsl_sizes() {
    for (file, struct_name, rust_size) in MIRRORS {
        let source = SHADERS.iter().find(|(n, _)| *n == file).unwrap().1;
        let (module, _) = parse_and_validate(file, source);
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let (handle, _) = module
            .types
            .iter()
            .find(|(_, ty)| ty.name.as_deref() == Some(struct_name))
            .unwrap_or_else(|| panic!("{struct_name} not in {file}"));
        assert_eq!(layouter[handle].size as usize, rust_size, "{file}: {struct_name}");
        assert_eq!(rust_size % 16, 0, "{struct_name}: uniform structs are padded to 16 bytes");
    }
}

#[test]
fn wgpu_setup_asks_for_the_adapters_full_limits() {
    let eframe::egui_wgpu::WgpuSetup::CreateNew(setup) = wgpu_setup() else { panic!("expected CreateNew") };
    let gpu = gpu();
    // The descriptor function is what egui-wgpu calls with the chosen adapter.
    let instance = eframe::egui_wgpu::wgpu::Instance::new(
        eframe::egui_wgpu::wgpu::InstanceDescriptor::new_without_display_handle_from_env(),
    );
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let descriptor = (setup.device_descriptor)(&adapter);
    assert_eq!(descriptor.required_limits, adapter.limits());
    assert!(gpu.device.limits().max_storage_buffers_per_shader_stage >= 3, "storage buffers must work (GL too)");
}

#[test]
fn progressive_covers_every_row_of_every_level_then_stops() {
    let full = (100, 60);
    let mut p = Progressive::default();
    let mut covered: Vec<Vec<bool>> = LEVELS.iter().map(|&f| vec![false; level_grid(full, f).1 as usize]).collect();
    let mut frames = 0;
    while let Some(item) = p.plan(1, full, 500, 0) {
        assert!(item.row_end > item.row_begin);
        assert!(
            u64::from(item.grid.0) * u64::from(item.row_end - item.row_begin) <= 500
                || item.row_end - item.row_begin == 1
        );
        for row in item.row_begin..item.row_end {
            assert!(!covered[item.level][row as usize], "row {row} of level {} twice", item.level);
            covered[item.level][row as usize] = true;
        }
        p.complete(item);
        frames += 1;
        assert!(frames < 1000);
    }
    // 1/8 (13×8) and 1/4 (25×15) fit the budget of 500 whole, 1/2 (50×30) does not: refinement
    // starts at the finest level that fits in one frame, 1/4, and covers every later level.
    assert!(covered[0].iter().all(|&c| !c), "levels coarser than the start are skipped");
    assert!(covered[1..].iter().all(|rows| rows.iter().all(|&c| c)), "a level was left incomplete");
    assert!(p.is_done());
    assert_eq!(p.shown(), Some((LEVELS.len() - 1, full)));
    // Same key: nothing more. New key: starts again.
    assert!(p.plan(1, full, 500, 0).is_none());
    let restart = p.plan(2, full, 500, 0).unwrap();
    assert_eq!((restart.level, restart.row_begin), (1, 0));
    // With a tiny budget it starts at the coarsest level.
    let mut slow = Progressive::default();
    assert_eq!(slow.plan(1, full, 10, 0).unwrap().level, 0);
}

#[test]
fn progressive_adopts_new_weights_level_by_level() {
    let full = (100, 60);
    let mut p = Progressive::default();
    // 1/8 is 13×8 = 104 cells: a budget of 100 covers 7 rows a frame. Weights 2 arrive mid-level.
    let first = p.plan(1, full, 100, 1).unwrap();
    assert_eq!((first.level, first.row_begin, first.row_end), (0, 0, 7));
    p.complete(first);
    let rest = p.plan(1, full, 100, 2).unwrap();
    assert_eq!((rest.level, rest.row_begin), (0, 7), "the level under way continues instead of restarting");
    p.complete(rest);
    // Finish every level with weights 2, then weights 3 recompute the full grid only (6000 cells,
    // 10 frames at a budget of 600: within MAX_STALE_FRAMES).
    while let Some(item) = p.plan(1, full, 600, 2) {
        p.complete(item);
    }
    assert!(p.is_done());
    let again = p.plan(1, full, 600, 3).unwrap();
    assert_eq!((again.level, again.row_begin, again.grid), (LEVELS.len() - 1, 0, full));
    assert_eq!(p.shown(), Some((LEVELS.len() - 1, full)), "the old image stays shown meanwhile");
}

/// While weights keep changing, a slow adapter stays at the finest level it can refresh within
/// `MAX_STALE_FRAMES` frames, and refines further once they stop.
#[test]
fn progressive_keeps_changing_weights_fresh_at_an_affordable_level() {
    let full = (400, 400);
    let budget = 2000; // 1/8 (50×50) takes 2 frames, 1/4 5, 1/2 (200×200) 20, full (400×400) 80 > 30
    let mut p = Progressive::default();
    let mut generation = 0;
    let mut levels_started = Vec::new();
    for _ in 0..200 {
        generation += 1; // new weights every frame
        let item = p.plan(1, full, budget, generation).unwrap();
        if item.row_begin == 0 {
            levels_started.push(item.level);
        }
        p.complete(item);
    }
    assert!(levels_started.iter().all(|&l| l <= 2), "never starts full resolution while training: {levels_started:?}");
    assert_eq!(p.shown().map(|(level, _)| level), Some(2));
    // Training stops: refinement reaches full resolution.
    while let Some(item) = p.plan(1, full, budget, generation) {
        p.complete(item);
    }
    assert_eq!(p.shown(), Some((LEVELS.len() - 1, full)));
}

#[test]
fn progressive_goes_straight_to_full_resolution_when_the_budget_allows() {
    let mut p = Progressive::default();
    let item = p.plan(7, (64, 32), u64::MAX, 0).unwrap();
    assert_eq!((item.level, item.grid, item.row_begin, item.row_end), (LEVELS.len() - 1, (64, 32), 0, 32));
    assert!(item.completes_level);
    p.complete(item);
    assert!(p.is_done());
    // A budget that fits the quarter-resolution grid whole starts there, not at 1/8.
    let mut q = Progressive::default();
    let quarter = level_grid((64, 32), 4);
    let item = q.plan(1, (64, 32), u64::from(quarter.0 * quarter.1), 0).unwrap();
    assert_eq!(item.grid, quarter);
}

#[test]
fn pacer_budget_follows_the_measured_throughput() {
    let mut pacer = Pacer::default();
    pacer.set_throughput(1e9);
    assert!((pacer.macs_per_frame() - 1e9 * Pacer::TARGET_SECS).abs() < 1.0);
    pacer.set_throughput(f64::NAN);
    assert!((pacer.macs_per_frame() - 1e9 * Pacer::TARGET_SECS).abs() < 1.0, "a bad measurement is ignored");
    pacer.set_throughput(1.0);
    assert!(pacer.macs_per_frame() >= 1e6, "never below a floor");
}

/// The budget follows the adapter: it moves toward the size that takes the target time, by at
/// most ×1.25 up and ×¼ down per dispatch.
#[test]
fn pacer_adapts_toward_the_target_time() {
    let target = Pacer::TARGET_SECS;
    assert!((Pacer::adapt_factor(target) - 1.0).abs() < 1e-12);
    assert!((Pacer::adapt_factor(2.0 * target) - 0.5).abs() < 1e-12);
    assert!((Pacer::adapt_factor(100.0 * target) - 0.25).abs() < 1e-12, "shrinks by at most 4×");
    assert!((Pacer::adapt_factor(target / 100.0) - 1.25).abs() < 1e-12, "grows by at most 1.25×");
    assert!((Pacer::adapt_factor(0.0) - 1.25).abs() < 1e-12);
    assert!((Pacer::adapt_factor(f64::NAN) - 1.25).abs() < 1e-12);
}

/// Submits nothing but a marker and tells the pacer, as a view does after encoding its work.
fn submit_empty(gpu: &HeadlessGpu, pacer: &mut Pacer, frame: u64) {
    gpu.queue.submit([gpu.device.create_command_encoder(&Default::default()).finish()]);
    pacer.note_submitted(&gpu.device, &gpu.queue, frame);
}

/// Work that completes at once lets the budget grow, however long the pause before the next
/// frame: the completion is timed when it happens, not when the next frame looks. (Timed at the
/// next frame, every dispatch looked as slow as the pause between frames, 240 ms while a job
/// trains, and the budget fell to its floor: views stayed coarse for minutes after training.)
/// No new work is allowed while the last is in flight; views of the submitting frame share it.
#[test]
fn pacer_times_completions_not_the_pause_between_frames() {
    let gpu = gpu();
    let mut pacer = Pacer::default();
    pacer.set_throughput(1e8);
    let start = pacer.macs_per_frame();
    let mut frame = 0;
    for _ in 0..4 {
        frame += 1;
        assert!(pacer.budget_pixels(frame, 100, 1.0).is_some());
        submit_empty(&gpu, &mut pacer, frame);
        assert!(pacer.budget_pixels(frame, 100, 1.0).is_some(), "a second view of the same frame");
        // The pause between frames while a job trains.
        std::thread::sleep(std::time::Duration::from_millis(300));
        frame += 1;
        assert!(pacer.budget_pixels(frame, 100, 1.0).is_some(), "the empty work completed long ago");
        // The next frame's views (nothing submitted this frame).
        frame += 1;
        assert!(pacer.budget_pixels(frame, 100, 1.0).is_some());
    }
    let grown = pacer.macs_per_frame();
    assert!((grown / start - 1.25_f64.powi(4)).abs() < 1e-6, "grew ×{} over 4 quick completions", grown / start);
    // Frames without dispatches do not change it.
    for _ in 0..5 {
        frame += 1;
        pacer.budget_pixels(frame, 100, 1.0);
    }
    assert_eq!(pacer.macs_per_frame(), grown);
}

/// A share scales the pixels granted, and the budget is judged as if the whole share had run.
#[test]
fn pacer_share_scales_the_budget() {
    let mut pacer = Pacer::default();
    pacer.set_throughput(1e9);
    let full = pacer.budget_pixels(1, 1000, 1.0).unwrap();
    let mut other = Pacer::default();
    other.set_throughput(1e9);
    let sixth = other.budget_pixels(1, 1000, 1.0 / 6.0).unwrap();
    assert_eq!(full, (1e9 * Pacer::TARGET_SECS / 1000.0) as u64);
    assert!((sixth as f64 - full as f64 / 6.0).abs() <= 1.0, "{sixth} vs {full}/6");
}

#[test]
fn gpu_weight_layout_pads_rows_to_vec4() {
    let weights = network(3, 1);
    let layout = gpu_weight_layout(&weights);
    let (w, w4) = (48, 12);
    // First layer: one vec4 per neuron; hidden layers: w rows of w4, plus w4 biases; output: 3 rows + 1.
    assert_eq!(layout.len(), w + 2 * (w * w4 + w4) + 3 * w4 + 1);
    assert_eq!(layout[5], [weights.layers[0].weight[10], weights.layers[0].weight[11], weights.layers[0].bias[5], 0.0]);
    let odd = SirenWeights::init(SirenConfig::image(1, 6, 1, 30.0), 2);
    let layout = gpu_weight_layout(&odd);
    // 6 neurons → rows of 2 vec4s: the output row [w0..w3], [w4, w5, 0, 0], then the bias vec4.
    assert_eq!(layout.len(), 6 + 2 + 1);
    assert_eq!(layout[7], [odd.layers[1].weight[4], odd.layers[1].weight[5], 0.0, 0.0]);
    assert_eq!(layout[8], [odd.layers[1].bias[0], 0.0, 0.0, 0.0]);
}

fn network(channels: usize, seed: u64) -> SirenWeights {
    let mut w = SirenWeights::init(SirenConfig::image(channels, 48, 3, 30.0), seed);
    // Larger last-layer weights give derivative views a wide dynamic range to compare.
    for v in &mut w.layers[3].weight {
        *v *= 4.0;
    }
    w
}

fn request(
    weights: &SirenWeights,
    reference: Option<&ImageData>,
    mode: ViewMode,
    window: ViewWindow,
    grid: (u32, u32),
) -> ViewRequest {
    ViewRequest {
        reference: reference.map(|r| Versioned { value: Arc::new(r.clone()), generation: 1 }),
        ..ViewRequest::one_shot(Arc::new(weights.clone()), mode, window, grid)
    }
}

/// Compares GPU values with the CPU's; the tolerance is relative to the largest reference value.
fn assert_close(what: &str, gpu: &[[f32; 4]], cpu: &[f32], channels: usize, rel_tol: f32) {
    assert_eq!(gpu.len() * channels, cpu.len(), "{what}: sizes");
    let max_ref = cpu.iter().fold(0.0_f32, |m, v| m.max(v.abs())).max(1e-3);
    let mut worst = 0.0_f32;
    for (g, c) in gpu.iter().zip(cpu.chunks_exact(channels)) {
        for ch in 0..channels {
            worst = worst.max((g[ch] - c[ch]).abs());
        }
        for unused in g.iter().take(3).skip(channels) {
            assert_eq!(*unused, 0.0, "{what}: unused channels stay zero");
        }
    }
    assert!(worst <= rel_tol * max_ref, "{what}: worst |GPU − CPU| = {worst} (max |value| {max_ref})");
}

/// The GPU evaluates the same function as the CPU, derivatives included: values to 1e-3 and
/// derivatives to 1e-3 of their range (f32 sines of arguments up to ~100 differ in the last bits
/// between implementations, and derivatives amplify that by ω₀ per layer).
#[test]
fn gpu_evaluation_matches_the_cpu() {
    let gpu = gpu();
    let mut inr_gpu = InrGpu::new(&gpu.device, eframe::egui_wgpu::wgpu::TextureFormat::Rgba8Unorm);
    for channels in [1, 3] {
        let weights = network(channels, 3 + channels as u64);
        let model = Siren::new(&weights, &Device::Cpu, DType::F32).unwrap();
        let grid = (24, 16);
        for (mode, view) in [
            (ViewMode::Value, FieldView::Value),
            (ViewMode::Gradient, FieldView::GradientMagnitude),
            (ViewMode::Laplacian, FieldView::Laplacian),
        ] {
            let values = inr_gpu
                .evaluate_blocking(&gpu.device, &gpu.queue, &request(&weights, None, mode, ViewWindow::FULL, grid))
                .unwrap();
            let cpu = inr::field_values(&model, view, grid.0, grid.1).unwrap();
            assert_close(&format!("{mode:?}, {channels} channels"), &values, &cpu, channels, 1e-3);
        }
        // The error view: INR minus the reference pixel under each grid cell (grid = image size).
        let reference = ImageData::new(
            grid.0,
            grid.1,
            channels,
            (0..grid.0 * grid.1 * channels as u32).map(|i| (i % 7) as f32 / 7.0).collect(),
        )
        .unwrap();
        let values = inr_gpu
            .evaluate_blocking(
                &gpu.device,
                &gpu.queue,
                &request(&weights, Some(&reference), ViewMode::Error, ViewWindow::FULL, grid),
            )
            .unwrap();
        let cpu: Vec<f32> = inr::field_values(&model, FieldView::Value, grid.0, grid.1)
            .unwrap()
            .iter()
            .zip(&reference.pixels)
            .map(|(v, r)| v - r)
            .collect();
        assert_close(&format!("Error, {channels} channels"), &values, &cpu, channels, 1e-3);
        assert!(values.iter().all(|v| v[3] == 1.0), "every cell lies inside the image");
    }
}

#[test]
fn gpu_zoomed_window_samples_the_continuous_function() {
    let gpu = gpu();
    let mut inr_gpu = InrGpu::new(&gpu.device, eframe::egui_wgpu::wgpu::TextureFormat::Rgba8Unorm);
    let weights = network(1, 21);
    // 8× zoom on the window [0, 0.25]²: cell centres at (2i+1)/64 · 0.25 · … — evaluate the same
    // points on the CPU through a 64×64 full-image grid whose centres coincide.
    let window = ViewWindow { min: [-1.0, -1.0], max: [-0.75, -0.75] };
    let grid = (8, 8);
    let values = inr_gpu
        .evaluate_blocking(&gpu.device, &gpu.queue, &request(&weights, None, ViewMode::Value, window, grid))
        .unwrap();
    let model = Siren::new(&weights, &Device::Cpu, DType::F32).unwrap();
    let full = inr::field_values(&model, FieldView::Value, 64, 64).unwrap();
    let cpu: Vec<f32> = (0..8).flat_map(|j| (0..8).map(move |i| (i, j))).map(|(i, j)| full[j * 64 + i]).collect();
    assert_close("zoomed value", &values, &cpu, 1, 1e-3);
    // Outside the image the error view says so (flag −1) instead of inventing a reference.
    let outside = ViewWindow { min: [1.5, 1.5], max: [2.0, 2.0] };
    let reference = ImageData::new(4, 4, 1, vec![0.5; 16]).unwrap();
    let values = inr_gpu
        .evaluate_blocking(
            &gpu.device,
            &gpu.queue,
            &request(&weights, Some(&reference), ViewMode::Error, outside, (4, 4)),
        )
        .unwrap();
    assert!(values.iter().all(|v| v[3] < 0.0));
}

/// With adaptive pacing a view refines over several frames, never queuing a new evaluation before
/// the last one finished, and ends with the same values as a one-shot evaluation.
#[test]
fn adaptive_refinement_converges_to_the_full_evaluation() {
    let gpu = gpu();
    let mut inr_gpu = InrGpu::new(&gpu.device, eframe::egui_wgpu::wgpu::TextureFormat::Rgba8Unorm);
    let weights = network(1, 8);
    let grid = (256, 192);
    let mut adaptive = request(&weights, None, ViewMode::Value, ViewWindow::FULL, grid);
    adaptive.view_id = 7;
    adaptive.budget = Budget::Adaptive;
    let mut frames = 0;
    while !adaptive.feedback.is_done() {
        frames += 1;
        assert!(frames < 10_000, "refinement did not finish");
        adaptive.frame = frames;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        inr_gpu.prepare_view(&gpu.device, &gpu.queue, &mut encoder, &adaptive);
        gpu.queue.submit([encoder.finish()]);
    }
    // 4752 multiply-adds per pixel: the first budget (2e7) covers the 1/4 grid (64×48), not more.
    assert!(frames > 2, "refined in {frames} frames");
    assert_eq!(adaptive.feedback.shown_factor(), Some(1));
    let progressive = inr_gpu.read_view(&gpu.device, &gpu.queue, 7).unwrap();
    let direct = inr_gpu
        .evaluate_blocking(&gpu.device, &gpu.queue, &request(&weights, None, ViewMode::Value, ViewWindow::FULL, grid))
        .unwrap();
    assert_eq!(progressive, direct);
}

#[test]
fn shader_warm_up_compiles_and_measures_the_adapter() {
    let instance = eframe::egui_wgpu::wgpu::Instance::new(
        eframe::egui_wgpu::wgpu::InstanceDescriptor::new_without_display_handle_from_env(),
    );
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .unwrap_or_else(|e| panic!("GPU tests need a wgpu adapter ({e}): {}", sparsefield::render::DRIVER_HINT));
    let progress = WarmUp::default();
    assert_eq!(progress.result(WarmUpStage::Value), None);
    let macs_per_sec = warm_up_shaders(&adapter, &progress).unwrap();
    // lavapipe on two cores manages ~1e9; any real adapter far more.
    assert!(macs_per_sec > 1e7, "{macs_per_sec} multiply-adds per second");
    assert_eq!(progress.result(WarmUpStage::Value), Some(macs_per_sec));
    assert_eq!(progress.result(WarmUpStage::Derivatives), Some(macs_per_sec));
}

/// A baked grid with a soft coloured ball and a hard small cube, empty elsewhere.
fn test_baked_grid() -> sparsefield::compute::nerf::bake::BakedGrid {
    use sparsefield::compute::nerf::bake::BakedGrid;
    use sparsefield::compute::nerf::camera::SceneBox;
    let r = 48_usize;
    let scene_box = SceneBox::cube(1.5);
    let mut values = vec![[0.0_f32; 4]; r * r * r];
    for z in 0..r {
        for y in 0..r {
            for x in 0..r {
                let p = glam::Vec3::new(x as f32, y as f32, z as f32) / (r - 1) as f32 * 3.0 - 1.5;
                let ball = (0.8 - (p - glam::Vec3::new(-0.2, 0.1, 0.0)).length()).max(0.0) * 12.0;
                let cube = if (p - glam::Vec3::new(0.7, -0.5, 0.3)).abs().max_element() < 0.25 { 40.0 } else { 0.0 };
                let colour = (p + 1.5) / 3.0;
                values[x + r * (y + r * z)] = [colour.x, colour.y, 1.0 - colour.z, ball + cube];
            }
        }
    }
    BakedGrid::from_values(r as u32, scene_box, values, 0.02, glam::Vec3::new(1.0, 1.0, 1.0)).unwrap()
}

/// The GPU march of a baked grid matches its CPU twin (`BakedGrid::render_pixel`) pixel by pixel:
/// every channel within 2e-3 for 99% of the pixels and within 0.05 everywhere (float rounding
/// may move a sample across an empty-block boundary or the early-termination threshold).
#[test]
fn nerf_gpu_march_matches_the_cpu_twin() {
    use sparsefield::compute::nerf::bake::ViewMode;
    use sparsefield::compute::nerf::orbit::Orbit;
    use sparsefield::render::nerf_view::{NerfGpu, NerfViewFeedback, NerfViewRequest, Versioned};
    let gpu = gpu();
    let grid = Arc::new(test_baked_grid());
    let mut nerf = NerfGpu::new(&gpu.device, eframe::egui_wgpu::wgpu::TextureFormat::Rgba8Unorm);
    for (mode, azimuth) in [(ViewMode::Rgb, 0.4), (ViewMode::Depth, 1.9), (ViewMode::Opacity, 3.3)] {
        let camera = Orbit { azimuth, ..Orbit::default() }.camera(72, 56);
        let request = NerfViewRequest {
            view_id: 1,
            grid: Some(Versioned { generation: 1, value: grid.clone() }),
            camera,
            mode,
            depth_range: (2.0, 6.0),
            cpu_frame: None,
            feedback: Arc::new(NerfViewFeedback::default()),
        };
        let gpu_values = nerf.march_blocking(&gpu.device, &gpu.queue, &request).unwrap();
        let cpu_values = grid.render(&camera, mode, (2.0, 6.0));
        assert_eq!(gpu_values.len(), cpu_values.len());
        let mut close = 0;
        let mut covered = 0;
        for (g, c) in gpu_values.iter().zip(&cpu_values) {
            let diff = (0..3).map(|k| (g[k] - c[k]).abs()).fold(0.0_f32, f32::max);
            assert!(diff < 0.05, "{mode:?}: GPU {g:?} vs CPU {c:?}");
            if diff < 2e-3 {
                close += 1;
            }
            if c != &[1.0, 1.0, 1.0] && c != &[0.0, 0.0, 0.0] {
                covered += 1;
            }
        }
        assert!(
            close as f32 >= 0.99 * cpu_values.len() as f32,
            "{mode:?}: only {close} of {} pixels agree",
            cpu_values.len()
        );
        assert!(covered > cpu_values.len() / 10, "{mode:?}: the objects should cover part of the view");
    }
}

/// An operator with random weights whose standardisation matches `stacks` (so its inputs are O(1)).
fn random_operator(
    order: usize,
    stacks: &[f32],
    seed: u64,
    residual: bool,
) -> sparsefield::compute::inr::insp::OperatorWeights {
    use sparsefield::compute::inr::LayerWeights;
    use sparsefield::compute::inr::insp::{EditKind, EditTask, OperatorSpec, OperatorWeights};
    let spec = OperatorSpec {
        task: EditTask::new(EditKind::Denoise),
        order,
        width: 24,
        hidden_layers: 2,
        residual,
        training_size: 32,
    };
    let p = spec.num_features();
    let rows = stacks.len() / p;
    let mean: Vec<f32> = (0..p).map(|k| stacks.iter().skip(k).step_by(p).sum::<f32>() / rows as f32).collect();
    let scale: Vec<f32> = (0..p)
        .map(|k| {
            let var = stacks.iter().skip(k).step_by(p).map(|v| (v - mean[k]).powi(2)).sum::<f32>() / rows as f32;
            var.sqrt().max(1e-3)
        })
        .collect();
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.6
    };
    let layers = spec
        .layer_shapes()
        .into_iter()
        .map(|(fan_in, fan_out)| LayerWeights {
            weight: (0..fan_in * fan_out).map(|_| next()).collect(),
            bias: (0..fan_out).map(|_| next()).collect(),
        })
        .collect();
    OperatorWeights { spec, layers, feature_shift: mean, feature_scale: scale }
}

#[test]
fn gpu_edit_matches_the_cpu_twin() {
    use sparsefield::compute::inr::taylor::{self, Partials};
    use sparsefield::render::edit_gpu::EditGpu;
    let gpu = gpu();
    let edit_gpu = EditGpu::new(&gpu.device);
    for (channels, order, residual) in [(1, 4, true), (3, 2, true), (3, 3, false)] {
        let weights = network(channels, 11 + channels as u64);
        let grid = (20, 12);
        let window = ViewWindow { min: [-0.6, -0.2], max: [0.4, 0.5] };
        let (origin, step) = window.origin_and_step(grid);
        let coords: Vec<f32> = (0..grid.1)
            .flat_map(|j| {
                (0..grid.0).flat_map(move |i| [origin[0] + step[0] * i as f32, origin[1] + step[1] * j as f32])
            })
            .collect();
        let partials = Partials::new(order).unwrap();
        let stacks = taylor::derivative_stack(&weights, &partials, &coords).unwrap();
        let operator = random_operator(order, &stacks, 5, residual);
        let cpu = operator.apply_rows(&stacks);
        let values = edit_gpu.evaluate(&gpu.device, &gpu.queue, &operator, &weights, window, grid).unwrap();
        assert_eq!(values.len(), (grid.0 * grid.1) as usize);
        let scale = cpu.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
        let mut worst = 0.0_f32;
        for (n, px) in values.iter().enumerate() {
            for c in 0..channels {
                let diff = (px[c] - cpu[n * channels + c]).abs();
                worst = worst.max(diff);
                assert!(
                    diff <= 2e-3 * (1.0 + scale),
                    "pixel {n} channel {c}: GPU {} vs CPU {}",
                    px[c],
                    cpu[n * channels + c]
                );
            }
        }
        // The operator is far from the identity, so agreement is not a coincidence of values.
        let values_only: Vec<f32> = stacks.iter().step_by(partials.len()).copied().collect();
        let moved = cpu.iter().zip(&values_only).map(|(a, b)| (a - b).abs()).fold(0.0_f32, f32::max);
        assert!(moved > 0.05, "the operator changes the image ({moved}); worst GPU error {worst}");
    }
}

#[test]
fn the_edit_lab_views_take_the_edit_from_the_shader_when_asked() {
    use sparsefield::compute::inr::taylor::{self, Partials};
    use sparsefield::labs::edit::{EditDevice, Subject, evaluate};
    let gpu = gpu();
    let device = EditDevice {
        device: gpu.device.clone(),
        queue: gpu.queue.clone(),
        pipelines: Arc::new(std::sync::OnceLock::new()),
        software: true,
    };
    let weights = network(3, 21);
    let (w, h) = (24, 16);
    let partials = Partials::new(3).unwrap();
    let stacks = taylor::stack_at_pixels(&weights, &partials, w, h).unwrap();
    let operator = random_operator(3, &stacks, 9, true);
    let input = Arc::new(ImageData::new(w, h, 3, vec![0.5; (w * h * 3) as usize]).unwrap());
    let subject = Subject { inr: Arc::new(weights), input, clean: None, name: "random".into() };
    let cpu = evaluate(&operator, &subject, (1, 1), None, None).unwrap();
    let shader = evaluate(&operator, &subject, (1, 1), None, Some(&device)).unwrap();
    assert!(!cpu.on_gpu());
    assert!(shader.on_gpu(), "the shader was asked for and the device works");
    let (a, b) = (cpu.edited(), shader.edited());
    assert_eq!((a.width, a.height, a.channels), (b.width, b.height, b.channels));
    let worst = a.pixels.iter().zip(&b.pixels).map(|(x, y)| (x - y).abs()).fold(0.0_f32, f32::max);
    assert!(worst < 3e-3, "GPU and CPU edits differ by up to {worst}");
    // Both differ from the INR itself: the comparison is not of two copies of the input.
    let values: Vec<f32> = stacks.iter().step_by(partials.len()).map(|v| v.clamp(0.0, 1.0)).collect();
    let moved = a.pixels.iter().zip(&values).map(|(x, y)| (x - y).abs()).fold(0.0_f32, f32::max);
    assert!(moved > 0.05, "the operator changes the image ({moved})");
}
