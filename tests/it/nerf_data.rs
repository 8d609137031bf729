//! NeRF data sets: the Blender and instant-ngp loaders, their refusals, and writing.
//!
//! Every data set here is built by hand in a temporary folder: a few 4×4 or 8×6 PNGs written with
//! the image crate and hand-written JSON, so that each expected value follows from the fixture.

use std::path::{Path, PathBuf};

use glam::{Mat4, Vec3};
use serde_json::{Value, json};
use sparsefield::compute::image_io::MAX_IMAGE_SIDE;
use sparsefield::compute::nerf::dataset::{
    Dataset, DatasetError, LoadOptions, Split, View, load_dataset, write_dataset,
};
use sparsefield::compute::nerf::{Camera, SceneBox};

use super::common::temp_dir;

/// The NeRF-synthetic scenes' `camera_angle_x`.
const ANGLE_X: f32 = 0.691_111_1;
/// Frames per split in the Blender fixture.
const SPLIT_SIZES: [(&str, usize); 3] = [("train", 3), ("val", 1), ("test", 2)];

/// The focal length Blender's `camera_angle_x` implies: 0.5·w / tan(θ/2).
fn focal_from_angle(width: f32, angle: f32) -> f32 {
    0.5 * width / (0.5 * angle).tan()
}

/// A distinct, proper camera-to-world pose per frame.
fn pose(i: usize) -> Mat4 {
    Mat4::from_translation(Vec3::new(i as f32, 0.5, 4.0)) * Mat4::from_rotation_y(0.4 * i as f32)
}

/// A matrix as the files write it: row-major, 4 rows of 4.
fn rows(m: Mat4) -> Value {
    json!([m.row(0).to_array(), m.row(1).to_array(), m.row(2).to_array(), m.row(3).to_array()])
}

/// Texel `(x, y)` of frame `frame`: colours differ per pixel and frame; alpha is 0, 128, 255, 255
/// along x.
fn texel(x: u32, y: u32, frame: usize) -> [u8; 4] {
    [(10 * x + 40 * frame as u32) as u8, (20 * y + 5) as u8, (7 * (x + y)) as u8, [0, 128, 255, 255][x as usize % 4]]
}

#[derive(Clone, Copy)]
enum Pixels {
    Rgba,
    OpaqueRgba,
    Rgb,
}

fn write_png(path: &Path, width: u32, height: u32, pixels: Pixels, frame: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    match pixels {
        Pixels::Rgba => image::RgbaImage::from_fn(width, height, |x, y| image::Rgba(texel(x, y, frame))).save(path),
        Pixels::OpaqueRgba => image::RgbaImage::from_fn(width, height, |x, y| {
            let [r, g, b, _] = texel(x, y, frame);
            image::Rgba([r, g, b, 255])
        })
        .save(path),
        Pixels::Rgb => image::RgbImage::from_fn(width, height, |x, y| {
            let [r, g, b, _] = texel(x, y, frame);
            image::Rgb([r, g, b])
        })
        .save(path),
    }
    .unwrap();
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut value);
    write_json(path, &value);
}

/// A Blender data set of 4×4 images: 3 train, 1 val, 2 test frames, paths without extension, and
/// an unknown key ("rotation") in every frame as the real files have.
fn blender_fixture(name: &str, pixels: Pixels) -> PathBuf {
    let dir = temp_dir(name);
    for (split, num_frames) in SPLIT_SIZES {
        let frames: Vec<Value> = (0..num_frames)
            .map(|i| {
                write_png(&dir.join(format!("{split}/r_{i}.png")), 4, 4, pixels, i);
                json!({"file_path": format!("./{split}/r_{i}"), "rotation": 0.012, "transform_matrix": rows(pose(i))})
            })
            .collect();
        write_json(
            &dir.join(format!("transforms_{split}.json")),
            &json!({"camera_angle_x": ANGLE_X, "frames": frames}),
        );
    }
    dir
}

/// An instant-ngp data set: one transforms.json with `num_frames` 8×6 RGB images, intrinsics in
/// pixels, frame 3 overriding fl_x and cx, aabb_scale 4 and a non-zero k1.
fn ngp_fixture(name: &str, num_frames: usize) -> PathBuf {
    let dir = temp_dir(name);
    let frames: Vec<Value> = (0..num_frames)
        .map(|i| {
            write_png(&dir.join(format!("images/frame_{i}.png")), 8, 6, Pixels::Rgb, i);
            let mut frame = json!({"file_path": format!("images/frame_{i}.png"), "transform_matrix": rows(pose(i))});
            if i == 3 {
                frame["fl_x"] = json!(9.0);
                frame["cx"] = json!(4.25);
            }
            frame
        })
        .collect();
    write_json(
        &dir.join("transforms.json"),
        &json!({
            "fl_x": 7.0, "fl_y": 6.5, "cx": 3.75, "cy": 3.25, "w": 8, "h": 6, "aabb_scale": 4,
            "k1": 0.1, "k2": 0.0, "p1": 0.0, "camera_model": "OPENCV", "frames": frames,
        }),
    );
    dir
}

