//! Scores the built-in extractor against spaCy-labelled posts and prints the figures per
//! split; with `--diff`, also every post where the two disagree (tuning split only, so the
//! held-out split stays unseen).
//!
//! `cargo run -p posts-entities --example evaluate [-- --diff] [-- FILE.jsonl]`

#[path = "../tests/support/scoring.rs"]
mod scoring;

use std::collections::BTreeSet;

use posts_entities::{EntityExtractor, Label, default_extractor};

/// spaCy's name for a label.
fn spacy_label(label: Label) -> &'static str {
    match label {
        Label::Person => "PERSON",
        Label::Org => "ORG",
        Label::Gpe => "GPE",
        Label::Loc => "LOC",
        Label::Norp => "NORP",
        Label::Fac => "FAC",
    }
}

fn main() -> Result<(), String> {
    let mut show_diff = false;
    let mut path = None;
    for argument in std::env::args().skip(1) {
        match argument.as_str() {
            "--diff" => show_diff = true,
            other => path = Some(other.to_owned()),
        }
    }
    let jsonl = match &path {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?
        }
        None => scoring::DEV_SET.to_owned(),
    };
    let posts = scoring::parse(&jsonl)?;
    let extractor = default_extractor();
    if show_diff {
        for post in posts.iter().filter(|p| p.split == "tune") {
            let gold = scoring::gold_set(post);
            let predicted = scoring::predicted_set(&extractor, &post.text);
            if gold != predicted {
                let missed: Vec<_> = gold.difference(&predicted).collect();
                let extra: Vec<_> = predicted.difference(&gold).collect();
                println!("{}\n    missed {missed:?}  extra {extra:?}", post.text);
            }
        }
    }
    for split in ["tune", "heldout"] {
        let score = scoring::score(&extractor, posts.iter().filter(|p| p.split == split));
        println!(
            "{split:8} posts {:4}  precision {:.3}  recall {:.3}  F1 {:.3}  top-10 overlap {}/10",
            score.posts,
            score.precision(),
            score.recall(),
            score.f1(),
            score.top10_overlap
        );
        if path.is_some() || split == "tune" {
            println!("    spaCy top 10: {:?}", score.gold_top10);
            println!("    ours  top 10: {:?}", score.predicted_top10);
        }
    }
    // Recall per spaCy label shows which kind of entity the rules miss most.
    let mut by_label: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for post in &posts {
        let predicted = scoring::predicted_set(&extractor, &post.text);
        for entity in &post.entities {
            let counts = by_label.entry(entity.label.as_str()).or_default();
            counts.1 += 1;
            if predicted.contains(&entity.text) {
                counts.0 += 1;
            }
        }
    }
    let recalls: Vec<String> = by_label
        .iter()
        .map(|(label, (found, total))| format!("{label} {found}/{total}"))
        .collect();
    println!("recall by spaCy label: {}", recalls.join(", "));
    // Stricter than the task needs (it counts texts only): text and label must both agree.
    let (mut agree, mut gold_total, mut predicted_total) = (0usize, 0usize, 0usize);
    let mut confusion: std::collections::BTreeMap<(&str, &str), usize> = Default::default();
    for post in &posts {
        let gold: BTreeSet<(&str, &str)> = post
            .entities
            .iter()
            .map(|e| (e.text.as_str(), e.label.as_str()))
            .collect();
        let found = extractor.extract(&post.text);
        let predicted: BTreeSet<(&str, &str)> = found
            .iter()
            .map(|e| (e.text.as_str(), spacy_label(e.label)))
            .collect();
        agree += gold.intersection(&predicted).count();
        for (text, ours) in &predicted {
            for (_, theirs) in gold.iter().filter(|(t, _)| t == text) {
                *confusion.entry((ours, theirs)).or_default() += 1;
            }
        }
        gold_total += gold.len();
        predicted_total += predicted.len();
    }
    if show_diff {
        println!("label confusion (ours, spaCy's): {confusion:?}");
    }
    println!(
        "F1 counting labels too: {:.3}",
        2.0 * agree as f64 / (gold_total + predicted_total).max(1) as f64
    );
    let all = scoring::score(&extractor, &posts);
    println!(
        "all      posts {:4}  precision {:.3}  recall {:.3}  F1 {:.3}  top-10 overlap {}/10",
        all.posts,
        all.precision(),
        all.recall(),
        all.f1(),
        all.top10_overlap
    );
    Ok(())
}
