//! The pool of read-only connections every reader borrows from.

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2::ManageConnection;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};

use super::error::{ReadError, SqliteFailure};
use super::guard;

/// A connection borrowed from a [`ReadPool`]; it goes back to the pool when dropped.
pub(crate) type ReadConnection = r2d2::PooledConnection<SqliteConnectionManager>;

/// Settings of a [`ReadPool`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReadPoolOptions {
    /// Most connections open at once; parallel scans use one per part in flight.
    pub max_size: u32,
    /// How long a reader waits on a lock held by a writer (WAL makes this rare).
    pub busy_timeout: Duration,
    /// How long an operation waits for a free connection before failing with
    /// [`ReadError::NoConnection`].
    pub checkout_timeout: Duration,
}

impl Default for ReadPoolOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            // One per core for parallel scans, plus room for concurrent small queries.
            max_size: u32::try_from(cores).unwrap_or(u32::MAX).saturating_add(4),
            busy_timeout: Duration::from_secs(5),
            checkout_timeout: Duration::from_secs(30),
        }
    }
}

/// A pool of read-only connections to one posts database.
///
/// Connections are opened with `SQLITE_OPEN_READ_ONLY`, run `PRAGMA query_only = ON`, and
/// carry an authorizer that refuses anything but reading, so SQL from untrusted callers
/// cannot change the database or the connection. Cloning is cheap and shares the pool.
#[derive(Clone, Debug)]
pub struct ReadPool {
    pool: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
}

impl ReadPool {
    /// Opens a pool on the database at `path` with default options.
    ///
    /// # Errors
    /// [`ReadError::MissingDatabase`] when the file does not exist, [`ReadError::Open`] when
    /// it is not a database SQLite can read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        Self::open_with(path, ReadPoolOptions::default())
    }

    /// Opens a pool on the database at `path`.
    ///
    /// # Errors
    /// As [`ReadPool::open`].
    pub fn open_with(path: impl AsRef<Path>, options: ReadPoolOptions) -> Result<Self, ReadError> {
        let path = path.as_ref().to_path_buf();
        // Checked up front: SQLite's own message for a missing file on a read-only open is
        // the unhelpful "unable to open database file".
        if !path.is_file() {
            return Err(ReadError::MissingDatabase { path });
        }
        let busy_timeout = options.busy_timeout;
        let manager = SqliteConnectionManager::file(&path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(move |conn| {
                conn.busy_timeout(busy_timeout)?;
                guard::harden(conn)
            });
        // One connection opened eagerly so a bad file is reported now, with SQLite's reason,
        // instead of as a pool timeout on first use.
        let open_error = |e: rusqlite::Error| ReadError::Open {
            path: path.clone(),
            source: SqliteFailure::from_rusqlite(&e),
        };
        let first = manager.connect().map_err(open_error)?;
        probe(&first).map_err(open_error)?;
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(options.max_size.max(1))
            .min_idle(Some(0))
            .connection_timeout(options.checkout_timeout)
            .build_unchecked(manager);
        Ok(Self { pool, path })
    }

    /// Borrows a read-only connection.
    ///
    /// # Errors
    /// [`ReadError::NoConnection`] when none frees up within the checkout timeout.
    pub(crate) fn get(&self) -> Result<ReadConnection, ReadError> {
        self.pool.get().map_err(|e| ReadError::NoConnection {
            waited: self.pool.connection_timeout(),
            reason: e.to_string(),
        })
    }

    /// The database file this pool reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The most connections this pool opens at once.
    pub fn max_size(&self) -> u32 {
        self.pool.max_size()
    }
}

/// Reads the schema once: fails on files that are not SQLite databases.
fn probe(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
        row.get::<_, i64>(0)
    })?;
    Ok(())
}
