//! Where schedules live between processes: the crate-private [`ScheduleStore`] trait, its
//! Redis implementation (two hashes next to the broker's keys, on the broker's multiplexed
//! connection) and an in-memory one. Each broker backend owns one store and hands it out
//! through [`Broker::schedules`](crate::Broker::schedules).
//!
//! Redis keys (namespace `ns`):
//!
//! | key | type | contents |
//! |---|---|---|
//! | `{ns}:schedules` | hash | schedule name → JSON definition (task, args, every/cron, queue, catch_up) |
//! | `{ns}:schedules:last_run` | hash | schedule name → last tick enqueued (ms since the epoch) |
//! | `{ns}:schedules:last_job` | hash | schedule name → the id of the job that tick sent |
//!
//! The per-tick claims live with the broker's unique-send claims (`{ns}:unique:schedule:<name>:<tick ms>`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::broker::redis_connection::RedisConnection;
use futures::FutureExt;
use futures::future::BoxFuture;
use redis::Script;

use crate::error::Error;

/// The future every store operation returns.
pub(crate) type StoreFuture<'a, T> = BoxFuture<'a, Result<T, Error>>;

/// One stored schedule: its JSON definition and when it last fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredRecord {
    /// The schedule's name.
    pub(crate) name: String,
    /// The definition as stored (JSON).
    pub(crate) definition: String,
    /// The last tick enqueued by any scheduler (ms since the Unix epoch).
    pub(crate) last_run_ms: Option<u64>,
    /// The id of the job the last tick sent.
    pub(crate) last_job_id: Option<String>,
}

/// Persistence for schedules, shared by every scheduler of a namespace. Object safe, so
/// schedulers hold it as `Arc<dyn ScheduleStore>`.
pub(crate) trait ScheduleStore: Send + Sync + 'static {
    /// Every stored schedule, sorted by name.
    fn load(&self) -> StoreFuture<'_, Vec<StoredRecord>>;
    /// Adds or replaces a definition; its last run is kept.
    fn put(&self, name: String, definition: String) -> StoreFuture<'_, ()>;
    /// Removes definitions and their last runs; returns how many definitions existed.
    fn remove(&self, names: Vec<String>) -> StoreFuture<'_, usize>;
    /// Records that `tick_ms` was enqueued as job `job_id`, unless a later tick already was
    /// or the schedule no longer exists.
    fn record_run(&self, name: String, tick_ms: u64, job_id: String) -> StoreFuture<'_, ()>;
}

/// Schedules in Redis, on the broker's multiplexed connection and namespace.
pub(crate) struct RedisScheduleStore {
    conn: RedisConnection,
    definitions_key: String,
    last_run_key: String,
    last_job_key: String,
    record_run: Script,
}

/// Moves a last run forward only, and only for a schedule that still exists, so a late
/// scheduler cannot move it back and a removed schedule leaves nothing behind.
const RECORD_RUN: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
if current < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
  return 1
end
return 0
";

impl RedisScheduleStore {
    /// The store of the namespace whose keys start with `prefix` (`{ns}:`).
    pub(crate) fn new(conn: RedisConnection, prefix: &str) -> Self {
        RedisScheduleStore {
            conn,
            definitions_key: format!("{prefix}schedules"),
            last_run_key: format!("{prefix}schedules:last_run"),
            last_job_key: format!("{prefix}schedules:last_job"),
            record_run: Script::new(RECORD_RUN),
        }
    }

    /// The hash of definitions (its length is the number of schedules).
    pub(crate) fn definitions_key(&self) -> &str {
        &self.definitions_key
    }

    fn conn(&self) -> RedisConnection {
        self.conn.clone()
    }
}

