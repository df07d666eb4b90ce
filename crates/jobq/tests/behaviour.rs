//! The behaviour suite: every scenario runs against both the Redis broker (on a throwaway
//! Redis from the harness) and the memory broker.

mod common;

use std::time::{Duration, Instant, SystemTime};

use jobq::test_support;
use jobq::{
    AsyncResult, Broker, Client, DEFAULT_ARGUMENT_LIMIT, Error, JobState, SendOptions, TaskError,
};
use serde_json::{Value, json};

use common::{CANCELLED, RunningWorker, fast_config, runs_of, test_app};

const WAIT: Duration = Duration::from_secs(10);

async fn delay_and_get(broker: Broker) {
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker);
    let sum: i64 = client
        .delay("add", [2, 3])
        .await
        .unwrap()
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(sum, 5);
    let named: i64 = client
        .delay("add", json!({"a": 40, "b": 2}))
        .await
        .unwrap()
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(named, 42);
    let pong: String = client
        .delay("ping", json!([]))
        .await
        .unwrap()
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(pong, "pong");
    let res: AsyncResult<Value> = client.delay("echo", json!([{"k": [1, 2]}])).await.unwrap();
    assert_eq!(res.get(WAIT).await.unwrap(), json!({"k": [1, 2]}));
    assert_eq!(res.state().await.unwrap(), JobState::Success);
    // A second waiter on a finished job gets the same answer.
    assert_eq!(res.get(WAIT).await.unwrap(), json!({"k": [1, 2]}));
    worker.stop().await;
}

async fn many_jobs_all_finish(broker: Broker) {
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker);
    let results: Vec<AsyncResult<i64>> = client
        .delay_many("add", (0..500).map(|i| [i, 1]))
        .await
        .unwrap();
    assert_eq!(results.len(), 500);
    for (i, res) in results.iter().enumerate() {
        assert_eq!(res.get(WAIT).await.unwrap(), i as i64 + 1);
    }
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.processed, 500);
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.queues.get("default"), Some(&0));
    worker.stop().await;
}

/// A prefetched batch runs in queue order even when its jobs wait for a handler slot.
async fn jobs_start_in_queue_order(broker: Broker) {
    let client = Client::new(broker.clone());
    let prefix = format!("{}-", broker.namespace());
    let labels: Vec<String> = (0..40).map(|i| format!("{prefix}{i:02}")).collect();
    let results: Vec<AsyncResult<()>> = client
        .delay_many("note_order", labels.iter().map(|l| [l.clone()]))
        .await
        .unwrap();
    let mut config = fast_config();
    config.concurrency = 1;
    config.prefetch = 64;
    let worker = RunningWorker::start(test_app(), broker, config);
    for result in &results {
        result.get(WAIT).await.unwrap();
    }
    assert_eq!(common::started_with(&prefix), labels);
    worker.stop().await;
}

async fn get_times_out(broker: Broker) {
    // No worker runs: nothing can answer.
    let client = Client::new(broker);
    let res: AsyncResult<i64> = client.delay("add", [1, 2]).await.unwrap();
    let started = Instant::now();
    let err = res.get(Duration::from_millis(200)).await.unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(190));
    assert_eq!(res.state().await.unwrap(), JobState::Pending);
    assert_eq!(res.try_get().await.unwrap(), None);
}

async fn failure_carries_kind_and_message(broker: Broker) {
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker);
    let res: AsyncResult<Value> = client
        .delay("fail", ["DiskFull", "no space left on /data"])
        .await
        .unwrap();
    match res.get(WAIT).await {
        Err(Error::Failed(failure)) => {
            assert_eq!(failure.kind, "DiskFull");
            assert_eq!(failure.message, "no space left on /data");
        }
        other => panic!("expected a task failure, got {other:?}"),
    }
    assert_eq!(res.state().await.unwrap(), JobState::Failure);
    // A task without retries that fails is not a dead letter.
    assert!(client.dead_letters(10).await.unwrap().is_empty());
    let panicked: AsyncResult<Value> = client.delay("panics", json!([])).await.unwrap();
    match panicked.get(WAIT).await {
        Err(Error::Failed(f)) => {
            assert_eq!(f.kind, TaskError::PANIC);
            assert!(f.message.contains("handler bug"), "{}", f.message);
        }
        other => panic!("expected a panic failure, got {other:?}"),
    }
    worker.stop().await;
}

