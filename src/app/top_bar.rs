//! The top bar: every lab's jobs, the settings menu, the theme and the GPU in use.

use eframe::egui;

use super::SparseFieldApp;
use crate::ui::Command;
use crate::ui::theme;
use crate::ui::widgets::job_bar_ui;

impl SparseFieldApp {
    pub(super) fn top_bar_ui(&self, ui: &mut egui::Ui, commands: &mut Vec<Command>) {
        ui.horizontal(|ui| {
            ui.strong("SparseField");
            ui.separator();
            let jobs: Vec<_> = self.labs.iter().flat_map(|lab| lab.jobs()).collect();
            job_bar_ui(ui, &jobs, commands);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.menu_button("⚙", |ui| {
                    let mut builtin = self.shell.builtin_file_browser;
                    if ui
                        .checkbox(&mut builtin, "Built-in file browser")
                        .on_hover_text(
                            "Pick files in the app's own browser instead of the system's dialog (it opens by \
                             itself where the system's cannot)",
                        )
                        .changed()
                    {
                        commands.push(Command::UseBuiltinFileBrowser(builtin));
                    }
                });
                if ui.button(self.shell.theme.label()).clicked() {
                    commands.push(Command::ToggleTheme);
                }
                match &self.gpu {
                    Ok(gpu) => ui
                        .label(egui::RichText::new(format!("GPU: {}", gpu.backend)).color(theme::weak_text_colour(ui)))
                        .on_hover_text(&gpu.adapter),
                    Err(problem) => {
                        ui.colored_label(theme::warning_colour(ui), "No GPU rendering").on_hover_text(problem)
                    }
                };
            });
        });
    }
}
