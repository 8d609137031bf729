//! Plot keys drawn above their plot, outside the data: each entry is a sample of its series'
//! colour, dash and marker, so that series sharing a colour stay apart; clicking an entry hides
//! the series it names. The same [`Series`] draws the plot item and its key entry, so the two
//! cannot disagree.

use eframe::egui;
use egui_plot::{Line, LineStyle, MarkerShape, PlotPoints, Points};

/// How a line is stroked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
    Dotted,
}

impl Dash {
    pub fn line_style(self) -> LineStyle {
        match self {
            Self::Solid => LineStyle::Solid,
            Self::Dashed => LineStyle::dashed_dense(),
            Self::Dotted => LineStyle::dotted_dense(),
        }
    }
}

/// Marker radius in the plot and in the key.
const MARKER_RADIUS: f32 = 3.0;
/// Width of an entry's sample.
const SAMPLE_WIDTH: f32 = 26.0;

/// A named series: its colour, how its line is stroked (`None`: no line) and its marker.
/// An entry with neither line nor marker is a colour swatch (a key that factors colour and
/// dash into separate entries).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub colour: egui::Color32,
    pub dash: Option<Dash>,
    pub marker: Option<MarkerShape>,
}

impl Series {
    /// A solid line.
    pub fn new(name: impl Into<String>, colour: egui::Color32) -> Self {
        Self { name: name.into(), colour, dash: Some(Dash::Solid), marker: None }
    }

    pub fn dash(mut self, dash: Dash) -> Self {
        self.dash = Some(dash);
        self
    }

    pub fn marker(mut self, marker: MarkerShape) -> Self {
        self.marker = Some(marker);
        self
    }

    /// A colour swatch in the key (for a key that names colours and dashes separately).
    pub fn swatch(mut self) -> Self {
        self.dash = None;
        self.marker = None;
        self
    }

    /// The series' line, named, coloured and stroked as its key entry shows.
    pub fn line<'a>(&self, points: impl Into<PlotPoints<'a>>) -> Line<'a> {
        Line::new(self.name.clone(), points).color(self.colour).style(self.dash.unwrap_or(Dash::Solid).line_style())
    }

    /// The series' markers (a circle when it has none of its own).
    pub fn points<'a>(&self, points: impl Into<PlotPoints<'a>>) -> Points<'a> {
        Points::new(self.name.clone(), points)
            .color(self.colour)
            .shape(self.marker.unwrap_or(MarkerShape::Circle))
            .radius(MARKER_RADIUS)
            .filled(true)
    }
}

/// What a key says about the series after this frame's clicks.
#[derive(Clone, Debug, Default)]
pub struct Key {
    hidden: Vec<String>,
    /// Height the key took (subtract it from the plot's share).
    pub height: f32,
}

/// A keyed plot is never squeezed below this height, however much its key wraps.
const MIN_KEYED_PLOT_HEIGHT: f32 = 60.0;

impl Key {
    /// The height left for the plot when the key and the plot share `total`.
    pub fn rest(&self, total: f32) -> f32 {
        (total - self.height).max(MIN_KEYED_PLOT_HEIGHT)
    }

    /// Whether the series (or factor) `name` is shown.
    pub fn shows(&self, name: &str) -> bool {
        !self.hidden.iter().any(|h| h == name)
    }
}

/// Draws the key of `entries` in one wrapped row; `id` keeps which entries the user hid.
pub fn key_ui(ui: &mut egui::Ui, id: &str, entries: &[Series]) -> Key {
    let id = egui::Id::unique(("plot key", id));
    let mut hidden: Vec<String> = ui.data(|d| d.get_temp(id)).unwrap_or_default();
    let top = ui.cursor().top();
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 12.0;
        for entry in entries {
            let shown = !hidden.contains(&entry.name);
            if entry_ui(ui, entry, shown).clicked() {
                if shown {
                    hidden.push(entry.name.clone());
                } else {
                    hidden.retain(|h| h != &entry.name);
                }
            }
        }
    });
    let height = ui.cursor().top() - top;
    ui.data_mut(|d| d.insert_temp(id, hidden.clone()));
    Key { hidden, height }
}

