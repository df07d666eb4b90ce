//! Seeding the posts database: from the raw per-platform export files, from a
//! deterministic synthetic generator (for benchmarks), or spreading the raw items over a
//! simulated user pool. `cargo xtask seed` and the worker's `seed` and `demo` commands
//! are thin layers over [`seed`]; it reports progress through a callback and never
//! prints.
//!
//! Bad records never stop a load or vanish: each is reported with file, record number,
//! field and reason in [`SeedSummary::rejected_records`], unless
//! [`SeedOptions::strict`] turns the first one into an error with nothing written.
//!
//! The rows go through `posts_store`'s writer, so the table is exactly the one
//! `posts_store::schema` defines.

mod error;
mod identity;
mod options;
mod raw;
mod report;
mod synthetic;
mod users;

use posts_model::Timestamp;

pub use error::SeedError;
pub use options::{DEFAULT_RAW_DIR, DEFAULT_SALT, SeedOptions, Source, TEST_USER};
pub use posts_store::write::WriteMode;
pub use report::{PlatformCounts, ProgressEvent, RecordError, SeedSummary};
pub use synthetic::{SyntheticOptions, parse_date_bound};
pub use users::{
    ActivityClass, DEFAULT_ACTIVITY, UserPoolOptions, parse_activity_distribution,
    parse_platform_distribution,
};

/// Builds the database `options` describe, reporting progress to `progress`.
pub fn seed(
    options: &SeedOptions,
    progress: &mut dyn FnMut(&ProgressEvent),
) -> Result<SeedSummary, SeedError> {
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
