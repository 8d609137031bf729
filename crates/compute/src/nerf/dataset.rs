//! Multi-view data sets: the Blender / NeRF-synthetic format and its instant-ngp / nerfstudio
//! variant, loaded strictly, and a writer for the Blender format.
//!
//! Every refusal names the JSON file, the place in it (top level or frame index) and, where an
//! image is involved, the image path, and says what to do.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use glam::{Mat3, Mat4, Vec3};
use image::ImageReader;
use rayon::prelude::*;
use serde_json::{Map, Value, json};

use super::camera::{Camera, SceneBox};
use crate::image_io::{self, ImageError, MAX_IMAGE_SIDE, header_limits};

/// The single-file layout's name (instant-ngp / nerfstudio).
pub const SINGLE_FILE_NAME: &str = "transforms.json";
/// With a single `transforms.json`, frames whose index is a multiple of this are test views.
pub const TEST_EVERY: usize = 8;
/// Memory the images of a data set may take once loaded (RGBA f32, each distinct file once).
pub const MAX_DATASET_BYTES: u64 = 6 << 30;
/// The largest `aabb_scale` accepted (instant-ngp's own limit).
pub const MAX_AABB_SCALE: f32 = 128.0;
/// Half the side of the scene cube of a Blender scene (`aabb_scale` = 1).
pub const BLENDER_HALF_EXTENT: f32 = 1.5;
/// Lens distortion keys of instant-ngp / nerfstudio; non-zero values are ignored with a notice.
const DISTORTION_KEYS: [&str; 6] = ["k1", "k2", "k3", "k4", "p1", "p2"];
/// `camera_model` values that are pinhole cameras (possibly with distortion, which is ignored).
const PINHOLE_MODELS: [&str; 5] = ["PINHOLE", "SIMPLE_PINHOLE", "OPENCV", "SIMPLE_RADIAL", "RADIAL"];
/// JSON has no NaN or Infinity, but Python's `json` writes them; they are quoted with this tag
/// before a second parse so that the refusal can name the frame and key.
const NON_FINITE_TAG: &str = "\u{1}non-finite:";
/// A rotation part whose determinant is smaller than this is refused as singular.
const MIN_ROTATION_DET: f32 = 1e-6;

/// One posed image. Pixels are straight (not premultiplied) RGBA in [0, 1], row-major; `alpha`
/// is 1 everywhere for images without an alpha channel.
#[derive(Clone, Debug)]
pub struct View {
    pub camera: Camera,
    /// Shared by the views of one image file (validation often reuses the test images).
    pub rgba: Arc<[[f32; 4]]>,
    /// Where the image came from (for messages); empty for generated views.
    pub source: PathBuf,
}

impl View {
    /// Pixel `k` composited over `background`.
    pub fn composited(&self, k: usize, background: Vec3) -> Vec3 {
        let [r, g, b, a] = self.rgba[k];
        Vec3::new(r, g, b) * a + background * (1.0 - a)
    }
}

/// A data set: training, validation and test views of one scene inside `scene_box`.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// A short name for titles and file names.
    pub name: String,
    pub train: Vec<View>,
    pub val: Vec<View>,
    pub test: Vec<View>,
    pub scene_box: SceneBox,
    /// True when the images carry a meaningful alpha channel (then training uses random
    /// backgrounds and evaluation composites over `background`).
    pub has_alpha: bool,
    /// The background that evaluation and the viewer composite over.
    pub background: Vec3,
    /// Things the loader accepted but could not honour (e.g. lens distortion), to show the user.
    pub notices: Vec<String>,
    /// Signs that training will learn little or nothing (cameras that miss the scene box, images
    /// with nothing in them), to show the user as warnings; see [`Dataset::check_coverage`].
    pub warnings: Vec<String>,
}

/// One of the three parts of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// `"train"`, `"val"` or `"test"`: the folder and file-name part of the Blender format.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// `transforms_{name}.json`.
    pub fn transforms_file_name(self) -> String {
        format!("transforms_{}.json", self.name())
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Dataset {
    /// Fills [`Dataset::warnings`]: training cameras that do not look into the scene box (a grid
    /// of 9 × 9 rays per view; views that see none of it teach only the background, and if every
    /// view misses, training finds no samples at all), and training images that are transparent
    /// everywhere.
    pub fn check_coverage(&mut self) {
        const GRID: u32 = 9;
        let sees_box = |view: &View| {
            let c = &view.camera;
            (0..GRID * GRID).any(|k| {
                #[allow(clippy::cast_precision_loss)] // small grid coordinates and image sides
                let (u, v) = (
                    (k % GRID) as f32 / (GRID - 1) as f32 * c.width as f32,
                    (k / GRID) as f32 / (GRID - 1) as f32 * c.height as f32,
                );
                self.scene_box.intersect(&c.ray_through(u, v), 0.0).is_some()
            })
        };
        let missing = self.train.iter().filter(|view| !sees_box(view)).count();
        let (lo, hi) = (self.scene_box.min, self.scene_box.max);
        let bounds = format!("[{:.3}, {:.3}, {:.3}] to [{:.3}, {:.3}, {:.3}]", lo.x, lo.y, lo.z, hi.x, hi.y, hi.z);
        if missing > 0 && missing == self.train.len() {
            self.warnings.push(format!(
                "none of the {missing} training cameras looks into the scene box ({bounds}), so training will find \
                 no samples and learn nothing. Check the poses: their scale (the box grows with aabb_scale), and that \
                 the cameras face the scene (OpenGL convention: they look along −z)."
            ));
        } else if missing > 0 {
            self.warnings.push(format!(
                "{missing} of the {} training cameras do not look into the scene box ({bounds}); their images teach \
                 only the background.",
                self.train.len()
            ));
        }
        if self.has_alpha && self.train.iter().all(|view| view.rgba.iter().all(|p| p[3] == 0.0)) {
            self.warnings.push(
                "every training image is fully transparent (alpha 0 everywhere), so there is no object to learn."
                    .to_owned(),
            );
        }
    }

    /// The views of one split.
    pub fn split(&self, split: Split) -> &[View] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }

    /// One line for logs and the UI, e.g. "lego: 100 train / 10 val / 20 test views, 128×128".
    pub fn summary(&self) -> String {
        let mut sizes: Vec<(u32, u32)> = Vec::new();
        for view in self.train.iter().chain(&self.val).chain(&self.test) {
            let size = (view.camera.width, view.camera.height);
            if !sizes.contains(&size) {
                sizes.push(size);
            }
        }
        let sizes = if sizes.is_empty() {
            "no images".to_owned()
        } else {
            sizes.iter().map(|(w, h)| format!("{w}×{h}")).collect::<Vec<_>>().join(", ")
        };
        let alpha = if self.has_alpha { ", with alpha" } else { "" };
        format!(
            "{}: {} train / {} val / {} test views, {sizes}{alpha}",
            self.name,
            self.train.len(),
            self.val.len(),
            self.test.len()
        )
    }
}

