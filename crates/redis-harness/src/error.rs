//! What can go wrong while obtaining, starting or stopping a test Redis.

use std::io;
use std::time::Duration;

/// How to get a Redis when none was found; repeated in every "no Redis" message so a
/// failing test run tells the developer what to do.
pub(crate) const HOW_TO_GET_REDIS: &str = "install redis-server (e.g. `apt-get install redis-server` \
     or `brew install redis`), or set REDIS_URL to a Redis the tests may use \
     (never a production one), or start a Docker engine";

/// Errors of the harness. Every message names what was attempted and what to do next.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// Neither `REDIS_URL`, nor a Docker engine, nor a `redis-server` binary is available.
    #[error("no Redis available for the tests: {reason}; {HOW_TO_GET_REDIS}")]
    NoRedis {
        /// Why the last option (the local `redis-server`) could not be used.
        reason: String,
    },
    /// `redis-server` could not be started.
    #[error("could not start `{binary}`: {source}")]
    Spawn {
        /// The binary that was executed.
        binary: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The server started but did not answer PING in time, or exited early.
    #[error("redis-server on port {port} did not become ready within {waited:?}: {detail}")]
    NotReady {
        /// The port it was told to listen on.
        port: u16,
        /// How long the harness waited.
        waited: Duration,
        /// Exit status and the tail of the server's log, when known.
        detail: String,
    },
    /// A local resource (free port, temporary directory, process control) failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The throwaway TLS certificates could not be generated.
    #[error("could not generate throwaway TLS certificates: {0}")]
    Certificate(String),
    /// A Docker engine answered but the Redis container could not be started.
    #[error("could not start a redis:7 container through testcontainers: {0}")]
    Container(String),
}

impl HarnessError {
    pub(crate) fn io(what: &'static str, source: io::Error) -> Self {
        HarnessError::Io { what, source }
    }
}
