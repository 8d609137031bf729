//! Labs as vertical slices: each folder holds one lab's state, jobs and panel. A lab uses other
//! labs only through `compute` and the shared modules of `ui`; the app shell registers it.

pub mod edit;
pub mod htl;
pub mod inr;
pub mod lift;
pub mod nerf;
pub mod ntk;
pub mod prune;

use crate::jobs::{JobControl, JobId};
use crate::ui::widgets::JobRow;

/// What the shell asks of every lab, whichever it is. (So far the job bar's part: the rest of a
/// lab's interface — commands, panels, files, persistence — still goes through the shell by name.)
pub trait Lab {
    /// The lab's running jobs, for the top bar.
    fn jobs(&self) -> Vec<JobRow<'_>>;
    /// Applies `action` (pause, resume, cancel) to the lab's job `id`; false when it has none.
    fn control_job(&mut self, id: JobId, action: &dyn Fn(&mut dyn JobControl)) -> bool;
}

/// Implements [`Lab`] from a lab's own `jobs` and `control_job` methods.
macro_rules! lab_jobs {
    ($($lab:ty),* $(,)?) => {$(
        impl Lab for $lab {
            fn jobs(&self) -> Vec<JobRow<'_>> {
                <$lab>::jobs(self)
            }

            fn control_job(&mut self, id: JobId, action: &dyn Fn(&mut dyn JobControl)) -> bool {
                <$lab>::control_job(self, id, |job| action(job))
            }
        }
    )*};
}

lab_jobs!(edit::EditLab, htl::HtlLab, inr::InrLab, lift::LiftLab, nerf::NerfLab, ntk::NtkLab, prune::PruneLab,);
