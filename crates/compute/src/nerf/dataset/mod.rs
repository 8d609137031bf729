//! Multi-view data sets: the Blender / NeRF-synthetic format and its instant-ngp / nerfstudio
//! variant, loaded strictly, and a writer for the Blender format.
//!
//! Every refusal names the JSON file, the place in it (top level or frame index) and, where an
//! image is involved, the image path, and says what to do.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use glam::Vec3;

use super::camera::{Camera, SceneBox};

mod images;
mod transforms;
mod write;

use crate::image_io::ImageError;
use images::*;
use transforms::*;
pub use write::write_dataset;

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

    /// The whole image composited over `background`, as RGB.
    pub fn composited_image(&self, background: Vec3) -> crate::image_io::ImageData {
        let pixels = (0..self.rgba.len())
            .flat_map(|k| {
                let c = self.composited(k, background);
                [c.x, c.y, c.z]
            })
            .collect();
        crate::image_io::ImageData { width: self.camera.width, height: self.camera.height, channels: 3, pixels }
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
