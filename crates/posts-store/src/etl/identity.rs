//! Session identities as the original pipeline derived them: `user_name_hash =
//! sha256(username)` and `session_user_id = sha256(username + salt)`, both in hex.

use posts_model::{Platform, Session, Timestamp};
use sha2::{Digest, Sha256};

/// A session user's name and the hashes stored for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// The plain user name (never stored).
    pub username: String,
    /// `sha256(username)` in hex.
    pub user_name_hash: String,
    /// `sha256(username + salt)` in hex: the posts table's `session_user_id`.
    pub user_id: String,
}

impl UserIdentity {
    /// Derives the hashes of `username` with `salt`.
    pub fn derive(username: &str, salt: &str) -> Self {
        UserIdentity {
            username: username.to_owned(),
            user_name_hash: sha256_hex(&[username]),
            user_id: sha256_hex(&[username, salt]),
        }
    }

    /// A session of this user on `platform` at `time`.
    pub fn session(&self, platform: Platform, time: Timestamp) -> Session {
        Session {
            session_id: sha256_hex(&[&self.user_id, platform.as_str(), &time.to_string()]),
            user_id: self.user_id.clone(),
            user_name_hash: self.user_name_hash.clone(),
            cohort: None,
            cohort_index: None,
            platform,
            url: home_url(platform).to_owned(),
            current_time: time,
            prefetch: false,
        }
    }
}

/// Lower-case hex SHA-256 of the concatenated parts.
pub fn sha256_hex(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

fn home_url(platform: Platform) -> &'static str {
    match platform {
        Platform::Twitter => "https://x.com/home",
        Platform::Reddit => "https://www.reddit.com/",
        Platform::Facebook => "https://www.facebook.com/",
    }
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
