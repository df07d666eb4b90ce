//! Errors of the read side.

use std::path::PathBuf;

/// Why a read-side operation failed.
#[derive(Debug, thiserror::Error)]
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
        source: rusqlite::Error,
    },
    /// The database has no `posts` table, or it lacks a column the readers need.
    #[error("the posts database has no usable posts table: {reason}")]
    Schema {
        /// What is missing.
        reason: String,
    },
    /// No pooled connection could be obtained (all busy past the timeout, or opening failed).
    #[error("no read connection available: {0}")]
    Pool(#[from] r2d2::Error),
    /// A stored value is not valid UTF-8 text where text is required.
    #[error("row {rowid}: column {column} is not valid UTF-8 text")]
    InvalidText {
        /// The row's rowid.
        rowid: i64,
        /// The column holding the bad value.
        column: &'static str,
    },
    /// SQLite reported an error while querying.
    #[error("SQLite error: {0}")]
    Sql(#[from] rusqlite::Error),
}
