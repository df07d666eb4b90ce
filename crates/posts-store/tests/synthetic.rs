//! The synthetic generator end to end: deterministic, realistic rows in a real DB.

use posts_model::{ContentItem, Timestamp};
use posts_store::etl::{self, SeedOptions, SyntheticOptions};
use rusqlite::Connection;

fn dump(path: &std::path::Path) -> Vec<(String, String, String, String, String)> {
    let conn = Connection::open(path).unwrap_or_else(|e| panic!("{e}"));
    let mut stmt = conn
        .prepare("SELECT id, session_timestamp, session_user_id, created_at, post_blob FROM posts ORDER BY id")
        .unwrap_or_else(|e| panic!("{e}"));
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .and_then(|rows| rows.collect())
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn same_seed_same_db_other_seed_other_db() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let from = Timestamp::parse("2017-05-01 00:00:00").unwrap_or_else(|e| panic!("{e}"));
    let to = Timestamp::parse("2017-07-01 00:00:00").unwrap_or_else(|e| panic!("{e}"));
    let build = |name: &str, seed: u64| {
        let path = dir.path().join(name);
        let options = SyntheticOptions {
            count: 20_000,
            seed,
            from,
            to,
            users: 0,
        };
        let summary = etl::seed(&SeedOptions::synthetic(&path, options), &mut |_| {})
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(summary.rows_written, 20_000);
        dump(&path)
    };
    let a = build("a.db", 5);
    let b = build("b.db", 5);
    let c = build("c.db", 6);
    assert_eq!(a, b);
    assert_ne!(a, c);
    for (_, _, _, created_at, blob) in &a {
        assert!(created_at.as_str() >= "2017-05-01" && created_at.as_str() < "2017-07-01");
        let item = ContentItem::from_json(blob).unwrap_or_else(|e| panic!("{e}: {blob}"));
        assert_eq!(&item.created_at.to_db_string(), created_at);
    }
    let texts: Vec<usize> = a.iter().map(|row| row.4.len()).collect();
    let long = texts.iter().filter(|&&n| n > 1_000).count();
    assert!(long > 100 && long < 4_000, "{long} long blobs");
}

#[test]
fn synthetic_seed_respects_the_write_mode_and_reports_platforms() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("s.db");
    let options = SeedOptions::synthetic(&path, SyntheticOptions::new(1_000));
    let summary = etl::seed(&options, &mut |_| {}).unwrap_or_else(|e| panic!("{e}"));
    let loaded: u64 = summary.platforms.values().map(|c| c.loaded).sum();
    assert_eq!((loaded, summary.platforms.len()), (1_000, 3));
    assert!(
        etl::seed(&options, &mut |_| {}).is_err(),
        "an existing table needs a flag"
    );
    let bad = SeedOptions::synthetic(
        &path,
        SyntheticOptions {
            to: SyntheticOptions::new(1).from,
            ..SyntheticOptions::new(1)
        },
    );
    assert!(matches!(
        etl::seed(&bad, &mut |_| {}),
        Err(etl::EtlError::InvalidOption { .. })
    ));
}