fn entry_ui(ui: &mut egui::Ui, entry: &Series, shown: bool) -> egui::Response {
    let font = egui::TextStyle::Body.resolve(ui.style());
    let text_colour = if shown { ui.visuals().text_color() } else { ui.visuals().weak_text_color() };
    let galley = ui.painter().layout_no_wrap(entry.name.clone(), font, text_colour);
    let size = egui::vec2(SAMPLE_WIDTH + 4.0 + galley.size().x, galley.size().y.max(2.0 * MARKER_RADIUS + 2.0));
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::click());
    response.widget_info(|| egui::WidgetInfo::selected(egui::Role::CheckBox, true, shown, &entry.name));
    let colour = if shown { entry.colour } else { entry.colour.gamma_multiply(0.25) };
    let sample = egui::Rect::from_min_size(rect.min, egui::vec2(SAMPLE_WIDTH, rect.height()));
    paint_sample(ui.painter(), sample, entry, colour);
    ui.painter().galley(egui::pos2(sample.right() + 4.0, rect.center().y - galley.size().y / 2.0), galley, text_colour);
    response.on_hover_text(if shown { "Click to hide this series" } else { "Click to show this series" })
}

fn paint_sample(painter: &egui::Painter, rect: egui::Rect, entry: &Series, colour: egui::Color32) {
    let (left, right) =
        (egui::pos2(rect.left() + 1.0, rect.center().y), egui::pos2(rect.right() - 1.0, rect.center().y));
    let stroke = egui::Stroke::new(1.5, colour);
    match entry.dash {
        Some(Dash::Solid) => {
            painter.line_segment([left, right], stroke);
        }
        Some(Dash::Dashed) => {
            painter.extend(egui::Shape::dashed_line(&[left, right], stroke, 5.0, 3.0));
        }
        Some(Dash::Dotted) => {
            painter.extend(egui::Shape::dotted_line(&[left, right], colour, 4.0, 1.2));
        }
        None => {}
    }
    match entry.marker {
        Some(shape) => paint_marker(painter, rect.center(), shape, colour),
        None if entry.dash.is_none() => {
            let swatch = egui::Rect::from_center_size(rect.center(), egui::vec2(12.0, 8.0));
            painter.rect_filled(swatch, 1.0, colour);
        }
        None => {}
    }
}

/// A marker of `shape` as egui_plot draws it (filled, radius [`MARKER_RADIUS`]).
fn paint_marker(painter: &egui::Painter, c: egui::Pos2, shape: MarkerShape, colour: egui::Color32) {
    let r = MARKER_RADIUS + 0.5;
    let stroke = egui::Stroke::new(1.5, colour);
    let polygon = |points: Vec<egui::Pos2>| egui::Shape::convex_polygon(points, colour, egui::Stroke::NONE);
    let v = egui::vec2;
    match shape {
        MarkerShape::Circle => {
            painter.circle_filled(c, r, colour);
        }
        MarkerShape::Square => {
            painter.rect_filled(egui::Rect::from_center_size(c, v(2.0 * r, 2.0 * r) * 0.85), 0.0, colour);
        }
        MarkerShape::Diamond => {
            painter.add(polygon(vec![c + v(0.0, -r), c + v(r, 0.0), c + v(0.0, r), c + v(-r, 0.0)]));
        }
        MarkerShape::Up => {
            painter.add(polygon(vec![c + v(0.0, -r), c + v(r, 0.8 * r), c + v(-r, 0.8 * r)]));
        }
        MarkerShape::Down => {
            painter.add(polygon(vec![c + v(0.0, r), c + v(-r, -0.8 * r), c + v(r, -0.8 * r)]));
        }
        MarkerShape::Left => {
            painter.add(polygon(vec![c + v(-r, 0.0), c + v(0.8 * r, r), c + v(0.8 * r, -r)]));
        }
        MarkerShape::Right => {
            painter.add(polygon(vec![c + v(r, 0.0), c + v(-0.8 * r, -r), c + v(-0.8 * r, r)]));
        }
        MarkerShape::Cross => {
            painter.line_segment([c + v(-r, -r), c + v(r, r)], stroke);
            painter.line_segment([c + v(-r, r), c + v(r, -r)], stroke);
        }
        MarkerShape::Plus => {
            painter.line_segment([c + v(-r, 0.0), c + v(r, 0.0)], stroke);
            painter.line_segment([c + v(0.0, -r), c + v(0.0, r)], stroke);
        }
        MarkerShape::Asterisk => {
            for k in 0..3 {
                #[allow(clippy::cast_precision_loss)]
                let a = std::f32::consts::FRAC_PI_3 * k as f32;
                let d = v(a.sin(), -a.cos()) * r;
                painter.line_segment([c - d, c + d], stroke);
            }
        }
    }
}

/// egui_plot's smallest grid step, in points (`GridInput::base_step_size` is this many points).
const GRID_MIN_POINTS: f64 = 8.0;

/// Where egui_plot labels ticks: from this many points apart (faint) to this many (full strength).
#[derive(Clone, Copy)]
struct LabelSpacing {
    min: f64,
    full: f64,
}

