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
/// presenting a frame blocks for seconds. Two rules avoid that: each frame's work is sized from
/// the adapter's measured throughput (see `warm_up_shaders`) to take about
/// [`Pacer::TARGET_SECS`], and no new work is submitted before the last has completed (reported
/// by `Queue::on_submitted_work_done`).
#[derive(Debug)]
pub struct Pacer {
    macs_per_frame: f64,
    state: Arc<Mutex<PacerState>>,
    /// The frame the allowance below was decided for (views of one frame share it).
    frame: Option<u64>,
    allowance: bool,
    /// Views that asked for a budget in the current and the previous frame: they split it.
    views_this_frame: u32,
    views_last_frame: u32,
    /// Numbers the completion callbacks, so that one arriving after a give-up is ignored.
    ticket: u64,
    /// The last dispatch has not yet been judged as keeping up or falling behind.
    judge_pending: bool,
    /// Seconds the last judged dispatch took from encoding to completion, set by its callback.
    measured: Arc<Mutex<Option<f64>>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum PacerState {
    Idle,
    /// Work was encoded in `frame`; it is submitted when that frame is.
    Submitted {
        frame: u64,
        at: Instant,
    },
    /// Waiting for the completion callback with this ticket.
    Waiting {
        since: Instant,
        ticket: u64,
    },
}

impl Default for Pacer {
    fn default() -> Self {
        Self {
            macs_per_frame: 2e7,
            state: Arc::new(Mutex::new(PacerState::Idle)),
            frame: None,
            allowance: false,
            views_this_frame: 0,
            views_last_frame: 1,
            ticket: 0,
            judge_pending: false,
            measured: Arc::default(),
        }
    }
}

impl Pacer {
    /// GPU time aimed at per frame of evaluation work.
    pub const TARGET_SECS: f64 = 0.06;
    const MIN_MACS: f64 = 1e6;
    const MAX_MACS: f64 = 1e13;
    /// A completion that takes longer than this is assumed to have happened (e.g. a lost device).
    const GIVE_UP_SECS: f64 = 10.0;
    /// The budget grows by this factor after work that finished within a frame, and shrinks by
    /// its inverse after work that did not, so that it follows the throughput the adapter really
    /// has now (the warm-up measures it once, maybe while the CPU was busy with training).
    const ADAPT: f64 = 1.25;

    /// Sets the per-frame budget from the adapter's throughput in multiply-adds per second.
    pub fn set_throughput(&mut self, macs_per_sec: f64) {
        if macs_per_sec.is_finite() && macs_per_sec > 0.0 {
            self.macs_per_frame = (macs_per_sec * Self::TARGET_SECS).clamp(Self::MIN_MACS, Self::MAX_MACS);
        }
    }

    pub fn macs_per_frame(&self) -> f64 {
        self.macs_per_frame
    }

    fn lock(state: &Mutex<PacerState>) -> std::sync::MutexGuard<'_, PacerState> {
        state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Pixels a view costing `macs_per_pixel` may evaluate in `frame`, or `None` while earlier
    /// work is still running. The views of a frame share the budget.
    pub fn budget_pixels(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        frame: u64,
        macs_per_pixel: usize,
    ) -> Option<u64> {
        if self.frame != Some(frame) {
            self.frame = Some(frame);
            self.views_last_frame = self.views_this_frame.max(1);
            self.views_this_frame = 0;
            self.allowance = self.begin_frame(device, queue, frame);
        }
        self.views_this_frame += 1;
        let share = self.macs_per_frame / f64::from(self.views_last_frame);
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        self.allowance.then(|| ((share / macs_per_pixel.max(1) as f64) as u64).max(64))
    }

    fn begin_frame(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, frame: u64) -> bool {
        let current = *Self::lock(&self.state);
        match current {
            PacerState::Idle => {
                self.judge(true);
                true
            }
            PacerState::Submitted { frame: submitted, at } if submitted < frame => {
                // That frame has been submitted since: hear when its work completes.
                self.ticket += 1;
                let ticket = self.ticket;
                *Self::lock(&self.state) = PacerState::Waiting { since: Instant::now(), ticket };
                let shared = Arc::clone(&self.state);
                let measured = Arc::clone(&self.measured);
                queue.on_submitted_work_done(move || {
                    let mut state = Self::lock(&shared);
                    if matches!(*state, PacerState::Waiting { ticket: waiting, .. } if waiting == ticket) {
                        *state = PacerState::Idle;
                        *measured.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                            Some(at.elapsed().as_secs_f64());
                    }
                });
                self.judge_pending = true;
                false
            }
            PacerState::Submitted { .. } => true,
            PacerState::Waiting { since, .. } => {
                // Lets wgpu deliver the callback even if nothing else polls the device.
                let _ = device.poll(wgpu::PollType::Poll);
                let idle = {
                    let mut state = Self::lock(&self.state);
                    if *state != PacerState::Idle && since.elapsed().as_secs_f64() > Self::GIVE_UP_SECS {
                        *state = PacerState::Idle;
                    }
                    *state == PacerState::Idle
                };
                self.judge(idle);
                idle
            }
        }
    }

    /// Adapts the budget once per dispatch. With the dispatch's measured time (encoding to
    /// completion) it moves toward [`Self::TARGET_SECS`]: a frame that waits for the GPU (as
    /// presenting does on a software adapter) always sees the work finished, so "finished by the
    /// next frame" alone would grow the budget while frames slow down. Without a measurement:
    /// up when the work finished within a frame, else down.
    fn judge(&mut self, finished: bool) {
        if std::mem::take(&mut self.judge_pending) {
            let measured = self.measured.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            let factor = match measured {
                Some(secs) if finished && secs > 0.0 => (Self::TARGET_SECS / secs).clamp(0.25, Self::ADAPT),
                _ if finished => Self::ADAPT,
                _ => 1.0 / Self::ADAPT,
            };
            self.macs_per_frame = (self.macs_per_frame * factor).clamp(Self::MIN_MACS, Self::MAX_MACS);
        }
    }

    /// Records that work was encoded in `frame`.
    pub fn note_dispatch(&mut self, frame: u64) {
        let mut state = Self::lock(&self.state);
        if matches!(*state, PacerState::Idle) {
            *state = PacerState::Submitted { frame, at: Instant::now() };
        }
    }
}
