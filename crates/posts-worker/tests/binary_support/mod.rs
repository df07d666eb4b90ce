//! The `posts-worker` binary driven only through its command line, as an operator would:
//! a posts DB seeded by `posts-worker seed`, `posts-worker run` processes on a throwaway
//! Redis, client commands against them, and SIGTERM with the exit status checked. The
//! end-to-end tests use this instead of the library API so they do not depend on how the
//! crates are wired inside.

// Each test file that includes this module uses a different part of it.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use redis_harness::{TestRedis, unique_namespace};
use serde_json::Value;
use tempfile::TempDir;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_posts-worker");

/// How long a worker gets to register, and a stopped worker to exit. Generous: the
/// machine may be shared and busy; the tests never measure time, they only wait.
pub(crate) const PROCESS_DEADLINE: Duration = Duration::from_secs(60);

/// The repository's `sample_data/raw` directory.
pub(crate) fn sample_raw_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample_data/raw")
}

/// A posts DB seeded from the sample data in a temp dir, a Redis and a namespace of its own.
pub(crate) struct Deployment {
    dir: TempDir,
    pub db: PathBuf,
    pub redis_url: String,
    pub namespace: String,
}

impl Deployment {
    /// Seeds `sample_data/raw` into a fresh DB with `posts-worker --db DB seed`.
    pub(crate) fn seeded(prefix: &str) -> Deployment {
        let redis = TestRedis::shared().unwrap_or_else(|e| panic!("{e}"));
        Deployment::seeded_on(prefix, redis.url())
    }

    /// [`seeded`](Self::seeded), on the Redis at `redis_url` instead of the shared one
    /// (for tests whose keys are not namespaced, such as Celery's).
    pub(crate) fn seeded_on(prefix: &str, redis_url: &str) -> Deployment {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("posts.db");
        let deployment = Deployment {
            db,
            redis_url: redis_url.to_owned(),
            namespace: unique_namespace(prefix),
            dir,
        };
        let raw = sample_raw_dir();
        let out = deployment.run(&["seed", "--raw-dir", path_arg(&raw)]);
        assert_success(&out, "posts-worker seed");
        deployment
    }

