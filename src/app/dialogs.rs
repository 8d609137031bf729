//! Native file dialogs, run on a thread of their own so the window keeps drawing.

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use eframe::egui;

use super::SparseFieldApp;
use crate::jobs::Waker;
use crate::ui::widgets::Level;
use crate::ui::{DialogKind, FileDialog};

/// A file dialog that answers faster than this did not open (no portal available).
const DIALOG_UNAVAILABLE: Duration = Duration::from_millis(150);

/// A dialog on screen, the lab that asked for it and what it asked.
pub struct PendingDialog {
    lab: usize,
    request: Box<dyn Any + Send>,
    answer: Receiver<Option<PathBuf>>,
    opened: Instant,
}

impl PendingDialog {
    pub fn open(lab: usize, spec: FileDialog, request: Box<dyn Any + Send>, waker: Waker) -> std::io::Result<Self> {
        let (sender, answer) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("sf-file-dialog".into()).spawn(move || {
            let mut dialog = rfd::FileDialog::new();
            if let Some(title) = spec.title {
                dialog = dialog.set_title(title);
            }
            if let Some((name, extensions)) = spec.filter {
                dialog = dialog.add_filter(name, extensions);
            }
            let path = match spec.kind {
                DialogKind::Open => dialog.pick_file(),
                DialogKind::Save(file_name) => dialog.set_file_name(file_name).save_file(),
                DialogKind::Folder => dialog.pick_folder(),
            };
            let _ = sender.send(path);
            waker();
        })?;
        Ok(Self { lab, request, answer, opened: Instant::now() })
    }

    /// `Some(answer)` once the dialog closed (`Some(None)` when nothing was picked).
    pub fn answer(&self) -> Option<Option<PathBuf>> {
        match self.answer.try_recv() {
            Ok(answer) => Some(answer),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(None),
        }
    }

    /// Whether the dialog closed too fast to have been shown.
    pub fn answered_at_once(&self) -> bool {
        self.opened.elapsed() < DIALOG_UNAVAILABLE
    }

    pub fn into_request(self) -> (usize, Box<dyn Any + Send>) {
        (self.lab, self.request)
    }
}

impl SparseFieldApp {
    /// Opens a native file dialog for lab `lab`; the answer goes back to it with `request`.
    pub(super) fn open_dialog(&mut self, lab: usize, spec: FileDialog, request: Box<dyn Any + Send>) {
        if self.dialog.is_some() {
            self.notify(Level::Info, "A file dialog is already open.");
            return;
        }
        match PendingDialog::open(lab, spec, request, Arc::clone(&self.waker)) {
            Ok(pending) => self.dialog = Some(pending),
            Err(e) => self.notify(Level::Error, format!("cannot open a file dialog: {e}")),
        }
    }

    pub(super) fn poll_dialog(&mut self, ctx: &egui::Context) {
        let Some(pending) = &self.dialog else { return };
        let Some(answer) = pending.answer() else { return };
        let pending = self.dialog.take().expect("a pending dialog");
        match answer {
            Some(path) => {
                let (lab, request) = pending.into_request();
                self.with_lab(ctx, lab, |lab, cx| lab.file_picked(request, path, cx));
            }
            None if pending.answered_at_once() => self.notify(
                Level::Warning,
                "No file dialog could be opened (is xdg-desktop-portal running?). Drop the file on the window instead, \
                 or use the command line.",
            ),
            None => {}
        }
    }
}
