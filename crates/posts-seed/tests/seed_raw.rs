//! Seeding from raw files written the way other people write them: importer edge cases,
//! per-record error reports, strict mode, duplicates, the session user and the
//! user-pool simulation.

use posts_model::{ContentItem, Platform, Timestamp};
use posts_seed::{
    ProgressEvent, RecordError, SeedError, SeedOptions, SeedSummary, Source, UserPoolOptions,
    WriteMode,
};
use rusqlite::Connection;
use serde_json::{Value, json};

const FACEBOOK_HEADER: &str = "id,parent_id,all_post_ids,text,author_name_hash,type,created_at,like,love,haha,wow,sad,angry,comment,share";
const REDDIT_HEADER: &str =
    "id,title,parent_id,post_id,text,author_name_hash,type,created_at,upvotes,downvotes";
const ISSUE_BLOB: &str = r#"{"id":"a1","post_id":null,"parent_id":"","title":null,"text":"Truth!","author_name_hash":"0f..","type":"comment","embedded_urls":[],"created_at":"2017-05-31T15:59:28","engagements":{"like":0,"love":0,"care":0,"haha":0,"wow":0,"sad":0,"angry":0,"comment":0,"share":0}}"#;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.path().join("raw")).unwrap_or_else(|e| panic!("{e}"));
        Fixture { dir }
    }

    fn file(&self, name: &str, text: &str) -> &Self {
        std::fs::write(self.dir.path().join("raw").join(name), text)
            .unwrap_or_else(|e| panic!("{e}"));
        self
    }

    fn db(&self) -> std::path::PathBuf {
        self.dir.path().join("posts.db")
    }

    fn options(&self) -> SeedOptions {
        let mut options = SeedOptions::raw(self.db(), self.dir.path().join("raw"));
        options.now = Timestamp::parse("2024-06-01 12:00:00").ok();
        options.salt = "pepper".to_owned();
        options
    }

    fn seed(&self) -> SeedSummary {
        posts_seed::seed(&self.options(), &mut |_| {}).unwrap_or_else(|e| panic!("{e}"))
    }

    fn rows(&self) -> Vec<Row> {
        let conn = Connection::open(self.db()).unwrap_or_else(|e| panic!("{e}"));
        let mut stmt = conn
            .prepare("SELECT id, session_timestamp, session_user_id, platform, type, author_name_hash, created_at, post_blob FROM posts ORDER BY rowid")
            .unwrap_or_else(|e| panic!("{e}"));
        stmt.query_map([], |r| {
            Ok(Row {
                id: r.get(0)?,
                session_timestamp: r.get(1)?,
                session_user_id: r.get(2)?,
                platform: r.get(3)?,
                content_type: r.get(4)?,
                author: r.get(5)?,
                created_at: r.get(6)?,
                blob: r.get(7)?,
            })
        })
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

#[derive(Debug)]
struct Row {
    id: String,
    session_timestamp: String,
    session_user_id: String,
    platform: String,
    content_type: String,
    author: String,
    created_at: String,
    blob: String,
}

impl Row {
    fn json(&self) -> Value {
        serde_json::from_str(&self.blob).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn rejection(summary: &SeedSummary, record: u64) -> &RecordError {
    summary
        .rejected_records
        .iter()
        .find(|r| r.record == record)
        .unwrap_or_else(|| {
            panic!(
                "no rejection of record {record}: {:?}",
                summary.rejected_records
            )
        })
}

#[test]
fn facebook_csv_edge_cases() {
    let fixture = Fixture::new();
    let csv = format!(
        "{FACEBOOK_HEADER}\n\
         p1,,p1,\"Line one\nline \"\"two\"\" https://example.com/x.\",h1,Post,2017-05-31 15:59:28,993.0,,1,0,0,0,2.0,3\n\
         c1,p1,p1,Truth!,h2,Comment,2017-05-31 16:00:00,-1,0,0,0,0,0,0,0\n\
         c2,p1,p1,bad time,h2,Comment,31/05/2017,1,0,0,0,0,0,0,0\n\
         c3,p1,p1,too few,h2,Comment\n\
         c4,p1,p1,fine,h3,comment,2017-05-31T16:01:00Z,1,0,0,0,0,0,0,0\n\
         c5,p1,p1,\"cut off in the mid"
    );
    fixture.file("facebook.csv", &csv);
    let summary = fixture.seed();
    let counts = summary
        .platforms
        .get(&Platform::Facebook)
        .copied()
        .unwrap_or_default();
    assert_eq!(
        (counts.loaded, counts.rejected),
        (2, 4),
        "{:?}",
        summary.rejected_records
    );

    let negative = rejection(&summary, 2);
    assert_eq!(negative.field.as_deref(), Some("like"));
    assert!(negative.reason.contains("negative"), "{negative}");
    assert_eq!(
        negative.line,
        Some(4),
        "the quoted newline makes record 2 start on line 4"
    );
    assert_eq!(rejection(&summary, 3).field.as_deref(), Some("created_at"));
    assert!(rejection(&summary, 4).reason.contains("expected 15 fields"));
    assert!(rejection(&summary, 6).reason.contains("unterminated"));
    assert!(rejection(&summary, 6).file.ends_with("facebook.csv"));

    let rows = fixture.rows();
    let post = rows[0].json();
    assert_eq!(
        post["text"],
        json!("Line one\nline \"two\" https://example.com/x.")
    );
    assert_eq!(post["type"], json!("post"));
    assert_eq!(post["post_id"], json!("p1"));
    assert_eq!(post["parent_id"], Value::Null);
    assert_eq!(post["embedded_urls"], json!(["https://example.com/x"]));
    assert_eq!(
        post["engagements"],
        json!({"like":993,"love":0,"care":0,"haha":1,"wow":0,"sad":0,"angry":0,"comment":2,"share":3})
    );
    assert_eq!(rows[0].created_at, "2017-05-31 15:59:28");
    assert_eq!(
        (rows[1].id.as_str(), rows[1].content_type.as_str()),
        ("c4", "comment")
    );
    assert_eq!(rows[1].json()["parent_id"], json!("p1"));
}

#[test]
fn reddit_csv_clamps_negative_votes_and_keeps_removed_text() {
    let fixture = Fixture::new();
    fixture.file(
        "reddit.csv",
        &format!(
            "{REDDIT_HEADER}\n\
             r1,Big news from Ohio,,r1,,h1,post,2019-03-01 10:00:00,-5,2\n\
             r2,,r1,r1,[removed],h2,comment,2019-03-01 11:00:00,3.0,\n\
             r3,,r1,r1,\"[deleted]\",h2,comment,2019-03-01 11:00:00,x,0\n"
        ),
    );
    let summary = fixture.seed();
    assert_eq!(summary.rows_written, 2);
    assert_eq!(rejection(&summary, 3).field.as_deref(), Some("upvotes"));
    let rows = fixture.rows();
    let post = rows[0].json();
    assert_eq!(post["title"], json!("Big news from Ohio"));
    assert_eq!(post["text"], json!(""));
    assert_eq!(
        post["engagements"],
        json!({"upvote":0,"downvote":2,"score":-7,"comment":0,"award":0})
    );
    let comment = rows[1].json();
    assert_eq!(comment["text"], json!("[removed]"));
    assert_eq!(comment["title"], Value::Null);
    assert_eq!(comment["engagements"]["upvote"], json!(3));
    assert_eq!(rows[1].platform, "reddit");
}

#[test]
fn twitter_json_maps_replies_urls_and_survives_truncation() {
    let fixture = Fixture::new();
    let tweets = r#"[
      {"id":"100","author_id":"9","created_at":"2021-01-06 18:00:00","text":"Big day in Washington https://t.co/x","lang":"en",
       "public_metrics":{"retweet_count":5,"reply_count":1,"like_count":20,"quote_count":2},
       "entities":{"urls":[{"url":"https://t.co/x","expanded_url":"https://www.npr.org/story"}]},"source":"ignored"},
      {"id":"101","author_id":"8","created_at":"2021-01-06 18:05:00","text":"@someone agreed","lang":"en",
       "public_metrics":{"retweet_count":0,"reply_count":0,"like_count":1,"quote_count":0},
       "referenced_tweets":[{"type":"quoted","id":"7"},{"type":"replied_to","id":"100"}]},
      {"id":"102","author_id":"8","created_at":"2021-01-06 18:06:00","text":"neg",
       "public_metrics":{"retweet_count":0,"reply_count":0,"like_count":-1,"quote_count":0}},
      {"id":"103","author_id":"8","created_at":"2021-01-06 18:07:00","text":"cut"#;
    fixture.file("twitter.json", tweets);
    let summary = fixture.seed();
    assert_eq!(summary.rows_written, 2);
    assert_eq!(
        rejection(&summary, 3).field.as_deref(),
        Some("public_metrics.like_count")
    );
    assert!(rejection(&summary, 4).reason.contains("invalid JSON"));
    let rows = fixture.rows();
    let first = rows[0].json();
    assert_eq!(first["type"], json!("post"));
    assert_eq!(first["author_name_hash"], json!("9"));
    assert_eq!(first["language"], json!("en"));
    assert_eq!(first["embedded_urls"], json!(["https://www.npr.org/story"]));
    assert_eq!(
        first["engagements"],
        json!({"retweet":5,"like":20,"comment":1,"share":2})
    );
    let reply = rows[1].json();
    assert_eq!(reply["type"], json!("comment"));
    assert_eq!(reply["parent_id"], json!("100"));
    assert_eq!(rows[1].author, "8");
}

#[test]
fn jsonl_items_keep_their_exact_json_and_bad_lines_are_reported() {
    let fixture = Fixture::new();
    let reddit_item = r#"{"id":"r9","text":"hi","author_name_hash":"x","type":"post","created_at":"2020-01-01T00:00:00","engagements":{"score":1,"comment":0,"award":0}}"#;
    fixture
        .file(
            "facebook.jsonl",
            &format!("{ISSUE_BLOB}\n\n{reddit_item}\n{{\"id\":\"trunc"),
        )
        .file("notes.jsonl", "{}\n");
    let summary = fixture.seed();
    assert_eq!(summary.rows_written, 1);
    let wrong_platform = rejection(&summary, 2);
    assert_eq!(wrong_platform.field.as_deref(), Some("engagements"));
    assert_eq!(wrong_platform.line, Some(3));
    assert!(rejection(&summary, 3).reason.contains("invalid JSON"));
    let unnamed = rejection(&summary, 0);
    assert!(unnamed.file.ends_with("notes.jsonl") && unnamed.platform.is_none());
    let rows = fixture.rows();
    let expected: Value = serde_json::from_str(ISSUE_BLOB).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows[0].json(), expected);
    assert_eq!(rows[0].created_at, "2017-05-31 15:59:28");
}

#[test]
fn every_row_belongs_to_the_salted_test_user() {
    let fixture = Fixture::new();
    fixture.file("facebook.jsonl", &format!("{ISSUE_BLOB}\n"));
    fixture.file(
        "reddit.csv",
        &format!("{REDDIT_HEADER}\nr1,T,,r1,body,h,post,2019-03-01 10:00:00,1,0\n"),
    );
    let summary = fixture.seed();
    assert_eq!((summary.users, summary.sessions), (1, 2));
    let rows = fixture.rows();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row.session_user_id, sha256_hex("test_userpepper"));
        assert_eq!(row.session_timestamp, "2024-06-01 12:00:00");
    }
}

#[test]
fn duplicate_ids_are_reported_not_lost_silently() {
    let fixture = Fixture::new();
    fixture
        .file("facebook.jsonl", &format!("{ISSUE_BLOB}\n"))
        .file("facebook-more.jsonl", &format!("{ISSUE_BLOB}\n"));
    let summary = fixture.seed();
    assert_eq!(summary.rows_written, 1);
    let duplicate = rejection(&summary, 1);
    assert!(duplicate.file.ends_with("facebook.jsonl"), "{duplicate}");
    assert!(duplicate.reason.contains("duplicate id"), "{duplicate}");
}

#[test]
fn strict_mode_writes_nothing_on_the_first_bad_record() {
    let fixture = Fixture::new();
    fixture.file(
        "reddit.csv",
        &format!(
            "{REDDIT_HEADER}\nr1,T,,r1,body,h,post,2019-03-01 10:00:00,1,0\nr2,T,,r2,body,h,post,yesterday,1,0\n"
        ),
    );
    let mut options = fixture.options();
    options.strict = true;
    let err = posts_seed::seed(&options, &mut |_| {});
    match err {
        Err(SeedError::Strict(record)) => {
            assert_eq!(
                (record.record, record.field.as_deref()),
                (2, Some("created_at"))
            );
        }
        other => panic!("expected a strict-mode error, got {other:?}"),
    }
    let conn = Connection::open(fixture.db()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(posts_store::schema::detect_variant(&conn).ok(), Some(None));
}

#[test]
fn an_existing_db_is_not_touched_without_a_flag() {
    let fixture = Fixture::new();
    fixture.file("facebook.jsonl", &format!("{ISSUE_BLOB}\n"));
    fixture.seed();
    let err = posts_seed::seed(&fixture.options(), &mut |_| {});
    assert!(
        matches!(
            err,
            Err(SeedError::Store(
                posts_store::StoreError::TableExists { .. }
            ))
        ),
        "{err:?}"
    );
    let mut upsert = fixture.options();
    upsert.mode = WriteMode::Upsert;
    assert_eq!(
        posts_seed::seed(&upsert, &mut |_| {})
            .map(|s| s.rows_written)
            .ok(),
        Some(1)
    );
    assert_eq!(fixture.rows().len(), 1);
}

#[test]
fn an_empty_raw_dir_is_an_error() {
    let fixture = Fixture::new();
    let err = posts_seed::seed(&fixture.options(), &mut |_| {});
    assert!(matches!(err, Err(SeedError::NoInput { .. })), "{err:?}");
}

fn many_items(fixture: &Fixture, platform: &str, n: usize) {
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let mut item: Value =
                serde_json::from_str(ISSUE_BLOB).unwrap_or_else(|e| panic!("{e}"));
            item["id"] = json!(format!("{platform}-{i}"));
            item["created_at"] = json!(format!("2017-05-{:02}T10:00:00", i % 28 + 1));
            if platform == "reddit" {
                item["engagements"] =
                    json!({"upvote":1,"downvote":0,"score":1,"comment":0,"award":0});
            }
            item.to_string()
        })
        .collect();
    fixture.file(&format!("{platform}.jsonl"), &(lines.join("\n") + "\n"));
}

