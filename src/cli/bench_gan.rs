//! `sparsefield bench gan`: the neighbourhood-attention op, forward and backward, against the
//! same attention by candle's generic ops and (with `--pytorch`) a plain PyTorch twin. The GAN's
//! own training benchmark comes with the generator.

use std::time::Instant;

use clap::Args;
use rand::{Rng, SeedableRng};

use crate::compute::gan::na::{self, NaShape, Window};

#[derive(Debug, Args)]
pub struct GanBenchArgs {
    /// Side of the square feature map.
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// Channels of the layer (split over the heads).
    #[arg(long, default_value_t = 64)]
    pub channels: usize,
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    #[arg(long, default_value_t = 7)]
    pub kernel: usize,
    #[arg(long, default_value_t = 1)]
    pub dilation: usize,
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub repeats: usize,
    /// Also time `python3 benches/pytorch_na.py` with the same sizes (needs torch).
    #[arg(long)]
    pub pytorch: bool,
}

/// The median of `repeats` timings of `f`, in milliseconds, after one untimed call.
fn median_ms(repeats: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

pub fn run(args: &GanBenchArgs) -> anyhow::Result<()> {
    if args.heads == 0 || !args.channels.is_multiple_of(args.heads) {
        anyhow::bail!("--channels ({}) must be a positive multiple of --heads ({})", args.channels, args.heads);
    }
    let shape = NaShape {
        batch: args.batch,
        heads: args.heads,
        height: args.size,
        width: args.size,
        channels: args.channels / args.heads,
    };
    let windows = vec![Window::new(args.kernel, args.dilation); args.heads];
    windows[0].validate(args.size, args.size)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut random = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0_f32..1.0)).collect() };
    let (q, k, v, r) = (random(shape.len()), random(shape.len()), random(shape.len()), random(shape.len()));
    let bias = random(args.heads * windows[0].bias_len());
    #[allow(clippy::cast_precision_loss)]
    let scale = (shape.channels as f32).powf(-0.5);
    println!(
        "neighbourhood attention {0}×{0}, {1} channels, {2} heads, k {3}, d {4}, batch {5}: forward + backward",
        args.size, args.channels, args.heads, args.kernel, args.dilation, args.batch
    );
    let fused = median_ms(args.repeats, || {
        let f = na::forward(shape, &windows, &q, &k, &v, &bias, scale)?;
        na::backward(shape, &windows, &q, &k, &v, &f.attention, &r, scale)?;
        Ok(())
    })?;
    println!("  fused op: {fused:.2} ms");
    let candle = median_ms(args.repeats.min(5), || {
        na::masked_full_attention_candle(shape, &windows, &q, &k, &v, &bias, &r, scale)?;
        Ok(())
    })?;
    println!("  masked full attention, candle's ops and autograd: {candle:.2} ms → {:.1}× its speed", candle / fused);
    if args.pytorch {
        let values = [args.size, args.channels, args.heads, args.kernel, args.dilation, args.batch, args.repeats, 2];
        let names = ["--size", "--channels", "--heads", "--kernel", "--dilation", "--batch", "--repeats", "--threads"];
        let twin_args: Vec<String> =
            names.iter().zip(values).flat_map(|(n, v)| [(*n).to_string(), v.to_string()]).collect();
        let last = super::bench::python_twin("pytorch_na.py", &twin_args, "torch")?;
        // "… : 56.92 ms per forward + backward".
        let ms = last.rsplit(": ").next().and_then(|t| t.split_whitespace().next()).and_then(|t| t.parse::<f64>().ok());
        let ms =
            ms.ok_or_else(|| anyhow::anyhow!("could not read the PyTorch twin's time from its last line: {last:?}"))?;
        println!("  plain PyTorch (benches/pytorch_na.py, 2 threads): {ms:.2} ms → {:.1}× its speed", ms / fused);
    }
    Ok(())
}
