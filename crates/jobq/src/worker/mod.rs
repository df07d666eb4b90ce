//! The consuming side: [`Worker`] fetches jobs, runs their handlers with bounded
//! concurrency, acknowledges them in batches, heartbeats, reaps dead workers, promotes
//! delayed jobs and shuts down gracefully.

mod acker;
mod execute;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use self::acker::{AckMessage, Acker};
use self::execute::{ExecSettings, Finished};
use crate::app::App;
use crate::broker::wire::{Delivery, DeliveryTag, decode_delivery};
use crate::broker::{Ack, Broker, Outcome, Source};
use crate::celery::CeleryConfig;
use crate::celery::reply::{CeleryLayer, Prepared, RunFacts};
use crate::client::DEFAULT_QUEUE;
use crate::error::Error;
use crate::message::{JobMessage, now_ms};
use crate::monitor::{self, EventKind, JobRun, RUNNING_LISTED, RunningJob, WorkerInfo};

/// How a [`Worker`] runs. `WorkerConfig::default()` suits production; change single
/// settings on it (`let mut config = WorkerConfig::default(); config.concurrency = 4;`),
/// e.g. tests shorten the timeouts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Handlers running at once (default: the number of CPU cores).
    pub concurrency: usize,
    /// Queues to consume (default: `["default"]`); each gets its own fetcher.
    pub queues: Vec<String>,
    /// Jobs fetched ahead of free handler slots, so short jobs do not wait for a round trip
    /// (default 256). They count as in flight and are recovered like running ones.
    pub prefetch: usize,
    /// How often the worker heartbeats and reaps (default 2 s); its heartbeat lives three
    /// intervals.
    pub heartbeat_interval: Duration,
    /// How long after a dead worker's last heartbeat its jobs go back to their queues
    /// (default 10 s). Its heartbeat must have expired too, so the wait is the longer of
    /// this and three heartbeat intervals, and the reaper runs once per heartbeat interval:
    /// a killed worker's jobs are back within about `max(visibility_timeout, 3 ×
    /// heartbeat_interval) + heartbeat_interval` (12 s at the defaults). A worker whose
    /// heartbeat task runs is never reaped, however long its jobs take; after a broker
    /// outage the reaper waits one heartbeat lifetime before it reaps, so live workers
    /// heartbeat again first.
    pub visibility_timeout: Duration,
    /// How long a graceful shutdown waits for running jobs (default 30 s).
    pub grace_period: Duration,
    /// How long results are kept unless the job says otherwise (default 24 h).
    pub result_ttl: Duration,
    /// The largest serialized result stored (default 1 MiB); larger ones fail with
    /// `ResultTooLarge`.
    pub result_size_limit: usize,
    /// How long one blocking fetch waits before it is renewed (default 2 s); bounds how long
    /// a dead connection can go unnoticed. Jobs arriving while it waits wake it at once. A
    /// shutdown lets the fetch under way end (within this time) and gives back what it
    /// brought, so no job is taken by a worker that has gone.
    pub block_timeout: Duration,
    /// How often due delayed jobs are moved to their queues (default 100 ms).
    pub promote_interval: Duration,
    /// The most delayed jobs moved per broker call (default 1000), so a large backlog is
    /// moved in short steps that never stall Redis or the worker.
    pub promote_batch: usize,
    /// The worker id (default: a fresh UUID per run). A worker started with an id takes
    /// back what a previous run with that id left in flight (it was killed), at once
    /// instead of after the visibility timeout, so ids must not be shared by live workers.
    pub worker_id: Option<String>,
    /// Also consume Celery protocol v2 messages and answer in Celery's format (default:
    /// off; needs a Redis broker). See [`crate::celery`].
    pub celery: Option<CeleryConfig>,
    /// Write a [`JobEvent`](crate::monitor::JobEvent) per finished job to the namespace's
    /// event list (default: on). Counters and duration histograms are kept either way;
    /// see [`crate::monitor`].
    pub events: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queues: vec![DEFAULT_QUEUE.to_owned()],
            prefetch: 256,
            heartbeat_interval: Duration::from_secs(2),
            visibility_timeout: Duration::from_secs(10),
            grace_period: Duration::from_secs(30),
            result_ttl: Duration::from_secs(24 * 3600),
            result_size_limit: 1024 * 1024,
            block_timeout: Duration::from_secs(2),
            promote_interval: Duration::from_millis(100),
            promote_batch: 1000,
            worker_id: None,
            celery: None,
            events: true,
        }
    }
}

