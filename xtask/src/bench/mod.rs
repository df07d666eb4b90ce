//! `cargo xtask bench <suite>`: the benchmarks behind the speed targets.

mod celery;
mod queue;
mod scale;
mod seed;
mod tasks;

use anyhow::{Context as _, bail};
use clap::Subcommand;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Subcommand)]
enum Suite {
    /// jobq end-to-end throughput and round-trip latency.
    Queue(queue::Args),
    /// jobq with several worker processes, on a standalone Redis and a Redis Cluster.
    Scale(scale::Args),
    /// The posts tasks on a large synthetic database.
    Tasks(tasks::Args),
    /// Synthetic seeding: rows/s and peak RSS.
    Seed(seed::Args),
    /// A stock Python Celery client against posts-worker and a Python Celery worker.
    Celery(celery::Args),
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        return rerun_in_release();
    }
    match args.suite {
        Suite::Queue(args) => queue::run(args),
        Suite::Scale(args) => scale::run(args),
        Suite::Tasks(args) => tasks::run(args),
        Suite::Seed(args) => seed::run(args),
        Suite::Celery(args) => celery::run(args),
    }
}

/// Re-runs this command from an optimized build of xtask: the figures are only worth
/// reporting for release code, and big synthetic seeds run several times faster.
pub(crate) fn rerun_in_release() -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let passed: Vec<String> = std::env::args().skip(1).collect();
    eprintln!("xtask: building and running xtask in release mode");
    let status = std::process::Command::new(&cargo)
        .args(["run", "--release", "--quiet", "--package", "xtask", "--"])
        .args(&passed)
        .status()
        .with_context(|| format!("running `{cargo} run --release -p xtask`"))?;
    if !status.success() {
        bail!("the release build of xtask failed ({status})");
    }
    Ok(())
}

/// Median and spread of several runs' figures.
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Spread {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Spread {
            median,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }
}
