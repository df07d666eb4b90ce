//! Seeding: turning raw per-platform sample files, a synthetic generator or a simulated
//! user pool into a posts database. A library so that `cargo xtask seed` and the
//! worker's `demo` build databases with the same code; it reports progress through a
//! callback and never prints.
//!
//! Bad records never stop a load or vanish: each is reported with file, record number,
//! field and reason in [`SeedSummary::rejected_records`], unless
//! [`SeedOptions::strict`] turns the first one into an error with nothing written.

mod csv_input;
mod facebook;
mod jsonl;
mod raw;
mod reddit;
mod twitter;

pub mod identity;
pub mod names;
pub mod synthetic;
pub mod users;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use posts_model::{Platform, Timestamp};

use crate::StoreError;
use crate::write::WriteMode;

pub use synthetic::SyntheticOptions;
pub use users::UserPoolOptions;

/// Default database path, relative to the workspace root.
pub const DEFAULT_DB_PATH: &str = "sample_data/sample_posts.db";
/// Default directory of the raw sample files, relative to the workspace root.
pub const DEFAULT_RAW_DIR: &str = "sample_data/raw";
/// Default salt of `session_user_id = sha256(username + salt)`. Studies set their own
/// (`--salt` / `POSTS_SEED_SALT`) so user ids cannot be matched across studies.
pub const DEFAULT_SALT: &str = "posts-worker-sample-salt";
/// The user name of the single session user of a plain seed.
pub const TEST_USER: &str = "test_user";

/// Where the rows come from.
#[derive(Debug, Clone, PartialEq)]
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

/// Progress of a seed, for the caller to draw.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressEvent {
    /// The load starts; `total_rows` is known for synthetic and user-pool seeds.
    Started {
        /// Rows expected, when known in advance.
        total_rows: Option<u64>,
    },
    /// A source file is being read.
    Reading {
        /// The file.
        path: PathBuf,
    },
    /// Rows handled so far (loaded plus rejected), over the whole seed.
    Rows {
        /// Cumulative count.
        done: u64,
    },
    /// All rows are in; indexes are being built and the transaction committed.
    Finishing,
}

/// One record that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The file it came from.
    pub file: PathBuf,
    /// The file's platform, when known.
    pub platform: Option<Platform>,
    /// 1-based record number within the file (0: the file as a whole).
    pub record: u64,
    /// 1-based line where the record starts, when known.
    pub line: Option<u64>,
    /// The offending field, when the problem is one field.
    pub field: Option<String>,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.record == 0 {
            write!(f, " (whole file)")?;
        } else {
            write!(f, " record {}", self.record)?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Why a seed failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum EtlError {
    /// The database could not be prepared or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A source file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The raw directory holds none of the known files.
    #[error(
        "{dir} holds none of facebook.csv, reddit.csv, twitter.json or *.jsonl; nothing to seed"
    )]
    NoInput {
        /// The directory.
        dir: PathBuf,
    },
    /// Strict mode met a bad record.
    #[error("strict mode: {0}; nothing was written")]
    Strict(RecordError),
    /// An option has a value that cannot be used.
    #[error("invalid {name}: {reason}")]
    InvalidOption {
        /// The option, e.g. `--activity-distribution`.
        name: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl EtlError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        EtlError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Loaded and rejected counts of one platform.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlatformCounts {
    /// Rows written.
    pub loaded: u64,
    /// Records reported as bad.
    pub rejected: u64,
    /// Valid items not written because the user pool had no user on this platform.
    pub unused: u64,
}

/// What a seed did.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedSummary {
    /// The database written.
    pub db_path: PathBuf,
    /// Counts per platform.
    pub platforms: BTreeMap<Platform, PlatformCounts>,
    /// Every record not loaded, in the order met.
    pub rejected_records: Vec<RecordError>,
    /// Rows written.
    pub rows_written: u64,
    /// Session users the rows belong to.
    pub users: u64,
    /// Sessions the rows were cut into (0 for synthetic seeds, whose rows each carry
    /// their own session time).
    pub sessions: u64,
    /// Wall time of the whole seed.
    pub elapsed: Duration,
}

impl SeedSummary {
    pub(crate) fn new(db_path: &Path) -> Self {
        SeedSummary {
            db_path: db_path.to_owned(),
            platforms: BTreeMap::new(),
            rejected_records: Vec::new(),
            rows_written: 0,
            users: 0,
            sessions: 0,
            elapsed: Duration::ZERO,
        }
    }

    /// Rows written per second of wall time.
    pub fn rows_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.rows_written as f64 / secs
        } else {
            0.0
        }
    }

    /// Records rejected over all files.
    pub fn rejected(&self) -> u64 {
        self.rejected_records.len() as u64
    }

    pub(crate) fn counts(&mut self, platform: Platform) -> &mut PlatformCounts {
        self.platforms.entry(platform).or_default()
    }
}

/// The summary a person reads after a seed: rows and rows/s, loaded and rejected per
/// platform, and every rejected record with its reason.
impl std::fmt::Display for SeedSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Seeded {}: {} rows in {:.2} s ({:.0} rows/s), {} session user(s)",
            self.db_path.display(),
            self.rows_written,
            self.elapsed.as_secs_f64(),
            self.rows_per_second(),
            self.users,
        )?;
        // Synthetic rows each carry their own session time, so they have no session count.
        if self.sessions > 0 {
            write!(f, ", {} session(s)", self.sessions)?;
        }
        for (platform, counts) in &self.platforms {
            write!(
                f,
                "\n  {:<9} loaded {:>9}   rejected {:>6}",
                platform.as_str(),
                counts.loaded,
                counts.rejected
            )?;
            if counts.unused > 0 {
                write!(f, "   unused (no user on this platform) {}", counts.unused)?;
            }
        }
        if !self.rejected_records.is_empty() {
            write!(f, "\nRejected records ({}):", self.rejected())?;
            for rejection in &self.rejected_records {
                write!(f, "\n  {rejection}")?;
            }
        }
        Ok(())
    }
}

/// Builds the database `options` describe, reporting progress to `progress`.
pub fn seed(
    options: &SeedOptions,
    progress: &mut dyn FnMut(&ProgressEvent),
) -> Result<SeedSummary, EtlError> {
    let started = std::time::Instant::now();
    let now = options.now.unwrap_or_else(Timestamp::now);
    let mut summary = match &options.source {
        Source::Raw { dir, users } => raw::load(options, dir, users.as_ref(), now, progress)?,
        Source::Synthetic(synthetic) => synthetic::load(
            &options.db_path,
            synthetic,
            options.mode,
            &options.salt,
            progress,
        )?,
    };
    summary.elapsed = started.elapsed();
    Ok(summary)
}
