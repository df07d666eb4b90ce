//! What the workers of a namespace did and are doing, for dashboards and metrics.
//!
//! Workers on a Redis broker record, in the same acknowledgement script that stores each
//! result (no extra round trip):
//!
//! - one [`JobEvent`] per finished, failed, retried or dead-lettered job in the capped
//!   list `{ns}:events`, newest first (the newest [`EVENTS_KEPT`]; under load only the
//!   newest [`SUCCESS_EVENTS_PER_CALL`] successes of each batch; off with
//!   [`WorkerConfig::events`](crate::WorkerConfig::events));
//! - per-task counters and duration histograms, and per-minute throughput (see
//!   [`metrics`](self::TaskMetrics) for the keys);
//!
//! and their heartbeat is a [`WorkerInfo`]. A [`Monitor`] reads all of it back. The memory
//! broker keeps none of it.

mod event;
mod metrics;
mod workers;

use std::collections::BTreeMap;

use crate::broker::redis_connection::RedisConnection;

pub use self::event::{ARGS_LIMIT, EventKind, JobEvent, UNKNOWN_TASK_LABEL};
pub(crate) use self::event::{JobReport, JobRun, report};
pub use self::metrics::{DURATION_BUCKETS, MinuteCounts, TaskMetrics};
pub(crate) use self::metrics::{MINUTE_TTL_S, MetricsDelta, WRITTEN_TTL_S};
pub(crate) use self::workers::host_name;
pub use self::workers::{RUNNING_LISTED, RunningJob, WorkerInfo, WorkerStatus};
use crate::broker::Broker;
use crate::error::Error;
use crate::message::{JobId, JobState, ResultRecord, now_ms};

/// How many events `{ns}:events` keeps (it is trimmed after every acknowledgement
/// batch).
pub const EVENTS_KEPT: usize = 10_000;

/// The most events of successful jobs one acknowledgement batch writes (its newest ones);
/// failures, retries and dead letters are always written. Counters and histograms count
/// every job either way.
pub const SUCCESS_EVENTS_PER_CALL: usize = 32;

/// Everything known about one job.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobDetails {
    /// Its events still kept, newest first.
    pub events: Vec<JobEvent>,
    /// Its stored result, while kept.
    pub record: Option<ResultRecord>,
    /// Its transient state (STARTED, RETRY), when one is recorded.
    pub state: Option<JobState>,
}

/// Reads a namespace's events, metrics and workers (Redis brokers only).
#[derive(Clone)]
pub struct Monitor {
    broker: Broker,
    conn: RedisConnection,
    prefix: String,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("namespace", &self.broker.namespace())
            .finish()
    }
}

fn read_error(what: &'static str) -> impl FnOnce(redis::RedisError) -> Error {
    Error::redis(what)
}

impl Monitor {
    /// A monitor of `broker`'s namespace. Fails with [`Error::Config`] on a memory broker,
    /// which records no events or metrics.
    pub fn new(broker: &Broker) -> Result<Monitor, Error> {
        let (conn, prefix) = broker.backend().monitor_connection().ok_or_else(|| {
            Error::Config(
                "monitoring needs a Redis broker (the memory broker records no events or metrics)"
                    .to_owned(),
            )
        })?;
        Ok(Monitor {
            broker: broker.clone(),
            conn,
            prefix,
        })
    }

    /// The broker this monitor reads.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Every registered worker, live ones first, then by id.
    pub async fn workers(&self) -> Result<Vec<WorkerStatus>, Error> {
        let mut conn = self.conn.clone();
        let registered: Vec<(String, u64)> = redis::cmd("ZRANGE")
            .arg(self.key("workers"))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .map_err(read_error("listing workers"))?;
        if registered.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (id, _) in &registered {
            pipe.cmd("GET").arg(self.key(&format!("worker:{id}:hb")));
            pipe.cmd("LLEN").arg(self.key(&format!("processing:{id}")));
        }
        let replies: Vec<(Option<String>, u64)> = pipe
            .query_async(&mut conn)
            .await
            .map_err(read_error("reading worker heartbeats"))?;
        let mut workers: Vec<WorkerStatus> = registered
            .into_iter()
            .zip(replies)
            .map(
                |((id, last_seen_ms), (heartbeat, in_flight))| WorkerStatus {
                    alive: heartbeat.is_some(),
                    info: heartbeat.and_then(|text| serde_json::from_str(&text).ok()),
                    id,
                    last_seen_ms,
                    in_flight,
                },
            )
            .collect();
        workers.sort_by(|a, b| b.alive.cmp(&a.alive).then_with(|| a.id.cmp(&b.id)));
        Ok(workers)
    }

