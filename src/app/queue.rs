//! One heavy job at a time: on two cores, jobs of different labs running together starve each
//! other (and the window). Unless the user lets them run together, the shell keeps one job
//! running — the one the user chose to run now, else the lab on screen's first, else the oldest — and
//! pauses the others as *waiting*; when the running one ends or is paused, the next one resumes.

use std::collections::BTreeSet;

use super::SparseFieldApp;
use crate::jobs::JobId;

/// The shell's part of the job queue.
#[derive(Debug, Default)]
pub struct JobQueue {
    /// Jobs the queue paused (the user's own pauses are not in here).
    pub waiting: BTreeSet<JobId>,
    /// The job the user asked to run now.
    pub preferred: Option<JobId>,
}

impl SparseFieldApp {
    /// Pauses and resumes jobs so that at most one runs (see the module's text).
    pub(super) fn schedule_jobs(&mut self) {
        let active = self.active_index();
        // (lab, job, paused by the user)
        let mut jobs: Vec<(usize, JobId, bool)> = Vec::new();
        for (index, lab) in self.labs.iter().enumerate() {
            for row in lab.jobs() {
                let user_paused = row.status.paused && !self.queue.waiting.contains(&row.id);
                jobs.push((index, row.id, user_paused || row.cancelling));
            }
        }
        self.queue.waiting.retain(|id| jobs.iter().any(|(_, job, _)| job == id));
        if self.queue.preferred.is_some_and(|id| !jobs.iter().any(|(_, job, _)| *job == id)) {
            self.queue.preferred = None;
        }
        let candidates: Vec<(usize, JobId)> =
            jobs.iter().filter(|(_, _, held)| !held).map(|(lab, id, _)| (*lab, *id)).collect();
        let runner = if self.shell.run_jobs_together {
            None
        } else {
            self.queue
                .preferred
                .filter(|id| candidates.iter().any(|(_, job)| job == id))
                // The lab on screen lists its jobs in the order they should run (a live run that
                // follows its sliders before a long sweep).
                .or_else(|| candidates.iter().find(|(lab, _)| *lab == active).map(|(_, id)| *id))
                .or_else(|| candidates.iter().map(|(_, id)| *id).min())
        };
        for (_, id) in candidates {
            let wait = runner.is_some_and(|runner| runner != id);
            if wait != self.queue.waiting.contains(&id) {
                let _ = self.labs.iter_mut().any(|lab| lab.control_job(id, &|job| job.set_paused(wait)));
                if wait {
                    self.queue.waiting.insert(id);
                } else {
                    self.queue.waiting.remove(&id);
                }
            }
        }
    }

    /// The user resumed job `id`: it runs now, and the queue makes the others wait for it.
    pub(super) fn run_now(&mut self, id: JobId) {
        if self.queue.waiting.remove(&id) || !self.shell.run_jobs_together {
            self.queue.preferred = Some(id);
        }
    }

    /// Jobs the queue keeps waiting, for the job bar.
    pub fn waiting_jobs(&self) -> &BTreeSet<JobId> {
        &self.queue.waiting
    }
}
