//! The pruning lab's figures as images (the command line's PNG files).

use super::theory::{SweepPoint, TheoryPoint, mean_std};
use crate::chart::{self, PALETTE, Panel, Series};
use crate::image_io::ImageData;

fn line(label: &str, colour: [f32; 3], points: Vec<(f64, f64)>) -> Series {
    Series { label: label.into(), colour, points, ..Series::default() }
}

/// Train loss, test accuracy, signal learning and noise memorization over the steps of one run.
pub fn run_curves(history: &[TheoryPoint], width: u32, height: u32) -> ImageData {
    #[allow(clippy::cast_precision_loss)]
    let over = |f: fn(&TheoryPoint) -> f64| -> Vec<(f64, f64)> {
        history.iter().map(|p| (p.step as f64, f(p))).filter(|(_, v)| v.is_finite()).collect()
    };
    let panels = [
        Panel {
            title: "train loss".into(),
            x_label: "step".into(),
            log_y: true,
            series: vec![line("train loss", PALETTE[0], over(|p| p.train_loss))],
            ..Panel::default()
        },
        Panel {
            title: "accuracy".into(),
            x_label: "step".into(),
            y_range: Some((0.0, 1.0)),
            reference: Some(0.5),
            series: vec![
                line("train", PALETTE[0], over(|p| p.train_accuracy)),
                line("test", PALETTE[1], over(|p| p.test_accuracy)),
            ],
            ..Panel::default()
        },
        Panel {
            title: "signal learning".into(),
            x_label: "step".into(),
            series: vec![line("signal", PALETTE[2], over(|p| p.signal))],
            ..Panel::default()
        },
        Panel {
            title: "noise memorization".into(),
            x_label: "step".into(),
            series: vec![line("noise", PALETTE[3], over(|p| p.noise))],
            ..Panel::default()
        },
    ];
    chart::render(&panels, 2, width, height)
}

/// Test accuracy (mean, band of ± one standard deviation) and train loss against the pruning
/// fraction.
pub fn sweep_chart(points: &[SweepPoint], width: u32, height: u32) -> ImageData {
    let stats =
        points.iter().map(|p| (p.prune, mean_std(&p.test_accuracy), mean_std(&p.train_loss))).collect::<Vec<_>>();
    let accuracy = Series {
        label: "test accuracy".into(),
        colour: PALETTE[1],
        points: stats.iter().map(|(p, (m, _), _)| (*p, *m)).collect(),
        band: stats.iter().map(|(p, (m, s), _)| (*p, m - s, m + s)).collect(),
        markers: true,
        ..Series::default()
    };
    let loss = Series {
        label: "train loss".into(),
        colour: PALETTE[0],
        points: stats.iter().map(|(p, _, (m, _))| (*p, *m)).collect(),
        markers: true,
        ..Series::default()
    };
    let panels = [
        Panel {
            title: "test accuracy (mean ± std over seeds)".into(),
            x_label: "pruning fraction p".into(),
            y_range: Some((0.4, 1.0)),
            reference: Some(0.5),
            series: vec![accuracy],
            ..Panel::default()
        },
        Panel {
            title: "final train loss".into(),
            x_label: "pruning fraction p".into(),
            log_y: true,
            series: vec![loss],
            ..Panel::default()
        },
    ];
    chart::render(&panels, 1, width, height)
}

/// Test accuracy against sparsity, one line per method, the dense network as a dashed line.
pub fn init_chart(results: &[super::init::InitResult], width: u32, height: u32) -> ImageData {
    use super::init::Method;
    let dense = results.iter().find(|r| r.method.is_none()).map(|r| r.test_accuracy);
    let colours = [PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[3], [0.55, 0.34, 0.29]];
    let series = Method::ALL
        .iter()
        .enumerate()
        .filter_map(|(k, &method)| {
            let mut points: Vec<(f64, f64)> =
                results.iter().filter(|r| r.method == Some(method)).map(|r| (r.sparsity, r.test_accuracy)).collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (!points.is_empty()).then(|| Series {
                label: method.label().into(),
                colour: colours[k % colours.len()],
                points,
                markers: true,
                ..Series::default()
            })
        })
        .collect();
    let panel = Panel {
        title: "test accuracy after training, pruned at init".into(),
        x_label: "sparsity (fraction of weights removed)".into(),
        reference: dense,
        series,
        ..Panel::default()
    };
    chart::render(&[panel], 1, width, height)
}
