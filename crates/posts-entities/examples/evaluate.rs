//! Scores the built-in extractor against spaCy-labelled posts and prints the figures per
//! split, F1 on entity texts next to F1 on (text, label) pairs: the dev set, the
//! sample-data set and the novel-entity set (whose entities are in no word list, so it
//! shows how the rules generalise), or one JSONL file given as argument. With `--diff`,
//! also prints every tuning-split post where the two disagree (held-out posts stay
//! unseen) and how the labels compare.
//!
//! `cargo run -p posts-entities --example evaluate [-- --diff] [-- FILE.jsonl]`

#[path = "../tests/support/scoring.rs"]
mod scoring;

use std::collections::{BTreeMap, BTreeSet};

use posts_entities::{EntityExtractor, RuleBasedExtractor, default_extractor};

fn main() -> Result<(), String> {
    let mut show_diff = false;
    let mut path = None;
    for argument in std::env::args().skip(1) {
        match argument.as_str() {
            "--diff" => show_diff = true,
            other => path = Some(other.to_owned()),
        }
    }
    let sets = match &path {
        Some(path) => vec![(
            path.clone(),
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?,
        )],
        None => vec![
            ("dev set".to_owned(), scoring::DEV_SET.to_owned()),
            ("sample-data set".to_owned(), scoring::SAMPLE_SET.to_owned()),
            (
                "novel-entity set (no entity in any word list)".to_owned(),
                scoring::NOVEL_SET.to_owned(),
            ),
        ],
    };
    let extractor = default_extractor();
    for (name, jsonl) in sets {
        let posts = scoring::parse(&jsonl).map_err(|e| format!("{name}: {e}"))?;
        println!("== {name}");
        report(&extractor, &posts, show_diff);
    }
    Ok(())
}

fn report(extractor: &RuleBasedExtractor, posts: &[scoring::LabelledPost], show_diff: bool) {
    if show_diff {
        for post in posts.iter().filter(|p| p.split == "tune") {
            let gold = scoring::gold_set(post);
            let predicted = scoring::predicted_set(extractor, &post.text);
            if gold != predicted {
                let missed: Vec<_> = gold.difference(&predicted).collect();
                let extra: Vec<_> = predicted.difference(&gold).collect();
                println!("{}\n    missed {missed:?}  extra {extra:?}", post.text);
            }
        }
    }
    for split in ["tune", "heldout"] {
        let score = scoring::score(extractor, posts.iter().filter(|p| p.split == split));
        if score.posts > 0 {
            print_score(split, &score);
        }
    }
    let all = scoring::score(extractor, posts);
    print_score("all", &all);
    println!("    spaCy top 10: {:?}", all.gold_top10);
    println!("    ours  top 10: {:?}", all.predicted_top10);
    print_labels(extractor, posts, show_diff);
}

fn print_score(split: &str, score: &scoring::Score) {
    println!(
        "{split:8} posts {:4}  precision {:.3}  recall {:.3}  F1 {:.3}  F1 with labels {:.3}  \
         top-10 overlap {}/10",
        score.posts,
        score.precision(),
        score.recall(),
        score.f1(),
        score.labelled_f1(),
        score.top10_overlap
    );
}

/// Recall per spaCy label (which kind of entity the rules miss most) and, with `--diff`,
/// which labels the two give the same text.
fn print_labels(extractor: &RuleBasedExtractor, posts: &[scoring::LabelledPost], show_diff: bool) {
    let mut recall: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut confusion: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for post in posts {
        let found = extractor.extract(&post.text);
        let predicted: BTreeSet<(&str, &str)> = found
            .iter()
            .map(|e| (e.text.as_str(), scoring::spacy_label(e.label)))
            .collect();
        let gold: BTreeSet<(&str, &str)> = post
            .entities
            .iter()
            .map(|e| (e.text.as_str(), e.label.as_str()))
            .collect();
        for &(text, label) in &gold {
            let counts = recall.entry(label).or_default();
            counts.1 += 1;
            if predicted.iter().any(|(t, _)| *t == text) {
                counts.0 += 1;
            }
        }
        for &(text, ours) in &predicted {
            for &(_, theirs) in gold.iter().filter(|(t, _)| *t == text) {
                *confusion.entry((ours, theirs)).or_default() += 1;
            }
        }
    }
    let recalls: Vec<String> = recall
        .iter()
        .map(|(label, (found, total))| format!("{label} {found}/{total}"))
        .collect();
    println!("    recall by spaCy label: {}", recalls.join(", "));
    if show_diff {
        println!("    label confusion (ours, spaCy's): {confusion:?}");
    }
}
