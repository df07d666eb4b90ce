//! A local Redis Cluster for failover tests: three masters with one replica each, every
//! node a throwaway `redis-server` on loopback with its own directory.
//!
//! The harness forms the cluster itself (`CLUSTER ADDSLOTSRANGE`, `MEET`, `REPLICATE`)
//! instead of through `redis-cli --cluster create`: it then knows which replica belongs to
//! which master and needs no second binary. `cluster-node-timeout` is 2 s and
//! `cluster-replica-validity-factor` is 0, so the replica of a killed master takes over
//! within a few seconds however long its replication link had been down. Full coverage
//! stays required (the default), so `cluster_state:ok` means every slot is served.

use std::time::Duration;

use crate::admin::{info_fields, poll_until, query};
use crate::error::HarnessError;
use crate::ports::PortChoice;
use crate::server::{LocalServer, REPLICATION_CONFIG, ServerOptions};

const MASTERS: usize = 3;
/// The slots of each initial master, in the order the masters are started.
const SLOT_RANGES: [(u16, u16); MASTERS] = [(0, 5460), (5461, 10922), (10923, 16383)];
const NODE_TIMEOUT_MS: u32 = 2000;
/// Forming takes about a second on an idle machine; CI machines under load are slower.
const FORM_TIMEOUT: Duration = Duration::from_secs(60);
const TOPOLOGY: &str = "cluster";

/// A local Redis Cluster of three masters and three replicas (one per master), for tests
/// that need cluster semantics or kill nodes to exercise failover. Dropping it kills every
/// node and removes their directories; the nodes also die with the test process.
#[derive(Debug)]
pub struct RedisCluster {
    /// The initial masters, then their replicas in the same order.
    nodes: Vec<LocalServer>,
}

/// What a node is in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterRole {
    /// A master (with or without slots).
    Master,
    /// A replica of the master on `master_port`, when the node asked knows that master.
    Replica {
        /// The client port of its master.
        master_port: Option<u16>,
    },
}

/// One node as seen in `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// Its client port on 127.0.0.1.
    pub port: u16,
    /// Master or replica.
    pub role: ClusterRole,
    /// Flagged as failing (`fail` or `fail?`) by the node that was asked.
    pub failing: bool,
}