    /// The deployment's temp dir (the DB, logs, and files tests put there).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A file path inside the deployment's temp dir.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `posts-worker` with this deployment's DB, Redis and namespace given as flags, and
    /// none of the environment variables that could override the test's choices.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        self.command_in(&self.namespace, args)
    }

    /// [`command`](Self::command) in `namespace` instead of the deployment's own.
    pub(crate) fn command_in(&self, namespace: &str, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--db")
            .arg(&self.db)
            .args(["--redis-url", &self.redis_url])
            .args(["--namespace", namespace])
            .args(args)
            .env_remove("POSTS_WORKER_BROKER")
            .env_remove("POSTS_WORKER_SCHEDULES")
            .env_remove("POSTS_WORKER_CONCURRENCY")
            .env("RUST_LOG", "warn");
        command
    }

    /// Runs a client command to completion.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.run_in(&self.namespace, args)
    }

    /// [`run`](Self::run) in `namespace` instead of the deployment's own.
    pub(crate) fn run_in(&self, namespace: &str, args: &[&str]) -> Output {
        self.command_in(namespace, args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("posts-worker {args:?} did not start: {e}"))
    }

    /// Runs a client command that must exit 0 and print one JSON value.
    pub(crate) fn run_json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert_success(&out, &format!("posts-worker {args:?}"));
        json(&out.stdout)
    }

    /// `posts-worker status --json`.
    pub(crate) fn status(&self) -> Value {
        self.run_json(&["status", "--json"])
    }

    /// Starts `posts-worker run ARGS` in the background, logging to a file in the temp dir.
    pub(crate) fn start_run(&self, name: &str, args: &[&str]) -> RunProcess {
        let log = self.path(&format!("{name}.log"));
        let log_file = File::create(&log).expect("worker log file");
        let child = self
            .command(&[&["run"], args].concat())
            .env("RUST_LOG", "info")
            // Plain log lines: tests read the scheduler's structured fields from them.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("posts-worker run starts");
        RunProcess {
            name: name.to_owned(),
            child: Some(child),
            log,
        }
    }

    /// Starts `posts-worker dashboard --listen 127.0.0.1:0 ARGS` and waits for the URL it
    /// prints; returns the process and the URL (`http://127.0.0.1:<port>/`).
    pub(crate) fn start_dashboard(&self, args: &[&str]) -> (RunProcess, String) {
        self.start_dashboard_on("127.0.0.1:0", args)
    }

    /// [`start_dashboard`](Self::start_dashboard) on another listening address.
    pub(crate) fn start_dashboard_on(&self, listen: &str, args: &[&str]) -> (RunProcess, String) {
        let log = self.path("dashboard.log");
        let out = self.path("dashboard.out");
        let child = self
            .command(&[&["dashboard", "--listen", listen], args].concat())
            .env_remove("POSTS_WORKER_DASHBOARD_TOKEN")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(File::create(&out).expect("dashboard stdout file"))
            .stderr(File::create(&log).expect("dashboard log file"))
            .spawn()
            .expect("posts-worker dashboard starts");
        let mut process = RunProcess {
            name: "dashboard".to_owned(),
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            let printed = std::fs::read_to_string(&out).unwrap_or_default();
            if let Some(url) = printed
                .lines()
                .find_map(|line| line.strip_prefix("dashboard: "))
            {
                return (process, url.trim().to_owned());
            }
            assert!(
                process.is_running() && Instant::now() < deadline,
                "the dashboard printed no URL; log:\n{}",
                process.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls `status --json` until `done` holds for it, and returns that status.
    pub(crate) fn wait_for_status(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            let status = self.status();
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not reached within {PROCESS_DEADLINE:?}; last status {status}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `posts-worker dead list`: every dead letter of the namespace, newest first.
    pub(crate) fn dead_letters(&self) -> Vec<Value> {
        let out = self.run(&["dead", "list", "--limit", "10000"]);
        assert_success(&out, "posts-worker dead list");
        out.stdout
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.is_empty())
            .map(json)
            .collect()
    }

    /// Waits until `n` workers heartbeat in the namespace.
    pub(crate) fn wait_for_workers(&self, n: u64) {
        self.wait_for_status(&format!("{n} live workers"), |status| {
            status["stats"]["workers"].as_u64() >= Some(n)
        });
    }
}

/// A `posts-worker run` process; killed if the test ends without stopping it.
pub(crate) struct RunProcess {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl RunProcess {
    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What the process logged so far, for failure messages.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub(crate) fn terminate(mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("the process is running");
        let pid = child.id().to_string();
        let sent = Command::new("kill")
            .args(["-s", "TERM", &pid])
            .status()
            .expect("the kill utility runs");
        assert!(sent.success(), "kill -s TERM {pid} failed: {sent}");
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return status;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => panic!(
                    "{} did not exit within {PROCESS_DEADLINE:?} of SIGTERM; log:\n{}",
                    self.name,
                    self.log()
                ),
                Err(e) => panic!("waiting for {}: {e}", self.name),
            }
        }
    }

    /// SIGKILL (a crash: nothing is cleaned up) and reap the process.
    pub(crate) fn kill(mut self) {
        let mut child = self.child.take().expect("the process is running");
        child
            .kill()
            .unwrap_or_else(|e| panic!("SIGKILL {}: {e}", self.name));
        child
            .wait()
            .unwrap_or_else(|e| panic!("reaping {}: {e}", self.name));
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// SIGTERM, then the exit status must be 0.
    pub(crate) fn terminate_cleanly(self) {
        let name = self.name.clone();
        let log = self.log.clone();
        let status = self.terminate();
        assert_eq!(
            status.code(),
            Some(0),
            "{name} exited with {status} after SIGTERM; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

impl Drop for RunProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Panics with the command's output unless it exited 0.
pub(crate) fn assert_success(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what} failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Parses command output as JSON, showing it when it is not.
pub(crate) fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("the test paths are UTF-8")
}