fn load(dir: &Path) -> Dataset {
    load_dataset(dir, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn load_error(dir: &Path) -> DatasetError {
    match load_dataset(dir, &LoadOptions::default()) {
        Ok(dataset) => panic!("expected a refusal, loaded {}", dataset.summary()),
        Err(e) => e,
    }
}

fn assert_mentions(error: &DatasetError, parts: &[&str]) {
    let message = error.to_string();
    for part in parts {
        assert!(message.contains(part), "{message:?} should mention {part:?}");
    }
}

fn assert_close(got: [f32; 4], want: [f32; 4], tolerance: f32) {
    assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() <= tolerance), "{got:?} vs {want:?} (±{tolerance})");
}

fn sources(views: &[View]) -> Vec<PathBuf> {
    views.iter().map(|view| view.source.clone()).collect()
}

fn assert_cameras_close(a: &Camera, b: &Camera) {
    assert_eq!((a.width, a.height), (b.width, b.height));
    for (x, y) in [(a.fx, b.fx), (a.fy, b.fy), (a.cx, b.cx), (a.cy, b.cy)] {
        assert!((x - y).abs() <= 1e-4, "{a:?} vs {b:?}");
    }
    assert!(a.world_from_camera.abs_diff_eq(b.world_from_camera, 1e-4), "{a:?} vs {b:?}");
}

fn train_json(dir: &Path) -> PathBuf {
    dir.join("transforms_train.json")
}

// ---------------------------------------------------------------------------------------------
// Loading what is valid.

#[test]
fn blender_format_loads_cameras_pixels_and_alpha() {
    let dir = blender_fixture("nerf_blender_basic", Pixels::Rgba);
    let dataset = load(&dir);
    assert_eq!((dataset.train.len(), dataset.val.len(), dataset.test.len()), (3, 1, 2));
    assert_eq!(dataset.name, "nerf_blender_basic");
    assert_eq!(dataset.scene_box, SceneBox::cube(1.5));
    assert_eq!(dataset.background, Vec3::ONE);
    assert!(dataset.has_alpha);
    assert!(dataset.notices.is_empty(), "{:?}", dataset.notices);

    let view = &dataset.train[1];
    let focal = focal_from_angle(4.0, ANGLE_X);
    assert!((view.camera.fx - focal).abs() < 1e-5, "fx {} vs 0.5·w/tan(θ/2) = {focal}", view.camera.fx);
    assert!((view.camera.fy - focal).abs() < 1e-5);
    assert_eq!((view.camera.width, view.camera.height, view.camera.cx, view.camera.cy), (4, 4, 2.0, 2.0));
    assert!(view.camera.world_from_camera.abs_diff_eq(pose(1), 1e-6));
    // Extension-less file_path "./train/r_1" is train/r_1.png.
    assert!(view.source.ends_with("train/r_1.png"), "{}", view.source.display());
    for (x, y) in [(0, 0), (1, 2), (3, 3)] {
        let expected = texel(x, y, 1).map(|v| f32::from(v) / 255.0);
        assert_close(view.rgba[(y * 4 + x) as usize], expected, 1e-6);
    }
    assert_eq!(dataset.split(Split::Test).len(), 2);
    assert!(dataset.split(Split::Val)[0].source.ends_with("val/r_0.png"));
    assert_eq!(dataset.summary(), "nerf_blender_basic: 3 train / 1 val / 2 test views, 4×4, with alpha");
}

#[test]
fn opaque_alpha_and_rgb_images_have_no_alpha() {
    for (name, pixels) in [("nerf_opaque_rgba", Pixels::OpaqueRgba), ("nerf_rgb", Pixels::Rgb)] {
        let dataset = load(&blender_fixture(name, pixels));
        assert!(!dataset.has_alpha, "{name}");
        assert!(dataset.train.iter().all(|view| view.rgba.iter().all(|p| p[3] == 1.0)), "{name}");
        let [r, g, b, _] = texel(2, 1, 0).map(|v| f32::from(v) / 255.0);
        assert_close(dataset.train[0].rgba[4 + 2], [r, g, b, 1.0], 1e-6);
    }
}

