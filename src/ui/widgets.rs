//! Widgets shared by every lab: the job bar, the notification area, the lab list.

use eframe::egui;

use super::plot_key::LogAxes;
use super::{Command, theme};
use crate::jobs::{Job, JobId, JobStatus, JobUpdate};

/// A running job as the job bar shows it.
pub struct JobRow<'a> {
    pub id: JobId,
    pub name: &'a str,
    pub status: &'a JobStatus,
    pub cancelling: bool,
}

impl<'a> JobRow<'a> {
    /// The row of `job` under `name`, while it runs.
    pub fn of<S: Send + Sync + 'static, R: Send + 'static>(job: Option<&'a Job<S, R>>, name: &'a str) -> Option<Self> {
        job.filter(|j| !j.is_finished()).map(|job| Self {
            id: job.id(),
            name,
            status: job.status(),
            cancelling: job.is_cancelled(),
        })
    }
}

/// Applies `action` to whichever of `jobs` has `id`; returns whether one had.
pub fn control_job_of(
    jobs: &mut [Option<&mut dyn crate::jobs::JobControl>],
    id: JobId,
    action: impl Fn(&mut dyn crate::jobs::JobControl),
) -> bool {
    match jobs.iter_mut().flatten().find(|job| job.id() == id) {
        Some(job) => {
            action(&mut **job);
            true
        }
        None => false,
    }
}

/// One line per running job: name, progress bar, pause/resume and cancel.
/// `waiting` are the jobs the shell's queue holds back while another one runs.
pub fn job_bar_ui(
    ui: &mut egui::Ui,
    jobs: &[JobRow<'_>],
    waiting: &std::collections::BTreeSet<JobId>,
    commands: &mut Vec<Command>,
) {
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
            let queued = waiting.contains(&job.id);
            if queued {
                text.push_str(" · waiting for the running job");
            } else if status.paused {
                text.push_str(" · paused");
            }
            if job.cancelling {
                text.push_str(" · cancelling…");
            }
            ui.add(egui::ProgressBar::new(status.fraction()).text(text).desired_width(320.0));
            let (label, hint) = if queued {
                ("▶ Run now", "Run this job now; the running one waits (⚙ lets jobs run together)")
            } else if status.paused {
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

/// Messages for the notification area, as a lab's poll returns them.
pub type Notes = Vec<(Level, String)>;

/// Polls a job that ends with a message for the user (an export, say): the message as a success,
/// a cancellation ([`crate::jobs::CANCELLED`]) as a warning, any other error as a failure of
/// `what`; the job is dropped once finished.
pub fn poll_message_job<S: Send + Sync + 'static>(slot: &mut Option<Job<S, String>>, what: &str, notes: &mut Notes) {
    let Some(job) = slot else { return };
    for update in job.poll() {
        match update {
            JobUpdate::Finished(Ok(message)) => notes.push((Level::Success, message)),
            JobUpdate::Finished(Err(e)) if e == crate::jobs::CANCELLED => {
                notes.push((Level::Warning, format!("{what} cancelled.")));
            }
            JobUpdate::Finished(Err(e)) => notes.push((Level::Error, format!("{what} failed: {e}"))),
            _ => {}
        }
    }
    if job.is_finished() {
        *slot = None;
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub id: u64,
    pub level: Level,
    pub text: String,
}

/// Messages in view at once (more scroll).
const NOTIFICATION_ROWS: f32 = 4.0;
/// Height of one message row (a small button beside a line of text, with spacing).
const NOTIFICATION_ROW_HEIGHT: f32 = 26.0;

/// The notification area: newest first, each dismissable.
pub fn notifications_ui(ui: &mut egui::Ui, notifications: &[Notification], commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        ui.strong("Messages");
        if ui.small_button("Clear all").clicked() {
            commands.push(Command::ClearNotifications);
        }
    });
    let height = NOTIFICATION_ROWS * NOTIFICATION_ROW_HEIGHT;
    // At least as tall as the newest messages need (up to the limit), so that the panel grows to
    // show them instead of the scroll area shrinking into the panel's old height.
    egui::ScrollArea::vertical().max_height(height).min_scrolled_height(height).show(ui, |ui| {
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

/// A lab as the lab list shows it.
pub struct LabEntry {
    pub key: &'static str,
    pub title: &'static str,
    pub description: &'static str,
}

/// The list of labs; `current` is the key of the lab on screen.
pub fn lab_list_ui(ui: &mut egui::Ui, labs: &[LabEntry], current: &str, commands: &mut Vec<Command>) {
    ui.heading("Labs");
    for lab in labs {
        let selected = lab.key == current;
        if ui.selectable_label(selected, lab.title).on_hover_text(lab.description).clicked() && !selected {
            commands.push(Command::SelectLab(lab.key));
        }
    }
}

/// Two plots side by side: log₁₀ loss and PSNR against the step, filling the width and the
/// height left (at least `min_height`). `points` are `(step, loss, psnr_db)`.
pub fn loss_psnr_plots_ui(
    ui: &mut egui::Ui,
    id: &str,
    titles: (&str, &str),
    points: &[(f64, f64, f64)],
    min_height: f32,
) {
    use egui_plot::{Line, PlotPoints};
    /// At most this many points per plotted line.
    const MAX_PLOT_POINTS: usize = 2000;
    let stride = points.len().div_ceil(MAX_PLOT_POINTS).max(1);
    let line = |f: fn(&(f64, f64, f64)) -> f64| -> PlotPoints<'static> {
        points.iter().step_by(stride).map(|p| [p.0, f(p)]).collect()
    };
    let width = (ui.available_width() - theme::SPACING) / 2.0;
    let height = (ui.available_height() - 3.0 * ui.spacing().interact_size.y).max(min_height);
    let (loss_colour, psnr_colour) = (theme::loss_colour(ui), theme::psnr_colour(ui));
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label(titles.0);
            crate::ui::plot_key::new_plot(format!("{id} loss"))
                .width(width)
                .height(height)
                .x_axis_label("step")
                .log10_y()
                .show(ui, |plot| {
                    plot.line(Line::new("loss", line(|p| p.1.max(1e-12).log10())).color(loss_colour));
                });
        });
        ui.vertical(|ui| {
            ui.label(titles.1);
            crate::ui::plot_key::new_plot(format!("{id} psnr")).width(width).height(height).x_axis_label("step").show(
                ui,
                |plot| {
                    plot.line(Line::new("PSNR", line(|p| p.2)).color(psnr_colour));
                },
            );
        });
    });
}

