//! The two small enumerations of the model: the platform an item comes from and
//! whether it is a post or a comment.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ModelError, Reason};

/// The social-media platform an item or session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// X / Twitter.
    Twitter,
    /// Reddit.
    Reddit,
    /// Facebook.
    Facebook,
}

impl Platform {
    /// Every platform, in a fixed order.
    pub const ALL: [Platform; 3] = [Platform::Twitter, Platform::Reddit, Platform::Facebook];

    /// The lower-case name used in JSON and in the `platform` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Twitter => "twitter",
            Platform::Reddit => "reddit",
            Platform::Facebook => "facebook",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = ModelError;

    /// Parses `twitter`, `reddit` or `facebook`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                ModelError::invalid(
                    "platform",
                    Reason::UnknownVariant {
                        value: s.to_owned(),
                        expected: "twitter|reddit|facebook",
                    },
                )
            })
    }
}

/// Whether an item is a top-level post or a comment (reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentType {
    /// A top-level post.
    Post,
    /// A comment on a post or a reply to another comment.
    Comment,
}

impl ContentType {
    /// The lower-case name used in JSON and in the `type` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Post => "post",
            ContentType::Comment => "comment",
        }
    }

    /// Parses exactly `post` or `comment`, as the pydantic `Literal` does.
    pub(crate) fn parse_exact(field: &str, s: &str) -> Result<Self, ModelError> {
        match s {
            "post" => Ok(ContentType::Post),
            "comment" => Ok(ContentType::Comment),
            other => Err(ModelError::invalid(
                field,
                Reason::UnknownVariant {
                    value: other.to_owned(),
                    expected: "post|comment",
                },
            )),
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ContentType {
    type Err = ModelError;

    /// Parses `post` or `comment`, ignoring ASCII case (CSV exports write `Post`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ContentType::parse_exact("type", &s.to_ascii_lowercase()).map_err(|_| {
            ModelError::invalid(
                "type",
                Reason::UnknownVariant {
                    value: s.to_owned(),
                    expected: "post|comment",
                },
            )
        })
    }
}
