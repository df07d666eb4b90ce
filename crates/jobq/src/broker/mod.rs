//! The storage behind queues, results and bookkeeping, reached through one handle:
//! [`Broker`].
//!
//! A [`Broker`] is cheap to clone and is what [`Client`](crate::Client),
//! [`Worker`](crate::Worker) and [`Scheduler`](crate::scheduler::Scheduler) take. It is made
//! by [`RedisBroker`] (the Redis options builder) or by [`Broker::memory`]. Behind it sits a
//! crate-private backend (Redis or memory, same semantics; jobq's behaviour suite runs on
//! both) that moves typed jobs between queues, the in-flight lists of workers, the delayed
//! set and the dead-letter list, and applies typed acknowledgements atomically with the
//! results they store. How those become stored values is the `wire` module's business.

mod lua;
mod memory_broker;
mod redis_broker;
pub(crate) mod redis_connection;
mod redis_url;
pub(crate) mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use self::memory_broker::MemoryBackend;
pub use self::redis_broker::RedisBroker;
use self::redis_connection::RedisConnection;
use self::wire::{Delivery, DeliveryTag};
use crate::admin::{DeadLetter, Stats};
use crate::celery::reply::CeleryReply;
use crate::error::{Error, TaskFailure};
use crate::message::{JobId, JobMessage, JobState, ResultRecord};
use crate::monitor::JobReport;
use crate::scheduler::ScheduleStore;
use crate::task::KeyWrite;

/// The future every backend operation returns.
pub(crate) type BrokerFuture<'a, T> = BoxFuture<'a, Result<T, Error>>;

/// A handle on a broker: Redis ([`RedisBroker::builder`]) or in-process memory
/// ([`Broker::memory`]). Cheap to clone; clones share the connections or the storage.
#[derive(Clone)]
pub struct Broker {
    backend: Arc<dyn Backend>,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("deployment", &self.backend.deployment())
            .field("namespace", &self.backend.namespace())
            .finish()
    }
}

impl Broker {
    /// A broker on the Redis at `url` in `namespace`, with the default options: the same
    /// as `RedisBroker::builder(url).namespace(namespace).connect()`.
    pub async fn redis(url: &str, namespace: &str) -> Result<Broker, Error> {
        RedisBroker::builder(url)
            .namespace(namespace)
            .connect()
            .await
    }

    /// An empty broker in process memory for `namespace`: the Redis broker's semantics
    /// (queues, in-flight lists, heartbeats and the reaper, delayed jobs, dead letters,
    /// results with TTLs, unique claims, waiters woken at once, schedules), but nothing
    /// survives the process. For tests, demos and single-process embedding.
    ///
    /// Fails when `namespace` is empty or contains braces or whitespace.
    pub fn memory(namespace: &str) -> Result<Broker, Error> {
        Ok(Broker::from_backend(MemoryBackend::new(namespace)?))
    }

    pub(crate) fn from_backend(backend: impl Backend) -> Broker {
        Broker {
            backend: Arc::new(backend),
        }
    }

    /// What the broker stores its data in.
    pub fn deployment(&self) -> Deployment {
        self.backend.deployment()
    }

    /// The namespace every key of this broker lives in.
    pub fn namespace(&self) -> &str {
        self.backend.namespace()
    }

    /// Checks that the storage answers (connecting never fails because Redis is down).
    pub async fn ping(&self) -> Result<(), Error> {
        self.backend.ping().await
    }

    /// The backend, for the crate's own layers.
    pub(crate) fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The store of the schedules of this broker's namespace: the one way the scheduler
    /// reaches its storage.
    pub(crate) fn schedules(&self) -> Arc<dyn ScheduleStore> {
        self.backend.schedules()
    }

    /// Sends up to `limit` dead letters (newest first) back to their queues as fresh first
    /// attempts; letters whose message cannot be decoded stay. Returns how many moved.
    pub(crate) async fn requeue_dead(&self, limit: usize) -> Result<usize, Error> {
        self.requeue_dead_where(limit, |_| true).await
    }

