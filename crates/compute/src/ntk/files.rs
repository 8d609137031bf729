//! The NTK lab's results as files: CSV tables for other tools, PNG charts and the Gram matrix as
//! an image. The command line and the lab's export write the same files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::analysis::{Spectrum, Training};
use super::sweep::{ActivePoint, BiasPoint, DistancePoint};
use super::train::TrainRun;
use crate::chart::{self, PALETTE, Panel, Series};
use crate::colormap::heat;
use crate::image_io::{self, ImageData};

fn line(label: &str, colour: [f32; 3], points: Vec<(f64, f64)>) -> Series {
    Series { label: label.into(), colour, points, ..Series::default() }
}

const GREY: [f32; 3] = [0.45, 0.45, 0.45];

/// The linearized prediction is drawn down to this fraction of the initial loss (it can fall to
/// round-off, which would squash the other curves).
pub const LINEAR_FLOOR: f64 = 1e-8;

/// Eigenvalues below this fraction of the largest are round-off (the Gram matrix is singular).
pub const NUMERICALLY_ZERO: f64 = 1e-12;

/// `index,empirical,limit`, ascending.
pub fn eigenvalues_csv(spectrum: &Spectrum) -> String {
    let mut csv = String::from("index,empirical,limit\n");
    for (k, (e, l)) in spectrum.eigenvalues.iter().zip(&spectrum.limit_eigenvalues).enumerate() {
        let _ = writeln!(csv, "{k},{e},{l}");
    }
    csv
}

/// The Gram matrix, one row per line.
pub fn gram_csv(gram: &[f64], n: usize) -> String {
    let mut text = String::with_capacity(gram.len() * 20);
    for row in gram.chunks_exact(n.max(1)) {
        for (j, v) in row.iter().enumerate() {
            let _ = write!(text, "{}{v}", if j == 0 { "" } else { "," });
        }
        text.push('\n');
    }
    text
}

/// The Gram matrix as a heat image (0 dark, its largest entry bright), averaged over blocks so
/// that no side exceeds `max_side`.
pub fn gram_image(gram: &[f64], n: usize, max_side: usize) -> ImageData {
    let block = n.div_ceil(max_side.max(1)).max(1);
    let side = n.div_ceil(block).max(1);
    let mut sums = vec![0.0; side * side];
    let mut counts = vec![0_u32; side * side];
    for (i, row) in gram.chunks_exact(n.max(1)).enumerate() {
        for (j, v) in row.iter().enumerate() {
            let at = (i / block) * side + j / block;
            sums[at] += v;
            counts[at] += 1;
        }
    }
    let means: Vec<f64> = sums.iter().zip(&counts).map(|(s, &c)| s / f64::from(c.max(1))).collect();
    let top = means.iter().copied().fold(f64::MIN_POSITIVE, f64::max);
    #[allow(clippy::cast_possible_truncation)]
    let pixels = means.iter().flat_map(|v| heat((v / top) as f32)).collect();
    #[allow(clippy::cast_possible_truncation)]
    let side_px = side as u32;
    ImageData { width: side_px, height: side_px, channels: 3, pixels }
}

/// `bias,measured,theory`.
pub fn active_csv(curve: &[ActivePoint]) -> String {
    let mut csv = String::from("bias,measured,theory\n");
    for p in curve {
        let _ = writeln!(csv, "{},{},{}", p.bias, p.measured, p.theory);
    }
    csv
}

/// `bias,width,lambda_min,lambda_max,active_fraction`; the limit's width is `limit`.
pub fn lambda_csv(points: &[BiasPoint]) -> String {
    let mut csv = String::from("bias,width,lambda_min,lambda_max,active_fraction\n");
    for p in points {
        let width = p.width.map_or_else(|| "limit".to_owned(), |m| m.to_string());
        let _ = writeln!(csv, "{},{width},{},{},{}", p.bias, p.lambda_min, p.lambda_max, p.active_fraction);
    }
    csv
}

