//! INR editing (INSP): closed-form derivative stacks, pixel-domain filters, the operator.

use candle_core::{DType, Device, Tensor};
use sparsefield::compute::inr::taylor::{self, Partials};
use sparsefield::compute::inr::{self, FieldView, Siren, SirenConfig, SirenWeights, derivatives};

fn test_siren(channels: usize, seed: u64) -> SirenWeights {
    SirenWeights::init(SirenConfig::image(channels, 24, 2, 30.0), seed)
}

fn test_points() -> Vec<f64> {
    // A fixed scatter over the square, away from nothing in particular.
    (0..40).flat_map(|k| [((k * 37) % 97) as f64 / 48.5 - 1.0, ((k * 61) % 89) as f64 / 44.5 - 1.0]).collect()
}

/// `(value, dx, dy, dxx, dxy, dyy)` in pixel units from the candle closed form in f64, `(n, C)` each.
fn jet2_f64(weights: &SirenWeights, points: &[f64]) -> [Vec<Vec<f64>>; 6] {
    let model = Siren::new(weights, &Device::Cpu, DType::F64).unwrap();
    let xs = Tensor::from_slice(points, (points.len() / 2, 2), &Device::Cpu).unwrap();
    let jet = derivatives::jet2(&model, &xs).unwrap();
    let read = |t: &Tensor, offset: f64| -> Vec<Vec<f64>> {
        t.to_vec2::<f64>().unwrap().into_iter().map(|row| row.into_iter().map(|v| 0.5 * v + offset).collect()).collect()
    };
    [
        read(&jet.value, 0.5),
        read(&jet.dx, 0.0),
        read(&jet.dy, 0.0),
        read(&jet.dxx, 0.0),
        read(&jet.dxy, 0.0),
        read(&jet.dyy, 0.0),
    ]
}

/// Asserts that `got[point][c]` matches `want[point][c]` within `rel` of the largest `|want|`.
fn assert_close(name: &str, got: &[Vec<f64>], want: &[Vec<f64>], rel: f64) {
    let scale = want.iter().flatten().fold(0.0_f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{name}: reference is zero everywhere");
    for (point, (g, w)) in got.iter().zip(want).enumerate() {
        for (c, (a, b)) in g.iter().zip(w).enumerate() {
            assert!((a - b).abs() <= rel * scale, "{name} at point {point} channel {c}: {a} vs {b} (scale {scale})");
        }
    }
}

/// `stack[point][c][k]` as `[point][c]` for partial `(i, j)`.
fn partial(stack: &[f32], partials: &Partials, channels: usize, i: usize, j: usize) -> Vec<Vec<f64>> {
    let k = partials.index_of(i, j).unwrap();
    stack
        .chunks_exact(channels * partials.len())
        .map(|point| point.chunks_exact(partials.len()).map(|ch| f64::from(ch[k])).collect())
        .collect()
}

#[test]
fn partials_are_listed_by_order_with_mixed_ones() {
    let partials = Partials::new(4).unwrap();
    assert_eq!(partials.len(), 15);
    let labels: Vec<String> = (0..6).map(|k| partials.label(k)).collect();
    assert_eq!(labels, ["f", "∂x", "∂y", "∂xx", "∂xy", "∂yy"]);
    assert_eq!(partials.label(14), "∂yyyy");
    assert_eq!(partials.index_of(2, 2), Some(12));
    assert!(Partials::new(taylor::MAX_ORDER + 1).is_err());
}

#[test]
fn taylor_stack_matches_the_second_order_closed_form_in_f64() {
    let weights = test_siren(3, 7);
    let points = test_points();
    let coords: Vec<f32> = points.iter().map(|&v| v as f32).collect();
    let partials = Partials::new(2).unwrap();
    let stack = taylor::derivative_stack(&weights, &partials, &coords).unwrap();
    let reference = jet2_f64(&weights, &points);
    for ((i, j), want) in [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)].into_iter().zip(&reference) {
        assert_close(
            &partials.label(partials.index_of(i, j).unwrap()),
            &partial(&stack, &partials, 3, i, j),
            want,
            2e-4,
        );
    }
}

