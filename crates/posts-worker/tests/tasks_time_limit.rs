//! A scan task past its time limit mid-scan, on a 500,000-row synthetic database: the job
//! fails with `TimeLimitExceeded`, the scan itself stops (cancelled inside posts-store),
//! the worker serves the next job, and a blocking handler that ignores its cancellation
//! still never lets the worker run more handlers at once than its concurrency.

mod tasks_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobq::{App, Broker, Client, Error, SendOptions, TaskContext, TaskError, TaskFailure};
use posts_worker::tasks::{CancelToken, PostsData, register, substring_matches_by_platform};
use serde_json::{Value, json};
use tasks_support::*;

const CONCURRENCY: usize = 2;
const LIMIT: Duration = Duration::from_millis(200);
const WAIT: Duration = Duration::from_secs(120);
const FROM: &str = "2017-01-01";
const TO: &str = "2017-12-31 23:59:59";
const PROBES: usize = 6;

/// Handlers of the instrumented tasks running at once, and the most ever seen.
#[derive(Default)]
struct Gauge {
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Gauge {
    fn enter(self: &Arc<Self>) -> Entered {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Entered(Arc::clone(self))
    }
}

/// One running handler; leaves the gauge when dropped (also on a panic).
struct Entered(Arc<Gauge>);

impl Drop for Entered {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the test observes from inside the handlers.
#[derive(Default)]
struct Observed {
    gauge: Arc<Gauge>,
    /// How `watched_scan`'s own call ended: its result's total rows, or the error kind.
    watched_outcome: Mutex<Option<Result<u64, &'static str>>>,
    stubborn_running: AtomicBool,
    /// Probes that ran while the stubborn scan was still running.
    probes_beside_stubborn: AtomicUsize,
    /// Ends the stubborn scan; only the test cancels it.
    release_stubborn: CancelToken,
}

/// The posts tasks plus three instrumented ones:
/// - `watched_scan`: the substring scan wired to the time limit exactly as `register`
///   wires it, recording how the call itself ended;
/// - `stubborn_scan`: a blocking handler that ignores its time limit and keeps scanning
///   until the test releases it;
/// - `probe`: a short handler that notes whether the stubborn scan is still running.
fn app(data: &Arc<PostsData>, observed: &Arc<Observed>) -> App {
    let mut app = App::new();
    register(&mut app, Arc::clone(data));

    let (d, o) = (Arc::clone(data), Arc::clone(observed));
    app.task("watched_scan")
        .args([])
        .blocking(move |ctx: &TaskContext, (): ()| {
            let _entered = o.gauge.enter();
            let cancel = CancelToken::new();
            let on_cancel = cancel.clone();
            ctx.on_cancel(move || on_cancel.cancel());
            let result = substring_matches_by_platform(&d, &cancel, "trump", FROM, TO);
            *o.watched_outcome.lock().unwrap() =
                Some(result.as_ref().map(|r| r.total_rows).map_err(|e| e.kind()));
            result.map(|r| r.total_rows).map_err(TaskError::from)
        });

    let (d, o) = (Arc::clone(data), Arc::clone(observed));
    app.task("stubborn_scan")
        .args([])
        .blocking(move |_ctx: &TaskContext, (): ()| {
            let _entered = o.gauge.enter();
            o.stubborn_running.store(true, Ordering::SeqCst);
            let mut scans = 0u64;
            while !o.release_stubborn.is_cancelled() {
                if substring_matches_by_platform(&d, &o.release_stubborn, "trump", FROM, TO).is_ok()
                {
                    scans += 1;
                }
            }
            o.stubborn_running.store(false, Ordering::SeqCst);
            Ok::<_, TaskError>(scans)
        });

    let o = Arc::clone(observed);
    app.task("probe")
        .args([])
        .blocking(move |_ctx: &TaskContext, (): ()| {
            let _entered = o.gauge.enter();
            if o.stubborn_running.load(Ordering::SeqCst) {
                o.probes_beside_stubborn.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(100));
            Ok::<_, TaskError>(true)
        });
    app
}

fn limited() -> SendOptions {
    SendOptions::new().time_limit(LIMIT)
}

async fn failure_of(client: &Client, task: &str, args: Value) -> TaskFailure {
    let sent = client
        .apply_async::<Value>(task, args, limited())
        .await
        .unwrap()
        .unwrap();
    match sent.get(WAIT).await {
        Err(Error::Failed(failure)) => failure,
        other => panic!("{task} should fail, got {other:?}"),
    }
}

/// Polls `done` until it holds or [`WAIT`] passes.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < WAIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_past_its_time_limit_stops_and_the_worker_keeps_its_concurrency() {
    let data = posts_data(synthetic_db());
    let observed = Arc::new(Observed::default());
    let app = app(&data, &observed);
    let o = Arc::clone(&observed);
    let broker = Broker::memory("tasks-time-limit").expect("a valid namespace");
    with_worker(app, broker, Some(CONCURRENCY), |client| async move {
        // The registered task, mid-scan when its limit fires.
        let f = failure_of(
            &client,
            "substring_matches_by_platform",
            json!(["trump", FROM, TO]),
        )
        .await;
        assert_eq!(f.kind, TaskError::TIME_LIMIT_EXCEEDED, "{f}");
        // The worker serves the next job.
        let rows = client
            .delay::<Value>("query_posts_db", json!(["SELECT count(*) FROM posts"]))
            .await
            .unwrap()
            .get(WAIT)
            .await
            .unwrap();
        assert_eq!(rows, json!([[SYNTHETIC_ROWS]]));

        // The scan itself stopped because of the limit instead of running to the end.
        let f = failure_of(&client, "watched_scan", json!([])).await;
        assert_eq!(f.kind, TaskError::TIME_LIMIT_EXCEEDED, "{f}");
        eventually("the watched scan returns", || {
            o.watched_outcome.lock().unwrap().is_some()
        })
        .await;
        assert_eq!(*o.watched_outcome.lock().unwrap(), Some(Err("Cancelled")));

        // A handler that ignores its limit keeps its slot until its thread ends: jobs sent
        // meanwhile run on the remaining slot only.
        let f = failure_of(&client, "stubborn_scan", json!([])).await;
        assert_eq!(f.kind, TaskError::TIME_LIMIT_EXCEEDED, "{f}");
        assert!(o.stubborn_running.load(Ordering::SeqCst));
        let mut probes = Vec::new();
        for _ in 0..PROBES {
            probes.push(client.delay::<bool>("probe", json!([])).await.unwrap());
        }
        for probe in probes {
            assert!(probe.get(WAIT).await.unwrap());
        }
        o.release_stubborn.cancel();
        eventually("the stubborn scan ends", || {
            !o.stubborn_running.load(Ordering::SeqCst)
        })
        .await;
    })
    .await;
    assert!(
        observed.probes_beside_stubborn.load(Ordering::SeqCst) >= 1,
        "no probe ran while the stubborn scan did, so the check below proves nothing"
    );
    let peak = observed.gauge.peak.load(Ordering::SeqCst);
    assert!(
        peak <= CONCURRENCY,
        "{peak} handlers ran at once with a concurrency of {CONCURRENCY}"
    );
}
