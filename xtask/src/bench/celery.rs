//! `cargo xtask bench celery`: one stock Python Celery client (`celery_client.py`) against
//! posts-worker and against a Python Celery worker (prefork, `-c` = cores) running the same
//! task on the same sample database, each on a Redis of its own, in one run:
//!
//! - a 100-task `group(...).apply_async().get()` (target: p95 ≤ 150 ms for posts-worker);
//! - sequential `send_task(...).get()` (target: p50 ≤ 1 ms), also from jobq's own
//!   `CeleryClient`, which shows the worker's share without the Python client's own cost
//!   (`send_task` alone takes about 0.8 ms here);
//! - the worker-side ceiling: messages pushed in bulk, timed until every result is stored
//!   (target: ≥ 20,000 jobs/s).
//!
//! The Python environment comes from `target/celery-venv` (built on first use), the
//! posts-worker binary from a release build.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use jobq::celery::CeleryClient;
use posts_store::DEFAULT_DB_PATH;
use redis_harness::OwnedRedis;
use serde_json::{Map, Value, json};

use super::Spread;
use crate::python::celery_python;
use crate::test::{seed_sample_db_if_missing, workspace_root};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Timed 100-task groups per worker.
    #[arg(long, default_value_t = 50)]
    groups: usize,
    /// Tasks per group.
    #[arg(long, default_value_t = 100)]
    group_size: usize,
    /// Timed sequential calls per worker.
    #[arg(long, default_value_t = 500)]
    sequential: usize,
    /// Messages pushed at once for the throughput ceiling.
    #[arg(long, default_value_t = 50_000)]
    bulk: usize,
}

/// What the client measured against one worker.
struct Measured {
    group_ms: Vec<f64>,
    sequential_ms: Vec<f64>,
    bulk_jobs_per_s: f64,
    /// Sequential calls from jobq's `CeleryClient`.
    rust_client_ms: Vec<f64>,
}

pub(super) fn run(args: Args) -> anyhow::Result<()> {
    let root = workspace_root();
    let python = celery_python(&root)?;
    seed_sample_db_if_missing(&root)?;
    let db = root.join(DEFAULT_DB_PATH);
    let posts_worker = build_posts_worker(&root)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "bench celery: {} groups of {}, {} sequential calls, {} bulk messages; {cores} cores",
        args.groups, args.group_size, args.sequential, args.bulk
    );

    eprintln!("bench celery: posts-worker (release)");
    let rust = measure(&root, &python, &args, |url| {
        Command::new(&posts_worker)
            .arg("--db")
            .arg(&db)
            .args([
                "--redis-url",
                url,
                "--namespace",
                "bench",
                "run",
                "--no-scheduler",
            ])
            .env("RUST_LOG", "warn")
            .spawn()
            .context("starting posts-worker")
    })?;
    eprintln!("bench celery: Python Celery worker (prefork -c {cores})");
    let tasks_dir = root.join("crates/posts-worker/tests/celery");
    let py = measure(&root, &python, &args, |url| {
        Command::new(&python)
            .args([
                "-m", "celery", "-A", "tasks", "worker", "-Q", "celery", "--pool", "prefork",
            ])
            .arg(format!("--concurrency={cores}"))
            .args([
                "--loglevel",
                "warning",
                "--without-gossip",
                "--without-mingle",
            ])
            .current_dir(&tasks_dir)
            .env("BROKER_URL", url)
            .env("POSTS_DB", &db)
            .stdout(Stdio::null())
            .spawn()
            .context("starting the Python Celery worker")
    })?;
    report(&args, &rust, &py);
    Ok(())
}

fn build_posts_worker(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(["build", "--release", "--quiet", "-p", "posts-worker"])
        .current_dir(root)
        .status()
        .with_context(|| format!("running `{cargo} build --release -p posts-worker`"))?;
    if !status.success() {
        bail!("building posts-worker in release mode failed ({status})");
    }
    Ok(root.join("target/release/posts-worker"))
}

