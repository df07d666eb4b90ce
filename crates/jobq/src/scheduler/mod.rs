//! Interval and cron schedules that send tasks, persisted in Redis (or memory) and safe to
//! run in several processes at once.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use jobq::Broker;
//! use jobq::scheduler::{Scheduler, ScheduleSpec};
//!
//! let broker = Broker::redis("redis://127.0.0.1:6379/0", "posts").await?;
//! let every_five_minutes = ScheduleSpec::every(
//!     "top_named_entities",
//!     "count_top_named_entities",
//!     serde_json::json!([10, "2017-05-31", "2017-06-01", "my_worker:scheduled:top_named_entities"]),
//!     Duration::from_secs(300),
//! )?;
//! let scheduler = Scheduler::new(broker, vec![every_five_minutes]).await?;
//! scheduler.run_until(jobq::shutdown_signal()).await?;
//! # Ok(()) }
//! ```
//!
//! # How it behaves
//!
//! - **Definitions** come from code ([`ScheduleSpec::every`], [`ScheduleSpec::cron`]) or a
//!   TOML file ([`ScheduleConfig`]). [`Scheduler::new`] stores them; configured schedules
//!   that are no longer in the configuration are removed from the store. Schedules added at
//!   runtime with [`Scheduler::add`] stay until [`Scheduler::remove`]d.
//! - **Ticks** are wall-clock instants every scheduler computes the same way: intervals
//!   are multiples of the period since the Unix epoch, cron expressions are evaluated in
//!   UTC. **Cron is always UTC**, whatever the host's `TZ` (there is no time-zone option):
//!   `0 3 * * *` fires at 03:00 UTC, which is 04:00 or 05:00 in Berlin. A sparse
//!   expression such as `0 0 29 2 *` simply waits for the next 29 February. Running schedulers re-read the store every [`DEFAULT_REFRESH`], so schedules
//!   added or removed elsewhere take effect without a restart.
//! - **Exactly once per tick**, however many schedulers run: each tick is sent with
//!   [`SendOptions::unique`](crate::SendOptions::unique) under the key
//!   `schedule:<name>:<tick ms>`, so the claim and the enqueue are one atomic step and only
//!   one scheduler wins. The winner records the tick as the schedule's last run.
//! - **Missed ticks**: when a scheduler starts and the last recorded run is older than the
//!   latest tick, it sends one catch-up run for all of them ([`CatchUp::Once`], the
//!   default), claimed under the latest missed tick so parallel starters still send it
//!   once; [`CatchUp::Skip`] waits for the next tick instead.
//! - **Storage** belongs to the broker: on Redis the definitions live in the
//!   `{ns}:schedules` hash (counted in [`Stats::schedules`](crate::Stats::schedules)) and
//!   last runs in `{ns}:schedules:last_run`; a [memory broker](crate::Broker::memory)
//!   keeps them in the process. A store error never stops a scheduler: it logs and
//!   retries.

mod error;
mod spec;
mod store;
#[cfg(test)]
mod tests;
mod timing;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

pub use self::error::ScheduleError;
use self::spec::StoredDefinition;
pub use self::spec::{CatchUp, ScheduleConfig, ScheduleSpec};
use self::store::StoredRecord;
pub(crate) use self::store::{MemoryScheduleStore, RedisScheduleStore, ScheduleStore};
use self::timing::to_datetime;
pub use self::timing::{CronExpression, Timing};
use crate::broker::Broker;
use crate::client::{Client, SendOptions};
use crate::message::{JobId, millis, now_ms};

/// How often a running scheduler re-reads the store for added or removed schedules.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(2);
/// How long a scheduler waits after a store or broker error before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// Per-tick claims outlive the window in which another scheduler could still try the
/// tick (the next tick replaces it), with a margin for clock skew between hosts.
const CLAIM_MARGIN: Duration = Duration::from_secs(60);
const MAX_CLAIM_TTL: Duration = Duration::from_secs(30 * 86_400);

/// A schedule as listed: its definition with its last and next run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ScheduleStatus {
    /// The schedule's name.
    pub name: String,
    /// The task it sends.
    pub task: String,
    /// The task's arguments.
    pub args: Value,
    /// When it fires, e.g. `every 300s` or `cron */5 * * * *`.
    pub spec: String,
    /// The queue it sends to, when not the default one.
    pub queue: Option<String>,
    /// What happens to missed ticks.
    pub catch_up: CatchUp,
    /// The last tick sent, by any scheduler.
    pub last_run: Option<DateTime<Utc>>,
    /// The next tick.
    pub next_run: Option<DateTime<Utc>>,
    /// The id of the job the last tick sent.
    pub last_job_id: Option<JobId>,
}