    /// Up to `limit` events, newest first.
    pub async fn recent_events(&self, limit: usize) -> Result<Vec<JobEvent>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let entries: Vec<String> = redis::cmd("LRANGE")
            .arg(self.key("events"))
            .arg(0)
            .arg(limit - 1)
            .query_async(&mut conn)
            .await
            .map_err(read_error("reading job events"))?;
        Ok(entries
            .iter()
            .filter_map(|json| event::decode(json))
            .collect())
    }

    /// What is known about `job_id`: its events among the newest `scan`, its result and
    /// state. `None` when nothing is.
    pub async fn job(&self, job_id: &JobId, scan: usize) -> Result<Option<JobDetails>, Error> {
        let events: Vec<JobEvent> = self
            .recent_events(scan)
            .await?
            .into_iter()
            .filter(|e| e.job_id.as_ref() == Some(job_id))
            .collect();
        let lookup = self.broker.backend().lookup(job_id).await?;
        if events.is_empty() && lookup.record.is_none() && lookup.state.is_none() {
            return Ok(None);
        }
        Ok(Some(JobDetails {
            events,
            record: lookup.record,
            state: lookup.state,
        }))
    }

    /// Every task's counters and duration histogram, by task name.
    pub async fn task_metrics(&self) -> Result<Vec<TaskMetrics>, Error> {
        let mut conn = self.conn.clone();
        let (jobs, durations): (BTreeMap<String, u64>, BTreeMap<String, u64>) = redis::pipe()
            .cmd("HGETALL")
            .arg(self.key("metrics:jobs"))
            .cmd("HGETALL")
            .arg(self.key("metrics:durations"))
            .query_async(&mut conn)
            .await
            .map_err(read_error("reading job metrics"))?;
        let mut tasks: BTreeMap<String, TaskMetrics> = BTreeMap::new();
        for (field, n) in jobs {
            let mut parts = field.split(metrics::SEP);
            let (Some(task), Some(queue), Some(kind)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(kind) = EventKind::parse(kind) else {
                continue;
            };
            *task_entry(&mut tasks, task)
                .jobs
                .entry(queue.to_owned())
                .or_default()
                .entry(kind)
                .or_default() += n;
        }
        for (field, n) in durations {
            let Some((task, part)) = field.rsplit_once(metrics::SEP) else {
                continue;
            };
            task_entry(&mut tasks, task).add_field(part, n);
        }
        Ok(tasks.into_values().collect())
    }

    /// The explicit keys job `job_id` wrote ([`TaskContext::set_key`](crate::TaskContext::set_key)),
    /// remembered for 8 days; empty when it wrote none (or has not finished).
    pub async fn keys_written(&self, job_id: &JobId) -> Result<Vec<String>, Error> {
        let mut conn = self.conn.clone();
        let keys: Option<String> = redis::cmd("GET")
            .arg(self.key(&format!("written:{job_id}")))
            .query_async(&mut conn)
            .await
            .map_err(read_error("reading the keys a job wrote"))?;
        Ok(keys
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default())
    }

    /// Tells readers of this namespace (e.g. `posts-worker demo`) that a dashboard serves
    /// it at `url`, for `ttl`; renew it before it runs out.
    pub async fn announce_dashboard(
        &self,
        url: &str,
        ttl: std::time::Duration,
    ) -> Result<(), Error> {
        let now = now_ms();
        let mut conn = self.conn.clone();
        redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(self.key("dashboards"))
            .arg("-inf")
            .arg(now)
            .ignore()
            .cmd("ZADD")
            .arg(self.key("dashboards"))
            .arg(now.saturating_add(ttl.as_millis() as u64))
            .arg(url)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(read_error("announcing a dashboard"))
    }

    /// Withdraws a dashboard announced with [`announce_dashboard`](Self::announce_dashboard).
    pub async fn withdraw_dashboard(&self, url: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        redis::cmd("ZREM")
            .arg(self.key("dashboards"))
            .arg(url)
            .query_async::<()>(&mut conn)
            .await
            .map_err(read_error("withdrawing a dashboard"))
    }

    /// The URLs of the dashboards currently serving this namespace.
    pub async fn dashboards(&self) -> Result<Vec<String>, Error> {
        let mut conn = self.conn.clone();
        redis::cmd("ZRANGE")
            .arg(self.key("dashboards"))
            .arg(now_ms())
            .arg("+inf")
            .arg("BYSCORE")
            .query_async(&mut conn)
            .await
            .map_err(read_error("listing dashboards"))
    }

    /// The jobs finished in each of the last `minutes` minutes (the current one last).
    pub async fn throughput(&self, minutes: u64) -> Result<Vec<MinuteCounts>, Error> {
        let now_minute = now_ms() / 60_000;
        let first = now_minute.saturating_sub(minutes.saturating_sub(1));
        let mut pipe = redis::pipe();
        for minute in first..=now_minute {
            pipe.cmd("HGETALL")
                .arg(self.key(&format!("metrics:minute:{minute}")));
        }
        let mut conn = self.conn.clone();
        let counts: Vec<BTreeMap<String, u64>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(read_error("reading throughput"))?;
        Ok((first..=now_minute)
            .zip(counts)
            .map(|(minute, fields)| {
                let get = |kind: EventKind| fields.get(kind.as_str()).copied().unwrap_or(0);
                MinuteCounts {
                    minute_ms: minute * 60_000,
                    succeeded: get(EventKind::Succeeded),
                    failed: get(EventKind::Failed) + get(EventKind::Dead),
                    retried: get(EventKind::Retried),
                }
            })
            .collect())
    }
}

/// `task`'s metrics in `tasks`, added empty when missing.
fn task_entry<'a>(tasks: &'a mut BTreeMap<String, TaskMetrics>, task: &str) -> &'a mut TaskMetrics {
    tasks.entry(task.to_owned()).or_insert_with(|| TaskMetrics {
        task: task.to_owned(),
        buckets: vec![0; DURATION_BUCKETS.len() + 1],
        ..TaskMetrics::default()
    })
}
