//! Writing a data set in the Blender format.

use std::path::Path;

use glam::Vec3;
use rayon::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::image_io::{self};
use crate::nerf::camera::Camera;

/// Writes `dataset` in the Blender format: `dir/{train,val,test}/r_{i}.png` (8-bit RGBA) and
/// `dir/transforms_{split}.json` with `camera_angle_x` and the exact intrinsics `fl_x`, `fl_y`,
/// `cx`, `cy`, `w`, `h` (which instant-ngp-style readers use). Cameras must have square pixels and
/// a principal point within half a pixel of the image centre, since Blender readers assume both.
/// Everything is checked before the first file is written.
pub fn write_dataset(dataset: &Dataset, dir: &Path) -> Result<(), DatasetError> {
    for split in [Split::Train, Split::Test] {
        if dataset.split(split).is_empty() {
            return Err(DatasetError::NotWritable {
                what: format!("the {split} split of \"{}\"", dataset.name),
                problem: "it has no views, and a Blender data set needs train and test views.".to_owned(),
            });
        }
    }
    for split in Split::ALL {
        let views = dataset.split(split);
        if let Some(first) = views.first() {
            for (index, view) in views.iter().enumerate() {
                check_writable(view, &first.camera).map_err(|problem| DatasetError::NotWritable {
                    what: format!("{split} view {index} of \"{}\"", dataset.name),
                    problem,
                })?;
            }
        }
    }
    for split in Split::ALL {
        let views = dataset.split(split);
        let image_dir = dir.join(split.name());
        std::fs::create_dir_all(&image_dir)
            .map_err(|e| DatasetError::Write { path: image_dir.clone(), reason: e.to_string() })?;
        let results: Vec<Result<(), DatasetError>> = views
            .par_iter()
            .enumerate()
            .map(|(index, view)| {
                let path = image_dir.join(format!("r_{index}.png"));
                let bytes: Vec<u8> = view.rgba.iter().flatten().map(|&v| image_io::to_u8(v)).collect();
                image_io::save_rgba_png(&bytes, view.camera.width, view.camera.height, &path)
                    .map_err(|e| DatasetError::Write { path, reason: e.to_string() })
            })
            .collect();
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        // An empty validation split still gets a file (with no frames) so that the layout is
        // complete; the loader then validates on the test views.
        let Some(reference) = views.first().or_else(|| dataset.test.first()) else { continue };
        let mut top = intrinsics_json(&reference.camera);
        let frames: Vec<Value> = views
            .iter()
            .enumerate()
            .map(|(index, view)| {
                let mut frame = Map::new();
                frame.insert("file_path".to_owned(), json!(format!("./{}/r_{index}", split.name())));
                let m = view.camera.world_from_camera;
                frame.insert(
                    "transform_matrix".to_owned(),
                    json!([m.row(0).to_array(), m.row(1).to_array(), m.row(2).to_array(), m.row(3).to_array()]),
                );
                if !same_intrinsics(&view.camera, &reference.camera) {
                    frame.extend(intrinsics_json(&view.camera));
                }
                Value::Object(frame)
            })
            .collect();
        top.insert("frames".to_owned(), Value::Array(frames));
        let path = dir.join(split.transforms_file_name());
        let text = serde_json::to_string_pretty(&Value::Object(top))
            .map_err(|e| DatasetError::Write { path: path.clone(), reason: e.to_string() })?;
        crate::files::write_atomic(&path, text + "\n")
            .map_err(|e| DatasetError::Write { path, reason: e.to_string() })?;
    }
    Ok(())
}

/// What the writer needs of a view: pixels that match the camera, the split's image size, finite
/// intrinsics and pose, square pixels and a centred principal point.
pub(super) fn check_writable(view: &View, first: &Camera) -> Result<(), String> {
    let camera = &view.camera;
    if camera.width == 0 || camera.height == 0 || view.rgba.len() != camera.num_pixels() {
        return Err(format!(
            "it has {} pixels, but its camera is {}×{}.",
            view.rgba.len(),
            camera.width,
            camera.height
        ));
    }
    if (camera.width, camera.height) != (first.width, first.height) {
        return Err(format!(
            "it is {}×{}, but the split's first view is {}×{}; all views of a split must have one size.",
            camera.width, camera.height, first.width, first.height
        ));
    }
    let intrinsics = [camera.fx, camera.fy, camera.cx, camera.cy];
    if !intrinsics.iter().all(|v| v.is_finite()) || camera.fx <= 0.0 || camera.fy <= 0.0 {
        return Err(format!("its intrinsics {intrinsics:?} must be finite with positive focal lengths."));
    }
    if !camera.world_from_camera.is_finite() {
        return Err("its camera-to-world matrix holds NaN or infinity.".to_owned());
    }
    if (camera.fx - camera.fy).abs() > 1e-4 * camera.fx {
        return Err(format!(
            "its pixels are not square (fx = {}, fy = {}); camera_angle_x cannot describe such a camera.",
            camera.fx, camera.fy
        ));
    }
    #[allow(clippy::cast_precision_loss)] // sides are at most MAX_IMAGE_SIDE, exact in f32
    let centre = Vec3::new(0.5 * camera.width as f32, 0.5 * camera.height as f32, 0.0);
    if (camera.cx - centre.x).abs() > 0.5 || (camera.cy - centre.y).abs() > 0.5 {
        return Err(format!(
            "its principal point ({}, {}) is not at the image centre ({}, {}), which Blender readers assume.",
            camera.cx, camera.cy, centre.x, centre.y
        ));
    }
    Ok(())
}

pub(super) fn same_intrinsics(a: &Camera, b: &Camera) -> bool {
    (a.width, a.height, a.fx, a.fy, a.cx, a.cy) == (b.width, b.height, b.fx, b.fy, b.cx, b.cy)
}

pub(super) fn intrinsics_json(camera: &Camera) -> Map<String, Value> {
    #[allow(clippy::cast_precision_loss)] // sides are at most MAX_IMAGE_SIDE, exact in f32
    let camera_angle_x = 2.0 * (0.5 * camera.width as f32 / camera.fx).atan();
    let mut map = Map::new();
    map.insert("camera_angle_x".to_owned(), json!(camera_angle_x));
    map.insert("fl_x".to_owned(), json!(camera.fx));
    map.insert("fl_y".to_owned(), json!(camera.fy));
    map.insert("cx".to_owned(), json!(camera.cx));
    map.insert("cy".to_owned(), json!(camera.cy));
    map.insert("w".to_owned(), json!(camera.width));
    map.insert("h".to_owned(), json!(camera.height));
    map
}
