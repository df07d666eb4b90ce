//! Stock Python Celery code driven from the tests: the interpreter `cargo xtask test`
//! installs celery into (named by [`PYTHON_ENV`]), the scenario scripts of `tests/celery/`
//! (each prints one JSON report for the test to assert on), and a Python Celery worker
//! process running `tests/celery/tasks.py`.

// Each test file that includes this module uses a different part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The variable naming the Python interpreter that has `tests/celery/requirements.txt`
/// installed; `cargo xtask test` sets it to its venv's python.
pub(crate) const PYTHON_ENV: &str = "POSTS_WORKER_CELERY_PYTHON";

/// The longest any scenario may run before it is killed and the test fails. Generous: the
/// scripts bound each of their own waits, this only catches a stuck interpreter.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(600);

/// How long a Python worker gets to start consuming, and to stop after SIGTERM.
const WORKER_DEADLINE: Duration = Duration::from_secs(60);

/// Variables a developer may have set that would change what the scripts or the Python
/// worker talk to; the tests set what they need explicitly.
const CLEARED_ENV: &[&str] = &[
    "BROKER_URL",
    "RESULT_BACKEND",
    "CELERY_QUEUE",
    "POSTS_DB",
    "CELERY_READY_FILE",
    "CELERY_CONFIG_MODULE",
    "PYTHONPATH",
    "PYTHONHOME",
];

/// The Python interpreter from [`PYTHON_ENV`]; panics with what to do when it is unset.
pub(crate) fn python() -> PathBuf {
    match std::env::var_os(PYTHON_ENV) {
        Some(python) if !python.is_empty() => PathBuf::from(python),
        _ => panic!(
            "{PYTHON_ENV} is not set. These tests run stock Python Celery code: run them \
             through `cargo xtask test` (it installs tests/celery/requirements.txt into \
             target/celery-venv and sets {PYTHON_ENV}), or set {PYTHON_ENV} to a python \
             that has celery 5.7.0 installed (`pip install -r \
             crates/posts-worker/tests/celery/requirements.txt`)."
        ),
    }
}

/// `tests/celery/`: the scenario scripts and the Python worker module.
pub(crate) fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/celery")
}

/// A command running [`python`] in [`scripts_dir`], on the Redis at `redis_url` (as both
/// broker and result backend, like upstream), with nothing inherited that could redirect it.
fn python_command(redis_url: &str) -> Command {
    let mut command = Command::new(python());
    command.current_dir(scripts_dir());
    for name in CLEARED_ENV {
        command.env_remove(name);
    }
    command
        .env("BROKER_URL", redis_url)
        // No __pycache__ next to the sources.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null());
    command
}

/// One scenario script of `tests/celery/`, about to run.
pub(crate) struct Script {
    name: String,
    command: Command,
}

impl Script {
    /// `python tests/celery/<name>` against the Redis at `redis_url`.
    pub(crate) fn new(name: &str, redis_url: &str) -> Script {
        let mut command = python_command(redis_url);
        command.arg(name);
        Script {
            name: name.to_owned(),
            command,
        }
    }

    /// Adds a command-line argument.
    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Script {
        self.command.arg(arg);
        self
    }

    /// Sets an environment variable (the scripts' settings, see their docstrings).
    pub(crate) fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Script {
        self.command.env(name, value);
        self
    }

    /// Runs the script to completion and returns its JSON report.
    pub(crate) fn run(self) -> Value {
        self.spawn().finish()
    }

    /// Starts the script in the background; [`RunningScript::finish`] collects its report.
    pub(crate) fn spawn(mut self) -> RunningScript {
        let output = tempfile::tempdir().expect("temp dir for the script's output");
        let stdout = File::create(output.path().join("stdout")).expect("stdout file");
        let stderr = File::create(output.path().join("stderr")).expect("stderr file");
        let child = self
            .command
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} {}: {e} (is {PYTHON_ENV} a python?)",
                    python().display(),
                    self.name
                )
            });
        RunningScript {
            name: self.name,
            child: Some(child),
            output,
            started: Instant::now(),
        }
    }
}

