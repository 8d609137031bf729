//! Files the hard-sample lab writes and reads: per-sample scores (CSV), contact sheets of the
//! hardest samples, bar charts of hard-sample rates and of the attention comparison (PNG).

use std::path::{Path, PathBuf};

use super::HtlError;
use super::attend::Comparison;
use super::data::{HtlData, Split, csv_field, csv_fields, sample_image};
use super::lesion::{LesionData, LesionSet};
use super::pie::{self, RankBy, Rate, SampleScore, rank};
use super::population::Populations;
use super::seg::{LocalizeReport, SegAccuracy, SegScore};
use crate::chart::{self, PALETTE, Panel, Series};
use crate::image_io::{self, ImageData};

/// Votes as `class:count` pairs (non-zero only), space-separated, most votes first.
pub fn votes_text(votes: &[u16]) -> String {
    let mut pairs: Vec<(usize, u16)> = votes.iter().copied().enumerate().filter(|(_, v)| *v > 0).collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    pairs.iter().map(|(c, v)| format!("{c}:{v}")).collect::<Vec<_>>().join(" ")
}

/// The header of the scores CSV.
pub const SCORES_HEADER: &str = "split,index,name,label,class,group,dense_mode,pruned_mode,pie,disagreement,\
dense_error,pruned_error,dense_loss,pruned_loss,score,rank,dense_votes,pruned_votes";

/// One row per sample of each split given, `rank` (from 1) by `by` within its split.
pub fn scores_csv(data: &HtlData, splits: &[(Split, &[SampleScore])], by: RankBy) -> String {
    let mut out = String::from(SCORES_HEADER);
    out.push('\n');
    for (split, scores) in splits {
        let mut ranks = vec![0; scores.len()];
        for (r, &i) in rank(scores, by).iter().enumerate() {
            ranks[i] = r + 1;
        }
        let names = data.names_of(*split);
        for (s, r) in scores.iter().zip(&ranks) {
            let class = data.data.classes.get(usize::from(s.label)).map_or("", String::as_str);
            let group = data.groups.get(usize::from(s.group)).map_or("", String::as_str);
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{:.4},{:.4},{:.4},{:.6},{:.6},{:.6},{r},{},{}\n",
                split.label(),
                s.index,
                csv_field(names.get(s.index).map_or("", String::as_str)),
                s.label,
                csv_field(class),
                csv_field(group),
                s.dense_mode,
                s.pruned_mode,
                u8::from(s.pie),
                s.disagreement,
                s.dense_error,
                s.pruned_error,
                s.dense_loss,
                s.pruned_loss,
                by.score(s),
                votes_text(&s.dense_votes),
                votes_text(&s.pruned_votes),
            ));
        }
    }
    out
}

/// The PIE flags of the training and test samples in a scores CSV written by [`scores_csv`],
/// checked against the sizes of `data`.
pub fn read_hard_flags(path: &Path, data: &HtlData) -> Result<(Vec<bool>, Vec<bool>), HtlError> {
    let error = |reason: String| HtlError::Data { path: path.to_owned(), reason };
    let text =
        crate::files::read_text_capped(path, crate::files::TABLE).map_err(|e| error(format!("cannot read ({e})")))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let header = csv_fields(lines.next().map(|(_, l)| l).unwrap_or_default());
    let column = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            error(format!("has no `{name}` column; give the scores.csv that `sparsefield htl find` wrote"))
        })
    };
    let (split_col, index_col, pie_col) = (column("split")?, column("index")?, column("pie")?);
    let mut flags = [vec![false; data.data.train.len()], vec![false; data.data.test.len()]];
    let mut marked = [std::collections::HashSet::new(), std::collections::HashSet::new()];
    for (number, line) in lines {
        let row = csv_fields(line);
        let field = |c: usize| row.get(c).map_or("", String::as_str);
        let which = match field(split_col) {
            "training" => 0,
            "test" => 1,
            other => return Err(error(format!("line {}: split `{other}` is not training or test", number + 1))),
        };
        let index: usize = field(index_col)
            .parse()
            .map_err(|_| error(format!("line {}: index `{}` is not a number", number + 1, field(index_col))))?;
        let Some(flag) = flags[which].get_mut(index) else {
            return Err(error(format!(
                "line {}: sample {index} but the {} set has {} samples; the scores come from another data set",
                number + 1,
                if which == 0 { "training" } else { "test" },
                flags[which].len()
            )));
        };
        if !marked[which].insert(index) {
            return Err(error(format!("line {}: sample {index} of this split appears twice", number + 1)));
        }
        *flag = field(pie_col) == "1";
    }
    for (which, name) in ["training", "test"].iter().enumerate() {
        if marked[which].len() != flags[which].len() {
            return Err(error(format!(
                "scores {} {name} samples but the data has {}; the scores come from another data set",
                marked[which].len(),
                flags[which].len()
            )));
        }
    }
    let [train, test] = flags;
    Ok((train, test))
}

