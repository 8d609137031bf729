//! NeRF training end to end on a tiny demo scene: it beats a constant colour, is deterministic,
//! the baked grid approximates the field, and checkpoints round-trip.

use std::sync::Arc;

use glam::Vec3;
use sparsefield::compute::control::RunControl;
use sparsefield::compute::image_io::ImageData;
use sparsefield::compute::metrics;
use sparsefield::compute::nerf::bake::{self, ViewMode};
use sparsefield::compute::nerf::hash_encoding::HashGridConfig;
use sparsefield::compute::nerf::orbit::Orbit;
use sparsefield::compute::nerf::render::render_camera;
use sparsefield::compute::nerf::synth::{DemoSpec, demo_dataset};
use sparsefield::compute::nerf::{FieldConfig, TrainConfig, Trainer, checkpoint, evaluate, train};
use sparsefield::render::nerf_view::{NerfGpu, NerfViewFeedback, NerfViewRequest, Versioned};

use super::common::temp_dir;

pub(super) fn tiny_config(steps: u64) -> TrainConfig {
    TrainConfig {
        steps,
        field: FieldConfig {
            hash: HashGridConfig {
                num_levels: 8,
                features_per_level: 2,
                log2_table_size: 14,
                base_resolution: 8,
                max_resolution: 128,
            },
            hidden_width: 32,
            num_geo_features: 7,
            colour_hidden_layers: 1,
        },
        target_samples_per_batch: 8192,
        max_rays_per_batch: 1024,
        march_steps: 128,
        occupancy_resolution: 32,
        snapshot_interval_secs: 1e9,
        ..TrainConfig::default()
    }
}

pub(super) fn tiny_scene() -> Arc<sparsefield::compute::nerf::Dataset> {
    Arc::new(demo_dataset(&DemoSpec { size: 32, num_train: 24, num_val: 1, num_test: 4, seed: 3 }))
}

/// PSNR of the best constant colour (the mean) on the test views over the background.
fn constant_baseline_psnr(data: &sparsefield::compute::nerf::Dataset) -> f64 {
    let pixels: Vec<Vec3> =
        data.test.iter().flat_map(|v| (0..v.rgba.len()).map(move |k| v.composited(k, data.background))).collect();
    let mean = pixels.iter().copied().sum::<Vec3>() / pixels.len() as f32;
    let mse: f64 =
        pixels.iter().map(|p| f64::from((*p - mean).length_squared())).sum::<f64>() / (3 * pixels.len()) as f64;
    metrics::psnr_from_mse(mse)
}

#[test]
fn tiny_scene_training_beats_a_constant_colour_and_bakes_faithfully() {
    let data = tiny_scene();
    let cfg = tiny_config(400);
    let summary = train(data.clone(), &cfg, None, &RunControl::new(), &mut |_| {}).unwrap();
    assert_eq!(summary.steps_done, 400);
    let (scores, renders) = evaluate(&summary.snapshot, &data.test, &RunControl::new());
    let baseline = constant_baseline_psnr(&data);
    assert!(scores.psnr_db > baseline + 6.0, "trained {:.2} dB vs constant colour {baseline:.2} dB", scores.psnr_db);
    assert!(scores.ssim > 0.6, "SSIM {}", scores.ssim);
    assert_eq!(renders.len(), data.test.len());
    assert!(
        summary.snapshot.occupancy.occupancy() < 0.5,
        "empty space was found: {}",
        summary.snapshot.occupancy.occupancy()
    );

    // The baked grid (the viewer's fast path) stays close to the full field it was baked from.
    let grid = bake::bake(&summary.snapshot, 96, 1 << 22);
    let camera = &data.test[0].camera;
    let full = render_camera(
        &summary.snapshot.weights,
        &summary.snapshot.occupancy,
        &summary.snapshot.march,
        camera,
        data.background,
    );
    let baked: Vec<f32> = grid.render(camera, ViewMode::Rgb, (2.0, 6.0)).into_iter().flatten().collect();
    let as_image = |pixels: Vec<f32>| ImageData::new(camera.width, camera.height, 3, pixels).unwrap();
    let agreement = metrics::psnr_db(&as_image(baked), &as_image(full.rgb.clone()));
    assert!(agreement > 20.0, "baked vs full field: {agreement:.2} dB");

    // The GPU fast path (the viewer's march of the baked grid) against the CPU renderer of the
    // same trained field: above 20 dB PSNR (the bake's colour ignores view dependence and its
    // grid is coarser than the hash grid).
    let gpu = super::common::gpu();
    let mut nerf_gpu = NerfGpu::new(&gpu.device, eframe::egui_wgpu::wgpu::TextureFormat::Rgba8Unorm);
    let request = NerfViewRequest {
        view_id: 7,
        grid: Some(Versioned { generation: 1, value: Arc::new(grid) }),
        camera: *camera,
        mode: ViewMode::Rgb,
        depth_range: (2.0, 6.0),
        cpu_frame: None,
        feedback: Arc::new(NerfViewFeedback::default()),
    };
    let marched: Vec<f32> = nerf_gpu
        .march_blocking(&gpu.device, &gpu.queue, &request)
        .unwrap()
        .iter()
        .flat_map(|v| [v[0], v[1], v[2]])
        .collect();
    let gpu_vs_cpu = metrics::psnr_db(&as_image(marched), &as_image(full.rgb));
    eprintln!("baked grid vs full field {agreement:.2} dB; GPU fast path vs full field {gpu_vs_cpu:.2} dB");
    assert!(gpu_vs_cpu > 20.0, "GPU fast path vs CPU full field: {gpu_vs_cpu:.2} dB");
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let data = tiny_scene();
    let cfg = tiny_config(20);
    let losses = |seed: u64| -> Vec<f64> {
        let mut trainer = Trainer::new(data.clone(), &TrainConfig { seed, ..cfg }, None).unwrap();
        (0..20).map(|_| trainer.step().unwrap().loss).collect()
    };
    let a = losses(1);
    assert_eq!(a, losses(1), "same seed, same losses");
    assert_ne!(a, losses(2), "another seed, other losses");
}

