//! A local Redis Sentinel set-up for failover tests: one master, one replica and three
//! sentinels (quorum 2), each a throwaway `redis-server` on loopback with its own directory.
//!
//! Every server runs from a config file in its directory: a sentinel rewrites its own file
//! with what it learns, and `CONFIG REWRITE`s a data server's file when it reconfigures
//! it, so a restarted node comes back with its last role and a restarted sentinel with
//! what it knew. A master that does not answer for 2 s (`down-after-milliseconds`) is
//! failed over; an attempt that does not finish is retried after 20 s (twice
//! `failover-timeout`).

use std::time::Duration;

use redis::Value;

use crate::admin::{info_fields, poll_until, query};
use crate::error::HarnessError;
use crate::server::{LocalServer, REPLICATION_CONFIG, ServerOptions};

const SENTINELS: usize = 3;
const QUORUM: usize = 2;
const DOWN_AFTER_MS: u32 = 2000;
const FAILOVER_TIMEOUT_MS: u32 = 10_000;
/// Sentinels find each other through hello messages sent every 2 s; a few rounds on an
/// idle machine, many more on a loaded CI machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const TOPOLOGY: &str = "Sentinel set-up";
const MAX_NAME_LEN: usize = 64;

/// A local master with one replica, monitored by three sentinels, for tests that connect
/// through Sentinel or kill the master to exercise failover. Dropping it kills every
/// process and removes their directories; they also die with the test process.
#[derive(Debug)]
pub struct RedisSentinel {
    master_name: String,
    /// The initial master, then its replica.
    servers: Vec<LocalServer>,
    sentinels: Vec<LocalServer>,
}

impl RedisSentinel {
    /// Starts a master and a replica of it, then three sentinels monitoring the master as
    /// `master_name` (quorum 2, down after 2 s, failover timeout 10 s, parallel syncs 1),
    /// and waits until every sentinel sees the master up, its replica synced and the two
    /// other sentinels. `master_name` must be 1 to 64 letters, digits, `-`, `_` or `.`.
    pub fn start(master_name: &str) -> Result<RedisSentinel, HarnessError> {
        validate_master_name(master_name)?;
        let master = LocalServer::start_with(ServerOptions {
            config: server_config(None),
            ..ServerOptions::default()
        })?;
        let replica = LocalServer::start_with(ServerOptions {
            config: server_config(Some(master.port())),
            ..ServerOptions::default()
        })?;
        // A sentinel reads a replica's link state when it discovers the replica and then
        // only every 10 s: it must find the replica synced already.
        poll_until(READY_TIMEOUT, || replica_synced(replica.port())).map_err(
            |(waited, last_state)| HarnessError::SentinelNotReady {
                master_name: master_name.to_string(),
                waited,
                last_state: format!(
                    "{last_state}\n--- log of replica {} ---\n{}",
                    replica.port(),
                    replica.log_tail()
                ),
            },
        )?;
        let sentinel_options = ServerOptions {
            config: sentinel_config(master_name, master.port()),
            sentinel: true,
            ..ServerOptions::default()
        };
        let sentinels = (0..SENTINELS)
            .map(|_| LocalServer::start_with(sentinel_options.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let setup = RedisSentinel {
            master_name: master_name.to_string(),
            servers: vec![master, replica],
            sentinels,
        };
        setup.wait_until_ready()?;
        Ok(setup)
    }

    /// A `redis+sentinel://` URL listing the three sentinels, the master name and
    /// database 0, as `jobq` and `posts-worker` accept.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinel_ports()
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!(
            "redis+sentinel://{}/{}/0",
            hosts.join(","),
            self.master_name
        )
    }

    /// The name the sentinels monitor the master as.
    pub fn master_name(&self) -> &str {
        &self.master_name
    }

    /// The client ports of the three sentinels.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(LocalServer::port).collect()
    }

    /// The ports of the two data servers: the initial master, then the initial replica.
    /// Roles change with failovers; [`master_port`](Self::master_port) tells the current
    /// master.
    pub fn server_ports(&self) -> Vec<u16> {
        self.servers.iter().map(LocalServer::port).collect()
    }

