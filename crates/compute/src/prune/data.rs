//! Labelled image sets for pruning at initialization: the built-in digits, Fashion-MNIST (or any
//! MNIST-style IDX files) and folders of images with one sub-folder per class.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::PruneError;
use crate::image_io;
use crate::inr::classify;

/// Where Debian's `dataset-fashion-mnist` package puts the files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// The Fashion-MNIST class names, in label order.
pub const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// Most images a folder data set may hold.
const MAX_FOLDER_IMAGES: usize = 200_000;

/// Images `channels × height × width` in [0, 1], with labels.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// `len × channels × height × width`.
    pub pixels: Vec<f32>,
    pub labels: Vec<u16>,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        let size = self.image_size();
        let mut pixels = Vec::with_capacity(indices.len() * size);
        for &i in indices {
            pixels.extend_from_slice(&self.pixels[i * size..(i + 1) * size]);
        }
        Self { pixels, labels: indices.iter().map(|&i| self.labels[i]).collect(), ..*self }
    }

    /// The first `n` images (all when `n` is 0 or more than there are).
    pub fn truncated(&self, n: usize) -> Self {
        if n == 0 || n >= self.len() {
            return self.clone();
        }
        self.subset(&(0..n).collect::<Vec<_>>())
    }
}

/// A data set: training and test images and the class names.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledData {
    pub name: String,
    pub train: ImageSet,
    pub test: ImageSet,
    pub classes: Vec<String>,
}

impl LabelledData {
    /// One line for the user; it ends with a warning when some test class never occurs in
    /// training (those test images cannot be classified right).
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{}: {} training and {} test images, {}×{}×{}, {} classes",
            self.name,
            self.train.len(),
            self.test.len(),
            self.train.channels,
            self.train.height,
            self.train.width,
            self.classes.len()
        );
        let unseen = self.classes_missing_from_training();
        if !unseen.is_empty() {
            let names: Vec<&str> = unseen.iter().map(|&c| self.class_name(c)).collect();
            line += &format!(
                "; warning: class{} {} occur{} in the test set but never in training, so no model can get them right",
                if names.len() == 1 { "" } else { "es" },
                names.join(", "),
                if names.len() == 1 { "s" } else { "" }
            );
        }
        line
    }

    fn class_name(&self, class: u16) -> &str {
        self.classes.get(usize::from(class)).map_or("?", String::as_str)
    }

    /// Labels of the test set that no training image has.
    pub fn classes_missing_from_training(&self) -> Vec<u16> {
        let seen: std::collections::BTreeSet<u16> = self.train.labels.iter().copied().collect();
        let tested: std::collections::BTreeSet<u16> = self.test.labels.iter().copied().collect();
        tested.difference(&seen).copied().collect()
    }

    /// Refuses a training set with fewer than two classes: there is nothing to tell apart.
    pub fn check_classes(&self, source: &Path) -> Result<(), PruneError> {
        let mut labels = self.train.labels.iter().copied();
        let Some(first) = labels.next() else {
            return Err(data_error(source, "the training set is empty"));
        };
        if labels.all(|l| l == first) {
            return Err(data_error(
                source,
                format!(
                    "all {} training images are of one class ({}); a classifier needs at least two{}",
                    self.train.len(),
                    self.class_name(first),
                    " (check the label file, or load more images: --train-limit)"
                ),
            ));
        }
        Ok(())
    }
}

/// Splits `set` into training and test parts, `test_fraction` of each class held out (seeded).
fn split(set: &ImageSet, classes: usize, test_fraction: f64, seed: u64) -> (ImageSet, ImageSet) {
    let (train, test) = split_indices(set, classes, test_fraction, seed);
    (set.subset(&train), set.subset(&test))
}

