//! The tasks called as plain functions, on both schema variants.

mod tasks_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use posts_worker::tasks::{
    CancelToken, Limits, PostsTaskError, count_top_named_entities, query_posts_db,
    substring_matches_by_platform,
};
use serde_json::json;
use tasks_support::*;

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect()
}

#[test]
fn substring_counts_per_platform_with_between_semantics() {
    for variant in VARIANTS {
        let (_dir, path) = temp_db(variant, &sample_posts());
        let data = posts_data(&path);
        let got = substring_matches_by_platform(
            &data,
            &CancelToken::new(),
            "trump",
            "2017-05-31",
            "2017-06-01",
        )
        .unwrap();
        // The 2017-06-01 00:00:05 and 2017-05-30 posts are outside; null blobs and null
        // texts count as empty; the post without a platform counts only in total_rows.
        assert_eq!(
            got.per_platform,
            counts(&[("facebook", 1), ("reddit", 2), ("twitter", 1)])
        );
        assert_eq!(got.total_rows, 9, "{variant:?}");
        let value = serde_json::to_value(&got).unwrap();
        assert_eq!(
            value,
            json!({"facebook": 1, "reddit": 2, "twitter": 1, "total_rows": 9})
        );
        let merkel = substring_matches_by_platform(
            &data,
            &CancelToken::new(),
            "MERKEL",
            "2017-05-31",
            "2017-06-01 00:00:05",
        )
        .unwrap();
        // Platforms without a match are left out.
        assert_eq!(merkel.per_platform, counts(&[("facebook", 2)]));
        assert_eq!(merkel.total_rows, 10);
    }
}

#[test]
fn substring_on_a_large_range_agrees_with_a_naive_count() {
    let words = [
        "Trump", "merkel", "ÉLYSÉE", "straße", "news", "TRUMPET", "😀", "kelvin",
    ];
    let mut posts = Vec::new();
    for i in 0..40_000usize {
        let platform = ["twitter", "reddit", "facebook"][i % 3];
        let day = 1 + (i * 7) % 28;
        let at = format!("2017-05-{day:02} {:02}:{:02}:00", i % 24, (i * 13) % 60);
        let text = format!("{} {} {}", words[i % 8], words[(i / 8) % 8], i);
        posts.push(post(platform, &at, &text));
    }
    for variant in VARIANTS {
        let (_dir, path) = temp_db(variant, &posts);
        let data = posts_data(&path);
        for (needle, from, to) in [
            ("trump", "2017-05-01", "2017-05-31"),
            ("élysée", "2017-05-03", "2017-05-09 12:00:00"),
            ("STRASSE", "2017-05-01", "2017-05-31"),
            ("😀", "2017-05-10", "2017-05-11"),
        ] {
            let got = substring_matches_by_platform(&data, &CancelToken::new(), needle, from, to)
                .unwrap();
            let mut expected = BTreeMap::new();
            let mut total = 0;
            for p in &posts {
                if p.created_at.as_str() >= from && p.created_at.as_str() <= to {
                    total += 1;
                    let v: serde_json::Value =
                        serde_json::from_str(p.blob.as_deref().unwrap()).unwrap();
                    let text = v["text"].as_str().unwrap().to_lowercase();
                    if text.contains(&needle.to_lowercase()) {
                        *expected.entry(p.platform.clone().unwrap()).or_insert(0u64) += 1;
                    }
                }
            }
            assert_eq!(got.total_rows, total, "{needle} {variant:?}");
            assert_eq!(got.per_platform, expected, "{needle} {variant:?}");
        }
    }
}

