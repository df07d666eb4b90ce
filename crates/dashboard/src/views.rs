//! What the pages show, read from Redis and shaped for display: the rows of each table,
//! with times and durations already formatted. The JSON API serves the raw records
//! instead.

use chrono::{TimeZone, Utc};
use jobq::monitor::{EventKind, JobEvent, TaskMetrics, WorkerStatus};
use jobq::scheduler::ScheduleStatus;
use jobq::{DeadLetter, JobId, Stats};
use serde_json::Value;

use crate::charts::{BarChart, ThroughputChart};
use crate::error::ReadError;
use crate::state::Shared;

/// How many events the job list scans (newest first) before filtering.
pub(crate) const JOBS_SCANNED: usize = 2000;
/// How many jobs the job list shows at most.
pub(crate) const JOBS_SHOWN: usize = 200;
/// How many dead letters the dead-letter page lists.
pub(crate) const DEAD_SHOWN: usize = 200;
/// How long arguments are in tables.
const ARGS_SHORT: usize = 80;

/// The overview page.
pub(crate) struct Overview {
    pub(crate) stats: Stats,
    pub(crate) queues: Vec<(String, u64)>,
    pub(crate) workers: Vec<WorkerRow>,
    pub(crate) tasks: Vec<TaskRow>,
    pub(crate) throughput: ThroughputChart,
    pub(crate) recent: Vec<JobRow>,
    /// Nothing ever ran or registered here.
    pub(crate) empty: bool,
}

pub(crate) struct WorkerRow {
    pub(crate) id: String,
    pub(crate) alive: bool,
    pub(crate) host: String,
    pub(crate) pid: String,
    pub(crate) queues: String,
    pub(crate) concurrency: String,
    pub(crate) heartbeat_age: String,
    pub(crate) in_flight: u64,
    pub(crate) running: Vec<(String, String, String)>,
    pub(crate) processed: String,
    pub(crate) failed: String,
}

pub(crate) struct TaskRow {
    pub(crate) task: String,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) retried: u64,
    pub(crate) dead: u64,
    pub(crate) mean: String,
    pub(crate) max: String,
    pub(crate) p50: String,
    pub(crate) p95: String,
    pub(crate) p99: String,
}

/// One job event as a table row.
pub(crate) struct JobRow {
    pub(crate) id: String,
    pub(crate) task: String,
    pub(crate) queue: String,
    pub(crate) args: String,
    pub(crate) state: &'static str,
    pub(crate) attempt: u32,
    pub(crate) duration: String,
    pub(crate) worker: String,
    pub(crate) finished: String,
    pub(crate) error: String,
}

pub(crate) struct DeadRow {
    pub(crate) job_id: String,
    pub(crate) task: String,
    pub(crate) queue: String,
    pub(crate) reason: String,
    pub(crate) failed_at: String,
    /// The message's arguments when it is a readable job, else the start of the message.
    pub(crate) args: String,
}

pub(crate) struct ScheduleRow {
    pub(crate) name: String,
    pub(crate) task: String,
    pub(crate) args: String,
    pub(crate) spec: String,
    pub(crate) last_run: String,
    pub(crate) next_run: String,
    pub(crate) last_job: String,
    /// The explicit keys the last job wrote, with their value and chart.
    pub(crate) outputs: Vec<OutputView>,
}

/// An explicit key and what it holds.
pub(crate) struct OutputView {
    pub(crate) key: String,
    pub(crate) timestamp: String,
    pub(crate) chart: Option<BarChart>,
    pub(crate) value: String,
}

/// What the overview (page and API) is drawn from, as read from Redis.
pub(crate) struct Readings {
    pub(crate) stats: Stats,
    pub(crate) workers: Vec<WorkerStatus>,
    pub(crate) tasks: Vec<TaskMetrics>,
    /// The last 60 minutes, oldest first.
    pub(crate) throughput: Vec<jobq::monitor::MinuteCounts>,
}

pub(crate) async fn readings(shared: &Shared) -> Result<Readings, ReadError> {
    let monitor = &shared.monitor;
    Ok(Readings {
        stats: shared.client().stats().await?,
        workers: monitor.workers().await?,
        tasks: monitor.task_metrics().await?,
        throughput: monitor.throughput(60).await?,
    })
}

