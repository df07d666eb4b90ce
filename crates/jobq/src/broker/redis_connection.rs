//! Connections to the deployment a Redis URL names ([`Target`]): one server, a Cluster, or
//! the master Sentinel points at, followed across failovers.
//!
//! Everything above this module talks to a [`RedisConnection`], which is a redis-crate
//! connection like any other, whatever the deployment. A namespace's keys share one hash
//! tag, so on a Cluster its commands, pipelines and scripts all go to the master of one
//! slot; the cluster connection routes them there and follows `MOVED` after a failover.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{AsyncConnectionConfig, Cmd, ErrorKind, RedisError, RedisFuture, RedisResult, Value};

use super::Deployment;
use super::redis_url::Target;
use crate::error::Error;

/// Retries of a cluster command whose node failed, before its error is returned: with
/// waits growing from 100 ms to 2 s, about 5 s in all, enough to ride out a replica's
/// promotion after a short node timeout without hanging callers for long.
const CLUSTER_RETRIES: u32 = 6;
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 100;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 2000;

/// Timeouts every connection of a backend is opened with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// How long opening a connection may take.
    pub(crate) connect: Duration,
    /// How long a non-blocking command may take.
    pub(crate) response: Duration,
}

/// How a backend reaches its deployment: it opens the shared connection for ordinary
/// commands and the dedicated ones blocking commands need.
// One per broker, built once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Endpoint {
    Standalone(redis::Client),
    Cluster(ClusterClients),
    Sentinel(Arc<SentinelMaster>),
}

/// The two clients of a Cluster endpoint.
pub(crate) struct ClusterClients {
    /// With response timeouts, for the shared connection.
    shared: ClusterClient,
    /// Without: blocking commands are bounded by their caller.
    blocking: ClusterClient,
}

