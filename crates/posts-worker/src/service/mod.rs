//! [`Service`]: the posts tasks on a jobq worker, with the scheduler beside it, run until
//! the host's shutdown future resolves. The `posts-worker run` command is this type plus
//! signal handling; a host service embeds it the same way.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use jobq::scheduler::{ScheduleError, ScheduleSpec, Scheduler};
use jobq::{App, Broker, Worker, WorkerConfig};
use posts_store::read::ReadError;
use tokio_util::sync::CancellationToken;

use crate::schedules;
use crate::tasks::{self, PostsData};

/// A worker running the posts tasks and, unless disabled, a scheduler sending the
/// configured schedules, both on one broker and stopped by one shutdown future.
///
/// ```no_run
/// # async fn host() -> Result<(), Box<dyn std::error::Error>> {
/// use posts_worker::Service;
///
/// let broker = jobq::Broker::redis("redis://127.0.0.1:6379/0", "posts").await?;
/// let mut config = jobq::WorkerConfig::default();
/// config.concurrency = 4;
/// let service = Service::open("sample_data/sample_posts.db", broker)?.with_worker_config(config);
///
/// // The host decides when to stop: here, when something sends on `stop`.
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let running = tokio::spawn(service.run(async {
///     let _ = stopped.await;
/// }));
/// // ... the host's own work ...
/// let _ = stop.send(());
/// running.await??;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Service {
    posts: Arc<PostsData>,
    broker: Broker,
    /// Brokers of further namespaces, each served by a worker of its own.
    more_namespaces: Vec<Broker>,
    worker_config: WorkerConfig,
    schedules: Schedules,
}

/// Which schedules the service's scheduler sends. The default is resolved only when the
/// service runs, so building a service cannot fail on it.
#[derive(Debug)]
enum Schedules {
    Default,
    Configured(Vec<ScheduleSpec>),
    NoScheduler,
}

impl Service {
    /// A service for the tasks over `posts`, on `broker`, with [`WorkerConfig::default`]
    /// and the built-in schedule of [`schedules::DEFAULT_SCHEDULES`]. The scheduler keeps
    /// its schedules in the same broker.
    pub fn new(posts: Arc<PostsData>, broker: Broker) -> Self {
        Self {
            posts,
            broker,
            more_namespaces: Vec::new(),
            worker_config: WorkerConfig::default(),
            schedules: Schedules::Default,
        }
    }

    /// Like [`Service::new`], opening the posts database at `db` read-only with the
    /// built-in entity extractor and default limits.
    ///
    /// # Errors
    /// [`ServiceError::Posts`] when `db` is missing or is not a usable posts database.
    pub fn open(db: impl AsRef<Path>, broker: Broker) -> Result<Self, ServiceError> {
        let posts = PostsData::open(db.as_ref())?;
        Ok(Self::new(Arc::new(posts), broker))
    }

    /// Runs the worker with `config` instead of [`WorkerConfig::default`].
    pub fn with_worker_config(mut self, config: WorkerConfig) -> Self {
        self.worker_config = config;
        self
    }

    /// Sends `specs` instead of the built-in schedule. Configured schedules that are no
    /// longer listed are removed from the store when the service starts.
    pub fn with_schedules(mut self, specs: Vec<ScheduleSpec>) -> Self {
        self.schedules = Schedules::Configured(specs);
        self
    }

    /// Also serves the namespaces of `brokers`, with a worker each (same configuration,
    /// without the Celery listener, which stays with the main namespace). On a Redis
    /// Cluster each namespace lives in its own slot, so one process spreads its load over
    /// the masters. The scheduler stays in the main namespace.
    pub fn also_serving(mut self, brokers: Vec<Broker>) -> Self {
        self.more_namespaces = brokers;
        self
    }

    /// Runs the worker only (another process runs the scheduler, or nothing is scheduled).
    pub fn without_scheduler(mut self) -> Self {
        self.schedules = Schedules::NoScheduler;
        self
    }

    /// The broker the service runs on: a [`jobq::Client`] on it sends jobs to this
    /// service's worker.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Runs until `shutdown` resolves, then stops the scheduler and shuts the worker down
    /// gracefully (running jobs get the worker's grace period). Never ends the process: a
    /// host that wants a second signal to exit at once handles that itself.
    ///
    /// # Errors
    /// [`ServiceError::Schedule`] when the schedules are invalid or cannot be stored, before
    /// anything runs; [`ServiceError::Worker`] when the worker configuration is invalid.
    /// Broker outages while running are logged and retried, never returned.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServiceError> {
        let specs = match self.schedules {
            Schedules::Default => Some(schedules::load(None)?),
            Schedules::Configured(specs) => Some(specs),
            Schedules::NoScheduler => None,
        };
        let app = || {
            let mut app = App::new();
            tasks::register(&mut app, Arc::clone(&self.posts));
            app
        };
        let mut more_config = self.worker_config.clone();
        more_config.celery = None;
        let more_workers: Vec<Worker> = self
            .more_namespaces
            .iter()
            .map(|broker| Worker::new(app(), broker.clone(), more_config.clone()))
            .collect();
        let worker = Worker::new(app(), self.broker.clone(), self.worker_config);
        let scheduler = match specs {
            Some(specs) => Some(Scheduler::new(self.broker, specs).await?),
            None => None,
        };
        tracing::info!(
            worker = worker.id(),
            scheduler = scheduler.is_some(),
            more_namespaces = more_workers.len(),
            "posts service started"
        );

        // Whichever ends first (the host's shutdown, or the worker on a fatal error) stops
        // the other parts too.
        let stop = CancellationToken::new();
        let watch_shutdown = async {
            tokio::select! {
                () = shutdown => {}
                () = stop.cancelled() => {}
            }
            stop.cancel();
        };
        let run_workers = async {
            let all = std::iter::once(worker)
                .chain(more_workers)
                .map(|worker| async {
                    let outcome = worker.run_until(stop.cancelled()).await;
                    stop.cancel();
                    outcome
                });
            futures::future::join_all(all)
                .await
                .into_iter()
                .collect::<Result<Vec<()>, jobq::Error>>()
                .map(drop)
        };
        let run_scheduler = async {
            match scheduler {
                Some(scheduler) => scheduler.run_until(stop.cancelled()).await,
                None => Ok(()),
            }
        };
        let ((), worker_outcome, scheduler_outcome) =
            tokio::join!(watch_shutdown, run_workers, run_scheduler);
        worker_outcome?;
        scheduler_outcome?;
        tracing::info!("posts service stopped");
        Ok(())
    }
}

/// Why a [`Service`] could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The posts database could not be opened.
    #[error(transparent)]
    Posts(#[from] ReadError),
    /// A schedule is invalid, or the schedules could not be stored.
    #[error("scheduler: {0}")]
    Schedule(#[from] ScheduleError),
    /// The worker could not run, e.g. its configuration is invalid.
    #[error("worker: {0}")]
    Worker(#[from] jobq::Error),
}
