//! The other direction: [`CeleryClient`] sends tasks to Python Celery workers (or to any
//! worker speaking Celery protocol v2, posts-worker included) and reads their results, as a
//! stock `app.send_task(...).get()` does.

use std::time::Duration;

use futures::StreamExt;
use redis::aio::ConnectionManager;
use serde_json::{Map, Value};

use super::envelope::{Outgoing, PRIORITY_SEP, parse_record_text};
use super::{CeleryConfig, DEFAULT_QUEUE};
use crate::error::{Error, TaskFailure};
use crate::message::{JobId, now_ms};

/// Sends Celery tasks through a Redis broker and waits for their results in the same Redis
/// (Celery's `broker_url` = `result_backend`, the common set-up).
///
/// ```no_run
/// # async fn demo() -> Result<(), jobq::Error> {
/// use serde_json::json;
/// let celery = jobq::celery::CeleryClient::connect("redis://127.0.0.1:6379/0").await?;
/// let sent = celery
///     .send("scorer_worker.tasks.sentiment_scorer", vec![], json!({"text": "hi"}).as_object().cloned().unwrap_or_default())
///     .await?;
/// let score = sent.get(std::time::Duration::from_secs(1)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CeleryClient {
    client: redis::Client,
    conn: ConnectionManager,
    queue: String,
    config: CeleryConfig,
    origin: String,
}

impl std::fmt::Debug for CeleryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CeleryClient")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

/// A task sent with [`CeleryClient::send`]: its id, and a way to wait for its result.
#[derive(Debug, Clone)]
pub struct SentTask {
    id: JobId,
    client: CeleryClient,
}

impl CeleryClient {
    /// A client of the Redis at `url`, sending to queue `celery`. Fails on an invalid URL
    /// or when Redis does not answer.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let client =
            redis::Client::open(url).map_err(|e| Error::InvalidUrl(format!("{url:?}: {e}")))?;
        let conn = ConnectionManager::new(client.clone())
            .await
            .map_err(Error::redis("connecting to the Celery broker"))?;
        let config = CeleryConfig::default();
        Ok(Self {
            client,
            conn,
            queue: DEFAULT_QUEUE.to_owned(),
            origin: config.hostname.clone(),
            config,
        })
    }

    /// Sends to `queue` instead of `celery` (e.g. upstream's `scorer`).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Reads results under the backend's `global_keyprefix` (see
    /// [`CeleryConfig::key_prefix`]).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }

    /// Sends task `name` with positional `args` and keyword `kwargs`, as
    /// `app.send_task(name, args, kwargs)` would: the full envelope, pushed on the queue's
    /// list, with the queue declared in kombu's binding table.
    pub async fn send(
        &self,
        name: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<SentTask, Error> {
        self.send_with(name, args, kwargs, SendCelery::default())
            .await
    }

    /// [`send`](Self::send) with a countdown, an expiry, a priority or a time limit.
    pub async fn send_with(
        &self,
        name: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        options: SendCelery,
    ) -> Result<SentTask, Error> {
        if name.is_empty() {
            return Err(Error::InvalidArguments {
                task: name.to_owned(),
                reason: "the task name must not be empty".to_owned(),
            });
        }
        let mut task = Outgoing::new(name, args, kwargs, &self.queue);
        task.priority = options.priority.min(9);
        let now = now_ms();
        task.eta_ms = options.countdown.map(|d| now.saturating_add(ms(d)));
        task.expires_ms = options.expires.map(|d| now.saturating_add(ms(d)));
        task.time_limit = [options.time_limit.map(|d| d.as_secs_f64()), None];
        let member = format!("{q}{PRIORITY_SEP}{PRIORITY_SEP}{q}", q = self.queue);
        let mut conn = self.conn.clone();
        redis::pipe()
            .cmd("SADD")
            .arg(format!("_kombu.binding.{}", self.queue))
            .arg(&member)
            .ignore()
            .cmd("LPUSH")
            .arg(task.list())
            .arg(task.encode(&self.origin))
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(Error::redis("sending a Celery task"))?;
        Ok(SentTask {
            id: JobId::from(task.id),
            client: self.clone(),
        })
    }
}

