//! Running one job: finding the handler, and the layers around it (time limit, panic
//! capture, result size limit, retry decision, dead letters). The outcome is a typed
//! [`Ack`] for the broker plus the explicit-key writes to apply first.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{Instrument, debug, info_span, warn};

use crate::admin::DeadLetter;
use crate::app::App;
use crate::broker::wire::{DeliveryTag, Malformed};
use crate::broker::{Ack, Outcome};
use crate::error::TaskFailure;
use crate::message::{JobId, JobMessage, ResultRecord, json_size, now_ms};
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

/// Dead-letters a message that could not be decoded, storing a failure under its id if
/// one could be read.
pub(crate) fn malformed(
    tag: DeliveryTag,
    malformed: Malformed,
    settings: &ExecSettings,
) -> Finished {
    let Malformed { id, reason } = malformed;
    warn!(job_id = id.as_ref().map_or("?", JobId::as_str), %reason, "dead-lettering a malformed message");
    let failure = TaskFailure {
        kind: TaskError::MALFORMED_MESSAGE.to_owned(),
        message: reason,
    };
    let dead_letter = DeadLetter::new(tag.as_stored(), id.clone(), None, None, failure.clone());
    let outcome = match id {
        Some(job_id) => Outcome::Finished {
            record: ResultRecord::Failure {
                job_id,
                error: failure,
                done_at_ms: now_ms(),
            },
            ttl: settings.result_ttl,
            // Rare; a message that names a job id is treated as if it could have a state.
            clears_state: true,
            dead_letter: Some(dead_letter),
        },
        None => Outcome::Unreadable { dead_letter },
    };
    Finished {
        ack: Ack::new(tag, outcome),
        writes: Vec::new(),
    }
}

/// Runs `job` with its handler and turns the outcome into an acknowledgement. `slot` (the
/// worker's concurrency permit) is released when the handler is really done, which for a
/// blocking handler past its time limit is after this returns.
pub(crate) async fn run(
    app: &App,
    job: JobMessage,
    tag: DeliveryTag,
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
    run_in_span(app, job, tag, settings, slot)
        .instrument(span)
        .await
}

async fn run_in_span(
    app: &App,
    mut job: JobMessage,
    tag: DeliveryTag,
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
        return fail_for_good(job, tag, error, ttl, true);
    };
    let ctx = TaskContext::new(
        job.id.as_str(),
        &job.task,
        &job.queue,
        job.attempt,
        Some(slot),
    );
    let time_limit = job
        .time_limit_ms
        .map(Duration::from_millis)
        .or(entry.time_limit);
    // The arguments move into the handler; a retry reads its message again from the tag.
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
            let size = json_size(&value);
            if size > settings.result_size_limit {
                let error = TaskError::result_too_large(size, settings.result_size_limit);
                warn!(%error, "result too large");
                return fail_for_good(job, tag, error, ttl, false);
            }
            debug!("job succeeded");
            Finished {
                ack: Ack::new(
                    tag,
                    Outcome::Finished {
                        record: ResultRecord::Success {
                            job_id: job.id,
                            result: value,
                            done_at_ms: now_ms(),
                        },
                        ttl,
                        // A retry left a RETRY state behind.
                        clears_state: job.attempt > 0,
                        dead_letter: None,
                    },
                ),
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
                match tag.job_again() {
                    Some(mut next) => {
                        next.attempt += 1;
                        next.eta_ms = Some(due_ms);
                        Finished {
                            ack: Ack::new(
                                tag,
                                Outcome::Retry {
                                    next: Box::new(next),
                                    ttl,
                                    reason: error.into_failure(),
                                },
                            ),
                            writes: Vec::new(),
                        }
                    }
                    None => {
                        let error = TaskError::new(
                            TaskError::SERIALIZATION,
                            "the message of the retry cannot be read back",
                        );
                        fail_for_good(job, tag, error, ttl, true)
                    }
                }
            } else {
                // Exhausted retries and failures nothing can fix are set aside; a plain
                // failure of a task without retries is just its result.
                let dead = max_retries > 0 || unfixable(error.kind());
                warn!(%error, dead_lettered = dead, "job failed");
                fail_for_good(job, tag, error, ttl, dead)
            }
        }
    }
}

/// Whether a failure of `kind` is one no rerun can fix (the message itself is wrong): such
/// jobs are also set aside as dead letters.
pub(crate) fn unfixable(kind: &str) -> bool {
    matches!(kind, TaskError::INVALID_ARGUMENTS | TaskError::UNKNOWN_TASK)
}

/// The acknowledgement of a job that failed for good with `error` (set aside as a dead
/// letter when `dead`).
pub(crate) fn fail_for_good(
    job: JobMessage,
    tag: DeliveryTag,
    error: TaskError,
    ttl: Duration,
    dead: bool,
) -> Finished {
    let failure = error.into_failure();
    let dead_letter = dead.then(|| {
        DeadLetter::new(
            tag.as_stored(),
            Some(job.id.clone()),
            Some(job.task.clone()),
            Some(job.queue.clone()),
            failure.clone(),
        )
    });
    Finished {
        ack: Ack::new(
            tag,
            Outcome::Finished {
                record: ResultRecord::Failure {
                    job_id: job.id,
                    error: failure,
                    done_at_ms: now_ms(),
                },
                ttl,
                clears_state: job.attempt > 0,
                dead_letter,
            },
        ),
        writes: Vec::new(),
    }
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
