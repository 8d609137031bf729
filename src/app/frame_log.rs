//! `SPARSEFIELD_FRAME_LOG=FILE`: one line per frame — when it started (Unix ms), how long it took
//! (ms) and how many clicks it took in — for measuring how fast the window answers while labs
//! train (README.md, *Responsiveness*). Off unless the variable is set.

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use eframe::egui;

pub struct FrameLog {
    out: std::io::BufWriter<std::fs::File>,
    frame: Option<(Instant, u128, usize)>,
}

impl FrameLog {
    /// The log the environment asks for, if any.
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os("SPARSEFIELD_FRAME_LOG")?;
        match std::fs::File::create(&path) {
            Ok(file) => Some(Self { out: std::io::BufWriter::new(file), frame: None }),
            Err(e) => {
                eprintln!("warning: {}: cannot write the frame log ({e})", std::path::Path::new(&path).display());
                None
            }
        }
    }

    pub fn frame_started(&mut self, ctx: &egui::Context) {
        let clicks = ctx.input(|i| {
            i.events.iter().filter(|e| matches!(e, egui::Event::PointerButton { pressed: true, .. })).count()
        });
        let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        self.frame = Some((Instant::now(), unix_ms, clicks));
    }

    pub fn frame_ended(&mut self) {
        if let Some((start, unix_ms, clicks)) = self.frame.take() {
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let _ = writeln!(self.out, "frame {unix_ms} {ms:.1} {clicks}");
            let _ = self.out.flush();
        }
    }
}
