//! `posts-worker entities`: run the entity extractor over stdin, one text per line, and
//! write one JSON array of entity strings per line (distinct, in order of appearance), for
//! trying and evaluating the extractor.

use std::io::{BufRead, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use posts_entities::EntityExtractor;

#[derive(clap::Args)]
pub(crate) struct Args {}

pub(super) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    let extractor = posts_entities::default_extractor();
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (number, line) in stdin.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read line {} of stdin", number + 1))?;
        let mut seen = Vec::new();
        for entity in extractor.extract(&line) {
            if !seen.contains(&entity.text) {
                seen.push(entity.text);
            }
        }
        serde_json::to_writer(&mut out, &seen)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
