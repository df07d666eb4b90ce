//! The read side of the posts database: a pool of hardened read-only connections and
//! streaming, splittable scans of posts in a `created_at` range.
//!
//! Everything here works on both schema variants the research teams use (`id TEXT PRIMARY
//! KEY` and the later `id INTEGER PRIMARY KEY AUTOINCREMENT` one): readers only touch
//! `platform`, `created_at` and `post_blob`, and address rows by `rowid`, which both have.

mod error;
mod guard;
mod pool;
mod scan;

pub use error::ReadError;
pub use pool::{ReadConnection, ReadPool, ReadPoolOptions};
pub use scan::{CreatedAtRange, PostRow, ScanOutcome, ScanPart, ScanPlan, ScanStrategy};

#[cfg(test)]
mod tests;