#[test]
fn gray_sixteen_bit_and_jpeg_images_load() {
    let dir = blender_fixture("nerf_image_kinds", Pixels::Rgb);
    // 16-bit gray: 0x8000 / 0xFFFF, expanded to RGB, opaque.
    image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_pixel(4, 4, image::Luma([0x8000]))
        .save(dir.join("train/r_0.png"))
        .unwrap();
    // 8-bit gray + alpha, transparent in column 0.
    image::GrayAlphaImage::from_fn(4, 4, |x, _| image::LumaA([100, if x == 0 { 0 } else { 255 }]))
        .save(dir.join("train/r_1.png"))
        .unwrap();
    // A JPEG, named with its extension.
    image::RgbImage::from_pixel(4, 4, image::Rgb([200, 100, 50])).save(dir.join("test/r_1.jpg")).unwrap();
    edit_json(&dir.join("transforms_test.json"), |v| v["frames"][1]["file_path"] = json!("./test/r_1.jpg"));

    let dataset = load(&dir);
    let half = 32768.0 / 65535.0;
    assert_close(dataset.train[0].rgba[5], [half, half, half, 1.0], 1e-6);
    let gray = 100.0 / 255.0;
    assert_close(dataset.train[1].rgba[0], [gray, gray, gray, 0.0], 1e-6);
    assert_close(dataset.train[1].rgba[1], [gray, gray, gray, 1.0], 1e-6);
    assert!(dataset.has_alpha, "the gray + alpha image has transparent pixels");
    // JPEG is lossy; a flat colour comes back within a few levels.
    assert_close(dataset.test[1].rgba[6], [200.0 / 255.0, 100.0 / 255.0, 50.0 / 255.0, 1.0], 4.0 / 255.0);
}

#[test]
fn instant_ngp_single_file_splits_every_eighth_frame() {
    let dir = ngp_fixture("nerf_ngp_single", 10);
    let dataset = load(&dir);
    let frame_names =
        |views: &[View]| views.iter().map(|v| v.source.file_name().unwrap().to_string_lossy().into_owned()).collect();
    let test: Vec<String> = frame_names(&dataset.test);
    assert_eq!(test, ["frame_0.png", "frame_8.png"]);
    let train: Vec<String> = frame_names(&dataset.train);
    assert_eq!(train, [1, 2, 3, 4, 5, 6, 7, 9].map(|i| format!("frame_{i}.png")));
    assert_eq!(sources(&dataset.val), sources(&dataset.test));
    assert_eq!(dataset.scene_box, SceneBox::cube(1.5 * 4.0));
    assert!(!dataset.has_alpha);

    // Top-level intrinsics in pixels.
    let camera = dataset.train[0].camera;
    assert_eq!((camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy), (8, 6, 7.0, 6.5, 3.75, 3.25));
    assert!(camera.world_from_camera.abs_diff_eq(pose(1), 1e-6));
    // Frame 3 overrides fl_x and cx and keeps the rest.
    let camera = dataset.train[2].camera;
    assert_eq!((camera.fx, camera.fy, camera.cx, camera.cy), (9.0, 6.5, 4.25, 3.25));

    // k1 is non-zero (k2 and p1 are zero): one notice naming the file and k1 only.
    assert_eq!(dataset.notices.len(), 1, "{:?}", dataset.notices);
    let notice = &dataset.notices[0];
    assert!(notice.contains("transforms.json") && notice.contains("k1") && !notice.contains("p1"), "{notice}");
}

#[test]
fn field_of_view_keys_and_default_principal_point() {
    let dir = ngp_fixture("nerf_ngp_angles", 3);
    let (angle_x, angle_y) = (1.2_f32, 0.9_f32);
    edit_json(&dir.join("transforms.json"), |v| {
        let top = v.as_object_mut().unwrap();
        for key in ["fl_x", "fl_y", "cx", "cy", "k1"] {
            top.remove(key);
        }
        top.insert("camera_angle_x".into(), json!(angle_x));
        top.insert("camera_angle_y".into(), json!(angle_y));
    });
    let dataset = load(&dir);
    assert!(dataset.notices.is_empty(), "{:?}", dataset.notices);
    let camera = dataset.train[0].camera;
    assert!((camera.fx - focal_from_angle(8.0, angle_x)).abs() < 1e-5, "{camera:?}");
    assert!((camera.fy - focal_from_angle(6.0, angle_y)).abs() < 1e-5, "{camera:?}");
    assert_eq!((camera.cx, camera.cy), (4.0, 3.0), "the principal point defaults to the image centre");
}

