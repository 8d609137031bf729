//! One module per lab.

pub mod edit;
pub mod inr;
pub mod nerf;
pub mod prune;
