//! The random-pruning theory model: its loss against a direct formula, its gradient against
//! finite differences, the two solvers against each other, masks, the phase picture, the charts.

use sparsefield::compute::chart::{self, Panel, Series};
use sparsefield::compute::control::RunControl;
use sparsefield::compute::prune::theory::{
    self, RunOptions, Solver, TheoryConfig, TheoryData, TheoryInit, evaluate, mean_std, sweep, train,
};

fn small(prune: f64, seed: u64) -> TheoryConfig {
    TheoryConfig {
        dim: 300,
        signal_norm: 8.0,
        signal_coords: 3,
        n_train: 12,
        n_test: 50,
        width: 4,
        init_std: 0.05,
        steps: 30,
        prune,
        seed,
        ..TheoryConfig::default()
    }
}

/// `f(x)` straight from the definition: `(1/m) Σ_r ±[σ(⟨w_r, yμ⟩) + σ(⟨w_r, ξ⟩)]`.
fn direct_output(config: &TheoryConfig, weights: &[f64], signal: &[f64], noise: &[f64], y: f64) -> f64 {
    let (m, d) = (config.width, config.dim);
    let sigma = |z: f64| z.max(0.0).powi(config.power as i32);
    (0..2 * m)
        .map(|r| {
            let w = &weights[r * d..(r + 1) * d];
            let a: f64 = w.iter().zip(signal).map(|(w, s)| w * y * s).sum();
            let b: f64 = w.iter().zip(noise).map(|(w, x)| w * x).sum();
            let sign = if r < m { 1.0 } else { -1.0 };
            sign * (sigma(a) + sigma(b)) / m as f64
        })
        .sum()
}

fn direct_loss(config: &TheoryConfig, data: &TheoryData, weights: &[f64]) -> f64 {
    let d = config.dim;
    (0..data.n_train())
        .map(|i| {
            let f =
                direct_output(config, weights, &data.signal, &data.train_noise[i * d..(i + 1) * d], data.train_true[i]);
            (1.0 + (-data.train_labels[i] * f).exp()).ln()
        })
        .sum::<f64>()
        / data.n_train() as f64
}

#[test]
fn data_follow_the_model() {
    let config =
        TheoryConfig { dim: 400, n_train: 300, n_test: 10, signal_coords: 4, label_flip: 0.2, ..small(0.0, 3) };
    let data = TheoryData::generate(&config);
    let norm: f64 = data.signal.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((norm - config.signal_norm).abs() < 1e-9);
    assert_eq!(data.signal.iter().filter(|v| **v != 0.0).count(), 4);
    let d = config.dim;
    let mut sum_sq = 0.0;
    for i in 0..data.n_train() {
        let xi = &data.train_noise[i * d..(i + 1) * d];
        let along: f64 = xi.iter().zip(&data.signal).map(|(a, b)| a * b).sum();
        assert!(along.abs() < 1e-9, "noise is orthogonal to μ ({along})");
        sum_sq += xi.iter().map(|v| v * v).sum::<f64>();
    }
    // E‖ξ‖² = σ_p² (d − 1).
    let mean_sq = sum_sq / data.n_train() as f64;
    assert!((mean_sq / (d as f64 - 1.0) - 1.0).abs() < 0.02, "{mean_sq}");
    let flipped = data.train_labels.iter().zip(&data.train_true).filter(|(a, b)| a != b).count();
    assert!((40..=80).contains(&flipped), "about 20% of 300 labels flipped: {flipped}");
}

#[test]
fn loss_matches_the_definition_and_gradient_matches_finite_differences() {
    for (power, prune) in [(3, 0.3), (1, 0.0), (2, 0.7)] {
        let config = TheoryConfig { power, label_flip: 0.1, init_std: 0.2, ..small(prune, 1) };
        let data = TheoryData::generate(&config);
        let init = TheoryInit::new(&config);
        let point = evaluate(&config, &data, &init.weights).unwrap();
        let want = direct_loss(&config, &data, &init.weights);
        assert!((point.train_loss - want).abs() < 1e-12 * want.max(1.0), "{} vs {want}", point.train_loss);

        // One explicit step of size lr moves the weights by −lr ∇L (on kept weights).
        let lr = 1e-3;
        let one = TheoryConfig { steps: 1, learning_rate: lr, ..config.clone() };
        let options = RunOptions { solver: Solver::Explicit, ..RunOptions::default() };
        let run = train(&one, &data, &init, options, &RunControl::new(), &mut |_| {}).unwrap();
        let d = config.dim;
        let mut checked = 0;
        for index in (0..init.weights.len()).step_by(17) {
            let gradient = (init.weights[index] - run.weights[index]) / lr;
            if !init.mask[index] {
                assert_eq!(run.weights[index], 0.0);
                continue;
            }
            let eps = 1e-5;
            let mut plus = init.weights.clone();
            plus[index] += eps;
            let mut minus = init.weights.clone();
            minus[index] -= eps;
            let fd = (direct_loss(&config, &data, &plus) - direct_loss(&config, &data, &minus)) / (2.0 * eps);
            let scale = fd.abs().max(1e-6);
            assert!(
                (gradient - fd).abs() < 1e-4 * scale + 1e-9,
                "q = {power}, weight ({}, {}): {gradient} vs finite difference {fd}",
                index / d,
                index % d
            );
            checked += 1;
        }
        assert!(checked > 20);
        // The signal coordinates get a gradient too (the check above samples them rarely).
        let kept_signal = (0..2 * config.width).find(|&r| init.mask[r * d]).unwrap();
        assert_ne!(run.weights[kept_signal * d], init.weights[kept_signal * d]);
    }
}