/// The indices of `set` that [`split`] puts in the training and the test part.
pub fn split_indices(set: &ImageSet, classes: usize, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in 0..classes {
        let mut members: Vec<usize> = (0..set.len()).filter(|&i| usize::from(set.labels[i]) == class).collect();
        members.shuffle(&mut rng);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let held = ((members.len() as f64 * test_fraction).round() as usize).min(members.len().saturating_sub(1));
        test.extend_from_slice(&members[..held]);
        train.extend_from_slice(&members[held..]);
    }
    train.shuffle(&mut rng);
    test.sort_unstable();
    (train, test)
}

/// The 1797 built-in 8×8 digits, a fifth of each class held out for testing.
pub fn builtin_digits() -> LabelledData {
    let digits = classify::builtin_digits();
    let set = ImageSet {
        channels: 1,
        height: 8,
        width: 8,
        pixels: digits.images.iter().flatten().copied().collect(),
        labels: digits.labels.iter().map(|&l| u16::from(l)).collect(),
    };
    let (train, test) = split(&set, 10, 0.2, 0);
    LabelledData { name: "digits (built-in)".into(), train, test, classes: (0..10).map(|d| d.to_string()).collect() }
}

fn data_error(path: &Path, reason: impl Into<String>) -> PruneError {
    PruneError::Data { path: path.to_owned(), reason: reason.into() }
}

/// The most pixel values of one IDX image file that are loaded at once: 2²⁸, 1 GiB as f32
/// (Fashion-MNIST's training set is 47 million).
pub const MAX_IDX_VALUES: usize = 1 << 28;

/// An IDX file of unsigned bytes: its dimensions and data.
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>), PruneError> {
    read_idx_items(path, None, usize::try_from(crate::files::IDX.max_bytes).unwrap_or(usize::MAX))
}

/// An IDX file of unsigned bytes, plain or gzip-compressed, read as a stream: its dimensions as
/// the header gives them, and the data of its first `max_items` items (all when `None`). The
/// file's length must match its header; the items beyond `max_items` are read and counted but
/// not kept, so a limit bounds memory whatever the file holds. Keeping more than `max_kept` bytes
/// is refused from the header, before anything is allocated.
pub fn read_idx_items(
    path: &Path,
    max_items: Option<usize>,
    max_kept: usize,
) -> Result<(Vec<usize>, Vec<u8>), PruneError> {
    use std::io::{BufRead, Read};
    let cap = crate::files::IDX.max_bytes;
    let file = crate::files::open_capped(path, crate::files::IDX)
        .map_err(|e| data_error(path, format!("cannot open or read ({e})")))?;
    let mut buffered = std::io::BufReader::new(file);
    let gzipped =
        buffered.fill_buf().map_err(|e| data_error(path, format!("cannot read ({e})")))?.starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read> =
        if gzipped { Box::new(flate2::read::GzDecoder::new(buffered)) } else { Box::new(buffered) };
    // The cap holds for the decompressed bytes too.
    let mut stream = stream.take(cap + 1);
    let read_error = |e: std::io::Error| {
        if gzipped {
            data_error(path, format!("not a readable gzip file ({e})"))
        } else {
            data_error(path, format!("cannot read ({e})"))
        }
    };
    let mut head = [0_u8; 4];
    let got = read_up_to(&mut stream, &mut head).map_err(read_error)?;
    if got < 4 || head[0] != 0 || head[1] != 0 {
        return Err(data_error(path, "not an IDX file (it must start with two zero bytes, a type and a rank)"));
    }
    if head[2] != 0x08 {
        return Err(data_error(path, format!("IDX type 0x{:02x} is not unsigned bytes (0x08)", head[2])));
    }
    let rank = usize::from(head[3]);
    let mut dim_bytes = vec![0_u8; 4 * rank.min(4)];
    let got = read_up_to(&mut stream, &mut dim_bytes).map_err(read_error)?;
    if rank == 0 || rank > 4 || got < 4 * rank {
        return Err(data_error(path, format!("IDX rank {rank} is not 1–4, or the header is cut short")));
    }
    let dims: Vec<usize> =
        dim_bytes.chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let count = dims.iter().try_fold(1_usize, |a, &d| a.checked_mul(d)).unwrap_or(usize::MAX);
    let item_bytes = dims[1..].iter().try_fold(1_usize, |a, &d| a.checked_mul(d)).unwrap_or(usize::MAX);
    let items = max_items.map_or(dims[0], |m| m.min(dims[0]));
    let kept = items.saturating_mul(item_bytes);
    if kept > max_kept {
        return Err(data_error(
            path,
            format!(
                "the header says {dims:?}: {items} items of {item_bytes} bytes would be {kept} values, more than \
                 the {max_kept} loaded at once; load fewer (--train-limit, or the training-images setting)"
            ),
        ));
    }
    let mut data = Vec::with_capacity(kept);
    (&mut stream).take(kept as u64).read_to_end(&mut data).map_err(read_error)?;
    let rest = std::io::copy(&mut stream, &mut std::io::sink()).map_err(read_error)?;
    let total = (data.len() as u64).saturating_add(rest);
    if total.saturating_add(4 + 4 * rank as u64) > cap {
        return Err(data_error(path, format!("the file holds more than {} MiB of data", cap >> 20)));
    }
    if total != count as u64 {
        return Err(data_error(
            path,
            format!("the header says {dims:?} ({count} bytes) but the file holds {total} bytes of data"),
        ));
    }
    Ok((dims, data))
}

