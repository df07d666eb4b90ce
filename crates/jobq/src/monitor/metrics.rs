//! Job counters and duration histograms kept in Redis, so they add up across workers and
//! outlive restarts: what one acknowledgement batch adds ([`MetricsDelta`], crate-private)
//! and what a reader gets back ([`TaskMetrics`], [`MinuteCounts`]).
//!
//! | key | type | contents |
//! |---|---|---|
//! | `{ns}:metrics:jobs` | hash | `task␟queue␟status` → jobs |
//! | `{ns}:metrics:durations` | hash | `task␟<bucket>` → runs in that bucket (not cumulative), `task␟sum_us`, `task␟count`, `task␟max_us` (the longest run) |
//! | `{ns}:metrics:minute:<unix minute>` | hash, 2 h TTL | `succeeded`/`failed`/`retried`/`dead` → jobs finished that minute |
//! | `{ns}:written:<job id>` | string, 8 d TTL | the explicit keys a job wrote (JSON array), for the jobs that wrote any |
//!
//! `␟` is the ASCII unit separator (0x1F).

use std::collections::BTreeMap;

use serde::Serialize;

use super::event::{EventKind, JobReport};

/// Separates the parts of a hash field.
pub(crate) const SEP: char = '\u{1f}';

/// The upper bounds (seconds) of the duration histogram's buckets; a last, unbounded
/// bucket follows.
pub const DURATION_BUCKETS: [f64; 17] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// How long the per-minute counters are kept (seconds).
pub(crate) const MINUTE_TTL_S: u64 = 2 * 3600;

/// The bucket a run of `duration_us` falls in (`DURATION_BUCKETS.len()` for the last one).
fn bucket_of(duration_us: u64) -> usize {
    let seconds = duration_us as f64 / 1e6;
    DURATION_BUCKETS
        .iter()
        .position(|&bound| seconds <= bound)
        .unwrap_or(DURATION_BUCKETS.len())
}

/// What one acknowledgement batch adds to the counters, summed per field so the script
/// runs one `HINCRBY` per distinct field instead of several per job.
#[derive(Debug, Default, Serialize)]
pub(crate) struct MetricsDelta {
    /// `{ns}:metrics:jobs` increments.
    j: Vec<(String, u64)>,
    /// `{ns}:metrics:durations` increments.
    d: Vec<(String, u64)>,
    /// Per-minute increments: (unix minute, status, jobs).
    m: Vec<(u64, &'static str, u64)>,
    /// The explicit keys jobs wrote: (job id, JSON array of keys).
    w: Vec<(String, String)>,
    /// The longest run per task in the batch: (`task␟max_us`, µs), kept when longer.
    x: Vec<(String, u64)>,
}

/// How long the keys a job wrote are remembered (seconds).
pub(crate) const WRITTEN_TTL_S: u64 = 8 * 86_400;

impl MetricsDelta {
    /// The sums of `reports`; `None` when there are none.
    pub(crate) fn of<'a>(reports: impl Iterator<Item = &'a JobReport>) -> Option<MetricsDelta> {
        let mut jobs: BTreeMap<(&str, &str, EventKind), u64> = BTreeMap::new();
        let mut durations: BTreeMap<(&str, usize), u64> = BTreeMap::new();
        let mut sums: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
        let mut minutes: BTreeMap<(u64, EventKind), u64> = BTreeMap::new();
        let mut written = Vec::new();
        for report in reports {
            if let Some(id) = report.job_id.as_ref().filter(|_| !report.keys.is_empty()) {
                written.push((
                    id.to_string(),
                    serde_json::to_string(&report.keys).unwrap_or_default(),
                ));
            }
            *jobs
                .entry((&report.task, &report.queue, report.kind))
                .or_default() += 1;
            *minutes
                .entry((report.finished_at_ms / 60_000, report.kind))
                .or_default() += 1;
            if let Some(us) = report.duration_us {
                *durations.entry((&report.task, bucket_of(us))).or_default() += 1;
                let sum = sums.entry(&report.task).or_default();
                sum.0 += us;
                sum.1 += 1;
                sum.2 = sum.2.max(us);
            }
        }
        if jobs.is_empty() {
            return None;
        }
        let mut delta = MetricsDelta {
            w: written,
            ..MetricsDelta::default()
        };
        delta.j = jobs
            .into_iter()
            .map(|((task, queue, kind), n)| {
                (format!("{task}{SEP}{queue}{SEP}{}", kind.as_str()), n)
            })
            .collect();
        for ((task, bucket), n) in durations {
            delta.d.push((format!("{task}{SEP}{bucket}"), n));
        }
        for (task, (sum_us, count, max_us)) in sums {
            delta.d.push((format!("{task}{SEP}sum_us"), sum_us));
            delta.d.push((format!("{task}{SEP}count"), count));
            delta.x.push((format!("{task}{SEP}max_us"), max_us));
        }
        delta.m = minutes
            .into_iter()
            .map(|((minute, kind), n)| (minute, kind.as_str(), n))
            .collect();
        Some(delta)
    }

    /// The delta as the acknowledgement script reads it (JSON).
    pub(crate) fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One task's counters and duration histogram, summed over every worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TaskMetrics {
    /// The task name.
    pub task: String,
    /// Jobs per queue and status.
    pub jobs: BTreeMap<String, BTreeMap<EventKind, u64>>,
    /// Runs per duration bucket (not cumulative): one per [`DURATION_BUCKETS`] bound, then
    /// the unbounded one.
    pub buckets: Vec<u64>,
    /// The summed run time (seconds).
    pub duration_sum_s: f64,
    /// Runs timed.
    pub runs: u64,
    /// The longest run (seconds).
    pub duration_max_s: f64,
}

