//! File dialogs: the system's (through xdg-desktop-portal, on a thread of its own so the window
//! keeps drawing) or, where that cannot open or the user prefers it, the built-in browser. The
//! path picked goes back to the lab that asked, with its request.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use eframe::egui;

use super::SparseFieldApp;
use crate::jobs::Waker;
use crate::ui::file_browser::{BrowserOutcome, FileBrowser};
use crate::ui::widgets::Level;
use crate::ui::{DialogKind, FileDialog};

/// A system dialog that answers faster than this did not open (no portal available).
const DIALOG_UNAVAILABLE: Duration = Duration::from_millis(150);
/// Recent folders kept for the built-in browser.
const MAX_RECENT_FOLDERS: usize = 8;

/// A file dialog on screen, the lab that asked for it and what it asked.
pub enum Dialog {
    System(SystemDialog),
    Browser { lab: usize, request: Box<dyn Any + Send>, browser: FileBrowser },
}

/// The system's dialog, running on its own thread.
pub struct SystemDialog {
    lab: usize,
    spec: FileDialog,
    request: Box<dyn Any + Send>,
    answer: Receiver<Option<PathBuf>>,
    opened: Instant,
}

impl SystemDialog {
    /// Starts the dialog's thread; when it cannot start, the request comes back with the error.
    #[allow(clippy::type_complexity)]
    fn open(
        lab: usize,
        spec: FileDialog,
        request: Box<dyn Any + Send>,
        waker: Waker,
    ) -> Result<Self, (std::io::Error, Box<dyn Any + Send>)> {
        let (sender, answer) = std::sync::mpsc::channel();
        let asked = spec.clone();
        let spawned = std::thread::Builder::new().name("sf-file-dialog".into()).spawn(move || {
            let mut dialog = rfd::FileDialog::new();
            if let Some(title) = asked.title {
                dialog = dialog.set_title(title);
            }
            if let Some((name, extensions)) = asked.filter {
                dialog = dialog.add_filter(name, extensions);
            }
            let path = match asked.kind {
                DialogKind::Open => dialog.pick_file(),
                DialogKind::Save(file_name) => dialog.set_file_name(file_name).save_file(),
                DialogKind::Folder => dialog.pick_folder(),
            };
            let _ = sender.send(path);
            waker();
        });
        match spawned {
            Ok(_) => Ok(Self { lab, spec, request, answer, opened: Instant::now() }),
            Err(e) => Err((e, request)),
        }
    }

    /// `Some(answer)` once the dialog closed (`Some(None)` when nothing was picked).
    fn answer(&self) -> Option<Option<PathBuf>> {
        match self.answer.try_recv() {
            Ok(answer) => Some(answer),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(None),
        }
    }
}

/// Whether a desktop session bus exists, through which a system dialog (xdg-desktop-portal)
/// could open. Without one the built-in browser opens at once.
fn system_dialogs_possible() -> bool {
    let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty());
    let runtime_bus = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|dir| Path::new(&dir).join("bus").exists());
    bus || runtime_bus
}

impl SparseFieldApp {
    /// Opens a file dialog for lab `lab`; the answer goes back to it with `request`.
    pub(super) fn open_dialog(&mut self, lab: usize, spec: FileDialog, request: Box<dyn Any + Send>) {
        if self.dialog.is_some() {
            self.notify(Level::Info, "A file dialog is already open.");
            return;
        }
        if self.shell.builtin_file_browser || !system_dialogs_possible() {
            self.open_browser(lab, spec, request);
            return;
        }
        match SystemDialog::open(lab, spec.clone(), request, Arc::clone(&self.waker)) {
            Ok(pending) => self.dialog = Some(Dialog::System(pending)),
            Err((e, request)) => {
                self.notify(
                    Level::Info,
                    format!("The system file dialog cannot start ({e}); this is the built-in one."),
                );
                self.open_browser(lab, spec, request);
            }
        }
    }

    fn open_browser(&mut self, lab: usize, spec: FileDialog, request: Box<dyn Any + Send>) {
        let start = self.shell.recent_folders.first().cloned().or_else(|| std::env::var_os("HOME").map(PathBuf::from));
        let start = start.or_else(|| std::env::current_dir().ok()).unwrap_or_else(|| PathBuf::from("/"));
        self.dialog = Some(Dialog::Browser { lab, request, browser: FileBrowser::new(spec, &start) });
    }

    /// Takes in a system dialog's answer; a dialog that closed at once without one (no portal)
    /// is replaced by the built-in browser.
    pub(super) fn poll_dialog(&mut self, ctx: &egui::Context) {
        let Some(Dialog::System(pending)) = &self.dialog else { return };
        let Some(answer) = pending.answer() else { return };
        let Some(Dialog::System(pending)) = self.dialog.take() else { return };
        match answer {
            Some(path) => self.picked(ctx, pending.lab, pending.request, path),
            None if pending.opened.elapsed() < DIALOG_UNAVAILABLE => {
                self.notify(
                    Level::Info,
                    "No system file dialog opened (is xdg-desktop-portal running?); this is the built-in one. \
                     ⚙ in the top bar makes it the default.",
                );
                self.open_browser(pending.lab, pending.spec, pending.request);
            }
            None => {}
        }
    }

    /// Draws the built-in browser when it is open and hands its answer to the lab.
    pub(super) fn browser_ui(&mut self, ctx: &egui::Context) {
        let Some(Dialog::Browser { browser, .. }) = &mut self.dialog else { return };
        match browser.ui(ctx, &self.shell.recent_folders) {
            BrowserOutcome::Open => {}
            BrowserOutcome::Cancelled => self.dialog = None,
            BrowserOutcome::Picked(path) => {
                if let Some(Dialog::Browser { lab, request, .. }) = self.dialog.take() {
                    self.picked(ctx, lab, request, path);
                }
            }
        }
    }

    fn picked(&mut self, ctx: &egui::Context, lab: usize, request: Box<dyn Any + Send>, path: PathBuf) {
        let folder = if path.is_dir() { Some(path.as_path()) } else { path.parent() };
        if let Some(folder) = folder.filter(|f| !f.as_os_str().is_empty()) {
            let recent = &mut self.shell.recent_folders;
            recent.retain(|f| f != folder);
            recent.insert(0, folder.to_path_buf());
            recent.truncate(MAX_RECENT_FOLDERS);
        }
        self.with_lab(ctx, lab, |lab, cx| lab.file_picked(request, path, cx));
    }
}
