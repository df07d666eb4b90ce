//! Fault tests on real processes: a worker process killed with SIGKILL mid-job, Redis
//! killed and restarted mid-stream (with a worker and a scheduler running), clients
//! while Redis is down, and SIGTERM/SIGINT handling of a worker process.
//!
//! Worker processes are this test binary re-executed with [`CHILD_URL`] set: the ignored
//! `child_worker_process` entry below then runs a worker until it gets a signal.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq::scheduler::{FiredTick, ScheduleSpec, Scheduler};
use jobq::{AsyncResult, Client, Error, JobState, Worker};
use redis_harness::{OwnedRedis, TestRedis};
use serde_json::json;

use common::{RunningWorker, fast_config, redis_broker, redis_broker_at, runs_of, test_app};

const CHILD_URL: &str = "JOBQ_TEST_CHILD_URL";
const CHILD_NAMESPACE: &str = "JOBQ_TEST_CHILD_NAMESPACE";
const CHILD_GRACE_MS: &str = "JOBQ_TEST_CHILD_GRACE_MS";
const WAIT: Duration = Duration::from_secs(20);

/// The worker-process entry point used by the tests below.
#[test]
#[ignore = "the worker-process side of the fault tests; started by them with its settings"]
#[allow(clippy::exit)] // a worker binary's exits (0, or 130 on a second signal), played here
fn child_worker_process() {
    let url = std::env::var(CHILD_URL).expect("started by a fault test with a Redis URL");
    let namespace = std::env::var(CHILD_NAMESPACE).expect("child namespace");
    let grace_ms: u64 = std::env::var(CHILD_GRACE_MS)
        .expect("child grace period")
        .parse()
        .expect("grace period in ms");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let broker = redis_broker_at(&url, &namespace).await;
        let mut config = fast_config();
        config.grace_period = Duration::from_millis(grace_ms);
        // jobq never ends its host process; like the posts-worker binary, this worker
        // process exits at once (130) on a second signal.
        let shutdown = async {
            jobq::shutdown_signal().await;
            tokio::spawn(async {
                jobq::shutdown_signal().await;
                std::process::exit(130);
            });
        };
        Worker::new(test_app(), broker, config)
            .run_until(shutdown)
            .await
            .expect("worker run");
    });
    std::process::exit(0);
}