/// `bias,width,relative_frobenius,max_abs`.
pub fn distance_csv(points: &[DistancePoint]) -> String {
    let mut csv = String::from("bias,width,relative_frobenius,max_abs\n");
    for p in points {
        let _ = writeln!(csv, "{},{},{},{}", p.bias, p.width, p.relative_frobenius, p.max_abs);
    }
    csv
}

/// `step,loss,linearized,bound` and, with a dense comparison, the same three for it.
pub fn training_csv(training: &Training) -> String {
    let mut csv = String::from("step,loss,linearized,bound");
    if training.dense.is_some() {
        csv.push_str(",dense_loss,dense_linearized,dense_bound");
    }
    csv.push('\n');
    for (k, p) in training.chosen.points.iter().enumerate() {
        let _ = write!(csv, "{},{},{},{}", p.step, p.loss, p.linear, p.bound);
        if let Some(dense) = &training.dense {
            match dense.points.get(k) {
                Some(q) => {
                    let _ = write!(csv, ",{},{},{}", q.loss, q.linear, q.bound);
                }
                None => csv.push_str(",,,"),
            }
        }
        csv.push('\n');
    }
    csv
}

/// Eigenvalues largest first against their rank, log scale, empirical and limit.
pub fn spectrum_panel(spectrum: &Spectrum) -> Panel {
    #[allow(clippy::cast_precision_loss)]
    let ranked = |values: &[f64]| -> Vec<(f64, f64)> {
        values.iter().rev().enumerate().map(|(k, &v)| ((k + 1) as f64, v)).collect()
    };
    Panel {
        title: "ntk eigenvalues".into(),
        x_label: "rank".into(),
        log_y: true,
        series: vec![
            line("empirical", PALETTE[0], ranked(&spectrum.eigenvalues)),
            line("limit", PALETTE[1], ranked(&spectrum.limit_eigenvalues)),
        ],
        ..Panel::default()
    }
}

/// Active fraction against the bias: measured and `1 − Φ(B)`.
pub fn active_panel(curve: &[ActivePoint]) -> Panel {
    Panel {
        title: "active fraction".into(),
        x_label: "bias b".into(),
        y_range: Some((0.0, 1.0)),
        series: vec![
            line("measured", PALETTE[0], curve.iter().map(|p| (p.bias, p.measured)).collect()),
            line("1 - phi(b)", PALETTE[1], curve.iter().map(|p| (p.bias, p.theory)).collect()),
        ],
        ..Panel::default()
    }
}

/// λ_min against the bias, one line per width and the limit.
pub fn lambda_panel(points: &[BiasPoint]) -> Panel {
    let mut widths: Vec<Option<usize>> = Vec::new();
    for p in points {
        if !widths.contains(&p.width) {
            widths.push(p.width);
        }
    }
    let series = widths
        .iter()
        .enumerate()
        .map(|(k, &width)| {
            let label = width.map_or_else(|| "limit".to_owned(), |m| format!("m = {m}"));
            let colour = if width.is_none() { GREY } else { PALETTE[k % PALETTE.len()] };
            // Values at round-off level (points no neuron sees) would squash the axis.
            let pts = points
                .iter()
                .filter(|p| p.width == width && p.lambda_min > NUMERICALLY_ZERO * p.lambda_max)
                .map(|p| (p.bias, p.lambda_min))
                .collect();
            Series { markers: true, ..line(&label, colour, pts) }
        })
        .collect();
    Panel { title: "lambda min".into(), x_label: "bias b".into(), log_y: true, series, ..Panel::default() }
}