/// Fills `buffer` as far as `reader` goes; returns how many bytes it got.
fn read_up_to(reader: &mut impl std::io::Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Images (`n × h × w`) and labels (`n`) from two IDX files.
pub fn load_idx_pair(images: &Path, labels: &Path) -> Result<ImageSet, PruneError> {
    load_idx_pair_limited(images, labels, None)
}

/// The first `max_images` images (all when `None`) and their labels from two IDX files; at most
/// [`MAX_IDX_VALUES`] pixels are loaded.
pub fn load_idx_pair_limited(images: &Path, labels: &Path, max_images: Option<usize>) -> Result<ImageSet, PruneError> {
    let (dims, pixels) = read_idx_items(images, max_images, MAX_IDX_VALUES)?;
    if dims.len() != 3 {
        return Err(data_error(images, format!("image files have 3 dimensions (count, rows, columns), not {dims:?}")));
    }
    if dims[0] == 0 || dims[1] == 0 || dims[2] == 0 {
        return Err(data_error(images, "no images"));
    }
    if dims[1] > 256 || dims[2] > 256 {
        return Err(data_error(
            images,
            format!("images of {}×{} pixels; the lab takes up to 256×256", dims[1], dims[2]),
        ));
    }
    let (label_dims, label_bytes) = read_idx_items(labels, max_images, MAX_IDX_VALUES)?;
    if label_dims.len() != 1 {
        return Err(data_error(labels, format!("label files have 1 dimension, not {label_dims:?}")));
    }
    if label_dims[0] != dims[0] {
        return Err(data_error(
            labels,
            format!("{} labels for {} images in {}", label_dims[0], dims[0], images.display()),
        ));
    }
    Ok(ImageSet {
        channels: 1,
        height: dims[1],
        width: dims[2],
        pixels: pixels.iter().map(|&v| f32::from(v) / 255.0).collect(),
        labels: label_bytes.iter().map(|&l| u16::from(l)).collect(),
    })
}

/// `dir/name` or `dir/name.gz`, whichever exists.
fn find_idx(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))].into_iter().find(|p| p.is_file())
}

/// Fashion-MNIST (or MNIST) from a folder of the four IDX files, optionally gzipped.
pub fn load_fashion_mnist(dir: &Path) -> Result<LabelledData, PruneError> {
    load_fashion_mnist_limited(dir, 0)
}