const X_LABELS: LabelSpacing = LabelSpacing { min: 60.0, full: 80.0 };
const Y_LABELS: LabelSpacing = LabelSpacing { min: 20.0, full: 30.0 };

/// Marks for a log₁₀ axis: decades, then 2× and 5×, then every digit as room allows. Labelled
/// marks get the full label strength and the rest none: egui_plot fades a label in between, and a
/// tall range (five decades in 100 points) left every label too faint to read. Where fewer than
/// two marks would be labelled (a range narrower than the digits' spacing) it falls back to
/// 1-2-5 marks of the exponent, and for dozens of decades to egui_plot's. Label them with
/// [`log10_mark_label`].
fn log10_grid_marks(input: &egui_plot::GridInput, labels: LabelSpacing) -> Vec<egui_plot::GridMark> {
    use egui_plot::GridMark;
    let (lo, hi) = input.bounds;
    if !(lo.is_finite() && hi.is_finite() && input.base_step_size > 0.0) || hi <= lo {
        return Vec::new();
    }
    // Very wide ranges: decades, thinned.
    if hi - lo > 40.0 {
        return egui_plot::log_grid_spacer(10)(egui_plot::GridInput { ..*input });
    }
    let per_decade = GRID_MIN_POINTS / input.base_step_size;
    // Every `stride`-th decade is labelled.
    let Some(stride) = [1_i32, 2, 5, 10].into_iter().find(|&n| f64::from(n) * per_decade >= labels.full) else {
        return egui_plot::log_grid_spacer(10)(egui_plot::GridInput { ..*input });
    };
    let mut marks = Vec::new();
    #[allow(clippy::cast_possible_truncation)]
    for decade in (lo.floor() as i64)..=(hi.ceil() as i64) {
        #[allow(clippy::cast_precision_loss)]
        let base = decade as f64;
        for digit in 1..10 {
            let value = base + f64::from(digit).log10();
            if value < lo || value > hi {
                continue;
            }
            // How far apart marks of this kind are, in decades: 1, about a third for 2× and 5×.
            let (apart, labelled) = match digit {
                1 => (1.0, decade % i64::from(stride) == 0),
                2 | 5 => (0.3, 0.3 * per_decade >= labels.full),
                _ => (0.05, 0.05 * per_decade >= labels.full),
            };
            // The step egui_plot judges the label by: enough for full strength, or too little.
            let step_size =
                if labelled { (labels.full / per_decade).max(apart) } else { apart.min(0.9 * labels.min / per_decade) };
            marks.push((GridMark { value, step_size }, labelled));
        }
    }
    // Fewer than two labels (a range narrower than the digits' spacing): decimal marks instead.
    if marks.iter().filter(|(_, labelled)| *labelled).count() < 2 {
        return nice_grid_marks(input, labels);
    }
    marks.into_iter().map(|(mark, _)| mark).collect()
}

