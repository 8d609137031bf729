//! `sparsefield bench ntk`: the empirical NTK Gram matrix and all its eigenvalues at the issue's
//! size, and the limiting kernel.

use std::time::Instant;

use clap::Args;

use crate::compute::ntk::kernel::{HiddenLayer, Points, eigenvalues, limit_kernel};
use crate::compute::ntk::lanczos::extreme_eigenvalues;

/// `benches/numpy_ntk.py` on the development machine (numpy 2.4, OpenBLAS, 2 cores), best of 3.
const NUMPY_GRAM_MS: f64 = 285.0;
const NUMPY_EIGVALSH_MS: f64 = 454.0;

#[derive(Debug, Args)]
pub struct NtkBenchArgs {
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    #[arg(long, default_value_t = 10)]
    pub d: usize,
    #[arg(long, default_value_t = 4096)]
    pub width: usize,
    /// Timed repetitions (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
}

pub fn bench_ntk(args: &NtkBenchArgs) -> anyhow::Result<()> {
    let points = Points::random_sphere(args.n, args.d, 0)?;
    let layer = HiddenLayer::new(args.width, args.d, 0.0, 0.0, 0)?;
    let best = |f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let mut best = f64::INFINITY;
        for _ in 0..args.repeats.max(1) {
            let start = Instant::now();
            f()?;
            best = best.min(start.elapsed().as_secs_f64() * 1e3);
        }
        Ok(best)
    };
    let mut gram = Vec::new();
    let gram_ms = best(&mut || {
        gram = layer.empirical_kernel(&points)?;
        Ok(())
    })?;
    let mut values = Vec::new();
    let eigen_ms = best(&mut || {
        values = eigenvalues(&gram, points.n)?;
        Ok(())
    })?;
    println!("ntk: n = {}, d = {}, m = {}, B = 0 (best of {})", args.n, args.d, args.width, args.repeats.max(1));
    println!(
        "  empirical Gram: {gram_ms:.0} ms (numpy {NUMPY_GRAM_MS:.0} ms → {:.2}× its speed)",
        NUMPY_GRAM_MS / gram_ms
    );
    println!(
        "  all eigenvalues (faer): {eigen_ms:.0} ms (numpy eigvalsh {NUMPY_EIGVALSH_MS:.0} ms → {:.2}× its speed); λ_min {:.4e}, λ_max {:.4e}",
        NUMPY_EIGVALSH_MS / eigen_ms,
        values.first().copied().unwrap_or(f64::NAN),
        values.last().copied().unwrap_or(f64::NAN)
    );
    let mut extreme = (Vec::new(), Vec::new());
    let extreme_ms = best(&mut || {
        extreme = extreme_eigenvalues(&gram, points.n, 4)?;
        Ok(())
    })?;
    println!(
        "  4 smallest and 4 largest only (Lanczos, shift-invert): {extreme_ms:.0} ms; λ_min {:.4e} (full: {:.4e})",
        extreme.0.first().copied().unwrap_or(f64::NAN),
        values.first().copied().unwrap_or(f64::NAN)
    );
    let start = Instant::now();
    let _ = limit_kernel(&points, 1.0);
    println!("  limiting kernel at B = 1: {:.0} ms", start.elapsed().as_secs_f64() * 1e3);
    Ok(())
}
