//! Cron schedules are UTC whatever the host's time zone: the next runs computed in a
//! process with `TZ=Europe/Berlin` are the UTC instants the expressions name.
//!
//! The time zone belongs to the whole process, and chrono reads it once, so the
//! computation runs in a child process: this test binary re-executed with `TZ` set, running
//! the ignored `child_print_next_runs` entry point, which prints what it computed.

use std::process::Command;

use chrono::{DateTime, Datelike, Local, Timelike, Utc, Weekday};
use jobq::Broker;
use jobq::scheduler::{ScheduleSpec, Scheduler};
use serde_json::json;

const CHILD_ENV: &str = "JOBQ_TEST_CRON_TZ_CHILD";
const SCHEDULES: [(&str, &str); 3] = [
    ("nightly", "0 3 * * *"),
    // Named: the cron crate numbers days of week 1 = Sunday, unlike Unix cron (1 = Monday).
    ("monday", "30 12 * * MON"),
    ("leap", "0 0 29 2 *"),
];

#[test]
#[ignore = "the child-process side of cron_is_utc_under_a_berlin_time_zone"]
fn child_print_next_runs() {
    assert!(
        std::env::var_os(CHILD_ENV).is_some(),
        "started by cron_is_utc_under_a_berlin_time_zone"
    );
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let statuses = runtime.block_on(async {
        let specs = SCHEDULES
            .iter()
            .map(|(name, cron)| ScheduleSpec::cron(*name, "tick", json!([]), cron).expect("valid"))
            .collect();
        let broker = Broker::memory("cron-tz").expect("a valid namespace");
        Scheduler::new(broker, specs)
            .await
            .expect("scheduler")
            .list()
            .await
            .expect("list")
    });
    // Proof that the time zone took effect here: Berlin is never at UTC+0.
    println!("OFFSET {}", Local::now().offset().local_minus_utc());
    for status in statuses {
        let next = status.next_run.expect("a next run");
        println!("NEXT {} {}", status.name, next.to_rfc3339());
    }
}

#[test]
fn cron_is_utc_under_a_berlin_time_zone() {
    let before = Utc::now();
    let output = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--ignored",
            "--exact",
            "child_print_next_runs",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .env("TZ", "Europe/Berlin")
        .output()
        .expect("run the child process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let offset: i32 = stdout
        .lines()
        .find_map(|l| l.split_once("OFFSET ").map(|(_, o)| o.trim()))
        .and_then(|o| o.parse().ok())
        .unwrap_or_else(|| panic!("no offset printed:\n{stdout}"));
    assert!(
        offset == 3600 || offset == 7200,
        "TZ=Europe/Berlin did not take effect in the child (offset {offset} s)"
    );
    let next = |name: &str| -> DateTime<Utc> {
        let text = stdout
            .lines()
            .find_map(|l| {
                l.split_once(&format!("NEXT {name} "))
                    .map(|(_, t)| t.trim())
            })
            .unwrap_or_else(|| panic!("no next run for {name}:\n{stdout}"));
        DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .with_timezone(&Utc)
    };

    let nightly = next("nightly");
    assert_eq!(
        (nightly.hour(), nightly.minute(), nightly.second()),
        (3, 0, 0),
        "0 3 * * * must fire at 03:00 UTC, got {nightly}"
    );
    assert!(nightly > before && nightly - before <= chrono::TimeDelta::days(1));

    let monday = next("monday");
    assert_eq!(
        (monday.weekday(), monday.hour(), monday.minute()),
        (Weekday::Mon, 12, 30),
        "{monday}"
    );
    assert!(monday > before && monday - before <= chrono::TimeDelta::days(7));

    let leap = next("leap");
    assert_eq!(
        (leap.month(), leap.day(), leap.hour(), leap.minute()),
        (2, 29, 0, 0),
        "{leap}"
    );
    assert!(leap > before && leap - before <= chrono::TimeDelta::days(4 * 366));
}
