//! Failover tests on real deployments: the master holding a namespace is SIGKILLed while
//! clients submit and a worker runs, on a Redis Cluster (3 masters + 3 replicas, node timeout
//! 2 s) and on a Sentinel deployment (1 master + 1 replica + 3 Sentinels). A replica takes
//! over; every job whose submit returned success must end with its correct result, with no
//! reconnection done by hand. Both deployments wait for a replica on enqueue and
//! acknowledgement (the default), which is what makes that hold.
//!
//! Also here: what a bad cluster or sentinel URL, an unknown master name, and a cluster
//! whose nodes are all gone give back.

mod common;

use std::time::{Duration, Instant};

use jobq::{AsyncResult, Broker, Client, Error, RedisBroker};
use redis_harness::{RedisCluster, RedisSentinel, unique_namespace};

use common::{RunningWorker, fast_config, test_app};

/// Jobs submitted across the failover.
const JOBS: i64 = 200;
/// The kill comes after this many submits returned.
const KILL_AFTER: usize = 60;
/// Time between submits, so the stream outlasts the failover (about 3-5 s here) by a few
/// seconds.
const SUBMIT_EVERY: Duration = Duration::from_millis(50);
/// How long a job may take to finish once the stream is over (failover included).
const RESULT_WAIT: Duration = Duration::from_secs(60);

/// The deployment under test, as far as the scenario needs it.
trait Deployment {
    /// SIGKILLs the master now holding `key`; returns its port.
    fn kill_master_of(&mut self, key: &str) -> u16;
    /// Waits until another node is master; returns its port.
    fn wait_for_new_master(&mut self, key: &str, old: u16) -> u16;
}

impl Deployment for RedisCluster {
    fn kill_master_of(&mut self, key: &str) -> u16 {
        let port = self.master_for_key(key).expect("the key's master");
        self.kill_node(port).expect("SIGKILL the master");
        port
    }

    fn wait_for_new_master(&mut self, key: &str, old: u16) -> u16 {
        RedisCluster::wait_for_master_of_key(self, key, old, Duration::from_secs(30))
            .expect("a replica takes over the slot")
    }
}

impl Deployment for RedisSentinel {
    fn kill_master_of(&mut self, _key: &str) -> u16 {
        let port = self.master_port().expect("the master");
        self.kill_node(port).expect("SIGKILL the master");
        port
    }

    fn wait_for_new_master(&mut self, _key: &str, old: u16) -> u16 {
        RedisSentinel::wait_for_new_master(self, old, Duration::from_secs(30))
            .expect("the Sentinels promote the replica")
    }
}

