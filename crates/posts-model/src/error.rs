//! The model's validation error: which field was wrong and why.

/// Why a JSON document or value is not a valid model object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A field is missing or holds a value the model rejects.
    #[error("field `{field}`: {reason}")]
    Invalid {
        /// Dotted path of the field, e.g. `engagements.like` or `embedded_urls[2]`.
        field: String,
        /// What was wrong with it.
        reason: Reason,
    },
    /// The text is not JSON at all (syntax error, truncated document).
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The JSON parser's description.
        message: String,
    },
}

impl ModelError {
    /// The offending field's path, when the error is about one field.
    pub fn field(&self) -> Option<&str> {
        match self {
            ModelError::Invalid { field, .. } => Some(field),
            ModelError::Json { .. } => None,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: Reason) -> Self {
        ModelError::Invalid {
            field: field.into(),
            reason,
        }
    }

    pub(crate) fn from_json_error(err: &serde_json::Error) -> Self {
        ModelError::Json {
            line: err.line(),
            column: err.column(),
            message: err.to_string(),
        }
    }
}

/// The reason a field was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// A required field is absent (or `null` where `null` is not allowed).
    #[error("missing required field")]
    Missing,
    /// The JSON type is not the one the model expects.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the model expects, e.g. `a string`.
        expected: &'static str,
        /// What the document holds, e.g. `a number`.
        found: &'static str,
    },
    /// A count that must be non-negative is negative.
    #[error("must be a non-negative integer, found {0}")]
    Negative(String),
    /// A number that must be a whole number has a fraction or is too large.
    #[error("must be a whole number that fits 64 bits, found {0}")]
    NotWhole(String),
    /// A string is not one of the allowed values.
    #[error("unknown value {value:?}, expected one of {expected}")]
    UnknownVariant {
        /// The value found.
        value: String,
        /// The allowed values, e.g. `post|comment`.
        expected: &'static str,
    },
    /// A URL that must be absolute http or https is not.
    #[error("not an absolute http(s) URL: {value:?} ({why})")]
    BadUrl {
        /// The value found.
        value: String,
        /// Why it was rejected.
        why: String,
    },
    /// A datetime does not have one of the accepted forms.
    #[error("{0}")]
    BadDatetime(crate::ParseTimestampError),
    /// An engagements object matches none of the three platform shapes.
    #[error("matches none of the twitter, reddit or facebook engagement shapes")]
    UnknownEngagements,
}
