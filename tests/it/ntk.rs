//! NTK kernels: Owen's T and the orthant probability against closed forms and an independent
//! quadrature, the B = 0 arc-cosine limit, the empirical kernel against the Jacobian and against
//! the limit as the width grows, and eigenvalues.

use sparsefield::compute::ntk::kernel::{HiddenLayer, Points, eigenvalues, limit_kernel, normal_cdf, orthant, owens_t};

#[test]
fn owens_t_matches_its_closed_forms() {
    for h in [-2.0, -0.5, 0.0, 0.3, 1.0, 2.5, 6.0] {
        // T(h, 1) = ½ Φ(h) (1 − Φ(h)).
        let want = 0.5 * normal_cdf(h) * (1.0 - normal_cdf(h));
        assert!((owens_t(h, 1.0) - want).abs() < 1e-14, "T({h}, 1)");
        // T(h, a) is even in h and odd in a; T(h, ∞) = ¼ erfc(|h|/√2) = ½ Φ(−|h|).
        assert!((owens_t(h, 0.7) - owens_t(-h, 0.7)).abs() < 1e-15);
        assert!((owens_t(h, -0.7) + owens_t(h, 0.7)).abs() < 1e-15);
        assert!((owens_t(h, 1e9) - 0.5 * normal_cdf(-h.abs())).abs() < 1e-9, "T({h}, ∞)");
    }
    for a in [0.1, 0.5, 1.0, 3.0] {
        assert!((owens_t(0.0, a) - a.atan() / (2.0 * std::f64::consts::PI)).abs() < 1e-15);
    }
}

/// `P(Z₁ > b, Z₂ > b)` as `∫_b^∞ φ(z) Φ((ρz − b)/√(1−ρ²)) dz` by composite Simpson: an
/// independent route to the same number.
fn orthant_by_quadrature(rho: f64, b: f64) -> f64 {
    let (upper, steps) = (b.max(0.0) + 12.0, 200_000);
    let h = (upper - b) / steps as f64;
    let s = (1.0 - rho * rho).sqrt();
    let f = |z: f64| (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt() * normal_cdf((rho * z - b) / s);
    let mut sum = f(b) + f(upper);
    for k in 1..steps {
        sum += f(b + k as f64 * h) * if k % 2 == 1 { 4.0 } else { 2.0 };
    }
    sum * h / 3.0
}

#[test]
fn orthant_probability_matches_quadrature_symmetry_and_the_arc_cosine_limit() {
    for b in [-1.5, -0.3, 0.0, 0.5, 1.0, 2.0, 3.0] {
        for rho in [-0.95, -0.5, 0.0, 0.3, 0.8, 0.99] {
            let got = orthant(rho, b);
            let want = orthant_by_quadrature(rho, b);
            assert!((got - want).abs() < 1e-10, "ρ = {rho}, B = {b}: {got} vs {want}");
        }
        // Independent normals, and the two ends.
        assert!((orthant(0.0, b) - normal_cdf(-b).powi(2)).abs() < 1e-14);
        assert!((orthant(1.0, b) - normal_cdf(-b)).abs() < 1e-15);
        assert!((orthant(-1.0, b) - (normal_cdf(-b) - normal_cdf(b)).max(0.0)).abs() < 1e-15);
    }
    // B = 0: (π − arccos ρ)/(2π), to 1e-9 and better.
    for k in 0..=200 {
        let rho = -1.0 + 2.0 * k as f64 / 200.0;
        let want = (std::f64::consts::PI - rho.acos()) / (2.0 * std::f64::consts::PI);
        assert!((orthant(rho, 0.0) - want).abs() < 1e-12, "ρ = {rho}");
    }
    // Monotone in ρ (more correlation, more joint mass above B).
    let values: Vec<f64> = (0..50).map(|k| orthant(-0.98 + 0.04 * k as f64, 1.0)).collect();
    assert!(values.windows(2).all(|w| w[1] >= w[0]));
}

#[test]
fn empirical_kernel_is_the_jacobian_gram_and_tends_to_the_limit() {
    let points = Points::random_sphere(6, 4, 1).unwrap();
    for prune in [0.0, 0.4] {
        let layer = HiddenLayer::new(40, 4, 0.3, prune, 2).unwrap();
        let kernel = layer.empirical_kernel(&points).unwrap();
        // Jacobian of f with respect to (w, b) by central differences (f is piecewise linear;
        // the seed keeps every pre-activation away from its kink).
        let params = |layer: &HiddenLayer| -> Vec<f64> { layer.weights.iter().chain(&layer.bias).copied().collect() };
        let base = params(&layer);
        let eps = 1e-7;
        let mut jacobian = vec![vec![0.0; base.len()]; points.n];
        for (p, _) in base.iter().enumerate() {
            if p < 40 * 4 && layer.mask.as_ref().is_some_and(|m| !m[p]) {
                continue; // a pruned weight is not a parameter
            }
            let shifted = |delta: f64| {
                let mut moved = layer.clone();
                if p < 40 * 4 {
                    moved.weights[p] += delta;
                } else {
                    moved.bias[p - 40 * 4] += delta;
                }
                moved.outputs(&points)
            };
            let (plus, minus) = (shifted(eps), shifted(-eps));
            for i in 0..points.n {
                jacobian[i][p] = (plus[i] - minus[i]) / (2.0 * eps);
            }
        }
        for i in 0..points.n {
            for j in 0..points.n {
                let want: f64 = jacobian[i].iter().zip(&jacobian[j]).map(|(a, b)| a * b).sum();
                let got = kernel[i * points.n + j];
                assert!((got - want).abs() < 1e-6, "p = {prune}: K[{i},{j}] = {got}, JJᵀ = {want}");
            }
        }
        assert!(kernel.iter().any(|v| *v > 0.05), "the kernel is not trivially zero");
    }

    // Monte Carlo: with m = 40000 neurons each entry is a mean of m bounded terms (≤ 2), so its
    // error is below 4·2/√m ≈ 0.04 with overwhelming probability.
    let points = Points::random_sphere(12, 5, 3).unwrap();
    for bias in [0.0, 1.0] {
        let limit = limit_kernel(&points, bias);
        let mut errors = Vec::new();
        for width in [400, 40_000] {
            let layer = HiddenLayer::new(width, 5, bias, 0.0, 7).unwrap();
            let kernel = layer.empirical_kernel(&points).unwrap();
            errors.push(kernel.iter().zip(&limit).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max));
        }
        assert!(errors[1] < 0.04, "B = {bias}: m = 40000 is {} from the limit", errors[1]);
        assert!(errors[1] < errors[0], "B = {bias}: wider is closer ({errors:?})");
        // The active fraction is about 1 − Φ(B).
        let layer = HiddenLayer::new(40_000, 5, bias, 0.0, 7).unwrap();
        assert!((layer.active_fraction(&points) - normal_cdf(-bias)).abs() < 0.02);
    }
}

