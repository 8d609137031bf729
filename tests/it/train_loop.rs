//! The shared training loop with a toy trainer whose every step is known: the step count, the
//! history, the order of events, snapshots on and off, cancellation and errors.

use sparsefield::compute::control::{Metrics, RunControl, RunEvent};
use sparsefield::compute::train_loop::{Schedule, Steps, train};

/// Halves `x` each step; the record is (step, x); a snapshot is x; fails at `fail_at`.
struct Halving {
    x: f64,
    fail_at: Option<u64>,
    /// Cancel this control after this step.
    cancel_after: Option<(u64, std::sync::Arc<RunControl>)>,
}

impl Steps for Halving {
    type Record = (u64, f64);
    type Snapshot = f64;
    type Error = String;

    fn step(&mut self, step: u64) -> Result<(u64, f64), String> {
        if self.fail_at == Some(step) {
            return Err(format!("failed at {step}"));
        }
        self.x /= 2.0;
        if let Some((after, control)) = &self.cancel_after
            && *after == step
        {
            control.cancel();
        }
        Ok((step, self.x))
    }

    fn metrics(&self, record: &(u64, f64)) -> Metrics {
        vec![("x", record.1)]
    }

    fn snapshot(&mut self, _step: u64) -> Result<f64, String> {
        Ok(self.x)
    }
}

fn events_of(
    trainer: &mut Halving,
    schedule: Schedule,
    control: &RunControl,
) -> (Vec<RunEvent<f64>>, Result<u64, String>) {
    let mut events = Vec::new();
    let result = train(trainer, schedule, control, &mut |event| events.push(event)).map(|t| {
        assert_eq!(t.history.len() as u64, t.steps_done);
        assert!(t.history.iter().enumerate().all(|(i, r)| r.0 == i as u64 + 1), "the history has every step in order");
        assert_eq!(t.snapshot, 64.0 / f64::powi(2.0, t.steps_done as i32), "the result's snapshot is the last state");
        t.steps_done
    });
    (events, result)
}

#[test]
fn every_step_runs_and_the_last_one_is_reported() {
    let mut trainer = Halving { x: 64.0, fail_at: None, cancel_after: None };
    let schedule = Schedule { steps: 6, snapshot_interval_secs: 0.0 };
    let (events, done) = events_of(&mut trainer, schedule, &RunControl::new());
    assert_eq!(done, Ok(6));
    assert!(matches!(events.first(), Some(RunEvent::Started { total_steps: 6 })));
    // Progress is throttled, but the first and the last step are always reported.
    match events.last() {
        Some(RunEvent::Progress { step: 6, metrics, .. }) => assert_eq!(metrics, &vec![("x", 1.0)]),
        other => panic!("the last event is the last step's progress, not {other:?}"),
    }
    assert!(matches!(events.get(1), Some(RunEvent::Progress { step: 1, .. })));
    assert!(!events.iter().any(|e| matches!(e, RunEvent::Snapshot(_))), "no snapshots with an interval of 0");
}

#[test]
fn with_an_interval_the_final_state_is_sent_as_a_snapshot() {
    let mut trainer = Halving { x: 64.0, fail_at: None, cancel_after: None };
    // An interval longer than the run: no snapshot on the way, one at the end.
    let schedule = Schedule { steps: 3, snapshot_interval_secs: 3600.0 };
    let (events, done) = events_of(&mut trainer, schedule, &RunControl::new());
    assert_eq!(done, Ok(3));
    let snapshots: Vec<f64> =
        events.iter().filter_map(|e| if let RunEvent::Snapshot(s) = e { Some(**s) } else { None }).collect();
    assert_eq!(snapshots, vec![8.0]);
}

#[test]
fn cancelling_stops_between_steps_and_keeps_what_was_reached() {
    let control = std::sync::Arc::new(RunControl::new());
    let mut trainer = Halving { x: 64.0, fail_at: None, cancel_after: Some((2, std::sync::Arc::clone(&control))) };
    let mut events = Vec::new();
    let trained = train(&mut trainer, Schedule { steps: 100, snapshot_interval_secs: 0.0 }, &control, &mut |e| {
        events.push(e);
    })
    .unwrap();
    assert!(trained.cancelled);
    assert_eq!(trained.steps_done, 2);
    assert_eq!(trained.snapshot, 16.0);
    assert!(trained.ms_per_step() >= 0.0);
}

#[test]
fn a_failing_step_ends_the_run_with_its_error() {
    let mut trainer = Halving { x: 64.0, fail_at: Some(4), cancel_after: None };
    let (_, done) = events_of(&mut trainer, Schedule { steps: 10, snapshot_interval_secs: 0.0 }, &RunControl::new());
    assert_eq!(done, Err("failed at 4".to_owned()));
}
