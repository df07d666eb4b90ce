//! The sending side: [`Client`] enqueues jobs and reads results through [`AsyncResult`].

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admin::{DeadLetter, Stats};
use crate::app::json_type;
use crate::broker::{Broker, NewJob};
use crate::error::Error;
use crate::message::{JobMessage, ResultRecord, millis, now_ms};

/// The queue jobs go to unless told otherwise.
pub const DEFAULT_QUEUE: &str = "default";

/// The largest serialized arguments (bytes of JSON) a [`Client`] sends unless told
/// otherwise with [`Client::with_argument_limit`]: 1 MiB, like the worker's result limit.
/// Bulk data belongs in the posts database or an explicit key, not in a job message that
/// every fetch, retry and dead letter copies.
pub const DEFAULT_ARGUMENT_LIMIT: usize = 1024 * 1024;

/// How long [`AsyncResult::get`] waits before asking again while Redis does not answer;
/// doubled per failed attempt up to [`RECONNECT_MAX_PAUSE`].
const RECONNECT_FIRST_PAUSE: Duration = Duration::from_millis(50);
const RECONNECT_MAX_PAUSE: Duration = Duration::from_secs(1);

/// Options of [`Client::apply_async`]. `SendOptions::default()` sends at once to the
/// default queue with the task's own retry policy and time limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Run no earlier than this long from now.
    pub countdown: Option<Duration>,
    /// Run no earlier than this instant (if both are set, the later one wins).
    pub eta: Option<SystemTime>,
    /// Overrides the task's retry budget.
    pub max_retries: Option<u32>,
    /// Overrides the task's time limit.
    pub time_limit: Option<Duration>,
    /// How long the result is kept (default: the worker's, 24 h unless configured).
    pub result_ttl: Option<Duration>,
    /// The queue (default [`DEFAULT_QUEUE`]).
    pub queue: Option<String>,
    /// `Some((key, ttl))`: enqueue only if `key` was not claimed within `ttl`; the claim and
    /// the enqueue happen atomically. When the claim exists, nothing is sent and
    /// [`Client::apply_async`] returns `Ok(None)`.
    pub unique: Option<(String, Duration)>,
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

/// Sends jobs and reads their results. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    broker: Arc<dyn Broker>,
    argument_limit: usize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("namespace", &self.broker.namespace())
            .finish()
    }
}

impl Client {
    /// A client on `broker` (a [`RedisBroker`](crate::RedisBroker),
    /// [`MemoryBroker`](crate::MemoryBroker) or `Arc<dyn Broker>`).
    pub fn new(broker: impl Broker) -> Self {
        Self {
            broker: Arc::new(broker),
            argument_limit: DEFAULT_ARGUMENT_LIMIT,
        }
    }

    /// Refuses arguments whose JSON is larger than `bytes` with
    /// [`Error::ArgumentsTooLarge`] instead of [`DEFAULT_ARGUMENT_LIMIT`].
    pub fn with_argument_limit(mut self, bytes: usize) -> Self {
        self.argument_limit = bytes;
        self
    }

    /// The broker this client sends through.
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    /// Sends `task` with `args` (a JSON array of positional arguments, or an object of named
    /// ones) at once to the default queue.
    pub async fn delay<T: DeserializeOwned>(
        &self,
        task: &str,
        args: impl Serialize,
    ) -> Result<AsyncResult<T>, Error> {
        let sent = self.apply_async(task, args, SendOptions::default()).await?;
        sent.ok_or_else(|| Error::Corrupt {
            what: "enqueue reply",
            reason: "a job without a unique key was reported as not enqueued".to_owned(),
        })
    }

    /// Sends `task` with options; `Ok(None)` only when `options.unique` was already claimed.
    pub async fn apply_async<T: DeserializeOwned>(
        &self,
        task: &str,
        args: impl Serialize,
        options: SendOptions,
    ) -> Result<Option<AsyncResult<T>>, Error> {
        let mut sent = self.enqueue_batch(task, [args], &options).await?;
        Ok(sent.pop().flatten())
    }

