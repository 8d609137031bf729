//! Files and folders dropped on the window: the lab on screen is asked first, then every lab.

use eframe::egui;

use super::SparseFieldApp;
use crate::ui::theme;
use crate::ui::widgets::Level;

impl SparseFieldApp {
    pub(super) fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        for file in dropped {
            let path = file.path().to_path_buf();
            let active = self.active_index();
            let taker = if self.labs[active].accepts_drop(&path, true) {
                Some(active)
            } else {
                self.labs.iter().position(|lab| lab.accepts_drop(&path, false))
            };
            match taker {
                Some(index) => self.with_lab(ctx, index, |lab, cx| lab.dropped(path, cx)),
                None => {
                    let message = format!("{}: unsupported file type; drop {}.", path.display(), self.drop_hints());
                    self.notify(Level::Error, message);
                }
            }
        }
    }

    /// What the labs take when dropped, as one phrase.
    fn drop_hints(&self) -> String {
        let mut hints: Vec<&str> = Vec::new();
        for hint in self.labs.iter().filter_map(|lab| lab.drop_hint()) {
            if !hints.contains(&hint) {
                hints.push(hint);
            }
        }
        match hints.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{}, or {last}", rest.join(", ")),
            Some((last, _)) => (*last).to_owned(),
            None => "nothing: no lab takes files".to_owned(),
        }
    }

    pub(super) fn drop_overlay_ui(&self, ctx: &egui::Context) {
        if ctx.input(|i| i.raw.hovered_files.is_empty()) {
            return;
        }
        let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("drop overlay")));
        let rect = ctx.content_rect();
        painter.rect_filled(rect, 0.0, theme::drop_overlay());
        let galley = painter.layout(
            format!("Drop {}", self.drop_hints()),
            egui::FontId::proportional(22.0),
            egui::Color32::WHITE,
            rect.width() * 0.8,
        );
        painter.galley(rect.center() - galley.size() / 2.0, galley, egui::Color32::WHITE);
    }
}
