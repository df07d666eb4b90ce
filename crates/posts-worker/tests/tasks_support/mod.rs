//! Shared fixtures of the task tests: hand-made posts databases in both schema variants
//! (built with `posts_store::schema`, which posts-store's `schema_write` test checks
//! against the README's DDL), a large synthetic database built once, a tiny
//! deterministic entity extractor, and a worker running while a test body sends jobs.

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jobq::{App, Broker, Client, Worker, WorkerConfig};

use posts_entities::{Entity, EntityExtractor, Label};
use posts_store::read::ReadPool;
use posts_store::schema::{SchemaVariant, create_posts_table_variant};
use posts_worker::tasks::{Limits, PostsData};
use rusqlite::Connection;

/// Which schema a test database uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    TextId,
    IntegerId,
}

pub(crate) const VARIANTS: [Variant; 2] = [Variant::TextId, Variant::IntegerId];

impl Variant {
    fn schema(self) -> SchemaVariant {
        match self {
            Variant::TextId => SchemaVariant::TextId,
            Variant::IntegerId => SchemaVariant::AutoIncrementId,
        }
    }
}

/// One row to insert.
#[derive(Debug, Clone)]
pub(crate) struct Post {
    pub platform: Option<String>,
    pub created_at: String,
    pub blob: Option<String>,
}

/// A post whose blob is a ContentItem-shaped JSON object with `text`.
pub(crate) fn post(platform: &str, created_at: &str, text: &str) -> Post {
    let blob = serde_json::json!({
        "id": format!("{platform}-{created_at}"),
        "post_id": null,
        "parent_id": "",
        "title": null,
        "text": text,
        "author_name_hash": "0f1e",
        "type": "post",
        "embedded_urls": [],
        "created_at": created_at.replace(' ', "T"),
        "engagements": {"like": 0, "comment": 0, "share": 0, "retweet": 0},
    });
    Post {
        platform: Some(platform.to_owned()),
        created_at: created_at.to_owned(),
        blob: Some(blob.to_string()),
    }
}

/// A post with a raw blob (or none).
pub(crate) fn raw_post(platform: Option<&str>, created_at: &str, blob: Option<&str>) -> Post {
    Post {
        platform: platform.map(str::to_owned),
        created_at: created_at.to_owned(),
        blob: blob.map(str::to_owned),
    }
}

/// A posts database with `posts` in a fresh temporary directory (deleted with the
/// returned handle).
pub(crate) fn temp_db(variant: Variant, posts: &[Post]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("posts.db");
    make_db(&path, variant, posts);
    (dir, path)
}