/// A tick this scheduler sent (passed to [`Scheduler::on_fire`] hooks).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FiredTick {
    /// The schedule's name.
    pub schedule: String,
    /// The tick (ms since the Unix epoch).
    pub tick_ms: u64,
    /// The id of the job sent.
    pub job_id: JobId,
}

type FireHook = Arc<dyn Fn(&FiredTick) + Send + Sync>;

/// Sends the stored schedules' tasks at their ticks. Run one or several per namespace.
pub struct Scheduler {
    client: Client,
    store: Arc<dyn ScheduleStore>,
    refresh: Duration,
    on_fire: Option<FireHook>,
}

impl Scheduler {
    /// A scheduler on `broker` (which sends its ticks and stores its schedules) that stores
    /// `specs` as the configured schedules, removing configured schedules that are not
    /// among them (runtime-added ones stay).
    pub async fn new(broker: Broker, specs: Vec<ScheduleSpec>) -> Result<Self, ScheduleError> {
        let mut names = HashSet::new();
        for spec in &specs {
            spec.validate()?;
            if !names.insert(spec.name.as_str()) {
                return Err(ScheduleError::DuplicateName(spec.name.clone()));
            }
        }
        let scheduler = Self::attach(broker);
        let stale: Vec<String> = scheduler
            .store
            .load()
            .await?
            .into_iter()
            .filter(|record| !names.contains(record.name.as_str()))
            .filter(|record| {
                // Undecodable leftovers of configured schedules go too; runtime ones stay.
                serde_json::from_str::<StoredDefinition>(&record.definition)
                    .map(|d| d.from_config)
                    .unwrap_or(true)
            })
            .map(|record| record.name)
            .collect();
        if !stale.is_empty() {
            tracing::info!(schedules = ?stale, "removing schedules no longer configured");
            scheduler.store.remove(stale).await?;
        }
        for spec in &specs {
            scheduler.put(spec, true).await?;
        }
        Ok(scheduler)
    }

    /// A scheduler on `broker` for whatever is stored, changing nothing (e.g. an extra
    /// process).
    pub fn attach(broker: Broker) -> Self {
        Scheduler {
            store: broker.schedules(),
            client: Client::new(broker),
            refresh: DEFAULT_REFRESH,
            on_fire: None,
        }
    }

