//! [`RedisBroker`]: the broker on a Redis server (standalone, or one cluster slot per
//! namespace), through a deadpool-redis connection pool.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::{Manager, Pool, Runtime};
use futures::FutureExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Script};

use super::{Ack, Broker, BrokerFuture, NewJob, ResultLookup, lua, validate_namespace};
use crate::admin::Stats;
use crate::error::Error;
use crate::message::{millis, now_ms};
use crate::task::KeyWrite;

/// Connections the pool opens at most: fetchers and waiting clients each hold one while
/// they block.
const POOL_SIZE: usize = 64;
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a non-blocking command may take before its connection is considered dead
/// (generous: a 100,000-job enqueue pipeline is one command batch).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra time a blocking command gets beyond its own timeout before the connection is
/// considered dead.
const BLOCK_GRACE: Duration = Duration::from_secs(3);
/// Payloads per `LPUSH`/`ZADD` when enqueueing large batches, so no single command keeps
/// Redis busy for long.
const PUSH_CHUNK: usize = 1000;
/// Result records up to this size (bytes) are also pushed as the job's notification, so a
/// waiting client gets its result in the reply that wakes it, without another round trip.
/// Larger ones are not copied (the notification is then `1` and the waiter reads the
/// result key).
const INLINE_RECORD_LIMIT: usize = 4096;
/// The notification of a result whose record was not inlined.
const NOTIFY_MARKER: &str = "1";
/// Dead workers handled per reap call.
const REAP_WORKERS_PER_CALL: usize = 100;

struct Scripts {
    fetch: Script,
    mark_started: Script,
    ack: Script,
    enqueue_unique: Script,
    promote: Script,
    reap: Script,
    unregister: Script,
    requeue_dead: Script,
}

/// Connections for blocking commands, each used by one waiter at a time. Kept idle between
/// uses without the health-check round trip a pool checkout costs (that round trip would
/// double the latency of a blocked fetch or a result wait); a connection that fails is
/// dropped and the command retried once on a new one.
struct BlockingConnections {
    client: redis::Client,
    config: AsyncConnectionConfig,
    idle: std::sync::Mutex<Vec<MultiplexedConnection>>,
}

impl BlockingConnections {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<MultiplexedConnection>> {
        crate::sync::lock(&self.idle)
    }

    async fn open(&self) -> Result<MultiplexedConnection, redis::RedisError> {
        self.client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
    }

    fn give_back(&self, conn: MultiplexedConnection) {
        let mut idle = self.idle();
        if idle.len() < POOL_SIZE {
            idle.push(conn);
        }
    }
}

struct Inner {
    /// Shared with the scheduler's store.
    pool: Pool,
    blocking: BlockingConnections,
    /// For everything else: one multiplexed, self-reconnecting connection, so the hot path
    /// pays no per-command checkout round trip.
    fast: ConnectionManager,
    namespace: String,
    prefix: String,
    scripts: Scripts,
}

/// A [`Broker`] on Redis. Cheap to clone (the pool is shared).
///
/// `redis://` and `rediss://` (TLS) URLs are accepted, with the password in the URL
/// (`redis://:secret@host:6379/0`). A `rediss://` server's certificate is checked against
/// the system's trust store; `SSL_CERT_FILE` (or `SSL_CERT_DIR`) points it at a private CA
/// instead. Connecting never fails because the server is down: use
/// [`ping`](Broker::ping) to find out whether it answers.
#[derive(Clone)]
pub struct RedisBroker {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBroker")
            .field("namespace", &self.inner.namespace)
            .finish()
    }
}

