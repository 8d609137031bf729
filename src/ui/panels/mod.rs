//! One module per lab.

pub mod inr;
