//! Fault tests on real processes: a worker process killed with SIGKILL mid-job (and how soon
//! a survivor recovers its job at the default settings), Redis killed and restarted
//! mid-stream (with a worker and a scheduler running, and with clients submitting), clients
//! while Redis is down, and SIGTERM/SIGINT handling of a worker process.
//!
//! Worker processes are this test binary re-executed with [`CHILD_URL`] set: the ignored
//! `child_worker_process` entry below then runs a worker until it gets a signal.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq::monitor::Monitor;
use jobq::scheduler::{FiredTick, ScheduleSpec, Scheduler};
use jobq::{AsyncResult, Client, Error, JobState, Worker, WorkerConfig};
use redis_harness::{OwnedRedis, TestRedis};
use serde_json::json;

use common::{RunningWorker, fast_config, redis_broker, redis_broker_at, runs_of, test_app};

const CHILD_URL: &str = "JOBQ_TEST_CHILD_URL";
const CHILD_NAMESPACE: &str = "JOBQ_TEST_CHILD_NAMESPACE";
const CHILD_GRACE_MS: &str = "JOBQ_TEST_CHILD_GRACE_MS";
/// Set (to anything) for a worker process at `WorkerConfig::default()` instead of the
/// suite's short timeouts.
const CHILD_DEFAULTS: &str = "JOBQ_TEST_CHILD_DEFAULTS";
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
        let mut config = if std::env::var_os(CHILD_DEFAULTS).is_some() {
            WorkerConfig::default()
        } else {
            fast_config()
        };
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

/// The settings a worker process runs with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Settings {
    /// The suite's short timeouts ([`fast_config`]).
    Fast,
    /// `WorkerConfig::default()`, as in production.
    Default,
}

