//! Widgets shared by every lab: the job bar, the notification area, the lab list.

use eframe::egui;

use super::{Command, LabId, theme};
use crate::jobs::{JobId, JobStatus};

/// A running job as the job bar shows it.
pub struct JobRow<'a> {
    pub id: JobId,
    pub name: &'a str,
    pub status: &'a JobStatus,
    pub cancelling: bool,
}

/// One line per running job: name, progress bar, pause/resume and cancel.
pub fn job_bar_ui(ui: &mut egui::Ui, jobs: &[JobRow<'_>], commands: &mut Vec<Command>) {
    if jobs.is_empty() {
        ui.label(egui::RichText::new("No jobs running").color(theme::weak_text_colour(ui)));
        return;
    }
    for job in jobs {
        ui.horizontal(|ui| {
            ui.strong(job.name);
            let status = job.status;
            let mut text = if status.total_steps > 0 {
                format!("step {} / {}", status.step, status.total_steps)
            } else {
                "starting…".to_owned()
            };
            if let Some(psnr) = status.metric("psnr_db") {
                text.push_str(&format!(" · {psnr:.2} dB"));
            }
            if status.paused {
                text.push_str(" · paused");
            }
            if job.cancelling {
                text.push_str(" · cancelling…");
            }
            ui.add(egui::ProgressBar::new(status.fraction()).text(text).desired_width(320.0));
            let (label, hint) = if status.paused {
                ("▶ Resume", "Continue this job")
            } else {
                ("⏸ Pause", "Pause this job; it keeps its state")
            };
            if ui.button(label).on_hover_text(hint).clicked() {
                commands.push(Command::PauseJob(job.id, !status.paused));
            }
            if ui
                .add_enabled(!job.cancelling, egui::Button::new("✖ Cancel"))
                .on_hover_text("Stop this job; a fit keeps what it reached")
                .clicked()
            {
                commands.push(Command::CancelJob(job.id));
            }
        });
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Success,
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub id: u64,
    pub level: Level,
    pub text: String,
}

/// The notification area: newest first, each dismissable.
pub fn notifications_ui(ui: &mut egui::Ui, notifications: &[Notification], commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        ui.strong("Messages");
        if ui.small_button("Clear all").clicked() {
            commands.push(Command::ClearNotifications);
        }
    });
    egui::ScrollArea::vertical().max_height(90.0).show(ui, |ui| {
        for note in notifications.iter().rev() {
            ui.horizontal(|ui| {
                if ui.small_button("✖").on_hover_text("Dismiss").clicked() {
                    commands.push(Command::DismissNotification(note.id));
                }
                let (icon, colour) = match note.level {
                    Level::Info => ("ℹ", theme::info_colour(ui)),
                    Level::Success => ("✔", theme::success_colour(ui)),
                    Level::Warning => ("⚠", theme::warning_colour(ui)),
                    Level::Error => ("⛔", theme::error_colour(ui)),
                };
                ui.label(egui::RichText::new(format!("{icon} {}", note.text)).color(colour));
            });
        }
    });
}

/// The list of labs.
pub fn lab_list_ui(ui: &mut egui::Ui, current: LabId, commands: &mut Vec<Command>) {
    ui.heading("Labs");
    for lab in LabId::ALL {
        if ui.selectable_label(lab == current, lab.title()).on_hover_text(lab.description()).clicked() && lab != current
        {
            commands.push(Command::SelectLab(lab));
        }
    }
}