async fn unknown_task_and_bad_arguments_are_dead_lettered(broker: Broker) {
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker);
    let unknown: AsyncResult<Value> = client.delay("no_such_task", [1]).await.unwrap();
    match unknown.get(WAIT).await {
        Err(Error::Failed(f)) => {
            assert_eq!(f.kind, TaskError::UNKNOWN_TASK);
            assert!(f.message.contains("no_such_task"), "{}", f.message);
        }
        other => panic!("expected UnknownTask, got {other:?}"),
    }
    let bad: AsyncResult<Value> = client.delay("add", json!(["two", 3])).await.unwrap();
    match bad.get(WAIT).await {
        Err(Error::Failed(f)) => {
            assert_eq!(f.kind, TaskError::INVALID_ARGUMENTS);
            assert!(f.message.contains("\"a\""), "{}", f.message);
        }
        other => panic!("expected InvalidArguments, got {other:?}"),
    }
    let letters = client.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[1].job_id.as_ref(), Some(unknown.id()));
    assert_eq!(letters[1].reason.kind, TaskError::UNKNOWN_TASK);
    assert_eq!(letters[0].task.as_deref(), Some("add"));

    // Requeueing runs them again (and they fail again); purging empties the list.
    assert_eq!(client.requeue_dead(10).await.unwrap(), 2);
    let deadline = Instant::now() + WAIT;
    while client.stats().await.unwrap().dead < 2 {
        assert!(
            Instant::now() < deadline,
            "requeued jobs were not dead-lettered again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(client.purge_dead().await.unwrap(), 2);
    assert!(client.dead_letters(10).await.unwrap().is_empty());
    worker.stop().await;
}

async fn malformed_messages_are_dead_lettered_and_the_worker_goes_on(broker: Broker) {
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    for raw in ["{not json at all", r#"{"id": "hand-made-1", "task": 5}"#] {
        test_support::push_raw(&broker, "default", raw)
            .await
            .unwrap();
    }
    let client = Client::new(broker);
    let hand_made: AsyncResult<Value> = client.result("hand-made-1");
    match hand_made.get(WAIT).await {
        Err(Error::Failed(f)) => assert_eq!(f.kind, TaskError::MALFORMED_MESSAGE),
        other => panic!("expected MalformedMessage, got {other:?}"),
    }
    let sum: i64 = client
        .delay("add", [1, 1])
        .await
        .unwrap()
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(sum, 2);
    let letters = client.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 2);
    let payloads: Vec<&str> = letters.iter().map(|l| l.payload.as_str()).collect();
    assert!(payloads.contains(&"{not json at all"), "{payloads:?}");
    assert!(
        letters
            .iter()
            .all(|l| l.reason.kind == TaskError::MALFORMED_MESSAGE)
    );
    assert!(worker.is_running());
    worker.stop().await;
}

async fn retries_back_off_then_succeed_or_dead_letter(broker: Broker) {
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker);
    let started = Instant::now();
    let attempt: u32 = client
        .delay("flaky", [2])
        .await
        .unwrap()
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(attempt, 2);
    // Two retries: at least half of 50 ms and half of 100 ms of backoff (full jitter).
    assert!(
        started.elapsed() >= Duration::from_millis(75),
        "{:?}",
        started.elapsed()
    );

    let exhausted: AsyncResult<Value> = client.delay("always_flaky", json!([])).await.unwrap();
    match exhausted.get(WAIT).await {
        Err(Error::Failed(f)) => {
            assert_eq!(f.kind, "Flaky");
            assert_eq!(f.message, "attempt 2");
        }
        other => panic!("expected the last attempt's failure, got {other:?}"),
    }
    let letters = client.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].job_id.as_ref(), Some(exhausted.id()));
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.retried, 4);

    // A job's own max_retries overrides the task's policy.
    let no_retry: AsyncResult<Value> = client
        .apply_async("flaky", [1], SendOptions::new().max_retries(0))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(no_retry.get(WAIT).await, Err(Error::Failed(_))));
    worker.stop().await;
}

