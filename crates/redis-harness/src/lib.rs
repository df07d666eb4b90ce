//! Throwaway Redis servers for tests and `cargo xtask test`.
//!
//! Tests never use a Redis the developer already runs. [`TestRedis::shared`] gives every
//! test in a process the same Redis, obtained in this order:
//!
//! 1. `REDIS_URL`, when set (this is how `cargo xtask test` hands its Redis to the tests);
//! 2. a testcontainers `redis:7` container, when a Docker engine answers;
//! 3. a local `redis-server` (from `PATH`, or `REDIS_SERVER`) on a free loopback port, with
//!    no persistence and its own temporary directory;
//!
//! and otherwise fails with a [`HarnessError::NoRedis`] that says how to get one. Tests
//! sharing it keep apart through [`unique_namespace`].
//!
//! [`OwnedRedis`] is a private local server for fault tests, which may SIGKILL and restart it;
//! [`OwnedRedis::start_durable`] makes one that keeps its data across a SIGKILL, and
//! [`OwnedRedis::start_secured`] one that requires a password and also speaks TLS.
//!
//! For tests of cluster and Sentinel support and their failovers, [`RedisCluster`] starts a
//! local Redis Cluster of three masters with one replica each, and [`RedisSentinel`] a
//! master with one replica monitored by three sentinels. Both hand out the
//! `redis+cluster://` or `redis+sentinel://` URL clients take, find the current master,
//! SIGKILL and restart single nodes, and wait (with a deadline) for a replica to take over.
//!
//! Every server the harness starts dies with the process that started it: on Linux the
//! child gets `SIGKILL` when its parent dies (`PR_SET_PDEATHSIG`), and the shared server or
//! container is also stopped by an exit hook, so aborted test runs leave nothing behind.

mod admin;
mod cluster;
mod docker;
mod error;
mod ping;
mod ports;
mod sentinel;
mod server;
mod spawn;
mod tls;

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use testcontainers::{Container, GenericImage};

pub use cluster::{ClusterNode, ClusterRole, RedisCluster};
pub use error::HarnessError;
pub use sentinel::RedisSentinel;
use server::{LocalServer, ServerOptions};

/// The variable that points the tests at an existing Redis.
pub const REDIS_URL_ENV: &str = "REDIS_URL";

/// Where a [`TestRedis`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisSource {
    /// The `REDIS_URL` environment variable; the harness neither started nor stops it.
    EnvUrl,
    /// A testcontainers `redis:7` container.
    Container,
    /// A local `redis-server` the harness started.
    LocalServer,
}

impl fmt::Display for RedisSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RedisSource::EnvUrl => "REDIS_URL",
            RedisSource::Container => "a testcontainers redis:7 container",
            RedisSource::LocalServer => "a throwaway local redis-server",
        })
    }
}

/// What keeps a started Redis alive; dropping it stops the server or removes the container.
enum Backing {
    Nothing,
    Local(LocalServer),
    Container(Box<Container<GenericImage>>),
}

impl Backing {
    /// Stops what was started; errors are ignored because this runs on drop and at exit,
    /// where nobody could act on them and the parent-death signal is the fallback.
    fn stop(self) {
        match self {
            Backing::Nothing => {}
            Backing::Local(mut server) => {
                let _ = server.kill();
            }
            Backing::Container(container) => {
                let _ = container.rm();
            }
        }
    }
}

/// A Redis the tests may use. Dropping it stops a server it started.
pub struct TestRedis {
    url: String,
    source: RedisSource,
    backing: Backing,
}

impl fmt::Debug for TestRedis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestRedis")
            .field("url", &self.url)
            .field("source", &self.source)
            .finish()
    }
}

/// The shared instance, leaked once obtained so tests can hold `&'static` references.
static SHARED: Mutex<Option<&'static TestRedis>> = Mutex::new(None);
/// What the exit hook stops; moved out of the shared instance, which is never dropped.
static SHARED_BACKING: Mutex<Option<Backing>> = Mutex::new(None);

