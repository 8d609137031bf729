//! Labs as vertical slices: each folder holds one lab's state, jobs and panel. A lab uses other
//! labs only through `compute` and the shared modules of `ui`; the app shell registers it.

pub mod edit;
pub mod htl;
pub mod inr;
pub mod lift;
pub mod nerf;
pub mod ntk;
pub mod prune;