async fn countdown_and_eta_delay_jobs(broker: Broker) {
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker);
    let started = Instant::now();
    let later: AsyncResult<i64> = client
        .apply_async(
            "add",
            [1, 2],
            SendOptions::new().countdown(Duration::from_millis(400)),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.stats().await.unwrap().delayed, 1);
    assert!(matches!(
        later.get(Duration::from_millis(100)).await,
        Err(Error::Timeout)
    ));
    assert_eq!(later.get(WAIT).await.unwrap(), 3);
    assert!(started.elapsed() >= Duration::from_millis(400));

    let eta = SystemTime::now() + Duration::from_millis(300);
    let at_eta: AsyncResult<i64> = client
        .apply_async("add", [2, 2], SendOptions::new().eta(eta))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at_eta.get(WAIT).await.unwrap(), 4);
    assert!(SystemTime::now() >= eta);
    assert_eq!(client.stats().await.unwrap().delayed, 0);
    worker.stop().await;
}

/// More delayed jobs fall due at once than one promotion moves (apalis-redis stalled at
/// about 8,000): they move in batches, a job sent meanwhile still runs, and all finish.
async fn a_large_due_backlog_moves_without_stalling_the_worker(broker: Broker) {
    const BACKLOG: usize = 10_000;
    let client = Client::new(broker.clone());
    let soon = SendOptions::new().countdown(Duration::from_millis(200));
    let delayed: Vec<AsyncResult<i64>> = client
        .enqueue_batch("add", (0..BACKLOG).map(|i| [i, 1]), &soon)
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(delayed.len(), BACKLOG);
    assert_eq!(client.stats().await.unwrap().delayed, BACKLOG as u64);
    tokio::time::sleep(Duration::from_millis(250)).await;

    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let meanwhile: AsyncResult<i64> = client.delay("add", [20, 22]).await.unwrap();
    assert_eq!(meanwhile.get(WAIT).await.unwrap(), 42);
    let deadline = Instant::now() + 3 * WAIT;
    loop {
        let stats = client.stats().await.unwrap();
        if stats.processed == BACKLOG as u64 + 1 {
            assert_eq!((stats.delayed, stats.failed, stats.in_flight), (0, 0, 0));
            break;
        }
        assert!(Instant::now() < deadline, "the backlog stalled: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (i, res) in delayed.iter().enumerate().step_by(997) {
        assert_eq!(res.get(WAIT).await.unwrap(), i as i64 + 1);
    }
    assert!(worker.is_running());
    worker.stop().await;
}

async fn results_expire_after_their_ttl(broker: Broker) {
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker);
    // Long enough that a loaded machine still reads the result before it expires; the
    // expiry is then waited for, and cannot come before the TTL counted from the send.
    const TTL: Duration = Duration::from_secs(2);
    let sent_at = Instant::now();
    let res: AsyncResult<i64> = client
        .apply_async("add", [1, 1], SendOptions::new().result_ttl(TTL))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.get(WAIT).await.unwrap(), 2);
    assert_eq!(res.try_get().await.unwrap(), Some(2));
    let deadline = Instant::now() + WAIT;
    while res.try_get().await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the result never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sent_at.elapsed() >= TTL,
        "expired after {:?}",
        sent_at.elapsed()
    );
    assert_eq!(res.state().await.unwrap(), JobState::Pending);

    let kept: AsyncResult<i64> = client.delay("add", [2, 1]).await.unwrap();
    assert_eq!(kept.get(WAIT).await.unwrap(), 3);
    kept.forget().await.unwrap();
    assert_eq!(kept.try_get().await.unwrap(), None);
    worker.stop().await;
}

async fn oversized_results_fail_and_point_to_explicit_keys(broker: Broker) {
    let config = {
        let mut config = fast_config();
        config.result_size_limit = 1000;
        config
    };
    let worker = RunningWorker::start(test_app(), broker.clone(), config);
    let client = Client::new(broker);
    let big: AsyncResult<String> = client.delay("big", [5000]).await.unwrap();
    match big.get(WAIT).await {
        Err(Error::Failed(f)) => {
            assert_eq!(f.kind, TaskError::RESULT_TOO_LARGE);
            assert!(f.message.contains("set_key"), "{}", f.message);
        }
        other => panic!("expected ResultTooLarge, got {other:?}"),
    }
    let small: String = client
        .delay("big", [10])
        .await
        .unwrap()
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(small.len(), 10);
    worker.stop().await;
}

