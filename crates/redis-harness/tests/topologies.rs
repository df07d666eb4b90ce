//! The local Redis Cluster and Sentinel set-ups against real `redis-server` processes:
//! they form, report the right master, and a replica takes over a SIGKILLed master within
//! the deadlines failover tests rely on; a restarted master rejoins as a replica; and every
//! node dies with the process that started it.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis::Commands;
use redis_harness::{
    ClusterNode, ClusterRole, HarnessError, RedisCluster, RedisSentinel, unique_namespace,
};

const CLUSTER_FAILOVER_WITHIN: Duration = Duration::from_secs(15);
const SENTINEL_FAILOVER_WITHIN: Duration = Duration::from_secs(20);
/// Set in the environment of this test binary when it is re-run as a helper process.
const HELPER_ENV: &str = "REDIS_HARNESS_TOPOLOGY_HELPER";
/// A replaced master must rejoin as a replica; Sentinel waits ~8 s before reconfiguring it.
const REJOIN_WITHIN: Duration = Duration::from_secs(30);

fn connect(port: u16) -> redis::Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let connection = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
    connection
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    connection
}

/// Writes `key` on the master on `port` and waits until its one replica has it too, so a
/// failover cannot lose it.
fn write_replicated(port: u16, key: &str, value: &str) {
    let mut connection = connect(port);
    let _: () = connection.set(key, value).expect("SET on the master");
    let replicas: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut connection)
        .expect("WAIT");
    assert_eq!(replicas, 1, "the replica did not acknowledge the write");
}

fn role(port: u16) -> Vec<redis::Value> {
    redis::cmd("ROLE")
        .query(&mut connect(port))
        .unwrap_or_else(|e| panic!("ROLE on {port}: {e}"))
}

/// A string or integer element of a reply as text.
fn bulk(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::Int(number) => number.to_string(),
        other => format!("{other:?}"),
    }
}

/// Polls `look` every 100 ms until it returns `Some` or `within` has passed.
fn eventually<T>(within: Duration, mut look: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(found) = look() {
            return Some(found);
        }
        if started.elapsed() >= within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn cluster_state(port: u16) -> String {
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut connect(port))
        .expect("CLUSTER INFO");
    info.lines()
        .find_map(|line| line.trim_end().strip_prefix("cluster_state:"))
        .unwrap_or("(missing)")
        .to_string()
}

fn replica_of(nodes: &[ClusterNode], master: u16) -> Vec<u16> {
    nodes
        .iter()
        .filter(|node| {
            node.role
                == ClusterRole::Replica {
                    master_port: Some(master),
                }
        })
        .map(|node| node.port)
        .collect()
}

