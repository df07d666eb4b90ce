//! Errors of the read side: posts-store's own types, so callers never see `rusqlite` or
//! `r2d2`, while SQLite's message and result code stay available for display.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What SQLite (or the SQLite binding) reported, kept as text and code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteFailure {
    message: String,
    code: Option<i32>,
}

impl SqliteFailure {
    /// SQLite's own message, e.g. `no such table: bar`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// SQLite's extended result code (see <https://sqlite.org/rescode.html>), when the
    /// failure came from SQLite itself rather than from decoding a value.
    pub fn code(&self) -> Option<i32> {
        self.code
    }

    /// Takes SQLite's message without the binding's decorations.
    pub(crate) fn from_rusqlite(e: &rusqlite::Error) -> Self {
        let code = e.sqlite_error().map(|failure| failure.extended_code);
        let message = match e {
            rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
            rusqlite::Error::SqliteFailure(failure, None) => failure.to_string(),
            rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
            other => other.to_string(),
        };
        Self { message, code }
    }
}

impl fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{} (SQLite code {code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SqliteFailure {}

/// Why a read-side operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The database file does not exist; the read path never creates one.
    #[error("posts database {} does not exist (seed it first, e.g. `cargo xtask seed`)", path.display())]
    MissingDatabase {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// The file exists but SQLite cannot use it as a database.
    #[error("cannot open {} as an SQLite database: {source}", path.display())]
    Open {
        /// The path that was asked for.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: SqliteFailure,
    },
    /// The database has no `posts` table, or it lacks a column the readers need.
    #[error("the posts database has no usable posts table: {reason}")]
    Schema {
        /// What is missing.
        reason: String,
    },
    /// No pooled connection freed up within the checkout timeout (or opening one failed).
    #[error("no read connection became available within {waited:?}: {reason}")]
    NoConnection {
        /// The checkout timeout that ran out.
        waited: Duration,
        /// The pool's explanation, e.g. the last error opening a connection.
        reason: String,
    },
    /// A stored value is not valid UTF-8 text where text is required.
    #[error("row {rowid}: column {column} is not valid UTF-8 text")]
    InvalidText {
        /// The row's rowid.
        rowid: i64,
        /// The column holding the bad value.
        column: &'static str,
    },
    /// A query was refused without running it: not a single read-only statement that
    /// returns rows.
    #[error("query refused: {reason}")]
    QueryRefused {
        /// Which rule the query broke.
        reason: String,
    },
    /// A query's rows would exceed the caller's byte cap.
    #[error(
        "the result is larger than {limit} bytes; narrow the query (fewer columns, a WHERE \
         clause or a LIMIT)"
    )]
    ResultTooLarge {
        /// The cap, in bytes of JSON.
        limit: usize,
    },
    /// The operation's [`CancelToken`](super::CancelToken) was cancelled; it stopped early.
    #[error("cancelled before it finished")]
    Cancelled,
    /// SQLite rejected or failed a statement.
    #[error("SQLite error: {0}")]
    Sqlite(SqliteFailure),
}

impl ReadError {
    /// A SQLite error; an interrupt means a [`CancelToken`](super::CancelToken) fired,
    /// since nothing else interrupts read connections.
    pub(crate) fn sqlite(e: &rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
            Self::Cancelled
        } else {
            Self::Sqlite(SqliteFailure::from_rusqlite(e))
        }
    }
}

/// `?` on rusqlite results inside the read side.
pub(crate) trait OrReadError<T> {
    fn or_read_error(self) -> Result<T, ReadError>;
}

impl<T> OrReadError<T> for Result<T, rusqlite::Error> {
    fn or_read_error(self) -> Result<T, ReadError> {
        self.map_err(|e| ReadError::sqlite(&e))
    }
}
