//! What a seed is asked to do: the database, where the rows come from, what to do about
//! an existing table, and the session-user salt.

use std::path::PathBuf;

use posts_model::Timestamp;
use posts_store::write::WriteMode;

use crate::{SyntheticOptions, UserPoolOptions};

/// Default directory of the raw sample files, relative to the workspace root.
pub const DEFAULT_RAW_DIR: &str = "sample_data/raw";
/// Default salt of `session_user_id = sha256(username + salt)`. Studies set their own
/// (`--salt` / `POSTS_SEED_SALT`) so user ids cannot be matched across studies.
pub const DEFAULT_SALT: &str = "posts-worker-sample-salt";
/// The user name of the single session user of a plain seed.
pub const TEST_USER: &str = "test_user";

/// Where the rows come from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Source {
    /// Raw sample files in `dir`: `facebook.csv`, `reddit.csv`, `twitter.json` and any
    /// `*.jsonl`, whichever exist. Without a user pool, every platform's items form one
    /// feed of the single user [`TEST_USER`].
    Raw {
        /// The directory holding the files.
        dir: PathBuf,
        /// Spread the items over a simulated user pool instead.
        users: Option<UserPoolOptions>,
    },
    /// Generated items.
    Synthetic(SyntheticOptions),
}

/// Everything a seed needs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SeedOptions {
    /// The database file to build.
    pub db_path: PathBuf,
    /// Where the rows come from.
    pub source: Source,
    /// What to do about an existing posts table.
    pub mode: WriteMode,
    /// Fail on the first bad record, writing nothing.
    pub strict: bool,
    /// Salt of the session user ids.
    pub salt: String,
    /// The "now" sessions are anchored to; `None` means the current time.
    pub now: Option<Timestamp>,
}

impl SeedOptions {
    /// The default seed: the sample files in [`DEFAULT_RAW_DIR`] into `db_path`, creating
    /// the table (an existing one is an error).
    pub fn sample(db_path: impl Into<PathBuf>) -> Self {
        Self::raw(db_path, DEFAULT_RAW_DIR)
    }

    /// Raw files from `dir` into `db_path`, with the defaults of [`SeedOptions::sample`].
    pub fn raw(db_path: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        SeedOptions {
            db_path: db_path.into(),
            source: Source::Raw {
                dir: dir.into(),
                users: None,
            },
            mode: WriteMode::Create,
            strict: false,
            salt: DEFAULT_SALT.to_owned(),
            now: None,
        }
    }

    /// Synthetic items into `db_path`.
    pub fn synthetic(db_path: impl Into<PathBuf>, synthetic: SyntheticOptions) -> Self {
        SeedOptions {
            source: Source::Synthetic(synthetic),
            ..Self::raw(db_path, DEFAULT_RAW_DIR)
        }
    }
}
