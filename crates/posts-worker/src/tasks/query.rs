//! `query_posts_db(query)`: one read-only SQL query from an untrusted caller, its rows as
//! JSON. posts-store runs it (see `posts_store::read::ReadPool::query_json` for the three
//! locks that keep the database unchanged); this layer checks the argument, applies the
//! configured cap and names the failures.

use posts_store::read::CancelToken;
use serde_json::Value;

use super::PostsData;
use super::error::PostsTaskError;

/// Runs `query` and returns its rows as a JSON array of arrays: INTEGER and REAL as numbers
/// (non-finite REALs as null), TEXT as strings, NULL as null, BLOB as base64 text.
///
/// The serialized size is counted while rows stream in; the query stops with
/// [`PostsTaskError::ResultTooLarge`] as soon as it passes
/// [`Limits::max_query_result_bytes`](super::Limits::max_query_result_bytes).
pub fn query_posts_db(
    data: &PostsData,
    cancel: &CancelToken,
    query: &str,
) -> Result<Value, PostsTaskError> {
    if query.trim().is_empty() {
        return Err(PostsTaskError::invalid("query", "is empty"));
    }
    data.pool()
        .query_json(query, cancel, data.limits().max_query_result_bytes)
        .map_err(PostsTaskError::from_query)
}