#[test]
fn eigenvalues_of_a_gram_matrix_check_out() {
    let points = Points::random_sphere(30, 6, 5).unwrap();
    let n = points.n;
    let kernel = limit_kernel(&points, 0.5);
    let values = eigenvalues(&kernel, n).unwrap();
    assert_eq!(values.len(), n);
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "ascending");
    // Trace and Frobenius norm are the sum of λ and of λ².
    let trace: f64 = (0..n).map(|i| kernel[i * n + i]).sum();
    let frobenius: f64 = kernel.iter().map(|v| v * v).sum();
    assert!((values.iter().sum::<f64>() - trace).abs() < 1e-10 * trace);
    assert!((values.iter().map(|v| v * v).sum::<f64>() - frobenius).abs() < 1e-9 * frobenius);
    // A positive semi-definite kernel: λ_min ≥ 0 (up to rounding), and every Rayleigh quotient
    // lies between λ_min and λ_max.
    assert!(values[0] > -1e-10, "{}", values[0]);
    for seed in 0..5 {
        let v = Points::random_sphere(1, n, 100 + seed).unwrap().values;
        let kv: Vec<f64> = (0..n).map(|i| (0..n).map(|j| kernel[i * n + j] * v[j]).sum()).collect();
        let quotient: f64 = v.iter().zip(&kv).map(|(a, b)| a * b).sum();
        assert!(quotient >= values[0] - 1e-12 && quotient <= values[n - 1] + 1e-12);
    }
    assert!(eigenvalues(&kernel[1..], n).is_err());

    // Against cyclic Jacobi rotations, which also give the eigenvectors: K v = λ v for each pair.
    let (jacobi_values, vectors) = jacobi(&kernel, n);
    let mut sorted = jacobi_values.clone();
    sorted.sort_by(f64::total_cmp);
    for (a, b) in sorted.iter().zip(&values) {
        assert!((a - b).abs() < 1e-11 * values[n - 1], "{a} vs {b}");
    }
    for (k, &lambda) in jacobi_values.iter().enumerate() {
        let v: Vec<f64> = (0..n).map(|i| vectors[i * n + k]).collect();
        for i in 0..n {
            let kv: f64 = (0..n).map(|j| kernel[i * n + j] * v[j]).sum();
            assert!((kv - lambda * v[i]).abs() < 1e-11 * values[n - 1], "K v = λ v for λ = {lambda}");
        }
    }
}

