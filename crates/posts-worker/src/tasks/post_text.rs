//! Getting a post's text out of its `post_blob` without decoding the rest of the item.

use std::borrow::Cow;

use serde::Deserialize;

/// The one field the text tasks read; every other field of the stored `ContentItem` is
/// skipped by the parser without being built.
#[derive(Deserialize)]
struct TextOnly<'a> {
    /// Borrowed from the blob unless it holds escapes; `null` or absent reads as empty.
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// The `text` of a post blob: `Ok("")` when the blob or its text is missing or null,
/// `Err` when the blob is not a JSON object.
pub fn post_text(blob: Option<&[u8]>) -> Result<Cow<'_, str>, serde_json::Error> {
    let Some(blob) = blob else {
        return Ok(Cow::Borrowed(""));
    };
    let item: TextOnly<'_> = serde_json::from_slice(blob)?;
    Ok(item.text.unwrap_or(Cow::Borrowed("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_and_tolerates_missing_text() {
        let blob =
            br#"{"id":"a1","title":null,"text":"Truth!","engagements":{"like":0,"text":"x"}}"#;
        assert_eq!(post_text(Some(blob)).unwrap(), "Truth!");
        let escaped = br#"{"text":"say \"hi\" \u00e9"}"#;
        assert_eq!(post_text(Some(escaped)).unwrap(), "say \"hi\" é");
        assert_eq!(post_text(Some(br#"{"text":null}"#)).unwrap(), "");
        assert_eq!(post_text(Some(br#"{"id":"x"}"#)).unwrap(), "");
        assert_eq!(post_text(None).unwrap(), "");
        assert!(post_text(Some(b"not json")).is_err());
        assert!(post_text(Some(br#"{"text":5}"#)).is_err());
    }
}
