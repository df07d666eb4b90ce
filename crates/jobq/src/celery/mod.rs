//! Celery protocol v2 over Redis: a [`Worker`](crate::Worker) given a [`CeleryConfig`]
//! also consumes the messages Python's `task.delay(...)` / `send_task` / `group(...)` put on
//! kombu's Redis lists, and stores results where `AsyncResult.get()` finds them.
//!
//! # How a Celery message travels
//!
//! 1. A Lua script moves envelopes from the queue's four priority lists (`q`, `q\x06\x163`,
//!    `q\x06\x166`, `q\x06\x169`, bucket 0 first) straight into the worker's in-flight
//!    list, as native jobs are moved: a worker that dies with them is reaped and they go
//!    back to the list they came from, where any worker (Rust or Python) takes them again.
//!    kombu's `unacked` hash is never touched.
//! 2. The `envelope` module decodes the envelope into a typed job with its Celery context (kwargs,
//!    root and parent ids, callbacks, chain, expiry). A message that cannot be decoded
//!    fails with a FAILURE under its id, or is dead-lettered with its raw payload when no
//!    id can be read.
//! 3. The reply layer resolves the task name, binds positional and keyword arguments by
//!    the task's parameter names, honours `expires` and `eta` (a message not yet due waits
//!    in jobq's delayed set, never in memory), and runs the job like any other.
//! 4. The acknowledgement stores the result record under `celery-task-meta-<id>` with
//!    `SETEX` and `PUBLISH` in one script (a stored SUCCESS is never overwritten), sends
//!    the next step of a chain and the `link`/`link_error` callbacks, and removes the
//!    message from the in-flight list, atomically.
//!
//! # Task names
//!
//! A Celery name resolves to a registered task in this order: an exact registered name;
//! an alias ([`CeleryConfig::alias`]); the registered task whose name equals the Celery
//! name's last dotted segment (`tasks.query_posts_db` and
//! `sandbox_worker.tasks.query_posts_db` both run `query_posts_db`). When no task matches,
//! or when the last segment matches more than one registered name (registered names may
//! contain dots), the job fails with `NotRegistered` naming the candidates.
//!
//! # Failures as Python sees them
//!
//! A failure's kind maps to the exception Python re-raises from `.get()`:
//! [`CeleryConfig::exception`] adds mappings; the defaults are `InvalidArguments` →
//! `builtins.TypeError`, `UnknownTask` → `celery.exceptions.NotRegistered`,
//! `TimeLimitExceeded` → `billiard.exceptions.TimeLimitExceeded`, an expired message →
//! REVOKED `celery.exceptions.TaskRevokedError`, a chord → `builtins.NotImplementedError`;
//! any other kind becomes an exception class of that name (module `null`, which Celery
//! recreates on the fly). The `traceback` holds the failure's kind, message and task.
//!
//! # Not supported
//!
//! Chords (their header tasks fail with `NotImplementedError`, and the chord's body gets
//! the same failure, so nothing waits forever), the `rpc://` result backend, soft time
//! limits as a separate exception (the smaller of the two limits is enforced as the hard
//! one), and serializers other than JSON.

mod client;
pub(crate) mod envelope;
pub(crate) mod pidbox;
pub(crate) mod reply;

pub use client::{CeleryClient, SendCelery, SentTask};

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::task::TaskError;

/// Celery's default queue name.
pub(crate) const DEFAULT_QUEUE: &str = "celery";

/// How a worker speaks Celery: which queues it consumes, where results go, how task names
/// and failures map. `CeleryConfig::default()` matches a stock `Celery(broker=URL,
/// backend=URL)` app: queue `celery`, results kept one day, no key prefix.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CeleryConfig {
    /// The Celery queues (Redis lists) to consume (default `["celery"]`).
    pub queues: Vec<String>,
    /// How long result records are kept: Celery's `result_expires` (default 1 day).
    pub result_expires: Duration,
    /// The result backend's `global_keyprefix` (default none): result keys become
    /// `<prefix>_celery-task-meta-<id>` (no `_` is added when the prefix ends in `:`, `_`,
    /// `-` or `.`), as Celery's Redis backend names them.
    pub key_prefix: String,
    /// The name this worker answers to in result records and `celery inspect` (default
    /// `posts-worker.<pid>@<host>`).
    pub hostname: String,
    /// The largest envelope accepted (default 2 MiB); larger ones fail with
    /// `MalformedMessage`.
    pub max_message_bytes: usize,
    /// Store a STARTED record when a task starts, as Celery's `task_track_started` does
    /// (default off; clients that poll `.state` see `STARTED` instead of `PENDING`).
    pub track_started: bool,
    aliases: BTreeMap<String, String>,
    exceptions: BTreeMap<String, PythonException>,
}

/// The Python exception a failure kind is stored as: `exc_type` and `exc_module`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PythonException {
    pub(crate) exc_type: String,
    pub(crate) exc_module: Option<String>,
}

/// The failure kind of a Celery message whose `expires` has passed (stored as REVOKED).
pub(crate) const EXPIRED: &str = "Expired";
/// The failure kind of a chord's tasks, which this worker does not run.
pub(crate) const CHORD_UNSUPPORTED: &str = "ChordNotSupported";