/// Eigenvalues (unsorted) and eigenvectors (columns of an `n × n` row-major matrix) of a
/// symmetric matrix by cyclic Jacobi rotations.
fn jacobi(matrix: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = matrix.to_vec();
    let mut v: Vec<f64> = (0..n * n).map(|k| if k / n == k % n { 1.0 } else { 0.0 }).collect();
    for _sweep in 0..50 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off < 1e-26 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[test]
fn bad_points_and_settings_are_refused() {
    assert!(Points::normalized(2, 2, vec![1.0, 0.0, 0.0, 0.0]).unwrap_err().to_string().contains("point 2"));
    assert!(Points::normalized(2, 2, vec![1.0, f64::NAN, 1.0, 1.0]).unwrap_err().to_string().contains("point 1"));
    assert!(Points::normalized(2, 2, vec![1.0]).is_err());
    assert!(HiddenLayer::new(0, 3, 0.0, 0.0, 0).is_err());
    assert!(HiddenLayer::new(10, 3, 0.0, 1.0, 0).is_err());
    let layer = HiddenLayer::new(10, 3, 0.0, 0.0, 0).unwrap();
    assert!(layer.empirical_kernel(&Points::random_sphere(4, 2, 0).unwrap()).is_err());
}

#[test]
fn point_csv_files_load_and_bad_ones_say_which_line() {
    use sparsefield::compute::ntk::load_points_csv;
    let dir = super::common::temp_dir("ntk_csv");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let points = load_points_csv(&write("good.csv", "x,y,z\n3,0,4\n\n0,2,0\n")).unwrap();
    assert_eq!((points.n, points.d), (2, 3));
    assert_eq!(points.values, vec![0.6, 0.0, 0.8, 0.0, 1.0, 0.0], "rows are scaled to unit length");
    for (name, text, want) in [
        ("ragged.csv", "1,2,3\n4,5\n", "line 2: 2 values, but earlier rows have 3"),
        ("nan.csv", "1,2\nNaN,1\n", "line 2: value 1 is not a finite number"),
        ("words.csv", "1,2\n3,four\n", "line 2: not a list of numbers"),
        ("empty.csv", "\n\n", "no points"),
        ("zero.csv", "1,1\n0,0\n", "point 2 has length 0"),
    ] {
        let error = load_points_csv(&write(name, text)).unwrap_err().to_string();
        assert!(error.contains(name) && error.contains(want), "{name}: {error}");
    }
    assert!(load_points_csv(&dir.join("missing.csv")).unwrap_err().to_string().contains("cannot read"));
}

#[test]
fn sizes_that_cannot_fit_are_refused_before_allocating() {
    use sparsefield::compute::ntk::analysis::check_size;
    // The first layer's m × d weights: 10⁶ × 10⁴ would be 80 GB.
    let err = check_size(2, 10_000, 1_000_000).unwrap_err().to_string();
    assert!(err.contains("weights") && err.contains("smaller width"), "{err}");
    // n × m activations.
    let err = check_size(20_000, 3, 1_000_000).unwrap_err().to_string();
    assert!(err.contains("activations"), "{err}");
    assert!(check_size(2000, 64, 4096).is_ok());

    // A CSV row wider than the largest dimension is refused while parsing, naming the line.
    let dir = super::common::temp_dir("ntk_wide_csv");
    let path = dir.join("wide.csv");
    let row = vec!["0.5"; 10_001].join(",");
    std::fs::write(&path, format!("{row}\n{row}\n")).unwrap();
    let err = sparsefield::compute::ntk::load_points_csv(&path).unwrap_err().to_string();
    assert!(err.contains("wide.csv") && err.contains("line 1") && err.contains("10000"), "{err}");

    // The command line says so at once, with a non-zero exit.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sparsefield"))
        .args(["ntk", "spectrum", "--n", "2", "--d", "10000", "--width", "1000000", "--out"])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("weights"), "{stderr}");
}
