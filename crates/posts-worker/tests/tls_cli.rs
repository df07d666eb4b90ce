//! `posts-worker` over `rediss://`: a worker (`run`, with its scheduler) and a client
//! (`submit --wait`) reach a password-protected TLS Redis from redis-harness whose private
//! CA is trusted through `SSL_CERT_FILE`; without that trust the client is refused with a
//! clear error.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use redis_harness::{OwnedRedis, unique_namespace};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_posts-worker");
const PASSWORD: &str = "cli-tls-secret";

/// A `posts-worker` command on `url`, trusting `ca` when given and nothing else.
fn command(url: &str, namespace: &str, db: &Path, ca: Option<&Path>, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .args(["--redis-url", url, "--namespace", namespace])
        .arg("--db")
        .arg(db)
        .env_remove("REDIS_URL")
        .env_remove("POSTS_WORKER_BROKER")
        .env_remove("SSL_CERT_DIR")
        .env("RUST_LOG", "warn");
    match ca {
        Some(ca) => command.env("SSL_CERT_FILE", ca),
        None => command.env_remove("SSL_CERT_FILE"),
    };
    command
}

fn check(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Kills the worker process when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn run_and_submit_wait_work_over_rediss() {
    let redis = OwnedRedis::start_secured(PASSWORD).expect("a redis-server with TLS");
    let url = redis.tls_url().expect("a TLS URL").to_owned();
    assert!(url.starts_with("rediss://"), "{url}");
    let ca = redis.ca_file().expect("a CA file").to_owned();
    let namespace = unique_namespace("cli-tls");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("posts.db");
    let raw = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample_data/raw");

    let seeded = Command::new(BIN)
        .arg("seed")
        .arg("--raw-dir")
        .arg(&raw)
        .arg("--db")
        .arg(&db)
        .env("RUST_LOG", "warn")
        .output()
        .expect("posts-worker seed runs");
    check(&seeded, "seeding the sample data");

    // Without trusting the private CA, the client is refused before sending anything.
    let refused = command(&url, &namespace, &db, None, &["status", "--json"])
        .output()
        .expect("posts-worker status runs");
    assert!(
        !refused.status.success(),
        "an untrusted server was accepted"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(
        stderr.contains("no redis answers") && stderr.contains("certificate"),
        "{stderr}"
    );

    let worker = command(
        &url,
        &namespace,
        &db,
        Some(&ca),
        &["run", "--concurrency", "2"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("posts-worker run starts");
    let mut worker = KillOnDrop(worker);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = command(&url, &namespace, &db, Some(&ca), &["status", "--json"])
            .output()
            .expect("posts-worker status runs");
        check(&status, "status over TLS");
        let stats: Value = serde_json::from_slice(&status.stdout).expect("status is JSON");
        // The worker heartbeats and its scheduler stored the built-in schedule.
        if stats["stats"]["workers"].as_u64() >= Some(1)
            && stats["stats"]["schedules"].as_u64() >= Some(1)
        {
            break;
        }
        if let Some(exit) = worker.0.try_wait().expect("worker state") {
            panic!("the worker exited over TLS: {exit}");
        }
        assert!(
            Instant::now() < deadline,
            "the worker never registered: {stats}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let submitted = command(
        &url,
        &namespace,
        &db,
        Some(&ca),
        &[
            "submit",
            "substring_matches_by_platform",
            "trump",
            "2017-05-31",
            "2017-06-01",
            "--wait",
            "30",
        ],
    )
    .output()
    .expect("posts-worker submit runs");
    check(&submitted, "submit --wait over TLS");
    let counts: Value = serde_json::from_slice(&submitted.stdout).expect("the result is JSON");
    let total = counts["total_rows"].as_u64().expect("total_rows");
    assert!(
        total > 0,
        "the sample data has posts on 2017-05-31: {counts}"
    );
    assert!(
        worker.0.try_wait().expect("worker state").is_none(),
        "the worker exited"
    );
}
