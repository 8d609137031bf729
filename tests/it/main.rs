//! All integration tests in one binary (each extra test binary links the whole stack again).

// Test data is built from small integer indices; the numeric casts cannot lose anything there.
#![allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

#[global_allocator]
static GLOBAL: alloc_cap::CappedCounting = alloc_cap::CappedCounting;

mod alloc_cap;
mod cli;
mod common;
mod compute_inr;
mod fastmath;
mod files;
mod gan;
mod gnn;
mod htl;
mod image_io;
mod insp;
mod jobs;
mod lift;
mod mutations;
mod nerf_compute;
mod nerf_data;
mod nerf_synth;
mod nerf_train;
mod ntk;
mod ntk_train;
mod prune;
mod prune_init;
mod render;
mod stega;
mod train_loop;
mod ui;
