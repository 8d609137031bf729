//! Progressive refinement of an expensive per-pixel view: render a coarse grid first, then finer
//! ones, a few rows per frame within a budget, restarting whenever what is shown changes; and the
//! pacing of that work on the GPU.
//!
//! On a real GPU the budget covers the full-resolution grid and a view is done in one frame; on a
//! software adapter a 256-wide SIREN costs ~130k multiply-adds per pixel, so the view sharpens over
//! a few frames instead of freezing the UI.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use eframe::egui_wgpu::wgpu;

/// Downsampling factors, coarse to fine.
pub const LEVELS: [u32; 4] = [8, 4, 2, 1];

/// A rectangular block of rows of one level's grid to evaluate this frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkItem {
    pub level: usize,
    pub grid: (u32, u32),
    pub row_begin: u32,
    pub row_end: u32,
    /// True when these are the level's last rows: the grid is complete after this item.
    pub completes_level: bool,
}

/// While the weights keep changing, a level is only started if it completes within this many
/// frames.
pub const MAX_STALE_FRAMES: u64 = 30;

/// The finest level whose grid `budget_pixels` a frame covers within [`MAX_STALE_FRAMES`] frames
/// (the coarsest if none does).
fn fresh_level(full: (u32, u32), budget_pixels: u64) -> usize {
    (0..LEVELS.len())
        .rev()
        .find(|&level| {
            let (w, h) = level_grid(full, LEVELS[level]);
            u64::from(w) * u64::from(h) <= budget_pixels.saturating_mul(MAX_STALE_FRAMES)
        })
        .unwrap_or(0)
}

/// Grid size of `full` downsampled by `factor` (at least 1×1).
pub fn level_grid(full: (u32, u32), factor: u32) -> (u32, u32) {
    (full.0.div_ceil(factor).max(1), full.1.div_ceil(factor).max(1))
}

/// The refinement state of one view.
#[derive(Clone, Debug, Default)]
pub struct Progressive {
    key: Option<u64>,
    full: (u32, u32),
    level: usize,
    next_row: u32,
    /// Grid of the last completed level (what may be displayed), if any.
    shown: Option<(usize, (u32, u32))>,
    done: bool,
    /// The weights generation the current level is computed with.
    generation: Option<u64>,
}

impl Progressive {
    /// Plans this frame's work for content `key` at full grid `full`, within `budget_pixels`
    /// evaluations, for weights `generation`.
    ///
    /// A new key or size restarts at the finest level that fits the budget whole (so a fast GPU
    /// goes straight to full resolution), else at the coarsest. New weights do not restart: the
    /// level under way finishes with the weights it started with, and the next level takes the new
    /// ones — but never a level that would take more than [`MAX_STALE_FRAMES`] frames, so that
    /// while training replaces the weights a slow adapter keeps showing recent ones at a coarser
    /// level rather than old ones at a fine level. Once the weights stop changing, refinement goes
    /// on to full resolution. Returns `None` when the view is up to date.
    pub fn plan(&mut self, key: u64, full: (u32, u32), budget_pixels: u64, generation: u64) -> Option<WorkItem> {
        if self.key != Some(key) || self.full != full {
            self.key = Some(key);
            self.full = full;
            self.next_row = 0;
            self.done = false;
            // The finest level that fits in one frame, else the coarsest.
            self.level = (0..LEVELS.len())
                .rev()
                .find(|&level| {
                    let (w, h) = level_grid(full, LEVELS[level]);
                    u64::from(w) * u64::from(h) <= budget_pixels
                })
                .unwrap_or(0);
        }
        if self.done {
            if self.generation == Some(generation) {
                return None;
            }
            // Newer weights: recompute, showing the old image meanwhile.
            self.done = false;
            self.next_row = 0;
        }
        if self.next_row == 0 {
            if self.generation != Some(generation) && self.shown.is_some() {
                self.level = self.level.min(fresh_level(full, budget_pixels));
            }
            self.generation = Some(generation);
        }
        let grid = level_grid(full, LEVELS[self.level]);
        let rows = (budget_pixels / u64::from(grid.0)).max(1);
        let rows = u32::try_from(rows).unwrap_or(u32::MAX);
        let row_end = self.next_row.saturating_add(rows).min(grid.1);
        Some(WorkItem {
            level: self.level,
            grid,
            row_begin: self.next_row,
            row_end,
            completes_level: row_end == grid.1,
        })
    }

