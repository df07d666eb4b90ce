//! Running one job: decoding the message, finding the handler, and the layers around it
//! (time limit, panic capture, result size limit, retry decision, dead letters). The
//! outcome is an [`Ack`] for the broker plus the explicit-key writes to apply first.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{Instrument, debug, info_span, warn};

use crate::admin::DeadLetter;
use crate::app::App;
use crate::broker::Ack;
use crate::error::TaskFailure;
use crate::message::{JobMessage, ResultRecord, now_ms};
use crate::task::{KeyWrite, TaskContext, TaskError};

/// The settings the execution layers need.
#[derive(Debug, Clone)]
pub(crate) struct ExecSettings {
    pub(crate) result_ttl: Duration,
    pub(crate) result_size_limit: usize,
}

/// What running a job produced.
pub(crate) struct Finished {
    pub(crate) ack: Ack,
    pub(crate) writes: Vec<KeyWrite>,
}

/// A fetched message: decoded, or the reason it could not be.
pub(crate) enum Incoming {
    Job(Box<JobMessage>),
    Malformed { id: Option<String>, reason: String },
}

pub(crate) fn decode(payload: &str) -> Incoming {
    match serde_json::from_str::<JobMessage>(payload) {
        Ok(job) => Incoming::Job(Box::new(job)),
        Err(e) => {
            let id = serde_json::from_str::<serde_json::Value>(payload)
                .ok()
                .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_owned))
                .filter(|id| !id.is_empty());
            Incoming::Malformed {
                id,
                reason: format!("the message is not a valid job message: {e}"),
            }
        }
    }
}

/// Dead-letters a message that could not be decoded, storing a failure under its id if
/// one could be read.
pub(crate) fn malformed(
    payload: String,
    id: Option<String>,
    reason: String,
    settings: &ExecSettings,
) -> Finished {
    warn!(job_id = id.as_deref().unwrap_or("?"), %reason, "dead-lettering a malformed message");
    let failure = TaskFailure {
        kind: TaskError::MALFORMED_MESSAGE.to_owned(),
        message: reason,
    };
    let record = id.as_ref().map(|id| failure_record(id, &failure));
    let letter = DeadLetter::record(&payload, id.clone(), None, None, failure);
    Finished {
        ack: Ack::Failure {
            payload,
            job_id: id,
            record,
            ttl: settings.result_ttl,
            dead_letter: Some(letter),
            // Rare; a message that names a job id is treated as if it could have a state.
            clears_state: true,
        },
        writes: Vec::new(),
    }
}

/// Runs `job` with its handler and turns the outcome into an acknowledgement. `slot` (the
/// worker's concurrency permit) is released when the handler is really done, which for a
/// blocking handler past its time limit is after this returns.
pub(crate) async fn run(
    app: &App,
    job: JobMessage,
    payload: String,
    settings: &ExecSettings,
    slot: OwnedSemaphorePermit,
) -> Finished {
    let span = info_span!(
        "job",
        task = %job.task,
        job_id = %job.id,
        attempt = job.attempt,
        queue = %job.queue
    );
    run_in_span(app, job, payload, settings, slot)
        .instrument(span)
        .await
}

