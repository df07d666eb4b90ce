//! The read side of the posts database: a pool of hardened read-only connections and the
//! typed operations that run on it — a parallel fold over the posts of a `created_at`
//! range ([`ReadPool::fold_range`]) and one untrusted read-only query into JSON rows with
//! a byte cap ([`ReadPool::query_json`]) — both cancellable with a [`CancelToken`].
//!
//! posts-store owns how these run (connections, threads, SQLite interrupts); callers pass
//! plain closures and values and get [`ReadError`]s, never SQLite or pool types.
//!
//! Everything here works on both schema variants the research teams use (`id TEXT PRIMARY
//! KEY` and the later `id INTEGER PRIMARY KEY AUTOINCREMENT` one): readers only touch
//! `platform`, `created_at` and `post_blob`, and address rows by `rowid`, which both have.

mod cancel;
mod error;
mod fold;
mod guard;
mod pool;
mod query;
mod scan;

pub use cancel::CancelToken;
pub use error::{ReadError, SqliteFailure};
pub use fold::Folded;
pub use pool::{ReadPool, ReadPoolOptions};
pub use scan::{CreatedAtRange, ScannedPost};

#[cfg(test)]
mod tests;
