//! Job events: what the worker reports about each job it acknowledges ([`JobReport`],
//! crate-private), and the [`JobEvent`] records the capped `{ns}:events` list holds.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::broker::{Ack, Outcome};
use crate::error::TaskFailure;
use crate::message::{JobId, ResultRecord};
use crate::task::KeyWrite;

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

    /// The name used in events, in URLs and as the `status` label of metrics.
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

/// One entry of the `{ns}:events` list: a job's run as the worker acknowledged it.
///
/// Stored as compact JSON with one-letter field names (see `Wire`); serialized with these
/// names, leaving out empty fields, for readers such as the dashboard's JSON API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobEvent {
    /// What happened.
    pub kind: EventKind,
    /// The job id (`None` for a message whose id could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// The task name, when the message could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    /// When it was acknowledged.
    pub finished_at_ms: u64,
    /// How long the handler ran, if it ran (µs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    /// The arguments as JSON text; cut at [`ARGS_LIMIT`] bytes (then `args_truncated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    /// Whether `args` was cut.
    #[serde(default, skip_serializing_if = "is_false")]
    pub args_truncated: bool,
    /// The failure, for `failed`, `retried` and `dead`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskFailure>,
    /// When the next attempt is due, for `retried` (ms since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<u64>,
    /// The explicit keys the run wrote ([`TaskContext::set_key`](crate::TaskContext::set_key)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Whether the job came as a Celery message.
    #[serde(default, skip_serializing_if = "is_false")]
    pub celery: bool,
}

fn is_false(flag: &bool) -> bool {
    !flag
}

/// The longest arguments text an event keeps (bytes).
pub const ARGS_LIMIT: usize = 16 * 1024;

/// What the worker knows about one run besides its acknowledgement.
#[derive(Debug, Clone)]
pub(crate) struct JobRun<'a> {
    pub(crate) received_at_ms: u64,
    pub(crate) started_at_ms: Option<u64>,
    pub(crate) duration_us: Option<u64>,
    pub(crate) attempt: u32,
    /// The explicit keys the run wrote.
    pub(crate) keys: &'a [KeyWrite],
    pub(crate) celery: bool,
}

/// A run as the acknowledgement script counts it (`{ns}:metrics:*`) and records it
/// (`{ns}:events`); attached to its [`Ack`]. Its event is only encoded, by
/// [`JobReport::event`], when it is written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JobReport {
    pub(crate) task: String,
    pub(crate) queue: String,
    pub(crate) kind: EventKind,
    pub(crate) job_id: Option<JobId>,
    pub(crate) attempt: u32,
    pub(crate) received_at_ms: u64,
    pub(crate) started_at_ms: Option<u64>,
    pub(crate) duration_us: Option<u64>,
    pub(crate) finished_at_ms: u64,
    pub(crate) error: Option<TaskFailure>,
    pub(crate) retry_at_ms: Option<u64>,
    /// The explicit keys the run wrote.
    pub(crate) keys: Vec<String>,
    pub(crate) celery: bool,
    /// The task name could not be read (`task` is then [`UNKNOWN_TASK_LABEL`]).
    pub(crate) unreadable: bool,
}

/// A [`JobReport`] still waiting for its task name and queue, which the worker hands over
/// once it no longer needs them.
#[derive(Debug)]
pub(crate) struct PendingReport {
    pub(crate) kind: EventKind,
    job_id: Option<JobId>,
    attempt: u32,
    received_at_ms: u64,
    started_at_ms: Option<u64>,
    duration_us: Option<u64>,
    finished_at_ms: u64,
    error: Option<TaskFailure>,
    retry_at_ms: Option<u64>,
    keys: Vec<String>,
    celery: bool,
}

impl PendingReport {
    /// The report, with the run's task name (`None`: unreadable) and queue.
    pub(crate) fn finish(self, task: Option<String>, queue: String) -> JobReport {
        JobReport {
            unreadable: task.is_none(),
            task: task.unwrap_or_else(|| UNKNOWN_TASK_LABEL.to_owned()),
            queue,
            kind: self.kind,
            job_id: self.job_id,
            attempt: self.attempt,
            received_at_ms: self.received_at_ms,
            started_at_ms: self.started_at_ms,
            duration_us: self.duration_us,
            finished_at_ms: self.finished_at_ms,
            error: self.error,
            retry_at_ms: self.retry_at_ms,
            keys: self.keys,
            celery: self.celery,
        }
    }
}

