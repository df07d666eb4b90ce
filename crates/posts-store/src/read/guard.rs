//! Hardening of every read connection: besides opening with `SQLITE_OPEN_READ_ONLY` and
//! `PRAGMA query_only = ON`, an SQLite authorizer refuses at prepare time everything that
//! is not reading — writes, DDL, `ATTACH`/`DETACH`, transactions, and PRAGMAs other than a
//! short list of read-only ones — so untrusted SQL cannot change the file *or* the pooled
//! connection's state (a later borrower must get the same hardened connection).

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;

/// The longest string or blob a read connection may build; untrusted SQL such as
/// `randomblob(1e9)` fails with "string or blob too big" instead of exhausting memory.
const MAX_VALUE_BYTES: i32 = 64 * 1024 * 1024;

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
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)?;
    conn.authorizer(Some(authorize))
}

/// Whether a PRAGMA named `name`, called with `argument`, only reads.
fn pragma_is_read_only(name: &str, argument: Option<&str>) -> bool {
    let name = name.to_ascii_lowercase();
    READ_ONLY_PRAGMAS.contains(&name.as_str())
        && (argument.is_none() || NAME_ARGUMENT_PRAGMAS.contains(&name.as_str()))
}

/// The authorizer: allows reading actions, denies the rest.
fn authorize(context: AuthContext<'_>) -> Authorization {
    let allowed = match context.action {
        AuthAction::Select
        | AuthAction::Read { .. }
        | AuthAction::Function { .. }
        | AuthAction::Recursive => true,
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => pragma_is_read_only(pragma_name, pragma_value),
        _ => false,
    };
    if allowed {
        Authorization::Allow
    } else {
        Authorization::Deny
    }
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
