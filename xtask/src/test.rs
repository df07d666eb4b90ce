//! `cargo xtask test`: obtain a throwaway Redis, seed the sample posts database when it is
//! missing, run `cargo test --workspace` against that Redis, and tear the Redis down
//! afterwards, also when tests fail or the run is interrupted.
//!
//! Redis comes from `redis_harness::TestRedis::obtain`: `REDIS_URL` when set, else a
//! testcontainers Redis when a Docker engine answers, else a local `redis-server` on a free
//! port. A Redis the developer already runs (e.g. on 6379) is used only when `REDIS_URL`
//! names it. The process exits with the exit code of `cargo test`.
//!
//! A local `redis-server` binary is required in every case: the fault, TLS and password
//! tests start private servers they may kill, whatever `REDIS_URL` says, so the run stops
//! up front with a message saying how to install it rather than failing those tests one
//! by one.
//!
//! It also hands the tests the Python Celery environment (`POSTS_WORKER_CELERY_PYTHON`,
//! see `python.rs`) and a Chromium for the dashboard's browser tests
//! (`POSTS_WORKER_CHROMIUM`, see `chromium.rs`), preparing either when it is missing.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::Context;
use posts_seed::{DEFAULT_RAW_DIR, SeedOptions};
use posts_store::DEFAULT_DB_PATH;
use redis_harness::{REDIS_URL_ENV, RedisSource, TestRedis};
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};

/// How long an interrupted `cargo test` gets to exit on its own before it is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Extra arguments for `cargo test`, after `--` (e.g. `-- -p jobq -- --nocapture`;
    /// with `-p`, only the named packages are tested instead of the whole workspace).
    #[arg(last = true)]
    cargo_test_args: Vec<String>,
}

/// The variable that names the `redis-server` binary when it is not on `PATH` (the
/// harness reads the same one).
const REDIS_SERVER_ENV: &str = "REDIS_SERVER";

#[allow(clippy::exit)] // passes on `cargo test`'s exit code
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    require_redis_server()?;
    let root = workspace_root();
    seed_sample_db_if_missing(&root)?;
    let python =
        crate::python::celery_python(&root).context("preparing the Python Celery environment")?;
    let chromium = crate::chromium::chromium()
        .context("finding Chromium for the dashboard's browser tests")?;

    let redis = TestRedis::obtain().context("obtaining a Redis for the tests")?;
    match redis.source() {
        RedisSource::EnvUrl => eprintln!("xtask test: using {REDIS_URL_ENV}={}", redis.url()),
        source => eprintln!("xtask test: started {source} at {}", redis.url()),
    }

    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime that supervises `cargo test`")
        .and_then(|runtime| {
            runtime.block_on(run_cargo_test(
                &root,
                redis.url(),
                &python,
                &chromium,
                &args,
            ))
        });
    // Tear down before exiting: `process::exit` skips destructors.
    drop(redis);
    let code = outcome?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// Fails with instructions unless `redis-server` (or `$REDIS_SERVER`) can be started.
fn require_redis_server() -> anyhow::Result<()> {
    let binary = std::env::var(REDIS_SERVER_ENV).unwrap_or_else(|_| "redis-server".to_owned());
    let started = std::process::Command::new(&binary)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match started {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => {
            anyhow::bail!("`{binary} --version` failed ({status}); is it a redis-server?")
        }
        Err(error) => anyhow::bail!(
            "cannot run `{binary}` ({error}). The fault, TLS and password tests start \
             redis-server processes of their own even when {REDIS_URL_ENV} is set. Install \
             it (`apt-get install redis-server`, `brew install redis`) or set \
             {REDIS_SERVER_ENV} to its path."
        ),
    }
}

/// The workspace root: xtask lives one level below it.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Builds `sample_data/sample_posts.db` from the raw sample files when it does not exist,
/// as `posts-worker demo` would; tests that need other data build their own databases.
pub(crate) fn seed_sample_db_if_missing(root: &Path) -> anyhow::Result<()> {
    let db_path = root.join(DEFAULT_DB_PATH);
    if db_path.exists() {
        return Ok(());
    }
    let options = SeedOptions::raw(&db_path, root.join(DEFAULT_RAW_DIR));
    let summary = posts_seed::seed(&options, &mut |_| {})
        .with_context(|| format!("seeding the sample database {}", db_path.display()))?;
    eprintln!(
        "xtask test: seeded {} ({} rows, {} rejected)",
        db_path.display(),
        summary.rows_written,
        summary.rejected()
    );
    Ok(())
}

/// Runs `cargo test` (the whole workspace unless packages are named) with `REDIS_URL` set
/// and returns its exit code. On SIGINT/SIGTERM/SIGHUP it passes the signal to cargo's
/// process group and waits for it to stop, killing the group after [`INTERRUPT_GRACE`], so
/// the caller can still tear the Redis down.
async fn run_cargo_test(
    root: &Path,
    redis_url: &str,
    python: &Path,
    chromium: &Path,
    args: &Args,
) -> anyhow::Result<i32> {
    // Listening before cargo starts, so no signal in between ends xtask without teardown.
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    // `-- -p <crate>` narrows the run; otherwise every workspace member is tested.
    let picks_packages = args
        .cargo_test_args
        .iter()
        .take_while(|arg| *arg != "--")
        .any(|arg| arg.starts_with("-p") || arg.starts_with("--package"));
    let scope: &[&str] = if picks_packages {
        &[]
    } else {
        &["--workspace"]
    };
    // Its own process group, so an interruption reaches cargo *and* the test binaries it
    // started: cargo does not pass signals on, and an orphaned test binary would keep
    // running (and keep its own servers) after xtask is gone.
    let mut child = Command::new(&cargo)
        .arg("test")
        .args(scope)
        .args(&args.cargo_test_args)
        .current_dir(root)
        .env(REDIS_URL_ENV, redis_url)
        .env(crate::python::PYTHON_ENV, python)
        .env(crate::chromium::CHROMIUM_ENV, chromium)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting `{cargo} test`"))?;
    let group = child
        .id()
        .context("`cargo test` exited before it could be watched")?;

    // Exit codes follow the shell's 128 + signal number convention.
    let (signal_name, interrupted_code) = tokio::select! {
        status = child.wait() => {
            return Ok(exit_code(status.context("waiting for `cargo test`")?));
        }
        _ = hangup.recv() => ("HUP", 128 + 1),
        _ = interrupt.recv() => ("INT", 128 + 2),
        _ = terminate.recv() => ("TERM", 128 + 15),
    };
    eprintln!("xtask test: interrupted; stopping the tests and the Redis");
    signal_group(group, signal_name).await;
    if tokio::time::timeout(INTERRUPT_GRACE, child.wait())
        .await
        .is_err()
    {
        signal_group(group, "KILL").await;
        child.wait().await.context("reaping `cargo test`")?;
    }
    Ok(interrupted_code)
}

/// Sends `signal` to every process of the group `group` (cargo and the test binaries).
/// Uses the `kill` utility; a failure is reported, and the grace period's SIGKILL of cargo
/// (through `kill_on_drop`) remains as the fallback.
async fn signal_group(group: u32, signal: &str) {
    let sent = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{group}")])
        .status()
        .await;
    match sent {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("xtask test: `kill -s {signal} -{group}` failed ({status})"),
        Err(error) => eprintln!("xtask test: could not run `kill`: {error}"),
    }
}

/// The shell's convention: the exit code, or 128 + the signal that ended the process.
fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1)
}