fn spawn_worker_process(url: &str, namespace: &str, grace: Duration, settings: Settings) -> Child {
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = Command::new(exe);
    if settings == Settings::Default {
        command.env(CHILD_DEFAULTS, "1");
    }
    command
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
    let mut child = spawn_worker_process(
        &url,
        broker.namespace(),
        Duration::from_secs(5),
        Settings::Fast,
    );
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

/// A worker process at the default settings is SIGKILLed mid-job while another worker
/// (also at the defaults) runs: the survivor's reaper puts the job back and the survivor
/// runs it within 20 s of the kill. At the defaults it waits for the dead worker's
/// heartbeat to expire and its visibility timeout (10 s) to pass, plus at most one reaper
/// interval (2 s): about 8 to 12 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_worker_s_job_runs_again_within_20_s_at_the_defaults() {
    const BOUND: Duration = Duration::from_secs(20);
    let broker = redis_broker("sigkill-defaults").await;
    let url = TestRedis::shared().expect("redis").url().to_owned();
    let client = Client::new(broker.clone());
    let monitor = Monitor::new(&broker).expect("a Redis broker");
    let mut child = spawn_worker_process(
        &url,
        broker.namespace(),
        Duration::from_secs(30),
        Settings::Default,
    );
    let res: AsyncResult<String> = client.delay("sleep", [5000]).await.expect("enqueue");
    wait_until_started(&res).await;
    // Started only now, so the running job is the worker process's.
    let survivor = RunningWorker::start(test_app(), broker.clone(), WorkerConfig::default());
    wait_until("both workers heartbeating", async || {
        let workers = monitor.workers().await.expect("workers");
        workers.len() == 2 && workers.iter().all(|w| w.alive)
    })
    .await;
    let dead = monitor
        .workers()
        .await
        .expect("workers")
        .into_iter()
        .find(|w| w.id != survivor.id)
        .expect("the worker process");
    assert_eq!(dead.in_flight, 1, "{dead:?}");
    // Killed at a point of its heartbeat cycle (2 s) that varies from run to run.
    tokio::time::sleep(Duration::from_millis(now_ms() % 2000)).await;
    assert!(
        res.try_get().await.expect("read").is_none(),
        "the job ended before the kill"
    );

    child.kill().expect("SIGKILL the worker process");
    let killed = Instant::now();
    child.wait().expect("reap the worker process");
    let mut back_in_queue = None;
    let picked_up = loop {
        let workers = monitor.workers().await.expect("workers");
        if back_in_queue.is_none() && workers.iter().all(|w| w.id != dead.id) {
            back_in_queue = Some(killed.elapsed());
        }
        let survivor_runs_it = workers
            .iter()
            .any(|w| w.id == survivor.id && w.in_flight > 0);
        if survivor_runs_it || res.try_get().await.expect("read").is_some() {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < BOUND,
            "the job was not picked up again within {BOUND:?} of the kill \
             (back in the queue after {back_in_queue:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let back_in_queue = back_in_queue.unwrap_or(picked_up);
    eprintln!(
        "SIGKILL at the defaults: the job was back in its queue {:.1} s and picked up by the \
         survivor {:.1} s after the kill",
        back_in_queue.as_secs_f64(),
        picked_up.as_secs_f64()
    );
    assert!(picked_up < BOUND, "{picked_up:?}");
    assert_eq!(
        res.get(WAIT).await.expect("the job finishes"),
        res.id().as_str()
    );
    survivor.stop().await;
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

/// One submission of [`redis_killed_mid_submission_loses_no_accepted_job`].
struct Submission {
    /// The job's first argument; its result must be `n + 7`.
    n: i64,
    sent: Instant,
    answered: Instant,
    /// `Some` when the submit returned Ok (Redis accepted the job).
    accepted: Option<AsyncResult<i64>>,
}

/// Redis with AOF (`appendfsync always`) is SIGKILLed while four clients keep submitting
/// jobs and a worker runs them, then restarted: every submission that returned Ok, before,
/// across or after the crash, ends with its own correct result. Submissions refused while
/// Redis was down are counted apart; they were never promised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_submission_loses_no_accepted_job() {
    const SUBMITTERS: i64 = 4;
    const ACCEPTED_EACH_SIDE: usize = 300;
    let mut redis = OwnedRedis::start_durable().expect("start a private durable redis");
    let broker = redis_broker_at(redis.url(), "submit-crash").await;
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker.clone());
    let log: Arc<Mutex<Vec<Submission>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|first| {
            let (client, log, stop) = (client.clone(), Arc::clone(&log), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut n = first;
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let outcome = tokio::time::timeout(WAIT, client.delay::<i64>("add", [n, 7]))
                        .await
                        .expect("a submit hung while redis was down or restarting");
                    let refused = outcome.is_err();
                    log.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(Submission {
                            n,
                            sent,
                            answered: Instant::now(),
                            accepted: outcome.ok(),
                        });
                    n += SUBMITTERS;
                    if refused {
                        // Redis is down: no need to spin.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    let accepted_count = || {
        log.lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|s| s.accepted.is_some())
            .count()
    };

    wait_until("jobs accepted before the crash", async || {
        accepted_count() >= ACCEPTED_EACH_SIDE
    })
    .await;
    let killed = Instant::now();
    redis.kill().expect("kill redis");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    redis.restart().expect("restart redis");
    let accepted_before_restart = accepted_count();
    wait_until("jobs accepted after the restart", async || {
        accepted_count() >= accepted_before_restart + ACCEPTED_EACH_SIDE
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for submitter in submitters {
        submitter.await.expect("submitter task");
    }
    let log = std::mem::take(&mut *log.lock().unwrap_or_else(|p| p.into_inner()));

    let count = |pick: &dyn Fn(&Submission) -> bool| log.iter().filter(|s| pick(s)).count();
    let across = |s: &Submission| s.sent < killed && s.answered > killed;
    let accepted_before = count(&|s| s.accepted.is_some() && s.answered <= killed);
    let across_accepted = count(&|s| across(s) && s.accepted.is_some());
    let across_refused = count(&|s| across(s) && s.accepted.is_none());
    let refused = count(&|s| s.accepted.is_none());
    let accepted_after = count(&|s| s.accepted.is_some() && s.sent >= killed);
    let accepted: Vec<&Submission> = log.iter().filter(|s| s.accepted.is_some()).collect();
    assert!(
        across_accepted + across_refused > 0,
        "no submission was in flight across the kill"
    );

    // Every accepted job ends with its own result, from the worker that ran through the
    // crash: that includes a job a fetch moved just before the crash whose reply the crash
    // swallowed, which the worker finds in its in-flight list and puts back.
    let lost = results_within(&accepted, WAIT).await;
    assert!(worker.is_running(), "the worker died with redis");
    let lost: Vec<i64> = lost.iter().map(|s| s.n).collect();
    eprintln!(
        "redis SIGKILLed mid-submission (AOF always): {} submitted, {} accepted ({accepted_before} \
         before the kill, {across_accepted} across it, {accepted_after} after it), \
         {refused} refused ({across_refused} of them across the kill); {} lost",
        log.len(),
        accepted.len(),
        lost.len(),
    );
    assert!(
        lost.is_empty(),
        "{} accepted jobs lost or stranded in the live worker; the first arguments of some: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    worker.stop().await;
    let stats = client.stats().await.expect("stats");
    assert_eq!(stats.failed, 0, "{stats:?}");
    assert_eq!(stats.in_flight, 0, "{stats:?}");
}

/// Waits, `within` in all, for the results of `submissions`; each that arrives must be its
/// job's correct sum. Returns the ones still without a result.
async fn results_within<'a>(
    submissions: &[&'a Submission],
    within: Duration,
) -> Vec<&'a Submission> {
    let deadline = Instant::now() + within;
    let mut unfinished = Vec::new();
    for submission in submissions {
        let res = submission
            .accepted
            .as_ref()
            .expect("an accepted submission");
        match res
            .get(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            Ok(sum) => assert_eq!(sum, submission.n + 7, "job {}", res.id()),
            Err(Error::Timeout) => unfinished.push(*submission),
            Err(e) => panic!("job {}: {e:?}", res.id()),
        }
    }
    unfinished
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
    let mut child = spawn_worker_process(
        &url,
        broker.namespace(),
        Duration::from_secs(10),
        Settings::Fast,
    );
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
    let mut child = spawn_worker_process(
        &url,
        broker.namespace(),
        Duration::from_millis(200),
        Settings::Fast,
    );
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
    let mut child = spawn_worker_process(
        &url,
        broker.namespace(),
        Duration::from_secs(30),
        Settings::Fast,
    );
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

/// A job that sits in a live worker's in-flight list although the worker never received it
/// (Redis carried out a fetch whose reply was lost) is put back and runs; nothing else
/// would move it while the worker lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_moved_by_a_fetch_whose_reply_was_lost_is_put_back() {
    let redis = OwnedRedis::start().expect("start a private redis");
    let broker = redis_broker_at(redis.url(), "orphan").await;
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker.clone());
    wait_until("the worker registers", async || {
        client.stats().await.is_ok_and(|s| s.workers == 1)
    })
    .await;
    let id = jobq::JobId::new_random();
    let stored = json!({
        "id": id.as_str(),
        "task": "add",
        "args": [40, 2],
        "queue": jobq::DEFAULT_QUEUE,
        "created_at_ms": now_ms(),
    })
    .to_string();
    let admin = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = admin.get_connection().expect("connect");
    let processing = format!("{{{}}}:processing:{}", broker.namespace(), worker.id);
    let _: () = redis::cmd("LPUSH")
        .arg(&processing)
        .arg(&stored)
        .query(&mut conn)
        .expect("LPUSH");
    let result = client.result::<i64>(id);
    assert!(
        matches!(
            result.get(Duration::from_secs(2)).await,
            Err(Error::Timeout)
        ),
        "the worker ran a job it never received"
    );
    // The worker's periodic look at its in-flight list (every 10 heartbeats, 1 s apart
    // here) finds it.
    assert_eq!(result.get(WAIT).await.expect("the orphan ran"), 42);
    worker.stop().await;
}
