//! Engagement counts, one shape per platform, as the pydantic union holds them.

use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::json::Fields;
use crate::{AbsentFields, ModelError, OptionalField, Platform, Reason};

/// Engagement counts of a tweet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct TwitterEngagements {
    /// Retweets.
    pub retweet: u64,
    /// Likes.
    pub like: u64,
    /// Replies.
    pub comment: u64,
    /// Quote tweets.
    pub share: u64,
}

/// Engagement counts of a Reddit post or comment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RedditEngagements {
    /// Upvotes, when known.
    pub upvote: Option<u64>,
    /// Downvotes, when known.
    pub downvote: Option<u64>,
    /// Score, when known; may be negative.
    pub score: Option<i64>,
    /// Comments.
    pub comment: u64,
    /// Awards.
    pub award: u64,
    /// Which of `upvote`, `downvote`, `score` were absent (rather than `null`) in the
    /// decoded JSON, so encoding leaves them out again.
    pub absent: AbsentFields,
}

/// Reaction counts of a Facebook post or comment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct FacebookEngagements {
    /// Likes.
    pub like: u64,
    /// Love reactions.
    pub love: u64,
    /// Care reactions.
    pub care: u64,
    /// Haha reactions.
    pub haha: u64,
    /// Wow reactions.
    pub wow: u64,
    /// Sad reactions.
    pub sad: u64,
    /// Angry reactions.
    pub angry: u64,
    /// Comments.
    pub comment: u64,
    /// Shares.
    pub share: u64,
}

/// The engagements of an item: one of the three platform shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engagements {
    /// Twitter counts.
    Twitter(TwitterEngagements),
    /// Reddit counts.
    Reddit(RedditEngagements),
    /// Facebook counts.
    Facebook(FacebookEngagements),
}

const FACEBOOK_ONLY: [&str; 6] = ["love", "care", "haha", "wow", "sad", "angry"];
const REDDIT_ONLY: [&str; 4] = ["upvote", "downvote", "score", "award"];

impl Engagements {
    /// The platform whose shape these counts have.
    pub fn platform(&self) -> Platform {
        match self {
            Engagements::Twitter(_) => Platform::Twitter,
            Engagements::Reddit(_) => Platform::Reddit,
            Engagements::Facebook(_) => Platform::Facebook,
        }
    }

    /// Decodes an engagements object, telling the shape apart by its platform-specific
    /// keys (reactions for Facebook, `retweet` for Twitter, votes or `award` for Reddit).
    pub fn from_value(value: &Value) -> Result<Self, ModelError> {
        Self::from_value_at(value, "engagements")
    }

    pub(crate) fn from_value_at(value: &Value, path: &str) -> Result<Self, ModelError> {
        let fields = Fields::of(value, path)?;
        if FACEBOOK_ONLY.iter().any(|k| fields.has(k)) {
            Ok(Engagements::Facebook(FacebookEngagements {
                like: fields.required_count("like")?,
                love: fields.required_count("love")?,
                care: fields.required_count("care")?,
                haha: fields.required_count("haha")?,
                wow: fields.required_count("wow")?,
                sad: fields.required_count("sad")?,
                angry: fields.required_count("angry")?,
                comment: fields.required_count("comment")?,
                share: fields.required_count("share")?,
            }))
        } else if fields.has("retweet") {
            Ok(Engagements::Twitter(TwitterEngagements {
                retweet: fields.required_count("retweet")?,
                like: fields.required_count("like")?,
                comment: fields.required_count("comment")?,
                share: fields.required_count("share")?,
            }))
        } else if REDDIT_ONLY.iter().any(|k| fields.has(k)) {
            let upvote = fields.optional_count("upvote")?;
            let downvote = fields.optional_count("downvote")?;
            let score = fields.optional_int("score")?;
            let mut absent = AbsentFields::default();
            absent.set(OptionalField::Upvote, upvote.absent);
            absent.set(OptionalField::Downvote, downvote.absent);
            absent.set(OptionalField::Score, score.absent);
            Ok(Engagements::Reddit(RedditEngagements {
                upvote: upvote.value,
                downvote: downvote.value,
                score: score.value,
                comment: fields.required_count("comment")?,
                award: fields.required_count("award")?,
                absent,
            }))
        } else {
            Err(ModelError::invalid(path, Reason::UnknownEngagements))
        }
    }
}

impl Serialize for RedditEngagements {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("RedditEngagements", 5)?;
        fn field<S: SerializeStruct, T: Serialize>(
            s: &mut S,
            name: &'static str,
            value: Option<T>,
            omit_when_none: bool,
        ) -> Result<(), S::Error> {
            match value {
                None if omit_when_none => s.skip_field(name),
                value => s.serialize_field(name, &value),
            }
        }
        let absent = |f| self.absent.contains(f);
        field(&mut s, "upvote", self.upvote, absent(OptionalField::Upvote))?;
        field(
            &mut s,
            "downvote",
            self.downvote,
            absent(OptionalField::Downvote),
        )?;
        field(&mut s, "score", self.score, absent(OptionalField::Score))?;
        s.serialize_field("comment", &self.comment)?;
        s.serialize_field("award", &self.award)?;
        s.end()
    }
}

impl Serialize for Engagements {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Engagements::Twitter(e) => e.serialize(serializer),
            Engagements::Reddit(e) => e.serialize(serializer),
            Engagements::Facebook(e) => e.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Engagements {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Engagements::from_value(&value).map_err(serde::de::Error::custom)
    }
}