    /// Marks the view as out of date when its content or size changed, without planning work (the
    /// next [`Progressive::plan`] restarts it).
    pub fn restart_if_changed(&mut self, key: u64, full: (u32, u32), generation: u64) {
        if self.key != Some(key) || self.full != full {
            self.key = None;
            self.done = false;
        } else if self.done && self.generation != Some(generation) {
            self.done = false;
            self.next_row = 0;
        }
    }

    /// Records that `item` (from the last [`Progressive::plan`]) was carried out.
    pub fn complete(&mut self, item: WorkItem) {
        self.next_row = item.row_end;
        if item.completes_level {
            self.shown = Some((item.level, item.grid));
            if item.level + 1 < LEVELS.len() {
                self.level = item.level + 1;
                self.next_row = 0;
            } else {
                self.done = true;
            }
        }
    }

    /// The level index and grid that the display should show.
    pub fn shown(&self) -> Option<(usize, (u32, u32))> {
        self.shown
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// Paces evaluation work on the GPU.
///
/// A software adapter (lavapipe) runs submitted work on its own thread, so the UI thread's frame
/// time says nothing about how much work is queued, and budgeting by it lets work pile up until
/// presenting a frame blocks for seconds. Two rules avoid that: each frame's work is sized to
/// take about [`Pacer::TARGET_SECS`] of the adapter's time, as measured on the work before it,
/// and no new work is submitted before the last has completed.
///
/// The views submit their work themselves ([`Pacer::note_submitted`]), so that a completion
/// callback can cover it at once, and a small thread polls the device while work is in flight, so
/// the completion is timed when it happens. (Timing it when the next frame polls would count the
/// pause between frames as GPU time: while training, frames come every 240 ms, so every dispatch
/// looked four times too slow and the budget fell to its floor, leaving views coarse for minutes.)
#[derive(Debug)]
pub struct Pacer {
    macs_per_frame: f64,
    shared: Arc<PacerShared>,
    /// The frame the allowance below was decided for (views of one frame share it).
    frame: Option<u64>,
    allowance: bool,
    /// Views that asked for a budget in the current and the previous frame: they split it.
    views_this_frame: u32,
    views_last_frame: u32,
    /// The share of [`Pacer::TARGET_SECS`] the work in flight was sized for.
    share_in_flight: f64,
    /// Numbers the completion callbacks: only the newest one's counts (it covers every submission
    /// before it), and one arriving after a give-up is ignored.
    ticket: u64,
    poller_started: bool,
}

#[derive(Debug, Default)]
struct PacerShared {
    state: Mutex<PacerState>,
    /// Wakes the poller when work is submitted.
    submitted: std::sync::Condvar,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum PacerState {
    #[default]
    Idle,
    /// Work of `frame` was submitted at `since`; callback `ticket` reports its completion.
    InFlight { frame: u64, since: Instant, ticket: u64 },
    /// The work completed this many seconds after it was submitted; not judged yet.
    Completed { secs: f64 },
}

impl Default for Pacer {
    fn default() -> Self {
        Self {
            macs_per_frame: 2e7,
            shared: Arc::default(),
            frame: None,
            allowance: false,
            views_this_frame: 0,
            views_last_frame: 1,
            share_in_flight: 1.0,
            ticket: 0,
            poller_started: false,
        }
    }
}

impl Pacer {
    /// GPU time aimed at per frame of evaluation work for a resting view (a share scales it).
    pub const TARGET_SECS: f64 = 0.12;
    const MIN_MACS: f64 = 1e6;
    const MAX_MACS: f64 = 1e13;
    /// A completion that takes longer than this is assumed to have happened (e.g. a lost device).
    const GIVE_UP_SECS: f64 = 10.0;
    /// The budget grows by at most this factor per dispatch, and shrinks by at most 4×, toward
    /// the size that takes [`Self::TARGET_SECS`] (the warm-up measures the throughput once, maybe
    /// while the CPU was busy with training; this follows what the adapter really has now).
    const ADAPT: f64 = 1.25;
    /// How often the poller checks the device while work is in flight.
    const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(2);

    /// Sets the per-frame budget from the adapter's throughput in multiply-adds per second.
    pub fn set_throughput(&mut self, macs_per_sec: f64) {
        if macs_per_sec.is_finite() && macs_per_sec > 0.0 {
            self.macs_per_frame = (macs_per_sec * Self::TARGET_SECS).clamp(Self::MIN_MACS, Self::MAX_MACS);
        }
    }

    pub fn macs_per_frame(&self) -> f64 {
        self.macs_per_frame
    }

    /// The factor the budget is scaled by after a dispatch that took `secs` from submission to
    /// completion: toward [`Self::TARGET_SECS`], by at most ×1.25 up and ×¼ down.
    pub fn adapt_factor(secs: f64) -> f64 {
        if secs.is_finite() && secs > 0.0 { (Self::TARGET_SECS / secs).clamp(0.25, Self::ADAPT) } else { Self::ADAPT }
    }

    fn lock(shared: &PacerShared) -> std::sync::MutexGuard<'_, PacerState> {
        shared.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Pixels a view costing `macs_per_pixel` may evaluate in `frame`, or `None` while earlier
    /// work is still running. The views of a frame split the budget; `share` (0–1] scales it
    /// (the first view of a frame decides it), e.g. to leave the machine to a training job.
    pub fn budget_pixels(&mut self, frame: u64, macs_per_pixel: usize, share: f64) -> Option<u64> {
        if self.frame != Some(frame) {
            self.frame = Some(frame);
            self.views_last_frame = self.views_this_frame.max(1);
            self.views_this_frame = 0;
            self.allowance = self.begin_frame(frame);
            if self.allowance {
                self.share_in_flight = if share.is_finite() { share.clamp(0.01, 1.0) } else { 1.0 };
            }
        }
        self.views_this_frame += 1;
        let share = self.macs_per_frame * self.share_in_flight / f64::from(self.views_last_frame);
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        self.allowance.then(|| ((share / macs_per_pixel.max(1) as f64) as u64).max(64))
    }

    fn begin_frame(&mut self, frame: u64) -> bool {
        let mut state = Self::lock(&self.shared);
        match *state {
            PacerState::Idle => true,
            PacerState::Completed { secs } => {
                *state = PacerState::Idle;
                // Judged as the time a full-share dispatch would have taken.
                let factor = Self::adapt_factor(secs / self.share_in_flight);
                self.macs_per_frame = (self.macs_per_frame * factor).clamp(Self::MIN_MACS, Self::MAX_MACS);
                true
            }
            // More views of the frame that submitted.
            PacerState::InFlight { frame: submitted, .. } if submitted == frame => true,
            PacerState::InFlight { since, .. } => {
                if since.elapsed().as_secs_f64() > Self::GIVE_UP_SECS {
                    *state = PacerState::Idle;
                    self.macs_per_frame = (self.macs_per_frame * 0.25).max(Self::MIN_MACS);
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Records that a view submitted its work for `frame` (on its own, right after encoding it):
    /// the budget for the next frame waits for it and adapts to how long it took.
    pub fn note_submitted(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, frame: u64) {
        self.ticket += 1;
        let ticket = self.ticket;
        {
            let mut state = Self::lock(&self.shared);
            let since = match *state {
                PacerState::InFlight { frame: submitted, since, .. } if submitted == frame => since,
                _ => Instant::now(),
            };
            *state = PacerState::InFlight { frame, since, ticket };
        }
        let shared = Arc::clone(&self.shared);
        queue.on_submitted_work_done(move || {
            let mut state = Self::lock(&shared);
            if let PacerState::InFlight { since, ticket: waiting, .. } = *state
                && waiting == ticket
            {
                *state = PacerState::Completed { secs: since.elapsed().as_secs_f64() };
            }
        });
        if !self.poller_started {
            self.poller_started = true;
            Self::start_poller(device.clone(), Arc::downgrade(&self.shared));
        }
        self.shared.submitted.notify_all();
    }

    /// Polls the device every few milliseconds while work is in flight, so that completion
    /// callbacks run when the work ends rather than at the next frame. Ends with the pacer.
    fn start_poller(device: wgpu::Device, shared: std::sync::Weak<PacerShared>) {
        let spawned = std::thread::Builder::new().name("gpu-pacer".into()).spawn(move || {
            while let Some(shared) = shared.upgrade() {
                let in_flight = {
                    let state = Self::lock(&shared);
                    if matches!(*state, PacerState::InFlight { .. }) {
                        true
                    } else {
                        // Wakes on the next submission, or soon enough to notice the pacer is gone.
                        let timeout = std::time::Duration::from_millis(500);
                        let (state, _) = shared
                            .submitted
                            .wait_timeout(state, timeout)
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        matches!(*state, PacerState::InFlight { .. })
                    }
                };
                drop(shared);
                if in_flight {
                    let _ = device.poll(wgpu::PollType::Poll);
                    std::thread::sleep(Self::POLL_INTERVAL);
                }
            }
        });
        if let Err(err) = spawned {
            // Without the poller, completions are heard when the next frame polls.
            eprintln!("GPU pacing: could not start its polling thread ({err}); views may refine slowly");
        }
    }
}
