//! [`RedisBroker`]: the options builder of a [`Broker`] on Redis (one server, a Cluster,
//! or a Sentinel-watched master; see [`super::redis_connection`]), and the Redis backend
//! it connects.
//!
//! One connection strategy: ordinary commands (and the schedule store) share one
//! multiplexed, self-reconnecting connection, so the hot path pays no checkout; blocking
//! commands (`BLMOVE` for fetches and result waits) each take a dedicated connection from
//! a deadpool pool, since a blocked command would stall every other command multiplexed
//! on its connection.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, RecycleResult};
use futures::FutureExt;
use redis::{RedisError, Script};

use super::lua::{self, ttl_ms};
use super::redis_connection::{
    Endpoint, RedisConnection, Timeouts, attached_replicas, wait_for_replica,
};
use super::wire::{self, Delivery, decode_delivery, decode_result, encode_message};
use super::{
    Ack, Backend, Broker, BrokerFuture, Deployment, NewJob, ResultLookup, Source,
    validate_namespace,
};
use crate::admin::{DeadLetter, Stats};
use crate::celery::{envelope, pidbox};
use crate::error::Error;
use crate::message::{JobId, JobMessage, JobState, ResultRecord, now_ms};
use crate::monitor::JobReport;
use crate::scheduler::{RedisScheduleStore, ScheduleStore};
use crate::task::KeyWrite;

/// The namespace of a builder that was not given one.
pub(crate) const DEFAULT_NAMESPACE: &str = "jobq";
/// Dedicated connections for blocking commands at most (default of
/// [`RedisBroker::pool_size`]): fetchers and waiting clients each hold one while they block.
const POOL_SIZE: usize = 64;
/// How long opening a connection may take (default of [`RedisBroker::connect_timeout`]).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a non-blocking command may take before its connection is considered dead
/// (default of [`RedisBroker::response_timeout`]; generous: a 100,000-job enqueue pipeline
/// is one command batch).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a blocking command waits for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(30);
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
/// The longest a Celery fetcher blocks on its queue's first list: Celery messages may also
/// arrive on the other priority lists, or come due in the delayed set, and are picked up
/// within this time while it waits.
const CELERY_WAKE: Duration = Duration::from_millis(100);
/// Dead workers handled per reap call.
const REAP_WORKERS_PER_CALL: usize = 100;
/// How long an enqueue or acknowledgement waits for a replica to confirm it on a Cluster
/// or Sentinel deployment (default of [`RedisBroker::wait_for_replica`]).
const REPLICA_WAIT: Duration = Duration::from_secs(1);
/// How long writes go on without waiting once the master was found to have no replica,
/// before it is asked again.
const NO_REPLICA_RECHECK: Duration = Duration::from_secs(1);

/// Options of a [`Broker`] on Redis; [`connect`](RedisBroker::connect) makes the broker.
///
/// ```no_run
/// # async fn demo() -> Result<(), jobq::Error> {
/// use std::time::Duration;
/// let broker = jobq::RedisBroker::builder("redis://127.0.0.1:6379/0")
///     .namespace("posts")
///     .pool_size(64)
///     .connect_timeout(Duration::from_secs(5))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
///
/// `redis://` and `rediss://` (TLS) URLs are accepted, with the password in the URL
/// (`redis://:secret@host:6379/0`), and so are
///
/// - `redis+cluster://host:port,host:port,...` (`rediss+cluster://`): a Redis Cluster,
///   through any of its nodes. The namespace is the keys' hash tag, so it lives in one
///   slot; namespaces spread over the masters.
/// - `redis+sentinel://host:port,host:port,.../<master-name>/<db>` (`rediss+sentinel://`):
///   the master the Sentinels name, looked up again after a failover. Credentials in the
///   URL are the master's.
///
/// On a Cluster or Sentinel deployment replication is asynchronous, so by default each
/// enqueue and acknowledgement also waits until one replica has it (`WAIT 1`, see
/// [`wait_for_replica`](RedisBroker::wait_for_replica)).
/// A `rediss://` server's certificate is checked against
/// the system's trust store; `SSL_CERT_FILE` (or `SSL_CERT_DIR`) points it at a private CA
/// instead. The redis crate takes its TLS primitives from rustls's process-wide crypto
/// provider: connecting to a `rediss://` URL installs rustls's *ring* provider only when
/// the process has none yet, so an application that installed its own keeps it.
///
/// Connecting never fails because the server is down: use [`Broker::ping`] to find out
/// whether it answers.
#[derive(Debug, Clone)]
pub struct RedisBroker {
    url: String,
    namespace: String,
    pool_size: usize,
    connect_timeout: Duration,
    response_timeout: Duration,
    replica_wait: Option<Duration>,
}

