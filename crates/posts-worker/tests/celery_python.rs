//! Python users' Celery code, unchanged, against `posts-worker run`: the stock celery 5.7
//! client scripts of `tests/celery/` (run with the interpreter `cargo xtask test`
//! installs, see `celery_support`) send Celery protocol v2 messages to a posts-worker
//! process and report what they observed as JSON, and each test asserts on the values,
//! exception types and stored records against what the native client (`posts-worker
//! submit --wait`) returns or what the sample data pins.
//!
//! Celery's keys are not namespaced, so every test has a private Redis of its own. Speed
//! is the benchmarks' business (`cargo xtask bench celery`): the scripts' timeouts here
//! are deadlines that separate "answered" from "never answered", not speed targets.

mod binary_support;
mod celery_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use binary_support::{Deployment, RunProcess, assert_success};
use celery_support::{PythonWorker, Script, python};
use redis_harness::OwnedRedis;
use serde_json::{Value, json};

/// The upstream example's range: the sample posts dated 2017-05-31.
const FROM: &str = "2017-05-31";
const TO: &str = "2017-06-01";

/// `substring_matches_by_platform('trump', FROM, TO)` on the sample data, as
/// `sample_data/README.md` documents it.
fn trump_counts() -> Value {
    json!({"facebook": 18, "reddit": 17, "twitter": 16, "total_rows": 282})
}

/// Items in the sample data (182 Facebook, 178 Reddit, 191 Twitter).
const SAMPLE_ROWS: u64 = 551;

/// Exception classes as `(module, name)`.
const SQLITE_ERROR: (&str, &str) = ("sqlite3", "OperationalError");
const VALUE_ERROR: (&str, &str) = ("builtins", "ValueError");
const TYPE_ERROR: (&str, &str) = ("builtins", "TypeError");

/// The driver's query (its `COUNTS_SQL`).
const COUNTS_SQL: &str =
    "SELECT platform, type, COUNT(*) FROM posts GROUP BY platform, type ORDER BY platform, type";

/// A private Redis, and a seeded posts DB using it. The Python scripts are checked for
/// first, so a missing interpreter fails before anything is built.
fn rig(prefix: &str) -> (OwnedRedis, Deployment) {
    python();
    let redis = OwnedRedis::start().unwrap_or_else(|e| panic!("{e}"));
    let deployment = Deployment::seeded_on(prefix, redis.url());
    (redis, deployment)
}

/// `posts-worker run` without the scheduler, plus `extra` flags, once it heartbeats.
fn start_worker(deployment: &Deployment, name: &str, extra: &[&str]) -> RunProcess {
    let args = [&["--no-scheduler", "--concurrency", "2"], extra].concat();
    let worker = deployment.start_run(name, &args);
    deployment.wait_for_workers(1);
    worker
}

/// The native client's answer: `posts-worker submit TASK ARGS --wait 60`.
fn native(deployment: &Deployment, task: &str, args: &[&str]) -> Value {
    let command = [&["submit", task], args, &["--wait", "60"]].concat();
    deployment.run_json(&command)
}

/// The value of a successful observation (an `attempt` in the scripts).
fn ok<'a>(observed: &'a Value, what: &str) -> &'a Value {
    assert_eq!(observed["ok"], true, "{what} did not succeed: {observed}");
    &observed["value"]
}

/// The value of the successful observation `report[case]`.
fn ok_value<'a>(report: &'a Value, case: &str) -> &'a Value {
    ok(&report[case], case)
}

/// `observed` raised an exception of class `module.name` (as Python rebuilt it),
/// catchable as `catchable_as`; returns the observation.
fn raised<'a>(
    observed: &'a Value,
    what: &str,
    (module, name): (&str, &str),
    catchable_as: &str,
) -> &'a Value {
    assert_eq!(
        observed["ok"], false,
        "{what} should have raised: {observed}"
    );
    let error = &observed["error"];
    assert_eq!(
        (error["module"].as_str(), error["type"].as_str()),
        (Some(module), Some(name)),
        "{what}: wrong exception class: {observed}"
    );
    let catchable = error["catchable_as"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        catchable.contains(&json!(catchable_as)),
        "{what}: `except {catchable_as}` would not catch it: {observed}"
    );
    observed
}

