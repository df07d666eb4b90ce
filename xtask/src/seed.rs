//! `cargo xtask seed`: builds the posts database from the sample files, a synthetic
//! generator or a simulated user pool. A thin layer over `posts_seed`: it parses
//! arguments, draws the progress bar and prints the summary.

use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use posts_seed::{
    DEFAULT_ACTIVITY, DEFAULT_RAW_DIR, DEFAULT_SALT, ProgressEvent, SeedOptions, Source,
    SyntheticOptions, UserPoolOptions, WriteMode, parse_activity_distribution, parse_date_bound,
    parse_platform_distribution,
};
use posts_store::DEFAULT_DB_PATH;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Database file to build.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DB_PATH)]
    db: PathBuf,
    /// Directory of facebook.csv, reddit.csv, twitter.json and *.jsonl.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RAW_DIR)]
    raw_dir: PathBuf,
    /// Insert or replace rows by id into an existing posts table.
    #[arg(long, conflicts_with = "drop_table")]
    upsert: bool,
    /// Drop an existing posts table first.
    #[arg(long)]
    drop_table: bool,
    /// Fail on the first bad record, writing nothing.
    #[arg(long)]
    strict: bool,
    /// Generate N synthetic posts instead of reading the sample files.
    #[arg(long, value_name = "N", conflicts_with = "users")]
    synthetic: Option<u64>,
    /// Seed of the synthetic generator and of the user-pool simulation.
    #[arg(long, value_name = "S", default_value_t = 42)]
    seed: u64,
    /// Earliest synthetic created_at (YYYY-MM-DD or a datetime; default 2017-01-01).
    #[arg(long, value_name = "DATE", requires = "synthetic")]
    from: Option<String>,
    /// Synthetic created_at stays before this (default 2018-01-01).
    #[arg(long, value_name = "DATE", requires = "synthetic")]
    to: Option<String>,
    /// Spread the sample items over a pool of N simulated users.
    #[arg(long, value_name = "N")]
    users: Option<u32>,
    /// Sessions per day of a user with activity 1 (default 2).
    #[arg(long, value_name = "F", requires = "users")]
    sessions_per_day: Option<f64>,
    /// Items shown per session (default 20).
    #[arg(long, value_name = "N", requires = "users")]
    items_per_session: Option<u32>,
    /// Activity classes as multiplier:share pairs.
    #[arg(long, value_name = "SPEC", requires = "users", default_value = DEFAULT_ACTIVITY)]
    activity_distribution: String,
    /// Users per platform as platform:weight pairs (default: proportional to the items).
    #[arg(long, value_name = "SPEC", requires = "users")]
    platform_distribution: Option<String>,
    /// Salt of session_user_id = sha256(username + salt).
    #[arg(long, env = "POSTS_SEED_SALT", default_value = DEFAULT_SALT, hide_env_values = true)]
    salt: String,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    // Generating and loading a big synthetic DB is several times faster optimized; the
    // sample seeds are small and not worth a release build.
    if cfg!(debug_assertions) && args.synthetic.is_some() {
        return crate::bench::rerun_in_release();
    }
    let options = options(&args)?;
    let bar = ProgressBar::new_spinner();
    let summary = posts_seed::seed(&options, &mut |event| draw(&bar, event));
    bar.finish_and_clear();
    let summary = summary.with_context(|| format!("seeding {}", args.db.display()))?;
    println!("{summary}");
    Ok(())
}

fn options(args: &Args) -> anyhow::Result<SeedOptions> {
    let mode = match (args.upsert, args.drop_table) {
        (true, _) => WriteMode::Upsert,
        (_, true) => WriteMode::DropTable,
        _ => WriteMode::Create,
    };
    let source = if let Some(count) = args.synthetic {
        let mut synthetic_options = SyntheticOptions::new(count);
        synthetic_options.seed = args.seed;
        if let Some(from) = &args.from {
            synthetic_options.from = parse_date_bound("--from", from)?;
        }
        if let Some(to) = &args.to {
            synthetic_options.to = parse_date_bound("--to", to)?;
        }
        Source::Synthetic(synthetic_options)
    } else {
        let pool = match args.users {
            None => None,
            Some(n) => {
                let mut pool = UserPoolOptions::new(n);
                pool.seed = args.seed;
                pool.sessions_per_day = args.sessions_per_day.unwrap_or(pool.sessions_per_day);
                pool.items_per_session = args.items_per_session.unwrap_or(pool.items_per_session);
                pool.activity = parse_activity_distribution(&args.activity_distribution)?;
                pool.platforms = args
                    .platform_distribution
                    .as_deref()
                    .map(parse_platform_distribution)
                    .transpose()?;
                pool.validate()?;
                Some(pool)
            }
        };
        Source::Raw {
            dir: args.raw_dir.clone(),
            users: pool,
        }
    };
    let mut options = SeedOptions::raw(&args.db, &args.raw_dir);
    options.source = source;
    options.mode = mode;
    options.strict = args.strict;
    options.salt = args.salt.clone();
    Ok(options)
}

