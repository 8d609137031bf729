//! Shared UI: the shell's commands, file-dialog requests, the theme, widgets, the live-analysis
//! driver and the orbit viewer. Each lab's panel lives in `labs/<lab>/panel.rs`.

pub mod file_browser;
pub mod live;
pub mod orbit_viewer;
pub mod plot_key;
pub mod theme;
pub mod widgets;

use crate::jobs::JobId;

pub use crate::compute::image_io::BuiltinImage;

/// What the user asked of the shell this frame (a lab's own commands are the lab's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Command {
    /// Show the lab with this key.
    SelectLab(&'static str),
    ToggleTheme,
    /// Pick files in the built-in browser (true) or the system's dialog.
    UseBuiltinFileBrowser(bool),
    PauseJob(JobId, bool),
    /// Let jobs of different labs run together (true) or one at a time.
    RunJobsTogether(bool),
    CancelJob(JobId),
    DismissNotification(u64),
    ClearNotifications,
}

/// A native file dialog a lab asks the shell to open; the path picked goes back to the lab.
#[derive(Clone, Debug, PartialEq)]
pub struct FileDialog {
    pub kind: DialogKind,
    pub title: Option<&'static str>,
    /// A filter's name and its extensions.
    pub filter: Option<(&'static str, &'static [&'static str])>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DialogKind {
    Open,
    /// Save, proposing this file name.
    Save(&'static str),
    Folder,
}

/// Extensions of the images every lab reads.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

impl FileDialog {
    /// Pick an existing file of this type.
    pub fn open(filter: &'static str, extensions: &'static [&'static str]) -> Self {
        Self { kind: DialogKind::Open, title: None, filter: Some((filter, extensions)) }
    }

    /// Pick an image to read.
    pub fn image() -> Self {
        Self::open("Images", IMAGE_EXTENSIONS)
    }

    /// Name a file to write, proposing `file_name`.
    pub fn save(filter: &'static str, extensions: &'static [&'static str], file_name: &'static str) -> Self {
        Self { kind: DialogKind::Save(file_name), title: None, filter: Some((filter, extensions)) }
    }

    /// Pick a folder.
    pub fn folder() -> Self {
        Self { kind: DialogKind::Folder, title: None, filter: None }
    }

    pub fn titled(self, title: &'static str) -> Self {
        Self { title: Some(title), ..self }
    }
}

/// The lower-case extension of `path` ("" when it has none).
pub fn extension_of(path: &std::path::Path) -> String {
    path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default()
}
