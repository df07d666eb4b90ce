//! A quick end-to-end measurement of jobq on a throwaway local Redis: throughput of
//! 100,000 no-op jobs (one batch, and batches of 1,000) and the round-trip latency of
//! 1,000 sequential `delay` + `get` (back to back, and with the worker idle 5 ms before each).
//! Run with `cargo run --release -p jobq --example queue_bench`; `cargo xtask bench queue`
//! is the project's benchmark.
//!
//! Wall-clock figures depend on what else the machine runs; the Redis CPU time per job and
//! the costliest Redis commands (printed per throughput run) do not, so they show where
//! the server's time goes.

use std::time::{Duration, Instant};

use jobq::{App, AsyncResult, Client, RedisBroker, TaskContext, TaskError, Worker, WorkerConfig};
use redis_harness::OwnedRedis;

const JOBS: usize = 100_000;

/// Redis's CPU seconds so far (user + system), from `INFO cpu`.
async fn redis_cpu(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(conn).await?;
    Ok(info
        .lines()
        .filter(|l| l.starts_with("used_cpu_user:") || l.starts_with("used_cpu_sys:"))
        .filter_map(|l| l.split_once(':')?.1.trim().parse::<f64>().ok())
        .sum())
}

/// The `top` commands by total time since the last `CONFIG RESETSTAT`, as
/// `name calls usec_per_call` (commands run by scripts are counted too).
async fn costliest_commands(
    conn: &mut redis::aio::MultiplexedConnection,
    top: usize,
) -> anyhow::Result<String> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    let mut stats: Vec<(String, u64, u64, f64)> = info
        .lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| {
                fields
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            };
            Some((
                name.to_owned(),
                field("calls")?.parse().ok()?,
                field("usec")?.parse().ok()?,
                field("usec_per_call")?.parse().ok()?,
            ))
        })
        .collect();
    stats.sort_by_key(|s| std::cmp::Reverse(s.2));
    Ok(stats
        .iter()
        .take(top)
        .map(|(name, calls, _, per_call)| format!("{name} {calls}x{per_call:.2}us"))
        .collect::<Vec<_>>()
        .join(", "))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let redis = OwnedRedis::start()?;
    let mut admin = redis::Client::open(redis.url())?
        .get_multiplexed_async_connection()
        .await?;
    let mut app = App::new();
    app.task("noop")
        .args::<0>([])
        .handler(|_ctx: TaskContext, (): ()| async move { Ok::<_, TaskError>(()) });
    for (label, batch) in [("one batch", JOBS), ("batches of 1000", 1000)] {
        let broker = RedisBroker::connect(redis.url(), &format!("bench-{batch}")).await?;
        let client = Client::new(broker.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(
            Worker::new(app.clone(), broker, WorkerConfig::default()).run_until(async {
                let _ = stop_rx.await;
            }),
        );
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async::<()>(&mut admin)
            .await?;
        let cpu_before = redis_cpu(&mut admin).await?;
        let started = Instant::now();
        let mut last: Option<AsyncResult<()>> = None;
        let mut sent = 0;
        while sent < JOBS {
            let n = batch.min(JOBS - sent);
            let results: Vec<AsyncResult<()>> =
                client.delay_many("noop", (0..n).map(|_| [(); 0])).await?;
            last = results.into_iter().last();
            sent += n;
        }
        let enqueued = started.elapsed();
        // Results are acknowledged in fetch order per batch; wait until every job counted.
        if let Some(last) = last {
            last.get(Duration::from_secs(120)).await?;
        }
        loop {
            if client.stats().await?.processed >= JOBS as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let total = started.elapsed();
        println!(
            "throughput ({label}): {JOBS} jobs enqueued in {enqueued:?}, all results stored after {total:?}: {:.0} jobs/s",
            JOBS as f64 / total.as_secs_f64()
        );
        let redis_cpu_per_job = (redis_cpu(&mut admin).await? - cpu_before) / JOBS as f64;
        println!(
            "  redis: {:.1} us CPU per job; costliest: {}",
            redis_cpu_per_job * 1e6,
            costliest_commands(&mut admin, 8).await?
        );
        let _ = stop_tx.send(());
        worker.await??;
    }

    let broker = RedisBroker::connect(redis.url(), "bench-latency").await?;
    let client = Client::new(broker.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        Worker::new(app, broker, WorkerConfig::default()).run_until(async {
            let _ = stop_rx.await;
        }),
    );
    for idle in [Duration::ZERO, Duration::from_millis(5)] {
        let mut samples = Vec::with_capacity(1000);
        for _ in 0..1000 {
            if !idle.is_zero() {
                tokio::time::sleep(idle).await;
            }
            let t = Instant::now();
            let res: AsyncResult<()> = client.delay("noop", [(); 0]).await?;
            res.get(Duration::from_secs(5)).await?;
            samples.push(t.elapsed());
        }
        samples.sort();
        println!(
            "latency (idle {idle:?}): p50 {:?} p99 {:?} max {:?}",
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            samples[samples.len() - 1]
        );
    }
    let _ = stop_tx.send(());
    worker.await??;
    Ok(())
}