fn draw(bar: &ProgressBar, event: &ProgressEvent) {
    match event {
        ProgressEvent::Started {
            total_rows: Some(total),
        } => {
            bar.set_length(*total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({per_sec}, eta {eta}) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
        }
        ProgressEvent::Started { total_rows: None } => {
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {human_pos} records {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
        }
        ProgressEvent::Reading { path } => bar.set_message(format!("reading {}", path.display())),
        ProgressEvent::Rows { done } => bar.set_position(*done),
        ProgressEvent::Finishing => bar.set_message("building indexes and committing"),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use rusqlite::Connection;

    use super::*;

    /// The seed flags as the command line gives them.
    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: Args,
    }

    fn parse(flags: &[&str]) -> Result<Args, clap::Error> {
        Command::try_parse_from(std::iter::once("seed").chain(flags.iter().copied()))
            .map(|c| c.args)
    }

    fn write_items(raw: &std::path::Path, items: &[(&str, &str)]) {
        let lines: Vec<String> = items
            .iter()
            .map(|(id, text)| {
                serde_json::json!({
                    "id": id, "post_id": id, "parent_id": null, "title": "T", "text": text,
                    "author_name_hash": "h", "type": "post", "embedded_urls": [],
                    "created_at": "2017-05-31T10:00:00",
                    "engagements": {"upvote": 1, "downvote": 0, "score": 1, "comment": 0, "award": 0}
                })
                .to_string()
            })
            .collect();
        std::fs::write(raw.join("reddit.jsonl"), lines.join("\n") + "\n")
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn texts(db: &std::path::Path) -> Vec<(String, String)> {
        let conn = Connection::open(db).unwrap_or_else(|e| panic!("{e}"));
        let mut stmt = conn
            .prepare("SELECT id, json_extract(post_blob, '$.text') FROM posts ORDER BY id")
            .unwrap_or_else(|e| panic!("{e}"));
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn flags_map_to_write_modes_and_conflict() {
        let mode = |flags: &[&str]| {
            parse(flags)
                .map_err(|e| e.to_string())
                .and_then(|args| options(&args).map_err(|e| e.to_string()))
                .map(|o| o.mode)
        };
        assert_eq!(mode(&[]), Ok(WriteMode::Create));
        assert_eq!(mode(&["--upsert"]), Ok(WriteMode::Upsert));
        assert_eq!(mode(&["--drop-table"]), Ok(WriteMode::DropTable));
        assert!(
            parse(&["--upsert", "--drop-table"])
                .err()
                .is_some_and(|e| e.kind() == clap::error::ErrorKind::ArgumentConflict)
        );
    }

    #[test]
    fn the_seed_command_with_upsert_replaces_changed_rows() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let raw = dir.path().join("raw");
        std::fs::create_dir(&raw).unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("posts.db");
        let db_arg = db.to_string_lossy().into_owned();
        let raw_arg = raw.to_string_lossy().into_owned();
        let seed = |extra: &[&str]| {
            let mut flags = vec!["--db", db_arg.as_str(), "--raw-dir", raw_arg.as_str()];
            flags.extend_from_slice(extra);
            parse(&flags)
                .map_err(|e| e.to_string())
                .and_then(|args| run(args).map_err(|e| format!("{e:#}")))
        };
        write_items(&raw, &[("r1", "first"), ("r2", "second")]);
        assert_eq!(seed(&[]), Ok(()));
        write_items(&raw, &[("r2", "second, edited"), ("r3", "third")]);
        let again = seed(&[]);
        assert!(
            again
                .as_ref()
                .err()
                .is_some_and(|e| e.contains("already exists")),
            "{again:?}"
        );
        assert_eq!(seed(&["--upsert"]), Ok(()));
        let expected: Vec<(String, String)> =
            [("r1", "first"), ("r2", "second, edited"), ("r3", "third")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
        assert_eq!(texts(&db), expected);
    }
}