#[test]
fn missing_or_empty_validation_split_reuses_the_test_views() {
    let dir = blender_fixture("nerf_no_val", Pixels::Rgb);
    edit_json(&dir.join("transforms_val.json"), |v| v["frames"] = json!([]));
    let dataset = load(&dir);
    assert_eq!(sources(&dataset.val), sources(&dataset.test));
    std::fs::remove_file(dir.join("transforms_val.json")).unwrap();
    let dataset = load(&dir);
    assert_eq!(sources(&dataset.val), sources(&dataset.test));
    assert_eq!(dataset.val.len(), 2);
}

#[test]
fn downscale_by_two_averages_blocks_and_scales_the_camera() {
    let dir = blender_fixture("nerf_downscale", Pixels::Rgba);
    // 8×6: block (0, 0) opaque with four colours; block (1, 0) half transparent red, half opaque blue.
    let image = image::RgbaImage::from_fn(8, 6, |x, y| match (x, y) {
        (0, 0) => image::Rgba([10, 20, 30, 255]),
        (1, 0) => image::Rgba([50, 60, 70, 255]),
        (0, 1) => image::Rgba([90, 100, 110, 255]),
        (1, 1) => image::Rgba([130, 140, 150, 255]),
        (2, _) => image::Rgba([255, 0, 0, 0]),
        (3, _) => image::Rgba([0, 0, 255, 255]),
        _ => image::Rgba([1, 2, 3, 255]),
    });
    for (split, num_frames) in SPLIT_SIZES {
        for i in 0..num_frames {
            image.save(dir.join(format!("{split}/r_{i}.png"))).unwrap();
        }
    }
    let full = load(&dir);
    let half = load_dataset(&dir, &LoadOptions { downscale: 2, background: Vec3::ZERO }).unwrap();
    assert_eq!(half.background, Vec3::ZERO);
    let (camera, full_camera) = (half.train[0].camera, full.train[0].camera);
    assert_eq!(camera, full_camera.downscaled(2));
    assert_eq!((camera.width, camera.height, camera.cx, camera.cy), (4, 3, 2.0, 1.5));
    assert!((camera.fx - 0.5 * focal_from_angle(8.0, ANGLE_X)).abs() < 1e-5);
    assert_eq!(half.train[0].rgba.len(), 12);
    // Mean of 10, 50, 90, 130 = 70 (and 80, 90 for green and blue).
    assert_close(half.train[0].rgba[0], [70.0 / 255.0, 80.0 / 255.0, 90.0 / 255.0, 1.0], 1e-6);
    // Alpha-weighted: the transparent red does not bleed; alpha is the mean 0.5.
    assert_close(half.train[0].rgba[1], [0.0, 0.0, 1.0, 0.5], 1e-6);
}

#[test]
fn downscale_zero_or_larger_than_the_images_is_refused() {
    let dir = blender_fixture("nerf_downscale_bad", Pixels::Rgb);
    let error = load_dataset(&dir, &LoadOptions { downscale: 0, background: Vec3::ONE }).unwrap_err();
    assert!(matches!(error, DatasetError::ZeroDownscale), "{error}");
    let error = load_dataset(&dir, &LoadOptions { downscale: 8, background: Vec3::ONE }).unwrap_err();
    assert!(matches!(error, DatasetError::DownscaleTooLarge { factor: 8, width: 4, .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 0", "r_0.png", "4×4"]);
}

// ---------------------------------------------------------------------------------------------
// Writing.

#[test]
fn write_then_load_round_trips_cameras_and_pixels() {
    let original = load(&blender_fixture("nerf_write_source", Pixels::Rgba));
    let out = temp_dir("nerf_write_out");
    write_dataset(&original, &out).unwrap();
    let reloaded = load(&out);
    assert_eq!(reloaded.has_alpha, original.has_alpha);
    for split in Split::ALL {
        let (a, b) = (original.split(split), reloaded.split(split));
        assert_eq!(a.len(), b.len(), "{split}");
        for (va, vb) in a.iter().zip(b) {
            assert_cameras_close(&va.camera, &vb.camera);
            for (pa, pb) in va.rgba.iter().zip(vb.rgba.iter()) {
                for (x, y) in pa.iter().zip(pb) {
                    assert!((x - y).abs() <= 1.0 / 255.0, "{split}: {pa:?} vs {pb:?}");
                }
            }
        }
    }
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("transforms_test.json")).unwrap()).unwrap();
    assert_eq!(written["frames"][1]["file_path"], "./test/r_1");
    assert_eq!(written["w"], 4);
    assert!((written["camera_angle_x"].as_f64().unwrap() - f64::from(ANGLE_X)).abs() < 1e-6);
    assert!((written["fl_x"].as_f64().unwrap() - f64::from(original.test[0].camera.fx)).abs() < 1e-6);
}

#[test]
fn written_float_pixels_come_back_within_one_level() {
    let camera = |i: usize| Camera::look_at(5, 3, 0.8, Vec3::new(3.0, i as f32, 2.0), Vec3::ZERO);
    let view = |i: usize| View {
        camera: camera(i),
        rgba: (0..15).map(|k| [k as f32 / 14.0, 0.3337, 1.0 - k as f32 / 15.0, 0.5 + k as f32 / 31.0]).collect(),
        source: PathBuf::new(),
    };
    let dataset = Dataset {
        name: "generated".into(),
        train: vec![view(0), view(1)],
        val: vec![],
        test: vec![view(2)],
        scene_box: SceneBox::cube(1.5),
        has_alpha: true,
        background: Vec3::ONE,
        notices: vec![],
        warnings: Vec::new(),
    };
    let out = temp_dir("nerf_write_floats");
    write_dataset(&dataset, &out).unwrap();
    let reloaded = load(&out);
    assert_eq!((reloaded.train.len(), reloaded.val.len(), reloaded.test.len()), (2, 1, 1));
    assert_cameras_close(&reloaded.train[1].camera, &camera(1));
    for (a, b) in dataset.train[1].rgba.iter().zip(reloaded.train[1].rgba.iter()) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 0.5 / 255.0 + 1e-6, "{a:?} vs {b:?}");
        }
    }
}