/// Grid of the samples at `order` (hardest first), `count` at most, each `cell` pixels wide,
/// framed red when it is a PIE, with its label, both modal predictions and score beneath.
pub fn contact_sheet(
    data: &HtlData,
    split: Split,
    scores: &[SampleScore],
    order: &[usize],
    by: RankBy,
    count: usize,
) -> ImageData {
    const CELL: u32 = 112;
    const THUMB: u32 = 96;
    const TEXT: u32 = 36;
    let shown: Vec<&SampleScore> = order.iter().take(count.max(1)).map(|&i| &scores[i]).collect();
    let columns = 8_u32.min(u32::try_from(shown.len().max(1)).unwrap_or(8));
    let rows = u32::try_from(shown.len().div_ceil(columns as usize)).unwrap_or(1).max(1);
    let (width, height) = (columns * CELL, rows * (CELL + TEXT));
    let mut sheet = ImageData { width, height, channels: 3, pixels: vec![1.0; (width * height * 3) as usize] };
    let set = data.set(split);
    for (k, s) in shown.iter().enumerate() {
        let k = u32::try_from(k).unwrap_or(0);
        let (x0, y0) = ((k % columns) * CELL, (k / columns) * (CELL + TEXT));
        let image = sample_image(set, s.index);
        let frame = if s.pie { [0.85, 0.1, 0.1] } else { [0.75, 0.75, 0.75] };
        for y in 0..THUMB + 8 {
            for x in 0..THUMB + 8 {
                let (px, py) = (x0 + 4 + x, y0 + 4 + y);
                let inside = (4..THUMB + 4).contains(&x) && (4..THUMB + 4).contains(&y);
                let rgb = if inside {
                    let (sx, sy) = ((x - 4) * image.width / THUMB, (y - 4) * image.height / THUMB);
                    let c = |ch: usize| image.at(sx, sy, if image.channels == 3 { ch } else { 0 });
                    [c(0), c(1), c(2)]
                } else {
                    frame
                };
                let at = ((py * width + px) * 3) as usize;
                sheet.pixels[at..at + 3].copy_from_slice(&rgb);
            }
        }
        let text_y = i64::from(y0 + THUMB + 14);
        let line1 = format!("L{} D{} P{}", s.label, s.dense_mode, s.pruned_mode);
        chart::draw_text(&mut sheet, i64::from(x0 + 6), text_y, &line1, [0.1, 0.1, 0.1]);
        let line2 = format!("S{:.2}", by.score(s));
        chart::draw_text(&mut sheet, i64::from(x0 + 6), text_y + 18, &line2, [0.35, 0.35, 0.35]);
    }
    sheet
}

fn bars(label: &str, colour: [f32; 3], values: impl Iterator<Item = f64>) -> Series {
    #[allow(clippy::cast_precision_loss)]
    let points = values.enumerate().map(|(k, v)| (k as f64, v)).collect();
    Series { label: label.into(), colour, points, bars: true, ..Series::default() }
}

/// Bar panels of the PIE rate per class and per group.
pub fn rate_panels(class_rates: &[Rate], group_rates: &[Rate], split: Split) -> Vec<Panel> {
    let panel = |title: String, x_label: &str, rates: &[Rate], colour| Panel {
        title,
        x_label: x_label.into(),
        series: vec![bars("PIE rate", colour, rates.iter().map(Rate::fraction))],
        categories: rates.iter().map(|r| r.name.clone()).collect(),
        ..Panel::default()
    };
    vec![
        panel(format!("PIE rate per class ({})", split.label()), "class", class_rates, PALETTE[1]),
        panel(format!("PIE rate per group ({})", split.label()), "group", group_rates, PALETTE[3]),
    ]
}