impl RedisBroker {
    /// Options for the Redis at `url`, in namespace `jobq` with a pool of
    /// 64 blocking connections, a 5 s connect timeout and a 30 s response timeout.
    pub fn builder(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            pool_size: POOL_SIZE,
            connect_timeout: CONNECT_TIMEOUT,
            response_timeout: RESPONSE_TIMEOUT,
            replica_wait: Some(REPLICA_WAIT),
        }
    }

    /// The namespace every key lives in (`{namespace}:…`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How many dedicated connections blocking commands (job fetches, result waits) may
    /// hold at once; further waiters queue for a free one.
    pub fn pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size;
        self
    }

    /// How long opening a connection may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a non-blocking command may take before its connection is considered dead
    /// and reopened. Blocking commands are bounded by their own timeout instead.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// On a Cluster or Sentinel deployment, how long each enqueue and acknowledgement
    /// waits for one replica to confirm it (`WAIT 1 <timeout>`; default 1 s), so that a
    /// failover cannot lose a job whose enqueue returned success, nor a stored result.
    /// When no replica confirms in time, the call fails with [`Error::NotReplicated`] (the
    /// write stays on the master; a worker retries its acknowledgement). `None` turns the
    /// wait off: faster, but a failover may then lose the last writes the old master
    /// acknowledged. A single server never waits.
    pub fn wait_for_replica(mut self, timeout: Option<Duration>) -> Self {
        self.replica_wait = timeout;
        self
    }

    /// The broker. Fails on an invalid URL, namespace or option, never because the server
    /// is down (connections open lazily and reconnect).
    pub async fn connect(self) -> Result<Broker, Error> {
        Ok(Broker::from_backend(RedisBackend::new(self)?))
    }
}

/// Opens dedicated connections for blocking commands. A pooled connection is handed out
/// again without the health-check round trip deadpool-redis's manager sends (that round
/// trip would double the latency of a blocked fetch or a result wait); a connection that
/// turns out dead is dropped and the command retried (see [`RedisBackend::blocking`]).
struct BlockingManager {
    endpoint: Arc<Endpoint>,
    connect_timeout: Duration,
}

impl managed::Manager for BlockingManager {
    type Type = RedisConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<RedisConnection, RedisError> {
        self.endpoint.dedicated(self.connect_timeout).await
    }

    async fn recycle(
        &self,
        _conn: &mut RedisConnection,
        _metrics: &Metrics,
    ) -> RecycleResult<RedisError> {
        Ok(())
    }
}

type BlockingPool = managed::Pool<BlockingManager>;

struct Scripts {
    fetch: Script,
    mark_started: Script,
    ack: Script,
    enqueue_unique: Script,
    promote: Script,
    reap: Script,
    unregister: Script,
    requeue_dead: Script,
    celery_started: Script,
}

