//! `cargo bench --bench inr`: the INR lab's standard fit step (same as `sparsefield bench inr`).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    sparsefield::cli::bench::run(sparsefield::cli::bench::BenchLab::Inr(sparsefield::cli::bench::InrBenchArgs {
        steps: 10,
        warmup: 2,
        width: 256,
        size: 256,
    }))
}