/// Creates a posts database at `path` with `posts` (indexed like the seed).
pub(crate) fn make_db(path: &Path, variant: Variant, posts: &[Post]) {
    let mut conn = Connection::open(path).unwrap();
    create_posts_table_variant(&conn, variant.schema()).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let sql = match variant {
            Variant::TextId => {
                "INSERT INTO posts (id, session_user_id, platform, type, created_at, post_blob) \
                 VALUES (?1, 'u1', ?2, 'post', ?3, ?4)"
            }
            Variant::IntegerId => {
                "INSERT INTO posts (post_id, session_user_id, platform, type, created_at, \
                 post_blob) VALUES (?1, 'u1', ?2, 'post', ?3, ?4)"
            }
        };
        let mut stmt = tx.prepare(sql).unwrap();
        for (i, p) in posts.iter().enumerate() {
            stmt.execute((format!("id{i}"), &p.platform, &p.created_at, &p.blob))
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Capitalised words (with a trailing `'s` dropped) are the entities; enough to test
/// counting without depending on the real extractor's rules.
#[derive(Debug, Default)]
pub(crate) struct CapitalisedWords;

impl EntityExtractor for CapitalisedWords {
    fn extract(&self, text: &str) -> Vec<Entity> {
        text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .map(|w| w.strip_suffix("'s").unwrap_or(w))
            .filter(|w| w.chars().next().is_some_and(char::is_uppercase))
            .map(|w| Entity {
                text: w.to_owned(),
                label: Label::Person,
            })
            .collect()
    }
}

/// Shared task data on `path` with the test extractor.
pub(crate) fn posts_data_with(path: &Path, limits: Limits) -> Arc<PostsData> {
    Arc::new(PostsData::new(
        ReadPool::open(path).unwrap(),
        Arc::new(CapitalisedWords),
        limits,
    ))
}

/// Shared task data on `path` with the test extractor and default limits.
pub(crate) fn posts_data(path: &Path) -> Arc<PostsData> {
    posts_data_with(path, Limits::default())
}

/// The posts the issue's examples talk about, around the 2017-05-31 .. 2017-06-01 range.
pub(crate) fn sample_posts() -> Vec<Post> {
    vec![
        post("twitter", "2017-05-31 09:00:00", "Trump's speech in Ohio"),
        post("twitter", "2017-05-31 10:00:00", "nothing to see"),
        post("reddit", "2017-05-31 11:00:00", "TRUMP TRUMP TRUMP"),
        post(
            "facebook",
            "2017-05-31 12:00:00",
            "#trumptrain Merkel and Trump",
        ),
        post("facebook", "2017-05-31 13:00:00", "Merkel in Berlin"),
        post("reddit", "2017-06-01", "trump at midnight"),
        post("twitter", "2017-06-01 00:00:05", "trump five seconds late"),
        post("twitter", "2017-05-30 23:59:59", "trump a second early"),
        raw_post(Some("reddit"), "2017-05-31 14:00:00", None),
        raw_post(
            Some("reddit"),
            "2017-05-31 15:00:00",
            Some(r#"{"id":"x","text":null}"#),
        ),
        raw_post(
            None,
            "2017-05-31 16:00:00",
            Some(r#"{"text":"trump without platform"}"#),
        ),
    ]
}

/// Rows of the synthetic database: enough that a whole-range scan takes well over the
/// 200 ms time limits the tests use, even in a release build.
pub(crate) const SYNTHETIC_ROWS: u64 = 500_000;

/// A synthetic posts database of [`SYNTHETIC_ROWS`] rows over 2017 (the seed generator's
/// fixed seed, so always the same rows). Built at most once per test binary, and kept in
/// cargo's target tmp directory so later runs reuse it; a build goes to a temporary name
/// first, so an interrupted one is never mistaken for a finished database.
pub(crate) fn synthetic_db() -> &'static Path {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    DB.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join(format!("tasks-synthetic-{SYNTHETIC_ROWS}.db"));
        if !path.is_file() {
            let partial = dir.join(format!(
                "tasks-synthetic-{SYNTHETIC_ROWS}.{}.partial",
                std::process::id()
            ));
            seed_synthetic(&partial, SYNTHETIC_ROWS);
            std::fs::rename(&partial, &path).unwrap();
        }
        path
    })
}

/// The one call into the seed generator.
fn seed_synthetic(path: &Path, rows: u64) {
    use posts_seed::{SeedOptions, SyntheticOptions};
    let mut options = SeedOptions::synthetic(path, SyntheticOptions::new(rows));
    options.mode = posts_store::write::WriteMode::DropTable;
    posts_seed::seed(&options, &mut |_| {}).unwrap();
}

/// Runs `body` with a client on `broker` while a worker with `concurrency` slots (the
/// default when `None`) runs `app`, then stops the worker gracefully.
pub(crate) async fn with_worker<F, Fut>(
    app: App,
    broker: Broker,
    concurrency: Option<usize>,
    body: F,
) where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut config = WorkerConfig::default();
    if let Some(concurrency) = concurrency {
        config.concurrency = concurrency;
    }
    config.heartbeat_interval = Duration::from_millis(500);
    config.grace_period = Duration::from_secs(5);
    let worker = Worker::new(app, broker.clone(), config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    body(Client::new(broker)).await;
    let _ = stop.send(());
    running
        .await
        .expect("the worker task")
        .expect("the worker stops cleanly");
}