/// The Redis backend behind a [`Broker`].
struct RedisBackend {
    endpoint: Arc<Endpoint>,
    blocking: BlockingPool,
    fast: RedisConnection,
    /// How long writes wait for a replica (`None`: they do not).
    replica_wait: Option<Duration>,
    /// Until when (ms since the epoch) writes skip the wait because the master has no
    /// replica attached; 0 when it has one.
    master_alone_until_ms: AtomicU64,
    namespace: String,
    prefix: String,
    scripts: Scripts,
    schedules: Arc<RedisScheduleStore>,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("deployment", &self.endpoint.deployment())
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// The redis crate builds its TLS configurations from rustls's process-wide crypto provider
/// and enables none itself; without one, the first `rediss://` connection would panic. An
/// application that installed its own provider keeps it.
fn use_ring_unless_a_tls_provider_is_chosen() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails only when another thread installed one in between, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl RedisBackend {
    fn new(options: RedisBroker) -> Result<Self, Error> {
        let RedisBroker {
            url,
            namespace,
            pool_size,
            connect_timeout,
            response_timeout,
            replica_wait,
        } = options;
        validate_namespace(&namespace)?;
        let invalid_option = |option: &'static str, reason: &str| Error::InvalidOption {
            option,
            reason: reason.to_owned(),
        };
        if pool_size == 0 {
            return Err(invalid_option("pool_size", "must be at least 1"));
        }
        if connect_timeout.is_zero() {
            return Err(invalid_option("connect_timeout", "must not be zero"));
        }
        if response_timeout.is_zero() {
            return Err(invalid_option("response_timeout", "must not be zero"));
        }
        if replica_wait.is_some_and(|t| t.is_zero()) {
            return Err(invalid_option(
                "wait_for_replica",
                "must not be zero (use None to turn the wait off)",
            ));
        }
        if url.starts_with("rediss") {
            use_ring_unless_a_tls_provider_is_chosen();
        }
        let timeouts = Timeouts {
            connect: connect_timeout,
            response: response_timeout,
        };
        let endpoint = Arc::new(Endpoint::new(&url, timeouts)?);
        let blocking = BlockingPool::builder(BlockingManager {
            endpoint: Arc::clone(&endpoint),
            connect_timeout,
        })
        .max_size(pool_size)
        .runtime(deadpool::Runtime::Tokio1)
        .create_timeout(Some(connect_timeout))
        .wait_timeout(Some(POOL_WAIT))
        .build()
        .map_err(|e| Error::InvalidUrl(format!("{url:?}: cannot build a pool: {e}")))?;
        // Lazy: connecting succeeds while the server is down; commands then fail (and
        // reconnect) until it answers.
        let fast = endpoint.shared(timeouts)?;
        let replica_wait = replica_wait.filter(|_| endpoint.fails_over());
        let prefix = format!("{{{namespace}}}:");
        let schedules = Arc::new(RedisScheduleStore::new(fast.clone(), &prefix));
        Ok(Self {
            endpoint,
            blocking,
            fast,
            replica_wait,
            master_alone_until_ms: AtomicU64::new(0),
            namespace,
            prefix,
            scripts: Scripts {
                fetch: Script::new(lua::FETCH),
                mark_started: Script::new(lua::MARK_STARTED),
                ack: Script::new(&lua::ack()),
                enqueue_unique: Script::new(lua::ENQUEUE_UNIQUE),
                promote: Script::new(&lua::promote()),
                reap: Script::new(&lua::reap()),
                unregister: Script::new(&lua::unregister()),
                requeue_dead: Script::new(lua::REQUEUE_DEAD),
                celery_started: Script::new(lua::CELERY_STARTED),
            },
            schedules,
        })
    }

    /// The full key of `suffix` in this namespace: `{ns}:<suffix>`.
    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    fn fast(&self) -> RedisConnection {
        self.fast.clone()
    }

    /// On a deployment that fails over, waits until a replica has what `conn` wrote so far
    /// (see [`RedisBroker::wait_for_replica`]).
    ///
    /// A master with no replica attached (the one just promoted, before the old master
    /// rejoins) has nothing to wait for, and nothing could take over from it: its writes
    /// are accepted as they are, and it is asked again every [`NO_REPLICA_RECHECK`] rather
    /// than paying the wait's timeout on every write.
    async fn replicated(
        &self,
        conn: &mut RedisConnection,
        context: &'static str,
    ) -> Result<(), Error> {
        let Some(timeout) = self.replica_wait else {
            return Ok(());
        };
        let routing_key = self.key("queues");
        let alone_until = self.master_alone_until_ms.load(Ordering::Relaxed);
        if alone_until != 0 {
            if now_ms() < alone_until {
                return Ok(());
            }
            if !self.master_still_alone(conn, &routing_key, context).await? {
                self.master_alone_until_ms.store(0, Ordering::Relaxed);
                tracing::info!("a replica is attached again: writes wait for it");
            }
        }
        let replicas = wait_for_replica(conn, &routing_key, timeout)
            .await
            .map_err(Error::redis(context))?;
        if replicas > 0 || self.master_still_alone(conn, &routing_key, context).await? {
            return Ok(());
        }
        Err(Error::NotReplicated {
            context,
            waited: timeout,
        })
    }

