//! What a worker's heartbeat says about it ([`WorkerInfo`]), and a worker as a reader
//! sees it ([`WorkerStatus`]).

use serde::{Deserialize, Serialize};

use crate::message::JobId;

/// A worker's description, stored as its heartbeat (`{ns}:worker:<id>:hb`) and renewed
/// with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// The worker id.
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The jobq version it runs.
    pub version: String,
    /// The native queues it consumes.
    pub queues: Vec<String>,
    /// The Celery queues it consumes.
    #[serde(default)]
    pub celery_queues: Vec<String>,
    /// Handlers it runs at once.
    pub concurrency: usize,
    /// Jobs it fetches ahead of free handler slots.
    pub prefetch: usize,
    /// Whether it writes job events.
    pub events: bool,
    /// When it started (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// When it sent this heartbeat (ms since the Unix epoch).
    pub heartbeat_at_ms: u64,
    /// Jobs it finished (succeeded or failed for good) since it started.
    pub processed: u64,
    /// Of those, the ones that failed.
    pub failed: u64,
    /// The jobs its handlers are running, oldest first (at most [`RUNNING_LISTED`]).
    pub running: Vec<RunningJob>,
    /// How many jobs its handlers are running.
    pub running_count: usize,
}

/// The most running jobs a heartbeat lists.
pub const RUNNING_LISTED: usize = 32;

/// A job a worker is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunningJob {
    /// The job id.
    pub job_id: JobId,
    /// Its task.
    pub task: String,
    /// When its handler started (ms since the Unix epoch).
    pub started_at_ms: u64,
}

/// A registered worker as read from Redis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WorkerStatus {
    /// The worker id.
    pub id: String,
    /// Whether its heartbeat is current.
    pub alive: bool,
    /// When it was last seen (ms since the Unix epoch).
    pub last_seen_ms: u64,
    /// Jobs in its in-flight list (running plus prefetched).
    pub in_flight: u64,
    /// What its heartbeat says; `None` when it expired (or came from an older version).
    pub info: Option<WorkerInfo>,
}

/// This machine's host name.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}