#[test]
fn checkpoints_round_trip_and_bad_ones_are_refused() {
    let data = tiny_scene();
    let summary = train(data.clone(), &tiny_config(30), None, &RunControl::new(), &mut |_| {}).unwrap();
    let dir = temp_dir("nerf_checkpoint");
    let orbit = Orbit::from_views(&data.train, Vec3::ZERO);
    checkpoint::save(&summary.snapshot, &orbit, &dir, Default::default()).unwrap();
    let (loaded, config) = checkpoint::load(&dir).unwrap();
    assert_eq!(config.step, 30);
    assert!((config.orbit.radius - 4.0).abs() < 1e-3, "orbit radius {}", config.orbit.radius);
    let camera = &data.test[1].camera;
    let s = &summary.snapshot;
    let before = render_camera(&s.weights, &s.occupancy, &s.march, camera, s.background);
    let after = render_camera(&loaded.weights, &loaded.occupancy, &loaded.march, camera, loaded.background);
    assert_eq!(before, after, "a loaded checkpoint renders exactly as the saved field");
    // Resuming continues from the checkpoint's step.
    let mut resumed = Trainer::new(data.clone(), &tiny_config(10), Some(&loaded)).unwrap();
    resumed.step().unwrap();
    assert_eq!(resumed.step_count(), 31);

    // View settings that render nothing or non-finite values are refused, naming the setting
    // (1e39 overflows f32 to infinity when read).
    let config_path = dir.join(checkpoint::CONFIG_FILE);
    let good: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let cases: [(&str, serde_json::Value, &str); 9] = [
        ("/scene_box/max", serde_json::json!([1e38, 1e38, 1e38]), "scene box is"),
        ("/orbit/up", serde_json::json!([0.0, 0.0, 0.0]), "up axis"),
        ("/orbit/fov_x", serde_json::json!(0.0), "field of view"),
        ("/orbit/fov_x", serde_json::json!(std::f64::consts::PI), "field of view"),
        ("/orbit/radius", serde_json::json!(1e38), "radius"),
        ("/orbit/radius", serde_json::json!(-2.0), "radius"),
        ("/orbit/target", serde_json::json!([1e38, 0.0, 0.0]), "target"),
        ("/background", serde_json::json!([0.5, 1e6, 0.5]), "background"),
        ("/orbit/elevation", serde_json::json!(1e39), "elevation"),
    ];
    for (pointer, value, what) in cases {
        let mut bad = good.clone();
        *bad.pointer_mut(pointer).unwrap() = value;
        std::fs::write(&config_path, serde_json::to_string(&bad).unwrap()).unwrap();
        match checkpoint::load(&dir) {
            Err(err) => {
                let err = err.to_string();
                assert!(err.contains("config.json") && err.contains(what), "{pointer}: {err}");
            }
            Ok(_) => panic!("{pointer} = {} was accepted", bad.pointer(pointer).unwrap()),
        }
    }
    std::fs::write(&config_path, serde_json::to_string(&good).unwrap()).unwrap();
    assert!(checkpoint::load(&dir).is_ok());

    // A truncated weights file and a broken config are refused with the file named.
    let weights = dir.join(checkpoint::WEIGHTS_FILE);
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = checkpoint::load(&dir).unwrap_err().to_string();
    assert!(err.contains("nerf.safetensors"), "{err}");
    std::fs::write(dir.join(checkpoint::CONFIG_FILE), "{ not json").unwrap();
    let err = checkpoint::load(&dir).unwrap_err().to_string();
    assert!(err.contains("config.json"), "{err}");
    let err = checkpoint::load(&dir.join("missing")).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
}