/// [`load_fashion_mnist`] keeping the first `train_limit` training images (all when 0): the rest
/// are read and checked but never decoded into memory.
pub fn load_fashion_mnist_limited(dir: &Path, train_limit: usize) -> Result<LabelledData, PruneError> {
    let names =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
    let found: Vec<Option<PathBuf>> = names.iter().map(|n| find_idx(dir, n)).collect();
    let missing: Vec<&str> = names.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(n, _)| *n).collect();
    if !missing.is_empty() {
        return Err(data_error(
            dir,
            format!(
                "missing {} (with or without .gz); a Fashion-MNIST folder holds the four IDX files{}",
                missing.join(", "),
                if dir == Path::new(DEBIAN_FASHION_MNIST) { " (apt-get install dataset-fashion-mnist)" } else { "" }
            ),
        ));
    }
    let path = |k: usize| found[k].clone().unwrap_or_default();
    let train = load_idx_pair_limited(&path(0), &path(1), (train_limit > 0).then_some(train_limit))?;
    let test = load_idx_pair(&path(2), &path(3))?;
    if (train.height, train.width) != (test.height, test.width) {
        return Err(data_error(dir, "training and test images differ in size"));
    }
    let classes = usize::from(train.labels.iter().chain(&test.labels).copied().max().unwrap_or(0)) + 1;
    // Fashion-MNIST's names where the folder says so; label numbers otherwise (MNIST and others).
    let fashion = dir.to_string_lossy().to_ascii_lowercase().contains("fashion");
    let class_names = if classes <= 10 && fashion {
        FASHION_CLASSES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        (0..classes.max(2)).map(|c| c.to_string()).collect()
    };
    let data = LabelledData { name: format!("Fashion-MNIST ({})", dir.display()), train, test, classes: class_names };
    data.check_classes(dir)?;
    Ok(data)
}

/// A folder with one sub-folder of images per class (sub-folder names are the class names);
/// every image becomes `side × side`, gray unless some image has colour. A fifth of each class
/// is held out for testing.
pub fn load_image_folder(dir: &Path, side: usize) -> Result<LabelledData, PruneError> {
    load_image_folder_named(dir, side).map(|named| named.data)
}

/// A data set with the name of each image (`class/file.png`, relative to the folder it was read from).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedData {
    pub data: LabelledData,
    pub train_names: Vec<String>,
    pub test_names: Vec<String>,
}

/// [`load_image_folder`], keeping each image's `class/file` name.
pub fn load_image_folder_named(dir: &Path, side: usize) -> Result<NamedData, PruneError> {
    if !(4..=256).contains(&side) {
        return Err(data_error(dir, format!("the image side must be 4 to 256 pixels, got {side}")));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| data_error(dir, format!("cannot list the folder ({e})")))?;
    let mut class_dirs: Vec<PathBuf> =
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    class_dirs.sort();
    if class_dirs.len() < 2 {
        return Err(data_error(dir, "needs at least two sub-folders, one per class, each holding that class's images"));
    }
    // Each image is resized as soon as it is read: (RGB planes, has colour, class).
    let side_u32 = u32::try_from(side).unwrap_or(32);
    let mut images: Vec<(Vec<f32>, bool, usize)> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (class, class_dir) in class_dirs.iter().enumerate() {
        let files = image_files(class_dir)?;
        if files.is_empty() {
            return Err(data_error(class_dir, "holds no PNG or JPEG images"));
        }
        for file in files {
            let image = image_io::load_image(&file).map_err(|e| data_error(&file, e.to_string()))?.image;
            images.push((resized_planes(&image, side_u32, 3), image.channels == 3, class));
            let class_name = class_dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let file_name = file.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            names.push(format!("{class_name}/{file_name}"));
            if images.len() > MAX_FOLDER_IMAGES {
                return Err(data_error(dir, format!("more than {MAX_FOLDER_IMAGES} images")));
            }
        }
    }
    let channels = if images.iter().any(|(_, colour, _)| *colour) { 3 } else { 1 };
    let mut pixels = Vec::with_capacity(images.len() * channels * side * side);
    let mut labels = Vec::with_capacity(images.len());
    for (planes, _, class) in &images {
        // Gray images were spread over three equal planes: keep one.
        pixels.extend_from_slice(&planes[..channels * side * side]);
        labels.push(u16::try_from(*class).unwrap_or(u16::MAX));
    }
    let set = ImageSet { channels, height: side, width: side, pixels, labels };
    let (train, test) = split_indices(&set, class_dirs.len(), 0.2, 0);
    let classes = class_dirs
        .iter()
        .map(|d| d.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()))
        .collect();
    let pick = |indices: &[usize]| indices.iter().map(|&i| names[i].clone()).collect();
    Ok(NamedData {
        train_names: pick(&train),
        test_names: pick(&test),
        data: LabelledData {
            name: format!("images in {}", dir.display()),
            train: set.subset(&train),
            test: set.subset(&test),
            classes,
        },
    })
}

