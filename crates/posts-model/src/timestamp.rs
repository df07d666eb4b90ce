//! A UTC instant with the datetime rules of the pydantic models: lenient parsing of the
//! forms the data holds, one canonical JSON form, and the text form of the DB columns.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with microsecond precision (the precision of Python's `datetime`).
///
/// Parses `YYYY-MM-DD hh:mm:ss` and `YYYY-MM-DDThh:mm:ss`, each with an optional fraction
/// (digits beyond microseconds are truncated) and an optional `Z` or `±hh[:mm]` offset,
/// which is applied so the value is UTC. Serialises as `YYYY-MM-DDThh:mm:ss`, with a
/// six-digit fraction only when it is non-zero: what pydantic writes for a naive UTC
/// datetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(NaiveDateTime);

/// Why a text is not a datetime in one of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad datetime {value:?}: {why}")]
pub struct ParseTimestampError {
    /// The text that was rejected (cut to 64 characters).
    pub value: String,
    /// What was wrong with it.
    pub why: &'static str,
}

const FORM: &str = "expected YYYY-MM-DD hh:mm:ss or YYYY-MM-DDThh:mm:ss[.ffffff][Z|±hh:mm]";

impl Timestamp {
    /// Parses one of the accepted forms (see the type's documentation).
    pub fn parse(text: &str) -> Result<Self, ParseTimestampError> {
        let fail = |why: &'static str| ParseTimestampError {
            value: text.chars().take(64).collect(),
            why,
        };
        let b = text.as_bytes();
        if b.len() < 19 {
            return Err(fail(FORM));
        }
        let separators_ok = b[4] == b'-'
            && b[7] == b'-'
            && matches!(b[10], b' ' | b'T' | b't')
            && b[13] == b':'
            && b[16] == b':';
        if !separators_ok {
            return Err(fail(FORM));
        }
        let num = |from: usize, to: usize| -> Result<u32, ParseTimestampError> {
            b[from..to].iter().try_fold(0u32, |acc, &c| {
                if c.is_ascii_digit() {
                    Ok(acc * 10 + u32::from(c - b'0'))
                } else {
                    Err(fail(FORM))
                }
            })
        };
        let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
        let mut rest = &b[19..];
        let mut micros = 0u32;
        if let [b'.' | b',', tail @ ..] = rest {
            let digits = tail.iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return Err(fail("a fraction needs at least one digit"));
            }
            for i in 0..6 {
                let digit = tail.get(i).filter(|_| i < digits).map_or(0, |c| c - b'0');
                micros = micros * 10 + u32::from(digit);
            }
            rest = &tail[digits..];
        }
        let offset_seconds: i64 = match rest {
            [] | [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), tail @ ..] => {
                let (h, m) = match tail {
                    [h1, h2] => (two_digits(*h1, *h2), Some(0)),
                    [h1, h2, m1, m2] => (two_digits(*h1, *h2), two_digits(*m1, *m2)),
                    [h1, h2, b':', m1, m2] => (two_digits(*h1, *h2), two_digits(*m1, *m2)),
                    _ => (None, None),
                };
                match (h, m) {
                    (Some(h), Some(m)) if h < 24 && m < 60 => {
                        let magnitude = i64::from(h * 3600 + m * 60);
                        if *sign == b'-' { -magnitude } else { magnitude }
                    }
                    _ => return Err(fail("bad UTC offset, expected Z or ±hh:mm")),
                }
            }
            _ => return Err(fail("unexpected text after the time")),
        };
        let date = NaiveDate::from_ymd_opt(year as i32, month, day)
            .ok_or_else(|| fail("no such calendar date"))?;
        if second > 59 {
            return Err(fail("seconds must be 0 to 59"));
        }
        let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros)
            .ok_or_else(|| fail("no such time of day"))?;
        let local = NaiveDateTime::new(date, time);
        local
            .checked_sub_signed(TimeDelta::seconds(offset_seconds))
            .map(Timestamp)
            .ok_or_else(|| fail("out of range after applying the UTC offset"))
    }

    /// The current time, truncated to microseconds.
    pub fn now() -> Self {
        Self::from_naive_utc(Utc::now().naive_utc())
    }

    /// Wraps a naive datetime taken to be UTC, truncating it to microseconds.
    pub fn from_naive_utc(datetime: NaiveDateTime) -> Self {
        let micros = datetime.nanosecond() / 1_000 * 1_000;
        Timestamp(datetime.with_nanosecond(micros).unwrap_or(datetime))
    }

    /// Midnight UTC at the start of `date`.
    pub fn from_date(date: NaiveDate) -> Self {
        Timestamp(date.and_time(NaiveTime::MIN))
    }

    /// The instant `seconds` after the Unix epoch, if representable.
    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        DateTime::from_timestamp(seconds, 0).map(|dt| Timestamp(dt.naive_utc()))
    }

    /// Whole seconds since the Unix epoch (fraction dropped).
    pub fn unix_seconds(&self) -> i64 {
        self.0.and_utc().timestamp()
    }

    /// The instant `seconds` later (earlier when negative), if representable.
    pub fn plus_seconds(&self, seconds: i64) -> Option<Self> {
        TimeDelta::try_seconds(seconds)
            .and_then(|delta| self.0.checked_add_signed(delta))
            .map(Timestamp)
    }

    /// The wrapped naive UTC datetime.
    pub fn naive_utc(&self) -> NaiveDateTime {
        self.0
    }

    /// The `YYYY-MM-DD HH:MM:SS` text stored in the DB's timestamp columns (fraction
    /// dropped), so SQLite string comparisons order and filter by time.
    pub fn to_db_string(&self) -> String {
        let mut buf = [0u8; 19];
        self.fill_date_time(&mut buf, b' ');
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Writes `YYYY-MM-DD?hh:mm:ss` into `buf`; bulk loads format millions of these, so
    /// this avoids the formatting machinery.
    fn fill_date_time(&self, buf: &mut [u8; 19], separator: u8) {
        let (d, t) = (self.0.date(), self.0.time());
        // Years outside 0..=9999 cannot come from parsing; they are clamped to 4 digits.
        let year = d.year().clamp(0, 9999) as u32;
        let put = |buf: &mut [u8; 19], at: usize, value: u32, width: usize| {
            let mut v = value;
            for i in (0..width).rev() {
                buf[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(buf, 0, year, 4);
        buf[4] = b'-';
        put(buf, 5, d.month(), 2);
        buf[7] = b'-';
        put(buf, 8, d.day(), 2);
        buf[10] = separator;
        put(buf, 11, t.hour(), 2);
        buf[13] = b':';
        put(buf, 14, t.minute(), 2);
        buf[16] = b':';
        put(buf, 17, t.second(), 2);
    }
}

fn two_digits(a: u8, b: u8) -> Option<u32> {
    (a.is_ascii_digit() && b.is_ascii_digit())
        .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
}

impl fmt::Display for Timestamp {
    /// The JSON form: `YYYY-MM-DDThh:mm:ss[.ffffff]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 19];
        self.fill_date_time(&mut buf, b'T');
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)?;
        let micros = self.0.nanosecond() / 1_000;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        Ok(())
    }
}

impl FromStr for Timestamp {
    type Err = ParseTimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> String {
        match Timestamp::parse(s) {
            Ok(t) => t.to_string(),
            Err(e) => format!("error: {}", e.why),
        }
    }

    #[test]
    fn accepted_forms_normalise_to_utc() {
        assert_eq!(ts("2017-05-31 15:59:28"), "2017-05-31T15:59:28");
        assert_eq!(ts("2017-05-31T15:59:28"), "2017-05-31T15:59:28");
        assert_eq!(ts("2017-05-31T15:59:28Z"), "2017-05-31T15:59:28");
        assert_eq!(ts("2017-05-31T15:59:28.5"), "2017-05-31T15:59:28.500000");
        assert_eq!(ts("2017-05-31T15:59:28.000"), "2017-05-31T15:59:28");
        assert_eq!(
            ts("2017-05-31T15:59:28.1234567Z"),
            "2017-05-31T15:59:28.123456"
        );
        assert_eq!(ts("2017-05-31T15:59:28+02:00"), "2017-05-31T13:59:28");
        assert_eq!(ts("2017-05-31T23:59:28-0130"), "2017-06-01T01:29:28");
        assert_eq!(ts("2017-05-31T00:10:00+01"), "2017-05-30T23:10:00");
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "2017-05-31",
            "2017/05/31 15:59:28",
            "2017-02-30 10:00:00",
            "2017-05-31 24:00:00",
            "2017-05-31 23:59:60",
            "2017-05-31 15:59:28 ",
            "2017-05-31T15:59:28.",
            "2017-05-31T15:59:28+25:00",
            "2017-05-31T15:59:28+0",
            "2017-05-31T15:59:2x",
            "２０17-05-31T15:59:28",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn db_string_drops_fraction_and_uses_a_space() {
        let t = Timestamp::parse("2017-05-31T15:59:28.25Z").map(|t| t.to_db_string());
        assert_eq!(t.as_deref(), Ok("2017-05-31 15:59:28"));
    }

    #[test]
    fn unix_seconds_round_trip() {
        let t = Timestamp::from_unix_seconds(1_496_246_368);
        assert_eq!(
            t.map(|t| t.to_string()).as_deref(),
            Some("2017-05-31T15:59:28")
        );
        assert_eq!(t.map(|t| t.unix_seconds()), Some(1_496_246_368));
        assert_eq!(
            t.and_then(|t| t.plus_seconds(-28))
                .map(|t| t.to_db_string())
                .as_deref(),
            Some("2017-05-31 15:59:00")
        );
    }
}
