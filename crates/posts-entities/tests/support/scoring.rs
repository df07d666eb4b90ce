//! Scores an extractor against spaCy-labelled posts (`tests/data/*.jsonl`): entity-set
//! precision, recall and F1 micro-averaged over posts, and the overlap of the two top-10
//! entity lists. Shared by the `dev_set` test and the `evaluate` example.

use std::collections::{BTreeMap, BTreeSet};

use posts_entities::EntityExtractor;
use serde::Deserialize;

/// One labelled post.
#[derive(Debug, Deserialize)]
pub struct LabelledPost {
    pub text: String,
    /// `tune` (rules were adjusted while looking at these) or `heldout` (never looked at).
    pub split: String,
    pub entities: Vec<GoldEntity>,
}

/// One entity spaCy reported.
#[derive(Debug, Deserialize)]
pub struct GoldEntity {
    pub text: String,
    pub label: String,
}

/// The committed development set: posts written for it, labelled by spaCy.
pub const DEV_SET: &str = include_str!("../data/dev_set.jsonl");

/// A second set: the texts of the repository's `sample_data/raw` exports (written by
/// someone else, not for this crate), labelled by spaCy the same way.
pub const SAMPLE_SET: &str = include_str!("../data/sample_set.jsonl");

/// Parses JSONL into posts, naming the line of any malformed record.
pub fn parse(jsonl: &str) -> Result<Vec<LabelledPost>, String> {
    jsonl
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", number + 1))
        })
        .collect()
}

/// Counts and figures for one set of posts.
#[derive(Debug, Default)]
pub struct Score {
    pub posts: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    /// How many of the gold top-10 entities are in the predicted top 10.
    pub top10_overlap: usize,
    pub gold_top10: Vec<(String, usize)>,
    pub predicted_top10: Vec<(String, usize)>,
}

impl Score {
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    pub fn f1(&self) -> f64 {
        ratio(
            2 * self.true_positives,
            2 * self.true_positives + self.false_positives + self.false_negatives,
        )
    }
}

fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        1.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// The distinct entity texts of one post, as the worker counts them.
pub fn predicted_set(extractor: &dyn EntityExtractor, text: &str) -> BTreeSet<String> {
    extractor
        .extract(text)
        .into_iter()
        .map(|e| e.text)
        .collect()
}

/// The distinct entity texts spaCy gave one post.
pub fn gold_set(post: &LabelledPost) -> BTreeSet<String> {
    post.entities.iter().map(|e| e.text.clone()).collect()
}

/// Scores `extractor` on `posts`.
pub fn score<'a>(
    extractor: &dyn EntityExtractor,
    posts: impl IntoIterator<Item = &'a LabelledPost>,
) -> Score {
    let mut score = Score::default();
    let mut gold_counts = BTreeMap::new();
    let mut predicted_counts = BTreeMap::new();
    for post in posts {
        let gold = gold_set(post);
        let predicted = predicted_set(extractor, &post.text);
        score.posts += 1;
        score.true_positives += gold.intersection(&predicted).count();
        score.false_positives += predicted.difference(&gold).count();
        score.false_negatives += gold.difference(&predicted).count();
        for entity in gold {
            *gold_counts.entry(entity).or_insert(0) += 1;
        }
        for entity in predicted {
            *predicted_counts.entry(entity).or_insert(0) += 1;
        }
    }
    score.gold_top10 = top(gold_counts, 10);
    score.predicted_top10 = top(predicted_counts, 10);
    score.top10_overlap = score
        .gold_top10
        .iter()
        .filter(|(entity, _)| score.predicted_top10.iter().any(|(p, _)| p == entity))
        .count();
    score
}

/// The `k` most frequent entities, count descending then text ascending (the task's order).
pub fn top(counts: BTreeMap<String, usize>, k: usize) -> Vec<(String, usize)> {
    let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}
