//! The scheduler on both brokers: interval and cron ticks, removal on start, runtime
//! add/remove, catch-up once/skip (intervals and cron), sparse cron expressions, and
//! several schedulers sending each tick exactly once.
//!
//! Tick tests count ticks through [`Scheduler::on_fire`] and stop after a number of them,
//! never after a wall-clock window that a loaded machine could stretch.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Datelike;
use serde_json::json;

use super::*;
use crate::JobMessage;
use crate::broker::Broker;

/// One broker under test with its schedule store.
struct Setup {
    label: &'static str,
    broker: Broker,
    store: Arc<dyn ScheduleStore>,
}

impl Setup {
    fn client(&self) -> Client {
        Client::new(self.broker.clone())
    }

    async fn scheduler(&self, specs: Vec<ScheduleSpec>) -> Scheduler {
        Scheduler::new(self.broker.clone(), specs)
            .await
            .unwrap_or_else(|e| panic!("{}: scheduler: {e}", self.label))
    }

    /// Takes every job waiting on `queue`.
    async fn drain(&self, queue: &str) -> Vec<JobMessage> {
        let mut jobs = Vec::new();
        loop {
            let batch = self
                .broker
                .backend()
                .fetch(
                    "scheduler-test-reader",
                    &crate::broker::Source::Queue(queue.to_owned()),
                    1000,
                    Duration::from_millis(50),
                )
                .await
                .unwrap_or_else(|e| panic!("{}: fetch: {e}", self.label));
            if batch.is_empty() {
                return jobs;
            }
            for delivery in batch {
                let job = delivery.job.expect("scheduler sends valid messages");
                jobs.push(*job);
            }
        }
    }

    async fn names(&self) -> Vec<String> {
        list(&self.broker)
            .await
            .unwrap_or_else(|e| panic!("{}: list: {e}", self.label))
            .into_iter()
            .map(|s| s.name)
            .collect()
    }
}

async fn setups(prefix: &str) -> Vec<Setup> {
    let redis = redis_harness::TestRedis::shared().expect("a Redis for the tests");
    let namespace = redis_harness::unique_namespace(prefix);
    let redis_broker = Broker::redis(redis.url(), &namespace)
        .await
        .expect("connect");
    let memory = Broker::memory(&namespace).expect("a valid namespace");
    vec![
        Setup {
            label: "redis",
            store: redis_broker.schedules(),
            broker: redis_broker,
        },
        Setup {
            label: "memory",
            store: memory.schedules(),
            broker: memory,
        },
    ]
}

fn every_second(name: &str) -> ScheduleSpec {
    ScheduleSpec::every(name, "tick", json!([name, 1]), Duration::from_secs(1)).expect("valid")
}

/// Ticks reported by schedulers' `on_fire` hooks.
type Fired = Arc<Mutex<Vec<FiredTick>>>;

fn recording(scheduler: Scheduler, fired: &Fired) -> Scheduler {
    let fired = Arc::clone(fired);
    scheduler.on_fire(move |tick| {
        fired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tick.clone())
    })
}

/// Runs the schedulers until `ticks` distinct ticks were fired (failing after a generous
/// deadline), then for `settle` more, then stops them all.
async fn run_until_ticks(
    schedulers: Vec<Scheduler>,
    fired: &Fired,
    ticks: usize,
    settle: Duration,
) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = schedulers
        .into_iter()
        .map(|scheduler| {
            let mut stopped = stopped.clone();
            tokio::spawn(scheduler.run_until(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }))
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10) * ticks as u32;
    loop {
        let distinct: HashSet<u64> = fired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|f| f.tick_ms)
            .collect();
        if distinct.len() >= ticks {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {ticks} ticks fired",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(settle).await;
    stop.send_replace(true);
    for task in tasks {
        task.await.expect("scheduler task").expect("scheduler run");
    }
}

