//! `cargo xtask bench scale`: jobq with several worker processes, on a throwaway local
//! `redis-server` and on a throwaway local Redis Cluster (3 masters, 3 replicas).
//!
//! Scenarios: standalone Redis with 1, 2 and 4 worker processes on one queue, and the
//! cluster with 2 worker processes each serving 2 namespaces (jobs split evenly). Measured
//! per run, several runs (median and min/max reported):
//! - throughput: `--jobs` no-op jobs enqueued in pipelined batches, from the first enqueue
//!   until the processed counters reach them;
//! - round-trip latency (p50, p99): sequential `delay` + `get` with the processes running;
//! - fairness: each process's share of the throughput jobs, from the workers' heartbeats;
//! - duplicate executions: jobs processed minus jobs sent, which must be 0 (the command
//!   fails otherwise).
//!
//! The worker processes are this xtask binary run again with the hidden `--serve` option:
//! one jobq worker per namespace at default settings, until its stdin closes.

use super::Spread;
use super::queue::{percentile, send_and_drain, time_round_trips};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use jobq::monitor::Monitor;
use jobq::{App, Broker, Client, RedisBroker, TaskContext, TaskError, Worker, WorkerConfig};
use redis_harness::{OwnedRedis, RedisCluster, unique_namespace};
use tokio::runtime::Runtime;
use tokio::sync::watch;

#[derive(clap::Args, Debug)]
pub(super) struct Args {
    /// Runs of every scenario; the median and spread are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Jobs per throughput measurement.
    #[arg(long, default_value_t = 20_000)]
    jobs: usize,
    /// Jobs per pipelined batch in the throughput measurement.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Sequential round trips per latency measurement.
    #[arg(long, default_value_t = 300)]
    round_trips: usize,
    /// Run the workers without job events (`WorkerConfig::events = false`).
    #[arg(long)]
    no_events: bool,
    /// Internal: run as a worker process on this Redis URL (see `--namespace`).
    #[arg(long, hide = true)]
    serve: Option<String>,
    /// Internal: a namespace the worker process serves (repeated).
    #[arg(long, hide = true)]
    namespace: Vec<String>,
    /// Internal: the worker process does not wait for replicas (`--serve`).
    #[arg(long, hide = true)]
    no_replica_wait: bool,
}

const NOOP: &str = "noop";
/// Heartbeats are renewed every 2 s by default; give the last one several intervals.
const HEARTBEAT_WAIT: Duration = Duration::from_secs(10);
const STARTUP_WAIT: Duration = Duration::from_secs(15);
const EXIT_WAIT: Duration = Duration::from_secs(35);

/// Where a scenario's Redis is and how its workers are laid out.
struct Scenario {
    label: &'static str,
    processes: usize,
    namespaces: usize,
    cluster: bool,
    /// Whether enqueues and acks wait for a replica (`WAIT 1`; only a Cluster has any).
    replica_wait: bool,
}

const SCENARIOS: [Scenario; 5] = [
    Scenario {
        label: "standalone, 1 queue",
        processes: 1,
        namespaces: 1,
        cluster: false,
        replica_wait: true,
    },
    Scenario {
        label: "standalone, 1 queue",
        processes: 2,
        namespaces: 1,
        cluster: false,
        replica_wait: true,
    },
    Scenario {
        label: "standalone, 1 queue",
        processes: 4,
        namespaces: 1,
        cluster: false,
        replica_wait: true,
    },
    Scenario {
        label: "cluster, 2 namespaces",
        processes: 2,
        namespaces: 2,
        cluster: true,
        replica_wait: true,
    },
    Scenario {
        label: "cluster, no replica wait",
        processes: 2,
        namespaces: 2,
        cluster: true,
        replica_wait: false,
    },
];

/// A broker on `url` in `namespace`, waiting for a replica on writes or not.
async fn connect(url: &str, namespace: &str, replica_wait: bool) -> Result<Broker, jobq::Error> {
    let mut options = RedisBroker::builder(url).namespace(namespace);
    if !replica_wait {
        options = options.wait_for_replica(None);
    }
    options.connect().await
}