    /// Sends one job of `task` per element of `args_list`, in one pipelined round trip per
    /// batch, at once to the default queue.
    pub async fn delay_many<T, A>(
        &self,
        task: &str,
        args_list: impl IntoIterator<Item = A>,
    ) -> Result<Vec<AsyncResult<T>>, Error>
    where
        T: DeserializeOwned,
        A: Serialize,
    {
        let sent = self
            .enqueue_batch(task, args_list, &SendOptions::default())
            .await?;
        Ok(sent.into_iter().flatten().collect())
    }

    /// Sends one job of `task` per element of `args_list`, all with `options`. The result
    /// has one entry per job, `None` where the unique key was already claimed (with a unique
    /// key, only the first job of the batch can claim it).
    pub async fn enqueue_batch<T, A>(
        &self,
        task: &str,
        args_list: impl IntoIterator<Item = A>,
        options: &SendOptions,
    ) -> Result<Vec<Option<AsyncResult<T>>>, Error>
    where
        T: DeserializeOwned,
        A: Serialize,
    {
        if task.is_empty() {
            return Err(Error::InvalidArguments {
                task: task.to_owned(),
                reason: "the task name must not be empty".to_owned(),
            });
        }
        let queue = options.queue.as_deref().unwrap_or(DEFAULT_QUEUE);
        if queue.is_empty() {
            return Err(Error::InvalidOption {
                option: "queue",
                reason: "the queue name must not be empty".to_owned(),
            });
        }
        if let Some((key, ttl)) = &options.unique
            && (key.is_empty() || ttl.as_millis() == 0)
        {
            return Err(Error::InvalidOption {
                option: "unique",
                reason: "the key must not be empty and the ttl at least 1 ms".to_owned(),
            });
        }
        let now = now_ms();
        let due_ms = due_time(options, now)?;
        let mut jobs = Vec::new();
        for args in args_list {
            let args = serde_json::to_value(args).map_err(|e| Error::InvalidArguments {
                task: task.to_owned(),
                reason: format!("cannot be serialized: {e}"),
            })?;
            if !matches!(args, Value::Array(_) | Value::Object(_)) {
                return Err(Error::InvalidArguments {
                    task: task.to_owned(),
                    reason: format!(
                        "arguments must be a JSON array or object, got {}",
                        json_type(&args)
                    ),
                });
            }
            let size = json_size(&args);
            if size > self.argument_limit {
                return Err(Error::ArgumentsTooLarge {
                    task: task.to_owned(),
                    size,
                    limit: self.argument_limit,
                });
            }
            let message = JobMessage {
                id: uuid::Uuid::new_v4().to_string(),
                task: task.to_owned(),
                args,
                queue: queue.to_owned(),
                attempt: 0,
                max_retries: options.max_retries,
                time_limit_ms: options.time_limit.map(millis),
                result_ttl_ms: options.result_ttl.map(millis),
                eta_ms: due_ms,
                created_at_ms: now,
            };
            let payload = serde_json::to_string(&message).map_err(Error::decode("job message"))?;
            jobs.push(NewJob {
                id: message.id,
                queue: queue.to_owned(),
                payload,
                due_ms,
                unique: options.unique.clone(),
            });
        }
        let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
        let sent = self.broker.enqueue(jobs).await?;
        Ok(ids
            .into_iter()
            .zip(sent)
            .map(|(id, sent)| sent.then(|| AsyncResult::new(id, Arc::clone(&self.broker))))
            .collect())
    }

    /// A handle on the result of an earlier job, e.g. one whose id was stored elsewhere.
    pub fn result<T: DeserializeOwned>(&self, job_id: impl Into<String>) -> AsyncResult<T> {
        AsyncResult::new(job_id.into(), Arc::clone(&self.broker))
    }

    /// Reads a key written with the explicit-key pattern
    /// ([`TaskContext::set_key`](crate::TaskContext::set_key)).
    pub async fn get_key(&self, key: &str) -> Result<Option<String>, Error> {
        self.broker.get_key(key).await
    }

