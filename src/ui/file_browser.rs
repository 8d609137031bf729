//! The built-in file browser: used where the system's file dialog cannot open (no
//! xdg-desktop-portal, a headless session) or when the user prefers it. It picks what a lab's
//! [`FileDialog`] asks for: a file of the lab's kinds, a file name to write, or a folder.

use std::path::{Path, PathBuf};

use eframe::egui;

use super::{DialogKind, FileDialog, theme};

/// Entries listed at most in one folder (the rest are counted).
const MAX_ENTRIES: usize = 5000;

/// One entry of the folder shown.
#[derive(Clone, Debug)]
struct Entry {
    name: String,
    is_dir: bool,
}

/// What the browser did this frame.
#[derive(Clone, Debug, PartialEq)]
pub enum BrowserOutcome {
    /// Still open.
    Open,
    Picked(PathBuf),
    Cancelled,
}

/// An open browser window.
pub struct FileBrowser {
    spec: FileDialog,
    dir: PathBuf,
    /// The folder field as typed.
    dir_text: String,
    /// The file name field (saving) or the file selected (opening).
    name: String,
    entries: Vec<Entry>,
    /// Entries not listed beyond [`MAX_ENTRIES`].
    more: usize,
    problem: Option<String>,
    show_hidden: bool,
}

impl FileBrowser {
    /// Opens in `start` (or the nearest folder above it that exists).
    pub fn new(spec: FileDialog, start: &Path) -> Self {
        let name = match spec.kind {
            DialogKind::Save(file_name) => file_name.to_owned(),
            DialogKind::Open | DialogKind::Folder => String::new(),
        };
        let mut browser = Self {
            spec,
            dir: PathBuf::new(),
            dir_text: String::new(),
            name,
            entries: Vec::new(),
            more: 0,
            problem: None,
            show_hidden: false,
        };
        let start = start.ancestors().find(|p| p.is_dir()).map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        browser.enter(start);
        browser
    }