/// The dead-letter total and the newest [`DEAD_SHOWN`] letters.
pub(crate) async fn dead_letters(shared: &Shared) -> Result<(u64, Vec<DeadLetter>), ReadError> {
    let client = shared.client();
    let total = client.stats().await?.dead;
    Ok((total, client.dead_letters(DEAD_SHOWN).await?))
}

pub(crate) async fn overview(shared: &Shared) -> Result<Overview, ReadError> {
    let Readings {
        stats,
        workers,
        tasks,
        throughput,
    } = readings(shared).await?;
    let recent = shared.monitor.recent_events(10).await?;
    let empty = stats.queues.is_empty()
        && workers.is_empty()
        && tasks.is_empty()
        && stats.dead == 0
        && stats.schedules == 0;
    Ok(Overview {
        queues: stats.queues.iter().map(|(q, n)| (q.clone(), *n)).collect(),
        stats,
        workers: workers.iter().map(worker_row).collect(),
        tasks: tasks.iter().map(task_row).collect(),
        throughput: ThroughputChart::new(&throughput),
        recent: recent.iter().map(job_row).collect(),
        empty,
    })
}

fn worker_row(worker: &WorkerStatus) -> WorkerRow {
    let now = now_ms();
    let info = worker.info.as_ref();
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    WorkerRow {
        id: worker.id.clone(),
        alive: worker.alive,
        host: or_dash(info.map(|i| i.host.clone())),
        pid: or_dash(info.map(|i| i.pid.to_string())),
        queues: or_dash(info.map(|i| {
            let mut all = i.queues.clone();
            all.extend(i.celery_queues.iter().map(|q| format!("{q} (celery)")));
            all.join(", ")
        })),
        concurrency: or_dash(info.map(|i| i.concurrency.to_string())),
        heartbeat_age: age(
            now.saturating_sub(info.map_or(worker.last_seen_ms, |i| i.heartbeat_at_ms))
        ),
        in_flight: worker.in_flight,
        running: info
            .map(|i| {
                i.running
                    .iter()
                    .map(|r| {
                        (
                            r.job_id.to_string(),
                            r.task.clone(),
                            age(now.saturating_sub(r.started_at_ms)),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        processed: or_dash(info.map(|i| i.processed.to_string())),
        failed: or_dash(info.map(|i| i.failed.to_string())),
    }
}

fn task_row(metrics: &TaskMetrics) -> TaskRow {
    let quantile = |q| metrics.duration_quantile(q).map_or("-".to_owned(), seconds);
    TaskRow {
        task: metrics.task.clone(),
        succeeded: metrics.count(EventKind::Succeeded),
        failed: metrics.count(EventKind::Failed),
        retried: metrics.count(EventKind::Retried),
        dead: metrics.count(EventKind::Dead),
        mean: metrics.duration_mean().map_or("-".to_owned(), seconds),
        max: if metrics.runs > 0 {
            seconds(metrics.duration_max_s)
        } else {
            "-".to_owned()
        },
        p50: quantile(0.5),
        p95: quantile(0.95),
        p99: quantile(0.99),
    }
}

pub(crate) fn job_row(event: &JobEvent) -> JobRow {
    JobRow {
        id: event
            .job_id
            .as_ref()
            .map_or_else(String::new, JobId::to_string),
        task: event.task.clone().unwrap_or_else(|| "?".to_owned()),
        queue: event.queue.clone(),
        args: shorten(event.args.as_deref().unwrap_or(""), ARGS_SHORT),
        state: event.kind.as_str(),
        attempt: event.attempt + 1,
        duration: event
            .duration_us
            .map_or("-".to_owned(), |us| seconds(us as f64 / 1e6)),
        worker: shorten(&event.worker, 13),
        finished: time(event.finished_at_ms),
        error: event
            .error
            .as_ref()
            .map_or_else(String::new, |e| e.to_string()),
    }
}

/// Recent jobs, newest first, with the filters applied.
pub(crate) async fn jobs(
    shared: &Shared,
    task: Option<&str>,
    state: Option<EventKind>,
) -> Result<Vec<JobEvent>, ReadError> {
    let events = shared.monitor.recent_events(JOBS_SCANNED).await?;
    Ok(events
        .into_iter()
        .filter(|e| task.is_none_or(|t| e.task.as_deref() == Some(t)))
        .filter(|e| state.is_none_or(|s| e.kind == s))
        .take(JOBS_SHOWN)
        .collect())
}

pub(crate) fn dead_row(letter: &DeadLetter) -> DeadRow {
    DeadRow {
        job_id: letter
            .job_id
            .as_ref()
            .map_or_else(String::new, JobId::to_string),
        task: letter.task.clone().unwrap_or_else(|| "?".to_owned()),
        queue: letter.queue.clone().unwrap_or_else(|| "?".to_owned()),
        reason: letter.reason.to_string(),
        failed_at: time(letter.failed_at_ms),
        args: serde_json::from_str::<Value>(&letter.payload)
            .ok()
            .and_then(|message| message.get("args").map(Value::to_string))
            .map_or_else(
                || shorten(&letter.payload, ARGS_SHORT),
                |args| shorten(&args, ARGS_SHORT),
            ),
    }
}

/// Every schedule with the keys its last job wrote and their values (`None`: gone).
pub(crate) async fn schedules_with_outputs(
    shared: &Shared,
) -> Result<Vec<(ScheduleStatus, Vec<(String, Option<String>)>)>, ReadError> {
    let statuses = jobq::scheduler::list(shared.monitor.broker()).await?;
    let client = shared.client();
    let mut schedules = Vec::new();
    for status in statuses {
        let mut outputs = Vec::new();
        if let Some(job) = &status.last_job_id {
            for key in shared.monitor.keys_written(job).await? {
                let value = client.get_key(&key).await?;
                outputs.push((key, value));
            }
        }
        schedules.push((status, outputs));
    }
    Ok(schedules)
}

/// The schedules with what their last jobs wrote, for display.
pub(crate) async fn schedules(shared: &Shared) -> Result<Vec<ScheduleRow>, ReadError> {
    Ok(schedules_with_outputs(shared)
        .await?
        .into_iter()
        .map(|(status, outputs)| {
            let outputs = outputs
                .into_iter()
                .map(|(key, value)| output_view(key, value))
                .collect();
            schedule_row(status, outputs)
        })
        .collect())
}

fn schedule_row(status: ScheduleStatus, outputs: Vec<OutputView>) -> ScheduleRow {
    let when = |t: Option<chrono::DateTime<Utc>>| {
        t.map_or("-".to_owned(), |t| {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        })
    };
    ScheduleRow {
        args: status.args.to_string(),
        last_run: when(status.last_run),
        next_run: when(status.next_run),
        last_job: status
            .last_job_id
            .as_ref()
            .map_or_else(String::new, JobId::to_string),
        name: status.name,
        task: status.task,
        spec: status.spec,
        outputs,
    }
}

/// An explicit key's value for display: a `[[label, count], ...]` list in it becomes a bar
/// chart, a `timestamp` field its time.
pub(crate) fn output_view(key: String, value: Option<String>) -> OutputView {
    let Some(text) = value else {
        return OutputView {
            key,
            timestamp: String::new(),
            chart: None,
            value: "(the key is gone: expired or deleted)".to_owned(),
        };
    };
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    let timestamp = parsed
        .as_ref()
        .and_then(|v| v.get("timestamp"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let chart = parsed.as_ref().and_then(BarChart::from_value);
    OutputView {
        key,
        timestamp,
        chart,
        value: shorten(&text, 2000),
    }
}

/// `text` cut to `limit` characters, with an ellipsis when cut.
pub(crate) fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A duration in seconds, in the unit that reads best.
pub(crate) fn seconds(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// How long ago, roughly.
pub(crate) fn age(ms: u64) -> String {
    match ms / 1000 {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

/// A time (ms since the Unix epoch) in UTC.
pub(crate) fn time(ms: u64) -> String {
    Utc.timestamp_millis_opt(ms as i64).single().map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// Now, in ms since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortening_counts_characters() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "abc…");
        assert_eq!(shorten("ééé", 2), "éé…");
    }

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!(seconds(0.0005), "500 µs");
        assert_eq!(seconds(0.0123), "12.3 ms");
        assert_eq!(seconds(2.5), "2.50 s");
    }
}