impl RedisCluster {
    /// Starts six `redis-server`s in cluster mode on free loopback ports (each with its
    /// cluster bus port, port + 10000, free too), assigns all 16384 slots to three of them,
    /// makes each of the other three a replica of one master, and waits until every node
    /// reports `cluster_state:ok`, agrees on that layout and every replica's link is up.
    pub fn start() -> Result<RedisCluster, HarnessError> {
        let options = ServerOptions {
            ports: PortChoice::WithClusterBus,
            config: cluster_config(),
            ..ServerOptions::default()
        };
        let nodes = (0..2 * MASTERS)
            .map(|_| LocalServer::start_with(options.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let cluster = RedisCluster { nodes };
        cluster.form()?;
        Ok(cluster)
    }

    /// A `redis+cluster://` URL listing all six nodes, as `jobq` and `posts-worker` accept.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The client ports of all six nodes: the three initial masters, then their replicas
    /// in the same order. Roles change with failovers; [`nodes`](Self::nodes) tells the
    /// current ones.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(LocalServer::port).collect()
    }

    /// Every node with its current role, as the first running node that answers sees them
    /// (`CLUSTER NODES`), ordered by port.
    pub fn nodes(&self) -> Result<Vec<ClusterNode>, HarnessError> {
        self.ask_any("its nodes", |port| {
            let lines = cluster_nodes(port)?;
            let mut nodes: Vec<ClusterNode> = lines
                .iter()
                .filter(|line| !line.handshake)
                .map(|line| ClusterNode {
                    port: line.port,
                    role: match &line.master_id {
                        None => ClusterRole::Master,
                        Some(master_id) => ClusterRole::Replica {
                            master_port: lines
                                .iter()
                                .find(|other| &other.id == master_id)
                                .map(|other| other.port),
                        },
                    },
                    failing: line.failing,
                })
                .collect();
            nodes.sort_by_key(|node| node.port);
            Ok(nodes)
        })
    }

    /// The port of the master that serves `key`'s slot right now, as the first running
    /// node that answers sees it (it may be a killed master the cluster has not yet
    /// replaced).
    pub fn master_for_key(&self, key: &str) -> Result<u16, HarnessError> {
        let slot = self.key_slot(key)?;
        self.ask_any(
            &format!("the master of slot {slot} (key `{key}`)"),
            |port| {
                cluster_nodes(port)?
                    .iter()
                    .find(|line| line.master_id.is_none() && line.serves(slot))
                    .map(|line| line.port)
                    .ok_or_else(|| HarnessError::UnexpectedReply {
                        port,
                        command: "CLUSTER NODES".into(),
                        reply: format!("no master serves slot {slot}"),
                    })
            },
        )
    }

    /// Waits until a running node other than `not` is the master of `key`'s slot, every
    /// running node agrees on it and reports `cluster_state:ok`; returns its port. For
    /// failover tests: kill the key's master, then wait for its replica to take over.
    pub fn wait_for_master_of_key(
        &self,
        key: &str,
        not: u16,
        within: Duration,
    ) -> Result<u16, HarnessError> {
        let mut slot = None;
        poll_until(within, || {
            let slot = match slot {
                Some(slot) => slot,
                None => *slot.insert(self.key_slot(key).map_err(|e| e.to_string())?),
            };
            self.settled_master_of(slot, not)
        })
        .map_err(|(waited, last_state)| HarnessError::FailoverTimedOut {
            what: match slot {
                Some(slot) => format!("slot {slot} (key `{key}`)"),
                None => format!("the slot of key `{key}`"),
            },
            previous: not,
            waited,
            last_state,
        })
    }

    /// SIGKILLs the node on `port` (a crash, as far as the cluster can tell). Killing a
    /// killed node does nothing.
    pub fn kill_node(&mut self, port: u16) -> Result<(), HarnessError> {
        self.node_mut(port)?.kill()
    }

    /// Starts the node on `port` again (killing it first if it runs) with the same
    /// directory, config and `nodes.conf`, so it rejoins the cluster: a master that was
    /// replaced comes back as a replica of its successor. Its data is gone (nothing is
    /// persisted); a replica gets it again from its master.
    pub fn restart_node(&mut self, port: u16) -> Result<(), HarnessError> {
        self.node_mut(port)?.restart()
    }

    fn node_mut(&mut self, port: u16) -> Result<&mut LocalServer, HarnessError> {
        let known = self.ports();
        self.nodes
            .iter_mut()
            .find(|node| node.port() == port)
            .ok_or(HarnessError::UnknownNode {
                topology: TOPOLOGY,
                port,
                known,
            })
    }

    /// The ports of the nodes the harness has not killed.
    fn running_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .map(LocalServer::port)
    }

    /// The answer of the first running node for which `ask` succeeds.
    fn ask_any<T>(
        &self,
        question: &str,
        ask: impl Fn(u16) -> Result<T, HarnessError>,
    ) -> Result<T, HarnessError> {
        let mut detail = String::from("every node has been killed");
        for port in self.running_ports() {
            match ask(port) {
                Ok(answer) => return Ok(answer),
                Err(error) => detail = error.to_string(),
            }
        }
        Err(HarnessError::NoLiveNode {
            topology: TOPOLOGY,
            question: question.to_string(),
            detail,
        })
    }

    fn key_slot(&self, key: &str) -> Result<u16, HarnessError> {
        self.ask_any(&format!("the slot of key `{key}`"), |port| {
            query(port, &["CLUSTER", "KEYSLOT", key])
        })
    }

    /// The master of `slot` when the cluster has settled on one other than `not`, else
    /// what is still unsettled.
    fn settled_master_of(&self, slot: u16, not: u16) -> Result<u16, String> {
        let mut agreed = None;
        for port in self.running_ports() {
            let state = cluster_state(port).map_err(|e| e.to_string())?;
            if state != "ok" {
                return Err(format!("node {port} reports cluster_state:{state}"));
            }
            let lines = cluster_nodes(port).map_err(|e| e.to_string())?;
            let master = lines
                .iter()
                .find(|line| line.master_id.is_none() && line.serves(slot))
                .ok_or_else(|| format!("node {port} knows no master for slot {slot}"))?;
            if master.port == not {
                return Err(format!(
                    "node {port} still sees port {not} as the master of slot {slot}"
                ));
            }
            if master.failing {
                return Err(format!(
                    "node {port} sees the master of slot {slot}, port {}, as failing",
                    master.port
                ));
            }
            match agreed {
                None => agreed = Some(master.port),
                Some(other) if other != master.port => {
                    return Err(format!(
                        "nodes disagree on the master of slot {slot}: port {other} or {}",
                        master.port
                    ));
                }
                Some(_) => {}
            }
        }
        let master = agreed.ok_or("every node has been killed")?;
        if self.running_ports().any(|port| port == master) {
            Ok(master)
        } else {
            Err(format!(
                "port {master} serves slot {slot} but is not a running node of this cluster"
            ))
        }
    }