impl WorkerConfig {
    fn validate(&self) -> Result<(), Error> {
        let problem = if self.concurrency == 0 {
            "concurrency must be at least 1"
        } else if self.queues.is_empty() {
            "at least one queue is needed"
        } else if self.queues.iter().any(String::is_empty) {
            "queue names must not be empty"
        } else if self.heartbeat_interval.is_zero() {
            "heartbeat_interval must not be zero"
        } else if self.block_timeout < Duration::from_millis(1) {
            "block_timeout must be at least 1 ms"
        } else if self.promote_interval.is_zero() || self.promote_batch == 0 {
            "promote_interval and promote_batch must not be zero"
        } else if self.result_ttl < Duration::from_millis(1) {
            "result_ttl must be at least 1 ms"
        } else if self.worker_id.as_deref().is_some_and(str::is_empty) {
            "worker_id must not be empty"
        } else if let Some(celery) = &self.celery {
            return celery.validate().map_err(Error::Config);
        } else {
            return Ok(());
        };
        Err(Error::Config(problem.to_owned()))
    }
}

/// Runs the tasks of an [`App`] on jobs from a broker.
pub struct Worker {
    app: Arc<App>,
    broker: Broker,
    config: WorkerConfig,
    id: String,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("app", &self.app)
            .field("config", &self.config)
            .finish()
    }
}

/// Fetched jobs that have not been acknowledged, so a shutdown can put back the ones that
/// did not finish.
struct Outstanding {
    jobs: Mutex<HashMap<u64, Held>>,
    next: AtomicU64,
}

/// A fetched job not yet acknowledged.
struct Held {
    tag: DeliveryTag,
    queue: String,
    /// When its handler started (ms since the Unix epoch); `None` while prefetched.
    started_at_ms: Option<u64>,
}

impl Outstanding {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Held>> {
        crate::sync::lock(&self.jobs)
    }

    /// Notes that the handler of the job under `key` started at `at_ms`.
    fn started(&self, key: u64, at_ms: u64) {
        if let Some(held) = self.lock().get_mut(&key) {
            held.started_at_ms = Some(at_ms);
        }
    }

    /// How many jobs run, and the oldest [`RUNNING_LISTED`] of them.
    fn running(&self) -> (usize, Vec<RunningJob>) {
        let mut started: Vec<(u64, u64, String)> = {
            let jobs = self.lock();
            jobs.iter()
                .filter_map(|(key, held)| {
                    held.started_at_ms
                        .map(|at| (*key, at, held.tag.as_stored().to_owned()))
                })
                .collect()
        };
        let count = started.len();
        started.sort_unstable_by_key(|(key, _, _)| *key);
        started.truncate(RUNNING_LISTED);
        let listed = started
            .into_iter()
            .filter_map(|(_, started_at_ms, stored)| {
                let job = decode_delivery(stored).job.ok()?;
                Some(RunningJob {
                    job_id: job.id,
                    task: job.task,
                    started_at_ms,
                })
            })
            .collect();
        (count, listed)
    }
}

/// What the fetchers and job tasks share.
struct Shared {
    app: Arc<App>,
    broker: Broker,
    worker_id: String,
    settings: ExecSettings,
    /// Slots for handlers running at once.
    running: Arc<Semaphore>,
    /// Slots for jobs fetched and not yet acknowledged (running plus prefetched).
    fetched: Arc<Semaphore>,
    outstanding: Outstanding,
    /// Answers Celery messages, when the worker consumes any.
    celery: Option<CeleryLayer>,
    acks: mpsc::UnboundedSender<AckMessage>,
    /// Fetched jobs waiting for a handler slot, started in fetch order by
    /// [`start_in_fetch_order`].
    waiting: mpsc::UnboundedSender<Fetched>,
    /// How many jobs are queued in `waiting`: while any are, a newly fetched job queues
    /// behind them instead of taking a slot that frees up.
    waiting_count: AtomicUsize,
    /// Set when shutdown begins: jobs that have not started stay unstarted.
    draining: CancellationToken,
    /// Set when the grace period ran out: nothing more is written for running jobs.
    abandoned: CancellationToken,
    /// What this worker's heartbeat reports.
    counters: Counters,
    /// How many more heartbeats look for jobs in this worker's in-flight list that it
    /// never received (see [`reclaim_orphans`]); set after a fetch fails.
    orphan_checks: AtomicU32,
}

/// This worker's own tallies, reported in its heartbeat ([`WorkerInfo`]).
#[derive(Default)]
struct Counters {
    processed: AtomicU64,
    failed: AtomicU64,
}

impl Worker {
    /// A worker running `app`'s tasks on jobs from `broker`.
    pub fn new(app: App, broker: Broker, config: WorkerConfig) -> Self {
        let id = config
            .worker_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        Self {
            app: Arc::new(app),
            broker,
            config,
            id,
        }
    }