/// Distance to the limit against the width, log–log, one line per bias, with a `1/√m` guide
/// through the first point.
pub fn distance_panel(points: &[DistancePoint]) -> Panel {
    let mut biases: Vec<f64> = Vec::new();
    for p in points {
        if !biases.contains(&p.bias) {
            biases.push(p.bias);
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let mut series: Vec<Series> = biases
        .iter()
        .enumerate()
        .map(|(k, &bias)| {
            let pts = points.iter().filter(|p| p.bias == bias).map(|p| (p.width as f64, p.relative_frobenius));
            Series { markers: true, ..line(&format!("b = {bias}"), PALETTE[k % PALETTE.len()], pts.collect()) }
        })
        .collect();
    let guide = series
        .first()
        .and_then(|s| s.points.first().copied())
        .map_or_else(Vec::new, |(m0, d0)| series[0].points.iter().map(|&(m, _)| (m, d0 * (m0 / m).sqrt())).collect());
    series.push(line("1/sqrt(m)", GREY, guide));
    Panel {
        title: "relative distance to the limit".into(),
        x_label: "width m".into(),
        log_x: true,
        log_y: true,
        series,
        ..Panel::default()
    }
}

fn run_series(run: &TrainRun, label: &str, colours: [[f32; 3]; 2], linear: bool) -> Vec<Series> {
    #[allow(clippy::cast_precision_loss)]
    let over = |f: fn(&super::train::TrainPoint) -> f64| -> Vec<(f64, f64)> {
        run.points.iter().map(|p| (p.step as f64, f(p))).collect()
    };
    let mut series = vec![
        line(&format!("{label} loss"), colours[0], over(|p| p.loss)),
        line(&format!("{label} exp(-eta lmin t) l0"), colours[1], over(|p| p.bound)),
    ];
    if linear {
        let floor = run.points.first().map_or(0.0, |p| p.loss * LINEAR_FLOOR);
        let mut points = over(|p| p.linear);
        points.retain(|p| p.1 > floor);
        series.push(line(&format!("{label} linearized"), GREY, points));
    }
    series
}

/// Training loss and its prediction, log scale; the dense network beside the chosen one.
pub fn training_panel(training: &Training) -> Panel {
    let mut series = run_series(&training.chosen, "", [PALETTE[0], [0.55, 0.75, 0.9]], true);
    if let Some(dense) = &training.dense {
        series.extend(run_series(dense, "dense", [PALETTE[1], [0.95, 0.6, 0.6]], false));
    }
    for s in &mut series {
        s.label = s.label.trim().to_owned();
    }
    Panel { title: "training loss".into(), x_label: "step".into(), log_y: true, series, ..Panel::default() }
}

/// Everything the lab has, as files in `dir`; returns the paths written.
pub fn write_all(
    dir: &Path,
    spectrum: Option<&Spectrum>,
    lambda: Option<&[BiasPoint]>,
    distance: Option<&[DistancePoint]>,
    training: Option<&Training>,
    with_gram: bool,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create the folder ({e})", dir.display()))?;
    let mut written = Vec::new();
    let mut text = |name: &str, contents: &str| -> Result<(), String> {
        let path = dir.join(name);
        crate::files::write_atomic(&path, contents).map_err(|e| format!("{}: cannot write ({e})", path.display()))?;
        written.push(path);
        Ok(())
    };
    let mut panels = Vec::new();
    if let Some(s) = spectrum {
        text("eigenvalues.csv", &eigenvalues_csv(s))?;
        text("active.csv", &active_csv(&s.active_curve))?;
        if with_gram {
            text("gram.csv", &gram_csv(&s.gram, s.n))?;
        }
        panels.push(("spectrum.png", spectrum_panel(s)));
        panels.push(("active.png", active_panel(&s.active_curve)));
    }
    if let Some(points) = lambda {
        text("lambda_min.csv", &lambda_csv(points))?;
        panels.push(("lambda_min.png", lambda_panel(points)));
    }
    if let Some(points) = distance {
        text("distance.csv", &distance_csv(points))?;
        panels.push(("distance.png", distance_panel(points)));
    }
    if let Some(t) = training {
        text("training.csv", &training_csv(t))?;
        panels.push(("training.png", training_panel(t)));
    }
    let mut image = |name: &str, data: &ImageData| -> Result<(), String> {
        let path = dir.join(name);
        image_io::save_png(data, &path).map_err(|e| e.to_string())?;
        written.push(path);
        Ok(())
    };
    for (name, panel) in panels {
        image(name, &chart::render(std::slice::from_ref(&panel), 1, 800, 560))?;
    }
    if let Some(s) = spectrum {
        image("gram.png", &gram_image(&s.gram, s.n, 1024))?;
    }
    Ok(written)
}
