//! Operational views of a namespace: [`Stats`] and [`DeadLetter`] records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::TaskFailure;
use crate::message::JobId;

/// A snapshot of a namespace (see [`Client::stats`](crate::Client::stats)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// Waiting jobs per queue, for every queue that was ever sent to.
    pub queues: BTreeMap<String, u64>,
    /// Jobs fetched by workers and not yet acknowledged.
    pub in_flight: u64,
    /// Jobs waiting for their ETA or retry delay.
    pub delayed: u64,
    /// Dead letters.
    pub dead: u64,
    /// Workers whose heartbeat is current.
    pub workers: u64,
    /// Jobs finished for good (succeeded or failed).
    pub processed: u64,
    /// Jobs that failed for good.
    pub failed: u64,
    /// Runs that failed and were scheduled for a retry.
    pub retried: u64,
    /// Schedules stored by the scheduler (the `{ns}:schedules` hash).
    pub schedules: u64,
}

/// A job that could not be completed and was set aside with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The job id, when it could be read from the message.
    pub job_id: Option<JobId>,
    /// The task name, when it could be read.
    pub task: Option<String>,
    /// The queue the job came from, when known.
    pub queue: Option<String>,
    /// Why the job was set aside.
    pub reason: TaskFailure,
    /// When it was set aside (milliseconds since the Unix epoch).
    pub failed_at_ms: u64,
    /// The original message, byte for byte as it was on the queue.
    pub payload: String,
}

impl DeadLetter {
    /// `payload` set aside now for `reason`.
    pub(crate) fn new(
        payload: &str,
        job_id: Option<JobId>,
        task: Option<String>,
        queue: Option<String>,
        reason: TaskFailure,
    ) -> Self {
        DeadLetter {
            job_id,
            task,
            queue,
            reason,
            failed_at_ms: crate::message::now_ms(),
            payload: payload.to_owned(),
        }
    }
}
