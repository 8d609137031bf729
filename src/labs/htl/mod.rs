//! The hard-sample lab's state: one background analysis that follows the settings (restarted
//! when they change, reusing what the change leaves valid): load the data, train the dense and
//! pruned populations, score every sample, then train attending to the hard samples and compare.

mod lab;
mod localize;
pub mod panel;
mod views;

pub use lab::{HtlCommand, HtlFile, HtlLab};

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use eframe::egui;

use self::panel::{GalleryItem, HtlPanelState, HtlSettings, Task};
use crate::compute::control::{RunEvent, Throttle};
use crate::compute::htl::data::{self, HtlData, Split, sample_image};
use crate::compute::htl::lesion::{self, LesionData};
use crate::compute::htl::pie::{self, SampleScore};
use crate::compute::htl::seg::{self as seg_study, LocalizeReport};
use crate::compute::htl::study;
use crate::compute::htl::{HtlConfig, files};
use crate::jobs::{Job, JobControl, JobId, JobUpdate, Waker, cancelled_as_error};
use crate::ui::widgets::{JobRow, Level};

use crate::ui::live::LiveAnalysis;
use crate::ui::widgets::Notes;

pub use crate::compute::htl::study::HtlResults;

/// Thumbnails of the samples shown, made when first needed.
#[derive(Default)]
struct Thumbnails {
    data: Option<Arc<HtlData>>,
    textures: HashMap<(Split, usize), egui::TextureHandle>,
}

impl Thumbnails {
    fn get(&mut self, ctx: &egui::Context, data: &Arc<HtlData>, split: Split, index: usize) -> egui::TextureHandle {
        if self.data.as_ref().is_none_or(|d| !Arc::ptr_eq(d, data)) {
            self.textures.clear();
            self.data = Some(Arc::clone(data));
        }
        // Thumbnails of samples no longer shown are dropped now and then.
        if self.textures.len() > 2000 {
            self.textures.clear();
        }
        self.textures
            .entry((split, index))
            .or_insert_with(|| {
                let image = sample_image(data.set(split), index);
                crate::ui::widgets::image_texture(ctx, &format!("htl {} {index}", split.label()), &image)
            })
            .clone()
    }
}

/// What the gallery shows for one set of filters.
#[derive(Clone, Debug, PartialEq)]
struct GalleryKey {
    split: Split,
    rank_by: pie::RankBy,
    class: Option<u16>,
    group: Option<u16>,
    pie_only: bool,
    count: usize,
}

/// A finished localization study with its contact sheets.
pub struct SegView {
    pub data: Arc<LesionData>,
    pub report: Arc<LocalizeReport>,
    pub train_sheet: egui::TextureHandle,
    pub test_sheet: egui::TextureHandle,
}

type SegOutcome = (Arc<LesionData>, Arc<LocalizeReport>);

#[derive(Default)]
pub struct HtlState {
    seg_job: Option<Job<(), SegOutcome>>,
    seg: Option<SegView>,
    seg_problem: Option<String>,
    live: LiveAnalysis<HtlConfig, HtlResults>,
    results: HtlResults,
    thumbnails: Thumbnails,
    /// The gallery and how many samples pass its filters, for the key and scores it was made from.
    gallery: Vec<GalleryItem>,
    gallery_total: usize,
    gallery_source: Option<(GalleryKey, Arc<Vec<SampleScore>>)>,
    selected_texture: Option<egui::TextureHandle>,
    /// Columns of the attribute CSV in use, for the group-column menu.
    attribute_columns: Vec<String>,
}

impl HtlState {
    pub fn is_running(&self) -> bool {
        self.live.is_running()
    }

    pub fn results(&self) -> &HtlResults {
        &self.results
    }

    pub fn gallery(&self) -> &[GalleryItem] {
        &self.gallery
    }

    pub fn analyses_started(&self) -> u64 {
        self.live.starts()
    }

    /// Starts the cancelled or failed analysis of the current settings again.
    pub fn resume(&mut self) {
        self.live.resume();
    }

    /// Forgets loaded data, so that files changed on disk are read again.
    pub fn reload(&mut self) {
        self.live.forget();
        self.results = HtlResults { config: self.results.config.clone(), ..HtlResults::default() };
    }

    /// Reads the header of an attribute CSV, for the group-column menu.
    pub fn read_attribute_columns(&mut self, path: &Path) -> Result<(), String> {
        let text = crate::compute::files::read_text_capped(path, crate::compute::files::TABLE)
            .map_err(|e| format!("{}: cannot read ({e})", path.display()))?;
        let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
        let columns = data::csv_fields(header);
        if columns.len() < 2 {
            return Err(format!(
                "{}: needs a header with a file-name column and at least one attribute column",
                path.display()
            ));
        }
        self.attribute_columns = columns;
        Ok(())
    }

    pub fn seg_view(&self) -> Option<&SegView> {
        self.seg.as_ref()
    }

