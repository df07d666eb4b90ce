//! What a handler sees ([`TaskContext`]) and what it returns on failure ([`TaskError`]).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::error::TaskFailure;

/// A task failure: a machine-readable `kind` and a human-readable `message`.
///
/// Handlers return it; the worker stores it as the job's [`TaskFailure`] once retries (if
/// any, see [`RetryPolicy`](crate::RetryPolicy)) are exhausted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    kind: String,
    message: String,
}

impl TaskError {
    /// The job's arguments could not be decoded into the handler's parameters.
    pub const INVALID_ARGUMENTS: &'static str = "InvalidArguments";
    /// No handler is registered under the job's task name.
    pub const UNKNOWN_TASK: &'static str = "UnknownTask";
    /// The handler ran longer than its time limit.
    pub const TIME_LIMIT_EXCEEDED: &'static str = "TimeLimitExceeded";
    /// The serialized result is larger than the worker's result size limit.
    pub const RESULT_TOO_LARGE: &'static str = "ResultTooLarge";
    /// The job message could not be decoded at all.
    pub const MALFORMED_MESSAGE: &'static str = "MalformedMessage";
    /// The handler's output could not be serialized.
    pub const SERIALIZATION: &'static str = "SerializationError";
    /// The handler panicked.
    pub const PANIC: &'static str = "Panic";

    /// A failure of the given kind with a message.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// An [`INVALID_ARGUMENTS`](Self::INVALID_ARGUMENTS) failure.
    pub fn invalid_arguments(message: impl Into<String>) -> Self {
        Self::new(Self::INVALID_ARGUMENTS, message)
    }

    /// An [`UNKNOWN_TASK`](Self::UNKNOWN_TASK) failure for `task`.
    pub fn unknown_task(task: &str) -> Self {
        Self::new(
            Self::UNKNOWN_TASK,
            format!("no task named {task:?} is registered on this worker"),
        )
    }

    /// A [`TIME_LIMIT_EXCEEDED`](Self::TIME_LIMIT_EXCEEDED) failure.
    pub fn time_limit_exceeded(limit: Duration) -> Self {
        Self::new(
            Self::TIME_LIMIT_EXCEEDED,
            format!("the task ran longer than its time limit of {limit:?}"),
        )
    }

    /// A [`RESULT_TOO_LARGE`](Self::RESULT_TOO_LARGE) failure.
    pub fn result_too_large(size: usize, limit: usize) -> Self {
        Self::new(
            Self::RESULT_TOO_LARGE,
            format!(
                "the result is {size} bytes, over the limit of {limit} bytes; write large output \
                 to a key of your choosing with TaskContext::set_key (the explicit-key pattern) \
                 and return something small"
            ),
        )
    }

    /// The failure kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The failure message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The stored form of this failure.
    pub fn into_failure(self) -> TaskFailure {
        TaskFailure {
            kind: self.kind,
            message: self.message,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for TaskError {}

impl From<TaskError> for TaskFailure {
    fn from(e: TaskError) -> Self {
        e.into_failure()
    }
}

/// An explicit-key write requested by a handler, applied by the worker before the job is
/// acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyWrite {
    /// The Redis key (any key; it is not prefixed with the namespace).
    pub key: String,
    /// The JSON text to store.
    pub value: String,
    /// Expiry; `None` keeps the key until it is overwritten or deleted.
    pub ttl: Option<Duration>,
}

type CancelCallback = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Cancellation {
    fired: AtomicBool,
    callbacks: Mutex<Vec<CancelCallback>>,
}

struct ContextInner {
    job_id: String,
    task: String,
    queue: String,
    attempt: u32,
    writes: Mutex<Vec<KeyWrite>>,
    cancel: Cancellation,
    /// The worker's concurrency slot. It lives as long as any clone of the context, and a
    /// blocking handler's thread holds one: a handler that outlives its time limit keeps
    /// its slot until its thread really ends, so the worker never runs more handlers at
    /// once than its concurrency.
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The execution context of one job run, handed to every handler.
///
/// Cheap to clone; all clones refer to the same run.
#[derive(Clone)]
pub struct TaskContext {
    inner: Arc<ContextInner>,
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("job_id", &self.inner.job_id)
            .field("task", &self.inner.task)
            .field("attempt", &self.inner.attempt)
            .finish()
    }
}

impl TaskContext {
    pub(crate) fn new(
        job_id: &str,
        task: &str,
        queue: &str,
        attempt: u32,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                job_id: job_id.to_owned(),
                task: task.to_owned(),
                queue: queue.to_owned(),
                attempt,
                writes: Mutex::new(Vec::new()),
                cancel: Cancellation::default(),
                _slot: slot,
            }),
        }
    }

    /// The job's id (the id its [`AsyncResult`](crate::AsyncResult) carries).
    pub fn job_id(&self) -> &str {
        &self.inner.job_id
    }

    /// The task name the job was sent to.
    pub fn task(&self) -> &str {
        &self.inner.task
    }

    /// The queue the job came from.
    pub fn queue(&self) -> &str {
        &self.inner.queue
    }

    /// Which run this is: 0 for the first, 1 for the first retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// Writes `value` as JSON to the Redis key `key` (outside the jobq namespace) once the run
    /// succeeds, before the job is acknowledged: the explicit-key pattern for large or
    /// well-known outputs. Repeated writes to the same key keep the last one. The write is a
    /// plain `SET`, so a re-execution after recovery just writes it again.
    pub fn set_key(
        &self,
        key: impl Into<String>,
        value: &impl Serialize,
        ttl: Option<Duration>,
    ) -> Result<(), TaskError> {
        let key = key.into();
        if key.is_empty() {
            return Err(TaskError::invalid_arguments(
                "set_key: the key must not be empty",
            ));
        }
        if ttl.is_some_and(|t| t.as_millis() == 0) {
            return Err(TaskError::invalid_arguments(format!(
                "set_key({key:?}): a ttl must be at least one millisecond"
            )));
        }
        let value = serde_json::to_string(value).map_err(|e| {
            TaskError::new(
                TaskError::SERIALIZATION,
                format!("set_key({key:?}): value cannot be serialized: {e}"),
            )
        })?;
        let mut writes = crate::sync::lock(&self.inner.writes);
        writes.retain(|w| w.key != key);
        writes.push(KeyWrite { key, value, ttl });
        Ok(())
    }

    /// Whether the run was cancelled (its time limit fired). Long blocking handlers can check
    /// this between steps and give up early; their output is discarded anyway.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.fired.load(Ordering::Acquire)
    }

    /// Registers `callback` to run when the run is cancelled (e.g. to interrupt a SQLite
    /// query). Runs at once if the run is already cancelled.
    pub fn on_cancel(&self, callback: impl FnOnce() + Send + 'static) {
        let mut callbacks = crate::sync::lock(&self.inner.cancel.callbacks);
        if self.is_cancelled() {
            drop(callbacks);
            callback();
        } else {
            callbacks.push(Box::new(callback));
        }
    }

    pub(crate) fn cancel(&self) {
        let callbacks = {
            let mut callbacks = crate::sync::lock(&self.inner.cancel.callbacks);
            self.inner.cancel.fired.store(true, Ordering::Release);
            std::mem::take(&mut *callbacks)
        };
        for callback in callbacks {
            callback();
        }
    }

    pub(crate) fn take_writes(&self) -> Vec<KeyWrite> {
        std::mem::take(&mut *crate::sync::lock(&self.inner.writes))
    }
}
