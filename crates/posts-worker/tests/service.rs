//! `posts_worker::Service` as a host service embeds it: jobs run while it runs, it stops
//! when the host's shutdown future resolves, and start-up problems come back as typed
//! errors instead of hangs. On the memory broker, so the broker's state can be inspected.

mod tasks_support;

use std::time::Duration;

use jobq::scheduler::ScheduleSpec;
use jobq::{Broker, Client, WorkerConfig};
use posts_store::read::ReadError;
use posts_worker::{Service, ServiceError};
use serde_json::{Value, json};
use tasks_support::*;

const WAIT: Duration = Duration::from_secs(30);

fn memory_broker() -> Broker {
    Broker::memory("service").expect("a valid namespace")
}

fn quick_config() -> WorkerConfig {
    let mut config = WorkerConfig::default();
    config.concurrency = 2;
    config.grace_period = Duration::from_secs(5);
    config
}

#[tokio::test]
async fn jobs_run_until_the_hosts_shutdown_future_resolves() {
    let (_dir, db) = temp_db(Variant::TextId, &sample_posts());
    let broker = memory_broker();
    let service = Service::new(posts_data(&db), broker).with_worker_config(quick_config());
    let client = Client::new(service.broker().clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.run(async {
        let _ = stopped.await;
    }));

    let rows: Value = client
        .delay("query_posts_db", json!(["SELECT count(*) FROM posts"]))
        .await
        .expect("sent")
        .get(WAIT)
        .await
        .expect("the service's worker ran the job");
    assert_eq!(rows, json!([[sample_posts().len()]]));
    let stats = client.stats().await.expect("stats");
    assert_eq!(stats.schedules, 1, "the built-in schedule was stored");
    assert_eq!(stats.workers, 1);

    stop.send(()).expect("the service is still running");
    tokio::time::timeout(WAIT, running)
        .await
        .expect("the service stops once its shutdown future resolves")
        .expect("the service task did not panic")
        .expect("a clean stop");
    assert_eq!(
        client.stats().await.expect("stats").workers,
        0,
        "the worker unregistered on its way out"
    );
}

#[tokio::test]
async fn schedules_replace_the_default_or_the_scheduler_stays_off() {
    let (_dir, db) = temp_db(Variant::TextId, &sample_posts());
    let hourly = |name: &str| {
        ScheduleSpec::every(
            name,
            "query_posts_db",
            json!(["SELECT 1"]),
            Duration::from_secs(3600),
        )
        .expect("a valid schedule")
    };
    let cases = [
        (Some(vec![hourly("a"), hourly("b")]), false, 2),
        (None, true, 0),
    ];
    for (schedules, no_scheduler, stored) in cases {
        let broker = memory_broker();
        let mut service = Service::new(posts_data(&db), broker).with_worker_config(quick_config());
        if let Some(schedules) = schedules {
            service = service.with_schedules(schedules);
        }
        if no_scheduler {
            service = service.without_scheduler();
        }
        let client = Client::new(service.broker().clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(service.run(async {
            let _ = stopped.await;
        }));
        // Once a job has run, start-up (which stores the schedules first) is over.
        let _: Value = client
            .delay("query_posts_db", json!(["SELECT 1"]))
            .await
            .expect("sent")
            .get(WAIT)
            .await
            .expect("ran");
        assert_eq!(client.stats().await.expect("stats").schedules, stored);
        stop.send(()).expect("still running");
        running.await.expect("no panic").expect("a clean stop");
    }
}

#[tokio::test]
async fn start_up_problems_are_typed_errors_not_hangs() {
    let (dir, db) = temp_db(Variant::TextId, &sample_posts());
    let never = std::future::pending::<()>;

    let mut config = quick_config();
    config.concurrency = 0;
    let outcome = tokio::time::timeout(
        WAIT,
        Service::new(posts_data(&db), memory_broker())
            .with_worker_config(config)
            .run(never()),
    )
    .await
    .expect("an invalid worker config ends the run, scheduler included");
    assert!(
        matches!(outcome, Err(ServiceError::Worker(_))),
        "{outcome:?}"
    );

    let twice = ScheduleSpec::every("same", "query_posts_db", json!(["SELECT 1"]), WAIT)
        .expect("a valid schedule");
    let outcome = tokio::time::timeout(
        WAIT,
        Service::new(posts_data(&db), memory_broker())
            .with_schedules(vec![twice.clone(), twice])
            .run(never()),
    )
    .await
    .expect("invalid schedules end the run before it starts");
    assert!(
        matches!(outcome, Err(ServiceError::Schedule(_))),
        "{outcome:?}"
    );

    let missing = Service::open(dir.path().join("missing.db"), memory_broker());
    assert!(
        matches!(
            missing,
            Err(ServiceError::Posts(ReadError::MissingDatabase { .. }))
        ),
        "{missing:?}"
    );
}