    pub fn is_localizing(&self) -> bool {
        self.seg_job.as_ref().is_some_and(|j| !j.is_finished())
    }

    /// Starts the localization study of the settings (replacing one in flight).
    pub fn start_localize(&mut self, settings: &HtlSettings, waker: &Waker) -> Result<(), String> {
        settings.seg.validate().map_err(|e| e.to_string())?;
        settings.attend.validate().map_err(|e| e.to_string())?;
        if let Some(old) = self.seg_job.take() {
            old.cancel();
        }
        let (seg, attend, synthetic, folder) =
            (settings.seg.clone(), settings.attend.clone(), settings.lesions.clone(), settings.lesion_folder.clone());
        let job = Job::spawn("htl-localize", Arc::clone(waker), move |control, sink| {
            let data = match &folder {
                Some(dir) => lesion::load_folder(dir, synthetic.side, None),
                None => lesion::synthetic(&synthetic),
            }
            .map_err(|e| e.to_string())?;
            let teacher = if seg.labelled_fraction < 1.0 { seg.epochs } else { 0 };
            let total = seg.models * (2 * seg.epochs + seg.finetune_epochs) + teacher;
            sink.send(RunEvent::Started { total_steps: total as u64 });
            let sink = Mutex::new((sink, Throttle::new(0.1)));
            let report = seg_study::localize(&data, &seg, Some(&attend), control, &|done, _| {
                let Ok(mut guard) = sink.lock() else { return };
                let (sink, throttle) = &mut *guard;
                if throttle.ready() {
                    sink.send(RunEvent::Progress { step: done as u64, metrics: Vec::new(), elapsed_secs: 0.0 });
                }
            })
            .map_err(|e| e.to_string())?
            .ok_or(crate::jobs::CANCELLED)?;
            Ok((Arc::new(data), Arc::new(report)))
        })
        .map_err(|e| format!("cannot start the localization study: {e}"))?;
        self.seg_job = Some(job);
        self.seg_problem = None;
        Ok(())
    }

    fn poll_localize(&mut self, ctx: &egui::Context, notes: &mut Notes) {
        let Some(job) = &mut self.seg_job else { return };
        for update in job.poll() {
            match update {
                JobUpdate::Finished(Ok((data, report))) => {
                    // Five columns, so that the sheets side by side show at about their own size and their captions
                    // stay readable; the view scrolls to the rest.
                    let sheet = |set, scores| files::lesion_sheet(set, scores, 20, 5);
                    let train_sheet = crate::ui::widgets::image_texture(
                        ctx,
                        "htl lesions train",
                        &sheet(&data.train, &report.train_scores),
                    );
                    let test_sheet = crate::ui::widgets::image_texture(
                        ctx,
                        "htl lesions test",
                        &sheet(&data.test, &report.test_scores),
                    );
                    notes.push((
                        Level::Info,
                        format!(
                            "Localization study finished: mean IoU {:.3} dense, {:.3} attended.",
                            report.dense.iou,
                            report.attended.as_ref().map_or(f64::NAN, |a| a.iou)
                        ),
                    ));
                    self.seg = Some(SegView { data, report, train_sheet, test_sheet });
                }
                JobUpdate::Finished(Err(message)) if message == crate::jobs::CANCELLED => {
                    notes.push((Level::Warning, "Localization study cancelled.".into()));
                }
                JobUpdate::Finished(Err(message)) => {
                    notes.push((Level::Error, format!("The localization study failed: {message}")));
                    self.seg_problem = Some(message);
                }
                _ => {}
            }
        }
        if self.seg_job.as_ref().is_some_and(Job::is_finished) {
            self.seg_job = None;
        }
    }

    /// Collects updates, restarts the analysis when `active` and the settings changed, and
    /// prepares the gallery.
    pub fn poll(&mut self, ctx: &egui::Context, settings: &HtlSettings, active: bool, waker: &Waker) -> Notes {
        let mut notes = Notes::new();
        self.poll_localize(ctx, &mut notes);
        // The classification analysis follows the settings only while it is shown.
        let active = active && settings.task == Task::Classify;
        let config = settings.config();
        let live_notes =
            self.live.poll(ctx, (&config, active), "Hard-sample analysis", &mut self.results, |config, results| {
                let seed = study::reusable(results, config);
                Job::spawn("htl", Arc::clone(waker), move |control, sink| {
                    cancelled_as_error(study::study(seed, control, &mut |event| sink.send(event)))
                })
                .map_err(|e| format!("cannot start the analysis: {e}"))
            });
        notes.extend(live_notes);
        if active {
            self.update_gallery(ctx, settings);
        }
        notes
    }

