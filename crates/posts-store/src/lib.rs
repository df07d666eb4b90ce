//! The SQLite posts database: schema, the bulk writer, and the read-only operations the
//! tasks run (parallel scans and untrusted queries). This crate owns everything SQLite:
//! no SQLite or pool type appears in its read-side API.
//!
//! - [`schema`]: the posts table as the seed pipeline defines it, and detection of the
//!   later published variant;
//! - [`write`](mod@write): the batched, prepared-statement writer loaders use (the
//!   loaders themselves, raw files, synthetic data and user pools, are the `posts-seed`
//!   crate);
//! - [`read`]: the read-only pool, parallel folds over a `created_at` range, read-only
//!   queries into JSON rows, and their cancellation.

pub mod read;
pub mod schema;
pub mod write;

use std::path::PathBuf;

/// Where the posts database is unless configured otherwise, relative to the workspace
/// root: the worker's `--db` default and the target of the default seed.
pub const DEFAULT_DB_PATH: &str = "sample_data/sample_posts.db";

/// Errors of the schema and write paths.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("SQLite error while {action}: {source}")]
    Sqlite {
        /// What was being done, e.g. `creating the posts table in sample.db`.
        action: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The posts table exists and the caller asked neither to upsert nor to drop it.
    #[error(
        "{path}: the posts table already exists; nothing was written (use --upsert to insert or replace by id, or --drop-table to rebuild it)"
    )]
    TableExists {
        /// The database file.
        path: PathBuf,
    },
    /// The database has a posts table this code cannot use.
    #[error("unsupported posts table: {reason}")]
    UnsupportedSchema {
        /// Why it cannot be used.
        reason: String,
    },
    /// The directory for a new database could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Adds the action being performed to a SQLite error.
pub(crate) trait SqliteContext<T> {
    fn doing(self, action: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> SqliteContext<T> for Result<T, rusqlite::Error> {
    fn doing(self, action: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite {
            action: action(),
            source,
        })
    }
}