#[test]
fn writer_refuses_what_the_blender_format_cannot_hold() {
    let mut dataset = load(&blender_fixture("nerf_write_refusals", Pixels::Rgb));
    let out = temp_dir("nerf_write_refused");
    let mut skewed = dataset.clone();
    skewed.train[1].camera.fy *= 1.5;
    let error = write_dataset(&skewed, &out).unwrap_err();
    assert_mentions(&error, &["train view 1", "not square"]);
    let mut shifted = dataset.clone();
    shifted.test[0].camera.cx += 1.0;
    assert_mentions(&write_dataset(&shifted, &out).unwrap_err(), &["test view 0", "principal point"]);
    let mut short = dataset.clone();
    short.val[0].rgba = short.val[0].rgba[1..].into();
    assert_mentions(&write_dataset(&short, &out).unwrap_err(), &["val view 0", "15 pixels"]);
    assert!(!out.join("transforms_train.json").exists(), "nothing is written before every view passes");
    dataset.test.clear();
    assert_mentions(&write_dataset(&dataset, &out).unwrap_err(), &["test split", "no views"]);
    // A destination that is a file.
    let file = out.join("occupied");
    std::fs::write(&file, b"x").unwrap();
    let fine = load(&blender_fixture("nerf_write_refusals", Pixels::Rgb));
    let error = write_dataset(&fine, &file).unwrap_err();
    assert!(matches!(error, DatasetError::Write { .. }), "{error}");
    assert_mentions(&error, &["occupied"]);
}

// ---------------------------------------------------------------------------------------------
// Refusals: each names the file, the place in it and what to do.

#[test]
fn missing_transforms_files_list_the_names_looked_for() {
    let dir = temp_dir("nerf_empty_folder");
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::NoTransforms { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "transforms_test.json", "transforms.json", "Pick the folder"]);
    let error = load_error(&dir.join("absent"));
    assert!(matches!(error, DatasetError::FolderNotFound { .. }), "{error}");
}

#[test]
fn missing_test_split_is_named() {
    let dir = blender_fixture("nerf_missing_test", Pixels::Rgb);
    std::fs::remove_file(dir.join("transforms_test.json")).unwrap();
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::MissingSplit { .. }), "{error}");
    assert_mentions(&error, &["transforms_test.json is missing", "transforms_train.json"]);
}

#[test]
fn invalid_json_names_the_file_and_line() {
    let dir = blender_fixture("nerf_bad_json", Pixels::Rgb);
    std::fs::write(train_json(&dir), "{\n  \"camera_angle_x\": 0.69,\n  \"frames\": [\n").unwrap();
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::Json { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "not valid JSON", "line 4"]);
}

#[test]
fn nan_in_a_matrix_names_the_frame_and_entry() {
    let dir = blender_fixture("nerf_nan", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["frames"][1]["transform_matrix"][0][3] = json!("NAN_HERE"));
    let text = std::fs::read_to_string(train_json(&dir)).unwrap().replace("\"NAN_HERE\"", "NaN");
    std::fs::write(train_json(&dir), text).unwrap();
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::NonFinite { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "transform_matrix[0][3]", "NaN"]);
}

