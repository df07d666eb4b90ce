//! Hardening of every read connection: besides opening with `SQLITE_OPEN_READ_ONLY` and
//! `PRAGMA query_only = ON`, an SQLite authorizer refuses at prepare time everything that
//! is not reading — writes, DDL, `ATTACH`/`DETACH`, transactions, and PRAGMAs other than a
//! short list of read-only ones — so untrusted SQL cannot change the file *or* the pooled
//! connection's state (a later borrower must get the same hardened connection).
//!
//! The authorizer is installed through the raw C API because the workspace builds rusqlite
//! without its `hooks` feature.

use std::ffi::{CStr, c_char, c_int, c_void};

use rusqlite::{Connection, ffi};

/// The longest string or blob a read connection may build; untrusted SQL such as
/// `randomblob(1e9)` fails with "string or blob too big" instead of exhausting memory.
const MAX_VALUE_BYTES: c_int = 64 * 1024 * 1024;

/// PRAGMAs that only report something. Anything else (including these with an argument,
/// except the ones in [`NAME_ARGUMENT_PRAGMAS`]) is refused.
const READ_ONLY_PRAGMAS: &[&str] = &[
    "application_id",
    "collation_list",
    "compile_options",
    "data_version",
    "database_list",
    "encoding",
    "foreign_key_check",
    "foreign_key_list",
    "freelist_count",
    "function_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "journal_mode",
    "module_list",
    "page_count",
    "page_size",
    "pragma_list",
    "query_only",
    "quick_check",
    "schema_version",
    "table_info",
    "table_list",
    "table_xinfo",
    "user_version",
];

/// Read-only PRAGMAs whose argument names a table, an index or a count, not a new value.
const NAME_ARGUMENT_PRAGMAS: &[&str] = &[
    "foreign_key_check",
    "foreign_key_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "quick_check",
    "table_info",
    "table_list",
    "table_xinfo",
];

/// Applies the session settings and installs the authorizer on a freshly opened read-only
/// connection.
pub(crate) fn harden(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch("PRAGMA query_only = ON;")?;
    // SAFETY: `conn` owns a valid, open `sqlite3*` for the whole call; the callback is a
    // plain function with no user data, so nothing it points to can outlive the connection.
    unsafe {
        let db = conn.handle();
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES);
        let rc = ffi::sqlite3_set_authorizer(db, Some(authorize), std::ptr::null_mut());
        if rc != ffi::SQLITE_OK {
            return Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None));
        }
    }
    Ok(())
}

/// Whether a PRAGMA named `name`, called with `argument`, only reads.
fn pragma_is_read_only(name: &str, argument: Option<&str>) -> bool {
    let name = name.to_ascii_lowercase();
    READ_ONLY_PRAGMAS.contains(&name.as_str())
        && (argument.is_none() || NAME_ARGUMENT_PRAGMAS.contains(&name.as_str()))
}

/// The authorizer: allows reading actions, denies the rest. Must never unwind (it is called
/// from C), so it only does lookups.
unsafe extern "C" fn authorize(
    _user_data: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    _database: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    let allowed = match action {
        ffi::SQLITE_SELECT | ffi::SQLITE_READ | ffi::SQLITE_FUNCTION | ffi::SQLITE_RECURSIVE => {
            true
        }
        ffi::SQLITE_PRAGMA => {
            // SAFETY: SQLite passes NUL-terminated strings (or NULL) valid for this call.
            let name = unsafe { c_text(arg1) };
            let argument = unsafe { c_text(arg2) };
            name.is_some_and(|name| pragma_is_read_only(name, argument))
        }
        _ => false,
    };
    if allowed {
        ffi::SQLITE_OK
    } else {
        ffi::SQLITE_DENY
    }
}

/// Borrows a C string from SQLite, `None` for NULL or non-UTF-8 text.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string valid for `'a`.
unsafe fn c_text<'a>(ptr: *const c_char) -> Option<&'a str> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(ptr) }.to_str().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pragma_rules() {
        assert!(pragma_is_read_only("table_info", Some("posts")));
        assert!(pragma_is_read_only("USER_VERSION", None));
        assert!(!pragma_is_read_only("user_version", Some("7")));
        assert!(!pragma_is_read_only("query_only", Some("OFF")));
        assert!(!pragma_is_read_only("journal_mode", Some("delete")));
        assert!(!pragma_is_read_only("wal_checkpoint", None));
        assert!(!pragma_is_read_only("writable_schema", None));
    }
}