    fn update_gallery(&mut self, ctx: &egui::Context, settings: &HtlSettings) {
        let (Some(data), Some(scores)) = (self.results.data.clone(), self.results.scores(settings.split).cloned())
        else {
            self.gallery.clear();
            self.gallery_total = 0;
            self.gallery_source = None;
            self.selected_texture = None;
            return;
        };
        let key = GalleryKey {
            split: settings.split,
            rank_by: settings.rank_by,
            class: settings.class_filter,
            group: settings.group_filter,
            pie_only: settings.pie_only,
            count: settings.gallery_count,
        };
        let fresh = self.gallery_source.as_ref().is_some_and(|(k, s)| *k == key && Arc::ptr_eq(s, &scores));
        if !fresh {
            let order = pie::rank(&scores, key.rank_by);
            let passing: Vec<(usize, usize)> = order
                .iter()
                .enumerate()
                .filter(|(_, i)| {
                    let s = &scores[**i];
                    key.class.is_none_or(|c| s.label == c)
                        && key.group.is_none_or(|g| s.group == g)
                        && (!key.pie_only || s.pie)
                })
                .map(|(rank, &i)| (rank + 1, i))
                .collect();
            self.gallery_total = passing.len();
            self.gallery = passing
                .iter()
                .take(key.count)
                .map(|&(rank, i)| GalleryItem {
                    split: key.split,
                    rank,
                    score: scores[i].clone(),
                    texture: self.thumbnails.get(ctx, &data, key.split, scores[i].index),
                })
                .collect();
            self.gallery_source = Some((key, scores));
        }
        self.selected_texture = settings.selected.and_then(|(split, index)| {
            (index < data.set(split).len()).then(|| self.thumbnails.get(ctx, &data, split, index))
        });
    }

    /// Writes the scores, contact sheets, charts, models and comparison into `dir` (for the
    /// localization task, the localization study's files).
    pub fn export(&self, dir: &Path, settings: &HtlSettings) -> Result<String, String> {
        if settings.task == Task::Localize {
            let view = self.seg.as_ref().ok_or("there is nothing to export yet; run the localization study")?;
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create the folder ({e})", dir.display()))?;
            let written = files::write_localize(dir, &view.data, std::slice::from_ref(view.report.as_ref()))
                .map_err(|e| e.to_string())?;
            return Ok(format!("Wrote {} files to {}.", written.len(), dir.display()));
        }
        let r = &self.results;
        let (Some(data), Some(pops), Some(train), Some(test)) =
            (&r.data, &r.populations, &r.train_scores, &r.test_scores)
        else {
            return Err("there is nothing to export yet; wait for the populations to finish".into());
        };
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create the folder ({e})", dir.display()))?;
        let mut written = files::write_scored(dir, data, pops, (train, test), settings.rank_by, settings.gallery_count)
            .map_err(|e| e.to_string())?;
        if let Some(comparison) = &r.comparison {
            written.extend(files::write_comparison(dir, data, comparison).map_err(|e| e.to_string())?);
        }
        let metrics = serde_json::json!({
            "data": data.summary(),
            "config": r.config,
            "dense_test_accuracy": pops.dense().iter().map(|t| t.test.accuracy).collect::<Vec<_>>(),
            "pruned_test_accuracy": pops.pruned().iter().map(|t| t.test.accuracy).collect::<Vec<_>>(),
            "pie_training": train.iter().filter(|s| s.pie).count(),
            "pie_test": test.iter().filter(|s| s.pie).count(),
            "comparison": r.comparison,
        });
        let path = dir.join("metrics.json");
        let json = serde_json::to_string_pretty(&metrics).map_err(|e| e.to_string())?;
        crate::compute::files::write_atomic(&path, json)
            .map_err(|e| format!("{}: cannot write ({e})", path.display()))?;
        Ok(format!("Wrote {} files to {}.", written.len() + 1, dir.display()))
    }

    pub fn jobs(&self) -> Vec<JobRow<'_>> {
        let mut rows = self.live.job_rows("Hard-sample analysis");
        rows.extend(self.seg_job.iter().filter(|j| !j.is_finished()).map(|job| JobRow {
            id: job.id(),
            name: "Localization study",
            status: job.status(),
            cancelling: job.is_cancelled(),
        }));
        rows
    }

    pub fn control_job(&mut self, id: JobId, action: impl FnOnce(&mut dyn JobControl)) -> bool {
        if let Some(job) = self.seg_job.as_mut().filter(|j| j.id() == id) {
            action(job);
            return true;
        }
        self.live.control_job(id, action)
    }

    pub fn panel_state(&self, settings: &HtlSettings) -> HtlPanelState<'_> {
        HtlPanelState {
            running: self.is_running(),
            progress: self.live.progress(),
            results: &self.results,
            current: self.results.config == settings.config(),
            cancelled: self.live.was_cancelled(),
            problem: self.live.problem(),
            gallery: &self.gallery,
            gallery_total: self.gallery_total,
            selected_texture: self.selected_texture.as_ref(),
            attribute_columns: &self.attribute_columns,
            seg: self.seg.as_ref(),
            seg_running: self.is_localizing(),
            seg_progress: self.seg_job.as_ref().map(|j| j.status().fraction()),
            seg_problem: self.seg_problem.as_deref(),
        }
    }
}