async fn run_in_span(
    app: &App,
    mut job: JobMessage,
    payload: String,
    settings: &ExecSettings,
    slot: OwnedSemaphorePermit,
) -> Finished {
    let ttl = job
        .result_ttl_ms
        .map(Duration::from_millis)
        .unwrap_or(settings.result_ttl);
    let Some(entry) = app.get(&job.task) else {
        let error = TaskError::unknown_task(&job.task);
        warn!(%error, "dead-lettering a job for an unknown task");
        return fail_for_good(job, payload, error, ttl, true);
    };
    let ctx = TaskContext::new(&job.id, &job.task, &job.queue, job.attempt, Some(slot));
    let time_limit = job
        .time_limit_ms
        .map(Duration::from_millis)
        .or(entry.time_limit);
    // The arguments move into the handler; a retry rebuilds its message from `payload`.
    let handler = (entry.handler)(ctx.clone(), std::mem::take(&mut job.args));
    let guarded = AssertUnwindSafe(handler).catch_unwind().map(|r| match r {
        Ok(result) => result,
        Err(panic) => Err(TaskError::new(
            TaskError::PANIC,
            format!("the handler panicked: {}", panic_message(&*panic)),
        )),
    });
    let outcome = match time_limit {
        Some(limit) => match tokio::time::timeout(limit, guarded).await {
            Ok(result) => result,
            Err(_) => {
                // Late output of a blocking handler is discarded: its thread finishes on
                // its own, and nothing waits for it any more.
                ctx.cancel();
                Err(TaskError::time_limit_exceeded(limit))
            }
        },
        None => guarded.await,
    };
    match outcome {
        Ok(value) => {
            let record = ResultRecord::Success {
                job_id: job.id.clone(),
                result: value,
                done_at_ms: now_ms(),
            };
            let record = match serde_json::to_string(&record) {
                Ok(r) => r,
                Err(e) => {
                    let error = TaskError::new(
                        TaskError::SERIALIZATION,
                        format!("the result cannot be serialized: {e}"),
                    );
                    return fail_for_good(job, payload, error, ttl, false);
                }
            };
            if record.len() > settings.result_size_limit {
                let error = TaskError::result_too_large(record.len(), settings.result_size_limit);
                warn!(%error, "result too large");
                return fail_for_good(job, payload, error, ttl, false);
            }
            debug!("job succeeded");
            Finished {
                ack: Ack::Success {
                    payload,
                    job_id: job.id,
                    record,
                    ttl,
                    // A retry left a RETRY state behind.
                    clears_state: job.attempt > 0,
                },
                writes: ctx.take_writes(),
            }
        }
        Err(error) => {
            let max_retries = job.max_retries.unwrap_or(entry.retry.max_retries());
            if entry
                .retry
                .should_retry(error.kind(), job.attempt, max_retries)
            {
                let delay = entry.retry.delay(job.attempt);
                warn!(%error, retry_in = ?delay, "job failed; retrying");
                let due_ms = now_ms().saturating_add(delay.as_millis() as u64);
                match retry_message(&payload, due_ms) {
                    Ok(retry_payload) => Finished {
                        ack: Ack::Retry {
                            payload,
                            job_id: job.id,
                            retry_payload,
                            due_ms,
                            ttl,
                        },
                        writes: Vec::new(),
                    },
                    Err(e) => {
                        let error = TaskError::new(
                            TaskError::SERIALIZATION,
                            format!("the retry message cannot be serialized: {e}"),
                        );
                        fail_for_good(job, payload, error, ttl, true)
                    }
                }
            } else {
                // Exhausted retries and failures nothing can fix are set aside; a plain
                // failure of a task without retries is just its result.
                let dead = max_retries > 0
                    || matches!(
                        error.kind(),
                        TaskError::INVALID_ARGUMENTS | TaskError::UNKNOWN_TASK
                    );
                warn!(%error, dead_lettered = dead, "job failed");
                fail_for_good(job, payload, error, ttl, dead)
            }
        }
    }
}

/// The message of the next attempt of the job sent as `payload`, due at `due_ms`.
fn retry_message(payload: &str, due_ms: u64) -> Result<String, serde_json::Error> {
    let mut next: JobMessage = serde_json::from_str(payload)?;
    next.attempt += 1;
    next.eta_ms = Some(due_ms);
    serde_json::to_string(&next)
}

fn fail_for_good(
    job: JobMessage,
    payload: String,
    error: TaskError,
    ttl: Duration,
    dead: bool,
) -> Finished {
    let failure = error.into_failure();
    let record = failure_record(&job.id, &failure);
    let letter = dead.then(|| {
        DeadLetter::record(
            &payload,
            Some(job.id.clone()),
            Some(job.task.clone()),
            Some(job.queue.clone()),
            failure,
        )
    });
    Finished {
        ack: Ack::Failure {
            payload,
            job_id: Some(job.id),
            record: Some(record),
            ttl,
            dead_letter: letter,
            clears_state: job.attempt > 0,
        },
        writes: Vec::new(),
    }
}

fn failure_record(job_id: &str, failure: &TaskFailure) -> String {
    let record = ResultRecord::Failure {
        job_id: job_id.to_owned(),
        error: failure.clone(),
        done_at_ms: now_ms(),
    };
    serde_json::to_string(&record).unwrap_or_else(|_| String::from("{}"))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}