/// The label of a mark on a log₁₀ axis: the value it stands for, `1e-3`, `2e-3`, `3.16e-3`.
pub fn log10_mark_label(mark: egui_plot::GridMark) -> String {
    let v = mark.value;
    let exponent = v.floor();
    let mantissa = 10f64.powf(v - exponent);
    let (mantissa, exponent) = if mantissa >= 9.9995 { (1.0, exponent + 1.0) } else { (mantissa, exponent) };
    // Enough digits to tell neighbouring marks apart: a step of Δ in log₁₀ is a relative step of
    // about 2.3·Δ.
    let relative = (std::f64::consts::LN_10 * mark.step_size * mantissa).max(1e-12);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let decimals = (-relative.log10()).ceil().clamp(0.0, 4.0) as usize;
    let text = format!("{mantissa:.decimals$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text };
    format!("{text}e{exponent:.0}")
}

/// A plot whose axes are marked at 1, 2 and 5 × 10ᵏ and labelled with the digits those need:
/// egui_plot's default marks only powers of ten, so at some ranges (steps 0–900 in a plot 470
/// points wide) only "0" kept its label.
pub fn new_plot<'a>(id: impl egui::AsIdSalt) -> egui_plot::Plot<'a> {
    egui_plot::Plot::new(id)
        .x_grid_spacer(|input| nice_grid_marks(&input, X_LABELS))
        .y_grid_spacer(|input| nice_grid_marks(&input, Y_LABELS))
        .x_axis_formatter(|mark, _| nice_mark_label(mark))
        .y_axis_formatter(|mark, _| nice_mark_label(mark))
}

/// The first of 1, 2, 5 × 10ᵏ at least `at_least`.
fn nice_step(at_least: f64) -> f64 {
    let decade = 10f64.powf(at_least.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|s| *s >= at_least * (1.0 - 1e-12))
        .unwrap_or(10.0 * decade)
}

/// The smallest of 1, 2, 5 × 10ᵏ that divides `step` and is at least `at_least` (`step` itself
/// when none is).
fn finer_divisor(step: f64, at_least: f64) -> f64 {
    let mut best = step;
    let mut candidate = step;
    for _ in 0..12 {
        #[allow(clippy::cast_possible_truncation)]
        let mantissa = (candidate / 10f64.powf(candidate.log10().floor())).round() as i64;
        candidate = match mantissa {
            1 => candidate / 2.0,
            2 => candidate / 2.0,
            _ => candidate * 0.4,
        };
        if candidate < at_least * (1.0 - 1e-12) {
            break;
        }
        let ratio = step / candidate;
        if (ratio - ratio.round()).abs() < 1e-9 {
            best = candidate;
        }
    }
    best
}

/// Marks at multiples of 1, 2 and 5 × 10ᵏ on three levels: the finest at least egui_plot's
/// smallest step, the coarsest far enough apart for labels at full strength, one between
/// (labelled too when it is as far apart; never faintly).
fn nice_grid_marks(input: &egui_plot::GridInput, labels: LabelSpacing) -> Vec<egui_plot::GridMark> {
    let (lo, hi) = input.bounds;
    let base = input.base_step_size;
    if !(lo.is_finite() && hi.is_finite() && base.is_finite()) || hi <= lo || base <= 0.0 {
        return Vec::new();
    }
    let per_unit = GRID_MIN_POINTS / base;
    let coarse = nice_step(labels.full / per_unit).max(nice_step(base));
    // The finer levels divide the coarser ones, so that their lines fall on each other.
    let middle = finer_divisor(coarse, (base * coarse).sqrt());
    let fine = finer_divisor(middle, base);
    let mut marks: Vec<egui_plot::GridMark> = Vec::new();
    // Too many marks means a degenerate range: leave the axis bare rather than stall.
    if (hi - lo) / fine > 10_000.0 {
        return marks;
    }
    // The multiples of each step, coarsest first; a value already marked keeps its coarser step.
    for step_size in [coarse, middle, fine] {
        #[allow(clippy::cast_possible_truncation)]
        let (first, last) = ((lo / step_size).ceil() as i64, (hi / step_size).floor() as i64);
        for k in first..=last {
            #[allow(clippy::cast_precision_loss)]
            let value = k as f64 * step_size;
            if !marks.iter().any(|m| (m.value - value).abs() < 1e-9 * step_size) {
                // A level too close for full-strength labels gets none (egui_plot would fade them).
                let judged = if step_size * per_unit >= labels.full {
                    step_size
                } else {
                    step_size.min(0.9 * labels.min / per_unit)
                };
                marks.push(egui_plot::GridMark { value, step_size: judged });
            }
        }
    }
    marks.sort_by(|a, b| a.value.total_cmp(&b.value));
    marks
}

/// A linear mark's label with the decimals its step needs (0.5 steps show "2.5", not "2").
pub fn nice_mark_label(mark: egui_plot::GridMark) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let decimals = (-mark.step_size.log10().floor()).clamp(0.0, 12.0) as usize;
    let text = format!("{:.decimals$}", mark.value);
    // No "-0".
    if text.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        text.trim_start_matches('-').to_owned()
    } else {
        text
    }
}

/// Log₁₀ axes: the plotted values are log₁₀ of the data; ticks name the data's values.
pub trait LogAxes {
    #[must_use]
    fn log10_x(self) -> Self;
    #[must_use]
    fn log10_y(self) -> Self;
}

