//! Runs compute work on named background threads: progress, snapshots, pause, cancel, results.
//!
//! A job's worker calls a plain compute function with a [`RunControl`] and an event sink. Progress
//! and snapshots go through a bounded channel and are dropped (not waited for) when it is full, so
//! a flood of events never blocks the worker; the final result goes through a one-slot mailbox and
//! is never dropped. Dropping a [`Job`] cancels it and joins its thread.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

pub use crate::compute::control::{Metrics, RunControl, RunEvent};

/// Events a job may have waiting before new progress is dropped.
const CHANNEL_CAPACITY: usize = 64;

/// The niceness background threads give themselves (0: the same priority as the caller).
static BACKGROUND_NICE: AtomicI32 = AtomicI32::new(0);

/// Makes jobs and compute threads started from now on run at niceness `nice` (Linux; 0 leaves
/// them as they are). The app sets it so that on a machine with few cores the window's thread
/// gets the CPU first whenever it needs it and training takes what is left; the command line
/// leaves it, so headless runs keep their full priority.
pub fn set_background_priority(nice: i32) {
    BACKGROUND_NICE.store(nice.clamp(0, 19), Ordering::Relaxed);
}

/// Lowers the calling thread to the background priority (see [`set_background_priority`]).
pub fn lower_this_thread_priority() {
    let nice = BACKGROUND_NICE.load(Ordering::Relaxed);
    #[cfg(target_os = "linux")]
    if nice > 0 {
        // On Linux a thread is a task of its own: this changes the calling thread only.
        let _ = rustix::process::setpriority_process(None, nice);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// The message of a job that ended because it was cancelled.
pub const CANCELLED: &str = "cancelled";

/// A compute entry point's outcome as a job's result: `Ok(None)` (it was cancelled) becomes the
/// error [`CANCELLED`], which labs show as a cancellation rather than a failure.
pub fn cancelled_as_error<R, E: std::fmt::Display>(outcome: Result<Option<R>, E>) -> Result<R, String> {
    match outcome {
        Ok(Some(result)) => Ok(result),
        Ok(None) => Err(CANCELLED.to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Identifies a job within one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

static NEXT_JOB_ID: AtomicU64 = AtomicU64::new(1);

/// Called (from the worker thread) whenever something new is waiting; the app passes a closure
/// that requests a repaint.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// What [`Job::poll`] hands out, in order.
#[derive(Debug)]
pub enum JobUpdate<S, R> {
    Started {
        total_steps: u64,
    },
    Progress {
        step: u64,
        metrics: Metrics,
        elapsed_secs: f64,
    },
    Snapshot(Arc<S>),
    /// The worker's result, delivered exactly once. A panic in the worker arrives as an error.
    Finished(Result<R, String>),
}

/// The progress of a job as last reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobStatus {
    pub total_steps: u64,
    pub step: u64,
    pub metrics: Metrics,
    pub elapsed_secs: f64,
    pub paused: bool,
    pub finished: bool,
}

impl JobStatus {
    /// Fraction done in [0, 1] (0 before the worker said how many steps it has).
    pub fn fraction(&self) -> f32 {
        if self.total_steps == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let fraction = self.step as f32 / self.total_steps as f32;
        fraction.clamp(0.0, 1.0)
    }

    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

type ResultSlot<R> = Arc<Mutex<Option<Result<R, String>>>>;

/// A running (or finished) background job. `S` is the snapshot type, `R` the result.
pub struct Job<S, R> {
    id: JobId,
    name: String,
    control: Arc<RunControl>,
    events: Receiver<RunEvent<S>>,
    result: ResultSlot<R>,
    status: JobStatus,
    thread: Option<JoinHandle<()>>,
}

/// The worker's view: where to send events.
pub struct EventSink<S> {
    sender: SyncSender<RunEvent<S>>,
    waker: Waker,
    dropped: u64,
}

impl<S> EventSink<S> {
    /// Sends without ever waiting: when the channel is full the event is dropped (the receiver
    /// is behind; later progress and snapshots supersede it, and the result never goes this way).
    pub fn send(&mut self, event: RunEvent<S>) {
        let sent = match self.sender.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        };
        if sent {
            (self.waker)();
        }
    }

    /// How many events were dropped because the receiver was behind.
    pub fn num_dropped(&self) -> u64 {
        self.dropped
    }
}

impl<S: Send + Sync + 'static, R: Send + 'static> Job<S, R> {
    /// Starts `work` on a thread named `sf-<name>-<id>`.
    ///
    /// `work` receives the control (check `checkpoint()` between steps) and the event sink, and
    /// returns the result. Cancellation should return `Ok` with what was reached.
    pub fn spawn<F>(name: &str, waker: Waker, work: F) -> std::io::Result<Self>
    where
        F: FnOnce(&RunControl, &mut EventSink<S>) -> Result<R, String> + Send + 'static,
    {
        let id = JobId(NEXT_JOB_ID.fetch_add(1, Ordering::Relaxed));
        let control = Arc::new(RunControl::new());
        let (sender, events) = sync_channel(CHANNEL_CAPACITY);
        let result: ResultSlot<R> = Arc::new(Mutex::new(None));
        let thread = {
            let control = Arc::clone(&control);
            let result = Arc::clone(&result);
            std::thread::Builder::new().name(format!("sf-{name}-{}", id.0)).spawn(move || {
                lower_this_thread_priority();
                let mut sink = EventSink { sender, waker: Arc::clone(&waker), dropped: 0 };
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&control, &mut sink)))
                    .unwrap_or_else(|panic| Err(format!("the job crashed: {}", panic_message(&panic))));
                *result.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
                drop(sink);
                waker();
            })?
        };
        Ok(Self {
            id,
            name: name.to_owned(),
            control,
            events,
            result,
            status: JobStatus::default(),
            thread: Some(thread),
        })
    }

    pub fn id(&self) -> JobId {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn status(&self) -> &JobStatus {
        &self.status
    }

    pub fn is_finished(&self) -> bool {
        self.status.finished
    }

    pub fn cancel(&self) {
        self.control.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.control.is_cancelled()
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.control.set_paused(paused);
        self.status.paused = paused;
    }

    /// Everything that arrived since the last call, in order; `Finished` comes last and only once.
    pub fn poll(&mut self) -> Vec<JobUpdate<S, R>> {
        let mut updates = Vec::new();
        if self.status.finished {
            return updates;
        }
        self.drain_into(&mut updates);
        let finished = self.result.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(outcome) = finished {
            // Events sent just before the result was stored may have arrived after the first drain.
            self.drain_into(&mut updates);
            self.status.finished = true;
            self.status.paused = false;
            if let Some(thread) = self.thread.take() {
                // The worker has stored its result; it is exiting now.
                let _ = thread.join();
            }
            updates.push(JobUpdate::Finished(outcome));
        }
        updates
    }

    fn drain_into(&mut self, updates: &mut Vec<JobUpdate<S, R>>) {
        loop {
            match self.events.try_recv() {
                Ok(RunEvent::Started { total_steps }) => {
                    self.status.total_steps = total_steps;
                    updates.push(JobUpdate::Started { total_steps });
                }
                Ok(RunEvent::Progress { step, metrics, elapsed_secs }) => {
                    self.status.step = step;
                    self.status.metrics.clone_from(&metrics);
                    self.status.elapsed_secs = elapsed_secs;
                    updates.push(JobUpdate::Progress { step, metrics, elapsed_secs });
                }
                Ok(RunEvent::Snapshot(snapshot)) => updates.push(JobUpdate::Snapshot(snapshot)),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
    }

    /// Waits for the job to end and returns its result (for the CLI and tests), passing every
    /// update to `on_update` on the way.
    pub fn wait(mut self, mut on_update: impl FnMut(&JobUpdate<S, R>)) -> Result<R, String> {
        loop {
            for update in self.poll() {
                on_update(&update);
                if let JobUpdate::Finished(outcome) = update {
                    return outcome;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

impl<S, R> Drop for Job<S, R> {
    fn drop(&mut self) {
        self.control.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// The operations the job bar applies to any job, whatever its event and result types.
pub trait JobControl {
    fn id(&self) -> JobId;
    fn cancel(&mut self);
    fn set_paused(&mut self, paused: bool);
}

impl<S: Send + Sync + 'static, R: Send + 'static> JobControl for Job<S, R> {
    fn id(&self) -> JobId {
        Job::id(self)
    }

    fn cancel(&mut self) {
        Job::cancel(self);
    }

    fn set_paused(&mut self, paused: bool) {
        Job::set_paused(self, paused);
    }
}
