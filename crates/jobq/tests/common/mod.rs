//! Helpers shared by jobq's integration tests: brokers on the harness Redis or in memory,
//! a worker configuration with short timeouts, the test tasks, and a worker that runs in
//! the background until the test stops it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jobq::{App, Broker, RetryPolicy, TaskContext, TaskError, Worker, WorkerConfig};
use redis_harness::{RedisCluster, RedisSentinel, TestRedis, unique_namespace};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A Redis broker on the shared test Redis, in a namespace of its own.
pub(crate) async fn redis_broker(prefix: &str) -> Broker {
    let redis = TestRedis::shared().unwrap_or_else(|e| panic!("no Redis for the tests: {e}"));
    redis_broker_at(redis.url(), &unique_namespace(prefix)).await
}

/// A Redis broker on the server at `url` (a private or secured one), in `namespace`.
pub(crate) async fn redis_broker_at(url: &str, namespace: &str) -> Broker {
    Broker::redis(url, namespace)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// The URL of this test process's Redis Cluster (3 masters, 3 replicas), started on first
/// use and shared by the tests that only read and write through it.
pub(crate) fn shared_cluster_url() -> String {
    static CLUSTER: std::sync::OnceLock<std::sync::Mutex<RedisCluster>> =
        std::sync::OnceLock::new();
    let cluster = CLUSTER.get_or_init(|| {
        std::sync::Mutex::new(
            RedisCluster::start().unwrap_or_else(|e| panic!("no Redis Cluster for the tests: {e}")),
        )
    });
    cluster.lock().unwrap_or_else(|p| p.into_inner()).url()
}

/// The URL of this test process's Sentinel deployment (master `jobq`), started on first
/// use and shared like [`shared_cluster_url`].
pub(crate) fn shared_sentinel_url() -> String {
    static SENTINEL: std::sync::OnceLock<std::sync::Mutex<RedisSentinel>> =
        std::sync::OnceLock::new();
    let sentinel = SENTINEL.get_or_init(|| {
        std::sync::Mutex::new(
            RedisSentinel::start("jobq")
                .unwrap_or_else(|e| panic!("no Redis Sentinel for the tests: {e}")),
        )
    });
    sentinel.lock().unwrap_or_else(|p| p.into_inner()).url()
}

/// A broker on the shared Redis Cluster, in a namespace of its own.
pub(crate) async fn cluster_broker(prefix: &str) -> Broker {
    redis_broker_at(&shared_cluster_url(), &unique_namespace(prefix)).await
}

/// A broker on the shared Sentinel deployment's master, in a namespace of its own.
pub(crate) async fn sentinel_broker(prefix: &str) -> Broker {
    redis_broker_at(&shared_sentinel_url(), &unique_namespace(prefix)).await
}

/// A memory broker.
pub(crate) async fn memory_broker(prefix: &str) -> Broker {
    Broker::memory(&unique_namespace(prefix)).expect("a valid namespace")
}

/// Worker settings that keep the suite fast: short heartbeats, visibility and waits.
///
/// The heartbeat lives three intervals (3 s), so a live worker starved of CPU for a
/// second or two on a loaded machine is not taken for dead and has its jobs run twice;
/// recovering a dead worker's jobs still takes only a few seconds.
pub(crate) fn fast_config() -> WorkerConfig {
    let mut config = WorkerConfig::default();
    config.concurrency = 4;
    config.prefetch = 16;
    config.heartbeat_interval = Duration::from_secs(1);
    config.visibility_timeout = Duration::from_secs(2);
    config.grace_period = Duration::from_secs(5);
    config.block_timeout = Duration::from_millis(500);
    config.promote_interval = Duration::from_millis(20);
    config
}

/// Job ids of `slow_cancellable` runs whose cancellation callback ran.
pub(crate) static CANCELLED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The labels of `note_order` runs, in the order they started.
static STARTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The labels starting with `prefix` that `note_order` saw, in the order it saw them.
pub(crate) fn started_with(prefix: &str) -> Vec<String> {
    STARTED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|label| label.starts_with(prefix))
        .cloned()
        .collect()
}

/// How often `record_run` ran, per label and per `job:<id>`, in this process.
static RUNS: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

/// How many times `record_run` ran with `label` (or for `job:<id>`) in this process.
pub(crate) fn runs_of(key: &str) -> u32 {
    RUNS.lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|runs| runs.get(key).copied())
        .unwrap_or(0)
}

fn count_run(keys: [String; 2]) {
    let mut runs = RUNS.lock().unwrap_or_else(|p| p.into_inner());
    let runs = runs.get_or_insert_with(HashMap::new);
    for key in keys {
        *runs.entry(key).or_insert(0) += 1;
    }
}

