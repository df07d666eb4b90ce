//! `ContentItem`, the post or comment a `post_blob` holds, with exact JSON round trips.

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::json::{self, Fields};
use crate::{ContentType, Engagements, ModelError, Platform, Reason, Timestamp};

/// The optional fields whose absence (as opposed to an explicit `null`) is remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionalField {
    /// `ContentItem::original_rank`.
    OriginalRank,
    /// `ContentItem::post_id`.
    PostId,
    /// `ContentItem::parent_id`.
    ParentId,
    /// `ContentItem::title`.
    Title,
    /// `ContentItem::embedded_urls`.
    EmbeddedUrls,
    /// `ContentItem::language`.
    Language,
    /// `RedditEngagements::upvote`.
    Upvote,
    /// `RedditEngagements::downvote`.
    Downvote,
    /// `RedditEngagements::score`.
    Score,
}

/// The set of optional fields that were absent from a decoded document.
///
/// A field that is `None` and in this set is left out when encoding; a `None` field not
/// in it is written as `null`, as pydantic does. The empty set (the default) therefore
/// gives pydantic's output for items built in code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AbsentFields(u16);

impl AbsentFields {
    /// Whether `field` was absent.
    pub fn contains(self, field: OptionalField) -> bool {
        self.0 & (1 << field as u16) != 0
    }

    /// Marks `field` absent (`true`) or present (`false`).
    pub fn set(&mut self, field: OptionalField, absent: bool) {
        if absent {
            self.0 |= 1 << field as u16;
        } else {
            self.0 &= !(1 << field as u16);
        }
    }

    /// Whether no field is marked absent.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A post or comment as the research teams' pydantic `ContentItem` model defines it.
///
/// Keys that the model does not know are kept in [`extra`](Self::extra) and written back,
/// so re-encoding never loses data.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentItem {
    /// Platform-specific item id.
    pub id: String,
    /// Position of the item in the feed it was shown in, when known.
    pub original_rank: Option<u64>,
    /// Id of the post this item belongs to (its own id for a post).
    pub post_id: Option<String>,
    /// Id of the item this comment replies to.
    pub parent_id: Option<String>,
    /// Title (Reddit posts).
    pub title: Option<String>,
    /// Body text; may be empty.
    pub text: String,
    /// Hash of the author's name.
    pub author_name_hash: String,
    /// Post or comment (JSON key `type`).
    pub content_type: ContentType,
    /// Absolute http(s) URLs the item links to.
    pub embedded_urls: Option<Vec<String>>,
    /// When the item was created (UTC).
    pub created_at: Timestamp,
    /// Engagement counts; their shape tells the platform.
    pub engagements: Engagements,
    /// Language code, when known.
    pub language: Option<String>,
    /// Optional fields that were absent (not `null`) in the decoded document.
    pub absent: AbsentFields,
    /// Keys the model does not know, kept verbatim.
    pub extra: Map<String, Value>,
}

const KNOWN_KEYS: [&str; 12] = [
    "id",
    "original_rank",
    "post_id",
    "parent_id",
    "title",
    "text",
    "author_name_hash",
    "type",
    "embedded_urls",
    "created_at",
    "engagements",
    "language",
];

impl ContentItem {
    /// An item with the required fields set and every optional field `None` (encoded as
    /// `null`).
    pub fn new(
        id: impl Into<String>,
        content_type: ContentType,
        text: impl Into<String>,
        author_name_hash: impl Into<String>,
        created_at: Timestamp,
        engagements: Engagements,
    ) -> Self {
        ContentItem {
            id: id.into(),
            original_rank: None,
            post_id: None,
            parent_id: None,
            title: None,
            text: text.into(),
            author_name_hash: author_name_hash.into(),
            content_type,
            embedded_urls: None,
            created_at,
            engagements,
            language: None,
            absent: AbsentFields::default(),
            extra: Map::new(),
        }
    }

    /// The platform, as told by the engagements' shape.
    pub fn platform(&self) -> Platform {
        self.engagements.platform()
    }