/// Options applied while loading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadOptions {
    /// Integer downscale factor of every image (1 = full size).
    pub downscale: u32,
    /// The background colour RGBA images are composited over for evaluation.
    pub background: Vec3,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { downscale: 1, background: Vec3::ONE }
    }
}

/// Why a data set could not be loaded or written. `location` is "top level" or "frame N" (the
/// index in the file's `frames` array, from 0).
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("downscale factor 0: the factor must be at least 1 (1 keeps the images at full size).")]
    ZeroDownscale,
    #[error(
        "{dir}: folder not found. Pick the folder that holds transforms_train.json (Blender) or \
         transforms.json (instant-ngp / nerfstudio)."
    )]
    FolderNotFound { dir: PathBuf },
    #[error(
        "{dir}: no transforms file found (looked for {looked_for}). Pick the folder of a Blender / \
         NeRF-synthetic or instant-ngp / nerfstudio data set."
    )]
    NoTransforms { dir: PathBuf, looked_for: String },
    #[error(
        "{dir}: {found} is there but {missing} is missing. A Blender data set needs \
         transforms_train.json and transforms_test.json (transforms_val.json is optional); add the \
         missing file, or put all frames in one transforms.json (every 8th frame becomes a test view)."
    )]
    MissingSplit { dir: PathBuf, found: String, missing: String },
    #[error("{file}: cannot read the file ({source}). Check that it exists and is readable.")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}: not valid JSON ({reason}). Fix the file; `python -m json.tool` shows where it breaks.")]
    Json { file: PathBuf, reason: String },
    #[error("{file}: {location}: the required key \"{key}\" is missing. {hint}")]
    MissingKey { file: PathBuf, location: String, key: String, hint: &'static str },
    #[error("{file}: {location}: \"{key}\" must be {expected}, found {found}. Fix the value in the file.")]
    WrongType { file: PathBuf, location: String, key: String, expected: &'static str, found: String },
    #[error(
        "{file}: {location}: \"{key}\" is {value}; every number must be finite. Re-export the poses \
         (Python's json module writes NaN or Infinity for undefined values)."
    )]
    NonFinite { file: PathBuf, location: String, key: String, value: String },
    #[error("{file}: {location}: \"{key}\" {problem}")]
    BadValue { file: PathBuf, location: String, key: String, problem: String },
    #[error(
        "{file}: {location}: file_path \"{file_path}\" {problem}. Image paths must be relative to the \
         data set folder and stay inside it, like \"./train/r_0\"."
    )]
    BadPath { file: PathBuf, location: String, file_path: String, problem: String },
    #[error(
        "{file}: {location}: image {image} not found (file_path \"{file_path}\"; a path without a .png, \
         .jpg or .jpeg extension gets .png appended). Restore the image or fix the file_path."
    )]
    MissingImage { file: PathBuf, location: String, image: PathBuf, file_path: String },
    #[error("{file}: {location}: {source}")]
    Image { file: PathBuf, location: String, source: ImageError },
    /// `expected` says what the size should have been and what to do.
    #[error("{file}: {location}: image {image} is {width}×{height} pixels, but {expected}.")]
    ImageSize { file: PathBuf, location: String, image: PathBuf, width: u32, height: u32, expected: String },
    #[error(
        "{file}: {location}: image {image} is {width}×{height} pixels, smaller than the downscale \
         factor {factor}. Choose a smaller factor."
    )]
    DownscaleTooLarge { file: PathBuf, location: String, image: PathBuf, width: u32, height: u32, factor: u32 },
    #[error("{file}: \"frames\" is empty; the {split} split needs at least one view. Add frames to the file.")]
    EmptySplit { file: PathBuf, split: Split },
    #[error(
        "{file}: only {num_frames} frame(s), and every {TEST_EVERY}th frame from frame 0 on is held out \
         for testing, so none is left for training. Add frames, or provide transforms_train.json and \
         transforms_test.json."
    )]
    NoTrainViews { file: PathBuf, num_frames: usize },
    #[error("cannot write {what} in the Blender format: {problem}")]
    NotWritable { what: String, problem: String },
    #[error("{path}: cannot write ({reason}). Check that the folder is writable and the disk has space.")]
    Write { path: PathBuf, reason: String },
}

