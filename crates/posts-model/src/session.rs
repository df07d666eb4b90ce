//! `Session`: one visit of a study participant to a platform, as the pydantic model
//! defines it. The posts table keeps its `user_id` and `current_time` per item.

use serde::{Deserialize, Serialize};

use crate::{Platform, Timestamp};

/// One visit of a study participant to a platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Unique id of the session.
    pub session_id: String,
    /// Participant id (the posts table's `session_user_id`).
    pub user_id: String,
    /// Hash of the participant's user name on the platform.
    pub user_name_hash: String,
    /// Study cohort, when assigned.
    #[serde(default)]
    pub cohort: Option<String>,
    /// Index within the cohort, when assigned.
    #[serde(default)]
    pub cohort_index: Option<i64>,
    /// The platform visited.
    pub platform: Platform,
    /// The page the participant was on.
    pub url: String,
    /// When the session happened (the posts table's `session_timestamp`).
    pub current_time: Timestamp,
    /// Whether the feed was requested ahead of the visit.
    #[serde(default)]
    pub prefetch: bool,
}
