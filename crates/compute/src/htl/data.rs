//! Data for the hard-sample lab: labelled images (built-in digits with an imbalanced "faint scan"
//! group, Fashion-MNIST, or a folder with one sub-folder per class), each sample with a name and
//! a group, optionally read from a CSV of per-sample attributes joined by file name.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::HtlError;
use crate::image_io::ImageData;
use crate::inr::classify;
use crate::prune::data::{self as prune_data, ImageSet, LabelledData};

/// Fraction of the built-in digits in the minority "faint scan" group.
pub const FAINT_FRACTION: f64 = 0.15;
/// Most distinct groups an attribute column may have.
pub const MAX_GROUPS: usize = 32;
/// Group of samples that no attribute row names.
pub const UNMATCHED_GROUP: &str = "(no row)";

/// Training or test samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Split {
    #[default]
    Train,
    Test,
}

impl Split {
    pub const ALL: [Self; 2] = [Self::Train, Self::Test];

    pub fn label(self) -> &'static str {
        match self {
            Self::Train => "training",
            Self::Test => "test",
        }
    }
}

/// Labelled images with a name and a group for every sample.
#[derive(Clone, Debug, PartialEq)]
pub struct HtlData {
    pub data: LabelledData,
    pub train_names: Vec<String>,
    pub test_names: Vec<String>,
    pub train_groups: Vec<u16>,
    pub test_groups: Vec<u16>,
    /// Group names, indexed by the group numbers.
    pub groups: Vec<String>,
}

impl HtlData {
    pub fn set(&self, split: Split) -> &ImageSet {
        match split {
            Split::Train => &self.data.train,
            Split::Test => &self.data.test,
        }
    }

    pub fn groups_of(&self, split: Split) -> &[u16] {
        match split {
            Split::Train => &self.train_groups,
            Split::Test => &self.test_groups,
        }
    }

    pub fn names_of(&self, split: Split) -> &[String] {
        match split {
            Split::Train => &self.train_names,
            Split::Test => &self.test_names,
        }
    }

    pub fn summary(&self) -> String {
        let counts: Vec<String> = self
            .groups
            .iter()
            .enumerate()
            .map(|(g, name)| {
                let n = self.train_groups.iter().chain(&self.test_groups).filter(|&&x| usize::from(x) == g).count();
                format!("{name} {n}")
            })
            .collect();
        format!("{}; groups: {}", self.data.summary(), counts.join(", "))
    }

    /// Keeps the first `n` training samples (all when 0).
    pub fn with_train_limit(mut self, n: usize) -> Self {
        if n > 0 && n < self.data.train.len() {
            self.data.train = self.data.train.truncated(n);
            self.train_names.truncate(n);
            self.train_groups.truncate(n);
        }
        self
    }

    /// Checks that names, groups and labels agree with the images.
    pub fn validate(&self) -> Result<(), HtlError> {
        let classes = self.data.classes.len();
        for split in Split::ALL {
            let set = self.set(split);
            if set.is_empty() {
                return Err(HtlError::Other(format!("{}: no {} images", self.data.name, split.label())));
            }
            if self.names_of(split).len() != set.len() || self.groups_of(split).len() != set.len() {
                return Err(HtlError::Other(format!("{}: names or groups do not match the images", self.data.name)));
            }
            if let Some(label) = set.labels.iter().find(|&&l| usize::from(l) >= classes) {
                return Err(HtlError::Other(format!("{}: label {label} but only {classes} classes", self.data.name)));
            }
            if let Some(g) = self.groups_of(split).iter().find(|&&g| usize::from(g) >= self.groups.len()) {
                return Err(HtlError::Other(format!("{}: group {g} has no name", self.data.name)));
            }
        }
        if classes < 2 {
            return Err(HtlError::Other(format!("{}: needs at least two classes", self.data.name)));
        }
        Ok(())
    }
}

/// Sample `index` of `set` as an image (gray or RGB).
pub fn sample_image(set: &ImageSet, index: usize) -> ImageData {
    let (c, h, w) = (set.channels, set.height, set.width);
    let plane = h * w;
    let start = index * c * plane;
    let mut pixels = vec![0.0; c * plane];
    for p in 0..plane {
        for ch in 0..c {
            pixels[p * c + ch] = set.pixels.get(start + ch * plane + p).copied().unwrap_or(0.0);
        }
    }
    #[allow(clippy::cast_possible_truncation)]
    ImageData { width: w as u32, height: h as u32, channels: c, pixels }
}

/// Where the lab's samples come from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HtlSource {
    /// The built-in 8×8 digits; 15 % of them (seeded) are "faint scans": low contrast and noisy.
    #[default]
    Digits,
    /// A folder of MNIST-style IDX files.
    FashionMnist(PathBuf),
    /// One sub-folder per class, images resized to `side × side`.
    Folder { path: PathBuf, side: usize },
}

