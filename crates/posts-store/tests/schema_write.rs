//! The posts table DDL, schema-variant detection and the writer's create, upsert and
//! drop-table modes, on real SQLite files.

use posts_model::{ContentType, Platform};
use posts_store::StoreError;
use posts_store::schema::{
    self, POSTS_TABLE_DDL, PUBLISHED_POSTS_TABLE_DDL, SchemaVariant, detect_variant,
};
use posts_store::write::{Commit, PostRow, PostsWriter, WriteMode};
use rusqlite::Connection;

fn row(id: &str, blob: &str) -> PostRow {
    PostRow {
        id: id.to_owned(),
        session_timestamp: "2024-01-01 00:00:00".to_owned(),
        session_user_id: "u".to_owned(),
        platform: Platform::Reddit,
        content_type: ContentType::Post,
        author_name_hash: "a".to_owned(),
        created_at: "2017-05-31 15:59:28".to_owned(),
        post_blob: blob.to_owned(),
    }
}

fn open(path: &std::path::Path) -> Connection {
    Connection::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn blobs(path: &std::path::Path) -> Vec<(String, String)> {
    let conn = open(path);
    let mut stmt = conn
        .prepare("SELECT id, post_blob FROM posts ORDER BY id")
        .unwrap_or_else(|e| panic!("{e}"));
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn write(
    path: &std::path::Path,
    mode: WriteMode,
    rows: &[(&str, &str)],
) -> Result<u64, StoreError> {
    let mut writer = PostsWriter::open(path, mode, Commit::AllOrNothing)?.with_batch_rows(2);
    for (id, blob) in rows {
        writer.push(row(id, blob))?;
    }
    writer.finish()
}

#[test]
fn writer_creates_the_exact_table_indexes_and_wal() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("nested/dir/posts.db");
    assert_eq!(
        write(
            &path,
            WriteMode::Create,
            &[("a", "{}"), ("b", "{}"), ("c", "{}")]
        )
        .ok(),
        Some(3)
    );
    let conn = open(&path);
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'posts'",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sql, POSTS_TABLE_DDL);
    let indexed: Vec<String> = conn
        .prepare("SELECT name FROM pragma_index_list('posts') WHERE origin = 'c' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        indexed,
        [
            "idx_posts_created_at",
            "idx_posts_platform",
            "idx_posts_session_user_id"
        ]
    );
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mode, "wal");
    assert_eq!(
        detect_variant(&conn).ok(),
        Some(Some(SchemaVariant::TextId))
    );
}

#[test]
fn existing_table_without_a_flag_is_an_error_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("posts.db");
    assert!(write(&path, WriteMode::Create, &[("a", "one")]).is_ok());
    let err = write(&path, WriteMode::Create, &[("b", "two")]);
    assert!(
        matches!(err, Err(StoreError::TableExists { .. })),
        "{err:?}"
    );
    assert!(
        err.err()
            .map(|e| e.to_string())
            .is_some_and(|m| m.contains("--upsert"))
    );
    assert_eq!(blobs(&path), [("a".to_owned(), "one".to_owned())]);
}

#[test]
fn upsert_replaces_by_id_and_adds_new_rows() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("posts.db");
    assert!(write(&path, WriteMode::Create, &[("a", "one"), ("b", "two")]).is_ok());
    assert!(write(&path, WriteMode::Upsert, &[("b", "TWO"), ("c", "three")]).is_ok());
    let expected: Vec<(String, String)> = [("a", "one"), ("b", "TWO"), ("c", "three")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(blobs(&path), expected);
}

#[test]
fn drop_table_starts_afresh() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("posts.db");
    assert!(write(&path, WriteMode::Create, &[("a", "one"), ("b", "two")]).is_ok());
    assert!(write(&path, WriteMode::DropTable, &[("z", "last")]).is_ok());
    assert_eq!(blobs(&path), [("z".to_owned(), "last".to_owned())]);
}

#[test]
fn an_unfinished_writer_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("posts.db");
    {
        let mut writer = PostsWriter::open(&path, WriteMode::Create, Commit::AllOrNothing)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_batch_rows(1);
        for id in ["a", "b", "c"] {
            writer.push(row(id, "x")).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert_eq!(detect_variant(&open(&path)).ok(), Some(None));
}

#[test]
fn duplicate_ids_in_create_mode_fail_and_roll_back() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("posts.db");
    let err = write(&path, WriteMode::Create, &[("a", "1"), ("a", "2")]);
    assert!(matches!(err, Err(StoreError::Sqlite { .. })), "{err:?}");
    assert_eq!(detect_variant(&open(&path)).ok(), Some(None));
}

#[test]
fn both_schema_variants_are_detected() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let text = open(&dir.path().join("text.db"));
    let published = open(&dir.path().join("published.db"));
    assert_eq!(detect_variant(&text).ok(), Some(None));
    assert!(schema::create_posts_table(&text).is_ok());
    assert!(schema::create_posts_table_variant(&published, SchemaVariant::AutoIncrementId).is_ok());
    assert_eq!(
        detect_variant(&text).ok(),
        Some(Some(SchemaVariant::TextId))
    );
    assert_eq!(
        detect_variant(&published).ok(),
        Some(Some(SchemaVariant::AutoIncrementId))
    );
    let sql: Result<String, _> = published.query_row(
        "SELECT sql FROM sqlite_master WHERE name = 'posts'",
        [],
        |r| r.get(0),
    );
    assert_eq!(sql.ok().as_deref(), Some(PUBLISHED_POSTS_TABLE_DDL));
}

#[test]
fn tables_the_readers_cannot_use_are_rejected() {
    let conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
    conn.execute_batch(
        "CREATE TABLE posts (id TEXT PRIMARY KEY, platform TEXT, created_at TIMESTAMP)",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = detect_variant(&conn);
    assert!(
        matches!(&err, Err(StoreError::UnsupportedSchema { reason }) if reason.contains("post_blob")),
        "{err:?}"
    );
}

#[test]
fn upsert_into_the_published_variant_is_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("published.db");
    assert!(
        schema::create_posts_table_variant(&open(&path), SchemaVariant::AutoIncrementId).is_ok()
    );
    let err = write(&path, WriteMode::Upsert, &[("a", "x")]);
    assert!(
        matches!(err, Err(StoreError::UnsupportedSchema { .. })),
        "{err:?}"
    );
}
