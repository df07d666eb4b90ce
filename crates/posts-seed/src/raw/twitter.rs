//! The Twitter JSON export: an array of API tweet objects, read element by element so a
//! truncated or corrupt file still loads every tweet before the damage.

use std::fmt;
use std::path::Path;

use posts_model::{
    ContentItem, ContentType, Engagements, Platform, Timestamp, TwitterEngagements, check_http_url,
};
use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::csv_input::{Origin, parse_count};
use crate::{RecordError, SeedError};

/// Reads `path`, handing each item or rejected record to `emit`.
pub(crate) fn read(
    path: &Path,
    emit: &mut dyn FnMut(Result<ContentItem, RecordError>) -> Result<(), SeedError>,
) -> Result<(), SeedError> {
    let bytes = std::fs::read(path).map_err(|e| SeedError::io(path, e))?;
    let data = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut elements = Elements {
        path,
        emit,
        seen: 0,
        stopped: None,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(data);
    let parsed = (&mut elements)
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    if let Some(stop) = elements.stopped {
        return Err(stop);
    }
    if let Err(e) = parsed {
        let origin = Origin {
            file: path,
            platform: Platform::Twitter,
            record: if e.classify() == serde_json::error::Category::Data && elements.seen == 0 {
                0
            } else {
                elements.seen + 1
            },
            line: Some(e.line() as u64),
        };
        let reason = if origin.record == 0 {
            format!("not a JSON array of tweets: {e}")
        } else {
            format!("invalid JSON: {e}; nothing after this point could be read")
        };
        (elements.emit)(Err(origin.reject(None, reason)))?;
    }
    Ok(())
}

/// Walks the top-level array, converting each element as soon as it is parsed.
struct Elements<'a, 'e> {
    path: &'a Path,
    emit: &'e mut dyn FnMut(Result<ContentItem, RecordError>) -> Result<(), SeedError>,
    seen: u64,
    stopped: Option<SeedError>,
}

impl<'de> DeserializeSeed<'de> for &mut Elements<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for &mut Elements<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of tweet objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            self.seen += 1;
            let origin = Origin {
                file: self.path,
                platform: Platform::Twitter,
                record: self.seen,
                line: None,
            };
            if let Err(stop) = (self.emit)(convert(&value, &origin)) {
                self.stopped = Some(stop);
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

fn convert(value: &Value, origin: &Origin<'_>) -> Result<ContentItem, RecordError> {
    let Value::Object(tweet) = value else {
        return Err(origin.reject(None, "not a JSON object"));
    };
    let id = id_field(tweet, "id", origin)?;
    let author = id_field(tweet, "author_id", origin)?;
    let text = match tweet.get("text") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(origin.reject(Some("text"), "not a string")),
        None => return Err(origin.reject(Some("text"), "missing")),
    };
    let created_at = match tweet.get("created_at") {
        Some(Value::String(s)) => {
            Timestamp::parse(s).map_err(|e| origin.reject(Some("created_at"), e.to_string()))?
        }
        Some(_) => return Err(origin.reject(Some("created_at"), "not a string")),
        None => return Err(origin.reject(Some("created_at"), "missing")),
    };
    let Some(Value::Object(metrics)) = tweet.get("public_metrics") else {
        return Err(origin.reject(Some("public_metrics"), "missing or not an object"));
    };
    let metric = |name: &str| -> Result<u64, RecordError> {
        let field = format!("public_metrics.{name}");
        let n = match metrics.get(name) {
            Some(Value::Number(n)) => {
                parse_count(&n.to_string()).map_err(|r| origin.reject(Some(&field), r))?
            }
            Some(Value::Null) | None => return Err(origin.reject(Some(&field), "missing")),
            Some(_) => return Err(origin.reject(Some(&field), "not a number")),
        };
        u64::try_from(n).map_err(|_| origin.reject(Some(&field), format!("negative count {n}")))
    };
    let engagements = TwitterEngagements {
        retweet: metric("retweet_count")?,
        like: metric("like_count")?,
        comment: metric("reply_count")?,
        share: metric("quote_count")?,
    };
    let replied_to = replied_to(tweet, origin)?;
    let content_type = if replied_to.is_some() {
        ContentType::Comment
    } else {
        ContentType::Post
    };
    let language = match tweet.get("lang") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_) | Value::Null) | None => None,
        Some(_) => return Err(origin.reject(Some("lang"), "not a string")),
    };
    let mut item = ContentItem::new(
        id,
        content_type,
        text,
        author,
        created_at,
        Engagements::Twitter(engagements),
    );
    item.parent_id = replied_to;
    item.language = language;
    item.embedded_urls = Some(urls(tweet, origin)?);
    Ok(item)
}

/// A string id; API v1 numeric ids are accepted and written as text.
fn id_field(
    tweet: &Map<String, Value>,
    name: &str,
    origin: &Origin<'_>,
) -> Result<String, RecordError> {
    match tweet.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
        Some(Value::Null) | None => Err(origin.reject(Some(name), "missing")),
        Some(_) => Err(origin.reject(Some(name), "not a non-empty string id")),
    }
}

fn replied_to(
    tweet: &Map<String, Value>,
    origin: &Origin<'_>,
) -> Result<Option<String>, RecordError> {
    let refs = match tweet.get("referenced_tweets") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(refs)) => refs,
        Some(_) => return Err(origin.reject(Some("referenced_tweets"), "not an array")),
    };
    for (i, reference) in refs.iter().enumerate() {
        let field = format!("referenced_tweets[{i}]");
        let Value::Object(reference) = reference else {
            return Err(origin.reject(Some(&field), "not an object"));
        };
        match reference.get("type").and_then(Value::as_str) {
            Some("replied_to") => {
                return id_field(reference, "id", origin)
                    .map(Some)
                    .map_err(|e| RecordError {
                        field: Some(format!("{field}.id")),
                        ..e
                    });
            }
            Some("quoted" | "retweeted") => {}
            Some(other) => {
                return Err(origin.reject(
                    Some(&format!("{field}.type")),
                    format!(
                        "unknown reference type {other:?}, expected replied_to, quoted or retweeted"
                    ),
                ));
            }
            None => return Err(origin.reject(Some(&format!("{field}.type")), "missing")),
        }
    }
    Ok(None)
}

fn urls(tweet: &Map<String, Value>, origin: &Origin<'_>) -> Result<Vec<String>, RecordError> {
    let Some(entities) = tweet.get("entities").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = match entities.get("urls") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(origin.reject(Some("entities.urls"), "not an array")),
    };
    list.iter()
        .enumerate()
        .map(|(i, entry)| {
            let url = entry
                .get("expanded_url")
                .or_else(|| entry.get("url"))
                .and_then(Value::as_str);
            let field = format!("entities.urls[{i}].expanded_url");
            let url = url.ok_or_else(|| origin.reject(Some(&field), "missing"))?;
            check_http_url(url)
                .map_err(|reason| origin.reject(Some(&field), reason.to_string()))?;
            Ok(url.to_owned())
        })
        .collect()
}