impl HtlSource {
    /// A folder as samples: Fashion-MNIST when it holds IDX files, else one sub-folder per class
    /// brought to `side × side`.
    pub fn for_folder(dir: &std::path::Path, side: usize) -> Self {
        if crate::prune::data::is_idx_folder(dir) {
            Self::FashionMnist(dir.to_owned())
        } else {
            Self::Folder { path: dir.to_owned(), side }
        }
    }

    pub fn label(&self) -> String {
        match self {
            Self::Digits => "built-in digits with a faint-scan minority (8×8)".into(),
            Self::FashionMnist(dir) => format!("Fashion-MNIST in {}", dir.display()),
            Self::Folder { path, side } => format!("image folder {} ({side}×{side})", path.display()),
        }
    }
}

/// A CSV of per-sample attributes: which file, and which column holds the group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeSpec {
    pub path: PathBuf,
    /// The column whose values are the groups; the first column after the name column when `None`.
    pub column: Option<String>,
}

/// Loads `source` and, when given, joins the attribute CSV to it by file name.
pub fn load(source: &HtlSource, attributes: Option<&AttributeSpec>) -> Result<HtlData, HtlError> {
    load_with_train_limit(source, attributes, 0)
}

/// [`load`] keeping the first `train_limit` training samples (all when 0); IDX files beyond the
/// limit are never decoded into memory.
pub fn load_with_train_limit(
    source: &HtlSource,
    attributes: Option<&AttributeSpec>,
    train_limit: usize,
) -> Result<HtlData, HtlError> {
    let mut data = match source {
        HtlSource::Digits => builtin_digits(),
        HtlSource::FashionMnist(dir) => {
            let data = prune_data::load_fashion_mnist_limited(dir, train_limit)?;
            let train_names = (0..data.train.len()).map(|i| format!("train-{i}")).collect();
            let test_names = (0..data.test.len()).map(|i| format!("t10k-{i}")).collect();
            ungrouped(data, train_names, test_names)
        }
        HtlSource::Folder { path, side } => {
            let named = prune_data::load_image_folder_named(path, *side)?;
            ungrouped(named.data, named.train_names, named.test_names)
        }
    };
    data = data.with_train_limit(train_limit);
    if let Some(spec) = attributes {
        join_attributes(&mut data, spec)?;
    }
    data.validate()?;
    Ok(data)
}

fn ungrouped(data: LabelledData, train_names: Vec<String>, test_names: Vec<String>) -> HtlData {
    HtlData {
        train_groups: vec![0; data.train.len()],
        test_groups: vec![0; data.test.len()],
        groups: vec!["all".into()],
        data,
        train_names,
        test_names,
    }
}

/// The built-in digits, a seeded 15 % of them turned into "faint scans" (contrast × 0.35 over a
/// gray floor, Gaussian noise σ 0.12): an under-represented group that is harder to learn.
pub fn builtin_digits() -> HtlData {
    let digits = classify::builtin_digits();
    let mut rng = ChaCha8Rng::seed_from_u64(0x4854_4c00);
    let noise = Normal::new(0.0_f32, 0.12).unwrap_or_else(|_| unreachable!("σ is positive"));
    let mut pixels = Vec::with_capacity(digits.len() * 64);
    let mut groups = Vec::with_capacity(digits.len());
    for image in &digits.images {
        let faint = rng.random_bool(FAINT_FRACTION);
        groups.push(u16::from(faint));
        if faint {
            pixels.extend(image.iter().map(|&v| (0.25 + 0.35 * v + noise.sample(&mut rng)).clamp(0.0, 1.0)));
        } else {
            pixels.extend_from_slice(image);
        }
    }
    let set = ImageSet {
        channels: 1,
        height: 8,
        width: 8,
        pixels,
        labels: digits.labels.iter().map(|&l| u16::from(l)).collect(),
    };
    let (train, test) = prune_data::split_indices(&set, 10, 0.2, 0);
    let names = |indices: &[usize]| indices.iter().map(|i| format!("digit-{i}")).collect();
    let group_of = |indices: &[usize]| indices.iter().map(|&i| groups[i]).collect();
    HtlData {
        train_names: names(&train),
        test_names: names(&test),
        train_groups: group_of(&train),
        test_groups: group_of(&test),
        groups: vec!["standard".into(), "faint scan".into()],
        data: LabelledData {
            name: "digits (built-in, 15% faint scans)".into(),
            train: set.subset(&train),
            test: set.subset(&test),
            classes: (0..10).map(|d| d.to_string()).collect(),
        },
    }
}

fn data_error(path: &Path, reason: impl Into<String>) -> HtlError {
    HtlError::Data { path: path.to_owned(), reason: reason.into() }
}

/// The fields of one CSV line: commas separate except inside double quotes (`""` is a quote
/// inside a quoted field); spaces around fields are dropped.
pub fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches(['\r', '\n']).chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field).trim().to_owned()),
            _ => field.push(c),
        }
    }
    fields.push(field.trim().to_owned());
    fields
}

/// `text` as one CSV field, quoted when it holds a comma, a quote or a line break.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

