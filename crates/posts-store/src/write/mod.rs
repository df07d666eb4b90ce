//! The bulk writer every loader uses: rows are buffered and inserted in batches through
//! one prepared statement per batch, in create, upsert or drop-table mode. Bulk
//! generators hand over borrowed rows ([`PostRowRef`]) so they need not allocate per row.

use std::path::{Path, PathBuf};

use posts_model::{ContentItem, ContentType, Platform, Timestamp};
use rusqlite::{Connection, OpenFlags, Statement, params_from_iter};

use crate::schema::{self, SchemaVariant};
use crate::{SqliteContext, StoreError};

/// What to do about an existing posts table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Create the table; fail, writing nothing, if it exists.
    #[default]
    Create,
    /// Insert, replacing rows with the same id; create the table when missing.
    Upsert,
    /// Drop the table (if any) and create it afresh.
    DropTable,
}

/// When the writer commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// One transaction for the whole load: dropping the writer without
    /// [`PostsWriter::finish`] (or a failure) leaves the database as it was.
    AllOrNothing,
    /// Commit after every batch, keeping the write-ahead log small on huge loads.
    EveryBatch,
    /// For a new (empty or missing) file only: no journal and one transaction until
    /// [`PostsWriter::finish`], so every page is written once, straight from the page
    /// cache, instead of to a log and again to the file; the file also gets larger
    /// pages. For loads that are rerun rather than rolled back (synthetic benchmark
    /// DBs): a crash or error mid-load can leave the file unusable. On an existing file,
    /// which readers may have open, this acts as [`Commit::EveryBatch`].
    Unjournaled,
}

/// One row of the posts table ([`SchemaVariant::TextId`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRow {
    /// Item id (primary key).
    pub id: String,
    /// When the session that showed the item happened, `YYYY-MM-DD HH:MM:SS`.
    pub session_timestamp: String,
    /// The session user's id.
    pub session_user_id: String,
    /// The item's platform.
    pub platform: Platform,
    /// Post or comment.
    pub content_type: ContentType,
    /// Hash of the item author's name.
    pub author_name_hash: String,
    /// When the item was created, `YYYY-MM-DD HH:MM:SS`.
    pub created_at: String,
    /// The item as JSON.
    pub post_blob: String,
}

/// A row borrowed from wherever the loader keeps its data: what
/// [`PostsWriter::write_rows`] inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostRowRef<'a> {
    /// Item id (primary key).
    pub id: &'a str,
    /// When the session that showed the item happened, `YYYY-MM-DD HH:MM:SS`.
    pub session_timestamp: &'a str,
    /// The session user's id.
    pub session_user_id: &'a str,
    /// The item's platform.
    pub platform: Platform,
    /// Post or comment.
    pub content_type: ContentType,
    /// Hash of the item author's name.
    pub author_name_hash: &'a str,
    /// When the item was created, `YYYY-MM-DD HH:MM:SS`.
    pub created_at: &'a str,
    /// The item as JSON.
    pub post_blob: &'a str,
}

impl PostRow {
    /// The row as a [`PostRowRef`].
    pub fn borrowed(&self) -> PostRowRef<'_> {
        PostRowRef {
            id: &self.id,
            session_timestamp: &self.session_timestamp,
            session_user_id: &self.session_user_id,
            platform: self.platform,
            content_type: self.content_type,
            author_name_hash: &self.author_name_hash,
            created_at: &self.created_at,
            post_blob: &self.post_blob,
        }
    }

    /// The row for `item`, shown to `session_user_id` in a session at `session_time`.
    pub fn from_item(item: &ContentItem, session_user_id: &str, session_time: Timestamp) -> Self {
        PostRow {
            id: item.id.clone(),
            session_timestamp: session_time.to_db_string(),
            session_user_id: session_user_id.to_owned(),
            platform: item.platform(),
            content_type: item.content_type,
            author_name_hash: item.author_name_hash.clone(),
            created_at: item.created_at.to_db_string(),
            post_blob: item.to_json(),
        }
    }
}

/// Rows per insert batch unless configured otherwise.
pub const DEFAULT_BATCH_ROWS: usize = 20_000;

/// SQLite page cache of a loading connection, in KiB.
const LOAD_CACHE_KIB: u32 = 64 * 1024;

/// SQLite page cache while the indexes are built, in KiB. An index build cuts the
/// table's keys into runs of about this size, which SQLite's worker threads sort while
/// the calling thread goes on scanning, and then merges the runs. Small runs put most
/// of the sorting on the second core and keep it within the CPU caches: with runs the
/// size of the load cache, building the three indexes of a million rows took longer
/// than inserting the rows. The index pages a build writes are appended in order and
/// need no cache.
const INDEX_BUILD_CACHE_KIB: u32 = 4 * 1024;

/// Buffers rows and writes them to the posts table in batches.
pub struct PostsWriter {
    conn: Connection,
    path: PathBuf,
    upsert: bool,
    commit: Commit,
    batch_rows: usize,
    buffer: Vec<PostRow>,
    written: u64,
}