#[test]
fn infinity_in_intrinsics_is_refused() {
    let dir = blender_fixture("nerf_inf", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["camera_angle_x"] = json!("INF_HERE"));
    let text = std::fs::read_to_string(train_json(&dir)).unwrap().replace("\"INF_HERE\"", "-Infinity");
    std::fs::write(train_json(&dir), text).unwrap();
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::NonFinite { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "top level", "camera_angle_x", "-Infinity"]);
}

#[test]
fn number_beyond_f32_is_refused() {
    let dir = blender_fixture("nerf_overflow", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["frames"][1]["transform_matrix"][2][2] = json!(1e39));
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::NonFinite { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "transform_matrix[2][2]", "beyond"]);
}

#[test]
fn wrong_type_of_a_top_level_key() {
    let dir = blender_fixture("nerf_wide", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["camera_angle_x"] = json!("wide"));
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::WrongType { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "top level", "\"camera_angle_x\" must be a number", "\"wide\""]);
}

#[test]
fn wrong_type_of_a_frame_override() {
    let dir = blender_fixture("nerf_frame_type", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["frames"][1]["fl_x"] = json!([5.0]));
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::WrongType { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "fl_x", "an array"]);
}

#[test]
fn frames_that_are_not_an_array() {
    let dir = blender_fixture("nerf_frames_object", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["frames"] = json!({"0": {}}));
    let error = load_error(&dir);
    assert_mentions(&error, &["transforms_train.json", "\"frames\" must be an array", "an object"]);
}

#[test]
fn a_frame_that_is_not_an_object() {
    let dir = blender_fixture("nerf_frame_number", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["frames"][1] = json!(5));
    let error = load_error(&dir);
    assert_mentions(&error, &["transforms_train.json", "frame 1", "an object", "the number 5"]);
}

#[test]
fn matrix_with_three_rows() {
    let dir = blender_fixture("nerf_three_rows", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["frames"][1]["transform_matrix"].as_array_mut().unwrap().truncate(3));
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::WrongType { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "transform_matrix", "4 rows of 4", "3 item(s)"]);
}

#[test]
fn matrix_with_a_short_row_or_a_string_entry() {
    let dir = blender_fixture("nerf_short_row", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["frames"][1]["transform_matrix"][2] = json!([1, 0, 0]));
    assert_mentions(&load_error(&dir), &["transforms_train.json", "frame 1", "transform_matrix[2]", "a row of 4"]);
    let dir = blender_fixture("nerf_string_entry", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["frames"][2]["transform_matrix"][2][1] = json!("0"));
    assert_mentions(&load_error(&dir), &["transforms_train.json", "frame 2", "transform_matrix[2][1]", "a number"]);
}

#[test]
fn missing_file_path_is_named() {
    let dir = blender_fixture("nerf_no_file_path", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| {
        v["frames"][1].as_object_mut().unwrap().remove("file_path");
    });
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::MissingKey { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "\"file_path\" is missing"]);
}

#[test]
fn missing_transform_matrix_is_named() {
    let dir = blender_fixture("nerf_no_matrix", Pixels::Rgb);
    edit_json(&dir.join("transforms_test.json"), |v| {
        v["frames"][1].as_object_mut().unwrap().remove("transform_matrix");
    });
    let error = load_error(&dir);
    assert_mentions(&error, &["transforms_test.json", "frame 1", "\"transform_matrix\" is missing"]);
}

#[test]
fn missing_focal_length_is_named() {
    let dir = blender_fixture("nerf_no_focal", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| {
        v.as_object_mut().unwrap().remove("camera_angle_x");
    });
    let error = load_error(&dir);
    assert_mentions(&error, &["transforms_train.json", "frame 0", "camera_angle_x", "fl_x"]);
    // A frame's own focal length is enough for that frame; the next one is then named.
    edit_json(&train_json(&dir), |v| v["frames"][0]["fl_x"] = json!(5.0));
    assert_mentions(&load_error(&dir), &["transforms_train.json", "frame 1", "camera_angle_x"]);
}

#[test]
fn non_positive_focal_length_is_refused() {
    let dir = blender_fixture("nerf_zero_focal", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["frames"][1]["fl_x"] = json!(0.0));
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::BadValue { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "fl_x", "positive"]);
    let dir = blender_fixture("nerf_negative_angle", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["camera_angle_x"] = json!(-0.5));
    assert_mentions(&load_error(&dir), &["transforms_train.json", "top level", "camera_angle_x", "between 0 and π"]);
}

#[test]
fn fractional_image_side_is_refused() {
    let dir = ngp_fixture("nerf_fractional_w", 3);
    edit_json(&dir.join("transforms.json"), |v| v["frames"][2]["w"] = json!(8.5));
    assert_mentions(&load_error(&dir), &["transforms.json", "frame 2", "\"w\"", "whole number"]);
}