    /// Re-reads the store this often instead of every [`DEFAULT_REFRESH`].
    pub fn with_refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh.max(Duration::from_millis(10));
        self
    }

    /// Calls `hook` after each tick this scheduler sent (metrics, logs, tests).
    pub fn on_fire(mut self, hook: impl Fn(&FiredTick) + Send + Sync + 'static) -> Self {
        self.on_fire = Some(Arc::new(hook));
        self
    }

    /// Adds or replaces a schedule at runtime; it stays until removed.
    pub async fn add(&self, spec: &ScheduleSpec) -> Result<(), ScheduleError> {
        spec.validate()?;
        self.put(spec, false).await
    }

    /// Removes a schedule; returns whether it existed.
    pub async fn remove(&self, name: &str) -> Result<bool, ScheduleError> {
        Ok(self.store.remove(vec![name.to_owned()]).await? > 0)
    }

    /// The stored schedules with their last and next run.
    pub async fn list(&self) -> Result<Vec<ScheduleStatus>, ScheduleError> {
        list_store(self.store.as_ref()).await
    }

    async fn put(&self, spec: &ScheduleSpec, from_config: bool) -> Result<(), ScheduleError> {
        let definition = serde_json::to_string(&StoredDefinition::new(spec, from_config))
            .map_err(crate::Error::decode("schedule definition"))?;
        self.store.put(spec.name.clone(), definition).await?;
        Ok(())
    }

    /// Sends ticks until `shutdown` completes. Store and broker errors are logged and
    /// retried, so this only returns when asked to.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ScheduleError> {
        let mut shutdown = std::pin::pin!(shutdown);
        // Per schedule: every tick at or before this instant has been dealt with.
        let mut handled: HashMap<String, u64> = HashMap::new();
        loop {
            let wake_at = match self.pass(&mut handled).await {
                Ok(wake_at) => wake_at,
                Err(error) => {
                    tracing::warn!(%error, "scheduler pass failed; retrying");
                    now_ms() + millis(ERROR_BACKOFF)
                }
            };
            let pause = Duration::from_millis(wake_at.saturating_sub(now_ms()));
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Sends whatever is due; returns when to look again (ms since the epoch).
    async fn pass(&self, handled: &mut HashMap<String, u64>) -> Result<u64, ScheduleError> {
        let records = self.store.load().await?;
        let now = now_ms();
        handled.retain(|name, _| records.iter().any(|r| &r.name == name));
        let mut wake_at = now + millis(self.refresh);
        for record in records {
            let spec = match decode(&record) {
                Ok(spec) => spec,
                Err(error) => {
                    tracing::warn!(schedule = %record.name, %error, "skipping undecodable schedule");
                    continue;
                }
            };
            let due = match handled.get(&spec.name) {
                // First sight: ticks missed while nothing ran get one catch-up run.
                None => {
                    let missed = spec
                        .timing
                        .latest_at_or_before(now)
                        .filter(|&tick| record.last_run_ms.is_some_and(|last| last < tick));
                    match (missed, spec.catch_up) {
                        (Some(tick), CatchUp::Once) => Some(tick),
                        _ => {
                            handled.insert(spec.name.clone(), now);
                            None
                        }
                    }
                }
                Some(&done) => spec
                    .timing
                    .latest_at_or_before(now)
                    .filter(|&tick| tick > done),
            };
            if let Some(tick) = due {
                match self.fire(&spec, tick, now).await {
                    Ok(()) => {
                        handled.insert(spec.name.clone(), now.max(tick));
                    }
                    Err(error) => {
                        // Not marked handled: the next pass tries the latest due tick again,
                        // and its claim keeps that from sending twice.
                        tracing::warn!(schedule = %spec.name, tick_ms = tick, %error, "sending a scheduled task failed");
                        wake_at = wake_at.min(now + millis(ERROR_BACKOFF));
                        continue;
                    }
                }
            }
            let after = handled.get(&spec.name).copied().unwrap_or(now);
            if let Some(next) = spec.timing.next_after(after) {
                wake_at = wake_at.min(next);
            }
        }
        Ok(wake_at)
    }

    async fn fire(&self, spec: &ScheduleSpec, tick: u64, now: u64) -> Result<(), ScheduleError> {
        let claim_ttl = (spec.timing.period_after(now) + CLAIM_MARGIN).min(MAX_CLAIM_TTL);
        let mut options =
            SendOptions::new().unique(format!("schedule:{}:{tick}", spec.name), claim_ttl);
        if let Some(queue) = &spec.queue {
            options = options.queue(queue.clone());
        }
        let sent = self
            .client
            .apply_async::<Value>(&spec.task, &spec.args, options)
            .await?;
        let Some(job) = sent else {
            tracing::debug!(schedule = %spec.name, tick_ms = tick, "tick already sent by another scheduler");
            return Ok(());
        };
        tracing::info!(schedule = %spec.name, task = %spec.task, tick_ms = tick, job_id = %job.id(), "scheduled task sent");
        if let Err(error) = self
            .store
            .record_run(spec.name.clone(), tick, job.id().to_string())
            .await
        {
            // The job is sent and the claim taken; only the listing's last run lags.
            tracing::warn!(schedule = %spec.name, %error, "recording the last run failed");
        }
        if let Some(hook) = &self.on_fire {
            hook(&FiredTick {
                schedule: spec.name.clone(),
                tick_ms: tick,
                job_id: job.id().clone(),
            });
        }
        Ok(())
    }
}

/// The schedules stored on `broker` with their last and next run, for status displays.
pub async fn list(broker: &Broker) -> Result<Vec<ScheduleStatus>, ScheduleError> {
    list_store(broker.schedules().as_ref()).await
}

async fn list_store(store: &dyn ScheduleStore) -> Result<Vec<ScheduleStatus>, ScheduleError> {
    let now = now_ms();
    let mut statuses = Vec::new();
    for record in store.load().await? {
        let spec = decode(&record)?;
        statuses.push(ScheduleStatus {
            next_run: spec.timing.next_after(now).and_then(to_datetime),
            last_run: record.last_run_ms.and_then(to_datetime),
            last_job_id: record.last_job_id.clone().map(JobId::from),
            spec: spec.timing.to_string(),
            name: spec.name,
            task: spec.task,
            args: spec.args,
            queue: spec.queue,
            catch_up: spec.catch_up,
        });
    }
    Ok(statuses)
}

fn decode(record: &StoredRecord) -> Result<ScheduleSpec, ScheduleError> {
    serde_json::from_str::<StoredDefinition>(&record.definition)
        .map_err(|e| ScheduleError::Corrupt {
            name: record.name.clone(),
            reason: e.to_string(),
        })?
        .to_spec()
}