#[test]
fn taylor_orders_three_and_four_match_finite_differences() {
    let weights = test_siren(1, 11);
    let points = test_points();
    let coords: Vec<f32> = points.iter().map(|&v| v as f32).collect();
    let partials = Partials::new(4).unwrap();
    let stack = taylor::derivative_stack(&weights, &partials, &coords).unwrap();
    // Central differences of the f64 closed-form second derivatives.
    let h = 1e-4;
    let shifted = |dx: f64, dy: f64| {
        let moved: Vec<f64> = points.chunks_exact(2).flat_map(|p| [p[0] + dx, p[1] + dy]).collect();
        jet2_f64(&weights, &moved)
    };
    let (centre, xp, xm, yp, ym) =
        (shifted(0.0, 0.0), shifted(h, 0.0), shifted(-h, 0.0), shifted(0.0, h), shifted(0.0, -h));
    let first = |plus: &[Vec<f64>], minus: &[Vec<f64>]| -> Vec<Vec<f64>> {
        plus.iter().zip(minus).map(|(p, m)| vec![(p[0] - m[0]) / (2.0 * h)]).collect()
    };
    let second = |plus: &[Vec<f64>], mid: &[Vec<f64>], minus: &[Vec<f64>]| -> Vec<Vec<f64>> {
        plus.iter().zip(mid).zip(minus).map(|((p, c), m)| vec![(p[0] - 2.0 * c[0] + m[0]) / (h * h)]).collect()
    };
    let (dxx, dxy, dyy) = (3, 4, 5);
    let checks = [
        ("∂xxx", (3, 0), first(&xp[dxx], &xm[dxx])),
        ("∂xxy via ∂y of ∂xx", (2, 1), first(&yp[dxx], &ym[dxx])),
        ("∂xxy via ∂x of ∂xy", (2, 1), first(&xp[dxy], &xm[dxy])),
        ("∂xyy", (1, 2), first(&yp[dxy], &ym[dxy])),
        ("∂yyy", (0, 3), first(&yp[dyy], &ym[dyy])),
        ("∂xxxx", (4, 0), second(&xp[dxx], &centre[dxx], &xm[dxx])),
        ("∂xxxy", (3, 1), second(&xp[dxy], &centre[dxy], &xm[dxy])),
        ("∂xxyy via ∂yy of ∂xx", (2, 2), second(&yp[dxx], &centre[dxx], &ym[dxx])),
        ("∂xxyy via ∂xx of ∂yy", (2, 2), second(&xp[dyy], &centre[dyy], &xm[dyy])),
        ("∂xyyy", (1, 3), second(&yp[dxy], &centre[dxy], &ym[dxy])),
        ("∂yyyy", (0, 4), second(&yp[dyy], &centre[dyy], &ym[dyy])),
    ];
    for (name, (i, j), want) in checks {
        assert_close(name, &partial(&stack, &partials, 1, i, j), &want, 2e-3);
    }
}

#[test]
fn laplacian_of_the_stack_matches_the_lab_view() {
    let weights = test_siren(3, 3);
    let partials = Partials::new(3).unwrap();
    let (w, h) = (9, 7);
    let stack = taylor::stack_at_pixels(&weights, &partials, w, h).unwrap();
    let model = Siren::new(&weights, &Device::Cpu, DType::F32).unwrap();
    let view = inr::field_values(&model, FieldView::Laplacian, w, h).unwrap();
    let values = inr::field_values(&model, FieldView::Value, w, h).unwrap();
    let (xx, yy, f) = (partials.index_of(2, 0).unwrap(), partials.index_of(0, 2).unwrap(), 0);
    let scale = view.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
    for (n, point) in stack.chunks_exact(3 * partials.len()).enumerate() {
        for (c, ch) in point.chunks_exact(partials.len()).enumerate() {
            let laplacian = ch[xx] + ch[yy];
            assert!((laplacian - view[n * 3 + c]).abs() <= 1e-3 * scale, "pixel {n} channel {c}");
            assert!((ch[f] - values[n * 3 + c]).abs() <= 1e-4, "value at pixel {n} channel {c}");
        }
    }
}

#[test]
fn derivative_stack_rejects_odd_coordinates_and_bad_weights() {
    let mut weights = test_siren(1, 0);
    let partials = Partials::new(2).unwrap();
    assert!(taylor::derivative_stack(&weights, &partials, &[0.0, 0.1, 0.2]).is_err());
    weights.layers[0].bias[0] = f32::NAN;
    let error = taylor::derivative_stack(&weights, &partials, &[0.0, 0.1]).unwrap_err().to_string();
    assert!(error.contains("NaN"), "{error}");
}