/// Loads a Blender / NeRF-synthetic data set (`transforms_{train,val,test}.json`) or an
/// instant-ngp / nerfstudio one (the same files, or a single `transforms.json` whose every
/// [`TEST_EVERY`]th frame is a test view; validation then reuses the test views, as it does when
/// `transforms_val.json` is missing or empty).
///
/// Refused, with the file, the frame and the image named: missing transforms files, invalid JSON,
/// keys of the wrong type, missing required keys, NaN or infinite numbers, non-positive focal
/// lengths, singular rotations or a bottom row other than `[0, 0, 0, 1]`, image paths that are
/// absolute, contain `..` or lead out of `dir` (symbolic links included), missing, corrupt or
/// oversized images, images whose size differs from `w`/`h` or from the split's first image, an
/// empty train or test split, and a downscale factor of 0 or larger than the images. Unknown keys
/// are ignored; lens distortion is ignored with a line in [`Dataset::notices`].
pub fn load_dataset(dir: &Path, options: &LoadOptions) -> Result<Dataset, DatasetError> {
    if options.downscale == 0 {
        return Err(DatasetError::ZeroDownscale);
    }
    let root = match dir.canonicalize() {
        Ok(root) if root.is_dir() => root,
        Ok(_) => return Err(DatasetError::FolderNotFound { dir: dir.to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DatasetError::FolderNotFound { dir: dir.to_owned() });
        }
        Err(source) => return Err(DatasetError::Read { file: dir.to_owned(), source }),
    };
    let folder = Folder { dir, root: &root };
    let split_paths = Split::ALL.map(|split| dir.join(split.transforms_file_name()));
    let [train_path, val_path, test_path] = &split_paths;
    let single_path = dir.join(SINGLE_FILE_NAME);
    let mut notices = Vec::new();

    let (train, val, test, aabb_scale) = if train_path.is_file() || test_path.is_file() {
        for (present, missing) in [(train_path, test_path), (test_path, train_path)] {
            if present.is_file() && !missing.is_file() {
                return Err(DatasetError::MissingSplit {
                    dir: dir.to_owned(),
                    found: file_name(present),
                    missing: file_name(missing),
                });
            }
        }
        if single_path.is_file() {
            notices.push(format!(
                "{}: ignored, because the split files transforms_train.json and transforms_test.json are there.",
                single_path.display()
            ));
        }
        let train_file = read_transforms(train_path, &folder)?;
        let test_file = read_transforms(test_path, &folder)?;
        let val_file = if val_path.is_file() { Some(read_transforms(val_path, &folder)?) } else { None };
        for (file, split) in [(&train_file, Split::Train), (&test_file, Split::Test)] {
            if file.frames.is_empty() {
                return Err(DatasetError::EmptySplit { file: file.path.clone(), split });
            }
        }
        let mut splits = vec![(&train_file, &train_file.frames[..]), (&test_file, &test_file.frames[..])];
        if let Some(val_file) = val_file.as_ref().filter(|file| !file.frames.is_empty()) {
            splits.push((val_file, &val_file.frames[..]));
        }
        let mut loaded = load_splits(&splits, options.downscale)?.into_iter();
        let (train, test) = (loaded.next().unwrap_or_default(), loaded.next().unwrap_or_default());
        // Without val frames, validation reuses the test views (sharing their pixels).
        let val = loaded.next().unwrap_or_else(|| test.clone());
        for file in [Some(&train_file), val_file.as_ref(), Some(&test_file)].into_iter().flatten() {
            notices.extend(file.notices.iter().cloned());
        }
        (train, val, test, train_file.aabb_scale)
    } else if single_path.is_file() {
        let file = read_transforms(&single_path, &folder)?;
        if file.frames.is_empty() {
            return Err(DatasetError::EmptySplit { file: file.path.clone(), split: Split::Train });
        }
        let (test_frames, train_frames): (Vec<FrameSpec>, Vec<FrameSpec>) =
            file.frames.iter().cloned().partition(|frame| frame.index % TEST_EVERY == 0);
        if train_frames.is_empty() {
            return Err(DatasetError::NoTrainViews { file: file.path.clone(), num_frames: file.frames.len() });
        }
        let mut loaded = load_splits(&[(&file, &train_frames), (&file, &test_frames)], options.downscale)?.into_iter();
        let (train, test) = (loaded.next().unwrap_or_default(), loaded.next().unwrap_or_default());
        notices.extend(file.notices.iter().cloned());
        let val = test.clone();
        (train, val, test, file.aabb_scale)
    } else {
        let looked_for = Split::ALL.map(Split::transforms_file_name).join(", ") + " and " + SINGLE_FILE_NAME;
        return Err(DatasetError::NoTransforms { dir: dir.to_owned(), looked_for });
    };

    let has_alpha = [&train, &val, &test].iter().any(|views| views.iter().any(|loaded| loaded.has_alpha));
    let strip = |views: Vec<LoadedView>| views.into_iter().map(|loaded| loaded.view).collect::<Vec<_>>();
    let name = dir
        .file_name()
        .or_else(|| root.file_name())
        .map_or_else(|| "dataset".to_owned(), |name| name.to_string_lossy().into_owned());
    let mut dataset = Dataset {
        name,
        train: strip(train),
        val: strip(val),
        test: strip(test),
        scene_box: SceneBox::cube(BLENDER_HALF_EXTENT * aabb_scale.unwrap_or(1.0)),
        has_alpha,
        background: options.background,
        notices,
        warnings: Vec::new(),
    };
    dataset.check_coverage();
    Ok(dataset)
}

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
fn check_writable(view: &View, first: &Camera) -> Result<(), String> {
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

fn same_intrinsics(a: &Camera, b: &Camera) -> bool {
    (a.width, a.height, a.fx, a.fy, a.cx, a.cy) == (b.width, b.height, b.fx, b.fy, b.cx, b.cy)
}

fn intrinsics_json(camera: &Camera) -> Map<String, Value> {
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

// ---------------------------------------------------------------------------------------------
// Parsing the transforms files.

/// The data set folder as given (for messages) and canonicalized (for the containment check).
struct Folder<'a> {
    dir: &'a Path,
    root: &'a Path,
}

/// One parsed transforms file.
struct TransformsFile {
    path: PathBuf,
    aabb_scale: Option<f32>,
    frames: Vec<FrameSpec>,
    notices: Vec<String>,
}

/// One frame, checked but without its image.
#[derive(Clone, Debug)]
struct FrameSpec {
    /// Index in the file's `frames` array.
    index: usize,
    /// The image path as shown to the user (the folder as given, joined with the file_path).
    image: PathBuf,
    /// The canonical image path, checked to lie inside the data set folder.
    canonical: PathBuf,
    world_from_camera: Mat4,
    intrinsics: FrameIntrinsics,
}

#[derive(Clone, Copy, Debug)]
enum Focal {
    Pixels(f32),
    FieldOfViewRadians(f32),
}

impl Focal {
    fn pixels(self, side: f32) -> f32 {
        match self {
            Focal::Pixels(f) => f,
            Focal::FieldOfViewRadians(angle) => 0.5 * side / (0.5 * angle).tan(),
        }
    }
}

/// Intrinsics keys as written at one level (top level or a frame), each checked.
#[derive(Clone, Copy, Debug, Default)]
struct IntrinsicsKeys {
    fl_x: Option<f32>,
    fl_y: Option<f32>,
    camera_angle_x: Option<f32>,
    camera_angle_y: Option<f32>,
    cx: Option<f32>,
    cy: Option<f32>,
    w: Option<u32>,
    h: Option<u32>,
}

impl IntrinsicsKeys {
    /// A focal length given in pixels wins over a field of view at the same level.
    fn focal_x(&self) -> Option<Focal> {
        self.fl_x.map(Focal::Pixels).or(self.camera_angle_x.map(Focal::FieldOfViewRadians))
    }

    fn focal_y(&self) -> Option<Focal> {
        self.fl_y.map(Focal::Pixels).or(self.camera_angle_y.map(Focal::FieldOfViewRadians))
    }
}

/// A frame's intrinsics: its own keys over the file's top-level ones.
#[derive(Clone, Copy, Debug)]
struct FrameIntrinsics {
    focal_x: Focal,
    /// `None`: square pixels (`fy = fx`).
    focal_y: Option<Focal>,
    cx: Option<f32>,
    cy: Option<f32>,
    w: Option<u32>,
    h: Option<u32>,
}

impl FrameIntrinsics {
    fn camera(&self, width: u32, height: u32, world_from_camera: Mat4) -> Camera {
        #[allow(clippy::cast_precision_loss)] // sides are at most MAX_IMAGE_SIDE, exact in f32
        let (w, h) = (width as f32, height as f32);
        let fx = self.focal_x.pixels(w);
        let fy = self.focal_y.map_or(fx, |focal| focal.pixels(h));
        Camera {
            width,
            height,
            fx,
            fy,
            cx: self.cx.unwrap_or(0.5 * w),
            cy: self.cy.unwrap_or(0.5 * h),
            world_from_camera,
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into_owned())
}

fn frame_location(index: usize) -> String {
    format!("frame {index}")
}

const TOP_LEVEL: &str = "top level";

/// Where in which file a value was found; builds the errors about it.
struct At<'a> {
    file: &'a Path,
    location: &'a str,
}

impl At<'_> {
    fn wrong_type(&self, key: &str, expected: &'static str, value: &Value) -> DatasetError {
        DatasetError::WrongType {
            file: self.file.to_owned(),
            location: self.location.to_owned(),
            key: key.to_owned(),
            expected,
            found: describe(value),
        }
    }

    fn missing(&self, key: &str, hint: &'static str) -> DatasetError {
        DatasetError::MissingKey {
            file: self.file.to_owned(),
            location: self.location.to_owned(),
            key: key.to_owned(),
            hint,
        }
    }

    fn bad_value(&self, key: &str, problem: String) -> DatasetError {
        DatasetError::BadValue {
            file: self.file.to_owned(),
            location: self.location.to_owned(),
            key: key.to_owned(),
            problem,
        }
    }

    /// A finite number that fits in f32.
    fn number(&self, key: &str, value: &Value) -> Result<f32, DatasetError> {
        let non_finite = |shown: String| DatasetError::NonFinite {
            file: self.file.to_owned(),
            location: self.location.to_owned(),
            key: key.to_owned(),
            value: shown,
        };
        match value {
            Value::Number(number) => {
                let Some(wide) = number.as_f64() else { return Err(self.wrong_type(key, "a number", value)) };
                // Rounding to f32 is the point; a value beyond f32's range becomes infinite and is refused.
                #[allow(clippy::cast_possible_truncation)]
                let narrow = wide as f32;
                if narrow.is_finite() { Ok(narrow) } else { Err(non_finite(format!("{wide:e}, beyond f32's range"))) }
            }
            Value::String(text) => match text.strip_prefix(NON_FINITE_TAG) {
                Some(literal) => Err(non_finite(literal.to_owned())),
                None => Err(self.wrong_type(key, "a number", value)),
            },
            _ => Err(self.wrong_type(key, "a number", value)),
        }
    }

    fn positive(&self, key: &str, value: &Value, unit: &str) -> Result<f32, DatasetError> {
        let x = self.number(key, value)?;
        if x > 0.0 { Ok(x) } else { Err(self.bad_value(key, format!("is {x}; it must be positive ({unit})."))) }
    }

    fn field_of_view(&self, key: &str, value: &Value) -> Result<f32, DatasetError> {
        let x = self.number(key, value)?;
        if x > 0.0 && x < std::f32::consts::PI {
            Ok(x)
        } else {
            Err(self.bad_value(
                key,
                format!(
                    "is {x}; a field of view in radians must lie strictly between 0 and π, which \
                     gives a positive focal length. Check that it is not in degrees."
                ),
            ))
        }
    }

    fn side(&self, key: &str, value: &Value) -> Result<u32, DatasetError> {
        let x = self.number(key, value)?;
        if x >= 1.0 && x.fract() == 0.0 && f64::from(x) <= f64::from(u32::MAX) {
            // A whole number in u32's range, so the cast is exact.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let side = x as u32;
            Ok(side)
        } else {
            Err(self.bad_value(key, format!("is {x}; an image side must be a positive whole number of pixels.")))
        }
    }

    fn intrinsics(&self, object: &Map<String, Value>) -> Result<IntrinsicsKeys, DatasetError> {
        let mut keys = IntrinsicsKeys::default();
        for (key, value) in object {
            match key.as_str() {
                "fl_x" => keys.fl_x = Some(self.positive(key, value, "a focal length in pixels")?),
                "fl_y" => keys.fl_y = Some(self.positive(key, value, "a focal length in pixels")?),
                "camera_angle_x" => keys.camera_angle_x = Some(self.field_of_view(key, value)?),
                "camera_angle_y" => keys.camera_angle_y = Some(self.field_of_view(key, value)?),
                "cx" => keys.cx = Some(self.number(key, value)?),
                "cy" => keys.cy = Some(self.number(key, value)?),
                "w" => keys.w = Some(self.side(key, value)?),
                "h" => keys.h = Some(self.side(key, value)?),
                _ => {}
            }
        }
        Ok(keys)
    }

    /// The distortion keys with non-zero values.
    fn distortion(&self, object: &Map<String, Value>) -> Result<Vec<&'static str>, DatasetError> {
        let mut found = Vec::new();
        for key in DISTORTION_KEYS {
            if let Some(value) = object.get(key)
                && self.number(key, value)? != 0.0
            {
                found.push(key);
            }
        }
        Ok(found)
    }

    fn matrix(&self, value: &Value) -> Result<Mat4, DatasetError> {
        const KEY: &str = "transform_matrix";
        const EXPECTED: &str = "4 rows of 4 numbers (row-major camera-to-world)";
        let rows = match value.as_array() {
            Some(rows) if rows.len() == 4 => rows,
            _ => return Err(self.wrong_type(KEY, EXPECTED, value)),
        };
        let mut m = [[0.0_f32; 4]; 4];
        for (r, (row_value, row)) in rows.iter().zip(&mut m).enumerate() {
            let entries = match row_value.as_array() {
                Some(entries) if entries.len() == 4 => entries,
                _ => return Err(self.wrong_type(&format!("{KEY}[{r}]"), "a row of 4 numbers", row_value)),
            };
            for (c, (entry, slot)) in entries.iter().zip(row.iter_mut()).enumerate() {
                *slot = self.number(&format!("{KEY}[{r}][{c}]"), entry)?;
            }
        }
        if m[3].iter().zip([0.0, 0.0, 0.0, 1.0]).any(|(a, b)| (a - b).abs() > 1e-6) {
            return Err(self.bad_value(
                KEY,
                format!(
                    "has the bottom row {:?}; a camera-to-world matrix ends with [0, 0, 0, 1]. Write the \
                     matrix row by row (row-major), as the Blender format does.",
                    m[3]
                ),
            ));
        }
        // The file is row-major; glam's arrays are columns.
        let world_from_camera = Mat4::from_cols_array_2d(&m).transpose();
        let det = Mat3::from_mat4(world_from_camera).determinant();
        if det.abs() < MIN_ROTATION_DET {
            return Err(self.bad_value(
                KEY,
                format!(
                    "has a singular rotation part (determinant {det:e}); each camera needs an \
                     invertible 3×3 rotation. Check the pose export."
                ),
            ));
        }
        Ok(world_from_camera)
    }

    fn string<'v>(&self, key: &str, value: &'v Value) -> Result<&'v str, DatasetError> {
        match value {
            Value::String(text) if !text.starts_with(NON_FINITE_TAG) => Ok(text),
            _ => Err(self.wrong_type(key, "a string", value)),
        }
    }
}

