//! One training loop for every trainer in the crate (the INR fit, the NeRF and the lift, the INSP
//! operator): cancel and pause between steps, throttled progress, snapshots at an interval, the
//! history and the summary's counts. A trainer supplies its step through [`Steps`], so a new loss
//! or model reuses the loop instead of forking it.

use std::sync::Arc;
use std::time::Instant;

use crate::control::{Metrics, RunControl, RunEvent, Throttle};

/// Seconds between progress events.
const PROGRESS_INTERVAL_SECS: f64 = 0.1;

/// What varies between trainers: the step, what it reports, and its snapshot.
pub trait Steps {
    /// One step's record, kept in the history.
    type Record: Copy;
    type Snapshot: Clone;
    type Error;

    /// Runs step `step` (counted from 1).
    fn step(&mut self, step: u64) -> Result<Self::Record, Self::Error>;
    /// Stamps `record` with the time since the loop started, for trainers whose records keep it.
    fn stamp(&self, _record: &mut Self::Record, _elapsed_secs: f64) {}
    /// The metrics a progress event reports after `record` (only computed when one is sent).
    fn metrics(&self, record: &Self::Record) -> Metrics;
    /// The state to show or keep after `step` steps.
    fn snapshot(&mut self, step: u64) -> Result<Self::Snapshot, Self::Error>;
}

/// How long to train and how often to hand out snapshots (0 or less: no snapshot events at all,
/// the final state only in the result).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub steps: u64,
    pub snapshot_interval_secs: f64,
}

/// What the loop did.
#[derive(Clone, Debug)]
pub struct Trained<R, S> {
    pub history: Vec<R>,
    pub steps_done: u64,
    pub cancelled: bool,
    pub seconds: f64,
    /// The snapshot after the last step done.
    pub snapshot: S,
}

impl<R, S> Trained<R, S> {
    /// Milliseconds per step done (0 when none was).
    pub fn ms_per_step(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        if self.steps_done == 0 { 0.0 } else { 1e3 * self.seconds / self.steps_done as f64 }
    }
}

/// Runs `trainer` for `schedule.steps` steps or until `control` cancels. Sends `Started`, a
/// `Progress` at most every 0.1 s and at the last step, a `Snapshot` once per interval and at the
/// end (when the interval is positive); the first snapshot comes after one interval, not at step 0.
pub fn train<T: Steps>(
    trainer: &mut T,
    schedule: Schedule,
    control: &RunControl,
    on_event: &mut dyn FnMut(RunEvent<T::Snapshot>),
) -> Result<Trained<T::Record, T::Snapshot>, T::Error> {
    let Schedule { steps, snapshot_interval_secs } = schedule;
    let snapshots = snapshot_interval_secs > 0.0;
    on_event(RunEvent::Started { total_steps: steps });
    let start = Instant::now();
    let mut progress = Throttle::new(PROGRESS_INTERVAL_SECS);
    let mut snapshot_due = Throttle::new(snapshot_interval_secs);
    snapshot_due.ready();
    let mut history = Vec::with_capacity(usize::try_from(steps).unwrap_or(0).min(1 << 20));
    let mut steps_done = 0;
    let mut cancelled = false;
    for step in 1..=steps {
        if !control.checkpoint() {
            cancelled = true;
            break;
        }
        let mut record = trainer.step(step)?;
        steps_done = step;
        let elapsed_secs = start.elapsed().as_secs_f64();
        trainer.stamp(&mut record, elapsed_secs);
        history.push(record);
        if progress.ready() || step == steps {
            on_event(RunEvent::Progress { step, metrics: trainer.metrics(&record), elapsed_secs });
        }
        if snapshots && snapshot_due.ready() {
            on_event(RunEvent::Snapshot(Arc::new(trainer.snapshot(step)?)));
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let snapshot = trainer.snapshot(steps_done)?;
    if snapshots {
        on_event(RunEvent::Snapshot(Arc::new(snapshot.clone())));
    }
    Ok(Trained { history, steps_done, cancelled, seconds, snapshot })
}
