//! The posts table: the exact DDL of the seed pipeline, its indexes, WAL mode, and
//! detection of which of the two known schema variants an existing database has.

use rusqlite::Connection;

use crate::{SqliteContext, StoreError};

/// The posts table as the seed pipeline creates it (text ids). Timestamps are stored as
/// `YYYY-MM-DD HH:MM:SS` text so string comparisons order and filter by time.
pub const POSTS_TABLE_DDL: &str = "CREATE TABLE posts (id TEXT PRIMARY KEY, session_timestamp TIMESTAMP, session_user_id TEXT, platform TEXT, type TEXT, author_name_hash TEXT, created_at TIMESTAMP, post_blob TEXT)";

/// The later published variant of the posts table (integer ids, the item id in
/// `post_id`). Databases with it are read, never written, by this crate.
pub const PUBLISHED_POSTS_TABLE_DDL: &str = "CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT, post_id TEXT, session_timestamp TIMESTAMP, session_user_id TEXT, platform TEXT, type TEXT, author_name_hash TEXT, created_at TIMESTAMP, post_blob TEXT)";

/// The secondary indexes both variants get.
pub const POSTS_INDEXES_DDL: [&str; 3] = [
    "CREATE INDEX IF NOT EXISTS idx_posts_created_at ON posts (created_at)",
    "CREATE INDEX IF NOT EXISTS idx_posts_session_user_id ON posts (session_user_id)",
    "CREATE INDEX IF NOT EXISTS idx_posts_platform ON posts (platform)",
];

/// The two known shapes of the posts table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaVariant {
    /// `id TEXT PRIMARY KEY` holding the item id: [`POSTS_TABLE_DDL`].
    TextId,
    /// `id INTEGER PRIMARY KEY AUTOINCREMENT` plus `post_id`: [`PUBLISHED_POSTS_TABLE_DDL`].
    AutoIncrementId,
}

impl SchemaVariant {
    /// The `CREATE TABLE` statement of this variant.
    pub fn table_ddl(self) -> &'static str {
        match self {
            SchemaVariant::TextId => POSTS_TABLE_DDL,
            SchemaVariant::AutoIncrementId => PUBLISHED_POSTS_TABLE_DDL,
        }
    }
}

fn describe(conn: &Connection) -> String {
    conn.path()
        .filter(|p| !p.is_empty())
        .unwrap_or("an in-memory database")
        .to_owned()
}

/// Creates the posts table ([`SchemaVariant::TextId`]) with its indexes.
pub fn create_posts_table(conn: &Connection) -> Result<(), StoreError> {
    create_posts_table_variant(conn, SchemaVariant::TextId)
}

/// Creates the posts table in the given variant with its indexes; tests use this to
/// build databases as either pipeline would.
pub fn create_posts_table_variant(
    conn: &Connection,
    variant: SchemaVariant,
) -> Result<(), StoreError> {
    conn.execute_batch(variant.table_ddl())
        .doing(|| format!("creating the posts table in {}", describe(conn)))?;
    create_indexes(conn)
}

/// Creates the secondary indexes when missing. Bulk loads call this after inserting,
/// which is much faster than maintaining the indexes row by row.
pub fn create_indexes(conn: &Connection) -> Result<(), StoreError> {
    for ddl in POSTS_INDEXES_DDL {
        conn.execute_batch(ddl)
            .doing(|| format!("creating an index in {}", describe(conn)))?;
    }
    Ok(())
}

/// Switches the database to write-ahead logging, so readers are not blocked while a
/// loader writes. The setting is stored in the file.
pub fn enable_wal(conn: &Connection) -> Result<(), StoreError> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .doing(|| format!("enabling WAL in {}", describe(conn)))?;
    // In-memory databases answer "memory"; they have no readers to protect.
    if mode.eq_ignore_ascii_case("wal") || mode.eq_ignore_ascii_case("memory") {
        Ok(())
    } else {
        Err(StoreError::UnsupportedSchema {
            reason: format!(
                "{} refused WAL mode (journal mode is {mode})",
                describe(conn)
            ),
        })
    }
}

/// Whether the database has a posts table.
pub fn posts_table_exists(conn: &Connection) -> Result<bool, StoreError> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'posts'",
        [],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .doing(|| format!("looking for the posts table in {}", describe(conn)))
}

/// The columns of the posts table every reader needs.
pub(crate) const READER_COLUMNS: [&str; 3] = ["platform", "created_at", "post_blob"];

/// Tells which variant the posts table has: `None` when there is no posts table, an
/// error when it lacks a column the readers need (`platform`, `created_at`, `post_blob`)
/// or its `id` is neither text nor integer.
pub fn detect_variant(conn: &Connection) -> Result<Option<SchemaVariant>, StoreError> {
    let columns: Vec<(String, String)> = conn
        .prepare("SELECT name, type FROM pragma_table_info('posts')")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .doing(|| format!("reading the posts table's columns in {}", describe(conn)))?;
    if columns.is_empty() {
        return Ok(None);
    }
    let type_of = |name: &str| {
        columns
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(name))
            .map(|(_, t)| t.to_ascii_uppercase())
    };
    let missing: Vec<&str> = READER_COLUMNS
        .into_iter()
        .filter(|c| type_of(c).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::UnsupportedSchema {
            reason: format!("the posts table has no {} column", missing.join(", ")),
        });
    }
    match type_of("id").as_deref() {
        Some("TEXT") => Ok(Some(SchemaVariant::TextId)),
        Some("INTEGER") => Ok(Some(SchemaVariant::AutoIncrementId)),
        Some(other) => Err(StoreError::UnsupportedSchema {
            reason: format!(
                "the posts table's id column has type {other:?}, expected TEXT or INTEGER"
            ),
        }),
        None => Err(StoreError::UnsupportedSchema {
            reason: "the posts table has no id column".to_owned(),
        }),
    }
}
