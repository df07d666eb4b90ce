//! The `posts-worker` binary as a user runs it: exit codes and output shapes of `submit`,
//! `get-key`, `status`, `dead`, `entities` and `demo`, log output and shutdown signals,
//! against a worker process, a real Redis from redis-harness and a posts DB seeded from
//! the sample data.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use posts_seed::{SeedOptions, seed};
use redis_harness::{TestRedis, unique_namespace};
use serde_json::Value;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_posts-worker");

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A posts DB seeded from `sample_data/raw` in a temp dir, a namespace of its own, and
/// (when started) a worker process that is killed when the fixture is dropped.
struct Fixture {
    _dir: TempDir,
    db: PathBuf,
    redis_url: String,
    namespace: String,
    worker: Option<Child>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("posts.db");
        let raw = workspace_root().join("sample_data/raw");
        seed(&SeedOptions::raw(&db, raw), &mut |_| {}).expect("sample data seeds");
        let redis = TestRedis::shared().unwrap_or_else(|e| panic!("{e}"));
        Fixture {
            _dir: dir,
            db,
            redis_url: redis.url().to_owned(),
            namespace: unique_namespace("cli"),
            worker: None,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("REDIS_URL", &self.redis_url)
            .env("POSTS_DB_PATH", &self.db)
            .env("JOBQ_NAMESPACE", &self.namespace)
            .env_remove("POSTS_WORKER_BROKER")
            .env("RUST_LOG", "warn");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("posts-worker runs")
    }