impl LogAxes for egui_plot::Plot<'_> {
    fn log10_x(self) -> Self {
        self.x_grid_spacer(|input| log10_grid_marks(&input, X_LABELS))
            .x_axis_formatter(|mark, _| log10_mark_label(mark))
    }

    fn log10_y(self) -> Self {
        self.y_grid_spacer(|input| log10_grid_marks(&input, Y_LABELS))
            .y_axis_formatter(|mark, _| log10_mark_label(mark))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(value: f64, step_size: f64) -> String {
        log10_mark_label(egui_plot::GridMark { value, step_size })
    }

    #[test]
    fn log_marks_name_the_values_they_stand_for() {
        assert_eq!(label(-3.0, 1.0), "1e-3");
        assert_eq!(label(2.0f64.log10() - 3.0, 0.3), "2e-3");
        assert_eq!(label(5.0f64.log10() + 1.0, 0.3), "5e1");
        // Fine marks keep the digits that tell them apart.
        let fine = label(-2.5, 0.01);
        let value: f64 = fine.parse().unwrap();
        assert!((value.log10() + 2.5).abs() < 0.01, "{fine}");
    }

    #[test]
    fn linear_marks_step_by_one_two_five() {
        // Steps 0–905 in 470 points: egui_plot's smallest step (8 points) is 15.4.
        let input = egui_plot::GridInput { bounds: (-5.0, 905.0), base_step_size: 15.4 };
        let marks = nice_grid_marks(&input, X_LABELS);
        let size = |v: f64| marks.iter().find(|m| m.value == v).map(|m| m.step_size);
        let labelled = label_strengths(&marks, &input, X_LABELS);
        assert!(labelled.iter().all(|(v, strength)| *strength == 1.0 && v % 100.0 == 0.0), "{labelled:?}");
        // Every 200 is labelled: 100 steps are 52 points apart, too close for x labels; 200 are 104.
        assert_eq!(labelled.len(), 5, "{labelled:?}");
        // Finest 20 (≥ 15.4, judged too close for labels), labelled 200, between 100.
        assert_eq!(
            (size(20.0), size(100.0), size(200.0), size(0.0)),
            (Some(20.0), Some(100.0), Some(200.0), Some(200.0))
        );
        assert_eq!((size(30.0), size(50.0)), (None, None));
        assert_eq!(marks.last().map(|m| m.value), Some(900.0));
        assert!(
            nice_grid_marks(&egui_plot::GridInput { bounds: (1.0, 0.0), base_step_size: 1.0 }, X_LABELS).is_empty()
        );
        let label = |value, step_size| nice_mark_label(egui_plot::GridMark { value, step_size });
        assert_eq!(
            (label(2.5, 0.5), label(200.0, 200.0), label(0.04, 0.02), label(-0.0, 0.1)),
            ("2.5".into(), "200".into(), "0.04".into(), "0.0".into())
        );
    }

    /// Which marks egui_plot labels, and how strongly (its rule: none up to `min` points apart,
    /// fading in up to `full`).
    fn label_strengths(
        marks: &[egui_plot::GridMark],
        input: &egui_plot::GridInput,
        labels: LabelSpacing,
    ) -> Vec<(f64, f64)> {
        let per_unit = GRID_MIN_POINTS / input.base_step_size;
        marks
            .iter()
            .map(|m| {
                let apart = m.step_size * per_unit;
                (m.value, ((apart - labels.min) / (labels.full - labels.min)).clamp(0.0, 1.0))
            })
            .filter(|(_, strength)| *strength > 0.0)
            .collect()
    }

    #[test]
    fn log_labels_are_full_strength_or_absent() {
        // Five decades in 110 points (the lift lab's loss plot): 22 points per decade.
        let input = egui_plot::GridInput { bounds: (-3.78, 0.96), base_step_size: 0.357 };
        let labelled = label_strengths(&log10_grid_marks(&input, Y_LABELS), &input, Y_LABELS);
        assert!(labelled.len() >= 2, "{labelled:?}");
        assert!(labelled.iter().all(|(v, strength)| *strength == 1.0 && (v.round() - v).abs() < 1e-9), "{labelled:?}");
        // A tall plot of one decade labels 2× and 5× too.
        let input = egui_plot::GridInput { bounds: (-2.05, -0.95), base_step_size: 0.02 };
        let labelled = label_strengths(&log10_grid_marks(&input, Y_LABELS), &input, Y_LABELS);
        assert!(labelled.iter().any(|(v, _)| (v - (2f64.log10() - 2.0)).abs() < 1e-9), "{labelled:?}");
        assert!(labelled.iter().all(|(_, strength)| *strength == 1.0));
    }

    #[test]
    fn a_range_narrower_than_a_decade_still_has_marks() {
        // Each range in a plot 100 points tall: at least two labels, whatever the range.
        for (lo, hi) in [(-2.4, -2.1), (0.05, 0.35), (-7.9, -7.85), (-1.2, -1.0), (-20.0, 3.0), (-100.0, 50.0)] {
            let input = egui_plot::GridInput { bounds: (lo, hi), base_step_size: (hi - lo) * GRID_MIN_POINTS / 100.0 };
            let marks = log10_grid_marks(&input, Y_LABELS);
            let labelled = label_strengths(&marks, &input, Y_LABELS);
            let inside = labelled.iter().filter(|(v, _)| *v >= lo && *v <= hi).count();
            assert!(inside >= 2, "{lo}..{hi}: {labelled:?}");
        }
    }
}