    /// This worker's id (its heartbeat and in-flight list are keyed by it).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until `shutdown` resolves, then shuts down gracefully: stops fetching, lets
    /// running jobs finish within the grace period, puts back what did not finish, flushes
    /// acknowledgements and unregisters. Broker outages while running are logged and
    /// retried with backoff; they never end the worker.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        self.config.validate()?;
        let config = self.config;
        if config.worker_id.is_some() {
            // A previous run under this id may have died with jobs in flight: they go back to
            // their queues now (the reaper would only return them after the visibility
            // timeout).
            if let Err(e) = self.broker.backend().unregister(&self.id).await {
                warn!(worker_id = %self.id, error = %e, "could not take back the jobs of a previous run");
            }
        }
        let mut sources: Vec<Source> = config.queues.iter().cloned().map(Source::Queue).collect();
        if let Some(celery) = &config.celery {
            sources.extend(celery.queues.iter().cloned().map(Source::Celery));
            match self
                .broker
                .backend()
                .declare_celery_queues(&celery.queues)
                .await
            {
                Ok(()) => {}
                Err(e @ Error::Config(_)) => return Err(e),
                // Redis is down: the fetchers retry until it answers.
                Err(e) => warn!(error = %e, "could not declare the Celery queues"),
            }
        }
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let (waiting_tx, waiting_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            app: self.app,
            broker: self.broker.clone(),
            worker_id: self.id.clone(),
            settings: ExecSettings {
                result_ttl: config.result_ttl,
                result_size_limit: config.result_size_limit,
            },
            running: Arc::new(Semaphore::new(config.concurrency)),
            fetched: Arc::new(Semaphore::new(config.concurrency + config.prefetch)),
            outstanding: Outstanding {
                jobs: Mutex::new(HashMap::new()),
                next: AtomicU64::new(0),
            },
            celery: config.celery.clone().map(CeleryLayer::new),
            acks: ack_tx,
            waiting: waiting_tx,
            waiting_count: AtomicUsize::new(0),
            draining: CancellationToken::new(),
            abandoned: CancellationToken::new(),
            counters: Counters::default(),
            orphan_checks: AtomicU32::new(0),
        });
        info!(
            worker_id = %self.id,
            queues = ?config.queues,
            celery_queues = ?config.celery.as_ref().map(|c| &c.queues),
            concurrency = config.concurrency,
            "worker starting"
        );

        let stop_fetching = shared.draining.clone();
        let stop_background = CancellationToken::new();
        let acker = tokio::spawn(
            Acker {
                broker: self.broker.clone(),
                worker_id: self.id.clone(),
                fetched: Arc::clone(&shared.fetched),
                events: config.events,
            }
            .run(ack_rx),
        );
        let heartbeat = tokio::spawn(heartbeat_loop(
            Arc::clone(&shared),
            config.clone(),
            stop_background.clone(),
        ));
        let maintenance = tokio::spawn(maintenance_loop(
            self.broker.clone(),
            config.clone(),
            stop_background.clone(),
        ));
        let control = config.celery.as_ref().map(|celery| {
            let broker = self.broker.clone();
            let hostname = celery.hostname.clone();
            let names: Vec<String> = shared
                .app
                .task_names()
                .into_iter()
                .map(str::to_owned)
                .collect();
            let stop = stop_background.clone();
            tokio::spawn(async move {
                tokio::select! {
                    served = broker.backend().serve_celery_control(&hostname, &names) => {
                        if let Err(e) = served {
                            warn!(error = %e, "Celery remote control stopped");
                        }
                    }
                    _ = stop.cancelled() => {}
                }
            })
        });
        let launcher = tokio::spawn(start_in_fetch_order(Arc::clone(&shared), waiting_rx));
        let fetchers: Vec<_> = sources
            .into_iter()
            .map(|source| {
                tokio::spawn(fetch_loop(
                    Arc::clone(&shared),
                    source,
                    config.clone(),
                    stop_fetching.clone(),
                ))
            })
            .collect();

        shutdown.await;
        info!(worker_id = %self.id, "shutting down: no more fetching");
        let grace_over = tokio::time::Instant::now() + config.grace_period;
        // The launcher now gives back the jobs that wait for a handler slot, and the fetchers
        // give back what their last fetch brings.
        stop_fetching.cancel();
        for fetcher in fetchers {
            if let Err(e) = fetcher.await {
                warn!(error = %e, "a fetcher ended abnormally");
            }
        }
        if let Err(e) = launcher.await {
            warn!(error = %e, "the job launcher ended abnormally");
        }

        // Running jobs, and the jobs given back, release their slot in `fetched` once their
        // acknowledgement is applied; all slots free means nothing is left.
        let total = (config.concurrency + config.prefetch) as u32;
        let drained = tokio::time::timeout_at(grace_over, shared.fetched.acquire_many(total)).await;
        if drained.is_err() {
            warn!(grace_period = ?config.grace_period, "grace period over: putting unfinished jobs back");
        }
        shared.abandoned.cancel();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        {
            let mut outstanding = shared.outstanding.lock();
            let requeue: Vec<Ack> = outstanding
                .drain()
                .map(|(_, held)| Ack::new(held.tag, Outcome::Requeue { queue: held.queue }))
                .collect();
            if !requeue.is_empty() {
                info!(
                    count = requeue.len(),
                    "putting unfinished jobs back on their queues"
                );
            }
            // Sent under the lock, so every ack a job task queued before is ahead of it.
            let _ = shared.acks.send(AckMessage::Flush {
                requeue,
                done: done_tx,
            });
        }
        let _ = done_rx.await;
        let _ = shared.acks.send(AckMessage::Stop);
        if let Err(e) = acker.await {
            warn!(error = %e, "the acknowledger ended abnormally");
        }
        stop_background.cancel();
        let _ = heartbeat.await;
        let _ = maintenance.await;
        if let Some(control) = control {
            let _ = control.await;
        }
        // Whatever is still listed as in flight (e.g. acknowledgements that failed) goes
        // back to its queue.
        if let Err(e) = self.broker.backend().unregister(&self.id).await {
            warn!(worker_id = %self.id, error = %e, "could not unregister; the reaper will recover this worker's jobs");
        }
        info!(worker_id = %self.id, "worker stopped");
        Ok(())
    }
}