    /// Whether the master has no replica attached; if so, writes skip the wait for the
    /// next [`NO_REPLICA_RECHECK`].
    async fn master_still_alone(
        &self,
        conn: &mut RedisConnection,
        routing_key: &str,
        context: &'static str,
    ) -> Result<bool, Error> {
        let replicas = attached_replicas(conn, routing_key)
            .await
            .map_err(Error::redis(context))?;
        if replicas > 0 {
            return Ok(false);
        }
        let until = now_ms() + ttl_ms(NO_REPLICA_RECHECK);
        if self.master_alone_until_ms.swap(until, Ordering::Relaxed) == 0 {
            tracing::warn!(
                namespace = %self.namespace,
                "the master has no replica attached: writes are not replicated until one is"
            );
        }
        Ok(true)
    }

    /// Runs a blocking command on a dedicated pooled connection, bounded by `block` plus a
    /// grace period. A connection that fails or does not answer is dropped from the pool;
    /// when it had been idle in the pool (and may have died there, e.g. the server
    /// restarted) the command is tried again on another one.
    async fn blocking<T: redis::FromRedisValue>(
        &self,
        context: &'static str,
        cmd: redis::Cmd,
        block: Duration,
    ) -> Result<T, Error> {
        let deadline = block + BLOCK_GRACE;
        loop {
            let mut conn = self.blocking.get().await.map_err(|e| Error::Pool {
                context,
                message: e.to_string(),
            })?;
            let reused = Object::metrics(&conn).recycled.is_some();
            match tokio::time::timeout(deadline, cmd.query_async::<T>(&mut *conn)).await {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(e)) if reused && connection_is_done(&e) => {
                    self.endpoint.note_error(&e);
                    drop(Object::take(conn));
                }
                Ok(Err(e)) => {
                    if connection_is_done(&e) {
                        self.endpoint.note_error(&e);
                        drop(Object::take(conn));
                    }
                    return Err(Error::Redis { context, source: e });
                }
                Err(_) => {
                    // The command may still be pending on it: never hand it out again.
                    drop(Object::take(conn));
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
        let encoded: Vec<String> = jobs.iter().map(|j| encode_message(&j.message)).collect();
        let mut plain_now: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut plain_delayed: Vec<(u64, &str)> = Vec::new();
        let mut unique = Vec::new();
        for (i, (job, payload)) in jobs.iter().zip(&encoded).enumerate() {
            match (&job.unique, job.message.eta_ms) {
                (Some(_), _) => unique.push(i),
                (None, None) => plain_now
                    .entry(&job.message.queue)
                    .or_default()
                    .push(payload),
                (None, Some(due)) => plain_delayed.push((due, payload)),
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
            let target = match job.message.eta_ms {
                None => self.key(&format!("queue:{}", job.message.queue)),
                Some(_) => self.key("delayed"),
            };
            let claimed: i64 = self
                .scripts
                .enqueue_unique
                .key(self.key(&format!("unique:{claim}")))
                .key(target)
                .key(self.key("queues"))
                .arg(job.message.id.as_str())
                .arg(ttl_ms(*ttl))
                .arg(&encoded[i])
                .arg(
                    job.message
                        .eta_ms
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                )
                .arg(&job.message.queue)
                .invoke_async(&mut conn)
                .await
                .map_err(Error::redis("enqueueing a unique job"))?;
            outcome[i] = claimed == 1;
        }
        self.replicated(&mut conn, "enqueueing jobs").await?;
        Ok(outcome)
    }

    async fn fetch_impl(
        &self,
        worker: &str,
        source: &Source,
        max: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, Error> {
        let own_list = self.key(&format!("queue:{}", source.name()));
        let processing = self.key(&format!("processing:{worker}"));
        // The lists to drain in order, and the one a blocked fetch waits on.
        let (sources, wait_on, block) = match source {
            Source::Queue(_) => (vec![own_list.clone()], own_list, block),
            Source::Celery(queue) => {
                let mut lists = vec![own_list];
                lists.extend(envelope::priority_lists(queue));
                let bucket_zero = lists[1].clone();
                (lists, bucket_zero, block.min(CELERY_WAKE))
            }
        };
        // A lone job is moved by the blocking command alone: one round trip, not two.
        if max > 1 || sources.len() > 1 {
            let mut conn = self.fast();
            let mut invocation = self.scripts.fetch.prepare_invoke();
            for list in &sources {
                invocation.key(list);
            }
            let batch: Vec<String> = invocation
                .key(&processing)
                .arg(max)
                .invoke_async(&mut conn)
                .await
                .map_err(Error::redis("fetching jobs"))?;
            if !batch.is_empty() {
                return Ok(batch.into_iter().map(decode_delivery).collect());
            }
        }
        if block.is_zero() || max == 0 {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("BLMOVE");
        cmd.arg(&wait_on)
            .arg(&processing)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(block.as_secs_f64().max(0.001));
        let one: Option<String> = self.blocking("waiting for a job", cmd, block).await?;
        Ok(one.into_iter().map(decode_delivery).collect())
    }

    /// One subscription to the remote-control channel, answering requests until the
    /// connection ends.
    async fn control_session(&self, hostname: &str, task_names: &[String]) -> Result<(), Error> {
        use futures::StreamExt;
        let Some((client, db)) = self
            .endpoint
            .single_server()
            .await
            .map_err(Error::redis("subscribing to Celery remote control"))?
        else {
            return Err(celery_needs_one_server());
        };
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .map_err(Error::redis("subscribing to Celery remote control"))?;
        pubsub
            .subscribe(pidbox::channel(db))
            .await
            .map_err(Error::redis("subscribing to Celery remote control"))?;
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            let now = now_ms() as f64 / 1000.0;
            let Some(request) = pidbox::parse_request(&payload, hostname, now) else {
                continue;
            };
            let mut conn = self.fast();
            let bindings: Vec<String> = redis::cmd("SMEMBERS")
                .arg(pidbox::REPLY_BINDINGS)
                .query_async(&mut conn)
                .await
                .map_err(Error::redis("answering Celery remote control"))?;
            let Some(queue) = pidbox::reply_queue(&bindings, &request.reply_routing_key) else {
                continue;
            };
            let answer = pidbox::answer(&request.method, task_names);
            redis::cmd("LPUSH")
                .arg(queue)
                .arg(pidbox::reply_envelope(hostname, &request, answer))
                .query_async::<()>(&mut conn)
                .await
                .map_err(Error::redis("answering Celery remote control"))?;
        }
        Ok(())
    }

    async fn ack_impl(
        &self,
        worker: &str,
        acks: &[Ack],
        reports: &[JobReport],
        events: &[String],
    ) -> Result<(), Error> {
        if acks.is_empty() && reports.is_empty() {
            return Ok(());
        }
        let mut invocation = self.scripts.ack.prepare_invoke();
        invocation.key(self.key(&format!("processing:{worker}")));
        lua::ack_args(
            &mut invocation,
            &self.prefix,
            INLINE_RECORD_LIMIT,
            acks,
            reports,
            events,
        );
        let mut conn = self.fast();
        invocation
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(Error::redis("acknowledging jobs"))?;
        if !acks.is_empty() {
            self.replicated(&mut conn, "acknowledging jobs").await?;
        }
        Ok(())
    }

    async fn wait_result_impl(
        &self,
        job_id: &JobId,
        timeout: Duration,
    ) -> Result<Option<ResultRecord>, Error> {
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
                Some(record) if record != NOTIFY_MARKER => return decode_result(&record).map(Some),
                Some(_) => {}
                // Timed out: the result key may still have appeared since (e.g. it was
                // stored by a worker of an older version that notified differently).
                None => {}
            }
        }
        let mut conn = self.fast();
        let record: Option<String> = redis::cmd("GET")
            .arg(self.key(&format!("result:{job_id}")))
            .query_async(&mut conn)
            .await
            .map_err(Error::redis("reading a result"))?;
        record.as_deref().map(decode_result).transpose()
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
                .arg(self.schedules.definitions_key())
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

impl Backend for RedisBackend {
    fn deployment(&self) -> Deployment {
        self.endpoint.deployment()
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn ping(&self) -> BrokerFuture<'_, ()> {
        async move {
            let mut conn = self.fast();
            // A read of a namespace key rather than PING: on a Cluster, it is the master of
            // the namespace's slot that must answer.
            redis::cmd("EXISTS")
                .arg(self.key("queues"))
                .query_async::<u64>(&mut conn)
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
        source: &'a Source,
        max: usize,
        block: Duration,
    ) -> BrokerFuture<'a, Vec<Delivery>> {
        self.fetch_impl(worker, source, max, block).boxed()
    }

    fn declare_celery_queues<'a>(&'a self, queues: &'a [String]) -> BrokerFuture<'a, ()> {
        async move {
            if !self.endpoint.deployment().has_single_keyspace() {
                return Err(celery_needs_one_server());
            }
            let mut pipe = redis::pipe();
            for queue in queues {
                let member = celery_binding(queue);
                for set in ["_kombu.binding.", "_kombu.binding_permanent."] {
                    pipe.cmd("SADD")
                        .arg(format!("{set}{queue}"))
                        .arg(&member)
                        .ignore();
                }
            }
            pipe.query_async::<()>(&mut self.fast())
                .await
                .map_err(Error::redis("declaring Celery queues"))
        }
        .boxed()
    }

    fn celery_started<'a>(
        &'a self,
        key: &'a str,
        record: &'a str,
        ttl: Duration,
    ) -> BrokerFuture<'a, ()> {
        async move {
            self.scripts
                .celery_started
                .key(key)
                .arg(record)
                .arg(ttl.as_secs().max(1))
                .invoke_async::<i64>(&mut self.fast())
                .await
                .map(drop)
                .map_err(Error::redis("recording a started Celery task"))
        }
        .boxed()
    }

    fn serve_celery_control<'a>(
        &'a self,
        hostname: &'a str,
        task_names: &'a [String],
    ) -> BrokerFuture<'a, ()> {
        async move {
            let mut failures = 0u32;
            loop {
                if let Err(e) = self.control_session(hostname, task_names).await {
                    failures = failures.saturating_add(1);
                    tracing::debug!(error = %e, "Celery remote control: resubscribing");
                }
                let delay = Duration::from_millis(100u64 << failures.min(6));
                tokio::time::sleep(delay).await;
            }
        }
        .boxed()
    }