    /// The port of the master as the first running sentinel that answers reports it
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`); it may be a killed master that has not yet
    /// been failed over.
    pub fn master_port(&self) -> Result<u16, HarnessError> {
        let question = format!("the address of master `{}`", self.master_name);
        let mut detail = String::from("every sentinel has been killed");
        for port in running(&self.sentinels) {
            match self.reported_master(port) {
                Ok(Some(master)) => return Ok(master),
                Ok(None) => detail = format!("sentinel {port} does not know that master"),
                Err(error) => detail = error.to_string(),
            }
        }
        Err(HarnessError::NoLiveNode {
            topology: TOPOLOGY,
            question,
            detail,
        })
    }

    /// Waits until every running sentinel reports the same master other than `not` and
    /// that server answers `ROLE` as a master; returns its port. For failover tests: kill
    /// the master, then wait for the replica to be promoted.
    pub fn wait_for_new_master(&self, not: u16, within: Duration) -> Result<u16, HarnessError> {
        poll_until(within, || self.settled_master(not)).map_err(|(waited, last_state)| {
            HarnessError::FailoverTimedOut {
                what: format!("master `{}`", self.master_name),
                previous: not,
                waited,
                last_state,
            }
        })
    }

    /// SIGKILLs the server or sentinel on `port` (a crash, as far as the others can tell).
    /// Killing a killed node does nothing.
    pub fn kill_node(&mut self, port: u16) -> Result<(), HarnessError> {
        self.node_mut(port)?.kill()
    }

    /// Starts the server or sentinel on `port` again (killing it first if it runs) with
    /// its directory and its config file as last rewritten. A data server's data is gone
    /// (nothing is persisted); a replaced master comes back as a master until the
    /// sentinels turn it into a replica of its successor, which takes about 10 s.
    pub fn restart_node(&mut self, port: u16) -> Result<(), HarnessError> {
        self.node_mut(port)?.restart()
    }

    fn node_mut(&mut self, port: u16) -> Result<&mut LocalServer, HarnessError> {
        let known: Vec<u16> = self
            .servers
            .iter()
            .chain(&self.sentinels)
            .map(LocalServer::port)
            .collect();
        self.servers
            .iter_mut()
            .chain(&mut self.sentinels)
            .find(|node| node.port() == port)
            .ok_or(HarnessError::UnknownNode {
                topology: TOPOLOGY,
                port,
                known,
            })
    }

    /// The master's port as the sentinel on `port` reports it; `None` when it does not
    /// monitor `master_name`.
    fn reported_master(&self, port: u16) -> Result<Option<u16>, HarnessError> {
        let address: Option<(String, u16)> = query(
            port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", &self.master_name],
        )?;
        Ok(address.map(|(_host, master)| master))
    }

    /// The master once every running sentinel reports the same one other than `not` and
    /// it answers `ROLE` as a master; else what is still unsettled.
    fn settled_master(&self, not: u16) -> Result<u16, String> {
        let mut agreed = None;
        for port in running(&self.sentinels) {
            let master = self
                .reported_master(port)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("sentinel {port} does not know the master"))?;
            if master == not {
                return Err(format!("sentinel {port} still reports port {not}"));
            }
            match agreed {
                None => agreed = Some(master),
                Some(other) if other != master => {
                    return Err(format!(
                        "sentinels disagree on the master: port {other} or {master}"
                    ));
                }
                Some(_) => {}
            }
        }
        let master = agreed.ok_or("every sentinel has been killed")?;
        if !running(&self.servers).any(|port| port == master) {
            return Err(format!(
                "the sentinels report port {master}, not a running server of this set-up"
            ));
        }
        match role(master) {
            Ok(role) if role == "master" => Ok(master),
            Ok(role) => Err(format!("port {master} answers ROLE with `{role}`")),
            Err(error) => Err(error.to_string()),
        }
    }

    fn wait_until_ready(&self) -> Result<(), HarnessError> {
        let replica = self.servers[1].port();
        poll_until(READY_TIMEOUT, || {
            for port in self.sentinel_ports() {
                self.sentinel_ready(port, replica)?;
            }
            Ok(())
        })
        .map_err(|(waited, last_state)| {
            let mut last_state = last_state;
            for node in &self.sentinels {
                last_state.push_str(&format!(
                    "\n--- log of sentinel {} ---\n{}",
                    node.port(),
                    node.log_tail()
                ));
            }
            HarnessError::SentinelNotReady {
                master_name: self.master_name.clone(),
                waited,
                last_state,
            }
        })
    }

    /// Ok once the sentinel on `port` sees the master up, the other sentinels, and the
    /// replica on `replica` up with its link to the master up.
    fn sentinel_ready(&self, port: u16, replica: u16) -> Result<(), String> {
        let master: Vec<String> =
            query(port, &["SENTINEL", "MASTER", &self.master_name]).map_err(|e| e.to_string())?;
        let master = pairs(&master);
        let field = |name: &str| master.get(name).copied().unwrap_or("?");
        let replicas: usize = field("num-slaves").parse().unwrap_or(0);
        let others: usize = field("num-other-sentinels").parse().unwrap_or(0);
        if field("flags") != "master" || replicas < 1 || others != SENTINELS - 1 {
            return Err(format!(
                "sentinel {port} reports flags:{}, num-slaves:{}, num-other-sentinels:{}",
                field("flags"),
                field("num-slaves"),
                field("num-other-sentinels")
            ));
        }
        let replicas: Vec<Vec<String>> =
            query(port, &["SENTINEL", "REPLICAS", &self.master_name]).map_err(|e| e.to_string())?;
        let replica_port = replica.to_string();
        let seen = replicas.iter().map(|fields| pairs(fields)).any(|fields| {
            fields.get("port") == Some(&replica_port.as_str())
                && fields.get("flags") == Some(&"slave")
                && fields.get("master-link-status") == Some(&"ok")
        });
        if seen {
            Ok(())
        } else {
            Err(format!(
                "sentinel {port} does not yet see replica {replica} up and synced: {replicas:?}"
            ))
        }
    }
}

/// The ports of the nodes in `nodes` the harness has not killed.
fn running(nodes: &[LocalServer]) -> impl Iterator<Item = u16> + '_ {
    nodes
        .iter()
        .filter(|node| node.is_running())
        .map(LocalServer::port)
}

fn validate_master_name(name: &str) -> Result<(), HarnessError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 64 characters")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some("it contains a character other than a letter, digit, `-`, `_` or `.`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(HarnessError::InvalidMasterName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A data server's config: a replica of `master_port` when given.
fn server_config(master_port: Option<u16>) -> Vec<String> {
    let mut config: Vec<String> = REPLICATION_CONFIG.into_iter().map(String::from).collect();
    if let Some(master_port) = master_port {
        config.push(format!("replicaof 127.0.0.1 {master_port}"));
    }
    config
}

fn sentinel_config(master_name: &str, master_port: u16) -> Vec<String> {
    vec![
        format!("sentinel monitor {master_name} 127.0.0.1 {master_port} {QUORUM}"),
        format!("sentinel down-after-milliseconds {master_name} {DOWN_AFTER_MS}"),
        format!("sentinel failover-timeout {master_name} {FAILOVER_TIMEOUT_MS}"),
        format!("sentinel parallel-syncs {master_name} 1"),
    ]
}

/// Ok once the replica on `port` has its link to the master up and its first sync done.
fn replica_synced(port: u16) -> Result<(), String> {
    let info = query::<String>(port, &["INFO", "replication"]).map_err(|e| e.to_string())?;
    let info = info_fields(&info);
    let field = |name: &str| info.get(name).copied().unwrap_or("?");
    if field("master_link_status") == "up" && field("master_sync_in_progress") == "0" {
        Ok(())
    } else {
        Err(format!(
            "replica {port} reports master_link_status:{}, master_sync_in_progress:{}",
            field("master_link_status"),
            field("master_sync_in_progress")
        ))
    }
}

/// The first element of the `ROLE` reply: `master`, `slave` or `sentinel`.
fn role(port: u16) -> Result<String, HarnessError> {
    let reply: Value = query(port, &["ROLE"])?;
    match &reply {
        Value::Array(items) => match items.first() {
            Some(Value::BulkString(role)) => Some(String::from_utf8_lossy(role).into_owned()),
            Some(Value::SimpleString(role)) => Some(role.clone()),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| HarnessError::UnexpectedReply {
        port,
        command: "ROLE".into(),
        reply: format!("{reply:?}"),
    })
}

/// A flat `[field, value, field, value, ...]` reply as a map.
fn pairs(flat: &[String]) -> std::collections::HashMap<&str, &str> {
    flat.chunks_exact(2)
        .map(|pair| (pair[0].as_str(), pair[1].as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_names_must_be_short_plain_words() {
        assert!(validate_master_name("mymaster").is_ok());
        assert!(validate_master_name("posts-worker_1.test").is_ok());
        for bad in ["", "two words", "a/b", "x\ny", &"m".repeat(65)] {
            let error = validate_master_name(bad).expect_err(bad);
            assert!(
                matches!(&error, HarnessError::InvalidMasterName { name, .. } if name == bad),
                "{error}"
            );
        }
    }

    #[test]
    fn sentinel_config_monitors_the_master_with_the_agreed_timings() {
        assert_eq!(
            sentinel_config("m", 7000),
            [
                "sentinel monitor m 127.0.0.1 7000 2",
                "sentinel down-after-milliseconds m 2000",
                "sentinel failover-timeout m 10000",
                "sentinel parallel-syncs m 1",
            ]
        );
    }

    #[test]
    fn pairs_ignores_a_dangling_field() {
        let flat = ["flags", "master", "num-slaves", "1", "dangling"].map(String::from);
        let map = pairs(&flat);
        assert_eq!(map.get("flags"), Some(&"master"));
        assert_eq!(map.get("num-slaves"), Some(&"1"));
        assert_eq!(map.len(), 2);
    }
}