impl TaskMetrics {
    /// Jobs of this task with `kind`, over every queue.
    pub fn count(&self, kind: EventKind) -> u64 {
        self.jobs
            .values()
            .filter_map(|per_kind| per_kind.get(&kind))
            .sum()
    }

    /// The mean run time in seconds; `None` before the first run.
    pub fn duration_mean(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.duration_sum_s / self.runs as f64)
    }

    /// The `q`-quantile (0..=1) of the run time in seconds, interpolated linearly within
    /// its bucket (as Prometheus's `histogram_quantile`) and never above the longest run;
    /// `None` before the first run.
    pub fn duration_quantile(&self, q: f64) -> Option<f64> {
        let estimate = self.bucket_quantile(q)?;
        Some(if self.duration_max_s > 0.0 {
            estimate.min(self.duration_max_s)
        } else {
            estimate
        })
    }

    fn bucket_quantile(&self, q: f64) -> Option<f64> {
        if self.runs == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * self.runs as f64;
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if (seen + n) as f64 >= rank {
                let lower = if i == 0 { 0.0 } else { DURATION_BUCKETS[i - 1] };
                let Some(&upper) = DURATION_BUCKETS.get(i) else {
                    // The unbounded bucket: its lower bound is the best estimate.
                    return Some(lower);
                };
                let within = (rank - seen as f64) / n as f64;
                return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
            }
            seen += n;
        }
        DURATION_BUCKETS.last().copied()
    }

    pub(crate) fn add_field(&mut self, field: &str, value: u64) {
        match field {
            "sum_us" => self.duration_sum_s = value as f64 / 1e6,
            "count" => self.runs = value,
            "max_us" => self.duration_max_s = value as f64 / 1e6,
            bucket => {
                if let Ok(i) = bucket.parse::<usize>()
                    && i <= DURATION_BUCKETS.len()
                {
                    if self.buckets.is_empty() {
                        self.buckets = vec![0; DURATION_BUCKETS.len() + 1];
                    }
                    self.buckets[i] = value;
                }
            }
        }
    }
}

/// The jobs finished in one minute, over every worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MinuteCounts {
    /// The minute's start (ms since the Unix epoch).
    pub minute_ms: u64,
    /// Jobs that succeeded.
    pub succeeded: u64,
    /// Jobs that failed for good (dead letters included).
    pub failed: u64,
    /// Runs that failed and were retried.
    pub retried: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(task: &str, kind: EventKind, us: Option<u64>) -> JobReport {
        JobReport {
            task: task.to_owned(),
            queue: "default".to_owned(),
            kind,
            job_id: None,
            attempt: 0,
            received_at_ms: 119_000,
            started_at_ms: None,
            duration_us: us,
            finished_at_ms: 120_000,
            error: None,
            retry_at_ms: None,
            keys: Vec::new(),
            celery: false,
            unreadable: false,
        }
    }

    #[test]
    fn a_batch_is_summed_per_field() {
        let reports = [
            report("a", EventKind::Succeeded, Some(500)),
            report("a", EventKind::Succeeded, Some(700)),
            report("a", EventKind::Failed, Some(3_000_000)),
            report("b", EventKind::Retried, None),
        ];
        let delta = MetricsDelta::of(reports.iter()).expect("reports");
        let jobs: BTreeMap<_, _> = delta.j.iter().cloned().collect();
        assert_eq!(jobs["a\u{1f}default\u{1f}succeeded"], 2);
        assert_eq!(jobs["a\u{1f}default\u{1f}failed"], 1);
        assert_eq!(jobs["b\u{1f}default\u{1f}retried"], 1);
        let durations: BTreeMap<_, _> = delta.d.iter().cloned().collect();
        assert_eq!(
            durations["a\u{1f}0"], 2,
            "0.5 and 0.7 ms fall in the 1 ms bucket"
        );
        assert_eq!(durations["a\u{1f}11"], 1, "3 s falls in the 5 s bucket");
        assert_eq!(durations["a\u{1f}sum_us"], 3_001_200);
        assert_eq!(durations["a\u{1f}count"], 3);
        assert!(
            !durations.contains_key("b\u{1f}count"),
            "a run that was not timed"
        );
        assert_eq!(delta.x, vec![("a\u{1f}max_us".to_owned(), 3_000_000)]);
        assert_eq!(
            delta.m,
            vec![(2, "succeeded", 2), (2, "failed", 1), (2, "retried", 1)]
        );
    }

    #[test]
    fn quantiles_interpolate_within_the_bucket() {
        let mut metrics = TaskMetrics::default();
        metrics.add_field("count", 4);
        metrics.add_field("0", 2);
        metrics.add_field("9", 2);
        assert_eq!(metrics.duration_quantile(0.5), Some(0.001));
        let p75 = metrics.duration_quantile(0.75).expect("runs");
        assert!((p75 - 0.75).abs() < 1e-9, "halfway through (0.5, 1]: {p75}");
        assert_eq!(TaskMetrics::default().duration_quantile(0.5), None);
        metrics.add_field("max_us", 600_000);
        assert_eq!(
            metrics.duration_quantile(0.99),
            Some(0.6),
            "never above the longest run"
        );
        assert_eq!(metrics.duration_quantile(0.5), Some(0.001));
    }
}
