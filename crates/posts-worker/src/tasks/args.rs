//! Validation of task arguments beyond their JSON type (jobq decodes the types).

use chrono::{NaiveDate, NaiveDateTime};

use posts_store::read::CreatedAtRange;

use super::error::PostsTaskError;

/// The `created_at` range from the task arguments `from_` and `to`, both checked with
/// [`check_timestamp`], `from_` not after `to`.
pub(crate) fn checked_range(from: &str, to: &str) -> Result<CreatedAtRange, PostsTaskError> {
    check_timestamp("from_", from)?;
    check_timestamp("to", to)?;
    // Both have a shape whose text order is time order.
    if from > to {
        return Err(PostsTaskError::invalid(
            "from_",
            format!("{from:?} is after `to` {to:?}; the range would be empty"),
        ));
    }
    Ok(CreatedAtRange::new(from, to))
}

/// Checks that `value` is a calendar date `YYYY-MM-DD` or a date-time `YYYY-MM-DD HH:MM:SS`,
/// the forms whose text order is time order against the stored timestamps.
///
/// The text itself is what gets bound, unchanged, so `to = "2017-06-01"` keeps SQLite's
/// `BETWEEN` meaning (it excludes `"2017-06-01 00:00:05"`).
pub fn check_timestamp(argument: &'static str, value: &str) -> Result<(), PostsTaskError> {
    let shape_ok = match value.len() {
        10 => matches_shape(value, "dddd-dd-dd"),
        19 => matches_shape(value, "dddd-dd-dd dd:dd:dd"),
        _ => false,
    };
    if !shape_ok {
        return Err(PostsTaskError::invalid(
            argument,
            format!("{value:?} is not a date written YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"),
        ));
    }
    let valid = if value.len() == 10 {
        NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok()
    } else {
        NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S").is_ok()
    };
    if valid {
        Ok(())
    } else {
        Err(PostsTaskError::invalid(
            argument,
            format!("{value:?} is not a valid calendar date and time"),
        ))
    }
}

/// `d` stands for an ASCII digit, any other character for itself.
fn matches_shape(value: &str, shape: &str) -> bool {
    value.len() == shape.len()
        && value.bytes().zip(shape.bytes()).all(|(v, s)| match s {
            b'd' => v.is_ascii_digit(),
            other => v == other,
        })
}

/// Checks the `k` of `count_top_named_entities` and converts it to a count.
pub(super) fn check_top_k(k: i64) -> Result<usize, PostsTaskError> {
    if k < 1 {
        return Err(PostsTaskError::invalid(
            "k",
            format!("must be at least 1, got {k}"),
        ));
    }
    usize::try_from(k).map_err(|_| PostsTaskError::invalid("k", format!("{k} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_must_not_end_before_it_starts() {
        assert!(checked_range("2017-05-31", "2017-05-31 12:00:00").is_ok());
        assert!(checked_range("2017-05-31", "2017-05-31").is_ok());
        let err = checked_range("2017-06-01", "2017-05-31").unwrap_err();
        assert_eq!(err.kind(), "InvalidArgument");
        assert!(err.to_string().contains("after `to`"), "{err}");
    }

    #[test]
    fn timestamps() {
        for good in [
            "2017-05-31",
            "2017-06-01 00:00:05",
            "2016-02-29",
            "2017-12-31 23:59:59",
        ] {
            assert!(check_timestamp("from_", good).is_ok(), "{good}");
        }
        for bad in [
            "2017-13-45",
            "2017-02-29",
            "2017-06-01 24:00:00",
            "2017-6-1",
            "2017-06-01T00:00:00",
            "2017",
            "",
            "'; DROP TABLE posts; --",
            "2017-06-01 00:00:05'",
            "２０１７-06-01",
        ] {
            let err = check_timestamp("to", bad).unwrap_err();
            assert!(
                matches!(err, PostsTaskError::InvalidArgument { argument: "to", .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn top_k() {
        assert_eq!(check_top_k(10).unwrap(), 10);
        assert!(check_top_k(0).is_err());
        assert!(check_top_k(-3).is_err());
    }
}
