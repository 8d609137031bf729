//! Plots drawn into an image, for the PNG files the command line writes: panels with axes,
//! ticks, lines, shaded bands, markers and legends, labelled with a built-in 5×7 pixel font.
//! Text is upper case (lower-case letters are drawn as capitals).

// Pixel coordinates and counts here are small (a few thousand): the casts between them cannot
// lose anything.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use crate::image_io::ImageData;

/// One line of a panel.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub label: String,
    pub colour: [f32; 3],
    pub points: Vec<(f64, f64)>,
    /// A shaded band `(x, low, high)` under the line.
    pub band: Vec<(f64, f64, f64)>,
    pub markers: bool,
    /// Draw bars from zero at each point instead of a line; several bar series sit side by side.
    pub bars: bool,
}

/// One plot.
#[derive(Clone, Debug, Default)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub log_y: bool,
    /// Powers of ten evenly spaced along x (points with x ≤ 0 are left out).
    pub log_x: bool,
    /// Fixed y range (data units); fitted to the data when `None`.
    pub y_range: Option<(f64, f64)>,
    /// A dashed horizontal line, e.g. chance level.
    pub reference: Option<f64>,
    pub series: Vec<Series>,
    /// Names of the x positions 0, 1, 2, … (for bar charts); numeric ticks when empty.
    pub categories: Vec<String>,
}

/// Colours that read on white.
pub const PALETTE: [[f32; 3]; 8] = [
    [0.12, 0.47, 0.71],
    [0.84, 0.15, 0.16],
    [0.17, 0.63, 0.17],
    [0.58, 0.40, 0.74],
    [1.00, 0.50, 0.05],
    [0.55, 0.34, 0.29],
    [0.09, 0.75, 0.81],
    [0.74, 0.74, 0.13],
];

const SCALE: i64 = 2;
const GLYPH_W: i64 = 5 * SCALE;
const GLYPH_H: i64 = 7 * SCALE;
const ADVANCE: i64 = GLYPH_W + SCALE;

/// Draws `panels` in a grid of `columns`, `width × height` pixels in all, RGB.
pub fn render(panels: &[Panel], columns: usize, width: u32, height: u32) -> ImageData {
    let mut canvas = Canvas::new(width.max(64), height.max(64));
    let columns = columns.max(1);
    let rows = panels.len().div_ceil(columns).max(1);
    let (cell_w, cell_h) = (i64::from(canvas.width) / columns as i64, i64::from(canvas.height) / rows as i64);
    for (index, panel) in panels.iter().enumerate() {
        let (col, row) = ((index % columns) as i64, (index / columns) as i64);
        draw_panel(&mut canvas, panel, col * cell_w, row * cell_h, cell_w, cell_h);
    }
    canvas.into_image()
}

struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<f32>,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Self {
        Self { width, height, pixels: vec![1.0; width as usize * height as usize * 3] }
    }

    /// Blends `colour` over pixel `(x, y)` with opacity `alpha`; outside pixels are ignored.
    fn blend(&mut self, x: i64, y: i64, colour: [f32; 3], alpha: f32) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let at = (y as usize * self.width as usize + x as usize) * 3;
        for (c, v) in colour.iter().enumerate() {
            self.pixels[at + c] = self.pixels[at + c] * (1.0 - alpha) + v * alpha;
        }
    }

    fn rect(&mut self, x0: i64, y0: i64, w: i64, h: i64, colour: [f32; 3], alpha: f32) {
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                self.blend(x, y, colour, alpha);
            }
        }
    }

    /// A line of the given thickness, drawn as overlapping squares along its length.
    fn line(&mut self, from: (f64, f64), to: (f64, f64), colour: [f32; 3], thickness: i64, dash: bool) {
        let length = (to.0 - from.0).hypot(to.1 - from.1);
        let steps = length.ceil().max(1.0) as i64;
        let half = thickness / 2;
        for s in 0..=steps {
            if dash && (s / 6) % 2 == 1 {
                continue;
            }
            let t = s as f64 / steps as f64;
            let (x, y) = (from.0 + t * (to.0 - from.0), from.1 + t * (to.1 - from.1));
            let (x, y) = (x.round() as i64, y.round() as i64);
            for dy in -half..thickness - half {
                for dx in -half..thickness - half {
                    self.blend(x + dx, y + dy, colour, 1.0);
                }
            }
        }
    }

    fn text(&mut self, x: i64, y: i64, text: &str, colour: [f32; 3]) {
        for (i, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            for (r, bits) in rows.iter().enumerate() {
                for c in 0..5 {
                    if bits & (0x10 >> c) != 0 {
                        let (px, py) = (x + i as i64 * ADVANCE + c * SCALE, y + r as i64 * SCALE);
                        self.rect(px, py, SCALE, SCALE, colour, 1.0);
                    }
                }
            }
        }
    }

    fn into_image(self) -> ImageData {
        ImageData { width: self.width, height: self.height, channels: 3, pixels: self.pixels }
    }
}