#[test]
fn gram_and_explicit_solvers_take_the_same_steps() {
    for (prune, power) in [(0.0, 3), (0.6, 1), (0.9, 2)] {
        let config = TheoryConfig { power, steps: 60, n_train: 10, ..small(prune, 5) };
        let data = TheoryData::generate(&config);
        let init = TheoryInit::new(&config);
        let run = |solver| {
            let options = RunOptions { solver, test_every: 20, ..RunOptions::default() };
            train(&config, &data, &init, options, &RunControl::new(), &mut |_| {}).unwrap()
        };
        let (gram, explicit) = (run(Solver::Gram), run(Solver::Explicit));
        assert_eq!((gram.solver, explicit.solver), (Solver::Gram, Solver::Explicit));
        assert_eq!(gram.history.len(), 61);
        for (a, b) in gram.history.iter().zip(&explicit.history) {
            for (x, y) in [(a.train_loss, b.train_loss), (a.signal, b.signal), (a.noise, b.noise)] {
                assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "step {}: {x} vs {y}", a.step);
            }
            assert!(a.test_accuracy == b.test_accuracy || (a.test_accuracy.is_nan() && b.test_accuracy.is_nan()));
        }
        let worst = gram.weights.iter().zip(&explicit.weights).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-9, "weights differ by {worst}");
        // The run did learn something: not a comparison of two copies of the initial state.
        assert!(gram.last.train_loss < 0.5 * gram.history[0].train_loss);
    }
}

#[test]
fn masks_keep_their_zeros_and_are_nested_across_fractions() {
    let config = TheoryConfig { steps: 40, ..small(0.8, 2) };
    let data = TheoryData::generate(&config);
    let init = TheoryInit::new(&config);
    assert!((init.kept_fraction() - 0.2).abs() < 0.03, "{}", init.kept_fraction());
    for solver in [Solver::Gram, Solver::Explicit] {
        let options = RunOptions { solver, ..RunOptions::default() };
        let run = train(&config, &data, &init, options, &RunControl::new(), &mut |_| {}).unwrap();
        for (w, keep) in run.weights.iter().zip(&init.mask) {
            if *keep {
                continue;
            }
            assert_eq!(*w, 0.0, "{solver:?}: a pruned weight moved");
        }
        let moved = run.weights.iter().zip(&init.weights).filter(|(a, b)| a != b).count();
        assert!(moved > init.mask.iter().filter(|k| **k).count() / 2, "{solver:?}: kept weights train");
    }
    // A weight kept at p = 0.8 is kept at p = 0.5, with the same initial value.
    let looser = TheoryInit::new(&TheoryConfig { prune: 0.5, ..config });
    for i in 0..init.mask.len() {
        if init.mask[i] {
            assert!(looser.mask[i]);
            assert_eq!(looser.weights[i], init.weights[i]);
        }
    }
}