impl TestRedis {
    /// For tests that only need *a* Redis: `REDIS_URL` when set, else a testcontainers Redis
    /// when a Docker engine answers, else a throwaway local `redis-server` on a free port;
    /// else an error that says how to get one. Started once per test process and shared
    /// (tests isolate themselves with [`unique_namespace`]); a server it started dies with
    /// the process. A failed attempt is retried by the next call.
    pub fn shared() -> Result<&'static TestRedis, HarnessError> {
        let mut shared = SHARED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(redis) = *shared {
            return Ok(redis);
        }
        let mut redis = TestRedis::obtain()?;
        let backing = std::mem::replace(&mut redis.backing, Backing::Nothing);
        if !matches!(backing, Backing::Nothing) {
            *SHARED_BACKING
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(backing);
            #[allow(unsafe_code)] // std has no `atexit`; statics are never dropped otherwise.
            // SAFETY: registering a plain `extern "C"` function that takes no arguments.
            // A failed registration only means the parent-death signal alone stops it.
            unsafe {
                libc::atexit(stop_shared_at_exit);
            }
        }
        let redis: &'static TestRedis = Box::leak(Box::new(redis));
        *shared = Some(redis);
        Ok(redis)
    }

    /// Obtains a Redis of its own in the same order as [`TestRedis::shared`], not shared
    /// with anyone; dropping it stops what was started. `cargo xtask test` uses this.
    pub fn obtain() -> Result<TestRedis, HarnessError> {
        if let Some(url) = std::env::var(REDIS_URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())
        {
            return Ok(TestRedis {
                url,
                source: RedisSource::EnvUrl,
                backing: Backing::Nothing,
            });
        }
        let container_error = if docker::engine_answers() {
            match docker::start_redis_container() {
                Ok((container, url)) => {
                    return Ok(TestRedis {
                        url,
                        source: RedisSource::Container,
                        backing: Backing::Container(Box::new(container)),
                    });
                }
                Err(error) => Some(error),
            }
        } else {
            None
        };
        match LocalServer::start() {
            Ok(server) => Ok(TestRedis {
                url: server.url(),
                source: RedisSource::LocalServer,
                backing: Backing::Local(server),
            }),
            Err(HarnessError::NoRedis { reason }) => Err(HarnessError::NoRedis {
                reason: match container_error {
                    Some(container_error) => format!("{container_error}; and {reason}"),
                    None => format!(
                        "{REDIS_URL_ENV} is not set, no Docker engine answers, and {reason}"
                    ),
                },
            }),
            Err(error) => Err(error),
        }
    }

    /// The `redis://` URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where this Redis came from.
    pub fn source(&self) -> RedisSource {
        self.source
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        std::mem::replace(&mut self.backing, Backing::Nothing).stop();
    }
}

extern "C" fn stop_shared_at_exit() {
    let backing = SHARED_BACKING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    if let Some(backing) = backing {
        backing.stop();
    }
}

/// A private `redis-server` (never `REDIS_URL`) that fault tests may kill and restart.
/// Dropping it kills the server and removes its directory.
#[derive(Debug)]
pub struct OwnedRedis {
    server: LocalServer,
    url: String,
    tls_url: Option<String>,
}

impl OwnedRedis {
    /// Starts a local `redis-server` on a free port and waits until it answers PING.
    pub fn start() -> Result<OwnedRedis, HarnessError> {
        Ok(OwnedRedis::from_server(LocalServer::start()?))
    }

    /// Starts a local `redis-server` that requires `password` and also listens with TLS,
    /// with a server certificate for `localhost` from a throwaway CA (see
    /// [`ca_file`](Self::ca_file)). Needs a `redis-server` built with TLS, as Debian's is.
    pub fn start_secured(password: &str) -> Result<OwnedRedis, HarnessError> {
        OwnedRedis::start_secured_for(password, &["localhost", "127.0.0.1"])
    }

    /// Like [`start_secured`](Self::start_secured), but with a server certificate valid
    /// only for `names`: a TLS URL whose host (`localhost`) is not among them must be
    /// refused by a client that checks host names.
    pub fn start_secured_for(password: &str, names: &[&str]) -> Result<OwnedRedis, HarnessError> {
        Ok(OwnedRedis::from_server(LocalServer::start_with(
            ServerOptions {
                password: Some(password.to_owned()),
                tls_names: Some(names.iter().map(|n| n.to_string()).collect()),
                ..ServerOptions::default()
            },
        )?))
    }

    /// Starts a local `redis-server` that appends every write to a file and fsyncs it
    /// before replying (`appendfsync always`): a [`kill`](Self::kill) loses nothing it
    /// acknowledged and [`restart`](Self::restart) brings all of it back, as a production
    /// server with AOF persistence would.
    pub fn start_durable() -> Result<OwnedRedis, HarnessError> {
        Ok(OwnedRedis::from_server(LocalServer::start_with(
            ServerOptions {
                durable: true,
                ..ServerOptions::default()
            },
        )?))
    }

    fn from_server(server: LocalServer) -> OwnedRedis {
        OwnedRedis {
            url: server.url(),
            tls_url: server.tls_url(),
            server,
        }
    }

    /// The `redis://` URL (with the password, if the server requires one).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `rediss://` URL of the TLS listener of a [`start_secured`](Self::start_secured)
    /// server, with the password.
    pub fn tls_url(&self) -> Option<&str> {
        self.tls_url.as_deref()
    }

    /// The PEM file of the CA a TLS client must trust to reach
    /// [`tls_url`](Self::tls_url).
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.server.tls().map(|tls| tls.files.ca.as_path())
    }

    /// The TCP port the server listens on (stays the same across restarts).
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// SIGKILL the server (simulates a crash). Killing a killed server does nothing.
    pub fn kill(&mut self) -> Result<(), HarnessError> {
        self.server.kill()
    }

    /// Start it again on the same port: empty, unless it was started with
    /// [`start_durable`](Self::start_durable), which brings back everything acknowledged
    /// before the kill. A running server is killed first.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.server.restart()
    }
}

/// A namespace no other test uses: `test-<prefix>-<pid>-<counter>-<random>`.
///
/// Characters outside `[A-Za-z0-9_-]` in `prefix` become `-`, so the result is safe inside
/// a `{hash tag}` and a key name.
pub fn unique_namespace(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    // RandomState is seeded randomly per process: enough to keep apart two processes that
    // reuse a pid against the same long-lived Redis.
    let random = RandomState::new().hash_one((std::process::id(), counter)) & 0xffff_ffff;
    format!(
        "test-{prefix}-{}-{counter}-{random:08x}",
        std::process::id()
    )
}
