//! Tests of the read side on hand-made databases of both schema variants.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::scan::{ScanOutcome, ScanPart, ScanStrategy};
use super::*;

use crate::schema::{SchemaVariant as Variant, create_indexes};

/// Creates a posts DB at `path` holding one post per `created_at` value.
/// A posts database in a fresh temporary directory (kept alive by the returned guard).
fn temp_db(variant: Variant, indexed: bool, created: &[String]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("posts.db");
    make_db(&path, variant, indexed, created);
    (dir, path)
}

fn make_db(path: &Path, variant: Variant, indexed: bool, created: &[String]) {
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch(variant.table_ddl()).unwrap();
    if indexed {
        create_indexes(&conn).unwrap();
    }
    let tx = conn.transaction().unwrap();
    {
        let sql = match variant {
            Variant::TextId => {
                "INSERT INTO posts (id, platform, type, created_at, post_blob) \
                 VALUES (?1, ?2, 'post', ?3, ?4)"
            }
            Variant::AutoIncrementId => {
                "INSERT INTO posts (post_id, platform, type, created_at, post_blob) \
                 VALUES (?1, ?2, 'post', ?3, ?4)"
            }
        };
        let mut stmt = tx.prepare(sql).unwrap();
        for (i, at) in created.iter().enumerate() {
            let platform = ["twitter", "reddit", "facebook"][i % 3];
            let blob = format!(r#"{{"id":"p{i}","text":"post number {i}"}}"#);
            stmt.execute((format!("p{i}"), platform, at, blob)).unwrap();
        }
    }
    tx.commit().unwrap();
}

fn file_digest(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// Timestamps around the boundary the issue names, shuffled so rowid order is not time order.
fn boundary_timestamps() -> Vec<String> {
    [
        "2017-05-30 23:59:59",
        "2017-05-31 00:00:00",
        "2017-06-01 00:00:05",
        "2017-05-31 12:30:00",
        "2017-06-01",
        "2017-06-02 08:00:00",
        "2017-05-31",
    ]
    .map(String::from)
    .to_vec()
}

/// `n` timestamps one minute apart from 2017-05-01, in a scrambled order.
fn many_timestamps(n: usize) -> Vec<String> {
    let start = chrono::NaiveDate::from_ymd_opt(2017, 5, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    (0..n)
        .map(|i| {
            let minute = (i * 7919) % n;
            (start + chrono::Duration::minutes(minute as i64))
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .collect()
}

/// Streams every post in `range` to `visit` on one connection, as one part.
fn scan<F>(pool: &ReadPool, range: &CreatedAtRange, visit: F) -> Result<ScanOutcome, ReadError>
where
    F: FnMut(ScannedPost<'_>) -> ControlFlow<()>,
{
    let conn = pool.get()?;
    ScanPart::whole(range.clone()).for_each(&conn, visit)
}

fn scan_created_at(pool: &ReadPool, range: &CreatedAtRange) -> Vec<String> {
    let mut seen = Vec::new();
    let outcome = scan(pool, range, |row| {
        seen.push(row.created_at.unwrap().to_owned());
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(outcome.rows as usize, seen.len());
    assert!(!outcome.stopped);
    seen.sort();
    seen
}

#[test]
fn missing_database_is_a_typed_error_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.db");
    let err = ReadPool::open(&path).unwrap_err();
    assert!(matches!(err, ReadError::MissingDatabase { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.db"));
    assert!(!path.exists());
}

#[test]
fn a_file_that_is_not_a_database_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let err = ReadPool::open(&path).unwrap_err();
    assert!(matches!(err, ReadError::Open { .. }), "{err:?}");
}

#[test]
fn writes_through_the_read_path_fail_and_leave_the_file_unchanged() {
    let (dir, path) = temp_db(Variant::TextId, true, &boundary_timestamps());
    let before = file_digest(&path);
    let pool = ReadPool::open(&path).unwrap();
    let conn = pool.get().unwrap();
    let other = dir.path().join("other.db");
    let attempts = [
        "INSERT INTO posts (id, platform) VALUES ('x', 'twitter')".to_owned(),
        "UPDATE posts SET platform = 'x'".to_owned(),
        "DELETE FROM posts".to_owned(),
        "DROP TABLE posts".to_owned(),
        "CREATE TABLE evil (x)".to_owned(),
        "CREATE TEMP TABLE scratch (x)".to_owned(),
        "PRAGMA query_only = OFF".to_owned(),
        "PRAGMA user_version = 7".to_owned(),
        "PRAGMA journal_mode = DELETE".to_owned(),
        format!("ATTACH DATABASE '{}' AS other", other.display()),
        format!("VACUUM INTO '{}'", other.display()),
        "BEGIN IMMEDIATE".to_owned(),
        "ANALYZE".to_owned(),
    ];
    for sql in &attempts {
        assert!(conn.execute_batch(sql).is_err(), "{sql} was accepted");
    }
    assert!(!other.exists(), "a statement created a file");
    let query_only: i64 = conn
        .query_row("PRAGMA query_only", [], |row| row.get(0))
        .unwrap();
    assert_eq!(query_only, 1);
    let count: i64 = conn
        .query_row("SELECT count(*) FROM posts", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 7);
    drop(conn);
    drop(pool);
    assert_eq!(file_digest(&path), before);
}

#[test]
fn scan_uses_between_string_semantics_on_both_variants() {
    for variant in [Variant::TextId, Variant::AutoIncrementId] {
        for indexed in [true, false] {
            let (_dir, path) = temp_db(variant, indexed, &boundary_timestamps());
            let pool = ReadPool::open(&path).unwrap();
            let got = scan_created_at(&pool, &CreatedAtRange::new("2017-05-31", "2017-06-01"));
            // '2017-06-01 00:00:05' > '2017-06-01' as text, so it is outside the range.
            assert_eq!(
                got,
                [
                    "2017-05-31",
                    "2017-05-31 00:00:00",
                    "2017-05-31 12:30:00",
                    "2017-06-01"
                ]
            );
        }
    }
}

#[test]
fn scan_streams_and_stops_when_asked() {
    let (_dir, path) = temp_db(Variant::AutoIncrementId, true, &many_timestamps(5000));
    let pool = ReadPool::open(&path).unwrap();
    let mut blobs = 0;
    let outcome = scan(
        &pool,
        &CreatedAtRange::new("2017-01-01", "2018-01-01"),
        |row| {
            assert!(row.platform.is_some());
            blobs += usize::from(row.post_blob.is_some_and(|b| b.starts_with(b"{")));
            if blobs == 10 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap();
    assert_eq!(
        outcome,
        ScanOutcome {
            rows: 10,
            stopped: true
        }
    );
}

#[test]
fn scan_reports_a_missing_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("posts.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE posts (id TEXT, created_at TEXT)")
        .unwrap();
    let pool = ReadPool::open(&path).unwrap();
    let err = pool
        .plan_scan(&CreatedAtRange::new("2017-01-01", "2018-01-01"), 4)
        .unwrap_err();
    assert!(err.to_string().contains("platform, post_blob"), "{err}");
}

/// Scans every part of a plan and checks their union is exactly the single scan's rows.
fn check_plan(pool: &ReadPool, range: &CreatedAtRange, parts: usize) -> ScanStrategy {
    let plan = pool.plan_scan(range, parts).unwrap();
    assert!(plan.parts().len() <= parts.max(1));
    let conn = pool.get().unwrap();
    let mut by_parts = Vec::new();
    for part in plan.parts() {
        part.for_each(&conn, |row| {
            by_parts.push(row.rowid);
            ControlFlow::Continue(())
        })
        .unwrap();
    }
    let unique: BTreeSet<i64> = by_parts.iter().copied().collect();
    assert_eq!(unique.len(), by_parts.len(), "a row was seen twice");
    let mut whole = BTreeSet::new();
    scan(pool, range, |row| {
        whole.insert(row.rowid);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(unique, whole);
    plan.strategy()
}

#[test]
fn plans_cover_the_range_exactly_once() {
    for variant in [Variant::TextId, Variant::AutoIncrementId] {
        let (_dir, path) = temp_db(variant, true, &many_timestamps(30_000));
        let pool = ReadPool::open(&path).unwrap();
        let everything = CreatedAtRange::new("2017-05-01", "2017-06-01");
        assert_eq!(check_plan(&pool, &everything, 8), ScanStrategy::RowidSpans);
        // About 1/5 of the rows: selective enough for the index.
        let week = CreatedAtRange::new("2017-05-03", "2017-05-07 23:59:59");
        assert_eq!(
            check_plan(&pool, &week, 4),
            ScanStrategy::CreatedAtQuantiles
        );
        let hour = CreatedAtRange::new("2017-05-05 10:00:00", "2017-05-05 11:00:00");
        assert_eq!(check_plan(&pool, &hour, 4), ScanStrategy::Single);
        let none = CreatedAtRange::new("2018-01-01", "2018-12-31");
        assert_eq!(check_plan(&pool, &none, 4), ScanStrategy::Single);
        assert_eq!(check_plan(&pool, &everything, 1), ScanStrategy::Single);
    }
}

#[test]
fn plans_without_a_created_at_index_use_rowid_spans() {
    let (_dir, path) = temp_db(Variant::TextId, false, &many_timestamps(10_000));
    let pool = ReadPool::open(&path).unwrap();
    let week = CreatedAtRange::new("2017-05-03", "2017-05-07 23:59:59");
    assert_eq!(check_plan(&pool, &week, 3), ScanStrategy::RowidSpans);
}

#[test]
fn quantile_cuts_keep_equal_timestamps_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("posts.db");
    // 30,000 rows but only 3 distinct timestamps in the selective range.
    let mut created = many_timestamps(24_000);
    created.extend((0..6000).map(|i| format!("2016-01-0{} 00:00:00", 1 + i % 3)));
    make_db(&path, Variant::TextId, true, &created);
    let pool = ReadPool::open(&path).unwrap();
    let range = CreatedAtRange::new("2016-01-01", "2016-12-31");
    assert_eq!(
        check_plan(&pool, &range, 8),
        ScanStrategy::CreatedAtQuantiles
    );
    let plan = pool.plan_scan(&range, 8).unwrap();
    assert!(plan.parts().len() <= 3, "{} parts", plan.parts().len());
}

/// Sums rowids and counts rows per platform through the parallel fold.
fn fold_summary(
    pool: &ReadPool,
    range: &CreatedAtRange,
    cancel: &CancelToken,
) -> Result<(u64, i128, [u64; 3]), ReadError> {
    let platform_index = |p: &str| {
        ["twitter", "reddit", "facebook"]
            .iter()
            .position(|x| *x == p)
    };
    let folded = pool.fold_range(
        range,
        cancel,
        || (0i128, [0u64; 3]),
        |(sum, per_platform), row| {
            *sum += i128::from(row.rowid);
            if let Some(i) = row.platform.and_then(platform_index) {
                per_platform[i] += 1;
            }
        },
        |(a, pa), (b, pb)| (a + b, [pa[0] + pb[0], pa[1] + pb[1], pa[2] + pb[2]]),
    )?;
    Ok((folded.rows, folded.state.0, folded.state.1))
}

#[test]
fn parallel_fold_equals_a_sequential_scan_for_every_strategy() {
    let (_dir, path) = temp_db(Variant::TextId, true, &many_timestamps(30_000));
    let pool = ReadPool::open(&path).unwrap();
    for range in [
        CreatedAtRange::new("2017-05-01", "2017-06-01"),
        CreatedAtRange::new("2017-05-03", "2017-05-07 23:59:59"),
        CreatedAtRange::new("2017-05-05 10:00:00", "2017-05-05 11:00:00"),
        CreatedAtRange::new("2018-01-01", "2018-12-31"),
    ] {
        let (mut rows, mut sum, mut per_platform) = (0u64, 0i128, [0u64; 3]);
        scan(&pool, &range, |row| {
            rows += 1;
            sum += i128::from(row.rowid);
            let i = ["twitter", "reddit", "facebook"]
                .iter()
                .position(|p| Some(*p) == row.platform)
                .unwrap();
            per_platform[i] += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        let folded = fold_summary(&pool, &range, &CancelToken::new()).unwrap();
        assert_eq!(folded, (rows, sum, per_platform), "{range:?}");
    }
}

#[test]
fn a_cancelled_fold_stops_with_cancelled_and_leaves_the_pool_usable() {
    let (_dir, path) = temp_db(Variant::TextId, true, &many_timestamps(30_000));
    let pool = ReadPool::open(&path).unwrap();
    let range = CreatedAtRange::new("2017-05-01", "2017-06-01");
    let cancelled = CancelToken::new();
    cancelled.cancel();
    let err = fold_summary(&pool, &range, &cancelled).unwrap_err();
    assert!(matches!(err, ReadError::Cancelled), "{err:?}");

    // Cancelled mid-fold, from inside the fold itself: the scan must notice and stop.
    let cancel = CancelToken::new();
    let seen = std::sync::atomic::AtomicU64::new(0);
    let err = pool
        .fold_range(
            &range,
            &cancel,
            || (),
            |(), _| {
                if seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 1000 {
                    cancel.cancel();
                }
            },
            |(), ()| (),
        )
        .unwrap_err();
    assert!(matches!(err, ReadError::Cancelled), "{err:?}");
    let seen = seen.into_inner();
    assert!(seen < 30_000, "the fold ran to the end ({seen} rows)");

    let after = fold_summary(&pool, &range, &CancelToken::new()).unwrap();
    assert_eq!(after.0, 30_000);
}

#[test]
fn folds_on_a_pool_smaller_than_the_thread_count_all_finish() {
    let (_dir, path) = temp_db(Variant::AutoIncrementId, true, &many_timestamps(30_000));
    let pool = ReadPool::open_with(
        &path,
        ReadPoolOptions {
            max_size: 2,
            ..ReadPoolOptions::default()
        },
    )
    .unwrap();
    let range = CreatedAtRange::new("2017-05-01", "2017-06-01");
    let expected = fold_summary(&pool, &range, &CancelToken::new()).unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| fold_summary(&pool, &range, &CancelToken::new())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for result in results {
        assert_eq!(result.unwrap(), expected);
    }
}

#[test]
fn query_json_rows_refusals_cap_and_sqlite_errors() {
    let (_dir, path) = temp_db(Variant::TextId, true, &boundary_timestamps());
    let pool = ReadPool::open(&path).unwrap();
    let cancel = CancelToken::new();
    let rows = pool
        .query_json("SELECT 1, 2.5, 'text', NULL, x'00ff10'", &cancel, 1024)
        .unwrap();
    assert_eq!(rows, serde_json::json!([[1, 2.5, "text", null, "AP8Q"]]));

    let err = pool
        .query_json("DELETE FROM posts", &cancel, 1024)
        .unwrap_err();
    assert!(matches!(err, ReadError::QueryRefused { .. }), "{err:?}");
    let err = pool
        .query_json("SELECT 1; SELECT 2", &cancel, 1024)
        .unwrap_err();
    assert!(matches!(err, ReadError::QueryRefused { .. }), "{err:?}");

    // 7 rows of `[n]` plus brackets and commas is 2 + 7 * 3 + 6 = 29 bytes.
    let all = "SELECT rowid FROM posts ORDER BY rowid";
    assert_eq!(
        pool.query_json(all, &cancel, 29)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        7
    );
    let err = pool.query_json(all, &cancel, 28).unwrap_err();
    assert!(
        matches!(err, ReadError::ResultTooLarge { limit: 28 }),
        "{err:?}"
    );

    let err = pool
        .query_json("SELECT * FROM bar", &cancel, 1024)
        .unwrap_err();
    let ReadError::Sqlite(failure) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(failure.message(), "no such table: bar");
    assert_eq!(failure.code(), Some(1), "SQLITE_ERROR");
    assert_eq!(
        err.to_string(),
        "SQLite error: no such table: bar (SQLite code 1)"
    );
}

#[test]
fn a_cancel_interrupts_a_query_inside_sqlite() {
    let (_dir, path) = temp_db(Variant::TextId, true, &boundary_timestamps());
    let pool = ReadPool::open(&path).unwrap();
    let cancel = CancelToken::new();
    let err = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(200));
            cancel.cancel();
        });
        // No row for a very long time: all the work is inside one SQLite step.
        pool.query_json(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
             SELECT i FROM n WHERE i < 0",
            &cancel,
            1024,
        )
        .unwrap_err()
    });
    assert!(matches!(err, ReadError::Cancelled), "{err:?}");
    let rows = pool
        .query_json("SELECT count(*) FROM posts", &CancelToken::new(), 1024)
        .unwrap();
    assert_eq!(rows, serde_json::json!([[7]]));
}