/// Sets every sample's group from the attribute CSV `spec`: a header, a name column (`file`,
/// `filename`, `name`, `image` or `path`; otherwise the first) and the group column. A row
/// names a sample `class/file.png` as `class/file.png`, `class/file`, `file.png` or `file`, in
/// that order of precedence; samples no row names go to the group "(no row)".
pub fn join_attributes(data: &mut HtlData, spec: &AttributeSpec) -> Result<(), HtlError> {
    let (groups, [train_groups, test_groups]) =
        group_samples(spec, [&data.train_names, &data.test_names], &data.data.name)?;
    data.train_groups = train_groups;
    data.test_groups = test_groups;
    data.groups = groups;
    Ok(())
}

/// The groups the attribute CSV `spec` gives the samples named in `names` (training and test
/// names of the data set `data_name`), as [`join_attributes`] describes: the group names and each
/// sample's group number.
pub fn group_samples(
    spec: &AttributeSpec,
    names: [&[String]; 2],
    data_name: &str,
) -> Result<(Vec<String>, [Vec<u16>; 2]), HtlError> {
    let path = &spec.path;
    let text = read_text(path)?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| data_error(path, "is empty; it needs a header row"))?;
    let header = csv_fields(header);
    let key_names = ["file", "filename", "file_name", "name", "image", "image_id", "path"];
    let key = header.iter().position(|h| key_names.contains(&h.to_ascii_lowercase().as_str())).unwrap_or(0);
    let column = match &spec.column {
        Some(name) => header.iter().position(|h| h == name).ok_or_else(|| {
            data_error(path, format!("has no column `{name}`; its columns are {}", header.join(", ")))
        })?,
        None => (0..header.len()).find(|&c| c != key).ok_or_else(|| {
            data_error(path, "has a single column; it needs a file-name column and an attribute column")
        })?,
    };
    if column == key {
        return Err(data_error(path, format!("`{}` is the file-name column; pick an attribute column", header[key])));
    }
    let mut rows: HashMap<String, String> = HashMap::new();
    for (number, line) in lines {
        let row = csv_fields(line);
        if row.len() != header.len() {
            return Err(data_error(
                path,
                format!("line {} has {} fields but the header has {}", number + 1, row.len(), header.len()),
            ));
        }
        rows.insert(row[key].clone(), row[column].clone());
    }
    let lookup = |name: &str| -> Option<&String> {
        if let Some(v) = rows.get(name) {
            return Some(v);
        }
        let without_extension = |n: &'_ str| n.rsplit_once('.').map_or(n.to_owned(), |(s, _)| s.to_owned());
        let file = name.rsplit('/').next().unwrap_or(name);
        rows.get(&without_extension(name)).or_else(|| rows.get(file)).or_else(|| rows.get(&without_extension(file)))
    };
    let values: Vec<Vec<Option<&String>>> =
        names.iter().map(|names| names.iter().map(|n| lookup(n)).collect()).collect();
    if rows.is_empty() {
        return Err(data_error(path, "the table has a header but no rows; add one row per sample".to_owned()));
    }
    let matched = values.iter().flatten().filter(|v| v.is_some()).count();
    if matched == 0 {
        let example_key = rows.keys().next().cloned().unwrap_or_default();
        let example_name = names[0].first().cloned().unwrap_or_default();
        return Err(data_error(
            path,
            format!(
                "no row names a sample of {} (column `{}` holds e.g. `{example_key}`; samples are named like \
                 `{example_name}`)",
                data_name, header[key]
            ),
        ));
    }
    let mut distinct: BTreeSet<&str> = values.iter().flatten().flatten().map(|s| s.as_str()).collect();
    let any_unmatched = matched < names[0].len() + names[1].len();
    if any_unmatched {
        distinct.insert(UNMATCHED_GROUP);
    }
    if distinct.len() > MAX_GROUPS {
        return Err(data_error(
            path,
            format!(
                "column `{}` has {} distinct values; the lab takes up to {MAX_GROUPS} groups (bin continuous \
                 attributes first)",
                header[column],
                distinct.len()
            ),
        ));
    }
    let groups: Vec<String> = distinct.iter().map(|s| (*s).to_owned()).collect();
    let index = |v: Option<&String>| -> u16 {
        let name = v.map_or(UNMATCHED_GROUP, String::as_str);
        u16::try_from(groups.iter().position(|g| g == name).unwrap_or(0)).unwrap_or(0)
    };
    let train_groups = values[0].iter().map(|v| index(*v)).collect();
    let test_groups = values[1].iter().map(|v| index(*v)).collect();
    Ok((groups, [train_groups, test_groups]))
}

fn read_text(path: &Path) -> Result<String, HtlError> {
    let bytes = crate::files::read_capped(path, crate::files::ATTRIBUTES)
        .map_err(|e| data_error(path, format!("cannot open or read ({e})")))?;
    String::from_utf8(bytes).map_err(|_| data_error(path, "is not UTF-8 text; save the table as a UTF-8 CSV"))
}
