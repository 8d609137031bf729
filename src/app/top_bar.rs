//! The top bar: every lab's jobs, the settings menu, the theme and the GPU in use.

use eframe::egui;

use super::SparseFieldApp;
use crate::ui::Command;
use crate::ui::theme;
use crate::ui::widgets::job_bar_ui;

impl SparseFieldApp {
    /// One job shares the title row; several get a row each below it, so that every job's Pause
    /// and Cancel stay inside the window.
    pub(super) fn top_bar_ui(&self, ui: &mut egui::Ui, commands: &mut Vec<Command>) {
        let jobs: Vec<_> = self.labs.iter().flat_map(|lab| lab.jobs()).collect();
        ui.horizontal(|ui| {
            ui.strong("SparseField");
            ui.separator();
            if jobs.len() <= 1 {
                job_bar_ui(ui, &jobs, &self.queue.waiting, commands);
            } else {
                ui.label(format!("{} jobs running", jobs.len()));
            }
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
                    let mut together = self.shell.run_jobs_together;
                    if ui
                        .checkbox(&mut together, "Run jobs together")
                        .on_hover_text(
                            "Let jobs of different labs run at the same time. Off: one runs at full speed (the \
                             lab on screen first) and the others wait, so that neither they nor the window starve",
                        )
                        .changed()
                    {
                        commands.push(Command::RunJobsTogether(together));
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
        if jobs.len() > 1 {
            job_bar_ui(ui, &jobs, &self.queue.waiting, commands);
        }
    }
}
