//! The NTK lab's staged study: one configuration's data, spectrum, training and sweeps, started
//! from whatever an earlier study of a nearby configuration left valid, reporting everything
//! computed so far as it goes.

use std::sync::Arc;
use std::time::Instant;

use super::NtkError;
use super::analysis::{self, NtkConfig, Spectrum, Training, Which};
use super::data::Dataset;
use super::sweep::{
    BiasPoint, DEFAULT_BIASES, DEFAULT_WIDTHS, DISTANCE_WIDTHS, DistancePoint, distance_vs_width, lambda_min_vs_bias,
};
use super::train::TrainRun;
use crate::control::{RunControl, RunEvent, Throttle};

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

/// Which results of `old` are still valid for `new`: what a study of `new` can start from.
pub fn reusable(old: &NtkResults, new: &NtkConfig) -> NtkResults {
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

/// Stages of a study, for a progress bar.
pub const STAGES: u64 = 4;

/// The NTK lab's staged study of `results.config`, starting from what `results` already holds
/// (see [`reusable`]): the data (at most `max_points` points), the spectrum, training, then the
/// sweeps of λ_min over the bias and of the distance over the width. Reports `Started` with the
/// [`STAGES`], all results so far as snapshots (after each stage and, throttled, during training)
/// and the stages reached as progress. `Ok(None)` when cancelled.
pub fn study(
    mut results: NtkResults,
    max_points: usize,
    control: &RunControl,
    on_event: &mut dyn FnMut(RunEvent<NtkResults>),
) -> Result<Option<NtkResults>, NtkError> {
    on_event(RunEvent::Started { total_steps: STAGES });
    let start = Instant::now();
    let progress = |on_event: &mut dyn FnMut(RunEvent<NtkResults>), done: u64| {
        on_event(RunEvent::Progress { step: done, metrics: Vec::new(), elapsed_secs: start.elapsed().as_secs_f64() });
    };
    let config = results.config.clone();
    config.validate()?;
    let data = match &results.data {
        Some(data) => Arc::clone(data),
        None => {
            let data = Arc::new(config.data.load(config.seed)?);
            if data.points.n > max_points {
                return Err(NtkError::Config(format!(
                    "{} points; the lab takes up to {max_points} (the command line `sparsefield ntk` takes more)",
                    data.points.n
                )));
            }
            results.data = Some(Arc::clone(&data));
            data
        }
    };
    let spectrum = match &results.spectrum {
        Some(spectrum) => Arc::clone(spectrum),
        None => {
            let Some(spectrum) = analysis::spectrum_with(&config, &data, control)? else { return Ok(None) };
            let spectrum = Arc::new(spectrum);
            results.spectrum = Some(Arc::clone(&spectrum));
            on_event(RunEvent::Snapshot(Arc::new(results.clone())));
            spectrum
        }
    };
    progress(on_event, 1);
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
                on_event(RunEvent::Snapshot(Arc::new(results.clone())));
            }
        })?;
        let Some(training) = run else { return Ok(None) };
        results.training = Some(Arc::new(training));
        results.training_done = true;
        on_event(RunEvent::Snapshot(Arc::new(results.clone())));
    }
    progress(on_event, 2);
    if results.lambda.is_none() {
        let lambda = lambda_min_vs_bias(
            &data.points,
            &DEFAULT_BIASES,
            &DEFAULT_WIDTHS,
            config.prune,
            config.seed,
            control,
            &mut |_, _| {},
        )?;
        let Some(lambda) = lambda else { return Ok(None) };
        results.lambda = Some(Arc::new(lambda));
        on_event(RunEvent::Snapshot(Arc::new(results.clone())));
    }
    progress(on_event, 3);
    if results.distance.is_none() {
        let distance = distance_vs_width(
            &data.points,
            config.bias,
            &DISTANCE_WIDTHS,
            config.prune,
            config.seed,
            control,
            &mut |_, _| {},
        )?;
        let Some(distance) = distance else { return Ok(None) };
        results.distance = Some(Arc::new(distance));
    }
    progress(on_event, STAGES);
    Ok(Some(results))
}
