//! Progressive refinement of an expensive per-pixel view: render a coarse grid first, then finer
//! ones, a few rows per frame within a budget, restarting whenever what is shown changes.
//!
//! On a real GPU the budget covers the full-resolution grid and a view is done in one frame; on a
//! software adapter a 256-wide SIREN costs ~130k multiply-adds per pixel, so the view sharpens over
//! a few frames instead of freezing the UI.

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
}

impl Progressive {
    /// Plans this frame's work for content `key` at full grid `full`, within `budget_pixels`
    /// evaluations. A new key or size restarts at the finest level that fits the budget whole (so a
    /// fast GPU goes straight to full resolution), else at the coarsest. Returns `None` when nothing is left.
    pub fn plan(&mut self, key: u64, full: (u32, u32), budget_pixels: u64) -> Option<WorkItem> {
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
            return None;
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

/// Adapts the per-frame evaluation budget to keep frames near a target time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameBudget {
    /// Multiply-adds per frame.
    pub macs: f64,
}

impl Default for FrameBudget {
    fn default() -> Self {
        Self { macs: 4e7 }
    }
}

impl FrameBudget {
    const MIN_MACS: f64 = 1e6;
    const MAX_MACS: f64 = 1e13;

    /// Unlimited: everything in one frame (tests, exports).
    pub fn unlimited() -> Self {
        Self { macs: f64::INFINITY }
    }

    /// Feeds the last frame's duration: shrink when slow, grow when fast.
    pub fn update(&mut self, frame_secs: f32) {
        if !self.macs.is_finite() {
            return;
        }
        if frame_secs > 1.0 / 20.0 {
            self.macs *= 0.7;
        } else if frame_secs < 1.0 / 45.0 {
            self.macs *= 1.3;
        }
        self.macs = self.macs.clamp(Self::MIN_MACS, Self::MAX_MACS);
    }

    /// Pixels per frame for a view costing `macs_per_pixel`.
    pub fn pixels(&self, macs_per_pixel: usize) -> u64 {
        if !self.macs.is_finite() {
            return u64::MAX;
        }
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let pixels = (self.macs / macs_per_pixel.max(1) as f64) as u64;
        pixels.max(64)
    }
}