/// `observed` (from `call_and_inspect`) is a stored failure: `state` on the client, the
/// same status and exception class in `celery-task-meta-<id>`.
fn assert_stored_failure(observed: &Value, state: &str, (module, name): (&str, &str)) {
    assert_eq!(observed["state"], state, "{observed}");
    let meta = &observed["meta"];
    assert_eq!(meta["status"], state, "{observed}");
    assert_eq!(meta["task_id"], observed["id"], "{observed}");
    assert_eq!(
        (&meta["result"]["exc_module"], &meta["result"]["exc_type"]),
        (&json!(module), &json!(name)),
        "{observed}"
    );
}

/// `observed` raised `class` on the client and is stored with status `state` and the
/// same class: both halves of a failure as Python sees it.
fn failed_with<'a>(
    observed: &'a Value,
    what: &str,
    state: &str,
    class: (&str, &str),
    catchable_as: &str,
) -> &'a Value {
    raised(observed, what, class, catchable_as);
    assert_stored_failure(observed, state, class);
    observed
}

/// The upstream driver, `.delay()` on the stub tasks with positional, keyword and mixed
/// arguments, `send_task` by both upstream naming schemes, `AsyncResult` polling and the
/// stored record: every value equals the native client's.
#[test]
fn the_upstream_driver_gets_the_native_results() {
    let (_redis, deployment) = rig("celery-driver");
    let worker = start_worker(&deployment, "worker", &[]);
    let result_key = format!("{}:driver:top_named_entities", deployment.namespace);

    let report = Script::new("driver.py", &deployment.redis_url)
        .env("RESULT_KEY", &result_key)
        .run();

    let rows = native(&deployment, "query_posts_db", &[COUNTS_SQL]);
    assert_eq!(ok_value(&report, "query"), &rows);
    assert_eq!(ok_value(&report, "query_sandbox_name"), &rows);

    let trump = native(
        &deployment,
        "substring_matches_by_platform",
        &["trump", FROM, TO],
    );
    assert_eq!(trump, trump_counts());
    for case in [
        "substring_positional",
        "substring_keywords",
        "substring_mixed",
        "substring_send_task",
        "substring_sandbox_name",
    ] {
        assert_eq!(ok_value(&report, case), &trump, "{case}");
    }

    // count_top_named_entities: True, and the same ranking the native run writes.
    assert_eq!(ok_value(&report, "top_entities"), &json!(true));
    let native_key = format!("{}:native:top_named_entities", deployment.namespace);
    assert_eq!(
        native(
            &deployment,
            "count_top_named_entities",
            &["10", FROM, TO, &native_key]
        ),
        json!(true)
    );
    let out = deployment.run(&["get-key", &native_key]);
    assert_success(&out, "posts-worker get-key");
    let native_report = binary_support::json(&out.stdout);
    let celery_report = &report["top_entities_key"];
    assert_eq!(
        celery_report["top_named_entities"], native_report["top_named_entities"],
        "Celery run: {celery_report}"
    );
    assert_eq!(
        celery_report["top_named_entities"].as_array().map(Vec::len),
        Some(10)
    );
    assert!(celery_report["timestamp"].is_string(), "{celery_report}");

    // Stored after `.get()` had started waiting: only the PUBLISH can have woken it.
    assert_eq!(ok_value(&report, "slow_query"), &json!([[3_000_000]]));

    let polling = &report["polling"];
    assert_eq!(
        (
            &polling["ready"],
            &polling["successful"],
            &polling["state"],
            &polling["result"]
        ),
        (
            &json!(true),
            &json!(true),
            &json!("SUCCESS"),
            &json!([[42]])
        ),
        "{polling}"
    );
    let slow = &report["polling_slow"];
    assert_eq!(slow["result"], json!([[3_000_000]]), "{slow}");
    assert_eq!(slow["states_seen"][0], "PENDING", "{slow}");
    assert_eq!(
        slow["states_seen"].as_array().and_then(|s| s.last()),
        Some(&json!("SUCCESS")),
        "{slow}"
    );

    let stored = &report["stored"];
    assert_eq!(ok_value(&report, "stored"), &json!([["stored", 1.5, null]]));
    let meta = &stored["meta"];
    assert_eq!(meta["status"], "SUCCESS", "{stored}");
    assert_eq!(meta["result"], json!([["stored", 1.5, null]]), "{stored}");
    assert_eq!(meta["task_id"], stored["id"], "{stored}");
    assert_eq!(meta["traceback"], Value::Null, "{stored}");
    assert!(meta["date_done"].is_string(), "{stored}");
    let ttl = stored["ttl"].as_i64().unwrap_or(-1);
    assert!(
        (86_000..=86_400).contains(&ttl),
        "TTL of the result: {ttl}, want Celery's one day"
    );

    worker.terminate_cleanly();
}