impl Endpoint {
    /// The endpoint of `url`. Fails on a malformed URL, never because a server is down.
    pub(crate) fn new(url: &str, timeouts: Timeouts) -> Result<Endpoint, Error> {
        let invalid = |e: RedisError| Error::InvalidUrl(format!("{url:?}: {e}"));
        match Target::parse(url)? {
            Target::Standalone(url) => Ok(Endpoint::Standalone(
                redis::Client::open(url.as_str()).map_err(invalid)?,
            )),
            Target::Cluster { nodes } => {
                let client = |response: Option<Duration>| {
                    let mut builder = ClusterClient::builder(nodes.clone())
                        .connection_timeout(timeouts.connect)
                        .retries(CLUSTER_RETRIES)
                        .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
                        .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS)
                        .retry_wait_formula(CLUSTER_MIN_RETRY_WAIT_MS, 2);
                    if let Some(response) = response {
                        builder = builder
                            .response_timeout(response)
                            .overall_response_timeout(Some(response));
                    }
                    builder.build().map_err(invalid)
                };
                Ok(Endpoint::Cluster(ClusterClients {
                    shared: client(Some(timeouts.response))?,
                    blocking: client(None)?,
                }))
            }
            Target::Sentinel {
                sentinels,
                master,
                master_settings,
            } => {
                let settings = redis::Client::open(master_settings.as_str()).map_err(invalid)?;
                let info = settings.get_connection_info();
                let mut node = SentinelNodeConnectionInfo::default()
                    .set_redis_connection_info(info.redis_settings().clone());
                if master_settings.starts_with("rediss:") {
                    node = node.set_tls_mode(redis::TlsMode::Secure);
                }
                let client = SentinelClient::build(
                    sentinels.clone(),
                    master.clone(),
                    Some(node),
                    SentinelServerType::Master,
                )
                .map_err(invalid)?;
                Ok(Endpoint::Sentinel(Arc::new(SentinelMaster {
                    sentinel: tokio::sync::Mutex::new(client),
                    current: std::sync::Mutex::new(None),
                    generation: AtomicU64::new(0),
                    name: master,
                    sentinels: sentinels.join(","),
                    db: info.redis_settings().db(),
                    config: shared_config(timeouts),
                })))
            }
        }
    }

    /// Which deployment this is.
    pub(crate) fn deployment(&self) -> Deployment {
        match self {
            Endpoint::Standalone(_) => Deployment::Redis,
            Endpoint::Cluster(_) => Deployment::RedisCluster,
            Endpoint::Sentinel(_) => Deployment::RedisSentinel,
        }
    }

    /// Whether writes are replicated asynchronously to replicas that can take over (Cluster
    /// and Sentinel), so acknowledged writes wait for one by default.
    pub(crate) fn fails_over(&self) -> bool {
        !matches!(self, Endpoint::Standalone(_))
    }

    /// The multiplexed, self-reconnecting connection for ordinary commands. Opens lazily,
    /// so it never fails because a server is down.
    pub(crate) fn shared(&self, timeouts: Timeouts) -> Result<RedisConnection, Error> {
        Ok(RedisConnection(match self {
            Endpoint::Standalone(client) => Inner::Manager(
                ConnectionManager::new_lazy_with_config(client.clone(), shared_config(timeouts))
                    .map_err(|e| Error::InvalidUrl(e.to_string()))?,
            ),
            Endpoint::Cluster(clients) => Inner::Cluster(
                clients
                    .shared
                    .get_pending_async_connection_with_config(ClusterConfig::new()),
            ),
            Endpoint::Sentinel(master) => Inner::Sentinel(Arc::clone(master)),
        }))
    }

    /// A connection of its own, for a blocking command (which would stall every command
    /// multiplexed behind it). Its commands have no response timeout: the caller bounds
    /// them.
    pub(crate) async fn dedicated(
        &self,
        connect_timeout: Duration,
    ) -> RedisResult<RedisConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(None);
        let inner = match self {
            Endpoint::Standalone(client) => Inner::Multiplexed(
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?,
            ),
            Endpoint::Cluster(clients) => {
                Inner::Cluster(clients.blocking.get_async_connection().await?)
            }
            Endpoint::Sentinel(master) => {
                let (_, client, _) = master.current().await?;
                Inner::Multiplexed(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                )
            }
        };
        Ok(RedisConnection(inner))
    }

    /// A client of the one server that holds everything (for pub/sub, and the keys of
    /// other protocols that do not share the namespace's hash tag), with its database.
    /// `None` on a Cluster, where such keys would span slots.
    pub(crate) async fn single_server(&self) -> RedisResult<Option<(redis::Client, i64)>> {
        match self {
            Endpoint::Standalone(client) => {
                let db = client.get_connection_info().redis_settings().db();
                Ok(Some((client.clone(), db)))
            }
            Endpoint::Cluster(_) => Ok(None),
            Endpoint::Sentinel(master) => {
                let (_, client, _) = master.current().await?;
                Ok(Some((client, master.db)))
            }
        }
    }

    /// Tells a Sentinel endpoint that `error` happened on a dedicated connection, so the
    /// master is looked up again when the error means it moved or went away.
    pub(crate) fn note_error(&self, error: &RedisError) {
        if let Endpoint::Sentinel(master) = self {
            master.note(None, error);
        }
    }
}

fn shared_config(timeouts: Timeouts) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeouts.connect))
        .set_response_timeout(Some(timeouts.response))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
}

/// A connection to whatever deployment the URL named; cheap to clone when shared.
#[derive(Clone)]
pub(crate) struct RedisConnection(Inner);

#[derive(Clone)]
enum Inner {
    Manager(ConnectionManager),
    Multiplexed(MultiplexedConnection),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelMaster>),
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Manager(conn) => conn.req_packed_command(cmd),
            Inner::Multiplexed(conn) => conn.req_packed_command(cmd),
            Inner::Cluster(conn) => conn.req_packed_command(cmd),
            Inner::Sentinel(master) => async move {
                let (generation, _, mut conn) = master.current().await?;
                let reply = conn.req_packed_command(cmd).await;
                if let Err(e) = &reply {
                    master.note(Some(generation), e);
                }
                reply
            }
            .boxed(),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Manager(conn) => conn.req_packed_commands(pipeline, offset, count),
            Inner::Multiplexed(conn) => conn.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
            Inner::Sentinel(master) => async move {
                let (generation, _, mut conn) = master.current().await?;
                let reply = conn.req_packed_commands(pipeline, offset, count).await;
                if let Err(e) = &reply {
                    master.note(Some(generation), e);
                }
                reply
            }
            .boxed(),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Manager(conn) => conn.get_db(),
            Inner::Multiplexed(conn) => conn.get_db(),
            Inner::Cluster(conn) => conn.get_db(),
            Inner::Sentinel(master) => master.db,
        }
    }
}