/// A short description of a JSON value for messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(text) => match text.strip_prefix(NON_FINITE_TAG) {
            Some(literal) => literal.to_owned(),
            None if text.chars().count() > 40 => {
                format!("the string \"{}…\"", text.chars().take(40).collect::<String>())
            }
            None => format!("the string \"{text}\""),
        },
        Value::Array(items) => format!("an array of {} item(s)", items.len()),
        Value::Object(_) => "an object".to_owned(),
    }
}

fn parse_json(path: &Path, bytes: &[u8]) -> Result<Value, DatasetError> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(first_error) => {
            // NaN / Infinity literals: quote them and parse again, so that the number check can
            // say which frame and key hold them. Anything else stays a JSON error.
            if let Some(quoted) = quote_non_finite_literals(bytes)
                && let Ok(value) = serde_json::from_slice(&quoted)
            {
                return Ok(value);
            }
            Err(DatasetError::Json { file: path.to_owned(), reason: first_error.to_string() })
        }
    }
}

/// Replaces the bare tokens `NaN`, `Infinity` and `-Infinity` outside strings by tagged strings;
/// `None` when there are none.
fn quote_non_finite_literals(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else {
            let after_word = i > 0 && bytes.get(i - 1).is_some_and(u8::is_ascii_alphanumeric);
            let rest = bytes.get(i..).unwrap_or_default();
            let literal = ["-Infinity", "Infinity", "NaN"].into_iter().find(|literal| {
                rest.starts_with(literal.as_bytes()) && !rest.get(literal.len()).is_some_and(u8::is_ascii_alphanumeric)
            });
            if let Some(literal) = literal.filter(|_| !after_word) {
                // "\u0001" is NON_FINITE_TAG's first character, escaped as JSON wants it.
                out.extend_from_slice(format!("\"\\u0001non-finite:{literal}\"").as_bytes());
                i += literal.len();
                changed = true;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

fn read_transforms(path: &Path, folder: &Folder<'_>) -> Result<TransformsFile, DatasetError> {
    let bytes = crate::files::read_capped(path, crate::files::JSON)
        .map_err(|source| DatasetError::Read { file: path.to_owned(), source })?;
    let value = parse_json(path, &bytes)?;
    let top_at = At { file: path, location: TOP_LEVEL };
    let Some(top) = value.as_object() else {
        return Err(top_at.wrong_type("(the whole file)", "a JSON object with \"frames\"", &value));
    };
    let frames_hint = "Add \"frames\": [{\"file_path\": …, \"transform_matrix\": …}, …].";
    let frames_value = top.get("frames").ok_or_else(|| top_at.missing("frames", frames_hint))?;
    let Some(frame_values) = frames_value.as_array() else {
        return Err(top_at.wrong_type("frames", "an array of frames", frames_value));
    };
    let aabb_scale = match top.get("aabb_scale") {
        Some(value) => {
            let scale = top_at.positive("aabb_scale", value, "the scene box's scale")?;
            if scale > MAX_AABB_SCALE {
                return Err(top_at.bad_value(
                    "aabb_scale",
                    format!(
                        "{scale} is larger than {MAX_AABB_SCALE} (instant-ngp's largest); use a power of two up to it"
                    ),
                ));
            }
            Some(scale)
        }
        None => None,
    };
    let top_keys = top_at.intrinsics(top)?;
    let mut distortion: Vec<&'static str> = top_at.distortion(top)?;
    let mut notices = Vec::new();
    let ignored: Vec<&str> =
        ["scale", "offset", "applied_transform"].into_iter().filter(|k| top.contains_key(*k)).collect();
    if !ignored.is_empty() {
        notices.push(format!(
            "{}: {} ignored: cameras are used as given, in a scene box of ±{} (Blender's ±1.5 × aabb_scale); \
             if the scene is clipped, rescale the poses or set aabb_scale.",
            path.display(),
            ignored.join(", "),
            BLENDER_HALF_EXTENT * aabb_scale.unwrap_or(1.0)
        ));
    }
    if let Some(model) = top.get("camera_model") {
        let model = top_at.string("camera_model", model)?;
        if !PINHOLE_MODELS.contains(&model) {
            notices.push(format!(
                "{}: camera_model \"{model}\" is not supported; the images are treated as pinhole images.",
                path.display()
            ));
        }
    }

    let mut frames = Vec::with_capacity(frame_values.len());
    for (index, frame_value) in frame_values.iter().enumerate() {
        let location = frame_location(index);
        let at = At { file: path, location: &location };
        let Some(frame) = frame_value.as_object() else {
            return Err(at.wrong_type(
                &format!("frames[{index}]"),
                "an object with \"file_path\" and \"transform_matrix\"",
                frame_value,
            ));
        };
        let file_path_value = frame.get("file_path").ok_or_else(|| {
            at.missing("file_path", "Add the image path relative to the data set folder, like \"./train/r_0\".")
        })?;
        let file_path = at.string("file_path", file_path_value)?;
        let matrix_value = frame.get("transform_matrix").ok_or_else(|| {
            at.missing("transform_matrix", "Add the 4×4 camera-to-world matrix (row-major, OpenGL convention).")
        })?;
        let world_from_camera = at.matrix(matrix_value)?;
        let keys = at.intrinsics(frame)?;
        for key in at.distortion(frame)? {
            if !distortion.contains(&key) {
                distortion.push(key);
            }
        }
        let focal_x = keys.focal_x().or(top_keys.focal_x()).ok_or_else(|| {
            at.missing(
                "camera_angle_x",
                "Add \"camera_angle_x\" (horizontal field of view, radians) or \"fl_x\" (focal length, \
                 pixels) at the top level of the file or in this frame.",
            )
        })?;
        let intrinsics = FrameIntrinsics {
            focal_x,
            focal_y: keys.focal_y().or(top_keys.focal_y()),
            cx: keys.cx.or(top_keys.cx),
            cy: keys.cy.or(top_keys.cy),
            w: keys.w.or(top_keys.w),
            h: keys.h.or(top_keys.h),
        };
        let (image, canonical) = resolve_image(folder, &at, index, file_path)?;
        frames.push(FrameSpec { index, image, canonical, world_from_camera, intrinsics });
    }
    if !distortion.is_empty() {
        distortion.sort_by_key(|key| DISTORTION_KEYS.iter().position(|k| k == key));
        notices.push(format!(
            "{}: lens distortion ({}) is not supported and is ignored; the images are treated as \
             undistorted pinhole images. Undistort them first (e.g. COLMAP's image_undistorter) for exact rays.",
            path.display(),
            distortion.join(", ")
        ));
    }
    Ok(TransformsFile { path: path.to_owned(), aabb_scale, frames, notices })
}

/// The image of a frame: the path shown to the user and its canonical form, which must lie
/// inside the data set folder (symbolic links included).
fn resolve_image(
    folder: &Folder<'_>,
    at: &At<'_>,
    index: usize,
    file_path: &str,
) -> Result<(PathBuf, PathBuf), DatasetError> {
    let bad = |problem: &str| DatasetError::BadPath {
        file: at.file.to_owned(),
        location: frame_location(index),
        file_path: file_path.to_owned(),
        problem: problem.to_owned(),
    };
    let windows_drive = matches!(file_path.as_bytes(), [drive, b':', ..] if drive.is_ascii_alphabetic());
    if file_path.starts_with(['/', '\\']) || windows_drive || Path::new(file_path).is_absolute() {
        return Err(bad("is absolute"));
    }
    // Backslashes are separators too, so that Windows-written files work and cannot sneak a ".." past.
    let parts: Vec<&str> = file_path.split(['/', '\\']).filter(|part| !part.is_empty() && *part != ".").collect();
    if parts.contains(&"..") {
        return Err(bad("contains \"..\""));
    }
    if parts.is_empty() {
        return Err(bad("names no file"));
    }
    let mut relative: PathBuf = parts.iter().collect();
    let has_image_extension = relative
        .extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ["png", "jpg", "jpeg"].contains(&ext.to_ascii_lowercase().as_str()));
    if !has_image_extension {
        let mut with_png = relative.into_os_string();
        with_png.push(".png");
        relative = PathBuf::from(with_png);
    }
    let image = folder.dir.join(&relative);
    let canonical = match image.canonicalize() {
        Ok(canonical) => canonical,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DatasetError::MissingImage {
                file: at.file.to_owned(),
                location: frame_location(index),
                image,
                file_path: file_path.to_owned(),
            });
        }
        Err(source) => {
            return Err(DatasetError::Image {
                file: at.file.to_owned(),
                location: frame_location(index),
                source: ImageError::Read { path: image, source },
            });
        }
    };
    if !canonical.starts_with(folder.root) {
        return Err(bad(&format!(
            "resolves to {}, outside the data set folder {} (through a symbolic link?)",
            canonical.display(),
            folder.root.display()
        )));
    }
    Ok((image, canonical))
}

