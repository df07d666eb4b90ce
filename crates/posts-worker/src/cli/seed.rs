//! `posts-worker seed`: build the posts DB from the sample data with the same loader as
//! `cargo xtask seed`, for deployments that ship the binary without the source tree.

use std::path::PathBuf;
use std::process::ExitCode;

use posts_seed::{SeedOptions, seed};

use super::GlobalOptions;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Directory holding facebook.csv, reddit.csv, twitter.json and *.jsonl.
    #[arg(long, default_value = posts_seed::DEFAULT_RAW_DIR)]
    raw_dir: PathBuf,
    /// Do nothing when the DB already exists.
    #[arg(long)]
    if_missing: bool,
}

pub(super) fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    if args.if_missing && global.db.exists() {
        println!("{} exists; nothing to do", global.db.display());
        return Ok(ExitCode::SUCCESS);
    }
    let summary = seed(&SeedOptions::raw(&global.db, args.raw_dir), &mut |_| {})?;
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}
