//! Parsing the transforms files: the JSON, its frames, intrinsics and image paths, strictly.

use std::path::{Path, PathBuf};

use glam::{Mat3, Mat4};
use serde_json::{Map, Value};

use super::*;
use crate::image_io::ImageError;
use crate::nerf::camera::Camera;

// ---------------------------------------------------------------------------------------------
// Parsing the transforms files.

/// The data set folder as given (for messages) and canonicalized (for the containment check).
pub(super) struct Folder<'a> {
    pub(super) dir: &'a Path,
    pub(super) root: &'a Path,
}

/// One parsed transforms file.
pub(super) struct TransformsFile {
    pub(super) path: PathBuf,
    pub(super) aabb_scale: Option<f32>,
    pub(super) frames: Vec<FrameSpec>,
    pub(super) notices: Vec<String>,
}

/// One frame, checked but without its image.
#[derive(Clone, Debug)]
pub(super) struct FrameSpec {
    /// Index in the file's `frames` array.
    pub(super) index: usize,
    /// The image path as shown to the user (the folder as given, joined with the file_path).
    pub(super) image: PathBuf,
    /// The canonical image path, checked to lie inside the data set folder.
    pub(super) canonical: PathBuf,
    pub(super) world_from_camera: Mat4,
    pub(super) intrinsics: FrameIntrinsics,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Focal {
    Pixels(f32),
    FieldOfViewRadians(f32),
}

impl Focal {
    pub(super) fn pixels(self, side: f32) -> f32 {
        match self {
            Focal::Pixels(f) => f,
            Focal::FieldOfViewRadians(angle) => 0.5 * side / (0.5 * angle).tan(),
        }
    }
}

/// Intrinsics keys as written at one level (top level or a frame), each checked.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct IntrinsicsKeys {
    pub(super) fl_x: Option<f32>,
    pub(super) fl_y: Option<f32>,
    pub(super) camera_angle_x: Option<f32>,
    pub(super) camera_angle_y: Option<f32>,
    pub(super) cx: Option<f32>,
    pub(super) cy: Option<f32>,
    pub(super) w: Option<u32>,
    pub(super) h: Option<u32>,
}

impl IntrinsicsKeys {
    /// A focal length given in pixels wins over a field of view at the same level.
    pub(super) fn focal_x(&self) -> Option<Focal> {
        self.fl_x.map(Focal::Pixels).or(self.camera_angle_x.map(Focal::FieldOfViewRadians))
    }

    pub(super) fn focal_y(&self) -> Option<Focal> {
        self.fl_y.map(Focal::Pixels).or(self.camera_angle_y.map(Focal::FieldOfViewRadians))
    }
}

/// A frame's intrinsics: its own keys over the file's top-level ones.
#[derive(Clone, Copy, Debug)]
pub(super) struct FrameIntrinsics {
    pub(super) focal_x: Focal,
    /// `None`: square pixels (`fy = fx`).
    pub(super) focal_y: Option<Focal>,
    pub(super) cx: Option<f32>,
    pub(super) cy: Option<f32>,
    pub(super) w: Option<u32>,
    pub(super) h: Option<u32>,
}

impl FrameIntrinsics {
    pub(super) fn camera(&self, width: u32, height: u32, world_from_camera: Mat4) -> Camera {
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

pub(super) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into_owned())
}

pub(super) fn frame_location(index: usize) -> String {
    format!("frame {index}")
}

pub(super) const TOP_LEVEL: &str = "top level";

/// Where in which file a value was found; builds the errors about it.
pub(super) struct At<'a> {
    pub(super) file: &'a Path,
    pub(super) location: &'a str,
}

impl At<'_> {
    pub(super) fn wrong_type(&self, key: &str, expected: &'static str, value: &Value) -> DatasetError {
        DatasetError::WrongType {
            file: self.file.to_owned(),
            location: self.location.to_owned(),
            key: key.to_owned(),
            expected,
            found: describe(value),
        }
    }

    pub(super) fn missing(&self, key: &str, hint: &'static str) -> DatasetError {
        DatasetError::MissingKey {
            file: self.file.to_owned(),
            location: self.location.to_owned(),
            key: key.to_owned(),
            hint,
        }
    }

    pub(super) fn bad_value(&self, key: &str, problem: String) -> DatasetError {
        DatasetError::BadValue {
            file: self.file.to_owned(),
            location: self.location.to_owned(),
            key: key.to_owned(),
            problem,
        }
    }

    /// A finite number that fits in f32.
    pub(super) fn number(&self, key: &str, value: &Value) -> Result<f32, DatasetError> {
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

    pub(super) fn positive(&self, key: &str, value: &Value, unit: &str) -> Result<f32, DatasetError> {
        let x = self.number(key, value)?;
        if x > 0.0 { Ok(x) } else { Err(self.bad_value(key, format!("is {x}; it must be positive ({unit})."))) }
    }

    pub(super) fn field_of_view(&self, key: &str, value: &Value) -> Result<f32, DatasetError> {
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

    pub(super) fn side(&self, key: &str, value: &Value) -> Result<u32, DatasetError> {
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

    pub(super) fn intrinsics(&self, object: &Map<String, Value>) -> Result<IntrinsicsKeys, DatasetError> {
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
    pub(super) fn distortion(&self, object: &Map<String, Value>) -> Result<Vec<&'static str>, DatasetError> {
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

    pub(super) fn matrix(&self, value: &Value) -> Result<Mat4, DatasetError> {
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

    pub(super) fn string<'v>(&self, key: &str, value: &'v Value) -> Result<&'v str, DatasetError> {
        match value {
            Value::String(text) if !text.starts_with(NON_FINITE_TAG) => Ok(text),
            _ => Err(self.wrong_type(key, "a string", value)),
        }
    }
}

/// A short description of a JSON value for messages.
pub(super) fn describe(value: &Value) -> String {
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

pub(super) fn parse_json(path: &Path, bytes: &[u8]) -> Result<Value, DatasetError> {
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
pub(super) fn quote_non_finite_literals(bytes: &[u8]) -> Option<Vec<u8>> {
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

pub(super) fn read_transforms(path: &Path, folder: &Folder<'_>) -> Result<TransformsFile, DatasetError> {
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
pub(super) fn resolve_image(
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
