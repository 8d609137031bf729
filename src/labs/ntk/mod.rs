//! The NTK lab's state: one background analysis that follows the settings (restarted whenever
//! they change, reusing whatever the change leaves valid): the spectrum first, then training,
//! then the sweeps over the bias and the width.

pub mod panel;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use eframe::egui;

use self::panel::{APP_MAX_POINTS, NtkPanelState};
use crate::compute::control::{RunControl, RunEvent, Throttle};
use crate::compute::ntk::analysis::{self, NtkConfig, Spectrum, Training, Which};
use crate::compute::ntk::data::Dataset;
use crate::compute::ntk::files;
use crate::compute::ntk::sweep::{
    BiasPoint, DEFAULT_BIASES, DEFAULT_WIDTHS, DISTANCE_WIDTHS, DistancePoint, distance_vs_width, lambda_min_vs_bias,
};
use crate::compute::ntk::train::TrainRun;
use crate::jobs::{EventSink, Job, JobControl, JobId, Waker};
use crate::ui::widgets::JobRow;

use crate::ui::live::LiveAnalysis;
use crate::ui::widgets::Notes;

/// Everything computed for one configuration so far. Each snapshot carries all of it, so a
/// snapshot dropped on the way is made up for by the next.
#[derive(Clone, Debug, Default)]
pub struct NtkResults {
    pub config: NtkConfig,
    pub data: Option<Arc<Dataset>>,
    pub spectrum: Option<Arc<Spectrum>>,
    /// Training so far (complete once `training_done`).
    pub training: Option<Arc<Training>>,
    pub training_done: bool,
    /// A finished dense comparison of the same [`NtkConfig::dense_key`], reused by the training.
    pub known_dense: Option<TrainRun>,
    pub lambda: Option<Arc<Vec<BiasPoint>>>,
    pub distance: Option<Arc<Vec<DistancePoint>>>,
}

/// Which results of `old` are still valid for `new`.
fn reusable(old: &NtkResults, new: &NtkConfig) -> NtkResults {
    let before = &old.config;
    let same_data = before.data_key() == new.data_key();
    let same_net = same_data && before.width == new.width && before.bias == new.bias && before.prune == new.prune;
    let same_sweep = same_data && before.prune == new.prune;
    NtkResults {
        config: new.clone(),
        data: old.data.clone().filter(|_| same_data),
        spectrum: old.spectrum.clone().filter(|_| same_net),
        training: old.training.clone().filter(|_| old.training_done && before == new),
        training_done: old.training_done && before == new,
        known_dense: old
            .training
            .as_ref()
            .filter(|_| old.training_done && before.dense_key() == new.dense_key())
            .and_then(|t| t.dense.clone())
            .or_else(|| old.known_dense.clone().filter(|_| before.dense_key() == new.dense_key())),
        lambda: old.lambda.clone().filter(|_| same_sweep),
        distance: old.distance.clone().filter(|_| same_sweep && before.bias == new.bias),
    }
}

fn send(sink: &mut EventSink<NtkResults>, results: &NtkResults) {
    sink.send(RunEvent::Snapshot(Arc::new(results.clone())));
}

/// Stages of an analysis, for the progress bar.
const STAGES: u64 = 4;

fn analyse(
    mut results: NtkResults,
    control: &RunControl,
    sink: &mut EventSink<NtkResults>,
) -> Result<NtkResults, String> {
    let start = Instant::now();
    let progress = |sink: &mut EventSink<NtkResults>, stage: u64| {
        sink.send(RunEvent::Progress { step: stage, metrics: Vec::new(), elapsed_secs: start.elapsed().as_secs_f64() });
    };
    sink.send(RunEvent::Started { total_steps: STAGES });
    let config = results.config.clone();
    config.validate().map_err(|e| e.to_string())?;
    let data = match &results.data {
        Some(data) => Arc::clone(data),
        None => {
            let data = Arc::new(config.data.load(config.seed).map_err(|e| e.to_string())?);
            if data.points.n > APP_MAX_POINTS {
                return Err(format!(
                    "{} points; the lab takes up to {APP_MAX_POINTS} (the command line `sparsefield ntk` takes more)",
                    data.points.n
                ));
            }
            results.data = Some(Arc::clone(&data));
            data
        }
    };
    let spectrum = match &results.spectrum {
        Some(spectrum) => Arc::clone(spectrum),
        None => {
            let spectrum = analysis::spectrum_with(&config, &data, control).map_err(|e| e.to_string())?;
            let spectrum = Arc::new(spectrum.ok_or("cancelled")?);
            results.spectrum = Some(Arc::clone(&spectrum));
            send(sink, &results);
            spectrum
        }
    };
    progress(sink, 1);
    if !results.training_done {
        let mut partial = Training {
            chosen: TrainRun { points: Vec::new(), learning_rate: 0.0, lambda_min: 0.0, cancelled: false },
            dense: results.known_dense.clone(),
        };
        let mut throttle = Throttle::new(0.15);
        let known_dense = results.known_dense.clone();
        let run = analysis::training(&config, &data, &spectrum, known_dense.as_ref(), control, &mut |which, point| {
            match which {
                Which::Chosen => partial.chosen.points.push(*point),
                Which::Dense => partial
                    .dense
                    .get_or_insert_with(|| TrainRun { points: Vec::new(), ..partial.chosen.clone() })
                    .points
                    .push(*point),
            }
            if throttle.ready() {
                results.training = Some(Arc::new(partial.clone()));
                send(sink, &results);
            }
        })
        .map_err(|e| e.to_string())?;
        let Some(training) = run else { return Err("cancelled".into()) };
        results.training = Some(Arc::new(training));
        results.training_done = true;
        send(sink, &results);
    }
    progress(sink, 2);
    if results.lambda.is_none() {
        let lambda = lambda_min_vs_bias(
            &data.points,
            &DEFAULT_BIASES,
            &DEFAULT_WIDTHS,
            config.prune,
            config.seed,
            control,
            &mut |_, _| {},
        )
        .map_err(|e| e.to_string())?
        .ok_or("cancelled")?;
        results.lambda = Some(Arc::new(lambda));
        send(sink, &results);
    }
    progress(sink, 3);
    if results.distance.is_none() {
        let distance = distance_vs_width(
            &data.points,
            config.bias,
            &DISTANCE_WIDTHS,
            config.prune,
            config.seed,
            control,
            &mut |_, _| {},
        )
        .map_err(|e| e.to_string())?
        .ok_or("cancelled")?;
        results.distance = Some(Arc::new(distance));
    }
    progress(sink, STAGES);
    Ok(results)
}

#[derive(Default)]
pub struct NtkLab {
    live: LiveAnalysis<NtkConfig, NtkResults>,
    /// What is shown: the newest results (possibly of older settings while new ones compute).
    results: NtkResults,
    /// The Gram image and the spectrum it shows.
    gram_texture: Option<(egui::TextureHandle, Arc<Spectrum>)>,
}

impl NtkLab {
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
            let seed = reusable(results, config);
            Job::spawn("ntk", Arc::clone(waker), move |control, sink| analyse(seed, control, sink))
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