#[test]
fn injection_attempts_are_bound_or_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("posts.db");
    let mut posts = sample_posts();
    posts.push(post(
        "twitter",
        "2017-05-31 17:00:00",
        "it's ' OR 1=1 -- here",
    ));
    make_db(&path, Variant::TextId, &posts);
    let before = std::fs::read(&path).unwrap();
    let data = posts_data(&path);
    let cancel = CancelToken::new();
    let got =
        substring_matches_by_platform(&data, &cancel, "' OR 1=1 --", "2017-05-31", "2017-06-01")
            .unwrap();
    assert_eq!(got.per_platform, counts(&[("twitter", 1)]));
    let got = substring_matches_by_platform(
        &data,
        &cancel,
        "'); DROP TABLE posts; --",
        "2017-05-31",
        "2017-06-01",
    )
    .unwrap();
    assert!(got.per_platform.is_empty());
    for (from, to, bad) in [
        ("2017-05-31' OR '1'='1", "2017-06-01", "from_"),
        ("2017-05-31", "2017-06-01'); DROP TABLE posts; --", "to"),
        ("2017-05-31", "2017-06-01 00:00:00 OR 1=1", "to"),
    ] {
        let err = substring_matches_by_platform(&data, &cancel, "trump", from, to).unwrap_err();
        assert!(
            matches!(err, PostsTaskError::InvalidArgument { argument, .. } if argument == bad),
            "{err:?}"
        );
        assert_eq!(err.kind(), "InvalidArgument");
    }
    drop(data);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn bad_dates_name_the_argument() {
    let (_dir, path) = temp_db(Variant::IntegerId, &sample_posts());
    let data = posts_data(&path);
    let cancel = CancelToken::new();
    let err =
        substring_matches_by_platform(&data, &cancel, "x", "2017-13-45", "2017-06-01").unwrap_err();
    assert!(err.to_string().contains("from_"), "{err}");
    let err = count_top_named_entities(&data, &cancel, 3, "2017-05-31", "June 1st").unwrap_err();
    assert!(
        matches!(err, PostsTaskError::InvalidArgument { argument: "to", .. }),
        "{err:?}"
    );
    let err = count_top_named_entities(&data, &cancel, 0, "2017-05-31", "2017-06-01").unwrap_err();
    assert!(
        matches!(err, PostsTaskError::InvalidArgument { argument: "k", .. }),
        "{err:?}"
    );
}

#[test]
fn top_entities_count_each_entity_once_per_post() {
    for variant in VARIANTS {
        let (_dir, path) = temp_db(variant, &sample_posts());
        let data = posts_data(&path);
        let cancel = CancelToken::new();
        let top = count_top_named_entities(&data, &cancel, 3, "2017-05-31", "2017-06-01").unwrap();
        let expected: Vec<(String, u64)> = [("Merkel", 2), ("Trump", 2), ("Berlin", 1)]
            .map(|(e, n)| (e.to_owned(), n))
            .to_vec();
        assert_eq!(top.top_named_entities, expected, "{variant:?}");
        assert!(
            chrono::DateTime::parse_from_rfc3339(&top.timestamp).is_ok(),
            "{}",
            top.timestamp
        );
        assert!(top.timestamp.ends_with('Z'));
        let all =
            count_top_named_entities(&data, &cancel, 100, "2017-05-31", "2017-06-01").unwrap();
        assert_eq!(all.top_named_entities.len(), 5);
        let empty =
            count_top_named_entities(&data, &cancel, 10, "2020-01-01", "2020-12-31").unwrap();
        assert!(empty.top_named_entities.is_empty());
    }
}

#[test]
fn cancelled_scans_stop_with_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("posts.db");
    let posts: Vec<Post> = (0..5000)
        .map(|i| {
            post(
                "reddit",
                &format!("2017-05-{:02} 10:00:00", 1 + i % 28),
                "Trump",
            )
        })
        .collect();
    make_db(&path, Variant::TextId, &posts);
    let data = posts_data(&path);
    let cancel = CancelToken::new();
    cancel.cancel();
    let err =
        substring_matches_by_platform(&data, &cancel, "t", "2017-05-01", "2017-05-31").unwrap_err();
    assert!(matches!(err, PostsTaskError::Cancelled), "{err:?}");
    let err = count_top_named_entities(&data, &cancel, 1, "2017-05-01", "2017-05-31").unwrap_err();
    assert!(matches!(err, PostsTaskError::Cancelled), "{err:?}");
}

#[test]
fn query_returns_typed_rows() {
    for variant in VARIANTS {
        let (_dir, path) = temp_db(variant, &sample_posts());
        let data = posts_data(&path);
        let cancel = CancelToken::new();
        let rows = query_posts_db(
            &data,
            &cancel,
            "SELECT 1, 2.5, 'text', NULL, x'00ff10', -7 AS neg",
        )
        .unwrap();
        assert_eq!(rows, json!([[1, 2.5, "text", null, "AP8Q", -7]]));
        let rows = query_posts_db(
            &data,
            &cancel,
            "SELECT platform, created_at FROM posts WHERE created_at BETWEEN '2017-05-31' AND \
             '2017-06-01' AND platform = 'reddit' ORDER BY created_at",
        )
        .unwrap();
        assert_eq!(
            rows,
            json!([
                ["reddit", "2017-05-31 11:00:00"],
                ["reddit", "2017-05-31 14:00:00"],
                ["reddit", "2017-05-31 15:00:00"],
                ["reddit", "2017-06-01"]
            ])
        );
        let rows = query_posts_db(&data, &cancel, "PRAGMA table_info(posts)").unwrap();
        assert!(rows.as_array().unwrap().len() >= 8);
        let rows = query_posts_db(&data, &cancel, "SELECT 1 WHERE 0").unwrap();
        assert_eq!(rows, json!([]));
    }
}

