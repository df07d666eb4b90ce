//! The tasks end to end through jobq: a worker in-process, jobs sent by a client, on the
//! memory broker and on a real Redis from redis-harness, for both schema variants.

mod tasks_support;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jobq::{App, Broker, Client, Error, SendOptions, TaskFailure};
use posts_worker::tasks::{PostsData, register};
use serde_json::{Value, json};
use tasks_support::*;

const WAIT: Duration = Duration::from_secs(30);

/// Runs `body` with a client while a worker with the posts tasks consumes `broker`.
async fn with_posts_worker<F, Fut>(broker: Broker, data: Arc<PostsData>, body: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut app = App::new();
    register(&mut app, data);
    with_worker(app, broker, Some(2), body).await;
}

async fn run(client: &Client, task: &str, args: Value) -> Value {
    client
        .delay::<Value>(task, args)
        .await
        .unwrap()
        .get(WAIT)
        .await
        .unwrap_or_else(|e| panic!("{task}: {e}"))
}

async fn failure(client: &Client, task: &str, args: Value) -> TaskFailure {
    failure_with(client, task, args, SendOptions::new()).await
}

async fn failure_with(
    client: &Client,
    task: &str,
    args: Value,
    options: SendOptions,
) -> TaskFailure {
    let sent = client
        .apply_async::<Value>(task, args.clone(), options)
        .await
        .unwrap()
        .unwrap();
    match sent.get(WAIT).await {
        Err(Error::Failed(failure)) => failure,
        other => panic!("{task}({args}) should fail, got {other:?}"),
    }
}