    /// Sends the dead letters of `job_id` among the newest `scan` back to their queues;
    /// returns how many moved.
    pub(crate) async fn requeue_dead_job(
        &self,
        job_id: &JobId,
        scan: usize,
    ) -> Result<usize, Error> {
        self.requeue_dead_where(scan, |letter| letter.job_id.as_ref() == Some(job_id))
            .await
    }

    async fn requeue_dead_where(
        &self,
        limit: usize,
        wanted: impl Fn(&DeadLetter) -> bool,
    ) -> Result<usize, Error> {
        let mut requeued = 0;
        for (stored, letter) in self.backend.dead_letters(limit).await? {
            if !wanted(&letter) {
                continue;
            }
            let Some(mut message) = DeliveryTag::from_stored(letter.payload).job_again() else {
                continue;
            };
            message.attempt = 0;
            message.eta_ms = None;
            if self.backend.requeue_dead_letter(stored, message).await? {
                requeued += 1;
            }
        }
        Ok(requeued)
    }
}

/// What a [`Broker`] stores its data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deployment {
    /// This process's memory ([`Broker::memory`]).
    Memory,
    /// One Redis server (`redis://`, `rediss://`).
    Redis,
    /// A Redis Cluster (`redis+cluster://`): the namespace lives in one slot.
    RedisCluster,
    /// The master a set of Redis Sentinels names (`redis+sentinel://`), followed across
    /// failovers.
    RedisSentinel,
}

impl Deployment {
    /// Whether every key lives on one server, so keys outside the namespace (Celery's)
    /// are reachable together with it: all but a Cluster.
    pub fn has_single_keyspace(self) -> bool {
        self != Deployment::RedisCluster
    }
}

/// A job to enqueue: due at its message's `eta_ms` (or at once).
#[derive(Debug, Clone)]
pub(crate) struct NewJob {
    pub(crate) message: JobMessage,
    /// Enqueue only if this key was not claimed before; the claim lasts this long.
    pub(crate) unique: Option<(String, Duration)>,
}

/// How a fetched job ends, applied atomically by [`Backend::ack`]: the job leaves the
/// worker's in-flight list in the same step that stores its result or moves it on.
#[derive(Debug, Clone)]
pub(crate) struct Ack {
    /// The delivery being acknowledged.
    pub(crate) tag: DeliveryTag,
    pub(crate) outcome: Outcome,
    /// How the run is counted and recorded ([`crate::monitor`]); `None` for acks that end
    /// no run. The acknowledger takes it out and records it with a later batch.
    pub(crate) report: Option<Box<JobReport>>,
}

/// What an [`Ack`] does besides removing the delivery from the in-flight list.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The job finished for good: store `record` for `ttl`, wake waiters, and set the
    /// message aside as `dead_letter` when there is one.
    Finished {
        record: ResultRecord,
        ttl: Duration,
        /// Whether a transient state (STARTED, RETRY) may be stored for the job and must
        /// be deleted. `false` for a first attempt that finished before it was marked
        /// STARTED, which saves Redis a key deletion per job.
        clears_state: bool,
        dead_letter: Option<DeadLetter>,
    },
    /// A message without a readable id: only set aside (counted as failed).
    Unreadable { dead_letter: DeadLetter },
    /// The run failed and `next` (due at its `eta_ms`) waits in the delayed set; the job's
    /// state is RETRY for `ttl`.
    Retry {
        next: Box<JobMessage>,
        ttl: Duration,
        /// Why the run failed.
        reason: TaskFailure,
    },
    /// The job was not run (shutdown): back to the head of `queue` (a Celery message: of
    /// the Celery list it came from).
    Requeue { queue: String },
    /// A Celery message not due yet: `next` waits in the delayed set until its `eta_ms`.
    Defer { next: Box<JobMessage> },
    /// A Celery job finished: its reply (result record, follow-up messages).
    Celery(Box<CeleryReply>),
}

