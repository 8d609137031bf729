//! The pruning lab's tables as CSV (read by spreadsheets, pandas, R).

use std::fmt::Write as _;

use super::theory::{SweepPoint, TheoryPoint, mean_std};

/// One row per step; the test accuracy is empty where the test set was not scored.
pub fn history_csv(history: &[TheoryPoint]) -> String {
    let mut out = String::from("step,train_loss,train_accuracy,test_accuracy,signal_learning,noise_memorization\n");
    for p in history {
        let test = if p.test_accuracy.is_finite() { format!("{}", p.test_accuracy) } else { String::new() };
        let _ = writeln!(out, "{},{},{},{},{},{}", p.step, p.train_loss, p.train_accuracy, test, p.signal, p.noise);
    }
    out
}

/// One row per pruning fraction: means and spreads over the seeds.
pub fn sweep_csv(points: &[SweepPoint]) -> String {
    let mut out = String::from(
        "p,test_accuracy_mean,test_accuracy_std,test_accuracy_min,test_accuracy_max,train_loss_mean,train_loss_max,\
         train_accuracy_mean,signal_learning_mean,noise_memorization_mean\n",
    );
    for point in points {
        let (test, std) = mean_std(&point.test_accuracy);
        let min = point.test_accuracy.iter().copied().fold(f64::INFINITY, f64::min);
        let max = point.test_accuracy.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let loss_max = point.train_loss.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let _ = writeln!(
            out,
            "{},{test},{std},{min},{max},{},{loss_max},{},{},{}",
            point.prune,
            mean_std(&point.train_loss).0,
            mean_std(&point.train_accuracy).0,
            mean_std(&point.signal).0,
            mean_std(&point.noise).0
        );
    }
    out
}

/// One row per run.
pub fn runs_csv(points: &[SweepPoint]) -> String {
    let mut out = String::from("p,seed,test_accuracy,train_loss,train_accuracy,signal_learning,noise_memorization\n");
    for point in points {
        for (i, seed) in point.seeds.iter().enumerate() {
            let _ = writeln!(
                out,
                "{},{seed},{},{},{},{},{}",
                point.prune,
                point.test_accuracy[i],
                point.train_loss[i],
                point.train_accuracy[i],
                point.signal[i],
                point.noise[i]
            );
        }
    }
    out
}

/// One row per trained network: method (`dense` for the unpruned one), sparsity, accuracy, loss,
/// each layer's kept fraction, seconds.
pub fn init_csv(results: &[super::init::InitResult], layers: &[super::init::LayerInfo]) -> String {
    let mut out = String::from("method,sparsity,test_accuracy,train_loss");
    for layer in layers {
        let _ = write!(out, ",density_{}", layer.name);
    }
    out.push_str(",seconds\n");
    for r in results {
        let name = r.method.map_or("dense", super::init::Method::cli_name);
        let _ = write!(out, "{name},{},{},{}", r.sparsity, r.test_accuracy, r.train_loss);
        for d in &r.densities {
            let _ = write!(out, ",{d}");
        }
        let _ = writeln!(out, ",{}", r.seconds);
    }
    out
}
