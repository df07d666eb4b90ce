//! `cargo xtask bench tasks`: the posts tasks on a 1,000,000-post synthetic database.
//!
//! Measured, each over several runs (median and min/max reported):
//! - `substring_matches_by_platform` over the whole range, against SQLite's own baseline
//!   `SELECT sum(length(post_blob)) FROM posts WHERE created_at BETWEEN ? AND ?` in the same
//!   run (targets: ≤ 1.2 × the baseline's time, peak RSS ≤ 100 MB);
//! - `count_top_named_entities` over the whole range: posts/s and peak RSS;
//! - the entity extractor alone on one thread: posts/s per core.
//!
//! Every measurement runs in a child process (this binary again, with the hidden `--child`
//! option) so its peak RSS (`VmHWM`) is the task's own, not the harness's; runs alternate
//! between the baseline and the task so both see the same page-cache state. The database
//! is built once (via `posts_seed`'s synthetic generator) when missing. A debug build re-runs
//! itself in release mode, so numbers always come from optimized code.

use super::Spread;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use posts_seed::{ProgressEvent, SeedOptions, SyntheticOptions};
use posts_store::read::ReadPool;
use posts_store::write::WriteMode;
use posts_worker::tasks::{CancelToken, PostsData};
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub(super) struct Args {
    /// The benchmark database; built when missing.
    #[arg(long, default_value = "target/bench/posts-1m.db")]
    db: PathBuf,
    /// Posts in the database when it has to be built.
    #[arg(long, default_value_t = 1_000_000)]
    posts: u64,
    /// Runs of the baseline and the substring task.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Runs of count_top_named_entities (slower, so fewer by default).
    #[arg(long, default_value_t = 3)]
    entity_runs: usize,
    /// The substring searched for.
    #[arg(long, default_value = "trump")]
    needle: String,
    /// Posts the extractor-alone measurement extracts from.
    #[arg(long, default_value_t = 200_000)]
    extractor_posts: usize,
    /// Internal: run one measurement and print it as JSON (used by the harness).
    #[arg(long, hide = true)]
    child: Option<String>,
}

/// What one child measurement reports.
struct Sample {
    seconds: f64,
    rows: u64,
    peak_rss_kib: u64,
}

pub(super) fn run(args: Args) -> anyhow::Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(args.entity_runs >= 1, "--entity-runs must be at least 1");
    if let Some(mode) = &args.child {
        return child(mode, &args);
    }
    ensure_database(&args)?;
    let (from, to) = whole_range(&args.db)?;
    eprintln!(
        "bench tasks: {} ({} posts, created_at {from} .. {to}), {} runs (release build)",
        args.db.display(),
        count_posts(&args.db)?,
        args.runs
    );

    let total = 1 + args.runs * 2 + args.entity_runs + 1;
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .context("progress bar template")?,
    );
    bar.set_message("warming the page cache");
    spawn_child("baseline", &args)?;
    bar.inc(1);
    let (mut baseline, mut substring) = (Vec::new(), Vec::new());
    for run in 1..=args.runs {
        bar.set_message(format!("baseline, run {run}"));
        baseline.push(spawn_child("baseline", &args)?);
        bar.inc(1);
        bar.set_message(format!("substring_matches_by_platform, run {run}"));
        substring.push(spawn_child("substring", &args)?);
        bar.inc(1);
    }
    let mut entities = Vec::new();
    for run in 1..=args.entity_runs {
        bar.set_message(format!("count_top_named_entities, run {run}"));
        entities.push(spawn_child("entities", &args)?);
        bar.inc(1);
    }
    bar.set_message("extractor alone");
    let extractor = spawn_child("extractor", &args)?;
    bar.inc(1);
    bar.finish_and_clear();

    report(&args, &baseline, &substring, &entities, &extractor);
    Ok(())
}