/// The PNG and JPEG files directly in `dir`, sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, PruneError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| data_error(dir, format!("cannot list the folder ({e})")))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// `image` resized to `side × side` (triangle filter) as `channels` planes.
fn resized_planes(image: &image_io::ImageData, side: u32, channels: usize) -> Vec<f32> {
    let filter = image::imageops::FilterType::Triangle;
    let interleaved: Vec<f32> = if image.channels == 1 {
        image::ImageBuffer::<image::Luma<f32>, _>::from_raw(image.width, image.height, image.pixels.clone())
            .map(|b| image::imageops::resize(&b, side, side, filter).into_raw())
            .unwrap_or_default()
    } else {
        image::ImageBuffer::<image::Rgb<f32>, _>::from_raw(image.width, image.height, image.pixels.clone())
            .map(|b| image::imageops::resize(&b, side, side, filter).into_raw())
            .unwrap_or_default()
    };
    let n = (side * side) as usize;
    let mut planes = vec![0.0; channels * n];
    for p in 0..n {
        for c in 0..channels {
            let source = if image.channels == 1 { interleaved.get(p) } else { interleaved.get(p * 3 + c) };
            planes[c * n + p] = source.copied().unwrap_or(0.0).clamp(0.0, 1.0);
        }
    }
    planes
}

/// Where a data set comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DataSource {
    #[default]
    Digits,
    /// A folder of MNIST-style IDX files.
    FashionMnist(PathBuf),
    /// One sub-folder per class, images resized to `side × side`.
    Folder { path: PathBuf, side: usize },
}

/// Whether `dir` holds MNIST-style IDX files (Fashion-MNIST's layout) rather than one
/// sub-folder per class.
pub fn is_idx_folder(dir: &Path) -> bool {
    ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"].iter().any(|n| dir.join(n).is_file())
}

impl DataSource {
    /// A folder as a data set: Fashion-MNIST when it holds IDX files, else one sub-folder per
    /// class brought to `side × side`.
    pub fn for_folder(dir: &Path, side: usize) -> Self {
        if is_idx_folder(dir) {
            Self::FashionMnist(dir.to_owned())
        } else {
            Self::Folder { path: dir.to_owned(), side }
        }
    }

    pub fn load(&self) -> Result<LabelledData, PruneError> {
        self.load_with_train_limit(0)
    }

    /// Loads keeping the first `train_limit` training images (all when 0); IDX files beyond the
    /// limit are never decoded into memory.
    pub fn load_with_train_limit(&self, train_limit: usize) -> Result<LabelledData, PruneError> {
        let mut data = match self {
            Self::Digits => builtin_digits(),
            Self::FashionMnist(dir) => load_fashion_mnist_limited(dir, train_limit)?,
            Self::Folder { path, side } => load_image_folder(path, *side)?,
        };
        if train_limit > 0 && train_limit < data.train.len() {
            data.train = data.train.truncated(train_limit);
            if let Self::Folder { path, .. } = self {
                data.check_classes(path)?;
            }
        }
        Ok(data)
    }

    pub fn label(&self) -> String {
        match self {
            Self::Digits => "built-in digits (8×8)".into(),
            Self::FashionMnist(dir) => format!("Fashion-MNIST in {}", dir.display()),
            Self::Folder { path, side } => format!("image folder {} ({side}×{side})", path.display()),
        }
    }
}