    fn start_worker(&mut self) {
        let child = self
            .command(&["run", "--no-scheduler", "--concurrency", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("worker starts");
        self.worker = Some(child);
        // The worker is up once it heartbeats.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let status = self.run(&["status", "--json"]);
            if status.status.success()
                && json(&status.stdout)["stats"]["workers"].as_u64() >= Some(1)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the worker did not register within 20 s");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mut worker) = self.worker.take() {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    }
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

#[test]
fn submit_wait_prints_the_result_and_exits_0() {
    let mut fx = Fixture::new();
    fx.start_worker();
    let out = fx.run(&[
        "submit",
        "substring_matches_by_platform",
        "trump",
        "2017-05-31",
        "2017-06-01",
        "--wait",
        "20",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts = json(&out.stdout);
    let total = counts["total_rows"].as_u64().expect("total_rows");
    assert!(
        total > 0,
        "the sample data has posts on 2017-05-31: {counts}"
    );
    let matched: u64 = ["facebook", "reddit", "twitter"]
        .iter()
        .filter_map(|p| counts[p].as_u64())
        .sum();
    assert!(matched > 0 && matched <= total, "{counts}");
}

#[test]
fn a_task_failure_is_json_on_stderr_with_exit_1() {
    let mut fx = Fixture::new();
    fx.start_worker();
    let out = fx.run(&[
        "submit",
        "substring_matches_by_platform",
        "trump",
        "2017-13-45",
        "2017-06-01",
        "--wait",
        "20",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let error = json(&out.stderr);
    assert_eq!(error["error"]["kind"], "InvalidArgument");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("from_"),
        "{error}"
    );

    let out = fx.run(&[
        "submit",
        "query_posts_db",
        "SELECT * FROM bar",
        "--wait",
        "20",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let error = json(&out.stderr);
    assert_eq!(error["error"]["kind"], "SqlError");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("no such table: bar")
    );
}

#[test]
fn a_timeout_exits_2_and_without_wait_the_job_id_is_printed() {
    // No worker listens on this fixture's namespace.
    let fx = Fixture::new();
    let out = fx.run(&["submit", "query_posts_db", "SELECT 1", "--wait", "0.3"]);
    assert_eq!(out.status.code(), Some(2));

    let out = fx.run(&["submit", "query_posts_db", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(0));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(id.len(), 36, "a UUID job id, got {id:?}");
}

#[test]
fn explicit_key_results_are_read_and_deleted_with_get_key() {
    let mut fx = Fixture::new();
    fx.start_worker();
    let key = format!("{}:top", fx.namespace);
    let out = fx.run(&[
        "submit",
        "count_top_named_entities",
        "3",
        "2017-05-31",
        "2017-06-01",
        &key,
        "--wait",
        "30",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out.stdout), Value::Bool(true));

    let out = fx.run(&["get-key", &key, "--delete"]);
    assert_eq!(out.status.code(), Some(0));
    let report = json(&out.stdout);
    let top = report["top_named_entities"].as_array().expect("a list");
    assert_eq!(top.len(), 3, "{report}");
    assert!(report["timestamp"].is_string());

    let out = fx.run(&["get-key", &key]);
    assert_eq!(out.status.code(), Some(1), "the key was deleted");
}

#[test]
fn status_and_dead_letters_describe_the_namespace() {
    let mut fx = Fixture::new();
    fx.start_worker();
    let out = fx.run(&["submit", "no_such_task", "--wait", "20"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out.stderr)["error"]["kind"], "UnknownTask");

    let out = fx.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let status = json(&out.stdout);
    assert_eq!(status["namespace"], fx.namespace.as_str());
    assert!(status["stats"]["workers"].as_u64() >= Some(1));
    assert_eq!(status["stats"]["dead"], 1);

    let out = fx.run(&["dead", "list"]);
    let letters: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| json(l.as_bytes()))
        .collect();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["task"], "no_such_task");
    assert_eq!(letters[0]["reason"]["kind"], "UnknownTask");

    let out = fx.run(&["dead", "purge"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(fx.run(&["dead", "list"]).stdout.is_empty());
}

#[test]
fn missing_db_and_unreachable_redis_are_one_line_errors() {
    let fx = Fixture::new();
    let out = fx.run(&["--db", "/nonexistent/posts.db", "run"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not exist") && stderr.contains("xtask seed"),
        "{stderr}"
    );

    let out = fx.run(&["--redis-url", "redis://127.0.0.1:1/0", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no Redis answers at redis://127.0.0.1:1/0"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn entities_reads_lines_and_writes_one_json_array_per_line() {
    let fx = Fixture::new();
    let mut child = fx
        .command(&["entities"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("entities runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"Trump met Macron in Paris.\nnothing here\n")
        .expect("write stdin");
    let out = child.wait_with_output().expect("entities finishes");
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| json(l.as_bytes()))
        .collect();
    assert_eq!(lines.len(), 2);
    let first: Vec<&str> = lines[0]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        first.contains(&"Trump") && first.contains(&"Paris"),
        "{first:?}"
    );
    assert_eq!(lines[1], Value::Array(vec![]));
}

#[test]
fn demo_seeds_a_missing_db_and_runs_the_three_tasks_on_the_memory_broker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("fresh.db");
    let out = Command::new(BIN)
        .current_dir(workspace_root())
        .args(["--broker", "memory", "--db"])
        .arg(&db)
        .arg("demo")
        .env_remove("REDIS_URL")
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists(), "the demo seeded the DB");
    assert!(stdout.contains("Broker: in-memory"), "{stdout}");
    assert!(stdout.contains("\"total_rows\":"), "{stdout}");
    assert!(stdout.contains("task returned true"), "{stdout}");
}

#[test]
fn logs_on_a_piped_stderr_carry_no_colour_codes() {
    let fx = Fixture::new();
    let out = fx
        .command(&["--broker", "memory", "demo"])
        .env("RUST_LOG", "info")
        .output()
        .expect("demo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(
        stderr.contains("posts service started"),
        "the demo logs at info: {stderr}"
    );
    assert!(
        !out.stderr.windows(2).any(|pair| pair == b"\x1b["),
        "ANSI escape codes in piped logs: {stderr:?}"
    );
}

/// Sends `signal` (e.g. `-INT`) to the process `pid` with the system's `kill`.
fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {pid} failed");
}

#[test]
fn a_first_interrupt_drains_and_a_second_exits_130_at_once() {
    let mut fx = Fixture::new();
    fx.start_worker();
    // A read-only query that runs far longer than this test (its time limit is 60 s).
    let out = fx.run(&[
        "submit",
        "query_posts_db",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = json(&fx.run(&["status", "--json"]).stdout);
        if status["stats"]["in_flight"].as_u64() >= Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job was not fetched: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut worker = fx.worker.take().expect("the worker runs");

    send_signal(worker.id(), "-INT");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        worker.try_wait().expect("wait").is_none(),
        "the first interrupt lets the running job finish (up to the grace period)"
    );

    send_signal(worker.id(), "-INT");
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = worker.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = worker.kill();
            panic!("the second interrupt did not end the worker within 5 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
}