/// The tasks the tests send to.
pub(crate) fn test_app() -> App {
    let mut app = App::new();
    app.task("add")
        .args(["a", "b"])
        .handler(|_ctx: TaskContext, (a, b): (i64, i64)| async move { Ok::<_, TaskError>(a + b) });
    app.task("ping")
        .args::<0>([])
        .handler(|_ctx: TaskContext, (): ()| async move { Ok::<_, TaskError>("pong") });
    app.task("fail").args(["kind", "message"]).blocking(
        |_ctx: &TaskContext, (kind, message): (String, String)| -> Result<(), TaskError> {
            Err(TaskError::new(kind, message))
        },
    );
    app.task("flaky")
        .args(["succeed_on_attempt"])
        .retry(RetryPolicy::exponential(3, Duration::from_millis(50)).retry_on(["Flaky"]))
        .handler(|ctx: TaskContext, (succeed_on,): (u32,)| async move {
            if ctx.attempt() < succeed_on {
                Err(TaskError::new(
                    "Flaky",
                    format!("attempt {}", ctx.attempt()),
                ))
            } else {
                Ok(ctx.attempt())
            }
        });
    app.task("always_flaky")
        .args::<0>([])
        .retry(RetryPolicy::exponential(2, Duration::from_millis(10)))
        .handler(|ctx: TaskContext, (): ()| async move {
            Err::<(), _>(TaskError::new(
                "Flaky",
                format!("attempt {}", ctx.attempt()),
            ))
        });
    app.task("echo")
        .args(["value"])
        .handler(|_ctx: TaskContext, (value,): (serde_json::Value,)| async move {
            Ok::<_, TaskError>(value)
        });
    app.task("big")
        .args(["len"])
        .handler(|_ctx: TaskContext, (len,): (usize,)| async move {
            Ok::<_, TaskError>("x".repeat(len))
        });
    app.task("note_order")
        .args(["label"])
        .handler(|_, (label,): (String,)| async move {
            STARTED
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(label);
            Ok::<_, TaskError>(())
        });
    app.task("record_run").args(["label"]).handler(
        |ctx: TaskContext, (label,): (String,)| async move {
            count_run([label.clone(), format!("job:{}", ctx.job_id())]);
            Ok::<_, TaskError>(label)
        },
    );
    app.task("length")
        .args(["text"])
        .handler(
            |_ctx: TaskContext, (text,): (String,)| async move { Ok::<_, TaskError>(text.len()) },
        );
    app.task("write_key")
        .args(["key", "value", "ttl_ms"])
        .handler(
            |ctx: TaskContext, (key, value, ttl_ms): (String, serde_json::Value, Option<u64>)| async move {
                ctx.set_key(key, &value, ttl_ms.map(Duration::from_millis))?;
                Ok::<_, TaskError>("written")
            },
        );
    app.task("sleep")
        .args(["ms"])
        .handler(|ctx: TaskContext, (ms,): (u64,)| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, TaskError>(ctx.job_id().to_owned())
        });
    app.task("slow_cancellable")
        .args(["ms"])
        .time_limit(Duration::from_millis(100))
        .blocking(
            |ctx: &TaskContext, (ms,): (u64,)| -> Result<&'static str, TaskError> {
                let id = ctx.job_id().to_owned();
                ctx.on_cancel(move || CANCELLED.lock().unwrap_or_else(|p| p.into_inner()).push(id));
                std::thread::sleep(Duration::from_millis(ms));
                Ok("too late")
            },
        );
    app.task("panics")
        .args::<0>([])
        .blocking(|_ctx: &TaskContext, (): ()| -> Result<(), TaskError> { panic!("handler bug") });
    app
}

/// A worker running in the background until [`RunningWorker::stop`].
pub(crate) struct RunningWorker {
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), jobq::Error>>,
    pub id: String,
}

impl RunningWorker {
    /// Starts a worker with `app` on `broker`.
    pub(crate) fn start(app: App, broker: Broker, config: WorkerConfig) -> Self {
        let worker = Worker::new(app, broker, config);
        let id = worker.id().to_owned();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(worker.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            stop: Some(tx),
            handle,
            id,
        }
    }

    /// Whether the worker is still running.
    pub(crate) fn is_running(&self) -> bool {
        !self.handle.is_finished()
    }

    /// Asks for a graceful shutdown without waiting for it (as SIGTERM does); [`stop`]
    /// then waits for it.
    ///
    /// [`stop`]: RunningWorker::stop
    pub(crate) fn begin_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Asks for a graceful shutdown and waits for it.
    pub(crate) async fn stop(mut self) {
        self.begin_stop();
        self.handle
            .await
            .expect("worker task panicked")
            .expect("worker returned an error");
    }
}
