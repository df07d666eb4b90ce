//! `posts-worker run`: the worker and, unless disabled, the scheduler, until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use jobq::scheduler::Scheduler;
use jobq::{App, ShutdownSignals, Worker, WorkerConfig};

use tokio_util::sync::CancellationToken;

use super::{GlobalOptions, open_posts_env, worker_broker};

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
    let broker = worker_broker(global).await?;

    let mut app = App::new();
    posts_worker::tasks::register(&mut app, env);
    let mut config = WorkerConfig::default();
    if let Some(concurrency) = args.concurrency {
        anyhow::ensure!(concurrency >= 1, "--concurrency must be at least 1, got 0");
        config.concurrency = concurrency;
    }
    let worker = Worker::new(app, broker.clone(), config);

    // One signal stops both the worker and the scheduler gracefully; a second one exits at
    // once with status 130 (the jobs still in flight go back to their queues through
    // another worker's reaper).
    let shutdown = CancellationToken::new();
    let mut signals = ShutdownSignals::new()?;
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            signals.recv().await;
            shutdown.cancel();
            signals.recv().await;
            tracing::warn!("second shutdown signal: exiting now");
            std::process::exit(130);
        }
    });
    let scheduler = if args.no_scheduler {
        None
    } else {
        let scheduler = Scheduler::new(broker.clone(), schedules).await?;
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