fn report(
    args: &Args,
    baseline: &[Sample],
    substring: &[Sample],
    entities: &[Sample],
    extractor: &Sample,
) {
    let secs = |s: &[Sample]| s.iter().map(|s| s.seconds).collect::<Vec<_>>();
    let rss_max = |s: &[Sample]| s.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0);
    let base = Spread::of(&secs(baseline)).median;
    let sub = Spread::of(&secs(substring)).median;
    let ratio = sub / base;
    let sub_rss_mb = rss_max(substring) as f64 / 1024.0;
    println!(
        "SQLite baseline sum(length(post_blob)): {}",
        describe(&secs(baseline))
    );
    println!(
        "substring_matches_by_platform({:?}, whole range): {}",
        args.needle,
        describe(&secs(substring))
    );
    println!(
        "  ratio to baseline (medians): {ratio:.2}x (target <= 1.20x: {}); peak RSS {sub_rss_mb:.1} MB (target <= 100 MB: {}); rows {}",
        verdict(ratio <= 1.2),
        verdict(sub_rss_mb <= 100.0),
        substring.first().map_or(0, |s| s.rows)
    );
    let rates: Vec<f64> = entities.iter().map(|s| s.rows as f64 / s.seconds).collect();
    let rates = Spread::of(&rates);
    println!(
        "count_top_named_entities(10, whole range): {}; {} posts/s median (min {:.0}, max {:.0}); peak RSS {:.1} MB",
        describe(&secs(entities)),
        rates.median.round(),
        rates.min,
        rates.max,
        rss_max(entities) as f64 / 1024.0
    );
    let per_core = extractor.rows as f64 / extractor.seconds;
    println!(
        "entity extractor alone, one thread: {per_core:.0} posts/s per core over {} posts (target >= 50,000: {})",
        extractor.rows,
        verdict(per_core >= 50_000.0)
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn describe(seconds: &[f64]) -> String {
    let spread = Spread::of(seconds);
    format!(
        "median {:.3} s (min {:.3}, max {:.3}, {} runs)",
        spread.median,
        spread.min,
        spread.max,
        seconds.len()
    )
}

/// Builds the synthetic database when it does not exist yet.
fn ensure_database(args: &Args) -> anyhow::Result<()> {
    if args.db.exists() {
        return Ok(());
    }
    if let Some(dir) = args.db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    eprintln!(
        "bench tasks: building {} with {} synthetic posts",
        args.db.display(),
        args.posts
    );
    let bar = ProgressBar::new(args.posts).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows {per_sec} {msg}")
            .context("progress bar template")?,
    );
    // Built next to the target and renamed, so an interrupted build is never mistaken for
    // a finished database.
    let partial = args.db.with_extension("partial");
    let mut options = SeedOptions::synthetic(&partial, SyntheticOptions::new(args.posts));
    options.mode = WriteMode::DropTable;
    let summary = posts_seed::seed(&options, &mut |event| match event {
        ProgressEvent::Rows { done } => bar.set_position(*done),
        ProgressEvent::Finishing => bar.set_message("committing"),
        _ => {}
    })
    .with_context(|| format!("building {}", partial.display()))?;
    bar.finish_and_clear();
    std::fs::rename(&partial, &args.db)
        .with_context(|| format!("moving {} to {}", partial.display(), args.db.display()))?;
    eprintln!(
        "bench tasks: {} rows written in {:.1} s",
        summary.rows_written,
        summary.elapsed.as_secs_f64()
    );
    Ok(())
}

/// Runs `sql` through the same hardened read pool the tasks use and returns its rows.
fn query_rows(db: &Path, sql: &str) -> anyhow::Result<Vec<Value>> {
    let rows = ReadPool::open(db)?.query_json(sql, &CancelToken::new(), usize::MAX)?;
    match rows {
        Value::Array(rows) => Ok(rows),
        other => bail!("{sql}: unexpected result {other}"),
    }
}

/// The single value of a one-row, one-column query.
fn query_value(db: &Path, sql: &str) -> anyhow::Result<Value> {
    let rows = query_rows(db, sql)?;
    rows.first()
        .and_then(|row| row.get(0))
        .cloned()
        .with_context(|| format!("{sql}: no row"))
}

fn count_posts(db: &Path) -> anyhow::Result<u64> {
    Ok(query_value(db, "SELECT count(*) FROM posts")?
        .as_u64()
        .unwrap_or(0))
}

