//! A background analysis that follows a lab's settings: started when the lab is shown and its
//! settings differ from those of the last start, the old run cancelled and left to wind down,
//! starts spaced while a slider moves, a failure not retried until the settings change, and a
//! cancelled run resumable. The lab supplies how to start a run from the settings and what it
//! has computed so far.

use std::time::{Duration, Instant};

use eframe::egui;

use crate::jobs::{Job, JobControl, JobId, JobUpdate};
use crate::ui::widgets::{JobRow, Level};

use crate::ui::widgets::Notes;

/// Least time between two starts while another run is still going.
const RESTART_INTERVAL: Duration = Duration::from_millis(150);
/// Most replaced runs left winding down before a new one may start.
const MAX_RETIRED: usize = 3;

pub struct LiveAnalysis<C, R> {
    job: Option<Job<R, R>>,
    /// Replaced runs still winding down (dropping a job waits for its thread).
    retired: Vec<Job<R, R>>,
    /// The settings of the run in flight or last finished.
    started: Option<C>,
    /// A run that failed is not retried until the settings change.
    failed: Option<C>,
    problem: Option<String>,
    /// The run of the current settings was cancelled before it finished.
    cancelled: bool,
    last_start: Option<Instant>,
    starts: u64,
}

impl<C, R> Default for LiveAnalysis<C, R> {
    fn default() -> Self {
        Self {
            job: None,
            retired: Vec::new(),
            started: None,
            failed: None,
            problem: None,
            cancelled: false,
            last_start: None,
            starts: 0,
        }
    }
}

impl<C: Clone + PartialEq, R: Send + Sync + 'static> LiveAnalysis<C, R> {
    pub fn is_running(&self) -> bool {
        self.job.as_ref().is_some_and(|j| !j.is_finished())
    }

    /// The settings of the run in flight or last started.
    pub fn started(&self) -> Option<&C> {
        self.started.as_ref()
    }

    /// Runs started so far.
    pub fn starts(&self) -> u64 {
        self.starts
    }

    /// The run of the current settings was cancelled and nothing runs now.
    pub fn was_cancelled(&self) -> bool {
        self.cancelled && !self.is_running()
    }

    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    pub fn progress(&self) -> Option<f32> {
        self.job.as_ref().map(|j| j.status().fraction())
    }

    /// Starts the cancelled or failed run of the current settings again.
    pub fn resume(&mut self) {
        self.started = None;
        self.failed = None;
    }

    /// Cancels the run in flight, whose results may no longer come back (its data changed).
    pub fn forget(&mut self) {
        if let Some(old) = self.job.take() {
            old.cancel();
            self.retired.push(old);
        }
        self.resume();
    }

    fn may_start(&self, ctx: &egui::Context) -> bool {
        if !self.is_running() && self.retired.is_empty() {
            return true;
        }
        let since = self.last_start.map_or(RESTART_INTERVAL, |t| t.elapsed());
        if since >= RESTART_INTERVAL && self.retired.len() < MAX_RETIRED {
            return true;
        }
        ctx.request_repaint_after(RESTART_INTERVAL.saturating_sub(since).max(Duration::from_millis(20)));
        false
    }

    /// Collects the run's snapshots and result into `results`, and when `active` and `config`
    /// differs from the last start, starts `spawn(config, results)`. `what` names the run in
    /// messages.
    pub fn poll(
        &mut self,
        ctx: &egui::Context,
        (config, active): (&C, bool),
        what: &str,
        results: &mut R,
        spawn: impl FnOnce(&C, &R) -> Result<Job<R, R>, String>,
    ) -> Notes
    where
        R: Clone,
    {
        let mut notes = Notes::new();
        self.retired.retain_mut(|job| {
            let _ = job.poll();
            !job.is_finished()
        });
        if let Some(job) = &mut self.job {
            for update in job.poll() {
                match update {
                    JobUpdate::Snapshot(snapshot) => *results = snapshot.as_ref().clone(),
                    JobUpdate::Finished(Ok(finished)) => {
                        *results = finished;
                        self.problem = None;
                    }
                    JobUpdate::Finished(Err(message)) if message == crate::jobs::CANCELLED => {
                        self.cancelled = true;
                        notes.push((Level::Warning, format!("{what} cancelled; Resume finishes it.")));
                    }
                    JobUpdate::Finished(Err(message)) => {
                        self.failed.clone_from(&self.started);
                        notes.push((Level::Error, format!("{what} failed: {message}")));
                        self.problem = Some(message);
                    }
                    _ => {}
                }
            }
        }
        if self.job.as_ref().is_some_and(Job::is_finished) {
            self.job = None;
        }
        if active
            && self.started.as_ref() != Some(config)
            && self.failed.as_ref() != Some(config)
            && self.may_start(ctx)
        {
            if let Some(old) = self.job.take() {
                old.cancel();
                self.retired.push(old);
            }
            self.started = Some(config.clone());
            self.cancelled = false;
            self.last_start = Some(Instant::now());
            match spawn(config, results) {
                Ok(job) => {
                    self.job = Some(job);
                    self.starts += 1;
                    self.failed = None;
                    self.problem = None;
                }
                Err(message) => {
                    self.failed = Some(config.clone());
                    notes.push((Level::Error, message.clone()));
                    self.problem = Some(message);
                }
            }
        }
        notes
    }

    /// The job bar's row for the run in flight.
    pub fn job_rows(&self, name: &'static str) -> Vec<JobRow<'_>> {
        self.job
            .iter()
            .filter(|j| !j.is_finished())
            .map(|job| JobRow { id: job.id(), name, status: job.status(), cancelling: job.is_cancelled() })
            .collect()
    }

    /// Whether `id` is this analysis's run.
    pub fn owns(&self, id: JobId) -> bool {
        self.job.as_ref().is_some_and(|job| job.id() == id)
    }

    pub fn control_job(&mut self, id: JobId, action: impl FnOnce(&mut dyn JobControl)) -> bool {
        if let Some(job) = self.job.as_mut().filter(|j| j.id() == id) {
            action(job);
            return true;
        }
        false
    }
}