/// Submits [`JOBS`] `add` jobs one by one while a worker runs, kills the namespace's master
/// after [`KILL_AFTER`] of them, and checks every accepted job's result.
async fn no_accepted_job_is_lost_when_the_master_dies(
    deployment: &mut impl Deployment,
    url: &str,
    label: &str,
) {
    let namespace = unique_namespace(label);
    let broker = Broker::redis(url, &namespace)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    broker.ping().await.expect("the deployment answers");
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker.clone());

    let mut accepted: Vec<(i64, AsyncResult<i64>)> = Vec::new();
    let mut refused = Vec::new();
    let mut killed = None;
    let started = Instant::now();
    for i in 0..JOBS {
        match client.delay::<i64>("add", [i, 1000]).await {
            Ok(result) => accepted.push((i, result)),
            Err(e) => refused.push(format!("job {i}: {e}")),
        }
        if killed.is_none() && accepted.len() + refused.len() == KILL_AFTER {
            let key = format!("{{{namespace}}}:queues");
            let old = deployment.kill_master_of(&key);
            killed = Some((old, key, Instant::now()));
        }
        tokio::time::sleep(SUBMIT_EVERY).await;
    }
    let (old, key, killed_at) = killed.expect("the master was killed");
    let new = deployment.wait_for_new_master(&key, old);
    let mut wrong = Vec::new();
    for (i, result) in &accepted {
        match result.get(RESULT_WAIT).await {
            Ok(sum) if sum == i + 1000 => {}
            other => wrong.push(format!("job {i}: {other:?}")),
        }
    }
    let recovered_in = killed_at.elapsed();
    println!(
        "{label}: master {old} killed, {new} took over; {} of {JOBS} submits accepted, {} refused \
         during the failover; all accepted results were in {:.1} s after the kill ({:.1} s in all)",
        accepted.len(),
        refused.len(),
        recovered_in.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    assert!(
        wrong.is_empty(),
        "{} of {} accepted jobs lost or wrong: {wrong:?}",
        wrong.len(),
        accepted.len()
    );
    // Submits succeed again once a replica took over: the client reconnected by itself.
    assert!(
        accepted.len() >= KILL_AFTER + 20,
        "too few submits succeeded after the failover: {} accepted, {} refused, the first: {:?}",
        accepted.len(),
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failover_loses_no_accepted_job() {
    let mut cluster = RedisCluster::start().expect("start a local Redis Cluster");
    let url = cluster.url();
    no_accepted_job_is_lost_when_the_master_dies(&mut cluster, &url, "cluster_failover").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_loses_no_accepted_job() {
    let mut sentinel = RedisSentinel::start("failover").expect("start a local Sentinel deployment");
    let url = sentinel.url();
    no_accepted_job_is_lost_when_the_master_dies(&mut sentinel, &url, "sentinel_failover").await;
}

/// Malformed URLs fail when the broker is built, saying what is wrong.
#[tokio::test]
async fn malformed_cluster_and_sentinel_urls_are_refused_at_once() {
    for (url, says) in [
        ("redis+sentinel://127.0.0.1:26379", "master name is missing"),
        (
            "redis+sentinel://127.0.0.1:26379/m/x",
            "database must be a number",
        ),
        (
            "redis+cluster://127.0.0.1:notaport",
            "port must be a number",
        ),
        ("redis+cluster://127.0.0.1:7000,,127.0.0.1:7001", "host 2"),
        ("redis+cluster://127.0.0.1:7000/3", "only database 0"),
    ] {
        match RedisBroker::builder(url).connect().await {
            Err(Error::InvalidUrl(reason)) => {
                assert!(
                    reason.contains(says),
                    "{url}: {reason:?} does not say {says:?}"
                )
            }
            other => panic!("{url}: expected an invalid-URL error, got {other:?}"),
        }
    }
}

/// A master name no Sentinel knows is a typed error naming it and the Sentinels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_sentinel_master_is_a_typed_error() {
    let ports = shared_sentinel_ports();
    let url = format!(
        "redis+sentinel://{}/no-such-master/0",
        ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let broker = Broker::redis(&url, "unknown_master").await.expect("builds");
    match broker.ping().await {
        Err(Error::UnknownSentinelMaster(message)) => {
            assert!(message.contains("no-such-master"), "{message}");
            assert!(message.contains(&ports[0].to_string()), "{message}");
        }
        other => panic!("expected UnknownSentinelMaster, got {other:?}"),
    }
}

/// The Sentinel ports of this process's shared Sentinel deployment.
fn shared_sentinel_ports() -> Vec<u16> {
    let url = common::shared_sentinel_url();
    let hosts = url
        .trim_start_matches("redis+sentinel://")
        .split('/')
        .next()
        .expect("hosts")
        .to_owned();
    hosts
        .split(',')
        .map(|h| h.rsplit(':').next().expect("port").parse().expect("a port"))
        .collect()
}

/// With every node of a cluster gone, a command retries with backoff, then returns a typed
/// Redis error: it neither panics nor hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_cluster_gives_a_typed_error_after_retrying() {
    let mut cluster = RedisCluster::start().expect("start a local Redis Cluster");
    let broker = RedisBroker::builder(cluster.url())
        .namespace(unique_namespace("vanished"))
        .response_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("builds");
    let client = Client::new(broker.clone());
    client
        .delay::<i64>("add", [1, 2])
        .await
        .expect("a submit while the cluster is up");
    for port in cluster.ports() {
        cluster.kill_node(port).expect("SIGKILL a node");
    }
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(30), client.delay::<i64>("add", [1, 2]))
        .await
        .expect("the submit returned within 30 s instead of hanging");
    let took = started.elapsed();
    match outcome {
        Err(Error::Redis { source, .. }) => {
            println!("with no node left, the submit failed after {took:?}: {source}");
        }
        other => panic!("expected a typed Redis error, got {other:?}"),
    }
}

/// A namespace's keys carry its hash tag, so they all live in one slot (scripts stay legal
/// on a Cluster); a namespace that would break the tag is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_lives_in_one_slot_and_cannot_break_its_hash_tag() {
    let url = common::shared_cluster_url();
    for bad in ["a{b", "a}b", "{ab}"] {
        match RedisBroker::builder(&url).namespace(bad).connect().await {
            Err(Error::InvalidNamespace { reason, .. }) => {
                assert!(reason.contains("hash tag"), "{bad}: {reason}")
            }
            other => panic!("{bad}: expected InvalidNamespace, got {other:?}"),
        }
    }
    let namespace = unique_namespace("one_slot");
    let broker = Broker::redis(&url, &namespace).await.expect("connect");
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker.clone());
    let sum = client.delay::<i64>("add", [2, 3]).await.expect("submit");
    assert_eq!(sum.get(Duration::from_secs(20)).await.expect("result"), 5);
    let failed = client
        .delay::<()>("fail", ["Boom", "on purpose"])
        .await
        .expect("submit");
    assert!(failed.get(Duration::from_secs(20)).await.is_err());
    let stats = client.stats().await.expect("stats");
    assert!(stats.processed >= 2, "{stats:?}");
    worker.stop().await;

    let mut slots = std::collections::BTreeSet::new();
    let mut keys = 0;
    for address in url.trim_start_matches("redis+cluster://").split(',') {
        let node = redis::Client::open(format!("redis://{address}")).expect("node url");
        let mut conn = node.get_connection().expect("connect to a node");
        let found: Vec<String> = redis::cmd("KEYS")
            .arg(format!("*{namespace}*"))
            .query(&mut conn)
            .expect("KEYS");
        for key in found {
            let slot: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(&key)
                .query(&mut conn)
                .expect("KEYSLOT");
            slots.insert(slot);
            keys += 1;
        }
    }
    assert!(keys >= 6, "the namespace wrote its keys: {keys}");
    assert_eq!(slots.len(), 1, "the namespace's keys span slots: {slots:?}");
}
