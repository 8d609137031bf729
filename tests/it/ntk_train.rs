//! NTK lab beyond the kernel: data sources, gradients of the training loss against finite
//! differences, training against the kernel regime's predictions, the sweeps and the files.

use sparsefield::compute::control::RunControl;
use sparsefield::compute::ntk::analysis::{self, NtkConfig, Which};
use sparsefield::compute::ntk::data::{DIGITS, NtkData};
use sparsefield::compute::ntk::files;
use sparsefield::compute::ntk::kernel::{HiddenLayer, eigenvalues, limit_kernel, normal_cdf};
use sparsefield::compute::ntk::sweep::{active_vs_bias, distance_vs_width, lambda_min_vs_bias};
use sparsefield::compute::ntk::train::{loss_and_gradients, train};

fn unit_rows(values: &[f64], d: usize) -> bool {
    values.chunks_exact(d).all(|row| (row.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-12)
}

#[test]
fn data_sources_put_points_on_the_sphere_with_their_targets() {
    let random = NtkData::Random { n: 30, d: 5 }.load(1).unwrap();
    assert_eq!((random.points.n, random.points.d, random.targets.len()), (30, 5, 30));
    assert!(unit_rows(&random.points.values, 5));
    assert!(random.targets.iter().all(|t| t.abs() == 1.0));
    assert!(random.targets.iter().any(|&t| t > 0.0) && random.targets.iter().any(|&t| t < 0.0));

    // Every point at exactly `spread` from its centre: two points of one cluster are at most
    // 2·spread apart, and with spread 0 they coincide.
    let spread: f64 = 10.0;
    let clustered = NtkData::Clustered { n: 40, d: 8, clusters: 4, spread_deg: spread }.load(2).unwrap();
    assert!(unit_rows(&clustered.points.values, 8));
    let x = &clustered.points.values;
    let inner = |i: usize, j: usize| (0..8).map(|k| x[i * 8 + k] * x[j * 8 + k]).sum::<f64>();
    for i in 0..40 {
        for j in (i % 4..40).step_by(4) {
            assert!(inner(i, j) >= (2.0 * spread).to_radians().cos() - 1e-12, "points {i} and {j}");
        }
        assert_eq!(clustered.targets[i], if (i % 4) % 2 == 0 { 1.0 } else { -1.0 });
    }
    let tight = NtkData::Clustered { n: 6, d: 3, clusters: 2, spread_deg: 0.0 }.load(0).unwrap();
    assert!((0..3).all(|k| (tight.points.values[k] - tight.points.values[6 + k]).abs() < 1e-12));
    let gram = limit_kernel(&tight.points, 0.0);
    assert!(eigenvalues(&gram, 6).unwrap()[0].abs() < 1e-10, "repeated points make the Gram matrix singular");

    let digits = NtkData::Digits { n: 100 }.load(0).unwrap();
    assert_eq!((digits.points.n, digits.points.d), (100, 64));
    assert!(unit_rows(&digits.points.values, 64));
    assert!(digits.targets.iter().all(|t| t.abs() == 1.0));

    for bad in [
        NtkData::Clustered { n: 10, d: 3, clusters: 0, spread_deg: 5.0 },
        NtkData::Clustered { n: 10, d: 3, clusters: 2, spread_deg: 200.0 },
        NtkData::Digits { n: DIGITS + 1 },
        NtkData::Random { n: 0, d: 3 },
    ] {
        assert!(bad.load(0).is_err(), "{bad:?}");
    }
}

/// The loss at `layer` with one parameter moved.
fn loss_at(layer: &HiddenLayer, data: &sparsefield::compute::ntk::data::Dataset) -> f64 {
    loss_and_gradients(layer, data).0
}

#[test]
fn loss_gradients_match_finite_differences() {
    let data = NtkData::Random { n: 12, d: 4 }.load(3).unwrap();
    for (bias, prune) in [(0.0, 0.0), (0.7, 0.0), (0.3, 0.5)] {
        let layer = HiddenLayer::new(24, 4, bias, prune, 5).unwrap();
        let (loss, grad_w, grad_b) = loss_and_gradients(&layer, &data);
        let outputs = layer.outputs(&data.points);
        let direct: f64 = outputs.iter().zip(&data.targets).map(|(f, y)| 0.5 * (f - y) * (f - y)).sum();
        assert!((loss - direct).abs() < 1e-12 * direct.max(1.0));
        let h = 1e-6;
        for k in 0..24 * 4 {
            let mut plus = layer.clone();
            let mut minus = layer.clone();
            plus.weights[k] += h;
            minus.weights[k] -= h;
            let numeric = (loss_at(&plus, &data) - loss_at(&minus, &data)) / (2.0 * h);
            let want = if layer.mask.as_ref().is_some_and(|m| !m[k]) { 0.0 } else { numeric };
            assert!((grad_w[k] - want).abs() < 1e-5, "B = {bias}, p = {prune}, weight {k}: {} vs {want}", grad_w[k]);
        }
        for (r, grad) in grad_b.iter().enumerate() {
            let mut plus = layer.clone();
            let mut minus = layer.clone();
            plus.bias[r] += h;
            minus.bias[r] -= h;
            let numeric = (loss_at(&plus, &data) - loss_at(&minus, &data)) / (2.0 * h);
            assert!((grad - numeric).abs() < 1e-5, "B = {bias}, p = {prune}, bias {r}");
        }
    }
}

#[test]
fn a_wide_network_trains_as_fast_as_the_kernel_predicts() {
    // Few points, many neurons: the kernel regime.
    let data = NtkData::Random { n: 8, d: 4 }.load(7).unwrap();
    for bias in [0.0, 0.5] {
        let layer = HiddenLayer::new(20_000, 4, bias, 0.0, 11).unwrap();
        let gram = layer.empirical_kernel(&data.points).unwrap();
        let values = eigenvalues(&gram, 8).unwrap();
        let (lambda_min, lambda_max) = (values[0], values[7]);
        let eta = 1.0 / lambda_max;
        let steps = (4.0 / (eta * lambda_min)).ceil() as usize;
        let run = train(&layer, &data, &gram, lambda_min, eta, steps, &RunControl::new(), &mut |_| {}).unwrap();
        assert_eq!(run.points.len(), steps + 1);
        let l0 = run.points[0].loss;
        for p in &run.points {
            assert!(
                p.loss <= p.bound * (1.0 + 1e-9) + 1e-12 * l0,
                "B = {bias}, step {}: {} > {}",
                p.step,
                p.loss,
                p.bound
            );
        }
        let last = run.points.last().unwrap();
        assert!(last.loss < l0 * (-4.0_f64).exp(), "B = {bias}: the loss fell by the predicted factor");
        // The linearized dynamics (Gram at init) follow the network within a few per cent of L(0).
        for p in &run.points {
            assert!((p.loss - p.linear).abs() < 0.02 * l0, "B = {bias}, step {}: {} vs {}", p.step, p.loss, p.linear);
        }
    }
}

#[test]
fn training_compares_with_the_dense_network_and_can_be_cancelled() {
    let config =
        NtkConfig { data: NtkData::Random { n: 20, d: 5 }, width: 512, bias: 1.0, steps: 30, ..NtkConfig::default() };
    let data = config.data.load(config.seed).unwrap();
    let spectrum = analysis::spectrum(&config, &data).unwrap();
    let mut seen = [0, 0];
    let training = analysis::training(&config, &data, &spectrum, None, &RunControl::new(), &mut |which, _| {
        seen[usize::from(which == Which::Dense)] += 1;
    })
    .unwrap()
    .unwrap();
    assert_eq!(seen, [31, 31]);
    let dense = training.dense.as_ref().expect("a dense comparison");
    assert!(dense.lambda_min != training.chosen.lambda_min);
    // The chosen run's step is step_scale / λ_max of its own Gram matrix.
    assert!((training.chosen.learning_rate * spectrum.lambda_max() - 1.0).abs() < 1e-12);
    let csv = files::training_csv(&training);
    assert!(csv.starts_with("step,loss,linearized,bound,dense_loss,dense_linearized,dense_bound\n"));
    assert_eq!(csv.lines().count(), 32);

    // Another bias needs no new dense run: a known one is reused as it is.
    let other = NtkConfig { bias: 2.0, ..config.clone() };
    assert_eq!(other.dense_key(), config.dense_key());
    let other_spectrum = analysis::spectrum(&other, &data).unwrap();
    let mut dense_steps = 0;
    let again = analysis::training(&other, &data, &other_spectrum, Some(dense), &RunControl::new(), &mut |which, _| {
        dense_steps += usize::from(which == Which::Dense);
    })
    .unwrap()
    .unwrap();
    assert_eq!((dense_steps, again.dense.as_ref()), (0, Some(dense)));

    // A dense configuration has nothing to compare with.
    let dense_config = NtkConfig { bias: 0.0, ..config.clone() };
    let spectrum = analysis::spectrum(&dense_config, &data).unwrap();
    let only = analysis::training(&dense_config, &data, &spectrum, None, &RunControl::new(), &mut |_, _| {}).unwrap();
    assert!(only.unwrap().dense.is_none());

    let control = RunControl::new();
    control.cancel();
    assert!(analysis::training(&config, &data, &spectrum, None, &control, &mut |_, _| {}).unwrap().is_none());
}

#[test]
fn sweeps_agree_with_direct_computation_and_approach_the_limit() {
    let points = NtkData::Random { n: 40, d: 6 }.load(4).unwrap().points;
    let control = RunControl::new();
    let mut calls = 0;
    let rows = lambda_min_vs_bias(&points, &[0.0, 1.0], &[128, 512], 0.0, 9, &control, &mut |_, _| calls += 1)
        .unwrap()
        .unwrap();
    assert_eq!((rows.len(), calls), (6, 6));
    for row in &rows {
        let gram = match row.width {
            Some(m) => HiddenLayer::new(m, 6, row.bias, 0.0, 9).unwrap().empirical_kernel(&points).unwrap(),
            None => limit_kernel(&points, row.bias),
        };
        let values = eigenvalues(&gram, 40).unwrap();
        assert_eq!((row.lambda_min, row.lambda_max), (values[0], values[39]));
    }
    let limit_b1 = rows.iter().find(|r| r.width.is_none() && r.bias == 1.0).unwrap();
    assert!((limit_b1.active_fraction - normal_cdf(-1.0)).abs() < 1e-15);

    // ‖K_m − K‖_F / ‖K‖_F shrinks like 1/√m: 64× the width, about 8× closer.
    let distance = distance_vs_width(&points, 0.5, &[64, 4096], 0.0, 3, &control, &mut |_, _| {}).unwrap().unwrap();
    let ratio = distance[0].relative_frobenius / distance[1].relative_frobenius;
    assert!((4.0..16.0).contains(&ratio), "distance ratio {ratio}");
    assert!(distance[1].max_abs < 0.1);

    // Measured active fractions: the same count as the activations at that bias, near 1 − Φ(B).
    let layer = HiddenLayer::new(4000, 6, 0.0, 0.0, 1).unwrap();
    for p in active_vs_bias(&layer, &points, &[0.0, 0.8, 2.0]) {
        let at_bias = HiddenLayer { bias: vec![p.bias; 4000], ..layer.clone() };
        assert!((p.measured - at_bias.active_fraction(&points)).abs() < 1e-12);
        assert!((p.measured - p.theory).abs() < 0.02, "B = {}: {} vs {}", p.bias, p.measured, p.theory);
    }

    let cancelled = RunControl::new();
    cancelled.cancel();
    assert!(lambda_min_vs_bias(&points, &[0.0], &[64], 0.0, 0, &cancelled, &mut |_, _| {}).unwrap().is_none());
    assert!(lambda_min_vs_bias(&points, &[], &[64], 0.0, 0, &control, &mut |_, _| {}).is_err());
}

#[test]
fn results_are_written_as_csv_and_png() {
    let config = NtkConfig { data: NtkData::Random { n: 16, d: 3 }, width: 64, steps: 5, ..NtkConfig::default() };
    let data = config.data.load(0).unwrap();
    let spectrum = analysis::spectrum(&config, &data).unwrap();
    let dir = std::env::temp_dir().join(format!("sparsefield_ntk_files_{}", std::process::id()));
    let written = files::write_all(&dir, Some(&spectrum), None, None, None, true).unwrap();
    let names: Vec<String> = written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for name in ["eigenvalues.csv", "active.csv", "gram.csv", "spectrum.png", "active.png", "gram.png"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let gram_csv = std::fs::read_to_string(dir.join("gram.csv")).unwrap();
    let first: Vec<f64> = gram_csv.lines().next().unwrap().split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(first, spectrum.gram[..16]);
    let image = files::gram_image(&spectrum.gram, 16, 8);
    assert_eq!((image.width, image.height), (8, 8));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lanczos_finds_the_extreme_eigenvalues_of_the_full_decomposition() {
    use sparsefield::compute::ntk::lanczos::extreme_eigenvalues;
    // A well-spread and a nearly singular Gram matrix (points 0.2° from their centres).
    for data in [NtkData::Random { n: 400, d: 8 }, NtkData::Clustered { n: 300, d: 6, clusters: 30, spread_deg: 0.2 }] {
        let points = data.load(5).unwrap().points;
        let n = points.n;
        let gram = HiddenLayer::new(512, points.d, 0.5, 0.0, 2).unwrap().empirical_kernel(&points).unwrap();
        let all = eigenvalues(&gram, n).unwrap();
        let (smallest, largest) = extreme_eigenvalues(&gram, n, 4).unwrap();
        let top = all[n - 1];
        for k in 0..4 {
            assert!((largest[k] - all[n - 1 - k]).abs() < 1e-9 * top, "{data:?}: largest {k}");
            assert!(
                (smallest[k] - all[k]).abs() < 1e-10 * top,
                "{data:?}: smallest {k}: {} vs {}",
                smallest[k],
                all[k]
            );
        }
    }
    assert!(extreme_eigenvalues(&[1.0, 2.0], 2, 1).is_err());
}

#[test]
fn the_network_draws_other_random_numbers_than_the_points_of_the_same_seed() {
    for data in
        [NtkData::Random { n: 400, d: 10 }, NtkData::Clustered { n: 400, d: 10, clusters: 400, spread_deg: 0.0 }]
    {
        let points = data.load(3).unwrap().points;
        let layer = HiddenLayer::new(400, 10, 0.0, 0.0, 3).unwrap();
        // ⟨w_r, x_r⟩ ~ N(0, 1) for independent draws; had w_r reused x_r's normals it would be ‖w_r‖ ≈ √10.
        let mean = (0..400)
            .map(|r| (0..10).map(|k| layer.weights[r * 10 + k] * points.values[r * 10 + k]).sum::<f64>())
            .sum::<f64>()
            / 400.0;
        assert!(mean.abs() < 0.25, "{data:?}: mean ⟨w_r, x_r⟩ = {mean}");
    }
}

#[test]
fn extreme_eigenvalues_of_a_singular_or_zero_gram_match_the_full_decomposition() {
    use sparsefield::compute::ntk::lanczos::extreme_eigenvalues;
    // Rank at most m (d + 1) = 64 < n: the eigenvalue 0 many times over.
    let points = NtkData::Random { n: 300, d: 3 }.load(1).unwrap().points;
    let gram = HiddenLayer::new(16, 3, 0.0, 0.0, 4).unwrap().empirical_kernel(&points).unwrap();
    let all = eigenvalues(&gram, 300).unwrap();
    let (smallest, largest) = extreme_eigenvalues(&gram, 300, 5).unwrap();
    assert_eq!(smallest, all[..5].to_vec());
    assert!((largest[0] - all[299]).abs() < 1e-9 * all[299]);
    // No neuron ever fires: the zero matrix.
    let zero = vec![0.0; 250 * 250];
    let (smallest, largest) = extreme_eigenvalues(&zero, 250, 3).unwrap();
    assert!(smallest.iter().chain(&largest).all(|v| *v == 0.0));
}

#[test]
fn the_staged_study_reports_every_stage_and_keeps_what_a_change_leaves_valid() {
    use sparsefield::compute::control::RunEvent;
    use sparsefield::compute::ntk::study::{self, NtkResults};
    let config =
        NtkConfig { data: NtkData::Random { n: 20, d: 5 }, width: 256, bias: 1.0, steps: 20, ..NtkConfig::default() };
    let fresh = NtkResults { config: config.clone(), ..NtkResults::default() };
    let (mut stages, mut snapshots, mut total) = (Vec::new(), 0, 0);
    let done = study::study(fresh, 100, &RunControl::new(), &mut |event| match event {
        RunEvent::Started { total_steps } => total = total_steps,
        RunEvent::Progress { step, .. } => stages.push(step),
        RunEvent::Snapshot(_) => snapshots += 1,
    })
    .unwrap()
    .expect("not cancelled");
    assert_eq!(stages, vec![1, 2, 3, study::STAGES]);
    assert_eq!(total, study::STAGES, "the study says how many stages it has");
    assert!(snapshots >= 3, "{snapshots} snapshots");
    assert!(done.spectrum.is_some() && done.training_done && done.lambda.is_some() && done.distance.is_some());
    // Another step count keeps the data, spectrum and sweeps but not the training; another bias
    // keeps the data and the λ_min sweep only.
    let steps = study::reusable(&done, &NtkConfig { steps: 10, ..config.clone() });
    assert!(steps.data.is_some() && steps.spectrum.is_some() && steps.lambda.is_some() && steps.distance.is_some());
    assert!(steps.training.is_none() && !steps.training_done);
    let bias = study::reusable(&done, &NtkConfig { bias: 2.0, ..config.clone() });
    assert!(bias.data.is_some() && bias.lambda.is_some() && bias.spectrum.is_none() && bias.distance.is_none());
    // Too many points for the caller, and a cancelled study.
    let error = study::study(
        NtkResults { config: config.clone(), ..NtkResults::default() },
        10,
        &RunControl::new(),
        &mut |_| {},
    );
    assert!(error.unwrap_err().to_string().contains("20 points"));
    let control = RunControl::new();
    control.cancel();
    let cancelled = study::study(NtkResults { config, ..NtkResults::default() }, 100, &control, &mut |_| {}).unwrap();
    assert!(cancelled.is_none());
}