/// Where a fetcher takes jobs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A native queue of the namespace.
    Queue(String),
    /// A Celery queue: its four priority lists, after the namespace's own list of that name
    /// (which holds its messages that were delayed, retried or recovered).
    Celery(String),
}

impl Source {
    /// The queue name.
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Queue(name) | Self::Celery(name) => name,
        }
    }
}

impl Ack {
    /// An acknowledgement with no report.
    pub(crate) fn new(tag: DeliveryTag, outcome: Outcome) -> Self {
        Ack {
            tag,
            outcome,
            report: None,
        }
    }

    /// Notes that a transient state may have been stored for the job since the ack was
    /// built (it was marked STARTED while running), so the ack must delete it.
    pub(crate) fn set_clears_state(&mut self) {
        if let Outcome::Finished { clears_state, .. } = &mut self.outcome {
            *clears_state = true;
        }
    }
}

/// What a result lookup found.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ResultLookup {
    /// The stored result record, when the job finished.
    pub(crate) record: Option<ResultRecord>,
    /// The transient state (STARTED, RETRY), when one is recorded.
    pub(crate) state: Option<JobState>,
}

/// Storage for queues, in-flight jobs, delayed jobs, dead letters, results and schedules.
/// Crate-private: outside code holds a [`Broker`].
pub(crate) trait Backend: Send + Sync + 'static {
    fn deployment(&self) -> Deployment;

    fn namespace(&self) -> &str;

    fn ping(&self) -> BrokerFuture<'_, ()>;

    /// Enqueues jobs (immediately or into the delayed set); returns, per job, whether it was
    /// enqueued (`false`: its unique key was already claimed).
    fn enqueue(&self, jobs: Vec<NewJob>) -> BrokerFuture<'_, Vec<bool>>;

    /// Moves up to `max` jobs from `source` into `worker`'s in-flight list, waiting up to
    /// `block` for the first one.
    fn fetch<'a>(
        &'a self,
        worker: &'a str,
        source: &'a Source,
        max: usize,
        block: Duration,
    ) -> BrokerFuture<'a, Vec<Delivery>>;

    /// Declares Celery queues as a Python worker does at start (kombu's binding sets), so
    /// Celery's tooling sees them. Fails on a backend Python clients cannot reach.
    fn declare_celery_queues<'a>(&'a self, queues: &'a [String]) -> BrokerFuture<'a, ()>;

    /// Stores a Celery STARTED `record` under `key` for `ttl` unless a final record is
    /// there.
    fn celery_started<'a>(
        &'a self,
        key: &'a str,
        record: &'a str,
        ttl: Duration,
    ) -> BrokerFuture<'a, ()>;

    /// Answers Celery remote-control requests (`celery inspect ping`, `registered`) as
    /// `hostname` until the future is dropped, resubscribing after connection failures.
    fn serve_celery_control<'a>(
        &'a self,
        hostname: &'a str,
        task_names: &'a [String],
    ) -> BrokerFuture<'a, ()>;

    /// Records that these jobs started (state STARTED, kept for `ttl`) unless they already
    /// have a result.
    fn mark_started(&self, job_ids: Vec<JobId>, ttl: Duration) -> BrokerFuture<'_, ()>;

    /// Applies acknowledgements of jobs held by `worker`, each one atomically, and records
    /// `reports` (counters and histograms) and `events` (stored events, oldest first; see
    /// [`crate::monitor`]) in the same step. Borrowed, so a batch can be retried after a
    /// failure without copying it.
    fn ack<'a>(
        &'a self,
        worker: &'a str,
        acks: &'a [Ack],
        reports: &'a [JobReport],
        events: &'a [String],
    ) -> BrokerFuture<'a, ()>;

    /// Applies explicit-key writes (plain `SET`s, so repeating them is harmless).
    fn write_keys<'a>(&'a self, writes: &'a [KeyWrite]) -> BrokerFuture<'a, ()>;

    /// Waits up to `timeout` for the job's result record; `None` when none arrived.
    fn wait_result<'a>(
        &'a self,
        job_id: &'a JobId,
        timeout: Duration,
    ) -> BrokerFuture<'a, Option<ResultRecord>>;

    /// The job's result record and transient state, without waiting.
    fn lookup<'a>(&'a self, job_id: &'a JobId) -> BrokerFuture<'a, ResultLookup>;

    /// Deletes the job's result, state and notification.
    fn forget<'a>(&'a self, job_id: &'a JobId) -> BrokerFuture<'a, ()>;

    /// Reads a key outside the namespace (explicit-key outputs).
    fn get_key<'a>(&'a self, key: &'a str) -> BrokerFuture<'a, Option<String>>;

    /// Deletes a key outside the namespace; returns whether it existed.
    fn delete_key<'a>(&'a self, key: &'a str) -> BrokerFuture<'a, bool>;

    /// Registers `worker` as alive for `ttl`, described by `info` (a
    /// [`WorkerInfo`](crate::monitor::WorkerInfo) as JSON).
    fn heartbeat<'a>(
        &'a self,
        worker: &'a str,
        info: &'a str,
        ttl: Duration,
    ) -> BrokerFuture<'a, ()>;

    /// The stored form of every job in `worker`'s in-flight list.
    fn in_flight<'a>(&'a self, worker: &'a str) -> BrokerFuture<'a, Vec<String>>;

    /// Removes `worker` (clean shutdown); jobs still in its in-flight list go back to their
    /// queues.
    fn unregister<'a>(&'a self, worker: &'a str) -> BrokerFuture<'a, ()>;

    /// Returns the in-flight jobs of workers whose heartbeat expired and that were last seen
    /// more than `visibility` ago to their queues, and forgets those workers. Returns the
    /// number of jobs put back.
    fn reap(&self, visibility: Duration) -> BrokerFuture<'_, usize>;

    /// Moves up to `limit` due jobs from the delayed set to their queues; returns how many.
    fn promote(&self, limit: usize) -> BrokerFuture<'_, usize>;

    fn stats(&self) -> BrokerFuture<'_, Stats>;

    /// Up to `limit` dead letters, newest first, each with its stored form (which
    /// [`requeue_dead_letter`](Backend::requeue_dead_letter) takes to find it again).
    fn dead_letters(&self, limit: usize) -> BrokerFuture<'_, Vec<(String, DeadLetter)>>;

    /// Atomically removes the dead letter stored as `stored` and enqueues `message`;
    /// returns `false` (and enqueues nothing) when the letter was no longer there.
    fn requeue_dead_letter(&self, stored: String, message: JobMessage) -> BrokerFuture<'_, bool>;

    /// Deletes every dead letter; returns how many there were.
    fn purge_dead(&self) -> BrokerFuture<'_, usize>;

    /// The schedule store of this namespace.
    fn schedules(&self) -> Arc<dyn ScheduleStore>;

    /// The connection and key prefix a [`Monitor`](crate::monitor::Monitor) reads through; `None` for a backend that
    /// records no events or metrics.
    fn monitor_connection(&self) -> Option<(RedisConnection, String)>;

    /// Pushes a stored value onto `queue` as it is (tests of malformed messages).
    #[cfg(feature = "test-support")]
    fn push_raw<'a>(&'a self, queue: &'a str, stored: String) -> BrokerFuture<'a, ()>;
}

/// Rejects namespaces that would break the `{namespace}` hash-tag key layout.
pub(crate) fn validate_namespace(namespace: &str) -> Result<(), Error> {
    let reason = if namespace.is_empty() {
        "it must not be empty"
    } else if namespace.contains(['{', '}']) {
        "it must not contain '{' or '}' (it becomes the keys' hash tag)"
    } else if namespace.chars().any(char::is_whitespace) {
        "it must not contain whitespace"
    } else {
        return Ok(());
    };
    Err(Error::InvalidNamespace {
        namespace: namespace.to_owned(),
        reason,
    })
}
