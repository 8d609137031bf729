//! The NTK lab's state: one background analysis that follows the settings (restarted whenever
//! they change, reusing whatever the change leaves valid): the spectrum first, then training,
//! then the sweeps over the bias and the width.

mod lab;
pub mod panel;

pub use lab::{NtkCommand, NtkFile, NtkLab};

use std::path::Path;
use std::sync::Arc;

use eframe::egui;

use self::panel::{APP_MAX_POINTS, NtkPanelState};
use crate::compute::ntk::analysis::{NtkConfig, Spectrum};
use crate::compute::ntk::files;
use crate::compute::ntk::study;
use crate::jobs::{Job, JobControl, JobId, Waker, cancelled_as_error};
use crate::ui::widgets::JobRow;

use crate::ui::live::LiveAnalysis;
use crate::ui::widgets::Notes;

pub use crate::compute::ntk::study::NtkResults;

#[derive(Default)]
pub struct NtkState {
    live: LiveAnalysis<NtkConfig, NtkResults>,
    /// What is shown: the newest results (possibly of older settings while new ones compute).
    results: NtkResults,
    /// The Gram image and the spectrum it shows.
    gram_texture: Option<(egui::TextureHandle, Arc<Spectrum>)>,
}

impl NtkState {
    pub fn is_running(&self) -> bool {
        self.live.is_running()
    }

    pub fn results(&self) -> &NtkResults {
        &self.results
    }

    pub fn analyses_started(&self) -> u64 {
        self.live.starts()
    }

    /// Reads the data again (a CSV file that changed on disk) and recomputes everything.
    pub fn reload(&mut self) {
        // The analysis in flight read the old file: nothing of it may come back.
        self.live.forget();
        self.results = NtkResults { config: self.results.config.clone(), ..NtkResults::default() };
    }

    /// Collects updates; restarts the analysis when `active` and the settings changed.
    pub fn poll(&mut self, ctx: &egui::Context, config: &NtkConfig, active: bool, waker: &Waker) -> Notes {
        let notes = self.live.poll(ctx, (config, active), "NTK analysis", &mut self.results, |config, results| {
            config.validate().map_err(|e| e.to_string())?;
            let seed = study::reusable(results, config);
            Job::spawn("ntk", Arc::clone(waker), move |control, sink| {
                cancelled_as_error(study::study(seed, APP_MAX_POINTS, control, &mut |event| sink.send(event)))
            })
            .map_err(|e| format!("cannot start the analysis: {e}"))
        });
        // The Gram image follows the spectrum shown.
        if let Some(spectrum) = &self.results.spectrum
            && self.gram_texture.as_ref().is_none_or(|(_, shown)| !Arc::ptr_eq(shown, spectrum))
        {
            let max_side = ctx.input(|i| i.max_texture_side).clamp(64, 1024);
            let image = files::gram_image(&spectrum.gram, spectrum.n, max_side);
            let texture = crate::ui::widgets::image_texture(ctx, "ntk gram", &image);
            self.gram_texture = Some((texture, Arc::clone(spectrum)));
        }
        notes
    }

    /// Starts the cancelled analysis of the current settings again (keeping what it finished).
    pub fn resume(&mut self) {
        self.live.resume();
    }

    /// Writes every table and chart shown into `dir`.
    pub fn export(&self, dir: &Path) -> Result<String, String> {
        let r = &self.results;
        if r.spectrum.is_none() {
            return Err("there is nothing to export yet; wait for the spectrum".into());
        }
        let with_gram = r.spectrum.as_ref().is_some_and(|s| s.n <= 2000);
        let written = files::write_all(
            dir,
            r.spectrum.as_deref(),
            r.lambda.as_deref().map(Vec::as_slice),
            r.distance.as_deref().map(Vec::as_slice),
            r.training.as_deref().filter(|_| r.training_done),
            with_gram,
        )?;
        let settings = dir.join("config.json");
        let json = serde_json::to_string_pretty(&r.config).map_err(|e| e.to_string())?;
        crate::compute::files::write_atomic(&settings, json)
            .map_err(|e| format!("{}: cannot write ({e})", settings.display()))?;
        Ok(format!(
            "Wrote {} files to {}{}.",
            written.len() + 1,
            dir.display(),
            if with_gram { "" } else { " (gram.csv left out above 2000 points; see gram.png)" }
        ))
    }

    pub fn jobs(&self) -> Vec<JobRow<'_>> {
        self.live.job_rows("NTK analysis")
    }

    pub fn control_job(&mut self, id: JobId, action: impl FnOnce(&mut dyn JobControl)) -> bool {
        self.live.control_job(id, action)
    }

    pub fn panel_state(&self, config: &NtkConfig) -> NtkPanelState<'_> {
        NtkPanelState {
            running: self.is_running(),
            progress: self.live.progress(),
            results: &self.results,
            current: &self.results.config == config,
            cancelled: self.live.was_cancelled(),
            problem: self.live.problem(),
            gram_texture: self.gram_texture.as_ref().map(|(t, _)| t),
        }
    }
}