impl RedisBroker {
    /// A broker for `namespace` on the Redis at `url`.
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, Error> {
        validate_namespace(namespace)?;
        if url.starts_with("rediss:") {
            use_ring_unless_a_tls_provider_is_chosen();
        }
        let invalid = |e: redis::RedisError| Error::InvalidUrl(format!("{url:?}: {e}"));
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            // Blocking commands wait as long as their own timeout says; a dead server closes
            // the socket, and `blocking` bounds every such call itself.
            .set_response_timeout(None);
        let manager = Manager::new_with_config(url, config.clone()).map_err(invalid)?;
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| Error::InvalidUrl(format!("{url:?}: cannot build a pool: {e}")))?;
        let client = redis::Client::open(url).map_err(invalid)?;
        let fast_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        // Lazy: connecting succeeds while the server is down; commands then fail (and
        // reconnect) until it answers.
        let fast = ConnectionManager::new_lazy_with_config(client.clone(), fast_config)
            .map_err(invalid)?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                blocking: BlockingConnections {
                    client,
                    config,
                    idle: std::sync::Mutex::new(Vec::new()),
                },
                fast,
                namespace: namespace.to_owned(),
                prefix: format!("{{{namespace}}}:"),
                scripts: Scripts {
                    fetch: Script::new(lua::FETCH),
                    mark_started: Script::new(lua::MARK_STARTED),
                    ack: Script::new(lua::ACK),
                    enqueue_unique: Script::new(lua::ENQUEUE_UNIQUE),
                    promote: Script::new(lua::PROMOTE),
                    reap: Script::new(&lua::reap()),
                    unregister: Script::new(&lua::unregister()),
                    requeue_dead: Script::new(lua::REQUEUE_DEAD),
                },
            }),
        })
    }

    /// The connection pool (shared with the scheduler's store).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The full key of `suffix` in this namespace: `{ns}:<suffix>`.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.inner.prefix)
    }

    fn fast(&self) -> ConnectionManager {
        self.inner.fast.clone()
    }

    /// Runs a blocking command bounded by `block` plus a grace period, dropping the
    /// connection when it fails or does not answer.
    async fn blocking<T: redis::FromRedisValue>(
        &self,
        context: &'static str,
        cmd: redis::Cmd,
        block: Duration,
    ) -> Result<T, Error> {
        let blocking = &self.inner.blocking;
        let deadline = block + BLOCK_GRACE;
        let mut reused = blocking.idle().pop();
        loop {
            let fresh = reused.is_none();
            let mut conn = match reused.take() {
                Some(conn) => conn,
                None => blocking.open().await.map_err(Error::redis(context))?,
            };
            match tokio::time::timeout(deadline, cmd.query_async::<T>(&mut conn)).await {
                Ok(Ok(reply)) => {
                    blocking.give_back(conn);
                    return Ok(reply);
                }
                // An idle connection that died (e.g. the server restarted): once more on a
                // new one.
                Ok(Err(e)) if !fresh && (e.is_io_error() || e.is_connection_dropped()) => {}
                Ok(Err(e)) => return Err(Error::Redis { context, source: e }),
                Err(_) => {
                    return Err(Error::RedisTimeout {
                        context,
                        waited: deadline,
                    });
                }
            }
        }
    }

    async fn enqueue_impl(&self, jobs: Vec<NewJob>) -> Result<Vec<bool>, Error> {
        let mut outcome = vec![true; jobs.len()];
        let mut plain_now: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut plain_delayed: Vec<(u64, &str)> = Vec::new();
        let mut unique = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            match (&job.unique, job.due_ms) {
                (Some(_), _) => unique.push(i),
                (None, None) => plain_now.entry(&job.queue).or_default().push(&job.payload),
                (None, Some(due)) => plain_delayed.push((due, &job.payload)),
            }
        }
        let mut conn = self.fast();
        if !plain_now.is_empty() || !plain_delayed.is_empty() {
            let mut pipe = redis::pipe();
            for (queue, payloads) in &plain_now {
                let key = self.key(&format!("queue:{queue}"));
                for chunk in payloads.chunks(PUSH_CHUNK) {
                    pipe.cmd("LPUSH").arg(&key).arg(chunk).ignore();
                }
                pipe.cmd("SADD")
                    .arg(self.key("queues"))
                    .arg(*queue)
                    .ignore();
            }
            let delayed_key = self.key("delayed");
            for chunk in plain_delayed.chunks(PUSH_CHUNK) {
                let cmd = pipe.cmd("ZADD").arg(&delayed_key);
                for (due, payload) in chunk {
                    cmd.arg(*due).arg(*payload);
                }
                cmd.ignore();
            }
            pipe.query_async::<()>(&mut conn)
                .await
                .map_err(Error::redis("enqueueing jobs"))?;
        }
        for i in unique {
            let job = &jobs[i];
            let Some((claim, ttl)) = &job.unique else {
                continue;
            };
            let target = match job.due_ms {
                None => self.key(&format!("queue:{}", job.queue)),
                Some(_) => self.key("delayed"),
            };
            let claimed: i64 = self
                .inner
                .scripts
                .enqueue_unique
                .key(self.key(&format!("unique:{claim}")))
                .key(target)
                .key(self.key("queues"))
                .arg(&job.id)
                .arg(ttl.as_millis().max(1) as u64)
                .arg(&job.payload)
                .arg(job.due_ms.map(|d| d.to_string()).unwrap_or_default())
                .arg(&job.queue)
                .invoke_async(&mut conn)
                .await
                .map_err(Error::redis("enqueueing a unique job"))?;
            outcome[i] = claimed == 1;
        }
        Ok(outcome)
    }

    async fn fetch_impl(
        &self,
        worker: &str,
        queue: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<String>, Error> {
        let queue_key = self.key(&format!("queue:{queue}"));
        let processing = self.key(&format!("processing:{worker}"));
        if max > 1 {
            let mut conn = self.fast();
            let batch: Vec<String> = self
                .inner
                .scripts
                .fetch
                .key(&queue_key)
                .key(&processing)
                .arg(max)
                .invoke_async(&mut conn)
                .await
                .map_err(Error::redis("fetching jobs"))?;
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
        if block.is_zero() || max == 0 {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("BLMOVE");
        cmd.arg(&queue_key)
            .arg(&processing)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(block.as_secs_f64().max(0.001));
        let one: Option<String> = self.blocking("waiting for a job", cmd, block).await?;
        Ok(one.into_iter().collect())
    }

    async fn ack_impl(&self, worker: &str, acks: &[Ack]) -> Result<(), Error> {
        if acks.is_empty() {
            return Ok(());
        }
        let mut invocation = self.inner.scripts.ack.prepare_invoke();
        invocation
            .key(self.key(&format!("processing:{worker}")))
            .arg(&self.inner.prefix)
            .arg(INLINE_RECORD_LIMIT);
        let flag = |set: bool| if set { "1" } else { "" };
        for ack in acks {
            match ack {
                Ack::Success {
                    payload,
                    job_id,
                    record,
                    ttl,
                    clears_state,
                } => {
                    invocation
                        .arg("S")
                        .arg(payload)
                        .arg(job_id)
                        .arg(record)
                        .arg(ttl_ms(*ttl))
                        .arg("")
                        .arg(flag(*clears_state));
                }
                Ack::Failure {
                    payload,
                    job_id,
                    record,
                    ttl,
                    dead_letter,
                    clears_state,
                } => {
                    let (id, record) = match (job_id, record) {
                        (Some(id), Some(record)) => (id.as_str(), record.as_str()),
                        _ => ("", ""),
                    };
                    invocation
                        .arg("F")
                        .arg(payload)
                        .arg(id)
                        .arg(record)
                        .arg(ttl_ms(*ttl))
                        .arg(dead_letter.as_deref().unwrap_or(""))
                        .arg(flag(*clears_state));
                }
                Ack::Retry {
                    payload,
                    job_id,
                    retry_payload,
                    due_ms,
                    ttl,
                } => {
                    invocation
                        .arg("R")
                        .arg(payload)
                        .arg(job_id)
                        .arg(retry_payload)
                        .arg(*due_ms)
                        .arg(ttl_ms(*ttl))
                        .arg("");
                }
                Ack::Requeue { payload, queue } => {
                    invocation
                        .arg("Q")
                        .arg(payload)
                        .arg(queue)
                        .arg("")
                        .arg("")
                        .arg("")
                        .arg("");
                }
            }
        }
        let mut conn = self.fast();
        invocation
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(Error::redis("acknowledging jobs"))?;
        Ok(())
    }

    async fn wait_result_impl(
        &self,
        job_id: &str,
        timeout: Duration,
    ) -> Result<Option<String>, Error> {
        let result_key = self.key(&format!("result:{job_id}"));
        if timeout >= Duration::from_millis(1) {
            let notify = self.key(&format!("notify:{job_id}"));
            // Moving the newest element onto the same end of the same list leaves the list
            // as it was, so every waiter (and every later call) sees the same, newest one.
            let mut cmd = redis::cmd("BLMOVE");
            cmd.arg(&notify)
                .arg(&notify)
                .arg("RIGHT")
                .arg("RIGHT")
                .arg(timeout.as_secs_f64());
            let woken: Option<String> = self.blocking("waiting for a result", cmd, timeout).await?;
            match woken {
                // The record itself (see INLINE_RECORD_LIMIT): no second round trip.
                Some(record) if record != NOTIFY_MARKER => return Ok(Some(record)),
                Some(_) => {}
                // Timed out: the result key may still have appeared since (e.g. it was
                // stored by a worker of an older version that notified differently).
                None => {}
            }
        }
        let mut conn = self.fast();
        redis::cmd("GET")
            .arg(&result_key)
            .query_async(&mut conn)
            .await
            .map_err(Error::redis("reading a result"))
    }

    async fn stats_impl(&self) -> Result<Stats, Error> {
        let mut conn = self.fast();
        let (queues, workers, delayed, dead, processed, failed, retried, schedules): StatsReply =
            redis::pipe()
                .cmd("SMEMBERS")
                .arg(self.key("queues"))
                .cmd("ZRANGE")
                .arg(self.key("workers"))
                .arg(0)
                .arg(-1)
                .cmd("ZCARD")
                .arg(self.key("delayed"))
                .cmd("LLEN")
                .arg(self.key("dead"))
                .cmd("GET")
                .arg(self.key("stats:processed"))
                .cmd("GET")
                .arg(self.key("stats:failed"))
                .cmd("GET")
                .arg(self.key("stats:retried"))
                .cmd("HLEN")
                .arg(self.key("schedules"))
                .query_async(&mut conn)
                .await
                .map_err(Error::redis("reading stats"))?;
        let mut pipe = redis::pipe();
        for queue in &queues {
            pipe.cmd("LLEN").arg(self.key(&format!("queue:{queue}")));
        }
        for worker in &workers {
            pipe.cmd("LLEN")
                .arg(self.key(&format!("processing:{worker}")));
            pipe.cmd("EXISTS")
                .arg(self.key(&format!("worker:{worker}:hb")));
        }
        let counts: Vec<u64> = if queues.is_empty() && workers.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut conn)
                .await
                .map_err(Error::redis("reading stats"))?
        };
        let (queue_lengths, worker_counts) = counts.split_at(queues.len().min(counts.len()));
        let mut in_flight = 0;
        let mut live = 0;
        for pair in worker_counts.chunks(2) {
            in_flight += pair[0];
            if pair.get(1) == Some(&1) {
                live += 1;
            }
        }
        Ok(Stats {
            queues: queues
                .into_iter()
                .zip(queue_lengths.iter().copied())
                .collect(),
            in_flight,
            delayed,
            dead,
            workers: live,
            processed: processed.unwrap_or(0),
            failed: failed.unwrap_or(0),
            retried: retried.unwrap_or(0),
            schedules,
        })
    }
}