/// How long a job runs before its STARTED state is recorded (see [`run_recording_start`]).
const STARTED_AFTER: Duration = Duration::from_millis(10);

/// Exponential backoff for broker outages: 50 ms doubling up to 5 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << failures.min(7))).min(Duration::from_secs(5))
}

async fn sleep_or_cancel(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = stop.cancelled() => false,
    }
}

async fn heartbeat_loop(shared: Arc<Shared>, config: WorkerConfig, stop: CancellationToken) {
    let ttl = config.heartbeat_interval * 3;
    let mut info = WorkerInfo {
        id: shared.worker_id.clone(),
        host: monitor::host_name(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        queues: config.queues.clone(),
        celery_queues: config
            .celery
            .as_ref()
            .map(|c| c.queues.clone())
            .unwrap_or_default(),
        concurrency: config.concurrency,
        prefetch: config.prefetch,
        events: config.events,
        started_at_ms: now_ms(),
        heartbeat_at_ms: 0,
        processed: 0,
        failed: 0,
        running: Vec::new(),
        running_count: 0,
    };
    let mut failures = 0;
    let mut suspects = HashSet::new();
    let mut beats: u64 = 0;
    loop {
        info.heartbeat_at_ms = now_ms();
        info.processed = shared.counters.processed.load(Ordering::Relaxed);
        info.failed = shared.counters.failed.load(Ordering::Relaxed);
        (info.running_count, info.running) = shared.outstanding.running();
        let text = serde_json::to_string(&info).unwrap_or_default();
        let worker_id = &shared.worker_id;
        let delay = match shared
            .broker
            .backend()
            .heartbeat(worker_id, &text, ttl)
            .await
        {
            Ok(()) => {
                failures = 0;
                beats += 1;
                if beats.is_multiple_of(ORPHAN_SCAN_EVERY)
                    || shared.orphan_checks.load(Ordering::Relaxed) > 0
                {
                    reclaim_orphans(&shared, &config, &mut suspects).await;
                }
                config.heartbeat_interval
            }
            Err(e) => {
                // Retried soon: after an outage longer than its lifetime the heartbeat is
                // gone, and this worker must show it is alive before a reaper looks.
                failures += 1;
                warn!(worker_id = %worker_id, error = %e, "heartbeat failed");
                backoff(failures).min(config.heartbeat_interval)
            }
        };
        if !sleep_or_cancel(delay, &stop).await {
            return;
        }
    }
}

/// Heartbeats that look for orphans after a failed fetch.
const ORPHAN_CHECKS: u32 = 3;
/// Heartbeats between looks for orphans otherwise (a lost reply whose command was retried
/// on a fresh connection leaves no failed fetch behind).
const ORPHAN_SCAN_EVERY: u64 = 10;

/// Puts back jobs that sit in this worker's in-flight list although the worker never
/// received them: a fetch carried out by Redis whose reply was lost (the connection broke,
/// Redis crashed after writing it to its log, a failover). Nothing would run them while
/// this worker lives. Runs for a few heartbeats after a failed fetch, and every
/// [`ORPHAN_SCAN_EVERY`] heartbeats.
///
/// A job seen in the list but not held by the worker at two checks in a row (a heartbeat
/// interval apart) is such an orphan: a delivery under way is held by then, and a finished
/// job's acknowledgement was queued before the second look, so it is applied before the
/// requeue, which then finds nothing to move.
async fn reclaim_orphans(shared: &Shared, config: &WorkerConfig, suspects: &mut HashSet<String>) {
    let listed = match shared.broker.backend().in_flight(&shared.worker_id).await {
        Ok(listed) => listed,
        Err(e) => {
            debug!(error = %e, "listing this worker's jobs in flight failed");
            return;
        }
    };
    let held: HashSet<String> = shared
        .outstanding
        .lock()
        .values()
        .map(|held| held.tag.as_stored().to_owned())
        .collect();
    let unheld: HashSet<String> = listed.into_iter().filter(|p| !held.contains(p)).collect();
    let fallback_queue = config.queues.first().cloned().unwrap_or_default();
    let orphans: Vec<Ack> = unheld
        .intersection(suspects)
        .map(|stored| {
            Ack::new(
                DeliveryTag::from_stored(stored.clone()),
                Outcome::Requeue {
                    queue: fallback_queue.clone(),
                },
            )
        })
        .collect();
    if !orphans.is_empty() {
        warn!(
            count = orphans.len(),
            "found jobs in flight that this worker never received (a lost fetch reply); putting them back"
        );
        let _ = shared.acks.send(AckMessage::Reclaim(orphans));
    }
    let confirm = !unheld.is_empty();
    *suspects = unheld;
    let _ = shared
        .orphan_checks
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    if confirm {
        // The next heartbeat looks again, to tell orphans from deliveries under way.
        let _ = shared.orphan_checks.fetch_max(1, Ordering::Relaxed);
    }
}

/// Promotes due delayed jobs and, once per heartbeat interval, reaps dead workers.
///
/// A broker outage longer than a heartbeat's lifetime leaves live workers without one
/// until they heartbeat again, so after any failed broker call the reaper waits a full
/// heartbeat lifetime (during which every live worker heartbeats, retrying soon after a
/// failure) before it reaps again.
async fn maintenance_loop(broker: Broker, config: WorkerConfig, stop: CancellationToken) {
    let heartbeat_ttl = config.heartbeat_interval * 3;
    let mut last_reap = tokio::time::Instant::now() - config.heartbeat_interval;
    let mut last_failure: Option<tokio::time::Instant> = None;
    let mut failures = 0;
    loop {
        let mut delay = config.promote_interval;
        match broker.backend().promote(config.promote_batch).await {
            Ok(moved) => {
                failures = 0;
                if moved > 0 {
                    debug!(moved, "promoted due delayed jobs");
                }
                if moved >= config.promote_batch {
                    // More are due: carry on at once, yielding so fetchers keep running.
                    delay = Duration::ZERO;
                }
            }
            Err(e) => {
                failures += 1;
                last_failure = Some(tokio::time::Instant::now());
                delay = backoff(failures).max(config.promote_interval);
                warn!(error = %e, "promoting delayed jobs failed");
            }
        }
        let settled = last_failure.is_none_or(|at| at.elapsed() >= heartbeat_ttl);
        if settled && last_reap.elapsed() >= config.heartbeat_interval {
            last_reap = tokio::time::Instant::now();
            match broker.backend().reap(config.visibility_timeout).await {
                Ok(0) => {}
                Ok(moved) => {
                    info!(moved, "returned jobs of dead workers to their queues")
                }
                Err(e) => {
                    last_failure = Some(tokio::time::Instant::now());
                    warn!(error = %e, "reaping dead workers failed");
                }
            }
        }
        if delay.is_zero() {
            tokio::task::yield_now().await;
            if stop.is_cancelled() {
                return;
            }
        } else if !sleep_or_cancel(delay, &stop).await {
            return;
        }
    }
}

async fn fetch_loop(
    shared: Arc<Shared>,
    source: Source,
    config: WorkerConfig,
    stop: CancellationToken,
) {
    let queue = source.name();
    let mut failures = 0;
    loop {
        let permit = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            permit = Arc::clone(&shared.fetched).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { return };
        permit.forget();
        let extra = shared.fetched.available_permits();
        let extra = match Arc::clone(&shared.fetched).try_acquire_many_owned(extra as u32) {
            Ok(p) if extra > 0 => {
                p.forget();
                extra
            }
            _ => 0,
        };
        let mut capacity = 1 + extra;
        // With slots to spare, first take what is waiting without blocking; when nothing is,
        // block for one job only, so the spare slots stay free for the other fetchers.
        let first_wait = if extra > 0 {
            Duration::ZERO
        } else {
            config.block_timeout
        };
        let Some(mut fetched) = fetch_or_stop(&shared, &source, capacity, first_wait, &stop).await
        else {
            return;
        };
        if extra > 0 && fetched.as_ref().is_ok_and(Vec::is_empty) {
            shared.fetched.add_permits(extra);
            capacity = 1;
            let Some(blocked) =
                fetch_or_stop(&shared, &source, capacity, config.block_timeout, &stop).await
            else {
                return;
            };
            fetched = blocked;
        }
        let deliveries = match fetched {
            Ok(deliveries) => {
                failures = 0;
                deliveries
            }
            Err(e) => {
                shared.fetched.add_permits(capacity);
                shared.orphan_checks.store(ORPHAN_CHECKS, Ordering::Relaxed);
                failures += 1;
                warn!(queue = %queue, error = %e, "fetching jobs failed; retrying");
                if !sleep_or_cancel(backoff(failures), &stop).await {
                    return;
                }
                continue;
            }
        };
        shared
            .fetched
            .add_permits(capacity.saturating_sub(deliveries.len()));
        let dispatched = !deliveries.is_empty();
        dispatch(&shared, queue, deliveries);
        if dispatched {
            // Let the jobs just spawned run (and queue their acks) before the next fetch
            // goes out on the shared connection: a lone job's ack then reaches Redis first,
            // which is what its waiting client's latency depends on.
            tokio::task::yield_now().await;
        }
    }
}

/// How long a fetch under way when the worker stops may take beyond its own blocking wait
/// before it is abandoned.
const FETCH_SETTLE: Duration = Duration::from_secs(1);

/// Fetches up to `capacity` jobs (holding that many slots), or returns the slots and
/// `None` when the worker stopped fetching before it began.
///
/// A fetch under way when the worker stops is not dropped: Redis would still carry out a
/// blocking wait whose caller has gone, moving the next job that arrives into this
/// worker's in-flight list where nothing runs it (until unregistering, at the end of the
/// shutdown; never, when the job arrives after that). It is given its wait plus
/// [`FETCH_SETTLE`] to end; the caller gives back what it brought.
async fn fetch_or_stop(
    shared: &Shared,
    source: &Source,
    capacity: usize,
    block: Duration,
    stop: &CancellationToken,
) -> Option<Result<Vec<Delivery>, Error>> {
    if stop.is_cancelled() {
        shared.fetched.add_permits(capacity);
        return None;
    }
    let fetch = shared
        .broker
        .backend()
        .fetch(&shared.worker_id, source, capacity, block);
    tokio::pin!(fetch);
    tokio::select! {
        fetched = &mut fetch => return Some(fetched),
        _ = stop.cancelled() => {}
    }
    match tokio::time::timeout(block + FETCH_SETTLE, fetch).await {
        Ok(fetched) => Some(fetched),
        Err(_) => {
            // Anything the abandoned fetch moved stays in this worker's in-flight list,
            // which unregistering puts back on the queue.
            warn!(queue = %source.name(), "a fetch did not end at shutdown; abandoning it");
            shared.fetched.add_permits(capacity);
            None
        }
    }
}

/// A fetched job (waiting for a handler slot, or running).
struct Fetched {
    /// Its key in [`Outstanding`].
    key: u64,
    queue: String,
    delivery: Delivery,
    /// When it was fetched (ms since the Unix epoch).
    received_at_ms: u64,
}

/// Starts fetched jobs in fetch order (the order of the queue, and of Celery's priority
/// buckets): a job takes a free handler slot at once only when no earlier one waits for
/// one; otherwise it queues behind them for [`start_in_fetch_order`]. Spawned tasks start
/// in any order, so slots are never left for the tasks to take themselves. Once shutdown
/// has begun, fetched jobs are given back instead.
fn dispatch(shared: &Arc<Shared>, queue: &str, deliveries: Vec<Delivery>) {
    let received_at_ms = now_ms();
    let draining = shared.draining.is_cancelled();
    let mut unstarted = Vec::new();
    for delivery in deliveries {
        let key = shared.outstanding.next.fetch_add(1, Ordering::Relaxed);
        shared.outstanding.lock().insert(
            key,
            Held {
                tag: delivery.tag.clone(),
                queue: queue.to_owned(),
                started_at_ms: None,
            },
        );
        let fetched = Fetched {
            key,
            queue: queue.to_owned(),
            delivery,
            received_at_ms,
        };
        if draining {
            unstarted.push(fetched);
            continue;
        }
        let slot = if shared.waiting_count.load(Ordering::Acquire) == 0 {
            Arc::clone(&shared.running).try_acquire_owned().ok()
        } else {
            None
        };
        if let Some(slot) = slot {
            tokio::spawn(run_job(Arc::clone(shared), fetched, slot));
            continue;
        }
        shared.waiting_count.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::error::SendError(fetched)) = shared.waiting.send(fetched) {
            // The launcher has stopped taking jobs (shutting down).
            shared.waiting_count.fetch_sub(1, Ordering::AcqRel);
            unstarted.push(fetched);
        }
    }
    give_back(shared, unstarted);
}

