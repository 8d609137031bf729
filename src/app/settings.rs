//! What the shell keeps between runs: its own settings under eframe's app key, each lab's under
//! `lab.<key>`, and the takeover of settings saved by earlier versions.

use serde::{Deserialize, Serialize};

use crate::labs::Lab;
use crate::ui::theme::ThemeChoice;

/// The shell's settings, kept between runs (each lab keeps its own under `lab.<key>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShellSettings {
    pub theme: ThemeChoice,
    /// The key of the lab on screen.
    pub lab: String,
    /// Start training in the lab on screen when the app opens.
    pub train_on_start: bool,
    /// Pick files in the built-in browser rather than the system's dialog.
    pub builtin_file_browser: bool,
    /// Let jobs of different labs run at the same time instead of one after the other.
    pub run_jobs_together: bool,
    /// Folders files were picked from, newest first (the built-in browser offers them).
    pub recent_folders: Vec<std::path::PathBuf>,
}

impl Default for ShellSettings {
    fn default() -> Self {
        Self {
            theme: ThemeChoice::default(),
            lab: String::new(),
            train_on_start: true,
            builtin_file_browser: false,
            run_jobs_together: false,
            recent_folders: Vec::new(),
        }
    }
}

/// Reads the shell's settings and each lab's from `storage`. A lab with nothing under its own
/// key yet reads its part of what an earlier version saved (all settings in one struct).
pub fn restore(storage: &dyn eframe::Storage, labs: &mut [Box<dyn Lab>]) -> ShellSettings {
    /// The shell's part of an earlier version's settings (its lab was an enum, now a key).
    #[derive(Deserialize)]
    #[serde(default)]
    struct Previous {
        theme: ThemeChoice,
        train_on_start: bool,
    }
    impl Default for Previous {
        fn default() -> Self {
            let ShellSettings { theme, train_on_start, .. } = ShellSettings::default();
            Self { theme, train_on_start }
        }
    }
    for lab in labs.iter_mut() {
        match storage.get_string(&storage_key(lab.as_ref())) {
            Some(json) => lab.restore(&json),
            None => lab.restore_previous_version(storage),
        }
    }
    eframe::get_value(storage, eframe::APP_KEY)
        .filter(|shell: &ShellSettings| !shell.lab.is_empty())
        .or_else(|| {
            let Previous { theme, train_on_start } = eframe::get_value(storage, eframe::APP_KEY)?;
            Some(ShellSettings { theme, train_on_start, ..ShellSettings::default() })
        })
        .unwrap_or_default()
}

/// Writes what [`restore`] reads.
pub fn save(storage: &mut dyn eframe::Storage, shell: &ShellSettings, labs: &[Box<dyn Lab>]) {
    eframe::set_value(storage, eframe::APP_KEY, shell);
    for lab in labs {
        if let Some(json) = lab.persist() {
            storage.set_string(&storage_key(lab.as_ref()), json);
        }
    }
}

/// Where lab `lab` keeps its settings in eframe's storage.
fn storage_key(lab: &dyn Lab) -> String {
    format!("lab.{}", lab.key())
}