/// Bad input and refused work reach the caller as the exception classes Python code
/// catches, with FAILURE (or REVOKED) records and tracebacks; the worker keeps working.
#[test]
fn failures_reach_python_as_the_documented_exceptions() {
    let (_redis, deployment) = rig("celery-failures");
    let worker = start_worker(&deployment, "worker", &[]);

    // A deadline, not a speed target (the script reports how long it took): past it,
    // `.get()` would raise TimeoutError instead of NotRegistered.
    let report = Script::new("failures.py", &deployment.redis_url)
        .env("UNKNOWN_TASK_TIMEOUT", "10")
        .run();

    let task_errors = [
        ("bad_sql", SQLITE_ERROR, "sqlite3.OperationalError"),
        ("non_select", VALUE_ERROR, "ValueError"),
        ("from_after_to", VALUE_ERROR, "ValueError"),
        ("wrong_type", TYPE_ERROR, "TypeError"),
        // What Python raises for a call with too few arguments.
        ("missing_argument", TYPE_ERROR, "TypeError"),
    ];
    for (case, class, catchable_as) in task_errors {
        let observed = failed_with(&report[case], case, "FAILURE", class, catchable_as);
        assert_eq!(
            observed["traceback_is_str"], true,
            "{case}: result.traceback should be text: {observed}"
        );
    }

    let unknown = failed_with(
        &report["unknown_task"],
        "unknown_task",
        "FAILURE",
        ("celery.exceptions", "NotRegistered"),
        "celery.exceptions.NotRegistered",
    );
    assert!(
        unknown["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("tasks.no_such_task")),
        "NotRegistered should name the task: {unknown}"
    );

    let expired = failed_with(
        &report["expired"],
        "expired",
        "REVOKED",
        ("celery.exceptions", "TaskRevokedError"),
        "celery.exceptions.TaskRevokedError",
    );
    assert_eq!(
        expired["meta"]["result"]["exc_message"],
        json!(["expired"]),
        "{expired}"
    );

    let limited = failed_with(
        &report["time_limit"],
        "time_limit",
        "FAILURE",
        ("billiard.exceptions", "TimeLimitExceeded"),
        "billiard.exceptions.TimeLimitExceeded",
    );
    assert_eq!(
        limited["meta"]["result"]["exc_message"],
        json!([1]),
        "{limited}"
    );
    let waited_ms = limited["elapsed_ms"].as_f64().unwrap_or_default();
    // Not early: the worker's timer works in whole-millisecond ticks, so allow one tick
    // (seen: 999.04 ms) against the client's clock.
    assert!(
        waited_ms >= 998.0,
        "a 1 s time limit fired after {waited_ms} ms"
    );

    // Still working, and the DELETE changed nothing.
    assert_eq!(ok_value(&report, "expires_in_future"), &json!([[8]]));
    assert_eq!(ok_value(&report, "rows_after"), &json!([[SAMPLE_ROWS]]));
    assert_eq!(
        native(
            &deployment,
            "query_posts_db",
            &["SELECT COUNT(*) FROM posts"]
        ),
        json!([[SAMPLE_ROWS]])
    );
    worker.terminate_cleanly();
}

/// Groups (waited on and polled, as upstream's scorers do), saved group results, chains,
/// link callbacks and errbacks all give their values; a chord fails loudly.
#[test]
fn canvas_groups_chains_and_callbacks_work_and_chords_fail_loudly() {
    let (_redis, deployment) = rig("celery-canvas");
    let worker = start_worker(&deployment, "worker", &[]);

    let report = Script::new("canvas.py", &deployment.redis_url)
        .env("GROUP_TIMEOUT", "30")
        .env("POLL_DEADLINE", "30")
        .run();

    let runs = report["group_get"].as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), 5, "{report}");
    for run in &runs {
        assert_eq!(
            (&run["ok"], &run["values_match"]),
            (&json!(true), &json!(true)),
            "a group of 100 numbered queries: {run}"
        );
    }
    let polled = &report["group_polled"];
    assert_eq!(
        (&polled["collected"], &polled["missing"], &polled["wrong"]),
        (&json!(100), &json!(0), &json!([])),
        "{polled}"
    );
    let saved = &report["group_saved"];
    assert_eq!(
        (&saved["restored"], &saved["same_members"]),
        (&json!(true), &json!(true)),
        "{saved}"
    );
    assert_eq!(
        ok_value(saved, "get"),
        &json!([[[0]], [[1]], [[2]], [[3]], [[4]]])
    );

    let chain = &report["chain_immutable"];
    assert_eq!(ok_value(&report, "chain_immutable"), &trump_counts());
    assert_eq!(
        ok(&chain["parents"][0], "the chain's second step"),
        &json!([[2]])
    );
    assert_eq!(
        ok(&chain["parents"][1], "the chain's first step"),
        &json!([[1]])
    );
    // [[1]] passed on as `match`: a TypeError in the second step.
    failed_with(
        &report["chain_passing_result"],
        "chain_passing_result",
        "FAILURE",
        TYPE_ERROR,
        "TypeError",
    );
    raised(
        &report["chain_failing_first"],
        "chain_failing_first",
        SQLITE_ERROR,
        "sqlite3.OperationalError",
    );

    let link = &report["link"];
    assert_eq!(ok(&link["task"], "linked task"), &json!([[3]]));
    assert_eq!(ok(&link["callback"], "link callback"), &json!([[4]]));
    let link_error = &report["link_error"];
    raised(
        &link_error["task"],
        "task with link_error",
        SQLITE_ERROR,
        "sqlite3.OperationalError",
    );
    assert_eq!(
        ok(&link_error["callback"], "link_error callback"),
        &json!([[5]])
    );

    // Chords are not supported: each header task fails with NotImplementedError, so the
    // caller hears about it instead of waiting forever; the body never runs.
    let chord = &report["chord"];
    let header = chord["header"].as_array().cloned().unwrap_or_default();
    assert_eq!(header.len(), 2, "{chord}");
    for member in &header {
        failed_with(
            member,
            "chord header task",
            "FAILURE",
            ("builtins", "NotImplementedError"),
            "NotImplementedError",
        );
    }
    assert_eq!(
        chord["ok"], false,
        "the chord body must not succeed: {chord}"
    );
    worker.terminate_cleanly();
}

