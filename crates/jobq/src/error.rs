//! Errors of the client and broker side, and the typed failure a task run ends with.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a task run failed, as stored in its result and handed back to waiting clients.
///
/// `kind` is a short machine-readable name (`InvalidArguments`, `UnknownTask`,
/// `TimeLimitExceeded`, `ResultTooLarge`, or any kind a handler chose); `message` says what
/// went wrong for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFailure {
    /// Machine-readable failure kind.
    pub kind: String,
    /// Human-readable explanation.
    pub message: String,
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for TaskFailure {}

/// Errors returned by [`Client`](crate::Client), [`AsyncResult`](crate::AsyncResult),
/// [`Worker`](crate::Worker) and the brokers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No result arrived within the time the caller was willing to wait.
    #[error("timed out waiting for the task result")]
    Timeout,
    /// The task ran and failed (or could not run); the failure says why.
    #[error("task failed: {0}")]
    Failed(TaskFailure),
    /// Redis answered with an error or the connection failed.
    #[error("redis error while {context}: {source}")]
    Redis {
        /// What jobq was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: redis::RedisError,
    },
    /// No connection could be taken from the pool (Redis unreachable, pool exhausted).
    #[error("redis connection pool error while {context}: {message}")]
    Pool {
        /// What jobq was doing.
        context: &'static str,
        /// The pool's explanation.
        message: String,
    },
    /// A Redis command did not answer in time (e.g. a dead connection).
    #[error("redis did not answer within {waited:?} while {context}")]
    RedisTimeout {
        /// What jobq was doing.
        context: &'static str,
        /// How long jobq waited.
        waited: Duration,
    },
    /// On a Cluster or Sentinel deployment, no replica confirmed a write in time (see
    /// [`RedisBroker::wait_for_replica`](crate::RedisBroker::wait_for_replica)). The write
    /// is on the master, but a failover before it reaches a replica would lose it.
    #[error(
        "no replica confirmed the write within {waited:?} while {context}; it is on the master \
         only, so a failover now could lose it (is a replica attached and in sync?)"
    )]
    NotReplicated {
        /// What jobq was doing.
        context: &'static str,
        /// How long jobq waited.
        waited: Duration,
    },
    /// No Sentinel of a `redis+sentinel://` URL knows the master it names.
    #[error("{0}")]
    UnknownSentinelMaster(String),
    /// The Redis URL could not be used.
    #[error("invalid redis url: {0}")]
    InvalidUrl(String),
    /// The namespace is empty or contains characters that would break the key layout.
    #[error("invalid namespace {namespace:?}: {reason}")]
    InvalidNamespace {
        /// The rejected namespace.
        namespace: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Arguments passed to `delay`/`apply_async` cannot be sent.
    #[error("invalid arguments for task {task:?}: {reason}")]
    InvalidArguments {
        /// The task the arguments were meant for.
        task: String,
        /// What is wrong with them.
        reason: String,
    },
    /// The arguments' JSON is larger than the client's limit
    /// ([`DEFAULT_ARGUMENT_LIMIT`](crate::DEFAULT_ARGUMENT_LIMIT) unless configured with
    /// [`Client::with_argument_limit`](crate::Client::with_argument_limit)).
    #[error(
        "the arguments for task {task:?} are {size} bytes of JSON, over the limit of {limit} \
         bytes; pass a reference (a database id, an explicit key) instead of the data"
    )]
    ArgumentsTooLarge {
        /// The task the arguments were meant for.
        task: String,
        /// Their serialized size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A send option is out of range.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored result or record could not be decoded.
    #[error("could not decode {what}: {source}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored record has an unexpected shape.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// A worker's configuration cannot work.
    #[error("invalid worker configuration: {0}")]
    Config(String),
}

impl Error {
    pub(crate) fn redis(context: &'static str) -> impl FnOnce(redis::RedisError) -> Error {
        move |source| {
            if source.kind() == redis::ErrorKind::MasterNameNotFoundBySentinel {
                Error::UnknownSentinelMaster(source.detail().unwrap_or_default().to_owned())
            } else {
                Error::Redis { context, source }
            }
        }
    }

    pub(crate) fn decode(what: &'static str) -> impl FnOnce(serde_json::Error) -> Error {
        move |source| Error::Decode { what, source }
    }
}