impl JobReport {
    /// The event as stored, by `worker`, with the job's arguments as JSON text.
    pub(crate) fn event(&self, worker: &str, args: Option<&str>) -> String {
        let (args, args_truncated) = match args {
            Some(args) if args.len() > ARGS_LIMIT => (Some(cut(args, ARGS_LIMIT)), true),
            other => (other, false),
        };
        let wire = Wire {
            kind: self.kind,
            job_id: self.job_id.as_ref().map(|id| Cow::Borrowed(id.as_str())),
            task: (!self.unreadable).then_some(Cow::Borrowed(self.task.as_str())),
            queue: Cow::Borrowed(&self.queue),
            worker: Cow::Borrowed(worker),
            attempt: self.attempt,
            received_at_ms: self.received_at_ms,
            started_at_ms: self.started_at_ms,
            finished_at_ms: self.finished_at_ms,
            duration_us: self.duration_us,
            args: args.map(Cow::Borrowed),
            args_truncated,
            error: self.error.clone(),
            retry_at_ms: self.retry_at_ms,
            keys: self.keys.clone(),
            celery: self.celery,
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

/// The task label of a message whose task could not be read.
pub const UNKNOWN_TASK_LABEL: &str = "<unreadable>";

/// The report of the native acknowledgement `ack` of `run` (before a Celery layer turns
/// it into a Celery reply); `None` for acks that end nothing (requeued at shutdown,
/// deferred until an ETA).
pub(crate) fn report(run: &JobRun<'_>, ack: &Ack, now_ms: u64) -> Option<PendingReport> {
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
    Some(PendingReport {
        kind,
        job_id: job_id.cloned(),
        attempt: run.attempt,
        received_at_ms: run.received_at_ms,
        started_at_ms: run.started_at_ms,
        duration_us: run.duration_us,
        finished_at_ms: now_ms,
        error: error.cloned(),
        retry_at_ms,
        keys: run.keys.iter().map(|w| w.key.clone()).collect(),
        celery: run.celery,
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

/// A [`JobEvent`] as stored: one- and two-letter names, borrowed text, empty fields left
/// out, so the acknowledgement script moves as few bytes per job as it can.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(rename = "k")]
    kind: EventKind,
    #[serde(rename = "i", borrow, default, skip_serializing_if = "Option::is_none")]
    job_id: Option<Cow<'a, str>>,
    #[serde(rename = "t", borrow, default, skip_serializing_if = "Option::is_none")]
    task: Option<Cow<'a, str>>,
    #[serde(rename = "q", borrow)]
    queue: Cow<'a, str>,
    #[serde(rename = "w", borrow)]
    worker: Cow<'a, str>,
    #[serde(rename = "n", default)]
    attempt: u32,
    #[serde(rename = "r")]
    received_at_ms: u64,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    started_at_ms: Option<u64>,
    #[serde(rename = "f")]
    finished_at_ms: u64,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    duration_us: Option<u64>,
    #[serde(rename = "a", borrow, default, skip_serializing_if = "Option::is_none")]
    args: Option<Cow<'a, str>>,
    #[serde(rename = "at", default, skip_serializing_if = "is_false")]
    args_truncated: bool,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    error: Option<TaskFailure>,
    #[serde(rename = "ra", default, skip_serializing_if = "Option::is_none")]
    retry_at_ms: Option<u64>,
    #[serde(rename = "ks", default, skip_serializing_if = "Vec::is_empty")]
    keys: Vec<String>,
    #[serde(rename = "c", default, skip_serializing_if = "is_false")]
    celery: bool,
}

/// The event stored as `json`; `None` when it does not decode.
pub(crate) fn decode(json: &str) -> Option<JobEvent> {
    let wire: Wire<'_> = serde_json::from_str(json).ok()?;
    Some(JobEvent {
        kind: wire.kind,
        job_id: wire.job_id.map(|id| JobId::from(id.as_ref())),
        task: wire.task.map(Cow::into_owned),
        queue: wire.queue.into_owned(),
        worker: wire.worker.into_owned(),
        attempt: wire.attempt,
        received_at_ms: wire.received_at_ms,
        started_at_ms: wire.started_at_ms,
        finished_at_ms: wire.finished_at_ms,
        duration_us: wire.duration_us,
        args: wire.args.map(Cow::into_owned),
        args_truncated: wire.args_truncated,
        error: wire.error,
        retry_at_ms: wire.retry_at_ms,
        keys: wire.keys,
        celery: wire.celery,
    })
}
