//! One bounded reader for every file a user hands the program: each kind of file has a size cap,
//! checked before reading and again while reading (pipes and devices such as `/dev/zero` report no
//! size), so neither a small file nor an endless one can make a loader allocate gigabytes.
//!
//! The errors are plain `std::io::Error`s, so every loader keeps its own error type and message
//! (which names the file); the text says how large the file is, what the cap is and what to do.
//!
//! Writing goes the same way through one door: [`write_atomic`] and [`AtomicFile`] write into a
//! temporary file beside the target, flush and sync it, and only then rename it over the target, so
//! a full disk or a failed encoder is an error and never leaves a truncated or empty output behind.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A kind of user file and the most it may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileKind {
    /// What the file is, in the user's terms ("a mesh", "a NeRF checkpoint's weights").
    pub name: &'static str,
    pub max_bytes: u64,
}

const MIB: u64 = 1 << 20;

/// An INR or an INSP operator (`.safetensors`): at most 8 layers of 256 wide, well under 1 MiB.
pub const SMALL_WEIGHTS: FileKind = FileKind { name: "an INR or operator weights file", max_bytes: 64 * MIB };
/// A NeRF checkpoint's `nerf.safetensors` (hash tables dominate).
pub const NERF_WEIGHTS: FileKind = FileKind { name: "a NeRF checkpoint's weights", max_bytes: 1024 * MIB };
/// JSON settings and camera files (`config.json`, `transforms*.json`).
pub const JSON: FileKind = FileKind { name: "a JSON file", max_bytes: 64 * MIB };
/// OBJ, PLY and OFF meshes.
pub const MESH: FileKind = FileKind { name: "a mesh", max_bytes: 512 * MIB };
/// A `.npy` depth map.
pub const NPY: FileKind = FileKind { name: "a .npy depth map", max_bytes: 512 * MIB };
/// Tables: NTK points, digit CSVs, hard-sample scores.
pub const TABLE: FileKind = FileKind { name: "a CSV table", max_bytes: 256 * MIB };
/// A hard-sample attribute table.
pub const ATTRIBUTES: FileKind = FileKind { name: "an attribute table", max_bytes: 64 * MIB };
/// An IDX file (MNIST, Fashion-MNIST), plain or gzip-compressed; the cap holds for both.
pub const IDX: FileKind = FileKind { name: "an IDX file", max_bytes: 512 * MIB };

/// Reads all of `path`, refusing files larger than `kind` allows.
pub fn read_capped(path: &Path, kind: FileKind) -> std::io::Result<Vec<u8>> {
    read_capped_from(open_capped(path, kind)?, kind)
}

/// Opens `path` for a streaming reader, refusing a regular file larger than `kind` allows before
/// reading a byte; the reader must still stop at the cap (a pipe or device says no size).
pub fn open_capped(path: &Path, kind: FileKind) -> std::io::Result<std::fs::File> {
    let file = std::fs::File::open(path)?;
    if let Ok(metadata) = file.metadata()
        && metadata.is_file()
        && metadata.len() > kind.max_bytes
    {
        return Err(too_large(kind, Some(metadata.len())));
    }
    Ok(file)
}

