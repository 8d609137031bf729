//! The NeuralLift-360 lab's compute: ranking loss, matting, distance transform and inflation,
//! depth files, input preparation errors, and short lifts of the built-in example.

use std::sync::Arc;

use candle_core::{Device, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparsefield::compute::control::RunControl;
use sparsefield::compute::image_io::ImageData;
use sparsefield::compute::lift::example::{example_image, example_truth};
use sparsefield::compute::lift::input::{
    self, DepthChoice, LiftImage, MaskOrigin, MaskSettings, MaskSource, border_matte, distance_transform,
    inflation_depth, read_npy,
};
use sparsefield::compute::lift::rank::{ranking_loss, ranking_loss_tensor, sample_pairs};
use sparsefield::compute::lift::train::{self, LiftConfig, PriorKind};
use sparsefield::compute::lift::{LiftError, LiftInput};
use sparsefield::compute::nerf::sampler::OccupancyGrid;

use super::common::temp_dir;

#[test]
fn ranking_loss_value_and_gradient_on_hand_made_pairs() {
    // Pair 0 keeps its order with room to spare, pair 1 is reversed, pair 2 is in order but
    // inside the margin.
    let near = [1.0_f32, 2.0, 3.0];
    let far = [2.0_f32, 1.5, 3.005];
    let margin = 0.01;
    let (loss, g_near, g_far) = ranking_loss(&near, &far, margin);
    let expected = (0.0 + (2.0 - 1.5 + 0.01) + (3.0 - 3.005 + 0.01)) / 3.0;
    assert!((loss - expected).abs() < 1e-6, "{loss} vs {expected}");
    let third = 1.0 / 3.0;
    assert_eq!(g_near, vec![0.0, third, third]);
    assert_eq!(g_far, vec![0.0, -third, -third]);

    // The differentiable version used in training agrees in value and gradient.
    let device = Device::Cpu;
    let a = Var::from_slice(&near, 3, &device).unwrap();
    let b = Var::from_slice(&far, 3, &device).unwrap();
    let t = ranking_loss_tensor(a.as_tensor(), b.as_tensor(), f64::from(margin)).unwrap();
    assert!((t.to_scalar::<f32>().unwrap() - expected).abs() < 1e-6);
    let grads = t.backward().unwrap();
    let ga = grads.get(a.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    let gb = grads.get(b.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    for k in 0..3 {
        assert!((ga[k] - g_near[k]).abs() < 1e-6 && (gb[k] - g_far[k]).abs() < 1e-6, "pair {k}: {ga:?} {gb:?}");
    }
    // And a central difference of the loss on a violating pair.
    let h = 1e-3;
    let f = |x: f32| ranking_loss(&[1.0, x, 3.0], &far, margin).0;
    let fd = (f(2.0 + h) - f(2.0 - h)) / (2.0 * h);
    assert!((fd - third).abs() < 1e-3, "finite difference {fd}");
}

#[test]
fn ranking_pairs_are_ordered_inside_the_mask_and_apart() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let n = 400;
    let depth: Vec<f32> = (0..n).map(|k| if k % 7 == 0 { f32::NAN } else { rng.random_range(0.0..1.0) }).collect();
    let mask: Vec<f32> = (0..n).map(|k| if k % 3 == 0 { 0.0 } else { 1.0 }).collect();
    let (near, far) = sample_pairs(&depth, &mask, 200, 0.1, &mut rng);
    assert_eq!(near.len(), 200);
    for (&a, &b) in near.iter().zip(&far) {
        assert!(mask[a] > 0.5 && mask[b] > 0.5, "pair outside the mask");
        assert!(depth[b] - depth[a] > 0.1 * 0.9, "pair ({}, {}) too close or misordered", depth[a], depth[b]);
    }
    // A flat depth gives no pairs rather than noise.
    let flat = vec![0.5; n];
    assert!(sample_pairs(&flat, &mask, 50, 0.05, &mut rng).0.is_empty());
}

/// A `size²` image: a noisy off-white background, a red disc of radius `r` with a white hole
/// of radius `r/3` in its middle.
fn disc_image(size: u32, r: f32) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let c = (size as f32 - 1.0) / 2.0;
    let mut rgb = Vec::new();
    let mut truth = Vec::new();
    for y in 0..size {
        for x in 0..size {
            let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt();
            let noise = rng.random_range(-0.03..0.03);
            if d <= r && d > r / 3.0 {
                rgb.extend([0.8 + noise, 0.1, 0.1]);
                truth.push(1.0);
            } else if d <= r / 3.0 {
                // Background-coloured, but enclosed by the disc: still the object.
                rgb.extend([0.95 + noise, 0.95, 0.93]);
                truth.push(1.0);
            } else {
                rgb.extend([0.95 + noise, 0.95 + noise, 0.93]);
                truth.push(0.0);
            }
        }
    }
    (rgb, truth)
}

#[test]
fn border_matte_finds_the_object_and_keeps_enclosed_background_colours() {
    let (rgb, truth) = disc_image(48, 15.0);
    let mask = border_matte(&rgb, 48, 48, 0.12);
    assert_eq!(mask, truth);
    // A threshold below the noise leaves specks of background in the mask, which is what the
    // threshold slider is for.
    let strict = border_matte(&rgb, 48, 48, 0.005);
    assert!(strict.iter().zip(&truth).filter(|(m, t)| m != t).count() > 50);
    // With an alpha channel the mask is the alpha; forcing the border matte ignores it.
    let alpha: Vec<f32> = truth.iter().map(|t| 0.9 * t).collect();
    let image = LiftImage { width: 48, height: 48, rgb: rgb.clone(), alpha: Some(alpha.clone()), name: "disc".into() };
    let (m, origin) = input::make_mask(&image, MaskSource::Auto, 0.12);
    assert_eq!((m, origin), (alpha, MaskOrigin::Alpha));
    let (m, origin) = input::make_mask(&image, MaskSource::Border, 0.12);
    assert_eq!((m, origin), (truth, MaskOrigin::BorderMatte));
}

#[test]
fn distance_transform_matches_brute_force_and_inflation_bulges_a_disc() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (w, h) = (23_u32, 17_u32);
    let mask: Vec<f32> = (0..w * h).map(|_| if rng.random_bool(0.8) { 1.0 } else { 0.0 }).collect();
    let d = distance_transform(&mask, w, h);
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            // Brute force over background pixels, including the ring just outside the image.
            let mut best = f32::INFINITY;
            for by in -1..=h as i64 {
                for bx in -1..=w as i64 {
                    let inside = (0..w as i64).contains(&bx) && (0..h as i64).contains(&by);
                    if inside && mask[(by * w as i64 + bx) as usize] > 0.5 {
                        continue;
                    }
                    best = best.min((((x - bx).pow(2) + (y - by).pow(2)) as f32).sqrt());
                }
            }
            let k = (y * w as i64 + x) as usize;
            let expected = if mask[k] > 0.5 { best } else { 0.0 };
            assert!((d[k] - expected).abs() < 1e-4, "({x}, {y}): {} vs {expected}", d[k]);
        }
    }
    // Inflation of a disc: nearest at the centre, farther with the radius, unknown outside.
    let (_, disc) = disc_image(41, 16.0);
    let depth = inflation_depth(&disc, 41, 41);
    let at = |x: u32, y: u32| depth[(y * 41 + x) as usize];
    assert!(at(0, 0).is_nan());
    assert!(at(20, 20) < at(26, 20) && at(26, 20) < at(32, 20) && at(32, 20) < at(35, 20));
    assert!((at(20, 20) - 0.0).abs() < 1e-6, "the centre is the top of the bulge");
}

