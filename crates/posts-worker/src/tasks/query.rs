//! `query_posts_db(query)`: one read-only SQL query from an untrusted caller, its rows as
//! JSON.
//!
//! Three independent locks keep the database unchanged: the connection is opened read-only
//! with `query_only`, its authorizer denies every non-reading action at prepare time
//! (writes, DDL, `ATTACH`, writing PRAGMAs, transactions), and here the statement must be
//! a single one that `sqlite3_stmt_readonly` calls read-only and that returns rows.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rusqlite::types::ValueRef;
use serde_json::{Number, Value};

use super::PostsEnv;
use super::cancel::CancelToken;
use super::error::{TasksError, is_interrupt, sqlite_message};

/// How many rows pass between two looks at the cancel flag (SQLite is interrupted too; the
/// flag covers time spent here between steps).
const CANCEL_CHECK_EVERY: usize = 256;

/// Runs `query` and returns its rows as a JSON array of arrays: INTEGER and REAL as numbers
/// (non-finite REALs as null), TEXT as strings, NULL as null, BLOB as base64 text.
///
/// The serialized size is counted while rows stream in; the query stops with
/// [`TasksError::ResultTooLarge`] as soon as it passes the cap.
pub fn query_posts_db(
    env: &PostsEnv,
    cancel: &CancelToken,
    query: &str,
) -> Result<Value, TasksError> {
    if query.trim().is_empty() {
        return Err(TasksError::invalid("query", "is empty"));
    }
    let limit = env.limits().max_query_result_bytes;
    let conn = env.pool().get()?;
    // Declared after `conn`, so dropped first: the connection leaves the cancel token
    // before it goes back to the pool.
    let _watch = cancel.watch(&conn);
    let mut stmt = conn.prepare(query).map_err(|e| prepare_error(&e, cancel))?;
    if !stmt.readonly() {
        return Err(TasksError::QueryRefused {
            reason: "only read-only queries are allowed".into(),
        });
    }
    let columns = stmt.column_count();
    if columns == 0 {
        return Err(TasksError::QueryRefused {
            reason: "the statement returns no rows; only queries (SELECT, read-only PRAGMA) \
                     are allowed"
                .into(),
        });
    }
    let mut rows = stmt.query([]).map_err(|e| run_error(&e, cancel))?;
    let mut out = Vec::new();
    // "[" + "]" + a comma between rows.
    let mut size = 2usize;
    let mut scratch = Vec::new();
    while let Some(row) = rows.next().map_err(|e| run_error(&e, cancel))? {
        if out.len() % CANCEL_CHECK_EVERY == 0 && cancel.is_cancelled() {
            return Err(TasksError::Cancelled);
        }
        let mut cells = Vec::with_capacity(columns);
        for i in 0..columns {
            let cell = row.get_ref(i).map_err(|e| run_error(&e, cancel))?;
            cells.push(to_json(cell));
        }
        let cells = Value::Array(cells);
        scratch.clear();
        serde_json::to_writer(&mut scratch, &cells).map_err(|e| TasksError::Sql {
            message: format!("a row could not be encoded as JSON: {e}"),
        })?;
        size += scratch.len() + usize::from(!out.is_empty());
        if size > limit {
            return Err(TasksError::ResultTooLarge { limit });
        }
        out.push(cells);
    }
    Ok(Value::Array(out))
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
fn prepare_error(e: &rusqlite::Error, cancel: &CancelToken) -> TasksError {
    match e {
        rusqlite::Error::MultipleStatement => TasksError::QueryRefused {
            reason: "only one statement is allowed".into(),
        },
        e if e.sqlite_error_code()
            == Some(rusqlite::ErrorCode::AuthorizationForStatementDenied) =>
        {
            TasksError::QueryRefused {
                reason: format!(
                    "only reading is allowed (no writes, DDL, ATTACH, transactions or writing \
                     PRAGMAs): {}",
                    sqlite_message(e)
                ),
            }
        }
        e => run_error(e, cancel),
    }
}

/// Classifies a failure while running: cancelled, or SQLite's own error.
fn run_error(e: &rusqlite::Error, cancel: &CancelToken) -> TasksError {
    if is_interrupt(e) && cancel.is_cancelled() {
        TasksError::Cancelled
    } else {
        TasksError::Sql {
            message: sqlite_message(e),
        }
    }
}