    /// Deletes a key; returns whether it existed.
    pub async fn delete_key(&self, key: &str) -> Result<bool, Error> {
        self.broker.delete_key(key).await
    }

    /// Queue lengths, in-flight and delayed jobs, dead letters, live workers and counters.
    pub async fn stats(&self) -> Result<Stats, Error> {
        self.broker.stats().await
    }

    /// Up to `limit` dead letters, newest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, Error> {
        let raw = self.broker.dead_letters(limit).await?;
        raw.iter()
            .map(|r| serde_json::from_str(r).map_err(Error::decode("dead letter")))
            .collect()
    }

    /// Sends up to `limit` dead letters (newest first) back to their queues as fresh first
    /// attempts. Letters whose message cannot be decoded stay where they are. Returns how
    /// many were requeued.
    pub async fn requeue_dead(&self, limit: usize) -> Result<usize, Error> {
        let raw = self.broker.dead_letters(limit).await?;
        let mut requeued = 0;
        for record in raw {
            let Ok(letter) = serde_json::from_str::<DeadLetter>(&record) else {
                continue;
            };
            let Ok(mut message) = serde_json::from_str::<JobMessage>(&letter.payload) else {
                continue;
            };
            message.attempt = 0;
            message.eta_ms = None;
            let queue = message.queue.clone();
            let payload = serde_json::to_string(&message).map_err(Error::decode("job message"))?;
            if self
                .broker
                .requeue_dead_letter(record, queue, payload)
                .await?
            {
                requeued += 1;
            }
        }
        Ok(requeued)
    }

    /// Deletes every dead letter; returns how many there were.
    pub async fn purge_dead(&self) -> Result<usize, Error> {
        self.broker.purge_dead().await
    }
}

