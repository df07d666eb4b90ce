//! `posts-worker run` with its scheduler, as two processes on one Redis and one namespace
//! with a one-second schedule: every tick is sent by exactly one of them and run exactly
//! once, SIGTERM stops both with exit code 0, and the schedule's explicit key is written.
//!
//! Nothing here depends on how fast the machine is: the test waits for a count of
//! finished jobs, then compares counts (ticks sent, as both schedulers log them, against
//! jobs processed, as jobq counts them), never wall-clock windows.

mod binary_support;

use std::collections::BTreeMap;

use binary_support::Deployment;
use serde_json::Value;

const SCHEDULE: &str = "top_entities_every_second";

/// Finished scheduled jobs to wait for before stopping the processes.
const RUNS_WANTED: u64 = 4;

#[test]
fn two_run_processes_send_each_tick_once_and_stop_cleanly_on_sigterm() {
    let deployment = Deployment::seeded("run-scheduler");
    let key = format!("{}:scheduled:top_named_entities", deployment.namespace);
    let schedules = deployment.path("schedules.toml");
    std::fs::write(
        &schedules,
        format!(
            "[[schedule]]\nname = \"{SCHEDULE}\"\ntask = \"count_top_named_entities\"\n\
             args = [3, \"2017-05-31\", \"2017-06-01\", \"{key}\"]\nevery = \"1s\"\n"
        ),
    )
    .expect("schedule file");
    let schedules = schedules.to_str().expect("UTF-8 path");
    let args = ["--schedules", schedules, "--concurrency", "2"];
    let first = deployment.start_run("first", &args);
    let second = deployment.start_run("second", &args);
    deployment.wait_for_workers(2);
    deployment.wait_for_status(&format!("{RUNS_WANTED} scheduled runs"), |status| {
        status["stats"]["processed"].as_u64() >= Some(RUNS_WANTED)
    });

    first.terminate_cleanly();
    second.terminate_cleanly();
    // Read once both have exited: nothing is sent or run any more.
    let logs = ["first", "second"].map(|name| {
        std::fs::read_to_string(deployment.path(&format!("{name}.log")))
            .unwrap_or_else(|e| panic!("{name}.log: {e}"))
    });

    let mut sends: BTreeMap<u64, usize> = BTreeMap::new();
    for log in &logs {
        for tick in sent_ticks(log) {
            *sends.entry(tick).or_default() += 1;
        }
    }
    let twice: Vec<(&u64, &usize)> = sends.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "ticks sent more than once: {twice:?}");
    assert!(
        sends.keys().all(|tick| tick % 1000 == 0),
        "ticks are whole seconds: {sends:?}"
    );

    let status = deployment.status();
    let stats = &status["stats"];
    let processed = stats["processed"].as_u64().expect("processed");
    let waiting: u64 = stats["queues"]
        .as_object()
        .map(|queues| queues.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    assert!(processed >= RUNS_WANTED, "{status}");
    assert_eq!(stats["failed"], 0, "{status}");
    assert_eq!(
        stats["in_flight"], 0,
        "SIGTERM lets running jobs finish: {status}"
    );
    // Every tick sent was run once, or is still waiting for a worker (sent just before
    // the workers stopped fetching): none ran twice, none was lost.
    assert_eq!(
        processed + waiting,
        sends.len() as u64,
        "ticks sent {sends:?}; {status}"
    );

    // The listing's last run is the latest tick sent.
    let schedule = status["schedules"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == SCHEDULE))
        .unwrap_or_else(|| panic!("{SCHEDULE} is listed: {status}"));
    let last_run = schedule["last_run"].as_str().unwrap_or_default();
    let last_run_ms = chrono::DateTime::parse_from_rfc3339(last_run)
        .unwrap_or_else(|e| panic!("last_run {last_run:?}: {e}"))
        .timestamp_millis();
    assert_eq!(
        u64::try_from(last_run_ms).ok(),
        sends.keys().next_back().copied(),
        "{status}"
    );

    let report = deployment.run_json(&["get-key", &key]);
    let top = report["top_named_entities"].as_array().expect("a list");
    assert_eq!(top.len(), 3, "{report}");
}

/// The `tick_ms` of every "scheduled task sent" line of a `posts-worker run` log.
fn sent_ticks(log: &str) -> Vec<u64> {
    log.lines()
        .map(strip_ansi)
        .filter(|line| line.contains("scheduled task sent") && line.contains(SCHEDULE))
        .map(|line| {
            let value = line
                .split_whitespace()
                .find_map(|field| field.strip_prefix("tick_ms="))
                .unwrap_or_else(|| panic!("no tick_ms in {line:?}"));
            value
                .parse()
                .unwrap_or_else(|e| panic!("tick_ms {value:?} in {line:?}: {e}"))
        })
        .collect()
}

/// The line without terminal colour codes (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