    fn mark_started(&self, job_ids: Vec<JobId>, ttl: Duration) -> BrokerFuture<'_, ()> {
        async move {
            if job_ids.is_empty() {
                return Ok(());
            }
            let mut invocation = self.scripts.mark_started.prepare_invoke();
            invocation
                .key(self.key("queues"))
                .arg(&self.prefix)
                .arg(ttl_ms(ttl))
                .arg(JobState::Started.as_str());
            for id in &job_ids {
                invocation.arg(id.as_str());
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

    fn ack<'a>(
        &'a self,
        worker: &'a str,
        acks: &'a [Ack],
        reports: &'a [JobReport],
        events: &'a [String],
    ) -> BrokerFuture<'a, ()> {
        self.ack_impl(worker, acks, reports, events).boxed()
    }

    fn write_keys<'a>(&'a self, writes: &'a [KeyWrite]) -> BrokerFuture<'a, ()> {
        async move {
            if writes.is_empty() {
                return Ok(());
            }
            let set = |write: &KeyWrite| {
                let mut cmd = redis::cmd("SET");
                cmd.arg(&write.key).arg(&write.value);
                if let Some(ttl) = write.ttl {
                    cmd.arg("PX").arg(ttl_ms(ttl));
                }
                cmd
            };
            let failed = Error::redis("writing explicit keys");
            if self.endpoint.deployment().has_single_keyspace() {
                let mut pipe = redis::pipe();
                for write in writes {
                    pipe.add_command(set(write)).ignore();
                }
                return pipe
                    .query_async::<()>(&mut self.fast())
                    .await
                    .map_err(failed);
            }
            // Explicit keys hash to any slot: one command each, sent together.
            let sends = writes
                .iter()
                .map(|write| async move { set(write).query_async::<()>(&mut self.fast()).await });
            futures::future::try_join_all(sends)
                .await
                .map(drop)
                .map_err(failed)
        }
        .boxed()
    }

