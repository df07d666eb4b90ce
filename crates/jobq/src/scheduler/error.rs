//! Why a schedule definition, schedule file or schedule store operation failed.

use std::io;
use std::path::PathBuf;

/// Errors of the scheduler. Definition errors name the schedule and the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The schedule file could not be read.
    #[error("cannot read schedule file {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The schedule file is not valid TOML of `[[schedule]]` tables.
    #[error("invalid schedule file{}: {message}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Toml {
        /// The file, when the TOML came from one.
        path: Option<PathBuf>,
        /// The parser's message (it names the line and key).
        message: String,
    },
    /// A field of a schedule has a bad value.
    #[error("schedule {schedule:?}: invalid `{field}`: {reason}")]
    InvalidField {
        /// The schedule's name (empty when the name itself is missing).
        schedule: String,
        /// The field: `name`, `task`, `args`, `every`, `cron`, `queue` or `catch_up`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A cron expression does not parse.
    #[error("schedule {schedule:?}: invalid cron expression {expression:?}: {}{reason}", field.map(|f| format!("{f} field: ")).unwrap_or_default())]
    InvalidCron {
        /// The schedule's name.
        schedule: String,
        /// The expression as written.
        expression: String,
        /// The cron field at fault (`seconds`, `minutes`, `hours`, `day of month`, `month`,
        /// `day of week`), when one field alone is wrong.
        field: Option<&'static str>,
        /// What is wrong.
        reason: String,
    },
    /// Two schedules share a name.
    #[error("schedule name {0:?} is used twice")]
    DuplicateName(String),
    /// The broker or the schedule store failed.
    #[error(transparent)]
    Broker(#[from] crate::Error),
    /// A stored schedule does not decode (written by an incompatible version?).
    #[error("stored schedule {name:?} is corrupt: {reason}")]
    Corrupt {
        /// The schedule's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}
