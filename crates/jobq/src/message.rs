//! The typed job model shared by clients, workers and brokers: [`JobId`], [`JobState`],
//! the job message on the queues and the stored result record. How these become Redis
//! values is the broker's business (see the crate-private `wire` module).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::celery::CeleryContext;
use crate::error::TaskFailure;

/// A job's id (a UUID for jobs jobq sends); its result is stored under it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A fresh random id.
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for JobId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for JobId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.0
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for JobId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for JobId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for JobId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Waiting (or unknown: results that expired or were forgotten read as pending too).
    Pending,
    /// A worker is running it.
    Started,
    /// A run failed and a retry is scheduled.
    Retry,
    /// Finished with a result.
    Success,
    /// Finished with a failure.
    Failure,
}

impl JobState {
    /// The state's stored name (`PENDING`, `STARTED`, `RETRY`, `SUCCESS`, `FAILURE`), the
    /// one spelling the brokers and their Lua scripts use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Started => "STARTED",
            Self::Retry => "RETRY",
            Self::Success => "SUCCESS",
            Self::Failure => "FAILURE",
        }
    }

    /// The state stored under `name`, if it is one.
    pub(crate) fn from_stored(name: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Started,
            Self::Retry,
            Self::Success,
            Self::Failure,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as it travels through the queues.
///
/// Durations and instants are integers of milliseconds (instants since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobMessage {
    /// The job id, also the key of its result.
    pub id: JobId,
    /// The task name.
    pub task: String,
    /// Positional (array) or named (object) arguments.
    #[serde(default)]
    pub args: Value,
    /// The queue the job is sent to.
    pub queue: String,
    /// 0 for the first run, then the number of the retry.
    #[serde(default)]
    pub attempt: u32,
    /// Overrides the task's retry budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Overrides the task's time limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_ms: Option<u64>,
    /// How long the result is kept (default: the worker's `result_ttl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_ttl_ms: Option<u64>,
    /// When the job becomes due (absent: at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_ms: Option<u64>,
    /// When the job was first sent.
    #[serde(default)]
    pub created_at_ms: u64,
    /// What a job from a Celery message needs besides (see [`crate::celery`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) celery: Option<Box<CeleryContext>>,
}

/// The stored outcome of a job, kept under its result key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ResultRecord {
    /// The handler returned a value.
    Success {
        /// The job id.
        job_id: JobId,
        /// The returned value.
        result: Value,
        /// When the result was stored.
        done_at_ms: u64,
    },
    /// The job failed for good.
    Failure {
        /// The job id.
        job_id: JobId,
        /// Why.
        error: TaskFailure,
        /// When the failure was stored.
        done_at_ms: u64,
    },
}

impl ResultRecord {
    /// The finished state this record stands for.
    pub fn state(&self) -> JobState {
        match self {
            Self::Success { .. } => JobState::Success,
            Self::Failure { .. } => JobState::Failure,
        }
    }
}

/// `duration` in whole milliseconds, saturating at `u64::MAX`.
pub(crate) fn millis(duration: std::time::Duration) -> u64 {
    duration.as_millis().min(u128::from(u64::MAX)) as u64
}

/// The length of `value` as compact JSON, counted without building the text (the size
/// limits on arguments and results).
pub(crate) fn json_size(value: &serde_json::Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a JSON value into a counter cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
