//! The wire formats: the job message on the queues and the stored result record.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::TaskFailure;

/// A job as it travels through the queues: one JSON object per list element.
///
/// Durations and instants are integers of milliseconds (instants since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    /// The job id (a UUID), also the key of its result.
    pub id: String,
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
}

/// The stored outcome of a job, kept under its result key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultRecord {
    /// The handler returned a value.
    Success {
        /// The job id.
        job_id: String,
        /// The returned value.
        result: Value,
        /// When the result was stored.
        done_at_ms: u64,
    },
    /// The job failed for good.
    Failure {
        /// The job id.
        job_id: String,
        /// Why.
        error: TaskFailure,
        /// When the failure was stored.
        done_at_ms: u64,
    },
}

/// `duration` in whole milliseconds, saturating at `u64::MAX`.
pub(crate) fn millis(duration: std::time::Duration) -> u64 {
    duration.as_millis().min(u128::from(u64::MAX)) as u64
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