/// The first stats pipeline's reply: queue names, worker ids, delayed, dead, the three
/// counters and the number of schedules.
type StatsReply = (
    Vec<String>,
    Vec<String>,
    u64,
    u64,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    u64,
);

/// The redis crate builds its TLS configurations from rustls's process-wide crypto provider
/// and enables none itself; without one, the first `rediss://` connection would panic. An
/// application that installed its own provider keeps it.
fn use_ring_unless_a_tls_provider_is_chosen() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails only when another thread installed one in between, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    millis(ttl).max(1)
}

impl Broker for RedisBroker {
    fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    fn ping(&self) -> BrokerFuture<'_, ()> {
        async move {
            let mut conn = self.fast();
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map_err(Error::redis("pinging redis"))?;
            Ok(())
        }
        .boxed()
    }

    fn enqueue(&self, jobs: Vec<NewJob>) -> BrokerFuture<'_, Vec<bool>> {
        self.enqueue_impl(jobs).boxed()
    }

    fn fetch<'a>(
        &'a self,
        worker: &'a str,
        queue: &'a str,
        max: usize,
        block: Duration,
    ) -> BrokerFuture<'a, Vec<String>> {
        self.fetch_impl(worker, queue, max, block).boxed()
    }

    fn mark_started(&self, job_ids: Vec<String>, ttl: Duration) -> BrokerFuture<'_, ()> {
        async move {
            if job_ids.is_empty() {
                return Ok(());
            }
            let mut invocation = self.inner.scripts.mark_started.prepare_invoke();
            invocation.arg(&self.inner.prefix).arg(ttl_ms(ttl));
            for id in &job_ids {
                invocation.arg(id);
            }
            let mut conn = self.fast();
            invocation
                .invoke_async::<i64>(&mut conn)
                .await
                .map(drop)
                .map_err(Error::redis("recording started jobs"))
        }
        .boxed()
    }

    fn ack<'a>(&'a self, worker: &'a str, acks: &'a [Ack]) -> BrokerFuture<'a, ()> {
        self.ack_impl(worker, acks).boxed()
    }

    fn write_keys(&self, writes: Vec<KeyWrite>) -> BrokerFuture<'_, ()> {
        async move {
            if writes.is_empty() {
                return Ok(());
            }
            let mut pipe = redis::pipe();
            for write in &writes {
                let cmd = pipe.cmd("SET").arg(&write.key).arg(&write.value);
                if let Some(ttl) = write.ttl {
                    cmd.arg("PX").arg(ttl_ms(ttl));
                }
                cmd.ignore();
            }
            let mut conn = self.fast();
            pipe.query_async::<()>(&mut conn)
                .await
                .map_err(Error::redis("writing explicit keys"))
        }
        .boxed()
    }

    fn wait_result<'a>(
        &'a self,
        job_id: &'a str,
        timeout: Duration,
    ) -> BrokerFuture<'a, Option<String>> {
        self.wait_result_impl(job_id, timeout).boxed()
    }

    fn lookup<'a>(&'a self, job_id: &'a str) -> BrokerFuture<'a, ResultLookup> {
        async move {
            let mut conn = self.fast();
            let (record, state): (Option<String>, Option<String>) = redis::pipe()
                .cmd("GET")
                .arg(self.key(&format!("result:{job_id}")))
                .cmd("GET")
                .arg(self.key(&format!("state:{job_id}")))
                .query_async(&mut conn)
                .await
                .map_err(Error::redis("reading a job state"))?;
            Ok(ResultLookup { record, state })
        }
        .boxed()
    }

    fn forget<'a>(&'a self, job_id: &'a str) -> BrokerFuture<'a, ()> {
        async move {
            let mut conn = self.fast();
            redis::cmd("DEL")
                .arg(self.key(&format!("result:{job_id}")))
                .arg(self.key(&format!("state:{job_id}")))
                .arg(self.key(&format!("notify:{job_id}")))
                .query_async::<()>(&mut conn)
                .await
                .map_err(Error::redis("forgetting a result"))
        }
        .boxed()
    }

    fn get_key<'a>(&'a self, key: &'a str) -> BrokerFuture<'a, Option<String>> {
        async move {
            let mut conn = self.fast();
            redis::cmd("GET")
                .arg(key)
                .query_async(&mut conn)
                .await
                .map_err(Error::redis("reading a key"))
        }
        .boxed()
    }

    fn delete_key<'a>(&'a self, key: &'a str) -> BrokerFuture<'a, bool> {
        async move {
            let mut conn = self.fast();
            let n: u64 = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .map_err(Error::redis("deleting a key"))?;
            Ok(n > 0)
        }
        .boxed()
    }

    fn heartbeat<'a>(&'a self, worker: &'a str, ttl: Duration) -> BrokerFuture<'a, ()> {
        async move {
            let mut conn = self.fast();
            redis::pipe()
                .cmd("SET")
                .arg(self.key(&format!("worker:{worker}:hb")))
                .arg(now_ms())
                .arg("PX")
                .arg(ttl_ms(ttl))
                .ignore()
                .cmd("ZADD")
                .arg(self.key("workers"))
                .arg(now_ms())
                .arg(worker)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
                .map_err(Error::redis("sending a heartbeat"))
        }
        .boxed()
    }

    fn unregister<'a>(&'a self, worker: &'a str) -> BrokerFuture<'a, ()> {
        async move {
            let mut conn = self.fast();
            self.inner
                .scripts
                .unregister
                .key(self.key("workers"))
                .arg(&self.inner.prefix)
                .arg(worker)
                .arg(now_ms())
                .invoke_async::<i64>(&mut conn)
                .await
                .map_err(Error::redis("unregistering a worker"))?;
            Ok(())
        }
        .boxed()
    }

    fn reap(&self, visibility: Duration) -> BrokerFuture<'_, usize> {
        async move {
            let now = now_ms();
            let cutoff = now.saturating_sub(ttl_ms(visibility));
            let mut conn = self.fast();
            let moved: u64 = self
                .inner
                .scripts
                .reap
                .key(self.key("workers"))
                .arg(&self.inner.prefix)
                .arg(cutoff)
                .arg(now)
                .arg(REAP_WORKERS_PER_CALL)
                .invoke_async(&mut conn)
                .await
                .map_err(Error::redis("reaping dead workers"))?;
            Ok(moved as usize)
        }
        .boxed()
    }

    fn promote(&self, limit: usize) -> BrokerFuture<'_, usize> {
        async move {
            let mut conn = self.fast();
            let moved: u64 = self
                .inner
                .scripts
                .promote
                .key(self.key("delayed"))
                .arg(&self.inner.prefix)
                .arg(now_ms())
                .arg(limit.max(1))
                .invoke_async(&mut conn)
                .await
                .map_err(Error::redis("promoting delayed jobs"))?;
            Ok(moved as usize)
        }
        .boxed()
    }

    fn stats(&self) -> BrokerFuture<'_, Stats> {
        self.stats_impl().boxed()
    }

    fn dead_letters(&self, limit: usize) -> BrokerFuture<'_, Vec<String>> {
        async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let mut conn = self.fast();
            redis::cmd("LRANGE")
                .arg(self.key("dead"))
                .arg(0)
                .arg(limit.saturating_sub(1).min(i64::MAX as usize) as i64)
                .query_async(&mut conn)
                .await
                .map_err(Error::redis("listing dead letters"))
        }
        .boxed()
    }

    fn requeue_dead_letter(
        &self,
        record: String,
        queue: String,
        payload: String,
    ) -> BrokerFuture<'_, bool> {
        async move {
            let mut conn = self.fast();
            let moved: i64 = self
                .inner
                .scripts
                .requeue_dead
                .key(self.key("dead"))
                .key(self.key(&format!("queue:{queue}")))
                .key(self.key("queues"))
                .arg(record)
                .arg(payload)
                .arg(&queue)
                .invoke_async(&mut conn)
                .await
                .map_err(Error::redis("requeueing a dead letter"))?;
            Ok(moved == 1)
        }
        .boxed()
    }

    fn purge_dead(&self) -> BrokerFuture<'_, usize> {
        async move {
            let mut conn = self.fast();
            let (len,): (u64,) = redis::pipe()
                .atomic()
                .cmd("LLEN")
                .arg(self.key("dead"))
                .cmd("DEL")
                .arg(self.key("dead"))
                .ignore()
                .query_async(&mut conn)
                .await
                .map_err(Error::redis("purging dead letters"))?;
            Ok(len as usize)
        }
        .boxed()
    }
}
