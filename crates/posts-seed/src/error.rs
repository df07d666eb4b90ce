//! Why a seed failed as a whole (bad records are not errors: they are reported in the
//! summary, unless strict mode is on).

use std::path::{Path, PathBuf};

use posts_store::StoreError;

use crate::RecordError;

/// Why a seed failed as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
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

impl SeedError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        SeedError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