/// Gives fetched jobs that never started back to the head of their queues at once, so
/// other workers run them while this one finishes its running jobs; `unstarted` is in
/// fetch order, and the first fetched ends up first in line again. Each job's slot in
/// `fetched` is released when the acknowledger has put it back.
fn give_back(shared: &Shared, unstarted: Vec<Fetched>) {
    if unstarted.is_empty() {
        return;
    }
    let mut returned = 0usize;
    {
        // Under the lock, like a finished job's ack: the final flush sees each job either
        // here or in `outstanding`, never in both.
        let mut outstanding = shared.outstanding.lock();
        // The acknowledger pushes each one to the head of its queue: the last fetched goes
        // first, so the first fetched is at the head at the end.
        for fetched in unstarted.into_iter().rev() {
            if outstanding.remove(&fetched.key).is_some() {
                let ack = Ack::new(
                    fetched.delivery.tag,
                    Outcome::Requeue {
                        queue: fetched.queue,
                    },
                );
                if shared.acks.send(AckMessage::GiveBack(ack)).is_ok() {
                    returned += 1;
                    continue;
                }
            }
            // Not sent: it stays in the in-flight list, which unregistering puts back.
            shared.fetched.add_permits(1);
        }
    }
    if returned > 0 {
        info!(
            count = returned,
            "giving jobs that did not start back to their queues"
        );
    }
}

