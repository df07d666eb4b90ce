//! The typed failure of the posts tasks and its `kind` strings on the queue.
//!
//! On one job's path there are three error types, each at its own layer:
//! [`ReadError`] (posts-store: what the database said), [`PostsTaskError`] (this crate:
//! what the task reports, including bad argument values) and `jobq::TaskError` (the
//! `kind` + message a client receives, built from a `PostsTaskError` by `From`).

use posts_store::read::ReadError;

/// Why a posts task failed. [`PostsTaskError::kind`] is the `kind` a client sees in the
/// job's failure; the message says what was wrong and, where it helps, what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostsTaskError {
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
    /// SQLite rejected or failed the caller's query; the message is SQLite's.
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

impl PostsTaskError {
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

    /// The failure of `query_posts_db`: the caller's SQL is the input there, so SQLite's
    /// complaints about it are the caller's [`PostsTaskError::Sql`], not a database fault.
    pub(crate) fn from_query(e: ReadError) -> Self {
        match e {
            ReadError::QueryRefused { reason } => Self::QueryRefused { reason },
            ReadError::ResultTooLarge { limit } => Self::ResultTooLarge { limit },
            ReadError::Sqlite(failure) => Self::Sql {
                message: failure.message().to_owned(),
            },
            other => other.into(),
        }
    }
}

impl From<ReadError> for PostsTaskError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Cancelled => Self::Cancelled,
            other => Self::Database(other),
        }
    }
}

impl From<PostsTaskError> for jobq::TaskError {
    fn from(e: PostsTaskError) -> Self {
        jobq::TaskError::new(e.kind(), e.to_string())
    }
}
