//! `posts-worker run`: the worker and, unless disabled, the scheduler, until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use jobq::scheduler::Scheduler;
use jobq::{App, Client, Worker, WorkerConfig};

use tokio_util::sync::CancellationToken;

use super::{GlobalOptions, WorkerBroker, open_posts_env, worker_broker};

#[derive(clap::Args, Default)]
pub struct Args {
    /// Jobs in flight at once (default: the number of cores).
    #[arg(long, env = "POSTS_WORKER_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Run the worker only, without the scheduler.
    #[arg(long)]
    no_scheduler: bool,
    /// TOML file of `[[schedule]]` tables replacing the built-in schedule.
    #[arg(long, env = "POSTS_WORKER_SCHEDULES")]
    schedules: Option<PathBuf>,
}

pub async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let env = open_posts_env(global)?;
    let schedules = posts_worker::schedules::load(args.schedules.as_deref())?;
    let WorkerBroker {
        broker,
        schedules: schedule_store,
    } = worker_broker(global).await?;

    let mut app = App::new();
    posts_worker::tasks::register(&mut app, env);
    let mut config = WorkerConfig::default();
    if let Some(concurrency) = args.concurrency {
        anyhow::ensure!(concurrency >= 1, "--concurrency must be at least 1, got 0");
        config.concurrency = concurrency;
    }
    let worker = Worker::new(app, broker.clone(), config);

    // One signal stops both the worker and the scheduler.
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            jobq::shutdown_signal().await;
            shutdown.cancel();
        }
    });
    let scheduler = if args.no_scheduler {
        None
    } else {
        let scheduler =
            Scheduler::new(Client::new(broker.clone()), schedule_store, schedules).await?;
        Some(tokio::spawn(
            scheduler.run_until(shutdown.clone().cancelled_owned()),
        ))
    };
    tracing::info!(db = %global.db.display(), namespace = %global.namespace, "posts-worker started");
    worker.run_until(shutdown.cancelled_owned()).await?;
    if let Some(scheduler) = scheduler {
        scheduler.await??;
    }
    Ok(ExitCode::SUCCESS)
}
