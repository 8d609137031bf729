//! Labs as vertical slices: each folder holds one lab's state, jobs and panel. A lab uses other
//! labs only through `compute` and the shared modules of `ui`; the app shell registers it.

pub mod ntk;
