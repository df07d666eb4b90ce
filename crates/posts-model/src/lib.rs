//! Domain types of the posts database, field for field compatible with the research
//! teams' pydantic models: a [`ContentItem`] is what one `post_blob` column holds, a
//! [`Session`] is one visit of a study participant to a platform.
//!
//! Decoding validates (non-negative counts, known `type`, http(s) URLs, UTC datetimes)
//! and reports the offending field in a [`ModelError`]. Decoding a pydantic blob and
//! encoding it again gives back the same JSON value: optional fields that were `null`
//! stay `null`, fields that were absent stay absent (see [`AbsentFields`]).

mod engagements;
mod error;
mod item;
mod json;
mod kinds;
mod session;
mod timestamp;

pub use engagements::{Engagements, FacebookEngagements, RedditEngagements, TwitterEngagements};
pub use error::{ModelError, Reason};
pub use item::{AbsentFields, ContentItem, OptionalField, check_http_url};
pub use kinds::{ContentType, Platform};
pub use session::Session;
pub use timestamp::{ParseTimestampError, Timestamp};
