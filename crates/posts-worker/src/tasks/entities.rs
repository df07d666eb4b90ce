//! `count_top_named_entities(k, from_, to, result_key)`: the `k` named entities mentioned in
//! the most posts of a `created_at` range.

use std::collections::HashMap;

use chrono::{SecondsFormat, Utc};
use posts_entities::Entity;
use serde::Serialize;

use posts_store::read::CancelToken;

use super::PostsData;
use super::args::{check_top_k, checked_range};
use super::error::PostsTaskError;
use super::post_text::post_text;

/// What the task writes to its result key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopNamedEntities {
    /// `[entity, posts mentioning it]`, most mentioned first, ties by entity text.
    pub top_named_entities: Vec<(String, u64)>,
    /// When the ranking was computed, UTC ISO-8601 (`2017-06-01T12:00:00.123456Z`).
    pub timestamp: String,
}

/// One part's counts and its reusable buffer.
#[derive(Default)]
struct Tally {
    posts_mentioning: HashMap<String, u64>,
    found: Vec<Entity>,
    undecodable: u64,
}

/// Ranks the entities of the posts with `from_ <= created_at <= to` by the number of posts
/// mentioning them (an entity repeated within a post counts once for it) and returns the
/// top `k`. An empty range gives an empty list.
pub fn count_top_named_entities(
    data: &PostsData,
    cancel: &CancelToken,
    k: i64,
    from: &str,
    to: &str,
) -> Result<TopNamedEntities, PostsTaskError> {
    let k = check_top_k(k)?;
    let range = checked_range(from, to)?;
    let extractor = data.extractor();
    let folded = data.pool().fold_range(
        &range,
        cancel,
        Tally::default,
        |tally, row| {
            let Ok(text) = post_text(row.post_blob) else {
                tally.undecodable += 1;
                return;
            };
            tally.found.clear();
            extractor.extract_into(&text, &mut tally.found);
            tally.found.sort_unstable_by(|a, b| a.text.cmp(&b.text));
            tally.found.dedup_by(|a, b| a.text == b.text);
            for entity in tally.found.drain(..) {
                *tally.posts_mentioning.entry(entity.text).or_insert(0) += 1;
            }
        },
        |a, b| {
            // Merge the smaller map into the larger one.
            let (mut into, from) = if a.posts_mentioning.len() >= b.posts_mentioning.len() {
                (a, b)
            } else {
                (b, a)
            };
            for (entity, n) in from.posts_mentioning {
                *into.posts_mentioning.entry(entity).or_default() += n;
            }
            into.undecodable += from.undecodable;
            into
        },
    )?;
    if folded.state.undecodable > 0 {
        tracing::warn!(
            rows = folded.state.undecodable,
            "post_blob is not a JSON object with a string text; skipped"
        );
    }
    Ok(TopNamedEntities {
        top_named_entities: top_k(folded.state.posts_mentioning, k),
        timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
    })
}

/// The `k` largest counts, count descending then entity ascending.
fn top_k(counts: HashMap<String, u64>, k: usize) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = counts.into_iter().collect();
    let order = |a: &(String, u64), b: &(String, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0));
    if all.len() > k {
        all.select_nth_unstable_by(k - 1, order);
        all.truncate(k);
    }
    all.sort_unstable_by(order);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_count_then_entity() {
        let counts: HashMap<String, u64> = [("b", 3), ("a", 3), ("c", 5), ("d", 1), ("e", 3)]
            .into_iter()
            .map(|(e, n)| (e.to_owned(), n))
            .collect();
        let expect = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
            v.iter().map(|(e, n)| ((*e).to_owned(), *n)).collect()
        };
        assert_eq!(
            top_k(counts.clone(), 3),
            expect(&[("c", 5), ("a", 3), ("b", 3)])
        );
        assert_eq!(top_k(counts.clone(), 1), expect(&[("c", 5)]));
        assert_eq!(
            top_k(counts, 10),
            expect(&[("c", 5), ("a", 3), ("b", 3), ("e", 3), ("d", 1)])
        );
        assert!(top_k(HashMap::new(), 3).is_empty());
    }
}
