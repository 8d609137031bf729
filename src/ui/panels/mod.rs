//! One module per lab.

pub mod inr;
pub mod nerf;
