//! Job events: what the worker reports about each job it acknowledges ([`JobReport`],
//! crate-private), and the [`JobEvent`] records the `{ns}:events` stream holds.

use serde::{Deserialize, Serialize};

use crate::broker::{Ack, Outcome};
use crate::error::TaskFailure;
use crate::message::{JobId, ResultRecord};

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The run succeeded and its result is stored.
    Succeeded,
    /// The run failed for good and its failure is stored.
    Failed,
    /// The run failed and the job waits in the delayed set for its next attempt.
    Retried,
    /// The job failed for good and was also set aside as a dead letter.
    Dead,
}

impl EventKind {
    /// Every kind, in display order.
    pub const ALL: [EventKind; 4] = [
        EventKind::Succeeded,
        EventKind::Failed,
        EventKind::Retried,
        EventKind::Dead,
    ];

    /// The name used in the stream, in URLs and as the `status` label of metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Succeeded => "succeeded",
            EventKind::Failed => "failed",
            EventKind::Retried => "retried",
            EventKind::Dead => "dead",
        }
    }

    /// The kind called `name` (see [`as_str`](Self::as_str)).
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One entry of the `{ns}:events` stream: a job's run as the worker acknowledged it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobEvent {
    /// The stream entry id (`<ms>-<seq>`), filled in when read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stream_id: String,
    /// What happened.
    pub kind: EventKind,
    /// The job id (`None` for a message whose id could not be read).
    pub job_id: Option<JobId>,
    /// The task name, when the message could be read.
    pub task: Option<String>,
    /// The queue the job was fetched from.
    pub queue: String,
    /// The worker that ran it.
    pub worker: String,
    /// The attempt (0 for the first run).
    pub attempt: u32,
    /// When the worker fetched it (ms since the Unix epoch).
    pub received_at_ms: u64,
    /// When its handler started, if it ran.
    pub started_at_ms: Option<u64>,
    /// When it was acknowledged.
    pub finished_at_ms: u64,
    /// How long the handler ran, if it ran (µs).
    pub duration_us: Option<u64>,
    /// The arguments as JSON text; cut at [`ARGS_LIMIT`] bytes (then `args_truncated`).
    pub args: Option<String>,
    /// Whether `args` was cut.
    #[serde(default)]
    pub args_truncated: bool,
    /// The failure, for `failed`, `retried` and `dead`.
    pub error: Option<TaskFailure>,
    /// When the next attempt is due, for `retried` (ms since the Unix epoch).
    pub retry_at_ms: Option<u64>,
    /// The explicit keys the run wrote ([`TaskContext::set_key`](crate::TaskContext::set_key)).
    #[serde(default)]
    pub keys: Vec<String>,
    /// Whether the job came as a Celery message.
    #[serde(default)]
    pub celery: bool,
}

/// The longest arguments text an event keeps (bytes).
pub const ARGS_LIMIT: usize = 16 * 1024;

/// What the worker knows about one run besides its acknowledgement.
#[derive(Debug, Clone)]
pub(crate) struct JobRun<'a> {
    pub(crate) worker: &'a str,
    pub(crate) task: Option<&'a str>,
    pub(crate) queue: &'a str,
    pub(crate) attempt: u32,
    pub(crate) received_at_ms: u64,
    pub(crate) started_at_ms: Option<u64>,
    pub(crate) duration_us: Option<u64>,
    /// The arguments as JSON (only needed when events are written).
    pub(crate) args: Option<String>,
    pub(crate) keys: Vec<String>,
    pub(crate) celery: bool,
}

/// A run as the acknowledgement script counts it (`{ns}:metrics:*`) and, when events are
/// on, records it (`{ns}:events`); attached to its [`Ack`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JobReport {
    pub(crate) task: String,
    pub(crate) queue: String,
    pub(crate) kind: EventKind,
    pub(crate) duration_us: Option<u64>,
    pub(crate) finished_at_ms: u64,
    /// The job id and the explicit keys its run wrote, when it wrote any.
    pub(crate) written: Option<(JobId, Vec<String>)>,
    /// The [`JobEvent`] as JSON; `None` when events are off.
    pub(crate) event: Option<String>,
}

/// The task label of a message whose task could not be read.
pub const UNKNOWN_TASK_LABEL: &str = "<unreadable>";

/// The report of the native acknowledgement `ack` of `run` (before a Celery layer turns
/// it into a Celery reply); `None` for acks that end nothing (requeued at shutdown,
/// deferred until an ETA).
pub(crate) fn report(
    run: JobRun<'_>,
    ack: &Ack,
    now_ms: u64,
    with_event: bool,
) -> Option<JobReport> {
    let (kind, job_id, error, retry_at_ms) = match &ack.outcome {
        Outcome::Finished {
            record,
            dead_letter,
            ..
        } => match record {
            ResultRecord::Success { job_id, .. } => {
                (EventKind::Succeeded, Some(job_id), None, None)
            }
            ResultRecord::Failure { job_id, error, .. } => {
                let kind = if dead_letter.is_some() {
                    EventKind::Dead
                } else {
                    EventKind::Failed
                };
                (kind, Some(job_id), Some(error), None)
            }
        },
        Outcome::Unreadable { dead_letter } => {
            (EventKind::Dead, None, Some(&dead_letter.reason), None)
        }
        Outcome::Retry { next, reason, .. } => (
            EventKind::Retried,
            Some(&next.id),
            Some(reason),
            next.eta_ms,
        ),
        Outcome::Requeue { .. } | Outcome::Defer { .. } | Outcome::Celery(_) => return None,
    };
    let written = match job_id {
        Some(id) if !run.keys.is_empty() => Some((id.clone(), run.keys.clone())),
        _ => None,
    };
    let event = with_event.then(|| {
        let (args, args_truncated) = match run.args {
            Some(args) if args.len() > ARGS_LIMIT => {
                (Some(cut(&args, ARGS_LIMIT).to_owned()), true)
            }
            other => (other, false),
        };
        let event = JobEvent {
            stream_id: String::new(),
            kind,
            job_id: job_id.cloned(),
            task: run.task.map(str::to_owned),
            queue: run.queue.to_owned(),
            worker: run.worker.to_owned(),
            attempt: run.attempt,
            received_at_ms: run.received_at_ms,
            started_at_ms: run.started_at_ms,
            finished_at_ms: now_ms,
            duration_us: run.duration_us,
            args,
            args_truncated,
            error: error.cloned(),
            retry_at_ms,
            keys: run.keys,
            celery: run.celery,
        };
        serde_json::to_string(&event).unwrap_or_default()
    });
    Some(JobReport {
        task: run.task.unwrap_or(UNKNOWN_TASK_LABEL).to_owned(),
        queue: run.queue.to_owned(),
        kind,
        duration_us: run.duration_us,
        finished_at_ms: now_ms,
        written,
        event,
    })
}

/// The longest prefix of `text` of at most `limit` bytes that ends on a character boundary.
pub(crate) fn cut(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
