//! The storage behind queues, results and bookkeeping: the [`Broker`] trait and its two
//! implementations, [`RedisBroker`] and [`MemoryBroker`].
//!
//! A broker knows nothing about tasks or handlers; it moves opaque job messages between
//! queues, the in-flight lists of workers, the delayed set and the dead-letter list, and it
//! stores results atomically with acknowledgements. [`Client`](crate::Client) and
//! [`Worker`](crate::Worker) build the job semantics on top of it.

mod lua;
mod memory_broker;
mod redis_broker;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

pub use self::memory_broker::MemoryBroker;
pub use self::redis_broker::RedisBroker;
use crate::admin::Stats;
use crate::error::Error;
use crate::task::KeyWrite;

/// The future every broker operation returns.
pub type BrokerFuture<'a, T> = BoxFuture<'a, Result<T, Error>>;

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The job id (for the unique claim's value).
    pub id: String,
    /// The queue name.
    pub queue: String,
    /// The serialized job message.
    pub payload: String,
    /// When the job becomes due (milliseconds since the Unix epoch); `None`: at once.
    pub due_ms: Option<u64>,
    /// Enqueue only if this key was not claimed before; the claim lasts this long.
    pub unique: Option<(String, Duration)>,
}

/// How a fetched job ends, applied atomically by [`Broker::ack`]: the job leaves the
/// worker's in-flight list in the same step that stores its result or moves it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// The job succeeded: store `record` as its result for `ttl` and wake waiters.
    Success {
        /// The message exactly as fetched.
        payload: String,
        /// The job id.
        job_id: String,
        /// The serialized result record.
        record: String,
        /// How long the result is kept.
        ttl: Duration,
        /// Whether a transient state (`STARTED`, `RETRY`) may be stored for the job, to be
        /// deleted with the ack. `false` for a first attempt that finished before it was
        /// marked STARTED, which saves Redis a key deletion per job.
        clears_state: bool,
    },
    /// The job failed for good.
    Failure {
        /// The message exactly as fetched.
        payload: String,
        /// The job id, when it could be read; its failure record is stored and waiters woken.
        job_id: Option<String>,
        /// The serialized failure record (stored only when `job_id` is known).
        record: Option<String>,
        /// How long the failure record is kept.
        ttl: Duration,
        /// A serialized [`DeadLetter`](crate::DeadLetter) to push onto the dead-letter list.
        dead_letter: Option<String>,
        /// As for [`Ack::Success`].
        clears_state: bool,
    },
    /// The run failed and will be retried: `retry_payload` waits in the delayed set.
    Retry {
        /// The message exactly as fetched.
        payload: String,
        /// The job id (its state becomes RETRY).
        job_id: String,
        /// The message of the next attempt.
        retry_payload: String,
        /// When the retry is due (milliseconds since the Unix epoch).
        due_ms: u64,
        /// How long the RETRY state is kept.
        ttl: Duration,
    },
    /// The job was not run (shutdown): put it back where the next fetch finds it first.
    Requeue {
        /// The message exactly as fetched.
        payload: String,
        /// Its queue.
        queue: String,
    },
}

impl Ack {
    /// Notes that a transient state may have been stored for the job since the ack was
    /// built (it was marked STARTED while running), so the ack must delete it.
    pub(crate) fn set_clears_state(&mut self) {
        if let Self::Success { clears_state, .. } | Self::Failure { clears_state, .. } = self {
            *clears_state = true;
        }
    }
}

/// What a result lookup found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultLookup {
    /// The stored result record, when the job finished.
    pub record: Option<String>,
    /// The transient state (`STARTED`, `RETRY`), when one is recorded.
    pub state: Option<String>,
}