impl ScheduleStore for RedisScheduleStore {
    fn load(&self) -> StoreFuture<'_, Vec<StoredRecord>> {
        async move {
            let mut conn = self.conn();
            let (definitions, last_runs, mut last_jobs): Hashes = redis::pipe()
                .cmd("HGETALL")
                .arg(&self.definitions_key)
                .cmd("HGETALL")
                .arg(&self.last_run_key)
                .cmd("HGETALL")
                .arg(&self.last_job_key)
                .query_async(&mut conn)
                .await
                .map_err(Error::redis("loading schedules"))?;
            Ok(definitions
                .into_iter()
                .map(|(name, definition)| StoredRecord {
                    last_run_ms: last_runs.get(&name).copied(),
                    last_job_id: last_jobs.remove(&name),
                    name,
                    definition,
                })
                .collect())
        }
        .boxed()
    }

    fn put(&self, name: String, definition: String) -> StoreFuture<'_, ()> {
        async move {
            let mut conn = self.conn();
            redis::cmd("HSET")
                .arg(&self.definitions_key)
                .arg(name)
                .arg(definition)
                .query_async::<()>(&mut conn)
                .await
                .map_err(Error::redis("storing a schedule"))
        }
        .boxed()
    }

    fn remove(&self, names: Vec<String>) -> StoreFuture<'_, usize> {
        async move {
            if names.is_empty() {
                return Ok(0);
            }
            let mut conn = self.conn();
            let (removed,): (usize,) = redis::pipe()
                .atomic()
                .cmd("HDEL")
                .arg(&self.definitions_key)
                .arg(&names)
                .cmd("HDEL")
                .arg(&self.last_run_key)
                .arg(&names)
                .ignore()
                .cmd("HDEL")
                .arg(&self.last_job_key)
                .arg(&names)
                .ignore()
                .query_async(&mut conn)
                .await
                .map_err(Error::redis("removing schedules"))?;
            Ok(removed)
        }
        .boxed()
    }

    fn record_run(&self, name: String, tick_ms: u64, job_id: String) -> StoreFuture<'_, ()> {
        async move {
            let mut conn = self.conn();
            self.record_run
                .key(&self.definitions_key)
                .key(&self.last_run_key)
                .key(&self.last_job_key)
                .arg(name)
                .arg(tick_ms)
                .arg(job_id)
                .invoke_async::<i64>(&mut conn)
                .await
                .map_err(Error::redis("recording a schedule run"))?;
            Ok(())
        }
        .boxed()
    }
}

/// Schedules in process memory: the store of a memory broker.
#[derive(Default)]
pub(crate) struct MemoryScheduleStore {
    schedules: Mutex<MemorySchedules>,
}

/// Schedule name → (JSON definition, last run in ms and the job it sent).
type MemorySchedules = BTreeMap<String, (String, Option<(u64, String)>)>;

/// Definitions, last runs and last jobs as read from Redis.
type Hashes = (
    BTreeMap<String, String>,
    BTreeMap<String, u64>,
    BTreeMap<String, String>,
);

impl MemoryScheduleStore {
    /// How many schedules are stored.
    pub(crate) fn len(&self) -> usize {
        self.with(|schedules| schedules.len())
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemorySchedules) -> T) -> T {
        let mut schedules = crate::sync::lock(&self.schedules);
        f(&mut schedules)
    }
}

impl ScheduleStore for MemoryScheduleStore {
    fn load(&self) -> StoreFuture<'_, Vec<StoredRecord>> {
        let records = self.with(|schedules| {
            schedules
                .iter()
                .map(|(name, (definition, last_run))| StoredRecord {
                    name: name.clone(),
                    definition: definition.clone(),
                    last_run_ms: last_run.as_ref().map(|(tick, _)| *tick),
                    last_job_id: last_run.as_ref().map(|(_, job)| job.clone()),
                })
                .collect()
        });
        async move { Ok(records) }.boxed()
    }

    fn put(&self, name: String, definition: String) -> StoreFuture<'_, ()> {
        self.with(|schedules| {
            schedules
                .entry(name)
                .and_modify(|(stored, _)| stored.clone_from(&definition))
                .or_insert_with(|| (definition.clone(), None));
        });
        async { Ok(()) }.boxed()
    }

    fn remove(&self, names: Vec<String>) -> StoreFuture<'_, usize> {
        let removed = self.with(|schedules| {
            names
                .iter()
                .filter(|name| schedules.remove(*name).is_some())
                .count()
        });
        async move { Ok(removed) }.boxed()
    }

    fn record_run(&self, name: String, tick_ms: u64, job_id: String) -> StoreFuture<'_, ()> {
        self.with(|schedules| {
            if let Some((_, last_run)) = schedules.get_mut(&name)
                && last_run.as_ref().is_none_or(|(last, _)| *last < tick_ms)
            {
                *last_run = Some((tick_ms, job_id));
            }
        });
        async { Ok(()) }.boxed()
    }
}
