//! `cargo xtask bench seed`: the README's synthetic seed (`--synthetic N`) into a fresh
//! temporary database, three times; prints the median rows/s and the peak resident set
//! size of the process, the two figures the seeding targets are about.

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use posts_seed::{ProgressEvent, SeedOptions, SyntheticOptions};

use super::Spread;

#[derive(clap::Args)]
pub(super) struct Args {
    /// Rows per run.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Runs; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Seed of the generator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

pub(super) fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let mut rates = Vec::new();
    for run in 1..=args.runs.max(1) {
        let db = dir.path().join(format!("seed-{run}.db"));
        let mut synthetic = SyntheticOptions::new(args.rows);
        synthetic.seed = args.seed;
        let bar = ProgressBar::new(args.rows).with_style(
            ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} rows {per_sec} {msg}")
                .context("progress bar template")?,
        );
        let summary =
            posts_seed::seed(
                &SeedOptions::synthetic(&db, synthetic),
                &mut |event| match event {
                    ProgressEvent::Rows { done } => bar.set_position(*done),
                    ProgressEvent::Finishing => bar.set_message("building indexes"),
                    _ => {}
                },
            )
            .with_context(|| format!("seeding {}", db.display()))?;
        bar.finish_and_clear();
        eprintln!(
            "run {run}: {} rows in {:.2} s ({:.0} rows/s)",
            summary.rows_written,
            summary.elapsed.as_secs_f64(),
            summary.rows_per_second()
        );
        rates.push(summary.rows_per_second());
        std::fs::remove_file(&db).with_context(|| format!("removing {}", db.display()))?;
    }
    let spread = Spread::of(&rates);
    println!(
        "seed --synthetic {}: median {:.0} rows/s (min {:.0}, max {:.0}) over {} runs; peak RSS {}",
        args.rows,
        spread.median,
        spread.min,
        spread.max,
        rates.len(),
        peak_rss().unwrap_or_else(|| "unknown (no /proc/self/status)".to_owned())
    );
    Ok(())
}

/// The process's peak resident set size (`VmHWM`), as Linux reports it.
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(format!("{} MiB", kib / 1024))
}