/// Bar panels of plain against attended accuracy: overall and hard samples, per class, per group.
pub fn comparison_panels(data: &HtlData, comparison: &Comparison) -> Vec<Panel> {
    let pair = |title: &str, categories: Vec<String>, plain: Vec<f64>, attended: Vec<f64>| Panel {
        title: title.into(),
        x_label: String::new(),
        y_range: Some((0.0, 1.0)),
        series: vec![bars("plain", PALETTE[0], plain.into_iter()), bars("attended", PALETTE[2], attended.into_iter())],
        categories,
        ..Panel::default()
    };
    let summary = |a: &super::attend::PopulationAccuracy| vec![a.mean, a.hard_test, a.hard_train];
    vec![
        pair(
            "test accuracy",
            vec!["all".into(), "hard test".into(), "hard train".into()],
            summary(&comparison.plain),
            summary(&comparison.attended),
        ),
        pair(
            "per class",
            data.data.classes.clone(),
            comparison.plain.per_class.clone(),
            comparison.attended.per_class.clone(),
        ),
        pair(
            "per group",
            data.groups.clone(),
            comparison.plain.per_group.clone(),
            comparison.attended.per_group.clone(),
        ),
    ]
}

fn write_text(path: &Path, text: &str) -> Result<PathBuf, HtlError> {
    crate::files::write_atomic(path, text)
        .map_err(|e| HtlError::Data { path: path.to_owned(), reason: format!("cannot write ({e})") })?;
    Ok(path.to_owned())
}

fn write_png(path: &Path, image: &ImageData) -> Result<PathBuf, HtlError> {
    image_io::save_png(image, path).map_err(|e| HtlError::Data { path: path.to_owned(), reason: e.to_string() })?;
    Ok(path.to_owned())
}

/// Writes what a find run produced into `dir`: `scores.csv`, `hardest_train.png`,
/// `hardest_test.png` (contact sheets of `sheet` samples), `rates.png` and `models.safetensors`
/// (every model of both populations, PyTorch `nn.Linear` layout). Returns the training and
/// test scores.
pub fn write_find(
    dir: &Path,
    data: &HtlData,
    pops: &Populations,
    by: RankBy,
    sheet: usize,
) -> Result<(Vec<SampleScore>, Vec<SampleScore>), HtlError> {
    let train = pie::score_split(pops, data, Split::Train);
    let test = pie::score_split(pops, data, Split::Test);
    write_scored(dir, data, pops, (&train, &test), by, sheet)?;
    Ok((train, test))
}

/// [`write_find`] with the scores already computed; returns the files written.
pub fn write_scored(
    dir: &Path,
    data: &HtlData,
    pops: &Populations,
    (train, test): (&[SampleScore], &[SampleScore]),
    by: RankBy,
    sheet: usize,
) -> Result<Vec<PathBuf>, HtlError> {
    let mut written = vec![write_text(
        &dir.join("scores.csv"),
        &scores_csv(data, &[(Split::Train, train), (Split::Test, test)], by),
    )?];
    let mut panels = Vec::new();
    for (split, scores) in [(Split::Train, train), (Split::Test, test)] {
        let order = rank(scores, by);
        let name = format!("hardest_{}.png", if split == Split::Train { "train" } else { "test" });
        written.push(write_png(&dir.join(name), &contact_sheet(data, split, scores, &order, by, sheet))?);
        let (classes, groups) = pie::class_and_group_rates(scores, data);
        panels.extend(rate_panels(&classes, &groups, split));
    }
    written.push(write_png(&dir.join("rates.png"), &chart::render(&panels, 2, 1280, 900))?);
    let mut tensors = Vec::new();
    for pair in &pops.pairs {
        tensors.extend(pair.dense.mlp.tensors(&format!("dense.{}.", pair.seed)));
        tensors.extend(pair.pruned.mlp.tensors(&format!("pruned.{}.", pair.seed)));
    }
    let metadata = std::collections::HashMap::from([(
        "sparsefield.htl".to_owned(),
        serde_json::to_string(&pops.config).unwrap_or_default(),
    )]);
    let path = dir.join("models.safetensors");
    crate::inr::weights::write_f32_safetensors(&path, &tensors, metadata)
        .map_err(|e| HtlError::Data { path: path.clone(), reason: e.to_string() })?;
    written.push(path);
    Ok(written)
}

