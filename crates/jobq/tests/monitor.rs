//! What workers record for dashboards and metrics, read back through [`Monitor`] from a
//! real Redis: per-task counters and duration histograms that add up to the jobs run, one
//! event per finished job with its arguments, failure and the keys it wrote, the
//! heartbeat's worker description, per-minute throughput, and events turned off.

mod common;

use std::time::Duration;

use common::{RunningWorker, fast_config, test_app};
use jobq::monitor::{EventKind, JobEvent, Monitor};
use jobq::{Broker, Client, Error, JobId, SendOptions};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// Sends the same mix of jobs to a worker and waits for each: 3 successes, a failure, a
/// job retried twice before succeeding, an unknown task (dead) and a key write.
async fn run_mix(broker: &Broker) -> Vec<JobId> {
    let client = Client::new(broker.clone());
    let mut ids = Vec::new();
    for i in 0..3 {
        let sent = client.delay::<i64>("add", (i, 1)).await.expect("send add");
        assert_eq!(sent.get(WAIT).await.expect("add result"), i + 1);
        ids.push(sent.id().clone());
    }
    let failed = client
        .delay::<()>("fail", ("Boom", "<b>no</b>"))
        .await
        .expect("send fail");
    assert!(matches!(failed.get(WAIT).await, Err(Error::Failed(_))));
    ids.push(failed.id().clone());
    let flaky = client
        .delay::<u32>("flaky", (2,))
        .await
        .expect("send flaky");
    assert_eq!(flaky.get(WAIT).await.expect("flaky result"), 2);
    ids.push(flaky.id().clone());
    let unknown = client
        .apply_async::<()>("no_such_task", (1,), SendOptions::new())
        .await
        .expect("send unknown")
        .expect("enqueued");
    assert!(matches!(unknown.get(WAIT).await, Err(Error::Failed(_))));
    ids.push(unknown.id().clone());
    let key = format!("{}:out", broker.namespace());
    let writer = client
        .delay::<String>("write_key", (&key, json!({"top": [["a", 2]]}), None::<u64>))
        .await
        .expect("send write_key");
    writer.get(WAIT).await.expect("write_key result");
    ids.push(writer.id().clone());
    ids
}