async fn explicit_keys_are_written_before_the_ack(broker: Broker) {
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker);
    let key = format!("jobq-test:{}:out", uuid::Uuid::new_v4());
    let done: String = client
        .delay("write_key", json!([key, {"top": ["a", "b"]}, null]))
        .await
        .unwrap()
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(done, "written");
    let stored = client.get_key(&key).await.unwrap().expect("key written");
    assert_eq!(
        serde_json::from_str::<Value>(&stored).unwrap(),
        json!({"top": ["a", "b"]})
    );
    assert!(client.delete_key(&key).await.unwrap());
    assert_eq!(client.get_key(&key).await.unwrap(), None);

    // As with result TTLs: read well within the TTL, then wait for the expiry, which
    // cannot come before the TTL counted from the send.
    const TTL: Duration = Duration::from_secs(2);
    let short = format!("jobq-test:{}:short", uuid::Uuid::new_v4());
    let sent_at = Instant::now();
    let _: String = client
        .delay("write_key", json!([short, 1, TTL.as_millis() as u64]))
        .await
        .unwrap()
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(client.get_key(&short).await.unwrap().as_deref(), Some("1"));
    let deadline = Instant::now() + WAIT;
    while client.get_key(&short).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the key never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sent_at.elapsed() >= TTL,
        "expired after {:?}",
        sent_at.elapsed()
    );
    worker.stop().await;
}

async fn time_limits_fail_the_job_and_the_worker_goes_on(broker: Broker) {
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker);
    let slow: AsyncResult<String> = client.delay("slow_cancellable", [1500]).await.unwrap();
    match slow.get(WAIT).await {
        Err(Error::Failed(f)) => assert_eq!(f.kind, TaskError::TIME_LIMIT_EXCEEDED),
        other => panic!("expected TimeLimitExceeded, got {other:?}"),
    }
    assert!(
        CANCELLED.lock().unwrap().iter().any(|id| slow.id() == id),
        "on_cancel callback did not run"
    );
    let sum: i64 = client
        .delay("add", [3, 4])
        .await
        .unwrap()
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(sum, 7);
    // A job's own limit overrides the task's.
    let limited: AsyncResult<String> = client
        .apply_async(
            "sleep",
            [1000],
            SendOptions::new().time_limit(Duration::from_millis(50)),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        limited.get(WAIT).await,
        Err(Error::Failed(f)) if f.kind == TaskError::TIME_LIMIT_EXCEEDED
    ));
    // The late output of the blocking handler never replaces the failure.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(slow.state().await.unwrap(), JobState::Failure);
    worker.stop().await;
}

async fn unique_sends_enqueue_once(broker: Broker) {
    let client = Client::new(broker.clone());
    let options =
        SendOptions::new().unique("tick:2026-11-28T13:00".to_owned(), Duration::from_secs(60));
    let first: Option<AsyncResult<i64>> = client
        .apply_async("add", [1, 1], options.clone())
        .await
        .unwrap();
    let second: Option<AsyncResult<i64>> = client
        .apply_async("add", [1, 1], options.clone())
        .await
        .unwrap();
    assert!(first.is_some());
    assert!(second.is_none());
    assert_eq!(
        client.stats().await.unwrap().queues.get("default"),
        Some(&1)
    );
    let worker = RunningWorker::start(test_app(), broker, fast_config());
    assert_eq!(first.unwrap().get(WAIT).await.unwrap(), 2);
    worker.stop().await;
}