/// `image` as a texture, pixels drawn as squares when magnified.
pub fn image_texture(
    ctx: &egui::Context,
    name: &str,
    image: &crate::compute::image_io::ImageData,
) -> egui::TextureHandle {
    let size = [image.width as usize, image.height as usize];
    ctx.load_texture(
        name,
        egui::ColorImage::from_rgba_unmultiplied(size, &image.to_rgba8()),
        egui::TextureOptions::NEAREST,
    )
}

/// How often [`busy_ui`] turns: slow enough that showing it asks for no frames beyond those the
/// jobs' progress already does (on a software renderer every frame costs the jobs CPU time).
const BUSY_FRAME_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// A spinner that turns a step five times a second (egui's own asks for a frame every frame,
/// which on a software renderer took most of the machine while a lab trained).
pub fn busy_ui(ui: &mut egui::Ui) -> egui::Response {
    let side = ui.spacing().interact_size.y;
    let (rect, response) = ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::hover());
    if ui.is_rect_visible(rect) {
        let step = (ui.input(|i| i.time) / BUSY_FRAME_INTERVAL.as_secs_f64()).floor();
        #[allow(clippy::cast_possible_truncation)]
        let start = (step * 0.9) as f32;
        let radius = rect.height() / 2.0 - 2.0;
        #[allow(clippy::cast_precision_loss)]
        let points: Vec<egui::Pos2> = (0..=16)
            .map(|k| {
                let angle = start + k as f32 / 16.0 * 4.5;
                rect.center() + radius * egui::vec2(angle.cos(), angle.sin())
            })
            .collect();
        ui.painter().add(egui::Shape::line(points, egui::Stroke::new(2.0, ui.visuals().strong_text_color())));
        ui.ctx().request_repaint_after(BUSY_FRAME_INTERVAL);
    }
    response
}