/// `comparison.csv`: one row per measure, plain against attended.
pub fn comparison_csv(data: &HtlData, comparison: &Comparison) -> String {
    let mut out = String::from("measure,category,plain,attended\n");
    let (p, a) = (&comparison.plain, &comparison.attended);
    let mut row = |measure: &str, category: &str, plain: f64, attended: f64| {
        out.push_str(&format!("{measure},{},{plain:.6},{attended:.6}\n", csv_field(category)));
    };
    row("test_accuracy", "all", p.mean, a.mean);
    row("test_accuracy_std", "all", p.std, a.std);
    row("hard_test_accuracy", "all", p.hard_test, a.hard_test);
    row("hard_train_accuracy", "all", p.hard_train, a.hard_train);
    for (k, class) in data.data.classes.iter().enumerate() {
        row("class_accuracy", class, p.per_class[k], a.per_class[k]);
    }
    for (k, group) in data.groups.iter().enumerate() {
        row("group_accuracy", group, p.per_group[k], a.per_group[k]);
    }
    out
}

/// Writes `comparison.csv` and `comparison.png` into `dir`.
pub fn write_comparison(dir: &Path, data: &HtlData, comparison: &Comparison) -> Result<Vec<PathBuf>, HtlError> {
    Ok(vec![
        write_text(&dir.join("comparison.csv"), &comparison_csv(data, comparison))?,
        write_png(&dir.join("comparison.png"), &chart::render(&comparison_panels(data, comparison), 3, 1500, 520))?,
    ])
}

/// One row per sample of each split: IoU and Dice of both populations, the agreement of their
/// majority masks and the hard flag.
pub fn seg_scores_csv(data: &LesionData, report: &LocalizeReport) -> String {
    let mut out = String::from(
        "split,index,name,group,dense_iou,pruned_iou,dense_dice,pruned_dice,agreement,hard,box_x0,box_y0,box_x1,box_y1\n",
    );
    for (split, set, scores) in
        [("training", &data.train, &report.train_scores), ("test", &data.test, &report.test_scores)]
    {
        for s in scores {
            out.push_str(&format!(
                "{split},{},{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{},{}\n",
                s.index,
                csv_field(set.names.get(s.index).map_or("", String::as_str)),
                csv_field(data.groups.get(usize::from(s.group)).map_or("", String::as_str)),
                s.dense_iou,
                s.pruned_iou,
                s.dense_dice,
                s.pruned_dice,
                s.agreement,
                u8::from(s.hard),
                // The true mask's bounding box (empty fields for an empty mask).
                super::lesion::bounding_box(set.mask(s.index), set.side)
                    .map_or_else(|| ",,,".to_owned(), |(x0, y0, x1, y1)| format!("{x0},{y0},{x1},{y1}"))
            ));
        }
    }
    out
}

/// Colours of the outlines on lesion sheets: ground truth, dense majority, pruned majority.
pub const OUTLINE_COLOURS: [[f32; 3]; 3] = [[0.1, 0.85, 0.2], [0.15, 0.45, 1.0], [1.0, 0.15, 0.15]];

/// Whether pixel `p` of a `side × side` mask is on its border (in the mask, a 4-neighbour outside).
fn on_border(mask: &[bool], side: usize, p: usize) -> bool {
    if !mask[p] {
        return false;
    }
    let (x, y) = (p % side, p / side);
    x == 0
        || y == 0
        || x + 1 == side
        || y + 1 == side
        || !mask[p - 1]
        || !mask[p + 1]
        || !mask[p - side]
        || !mask[p + side]
}

