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
    /// An admin command to a node the harness started failed (refused, timed out or
    /// answered with an error).
    #[error(
        "`{command}` to the test node on port {port} failed: {source}; if the test killed \
         that node, restart it first, otherwise see the node's log"
    )]
    NodeCommand {
        /// The node's client port.
        port: u16,
        /// The command, with its arguments.
        command: String,
        /// What the client reported.
        #[source]
        source: redis::RedisError,
    },
    /// A node answered in a form the harness does not understand.
    #[error(
        "unexpected reply to `{command}` from the test node on port {port}: {reply}; \
         the harness needs redis-server 7.0 or newer"
    )]
    UnexpectedReply {
        /// The node's client port.
        port: u16,
        /// The command, with its arguments.
        command: String,
        /// The reply, or the part of it that did not make sense.
        reply: String,
    },
    /// No node of a cluster or Sentinel set-up could answer a question about it.
    #[error(
        "no running node of the test {topology} could tell {question}: {detail}; \
         restart killed nodes with `restart_node` first"
    )]
    NoLiveNode {
        /// `"cluster"` or `"Sentinel set-up"`.
        topology: &'static str,
        /// What the harness asked, e.g. "the master of slot 42".
        question: String,
        /// What the nodes answered, or why they could not be reached.
        detail: String,
    },
    /// The local Redis Cluster did not reach `cluster_state:ok` with every master's
    /// replica connected in time.
    #[error(
        "the local Redis Cluster on ports {ports:?} did not form within {waited:?}; \
         last state: {last_state}; check that redis-server is 7.0 or newer (REDIS_SERVER \
         picks another binary) and that the machine is not overloaded"
    )]
    ClusterNotFormed {
        /// The client ports of its six nodes.
        ports: Vec<u16>,
        /// How long the harness waited.
        waited: Duration,
        /// What was still missing (e.g. a node's `cluster_state` or replication link),
        /// with the tail of that node's log when it helps.
        last_state: String,
    },
    /// The Sentinel set-up did not become ready in time: the sentinels did not all see
    /// the master, its replica and each other.
    #[error(
        "the local Sentinel set-up for master `{master_name}` did not become ready within \
         {waited:?}; last state: {last_state}; check that `redis-server --sentinel` works \
         with this binary (REDIS_SERVER picks another) and that the machine is not overloaded"
    )]
    SentinelNotReady {
        /// The monitored master's name.
        master_name: String,
        /// How long the harness waited.
        waited: Duration,
        /// What was still missing, with the tail of a log when it helps.
        last_state: String,
    },
    /// No other node took over as master in time.
    #[error(
        "no failover of {what} away from port {previous} within {waited:?}; last state: \
         {last_state}; wait longer, and check that the old master had a connected replica \
         and that enough masters (cluster) or sentinels (quorum 2) are still running"
    )]
    FailoverTimedOut {
        /// What had to move, e.g. "slot 866 (key `user:1`)" or "master `mymaster`".
        what: String,
        /// The port that had to stop being the master.
        previous: u16,
        /// How long the harness waited.
        waited: Duration,
        /// What the nodes reported last.
        last_state: String,
    },
    /// A port that does not belong to the cluster or Sentinel set-up.
    #[error("port {port} is not a node of this test {topology}; its nodes are {known:?}")]
    UnknownNode {
        /// `"cluster"` or `"Sentinel set-up"`.
        topology: &'static str,
        /// The port that was passed.
        port: u16,
        /// The ports of its nodes.
        known: Vec<u16>,
    },
    /// A Sentinel master name that cannot be used.
    #[error(
        "`{name}` cannot name a Sentinel master: {reason}; use 1 to 64 letters, digits, \
         `-`, `_` or `.`"
    )]
    InvalidMasterName {
        /// The name that was passed.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl HarnessError {
    pub(crate) fn io(what: &'static str, source: io::Error) -> Self {
        HarnessError::Io { what, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests hand harness errors to `anyhow` and across threads; a source type that is not
    /// `Send + Sync` would stop this from compiling.
    #[test]
    fn harness_errors_are_send_sync_and_static() {
        fn assert_thread_safe<T: std::error::Error + Send + Sync + 'static>() {}
        assert_thread_safe::<HarnessError>();
    }
}