/// Reads `path` as UTF-8 text, refusing files larger than `kind` allows.
pub fn read_text_capped(path: &Path, kind: FileKind) -> std::io::Result<String> {
    let bytes = read_capped(path, kind)?;
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// Reads everything `reader` yields (a file, a decompressor) up to `kind`'s cap.
pub fn read_capped_from(reader: impl Read, kind: FileKind) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(kind.max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > kind.max_bytes {
        return Err(too_large(kind, None));
    }
    Ok(bytes)
}

fn too_large(kind: FileKind, size: Option<u64>) -> std::io::Error {
    let cap = kind.max_bytes / MIB;
    let message = match size {
        Some(bytes) => format!("the file is {} MiB, more than {} may hold ({cap} MiB)", bytes.div_ceil(MIB), kind.name),
        None => format!("the file holds more than {} may ({cap} MiB)", kind.name),
    };
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// The file that marks a folder as some command's output; it holds the writer's name.
pub const OUTPUT_MARKER: &str = ".sparsefield-output";

/// A folder that holds files its would-be writer did not write.
#[derive(Debug)]
pub struct ForeignFolder {
    pub dir: PathBuf,
    /// The writer named by the folder's marker, when another one made it.
    pub other_writer: Option<String>,
    /// The folder's entries (sorted; the marker left out).
    pub entries: Vec<String>,
}

impl ForeignFolder {
    /// "DIR: holds the output of `X`" or "DIR: already holds files that `W` did not write (a, b, …)".
    pub fn describe(&self, writer: &str) -> String {
        match &self.other_writer {
            Some(other) => format!("{}: holds the output of `{other}`", self.dir.display()),
            None => {
                let shown: Vec<&str> = self.entries.iter().take(3).map(String::as_str).collect();
                let more = if self.entries.len() > 3 { ", …" } else { "" };
                format!(
                    "{}: already holds files that `{writer}` did not write ({}{more})",
                    self.dir.display(),
                    shown.join(", ")
                )
            }
        }
    }
}

/// Whether `writer` (like `"sparsefield nerf eval"`) may write its fixed file names into `dir`
/// without risk to someone else's files: yes (`None`) when the folder does not exist, is empty, or
/// is marked as `writer`'s own earlier output; otherwise what is there.
pub fn foreign_files(dir: &Path, writer: &str) -> std::io::Result<Option<ForeignFolder>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let marker = read_text_capped(&dir.join(OUTPUT_MARKER), JSON).ok();
    let owner = marker.as_deref().map(str::trim);
    if owner == Some(writer) {
        return Ok(None);
    }
    let mut entries: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != OUTPUT_MARKER)
        .collect();
    if entries.is_empty() {
        return Ok(None);
    }
    entries.sort();
    Ok(Some(ForeignFolder { dir: dir.to_owned(), other_writer: owner.map(str::to_owned), entries }))
}

/// Creates `dir` if needed and marks it as `writer`'s output; fails when it cannot be written.
pub fn mark_output_dir(dir: &Path, writer: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_atomic(dir.join(OUTPUT_MARKER), format!("{writer}\n"))
}

/// Writes `contents` to `path` through an [`AtomicFile`]: the drop-in replacement of
/// `std::fs::write` for every output.
pub fn write_atomic(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    let mut file = AtomicFile::create(path.as_ref())?;
    file.write_all(contents.as_ref())?;
    file.commit()
}

/// A file written in full or not at all: bytes go to a temporary file in the target's folder;
/// [`commit`](Self::commit) flushes and syncs it and renames it over the target. Dropped without a
/// commit (an error on the way), it removes the temporary file and leaves the target as it was.
///
/// A target that exists and is not a regular file (a device such as `/dev/full`, a FIFO) is
/// written in place, never replaced; a symbolic link is followed, so the link stays a link.
pub struct AtomicFile {
    writer: Option<std::io::BufWriter<std::fs::File>>,
    /// The temporary file, or `None` when writing in place.
    temp: Option<PathBuf>,
    path: PathBuf,
}

impl AtomicFile {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = match std::fs::symlink_metadata(path) {
            Ok(link) if link.file_type().is_symlink() => std::fs::canonicalize(path)?,
            _ => path.to_owned(),
        };
        if std::fs::metadata(&path).is_ok_and(|m| !m.is_file()) {
            let file = std::fs::OpenOptions::new().write(true).open(&path)?;
            return Ok(Self { writer: Some(std::io::BufWriter::new(file)), temp: None, path });
        }
        let name = path
            .file_name()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the output path names no file"))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".partial-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        let temp = path.with_file_name(temp_name);
        let file = std::fs::File::create(&temp)?;
        Ok(Self { writer: Some(std::io::BufWriter::new(file)), temp: Some(temp), path })
    }

    /// Flushes, syncs and renames the file into place; any failure is returned.
    pub fn commit(mut self) -> std::io::Result<()> {
        let writer = self.writer.take().ok_or_else(|| std::io::Error::other("the file was already committed"))?;
        let file = writer.into_inner().map_err(std::io::IntoInnerError::into_error);
        let Some(temp) = &self.temp else {
            // In place (a device or a pipe): the flush above is where a write fails.
            return file.map(drop);
        };
        let result = file.and_then(|file| file.sync_all()).and_then(|()| std::fs::rename(temp, &self.path));
        if result.is_err() {
            let _ = std::fs::remove_file(temp);
        }
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.writer {
            Some(writer) => writer.write(buf),
            None => Err(std::io::Error::other("the file was already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.as_mut().map_or(Ok(()), std::io::Write::flush)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some()
            && let Some(temp) = &self.temp
        {
            let _ = std::fs::remove_file(temp);
        }
    }
}