/// Options of [`CeleryClient::send_with`], Celery's `apply_async` options.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SendCelery {
    /// Do not run before this much time has passed.
    pub countdown: Option<Duration>,
    /// Revoke the task when it has not started within this time.
    pub expires: Option<Duration>,
    /// Priority 0 (the default, and the highest on Redis) to 9.
    pub priority: u8,
    /// The hard time limit.
    pub time_limit: Option<Duration>,
}

fn ms(d: Duration) -> u64 {
    crate::message::millis(d)
}

impl SentTask {
    /// The task id.
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// Waits up to `timeout` for the result, as `AsyncResult.get()` does: subscribes to
    /// the result key's channel, then reads the key (so a result stored meanwhile is not
    /// missed), then waits for the notification. A SUCCESS gives its value; a FAILURE or
    /// REVOKED gives [`Error::Failed`] with the exception type as the kind and its
    /// arguments as the message; no result in time gives [`Error::Timeout`].
    pub async fn get(&self, timeout: Duration) -> Result<Value, Error> {
        let key = self.client.config.result_key(self.id.as_str());
        let mut pubsub = self
            .client
            .client
            .get_async_pubsub()
            .await
            .map_err(Error::redis("subscribing to a Celery result"))?;
        pubsub
            .subscribe(&key)
            .await
            .map_err(Error::redis("subscribing to a Celery result"))?;
        let mut conn = self.client.conn.clone();
        let stored: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(Error::redis("reading a Celery result"))?;
        if let Some(outcome) = stored.as_deref().and_then(ready_outcome) {
            return outcome;
        }
        let mut messages = pubsub.on_message();
        let wait = async {
            while let Some(message) = messages.next().await {
                let Ok(text) = message.get_payload::<String>() else {
                    continue;
                };
                if let Some(outcome) = ready_outcome(&text) {
                    return outcome;
                }
            }
            Err(Error::Redis {
                context: "waiting for a Celery result",
                source: redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "the subscription connection closed",
                )),
            })
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(Error::Timeout))
    }
}

/// The outcome a stored record stands for, or `None` while it is not ready (PENDING,
/// STARTED, RETRY).
fn ready_outcome(text: &str) -> Option<Result<Value, Error>> {
    let record = match parse_record_text(text) {
        Ok(record) => record,
        Err(e) => return Some(Err(Error::decode("Celery result record")(e))),
    };
    match record.get("status").and_then(Value::as_str) {
        Some("SUCCESS") => Some(Ok(record.get("result").cloned().unwrap_or(Value::Null))),
        Some("FAILURE" | "REVOKED") => {
            let exception = record.get("result").cloned().unwrap_or(Value::Null);
            let kind = match (
                exception.get("exc_module").and_then(Value::as_str),
                exception.get("exc_type").and_then(Value::as_str),
            ) {
                (Some(module), Some(name)) if module != "builtins" => format!("{module}.{name}"),
                (_, Some(name)) => name.to_owned(),
                (_, None) => "UnknownException".to_owned(),
            };
            let message = match exception.get("exc_message") {
                Some(Value::Array(args)) if args.len() == 1 => match &args[0] {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                },
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            Some(Err(Error::Failed(TaskFailure { kind, message })))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_written_by_python_workers_read_as_outcomes() {
        let ok = ready_outcome(
            r#"{"status": "SUCCESS", "result": {"score": NaN, "id": 1}, "task_id": "x"}"#,
        );
        assert_eq!(
            ok.unwrap().unwrap(),
            serde_json::json!({"score": null, "id": 1})
        );
        let failed = ready_outcome(
            r#"{"status": "FAILURE", "result": {"exc_type": "ValueError", "exc_message": ["bad value 7"], "exc_module": "builtins"}}"#,
        );
        match failed.unwrap() {
            Err(Error::Failed(f)) => assert_eq!(
                (f.kind.as_str(), f.message.as_str()),
                ("ValueError", "bad value 7")
            ),
            other => panic!("{other:?}"),
        }
        let revoked = ready_outcome(
            r#"{"status": "REVOKED", "result": {"exc_type": "TaskRevokedError", "exc_message": ["expired"], "exc_module": "celery.exceptions"}}"#,
        );
        assert!(
            matches!(revoked, Some(Err(Error::Failed(f))) if f.kind == "celery.exceptions.TaskRevokedError")
        );
        assert!(ready_outcome(r#"{"status": "STARTED", "result": {"pid": 1}}"#).is_none());
        assert!(matches!(
            ready_outcome("{"),
            Some(Err(Error::Decode { .. }))
        ));
    }
}
