//! Golden end-to-end run: `sample_data/raw` seeded by `posts-worker seed`, a
//! `posts-worker run` process on a throwaway Redis with the real entity extractor, and the
//! three tasks sent through `posts-worker submit --wait` (and `get-key`), with their exact
//! JSON asserted.
//!
//! Where an expected value can be computed without the code under test, it is: the
//! substring counts and the query rows are derived here from the raw files with plain Rust
//! (the `raw` module), so a change in the sample data moves both sides together. The
//! top-10 entities cannot be derived without an extractor, so they are literals, checked
//! by reading the sample posts of 2017-05-31 (and cross-checked below against the raw
//! texts: no entity can be counted in more posts than contain its text).

mod binary_support;

use std::collections::BTreeMap;

use binary_support::{Deployment, assert_success, json};
use serde_json::{Value, json};

/// The demo's range: the posts dated 2017-05-31 (text order, as SQLite compares them).
const FROM: &str = "2017-05-31";
const TO: &str = "2017-06-01";

/// The top 10 entities of 2017-05-31 with the posts mentioning each: pinned from a run and
/// checked against the sample posts of that day, where the texts appear in 40 ("Trump"),
/// 15, 10, 10, 13 ("Russia", also inside "Russian"), 8, 6, 7, 5 and 6 posts.
const TOP10_ON_2017_05_31: [(&str, u64); 10] = [
    ("Trump", 39),
    ("Paris", 14),
    ("Comey", 10),
    ("LeBron", 9),
    ("Russia", 8),
    ("China", 7),
    // Ties are ordered by entity text.
    ("Amber Rudd", 6),
    ("Corbyn", 6),
    ("CNN", 5),
    ("Russian", 5),
];

#[test]
fn the_three_tasks_give_the_pinned_results_on_the_sample_data() {
    let raw = raw::items();
    let deployment = Deployment::seeded("golden");
    let worker = deployment.start_run("worker", &["--no-scheduler", "--concurrency", "2"]);
    deployment.wait_for_workers(1);

    substring_counts_match_the_raw_files(&deployment, &raw);
    query_rows_match_the_raw_files(&deployment, &raw);
    top_entities_are_the_pinned_ten(&deployment, &raw);

    let stats = deployment.status()["stats"].clone();
    assert_eq!(stats["failed"], 0, "{stats}");
    worker.terminate_cleanly();
}

/// `submit --wait` for `task ARGS`; the result JSON.
fn submit(deployment: &Deployment, task: &str, args: &[&str]) -> Value {
    let command = [&["submit", task], args, &["--wait", "60"]].concat();
    deployment.run_json(&command)
}

fn substring_counts_match_the_raw_files(deployment: &Deployment, raw: &[raw::Item]) {
    for needle in ["trump", "COVFEFE", "Paris"] {
        let result = submit(
            deployment,
            "substring_matches_by_platform",
            &[needle, FROM, TO],
        );
        let in_range: Vec<&raw::Item> = raw.iter().filter(|i| i.in_range(FROM, TO)).collect();
        let mut expected = serde_json::Map::new();
        let mut per_platform: BTreeMap<&str, u64> = BTreeMap::new();
        for item in &in_range {
            if item.text.to_lowercase().contains(&needle.to_lowercase()) {
                *per_platform.entry(item.platform).or_default() += 1;
            }
        }
        for (platform, n) in per_platform {
            expected.insert(platform.to_owned(), json!(n));
        }
        expected.insert("total_rows".to_owned(), json!(in_range.len()));
        assert_eq!(result, Value::Object(expected), "needle {needle:?}");
    }
    // The sample data's README documents the `trump` figures; pin them too, so a change
    // to the raw files that moved both sides above still shows up.
    let trump = submit(
        deployment,
        "substring_matches_by_platform",
        &["trump", FROM, TO],
    );
    assert_eq!(
        trump,
        json!({"facebook": 18, "reddit": 17, "twitter": 16, "total_rows": 282})
    );
}

fn query_rows_match_the_raw_files(deployment: &Deployment, raw: &[raw::Item]) {
    // Items per platform and type: the importers' type mapping.
    let rows = submit(
        deployment,
        "query_posts_db",
        &[
            "SELECT platform, type, COUNT(*) FROM posts GROUP BY platform, type ORDER BY platform, type",
        ],
    );
    let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for item in raw {
        *counts.entry((item.platform, item.kind)).or_default() += 1;
    }
    let expected: Vec<Value> = counts
        .into_iter()
        .map(|((platform, kind), n)| json!([platform, kind, n]))
        .collect();
    assert_eq!(rows, Value::Array(expected));

    // The range's boundaries per platform: which timestamps the stored text keeps.
    let rows = submit(
        deployment,
        "query_posts_db",
        &[&format!(
            "SELECT platform, COUNT(*), MIN(created_at), MAX(created_at) FROM posts \
             WHERE created_at BETWEEN '{FROM}' AND '{TO}' GROUP BY platform ORDER BY platform"
        )],
    );
    let mut spans: BTreeMap<&str, (u64, &str, &str)> = BTreeMap::new();
    for item in raw.iter().filter(|i| i.in_range(FROM, TO)) {
        let at = item.created_at.as_str();
        let span = spans.entry(item.platform).or_insert((0, at, at));
        span.0 += 1;
        span.1 = span.1.min(at);
        span.2 = span.2.max(at);
    }
    let expected: Vec<Value> = spans
        .into_iter()
        .map(|(platform, (n, first, last))| json!([platform, n, first, last]))
        .collect();
    assert_eq!(rows, Value::Array(expected));

    // The most-liked Facebook posts: the engagement columns reach the stored blob as
    // integers ("993.0" and "" in the CSV are read as 993 and 0).
    let rows = submit(
        deployment,
        "query_posts_db",
        &[
            "SELECT id, json_extract(post_blob, '$.engagements.like') AS likes FROM posts \
           WHERE platform = 'facebook' AND type = 'post' ORDER BY likes DESC, id LIMIT 3",
        ],
    );
    let mut liked: Vec<(u64, &str)> = raw
        .iter()
        .filter(|i| i.platform == "facebook" && i.kind == "post")
        .map(|i| (i.facebook_likes.expect("a Facebook item"), i.id.as_str()))
        .collect();
    liked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let expected: Vec<Value> = liked
        .into_iter()
        .take(3)
        .map(|(likes, id)| json!([id, likes]))
        .collect();
    assert_eq!(rows, Value::Array(expected));
}

