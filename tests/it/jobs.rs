//! Background jobs: finishing, cancelling, pausing, failing, floods of progress, dropping.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sparsefield::jobs::{Job, JobUpdate, RunEvent, Waker};

fn waker() -> (Waker, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    (
        Arc::new(move || {
            c.fetch_add(1, Ordering::Relaxed);
        }),
        count,
    )
}

/// Polls until the job finishes (or 20 s pass), returning every update.
fn collect<S, R>(job: &mut Job<S, R>) -> Vec<JobUpdate<S, R>>
where
    S: Send + Sync + 'static,
    R: Send + 'static,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut updates = Vec::new();
    while !job.is_finished() {
        assert!(Instant::now() < deadline, "job did not finish in time");
        updates.extend(job.poll());
        std::thread::sleep(Duration::from_millis(1));
    }
    updates
}

fn finished<S, R: Clone>(updates: &[JobUpdate<S, R>]) -> Vec<Result<R, String>> {
    updates
        .iter()
        .filter_map(|u| match u {
            JobUpdate::Finished(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_job_that_finishes_reports_progress_snapshots_and_one_result() {
    let (waker, wakes) = waker();
    let mut job = Job::spawn("count", waker, |control, sink| {
        sink.send(RunEvent::Started { total_steps: 5 });
        for step in 1..=5 {
            assert!(control.checkpoint());
            sink.send(RunEvent::Progress { step, metrics: vec![("x", step as f64)], elapsed_secs: 0.0 });
        }
        sink.send(RunEvent::Snapshot(Arc::new(42_u32)));
        Ok(5_u64)
    })
    .unwrap();
    let updates = collect(&mut job);
    assert_eq!(finished(&updates), vec![Ok(5)]);
    assert!(matches!(updates.last(), Some(JobUpdate::Finished(Ok(5)))), "Finished comes last");
    assert!(matches!(updates.first(), Some(JobUpdate::Started { total_steps: 5 })));
    assert!(updates.iter().any(|u| matches!(u, JobUpdate::Snapshot(s) if **s == 42)));
    assert_eq!(job.status().step, 5);
    assert_eq!(job.status().metric("x"), Some(5.0));
    assert!((job.status().fraction() - 1.0).abs() < 1e-6);
    assert!(wakes.load(Ordering::Relaxed) >= 2, "the waker is called for events and the result");
    assert!(job.poll().is_empty(), "nothing after Finished");
}

#[test]
fn a_job_runs_on_a_named_thread() {
    let (waker, _) = waker();
    let mut job = Job::<(), String>::spawn("naming", waker, |_, _| {
        Ok(std::thread::current().name().unwrap_or_default().to_owned())
    })
    .unwrap();
    let name = finished(&collect(&mut job)).remove(0).unwrap();
    assert!(name.starts_with("sf-naming-"), "{name}");
}

#[test]
fn a_cancelled_job_stops_midway_and_returns_normally() {
    let (waker, _) = waker();
    let mut job = Job::<(), u64>::spawn("endless", waker, |control, sink| {
        let mut step = 0;
        while control.checkpoint() {
            step += 1;
            sink.send(RunEvent::Progress { step, metrics: Vec::new(), elapsed_secs: 0.0 });
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(step)
    })
    .unwrap();
    while job.status().step < 3 {
        job.poll();
        std::thread::sleep(Duration::from_millis(1));
    }
    job.cancel();
    let results = finished(&collect(&mut job));
    let steps = results[0].clone().unwrap();
    assert!(steps >= 3, "stopped after {steps} steps");
    assert!(job.is_cancelled());
}

#[test]
fn a_paused_job_makes_no_progress_until_resumed() {
    let (waker, _) = waker();
    let counter = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&counter);
    let mut job = Job::<(), usize>::spawn("pausable", waker, move |control, _| {
        for _ in 0..200 {
            if !control.checkpoint() {
                break;
            }
            c.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(c.load(Ordering::SeqCst))
    })
    .unwrap();
    while counter.load(Ordering::SeqCst) < 5 {
        std::thread::sleep(Duration::from_millis(1));
    }
    job.set_paused(true);
    assert!(job.status().paused);
    std::thread::sleep(Duration::from_millis(20)); // let the worker reach its checkpoint
    let at_pause = counter.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(counter.load(Ordering::SeqCst), at_pause, "a paused job must not advance");
    assert!(!job.is_finished());
    job.set_paused(false);
    assert_eq!(finished(&collect(&mut job)), vec![Ok(200)]);
}

#[test]
fn cancelling_a_paused_job_wakes_it() {
    let (waker, _) = waker();
    let mut job = Job::<(), &'static str>::spawn("paused-then-cancelled", waker, |control, _| {
        while control.checkpoint() {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok("stopped")
    })
    .unwrap();
    job.set_paused(true);
    std::thread::sleep(Duration::from_millis(10));
    job.cancel();
    assert_eq!(finished(&collect(&mut job)), vec![Ok("stopped")]);
}

#[test]
fn a_failing_job_reports_its_error_once() {
    let (waker, _) = waker();
    let mut job = Job::<(), ()>::spawn("failing", waker, |_, _| Err("the data set is empty".into())).unwrap();
    let updates = collect(&mut job);
    assert_eq!(finished(&updates), vec![Err("the data set is empty".to_owned())]);
    assert!(job.poll().is_empty());
}

#[test]
fn a_panicking_job_becomes_an_error() {
    let (waker, _) = waker();
    let mut job = Job::<(), ()>::spawn("panicking", waker, |_, _| panic!("index out of range")).unwrap();
    let results = finished(&collect(&mut job));
    let err = results[0].clone().unwrap_err();
    assert!(err.contains("crashed") && err.contains("index out of range"), "{err}");
}

#[test]
fn a_flood_of_progress_never_blocks_the_worker() {
    let (waker, _) = waker();
    let events = 200_000;
    let done = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&done);
    // Nobody polls while the worker runs: a blocking send would hang at the channel's capacity.
    let mut job = Job::<(), u64>::spawn("flood", waker, move |_, sink| {
        for step in 0..events {
            sink.send(RunEvent::Progress { step, metrics: Vec::new(), elapsed_secs: 0.0 });
        }
        d.store(1, Ordering::SeqCst);
        Ok(sink.num_dropped())
    })
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while done.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the worker blocked on a full channel");
        std::thread::sleep(Duration::from_millis(5));
    }
    let updates = collect(&mut job);
    let dropped = finished(&updates)[0].clone().unwrap();
    assert!(dropped > 0, "progress beyond the channel's capacity must be dropped");
    assert!(updates.len() < 1000, "the channel is bounded: {} updates", updates.len());
}

#[test]
fn dropping_a_job_cancels_and_joins_it() {
    let (waker, _) = waker();
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&stopped);
    let job = Job::<(), ()>::spawn("dropped", waker, move |control, _| {
        while control.checkpoint() {
            std::thread::sleep(Duration::from_millis(1));
        }
        s.store(1, Ordering::SeqCst);
        Ok(())
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    drop(job);
    assert_eq!(stopped.load(Ordering::SeqCst), 1, "drop returns only after the worker stopped");
}