/// The `count` samples of `set` that disagree most (lowest agreement first), each magnified with
/// outlines of the true mask (green), the dense majority (blue) and the pruned majority (red),
/// captioned with the agreement and both populations' IoU; `columns` of them per row at most.
pub fn lesion_sheet(set: &LesionSet, scores: &[SegScore], count: usize, columns: usize) -> ImageData {
    const SCALE: usize = 3;
    const TEXT: usize = 36;
    let side = set.side;
    let cell = side * SCALE + 8;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].agreement.total_cmp(&scores[b].agreement).then(a.cmp(&b)));
    order.truncate(count.max(1));
    let columns = columns.clamp(1, order.len().max(1));
    let rows = order.len().div_ceil(columns).max(1);
    let (width, height) = (columns * cell, rows * (cell + TEXT));
    #[allow(clippy::cast_possible_truncation)]
    let mut sheet =
        ImageData { width: width as u32, height: height as u32, channels: 3, pixels: vec![1.0; width * height * 3] };
    for (k, &i) in order.iter().enumerate() {
        let s = &scores[i];
        let (x0, y0) = ((k % columns) * cell + 4, (k / columns) * (cell + TEXT) + 4);
        let image = set.image(s.index);
        let truth: Vec<bool> = set.mask(s.index).iter().map(|&v| v > 0.5).collect();
        let outlines = [&truth, &s.dense_modal, &s.pruned_modal];
        for y in 0..side * SCALE {
            for x in 0..side * SCALE {
                let p = (y / SCALE) * side + x / SCALE;
                let mut rgb = [image.pixels[p * 3], image.pixels[p * 3 + 1], image.pixels[p * 3 + 2]];
                for (mask, colour) in outlines.iter().zip(OUTLINE_COLOURS) {
                    if mask.len() == side * side && on_border(mask, side, p) {
                        rgb = colour;
                    }
                }
                let at = ((y0 + y) * width + x0 + x) * 3;
                sheet.pixels[at..at + 3].copy_from_slice(&rgb);
            }
        }
        #[allow(clippy::cast_possible_wrap)]
        let (tx, ty) = (x0 as i64 + 2, (y0 + side * SCALE + 6) as i64);
        let frame = if s.hard { [0.85, 0.1, 0.1] } else { [0.1, 0.1, 0.1] };
        chart::draw_text(&mut sheet, tx, ty, &format!("A{:.2}", s.agreement), frame);
        // IoU of both populations without the leading zero, to fit the cell.
        let short = |v: f64| format!("{v:.2}").trim_start_matches('0').to_owned();
        chart::draw_text(
            &mut sheet,
            tx,
            ty + 16,
            &format!("{}/{}", short(s.dense_iou), short(s.pruned_iou)),
            [0.35; 3],
        );
    }
    sheet
}

/// `localize.csv`: for each labelled fraction, mean IoU and Dice of the dense, pruned and
/// attended populations overall, on the hard test samples and per group.
pub fn localize_csv(data: &LesionData, reports: &[LocalizeReport]) -> String {
    let mut out = String::from("labelled_fraction,measure,category,dense,pruned,attended\n");
    for r in reports {
        // No attended run: its column reads NaN.
        let attended = r.attended.clone().unwrap_or_else(|| SegAccuracy {
            iou: f64::NAN,
            iou_std: f64::NAN,
            dice: f64::NAN,
            per_group_iou: Vec::new(),
            per_group_dice: Vec::new(),
            hard_iou: f64::NAN,
            hard_dice: f64::NAN,
        });
        let f = r.config.labelled_fraction;
        let mut row = |measure: &str, category: &str, d: f64, p: f64, a: f64| {
            out.push_str(&format!("{f},{measure},{},{d:.6},{p:.6},{a:.6}\n", csv_field(category)));
        };
        row("iou", "all", r.dense.iou, r.pruned.iou, attended.iou);
        row("dice", "all", r.dense.dice, r.pruned.dice, attended.dice);
        row("iou", "hard test", r.dense.hard_iou, r.pruned.hard_iou, attended.hard_iou);
        row("dice", "hard test", r.dense.hard_dice, r.pruned.hard_dice, attended.hard_dice);
        for (g, name) in data.groups.iter().enumerate() {
            let at = |v: &[f64]| v.get(g).copied().unwrap_or(f64::NAN);
            let ag = |v: &[f64]| if v.is_empty() { f64::NAN } else { at(v) };
            row("iou", name, at(&r.dense.per_group_iou), at(&r.pruned.per_group_iou), ag(&attended.per_group_iou));
            row("dice", name, at(&r.dense.per_group_dice), at(&r.pruned.per_group_dice), ag(&attended.per_group_dice));
        }
    }
    out
}