// ---------------------------------------------------------------------------------------------
// Loading images.

/// A view as loaded: the view, and whether its image has an alpha value below 1. Clones share
/// the pixels.
#[derive(Clone)]
struct LoadedView {
    view: View,
    has_alpha: bool,
}

/// One frame of one split, for messages: the transforms file and the frame.
#[derive(Clone, Copy)]
struct FrameAt<'a> {
    file: &'a TransformsFile,
    frame: &'a FrameSpec,
}

impl FrameAt<'_> {
    fn image_error(self, source: ImageError) -> DatasetError {
        DatasetError::Image { file: self.file.path.clone(), location: frame_location(self.frame.index), source }
    }
}

/// An image file's size and the bytes its decoder will hold, from its header.
#[derive(Clone, Copy)]
struct Header {
    width: u32,
    height: u32,
    stored_bytes: u64,
}

/// An image decoded once and shared by every frame that names it.
struct Decoded {
    rgba: Arc<[[f32; 4]]>,
    has_alpha: bool,
}

/// Loads the images of several splits (each a transforms file and frames of it). Every check that
/// a header can answer comes first, for all splits: sizes against `w`/`h`, against the downscale
/// factor and against the split's first image, and the memory of the decoded views, counted once
/// per distinct file (the val split often names the test images, and one image may serve many
/// frames) against [`MAX_DATASET_BYTES`]. Each distinct file is then decoded once, at most
/// [`image_io::MAX_DECODE_BYTES`] of stored pixels at a time across the parallel decoders, and
/// downscaled band by band, so the full-size image never exists in f32.
fn load_splits(splits: &[(&TransformsFile, &[FrameSpec])], factor: u32) -> Result<Vec<Vec<LoadedView>>, DatasetError> {
    let mut headers: HashMap<&Path, Header> = HashMap::new();
    // Distinct files in order of first use, each with the first frame naming it.
    let mut distinct: Vec<(FrameAt<'_>, Header)> = Vec::new();
    for &(file, frames) in splits {
        let mut first: Option<(usize, Header)> = None;
        for frame in frames {
            let at = FrameAt { file, frame };
            let header = match headers.get(frame.canonical.as_path()) {
                Some(header) => *header,
                None => {
                    let header = read_header(&frame.canonical, &frame.image).map_err(|e| at.image_error(e))?;
                    headers.insert(&frame.canonical, header);
                    distinct.push((at, header));
                    header
                }
            };
            check_frame_size(at, header, first, factor)?;
            first.get_or_insert((frame.index, header));
        }
    }
    let f = u64::from(factor.max(1));
    let view_bytes = |h: &Header| (u64::from(h.width) / f) * (u64::from(h.height) / f) * 16;
    let total: u64 = distinct.iter().map(|(_, h)| view_bytes(h)).fold(0, u64::saturating_add);
    if total > MAX_DATASET_BYTES {
        #[allow(clippy::cast_precision_loss)] // a size in GiB for a message
        let gib = total as f64 / f64::from(1 << 30);
        return Err(DatasetError::BadValue {
            file: splits[0].0.path.clone(),
            location: TOP_LEVEL.to_owned(),
            key: "frames".to_owned(),
            problem: format!(
                "the data set's {} distinct images (all splits together) would take {gib:.1} GiB of memory once \
                 loaded; the most is {} GiB. Load them downscaled (--downscale, or Downscale in the app).",
                distinct.len(),
                MAX_DATASET_BYTES >> 30
            ),
        });
    }
    // Batches whose stored pixels fit the decoder's budget together, decoded in parallel.
    let mut decoded: HashMap<&Path, Decoded> = HashMap::new();
    let mut rest = &distinct[..];
    while !rest.is_empty() {
        let mut bytes = 0_u64;
        let take = rest
            .iter()
            .take_while(|(_, h)| {
                bytes = bytes.saturating_add(h.stored_bytes);
                bytes <= image_io::MAX_DECODE_BYTES
            })
            .count()
            .max(1);
        let (batch, later) = rest.split_at(take);
        rest = later;
        let results: Vec<Result<Decoded, DatasetError>> = batch
            .par_iter()
            .map(|&(at, header)| decode_downscaled(at.frame, header, factor).map_err(|e| at.image_error(e)))
            .collect();
        for ((at, _), result) in batch.iter().zip(results) {
            decoded.insert(&at.frame.canonical, result?);
        }
    }
    let mut out = Vec::with_capacity(splits.len());
    for &(_, frames) in splits {
        let mut views = Vec::with_capacity(frames.len());
        for frame in frames {
            let (Some(header), Some(image)) =
                (headers.get(frame.canonical.as_path()), decoded.get(frame.canonical.as_path()))
            else {
                unreachable!("every frame's image was read above");
            };
            let camera = frame.intrinsics.camera(header.width, header.height, frame.world_from_camera);
            let camera = if factor > 1 { camera.downscaled(factor) } else { camera };
            views.push(LoadedView {
                view: View { camera, rgba: Arc::clone(&image.rgba), source: frame.image.clone() },
                has_alpha: image.has_alpha,
            });
        }
        out.push(views);
    }
    Ok(out)
}

/// The size checks of one frame: against its `w`/`h`, the downscale factor, and the first image
/// of its split (`first`: that frame's index and header).
fn check_frame_size(
    at: FrameAt<'_>,
    header: Header,
    first: Option<(usize, Header)>,
    factor: u32,
) -> Result<(), DatasetError> {
    let (file, frame) = (at.file.path.clone(), at.frame);
    let (width, height) = (header.width, header.height);
    let (expected_w, expected_h) = (frame.intrinsics.w.unwrap_or(width), frame.intrinsics.h.unwrap_or(height));
    let location = frame_location(frame.index);
    let image = frame.image.clone();
    if (expected_w, expected_h) != (width, height) {
        return Err(DatasetError::ImageSize {
            file,
            location,
            image,
            width,
            height,
            expected: format!("\"w\" and \"h\" say {expected_w}×{expected_h}; fix them or the image"),
        });
    }
    if width < factor || height < factor {
        return Err(DatasetError::DownscaleTooLarge { file, location, image, width, height, factor });
    }
    match first {
        Some((first_index, first)) if (first.width, first.height) != (width, height) => Err(DatasetError::ImageSize {
            file,
            location,
            image,
            width,
            height,
            expected: format!(
                "frame {first_index} is {}×{}; all images of a split must have the same size, so resize them",
                first.width, first.height
            ),
        }),
        _ => Ok(()),
    }
}

/// Reads an image's header alone, refusing sizes beyond [`MAX_IMAGE_SIDE`] before anything is
/// allocated for pixels.
fn read_header(path: &Path, shown: &Path) -> Result<Header, ImageError> {
    let read_error = |source| ImageError::Read { path: shown.to_owned(), source };
    let decode_error = |e: image::ImageError| ImageError::Decode { path: shown.to_owned(), reason: e.to_string() };
    let mut reader = BufReader::new(File::open(path).map_err(read_error)?);
    let mut header = ImageReader::new(&mut reader).with_guessed_format().map_err(read_error)?;
    if !matches!(header.format(), Some(image::ImageFormat::Png | image::ImageFormat::Jpeg)) {
        return Err(ImageError::UnknownFormat { path: shown.to_owned() });
    }
    header.limits(header_limits());
    let decoder = header.into_decoder().map_err(decode_error)?;
    let (width, height) = image::ImageDecoder::dimensions(&decoder);
    if width == 0 || height == 0 {
        return Err(ImageError::Empty { path: shown.to_owned(), width, height });
    }
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(ImageError::TooLarge { path: shown.to_owned(), width, height, max: MAX_IMAGE_SIDE });
    }
    Ok(Header { width, height, stored_bytes: image::ImageDecoder::total_bytes(&decoder) })
}