/// The master a set of Sentinels agrees on, and a connection to it, looked up again when a
/// command finds it gone or demoted.
pub(crate) struct SentinelMaster {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    current: std::sync::Mutex<Option<Current>>,
    /// Counts lookups, so an error seen on an old master's connection does not discard a
    /// newer one.
    generation: AtomicU64,
    name: String,
    /// For error messages.
    sentinels: String,
    db: i64,
    config: ConnectionManagerConfig,
}

#[derive(Clone)]
struct Current {
    generation: u64,
    client: redis::Client,
    connection: ConnectionManager,
}

impl SentinelMaster {
    /// The master as last looked up, or looked up now.
    async fn current(&self) -> RedisResult<(u64, redis::Client, ConnectionManager)> {
        if let Some(current) = self.cached() {
            return Ok((current.generation, current.client, current.connection));
        }
        let mut sentinel = self.sentinel.lock().await;
        // Another caller may have looked it up while this one waited for the lock.
        if let Some(current) = self.cached() {
            return Ok((current.generation, current.client, current.connection));
        }
        let client = sentinel
            .async_get_client()
            .await
            .map_err(|e| self.lookup_error(e))?;
        let connection =
            ConnectionManager::new_lazy_with_config(client.clone(), self.config.clone())?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let current = Current {
            generation,
            client: client.clone(),
            connection: connection.clone(),
        };
        *self.lock_current() = Some(current);
        tracing::debug!(master = %self.name, generation, "found the Sentinel master");
        Ok((generation, client, connection))
    }

    fn cached(&self) -> Option<Current> {
        self.lock_current().clone()
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        // The guarded value is replaced whole, so a panic elsewhere cannot leave it torn.
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets the master (of `generation`, or whichever is current) when `error` says it
    /// is unreachable or no longer a master, so the next command asks the Sentinels again.
    fn note(&self, generation: Option<u64>, error: &RedisError) {
        let moved = error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_timeout()
            || matches!(
                error.kind(),
                ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
                    | ErrorKind::Server(redis::ServerErrorKind::MasterDown)
            );
        if !moved {
            return;
        }
        let mut current = self.lock_current();
        if current
            .as_ref()
            .is_some_and(|c| generation.is_none_or(|g| g == c.generation))
        {
            *current = None;
        }
    }

    fn lookup_error(&self, error: RedisError) -> RedisError {
        if error.kind() == ErrorKind::MasterNameNotFoundBySentinel {
            RedisError::from((
                ErrorKind::MasterNameNotFoundBySentinel,
                "unknown Sentinel master",
                format!(
                    "no Sentinel at {} names a reachable master called {:?}: either they do \
                     not know that name (check it in the URL, \
                     redis+sentinel://host:port,.../<master-name>/<db>) or a failover is \
                     under way",
                    self.sentinels, self.name
                ),
            ))
        } else {
            error
        }
    }
}

/// Sends `WAIT 1 <timeout>` to the server holding `routing_key` over `conn`, after what
/// `conn` wrote before; returns how many replicas acknowledged those writes.
///
/// `WAIT` names no key, so a cluster connection would send it anywhere; paired in one
/// pipeline with a read of `routing_key` it goes to that key's master, over the same
/// multiplexed node connection the writes used.
pub(crate) async fn wait_for_replica(
    conn: &mut RedisConnection,
    routing_key: &str,
    timeout: Duration,
) -> RedisResult<u64> {
    let (_, replicas): (u64, u64) = redis::pipe()
        .cmd("EXISTS")
        .arg(routing_key)
        .cmd("WAIT")
        .arg(1)
        .arg(
            u64::try_from(timeout.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        )
        .query_async(conn)
        .await?;
    Ok(replicas)
}

/// How many replicas the server holding `routing_key` has attached (its `ROLE` reply),
/// asked over `conn` (routed like [`wait_for_replica`]); 0 when it is not a master.
pub(crate) async fn attached_replicas(
    conn: &mut RedisConnection,
    routing_key: &str,
) -> RedisResult<usize> {
    let (_, role): (u64, Value) = redis::pipe()
        .cmd("EXISTS")
        .arg(routing_key)
        .cmd("ROLE")
        .query_async(conn)
        .await?;
    // A master answers `["master", offset, [[host, port, offset], ...]]`.
    Ok(match role {
        Value::Array(parts) => match parts.get(2) {
            Some(Value::Array(replicas)) => replicas.len(),
            _ => 0,
        },
        _ => 0,
    })
}