/// What one run of a scenario measured.
struct RunFigures {
    throughput: f64,
    latencies: Vec<Duration>,
    /// Each process's share of the throughput jobs (0..1).
    shares: Vec<f64>,
    duplicates: i64,
}

pub(super) fn run(args: Args) -> anyhow::Result<()> {
    if let Some(url) = &args.serve {
        return serve(url, &args.namespace, !args.no_events, !args.no_replica_wait);
    }
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(args.jobs >= 1, "--jobs must be at least 1");
    ensure!(args.batch >= 1, "--batch must be at least 1");
    ensure!(args.round_trips >= 1, "--round-trips must be at least 1");

    let redis = OwnedRedis::start().context("starting a throwaway redis-server")?;
    eprintln!("bench scale: starting a throwaway Redis Cluster");
    let cluster = RedisCluster::start().context("starting a throwaway Redis Cluster")?;
    let cluster_url = cluster.url();
    eprintln!(
        "bench scale: redis-server at {}, cluster at {cluster_url} (release build, job events {})",
        redis.url(),
        if args.no_events { "off" } else { "on" }
    );
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("building the client runtime")?;

    let mut results = Vec::new();
    for scenario in &SCENARIOS {
        let url = if scenario.cluster {
            cluster_url.as_str()
        } else {
            redis.url()
        };
        let mut runs = Vec::new();
        for run in 1..=args.runs {
            eprintln!(
                "{} × {} process(es): run {run}/{}",
                scenario.label, scenario.processes, args.runs
            );
            runs.push(measure(&client_runtime, url, scenario, &args)?);
        }
        results.push((scenario, runs));
    }

    println!();
    println!(
        "jobq scale benchmark: {} runs, no-op task, worker processes at default settings \
         (one worker per namespace each), {} jobs in batches of {}, {} round trips; \
         median (min–max)",
        args.runs, args.jobs, args.batch, args.round_trips
    );
    println!(
        "{:<22} {:>5} {:>26} {:>24} {:>24} {:>15} {:>5}",
        "scenario",
        "procs",
        "throughput jobs/s",
        "latency p50 ms",
        "latency p99 ms",
        "share min/max",
        "dups"
    );
    let mut duplicates = 0;
    for (scenario, runs) in &results {
        let rate = Spread::of(&runs.iter().map(|r| r.throughput).collect::<Vec<_>>());
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let p50 = Spread::of(
            &runs
                .iter()
                .map(|r| ms(percentile(&r.latencies, 0.50)))
                .collect::<Vec<_>>(),
        );
        let p99 = Spread::of(
            &runs
                .iter()
                .map(|r| ms(percentile(&r.latencies, 0.99)))
                .collect::<Vec<_>>(),
        );
        let min_share = Spread::of(
            &runs
                .iter()
                .map(|r| r.shares.iter().copied().fold(f64::INFINITY, f64::min))
                .collect::<Vec<_>>(),
        );
        let max_share = Spread::of(
            &runs
                .iter()
                .map(|r| r.shares.iter().copied().fold(0.0, f64::max))
                .collect::<Vec<_>>(),
        );
        let dups: i64 = runs.iter().map(|r| r.duplicates).sum();
        duplicates += dups.abs();
        println!(
            "{:<22} {:>5} {:>26} {:>24} {:>24} {:>15} {:>5}",
            scenario.label,
            scenario.processes,
            format!("{:.0} ({:.0}–{:.0})", rate.median, rate.min, rate.max),
            format!("{:.3} ({:.3}–{:.3})", p50.median, p50.min, p50.max),
            format!("{:.3} ({:.3}–{:.3})", p99.median, p99.min, p99.max),
            format!(
                "{:.1}%/{:.1}%",
                min_share.median * 100.0,
                max_share.median * 100.0
            ),
            dups,
        );
    }
    println!(
        "share: each process's part of the throughput jobs, from the heartbeats (median of \
         the runs' smallest and largest); dups: jobs processed minus jobs sent, all runs"
    );
    if duplicates != 0 {
        bail!("jobs processed and jobs sent differ by {duplicates} in total: they must match");
    }
    Ok(())
}

