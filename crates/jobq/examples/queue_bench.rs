//! A quick end-to-end measurement of jobq on a throwaway local Redis: throughput of
//! 100,000 no-op jobs (one batch, and batches of 1,000) and the round-trip latency of
//! 1,000 sequential `delay` + `get` (back to back, and with the worker idle 5 ms before each).
//! Run with `cargo run --release -p jobq --example queue_bench`; `cargo xtask bench queue`
//! is the project's benchmark.

use std::time::{Duration, Instant};

use jobq::{App, AsyncResult, Client, RedisBroker, TaskContext, TaskError, Worker, WorkerConfig};
use redis_harness::OwnedRedis;

const JOBS: usize = 100_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let redis = OwnedRedis::start()?;
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