    /// Decodes and validates one JSON document.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ModelError::from_json_error(&e))?;
        Self::from_value(&value)
    }

    /// Decodes and validates an already parsed JSON value.
    pub fn from_value(value: &Value) -> Result<Self, ModelError> {
        let fields = Fields::of(value, "")?;
        let original_rank = fields.optional_count("original_rank")?;
        let post_id = fields.optional_str("post_id")?;
        let parent_id = fields.optional_str("parent_id")?;
        let title = fields.optional_str("title")?;
        let language = fields.optional_str("language")?;
        let urls = fields.optional_value("embedded_urls");
        let embedded_urls = match urls.value {
            None => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let path = || format!("embedded_urls[{i}]");
                        let url = json::string(v, path)?;
                        check_http_url(&url)
                            .map_err(|reason| ModelError::invalid(path(), reason))?;
                        Ok(url)
                    })
                    .collect::<Result<Vec<_>, ModelError>>()?,
            ),
            Some(other) => return Err(json::wrong_type("embedded_urls", "an array", other)),
        };
        let content_type = ContentType::parse_exact("type", &fields.required_str("type")?)?;
        let created_at_text = fields.required_str("created_at")?;
        let created_at = Timestamp::parse(&created_at_text)
            .map_err(|e| ModelError::invalid("created_at", Reason::BadDatetime(e)))?;
        let engagements =
            Engagements::from_value_at(fields.required_value("engagements")?, "engagements")?;

        let mut absent = AbsentFields::default();
        absent.set(OptionalField::OriginalRank, original_rank.absent);
        absent.set(OptionalField::PostId, post_id.absent);
        absent.set(OptionalField::ParentId, parent_id.absent);
        absent.set(OptionalField::Title, title.absent);
        absent.set(OptionalField::EmbeddedUrls, urls.absent);
        absent.set(OptionalField::Language, language.absent);

        let extra = fields
            .map()
            .iter()
            .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();

        Ok(ContentItem {
            id: fields.required_str("id")?,
            original_rank: original_rank.value,
            post_id: post_id.value,
            parent_id: parent_id.value,
            title: title.value,
            text: fields.required_str("text")?,
            author_name_hash: fields.required_str("author_name_hash")?,
            content_type,
            embedded_urls,
            created_at,
            engagements,
            language: language.value,
            absent,
            extra,
        })
    }

    /// Encodes the item as compact JSON (the `post_blob` form).
    pub fn to_json(&self) -> String {
        // Every key is a string and no Serialize impl here returns an error, so
        // serde_json cannot fail; the fallback is unreachable.
        // Sized for the text plus the usual keys, so the buffer rarely grows.
        let mut buf = Vec::with_capacity(self.text.len() + 384);
        match serde_json::to_writer(&mut buf, self) {
            Ok(()) => String::from_utf8(buf).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

/// Checks that `text` is an absolute `http` or `https` URL with a host.
pub fn check_http_url(text: &str) -> Result<(), Reason> {
    let bad = |why: String| Reason::BadUrl {
        value: text.chars().take(200).collect(),
        why,
    };
    let url = url::Url::parse(text).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("scheme is {:?}", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".to_owned()));
    }
    Ok(())
}

impl Serialize for ContentItem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn optional<M: SerializeMap, T: Serialize>(
            map: &mut M,
            name: &str,
            value: &Option<T>,
            absent: bool,
        ) -> Result<(), M::Error> {
            if value.is_none() && absent {
                Ok(())
            } else {
                map.serialize_entry(name, value)
            }
        }
        let absent = |f| self.absent.contains(f);
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        optional(
            &mut map,
            "original_rank",
            &self.original_rank,
            absent(OptionalField::OriginalRank),
        )?;
        optional(
            &mut map,
            "post_id",
            &self.post_id,
            absent(OptionalField::PostId),
        )?;
        optional(
            &mut map,
            "parent_id",
            &self.parent_id,
            absent(OptionalField::ParentId),
        )?;
        optional(&mut map, "title", &self.title, absent(OptionalField::Title))?;
        map.serialize_entry("text", &self.text)?;
        map.serialize_entry("author_name_hash", &self.author_name_hash)?;
        map.serialize_entry("type", &self.content_type)?;
        optional(
            &mut map,
            "embedded_urls",
            &self.embedded_urls,
            absent(OptionalField::EmbeddedUrls),
        )?;
        map.serialize_entry("created_at", &self.created_at)?;
        map.serialize_entry("engagements", &self.engagements)?;
        optional(
            &mut map,
            "language",
            &self.language,
            absent(OptionalField::Language),
        )?;
        for (key, value) in &self.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ContentItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        ContentItem::from_value(&value).map_err(serde::de::Error::custom)
    }
}
