//! `GET /metrics`: the namespace in the Prometheus text exposition format (OpenMetrics),
//! read from Redis on each scrape, so every dashboard reports the same totals.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `<prefix>_jobs_total` | counter | `task`, `queue`, `status` (succeeded, failed, retried, dead) |
//! | `<prefix>_job_duration_seconds` | histogram | `task` |
//! | `<prefix>_queue_depth` | gauge | `queue` |
//! | `<prefix>_jobs_in_flight`, `_jobs_delayed`, `_dead_letters` | gauge | |
//! | `<prefix>_workers_live` | gauge | |
//! | `<prefix>_schedule_last_run_timestamp_seconds` | gauge | `schedule` |

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jobq::Stats;
use jobq::monitor::{DURATION_BUCKETS, EventKind, TaskMetrics};
use jobq::scheduler::ScheduleStatus;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::error::ReadError;
use crate::state::AppState;

/// The OpenMetrics content type Prometheus negotiates.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(crate) async fn metrics(State(shared): State<AppState>) -> Response {
    let read = async {
        let stats = shared.client().stats().await?;
        let tasks = shared.monitor.task_metrics().await?;
        let schedules = jobq::scheduler::list(shared.monitor.broker()).await?;
        Ok::<_, ReadError>(Snapshot {
            prefix: shared.metrics_prefix.clone(),
            stats,
            tasks,
            schedules,
        })
    };
    let snapshot = match read.await {
        Ok(snapshot) => snapshot,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("# cannot read the namespace: {e}\n"),
            )
                .into_response();
        }
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &registry) {
        Ok(()) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("# encoding the metrics failed: {e}\n"),
        )
            .into_response(),
    }
}

/// Everything one scrape reports, read before encoding.
#[derive(Debug)]
struct Snapshot {
    prefix: String,
    stats: Stats,
    tasks: Vec<TaskMetrics>,
    schedules: Vec<ScheduleStatus>,
}

impl Snapshot {
    fn name(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.prefix)
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value as i64);
    let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
    gauge.encode(metric)
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let name = self.name("jobs");
        let mut jobs = encoder.encode_descriptor(
            &name,
            "Jobs finished, by task, queue and status (succeeded, failed, retried, dead).",
            None,
            MetricType::Counter,
        )?;
        for task in &self.tasks {
            for (queue, per_kind) in &task.jobs {
                for kind in EventKind::ALL {
                    let Some(&n) = per_kind.get(&kind) else {
                        continue;
                    };
                    let labels = [
                        ("task", task.task.as_str()),
                        ("queue", queue.as_str()),
                        ("status", kind.as_str()),
                    ];
                    ConstCounter::new(n).encode(jobs.encode_family(&labels)?)?;
                }
            }
        }

        let name = self.name("job_duration_seconds");
        let mut durations = encoder.encode_descriptor(
            &name,
            "How long handlers ran, by task.",
            None,
            MetricType::Histogram,
        )?;
        for task in self.tasks.iter().filter(|t| t.runs > 0) {
            let buckets: Vec<(f64, u64)> = DURATION_BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(task.buckets.iter().copied())
                .collect();
            durations
                .encode_family(&[("task", task.task.as_str())])?
                .encode_histogram::<NoLabelSet>(task.duration_sum_s, task.runs, &buckets, None)?;
        }

        let name = self.name("queue_depth");
        let mut depth = encoder.encode_descriptor(
            &name,
            "Jobs waiting in each queue.",
            None,
            MetricType::Gauge,
        )?;
        for (queue, n) in &self.stats.queues {
            ConstGauge::new(*n as i64)
                .encode(depth.encode_family(&[("queue", queue.as_str())])?)?;
        }
        gauge(
            &mut encoder,
            &self.name("jobs_in_flight"),
            "Jobs fetched by workers and not yet acknowledged.",
            self.stats.in_flight,
        )?;
        gauge(
            &mut encoder,
            &self.name("jobs_delayed"),
            "Jobs waiting for their ETA or retry delay.",
            self.stats.delayed,
        )?;
        gauge(
            &mut encoder,
            &self.name("dead_letters"),
            "Dead letters.",
            self.stats.dead,
        )?;
        gauge(
            &mut encoder,
            &self.name("workers_live"),
            "Workers whose heartbeat is current.",
            self.stats.workers,
        )?;

        let name = self.name("schedule_last_run_timestamp_seconds");
        let mut last_run = encoder.encode_descriptor(
            &name,
            "When each schedule last sent its job (Unix time).",
            None,
            MetricType::Gauge,
        )?;
        for schedule in &self.schedules {
            let Some(at) = schedule.last_run else {
                continue;
            };
            let seconds = at.timestamp_millis() as f64 / 1000.0;
            ConstGauge::new(seconds)
                .encode(last_run.encode_family(&[("schedule", schedule.name.as_str())])?)?;
        }
        Ok(())
    }
}
