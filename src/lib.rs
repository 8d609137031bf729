//! SparseField: a desktop lab for sparse networks and neural fields.
//!
//! Layers (see `ARCHITECTURE.md`): `compute` (maths), `jobs` (background threads), `render`
//! (wgpu), `ui` (egui panels and shared widgets), `labs` (one folder per lab: state, jobs, panel),
//! `cli` (headless entry points) and `app` (the eframe application).

pub mod app;
pub mod cli;
pub use sparsefield_compute as compute;
pub mod jobs;
pub mod labs;
pub mod render;
pub mod ui;