async fn states_move_from_pending_to_started_to_success(broker: Broker) {
    let client = Client::new(broker.clone());
    let res: AsyncResult<String> = client.delay("sleep", [400]).await.unwrap();
    assert_eq!(res.state().await.unwrap(), JobState::Pending);
    let worker = RunningWorker::start(test_app(), broker, fast_config());
    let deadline = Instant::now() + WAIT;
    while res.state().await.unwrap() != JobState::Started {
        assert!(Instant::now() < deadline, "job never reported STARTED");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(client.stats().await.unwrap().in_flight, 1);
    assert_eq!(res.get(WAIT).await.unwrap(), res.id().as_str());
    assert_eq!(res.state().await.unwrap(), JobState::Success);
    worker.stop().await;
}

async fn jobs_of_a_dead_worker_are_recovered(broker: Broker) {
    let client = Client::new(broker.clone());
    let results: Vec<AsyncResult<i64>> = client
        .delay_many("add", (0..5).map(|i| [i, 10]))
        .await
        .unwrap();
    // A worker that fetched the jobs and died: it heartbeat once and never acknowledged.
    test_support::heartbeat(&broker, "ghost", Duration::from_millis(50))
        .await
        .unwrap();
    let taken =
        test_support::fetch_raw(&broker, "ghost", "default", 10, Duration::from_millis(100))
            .await
            .unwrap();
    assert_eq!(taken.len(), 5);
    assert_eq!(client.stats().await.unwrap().in_flight, 5);
    let worker = RunningWorker::start(test_app(), broker, fast_config());
    for (i, res) in results.iter().enumerate() {
        assert_eq!(res.get(WAIT).await.unwrap(), i as i64 + 10);
    }
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.workers, 1);
    worker.stop().await;
}