#[test]
fn user_pool_uses_each_item_once_in_chronological_sessions() {
    let fixture = Fixture::new();
    many_items(&fixture, "facebook", 300);
    many_items(&fixture, "reddit", 100);
    let mut options = fixture.options();
    let mut pool = UserPoolOptions::new(8);
    pool.items_per_session = 10;
    options.source = Source::Raw {
        dir: fixture.dir.path().join("raw"),
        users: Some(pool),
    };
    let summary = posts_seed::seed(&options, &mut |_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.rows_written, 400);
    assert_eq!(summary.users, 8);
    let rows = fixture.rows();
    let ids: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 400);
    let mut per_user: std::collections::BTreeMap<&str, Vec<&Row>> = Default::default();
    for row in &rows {
        per_user
            .entry(row.session_user_id.as_str())
            .or_default()
            .push(row);
    }
    assert_eq!(per_user.len(), 8);
    for feed in per_user.values() {
        let platforms: std::collections::BTreeSet<&str> =
            feed.iter().map(|r| r.platform.as_str()).collect();
        assert_eq!(platforms.len(), 1, "a user reads one platform");
        let times: Vec<&str> = feed.iter().map(|r| r.session_timestamp.as_str()).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "sessions out of order: {times:?}"
        );
        assert!(times.iter().all(|t| *t <= "2024-06-01 12:00:00"));
        let sessions: std::collections::BTreeSet<&str> = times.iter().copied().collect();
        assert_eq!(sessions.len(), feed.len().div_ceil(10));
    }
    let again = Fixture::new();
    many_items(&again, "facebook", 300);
    many_items(&again, "reddit", 100);
    let mut same = options.clone();
    same.db_path = again.db();
    posts_seed::seed(&same, &mut |_| {}).unwrap_or_else(|e| panic!("{e}"));
    let pairs = |rows: Vec<Row>| -> Vec<(String, String, String)> {
        rows.into_iter()
            .map(|r| (r.id, r.session_user_id, r.session_timestamp))
            .collect()
    };
    assert_eq!(
        pairs(rows),
        pairs(again.rows()),
        "the same seed gives the same pool"
    );
}

#[test]
fn decoded_blobs_round_trip_from_the_db() {
    let fixture = Fixture::new();
    many_items(&fixture, "reddit", 5);
    fixture.seed();
    for row in fixture.rows() {
        let item = ContentItem::from_json(&row.blob).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            serde_json::from_str::<Value>(&item.to_json()).ok(),
            Some(row.json())
        );
    }
}

#[test]
fn progress_reports_files_and_rows() {
    let fixture = Fixture::new();
    many_items(&fixture, "twitter", 0);
    many_items(&fixture, "reddit", 3);
    let mut events = Vec::new();
    posts_seed::seed(&fixture.options(), &mut |e| events.push(e.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        events.first(),
        Some(ProgressEvent::Started { total_rows: None })
    ));
    assert!(
        events.iter().any(
            |e| matches!(e, ProgressEvent::Reading { path } if path.ends_with("reddit.jsonl"))
        )
    );
    assert!(events.contains(&ProgressEvent::Rows { done: 3 }));
    assert_eq!(events.last(), Some(&ProgressEvent::Finishing));
}

/// Lower-case hex SHA-256, as the pipeline derives session user ids.
fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}
