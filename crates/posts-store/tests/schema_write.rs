//! The posts table as the README documents it (columns, types, order, indexes),
//! schema-variant detection and the writer's create, upsert and drop-table modes, on
//! real SQLite files.

use posts_model::{ContentType, Platform};
use posts_store::StoreError;
use posts_store::schema::{self, PUBLISHED_POSTS_TABLE_DDL, SchemaVariant, detect_variant};
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

/// The posts table as the README documents it and every existing database has it:
/// (name, declared type, primary key) in column order. Written out here rather than
/// derived from the DDL constant, so a change to the constant fails this test.
const README_COLUMNS: [(&str, &str, bool); 8] = [
    ("id", "TEXT", true),
    ("session_timestamp", "TIMESTAMP", false),
    ("session_user_id", "TEXT", false),
    ("platform", "TEXT", false),
    ("type", "TEXT", false),
    ("author_name_hash", "TEXT", false),
    ("created_at", "TIMESTAMP", false),
    ("post_blob", "TEXT", false),
];

/// The later published variant: an integer row id and the item id in `post_id`.
const PUBLISHED_COLUMNS: [(&str, &str, bool); 9] = [
    ("id", "INTEGER", true),
    ("post_id", "TEXT", false),
    ("session_timestamp", "TIMESTAMP", false),
    ("session_user_id", "TEXT", false),
    ("platform", "TEXT", false),
    ("type", "TEXT", false),
    ("author_name_hash", "TEXT", false),
    ("created_at", "TIMESTAMP", false),
    ("post_blob", "TEXT", false),
];

/// The secondary indexes (name, indexed column), by name.
const README_INDEXES: [(&str, &str); 3] = [
    ("idx_posts_created_at", "created_at"),
    ("idx_posts_platform", "platform"),
    ("idx_posts_session_user_id", "session_user_id"),
];

/// The posts table's columns as SQLite reports them: (name, type, primary key), with
/// nullability and defaults checked to be SQLite's plain ones.
fn columns(conn: &Connection) -> Vec<(String, String, bool)> {
    let mut stmt = conn
        .prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('posts') ORDER BY cid")
        .unwrap_or_else(|e| panic!("{e}"));
    stmt.query_map([], |r| {
        let name: String = r.get(0)?;
        let not_null: bool = r.get(2)?;
        let default: Option<String> = r.get(3)?;
        assert!(
            !not_null && default.is_none(),
            "column {name} has constraints"
        );
        Ok((name, r.get(1)?, r.get::<_, i64>(4)? > 0))
    })
    .and_then(|rows| rows.collect())
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The indexes made by `CREATE INDEX` (not the primary key's), each with its columns.
fn indexes(conn: &Connection) -> Vec<(String, Vec<String>)> {
    let names: Vec<(String, bool)> = conn
        .prepare("SELECT name, \"unique\" FROM pragma_index_list('posts') WHERE origin = 'c' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .unwrap_or_else(|e| panic!("{e}"));
    names
        .into_iter()
        .map(|(name, unique)| {
            assert!(!unique, "{name} must not be a unique index");
            let columns: Vec<String> = conn
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .and_then(|mut s| s.query_map([&name], |r| r.get(0))?.collect())
                .unwrap_or_else(|e| panic!("{e}"));
            (name, columns)
        })
        .collect()
}

fn owned<const N: usize>(expected: [(&str, &str, bool); N]) -> Vec<(String, String, bool)> {
    expected
        .iter()
        .map(|(n, t, pk)| (n.to_string(), t.to_string(), *pk))
        .collect()
}

/// The `CREATE TABLE` statement of the README's "Data model" block, whitespace folded.
fn readme_ddl() -> String {
    let readme = include_str!("../../../README.md");
    let block = readme
        .split("```sql")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("the README has no sql block"));
    let statement = block
        .split(';')
        .next()
        .unwrap_or_else(|| panic!("the README's sql block is empty"));
    statement.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn writer_creates_the_readme_table_and_indexes_in_one_file() {
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
    assert_eq!(columns(&conn), owned(README_COLUMNS));
    let expected_indexes: Vec<(String, Vec<String>)> = README_INDEXES
        .iter()
        .map(|(name, column)| (name.to_string(), vec![column.to_string()]))
        .collect();
    assert_eq!(indexes(&conn), expected_indexes);
    // The text id is the primary key, so SQLite keeps one unique index for it.
    let primary: Vec<(String, bool)> = conn
        .prepare("SELECT origin, \"unique\" FROM pragma_index_list('posts') WHERE origin = 'pk'")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(primary, [("pk".to_owned(), true)]);
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'posts'",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sql,
        readme_ddl(),
        "the README shows the DDL the writer runs"
    );
    // Finished databases are one self-contained file, readable from read-only media.
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mode, "delete");
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

/// The writer sends several rows per statement: a batch that is not a multiple of that
/// must still land whole and in the order given, and an id repeated within one upsert
/// batch keeps its last version.
#[test]
fn big_batches_keep_every_row_in_order_and_the_last_upsert_wins() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("posts.db");
    let load = |mode, rows: &[(String, &str)]| {
        let mut writer = PostsWriter::open(&path, mode, Commit::AllOrNothing)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_batch_rows(100);
        for (id, blob) in rows {
            writer.push(row(id, blob)).unwrap_or_else(|e| panic!("{e}"));
        }
        writer.finish().unwrap_or_else(|e| panic!("{e}"))
    };
    // Descending ids, so row order and id order differ.
    let ids: Vec<String> = (0..19).rev().map(|i| format!("r{i:02}")).collect();
    let first: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), "first")).collect();
    assert_eq!(load(WriteMode::Create, &first), 19);
    let in_row_order: Vec<String> = open(&path)
        .prepare("SELECT id FROM posts ORDER BY rowid")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(in_row_order, ids);

    let again = [
        ("r03".to_owned(), "second"),
        ("r20".to_owned(), "new"),
        ("r03".to_owned(), "third"),
    ];
    assert_eq!(load(WriteMode::Upsert, &again), 3);
    let mut expected: Vec<(String, String)> = (0..19)
        .map(|i| format!("r{i:02}"))
        .map(|id| {
            let blob = if id == "r03" { "third" } else { "first" };
            (id, blob.to_owned())
        })
        .collect();
    expected.push(("r20".to_owned(), "new".to_owned()));
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
    assert_eq!(columns(&published), owned(PUBLISHED_COLUMNS));
    assert_eq!(columns(&text), owned(README_COLUMNS));
    assert_eq!(indexes(&published), indexes(&text));
    assert_eq!(indexes(&text).len(), README_INDEXES.len());
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