/// Messages pushed while no worker runs: every priority-0 task finishes before any
/// priority-9 one (on Redis, 0 is the most urgent bucket), and a `countdown=2` task does
/// not run before its two seconds are up.
#[test]
fn priority_zero_is_drained_first_and_countdowns_wait() {
    let (_redis, deployment) = rig("celery-priorities");
    let state = deployment.path("priorities.json");

    let pushed = Script::new("priorities.py", &deployment.redis_url)
        .arg("push")
        .arg(&state)
        .run();
    // Where the stock client put them (kombu's buckets): the test's precondition.
    assert_eq!(
        pushed["queued"],
        json!({"base": 21, "priority_9": 20}),
        "{pushed}"
    );

    // One task at a time, so completion order is the order the worker took them in.
    let worker = deployment.start_run("worker", &["--no-scheduler", "--concurrency", "1"]);
    deployment.wait_for_workers(1);
    let report = Script::new("priorities.py", &deployment.redis_url)
        .arg("collect")
        .arg(&state)
        .run();

    assert_eq!(report["wrong_values"], json!([]), "{report}");
    assert_eq!(
        report["missing_date_done"], 0,
        "results without date_done: {report}"
    );
    // Each finished task as 1000 * priority + its index, in the order they finished.
    let finished: Vec<u64> = report["completion_order"]
        .as_array()
        .map(|order| order.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let priorities: Vec<u64> = finished.iter().map(|value| value / 1000).collect();
    let expected: Vec<u64> = [0; 20].into_iter().chain([9; 20]).collect();
    assert_eq!(
        priorities, expected,
        "priorities in the order their tasks finished; the tasks: {finished:?}"
    );

    let countdown = &report["countdown"];
    assert_eq!(ok_value(countdown, "outcome"), &json!([["countdown"]]));
    let after = countdown["finished_after_s"].as_f64().unwrap_or_default();
    assert!(
        after >= 2.0,
        "a countdown=2 task finished {after} s after it was sent"
    );
    worker.terminate_cleanly();
}

/// Broken and hostile raw messages: each one gets a FAILURE record (when its id can be
/// read) or a dead letter (when it cannot), never silence; an unknown task is
/// NotRegistered; and the worker goes on to run the valid message queued behind them.
#[test]
fn hostile_raw_messages_fail_or_dead_letter_and_the_worker_survives() {
    let (_redis, deployment) = rig("celery-hostile");
    let mut worker = start_worker(&deployment, "worker", &[]);

    let report = Script::new("hostile.py", &deployment.redis_url)
        .env("GRACE_S", "5")
        .run();
    assert_eq!(ok_value(&report, "control"), &json!([[7]]));
    assert_eq!(report["queue_left"], 0, "{report}");

    let unknown = &report["unknown_task"]["meta"];
    assert_eq!(
        (&unknown["status"], &unknown["result"]["exc_type"]),
        (&json!("FAILURE"), &json!("NotRegistered")),
        "{unknown}"
    );

    let dead = deployment.dead_letters();
    let dead_letter_for = |id: &str| {
        dead.iter().any(|letter| {
            letter["job_id"] == id || letter["payload"].as_str().is_some_and(|p| p.contains(id))
        })
    };
    for case in [
        "truncated_json",
        "two_element_body",
        "wrong_content_type",
        "body_not_base64",
        "nan_argument",
        "ten_mb_body",
    ] {
        let observed = &report[case];
        let id = observed["id"].as_str().expect("each case has an id");
        let meta = &observed["meta"];
        let failed = meta["status"] == "FAILURE"
            && meta["result"]["exc_type"]
                .as_str()
                .is_some_and(|t| !t.is_empty());
        // A 10 MB query is legal SQL; running it is as good as refusing it.
        let ran = case == "ten_mb_body" && meta["result"] == json!([[10 * 1024 * 1024]]);
        assert!(
            failed || ran || dead_letter_for(id),
            "{case} ({id}): neither a FAILURE record nor a dead letter: {observed}; \
             dead letters: {}",
            dead.len()
        );
    }
    assert!(worker.is_running(), "the worker died:\n{}", worker.log());
    worker.terminate_cleanly();
}

/// sandbox_worker's deployment: tasks sent to the `tasks` queue are run by a worker
/// started with `--celery-queues tasks`.
#[test]
fn a_worker_on_another_queue_serves_clients_of_that_queue() {
    let (_redis, deployment) = rig("celery-queue");
    let worker = start_worker(&deployment, "worker", &["--celery-queues", "tasks"]);

    let report = Script::new("driver.py", &deployment.redis_url)
        .env("CELERY_QUEUE", "tasks")
        .env("RESULT_KEY", format!("{}:top", deployment.namespace))
        .run();
    assert_eq!(ok_value(&report, "substring_positional"), &trump_counts());
    assert_eq!(ok_value(&report, "substring_sandbox_name"), &trump_counts());
    assert_eq!(ok_value(&report, "top_entities"), &json!(true));
    worker.terminate_cleanly();
}

/// A Python worker and posts-worker on one queue: 10,000 tasks, each run by exactly one
/// of them (one result publication per id, each result its own task's), both share the
/// work, and the Python worker logs no error about anything posts-worker did.
#[test]
fn a_mixed_fleet_runs_every_task_exactly_once() {
    const TASKS: u64 = 10_000;
    let (_redis, deployment) = rig("celery-fleet");
    let worker = start_worker(&deployment, "worker", &[]);
    let python_worker =
        PythonWorker::start(&deployment.redis_url, &deployment.db, deployment.dir(), 2);

    let report = Script::new("flood.py", &deployment.redis_url)
        .env("FLOOD_COUNT", TASKS.to_string())
        .run();

    assert_eq!(
        report["publications"],
        json!({"1": TASKS}),
        "results published per task: {report}"
    );
    assert_eq!(
        report["stored_status"],
        json!({"SUCCESS": TASKS}),
        "{report}"
    );
    assert_eq!(report["wrong_results"], json!([]), "{report}");
    assert_eq!(report["queue_left"], 0, "{report}");
    let by_worker: BTreeMap<String, u64> =
        serde_json::from_value(report["by_worker"].clone()).expect("counts per worker");
    let by_python = by_worker.get(PythonWorker::HOSTNAME).copied().unwrap_or(0);
    assert!(
        by_python > 0 && by_python < TASKS,
        "both workers should share the work: {by_worker:?}"
    );

    let log = python_worker.stop();
    let trouble: Vec<&str> = log
        .lines()
        .filter(|line| {
            line.contains("ERROR") || line.contains("CRITICAL") || line.contains("Traceback")
        })
        .collect();
    assert!(
        trouble.is_empty(),
        "the Python worker logged errors:\n{}",
        log
    );
    worker.terminate_cleanly();
}

/// posts-worker SIGKILLed while 500 tasks are in flight: a new posts-worker with the same
/// worker id recovers what the dead one had taken, so every task gets its result; only a
/// task that had finished but not been acknowledged at the kill may run twice.
#[test]
fn a_killed_worker_s_tasks_are_recovered() {
    const TASKS: u64 = 500;
    const CONCURRENCY: u64 = 2;
    let (_redis, deployment) = rig("celery-kill");
    let flags = ["--worker-id", "celery-kill", "--visibility-timeout", "5"];
    let first = start_worker(&deployment, "first", &flags);

    let progress = deployment.path("flood.progress");
    let mut flood = Script::new("flood.py", &deployment.redis_url)
        .env("FLOOD_COUNT", TASKS.to_string())
        // Some milliseconds per task, so the kill lands mid-stream.
        .env(
            "FLOOD_SQL",
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 50000) \
             SELECT COUNT(*), {i} FROM n",
        )
        .env("GET_TIMEOUT", "120")
        .env("PROGRESS_FILE", &progress)
        .spawn();

    let results_so_far = || {
        std::fs::read_to_string(&progress)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while results_so_far() < TASKS / 5 {
        assert!(flood.is_running(), "the flood script ended before the kill");
        assert!(
            Instant::now() < deadline,
            "fewer than {} results after 120 s",
            TASKS / 5
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill();
    let at_kill = results_so_far();
    assert!(
        at_kill < TASKS,
        "all {TASKS} tasks finished before the kill; make them slower"
    );

    let second = start_worker(&deployment, "second", &flags);
    let report = flood.finish();

    assert_eq!(report["never_published"], json!([]), "{report}");
    assert_eq!(
        report["stored_status"],
        json!({"SUCCESS": TASKS}),
        "{report}"
    );
    assert_eq!(report["wrong_results"], json!([]), "{report}");
    assert_eq!(report["queue_left"], 0, "{report}");
    let publications: BTreeMap<String, u64> =
        serde_json::from_value(report["publications"].clone()).expect("publication counts");
    let twice = publications.get("2").copied().unwrap_or(0);
    assert!(
        publications.keys().all(|n| n == "1" || n == "2") && twice <= CONCURRENCY,
        "tasks run more than once after the kill (at {at_kill} results): {publications:?}"
    );
    second.terminate_cleanly();
}

/// The other direction: `posts-worker submit --celery` (jobq's `CeleryClient`) sends tasks
/// to a stock Python Celery worker, positionally and by keyword, and reads back its
/// results and its failures with the Python exception's module and type.
#[test]
fn submit_celery_calls_a_python_worker() {
    let (_redis, deployment) = rig("celery-reverse");
    let python_worker =
        PythonWorker::start(&deployment.redis_url, &deployment.db, deployment.dir(), 1);

    let positional = deployment.run(&[
        "submit",
        "--celery",
        "tasks.substring_matches_by_platform",
        "trump",
        "2017-05-31",
        "2017-06-01",
        "--wait",
        "30",
    ]);
    assert_success(&positional, "submit --celery (positional)");
    assert_eq!(binary_support::json(&positional.stdout), trump_counts());

    let keywords = deployment.run(&[
        "submit",
        "--celery",
        "sandbox_worker.tasks.substring_matches_by_platform",
        "--kwargs",
        r#"{"match": "trump", "from_": "2017-05-31", "to": "2017-06-01"}"#,
        "--wait",
        "30",
    ]);
    assert_success(&keywords, "submit --celery (keywords)");
    assert_eq!(binary_support::json(&keywords.stdout), trump_counts());

    let failed = deployment.run(&[
        "submit",
        "--celery",
        "tasks.query_posts_db",
        "SELECT * FROM no_such_table",
        "--wait",
        "30",
    ]);
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    let error: Value = stderr
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON error on stderr: {stderr}"));
    assert_eq!(
        error["error"]["kind"], "sqlite3.OperationalError",
        "{error}"
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no_such_table")),
        "{error}"
    );
    python_worker.stop();
}