/// Bar panels of plain (dense) against attended mean IoU, one per labelled fraction.
pub fn localize_panels(data: &LesionData, reports: &[LocalizeReport]) -> Vec<Panel> {
    reports
        .iter()
        .filter_map(|r| {
            let attended = r.attended.as_ref()?;
            let mut categories = vec!["all".to_owned(), "hard test".to_owned()];
            categories.extend(data.groups.iter().cloned());
            let values = |a: &super::seg::SegAccuracy| -> Vec<f64> {
                [a.iou, a.hard_iou].into_iter().chain(a.per_group_iou.iter().copied()).collect()
            };
            Some(Panel {
                title: format!("mean IoU, {:.0}% of masks labelled", 100.0 * r.config.labelled_fraction),
                y_range: Some((0.0, 1.0)),
                series: vec![
                    bars("plain", PALETTE[0], values(&r.dense).into_iter()),
                    bars("attended", PALETTE[2], values(attended).into_iter()),
                ],
                categories,
                ..Panel::default()
            })
        })
        .collect()
}

/// Group shares among all training samples and among the hard ones.
#[allow(clippy::cast_precision_loss)]
fn hard_shares(data: &LesionData, r: &LocalizeReport) -> serde_json::Value {
    let hard = r.train_scores.iter().filter(|s| s.hard).count();
    let rows: Vec<serde_json::Value> = data
        .groups
        .iter()
        .enumerate()
        .map(|(g, name)| {
            let in_group = |s: &&SegScore| usize::from(s.group) == g;
            let total = r.train_scores.iter().filter(in_group).count();
            let hard_in = r.train_scores.iter().filter(in_group).filter(|s| s.hard).count();
            serde_json::json!({ "group": name, "samples": total, "hard": hard_in,
                "share_of_samples": total as f64 / r.train_scores.len().max(1) as f64,
                "share_of_hard": hard_in as f64 / hard.max(1) as f64 })
        })
        .collect();
    serde_json::Value::Array(rows)
}

/// Writes a localization study into `dir`: `seg_scores.csv` and the contact sheets of the first
/// report, `localize.csv` and `localize.png` over all of them, and `metrics.json`.
pub fn write_localize(dir: &Path, data: &LesionData, reports: &[LocalizeReport]) -> Result<Vec<PathBuf>, HtlError> {
    let Some(first) = reports.first() else { return Ok(Vec::new()) };
    let mut written = vec![
        write_text(&dir.join("seg_scores.csv"), &seg_scores_csv(data, first))?,
        write_png(&dir.join("hardest_lesions_train.png"), &lesion_sheet(&data.train, &first.train_scores, 32, 8))?,
        write_png(&dir.join("hardest_lesions_test.png"), &lesion_sheet(&data.test, &first.test_scores, 32, 8))?,
        write_text(&dir.join("localize.csv"), &localize_csv(data, reports))?,
    ];
    let panels = localize_panels(data, reports);
    if !panels.is_empty() {
        let columns = panels.len().min(3);
        let width = 520 * u32::try_from(columns).unwrap_or(1);
        written.push(write_png(&dir.join("localize.png"), &chart::render(&panels, columns, width, 480))?);
    }
    let metrics = serde_json::json!({
        "data": data.summary(),
        "runs": reports.iter().map(|r| serde_json::json!({
            "config": r.config, "attend": r.attend, "labelled": r.labelled,
            "dense": r.dense, "pruned": r.pruned, "attended": r.attended,
            "hard_train": r.hard_train, "hard_test": r.hard_test,
            "hard_shares": hard_shares(data, r),
            "pruned_layer_sparsity": r.pruned_layer_sparsity,
            "seconds": r.seconds, "samples_per_second": r.samples_per_second,
        })).collect::<Vec<_>>(),
    });
    let json = serde_json::to_string_pretty(&metrics).unwrap_or_default();
    written.push(write_text(&dir.join("metrics.json"), &json)?);
    Ok(written)
}