/// Gives waiting jobs handler slots one after the other, in the order they were fetched,
/// until shutdown begins; jobs still waiting then were never started and are given back
/// to their queues at once, without waiting for the running ones.
async fn start_in_fetch_order(shared: Arc<Shared>, mut waiting: mpsc::UnboundedReceiver<Fetched>) {
    let mut unstarted = Vec::new();
    loop {
        let next = tokio::select! {
            biased;
            _ = shared.draining.cancelled() => None,
            next = waiting.recv() => next,
        };
        let Some(fetched) = next else {
            break;
        };
        let slot = tokio::select! {
            biased;
            _ = shared.draining.cancelled() => None,
            slot = Arc::clone(&shared.running).acquire_owned() => slot.ok(),
        };
        // Only now, with the slot taken, may newly fetched jobs take free slots directly.
        shared.waiting_count.fetch_sub(1, Ordering::AcqRel);
        let Some(slot) = slot else {
            unstarted.push(fetched);
            break;
        };
        tokio::spawn(run_job(Arc::clone(&shared), fetched, slot));
    }
    waiting.close();
    while let Ok(fetched) = waiting.try_recv() {
        shared.waiting_count.fetch_sub(1, Ordering::AcqRel);
        unstarted.push(fetched);
    }
    give_back(&shared, unstarted);
}