/// A scenario script running in the background; killed if dropped unfinished.
pub(crate) struct RunningScript {
    name: String,
    child: Option<Child>,
    output: TempDir,
    started: Instant,
}

impl RunningScript {
    /// Whether the script is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Waits for the script to exit and returns its one JSON report; panics with its
    /// stderr when it failed, printed something else, or overran [`SCRIPT_DEADLINE`].
    pub(crate) fn finish(mut self) -> Value {
        let status = self.wait();
        let stdout = self.read("stdout");
        let stderr = self.read("stderr");
        assert!(
            status.success(),
            "{} exited with {status}\nstdout: {stdout}\nstderr: {stderr}",
            self.name
        );
        serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "{} did not print one JSON object ({e})\nstdout: {stdout}\nstderr: {stderr}",
                self.name
            )
        })
    }

    fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the script is running");
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if self.started.elapsed() < SCRIPT_DEADLINE => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{} still ran after {SCRIPT_DEADLINE:?}; killed it\nstderr: {}",
                        self.name,
                        self.read("stderr")
                    );
                }
                Err(e) => panic!("waiting for {}: {e}", self.name),
            }
        }
    }

    fn read(&self, stream: &str) -> String {
        std::fs::read_to_string(self.output.path().join(stream))
            .unwrap_or_else(|e| format!("(cannot read {stream}: {e})"))
    }
}

impl Drop for RunningScript {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A stock Python Celery worker (`celery -A tasks worker`, prefork pool) consuming the
/// `celery` queue of a Redis, with the posts tasks of `tests/celery/tasks.py`. It runs in
/// a process group of its own, so stopping it also stops its pool processes.
pub(crate) struct PythonWorker {
    child: Option<Child>,
    log: PathBuf,
}

impl PythonWorker {
    /// The hostname the worker reports (`worker` in its result records).
    pub(crate) const HOSTNAME: &str = "py@posts-worker-tests";

    /// Starts a worker with `concurrency` pool processes on the Redis at `redis_url`,
    /// reading the posts DB `db`, logging to a file in `dir`, and waits until it consumes.
    pub(crate) fn start(
        redis_url: &str,
        db: &Path,
        dir: &Path,
        concurrency: usize,
    ) -> PythonWorker {
        let log = dir.join("python-worker.log");
        let ready = dir.join("python-worker.ready");
        let log_file = File::create(&log).expect("Python worker log file");
        let stderr = log_file.try_clone().expect("Python worker log file");
        let child = python_command(redis_url)
            .args(["-m", "celery", "-A", "tasks", "worker", "-Q", "celery"])
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--loglevel", "warning", "--hostname", Self::HOSTNAME])
            .env("POSTS_DB", db)
            .env("CELERY_READY_FILE", &ready)
            .stdout(log_file)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the Python worker: {e}"));
        let mut worker = PythonWorker {
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + WORKER_DEADLINE;
        while !ready.exists() {
            assert!(
                worker.is_running(),
                "the Python worker exited while starting; log:\n{}",
                worker.log()
            );
            assert!(
                Instant::now() < deadline,
                "the Python worker did not start within {WORKER_DEADLINE:?}; log:\n{}",
                worker.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        worker
    }

    /// What the worker logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// SIGTERM (Celery's warm shutdown), waits for it to exit, and returns its log.
    pub(crate) fn stop(mut self) -> String {
        let mut child = self.child.take().expect("the worker is running");
        signal_group(child.id(), "TERM");
        let deadline = Instant::now() + WORKER_DEADLINE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => {
                    signal_group(child.id(), "KILL");
                    let _ = child.wait();
                    panic!(
                        "the Python worker did not stop within {WORKER_DEADLINE:?} of SIGTERM; \
                         log:\n{}",
                        self.log()
                    );
                }
                Err(e) => panic!("waiting for the Python worker: {e}"),
            }
        }
        // Pool processes left behind by a main process that died on its own.
        signal_group(child.id(), "KILL");
        self.log()
    }
}

impl Drop for PythonWorker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(child.id(), "KILL");
            let _ = child.wait();
        }
    }
}

/// Sends `signal` to the process group `group` with the `kill` utility; a group that is
/// already gone is fine.
fn signal_group(group: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
}
