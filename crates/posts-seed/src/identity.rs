//! Session identities as the original pipeline derived them: `user_name_hash =
//! sha256(username)` and `session_user_id = sha256(username + salt)`, both in hex.

use sha2::{Digest, Sha256};

/// A session user's name and the hashes stored for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserIdentity {
    /// The plain user name (never stored).
    pub username: String,
    /// `sha256(username)` in hex.
    pub user_name_hash: String,
    /// `sha256(username + salt)` in hex: the posts table's `session_user_id`.
    pub user_id: String,
}

impl UserIdentity {
    /// Derives the hashes of `username` with `salt`.
    pub(crate) fn derive(username: &str, salt: &str) -> Self {
        UserIdentity {
            username: username.to_owned(),
            user_name_hash: sha256_hex(&[username]),
            user_id: sha256_hex(&[username, salt]),
        }
    }
}

/// Lower-case hex SHA-256 of the concatenated parts.
pub(crate) fn sha256_hex(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_sha256_of_name_and_salted_name() {
        let id = UserIdentity::derive("test_user", "s");
        // Reference values from `printf %s test_user | sha256sum` (and `test_users`).
        assert_eq!(
            id.user_name_hash,
            "1160130875fda0812c99c5e3f1a03516471a6370c4f97129b221938eb4763e63"
        );
        assert_eq!(
            id.user_id,
            "3499749a3904fe5e89974d4d5c7928d9db4e55db041a5452e4965886cc09edd9"
        );
    }
}
