//! Measures the built-in extractor's single-core throughput on the dev-set posts (or on a
//! file with one post per line): posts per second and megabytes per second.
//!
//! `cargo run --release -p posts-entities --example throughput [-- POSTS_FILE] [-- --posts N]`

use std::time::Instant;

use posts_entities::{EntityExtractor, default_extractor};
use serde::Deserialize;

const DEV_SET: &str = include_str!("../tests/data/dev_set.jsonl");

#[derive(Deserialize)]
struct Post {
    text: String,
}

fn main() -> Result<(), String> {
    let mut target_posts = 1_000_000usize;
    let mut file = None;
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        if argument == "--posts" {
            let value = arguments.next().ok_or("--posts needs a number")?;
            target_posts = value.parse().map_err(|e| format!("--posts {value}: {e}"))?;
        } else {
            file = Some(argument);
        }
    }
    let texts: Vec<String> = match &file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {path}: {e}"))?
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        None => DEV_SET
            .lines()
            .map(|line| serde_json::from_str::<Post>(line).map(|post| post.text))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("tests/data/dev_set.jsonl: {e}"))?,
    };
    if texts.is_empty() {
        return Err("no posts to run on".to_owned());
    }
    let extractor = default_extractor();
    let mut entities = Vec::new();
    // Warm up: builds the lexicon and the per-thread buffers outside the timed loop.
    for text in &texts {
        extractor.extract_into(text, &mut entities);
    }
    let started = Instant::now();
    let (mut found, mut bytes) = (0usize, 0usize);
    for text in texts.iter().cycle().take(target_posts) {
        entities.clear();
        extractor.extract_into(text, &mut entities);
        found += entities.len();
        bytes += text.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{target_posts} posts ({:.0} bytes on average) in {seconds:.3} s on one core: {:.0} posts/s, {:.1} MB/s, {found} entities",
        bytes as f64 / target_posts as f64,
        target_posts as f64 / seconds,
        bytes as f64 / seconds / 1e6,
    );
    Ok(())
}
