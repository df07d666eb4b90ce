//! `posts-worker run`: a [`posts_worker::Service`] (the worker and, unless disabled, the
//! scheduler) until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use jobq::WorkerConfig;
use jobq::celery::CeleryConfig;
use posts_worker::Service;

use super::{
    BrokerKind, GlobalOptions, connect_redis_namespace, open_posts_env, signal, worker_broker,
};

#[derive(clap::Args, Default)]
pub(crate) struct Args {
    /// Jobs in flight at once (default: the number of cores).
    #[arg(long, env = "POSTS_WORKER_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Run the worker only, without the scheduler.
    #[arg(long)]
    no_scheduler: bool,
    /// TOML file of `[[schedule]]` tables replacing the built-in schedule.
    #[arg(long, env = "POSTS_WORKER_SCHEDULES")]
    schedules: Option<PathBuf>,
    /// Celery queues (Redis lists in the DB of --redis-url) whose protocol v2 messages this
    /// worker also runs, comma-separated [default: celery].
    #[arg(long, value_delimiter = ',', env = "POSTS_WORKER_CELERY_QUEUES")]
    celery_queues: Vec<String>,
    /// Do not consume Celery messages (the default on a Redis Cluster, where Celery's keys
    /// would span slots).
    #[arg(long, conflicts_with = "celery_queues")]
    no_celery: bool,
    /// Further namespaces this process serves, comma-separated: a worker each, with the
    /// same settings (the scheduler and the Celery listener stay in --namespace). On a
    /// Redis Cluster, namespaces live in different slots, so their load spreads over the
    /// masters.
    #[arg(long, value_delimiter = ',', value_name = "NAMESPACE")]
    also_namespaces: Vec<String>,
    /// How long Celery result records are kept, in seconds (Celery's `result_expires`).
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    celery_result_expires: u64,
    /// Store a STARTED record when a Celery task starts (Celery's `task_track_started`).
    #[arg(long)]
    celery_track_started: bool,
    /// The Celery result backend's `global_keyprefix`, when the Python clients set one.
    #[arg(long, value_name = "PREFIX")]
    celery_key_prefix: Option<String>,
    /// Runs Celery task NAME as the registered task TASK (repeatable), e.g.
    /// `--celery-alias scorer_worker.tasks.legacy_query=query_posts_db`. Without an alias, a
    /// Celery name runs the task named like its last dotted segment.
    #[arg(long, value_name = "NAME=TASK", value_parser = parse_alias)]
    celery_alias: Vec<(String, String)>,
    /// This worker's id (default: a fresh one per run). Restarted with the same id, a
    /// worker takes back at once what its killed predecessor left in flight; never give two
    /// live workers the same id.
    #[arg(long)]
    worker_id: Option<String>,
    /// How long after a dead worker's last heartbeat its jobs go back to their queues, in
    /// seconds. Workers heartbeat every 2 s and reap as often, and a heartbeat lives 6 s: a
    /// killed worker's jobs go back within 2 s after the longer of this and 6 s.
    #[arg(long, value_name = "SECS", default_value_t = WorkerConfig::default().visibility_timeout.as_secs())]
    visibility_timeout: u64,
    /// Do not write job events to the `{namespace}:events` list (the dashboard's recent
    /// jobs). Counters and duration histograms are kept either way.
    #[arg(long, env = "POSTS_WORKER_NO_EVENTS")]
    no_events: bool,
}

fn parse_alias(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, task)) if !name.is_empty() && !task.is_empty() => {
            Ok((name.to_owned(), task.to_owned()))
        }
        _ => Err(format!("expected NAME=TASK, got {text:?}")),
    }
}

pub(super) async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let env = open_posts_env(global)?;

    let mut config = WorkerConfig::default();
    if let Some(concurrency) = args.concurrency {
        anyhow::ensure!(concurrency >= 1, "--concurrency must be at least 1, got 0");
        config.concurrency = concurrency;
    }
    // A bad schedule file is an error even with --no-scheduler, so it is found before the
    // file is used for real.
    let schedules = args
        .schedules
        .as_deref()
        .map(|file| posts_worker::schedules::load(Some(file)))
        .transpose()?;
    config.visibility_timeout = std::time::Duration::from_secs(args.visibility_timeout);
    config.events = !args.no_events;
    if let Some(id) = args.worker_id {
        anyhow::ensure!(!id.is_empty(), "--worker-id must not be empty");
        config.worker_id = Some(id);
    }
    let broker = worker_broker(global).await?;
    let mut more_namespaces = Vec::new();
    for namespace in &args.also_namespaces {
        anyhow::ensure!(
            global.broker != Some(BrokerKind::Memory),
            "--also-namespaces needs Redis: the memory broker serves one namespace"
        );
        anyhow::ensure!(
            namespace != &global.namespace,
            "--also-namespaces lists {namespace:?}, which is --namespace already"
        );
        more_namespaces.push(connect_redis_namespace(global, namespace).await?);
    }
    let cluster = !broker.deployment().has_single_keyspace();
    if args.no_celery {
        tracing::info!("Celery listener off (--no-celery)");
    } else if global.broker == Some(BrokerKind::Memory) {
        tracing::info!("Celery listener off: Python clients cannot reach the memory broker");
    } else if cluster && args.celery_queues.is_empty() {
        tracing::info!(
            "Celery listener off: on a Redis Cluster Celery's keys would span slots (use one server or Sentinel for Celery clients)"
        );
    } else {
        anyhow::ensure!(
            args.celery_result_expires >= 1,
            "--celery-result-expires must be at least 1 second"
        );
        let mut celery = posts_worker::tasks::celery_config(CeleryConfig::default());
        if !args.celery_queues.is_empty() {
            celery.queues = args.celery_queues;
        }
        celery.result_expires = std::time::Duration::from_secs(args.celery_result_expires);
        celery.track_started = args.celery_track_started;
        if let Some(prefix) = args.celery_key_prefix {
            celery.key_prefix = prefix;
        }
        for (name, task) in args.celery_alias {
            celery = celery.alias(name, task);
        }
        config.celery = Some(celery);
    }

    let mut service = Service::new(env, broker)
        .with_worker_config(config)
        .also_serving(more_namespaces);
    if let Some(schedules) = schedules {
        service = service.with_schedules(schedules);
    }
    if args.no_scheduler {
        service = service.without_scheduler();
    }
    tracing::info!(db = %global.db.display(), namespace = %global.namespace, "posts-worker started");
    service.run(signal::shutdown_requested()).await?;
    Ok(ExitCode::SUCCESS)
}