#[test]
fn settings_are_checked_and_runs_can_be_cancelled() {
    for bad in [
        TheoryConfig { prune: 1.0, ..TheoryConfig::default() },
        TheoryConfig { dim: 1, ..TheoryConfig::default() },
        TheoryConfig { signal_coords: 0, ..TheoryConfig::default() },
        TheoryConfig { learning_rate: f64::NAN, ..TheoryConfig::default() },
        TheoryConfig { n_test: 1_000_000, dim: 200_000, ..TheoryConfig::default() },
        // 2m × d weights beyond the memory limit, though the data would fit.
        TheoryConfig { width: 2000, dim: 200_000, n_train: 10, n_test: 10, ..TheoryConfig::default() },
        // Scales whose powers overflow at once.
        TheoryConfig { signal_norm: 1e300, ..TheoryConfig::default() },
        TheoryConfig { init_std: 1e200, ..TheoryConfig::default() },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
    // Settings within range whose run still overflows stop with an error naming the step.
    let wild = TheoryConfig {
        noise_std: 1e6,
        init_std: 1e6,
        signal_norm: 1e6,
        power: 6,
        learning_rate: 1000.0,
        ..small(0.5, 0)
    };
    let (data, init) = (TheoryData::generate(&wild), TheoryInit::new(&wild));
    for solver in [Solver::Gram, Solver::Explicit] {
        let options = RunOptions { solver, ..RunOptions::default() };
        let error = train(&wild, &data, &init, options, &RunControl::new(), &mut |_| {}).unwrap_err().to_string();
        assert!(error.contains("diverged") && error.contains("at step") && error.contains("learning rate"), "{error}");
    }
    let config = small(0.5, 0);
    let data = TheoryData::generate(&config);
    let init = TheoryInit::new(&config);
    let control = RunControl::new();
    control.cancel();
    let run = train(&config, &data, &init, RunOptions::default(), &control, &mut |_| {}).unwrap();
    assert!(run.cancelled);
    assert!(run.last.test_accuracy.is_finite(), "a cancelled run is still scored");
    assert!(sweep(&config, &[0.5], 1, &control, &mut |_, _| {}).unwrap().is_none());
    assert!(sweep(&config, &[], 1, &RunControl::new(), &mut |_, _| {}).is_err());
    assert!(sweep(&config, &[0.5, 1.2], 1, &RunControl::new(), &mut |_, _| {}).is_err());
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]) }
}

/// The paper's picture: pruning half the weights helps, pruning 99% falls to chance, and the
/// training loss is small at all three. At p = 0.99 a seed now and then keeps a neuron that sees
/// the signal (each weight survives with probability 1%) and scores well above chance, so chance
/// is asserted of the median over seeds. This setting (m = 10, ‖μ‖ = 13, 1000 steps) was checked
/// on seeds 0–9, 100–109, …, 400–409: means 0.75–0.85 (p = 0) and 0.86–0.94 (p = 0.5), medians
/// 0.49–0.53 at p = 0.99, train loss ≤ 0.035.
#[test]
fn sweep_shows_the_three_regimes() {
    let config = TheoryConfig { n_test: 400, steps: 1000, width: 10, signal_norm: 13.0, ..TheoryConfig::default() };
    let points = sweep(&config, &[0.0, 0.5, 0.99], 10, &RunControl::new(), &mut |_, _| {}).unwrap().unwrap();
    let mean: Vec<f64> = points.iter().map(|p| mean_std(&p.test_accuracy).0).collect();
    let median: Vec<f64> = points.iter().map(|p| median(&p.test_accuracy)).collect();
    let loss = points.iter().flat_map(|p| p.train_loss.iter().copied()).fold(0.0, f64::max);
    assert!(mean[1] > mean[0] + 0.05, "p = 0.5 beats p = 0: means {mean:?}");
    assert!(median[0] > median[2] + 0.15, "p = 0 beats p = 0.99: medians {median:?}");
    assert!((median[2] - 0.5).abs() < 0.05, "p = 0.99 is at chance: medians {median:?}");
    assert!(loss < 0.05, "train loss small everywhere (worst {loss})");
    assert_eq!(points[0].test_accuracy.len(), 10);
}

#[test]
fn charts_draw_lines_where_the_data_are() {
    let panel = Panel {
        title: "t".into(),
        x_label: "x".into(),
        y_range: Some((0.0, 1.0)),
        series: vec![Series {
            label: "half".into(),
            colour: [1.0, 0.0, 0.0],
            points: vec![(0.0, 0.5), (1.0, 0.5)],
            ..Series::default()
        }],
        ..Panel::default()
    };
    let image = chart::render(&[panel], 1, 400, 300);
    assert_eq!((image.width, image.height, image.channels), (400, 300, 3));
    let red = |x: u32, y: u32| image.at(x, y, 0) > 0.9 && image.at(x, y, 1) < 0.1;
    // The plot spans rows 34..256: y = 0.5 is row 145; the line is 2 px thick.
    let rows: Vec<u32> = (0..300).filter(|&y| red(250, y)).collect();
    assert!(!rows.is_empty() && rows.iter().all(|y| (143..=147).contains(y)), "{rows:?}");
    assert!(!red(250, 60) && !red(250, 230));
    assert_eq!(chart::format_tick(0.25), "0.25");
    assert_eq!(chart::format_tick(2.0), "2");
    assert_eq!(chart::format_tick(1e-6), "1E-6");
    let _ = theory::DEFAULT_FRACTIONS;
}