impl Default for CeleryConfig {
    fn default() -> Self {
        let mut config = Self {
            queues: vec![DEFAULT_QUEUE.to_owned()],
            result_expires: Duration::from_secs(24 * 3600),
            key_prefix: String::new(),
            // The pid keeps apart several workers of one host in `celery inspect`.
            hostname: format!(
                "posts-worker.{}@{}",
                std::process::id(),
                crate::monitor::host_name()
            ),
            max_message_bytes: 2 * 1024 * 1024,
            track_started: false,
            aliases: BTreeMap::new(),
            exceptions: BTreeMap::new(),
        };
        for (kind, exc_type, module) in [
            (TaskError::INVALID_ARGUMENTS, "TypeError", Some("builtins")),
            (
                TaskError::UNKNOWN_TASK,
                "NotRegistered",
                Some("celery.exceptions"),
            ),
            (
                TaskError::TIME_LIMIT_EXCEEDED,
                "TimeLimitExceeded",
                Some("billiard.exceptions"),
            ),
            (EXPIRED, "TaskRevokedError", Some("celery.exceptions")),
            (CHORD_UNSUPPORTED, "NotImplementedError", Some("builtins")),
        ] {
            config = config.exception(kind, exc_type, module);
        }
        config
    }
}

impl CeleryConfig {
    /// Runs Celery task `celery_name` as the registered task `task` (checked before the
    /// last-segment rule).
    pub fn alias(mut self, celery_name: impl Into<String>, task: impl Into<String>) -> Self {
        self.aliases.insert(celery_name.into(), task.into());
        self
    }

    /// Stores failures of `kind` as the Python exception `exc_module.exc_type` (`None`: a
    /// class of that name that Celery creates when it reads the result). Use a builtin
    /// where the meaning fits, so Python callers can catch it: e.g. a bad argument value as
    /// `ValueError` in `builtins`.
    pub fn exception(
        mut self,
        kind: impl Into<String>,
        exc_type: impl Into<String>,
        exc_module: Option<&str>,
    ) -> Self {
        self.exceptions.insert(
            kind.into(),
            PythonException {
                exc_type: exc_type.into(),
                exc_module: exc_module.map(str::to_owned),
            },
        );
        self
    }

    /// The result key of `task_id`.
    pub(crate) fn result_key(&self, task_id: &str) -> String {
        let prefix = &self.key_prefix;
        if prefix.is_empty() {
            format!("celery-task-meta-{task_id}")
        } else if prefix.ends_with([':', '_', '-', '.']) {
            format!("{prefix}celery-task-meta-{task_id}")
        } else {
            format!("{prefix}_celery-task-meta-{task_id}")
        }
    }

    /// The Python exception failures of `kind` are stored as.
    pub(crate) fn python_exception(&self, kind: &str) -> PythonException {
        self.exceptions
            .get(kind)
            .cloned()
            .unwrap_or_else(|| PythonException {
                exc_type: kind.to_owned(),
                exc_module: None,
            })
    }

    pub(crate) fn aliased(&self, celery_name: &str) -> Option<&str> {
        self.aliases.get(celery_name).map(String::as_str)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.queues.is_empty() {
            Err("celery: at least one queue is needed".to_owned())
        } else if self.queues.iter().any(String::is_empty) {
            Err("celery: queue names must not be empty".to_owned())
        } else if self.result_expires < Duration::from_secs(1) {
            Err("celery: result_expires must be at least 1 s".to_owned())
        } else {
            Ok(())
        }
    }
}

/// What a job from a Celery message carries besides the native fields: enough to bind
/// its arguments, answer in Celery's format and continue its workflow. Travels inside the
/// job (e.g. through the delayed set) and inside its delivery tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CeleryContext {
    /// The task name as the client sent it.
    pub(crate) name: String,
    /// The positional arguments as sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) args: Vec<Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub(crate) kwargs: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) root_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parent_id: Option<String>,
    #[serde(default)]
    pub(crate) ignore_result: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) callbacks: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) errbacks: Vec<Value>,
    /// The rest of a chain, reversed: the next step is the last element.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) chain: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) chord: Option<Value>,
}

impl CeleryContext {
    /// The context of a message of which only the id could be read.
    pub(crate) fn unreadable() -> Self {
        Self {
            name: String::new(),
            args: Vec::new(),
            kwargs: Map::new(),
            root_id: None,
            parent_id: None,
            ignore_result: false,
            expires_ms: None,
            callbacks: Vec::new(),
            errbacks: Vec::new(),
            chain: Vec::new(),
            chord: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_keys_follow_celerys_global_keyprefix_rule() {
        let mut config = CeleryConfig::default();
        assert_eq!(config.result_key("x"), "celery-task-meta-x");
        config.key_prefix = "team".into();
        assert_eq!(config.result_key("x"), "team_celery-task-meta-x");
        config.key_prefix = "team:".into();
        assert_eq!(config.result_key("x"), "team:celery-task-meta-x");
    }

    #[test]
    fn failure_kinds_map_to_python_exceptions() {
        let config =
            CeleryConfig::default().exception("SqlError", "OperationalError", Some("sqlite3"));
        let sql = config.python_exception("SqlError");
        assert_eq!(
            (sql.exc_type.as_str(), sql.exc_module.as_deref()),
            ("OperationalError", Some("sqlite3"))
        );
        let args = config.python_exception(TaskError::INVALID_ARGUMENTS);
        assert_eq!(args.exc_type, "TypeError");
        let other = config.python_exception("Panic");
        assert_eq!((other.exc_type.as_str(), other.exc_module), ("Panic", None));
    }
}
