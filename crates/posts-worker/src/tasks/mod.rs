//! The three analytics tasks over the posts database, as plain functions and registered on
//! a [`jobq::App`] by [`register`].
//!
//! | task | arguments | result |
//! |---|---|---|
//! | `query_posts_db` | `query` | rows as a JSON array of arrays |
//! | `substring_matches_by_platform` | `match`, `from_`, `to` | `{"<platform>": n, ..., "total_rows": N}` |
//! | `count_top_named_entities` | `k`, `from_`, `to`, `result_key` | `true`; `{"top_named_entities": [[entity, n], ...], "timestamp": ...}` at `result_key` |
//!
//! Every task runs as a blocking handler (off the async runtime) and calls one typed
//! operation of [`posts_store::read`] (a parallel fold over a range, or a read-only query),
//! which owns the SQLite side. It stops when jobq's time limit fires: the [`CancelToken`]
//! wired to `TaskContext::on_cancel` interrupts SQLite and the scans poll it. Failures are
//! [`PostsTaskError`]s whose [`kind`](PostsTaskError::kind) clients see.

mod args;
mod entities;
mod error;
mod matcher;
mod post_text;
mod query;
mod substring;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jobq::{App, RetryPolicy, TaskContext, TaskError};
use posts_entities::EntityExtractor;
use posts_store::read::{ReadError, ReadPool};

pub use args::check_timestamp;
pub use entities::{TopNamedEntities, count_top_named_entities};
pub use error::PostsTaskError;
pub use matcher::Matcher;
pub use post_text::post_text;
pub use query::query_posts_db;
pub use substring::{SubstringMatches, substring_matches_by_platform};

/// The token the tasks take, re-exported so callers of the plain functions need not
/// depend on posts-store.
pub use posts_store::read::CancelToken;

/// Caps and time limits of the tasks.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest `query_posts_db` result, in bytes of JSON. Keep it at or below the
    /// worker's `WorkerConfig::result_size_limit` (1 MiB by default), which would refuse
    /// to store anything larger anyway.
    pub max_query_result_bytes: usize,
    /// Default time limit of `query_posts_db`.
    pub query_time_limit: Duration,
    /// Default time limit of the two scanning tasks.
    pub scan_time_limit: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_query_result_bytes: 1024 * 1024,
            query_time_limit: Duration::from_secs(60),
            scan_time_limit: Duration::from_secs(600),
        }
    }
}

/// What every run of the tasks shares, built once per process: the read pool, the entity
/// extractor and the limits. (Not jobq's per-run `TaskContext`.)
pub struct PostsData {
    pool: ReadPool,
    extractor: Arc<dyn EntityExtractor>,
    limits: Limits,
}

impl std::fmt::Debug for PostsData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostsData")
            .field("db", &self.pool.path())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl PostsData {
    /// The shared data from its parts.
    pub fn new(pool: ReadPool, extractor: Arc<dyn EntityExtractor>, limits: Limits) -> Self {
        Self {
            pool,
            extractor,
            limits,
        }
    }

    /// Opens the posts database at `db` read-only, with the built-in entity extractor and
    /// default limits.
    ///
    /// # Errors
    /// [`ReadError::MissingDatabase`] or [`ReadError::Open`] when `db` cannot be read.
    pub fn open(db: &Path) -> Result<Self, ReadError> {
        Ok(Self::new(
            ReadPool::open(db)?,
            Arc::new(posts_entities::default_extractor()),
            Limits::default(),
        ))
    }

    /// The read-only connection pool.
    pub fn pool(&self) -> &ReadPool {
        &self.pool
    }

    /// The entity extractor.
    pub fn extractor(&self) -> &dyn EntityExtractor {
        self.extractor.as_ref()
    }

    /// The caps and time limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// Registers `query_posts_db`, `substring_matches_by_platform` and
/// `count_top_named_entities` on `app`, with the time limits from `data`'s [`Limits`] and
/// no retries (a failure here is about the input, which a retry would not change).
pub fn register(app: &mut App, data: Arc<PostsData>) {
    let limits = data.limits().clone();

    let query_data = Arc::clone(&data);
    app.task("query_posts_db")
        .args(["query"])
        .time_limit(limits.query_time_limit)
        .retry(RetryPolicy::none())
        .blocking(move |ctx: &TaskContext, (query,): (String,)| {
            let cancel = cancel_token(ctx);
            query_posts_db(&query_data, &cancel, &query).map_err(TaskError::from)
        });

    let substring_data = Arc::clone(&data);
    app.task("substring_matches_by_platform")
        .args(["match", "from_", "to"])
        .time_limit(limits.scan_time_limit)
        .retry(RetryPolicy::none())
        .blocking(
            move |ctx: &TaskContext, (needle, from, to): (String, String, String)| {
                let cancel = cancel_token(ctx);
                substring_matches_by_platform(&substring_data, &cancel, &needle, &from, &to)
                    .map_err(TaskError::from)
            },
        );

    app.task("count_top_named_entities")
        .args(["k", "from_", "to", "result_key"])
        .time_limit(limits.scan_time_limit)
        .retry(RetryPolicy::none())
        .blocking(
            move |ctx: &TaskContext, (k, from, to, key): (i64, String, String, String)| {
                if key.is_empty() {
                    return Err(PostsTaskError::invalid("result_key", "must not be empty").into());
                }
                let cancel = cancel_token(ctx);
                let top = count_top_named_entities(&data, &cancel, k, &from, &to)?;
                ctx.set_key(key, &top, None)?;
                Ok(true)
            },
        );
}

/// Celery settings for these tasks: `config` with their failures mapped to the exceptions a
/// Python worker running the same tasks raises, so Python callers catch the same types.
///
/// | failure kind | Python exception |
/// |---|---|
/// | `InvalidArgument` (a bad value, e.g. `from_` after `to`) | `builtins.ValueError` |
/// | `QueryRefused` (not a single read-only query) | `builtins.ValueError` |
/// | `SqlError` (SQLite refused the query) | `sqlite3.OperationalError` |
///
/// jobq's own kinds keep its defaults (see `jobq::celery`), e.g. wrong JSON types are
/// `TypeError` and an unknown task is `NotRegistered`.
pub fn celery_config(config: jobq::celery::CeleryConfig) -> jobq::celery::CeleryConfig {
    config
        .exception("InvalidArgument", "ValueError", Some("builtins"))
        .exception("QueryRefused", "ValueError", Some("builtins"))
        .exception("SqlError", "OperationalError", Some("sqlite3"))
}

/// A token cancelled when the run's time limit fires.
fn cancel_token(ctx: &TaskContext) -> CancelToken {
    let cancel = CancelToken::new();
    let on_cancel = cancel.clone();
    ctx.on_cancel(move || on_cancel.cancel());
    cancel
}
