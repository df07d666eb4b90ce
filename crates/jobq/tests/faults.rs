//! Fault tests on real processes: a worker process killed with SIGKILL mid-job, Redis
//! killed and restarted mid-stream, and SIGTERM/SIGINT handling of a worker process.
//!
//! Worker processes are this test binary re-executed with [`CHILD_URL`] set: the
//! `child_worker_process` entry below then runs a worker until it gets a signal.

mod common;

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use jobq::{AsyncResult, Broker, Client, JobState, ShutdownSignals, Worker};
use redis_harness::{OwnedRedis, TestRedis};

use common::{RunningWorker, fast_config, redis_broker, test_app};

const CHILD_URL: &str = "JOBQ_TEST_CHILD_URL";
const CHILD_NAMESPACE: &str = "JOBQ_TEST_CHILD_NAMESPACE";
const CHILD_GRACE_MS: &str = "JOBQ_TEST_CHILD_GRACE_MS";
const WAIT: Duration = Duration::from_secs(20);

/// The worker-process entry point used by the tests below; when this binary runs as a
/// plain test (no [`CHILD_URL`]), there is no worker to run and it returns at once.
#[test]
fn child_worker_process() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let namespace = std::env::var(CHILD_NAMESPACE).expect("child namespace");
    let grace_ms: u64 = std::env::var(CHILD_GRACE_MS)
        .expect("child grace period")
        .parse()
        .expect("grace period in ms");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let broker = Broker::redis(&url, &namespace).await.expect("connect");
        let mut config = fast_config();
        config.grace_period = Duration::from_millis(grace_ms);
        // As a binary would: the first signal shuts down gracefully, a second one exits
        // at once (jobq itself never ends the process).
        let mut signals = ShutdownSignals::new().expect("listen for signals");
        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            signals.recv().await;
            let _ = first_tx.send(());
            signals.recv().await;
            std::process::exit(130);
        });
        Worker::new(test_app(), broker, config)
            .run_until(async move {
                let _ = first_rx.await;
            })
            .await
            .expect("worker run");
    });
    std::process::exit(0);
}

fn spawn_worker_process(url: &str, namespace: &str, grace: Duration) -> Child {
    let exe = std::env::current_exe().expect("test binary path");
    Command::new(exe)
        .args([
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
    let after_kill = client.stats().await.expect("stats");
    assert!(
        after_kill.processed < N as u64,
        "killed too late: {after_kill:?}"
    );
    assert!(
        after_kill.in_flight > 0,
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
    rescuer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_stream_the_worker_recovers() {
    let mut redis = OwnedRedis::start().expect("start a private redis");
    let broker = Broker::redis(redis.url(), "restart")
        .await
        .expect("connect");
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker.clone());

    let before: Vec<AsyncResult<i64>> = client
        .delay_many("add", (0..20).map(|i| [i, 1]))
        .await
        .expect("enqueue");
    for (i, res) in before.iter().enumerate() {
        assert_eq!(res.get(WAIT).await.expect("result"), i as i64 + 1);
    }
    let in_flight: Vec<AsyncResult<String>> = client
        .delay_many("sleep", (0..20).map(|_| [50]))
        .await
        .expect("enqueue");
    tokio::time::sleep(Duration::from_millis(120)).await;
    redis.kill().expect("kill redis");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(worker.is_running(), "the worker died with redis");
    redis.restart().expect("restart redis");
    let deadline = Instant::now() + WAIT;
    while broker.ping().await.is_err() {
        assert!(Instant::now() < deadline, "redis did not come back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let after: Vec<AsyncResult<i64>> = client
        .delay_many("add", (0..20).map(|i| [i, 100]))
        .await
        .expect("enqueue after the restart");
    for (i, res) in after.iter().enumerate() {
        assert_eq!(res.get(WAIT).await.expect("result"), i as i64 + 100);
    }
    assert!(worker.is_running());
    // Stopping flushes every pending acknowledgement.
    worker.stop().await;

    // The restarted server is empty: its counters only know acknowledgements made after
    // the restart, and each of those must have stored its result.
    let mut stored = after.len() as u64;
    for res in &in_flight {
        if res.try_get().await.expect("read").is_some() {
            stored += 1;
        }
    }
    let stats = client.stats().await.expect("stats");
    assert_eq!(
        stats.processed, stored,
        "an acknowledged job has no result: {stats:?}"
    );
    assert_eq!(stats.in_flight, 0, "{stats:?}");
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