fn spawn_worker_process(url: &str, namespace: &str, grace: Duration) -> Child {
    let exe = std::env::current_exe().expect("test binary path");
    Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "child_worker_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, url)
        .env(CHILD_NAMESPACE, namespace)
        .env(CHILD_GRACE_MS, grace.as_millis().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the worker process")
}

async fn wait_for_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the worker process") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker process did not exit within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_until_started(res: &AsyncResult<String>) {
    let deadline = Instant::now() + WAIT;
    while res.state().await.expect("state") != JobState::Started {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[allow(unsafe_code)] // std can only SIGKILL a child; these tests also need SIGTERM.
fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: sending a signal to a child process we spawned and have not reaped.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_a_worker_process_mid_job_loses_no_job() {
    let broker = redis_broker("sigkill").await;
    let url = TestRedis::shared().expect("redis").url().to_owned();
    let client = Client::new(broker.clone());
    const N: usize = 40;
    let results: Vec<AsyncResult<String>> = client
        .delay_many("sleep", (0..N).map(|_| [100]))
        .await
        .expect("enqueue");
    let mut child = spawn_worker_process(&url, broker.namespace(), Duration::from_secs(5));
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = client.stats().await.expect("stats");
        if stats.processed >= 4 && stats.in_flight > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker process made no progress: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("SIGKILL the worker process");
    child.wait().expect("reap the worker process");
    // The dead worker is the only one registered, so the in-flight count is the length of
    // its processing list: the jobs that may run a second time.
    let after_kill = client.stats().await.expect("stats");
    let in_flight_at_kill = after_kill.in_flight;
    assert!(
        after_kill.processed < N as u64,
        "killed too late: {after_kill:?}"
    );
    assert!(
        in_flight_at_kill > 0,
        "nothing was in flight: {after_kill:?}"
    );

    let rescuer = RunningWorker::start(test_app(), broker.clone(), fast_config());
    for res in &results {
        assert_eq!(
            res.get(WAIT).await.expect("every job finishes"),
            res.id().as_str()
        );
    }
    let stats = client.stats().await.expect("stats");
    assert_eq!(stats.in_flight, 0, "{stats:?}");
    assert_eq!(stats.queues.get("default"), Some(&0), "{stats:?}");
    assert!(stats.processed >= N as u64, "{stats:?}");
    assert!(
        stats.processed <= N as u64 + in_flight_at_kill,
        "more re-runs than jobs in flight at the kill ({in_flight_at_kill}): {stats:?}"
    );
    assert_eq!(stats.failed, 0, "{stats:?}");
    rescuer.stop().await;
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Redis with AOF persistence is SIGKILLed while jobs run and a scheduler sends a tick a
/// second: every job sent before the crash ends with its own result (none vanishes), the
/// worker registers again, and no tick is sent or run twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_stream_loses_no_job_and_sends_no_tick_twice() {
    let mut redis = OwnedRedis::start_durable().expect("start a private durable redis");
    let broker = redis_broker_at(redis.url(), "restart").await;
    // A heartbeat (600 ms) shorter than the outage, so the worker must register again; a
    // visibility timeout longer than the test, so no job is recovered behind its back.
    let mut config = fast_config();
    config.heartbeat_interval = Duration::from_millis(200);
    config.visibility_timeout = Duration::from_secs(120);
    let worker = RunningWorker::start(test_app(), broker.clone(), config);
    let client = Client::new(broker.clone());

    let fired: Arc<Mutex<Vec<FiredTick>>> = Arc::default();
    let label = format!("restart-tick-{}", std::process::id());
    let spec = ScheduleSpec::every("tick", "record_run", json!([label]), Duration::from_secs(1))
        .expect("a valid schedule");
    let scheduler = {
        let fired = Arc::clone(&fired);
        Scheduler::new(broker.clone(), vec![spec])
            .await
            .expect("scheduler")
            .with_refresh(Duration::from_millis(200))
            .on_fire(move |tick| {
                fired
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(tick.clone())
            })
    };
    let (stop_scheduler, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(scheduler.run_until(async move {
        let _ = stopped.await;
    }));
    let fired_count = || fired.lock().unwrap_or_else(|p| p.into_inner()).len();

    let before: Vec<AsyncResult<i64>> = client
        .delay_many("add", (0..20).map(|i| [i, 1]))
        .await
        .expect("enqueue");
    for (i, res) in before.iter().enumerate() {
        assert_eq!(res.get(WAIT).await.expect("result"), i as i64 + 1);
    }
    wait_until("a first scheduler tick", async || fired_count() >= 1).await;
    let in_flight: Vec<AsyncResult<String>> = client
        .delay_many("sleep", (0..20).map(|_| [100]))
        .await
        .expect("enqueue");
    wait_until("jobs in flight", async || {
        client.stats().await.expect("stats").in_flight > 0
    })
    .await;
    let at_kill = client.stats().await.expect("stats");
    redis.kill().expect("kill redis");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(worker.is_running(), "the worker died with redis");
    redis.restart().expect("restart redis");
    let restarted_ms = now_ms();
    wait_until("redis answering again", async || {
        broker.ping().await.is_ok()
    })
    .await;

    let after: Vec<AsyncResult<i64>> = client
        .delay_many("add", (0..20).map(|i| [i, 100]))
        .await
        .expect("enqueue after the restart");
    for (i, res) in after.iter().enumerate() {
        assert_eq!(res.get(WAIT).await.expect("result"), i as i64 + 100);
    }
    for res in &in_flight {
        assert_eq!(
            res.get(WAIT)
                .await
                .expect("a job in flight at the crash finishes"),
            res.id().as_str()
        );
    }
    // The heartbeat key expired during the outage: only a new heartbeat counts it.
    wait_until("the worker registering again", async || {
        client.stats().await.expect("stats").workers == 1
    })
    .await;
    wait_until("a tick after the restart", async || {
        fired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|f| f.tick_ms >= restarted_ms)
    })
    .await;
    let _ = stop_scheduler.send(());
    scheduler
        .await
        .expect("scheduler task")
        .expect("scheduler run");
    let fired = fired.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let ticks: BTreeSet<u64> = fired.iter().map(|f| f.tick_ms).collect();
    assert_eq!(ticks.len(), fired.len(), "a tick was sent twice: {fired:?}");
    for tick in &fired {
        let ran: String = client
            .result(tick.job_id.clone())
            .get(WAIT)
            .await
            .expect("every sent tick runs");
        assert_eq!(ran, label);
        assert_eq!(runs_of(&format!("job:{}", tick.job_id)), 1, "{tick:?}");
    }
    assert!(worker.is_running());
    worker.stop().await;

    let stats = client.stats().await.expect("stats");
    let jobs = (before.len() + in_flight.len() + after.len() + fired.len()) as u64;
    assert_eq!(stats.failed, 0, "{stats:?}");
    assert_eq!(stats.in_flight, 0, "{stats:?}");
    assert!(
        (jobs..=jobs + at_kill.in_flight).contains(&stats.processed),
        "{jobs} jobs, {} in flight at the crash: {stats:?}",
        at_kill.in_flight
    );
}

/// While Redis is down, sending and reading fail with a typed Redis error, promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_get_a_prompt_typed_error_while_redis_is_down() {
    let mut redis = OwnedRedis::start().expect("start a private redis");
    let broker = redis_broker_at(redis.url(), "down").await;
    let client = Client::new(broker);
    let sent: AsyncResult<i64> = client.delay("add", [1, 2]).await.expect("enqueue");
    redis.kill().expect("kill redis");

    let started = Instant::now();
    let error = tokio::time::timeout(WAIT, client.delay::<i64>("add", [3, 4]))
        .await
        .expect("delay hung while redis is down")
        .expect_err("delay succeeded without redis");
    assert!(is_unreachable(&error), "{error:?}");
    let error = tokio::time::timeout(WAIT, sent.get(Duration::from_secs(2)))
        .await
        .expect("get hung while redis is down")
        .expect_err("get succeeded without redis");
    assert!(
        is_unreachable(&error),
        "get must not report a plain timeout: {error:?}"
    );
    let error = tokio::time::timeout(WAIT, sent.state())
        .await
        .expect("state hung while redis is down")
        .expect_err("state succeeded without redis");
    assert!(is_unreachable(&error), "{error:?}");
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
}

fn is_unreachable(error: &Error) -> bool {
    match error {
        Error::Redis { source, .. } => {
            source.is_io_error() || source.is_connection_refusal() || source.is_connection_dropped()
        }
        Error::Pool { .. } | Error::RedisTimeout { .. } => true,
        _ => false,
    }
}

/// A client already waiting when Redis goes down keeps waiting, and gets the result a
/// worker stores once Redis is back with its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_waits_across_a_redis_restart() {
    let mut redis = OwnedRedis::start_durable().expect("start a private durable redis");
    let broker = redis_broker_at(redis.url(), "get-restart").await;
    let client = Client::new(broker.clone());
    let sent: AsyncResult<i64> = client.delay("add", [20, 22]).await.expect("enqueue");
    redis.kill().expect("kill redis");
    let waiter = tokio::spawn({
        let sent = sent.clone();
        async move { sent.get(Duration::from_secs(30)).await }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiter.is_finished(),
        "get gave up while redis was down: {:?}",
        waiter.await
    );
    redis.restart().expect("restart redis");
    let worker = RunningWorker::start(test_app(), broker, fast_config());
    let sum = tokio::time::timeout(WAIT, waiter)
        .await
        .expect("get did not return after the restart")
        .expect("waiter task")
        .expect("the result after the restart");
    assert_eq!(sum, 42);
    worker.stop().await;
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_job_finish() {
    let broker = redis_broker("sigterm").await;
    let url = TestRedis::shared().expect("redis").url().to_owned();
    let client = Client::new(broker.clone());
    let res: AsyncResult<String> = client.delay("sleep", [800]).await.expect("enqueue");
    let mut child = spawn_worker_process(&url, broker.namespace(), Duration::from_secs(10));
    wait_until_started(&res).await;
    signal(&child, libc::SIGTERM);
    let status = wait_for_exit(&mut child, WAIT).await;
    assert!(status.success(), "{status:?}");
    assert_eq!(
        res.try_get().await.expect("read").as_deref(),
        Some(res.id().as_str())
    );
    let stats = client.stats().await.expect("stats");
    assert_eq!((stats.in_flight, stats.workers), (0, 0), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_puts_back_what_outlives_the_grace_period() {
    let broker = redis_broker("sigterm-grace").await;
    let url = TestRedis::shared().expect("redis").url().to_owned();
    let client = Client::new(broker.clone());
    let res: AsyncResult<String> = client.delay("sleep", [5000]).await.expect("enqueue");
    let mut child = spawn_worker_process(&url, broker.namespace(), Duration::from_millis(200));
    wait_until_started(&res).await;
    signal(&child, libc::SIGINT);
    let status = wait_for_exit(&mut child, Duration::from_secs(4)).await;
    assert!(status.success(), "{status:?}");
    assert_eq!(res.try_get().await.expect("read"), None);
    let stats = client.stats().await.expect("stats");
    assert_eq!(stats.queues.get("default"), Some(&1), "{stats:?}");
    assert_eq!(stats.in_flight, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_and_the_reaper_recovers_the_job() {
    let broker = redis_broker("second-signal").await;
    let url = TestRedis::shared().expect("redis").url().to_owned();
    let client = Client::new(broker.clone());
    let res: AsyncResult<String> = client.delay("sleep", [3000]).await.expect("enqueue");
    let mut child = spawn_worker_process(&url, broker.namespace(), Duration::from_secs(30));
    wait_until_started(&res).await;
    signal(&child, libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&child, libc::SIGTERM);
    let status = wait_for_exit(&mut child, Duration::from_secs(2)).await;
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_eq!(client.stats().await.expect("stats").in_flight, 1);
    let rescuer = RunningWorker::start(test_app(), broker, fast_config());
    assert_eq!(res.get(WAIT).await.expect("recovered"), res.id().as_str());
    rescuer.stop().await;
}