#[test]
fn query_refuses_writes_and_leaves_the_file_unchanged() {
    let (dir, path) = temp_db(Variant::TextId, &sample_posts());
    let before = std::fs::read(&path).unwrap();
    let data = posts_data(&path);
    let cancel = CancelToken::new();
    let other = dir.path().join("other.db");
    let attempts = [
        "INSERT INTO posts (id) VALUES ('evil')".to_owned(),
        "UPDATE posts SET platform = 'x'".to_owned(),
        "DELETE FROM posts".to_owned(),
        "DROP TABLE posts".to_owned(),
        "CREATE TABLE evil (x)".to_owned(),
        "CREATE TEMP TABLE evil (x)".to_owned(),
        "CREATE INDEX evil ON posts (type)".to_owned(),
        format!("ATTACH DATABASE '{}' AS other", other.display()),
        format!("VACUUM INTO '{}'", other.display()),
        "VACUUM".to_owned(),
        "PRAGMA user_version = 42".to_owned(),
        "PRAGMA query_only = 0".to_owned(),
        "PRAGMA journal_mode = DELETE".to_owned(),
        "PRAGMA writable_schema = ON".to_owned(),
        "BEGIN".to_owned(),
        "SELECT 1; SELECT 2".to_owned(),
        "SELECT 1; DROP TABLE posts".to_owned(),
        "WITH x AS (SELECT 1) DELETE FROM posts".to_owned(),
        "REPLACE INTO posts (id) VALUES ('id0')".to_owned(),
        "ANALYZE".to_owned(),
        "REINDEX".to_owned(),
    ];
    for sql in &attempts {
        let err = query_posts_db(&data, &cancel, sql).unwrap_err();
        assert_eq!(err.kind(), "QueryRefused", "{sql}: {err}");
    }
    assert!(!other.exists());
    // The pooled connections are still hardened and usable afterwards.
    let rows = query_posts_db(&data, &cancel, "PRAGMA query_only").unwrap();
    assert_eq!(rows, json!([[1]]));
    let rows = query_posts_db(&data, &cancel, "SELECT count(*) FROM posts").unwrap();
    assert_eq!(rows, json!([[11]]));
    drop(data);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn query_errors_are_typed() {
    let (_dir, path) = temp_db(Variant::IntegerId, &sample_posts());
    let data = posts_data_with(
        &path,
        Limits {
            max_query_result_bytes: 4096,
            ..Limits::default()
        },
    );
    let cancel = CancelToken::new();
    let err = query_posts_db(&data, &cancel, "SELECT * FROM bar").unwrap_err();
    assert_eq!(err.kind(), "SqlError");
    assert_eq!(err.to_string(), "no such table: bar");
    let err = query_posts_db(&data, &cancel, "SELEC 1").unwrap_err();
    assert_eq!(err.kind(), "SqlError");
    assert!(err.to_string().contains("syntax error"), "{err}");
    let err = query_posts_db(&data, &cancel, "   ").unwrap_err();
    assert!(matches!(
        err,
        PostsTaskError::InvalidArgument {
            argument: "query",
            ..
        }
    ));
    let err = query_posts_db(&data, &cancel, "-- just a comment").unwrap_err();
    assert_eq!(err.kind(), "QueryRefused", "{err}");
    let err = query_posts_db(
        &data,
        &cancel,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i, \
         'padding padding padding' FROM n",
    )
    .unwrap_err();
    assert_eq!(err.kind(), "ResultTooLarge");
    assert!(err.to_string().contains("narrow the query"), "{err}");
    let err = query_posts_db(&data, &cancel, "SELECT randomblob(200000000)").unwrap_err();
    assert_eq!(err.kind(), "SqlError", "{err}");
    // Just under the cap still works.
    let rows = query_posts_db(
        &data,
        &cancel,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 100) SELECT i FROM n",
    )
    .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 100);
}

#[test]
fn a_cancelled_query_is_interrupted_inside_sqlite() {
    let (_dir, path) = temp_db(Variant::TextId, &sample_posts());
    let data = posts_data(&path);
    let cancel = CancelToken::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    // Produces no rows for a very long time: all the work is inside one SQLite step.
    let err = query_posts_db(
        &data,
        &cancel,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
         SELECT i FROM n WHERE i < 0",
    )
    .unwrap_err();
    canceller.join().unwrap();
    assert!(matches!(err, PostsTaskError::Cancelled), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // The connection went back to the pool clean.
    let rows = query_posts_db(&data, &CancelToken::new(), "SELECT 1").unwrap();
    assert_eq!(rows, json!([[1]]));
}
