//! The `posts-worker` binary on a real local Redis Cluster (3 masters, 3 replicas) and
//! Sentinel deployment: one worker process serving two namespaces, client commands in
//! each, `status` listing the worker, and the startup errors of bad URLs.

mod binary_support;

use binary_support::{Deployment, assert_success, json};
use redis_harness::{RedisCluster, RedisSentinel, unique_namespace};
use serde_json::Value;

/// `submit ... --wait` of a task over the sample data; its counts.
fn substring_counts(deployment: &Deployment, namespace: &str) -> Value {
    let out = deployment.run_in(
        namespace,
        &[
            "submit",
            "substring_matches_by_platform",
            "trump",
            "2017-05-31",
            "2017-06-01",
            "--wait",
            "30",
        ],
    );
    assert_success(&out, &format!("submit in {namespace}"));
    json(&out.stdout)
}

#[test]
fn one_worker_process_serves_two_namespaces_on_a_cluster() {
    let cluster = RedisCluster::start().expect("start a local Redis Cluster");
    let deployment = Deployment::seeded_on("cluster_cli", &cluster.url());
    let second = unique_namespace("cluster_cli_second");
    // The two namespaces' slots, and so (usually) their masters, differ.
    let masters = [
        cluster
            .master_for_key(&format!("{{{}}}:queues", deployment.namespace))
            .expect("first namespace's master"),
        cluster
            .master_for_key(&format!("{{{second}}}:queues"))
            .expect("second namespace's master"),
    ];
    println!("namespace masters: {masters:?}");
    let worker = deployment.start_run("worker", &["--also-namespaces", &second]);
    deployment.wait_for_workers(1);

    let first = substring_counts(&deployment, &deployment.namespace);
    let other = substring_counts(&deployment, &second);
    assert!(first["total_rows"].as_u64() > Some(0), "{first}");
    assert_eq!(
        first, other,
        "the same task in either namespace gives the same counts"
    );

    for namespace in [deployment.namespace.as_str(), second.as_str()] {
        let out = deployment.run_in(namespace, &["status", "--json"]);
        assert_success(&out, "status --json");
        let status = json(&out.stdout);
        let workers = status["workers"].as_array().expect("workers");
        assert_eq!(workers.len(), 1, "{namespace}: {status}");
        let info = &workers[0]["info"];
        assert_eq!(
            info["pid"].as_u64(),
            Some(u64::from(worker.pid())),
            "{status}"
        );
        assert!(
            info["host"].as_str().is_some_and(|h| !h.is_empty()),
            "{status}"
        );
        assert!(info["concurrency"].as_u64() >= Some(1), "{status}");
        assert_eq!(status["stats"]["processed"], 1, "{namespace}: {status}");
        let text = deployment.run_in(namespace, &["status"]);
        assert_success(&text, "status");
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains(&format!("pid {}", worker.pid())), "{text}");
    }
    let log = worker.log();
    assert!(
        log.contains("Celery listener off: on a Redis Cluster"),
        "the worker says why Celery is off: {log}"
    );
    worker.terminate_cleanly();
}

#[test]
fn the_worker_and_clients_run_on_a_sentinel_master() {
    let sentinel = RedisSentinel::start("posts").expect("start a local Sentinel deployment");
    let deployment = Deployment::seeded_on("sentinel_cli", &sentinel.url());
    let worker = deployment.start_run("worker", &["--no-celery"]);
    deployment.wait_for_workers(1);
    let counts = substring_counts(&deployment, &deployment.namespace);
    assert!(counts["total_rows"].as_u64() > Some(0), "{counts}");
    worker.terminate_cleanly();
}

/// `posts-worker --redis-url URL status`: its exit code and stderr.
fn status_at(url: &str) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_posts-worker"))
        .args(["--redis-url", url, "--namespace", "bad_urls", "status"])
        .env_remove("REDIS_URL")
        .env_remove("POSTS_WORKER_BROKER")
        .output()
        .expect("posts-worker runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_cluster_and_sentinel_urls_are_startup_errors() {
    for (url, says) in [
        ("redis+sentinel://127.0.0.1:1", "master name is missing"),
        (
            "redis+cluster://127.0.0.1:notaport",
            "port must be a number",
        ),
    ] {
        let (code, stderr) = status_at(url);
        assert_eq!(code, Some(1), "{url}: {stderr}");
        assert!(stderr.contains(says), "{url}: {stderr}");
    }
    let sentinel = RedisSentinel::start("known").expect("start a local Sentinel deployment");
    let unknown = sentinel.url().replace("/known/", "/unknown/");
    let (code, stderr) = status_at(&unknown);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("\"unknown\"") && stderr.contains("check it in the URL"),
        "{stderr}"
    );
}