#[test]
fn singular_rotation_is_refused() {
    let dir = blender_fixture("nerf_singular", Pixels::Rgb);
    let flat = Mat4::from_cols(Vec3::X.extend(0.0), Vec3::X.extend(0.0), Vec3::Z.extend(0.0), Vec3::ONE.extend(1.0));
    edit_json(&train_json(&dir), |v| v["frames"][1]["transform_matrix"] = rows(flat));
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::BadValue { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "singular"]);
}

#[test]
fn bottom_row_other_than_0001_is_refused() {
    let dir = blender_fixture("nerf_bottom_row", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["frames"][1]["transform_matrix"][3] = json!([0, 0, 1, 0]));
    let error = load_error(&dir);
    assert_mentions(&error, &["transforms_train.json", "frame 1", "bottom row", "[0, 0, 0, 1]", "row-major"]);
}

#[test]
fn absolute_file_path_is_refused() {
    let dir = blender_fixture("nerf_absolute", Pixels::Rgb);
    let absolute = dir.join("train/r_1.png").to_string_lossy().into_owned();
    edit_json(&train_json(&dir), |v| v["frames"][1]["file_path"] = json!(absolute));
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::BadPath { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "is absolute", "relative"]);
}

#[test]
fn parent_directory_in_file_path_is_refused() {
    let dir = blender_fixture("nerf_dotdot", Pixels::Rgb);
    // Even a ".." that would land back inside the folder.
    edit_json(&train_json(&dir), |v| v["frames"][1]["file_path"] = json!("./train/../train/r_1"));
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::BadPath { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "\"..\"", "./train/../train/r_1"]);
    edit_json(&train_json(&dir), |v| v["frames"][1]["file_path"] = json!("train\\..\\..\\secret"));
    assert_mentions(&load_error(&dir), &["frame 1", "\"..\""]);
}

#[cfg(unix)]
#[test]
fn symbolic_link_out_of_the_folder_is_refused() {
    let outside = temp_dir("nerf_symlink_outside");
    write_png(&outside.join("secret.png"), 4, 4, Pixels::Rgb, 0);
    let dir = blender_fixture("nerf_symlink", Pixels::Rgb);
    std::fs::remove_file(dir.join("train/r_1.png")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.png"), dir.join("train/r_1.png")).unwrap();
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::BadPath { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "outside the data set folder", "secret.png"]);
}

#[test]
fn missing_image_is_named() {
    let dir = blender_fixture("nerf_missing_image", Pixels::Rgb);
    std::fs::remove_file(dir.join("train/r_1.png")).unwrap();
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::MissingImage { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "train/r_1.png", "not found"]);
}

#[test]
fn corrupt_image_is_named() {
    let dir = blender_fixture("nerf_corrupt_image", Pixels::Rgb);
    std::fs::write(dir.join("train/r_1.png"), b"this is not an image").unwrap();
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::Image { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "r_1.png", "not a PNG or JPEG"]);
}

#[test]
fn truncated_image_is_named() {
    let dir = blender_fixture("nerf_truncated_image", Pixels::Rgb);
    write_png(&dir.join("train/r_1.png"), 4, 4, Pixels::Rgb, 1);
    let bytes = std::fs::read(dir.join("train/r_1.png")).unwrap();
    std::fs::write(dir.join("train/r_1.png"), &bytes[..bytes.len() / 2 + 10]).unwrap();
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::Image { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "r_1.png", "cannot decode"]);
}

/// A PNG whose IHDR claims `width × height` (valid CRCs) and holds no pixel data.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFF_u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for body in [&ihdr[..], b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01", b"IEND"] {
        out.extend_from_slice(&u32::try_from(body.len() - 4).unwrap().to_be_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&crc32(body).to_be_bytes());
    }
    out
}

#[test]
fn oversized_image_header_is_refused_before_decoding() {
    let dir = blender_fixture("nerf_huge_image", Pixels::Rgb);
    std::fs::write(dir.join("train/r_1.png"), png_header_only(60_000, 60_000)).unwrap();
    let error = load_error(&dir);
    assert_mentions(
        &error,
        &["transforms_train.json", "frame 1", "r_1.png", "60000×60000", &MAX_IMAGE_SIDE.to_string()],
    );
}