/// Storage for queues, in-flight jobs, delayed jobs, dead letters and results.
///
/// Implemented by [`RedisBroker`] and [`MemoryBroker`], which have the same semantics; jobq's
/// behaviour test suite runs against both. All methods are object safe, so brokers can be
/// shared as `Arc<dyn Broker>`.
pub trait Broker: Send + Sync + 'static {
    /// The namespace every key of this broker lives in.
    fn namespace(&self) -> &str;

    /// Checks that the storage answers.
    fn ping(&self) -> BrokerFuture<'_, ()>;

    /// Enqueues jobs (immediately or into the delayed set); returns, per job, whether it was
    /// enqueued (`false`: its unique key was already claimed).
    fn enqueue(&self, jobs: Vec<NewJob>) -> BrokerFuture<'_, Vec<bool>>;

    /// Moves up to `max` jobs from `queue` into `worker`'s in-flight list, waiting up to
    /// `block` for the first one. Returns the messages exactly as stored.
    fn fetch<'a>(
        &'a self,
        worker: &'a str,
        queue: &'a str,
        max: usize,
        block: Duration,
    ) -> BrokerFuture<'a, Vec<String>>;

    /// Records that these jobs started (state `STARTED`, kept for `ttl`).
    fn mark_started(&self, job_ids: Vec<String>, ttl: Duration) -> BrokerFuture<'_, ()>;

    /// Applies acknowledgements of jobs held by `worker`, each one atomically. Borrowed, so
    /// a batch can be retried after a failure without copying it.
    fn ack<'a>(&'a self, worker: &'a str, acks: &'a [Ack]) -> BrokerFuture<'a, ()>;

    /// Applies explicit-key writes (plain `SET`s, so repeating them is harmless).
    fn write_keys(&self, writes: Vec<KeyWrite>) -> BrokerFuture<'_, ()>;

    /// Waits up to `timeout` for the job's result record; `None` when none arrived.
    fn wait_result<'a>(
        &'a self,
        job_id: &'a str,
        timeout: Duration,
    ) -> BrokerFuture<'a, Option<String>>;

    /// The job's result record and transient state, without waiting.
    fn lookup<'a>(&'a self, job_id: &'a str) -> BrokerFuture<'a, ResultLookup>;

    /// Deletes the job's result, state and notification.
    fn forget<'a>(&'a self, job_id: &'a str) -> BrokerFuture<'a, ()>;

    /// Reads a key outside the namespace (explicit-key outputs).
    fn get_key<'a>(&'a self, key: &'a str) -> BrokerFuture<'a, Option<String>>;

    /// Deletes a key outside the namespace; returns whether it existed.
    fn delete_key<'a>(&'a self, key: &'a str) -> BrokerFuture<'a, bool>;

    /// Registers `worker` as alive for `ttl`.
    fn heartbeat<'a>(&'a self, worker: &'a str, ttl: Duration) -> BrokerFuture<'a, ()>;

    /// Removes `worker` (clean shutdown); jobs still in its in-flight list go back to their
    /// queues.
    fn unregister<'a>(&'a self, worker: &'a str) -> BrokerFuture<'a, ()>;

    /// Returns the in-flight jobs of workers whose heartbeat expired and that were last seen
    /// more than `visibility` ago to their queues, and forgets those workers. Returns the
    /// number of jobs put back.
    fn reap(&self, visibility: Duration) -> BrokerFuture<'_, usize>;

    /// Moves up to `limit` due jobs from the delayed set to their queues; returns how many.
    fn promote(&self, limit: usize) -> BrokerFuture<'_, usize>;

    /// Counts for [`Stats`].
    fn stats(&self) -> BrokerFuture<'_, Stats>;

    /// Up to `limit` serialized dead letters, newest first.
    fn dead_letters(&self, limit: usize) -> BrokerFuture<'_, Vec<String>>;

    /// Atomically removes the dead letter `record` and enqueues `payload` on `queue`;
    /// returns `false` (and enqueues nothing) when the record was no longer there.
    fn requeue_dead_letter(
        &self,
        record: String,
        queue: String,
        payload: String,
    ) -> BrokerFuture<'_, bool>;

    /// Deletes every dead letter; returns how many there were.
    fn purge_dead(&self) -> BrokerFuture<'_, usize>;
}

impl<B: Broker + ?Sized> Broker for Arc<B> {
    fn namespace(&self) -> &str {
        (**self).namespace()
    }
    fn ping(&self) -> BrokerFuture<'_, ()> {
        (**self).ping()
    }
    fn enqueue(&self, jobs: Vec<NewJob>) -> BrokerFuture<'_, Vec<bool>> {
        (**self).enqueue(jobs)
    }
    fn fetch<'a>(
        &'a self,
        worker: &'a str,
        queue: &'a str,
        max: usize,
        block: Duration,
    ) -> BrokerFuture<'a, Vec<String>> {
        (**self).fetch(worker, queue, max, block)
    }
    fn mark_started(&self, job_ids: Vec<String>, ttl: Duration) -> BrokerFuture<'_, ()> {
        (**self).mark_started(job_ids, ttl)
    }
    fn ack<'a>(&'a self, worker: &'a str, acks: &'a [Ack]) -> BrokerFuture<'a, ()> {
        (**self).ack(worker, acks)
    }
    fn write_keys(&self, writes: Vec<KeyWrite>) -> BrokerFuture<'_, ()> {
        (**self).write_keys(writes)
    }
    fn wait_result<'a>(
        &'a self,
        job_id: &'a str,
        timeout: Duration,
    ) -> BrokerFuture<'a, Option<String>> {
        (**self).wait_result(job_id, timeout)
    }
    fn lookup<'a>(&'a self, job_id: &'a str) -> BrokerFuture<'a, ResultLookup> {
        (**self).lookup(job_id)
    }
    fn forget<'a>(&'a self, job_id: &'a str) -> BrokerFuture<'a, ()> {
        (**self).forget(job_id)
    }
    fn get_key<'a>(&'a self, key: &'a str) -> BrokerFuture<'a, Option<String>> {
        (**self).get_key(key)
    }
    fn delete_key<'a>(&'a self, key: &'a str) -> BrokerFuture<'a, bool> {
        (**self).delete_key(key)
    }
    fn heartbeat<'a>(&'a self, worker: &'a str, ttl: Duration) -> BrokerFuture<'a, ()> {
        (**self).heartbeat(worker, ttl)
    }
    fn unregister<'a>(&'a self, worker: &'a str) -> BrokerFuture<'a, ()> {
        (**self).unregister(worker)
    }
    fn reap(&self, visibility: Duration) -> BrokerFuture<'_, usize> {
        (**self).reap(visibility)
    }
    fn promote(&self, limit: usize) -> BrokerFuture<'_, usize> {
        (**self).promote(limit)
    }
    fn stats(&self) -> BrokerFuture<'_, Stats> {
        (**self).stats()
    }
    fn dead_letters(&self, limit: usize) -> BrokerFuture<'_, Vec<String>> {
        (**self).dead_letters(limit)
    }
    fn requeue_dead_letter(
        &self,
        record: String,
        queue: String,
        payload: String,
    ) -> BrokerFuture<'_, bool> {
        (**self).requeue_dead_letter(record, queue, payload)
    }
    fn purge_dead(&self) -> BrokerFuture<'_, usize> {
        (**self).purge_dead()
    }
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

/// Reads the queue of a stored message without decoding the rest (for putting jobs back).
pub(crate) fn queue_of(payload: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct QueueOnly {
        queue: String,
    }
    serde_json::from_str::<QueueOnly>(payload)
        .ok()
        .map(|q| q.queue)
}