    /// Assigns the slots, introduces the nodes to each other, pairs every replica with its
    /// master and waits until all of that has settled.
    fn form(&self) -> Result<(), HarnessError> {
        let ports = self.ports();
        let ids = ports
            .iter()
            .map(|&port| query::<String>(port, &["CLUSTER", "MYID"]))
            .collect::<Result<Vec<_>, _>>()?;
        // Distinct epochs up front, as redis-cli does, spare the nodes resolving collisions.
        for (epoch, &port) in (1u32..).zip(&ports) {
            query::<()>(port, &["CLUSTER", "SET-CONFIG-EPOCH", &epoch.to_string()])?;
        }
        for (&port, (first, last)) in ports.iter().zip(SLOT_RANGES) {
            query::<()>(
                port,
                &[
                    "CLUSTER",
                    "ADDSLOTSRANGE",
                    &first.to_string(),
                    &last.to_string(),
                ],
            )?;
        }
        let first = ports[0].to_string();
        for &port in &ports[1..] {
            query::<()>(port, &["CLUSTER", "MEET", "127.0.0.1", &first])?;
        }

        let mut replicating = [false; MASTERS];
        poll_until(FORM_TIMEOUT, || {
            // A replica can only follow a master it has heard of through gossip.
            for (index, done) in replicating.iter_mut().enumerate() {
                if !*done {
                    let replica = ports[MASTERS + index];
                    query::<()>(replica, &["CLUSTER", "REPLICATE", &ids[index]])
                        .map_err(|e| e.to_string())?;
                    *done = true;
                }
            }
            self.check_formed(&ids)
        })
        .map_err(|(waited, last_state)| HarnessError::ClusterNotFormed {
            ports: ports.clone(),
            waited,
            last_state: self.with_log_tails(last_state),
        })
    }

    /// Ok once every node reports `cluster_state:ok`, knows all six nodes in the intended
    /// layout, and every replication link is up; else the first thing still missing.
    fn check_formed(&self, ids: &[String]) -> Result<(), String> {
        let ports = self.ports();
        for (index, &port) in ports.iter().enumerate() {
            let info = query::<String>(port, &["CLUSTER", "INFO"]).map_err(|e| e.to_string())?;
            let info = info_fields(&info);
            let field = |name: &str| info.get(name).copied().unwrap_or("?");
            if field("cluster_state") != "ok" || field("cluster_known_nodes") != "6" {
                return Err(format!(
                    "node {port} reports cluster_state:{}, cluster_known_nodes:{}, \
                     cluster_slots_assigned:{}",
                    field("cluster_state"),
                    field("cluster_known_nodes"),
                    field("cluster_slots_assigned"),
                ));
            }
            let lines = cluster_nodes(port).map_err(|e| e.to_string())?;
            for (other, id) in ids.iter().enumerate() {
                let line = lines
                    .iter()
                    .find(|line| &line.id == id)
                    .ok_or_else(|| format!("node {port} does not know node {}", ports[other]))?;
                let intended = if other < MASTERS {
                    line.master_id.is_none() && line.slots == [SLOT_RANGES[other]]
                } else {
                    line.master_id.as_ref() == Some(&ids[other - MASTERS])
                };
                if !intended || line.failing || line.handshake || line.port != ports[other] {
                    return Err(format!(
                        "node {port} sees node {} as {line:?}, not yet as intended",
                        ports[other]
                    ));
                }
            }
            replication_ready(port, index < MASTERS)?;
        }
        Ok(())
    }

    /// `last_state`, followed by the end of every running node's log.
    fn with_log_tails(&self, last_state: String) -> String {
        let mut text = last_state;
        for node in self.nodes.iter().filter(|node| node.is_running()) {
            text.push_str(&format!(
                "\n--- log of node {} ---\n{}",
                node.port(),
                node.log_tail()
            ));
        }
        text
    }
}

/// Cluster mode with a short node timeout; see the module documentation.
fn cluster_config() -> Vec<String> {
    let mut config: Vec<String> = [
        "cluster-enabled yes",
        "cluster-config-file nodes.conf",
        "cluster-replica-validity-factor 0",
    ]
    .into_iter()
    .chain(REPLICATION_CONFIG)
    .map(String::from)
    .collect();
    config.push(format!("cluster-node-timeout {NODE_TIMEOUT_MS}"));
    config
}