#[test]
fn cluster_forms_and_a_replica_takes_over_a_killed_master() {
    let started = Instant::now();
    let mut cluster = RedisCluster::start().expect("start a local Redis Cluster");
    eprintln!("cluster formed in {:?}", started.elapsed());

    let ports = cluster.ports();
    assert_eq!(ports.len(), 6);
    assert_eq!(ports.iter().collect::<HashSet<_>>().len(), 6, "{ports:?}");
    let expected_url = format!(
        "redis+cluster://{}",
        ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(cluster.url(), expected_url);

    let nodes = cluster.nodes().expect("list the nodes");
    assert_eq!(nodes.len(), 6, "{nodes:?}");
    assert!(nodes.iter().all(|node| !node.failing), "{nodes:?}");
    let masters: Vec<u16> = nodes
        .iter()
        .filter(|node| node.role == ClusterRole::Master)
        .map(|node| node.port)
        .collect();
    assert_eq!(masters.len(), 3, "{nodes:?}");
    for &master in &masters {
        assert_eq!(replica_of(&nodes, master).len(), 1, "{master}: {nodes:?}");
    }
    for &port in &ports {
        assert_eq!(cluster_state(port), "ok", "node {port}");
    }

    let key = unique_namespace("cluster-failover");
    let old_master = cluster.master_for_key(&key).expect("find the key's master");
    assert!(
        masters.contains(&old_master),
        "{old_master} not in {masters:?}"
    );
    let replica = replica_of(&nodes, old_master)[0];
    write_replicated(old_master, &key, "kept");

    // Nothing failed yet, so waiting for a different master must time out, typed.
    match cluster.wait_for_master_of_key(&key, old_master, Duration::from_millis(300)) {
        Err(HarnessError::FailoverTimedOut { previous, .. }) => assert_eq!(previous, old_master),
        other => panic!("expected a timeout without a failover, got {other:?}"),
    }

    cluster.kill_node(old_master).expect("SIGKILL the master");
    let killed = Instant::now();
    let new_master = cluster
        .wait_for_master_of_key(&key, old_master, CLUSTER_FAILOVER_WITHIN)
        .expect("a replica takes over");
    eprintln!("cluster failover took {:?}", killed.elapsed());
    assert_eq!(
        new_master, replica,
        "the killed master's own replica takes over"
    );
    assert_eq!(cluster.master_for_key(&key).expect("master"), new_master);
    let value: String = connect(new_master)
        .get(&key)
        .expect("GET on the new master");
    assert_eq!(value, "kept");
    for &port in ports.iter().filter(|&&port| port != old_master) {
        assert_eq!(cluster_state(port), "ok", "node {port} after the failover");
    }

    let restarted = Instant::now();
    cluster
        .restart_node(old_master)
        .expect("restart the old master");
    let rejoined = eventually(REJOIN_WITHIN, || {
        let nodes = cluster.nodes().ok()?;
        let node = nodes.iter().find(|node| node.port == old_master)?;
        let seen_as_replica = node.role
            == ClusterRole::Replica {
                master_port: Some(new_master),
            }
            && !node.failing;
        let role = role(old_master);
        let replicating = bulk(&role[0]) == "slave"
            && role.get(2).map(bulk) == Some(new_master.to_string())
            && role.get(3).map(bulk).as_deref() == Some("connected");
        (seen_as_replica && replicating).then_some(())
    });
    assert!(
        rejoined.is_some(),
        "old master {old_master} did not rejoin as a replica of {new_master}: {:?}",
        cluster.nodes()
    );
    eprintln!(
        "the old cluster master rejoined as a replica in {:?}",
        restarted.elapsed()
    );

    match cluster.kill_node(1) {
        Err(HarnessError::UnknownNode { port: 1, known, .. }) => assert_eq!(known, ports),
        other => panic!("expected UnknownNode, got {other:?}"),
    }
}

#[test]
fn sentinel_reports_a_new_master_after_the_master_is_killed() {
    let started = Instant::now();
    let mut sentinel = RedisSentinel::start("harness-master").expect("start a Sentinel set-up");
    eprintln!("sentinel set-up ready in {:?}", started.elapsed());

    let sentinels = sentinel.sentinel_ports();
    assert_eq!(sentinels.len(), 3);
    assert_eq!(
        sentinel.url(),
        format!(
            "redis+sentinel://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}/harness-master/0",
            sentinels[0], sentinels[1], sentinels[2]
        )
    );
    assert_eq!(sentinel.master_name(), "harness-master");
    let servers = sentinel.server_ports();
    let (old_master, replica) = (servers[0], servers[1]);
    assert_eq!(sentinel.master_port().expect("ask a sentinel"), old_master);
    assert_eq!(bulk(&role(old_master)[0]), "master");
    assert_eq!(bulk(&role(replica)[0]), "slave");

    let key = unique_namespace("sentinel-failover");
    write_replicated(old_master, &key, "kept");

    match sentinel.wait_for_new_master(old_master, Duration::from_millis(300)) {
        Err(HarnessError::FailoverTimedOut { previous, .. }) => assert_eq!(previous, old_master),
        other => panic!("expected a timeout without a failover, got {other:?}"),
    }

    sentinel.kill_node(old_master).expect("SIGKILL the master");
    let killed = Instant::now();
    let new_master = sentinel
        .wait_for_new_master(old_master, SENTINEL_FAILOVER_WITHIN)
        .expect("the sentinels promote the replica");
    eprintln!("sentinel failover took {:?}", killed.elapsed());
    assert_eq!(new_master, replica);
    assert_eq!(sentinel.master_port().expect("ask a sentinel"), new_master);
    assert_eq!(bulk(&role(new_master)[0]), "master");
    let value: String = connect(new_master)
        .get(&key)
        .expect("GET on the new master");
    assert_eq!(value, "kept");

    let restarted = Instant::now();
    sentinel
        .restart_node(old_master)
        .expect("restart the old master");
    let rejoined = eventually(REJOIN_WITHIN, || {
        let role = role(old_master);
        (bulk(&role[0]) == "slave"
            && role.get(2).map(bulk) == Some(new_master.to_string())
            && role.get(3).map(bulk).as_deref() == Some("connected"))
        .then_some(())
    });
    assert!(
        rejoined.is_some(),
        "old master {old_master} did not become a replica of {new_master}: {:?}",
        role(old_master)
    );
    eprintln!(
        "the old sentinel master became a replica in {:?}",
        restarted.elapsed()
    );

    match sentinel.restart_node(1) {
        Err(HarnessError::UnknownNode { port: 1, known, .. }) => {
            assert_eq!(known.len(), 5, "{known:?}");
        }
        other => panic!("expected UnknownNode, got {other:?}"),
    }
}

#[test]
fn cluster_and_sentinel_nodes_die_with_the_process_that_started_them() {
    // The killed helper cannot remove its nodes' directories; keep them in one we remove.
    let scratch = tempfile::tempdir().expect("scratch directory");
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "helper_start_topologies_and_wait",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .env("TMPDIR", scratch.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn helper");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut ports: Vec<u16> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("helper output");
        // The test harness may print "test name ... " on the same line first.
        if let Some((_, list)) = line.split_once("PORTS ") {
            ports = list
                .split(',')
                .map(|port| port.trim().parse().expect("a port"))
                .collect();
            break;
        }
    }
    assert_eq!(ports.len(), 11, "helper did not report its 6 + 5 nodes");
    let listening = |port: u16| TcpStream::connect(("127.0.0.1", port)).is_ok();
    assert!(ports.iter().all(|&port| listening(port)), "{ports:?}");

    // SIGKILL: no destructor, no exit hook; only the parent-death signal can stop them.
    child.kill().expect("kill helper");
    child.wait().expect("reap helper");
    let all_gone = eventually(Duration::from_secs(5), || {
        (!ports.iter().any(|&port| listening(port))).then_some(())
    });
    assert!(
        all_gone.is_some(),
        "nodes outlived their parent: {:?}",
        ports.iter().filter(|&&p| listening(p)).collect::<Vec<_>>()
    );
}

#[test]
#[ignore = "helper process for cluster_and_sentinel_nodes_die_with_the_process_that_started_them"]
fn helper_start_topologies_and_wait() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let cluster = RedisCluster::start().expect("start a cluster");
    let sentinel = RedisSentinel::start("helper").expect("start a Sentinel set-up");
    let ports: Vec<String> = cluster
        .ports()
        .into_iter()
        .chain(sentinel.server_ports())
        .chain(sentinel.sentinel_ports())
        .map(|port| port.to_string())
        .collect();
    println!("PORTS {}", ports.join(","));
    std::thread::sleep(Duration::from_secs(120));
}