    /// The folder shown.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn title(&self) -> &'static str {
        self.spec.title.unwrap_or(match self.spec.kind {
            DialogKind::Open => "Open a file",
            DialogKind::Save(_) => "Save as",
            DialogKind::Folder => "Choose a folder",
        })
    }

    /// Whether a file of this name is one the dialog asks for.
    fn wanted(&self, name: &str) -> bool {
        match self.spec.filter {
            Some((_, extensions)) => {
                let extension = super::extension_of(Path::new(name));
                extensions.iter().any(|e| *e == extension)
            }
            None => true,
        }
    }

    /// Shows `dir`; on failure the current folder stays and the reason is shown.
    fn enter(&mut self, dir: PathBuf) {
        match std::fs::read_dir(&dir) {
            Ok(read) => {
                let mut entries = Vec::new();
                let mut more = 0;
                for entry in read.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') && !self.show_hidden {
                        continue;
                    }
                    // Follows links, so a link to a folder is entered like one.
                    let is_dir = entry.path().is_dir();
                    if !is_dir && (self.spec.kind == DialogKind::Folder || !self.wanted(&name)) {
                        continue;
                    }
                    if entries.len() < MAX_ENTRIES {
                        entries.push(Entry { name, is_dir });
                    } else {
                        more += 1;
                    }
                }
                entries.sort_by(|a, b| {
                    b.is_dir.cmp(&a.is_dir).then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
                });
                self.entries = entries;
                self.more = more;
                self.dir_text = dir.display().to_string();
                self.dir = dir;
                self.problem = None;
                if self.spec.kind == DialogKind::Open {
                    self.name.clear();
                }
            }
            Err(e) => {
                self.problem = Some(format!("{}: cannot list the folder ({e})", dir.display()));
                self.dir_text = self.dir.display().to_string();
            }
        }
    }

    /// The path the primary button would give, if any.
    fn chosen(&self) -> Option<PathBuf> {
        match self.spec.kind {
            DialogKind::Folder => Some(self.dir.clone()),
            DialogKind::Open | DialogKind::Save(_) if self.name.trim().is_empty() => None,
            DialogKind::Open => Some(self.dir.join(self.name.trim())).filter(|p| p.is_file()),
            DialogKind::Save(_) => Some(self.dir.join(self.name.trim())),
        }
    }

    /// Draws the browser; `recent` lists folders picked from before, newest first.
    pub fn ui(&mut self, ctx: &egui::Context, recent: &[PathBuf]) -> BrowserOutcome {
        let mut outcome = BrowserOutcome::Open;
        let mut open = true;
        let mut go_to = None;
        egui::Window::new(self.title())
            .collapsible(false)
            .resizable(true)
            .default_size([620.0, 460.0])
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .open(&mut open)
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    if ui.button("⬆ Up").on_hover_text("The folder above").clicked()
                        && let Some(parent) = self.dir.parent()
                    {
                        go_to = Some(parent.to_path_buf());
                    }
                    if let Some(home) = std::env::var_os("HOME")
                        && ui.button("🏠 Home").clicked()
                    {
                        go_to = Some(PathBuf::from(home));
                    }
                    if !recent.is_empty() {
                        ui.menu_button("Recent", |ui| {
                            for folder in recent {
                                if ui.button(folder.display().to_string()).clicked() {
                                    go_to = Some(folder.clone());
                                    ui.close();
                                }
                            }
                        });
                    }
                    if ui
                        .checkbox(&mut self.show_hidden, "Hidden")
                        .on_hover_text("Show names starting with a dot")
                        .changed()
                    {
                        go_to = Some(self.dir.clone());
                    }
                });
                ui.horizontal(|ui| {
                    ui.label("Folder");
                    let field = ui
                        .add(egui::TextEdit::singleline(&mut self.dir_text).desired_width(ui.available_width() - 40.0));
                    let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                    if ui.button("Go").clicked() || entered {
                        go_to = Some(PathBuf::from(self.dir_text.trim()));
                    }
                });
                if let Some(problem) = &self.problem {
                    ui.colored_label(theme::error_colour(ui), problem);
                }
                let list_height = (ui.available_height() - 3.5 * ui.spacing().interact_size.y).max(120.0);
                egui::ScrollArea::vertical()
                    .id_salt(&self.dir)
                    .max_height(list_height)
                    .min_scrolled_height(list_height.min(240.0))
                    .auto_shrink([false, false])
                    .show(ui, |ui| {
                        if self.entries.is_empty() {
                            ui.label(
                                egui::RichText::new("Nothing here of the kinds asked for")
                                    .color(theme::weak_text_colour(ui)),
                            );
                        }
                        for entry in &self.entries {
                            let label = if entry.is_dir {
                                format!("📁 {}", entry.name)
                            } else {
                                format!("🗋 {}", entry.name)
                            };
                            let selected = !entry.is_dir && self.name == entry.name;
                            let response = ui.selectable_label(selected, label);
                            if entry.is_dir && response.clicked() {
                                go_to = Some(self.dir.join(&entry.name));
                            } else if !entry.is_dir && response.clicked() {
                                self.name.clone_from(&entry.name);
                            }
                            if !entry.is_dir && response.double_clicked() {
                                outcome = BrowserOutcome::Picked(self.dir.join(&entry.name));
                            }
                        }
                        if self.more > 0 {
                            ui.label(format!("… and {} more not listed", self.more));
                        }
                    });
                ui.separator();
                if let DialogKind::Save(_) = self.spec.kind {
                    ui.horizontal(|ui| {
                        ui.label("File name");
                        ui.text_edit_singleline(&mut self.name);
                    });
                }
                ui.horizontal(|ui| {
                    let action = match self.spec.kind {
                        DialogKind::Open => "Open",
                        DialogKind::Save(_) => "Save",
                        DialogKind::Folder => "Choose this folder",
                    };
                    let chosen = self.chosen();
                    if ui.add_enabled(chosen.is_some(), egui::Button::new(action)).clicked()
                        && let Some(path) = chosen
                    {
                        outcome = BrowserOutcome::Picked(path);
                    }
                    if ui.button("Cancel").clicked() {
                        outcome = BrowserOutcome::Cancelled;
                    }
                    if let Some((name, extensions)) = self.spec.filter {
                        ui.label(
                            egui::RichText::new(format!("{name}: {}", extensions.join(", ")))
                                .color(theme::weak_text_colour(ui)),
                        );
                    }
                });
                ui.label(
                    egui::RichText::new("Files and folders can also be dropped on the window.")
                        .color(theme::weak_text_colour(ui)),
                );
            });
        if let Some(dir) = go_to {
            self.enter(dir);
        }
        if !open {
            outcome = BrowserOutcome::Cancelled;
        }
        outcome
    }
}