/// Decodes a frame's image to RGBA in [0, 1] (gray expanded, missing alpha = 1) at `1/factor` of
/// its size. Only the stored pixels, one band of rows in f32 and the result are held at once.
fn decode_downscaled(frame: &FrameSpec, header: Header, factor: u32) -> Result<Decoded, ImageError> {
    let shown = &frame.image;
    let read_error = |source| ImageError::Read { path: shown.clone(), source };
    let reader = BufReader::new(File::open(&frame.canonical).map_err(read_error)?);
    let (dynamic, color) = image_io::decode_checked(reader, shown, |_| 0)?;
    let (width, height) = (header.width, header.height);
    if (dynamic.width(), dynamic.height()) != (width, height) {
        return Err(ImageError::Decode {
            path: shown.clone(),
            reason: format!(
                "the header says {width}×{height} but the data is {}×{}",
                dynamic.width(),
                dynamic.height()
            ),
        });
    }
    let factor = factor.max(1);
    let used_rows = height / factor * factor;
    // Whole blocks of rows, about 16 rows or one block, whichever is more.
    let band_rows = factor * (16 / factor).max(1);
    let mut rgba = Vec::with_capacity((width / factor) as usize * (height / factor) as usize);
    let mut transparent = false;
    for top in (0..used_rows).step_by(band_rows as usize) {
        let rows = band_rows.min(used_rows - top);
        let band = dynamic.crop_imm(0, top, width, rows).to_rgba32f().into_raw();
        let band: Vec<[f32; 4]> = band.chunks_exact(4).map(|p| [p[0], p[1], p[2], p[3]]).collect();
        transparent |= color.has_alpha() && band.iter().any(|pixel| pixel[3] < 1.0);
        if factor > 1 {
            rgba.extend(box_downscale(&band, width, factor));
        } else {
            rgba.extend(band);
        }
    }
    Ok(Decoded { rgba: rgba.into(), has_alpha: transparent })
}

