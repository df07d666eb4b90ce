//! `cargo xtask bench queue`: jobq end to end on a throwaway local `redis-server` (never
//! the developer's 6379), with a no-op task and one worker at its default settings.
//!
//! Measured per run, several runs (median and min/max reported):
//! - throughput: 100,000 jobs enqueued in pipelined batches, and once as one single
//!   100,000-job batch, until every result is stored;
//! - round-trip latency: 1,000 sequential `delay` + `get`, back to back and with the worker
//!   idle for 5 ms before each job (a blocked fetch must wake at once).
//!
//! The worker runs on a multi-thread runtime of its own, as in `posts-worker run`; the
//! client runs as a task on a second runtime, as it would inside a service.
//!
//! Numbers only mean something in an optimized build, so a debug build of xtask re-runs
//! itself as `cargo run --release -p xtask -- bench queue ...`: `cargo xtask bench queue`
//! always measures release code.

use super::Spread;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use jobq::{App, Broker, Client, TaskContext, TaskError, Worker, WorkerConfig};
use redis_harness::{OwnedRedis, unique_namespace};
use tokio::runtime::Runtime;
use tokio::sync::watch;

#[derive(clap::Args, Debug)]
pub(super) struct Args {
    /// Runs of every measurement; the median and spread are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Jobs per throughput measurement.
    #[arg(long, default_value_t = 100_000)]
    jobs: usize,
    /// Jobs per pipelined batch in the batched throughput measurement.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Sequential round trips per latency measurement.
    #[arg(long, default_value_t = 1_000)]
    round_trips: usize,
    /// Run the worker without job events (`WorkerConfig::events = false`), to measure
    /// what writing them costs.
    #[arg(long)]
    no_events: bool,
}

const NOOP: &str = "noop";
const IDLE_BEFORE_JOB: Duration = Duration::from_millis(5);
const RESULT_WAIT: Duration = Duration::from_secs(10);

pub(super) fn run(args: Args) -> anyhow::Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(args.jobs >= 1, "--jobs must be at least 1");
    ensure!(args.batch >= 1, "--batch must be at least 1");
    ensure!(args.round_trips >= 1, "--round-trips must be at least 1");

    let redis = OwnedRedis::start().context("starting a throwaway redis-server")?;
    eprintln!(
        "bench queue: redis-server at {} (release build, job events {})",
        redis.url(),
        if args.no_events { "off" } else { "on" }
    );
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("building the client runtime")?;

    let target = Target {
        url: redis.url(),
        events: !args.no_events,
    };
    let mut batched = Vec::new();
    let mut single = Vec::new();
    let mut back_to_back = Vec::new();
    let mut idle = Vec::new();
    for run in 1..=args.runs {
        eprintln!("run {run}/{}", args.runs);
        batched.push(measure_throughput(
            &client_runtime,
            &target,
            args.jobs,
            args.batch,
        )?);
        single.push(measure_throughput(
            &client_runtime,
            &target,
            args.jobs,
            args.jobs,
        )?);
        back_to_back.push(measure_latency(
            &client_runtime,
            &target,
            args.round_trips,
            None,
        )?);
        idle.push(measure_latency(
            &client_runtime,
            &target,
            args.round_trips,
            Some(IDLE_BEFORE_JOB),
        )?);
    }

    println!();
    println!(
        "jobq queue benchmark: {} runs, no-op task, one worker at default settings, local redis-server",
        args.runs
    );
    report_rate(
        &format!(
            "throughput, {} jobs in batches of {}",
            args.jobs, args.batch
        ),
        &batched,
    );
    report_rate(
        &format!("throughput, {} jobs in one batch", args.jobs),
        &single,
    );
    report_latency(
        &format!(
            "latency, {} sequential round trips, back to back",
            args.round_trips
        ),
        &back_to_back,
    );
    report_latency(
        &format!(
            "latency, {} sequential round trips, worker idle {} ms before each",
            args.round_trips,
            IDLE_BEFORE_JOB.as_millis()
        ),
        &idle,
    );
    Ok(())
}

