//! The typed failures of the posts tasks and their `kind` strings on the queue.

use posts_store::read::ReadError;

/// Why a posts task failed. [`TasksError::kind`] is the `kind` a client sees in the job's
/// failure; the message says what was wrong and, where it helps, what to do.
#[derive(Debug, thiserror::Error)]
pub enum TasksError {
    /// An argument has the right type but a bad value.
    #[error("argument {argument:?}: {reason}")]
    InvalidArgument {
        /// The argument's name as the task declares it (`from_`, `k`, ...).
        argument: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `query_posts_db` refused the SQL without running it: not a single read-only query.
    #[error("query refused: {reason}")]
    QueryRefused {
        /// Which rule the query broke.
        reason: String,
    },
    /// SQLite rejected or failed the query; the message is SQLite's.
    #[error("{message}")]
    Sql {
        /// SQLite's message, e.g. `no such table: bar`.
        message: String,
    },
    /// The result would exceed the size cap.
    #[error(
        "the result is larger than {limit} bytes; narrow the query (fewer columns, a WHERE \
         clause or a LIMIT)"
    )]
    ResultTooLarge {
        /// The cap, in bytes of JSON.
        limit: usize,
    },
    /// The run was cancelled (its time limit fired) and stopped early.
    #[error("the task was cancelled before it finished")]
    Cancelled,
    /// The posts database could not be read.
    #[error(transparent)]
    Database(ReadError),
}

impl TasksError {
    /// The machine-readable failure kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidArgument { .. } => "InvalidArgument",
            Self::QueryRefused { .. } => "QueryRefused",
            Self::Sql { .. } => "SqlError",
            Self::ResultTooLarge { .. } => jobq::TaskError::RESULT_TOO_LARGE,
            Self::Cancelled => "Cancelled",
            Self::Database(_) => "DatabaseError",
        }
    }

    pub(crate) fn invalid(argument: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            argument,
            reason: reason.into(),
        }
    }
}

impl From<ReadError> for TasksError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Sql(e) if is_interrupt(&e) => Self::Cancelled,
            other => Self::Database(other),
        }
    }
}

impl From<TasksError> for jobq::TaskError {
    fn from(e: TasksError) -> Self {
        jobq::TaskError::new(e.kind(), e.to_string())
    }
}

/// Whether SQLite stopped because `sqlite3_interrupt` was called.
pub(crate) fn is_interrupt(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}

/// SQLite's own message for an error, without rusqlite's decorations.
pub(crate) fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}