    fn wait_result<'a>(
        &'a self,
        job_id: &'a JobId,
        timeout: Duration,
    ) -> BrokerFuture<'a, Option<ResultRecord>> {
        self.wait_result_impl(job_id, timeout).boxed()
    }

    fn lookup<'a>(&'a self, job_id: &'a JobId) -> BrokerFuture<'a, ResultLookup> {
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
            Ok(ResultLookup {
                record: record.as_deref().map(decode_result).transpose()?,
                state: state.as_deref().and_then(JobState::from_stored),
            })
        }
        .boxed()
    }

    fn forget<'a>(&'a self, job_id: &'a JobId) -> BrokerFuture<'a, ()> {
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

    fn heartbeat<'a>(
        &'a self,
        worker: &'a str,
        info: &'a str,
        ttl: Duration,
    ) -> BrokerFuture<'a, ()> {
        async move {
            let mut conn = self.fast();
            redis::pipe()
                .cmd("SET")
                .arg(self.key(&format!("worker:{worker}:hb")))
                .arg(info)
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

    fn in_flight<'a>(&'a self, worker: &'a str) -> BrokerFuture<'a, Vec<String>> {
        async move {
            redis::cmd("LRANGE")
                .arg(self.key(&format!("processing:{worker}")))
                .arg(0)
                .arg(-1)
                .query_async(&mut self.fast())
                .await
                .map_err(Error::redis("listing a worker's jobs in flight"))
        }
        .boxed()
    }

    fn unregister<'a>(&'a self, worker: &'a str) -> BrokerFuture<'a, ()> {
        async move {
            let mut conn = self.fast();
            self.scripts
                .unregister
                .key(self.key("workers"))
                .arg(&self.prefix)
                .arg(worker)
                .arg(now_ms())
                .arg(&lua::in_flight_reason()[..])
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
                .scripts
                .reap
                .key(self.key("workers"))
                .arg(&self.prefix)
                .arg(cutoff)
                .arg(now)
                .arg(REAP_WORKERS_PER_CALL)
                .arg(&lua::in_flight_reason()[..])
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
                .scripts
                .promote
                .key(self.key("delayed"))
                .arg(&self.prefix)
                .arg(now_ms())
                .arg(limit.max(1))
                .arg(&lua::delayed_reason()[..])
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

    fn monitor_connection(&self) -> Option<(RedisConnection, String)> {
        Some((self.fast(), self.prefix.clone()))
    }

    fn dead_letters(&self, limit: usize) -> BrokerFuture<'_, Vec<(String, DeadLetter)>> {
        async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let mut conn = self.fast();
            let stored: Vec<String> = redis::cmd("LRANGE")
                .arg(self.key("dead"))
                .arg(0)
                .arg(limit.saturating_sub(1).min(i64::MAX as usize) as i64)
                .query_async(&mut conn)
                .await
                .map_err(Error::redis("listing dead letters"))?;
            wire::decode_dead_letters(stored)
        }
        .boxed()
    }

    fn requeue_dead_letter(&self, stored: String, message: JobMessage) -> BrokerFuture<'_, bool> {
        async move {
            let mut conn = self.fast();
            let moved: i64 = self
                .scripts
                .requeue_dead
                .key(self.key("dead"))
                .key(self.key(&format!("queue:{}", message.queue)))
                .key(self.key("queues"))
                .arg(stored)
                .arg(encode_message(&message))
                .arg(&message.queue)
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

    fn schedules(&self) -> Arc<dyn ScheduleStore> {
        Arc::clone(&self.schedules) as Arc<dyn ScheduleStore>
    }

    #[cfg(feature = "test-support")]
    fn push_raw<'a>(&'a self, queue: &'a str, stored: String) -> BrokerFuture<'a, ()> {
        async move {
            let mut conn = self.fast();
            redis::pipe()
                .cmd("LPUSH")
                .arg(self.key(&format!("queue:{queue}")))
                .arg(stored)
                .ignore()
                .cmd("SADD")
                .arg(self.key("queues"))
                .arg(queue)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
                .map_err(Error::redis("pushing a raw message"))
        }
        .boxed()
    }
}

/// Whether `error` means the connection it came over is unusable: broken, or (after a
/// failover) to a server that is no longer the master.
fn connection_is_done(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
}

/// Celery's keys (`_kombu.*`, `celery-task-meta-*`, the remote-control channel) do not
/// carry the namespace's hash tag, so they would span a Cluster's slots.
fn celery_needs_one_server() -> Error {
    Error::Config(
        "Celery interop needs one Redis keyspace (a single server or a Sentinel master): \
         Celery's keys do not share the namespace's hash tag, so on a Cluster they would \
         span slots"
            .to_owned(),
    )
}

/// The member kombu adds to `_kombu.binding.<queue>` for a queue bound to the exchange of
/// its own name: `routing_key \x06\x16 pattern \x06\x16 queue`.
fn celery_binding(queue: &str) -> String {
    let sep = envelope::PRIORITY_SEP;
    format!("{queue}{sep}{sep}{queue}")
}
