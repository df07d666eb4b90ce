//! Command-line interface: global options, the subcommand list and how each one reaches
//! the broker and the posts database.

mod dashboard;
mod dead;
mod demo;
mod entities;
mod get_key;
mod run;
mod seed;
mod signal;
mod status;
mod submit;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use jobq::{Broker, RedisBroker};
use tracing_subscriber::EnvFilter;

/// Background analytics over social-media post history: a jobq worker for the posts DB.
#[derive(Parser)]
#[command(name = "posts-worker", version, about)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every subcommand accepts.
#[derive(clap::Args, Clone)]
pub(crate) struct GlobalOptions {
    /// Redis URL: `redis://` or `rediss://` (password in the URL), a Cluster as
    /// `redis+cluster://host:port,host:port,...`, or a Sentinel-watched master as
    /// `redis+sentinel://host:port,host:port,.../<master>/<db>`.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379/0",
        global = true
    )]
    pub redis_url: String,
    /// Path of the SQLite posts database.
    #[arg(
        long,
        env = "POSTS_DB_PATH",
        default_value = posts_store::DEFAULT_DB_PATH,
        global = true
    )]
    pub db: PathBuf,
    /// jobq namespace: every key lives under the hash tag `{namespace}`.
    #[arg(long, env = "JOBQ_NAMESPACE", default_value = "posts", global = true)]
    pub namespace: String,
    /// On a Cluster or Sentinel deployment, do not wait for a replica to confirm each
    /// enqueue and acknowledgement (`WAIT 1`): faster, but a failover may lose the last
    /// jobs and results the old master acknowledged.
    #[arg(long, env = "POSTS_WORKER_NO_REPLICA_WAIT", global = true)]
    pub no_replica_wait: bool,
    /// Which broker to use; `memory` keeps jobs inside this process.
    #[arg(long, value_enum, env = "POSTS_WORKER_BROKER", global = true)]
    pub broker: Option<BrokerKind>,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub(crate) enum BrokerKind {
    Redis,
    Memory,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the worker and the scheduler (the default).
    Run(run::Args),
    /// Enqueue a task, like Celery's `.delay()`.
    Submit(submit::Args),
    /// Print the JSON stored at an explicit result key.
    GetKey(get_key::Args),
    /// Queues, jobs in flight, delayed and dead jobs, live workers and schedules.
    Status(status::Args),
    /// List, requeue or purge dead-lettered jobs.
    Dead(dead::Args),
    /// Serve the web dashboard and Prometheus `/metrics` for the namespace.
    Dashboard(dashboard::Args),
    /// Extract named entities from stdin, one text per line, one JSON array per line.
    Entities(entities::Args),
    /// Seed the posts DB from the sample data.
    Seed(seed::Args),
    /// Run the example driver: a worker in-process and the three tasks end to end.
    Demo(demo::Args),
}

/// Runs the chosen subcommand and returns the process exit code.
pub(crate) async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    match cli
        .command
        .unwrap_or_else(|| Command::Run(run::Args::default()))
    {
        Command::Run(args) => run::run(&global, args).await,
        Command::Submit(args) => submit::run(&global, args).await,
        Command::GetKey(args) => get_key::run(&global, args).await,
        Command::Status(args) => status::run(&global, args).await,
        Command::Dead(args) => dead::run(&global, args).await,
        Command::Dashboard(args) => dashboard::run(&global, args).await,
        Command::Entities(args) => entities::run(args),
        Command::Seed(args) => seed::run(&global, args),
        Command::Demo(args) => demo::run(&global, args).await,
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the level. Long-running commands log at
/// `info`, client commands only warn so their stdout stays machine-readable. Colour codes
/// only go to a terminal, so a log file or a pipe gets plain text.
pub(crate) fn init_tracing(command: Option<&Command>) {
    let default = match command {
        None | Some(Command::Run(_) | Command::Dashboard(_)) => "info",
        Some(_) => "warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// How long a command waits for Redis to answer the PING that checks it is reachable
/// before it reports it unreachable. Shorter than jobq's own connection timeout, which
/// bounds each connection attempt of a running broker, because here a person waits.
const REDIS_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Connects to the Redis broker and checks that it answers, with a one-line error that
/// says what to do when it does not.
async fn connect_redis(global: &GlobalOptions) -> anyhow::Result<Broker> {
    connect_redis_namespace(global, &global.namespace).await
}

/// [`connect_redis`] for a namespace other than `--namespace`.
async fn connect_redis_namespace(
    global: &GlobalOptions,
    namespace: &str,
) -> anyhow::Result<Broker> {
    let mut options = RedisBroker::builder(&global.redis_url).namespace(namespace);
    if global.no_replica_wait {
        options = options.wait_for_replica(None);
    }
    let broker = options
        .connect()
        .await
        .with_context(|| format!("cannot use Redis URL {}", global.redis_url))?;
    match tokio::time::timeout(REDIS_PROBE_TIMEOUT, broker.ping()).await {
        Ok(Ok(())) => Ok(broker),
        Ok(Err(err @ jobq::Error::UnknownSentinelMaster { .. })) => Err(err.into()),
        Ok(Err(err)) => Err(unreachable_redis(global, &err.to_string())),
        Err(_) => Err(unreachable_redis(
            global,
            &format!("no answer within {} s", REDIS_PROBE_TIMEOUT.as_secs()),
        )),
    }
}

fn unreachable_redis(global: &GlobalOptions, reason: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "no Redis answers at {} ({reason}); start one (`redis-server`), or set --redis-url/REDIS_URL",
        global.redis_url
    )
}

/// The broker a client command talks to. The memory broker lives inside one process, so
/// commands that talk to a worker elsewhere need Redis.
async fn client_broker(global: &GlobalOptions) -> anyhow::Result<Broker> {
    if global.broker == Some(BrokerKind::Memory) {
        anyhow::bail!(
            "--broker memory keeps jobs inside one process, so this command cannot reach a worker; use Redis, or `posts-worker demo` to try the tasks in-process"
        );
    }
    connect_redis(global).await
}

/// The broker a worker process uses (its scheduler keeps its schedules there too): Redis
/// unless `--broker memory` was asked for.
async fn worker_broker(global: &GlobalOptions) -> anyhow::Result<Broker> {
    match global.broker {
        Some(BrokerKind::Memory) => {
            let broker = Broker::memory(&global.namespace)?;
            tracing::warn!(
                "memory broker: only this process's scheduler can enqueue jobs, and results stay in this process"
            );
            Ok(broker)
        }
        _ => connect_redis(global).await,
    }
}

/// Opens the posts DB for reading, with a one-line error that says how to create it.
fn open_posts_env(global: &GlobalOptions) -> anyhow::Result<Arc<posts_worker::tasks::PostsData>> {
    if !global.db.exists() {
        anyhow::bail!(
            "posts database {} does not exist; create it with `cargo xtask seed` (or `posts-worker seed`), or point --db/POSTS_DB_PATH at one",
            global.db.display()
        );
    }
    let env = posts_worker::tasks::PostsData::open(&global.db)
        .with_context(|| format!("cannot open posts database {}", global.db.display()))?;
    Ok(Arc::new(env))
}