/// The fired ticks are distinct, consecutive `period_ms` apart, and exactly the jobs on
/// `queue`.
async fn assert_each_tick_once(setup: &Setup, fired: &Fired, queue: &str, period_ms: u64) {
    let fired = fired.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let ticks: Vec<u64> = fired.iter().map(|f| f.tick_ms).collect();
    let distinct: BTreeSet<u64> = ticks.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        ticks.len(),
        "{}: a tick was sent twice: {ticks:?}",
        setup.label
    );
    let (first, last) = (distinct.first().copied(), distinct.last().copied());
    let expected: BTreeSet<u64> = match (first, last) {
        (Some(first), Some(last)) => (first..=last).step_by(period_ms as usize).collect(),
        _ => BTreeSet::new(),
    };
    assert_eq!(distinct, expected, "{}: a tick was skipped", setup.label);
    let queued: HashSet<String> = setup
        .drain(queue)
        .await
        .into_iter()
        .map(|j| String::from(j.id))
        .collect();
    let reported: HashSet<String> = fired.into_iter().map(|f| String::from(f.job_id)).collect();
    assert_eq!(
        queued, reported,
        "{}: queue and fired ticks disagree",
        setup.label
    );
}

/// Runs the schedulers for `duration`, then stops them all (for checks that nothing is
/// sent: a longer window only makes them stricter).
async fn run_for(schedulers: Vec<Scheduler>, duration: Duration) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = schedulers
        .into_iter()
        .map(|scheduler| {
            let mut stopped = stopped.clone();
            tokio::spawn(scheduler.run_until(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }))
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.send_replace(true);
    for task in tasks {
        task.await.expect("scheduler task").expect("scheduler run");
    }
}

#[tokio::test]
async fn interval_schedules_send_their_task_every_tick() {
    for setup in setups("sched-interval").await {
        let spec = every_second("ping").on_queue("scheduled");
        let fired = Fired::default();
        let scheduler = recording(setup.scheduler(vec![spec]).await, &fired);
        run_until_ticks(vec![scheduler], &fired, 3, Duration::ZERO).await;

        let jobs = setup.drain("scheduled").await;
        assert_eq!(
            jobs.len(),
            fired.lock().expect("lock").len(),
            "{}",
            setup.label
        );
        assert!(jobs.len() >= 3, "{}: {} jobs", setup.label, jobs.len());
        for job in &jobs {
            assert_eq!(job.task, "tick");
            assert_eq!(job.args, json!(["ping", 1]));
        }
        let ticks: BTreeSet<u64> = fired
            .lock()
            .expect("lock")
            .iter()
            .map(|f| f.tick_ms)
            .collect();
        assert_eq!(
            ticks.len(),
            jobs.len(),
            "{}: a tick sent twice",
            setup.label
        );
        assert!(
            ticks.iter().all(|t| t % 1000 == 0),
            "{}: {ticks:?}",
            setup.label
        );
        let status = list(&setup.broker).await.expect("list");
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].spec, "every 1s");
        let last = status[0].last_run.expect("last run recorded");
        let next = status[0].next_run.expect("next run known");
        assert!(
            next > last,
            "{}: next {next} not after last {last}",
            setup.label
        );
    }
}

#[tokio::test]
async fn cron_schedules_send_at_their_seconds() {
    for setup in setups("sched-cron").await {
        let spec = ScheduleSpec::cron("c", "tick", json!([]), "* * * * * *").expect("every second");
        let fired = Fired::default();
        let scheduler = recording(setup.scheduler(vec![spec]).await, &fired);
        run_until_ticks(vec![scheduler], &fired, 3, Duration::ZERO).await;
        assert_each_tick_once(&setup, &fired, crate::DEFAULT_QUEUE, 1000).await;
    }
}

#[tokio::test]
async fn configured_schedules_missing_from_the_config_are_removed_on_start() {
    for setup in setups("sched-removal").await {
        setup
            .scheduler(vec![every_second("a"), every_second("b")])
            .await;
        let runtime = Scheduler::attach(setup.broker.clone());
        runtime
            .add(&every_second("added-at-runtime"))
            .await
            .expect("add");
        assert_eq!(
            setup.names().await,
            ["a", "added-at-runtime", "b"],
            "{}",
            setup.label
        );

        setup.scheduler(vec![every_second("a")]).await;
        assert_eq!(
            setup.names().await,
            ["a", "added-at-runtime"],
            "{}",
            setup.label
        );

        assert!(runtime.remove("added-at-runtime").await.expect("remove"));
        assert!(
            !runtime
                .remove("added-at-runtime")
                .await
                .expect("remove again")
        );
        assert_eq!(setup.names().await, ["a"], "{}", setup.label);
    }
}

