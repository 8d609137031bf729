//! One module per lab.

pub mod edit;
pub mod htl;
pub mod inr;
pub mod lift;
pub mod nerf;
pub mod prune;