/// Starts a Redis and the worker `start` makes on it, runs the client against it, and stops
/// both.
fn measure(
    root: &Path,
    python: &Path,
    args: &Args,
    start: impl Fn(&str) -> anyhow::Result<Child>,
) -> anyhow::Result<Measured> {
    let redis = OwnedRedis::start().context("starting a Redis for the benchmark")?;
    let mut worker = start(redis.url())?;
    let rust_client = rust_client_sequential(redis.url(), args.sequential);
    let client = Command::new(python)
        .arg(root.join("xtask/src/bench/celery_client.py"))
        .env("BROKER_URL", redis.url())
        .env("CELERY_QUEUE", "celery")
        .env("GROUPS", args.groups.to_string())
        .env("GROUP_SIZE", args.group_size.to_string())
        .env("SEQUENTIAL", args.sequential.to_string())
        .env("BULK", args.bulk.to_string())
        .stderr(Stdio::inherit())
        .output()
        .context("running the benchmark client");
    stop(&mut worker);
    let output = client?;
    let rust_client_ms = rust_client?;
    if !output.status.success() {
        bail!("the benchmark client failed ({})", output.status);
    }
    let report: Value =
        serde_json::from_slice(&output.stdout).context("reading the client's report")?;
    let numbers = |field: &str| -> Vec<f64> {
        report[field]
            .as_array()
            .map(|values| values.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    let jobs = report["bulk"]["jobs"].as_f64().unwrap_or(0.0);
    let seconds = report["bulk"]["seconds"].as_f64().unwrap_or(f64::NAN);
    Ok(Measured {
        group_ms: numbers("group_ms"),
        sequential_ms: numbers("sequential_ms"),
        bulk_jobs_per_s: jobs / seconds,
        rust_client_ms,
    })
}

/// Sequential `send` + `get` round trips from jobq's `CeleryClient`, after the worker
/// answered a first one (it may still be starting).
fn rust_client_sequential(url: &str, count: usize) -> anyhow::Result<Vec<f64>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a runtime for the Rust client")?;
    runtime.block_on(async {
        let client = CeleryClient::connect(url).await?;
        let call = || async {
            let sent = client
                .send("tasks.query_posts_db", vec![json!("SELECT 1")], Map::new())
                .await?;
            sent.get(Duration::from_secs(30)).await
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while call().await.is_err() {
            if Instant::now() > deadline {
                bail!("no worker answered within 60 s");
            }
        }
        let mut elapsed = Vec::with_capacity(count);
        for _ in 0..count {
            let started = Instant::now();
            let result = call().await?;
            elapsed.push(started.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(result == json!([[1]]), "unexpected result {result}");
        }
        Ok(elapsed)
    })
}

/// SIGTERM through `kill`, then a bounded wait, then SIGKILL.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(args: &Args, rust: &Measured, py: &Measured) {
    let rows = [
        (
            format!("group of {} p50 (ms)", args.group_size),
            Spread::of(&rust.group_ms).median,
            Spread::of(&py.group_ms).median,
            None,
        ),
        (
            format!("group of {} p95 (ms)", args.group_size),
            percentile(&rust.group_ms, 95.0),
            percentile(&py.group_ms, 95.0),
            Some(("<= 150", percentile(&rust.group_ms, 95.0) <= 150.0)),
        ),
        (
            "sequential .get() p50 (ms)".to_owned(),
            Spread::of(&rust.sequential_ms).median,
            Spread::of(&py.sequential_ms).median,
            Some(("<= 1", Spread::of(&rust.sequential_ms).median <= 1.0)),
        ),
        (
            "sequential .get() p95 (ms)".to_owned(),
            percentile(&rust.sequential_ms, 95.0),
            percentile(&py.sequential_ms, 95.0),
            None,
        ),
        (
            "Rust client send+get p50 (ms)".to_owned(),
            Spread::of(&rust.rust_client_ms).median,
            Spread::of(&py.rust_client_ms).median,
            Some(("<= 1", Spread::of(&rust.rust_client_ms).median <= 1.0)),
        ),
        (
            "bulk ceiling (jobs/s)".to_owned(),
            rust.bulk_jobs_per_s,
            py.bulk_jobs_per_s,
            Some((">= 20000", rust.bulk_jobs_per_s >= 20_000.0)),
        ),
    ];
    println!(
        "{:<28} {:>14} {:>14} {:>10}  target",
        "", "posts-worker", "python celery", "ratio"
    );
    for (name, rust, py, target) in rows {
        // For times lower is better, for throughput higher: the ratio says how many times
        // better posts-worker is either way.
        let ratio = if name.contains("jobs/s") {
            rust / py
        } else {
            py / rust
        };
        let target = target.map_or(String::new(), |(goal, met)| {
            format!("{goal} {}", if met { "met" } else { "MISSED" })
        });
        println!("{name:<28} {rust:>14.2} {py:>14.2} {ratio:>9.1}x  {target}");
    }
}
