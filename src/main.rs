//! The `sparsefield` binary: the desktop app, or a lab run headless when given a command.

use std::process::ExitCode;

use clap::Parser;
use sparsefield::app::{AppOptions, SparseFieldApp};
use sparsefield::cli::{self, Cli};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Cli::parse();
    match args.command {
        Some(command) => match cli::run_with(command, args.force) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}", sparsefield::compute::errors::describe(e.as_ref()));
                ExitCode::FAILURE
            }
        },
        None => match run_app() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Niceness of the app's background work unless `SPARSEFIELD_JOB_NICE` says otherwise (0: as the
/// window). Measured in README.md, *Responsiveness*.
const JOB_NICE: i32 = 10;

fn run_app() -> Result<(), eframe::Error> {
    // Jobs and the compute pool yield to the window's thread: a click is answered while training
    // keeps every core busy.
    let nice = std::env::var("SPARSEFIELD_JOB_NICE").ok().and_then(|v| v.parse().ok()).unwrap_or(JOB_NICE);
    sparsefield::jobs::set_background_priority(nice);
    let _ = rayon::ThreadPoolBuilder::new()
        .start_handler(|_| sparsefield::jobs::lower_this_thread_priority())
        .build_global();
    // Decide the renderer before opening the window: winit allows one event loop per process.
    let gpu_problem = sparsefield::render::probe_adapter().err();
    let renderer = if gpu_problem.is_some() { eframe::Renderer::Glow } else { eframe::Renderer::Wgpu };
    let options = eframe::NativeOptions {
        renderer,
        multisampling: 1,
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("SparseField")
            .with_inner_size([1400.0, 860.0])
            .with_min_inner_size([900.0, 600.0])
            .with_drag_and_drop(true),
        wgpu_options: eframe::egui_wgpu::WgpuConfiguration {
            wgpu_setup: sparsefield::render::wgpu_setup(),
            ..Default::default()
        },
        ..Default::default()
    };
    let app_options = AppOptions { restore_settings: true, allow_autostart: true, gpu_problem };
    eframe::run_native("SparseField", options, Box::new(move |cc| Ok(Box::new(SparseFieldApp::new(cc, app_options)))))
}