fn top_entities_are_the_pinned_ten(deployment: &Deployment, raw: &[raw::Item]) {
    let key = format!("{}:golden:top_named_entities", deployment.namespace);
    let written = submit(
        deployment,
        "count_top_named_entities",
        &["10", FROM, TO, &key],
    );
    assert_eq!(written, Value::Bool(true));
    let out = deployment.run(&["get-key", &key]);
    assert_success(&out, "posts-worker get-key");
    let report = json(&out.stdout);

    let expected: Vec<Value> = TOP10_ON_2017_05_31
        .iter()
        .map(|(entity, n)| json!([entity, n]))
        .collect();
    assert_eq!(
        report["top_named_entities"],
        Value::Array(expected),
        "{report}"
    );
    let timestamp = report["timestamp"].as_str().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(timestamp).is_ok() && timestamp.ends_with('Z'),
        "a UTC RFC 3339 timestamp, got {timestamp:?}"
    );
    assert_eq!(
        report.as_object().map(|o| o.len()),
        Some(2),
        "only the ranking and its timestamp: {report}"
    );

    // An entity's surface text is a slice of each post it is counted for.
    let in_range: Vec<&raw::Item> = raw.iter().filter(|i| i.in_range(FROM, TO)).collect();
    for (entity, n) in TOP10_ON_2017_05_31 {
        let containing = in_range.iter().filter(|i| i.text.contains(entity)).count();
        assert!(
            n as usize <= containing,
            "{entity:?} counted in {n} posts, but only {containing} contain it"
        );
    }
}

/// The sample exports read straight from the files, independently of the importers.
mod raw {
    use std::path::Path;

    use serde::Deserialize;

    use super::binary_support::sample_raw_dir;

    /// What the tests need of one exported item.
    pub(crate) struct Item {
        pub platform: &'static str,
        pub id: String,
        /// `post` or `comment`, as the README's mapping defines it.
        pub kind: &'static str,
        pub created_at: String,
        pub text: String,
        /// The `like` column, for Facebook items.
        pub facebook_likes: Option<u64>,
    }

    impl Item {
        /// `from <= created_at <= to` compared as text, as SQLite's `BETWEEN` does.
        pub(crate) fn in_range(&self, from: &str, to: &str) -> bool {
            from <= self.created_at.as_str() && self.created_at.as_str() <= to
        }
    }

    #[derive(Deserialize)]
    struct FacebookRow {
        id: String,
        text: String,
        #[serde(rename = "type")]
        kind: String,
        created_at: String,
        like: String,
    }

    #[derive(Deserialize)]
    struct RedditRow {
        id: String,
        text: String,
        #[serde(rename = "type")]
        kind: String,
        created_at: String,
    }

    #[derive(Deserialize)]
    struct Tweet {
        id: String,
        text: String,
        created_at: String,
        #[serde(default)]
        referenced_tweets: Vec<Reference>,
    }

    #[derive(Deserialize)]
    struct Reference {
        #[serde(rename = "type")]
        kind: String,
    }

    /// Every item of the three sample files.
    pub(crate) fn items() -> Vec<Item> {
        let dir = sample_raw_dir();
        let mut items = Vec::new();
        for row in read_csv::<FacebookRow>(&dir.join("facebook.csv")) {
            // Counts may be written "993.0" or left empty (0).
            let likes = if row.like.is_empty() {
                0.0
            } else {
                row.like
                    .parse::<f64>()
                    .unwrap_or_else(|e| panic!("like {:?}: {e}", row.like))
            };
            items.push(Item {
                platform: "facebook",
                id: row.id,
                kind: kind(&row.kind.to_lowercase()),
                created_at: row.created_at,
                text: row.text,
                facebook_likes: Some(likes as u64),
            });
        }
        for row in read_csv::<RedditRow>(&dir.join("reddit.csv")) {
            items.push(Item {
                platform: "reddit",
                id: row.id,
                kind: kind(&row.kind),
                created_at: row.created_at,
                text: row.text,
                facebook_likes: None,
            });
        }
        let tweets = std::fs::read(dir.join("twitter.json")).expect("twitter.json");
        let tweets: Vec<Tweet> = serde_json::from_slice(&tweets).expect("twitter.json parses");
        for tweet in tweets {
            let reply = tweet
                .referenced_tweets
                .iter()
                .any(|r| r.kind == "replied_to");
            items.push(Item {
                platform: "twitter",
                id: tweet.id,
                kind: if reply { "comment" } else { "post" },
                created_at: tweet.created_at,
                text: tweet.text,
                facebook_likes: None,
            });
        }
        assert_eq!(
            items.len(),
            551,
            "the sample data's README counts 551 items"
        );
        items
    }

    fn kind(kind: &str) -> &'static str {
        match kind {
            "post" => "post",
            "comment" => "comment",
            other => panic!("unexpected item type {other:?}"),
        }
    }

    fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> Vec<T> {
        csv::Reader::from_path(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}