async fn graceful_shutdown_finishes_running_jobs(broker: Broker) {
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let client = Client::new(broker);
    let res: AsyncResult<String> = client.delay("sleep", [300]).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while res.state().await.unwrap() != JobState::Started {
        assert!(Instant::now() < deadline, "job never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    worker.stop().await;
    assert_eq!(
        res.try_get().await.unwrap().as_deref(),
        Some(res.id().as_str())
    );
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.workers, 0);
}

async fn graceful_shutdown_puts_back_unfinished_jobs(broker: Broker) {
    let config = {
        let mut config = fast_config();
        config.concurrency = 1;
        config.grace_period = Duration::from_millis(100);
        config
    };
    let worker = RunningWorker::start(test_app(), broker.clone(), config);
    let client = Client::new(broker.clone());
    let long: AsyncResult<String> = client.delay("sleep", [3000]).await.unwrap();
    let waiting: AsyncResult<i64> = client.delay("add", [1, 1]).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while long.state().await.unwrap() != JobState::Started {
        assert!(Instant::now() < deadline, "job never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    worker.stop().await;
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.queues.get("default"), Some(&2), "{stats:?}");
    assert_eq!(stats.in_flight, 0);
    assert_eq!(long.try_get().await.unwrap(), None);
    // Another worker picks both up.
    let again = RunningWorker::start(test_app(), broker, fast_config());
    assert_eq!(waiting.get(WAIT).await.unwrap(), 2);
    assert_eq!(long.get(WAIT).await.unwrap(), long.id().as_str());
    again.stop().await;
}

/// A graceful shutdown gives the jobs it fetched but never started back to their queue at
/// once, in queue order, while its running job still runs; another worker runs them.
async fn shutdown_gives_back_unstarted_jobs_at_once(broker: Broker) {
    let config = {
        let mut config = fast_config();
        config.concurrency = 1;
        config.grace_period = WAIT;
        config
    };
    let mut worker = RunningWorker::start(test_app(), broker.clone(), config.clone());
    let client = Client::new(broker.clone());
    let long: AsyncResult<String> = client.delay("sleep", [3000]).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while long.state().await.unwrap() != JobState::Started {
        assert!(Instant::now() < deadline, "the long job never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let prefix = format!("{}-", broker.namespace());
    let labels: Vec<String> = (0..5).map(|i| format!("{prefix}{i}")).collect();
    let short: Vec<AsyncResult<()>> = client
        .delay_many("note_order", labels.iter().map(|l| [l.clone()]))
        .await
        .unwrap();
    // The worker prefetches them: its one handler slot is taken.
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = client.stats().await.unwrap();
        if stats.in_flight == 6 && stats.queues.get("default") == Some(&0) {
            break;
        }
        assert!(Instant::now() < deadline, "never prefetched: {stats:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    worker.begin_stop();
    let stopping = Instant::now();
    loop {
        let stats = client.stats().await.unwrap();
        if stats.queues.get("default") == Some(&5) && stats.in_flight == 1 {
            break;
        }
        assert!(
            long.try_get().await.unwrap().is_none() && stopping.elapsed() < WAIT,
            "the unstarted jobs were not given back while the long job ran: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let given_back = stopping.elapsed();
    assert_eq!(
        long.try_get().await.unwrap(),
        None,
        "given back after {given_back:?}"
    );
    assert!(worker.is_running(), "given back after {given_back:?}");
    assert!(
        given_back < Duration::from_secs(1),
        "given back only after {given_back:?}"
    );
    worker.stop().await;
    assert_eq!(
        long.try_get().await.unwrap().as_deref(),
        Some(long.id().as_str()),
        "the running job finished within the grace period"
    );
    assert!(
        common::started_with(&prefix).is_empty(),
        "a job given back ran"
    );

    let again = RunningWorker::start(test_app(), broker, config);
    for res in &short {
        res.get(WAIT).await.unwrap();
    }
    assert_eq!(common::started_with(&prefix), labels, "not in queue order");
    again.stop().await;
}

/// A job sent just after a worker stopped waits in its queue for the next worker: the
/// stopped worker's last (blocking) fetch took nothing into a worker that is gone.
async fn a_job_sent_just_after_a_worker_stopped_is_not_stranded(broker: Broker) {
    let config = fast_config();
    let worker = RunningWorker::start(test_app(), broker.clone(), config.clone());
    let client = Client::new(broker.clone());
    let first: i64 = client
        .delay("add", [1, 1])
        .await
        .unwrap()
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(first, 2);
    // Idle now: its fetcher waits for the next job.
    tokio::time::sleep(Duration::from_millis(50)).await;
    worker.stop().await;
    let res: AsyncResult<i64> = client.delay("add", [2, 3]).await.unwrap();
    // Longer than any fetch of the stopped worker could still wait.
    tokio::time::sleep(config.block_timeout * 2).await;
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.queues.get("default"), Some(&1), "{stats:?}");
    assert_eq!(stats.in_flight, 0, "{stats:?}");
    let again = RunningWorker::start(test_app(), broker, config);
    assert_eq!(res.get(WAIT).await.unwrap(), 5);
    again.stop().await;
}

async fn stats_count_queues_workers_and_outcomes(broker: Broker) {
    let client = Client::new(broker.clone());
    let other = SendOptions::new().queue("reports".to_owned());
    let _: Vec<Option<AsyncResult<i64>>> = client
        .enqueue_batch("add", [[1, 1], [2, 2], [3, 3]], &other)
        .await
        .unwrap();
    let _: AsyncResult<i64> = client.delay("add", [1, 1]).await.unwrap();
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.queues.get("reports"), Some(&3));
    assert_eq!(stats.queues.get("default"), Some(&1));
    assert_eq!(stats.workers, 0);
    let config = {
        let mut config = fast_config();
        config.queues = vec!["reports".to_owned()];
        config
    };
    let worker = RunningWorker::start(test_app(), broker, config);
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = client.stats().await.unwrap();
        if stats.processed == 3 && stats.workers == 1 {
            assert_eq!(stats.queues.get("reports"), Some(&0));
            assert_eq!(
                stats.queues.get("default"),
                Some(&1),
                "other queues are left alone"
            );
            break;
        }
        assert!(Instant::now() < deadline, "stats never settled: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.stop().await;
}

async fn bad_sends_get_typed_errors(broker: Broker) {
    let client = Client::new(broker);
    let err = client.delay::<Value>("add", 5).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArguments { .. }), "{err:?}");
    let err = client.delay::<Value>("", [1]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArguments { .. }), "{err:?}");
    let err = client
        .apply_async::<Value>("add", [1, 2], SendOptions::new().queue(String::new()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "queue",
                ..
            }
        ),
        "{err:?}"
    );
}

/// Results larger than the 4 KiB that ride along in the notification are read from the
/// result key: every byte arrives, for a waiter blocked before the end and one after.
async fn a_result_over_the_inline_limit_arrives_whole(broker: Broker) {
    let client = Client::new(broker.clone());
    let mut waiters = Vec::new();
    for len in [4097usize, 100_000] {
        let res: AsyncResult<String> = client.delay("big", [len]).await.unwrap();
        let early = res.clone();
        waiters.push((len, res, tokio::spawn(async move { early.get(WAIT).await })));
    }
    let worker = RunningWorker::start(test_app(), broker, fast_config());
    for (len, res, early) in waiters {
        let expected = "x".repeat(len);
        assert_eq!(
            early.await.unwrap().unwrap(),
            expected,
            "blocked waiter, {len}"
        );
        assert_eq!(res.get(WAIT).await.unwrap(), expected, "late waiter, {len}");
        assert_eq!(res.try_get().await.unwrap(), Some(expected));
    }
    worker.stop().await;
}

/// Many clients racing to send under one unique key enqueue one job; the key can be sent
/// again once its claim expires; a unique job may also be delayed.
async fn unique_keys_hold_under_concurrent_sends_expire_and_combine_with_countdown(broker: Broker) {
    const SENDERS: usize = 16;
    const CLAIM: Duration = Duration::from_secs(2);
    let client = Client::new(broker.clone());
    let label = format!("unique-{}", uuid::Uuid::new_v4());
    let options = SendOptions::new().unique(label.clone(), CLAIM);
    let claimed_at = Instant::now();
    let sends: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (client, label, options) = (client.clone(), label.clone(), options.clone());
            tokio::spawn(async move {
                client
                    .apply_async::<String>("record_run", [label], options)
                    .await
            })
        })
        .collect();
    let mut sent = Vec::new();
    for send in sends {
        if let Some(res) = send.await.unwrap().unwrap() {
            sent.push(res);
        }
    }
    assert_eq!(
        sent.len(),
        1,
        "{SENDERS} racing sends enqueued {} jobs",
        sent.len()
    );
    assert_eq!(
        client.stats().await.unwrap().queues.get("default"),
        Some(&1)
    );
    let worker = RunningWorker::start(test_app(), broker, fast_config());
    assert_eq!(sent[0].get(WAIT).await.unwrap(), label);
    assert_eq!(runs_of(&label), 1);

    // Refused while the claim lives, accepted once it expired (never before its TTL).
    let deadline = Instant::now() + WAIT;
    let again = loop {
        if let Some(res) = client
            .apply_async::<String>("record_run", [&label], options.clone())
            .await
            .unwrap()
        {
            break res;
        }
        assert!(Instant::now() < deadline, "the unique claim never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        claimed_at.elapsed() >= CLAIM,
        "claim gone after {:?}",
        claimed_at.elapsed()
    );
    assert_eq!(again.get(WAIT).await.unwrap(), label);
    assert_eq!(runs_of(&label), 2);

    let delayed_label = format!("{label}-delayed");
    let delayed = SendOptions::new()
        .unique(delayed_label.clone(), Duration::from_secs(60))
        .countdown(Duration::from_millis(500));
    let sent_at = Instant::now();
    let first: AsyncResult<String> = client
        .apply_async("record_run", [&delayed_label], delayed.clone())
        .await
        .unwrap()
        .expect("the first delayed send claims the key");
    let second: Option<AsyncResult<String>> = client
        .apply_async("record_run", [&delayed_label], delayed)
        .await
        .unwrap();
    assert!(second.is_none(), "a delayed job's key was claimed twice");
    assert_eq!(first.get(WAIT).await.unwrap(), delayed_label);
    assert!(sent_at.elapsed() >= Duration::from_millis(500));
    assert_eq!(runs_of(&delayed_label), 1);
    let stats = client.stats().await.unwrap();
    assert_eq!((stats.delayed, stats.processed), (0, 3), "{stats:?}");
    worker.stop().await;
}

/// Arguments over the client's limit are refused before anything is sent, with the task
/// and both sizes in the error; arguments at the limit go through.
async fn oversized_arguments_are_refused_with_the_sizes(broker: Broker) {
    let client = Client::new(broker.clone());
    let ten_mb = "x".repeat(10 * 1024 * 1024);
    let error = client
        .delay::<usize>("length", [&ten_mb])
        .await
        .expect_err("a 10 MB argument was accepted");
    match &error {
        Error::ArgumentsTooLarge { task, size, limit } => {
            assert_eq!(task, "length");
            // The JSON is the string with its quotes, in an array.
            assert_eq!(*size, ten_mb.len() + 4);
            assert_eq!(*limit, DEFAULT_ARGUMENT_LIMIT);
        }
        other => panic!("expected ArgumentsTooLarge, got {other:?}"),
    }
    let message = error.to_string();
    for part in [
        "\"length\"",
        &(ten_mb.len() + 4).to_string(),
        &DEFAULT_ARGUMENT_LIMIT.to_string(),
    ] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }

    // A batch with one oversized job sends none of them.
    let batch = client
        .delay_many::<usize, _>("length", [["short".to_owned()], [ten_mb.clone()]])
        .await;
    assert!(
        matches!(batch, Err(Error::ArgumentsTooLarge { .. })),
        "{batch:?}"
    );
    assert_eq!(client.stats().await.unwrap().queues.get("default"), None);

    let at_limit = "y".repeat(DEFAULT_ARGUMENT_LIMIT - 4);
    let over_limit = "y".repeat(DEFAULT_ARGUMENT_LIMIT - 3);
    let refused = client.delay::<usize>("length", [&over_limit]).await;
    assert!(
        matches!(refused, Err(Error::ArgumentsTooLarge { size, .. }) if size == DEFAULT_ARGUMENT_LIMIT + 1),
        "{refused:?}"
    );
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let length = client
        .delay::<usize>("length", [&at_limit])
        .await
        .expect("arguments at the limit are sent")
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(length, at_limit.len());

    // The limit is the client's to choose.
    let strict = Client::new(broker).with_argument_limit(100);
    let refused = strict.delay::<usize>("length", ["z".repeat(97)]).await;
    assert!(
        matches!(
            refused,
            Err(Error::ArgumentsTooLarge {
                size: 101,
                limit: 100,
                ..
            })
        ),
        "{refused:?}"
    );
    let length = strict
        .delay::<usize>("length", ["z".repeat(96)])
        .await
        .unwrap()
        .get(WAIT)
        .await
        .unwrap();
    assert_eq!(length, 96);
    worker.stop().await;
}