/// Runs `job`, recording it as STARTED only once it has run for [`STARTED_AFTER`]: for a
/// job that finishes sooner the state would be gone before anyone could read it, and
/// writing and clearing it would cost Redis two extra key writes per job, a large share of
/// a short job's cost.
async fn run_recording_start(
    shared: &Shared,
    job: JobMessage,
    tag: DeliveryTag,
    slot: OwnedSemaphorePermit,
) -> Finished {
    if tag.celery().is_some() {
        // Celery's STARTED lives in its own record, written only on request.
        return execute::run(&shared.app, job, tag, &shared.settings, slot).await;
    }
    let job_id = job.id.clone();
    let run = execute::run(&shared.app, job, tag, &shared.settings, slot);
    tokio::pin!(run);
    match tokio::time::timeout(STARTED_AFTER, &mut run).await {
        Ok(finished) => finished,
        Err(_) => {
            // Not awaited: the STARTED state is informational and must not delay the job.
            // It may reach Redis after the ack; the script then sees the result and skips it.
            let broker = shared.broker.clone();
            let ttl = shared.settings.result_ttl;
            tokio::spawn(async move {
                if let Err(e) = broker.backend().mark_started(vec![job_id], ttl).await {
                    debug!(error = %e, "could not record a started job");
                }
            });
            let mut finished = run.await;
            finished.ack.set_clears_state();
            finished
        }
    }
}