/// Ok once a master has its one replica online, or a replica's link to its master is up
/// and its first sync is done.
fn replication_ready(port: u16, master: bool) -> Result<(), String> {
    let info = query::<String>(port, &["INFO", "replication"]).map_err(|e| e.to_string())?;
    let info = info_fields(&info);
    let field = |name: &str| info.get(name).copied().unwrap_or("?");
    let ready = if master {
        field("connected_slaves") == "1" && field("slave0").contains("state=online")
    } else {
        field("master_link_status") == "up" && field("master_sync_in_progress") == "0"
    };
    if ready {
        Ok(())
    } else if master {
        Err(format!(
            "master {port} reports connected_slaves:{}, slave0:{}",
            field("connected_slaves"),
            field("slave0")
        ))
    } else {
        Err(format!(
            "replica {port} reports master_link_status:{}, master_sync_in_progress:{}",
            field("master_link_status"),
            field("master_sync_in_progress")
        ))
    }
}

fn cluster_state(port: u16) -> Result<String, HarnessError> {
    let info = query::<String>(port, &["CLUSTER", "INFO"])?;
    Ok(info_fields(&info)
        .get("cluster_state")
        .copied()
        .unwrap_or("(missing)")
        .to_string())
}

fn cluster_nodes(port: u16) -> Result<Vec<NodeLine>, HarnessError> {
    let text = query::<String>(port, &["CLUSTER", "NODES"])?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            NodeLine::parse(line).ok_or_else(|| HarnessError::UnexpectedReply {
                port,
                command: "CLUSTER NODES".into(),
                reply: line.to_string(),
            })
        })
        .collect()
}

/// One line of `CLUSTER NODES`:
/// `<id> <ip:port@cport[,hostname]> <flags> <master-id|-> <ping> <pong> <epoch> <link> <slot>...`
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeLine {
    id: String,
    port: u16,
    /// `None` for a master.
    master_id: Option<String>,
    failing: bool,
    handshake: bool,
    /// Inclusive ranges; single slots are ranges of one.
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    fn parse(line: &str) -> Option<NodeLine> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [
            id,
            address,
            flags,
            master,
            _ping,
            _pong,
            _epoch,
            _link,
            slots @ ..,
        ] = fields.as_slice()
        else {
            return None;
        };
        let (_, port) = address.split('@').next()?.rsplit_once(':')?;
        let flags: Vec<&str> = flags.split(',').collect();
        let slots = slots
            .iter()
            // `[slot->-id]` and `[slot-<-id]` are migrations in progress, not ownership.
            .filter(|slot| !slot.starts_with('['))
            .map(|slot| match slot.split_once('-') {
                Some((first, last)) => Some((first.parse().ok()?, last.parse().ok()?)),
                None => slot.parse().ok().map(|single| (single, single)),
            })
            .collect::<Option<Vec<_>>>()?;
        Some(NodeLine {
            id: id.to_string(),
            port: port.parse().ok()?,
            master_id: (*master != "-").then(|| master.to_string()),
            failing: flags.iter().any(|flag| *flag == "fail" || *flag == "fail?"),
            handshake: flags.contains(&"handshake"),
            slots,
        })
    }

    fn serves(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|&(first, last)| (first..=last).contains(&slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_masters_replicas_flags_and_slots() {
        let master = NodeLine::parse(
            "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@40004,host \
             myself,master - 0 1426238317239 4 connected 0-5460 5462 [5463->-e7d1eecce]",
        )
        .expect("a master line");
        assert_eq!(master.port, 30004);
        assert_eq!(master.master_id, None);
        assert_eq!(master.slots, [(0, 5460), (5462, 5462)]);
        assert!(master.serves(0) && master.serves(5460) && master.serves(5462));
        assert!(!master.serves(5461) && !master.serves(5463));
        assert!(!master.failing && !master.handshake);

        let replica = NodeLine::parse(
            "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@40001 slave,fail? \
             07c37dfeb235213a872192d90877d0cd55635b91 0 1426238316232 4 connected",
        )
        .expect("a replica line");
        assert_eq!(
            replica.master_id.as_deref(),
            Some("07c37dfeb235213a872192d90877d0cd55635b91")
        );
        assert!(replica.failing && replica.slots.is_empty());
    }

    #[test]
    fn rejects_truncated_lines_and_bad_ports_or_slots() {
        assert_eq!(NodeLine::parse("abc 127.0.0.1:1@2 master -"), None);
        assert_eq!(
            NodeLine::parse("abc 127.0.0.1:x@2 master - 0 0 1 connected"),
            None
        );
        assert_eq!(
            NodeLine::parse("abc 127.0.0.1:1@2 master - 0 0 1 connected 5-x"),
            None
        );
    }
}