/// Everything the issue asks of the tasks through the queue, against one broker.
async fn exercise(client: Client, path: &Path) {
    let before = std::fs::read(path).unwrap();

    let counts = run(
        &client,
        "substring_matches_by_platform",
        json!(["trump", "2017-05-31", "2017-06-01"]),
    )
    .await;
    assert_eq!(
        counts,
        json!({"facebook": 1, "reddit": 2, "twitter": 1, "total_rows": 9})
    );
    let named = run(
        &client,
        "substring_matches_by_platform",
        json!({"match": "merkel", "from_": "2017-05-31", "to": "2017-06-01"}),
    )
    .await;
    assert_eq!(named, json!({"facebook": 2, "total_rows": 9}));

    let rows = run(
        &client,
        "query_posts_db",
        json!([
            "SELECT platform, created_at FROM posts WHERE created_at BETWEEN '2017-05-31' \
                AND '2017-06-01' AND platform = 'facebook' ORDER BY created_at"
        ]),
    )
    .await;
    assert_eq!(
        rows,
        json!([
            ["facebook", "2017-05-31 12:00:00"],
            ["facebook", "2017-05-31 13:00:00"]
        ])
    );

    let key = format!("tasks-test:{}:top", uuid_like());
    let done = run(
        &client,
        "count_top_named_entities",
        json!([2, "2017-05-31", "2017-06-01", key]),
    )
    .await;
    assert_eq!(done, json!(true));
    let stored: Value =
        serde_json::from_str(&client.get_key(&key).await.unwrap().unwrap()).unwrap();
    assert_eq!(
        stored["top_named_entities"],
        json!([["Merkel", 2], ["Trump", 2]])
    );
    assert!(stored["timestamp"].as_str().unwrap().ends_with('Z'));
    let done = run(
        &client,
        "count_top_named_entities",
        json!([5, "2030-01-01", "2030-01-02", key]),
    )
    .await;
    assert_eq!(done, json!(true));
    let stored: Value =
        serde_json::from_str(&client.get_key(&key).await.unwrap().unwrap()).unwrap();
    assert_eq!(stored["top_named_entities"], json!([]));
    assert!(client.delete_key(&key).await.unwrap());

    // Bad arguments: types and arity are jobq's InvalidArguments, values are InvalidArgument.
    let f = failure(
        &client,
        "count_top_named_entities",
        json!(["ten", "2017-05-31", "2017-06-01", "k"]),
    )
    .await;
    assert_eq!(f.kind, "InvalidArguments");
    assert!(f.message.contains("\"k\""), "{f}");
    let f = failure(
        &client,
        "count_top_named_entities",
        json!([0, "2017-05-31", "2017-06-01", "k"]),
    )
    .await;
    assert_eq!(f.kind, "InvalidArgument");
    assert!(f.message.contains("\"k\""), "{f}");
    let f = failure(&client, "substring_matches_by_platform", json!(["trump"])).await;
    assert_eq!(f.kind, "InvalidArguments");
    assert!(f.message.contains("from_"), "{f}");
    let f = failure(
        &client,
        "substring_matches_by_platform",
        json!(["a", "2017-05-31", "2017-06-01", "extra"]),
    )
    .await;
    assert_eq!(f.kind, "InvalidArguments");
    let f = failure(
        &client,
        "substring_matches_by_platform",
        json!([5, "2017-05-31", "2017-06-01"]),
    )
    .await;
    assert_eq!(f.kind, "InvalidArguments");
    assert!(f.message.contains("match"), "{f}");
    let f = failure(
        &client,
        "substring_matches_by_platform",
        json!(["a", "2017-13-45", "2017-06-01"]),
    )
    .await;
    assert_eq!(f.kind, "InvalidArgument");
    assert!(f.message.contains("from_"), "{f}");
    let f = failure(
        &client,
        "substring_matches_by_platform",
        json!(["a", "2017-05-31", "2017-06-01' OR '1'='1"]),
    )
    .await;
    assert_eq!(f.kind, "InvalidArgument");
    assert!(f.message.contains("\"to\""), "{f}");
    let f = failure(&client, "query_posts_db", json!([])).await;
    assert_eq!(f.kind, "InvalidArguments");

    // Hostile and failing SQL.
    for sql in [
        "DROP TABLE posts",
        "DELETE FROM posts",
        "ATTACH DATABASE 'evil.db' AS evil",
        "PRAGMA user_version = 3",
        "SELECT 1; DELETE FROM posts",
    ] {
        let f = failure(&client, "query_posts_db", json!([sql])).await;
        assert_eq!(f.kind, "QueryRefused", "{sql}: {f}");
    }
    let f = failure(&client, "query_posts_db", json!(["SELECT * FROM bar"])).await;
    assert_eq!(f.kind, "SqlError");
    assert_eq!(f.message, "no such table: bar");
    let f = failure(
        &client,
        "query_posts_db",
        json!(["WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i, 'padding' FROM n"]),
    )
    .await;
    assert_eq!(f.kind, "ResultTooLarge");
    assert!(f.message.contains("narrow the query"), "{f}");

    // A query past its time limit is interrupted and the worker keeps serving.
    let f = failure_with(
        &client,
        "query_posts_db",
        json!(["WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n WHERE i < 0"]),
        SendOptions::new().time_limit(Duration::from_millis(300)),
    )
    .await;
    assert_eq!(f.kind, "TimeLimitExceeded");
    let rows = run(
        &client,
        "query_posts_db",
        json!(["SELECT count(*) FROM posts"]),
    )
    .await;
    assert_eq!(rows, json!([[11]]));

    assert_eq!(std::fs::read(path).unwrap(), before, "the database changed");
}

/// A short random-enough suffix for keys outside the namespace.
fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_through_the_memory_broker() {
    for variant in VARIANTS {
        let (_dir, path) = temp_db(variant, &sample_posts());
        let broker = Broker::memory("posts-tasks").unwrap();
        with_posts_worker(broker, posts_data(&path), |client| exercise(client, &path)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_through_redis() {
    let redis = redis_harness::TestRedis::shared().unwrap_or_else(|e| panic!("{e}"));
    for variant in VARIANTS {
        let (_dir, path) = temp_db(variant, &sample_posts());
        let namespace = redis_harness::unique_namespace("tasks");
        let broker = Broker::redis(redis.url(), &namespace).await.unwrap();
        with_posts_worker(broker, posts_data(&path), |client| exercise(client, &path)).await;
    }
}
