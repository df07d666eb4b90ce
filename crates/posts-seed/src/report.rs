//! What a seed tells its caller: progress events while it runs, and the summary at the
//! end with per-platform counts and every rejected record with its reason.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use posts_model::Platform;

/// Progress of a seed, for the caller to draw.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
#[non_exhaustive]
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

/// Loaded and rejected counts of one platform.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
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
impl fmt::Display for SeedSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