macro_rules! on_every_broker {
    ($($scenario:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::common::redis_broker(stringify!($scenario)).await).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::common::memory_broker(stringify!($scenario)).await).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::common::cluster_broker(stringify!($scenario)).await).await;
                }
            )*
        }
        mod sentinel {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::common::sentinel_broker(stringify!($scenario)).await).await;
                }
            )*
        }
    };
}

on_every_broker!(
    delay_and_get,
    many_jobs_all_finish,
    jobs_start_in_queue_order,
    get_times_out,
    failure_carries_kind_and_message,
    unknown_task_and_bad_arguments_are_dead_lettered,
    malformed_messages_are_dead_lettered_and_the_worker_goes_on,
    retries_back_off_then_succeed_or_dead_letter,
    countdown_and_eta_delay_jobs,
    a_large_due_backlog_moves_without_stalling_the_worker,
    results_expire_after_their_ttl,
    oversized_results_fail_and_point_to_explicit_keys,
    explicit_keys_are_written_before_the_ack,
    time_limits_fail_the_job_and_the_worker_goes_on,
    unique_sends_enqueue_once,
    states_move_from_pending_to_started_to_success,
    jobs_of_a_dead_worker_are_recovered,
    graceful_shutdown_finishes_running_jobs,
    graceful_shutdown_puts_back_unfinished_jobs,
    shutdown_gives_back_unstarted_jobs_at_once,
    a_job_sent_just_after_a_worker_stopped_is_not_stranded,
    stats_count_queues_workers_and_outcomes,
    bad_sends_get_typed_errors,
    a_result_over_the_inline_limit_arrives_whole,
    unique_keys_hold_under_concurrent_sends_expire_and_combine_with_countdown,
    oversized_arguments_are_refused_with_the_sizes,
);