/// The smallest and largest `created_at`, so "the whole range" is every post.
fn whole_range(db: &Path) -> anyhow::Result<(String, String)> {
    let rows = query_rows(db, "SELECT min(created_at), max(created_at) FROM posts")?;
    let bound = |i: usize| {
        rows.first()
            .and_then(|row| row.get(i))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match (bound(0), bound(1)) {
        (Some(from), Some(to)) => Ok((from, to)),
        _ => bail!("{} has no posts (delete it to rebuild)", db.display()),
    }
}

/// `text` as an SQL string literal.
fn sql_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Runs one measurement in a fresh process and reads its JSON report.
fn spawn_child(mode: &str, args: &Args) -> anyhow::Result<Sample> {
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let output = Command::new(&exe)
        .args(["bench", "tasks", "--child", mode])
        .arg("--db")
        .arg(&args.db)
        .args(["--needle", &args.needle])
        .args(["--extractor-posts", &args.extractor_posts.to_string()])
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    if !output.status.success() {
        bail!(
            "the {mode} measurement failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading the {mode} measurement's report"))?;
    let field = |name: &str| {
        report[name]
            .as_f64()
            .with_context(|| format!("{mode}: no {name}"))
    };
    Ok(Sample {
        seconds: field("seconds")?,
        rows: field("rows")? as u64,
        peak_rss_kib: field("peak_rss_kib")? as u64,
    })
}

/// The child side: one measurement, reported as one JSON line on stdout.
fn child(mode: &str, args: &Args) -> anyhow::Result<()> {
    let (from, to) = whole_range(&args.db)?;
    let (seconds, rows) = match mode {
        "baseline" => {
            let pool = ReadPool::open(&args.db)?;
            let sql = format!(
                "SELECT sum(length(post_blob)) FROM posts WHERE created_at BETWEEN {} AND {}",
                sql_text(&from),
                sql_text(&to)
            );
            let started = Instant::now();
            let chars = pool.query_json(&sql, &CancelToken::new(), 1024)?;
            let seconds = started.elapsed().as_secs_f64();
            ensure!(
                chars[0][0].as_i64().unwrap_or(0) > 0,
                "the baseline read no text"
            );
            (seconds, count_posts(&args.db)?)
        }
        "substring" => {
            let data = PostsData::open(&args.db)?;
            let started = Instant::now();
            let result = posts_worker::tasks::substring_matches_by_platform(
                &data,
                &CancelToken::new(),
                &args.needle,
                &from,
                &to,
            )?;
            (started.elapsed().as_secs_f64(), result.total_rows)
        }
        "entities" => {
            let data = PostsData::open(&args.db)?;
            let started = Instant::now();
            let result = posts_worker::tasks::count_top_named_entities(
                &data,
                &CancelToken::new(),
                10,
                &from,
                &to,
            )?;
            let seconds = started.elapsed().as_secs_f64();
            ensure!(!result.top_named_entities.is_empty(), "no entities found");
            (seconds, count_posts(&args.db)?)
        }
        "extractor" => extractor_alone(args)?,
        other => bail!("unknown measurement {other:?}"),
    };
    let report = json!({"seconds": seconds, "rows": rows, "peak_rss_kib": peak_rss_kib()?});
    println!("{report}");
    Ok(())
}

/// The extractor on one thread over texts loaded beforehand (loading is not timed).
fn extractor_alone(args: &Args) -> anyhow::Result<(f64, u64)> {
    use posts_entities::EntityExtractor;
    let blobs = query_rows(
        &args.db,
        &format!("SELECT post_blob FROM posts LIMIT {}", args.extractor_posts),
    )?;
    let mut texts = Vec::with_capacity(blobs.len());
    for row in &blobs {
        let blob = row.get(0).and_then(Value::as_str).map(str::as_bytes);
        let text = posts_worker::tasks::post_text(blob)
            .map(|t| t.into_owned())
            .unwrap_or_default();
        texts.push(text);
    }
    drop(blobs);
    let extractor = posts_entities::default_extractor();
    let mut found = Vec::new();
    let mut entities = 0usize;
    let started = Instant::now();
    for text in &texts {
        found.clear();
        extractor.extract_into(text, &mut found);
        entities += found.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    ensure!(entities > 0, "the extractor found nothing");
    Ok((seconds, texts.len() as u64))
}

/// The process's peak resident set size, from `/proc/self/status`.
fn peak_rss_kib() -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")
}