/// The length of `value` serialized as compact JSON, without building the string.
fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` into a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// When a job sent at `now` (whole milliseconds, rounded down) may run. Both bounds round
/// up, so a job never runs before its countdown or ETA, not even by the sub-millisecond part
/// that the clock reading dropped.
fn due_time(options: &SendOptions, now: u64) -> Result<Option<u64>, Error> {
    let from_countdown = options
        .countdown
        .filter(|c| !c.is_zero())
        .map(|c| now.saturating_add(1).saturating_add(millis_rounded_up(c)));
    let from_eta = match options.eta {
        Some(eta) => Some(
            eta.duration_since(UNIX_EPOCH)
                .map(millis_rounded_up)
                .map_err(|_| Error::InvalidOption {
                    option: "eta",
                    reason: "must not be before 1970".to_owned(),
                })?,
        ),
        None => None,
    };
    Ok(match (from_countdown, from_eta) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
    .filter(|due| *due > now))
}

fn millis_rounded_up(duration: Duration) -> u64 {
    duration
        .as_nanos()
        .div_ceil(1_000_000)
        .min(u128::from(u64::MAX)) as u64
}

/// A handle on one job's result; `T` is the type the result is decoded into.
pub struct AsyncResult<T = Value> {
    id: String,
    broker: Arc<dyn Broker>,
    _result: PhantomData<fn() -> T>,
}

impl<T> Clone for AsyncResult<T> {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            broker: Arc::clone(&self.broker),
            _result: PhantomData,
        }
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult").field("id", &self.id).finish()
    }
}

impl<T: DeserializeOwned> AsyncResult<T> {
    fn new(id: String, broker: Arc<dyn Broker>) -> Self {
        Self {
            id,
            broker,
            _result: PhantomData,
        }
    }

    /// The job id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits up to `timeout` for the job to finish. Blocks on the broker (no polling).
    /// While Redis does not answer (restarting, unreachable), it keeps asking again with a
    /// growing pause until `timeout` is spent, so a result stored after a restart is
    /// still returned.
    ///
    /// Errors: [`Error::Timeout`] when it did not finish in time, [`Error::Failed`] with the
    /// task's failure when it failed, and the last connection error ([`Error::Redis`],
    /// [`Error::Pool`], [`Error::RedisTimeout`]) when Redis never answered within `timeout`.
    pub async fn get(&self, timeout: Duration) -> Result<T, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = RECONNECT_FIRST_PAUSE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.broker.wait_result(&self.id, left).await {
                Ok(Some(record)) => return decode_record(&record),
                Ok(None) => return Err(Error::Timeout),
                Err(error) if is_connection_error(&error) => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        return Err(error);
                    }
                    tracing::debug!(job_id = %self.id, %error, "redis unavailable while waiting for a result; asking again");
                    tokio::time::sleep(pause.min(left)).await;
                    pause = (pause * 2).min(RECONNECT_MAX_PAUSE);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The result if the job already finished, without waiting.
    pub async fn try_get(&self) -> Result<Option<T>, Error> {
        match self.broker.lookup(&self.id).await?.record {
            Some(record) => decode_record(&record).map(Some),
            None => Ok(None),
        }
    }

    /// The job's current state.
    pub async fn state(&self) -> Result<JobState, Error> {
        let lookup = self.broker.lookup(&self.id).await?;
        if let Some(record) = lookup.record {
            let record: ResultRecord =
                serde_json::from_str(&record).map_err(Error::decode("result record"))?;
            return Ok(match record {
                ResultRecord::Success { .. } => JobState::Success,
                ResultRecord::Failure { .. } => JobState::Failure,
            });
        }
        Ok(match lookup.state.as_deref() {
            Some("STARTED") => JobState::Started,
            Some("RETRY") => JobState::Retry,
            _ => JobState::Pending,
        })
    }

    /// Deletes the stored result and state.
    pub async fn forget(&self) -> Result<(), Error> {
        self.broker.forget(&self.id).await
    }
}

/// Whether `error` means Redis could not be reached (as opposed to a refused command).
fn is_connection_error(error: &Error) -> bool {
    match error {
        Error::Redis { source, .. } => {
            source.is_io_error()
                || source.is_connection_refusal()
                || source.is_connection_dropped()
                || source.is_timeout()
                || source.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
        }
        Error::Pool { .. } | Error::RedisTimeout { .. } => true,
        _ => false,
    }
}

fn decode_record<T: DeserializeOwned>(record: &str) -> Result<T, Error> {
    match serde_json::from_str::<ResultRecord>(record).map_err(Error::decode("result record"))? {
        ResultRecord::Success { result, .. } => {
            serde_json::from_value(result).map_err(Error::decode("task result"))
        }
        ResultRecord::Failure { error, .. } => Err(Error::Failed(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(countdown: Option<Duration>, eta: Option<SystemTime>, now: u64) -> Option<u64> {
        let options = SendOptions {
            countdown,
            eta,
            ..SendOptions::default()
        };
        due_time(&options, now).expect("valid options")
    }

    #[test]
    fn a_countdown_never_comes_due_early() {
        // `now` dropped up to 1 ms of the send time, so the countdown counts from the next ms.
        assert_eq!(due(Some(Duration::from_millis(500)), None, 1_000), Some(1_501));
        assert_eq!(due(Some(Duration::from_micros(1)), None, 1_000), Some(1_002));
        assert_eq!(due(Some(Duration::ZERO), None, 1_000), None);
    }

    #[test]
    fn an_eta_rounds_up_to_the_next_millisecond() {
        let eta = UNIX_EPOCH + Duration::from_micros(2_000_001);
        assert_eq!(due(None, Some(eta), 1_000), Some(2_001));
        let exact = UNIX_EPOCH + Duration::from_millis(2_000);
        assert_eq!(due(None, Some(exact), 1_000), Some(2_000));
        assert_eq!(due(None, Some(exact), 2_000), None, "a past or present ETA runs now");
        assert_eq!(
            due(Some(Duration::from_millis(100)), Some(exact), 1_000),
            Some(2_000),
            "the later of the two wins"
        );
    }
}
