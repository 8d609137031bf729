//! `SPARSEFIELD_FRAME_LOG=FILE`: one line per frame — when it started (Unix ms), how long it took
//! (ms) and how many clicks it took in — for measuring how fast the window answers while labs
//! train (README.md, *Responsiveness*) — and at most once a second one line per running job (its
//! name, step and whether it is paused), for the jobs' speed meanwhile. Off unless the variable
//! is set.

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use eframe::egui;

pub struct FrameLog {
    out: std::io::BufWriter<std::fs::File>,
    frame: Option<(Instant, u128, usize)>,
    jobs_logged: Option<Instant>,
}

impl FrameLog {
    /// The log the environment asks for, if any.
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os("SPARSEFIELD_FRAME_LOG")?;
        match std::fs::File::create(&path) {
            Ok(file) => Some(Self { out: std::io::BufWriter::new(file), frame: None, jobs_logged: None }),
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

    /// Ends the frame's line; `jobs` are the running jobs' (name, step, paused).
    pub fn frame_ended(&mut self, jobs: impl Iterator<Item = (String, u64, bool)>) {
        if let Some((start, unix_ms, clicks)) = self.frame.take() {
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let _ = writeln!(self.out, "frame {unix_ms} {ms:.1} {clicks}");
            if self.jobs_logged.is_none_or(|at| at.elapsed().as_secs_f64() >= 1.0) {
                self.jobs_logged = Some(Instant::now());
                for (name, step, paused) in jobs {
                    let _ = writeln!(self.out, "job {unix_ms} {step} {} {}", u8::from(paused), name.replace(' ', "_"));
                }
            }
            let _ = self.out.flush();
        }
    }
}
