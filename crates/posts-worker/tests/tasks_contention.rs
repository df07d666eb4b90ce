//! Several scan tasks at once on one worker at its default concurrency, sharing the
//! default read pool of a 500,000-row synthetic database: every result equals the same
//! task run alone, and no task fails waiting for a pooled connection.

mod tasks_support;

use std::sync::Arc;
use std::time::Duration;

use jobq::{App, AsyncResult, Broker};
use posts_worker::tasks::{
    CancelToken, count_top_named_entities, register, substring_matches_by_platform,
};
use serde_json::{Value, json};
use tasks_support::*;

const WAIT: Duration = Duration::from_secs(300);

/// Ranges that the planner splits in each of its three ways: rowid spans (the whole
/// year), created_at quantiles (a quarter, a week) and a single part (an hour).
const RANGES: [(&str, &str); 4] = [
    ("2017-01-01", "2017-12-31 23:59:59"),
    ("2017-04-01", "2017-06-30 23:59:59"),
    ("2017-06-01", "2017-06-07 23:59:59"),
    ("2017-06-01 10:00:00", "2017-06-01 11:00:00"),
];

/// The ranges the (slower) entity task runs on.
const ENTITY_RANGES: [(&str, &str); 3] = [RANGES[1], RANGES[2], RANGES[3]];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scans_match_single_runs_without_pool_timeouts() {
    let data = posts_data(synthetic_db());

    // Each task run alone, one after the other.
    let cancel = CancelToken::new();
    let mut alone_substring = Vec::new();
    for (from, to) in RANGES {
        let counts = substring_matches_by_platform(&data, &cancel, "trump", from, to).unwrap();
        alone_substring.push(serde_json::to_value(counts).unwrap());
    }
    let mut alone_entities = Vec::new();
    for (from, to) in ENTITY_RANGES {
        let top = count_top_named_entities(&data, &cancel, 10, from, to).unwrap();
        alone_entities.push(serde_json::to_value(top.top_named_entities).unwrap());
    }
    assert!(
        alone_substring[0]["total_rows"].as_u64() == Some(SYNTHETIC_ROWS),
        "the whole year is every post: {}",
        alone_substring[0]
    );
    assert!(
        alone_entities.iter().any(|top| top != &json!([])),
        "no range found any entity, so the comparison proves little"
    );

    // The same tasks all sent at once to a worker with the default concurrency.
    let mut app = App::new();
    register(&mut app, Arc::clone(&data));
    let broker = Broker::memory("tasks-contention").expect("a valid namespace");
    with_worker(app, broker, None, |client| async move {
        let mut substring: Vec<AsyncResult<Value>> = Vec::new();
        let mut entities: Vec<(AsyncResult<Value>, String)> = Vec::new();
        let mut counts: Vec<AsyncResult<Value>> = Vec::new();
        for (i, (from, to)) in RANGES.into_iter().enumerate() {
            substring.push(
                client
                    .delay("substring_matches_by_platform", json!(["trump", from, to]))
                    .await
                    .unwrap(),
            );
            if let Some((from, to)) = ENTITY_RANGES.get(i) {
                let key = format!("tasks-contention:{}:{i}", std::process::id());
                let sent = client
                    .delay("count_top_named_entities", json!([10, from, to, key]))
                    .await
                    .unwrap();
                entities.push((sent, key));
            }
            counts.push(
                client
                    .delay("query_posts_db", json!(["SELECT count(*) FROM posts"]))
                    .await
                    .unwrap(),
            );
        }

        for (sent, alone) in substring.into_iter().zip(&alone_substring) {
            let got = sent.get(WAIT).await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&got, alone);
        }
        for ((sent, key), alone) in entities.into_iter().zip(&alone_entities) {
            let done = sent.get(WAIT).await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(done, json!(true));
            let stored: Value =
                serde_json::from_str(&client.get_key(&key).await.unwrap().unwrap()).unwrap();
            assert_eq!(&stored["top_named_entities"], alone, "{key}");
        }
        for sent in counts {
            let got = sent.get(WAIT).await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got, json!([[SYNTHETIC_ROWS]]));
        }
    })
    .await;
}