impl PostsWriter {
    /// Opens (creating when missing) the database at `path` in WAL mode and prepares the
    /// posts table as `mode` says. With [`WriteMode::Create`] and an existing table this
    /// fails with [`StoreError::TableExists`] and changes nothing.
    pub fn open(path: &Path, mode: WriteMode, commit: Commit) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let shown = path.display().to_string();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).doing(|| format!("opening {shown}"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .doing(|| format!("setting the busy timeout of {shown}"))?;
        let commit = if commit == Commit::Unjournaled {
            turn_journal_off(&conn, &shown)?
        } else {
            schema::enable_wal(&conn)?;
            commit
        };
        // A crash mid-seed leaves a half-built DB to rebuild anyway, so the load skips
        // fsyncs; the settings last only for this connection. The cache only needs the
        // pages inserts touch (the ends of the table and of the id index, which grow in
        // order): a larger one merely holds the whole table in this process — a million
        // rows are about 1 GB — where the OS page cache already keeps it for the index
        // builds. Index sorts may use a second core; they only do so while temporary
        // files stay on disk (SQLite sorts on the calling thread alone under
        // `temp_store=MEMORY`), so that setting keeps its default.
        conn.execute_batch(&format!(
            "PRAGMA synchronous=OFF; PRAGMA cache_size=-{LOAD_CACHE_KIB}; PRAGMA threads=2;",
        ))
        .doing(|| format!("configuring {shown} for loading"))?;
        conn.execute_batch("BEGIN IMMEDIATE")
            .doing(|| format!("starting a write transaction on {shown}"))?;

        let existing = schema::detect_variant(&conn)?;
        match (mode, existing) {
            (WriteMode::Create, Some(_)) => {
                return Err(StoreError::TableExists {
                    path: path.to_owned(),
                });
            }
            (WriteMode::Upsert, Some(SchemaVariant::AutoIncrementId)) => {
                return Err(StoreError::UnsupportedSchema {
                    reason: format!(
                        "{shown} has the published integer-id posts table; loads write the text-id table (use --drop-table to rebuild it)"
                    ),
                });
            }
            (WriteMode::Upsert, Some(SchemaVariant::TextId)) => {}
            (WriteMode::DropTable, Some(_)) => {
                conn.execute_batch("DROP TABLE posts")
                    .doing(|| format!("dropping the posts table of {shown}"))?;
                create_bare_table(&conn, &shown)?;
            }
            (_, None) => create_bare_table(&conn, &shown)?,
        }
        Ok(PostsWriter {
            conn,
            path: path.to_owned(),
            upsert: mode == WriteMode::Upsert,
            commit,
            batch_rows: DEFAULT_BATCH_ROWS,
            buffer: Vec::with_capacity(DEFAULT_BATCH_ROWS),
            written: 0,
        })
    }

    /// Sets the number of rows per insert batch (at least 1).
    pub fn with_batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.max(1);
        self
    }

    /// The database file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows accepted so far, including those still buffered.
    pub fn rows(&self) -> u64 {
        self.written + self.buffer.len() as u64
    }

    /// Adds a row, writing a batch when the buffer is full.
    pub fn push(&mut self, row: PostRow) -> Result<(), StoreError> {
        self.buffer.push(row);
        if self.buffer.len() >= self.batch_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffered rows.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let written = insert_rows(
            &self.conn,
            &self.path,
            self.upsert,
            self.buffer.iter().map(PostRow::borrowed),
        )?;
        self.buffer.clear();
        self.batch_written(written)
    }

    /// Writes `rows` as one batch, after any buffered rows; for loaders that keep their
    /// rows in their own buffers.
    pub fn write_rows<'r>(
        &mut self,
        rows: impl IntoIterator<Item = PostRowRef<'r>>,
    ) -> Result<(), StoreError> {
        self.flush()?;
        let written = insert_rows(&self.conn, &self.path, self.upsert, rows)?;
        self.batch_written(written)
    }

    fn batch_written(&mut self, rows: u64) -> Result<(), StoreError> {
        self.written += rows;
        if self.commit == Commit::EveryBatch {
            self.conn
                .execute_batch("COMMIT; BEGIN IMMEDIATE")
                .doing(|| format!("committing a batch to {}", self.path.display()))?;
        }
        Ok(())
    }

    /// Writes what is buffered, builds the indexes and commits; returns the number of
    /// rows written.
    ///
    /// The finished database is left in rollback-journal mode, one self-contained file:
    /// SQLite cannot open a WAL database read-only from a read-only directory (a Docker
    /// `:ro` volume) because it needs to create the `-shm` file next to it. When other
    /// connections have the file open in WAL mode the switch is impossible; the database
    /// then stays in WAL mode, which they can keep reading.
    pub fn finish(mut self) -> Result<u64, StoreError> {
        self.flush()?;
        let shown = self.path.display().to_string();
        self.conn
            .execute_batch(&format!("PRAGMA cache_size=-{INDEX_BUILD_CACHE_KIB}"))
            .doing(|| format!("configuring {shown} for building the indexes"))?;
        schema::create_indexes(&self.conn)?;
        self.conn
            .execute_batch("COMMIT")
            .doing(|| format!("committing to {shown}"))?;
        // The rows are in; waiting for readers to leave would only delay the caller.
        self.conn
            .busy_timeout(std::time::Duration::ZERO)
            .doing(|| format!("setting the busy timeout of {shown}"))?;
        match self
            .conn
            .query_row("PRAGMA journal_mode=DELETE", [], |row| {
                row.get::<_, String>(0)
            }) {
            Ok(mode) if mode.eq_ignore_ascii_case("delete") => {}
            Ok(mode) => {
                tracing::info!(db = %shown, %mode, "other connections have the database open; it stays in this journal mode");
            }
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                tracing::info!(db = %shown, "other connections have the database open; it stays in WAL mode");
            }
            Err(source) => {
                return Err(StoreError::Sqlite {
                    action: format!("switching {shown} to rollback-journal mode"),
                    source,
                });
            }
        }
        Ok(self.written)
    }
}