pub fn npy_bytes(descr: &str, shape: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

#[test]
fn depth_files_npy_and_16_bit_png_load_and_bad_ones_fail_clearly() {
    // float32 (2, 3), C order.
    let values = [1.0_f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let map = read_npy(&npy_bytes("<f4", "(2, 3)", false, &data)).unwrap();
    assert_eq!((map.width, map.height, map.values.clone()), (3, 2, values.to_vec()));
    // The same array stored in Fortran order reads the same.
    let fortran = [1.0_f32, 4.0, 2.0, 5.0, 3.0, 6.0];
    let data: Vec<u8> = fortran.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(read_npy(&npy_bytes("<f4", "(2, 3)", true, &data)).unwrap().values, values.to_vec());
    // uint16 (1, 2, 2) and float64 (2, 1, 1).
    let data: Vec<u8> = [10_u16, 20, 30, 40].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(read_npy(&npy_bytes("<u2", "(1, 2, 2)", false, &data)).unwrap().values, vec![10.0, 20.0, 30.0, 40.0]);
    let data: Vec<u8> = [0.25_f64, -1.5].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(read_npy(&npy_bytes("<f8", "(2, 1, 1)", false, &data)).unwrap().values, vec![0.25, -1.5]);
    // Failures say what is wrong.
    let err = read_npy(&npy_bytes("<f4", "(2, 3)", false, &[0; 10])).unwrap_err();
    assert!(err.contains("truncated") && err.contains("24 bytes"), "{err}");
    let err = read_npy(&npy_bytes(">f4", "(1, 1)", false, &[0; 4])).unwrap_err();
    assert!(err.contains("big-endian"), "{err}");
    let err = read_npy(&npy_bytes("<f4", "(2, 2, 2)", false, &[0; 32])).unwrap_err();
    assert!(err.contains("shape"), "{err}");
    let err = read_npy(b"PK\x03\x04 not numpy").unwrap_err();
    assert!(err.contains("not a NumPy"), "{err}");
    // The header is the user's text: a value type starting with a multibyte character is refused
    // (it used to be split at byte 1, inside the character), and an empty one is named as such.
    for descr in ["é4", "<é", "€", "\u{1F600}f4"] {
        let err = read_npy(&npy_bytes(descr, "(1, 1)", false, &[0; 8])).unwrap_err();
        assert!(err.contains("type") && err.contains(descr), "{descr}: {err}");
    }
    let err = read_npy(&npy_bytes("", "(1, 1)", false, &[0; 8])).unwrap_err();
    assert!(err.contains("empty `descr`"), "{err}");

    let dir = temp_dir("lift_depth_files");
    // A file error names the file; --disparity negates.
    let path = dir.join("bad.npy");
    std::fs::write(&path, b"\x93NUMPY\x01\x00\x05\x00{'des").unwrap();
    let err = input::load_depth_file(&path, false).unwrap_err().to_string();
    assert!(err.contains("bad.npy"), "{err}");
    let path = dir.join("d.npy");
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&path, npy_bytes("<f4", "(2, 3)", false, &data)).unwrap();
    let negated: Vec<f32> = values.iter().map(|v| -v).collect();
    assert_eq!(input::load_depth_file(&path, true).unwrap().values, negated);
    assert_eq!(input::load_depth_file(&path, false).unwrap().values, values.to_vec());
    // 16-bit gray PNG: full precision survives.
    let png = dir.join("d16.png");
    let raw: Vec<u16> = vec![0, 1000, 40000, 65535];
    image::ImageBuffer::<image::Luma<u16>, _>::from_raw(2, 2, raw).unwrap().save(&png).unwrap();
    let map = input::load_depth_file(&png, false).unwrap();
    assert!((map.values[1] - 1000.0 / 65535.0).abs() < 1e-6, "{:?}", map.values);
}

fn disc_photo() -> LiftImage {
    let (rgb, _) = disc_image(48, 15.0);
    LiftImage { width: 48, height: 48, rgb, alpha: None, name: "disc.png".into() }
}

#[test]
fn preparing_input_scales_it_and_refuses_bad_masks_and_depths() {
    let photo = disc_photo();
    let input = input::prepare(&photo, MaskSettings::default(), None, &DepthChoice::Inflate, 32).unwrap();
    assert_eq!((input.width, input.height), (32, 32));
    assert!((input.coverage() - (std::f32::consts::PI * 15.0 * 15.0 / 48.0 / 48.0)).abs() < 0.03);
    assert!(input.notices.iter().any(|n| n.contains("48×48 scaled to 32×32")), "{:?}", input.notices);
    // Depth is known exactly where the mask is.
    for (d, m) in input.depth.iter().zip(&input.mask) {
        assert_eq!(d.is_finite(), *m > 0.5);
    }
    // A uniform photo leaves nothing to lift.
    let blank = LiftImage { rgb: vec![0.5; 48 * 48 * 3], ..disc_photo() };
    let err = input::prepare(&blank, MaskSettings::default(), None, &DepthChoice::Inflate, 32).unwrap_err();
    assert!(matches!(err, LiftError::EmptyMask { .. }), "{err}");
    assert!(err.to_string().contains("disc.png") && err.to_string().contains("threshold"), "{err}");
    // A blank photo whose alpha channel is transparent everywhere is told about its alpha.
    let clear = LiftImage { alpha: Some(vec![0.0; 48 * 48]), ..blank };
    let err = match input::prepare(&clear, MaskSettings::default(), None, &DepthChoice::Inflate, 32) {
        Ok(_) => panic!("a blank, transparent photo was accepted"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("alpha channel is transparent everywhere") && err.contains("object opaque"), "{err}");
    assert!(!err.contains("save it with an alpha channel"), "{err}");
    // A depth file of another shape is refused, naming it.
    let dir = temp_dir("lift_prepare");
    let path = dir.join("wide.npy");
    let data: Vec<u8> = [0.0_f32; 8].iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&path, npy_bytes("<f4", "(2, 4)", false, &data)).unwrap();
    let choice = DepthChoice::File { path: path.clone(), disparity: false };
    let err = input::prepare(&photo, MaskSettings::default(), None, &choice, 32).unwrap_err().to_string();
    assert!(err.contains("wide.npy") && err.contains("4×2") && err.contains("48×48"), "{err}");
    // Out-of-range resolution.
    assert!(input::prepare(&photo, MaskSettings::default(), None, &DepthChoice::Inflate, 4).is_err());
}

/// A small, quick configuration for tests.
fn quick_config(prior: PriorKind, steps: u64) -> LiftConfig {
    LiftConfig {
        steps,
        prior,
        reference_rays: 512,
        prior_rays: 256,
        rank_pairs: 128,
        march_steps: 128,
        occupancy_resolution: 32,
        ..LiftConfig::default()
    }
}

fn example_input(cfg: &LiftConfig, size: u32) -> (LiftInput, sparsefield::compute::lift::example::ExampleTruth) {
    let orbit = cfg.reference_orbit();
    let photo = example_image(&orbit, size, size);
    let input = input::prepare(&photo, MaskSettings::default(), None, &DepthChoice::Inflate, size).unwrap();
    (input, example_truth(&orbit, size, size))
}

#[test]
fn a_short_lift_beats_the_untrained_field_and_the_prior_helps_unseen_views() {
    let size = 32;
    let cfg = quick_config(PriorKind::Geometric, 250);
    let (input, truth) = example_input(&cfg, size);
    assert_eq!(input.mask_origin, MaskOrigin::Alpha);
    let input = Arc::new(input);
    let control = RunControl::new();
    let untrained = train::lift(input.clone(), &LiftConfig { steps: 1, ..cfg }, &control, &mut |_| {}).unwrap();
    let (before, _) = train::evaluate(&untrained.snapshot, &input, &cfg, Some(&truth));
    let lifted = train::lift(input.clone(), &cfg, &control, &mut |_| {}).unwrap();
    let (after, _) = train::evaluate(&lifted.snapshot, &input, &cfg, Some(&truth));
    let none_cfg = quick_config(PriorKind::None, 250);
    let bare = train::lift(input.clone(), &none_cfg, &control, &mut |_| {}).unwrap();
    let (bare_scores, _) = train::evaluate(&bare.snapshot, &input, &none_cfg, Some(&truth));
    let (b, a, n) = (
        before.novel_mean_psnr_db().unwrap(),
        after.novel_mean_psnr_db().unwrap(),
        bare_scores.novel_mean_psnr_db().unwrap(),
    );
    assert!(
        after.reference_psnr_db > before.reference_psnr_db + 10.0 && after.reference_psnr_db > 25.0,
        "reference view: {:.2} dB untrained, {:.2} dB lifted",
        before.reference_psnr_db,
        after.reference_psnr_db
    );
    assert!(after.mask_iou > 0.9, "mask IoU {}", after.mask_iou);
    assert!(a > b + 3.0, "true views at 90°/180°: {b:.2} dB untrained, {a:.2} dB lifted");
    assert!(a > n + 1.0, "true views at 90°/180°: {n:.2} dB without a prior, {a:.2} dB with the geometric prior");
}

#[test]
fn a_lifted_field_is_diffuse_unless_asked_otherwise() {
    let size = 24;
    let cfg = quick_config(PriorKind::Geometric, 30);
    let (input, _) = example_input(&cfg, size);
    let control = RunControl::new();
    let lifted = train::lift(Arc::new(input), &cfg, &control, &mut |_| {}).unwrap();
    let points = [0.5_f32, 0.5, 0.5, 0.45, 0.55, 0.5];
    let a = lifted.snapshot.weights.query(&points, &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    let b = lifted.snapshot.weights.query(&points, &[0.0, 0.6, 0.8, -0.6, 0.0, -0.8]);
    assert_eq!(a.rgb, b.rgb, "colours must not depend on the view direction");
    // The indices held at zero are the first colour layer's non-constant harmonics only.
    let indices = train::direction_weight_indices(&cfg.field);
    assert_eq!(indices.len(), cfg.field.hidden_width * 15);
    let flat = lifted.snapshot.weights.flatten();
    assert!(indices.iter().all(|&k| flat[k] == 0.0));
}

#[test]
fn the_silhouette_carves_the_grid_but_keeps_every_visible_surface_and_the_unseen_back() {
    let cfg = LiftConfig::default();
    let orbit = cfg.reference_orbit();
    let (w, h) = (48, 40);
    let photo = example_image(&orbit, w, h);
    let input = input::prepare(&photo, MaskSettings::default(), None, &DepthChoice::Inflate, 48).unwrap();
    let grid = OccupancyGrid::new(32, cfg.scene_box(), 1.0);
    let camera = orbit.camera(w, h);
    let allowed = train::silhouette_cells(&grid, &camera, &input.mask, w, h);
    let kept = allowed.iter().filter(|&&a| a).count();
    assert!(kept > 0 && kept < grid.num_cells() / 3, "kept {kept} of {} cells", grid.num_cells());
    // Every surface point the reference camera sees, and the same points pushed 0.8 further
    // along their rays (the hidden back), lie in kept cells.
    let depth = sparsefield::compute::lift::example::example_depth(&orbit, w, h);
    let mut checked = 0;
    for j in 0..h {
        for i in 0..w {
            let t = depth[(j * w + i) as usize];
            if !t.is_finite() {
                continue;
            }
            let ray = camera.pixel_ray(i, j);
            for extra in [0.0, 0.8] {
                if let Some(c) = grid.cell_of(ray.at(t + extra)) {
                    assert!(allowed[c], "surface point at pixel ({i}, {j}) + {extra} was carved away");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 300, "only {checked} surface points checked");
    // A cell beside the object, off every ray through the mask, is carved.
    let side = grid.cell_of(glam::Vec3::new(0.0, 1.3, 0.0)).unwrap();
    assert!(!allowed[side]);
}

#[test]
fn carving_keeps_a_one_pixel_stalk_at_a_narrow_field_of_view() {
    // At 10° and 256 px a grid cell spans many pixels: a one-pixel line can pass between the
    // projections of its corners, and must still keep the cells it crosses.
    let cfg = LiftConfig { fov_deg: 10.0, ..LiftConfig::default() };
    let (w, h) = (256_u32, 256_u32);
    let camera = cfg.reference_orbit().camera(w, h);
    let mut mask = vec![0.0_f32; (w * h) as usize];
    for j in 60..200 {
        mask[(j * w + 141) as usize] = 1.0;
    }
    let grid = OccupancyGrid::new(64, cfg.scene_box(), 1.0);
    let allowed = train::silhouette_cells(&grid, &camera, &mask, w, h);
    for j in 60..200 {
        let ray = camera.pixel_ray(141, j);
        for t in [3.5_f32, 4.0, 4.5] {
            let c = grid.cell_of(ray.at(t)).unwrap();
            assert!(allowed[c], "the stalk at row {j}, distance {t} was carved away");
        }
    }
    assert!(allowed.iter().filter(|&&a| a).count() < grid.num_cells() / 20);
}

#[test]
fn resampling_weighs_colours_by_coverage_and_off_centre_objects_are_centred() {
    // Red opaque pixels beside black transparent ones: averaged by coverage the edge stays red.
    let rgb = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let alpha = [1.0, 0.0, 1.0, 0.0];
    let straight = input::resample(&rgb, 3, 4, 1, 2, 1);
    assert_eq!(straight[0], 0.5, "plain averaging darkens the edge");
    let weighted = input::resample_premultiplied(&rgb, &alpha, 4, 1, 2, 1);
    assert_eq!(&weighted[..3], &[1.0, 0.0, 0.0]);

    // A disc photographed off to the left is moved to the middle, with its depth.
    let (rgb, truth) = disc_image(48, 10.0);
    let mut shifted_rgb = vec![0.95_f32; 48 * 48 * 3];
    let mut shifted_alpha = vec![0.0_f32; 48 * 48];
    for y in 0..48 {
        for x in 0..48 {
            let (k, s) = (y * 48 + x, y * 48 + ((x + 12) % 48));
            shifted_rgb[3 * k..3 * k + 3].copy_from_slice(&rgb[3 * s..3 * s + 3]);
            shifted_alpha[k] = truth[s];
        }
    }
    let photo =
        LiftImage { width: 48, height: 48, rgb: shifted_rgb, alpha: Some(shifted_alpha), name: "left.png".into() };
    let input = input::prepare(&photo, MaskSettings::default(), None, &DepthChoice::Inflate, 48).unwrap();
    let columns: Vec<usize> = (0..48 * 48).filter(|&k| input.mask[k] > 0.5).map(|k| k % 48).collect();
    let (lo, hi) = (*columns.iter().min().unwrap(), *columns.iter().max().unwrap());
    assert!((lo + hi + 1).abs_diff(48) <= 1, "mask spans columns {lo}–{hi}");
    assert!(input.notices.iter().any(|n| n.contains("moved by (12, 0)")), "{:?}", input.notices);
    for (d, m) in input.depth.iter().zip(&input.mask) {
        assert_eq!(d.is_finite(), *m > 0.5, "the depth moved with the mask");
    }
    // A centred object is left alone.
    let centred = input::prepare(&disc_photo(), MaskSettings::default(), None, &DepthChoice::Inflate, 48).unwrap();
    assert!(!centred.notices.iter().any(|n| n.contains("moved")));
}

#[test]
fn the_example_image_has_alpha_and_its_true_views_differ_from_it() {
    let cfg = LiftConfig::default();
    let orbit = cfg.reference_orbit();
    let photo = example_image(&orbit, 32, 32);
    assert!(photo.has_meaningful_alpha());
    let truth = example_truth(&orbit, 32, 32);
    assert_eq!(truth.views.len(), 3);
    let reference = ImageData {
        width: 32,
        height: 32,
        channels: 3,
        pixels: photo
            .rgb
            .chunks_exact(3)
            .zip(photo.alpha.as_ref().unwrap())
            .flat_map(|(c, &a)| (0..3).map(move |k| c[k] * a + 1.0 - a))
            .collect(),
    };
    // The nose faces the reference camera, so the side views differ from it noticeably.
    for view in &truth.views {
        let psnr = sparsefield::compute::metrics::psnr_db(&view.image, &reference);
        assert!(psnr < 30.0, "view at {}° matches the reference too well ({psnr:.1} dB)", view.azimuth_deg);
    }
}
