//! Run control (cancel, pause) and the progress events every long compute function reports.
//!
//! These types live in `compute` so that compute functions stay usable without the `jobs` layer:
//! the CLI and the tests drive them directly, `jobs` runs them on background threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

/// Cancel and pause flags shared between whoever runs a computation and the computation itself.
#[derive(Debug, Default)]
pub struct RunControl {
    cancelled: AtomicBool,
    paused: Mutex<bool>,
    resumed: Condvar,
}

impl RunControl {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the computation to stop at its next checkpoint; also wakes it when paused.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let _guard = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        self.resumed.notify_all();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    pub fn set_paused(&self, paused: bool) {
        let mut guard = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        *guard = paused;
        self.resumed.notify_all();
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by a computation between steps: blocks while paused, and returns `false` when the
    /// computation should stop (it was cancelled).
    pub fn checkpoint(&self) -> bool {
        let mut guard = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        while *guard && !self.is_cancelled() {
            guard = self.resumed.wait(guard).unwrap_or_else(PoisonError::into_inner);
        }
        !self.is_cancelled()
    }
}

/// Named scalar metrics of one step, e.g. `("loss", 0.01)`, `("psnr_db", 31.2)`.
pub type Metrics = Vec<(&'static str, f64)>;

/// What a long computation reports while it runs. The final result is its return value.
#[derive(Debug, Clone)]
pub enum RunEvent<S> {
    Started {
        total_steps: u64,
    },
    Progress {
        step: u64,
        metrics: Metrics,
        elapsed_secs: f64,
    },
    /// A copy of the model's current state, safe to share with other threads.
    Snapshot(Arc<S>),
}

/// Limits how often something happens, by wall-clock time.
#[derive(Debug)]
pub struct Throttle {
    interval_secs: f64,
    last: Option<Instant>,
}

impl Throttle {
    pub fn new(interval_secs: f64) -> Self {
        Self { interval_secs, last: None }
    }

    /// True at the first call and then at most once per interval.
    pub fn ready(&mut self) -> bool {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last).as_secs_f64() < self.interval_secs => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}
