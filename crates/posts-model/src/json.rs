//! Typed field access on decoded JSON objects: every failure names the field's path and
//! the reason, so decoding errors can be reported record by record.

use serde_json::{Map, Value};

use crate::{ModelError, Reason};

/// A JSON object being decoded, with the path prefix used in error messages.
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: &'a str,
}

/// An optional field's decoded value and whether the key was absent (not `null`).
pub(crate) struct Optional<T> {
    pub value: Option<T>,
    pub absent: bool,
}

impl<'a> Fields<'a> {
    /// Views `value` as an object, or fails naming `path`.
    pub(crate) fn of(value: &'a Value, path: &'a str) -> Result<Self, ModelError> {
        match value {
            Value::Object(map) => Ok(Fields { map, prefix: path }),
            other => Err(wrong_type(path, "an object", other)),
        }
    }

    pub(crate) fn map(&self) -> &'a Map<String, Value> {
        self.map
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    pub(crate) fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn required(&self, name: &str) -> Result<&'a Value, ModelError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Err(ModelError::invalid(self.path(name), Reason::Missing)),
            Some(value) => Ok(value),
        }
    }

    fn optional<T>(
        &self,
        name: &str,
        decode: impl FnOnce(&'a Value, String) -> Result<T, ModelError>,
    ) -> Result<Optional<T>, ModelError> {
        match self.map.get(name) {
            None => Ok(Optional {
                value: None,
                absent: true,
            }),
            Some(Value::Null) => Ok(Optional {
                value: None,
                absent: false,
            }),
            Some(value) => Ok(Optional {
                value: Some(decode(value, self.path(name))?),
                absent: false,
            }),
        }
    }

    pub(crate) fn required_str(&self, name: &str) -> Result<String, ModelError> {
        let value = self.required(name)?;
        string(value, || self.path(name))
    }

    pub(crate) fn optional_str(&self, name: &str) -> Result<Optional<String>, ModelError> {
        self.optional(name, |value, path| string(value, || path))
    }

    pub(crate) fn required_count(&self, name: &str) -> Result<u64, ModelError> {
        let value = self.required(name)?;
        count(value, &self.path(name))
    }

    pub(crate) fn optional_count(&self, name: &str) -> Result<Optional<u64>, ModelError> {
        self.optional(name, |value, path| count(value, &path))
    }

    pub(crate) fn optional_int(&self, name: &str) -> Result<Optional<i64>, ModelError> {
        self.optional(name, |value, path| integer(value, &path))
    }

    pub(crate) fn required_value(&self, name: &str) -> Result<&'a Value, ModelError> {
        self.required(name)
    }

    pub(crate) fn optional_value(&self, name: &str) -> Optional<&'a Value> {
        match self.map.get(name) {
            None => Optional {
                value: None,
                absent: true,
            },
            Some(Value::Null) => Optional {
                value: None,
                absent: false,
            },
            Some(value) => Optional {
                value: Some(value),
                absent: false,
            },
        }
    }
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn wrong_type(
    path: impl Into<String>,
    expected: &'static str,
    found: &Value,
) -> ModelError {
    ModelError::invalid(
        path,
        Reason::WrongType {
            expected,
            found: type_name(found),
        },
    )
}

pub(crate) fn string(value: &Value, path: impl FnOnce() -> String) -> Result<String, ModelError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(wrong_type(path(), "a string", other)),
    }
}

/// A non-negative integer; whole floats such as `993.0` are accepted, as pydantic's lax
/// integer validation does.
pub(crate) fn count(value: &Value, path: &str) -> Result<u64, ModelError> {
    let n = integer_or_whole_float(value, path)?;
    match n {
        Whole::Unsigned(n) => Ok(n),
        Whole::Negative(n) => Err(ModelError::invalid(path, Reason::Negative(n.to_string()))),
    }
}

/// Any integer that fits `i64`.
pub(crate) fn integer(value: &Value, path: &str) -> Result<i64, ModelError> {
    let not_whole = || ModelError::invalid(path, Reason::NotWhole(value.to_string()));
    match integer_or_whole_float(value, path)? {
        Whole::Unsigned(n) => i64::try_from(n).map_err(|_| not_whole()),
        Whole::Negative(n) => Ok(n),
    }
}

enum Whole {
    Unsigned(u64),
    Negative(i64),
}

fn integer_or_whole_float(value: &Value, path: &str) -> Result<Whole, ModelError> {
    let Value::Number(number) = value else {
        return Err(wrong_type(path, "an integer", value));
    };
    if let Some(n) = number.as_u64() {
        return Ok(Whole::Unsigned(n));
    }
    if let Some(n) = number.as_i64() {
        return Ok(Whole::Negative(n));
    }
    let not_whole = || ModelError::invalid(path, Reason::NotWhole(number.to_string()));
    let f = number.as_f64().ok_or_else(not_whole)?;
    // 2^63 bounds keep the cast exact; larger counts do not occur in real data.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.fract() != 0.0 || !f.is_finite() || f.abs() >= LIMIT {
        return Err(not_whole());
    }
    if f < 0.0 {
        Ok(Whole::Negative(f as i64))
    } else {
        Ok(Whole::Unsigned(f as u64))
    }
}