/// One run of `scenario`: fresh namespaces, fresh worker processes.
fn measure(
    runtime: &Runtime,
    url: &str,
    scenario: &Scenario,
    args: &Args,
) -> anyhow::Result<RunFigures> {
    let namespaces: Vec<String> = (0..scenario.namespaces)
        .map(|_| unique_namespace("scale"))
        .collect();
    let clients = namespaces
        .iter()
        .map(|namespace| {
            let broker = runtime
                .block_on(connect(url, namespace, scenario.replica_wait))
                .context("connecting to the bench redis")?;
            Ok(Client::new(broker))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut processes = WorkerProcesses::spawn(scenario, url, &namespaces, args)?;
    processes.wait_until_ready(runtime, &clients)?;

    let throughput = measure_throughput(runtime, &clients, args.jobs, args.batch)?;
    let per_process = processed_per_process(runtime, &clients, scenario.processes)?;
    let total: u64 = per_process.values().sum();
    let shares = per_process
        .values()
        .map(|&count| count as f64 / total.max(1) as f64)
        .collect();
    let latencies = measure_latency(runtime, &clients, args.round_trips)?;
    processes.stop()?;

    // One warm-up job precedes the latency samples.
    let sent = args.jobs + args.round_trips + 1;
    let stats = runtime.block_on(async {
        let mut all = Vec::new();
        for client in &clients {
            all.push(client.stats().await?);
        }
        Ok::<_, jobq::Error>(all)
    })?;
    let processed: u64 = stats.iter().map(|s| s.processed).sum();
    let failed: u64 = stats.iter().map(|s| s.failed).sum();
    let in_flight: u64 = stats.iter().map(|s| s.in_flight).sum();
    ensure!(failed == 0, "{failed} no-op jobs failed");
    ensure!(
        in_flight == 0,
        "{in_flight} jobs still in flight after the run"
    );
    Ok(RunFigures {
        throughput,
        latencies,
        shares,
        duplicates: processed as i64 - sent as i64,
    })
}

/// Jobs per second from the first enqueue until every job is processed; the batches go
/// to the namespaces in turn.
fn measure_throughput(
    runtime: &Runtime,
    clients: &[Client],
    jobs: usize,
    batch: usize,
) -> anyhow::Result<f64> {
    let progress = ProgressBar::new(jobs as u64).with_style(
        ProgressStyle::with_template("  throughput {bar:30} {pos:>7}/{len} {per_sec}")
            .context("progress template")?,
    );
    let elapsed = send_and_drain(runtime, clients, jobs, batch, &progress)?;
    progress.finish_and_clear();
    Ok(jobs as f64 / elapsed.as_secs_f64())
}

/// Round-trip times of `count` sequential `delay` + `get`, alternating namespaces, sorted.
fn measure_latency(
    runtime: &Runtime,
    clients: &[Client],
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    let progress = ProgressBar::new(count as u64).with_style(
        ProgressStyle::with_template("  latency    {bar:30} {pos:>7}/{len}")
            .context("progress template")?,
    );
    time_round_trips(runtime, clients, count, None, &progress)
}

/// Jobs processed per worker process (by pid, over all namespaces), from the heartbeats,
/// once they add up to the processed counters: a heartbeat lags by up to its interval.
fn processed_per_process(
    runtime: &Runtime,
    clients: &[Client],
    processes: usize,
) -> anyhow::Result<BTreeMap<u32, u64>> {
    runtime.block_on(async {
        let deadline = Instant::now() + HEARTBEAT_WAIT;
        loop {
            let mut expected = 0;
            let mut per_process = BTreeMap::new();
            for client in clients {
                expected += client.stats().await?.processed;
                let workers = Monitor::new(client.broker())?.workers().await?;
                for info in workers
                    .into_iter()
                    .filter(|w| w.alive)
                    .filter_map(|w| w.info)
                {
                    *per_process.entry(info.pid).or_insert(0) += info.processed;
                }
            }
            let reported: u64 = per_process.values().sum();
            if reported == expected && per_process.len() == processes {
                return Ok(per_process);
            }
            if Instant::now() > deadline {
                bail!(
                    "the heartbeats of {} process(es) report {reported} jobs processed, \
                     the counters {expected} ({processes} processes expected)",
                    per_process.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Worker processes (this binary with `--serve`); stopped by closing their stdin, killed
/// on drop if still running.
struct WorkerProcesses {
    children: Vec<Child>,
}

impl WorkerProcesses {
    fn spawn(
        scenario: &Scenario,
        url: &str,
        namespaces: &[String],
        args: &Args,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the xtask binary")?;
        let mut processes = WorkerProcesses {
            children: Vec::new(),
        };
        for _ in 0..scenario.processes {
            let mut command = Command::new(&exe);
            command.args(["bench", "scale", "--serve", url]);
            for namespace in namespaces {
                command.args(["--namespace", namespace]);
            }
            if args.no_events {
                command.arg("--no-events");
            }
            if !scenario.replica_wait {
                command.arg("--no-replica-wait");
            }
            let child = command
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .with_context(|| format!("starting a worker process ({})", exe.display()))?;
            processes.children.push(child);
        }
        Ok(processes)
    }

    /// Waits until every process's worker heartbeats in every namespace.
    fn wait_until_ready(&mut self, runtime: &Runtime, clients: &[Client]) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_WAIT;
        loop {
            for child in &mut self.children {
                if let Some(status) = child.try_wait()? {
                    bail!("a worker process exited at start-up ({status})");
                }
            }
            let mut ready = true;
            for client in clients {
                let workers = runtime.block_on(client.stats())?.workers;
                ready &= workers as usize == self.children.len();
            }
            if ready {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the worker processes did not heartbeat within {STARTUP_WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes every stdin and waits for graceful exits.
    fn stop(mut self) -> anyhow::Result<()> {
        for child in &mut self.children {
            drop(child.stdin.take());
        }
        let deadline = Instant::now() + EXIT_WAIT;
        // On an early return, drop kills the processes still running.
        for child in &mut self.children {
            let status = loop {
                if let Some(status) = child.try_wait()? {
                    break status;
                }
                ensure!(
                    Instant::now() < deadline,
                    "a worker process did not stop within {EXIT_WAIT:?}"
                );
                std::thread::sleep(Duration::from_millis(10));
            };
            ensure!(status.success(), "a worker process failed ({status})");
        }
        self.children.clear();
        Ok(())
    }
}

impl Drop for WorkerProcesses {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The worker process: one worker per namespace, until stdin closes.
fn serve(url: &str, namespaces: &[String], events: bool, replica_wait: bool) -> anyhow::Result<()> {
    ensure!(
        !namespaces.is_empty(),
        "--serve needs at least one --namespace"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the worker runtime")?;
    let (stop, stopped) = watch::channel(false);
    std::thread::spawn(move || {
        // Any read error counts as closed: the parent is gone either way.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stop.send_replace(true);
    });
    runtime.block_on(async {
        let mut workers = Vec::new();
        for namespace in namespaces {
            let broker = connect(url, namespace, replica_wait)
                .await
                .with_context(|| format!("connecting to {url} for namespace {namespace}"))?;
            let mut app = App::new();
            app.task(NOOP)
                .args::<0>([])
                .handler(|_ctx: TaskContext, (): ()| async move { Ok::<_, TaskError>(()) });
            let mut config = WorkerConfig::default();
            config.events = events;
            let mut stopped = stopped.clone();
            workers.push(tokio::spawn(Worker::new(app, broker, config).run_until(
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            )));
        }
        for worker in workers {
            worker
                .await
                .context("a worker task panicked")?
                .context("a worker stopped with an error")?;
        }
        Ok(())
    })
}