#[test]
fn cameras_that_miss_the_scene_box_and_empty_images_are_warned_about() {
    let dir = blender_fixture("nerf_coverage", Pixels::Rgba);
    assert!(load(&dir).warnings.is_empty(), "{:?}", load(&dir).warnings);
    // Turn the second training camera around: it looks away from the box.
    let away = Mat4::from_translation(Vec3::new(0.0, 0.0, 4.0)) * Mat4::from_rotation_y(std::f32::consts::PI);
    edit_json(&train_json(&dir), |v| v["frames"][1]["transform_matrix"] = rows(away));
    let warnings = load(&dir).warnings;
    assert!(warnings.len() == 1 && warnings[0].starts_with("1 of the 3 training cameras"), "{warnings:?}");
    // All of them, and transparent images: training would learn nothing.
    edit_json(&train_json(&dir), |v| {
        v["frames"].as_array_mut().unwrap().iter_mut().for_each(|frame| frame["transform_matrix"] = rows(away));
    });
    for i in 0..3 {
        image::RgbaImage::new(4, 4).save(dir.join(format!("train/r_{i}.png"))).unwrap();
    }
    let warnings = load(&dir).warnings;
    assert!(
        warnings[0].contains("none of the 3 training cameras") && warnings[0].contains("no samples"),
        "{warnings:?}"
    );
    assert!(warnings[1].contains("fully transparent"), "{warnings:?}");
}

#[test]
fn each_image_file_is_decoded_once_and_the_data_set_is_budgeted_as_a_whole() {
    let dir = blender_fixture("nerf_shared_images", Pixels::Rgba);
    let name_first_image = |frame: &mut Value| frame["file_path"] = json!("./train/r_0");
    for split in ["train", "val", "test"] {
        edit_json(&dir.join(format!("transforms_{split}.json")), |v| {
            v["frames"].as_array_mut().unwrap().iter_mut().for_each(name_first_image);
        });
    }
    let data = load_dataset(&dir, &LoadOptions::default()).unwrap();
    let first = &data.train[0].rgba;
    assert!(data.train.iter().chain(&data.val).chain(&data.test).all(|view| std::sync::Arc::ptr_eq(first, &view.rgba)));
    // Every frame names one image that would take 4 GiB as views: counted once, it fits the
    // budget, so decoding is tried (and fails: the file has no pixels).
    std::fs::write(dir.join("train/r_0.png"), png_header_only(16_384, 16_384)).unwrap();
    assert_mentions(&load_error(&dir), &["r_0.png", "cannot decode"]);
    // A second such image: 8 GiB, refused before anything is decoded.
    std::fs::write(dir.join("train/r_1.png"), png_header_only(16_384, 16_384)).unwrap();
    edit_json(&train_json(&dir), |v| v["frames"][1]["file_path"] = json!("./train/r_1"));
    assert_mentions(&load_error(&dir), &["2 distinct images", "8.0 GiB", "6 GiB", "downscale"]);
}

#[test]
fn image_of_another_size_than_the_split_is_refused() {
    let dir = blender_fixture("nerf_size_mismatch", Pixels::Rgb);
    write_png(&dir.join("train/r_1.png"), 8, 4, Pixels::Rgb, 1);
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::ImageSize { width: 8, height: 4, .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 1", "r_1.png", "frame 0 is 4×4"]);
}

#[test]
fn image_that_contradicts_w_and_h_is_refused() {
    let dir = blender_fixture("nerf_w_h_mismatch", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| {
        v["w"] = json!(5);
        v["h"] = json!(4);
    });
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::ImageSize { .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "frame 0", "r_0.png", "\"w\" and \"h\" say 5×4"]);
}

#[test]
fn empty_train_split_is_refused() {
    let dir = blender_fixture("nerf_empty_train", Pixels::Rgb);
    edit_json(&train_json(&dir), |v| v["frames"] = json!([]));
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::EmptySplit { split: Split::Train, .. }), "{error}");
    assert_mentions(&error, &["transforms_train.json", "empty"]);
}

#[test]
fn single_file_without_training_frames_is_refused() {
    let dir = ngp_fixture("nerf_ngp_one_frame", 1);
    let error = load_error(&dir);
    assert!(matches!(error, DatasetError::NoTrainViews { num_frames: 1, .. }), "{error}");
    assert_mentions(&error, &["transforms.json", "held out"]);
}

#[test]
fn instant_ngp_scale_keys_get_a_notice_and_huge_aabb_scales_are_refused() {
    let dir = ngp_fixture("ngp_scale_notice", 9);
    edit_json(&dir.join("transforms.json"), |v| {
        v["scale"] = json!(0.33);
        v["offset"] = json!([0.5, 0.5, 0.5]);
    });
    let data = load(&dir);
    let notice = data.notices.iter().find(|n| n.contains("scale, offset")).expect("a notice about scale and offset");
    assert!(notice.contains("±6"), "{notice}");
    edit_json(&dir.join("transforms.json"), |v| v["aabb_scale"] = json!(1e30));
    assert_mentions(&load_error(&dir), &["transforms.json", "aabb_scale", "128"]);
}