/// Inserts `rows`, [`ROWS_PER_INSERT`] per statement; returns how many there were.
fn insert_rows<'r>(
    conn: &Connection,
    path: &Path,
    upsert: bool,
    rows: impl IntoIterator<Item = PostRowRef<'r>>,
) -> Result<u64, StoreError> {
    let prepare = |rows: usize| {
        conn.prepare_cached(&insert_sql(upsert, rows))
            .doing(|| format!("preparing the insert into {}", path.display()))
    };
    let mut full = prepare(ROWS_PER_INSERT)?;
    let mut group = Vec::with_capacity(ROWS_PER_INSERT);
    let mut written = 0;
    for row in rows {
        group.push(row);
        if group.len() == ROWS_PER_INSERT {
            insert_group(&mut full, &group, path)?;
            written += group.len() as u64;
            group.clear();
        }
    }
    if !group.is_empty() {
        let mut tail = prepare(group.len())?;
        insert_group(&mut tail, &group, path)?;
        written += group.len() as u64;
    }
    Ok(written)
}

/// Rows per `INSERT` statement. What SQLite does once per statement (binding, opening
/// cursors on the table and the primary-key index, which then stay where the last row
/// went) is shared by the rows: 8 rows a statement cut the writer's time per row by
/// about a quarter on synthetic loads; longer statements gained nothing more.
const ROWS_PER_INSERT: usize = 8;

/// `INSERT` (or, to upsert, `INSERT OR REPLACE`) of `rows` rows.
fn insert_sql(upsert: bool, rows: usize) -> String {
    let verb = if upsert {
        "INSERT OR REPLACE"
    } else {
        "INSERT"
    };
    let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; rows].join(", ");
    format!(
        "{verb} INTO posts (id, session_timestamp, session_user_id, platform, type, author_name_hash, created_at, post_blob) VALUES {values}"
    )
}

/// Runs `stmt`, an insert of exactly `group.len()` rows, on `group`.
fn insert_group(
    stmt: &mut Statement<'_>,
    group: &[PostRowRef<'_>],
    path: &Path,
) -> Result<(), StoreError> {
    let values = group.iter().flat_map(|row| {
        [
            row.id,
            row.session_timestamp,
            row.session_user_id,
            row.platform.as_str(),
            row.content_type.as_str(),
            row.author_name_hash,
            row.created_at,
            row.post_blob,
        ]
    });
    stmt.execute(params_from_iter(values)).doing(|| {
        let ids: Vec<&str> = group.iter().map(|row| row.id).collect();
        format!("inserting posts {ids:?} into {}", path.display())
    })?;
    Ok(())
}

/// Prepares an unjournaled load ([`Commit::Unjournaled`]) and says how the writer must
/// commit: once at the end when the journal is off, every batch when SQLite kept WAL.
fn turn_journal_off(conn: &Connection, shown: &str) -> Result<Commit, StoreError> {
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |row| row.get(0))
        .doing(|| format!("reading the size of {shown}"))?;
    if pages > 0 {
        // Readers may have an existing file open: without a journal they would see
        // half-written pages.
        schema::enable_wal(conn)?;
        return Ok(Commit::EveryBatch);
    }
    // Only a new file can take another page size. Larger pages hold more ~700-byte rows
    // each, so inserting splits and writes fewer pages.
    conn.execute_batch("PRAGMA page_size=16384")
        .doing(|| format!("setting the page size of {shown}"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=OFF", [], |row| row.get(0))
        .doing(|| format!("turning the journal of {shown} off"))?;
    if mode.eq_ignore_ascii_case("off") {
        Ok(Commit::Unjournaled)
    } else {
        schema::enable_wal(conn)?;
        Ok(Commit::EveryBatch)
    }
}

/// The table without secondary indexes: they are built once the rows are in.
fn create_bare_table(conn: &Connection, shown: &str) -> Result<(), StoreError> {
    conn.execute_batch(schema::POSTS_TABLE_DDL)
        .doing(|| format!("creating the posts table in {shown}"))
}
