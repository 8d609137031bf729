//! The GNN tickets lab's state: one background study that follows the settings (restarted
//! whenever they change, keeping whatever the change leaves valid): one run of the chosen network,
//! the graph's layout, then the sweep over sparsity, the depth study and the held-out classes.

mod lab;
pub mod panel;

pub use lab::{GnnCommand, GnnFile, GnnLab};

use std::path::Path;
use std::sync::Arc;

use eframe::egui;

use self::panel::GnnPanelState;
use crate::compute::gnn::files;
use crate::compute::gnn::live::{self, GnnResults, LabConfig};
use crate::jobs::{Job, JobControl, JobId, Waker, cancelled_as_error};
use crate::ui::live::LiveAnalysis;
use crate::ui::widgets::{JobRow, Notes};

/// How the graph view is framed: zoom about the view's centre, then a shift (in view widths).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewFrame {
    pub zoom: f32,
    pub pan: egui::Vec2,
}

impl Default for ViewFrame {
    fn default() -> Self {
        Self { zoom: 1.0, pan: egui::Vec2::ZERO }
    }
}

#[derive(Default)]
pub struct GnnState {
    live: LiveAnalysis<LabConfig, GnnResults>,
    /// What is shown: the newest results (possibly of older settings while new ones compute).
    results: GnnResults,
    /// The mask picture shown, and the mask it shows.
    mask_texture: Option<(egui::TextureHandle, usize, Arc<live::RunResult>)>,
}

impl GnnState {
    pub fn is_running(&self) -> bool {
        self.live.is_running()
    }

    pub fn results(&self) -> &GnnResults {
        &self.results
    }

    pub fn analyses_started(&self) -> u64 {
        self.live.starts()
    }

    /// Reads the data again (a folder that changed on disk) and recomputes everything.
    pub fn reload(&mut self) {
        self.live.forget();
        self.results = GnnResults { config: self.results.config.clone(), ..GnnResults::default() };
    }

    /// Collects updates; restarts the study when `active` and the settings changed.
    pub fn poll(&mut self, ctx: &egui::Context, config: &LabConfig, mask_layer: usize, active: bool, waker: &Waker) -> Notes {
        let notes = self.live.poll(ctx, (config, active), "GNN study", &mut self.results, |config, results| {
            config.net.validate().map_err(|e| e.to_string())?;
            let seed = live::reusable(results, config);
            Job::spawn("gnn", Arc::clone(waker), move |control, sink| {
                cancelled_as_error(live::study(seed, control, &mut |event| sink.send(event)))
            })
            .map_err(|e| format!("cannot start the study: {e}"))
        });
        // The mask picture follows the run shown and the layer chosen.
        if let Some(run) = self.results.run.as_ref().filter(|_| self.results.run_done)
            && let Some(mask) = run.masks.get(mask_layer.min(run.masks.len().saturating_sub(1)))
            && self
                .mask_texture
                .as_ref()
                .is_none_or(|(_, layer, shown)| *layer != mask_layer || !Arc::ptr_eq(shown, run))
        {
            let texture = crate::ui::widgets::image_texture(ctx, "gnn mask", &mask.image);
            self.mask_texture = Some((texture, mask_layer, Arc::clone(run)));
        }
        notes
    }

    /// Starts the cancelled study of the current settings again (keeping what it finished).
    pub fn resume(&mut self) {
        self.live.resume();
    }

    /// Writes every table and chart shown into `dir`.
    pub fn export(&self, dir: &Path) -> Result<String, String> {
        let r = &self.results;
        let (Some(graph), Some(run)) = (&r.graph, r.run.as_ref().filter(|_| r.run_done)) else {
            return Err("there is nothing to export yet; wait for the run to finish".into());
        };
        let mut written = files::write_run(dir, graph, &r.config.net, run, r.layout.as_deref()).map_err(|e| e.to_string())?;
        let title = format!("{} on {}", r.config.net.arch.name(), graph.name);
        if let Some(rows) = r.sweep.as_ref().filter(|rows| !rows.is_empty()) {
            written.extend(files::write_sweep(dir, rows, &title).map_err(|e| e.to_string())?);
        }
        if let Some(rows) = r.depth.as_ref().filter(|rows| !rows.is_empty()) {
            written.extend(files::write_depth(dir, rows, &title).map_err(|e| e.to_string())?);
        }
        if let Some(ood) = &r.ood {
            written.extend(files::write_ood(dir, ood).map_err(|e| e.to_string())?);
        }
        Ok(format!("Wrote {} files to {}.", written.len(), dir.display()))
    }

    pub fn jobs(&self) -> Vec<JobRow<'_>> {
        self.live.job_rows("GNN study")
    }

    pub fn control_job(&mut self, id: JobId, action: impl FnOnce(&mut dyn JobControl)) -> bool {
        self.live.control_job(id, action)
    }

    pub fn panel_state(&self, config: &LabConfig) -> GnnPanelState<'_> {
        GnnPanelState {
            running: self.is_running(),
            progress: self.live.progress(),
            results: &self.results,
            current: &self.results.config == config,
            cancelled: self.live.was_cancelled(),
            problem: self.live.problem(),
            mask_texture: self.mask_texture.as_ref().map(|(t, _, _)| t),
        }
    }
}
