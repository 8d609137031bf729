//! The hard-sample lab's staged study: data, both populations and their PIE scores, then
//! attended against plain training, started from whatever an earlier study of nearby settings
//! left valid, reporting everything computed so far as it goes.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::attend::{self, Comparison};
use super::data::{self, HtlData, Split};
use super::pie::{self, SampleScore};
use super::population::{self, PopulationProgress, Populations};
use super::{HtlConfig, HtlError};
use crate::control::{RunControl, RunEvent, Throttle};

/// Everything computed for one configuration so far; each snapshot carries all of it.
#[derive(Clone, Debug, Default)]
pub struct HtlResults {
    pub config: HtlConfig,
    pub data: Option<Arc<HtlData>>,
    pub populations: Option<Arc<Populations>>,
    pub train_scores: Option<Arc<Vec<SampleScore>>>,
    pub test_scores: Option<Arc<Vec<SampleScore>>>,
    pub comparison: Option<Arc<Comparison>>,
    /// Why there is no comparison (e.g. no hard training samples).
    pub comparison_note: Option<String>,
    /// Models of both populations finished so far.
    pub models_done: usize,
}

impl HtlResults {
    pub fn scores(&self, split: Split) -> Option<&Arc<Vec<SampleScore>>> {
        match split {
            Split::Train => self.train_scores.as_ref(),
            Split::Test => self.test_scores.as_ref(),
        }
    }
}

/// Which results of `old` are still valid for `new`: what a study of `new` can start from.
pub fn reusable(old: &HtlResults, new: &HtlConfig) -> HtlResults {
    let before = &old.config;
    let same_pops = before.same_populations(new) && old.train_scores.is_some();
    HtlResults {
        config: new.clone(),
        data: old.data.clone().filter(|_| before.same_data(new)),
        populations: old.populations.clone().filter(|_| same_pops),
        train_scores: old.train_scores.clone().filter(|_| same_pops),
        test_scores: old.test_scores.clone().filter(|_| same_pops),
        comparison: old.comparison.clone().filter(|_| same_pops && before.attend == new.attend),
        comparison_note: old.comparison_note.clone().filter(|_| same_pops && before.attend == new.attend),
        models_done: if same_pops { old.models_done } else { 0 },
    }
}

type Events<'a, 'b> = &'a mut (dyn FnMut(RunEvent<HtlResults>) + Send + 'b);

/// The hard-sample lab's staged study of `results.config`, starting from what `results` already
/// holds (see [`reusable`]): the data, both populations and their PIE scores, then training that
/// attends to the hard samples against plain training. Reports `Started` with the epochs it
/// will train in all, all results so far as snapshots (after each stage and each finished model),
/// and the epochs done (throttled) as progress with the latest training loss (NaN where there is
/// none). `Ok(None)` when cancelled.
pub fn study(
    mut results: HtlResults,
    control: &RunControl,
    on_event: Events<'_, '_>,
) -> Result<Option<HtlResults>, HtlError> {
    let start = Instant::now();
    let config = results.config.clone();
    let pop = &config.population;
    pop.validate()?;
    config.attend.validate()?;
    let find_epochs = (pop.models * pop.epochs_per_model()) as u64;
    let total = find_epochs + (pop.models * pop.epochs) as u64;
    on_event(RunEvent::Started { total_steps: total });
    let data = match &results.data {
        Some(data) => Arc::clone(data),
        None => {
            let data = data::load(&config.source, config.attributes.as_ref())?;
            let data = Arc::new(data.with_train_limit(config.train_limit));
            results.data = Some(Arc::clone(&data));
            on_event(RunEvent::Snapshot(Arc::new(results.clone())));
            data
        }
    };
    let progress = |on_event: Events<'_, '_>, epochs: u64, loss: f64| {
        on_event(RunEvent::Progress {
            step: epochs,
            metrics: vec![("loss", loss)],
            elapsed_secs: start.elapsed().as_secs_f64(),
        });
    };
    let pops = match &results.populations {
        Some(pops) => Arc::clone(pops),
        None => {
            // Models train on rayon's threads; events are reported one at a time.
            let shared = Mutex::new((&mut *on_event, results.clone(), Throttle::new(0.1)));
            let trained = population::train_populations(&data, pop, control, &|event| {
                let Ok(mut guard) = shared.lock() else { return };
                let (on_event, partial, throttle) = &mut *guard;
                match event {
                    PopulationProgress::Epoch { done, loss, .. } => {
                        if throttle.ready() {
                            progress(&mut **on_event, done as u64, loss);
                        }
                    }
                    PopulationProgress::ModelDone(_) => {
                        partial.models_done += 1;
                        on_event(RunEvent::Snapshot(Arc::new(partial.clone())));
                    }
                }
            })?;
            let Some(trained) = trained else { return Ok(None) };
            let pops = Arc::new(trained);
            results.models_done = pops.pairs.len();
            results.train_scores = Some(Arc::new(pie::score_split(&pops, &data, Split::Train)));
            results.test_scores = Some(Arc::new(pie::score_split(&pops, &data, Split::Test)));
            results.populations = Some(Arc::clone(&pops));
            on_event(RunEvent::Snapshot(Arc::new(results.clone())));
            pops
        }
    };
    progress(&mut *on_event, find_epochs, f64::NAN);
    if results.comparison.is_none() && results.comparison_note.is_none() {
        let train = results.train_scores.clone().unwrap_or_default();
        let test = results.test_scores.clone().unwrap_or_default();
        let hard_train = attend::hard_set(&train, &config.attend);
        let hard_test: Vec<bool> = test.iter().map(|s| s.pie).collect();
        if hard_train.iter().any(|&h| h) {
            let shared = Mutex::new((&mut *on_event, Throttle::new(0.1)));
            let plain = pops.dense();
            let comparison =
                attend::compare(&data, pop, &config.attend, &hard_train, &hard_test, &plain, control, &|done, _| {
                    let Ok(mut guard) = shared.lock() else { return };
                    let (on_event, throttle) = &mut *guard;
                    if throttle.ready() {
                        progress(&mut **on_event, find_epochs + done as u64, f64::NAN);
                    }
                })?;
            let Some(comparison) = comparison else { return Ok(None) };
            results.comparison = Some(Arc::new(comparison));
        } else {
            results.comparison_note = Some(
                "No training sample is a PIE at these settings, so there is nothing to attend to: raise the sparsity, \
                 train more models, or attend to a top fraction."
                    .into(),
            );
        }
    }
    progress(on_event, total, f64::NAN);
    Ok(Some(results))
}