async fn run_job(shared: Arc<Shared>, fetched: Fetched, slot: OwnedSemaphorePermit) {
    let Fetched {
        key,
        queue,
        delivery: Delivery { tag, job },
        received_at_ms,
    } = fetched;
    let celery = shared.celery.as_ref().filter(|_| tag.celery().is_some());
    let mut retries = 0;
    let mut time_limit = None;
    let mut task = None;
    let mut timing = None;
    let finished = match job {
        Err(malformed) => {
            drop(slot);
            execute::malformed(tag, malformed, &shared.settings)
        }
        Ok(job) => 'run: {
            retries = job.attempt;
            if celery.is_some() {
                // The name as sent, for the report of a job the Celery layer refuses.
                task = Some(job.task.clone());
            }
            let (job, tag) = match celery {
                Some(layer) => match celery_prelude(&shared, layer, job, tag) {
                    Ok(runnable) => runnable,
                    Err(finished) => {
                        drop(slot);
                        break 'run *finished;
                    }
                },
                None => (job, tag),
            };
            if celery.is_some() {
                // Only a Celery reply names the limit; native jobs skip the lookup.
                time_limit = job
                    .time_limit_ms
                    .map(Duration::from_millis)
                    .or_else(|| shared.app.get(&job.task).and_then(|entry| entry.time_limit));
            }
            task = Some(job.task.clone());
            let started_at_ms = now_ms();
            shared.outstanding.started(key, started_at_ms);
            let clock = Instant::now();
            let finished = run_recording_start(&shared, *job, tag, slot).await;
            timing = Some((started_at_ms, clock.elapsed().as_micros() as u64));
            finished
        }
    };
    let run = JobRun {
        attempt: retries,
        received_at_ms,
        started_at_ms: timing.map(|(started, _)| started),
        duration_us: timing.map(|(_, us)| us),
        keys: &finished.writes,
        celery: celery.is_some(),
    };
    let report = monitor::report(&run, &finished.ack, now_ms());
    let mut finished = match celery {
        Some(layer) => Finished {
            ack: layer.reply(
                finished.ack,
                &RunFacts {
                    queue: &queue,
                    retries,
                    time_limit,
                },
            ),
            writes: finished.writes,
        },
        None => finished,
    };
    if let Some(report) = report {
        match report.kind {
            EventKind::Succeeded => {
                shared.counters.processed.fetch_add(1, Ordering::Relaxed);
            }
            EventKind::Failed | EventKind::Dead => {
                shared.counters.processed.fetch_add(1, Ordering::Relaxed);
                shared.counters.failed.fetch_add(1, Ordering::Relaxed);
            }
            EventKind::Retried => {}
        }
        finished.ack.report = Some(Box::new(report.finish(task, queue)));
    }
    if !finished.writes.is_empty() && !apply_writes(&shared, finished.writes).await {
        return;
    }
    // The ack is queued under the lock so a shutdown either sees this job as finished
    // (ack queued before its flush) or takes it back (and this ack is dropped).
    let mut outstanding = shared.outstanding.lock();
    if outstanding.remove(&key).is_some() {
        let _ = shared.acks.send(AckMessage::Ack(finished.ack));
    }
}

/// The Celery layer's checks before a Celery job runs: the job and its tag when it is to
/// run (its name resolved, its arguments bound), or how it ends without running.
fn celery_prelude(
    shared: &Shared,
    layer: &CeleryLayer,
    mut job: Box<JobMessage>,
    tag: DeliveryTag,
) -> Result<(Box<JobMessage>, DeliveryTag), Box<Finished>> {
    match layer.prepare(&shared.app, &mut job, tag.as_stored().len()) {
        Prepared::Run => {
            if layer.config().track_started {
                // Not awaited, like native STARTED states: the script never overwrites a
                // final record that overtook it.
                let (key, record) = layer.started_record(&job);
                let broker = shared.broker.clone();
                let ttl = layer.config().result_expires;
                tokio::spawn(async move {
                    if let Err(e) = broker.backend().celery_started(&key, &record, ttl).await {
                        debug!(error = %e, "could not record a started Celery task");
                    }
                });
            }
            Ok((job, tag))
        }
        Prepared::Defer => Err(Box::new(Finished {
            ack: Ack::new(tag, Outcome::Defer { next: job }),
            writes: Vec::new(),
        })),
        Prepared::Fail(error) => {
            let dead = execute::unfixable(error.kind());
            let ttl = layer.config().result_expires;
            Err(Box::new(execute::fail_for_good(
                *job, tag, error, ttl, dead,
            )))
        }
    }
}

/// Applies explicit-key writes before the ack, retrying through broker outages; gives up
/// (leaving the job unacknowledged, so it runs again) only when the worker abandons it.
async fn apply_writes(shared: &Shared, writes: Vec<crate::task::KeyWrite>) -> bool {
    let mut failures = 0;
    loop {
        match shared.broker.backend().write_keys(&writes).await {
            Ok(()) => return true,
            Err(e) => {
                failures += 1;
                warn!(error = %e, "writing explicit keys failed; retrying");
                if !sleep_or_cancel(backoff(failures), &shared.abandoned).await {
                    return false;
                }
            }
        }
    }
}
