//! The wire format: how jobs, result records and dead letters become stored values, and
//! back. This module is the one place that knows the native JSON shapes; the worker loop,
//! the client and the scheduler only see typed values ([`JobMessage`], [`ResultRecord`],
//! [`DeadLetter`], [`Delivery`]).
//!
//! # Celery envelopes
//!
//! A fetched value is either a native job message or a Celery protocol v2 envelope (see
//! [`crate::celery`]); [`decode_delivery`] tells them apart and decodes both into a
//! [`JobMessage`]. The [`DeliveryTag`] of a Celery delivery keeps the message's Celery
//! context, which the worker's Celery layer answers with.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::admin::DeadLetter;
use crate::celery::CeleryContext;
use crate::celery::envelope;
use crate::error::{Error, TaskFailure};
use crate::message::{JobId, JobMessage, ResultRecord};
use crate::task::TaskError;

/// The handle a fetched job is acknowledged with: the message exactly as it was stored
/// (the broker removes that value from the worker's in-flight list), and for a Celery
/// message its context, which its reply needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeliveryTag {
    stored: String,
    celery: Option<Box<CeleryContext>>,
}

impl DeliveryTag {
    /// The tag of a value read back from storage (a dead letter's payload).
    pub(crate) fn from_stored(stored: String) -> Self {
        Self {
            stored,
            celery: None,
        }
    }

    /// The stored value this tag stands for.
    pub(crate) fn as_stored(&self) -> &str {
        &self.stored
    }

    /// The Celery context of a delivery that came as a Celery message.
    pub(crate) fn celery(&self) -> Option<&CeleryContext> {
        self.celery.as_deref()
    }

    /// The job this delivery carried, read again (the worker moves the arguments into the
    /// handler, and a retry needs them back).
    pub(crate) fn job_again(&self) -> Option<JobMessage> {
        decode_job(&self.stored).ok()
    }

    /// The arguments of the job as JSON text (a Celery message's positional and keyword
    /// arguments as `{"args": [...], "kwargs": {...}}`); `None` when they cannot be read.
    pub(crate) fn args_text(&self) -> Option<String> {
        let job = decode_job(&self.stored).ok()?;
        match &job.celery {
            Some(ctx) => {
                Some(serde_json::json!({"args": ctx.args, "kwargs": ctx.kwargs}).to_string())
            }
            None => serde_json::to_string(&job.args).ok(),
        }
    }

    #[cfg(feature = "test-support")]
    pub(crate) fn into_stored(self) -> String {
        self.stored
    }
}

/// A fetched message: the decoded job, or why it could not be decoded.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) tag: DeliveryTag,
    pub(crate) job: Result<Box<JobMessage>, Malformed>,
}

/// A message that is not a job message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed {
    /// Its id, when one could be read (its failure is then stored as its result).
    pub(crate) id: Option<JobId>,
    pub(crate) reason: String,
}

/// Why the Lua scripts dead-letter a message they cannot route: the reason's kind and
/// texts are passed to them from here, so the stored reasons have one definition.
pub(crate) const MALFORMED_KIND: &str = TaskError::MALFORMED_MESSAGE;
/// The reason of an in-flight message of a dead worker that names no queue.
pub(crate) const UNROUTABLE_IN_FLIGHT: &str =
    "an in-flight message of a dead worker is not a job message";
/// The reason of a delayed message that names no queue.
pub(crate) const UNROUTABLE_DELAYED: &str = "a delayed message is not a job message";

/// Serializes a value of this crate's own types. They hold only strings, numbers and JSON
/// values (whose map keys are strings), which always serialize; the fallback exists so no
/// code path can panic, and an empty object would be dead-lettered as malformed if read.
fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"))
}

fn from_json<T: DeserializeOwned>(what: &'static str, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(Error::decode(what))
}

/// The stored form of a job message.
pub(crate) fn encode_message(message: &JobMessage) -> String {
    to_json(message)
}

/// Decodes a fetched value (a native job message or a Celery envelope) into a
/// [`Delivery`].
pub(crate) fn decode_delivery(stored: String) -> Delivery {
    let job = decode_job(&stored);
    let celery = match &job {
        Ok(job) => job.celery.clone(),
        Err(_) if envelope::looks_like_envelope(&stored) => {
            Some(Box::new(CeleryContext::unreadable()))
        }
        Err(_) => None,
    };
    Delivery {
        tag: DeliveryTag { stored, celery },
        job: job.map(Box::new),
    }
}

fn decode_job(stored: &str) -> Result<JobMessage, Malformed> {
    if envelope::looks_like_envelope(stored) {
        return envelope::decode(stored);
    }
    serde_json::from_str::<JobMessage>(stored).map_err(|e| {
        let id = serde_json::from_str::<serde_json::Value>(stored)
            .ok()
            .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(JobId::from))
            .filter(|id| !id.as_str().is_empty());
        Malformed {
            id,
            reason: format!("the message is not a valid job message: {e}"),
        }
    })
}

/// The queue a stored message names, without decoding the rest (for putting it back).
pub(crate) fn queue_of(stored: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct QueueOnly {
        queue: String,
    }
    serde_json::from_str::<QueueOnly>(stored)
        .ok()
        .map(|q| q.queue)
        .filter(|q| !q.is_empty())
}

/// The stored form of a result record.
pub(crate) fn encode_result(record: &ResultRecord) -> String {
    to_json(record)
}

/// Decodes a stored result record.
pub(crate) fn decode_result(stored: &str) -> Result<ResultRecord, Error> {
    from_json("result record", stored)
}

/// The stored form of a dead letter.
pub(crate) fn encode_dead_letter(letter: &DeadLetter) -> String {
    to_json(letter)
}

/// Decodes a stored dead letter.
fn decode_dead_letter(stored: &str) -> Result<DeadLetter, Error> {
    from_json("dead letter", stored)
}

/// Decodes stored dead letters, each kept with its stored form (which finds it again).
pub(crate) fn decode_dead_letters(stored: Vec<String>) -> Result<Vec<(String, DeadLetter)>, Error> {
    stored
        .into_iter()
        .map(|s| decode_dead_letter(&s).map(|letter| (s, letter)))
        .collect()
}

/// The dead letter of a stored value that is not a job message at all.
pub(crate) fn malformed_letter(stored: &str, reason: &str) -> DeadLetter {
    DeadLetter::new(
        stored,
        None,
        None,
        None,
        TaskFailure {
            kind: MALFORMED_KIND.to_owned(),
            message: reason.to_owned(),
        },
    )
}
