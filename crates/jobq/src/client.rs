//! The sending side: [`Client`] enqueues jobs and reads results through [`AsyncResult`].

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::admin::{DeadLetter, Stats};
use crate::app::json_type;
use crate::broker::{Broker, NewJob};
use crate::error::Error;
use crate::message::{JobId, JobMessage, JobState, ResultRecord, json_size, millis, now_ms};

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

/// Options of [`Client::apply_async`]. `SendOptions::new()` sends at once to the default
/// queue with the task's own retry policy and time limit; the setters change one option
/// each (`SendOptions::new().queue("reports").countdown(Duration::from_secs(5))`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
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

impl SendOptions {
    /// The defaults: at once, to the default queue, with the task's own settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs no earlier than `countdown` from now.
    pub fn countdown(mut self, countdown: Duration) -> Self {
        self.countdown = Some(countdown);
        self
    }

    /// Runs no earlier than `eta`.
    pub fn eta(mut self, eta: SystemTime) -> Self {
        self.eta = Some(eta);
        self
    }

    /// Overrides the task's retry budget.
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = Some(max_retries);
        self
    }

    /// Overrides the task's time limit.
    pub fn time_limit(mut self, time_limit: Duration) -> Self {
        self.time_limit = Some(time_limit);
        self
    }

    /// Keeps the result this long.
    pub fn result_ttl(mut self, result_ttl: Duration) -> Self {
        self.result_ttl = Some(result_ttl);
        self
    }

    /// Sends to `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Enqueues only if `key` was not claimed within `ttl` (see [`SendOptions::unique`]).
    pub fn unique(mut self, key: impl Into<String>, ttl: Duration) -> Self {
        self.unique = Some((key.into(), ttl));
        self
    }
}

/// Sends jobs and reads their results. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    broker: Broker,
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
    /// A client on `broker`.
    pub fn new(broker: Broker) -> Self {
        Self {
            broker,
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
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Sends `task` with `args` (a JSON array of positional arguments, or an object of named
    /// ones) at once to the default queue.
    pub async fn delay<T: DeserializeOwned>(
        &self,
        task: &str,
        args: impl Serialize,
    ) -> Result<AsyncResult<T>, Error> {
        let sent = self.apply_async(task, args, SendOptions::new()).await?;
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
            .enqueue_batch(task, args_list, &SendOptions::new())
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
                id: JobId::new_random(),
                task: task.to_owned(),
                args,
                queue: queue.to_owned(),
                attempt: 0,
                max_retries: options.max_retries,
                time_limit_ms: options.time_limit.map(millis),
                result_ttl_ms: options.result_ttl.map(millis),
                eta_ms: due_ms,
                created_at_ms: now,
                celery: None,
            };
            jobs.push(NewJob {
                message,
                unique: options.unique.clone(),
            });
        }
        let ids: Vec<JobId> = jobs.iter().map(|j| j.message.id.clone()).collect();
        let sent = self.broker.backend().enqueue(jobs).await?;
        Ok(ids
            .into_iter()
            .zip(sent)
            .map(|(id, sent)| sent.then(|| AsyncResult::new(id, self.broker.clone())))
            .collect())
    }

    /// A handle on the result of an earlier job, e.g. one whose id was stored elsewhere.
    pub fn result<T: DeserializeOwned>(&self, job_id: impl Into<JobId>) -> AsyncResult<T> {
        AsyncResult::new(job_id.into(), self.broker.clone())
    }

    /// Reads a key written with the explicit-key pattern
    /// ([`TaskContext::set_key`](crate::TaskContext::set_key)).
    pub async fn get_key(&self, key: &str) -> Result<Option<String>, Error> {
        self.broker.backend().get_key(key).await
    }

    /// Deletes a key; returns whether it existed.
    pub async fn delete_key(&self, key: &str) -> Result<bool, Error> {
        self.broker.backend().delete_key(key).await
    }

    /// Queue lengths, in-flight and delayed jobs, dead letters, live workers and counters.
    pub async fn stats(&self) -> Result<Stats, Error> {
        self.broker.backend().stats().await
    }

    /// Up to `limit` dead letters, newest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, Error> {
        let letters = self.broker.backend().dead_letters(limit).await?;
        Ok(letters.into_iter().map(|(_, letter)| letter).collect())
    }

    /// Sends up to `limit` dead letters (newest first) back to their queues as fresh first
    /// attempts. Letters whose message cannot be decoded stay where they are. Returns how
    /// many were requeued.
    pub async fn requeue_dead(&self, limit: usize) -> Result<usize, Error> {
        self.broker.requeue_dead(limit).await
    }

    /// Sends the dead letter of job `job_id` (looked for among the newest 10,000) back to
    /// its queue as a fresh first attempt; returns whether one was found and requeued.
    pub async fn requeue_dead_job(&self, job_id: &JobId) -> Result<bool, Error> {
        Ok(self.broker.requeue_dead_job(job_id, 10_000).await? > 0)
    }

    /// Deletes every dead letter; returns how many there were.
    pub async fn purge_dead(&self) -> Result<usize, Error> {
        self.broker.backend().purge_dead().await
    }
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
    id: JobId,
    broker: Broker,
    _result: PhantomData<fn() -> T>,
}

impl<T> Clone for AsyncResult<T> {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            broker: self.broker.clone(),
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
    fn new(id: JobId, broker: Broker) -> Self {
        Self {
            id,
            broker,
            _result: PhantomData,
        }
    }

    /// The job id.
    pub fn id(&self) -> &JobId {
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
            match self.broker.backend().wait_result(&self.id, left).await {
                Ok(Some(record)) => return decode_record(record),
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
        match self.broker.backend().lookup(&self.id).await?.record {
            Some(record) => decode_record(record).map(Some),
            None => Ok(None),
        }
    }

    /// The job's current state.
    pub async fn state(&self) -> Result<JobState, Error> {
        let lookup = self.broker.backend().lookup(&self.id).await?;
        Ok(match (lookup.record, lookup.state) {
            (Some(record), _) => record.state(),
            (None, Some(state)) => state,
            (None, None) => JobState::Pending,
        })
    }

    /// Deletes the stored result and state.
    pub async fn forget(&self) -> Result<(), Error> {
        self.broker.backend().forget(&self.id).await
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

fn decode_record<T: DeserializeOwned>(record: ResultRecord) -> Result<T, Error> {
    match record {
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
        assert_eq!(
            due(Some(Duration::from_millis(500)), None, 1_000),
            Some(1_501)
        );
        assert_eq!(
            due(Some(Duration::from_micros(1)), None, 1_000),
            Some(1_002)
        );
        assert_eq!(due(Some(Duration::ZERO), None, 1_000), None);
    }

    #[test]
    fn an_eta_rounds_up_to_the_next_millisecond() {
        let eta = UNIX_EPOCH + Duration::from_micros(2_000_001);
        assert_eq!(due(None, Some(eta), 1_000), Some(2_001));
        let exact = UNIX_EPOCH + Duration::from_millis(2_000);
        assert_eq!(due(None, Some(exact), 1_000), Some(2_000));
        assert_eq!(
            due(None, Some(exact), 2_000),
            None,
            "a past or present ETA runs now"
        );
        assert_eq!(
            due(Some(Duration::from_millis(100)), Some(exact), 1_000),
            Some(2_000),
            "the later of the two wins"
        );
    }
}