#[tokio::test]
async fn a_running_scheduler_picks_up_schedules_added_and_removed_elsewhere() {
    for setup in setups("sched-runtime").await {
        let running = setup
            .scheduler(Vec::new())
            .await
            .with_refresh(Duration::from_millis(100));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(running.run_until(async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        let admin = Scheduler::attach(setup.broker.clone());
        admin.add(&every_second("late")).await.expect("add");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        admin.remove("late").await.expect("remove");
        // A pass that loaded the schedule just before the removal may still send its tick;
        // once a refresh period has passed, nothing may.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent_while_present = setup.drain(crate::DEFAULT_QUEUE).await.len();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let sent_after_removal = setup.drain(crate::DEFAULT_QUEUE).await.len();
        stop.send_replace(true);
        task.await.expect("task").expect("run");
        assert!(
            sent_while_present >= 1,
            "{}: nothing sent for an added schedule",
            setup.label
        );
        assert_eq!(
            sent_after_removal, 0,
            "{}: a removed schedule still fired",
            setup.label
        );
    }
}

/// A daily schedule whose last run was ten days ago: nine missed ticks.
async fn stale_daily(setup: &Setup, catch_up: CatchUp) -> ScheduleSpec {
    let spec = ScheduleSpec::every("daily", "report", json!([]), Duration::from_secs(86_400))
        .expect("valid")
        .with_catch_up(catch_up);
    setup.scheduler(vec![spec.clone()]).await;
    let ten_days_ago = now_ms() - 10 * 86_400_000;
    setup
        .store
        .record_run("daily".into(), ten_days_ago, "job-1".into())
        .await
        .expect("record");
    spec
}

#[tokio::test]
async fn missed_ticks_get_one_catch_up_run_even_with_three_schedulers_starting() {
    for setup in setups("sched-catchup").await {
        let spec = stale_daily(&setup, CatchUp::Once).await;
        let fired = Fired::default();
        let mut schedulers = Vec::new();
        for _ in 0..3 {
            schedulers.push(recording(setup.scheduler(vec![spec.clone()]).await, &fired));
        }
        // The other two get time to try the same catch-up and be refused.
        run_until_ticks(schedulers, &fired, 1, Duration::from_millis(500)).await;
        assert_eq!(fired.lock().expect("lock").len(), 1, "{}", setup.label);
        let jobs = setup.drain(crate::DEFAULT_QUEUE).await;
        assert_eq!(jobs.len(), 1, "{}: catch-up runs", setup.label);
        let status = list(&setup.broker).await.expect("list");
        let last = status[0].last_run.expect("recorded").timestamp_millis() as u64;
        assert_eq!(
            last,
            spec.timing.latest_at_or_before(now_ms()).expect("tick")
        );
    }
}

#[tokio::test]
async fn catch_up_skip_waits_for_the_next_tick() {
    for setup in setups("sched-skip").await {
        let spec = stale_daily(&setup, CatchUp::Skip).await;
        let scheduler = setup.scheduler(vec![spec]).await;
        run_for(vec![scheduler], Duration::from_millis(500)).await;
        assert!(
            setup.drain(crate::DEFAULT_QUEUE).await.is_empty(),
            "{}",
            setup.label
        );
    }
}

#[tokio::test]
async fn three_schedulers_send_every_tick_exactly_once() {
    for setup in setups("sched-three").await {
        let fired = Fired::default();
        let mut schedulers = Vec::new();
        for _ in 0..3 {
            let scheduler = setup.scheduler(vec![every_second("shared")]).await;
            schedulers.push(recording(scheduler, &fired));
        }
        run_until_ticks(schedulers, &fired, 5, Duration::ZERO).await;
        assert_each_tick_once(&setup, &fired, crate::DEFAULT_QUEUE, 1000).await;
    }
}

#[tokio::test]
async fn stats_count_the_stored_schedules() {
    for setup in setups("sched-stats").await {
        let client = setup.client();
        assert_eq!(client.stats().await.expect("stats").schedules, 0);
        setup
            .scheduler(vec![every_second("x"), every_second("y")])
            .await;
        assert_eq!(
            client.stats().await.expect("stats").schedules,
            2,
            "{}",
            setup.label
        );
        assert_eq!(setup.names().await, ["x", "y"], "{}", setup.label);
    }
}

#[tokio::test]
async fn invalid_specs_are_refused_before_anything_is_stored() {
    let broker = Broker::memory("sched-invalid").expect("a valid namespace");
    let mut bad = every_second("bad");
    bad.args = json!("not a list");
    let error = Scheduler::new(broker.clone(), vec![every_second("ok"), bad])
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(error, ScheduleError::InvalidField { field: "args", .. }),
        "{error}"
    );
    let twice = Scheduler::new(broker.clone(), vec![every_second("a"), every_second("a")]).await;
    assert!(matches!(twice, Err(ScheduleError::DuplicateName(_))));
    assert!(list(&broker).await.expect("list").is_empty());
}

/// The next 29 February at 00:00 UTC strictly after `now_ms`, found by walking the years.
fn next_leap_day_after(now_ms: u64) -> u64 {
    let now = to_datetime(now_ms).expect("a representable instant");
    (now.year()..)
        .filter_map(|year| chrono::NaiveDate::from_ymd_opt(year, 2, 29))
        .map(|day| day.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        .find(|midnight| *midnight > now)
        .and_then(|midnight| u64::try_from(midnight.timestamp_millis()).ok())
        .expect("a later leap day")
}

#[tokio::test]
async fn a_sparse_cron_fires_on_the_next_leap_day_without_looping() {
    let spec = ScheduleSpec::cron("leap", "tick", json!([]), "0 0 29 2 *").expect("valid");
    let now = now_ms();
    let next = next_leap_day_after(now);
    assert_eq!(spec.timing.next_after(now), Some(next));
    let after_that = next_leap_day_after(next);
    assert_eq!(spec.timing.next_after(next), Some(after_that));
    assert_eq!(
        spec.timing.period_after(now),
        Duration::from_millis(after_that - next)
    );
    // The previous leap day: four years before the next one, or eight across a century
    // that is not a leap year (none before 2100).
    let previous = spec
        .timing
        .latest_at_or_before(now)
        .expect("a previous leap day");
    assert!(
        previous <= now && next_leap_day_after(previous) == next,
        "{previous}"
    );

    for setup in setups("sched-sparse").await {
        let fired = Fired::default();
        let scheduler = recording(setup.scheduler(vec![spec.clone()]).await, &fired)
            .with_refresh(Duration::from_millis(50));
        let status = scheduler.list().await.expect("list");
        assert_eq!(
            status[0].next_run.map(|t| t.timestamp_millis() as u64),
            Some(next)
        );
        // A few refresh passes: each must return (not loop) and send nothing.
        run_for(vec![scheduler], Duration::from_millis(300)).await;
        assert!(fired.lock().expect("lock").is_empty(), "{}", setup.label);
        assert!(
            setup.drain(crate::DEFAULT_QUEUE).await.is_empty(),
            "{}",
            setup.label
        );
    }
}

#[tokio::test]
async fn a_cron_schedule_that_missed_runs_catches_up_once_at_its_latest_tick() {
    // 03:00 UTC daily; the latest tick, computed by hand: today's if it has passed.
    let now = now_ms();
    let today = to_datetime(now).expect("now").date_naive();
    let three_today = today
        .and_hms_opt(3, 0, 0)
        .expect("03:00")
        .and_utc()
        .timestamp_millis() as u64;
    let latest = if three_today <= now {
        three_today
    } else {
        three_today - 86_400_000
    };
    for setup in setups("sched-cron-catchup").await {
        let spec = ScheduleSpec::cron("nightly", "report", json!([]), "0 3 * * *").expect("valid");
        setup.scheduler(vec![spec.clone()]).await;
        setup
            .store
            .record_run("nightly".into(), now - 10 * 86_400_000, "job-1".into())
            .await
            .expect("record");
        let fired = Fired::default();
        let mut schedulers = Vec::new();
        for _ in 0..2 {
            schedulers.push(recording(setup.scheduler(vec![spec.clone()]).await, &fired));
        }
        run_until_ticks(schedulers, &fired, 1, Duration::from_millis(500)).await;
        let fired = fired.lock().expect("lock").clone();
        assert_eq!(
            fired.iter().map(|f| f.tick_ms).collect::<Vec<_>>(),
            [latest],
            "{}: catch-up runs",
            setup.label
        );
        assert_eq!(
            setup.drain(crate::DEFAULT_QUEUE).await.len(),
            1,
            "{}",
            setup.label
        );
        let status = list(&setup.broker).await.expect("list");
        assert_eq!(
            status[0].last_run.map(|t| t.timestamp_millis() as u64),
            Some(latest),
            "{}",
            setup.label
        );
    }
}