/// The Redis the measurements use, and whether the worker writes job events.
struct Target<'a> {
    url: &'a str,
    events: bool,
}

/// A worker at default settings on its own runtime, like a separate worker process would
/// be; stops (and waits for the worker to finish) on drop.
struct BenchWorker {
    runtime: Option<Runtime>,
    stop: watch::Sender<bool>,
    done: Option<tokio::task::JoinHandle<Result<(), jobq::Error>>>,
}

impl BenchWorker {
    fn start(broker: Broker, events: bool) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("building the worker runtime")?;
        let mut app = App::new();
        app.task(NOOP)
            .args::<0>([])
            .handler(|_ctx: TaskContext, (): ()| async move { Ok::<_, TaskError>(()) });
        let mut config = WorkerConfig::default();
        config.events = events;
        let worker = Worker::new(app, broker, config);
        let (stop, mut stopped) = watch::channel(false);
        let done = runtime.spawn(worker.run_until(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        Ok(BenchWorker {
            runtime: Some(runtime),
            stop,
            done: Some(done),
        })
    }

    fn stop(mut self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        if let (Some(runtime), Some(done)) = (self.runtime.take(), self.done.take()) {
            runtime
                .block_on(done)
                .context("the worker task panicked")?
                .context("the worker stopped with an error")?;
        }
        Ok(())
    }
}

impl Drop for BenchWorker {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// A fresh namespace per measurement, so counters start at zero and nothing is left over.
fn connect(runtime: &Runtime, url: &str) -> anyhow::Result<Broker> {
    let namespace = unique_namespace("bench");
    let broker = runtime
        .block_on(Broker::redis(url, &namespace))
        .context("connecting to the bench redis")?;
    Ok(broker)
}

/// Jobs per second from the first enqueue until every result is stored.
fn measure_throughput(
    runtime: &Runtime,
    target: &Target<'_>,
    jobs: usize,
    batch: usize,
) -> anyhow::Result<f64> {
    let broker = connect(runtime, target.url)?;
    let worker = BenchWorker::start(broker.clone(), target.events)?;
    let client = Client::new(broker);
    let progress = ProgressBar::new(jobs as u64).with_style(
        ProgressStyle::with_template(&format!(
            "  throughput (batch {batch:>6}) {{bar:30}} {{pos:>7}}/{{len}} {{per_sec}}"
        ))
        .context("progress template")?,
    );
    let elapsed = send_and_drain(
        runtime,
        std::slice::from_ref(&client),
        jobs,
        batch,
        &progress,
    )?;
    progress.finish_and_clear();
    let failed = runtime.block_on(client.stats())?.failed;
    worker.stop()?;
    ensure!(failed == 0, "{failed} no-op jobs failed");
    Ok(jobs as f64 / elapsed.as_secs_f64())
}

/// Sends `jobs` no-op jobs in batches of `batch` to `clients` in turn and waits until their
/// namespaces have processed them all; returns how long that took from the first send.
pub(super) fn send_and_drain(
    runtime: &Runtime,
    clients: &[Client],
    jobs: usize,
    batch: usize,
    progress: &ProgressBar,
) -> anyhow::Result<Duration> {
    let clients = clients.to_vec();
    let progress = progress.clone();
    run_as_task(runtime, async move {
        let started = Instant::now();
        let mut sent = 0;
        for client in clients.iter().cycle() {
            if sent >= jobs {
                break;
            }
            let count = batch.min(jobs - sent);
            let handles = client
                .delay_many::<(), [(); 0]>(NOOP, std::iter::repeat_n([], count))
                .await
                .context("enqueueing")?;
            ensure!(
                handles.len() == count,
                "only {} of {count} jobs were enqueued",
                handles.len()
            );
            sent += count;
        }
        // Completion is read from the processed counters; the sampling interval adds at
        // most 2 ms to a measurement of several seconds.
        loop {
            let mut processed = 0;
            for client in &clients {
                processed += client.stats().await.context("reading stats")?.processed;
            }
            progress.set_position(processed);
            if processed >= jobs as u64 {
                return Ok::<_, anyhow::Error>(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
}

/// Round-trip times of `count` sequential `delay` + `get`, sorted.
fn measure_latency(
    runtime: &Runtime,
    target: &Target<'_>,
    count: usize,
    idle_before: Option<Duration>,
) -> anyhow::Result<Vec<Duration>> {
    let broker = connect(runtime, target.url)?;
    let worker = BenchWorker::start(broker.clone(), target.events)?;
    let client = Client::new(broker);
    let label = match idle_before {
        Some(idle) => format!("latency (idle {} ms)  ", idle.as_millis()),
        None => "latency (back to back)".to_string(),
    };
    let progress = ProgressBar::new(count as u64).with_style(
        ProgressStyle::with_template(&format!("  {label} {{bar:30}} {{pos:>7}}/{{len}}"))
            .context("progress template")?,
    );
    let samples = time_round_trips(
        runtime,
        std::slice::from_ref(&client),
        count,
        idle_before,
        &progress,
    );
    worker.stop()?;
    samples
}

/// Times `count` sequential `delay` + `get` round trips of a no-op job, sent to `clients`
/// in turn (after one warm-up), each after `idle_before` when given; sorted.
pub(super) fn time_round_trips(
    runtime: &Runtime,
    clients: &[Client],
    count: usize,
    idle_before: Option<Duration>,
    progress: &ProgressBar,
) -> anyhow::Result<Vec<Duration>> {
    let clients = clients.to_vec();
    let samples = run_as_task(runtime, {
        let progress = progress.clone();
        async move {
            // Warm the pool and the worker's fetch loop before measuring.
            if let Some(client) = clients.first() {
                client
                    .delay::<()>(NOOP, [(); 0])
                    .await?
                    .get(RESULT_WAIT)
                    .await?;
            }
            let mut samples = Vec::with_capacity(count);
            for client in clients.iter().cycle().take(count) {
                if let Some(idle) = idle_before {
                    tokio::time::sleep(idle).await;
                }
                let started = Instant::now();
                client
                    .delay::<()>(NOOP, [(); 0])
                    .await?
                    .get(RESULT_WAIT)
                    .await?;
                samples.push(started.elapsed());
                progress.inc(1);
            }
            Ok::<_, anyhow::Error>(samples)
        }
    });
    progress.finish_and_clear();
    let mut samples = samples.context("a round trip failed")?;
    samples.sort();
    Ok(samples)
}

/// Runs the client side as a task on `runtime`, as a service embedding jobq would, rather
/// than from the blocked main thread: `block_on` from outside the runtime adds a thread
/// hand-off to every reply (0.05 to 0.1 ms per round trip here) that no embedding has.
pub(super) fn run_as_task<T: Send + 'static>(
    runtime: &Runtime,
    client_side: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T> {
    runtime
        .block_on(runtime.spawn(client_side))
        .context("the client task panicked")?
}

pub(super) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report_rate(label: &str, rates: &[f64]) {
    let rates = Spread::of(rates);
    println!(
        "{label}: median {:.0} jobs/s (min {:.0}, max {:.0})",
        rates.median, rates.min, rates.max
    );
}

fn report_latency(label: &str, runs: &[Vec<Duration>]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p50: Vec<f64> = runs.iter().map(|r| ms(percentile(r, 0.50))).collect();
    let p99: Vec<f64> = runs.iter().map(|r| ms(percentile(r, 0.99))).collect();
    let (p50, p99) = (Spread::of(&p50), Spread::of(&p99));
    println!(
        "{label}: p50 median {:.3} ms (min {:.3}, max {:.3}); p99 median {:.3} ms (min {:.3}, max {:.3})",
        p50.median, p50.min, p50.max, p99.median, p99.min, p99.max
    );
}