/// Polls `read` until `done` holds (acknowledgements are batched, so counters may trail
/// the results by a moment).
async fn eventually<T>(mut read: impl AsyncFnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let value = read().await;
        if done(&value) || tokio::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn counters_histograms_and_events_match_the_jobs_run() {
    let broker = common::redis_broker("monitor").await;
    let monitor = Monitor::new(&broker).expect("a Redis broker");
    let worker = RunningWorker::start(test_app(), broker.clone(), fast_config());
    let ids = run_mix(&broker).await;

    let tasks = eventually(
        async || monitor.task_metrics().await.expect("metrics"),
        |tasks| tasks.iter().map(|t| t.runs).sum::<u64>() >= 9,
    )
    .await;
    let by_name = |name: &str| {
        tasks
            .iter()
            .find(|t| t.task == name)
            .unwrap_or_else(|| panic!("no metrics for {name}: {tasks:?}"))
    };
    let add = by_name("add");
    assert_eq!(add.count(EventKind::Succeeded), 3);
    assert_eq!(add.count(EventKind::Failed), 0);
    assert_eq!(add.runs, 3, "each run is timed once");
    assert_eq!(
        add.buckets.iter().sum::<u64>(),
        3,
        "every run falls in one bucket"
    );
    assert!(add.duration_sum_s > 0.0);
    assert_eq!(by_name("fail").count(EventKind::Failed), 1);
    let flaky = by_name("flaky");
    assert_eq!(
        flaky.count(EventKind::Retried),
        2,
        "two failed attempts were retried"
    );
    assert_eq!(flaky.count(EventKind::Succeeded), 1);
    assert_eq!(flaky.runs, 3, "three attempts ran");
    let unknown = by_name("no_such_task");
    assert_eq!(unknown.count(EventKind::Dead), 1);
    assert_eq!(unknown.runs, 1);
    assert_eq!(
        add.jobs.keys().collect::<Vec<_>>(),
        ["default"],
        "counted per queue"
    );

    let events = monitor.recent_events(100).await.expect("events");
    assert_eq!(
        events.len(),
        9,
        "one event per acknowledged run: {events:#?}"
    );
    assert!(
        events
            .windows(2)
            .all(|w| w[0].finished_at_ms >= w[1].finished_at_ms),
        "newest first"
    );
    let of = |id: &JobId| -> Vec<&JobEvent> {
        events
            .iter()
            .filter(|e| e.job_id.as_ref() == Some(id))
            .collect()
    };
    let failed = of(&ids[3]);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].kind, EventKind::Failed);
    assert_eq!(failed[0].task.as_deref(), Some("fail"));
    assert_eq!(failed[0].args.as_deref(), Some(r#"["Boom","<b>no</b>"]"#));
    let error = failed[0].error.as_ref().expect("the failure");
    assert_eq!(
        (error.kind.as_str(), error.message.as_str()),
        ("Boom", "<b>no</b>")
    );
    assert!(failed[0].duration_us.is_some() && failed[0].started_at_ms.is_some());
    assert_eq!(failed[0].worker, worker.id);
    let flaky_kinds: Vec<(EventKind, u32)> =
        of(&ids[4]).iter().map(|e| (e.kind, e.attempt)).collect();
    assert_eq!(
        flaky_kinds,
        [
            (EventKind::Succeeded, 2),
            (EventKind::Retried, 1),
            (EventKind::Retried, 0)
        ]
    );
    assert!(of(&ids[4])[1].retry_at_ms.is_some());
    assert_eq!(of(&ids[5])[0].kind, EventKind::Dead);
    let key = format!("{}:out", broker.namespace());
    assert_eq!(of(&ids[6])[0].keys, std::slice::from_ref(&key));
    assert_eq!(monitor.keys_written(&ids[6]).await.expect("keys"), [key]);
    assert!(
        monitor
            .keys_written(&ids[0])
            .await
            .expect("keys")
            .is_empty()
    );

    let details = monitor
        .job(&ids[3], 100)
        .await
        .expect("lookup")
        .expect("a known job");
    assert_eq!(details.events.len(), 1);
    assert!(details.record.is_some());
    assert!(
        monitor
            .job(&JobId::from("no-such-job"), 100)
            .await
            .expect("lookup")
            .is_none()
    );

    let minutes = monitor.throughput(60).await.expect("throughput");
    assert_eq!(minutes.len(), 60);
    let total = |f: fn(&jobq::monitor::MinuteCounts) -> u64| minutes.iter().map(f).sum::<u64>();
    assert_eq!(total(|m| m.succeeded), 5, "3 add + flaky + write_key");
    assert_eq!(total(|m| m.failed), 2, "fail + the dead unknown task");
    assert_eq!(total(|m| m.retried), 2);
    worker.stop().await;
}

#[tokio::test]
async fn the_heartbeat_describes_the_worker() {
    let broker = common::redis_broker("monitor-hb").await;
    let monitor = Monitor::new(&broker).expect("a Redis broker");
    let mut config = fast_config();
    config.queues = vec!["default".to_owned(), "slow".to_owned()];
    let worker = RunningWorker::start(test_app(), broker.clone(), config);
    let client = Client::new(broker.clone());
    let sleeping = client
        .apply_async::<String>("sleep", (3000,), SendOptions::new().queue("slow"))
        .await
        .expect("send")
        .expect("enqueued");
    let workers = eventually(
        async || monitor.workers().await.expect("workers"),
        |workers| {
            workers.len() == 1
                && workers[0]
                    .info
                    .as_ref()
                    .is_some_and(|i| i.running_count == 1)
        },
    )
    .await;
    assert_eq!(workers.len(), 1, "{workers:?}");
    let status = &workers[0];
    assert!(status.alive);
    assert_eq!(status.id, worker.id);
    assert_eq!(status.in_flight, 1);
    let info = status.info.as_ref().expect("the heartbeat's description");
    assert_eq!(info.pid, std::process::id());
    assert_eq!(info.concurrency, 4);
    assert_eq!(info.queues, ["default", "slow"]);
    assert!(!info.host.is_empty());
    assert_eq!(info.running.len(), 1);
    assert_eq!(&info.running[0].job_id, sleeping.id());
    assert_eq!(info.running[0].task, "sleep");
    sleeping.get(WAIT).await.expect("sleep result");
    let workers = eventually(
        async || monitor.workers().await.expect("workers"),
        |workers| workers[0].info.as_ref().is_some_and(|i| i.processed == 1),
    )
    .await;
    let info = workers[0].info.as_ref().expect("info");
    assert_eq!((info.processed, info.failed, info.running_count), (1, 0, 0));
    worker.stop().await;
    assert!(
        monitor.workers().await.expect("workers").is_empty(),
        "a stopped worker unregisters"
    );
}

#[tokio::test]
async fn events_can_be_turned_off_while_counters_stay() {
    let broker = common::redis_broker("monitor-off").await;
    let monitor = Monitor::new(&broker).expect("a Redis broker");
    let mut config = fast_config();
    config.events = false;
    let worker = RunningWorker::start(test_app(), broker.clone(), config);
    run_mix(&broker).await;
    let tasks = eventually(
        async || monitor.task_metrics().await.expect("metrics"),
        |tasks| tasks.iter().map(|t| t.runs).sum::<u64>() >= 9,
    )
    .await;
    assert_eq!(tasks.iter().map(|t| t.runs).sum::<u64>(), 9);
    assert!(monitor.recent_events(100).await.expect("events").is_empty());
    worker.stop().await;
}

#[tokio::test]
async fn a_memory_broker_cannot_be_monitored() {
    let broker = common::memory_broker("monitor-mem").await;
    assert!(matches!(Monitor::new(&broker), Err(Error::Config(_))));
}

#[tokio::test]
async fn dashboards_are_announced_until_withdrawn() {
    let broker = common::redis_broker("monitor-dash").await;
    let monitor = Monitor::new(&broker).expect("a Redis broker");
    assert!(monitor.dashboards().await.expect("list").is_empty());
    monitor
        .announce_dashboard("http://127.0.0.1:1/", Duration::from_secs(30))
        .await
        .expect("announce");
    monitor
        .announce_dashboard("http://127.0.0.1:2/", Duration::from_millis(1))
        .await
        .expect("announce");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        monitor.dashboards().await.expect("list"),
        ["http://127.0.0.1:1/"],
        "an expired announcement is not listed"
    );
    monitor
        .withdraw_dashboard("http://127.0.0.1:1/")
        .await
        .expect("withdraw");
    assert!(monitor.dashboards().await.expect("list").is_empty());
}
