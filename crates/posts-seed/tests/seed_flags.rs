//! What the `cargo xtask seed` flags promise, through the library calls they map to:
//! `--upsert` replaces rows whose content changed, `--drop-table` works while a read pool
//! holds connections to the database, and a seeded database can be read from a read-only
//! directory (a Docker `:ro` volume).

use std::path::{Path, PathBuf};
use std::process::Command;

use posts_seed::{SeedOptions, SeedSummary, SyntheticOptions, WriteMode};
use posts_store::read::{CancelToken, ReadPool};
use rusqlite::Connection;
use serde_json::{Value, json};

/// A raw directory of `reddit.jsonl` items and the database seeded from it.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.path().join("raw")).unwrap_or_else(|e| panic!("{e}"));
        Fixture { dir }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("posts.db")
    }

    /// Writes `reddit.jsonl` with one item per `(id, text)`.
    fn items(&self, items: &[(&str, &str)]) {
        let lines: Vec<String> = items.iter().map(|(id, text)| item(id, text)).collect();
        std::fs::write(
            self.dir.path().join("raw/reddit.jsonl"),
            lines.join("\n") + "\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    fn seed(&self, mode: WriteMode) -> SeedSummary {
        let mut options = SeedOptions::raw(self.db(), self.dir.path().join("raw"));
        options.mode = mode;
        posts_seed::seed(&options, &mut |_| {}).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `(id, text)` of every row, by id.
    fn texts(&self) -> Vec<(String, String)> {
        texts_of(&Connection::open(self.db()).unwrap_or_else(|e| panic!("{e}")))
    }
}

/// One reddit item as the pydantic model writes it.
fn item(id: &str, text: &str) -> String {
    json!({
        "id": id, "post_id": id, "parent_id": null, "title": "T", "text": text,
        "author_name_hash": "h", "type": "post", "embedded_urls": [],
        "created_at": "2017-05-31T10:00:00",
        "engagements": {"upvote": 1, "downvote": 0, "score": 1, "comment": 0, "award": 0}
    })
    .to_string()
}

fn texts_of(conn: &Connection) -> Vec<(String, String)> {
    let mut stmt = conn
        .prepare("SELECT id, post_blob FROM posts ORDER BY id")
        .unwrap_or_else(|e| panic!("{e}"));
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("{e}"));
    rows.into_iter()
        .map(|(id, blob)| {
            let blob: Value = serde_json::from_str(&blob).unwrap_or_else(|e| panic!("{e}"));
            let text = blob["text"].as_str().unwrap_or_default().to_owned();
            (id, text)
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn upsert_replaces_rows_whose_content_changed_and_adds_new_ones() {
    let fixture = Fixture::new();
    fixture.items(&[("r1", "first"), ("r2", "second"), ("r3", "third")]);
    assert_eq!(fixture.seed(WriteMode::Create).rows_written, 3);
    fixture.items(&[("r2", "second, edited"), ("r4", "fourth")]);
    assert_eq!(fixture.seed(WriteMode::Upsert).rows_written, 2);
    assert_eq!(
        fixture.texts(),
        pairs(&[
            ("r1", "first"),
            ("r2", "second, edited"),
            ("r3", "third"),
            ("r4", "fourth")
        ])
    );
}

/// The posts' ids and texts as read through the read pool's public query path.
fn pool_texts(pool: &ReadPool) -> Vec<(String, String)> {
    let rows = pool
        .query_json(
            "SELECT id, post_blob FROM posts ORDER BY id",
            &CancelToken::new(),
            usize::MAX,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    rows.as_array()
        .unwrap_or_else(|| panic!("rows are not an array: {rows}"))
        .iter()
        .map(|row| {
            let id = row[0].as_str().unwrap_or_default().to_owned();
            let blob: Value = serde_json::from_str(row[1].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}"));
            (id, blob["text"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

/// Opens a read pool on `db` that has read the posts (so it keeps connections open), plus
/// `n` read-only connections held open the whole time, each having read the posts: the
/// readers a long-running worker has while somebody re-seeds.
fn pool_holding(db: &Path, n: usize) -> (ReadPool, Vec<Connection>) {
    let pool = ReadPool::open(db).unwrap_or_else(|e| panic!("{e}"));
    assert!(!pool_texts(&pool).is_empty());
    let held = (0..n)
        .map(|_| {
            let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(!texts_of(&conn).is_empty());
            conn
        })
        .collect();
    (pool, held)
}

#[test]
fn drop_table_while_a_read_pool_holds_connections_replaces_the_table() {
    let fixture = Fixture::new();
    fixture.items(&[("old1", "old"), ("old2", "old")]);
    fixture.seed(WriteMode::Create);
    let (pool, held) = pool_holding(&fixture.db(), 2);

    fixture.items(&[("new1", "new")]);
    assert_eq!(fixture.seed(WriteMode::DropTable).rows_written, 1);
    let expected = pairs(&[("new1", "new")]);
    for conn in &held {
        assert_eq!(texts_of(conn), expected, "a held connection");
    }
    drop(held);
    assert_eq!(pool_texts(&pool), expected, "the pool");
}

#[test]
fn synthetic_drop_table_while_a_read_pool_holds_connections_replaces_the_table() {
    let fixture = Fixture::new();
    let db = fixture.db();
    let synthetic = |count, mode| {
        let mut options = SeedOptions::synthetic(&db, SyntheticOptions::new(count));
        options.mode = mode;
        posts_seed::seed(&options, &mut |_| {}).unwrap_or_else(|e| panic!("{e}"))
    };
    synthetic(300, WriteMode::Create);
    let (pool, held) = pool_holding(&db, 2);
    // A replaced table is loaded without a journal only when nobody else can be reading;
    // here the pool is, so the load must stay safe for it.
    assert_eq!(synthetic(500, WriteMode::DropTable).rows_written, 500);
    for conn in &held {
        assert_eq!(texts_of(conn).len(), 500, "a held connection");
    }
    drop(held);
    assert_eq!(pool_texts(&pool).len(), 500, "the pool");
    let integrity = pool
        .query_json("PRAGMA quick_check", &CancelToken::new(), usize::MAX)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(integrity, serde_json::json!([["ok"]]));
}

/// Set by [`a_seeded_db_is_readable_from_a_read_only_directory`] for the copy of this
/// binary it runs inside a read-only bind mount: the database to read.
const READ_ONLY_DB_ENV: &str = "POSTS_SEED_TEST_READ_ONLY_DB";

/// Reads the database at `db`, whose directory must be read-only, through the read pool.
fn read_from_read_only_dir(db: &Path) -> Vec<(String, String)> {
    let dir = db
        .parent()
        .unwrap_or_else(|| panic!("{} has no parent", db.display()));
    let probe = std::fs::write(dir.join("probe"), b"x");
    assert!(
        probe.is_err(),
        "{} must be read-only for this check",
        dir.display()
    );
    let pool = ReadPool::open(db).unwrap_or_else(|e| panic!("{e}"));
    pool_texts(&pool)
}

/// The reader half of [`a_seeded_db_is_readable_from_a_read_only_directory`] when it
/// needs a read-only bind mount (the tests run as root, which ignores permissions).
#[test]
#[ignore = "run by a_seeded_db_is_readable_from_a_read_only_directory inside a read-only mount"]
fn read_only_dir_reader() {
    let db = std::env::var_os(READ_ONLY_DB_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{READ_ONLY_DB_ENV} is not set; run the parent test"));
    let rows = read_from_read_only_dir(&db);
    // The parent checks this line, so a reader that fails in any other way is caught.
    println!(
        "READ_ONLY_ROWS={}",
        serde_json::to_string(&rows).unwrap_or_default()
    );
}

#[test]
fn a_seeded_db_is_readable_from_a_read_only_directory() {
    let fixture = Fixture::new();
    fixture.items(&[("r1", "one"), ("r2", "two")]);
    fixture.seed(WriteMode::Create);
    let seeded = fixture.texts();
    let dir = fixture.dir.path().to_owned();
    let set_mode = |mode| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.display()));
    };
    set_mode(0o555);
    // Permissions stop an ordinary user; root (as in CI containers) writes anyway, and
    // then only a read-only mount makes the directory what a `:ro` volume is.
    let permissions_hold = std::fs::write(dir.join("probe"), b"x").is_err();
    let read = if permissions_hold {
        read_from_read_only_dir(&fixture.db())
    } else {
        let _ = std::fs::remove_file(dir.join("probe"));
        read_in_read_only_mount(&dir, &fixture.db())
    };
    set_mode(0o755);
    assert_eq!(read, seeded);
}

/// Runs [`read_only_dir_reader`] in a private mount namespace where `dir` is bind-mounted
/// read-only, and returns the rows it read.
fn read_in_read_only_mount(dir: &Path, db: &Path) -> Vec<(String, String)> {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new("unshare")
        .args(["--map-root-user", "--mount", "sh", "-c"])
        .arg(r#"mount --bind -o ro "$1" "$1" && exec "$2" --exact read_only_dir_reader --ignored --nocapture"#)
        .arg("sh")
        .arg(dir)
        .arg(&exe)
        .env(READ_ONLY_DB_ENV, db)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running unshare: {e}. The tests run as root, who ignores directory permissions, \
                 so this check needs unshare(1) (util-linux) and mount namespaces to mount the \
                 directory read-only"
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rows = stdout
        .lines()
        .find_map(|line| line.strip_prefix("READ_ONLY_ROWS="))
        .unwrap_or_else(|| {
            panic!(
                "the read-only reader reported nothing ({}):\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        });
    serde_json::from_str(rows).unwrap_or_else(|e| panic!("{e}: {rows}"))
}
