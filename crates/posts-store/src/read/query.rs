//! One read-only SQL query from an untrusted caller, its rows as JSON under a byte cap.
//!
//! Three independent locks keep the database unchanged: the connection is opened read-only
//! with `query_only`, its authorizer denies every non-reading action at prepare time
//! (writes, DDL, `ATTACH`, writing PRAGMAs, transactions), and here the statement must be
//! a single one that `sqlite3_stmt_readonly` calls read-only and that returns rows.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rusqlite::types::ValueRef;
use serde_json::{Number, Value};

use super::cancel::CancelToken;
use super::error::{OrReadError, ReadError, SqliteFailure};
use super::pool::ReadPool;

/// How many rows pass between two looks at the cancel flag (SQLite is interrupted too; the
/// flag covers time spent here between steps).
const CANCEL_CHECK_EVERY: usize = 256;

impl ReadPool {
    /// Runs `sql` and returns its rows as a JSON array of arrays: INTEGER and REAL as
    /// numbers (non-finite REALs as null), TEXT as strings (invalid UTF-8 replaced), NULL as
    /// null, BLOB as base64 text.
    ///
    /// The serialized size is counted while rows stream in, and the query stops as soon as
    /// it passes `max_bytes`, so a huge result is never built.
    ///
    /// # Errors
    /// [`ReadError::QueryRefused`] when `sql` is not one read-only statement returning
    /// rows; [`ReadError::ResultTooLarge`] past the cap; [`ReadError::Cancelled`] when
    /// `cancel` fired; [`ReadError::Sqlite`] with SQLite's message for a bad or failing
    /// query; [`ReadError::NoConnection`].
    pub fn query_json(
        &self,
        sql: &str,
        cancel: &CancelToken,
        max_bytes: usize,
    ) -> Result<Value, ReadError> {
        if cancel.is_cancelled() {
            return Err(ReadError::Cancelled);
        }
        let conn = self.get()?;
        // Declared after `conn`, so dropped first: the connection leaves the cancel token
        // before it goes back to the pool.
        let _watch = cancel.watch(&conn);
        let mut stmt = conn.prepare(sql).map_err(|e| prepare_error(&e))?;
        if !stmt.readonly() {
            return Err(ReadError::QueryRefused {
                reason: "only read-only queries are allowed".into(),
            });
        }
        let columns = stmt.column_count();
        if columns == 0 {
            return Err(ReadError::QueryRefused {
                reason: "the statement returns no rows; only queries (SELECT, read-only \
                         PRAGMA) are allowed"
                    .into(),
            });
        }
        let mut rows = stmt.query([]).or_read_error()?;
        let mut out = Vec::new();
        // "[" + "]" + a comma between rows.
        let mut size = 2usize;
        let mut scratch = Vec::new();
        while let Some(row) = rows.next().or_read_error()? {
            if out.len() % CANCEL_CHECK_EVERY == 0 && cancel.is_cancelled() {
                return Err(ReadError::Cancelled);
            }
            let mut cells = Vec::with_capacity(columns);
            for i in 0..columns {
                cells.push(to_json(row.get_ref(i).or_read_error()?));
            }
            let cells = Value::Array(cells);
            scratch.clear();
            // Writing a `Value` into a Vec cannot fail: its keys are strings and its
            // numbers finite; the length is all that is needed.
            if serde_json::to_writer(&mut scratch, &cells).is_err() {
                return Err(ReadError::QueryRefused {
                    reason: "a row cannot be written as JSON".into(),
                });
            }
            size += scratch.len() + usize::from(!out.is_empty());
            if size > max_bytes {
                return Err(ReadError::ResultTooLarge { limit: max_bytes });
            }
            out.push(cells);
        }
        Ok(Value::Array(out))
    }
}

/// One SQLite value as JSON.
fn to_json(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Number(n.into()),
        ValueRef::Real(x) => Number::from_f64(x).map_or(Value::Null, Value::Number),
        ValueRef::Text(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) => Value::String(BASE64.encode(bytes)),
    }
}

/// Classifies a failure to prepare: refused by the rules, or SQLite's own error.
fn prepare_error(e: &rusqlite::Error) -> ReadError {
    match e {
        rusqlite::Error::MultipleStatement => ReadError::QueryRefused {
            reason: "only one statement is allowed".into(),
        },
        e if e.sqlite_error_code()
            == Some(rusqlite::ErrorCode::AuthorizationForStatementDenied) =>
        {
            ReadError::QueryRefused {
                reason: format!(
                    "only reading is allowed (no writes, DDL, ATTACH, transactions or writing \
                     PRAGMAs): {}",
                    SqliteFailure::from_rusqlite(e).message()
                ),
            }
        }
        e => ReadError::sqlite(e),
    }
}