/// Box (area) filter: each output pixel averages a `factor × factor` block; the rows and columns
/// left over at the right and bottom are dropped, as [`Camera::downscaled`] does. Colours are
/// averaged weighted by alpha (premultiplied), so transparent pixels do not bleed their colour;
/// a fully transparent block keeps the plain average.
fn box_downscale(rgba: &[[f32; 4]], width: u32, factor: u32) -> Vec<[f32; 4]> {
    let (width, factor) = (width as usize, factor.max(1) as usize);
    let height = rgba.len() / width.max(1);
    let (new_width, new_height) = (width / factor, height / factor);
    #[allow(clippy::cast_precision_loss)] // factor ≤ MAX_IMAGE_SIDE, so factor² is exact in f32
    let inv_area = 1.0 / (factor * factor) as f32;
    let mut out = Vec::with_capacity(new_width * new_height);
    for y in 0..new_height {
        for x in 0..new_width {
            let (mut premultiplied, mut straight, mut alpha) = (Vec3::ZERO, Vec3::ZERO, 0.0);
            for row in rgba.chunks_exact(width).skip(y * factor).take(factor) {
                for &[r, g, b, a] in row.iter().skip(x * factor).take(factor) {
                    let colour = Vec3::new(r, g, b);
                    premultiplied += a * colour;
                    straight += colour;
                    alpha += a;
                }
            }
            let colour = if alpha > 0.0 { premultiplied / alpha } else { straight * inv_area };
            out.push([colour.x, colour.y, colour.z, alpha * inv_area]);
        }
    }
    out
}