/// Writes `text` (built-in 5×7 font, doubled) into the RGB `image` with its top left at `(x, y)`.
pub fn draw_text(image: &mut ImageData, x: i64, y: i64, text: &str, colour: [f32; 3]) {
    if image.channels != 3 {
        return;
    }
    let mut canvas = Canvas { width: image.width, height: image.height, pixels: std::mem::take(&mut image.pixels) };
    canvas.text(x, y, text, colour);
    image.pixels = canvas.pixels;
}

/// Width in pixels of `text` as [`draw_text`] writes it.
pub fn text_width(text: &str) -> i64 {
    text.chars().count() as i64 * ADVANCE
}

/// About five round tick values covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).abs().max(1e-12);
    let raw = span / 5.0;
    let magnitude = 10_f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw);
    let first = (lo / step).ceil() * step;
    (0..=12).map(|i| f64::from(i).mul_add(step, first)).take_while(|v| *v <= hi + step * 1e-9).collect()
}

/// A tick label: few digits, no trailing zeros.
pub fn format_tick(value: f64) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs();
    if !(1e-3..1e5).contains(&magnitude) {
        return format!("{value:.0e}").to_uppercase();
    }
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn draw_panel(canvas: &mut Canvas, panel: &Panel, x0: i64, y0: i64, w: i64, h: i64) {
    let black = [0.1, 0.1, 0.1];
    let grey = [0.85, 0.85, 0.85];
    let (left, right, top, bottom) = (x0 + 78, x0 + w - 16, y0 + 34, y0 + h - 44);
    if right <= left + 10 || bottom <= top + 10 {
        return;
    }
    canvas.text(x0 + (w - text_width(&panel.title)) / 2, y0 + 10, &panel.title, black);
    canvas.text(x0 + (w - text_width(&panel.x_label)) / 2, bottom + 24, &panel.x_label, black);

    let transform = |y: f64| if panel.log_y { y.max(1e-300).log10() } else { y };
    let transform_x = |x: f64| if panel.log_x { x.max(1e-300).log10() } else { x };
    let finite = |v: &f64| v.is_finite();
    let xs: Vec<f64> = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| finite(x) && (!panel.log_x || *x > 0.0))
        .map(transform_x)
        .collect();
    let mut ys: Vec<f64> = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1).chain(s.band.iter().flat_map(|b| [b.1, b.2])))
        .filter(|y| finite(y) && (!panel.log_y || *y > 0.0))
        .map(transform)
        .collect();
    if let Some(reference) = panel.reference {
        ys.push(transform(reference));
    }
    if !panel.log_y && panel.series.iter().any(|s| s.bars) {
        // Bars start at zero.
        ys.push(0.0);
    }
    let (mut x_lo, mut x_hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let (mut y_lo, mut y_hi) = match panel.y_range {
        Some((lo, hi)) => (transform(lo), transform(hi)),
        None => ys.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| (a.min(y), b.max(y))),
    };
    if !x_lo.is_finite() {
        (x_lo, x_hi) = (0.0, 1.0);
    }
    if !panel.categories.is_empty() {
        (x_lo, x_hi) = (-0.5, panel.categories.len() as f64 - 0.5);
    }
    if !y_lo.is_finite() {
        (y_lo, y_hi) = (0.0, 1.0);
    }
    if x_hi - x_lo < 1e-12 {
        (x_lo, x_hi) = (x_lo - 0.5, x_hi + 0.5);
    }
    if y_hi - y_lo < 1e-12 {
        (y_lo, y_hi) = (y_lo - 0.5, y_hi + 0.5);
    }
    if panel.y_range.is_none() {
        let pad = 0.05 * (y_hi - y_lo);
        (y_lo, y_hi) = (y_lo - pad, y_hi + pad);
    }
    let to_px = |x: f64, y: f64| -> (f64, f64) {
        let px = left as f64 + (transform_x(x) - x_lo) / (x_hi - x_lo) * (right - left) as f64;
        let py = bottom as f64 - (transform(y) - y_lo) / (y_hi - y_lo) * (bottom - top) as f64;
        (px, py)
    };

    // Grid and ticks.
    let y_ticks: Vec<(f64, String)> = if panel.log_y {
        let (lo, hi) = (y_lo.ceil() as i64, y_hi.floor() as i64);
        let stride = ((hi - lo) / 6 + 1).max(1);
        (lo..=hi).step_by(stride as usize).map(|e| (10_f64.powi(e as i32), format!("1E{e}"))).collect()
    } else {
        ticks(y_lo, y_hi).into_iter().map(|v| (v, format_tick(v))).collect()
    };
    for (value, label) in &y_ticks {
        let (_, py) = to_px(if panel.log_x { 1.0 } else { 0.0 }, *value);
        canvas.line((left as f64, py), (right as f64, py), grey, 1, false);
        canvas.text(left - 8 - text_width(label), py as i64 - GLYPH_H / 2, label, black);
    }
    let x_ticks: Vec<(f64, String)> = if !panel.categories.is_empty() {
        // Names cut to the space of one category.
        let room = ((right - left) / panel.categories.len() as i64 / ADVANCE).max(1) as usize;
        panel.categories.iter().enumerate().map(|(k, name)| (k as f64, name.chars().take(room).collect())).collect()
    } else if panel.log_x {
        let (lo, hi) = (x_lo.ceil() as i64, x_hi.floor() as i64);
        (lo..=hi).map(|e| (10_f64.powi(e as i32), format!("1E{e}"))).collect()
    } else {
        ticks(x_lo, x_hi).into_iter().map(|v| (v, format_tick(v))).collect()
    };
    for (value, label) in x_ticks {
        let (px, _) = to_px(value, if panel.log_y { 1.0 } else { 0.0 });
        canvas.line((px, top as f64), (px, bottom as f64), grey, 1, false);
        canvas.text(px as i64 - text_width(&label) / 2, bottom + 6, &label, black);
    }
    if let Some(reference) = panel.reference {
        let (_, py) = to_px(1.0, reference);
        canvas.line((left as f64, py), (right as f64, py), [0.45, 0.45, 0.45], 1, true);
    }

    // Bands, then lines and markers.
    for series in &panel.series {
        let mut band: Vec<_> = series.band.iter().filter(|b| b.0.is_finite()).copied().collect();
        band.sort_by(|a, b| a.0.total_cmp(&b.0));
        for pair in band.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let (xa, xb) = (to_px(a.0, a.1).0.round() as i64, to_px(b.0, b.1).0.round() as i64);
            for x in xa..=xb {
                let t = if xb > xa { (x - xa) as f64 / (xb - xa) as f64 } else { 0.0 };
                let (lo, hi) = (t.mul_add(b.1 - a.1, a.1), t.mul_add(b.2 - a.2, a.2));
                let (y_top, y_bottom) = (to_px(0.0, hi).1.round() as i64, to_px(0.0, lo).1.round() as i64);
                for y in y_top.max(top)..=y_bottom.min(bottom) {
                    canvas.blend(x, y, series.colour, 0.18);
                }
            }
        }
    }
    let bar_series: Vec<&Series> = panel.series.iter().filter(|s| s.bars).collect();
    let slot = 0.8 / bar_series.len().max(1) as f64;
    for (j, series) in bar_series.iter().enumerate() {
        let (_, base) = to_px(0.0, if panel.log_y { 10_f64.powf(y_lo) } else { 0.0_f64.max(y_lo) });
        for &(x, y) in series.points.iter().filter(|p| p.0.is_finite() && p.1.is_finite()) {
            let centre = x + (j as f64 - (bar_series.len() - 1) as f64 / 2.0) * slot;
            let (xa, _) = to_px(centre - slot * 0.45, y);
            let (xb, py) = to_px(centre + slot * 0.45, y);
            let (y_top, y_bottom) = (py.min(base).max(top as f64), py.max(base).min(bottom as f64));
            canvas.rect(
                xa.round() as i64,
                y_top.round() as i64,
                (xb - xa).round().max(1.0) as i64,
                (y_bottom - y_top).round().max(1.0) as i64,
                series.colour,
                1.0,
            );
        }
    }
    for series in panel.series.iter().filter(|s| !s.bars) {
        let points: Vec<(f64, f64)> = series
            .points
            .iter()
            .filter(|p| {
                p.0.is_finite() && p.1.is_finite() && (!panel.log_y || p.1 > 0.0) && (!panel.log_x || p.0 > 0.0)
            })
            .map(|&(x, y)| to_px(x, y))
            .map(|(x, y)| (x, y.clamp(top as f64, bottom as f64)))
            .collect();
        for pair in points.windows(2) {
            canvas.line(pair[0], pair[1], series.colour, 2, false);
        }
        if series.markers || points.len() == 1 {
            for &(x, y) in &points {
                canvas.rect(x.round() as i64 - 3, y.round() as i64 - 3, 7, 7, series.colour, 1.0);
            }
        }
    }
    // Frame and legend.
    for (a, b) in [
        ((left, top), (right, top)),
        ((left, bottom), (right, bottom)),
        ((left, top), (left, bottom)),
        ((right, top), (right, bottom)),
    ] {
        canvas.line((a.0 as f64, a.1 as f64), (b.0 as f64, b.1 as f64), black, 1, false);
    }
    let labelled: Vec<&Series> = panel.series.iter().filter(|s| !s.label.is_empty()).collect();
    if labelled.len() > 1 {
        let widest = labelled.iter().map(|s| text_width(&s.label)).max().unwrap_or(0);
        let (lx, mut ly) = (right - widest - 34, top + 8);
        canvas.rect(lx - 6, ly - 4, widest + 36, labelled.len() as i64 * (GLYPH_H + 6) + 4, [1.0; 3], 0.85);
        for series in labelled {
            canvas.rect(lx, ly + GLYPH_H / 2 - 2, 18, 4, series.colour, 1.0);
            canvas.text(lx + 24, ly, &series.label, black);
            ly += GLYPH_H + 6;
        }
    }
}

/// The 5×7 bitmap of `ch` (row bits, most significant of five on the left).
fn glyph(ch: char) -> [u8; 7] {
    match ch.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        '-' | '−' => [0, 0, 0, 0x1F, 0, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '±' => [0x04, 0x04, 0x1F, 0x04, 0x04, 0, 0x1F],
        '×' => [0, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0],
        '<' => [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        '>' => [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
        ' ' => [0; 7],
        // Anything else: a hollow box, so that a missing glyph is visible.
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}
