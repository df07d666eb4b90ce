//! jobq: a reliable job queue on plain Redis lists, with results, retries, delays, dead
//! letters, a scheduler and an in-memory broker for tests and embedding.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> Result<(), jobq::Error> {
//! use std::time::Duration;
//! use jobq::{App, Client, RedisBroker, TaskContext, TaskError, Worker, WorkerConfig};
//!
//! let mut app = App::new();
//! app.task("add")
//!     .args(["a", "b"])
//!     .handler(|_ctx: TaskContext, (a, b): (i64, i64)| async move { Ok::<_, TaskError>(a + b) });
//!
//! let broker = RedisBroker::builder("redis://127.0.0.1:6379/0")
//!     .namespace("posts")
//!     .connect()
//!     .await?;
//! let worker = Worker::new(app, broker.clone(), WorkerConfig::default());
//! tokio::spawn(worker.run_until(jobq::shutdown_signal()));
//!
//! let client = Client::new(broker);
//! let sum: i64 = client.delay("add", (2, 3)).await?.get(Duration::from_secs(5)).await?;
//! assert_eq!(sum, 5);
//! # Ok(()) }
//! ```
//!
//! A [`Broker`] is the one handle every part takes: cheap to clone, made once by
//! [`RedisBroker::builder`] (pool size and timeouts are options there) or
//! [`Broker::memory`], and passed by value to [`Client::new`], [`Worker::new`] and
//! [`Scheduler::new`](scheduler::Scheduler::new).
//!
//! Embedding in another service needs nothing else: build an [`App`] with the service's
//! handlers, run a [`Worker`] on a task of the service's runtime with the service's own
//! shutdown future, and send jobs from anywhere through a [`Client`].
//! [`Broker::memory`] gives the same semantics without Redis (single process, nothing
//! persisted); a [`Scheduler`](scheduler::Scheduler) on any broker keeps its schedules in
//! that broker. jobq never ends the process: [`shutdown_signal`] only resolves, and what a
//! second signal does is the binary's decision.
//!
//! Replies from Redis arrive on the runtime's worker threads, so a client called from a
//! task on the runtime gets them without a thread hand-off; `block_on` from a thread
//! outside the runtime adds one per reply (0.05 to 0.1 ms per `delay` + `get` on a 2-core
//! machine).
//!
//! # Delivery guarantee
//!
//! Delivery is **at least once**. Fetching moves a job atomically from its queue into the
//! fetching worker's in-flight list; the job leaves that list only in the same Lua script
//! that stores its result (or schedules its retry, or dead-letters it), so no job is
//! acknowledged without its result stored. Each worker heartbeats; every worker runs a
//! reaper that returns the in-flight jobs of a worker whose heartbeat expired (and that was
//! last seen more than the visibility timeout ago, 10 s by default) to the head of their
//! queues. A job whose worker died mid-run (SIGKILL, crash, lost network) therefore runs
//! again, and so can a job whose acknowledgement was interrupted: handlers should be
//! idempotent. Result writes are: the result key and explicit-key outputs are plain `SET`s,
//! so a re-execution overwrites them with an equivalent value.
//!
//! # Key layout
//!
//! Every key of a namespace `ns` carries the hash tag `{ns}`, so a namespace lives in one
//! Redis Cluster slot and the Lua scripts may touch all of its keys. The same layout serves
//! one server (`redis://`), a Cluster (`redis+cluster://host:port,...`) and a
//! Sentinel-watched master (`redis+sentinel://host:port,.../<master>/<db>`); see
//! [`RedisBroker`] for the URLs and for the replica wait that keeps a failover from losing
//! accepted jobs.
//!
//! | key | type | contents |
//! |---|---|---|
//! | `{ns}:queue:<queue>` | list | waiting job messages (pushed left, fetched right) |
//! | `{ns}:queues` | set | names of the queues ever sent to (for stats) |
//! | `{ns}:processing:<worker>` | list | jobs fetched by a worker and not yet acknowledged |
//! | `{ns}:workers` | sorted set | worker ids scored by their last heartbeat (ms) |
//! | `{ns}:worker:<worker>:hb` | string, TTL | present while the worker is alive: its [`WorkerInfo`](monitor::WorkerInfo) as JSON |
//! | `{ns}:delayed` | sorted set | ETA/countdown jobs and retries scored by due time (ms) |
//! | `{ns}:dead` | list | dead letters (JSON [`DeadLetter`]), newest first |
//! | `{ns}:result:<job id>` | string, TTL | the result record (`SUCCESS`/`FAILURE`) |
//! | `{ns}:state:<job id>` | string, TTL | transient [`JobState`]: `STARTED` (recorded once a job has run for 10 ms) or `RETRY` |
//! | `{ns}:notify:<job id>` | list, TTL | pushed once the result is stored: the record itself (or `1` when larger than 4 KiB), so a waiter blocked on it needs no second read |
//! | `{ns}:unique:<key>` | string, TTL | unique-send claims ([`SendOptions::unique`]) |
//! | `{ns}:stats:processed`, `:failed`, `:retried` | string | counters |
//! | `{ns}:events` | list | the newest 10,000 [`JobEvent`](monitor::JobEvent)s, newest first (see [`monitor`]) |
//! | `{ns}:metrics:jobs`, `:durations`, `:minute:<m>` | hash | per-task counters and duration histograms, per-minute throughput (see [`monitor`]) |
//! | `{ns}:written:<job id>` | string, TTL | the explicit keys a job wrote (see [`monitor`]) |
//! | `{ns}:dashboards` | sorted set | URLs of dashboards serving the namespace, scored by expiry (ms) |
//! | `{ns}:schedules` | hash | the scheduler's schedules (see [`scheduler`]) |
//! | `{ns}:schedules:last_run` | hash | the last tick sent per schedule |
//! | `{ns}:schedules:last_job` | hash | the id of the job the last tick sent, per schedule |
//!
//! Explicit-key outputs ([`TaskContext::set_key`]) go to whatever key the handler names,
//! outside the namespace.
//!
//! A worker with a [`celery::CeleryConfig`] also uses Celery's own keys, outside the
//! namespace as Python clients expect them: the queue lists (`celery`, `celery\x06\x163`,
//! ...), `celery-task-meta-<id>` results, `_kombu.binding.<queue>` sets and the
//! `/<db>.celery.pidbox` channel (see [`celery`]). A Celery message in flight sits in the
//! worker's `{ns}:processing:<worker>` list as the envelope it was; one waiting for its
//! `eta` sits in `{ns}:delayed` and then `{ns}:queue:<celery queue>` as a job message with
//! its Celery context. These keys span slots, so the Celery listener needs a standalone
//! Redis (as kombu does).
//!
//! A job message ([`JobMessage`]) is a JSON object: `id`, `task`, `args` (array or object), `queue`,
//! `attempt`, and optionally `max_retries`, `time_limit_ms`, `result_ttl_ms`, `eta_ms`,
//! `created_at_ms`. A message that does not decode goes to the dead-letter list; if its id
//! can be read, a `MalformedMessage` failure is stored as its result too.

mod admin;
mod app;
mod broker;
pub mod celery;
mod client;
mod error;
mod message;
pub mod monitor;
mod retry;
pub mod scheduler;
mod shutdown;
mod sync;
mod task;
#[cfg(feature = "test-support")]
pub mod test_support;
mod worker;

pub use admin::{DeadLetter, Stats};
pub use app::{App, FromArgs, TaskBuilder, TaskBuilderWithArgs};
pub use broker::{Broker, Deployment, RedisBroker};
pub use client::{AsyncResult, Client, DEFAULT_ARGUMENT_LIMIT, DEFAULT_QUEUE, SendOptions};
pub use error::{Error, TaskFailure};
pub use message::{JobId, JobMessage, JobState, ResultRecord};
pub use retry::RetryPolicy;
pub use shutdown::shutdown_signal;
pub use task::{KeyWrite, TaskContext, TaskError};
pub use worker::{Worker, WorkerConfig};
