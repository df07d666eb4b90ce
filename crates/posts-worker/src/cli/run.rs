//! `posts-worker run`: a [`posts_worker::Service`] (the worker and, unless disabled, the
//! scheduler) until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use jobq::WorkerConfig;
use posts_worker::Service;

use super::{GlobalOptions, open_posts_env, signal, worker_broker};

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
    let broker = worker_broker(global).await?;

    let mut service = Service::new(env, broker).with_worker_config(config);
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
