//! When a schedule fires: fixed intervals aligned to the Unix epoch, or cron expressions
//! evaluated in UTC. Tick times are milliseconds since the epoch, the same in every
//! scheduler process, which is what lets them agree on one claim per tick.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// Cron field names in the order of the crate's 6-field form.
const CRON_FIELDS: [&str; 6] = [
    "seconds",
    "minutes",
    "hours",
    "day of month",
    "month",
    "day of week",
];

/// How often a schedule fires.
#[derive(Clone)]
pub enum Timing {
    /// Every `Duration`, at whole multiples of it since the Unix epoch (so `every 300 s`
    /// fires at :00, :05, :10, ... UTC).
    Every(Duration),
    /// At the times of a cron expression, in UTC.
    Cron(CronExpression),
}

impl fmt::Debug for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PartialEq for Timing {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Timing::Every(a), Timing::Every(b)) => a == b,
            (Timing::Cron(a), Timing::Cron(b)) => a.expression == b.expression,
            _ => false,
        }
    }
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timing::Every(every) => write!(f, "every {}", format_duration(*every)),
            Timing::Cron(cron) => write!(f, "cron {}", cron.expression),
        }
    }
}

/// A parsed cron expression and its original text.
#[derive(Clone)]
pub struct CronExpression {
    expression: String,
    // Boxed: a parsed schedule is large and most timings are plain intervals.
    schedule: Box<cron::Schedule>,
}

impl CronExpression {
    /// The expression as written (5 or 6 fields).
    pub fn as_str(&self) -> &str {
        &self.expression
    }
}

/// Why a cron expression was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CronProblem {
    pub(crate) field: Option<&'static str>,
    pub(crate) reason: String,
}

/// Parses a 5-field (minute precision) or 6-field (with seconds first) cron expression.
/// When the expression is refused, finds the field at fault by parsing each field alone.
pub(crate) fn parse_cron(expression: &str) -> Result<CronExpression, CronProblem> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let six: Vec<&str> = match fields.len() {
        5 => std::iter::once("0").chain(fields.iter().copied()).collect(),
        6 => fields.clone(),
        n => {
            return Err(CronProblem {
                field: None,
                reason: format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week) or 6 \
                     (with seconds first), got {n}"
                ),
            });
        }
    };
    match cron::Schedule::from_str(&six.join(" ")) {
        Ok(schedule) => {
            if schedule.upcoming(Utc).next().is_none() {
                return Err(CronProblem {
                    field: None,
                    reason: "it never fires".to_owned(),
                });
            }
            Ok(CronExpression {
                expression: fields.join(" "),
                schedule: Box::new(schedule),
            })
        }
        Err(error) => {
            let field = (0..6).find(|&i| {
                let probe: Vec<&str> = (0..6)
                    .map(|j| match (j == i, j) {
                        (true, _) => six[i],
                        (false, 0) => "0",
                        (false, _) => "*",
                    })
                    .collect();
                cron::Schedule::from_str(&probe.join(" ")).is_err()
            });
            Err(CronProblem {
                field: field.map(|i| CRON_FIELDS[i]),
                reason: match field {
                    Some(i) => format!("{:?} is not valid here ({error})", six[i]),
                    None => error.to_string(),
                },
            })
        }
    }
}

/// Parses `300s`, `5m`, `1h`, `1d`, `500ms` or `1h30m` (humantime's units); a bare
/// number is seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("it is empty; write e.g. \"300s\", \"5m\" or \"1h\"".to_owned());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("{text:?} is not a duration ({e}); write e.g. \"300s\", \"5m\" or \"1h30m\"")
    })
}

/// `300s`, `1500ms`: the form [`parse_duration`] reads back.
pub(crate) fn format_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

pub(crate) fn to_datetime(ms: u64) -> Option<DateTime<Utc>> {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

fn to_ms(time: &DateTime<Utc>) -> Option<u64> {
    u64::try_from(time.timestamp_millis()).ok()
}

impl Timing {
    /// The first tick strictly after `after_ms`.
    pub(crate) fn next_after(&self, after_ms: u64) -> Option<u64> {
        match self {
            Timing::Every(every) => {
                let period = period_ms(*every);
                (after_ms / period).checked_add(1)?.checked_mul(period)
            }
            Timing::Cron(cron) => {
                let after = to_datetime(after_ms)?;
                cron.schedule.after(&after).next().as_ref().and_then(to_ms)
            }
        }
    }

    /// The last tick at or before `now_ms`.
    pub(crate) fn latest_at_or_before(&self, now_ms: u64) -> Option<u64> {
        match self {
            Timing::Every(every) => {
                let period = period_ms(*every);
                Some(now_ms / period * period)
            }
            Timing::Cron(cron) => {
                // Cron ticks are whole seconds; start the backward walk just past `now`.
                let start = to_datetime(now_ms.saturating_add(1000))?;
                cron.schedule
                    .after(&start)
                    .rev()
                    .take(3)
                    .filter_map(|t| to_ms(&t))
                    .find(|&t| t <= now_ms)
            }
        }
    }

    /// The time between two ticks (for cron, the gap after the next tick after `now_ms`).
    pub(crate) fn period_after(&self, now_ms: u64) -> Duration {
        match self {
            Timing::Every(every) => *every,
            Timing::Cron(_) => {
                let first = self.next_after(now_ms);
                let second = first.and_then(|t| self.next_after(t));
                match (first, second) {
                    (Some(a), Some(b)) => Duration::from_millis(b - a),
                    _ => Duration::from_secs(86_400),
                }
            }
        }
    }
}

fn period_ms(every: Duration) -> u64 {
    crate::message::millis(every).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_align_to_the_epoch() {
        let every = Timing::Every(Duration::from_secs(300));
        assert_eq!(every.next_after(0), Some(300_000));
        assert_eq!(every.next_after(299_999), Some(300_000));
        assert_eq!(every.next_after(300_000), Some(600_000));
        assert_eq!(every.latest_at_or_before(599_999), Some(300_000));
        assert_eq!(every.latest_at_or_before(600_000), Some(600_000));
    }

    #[test]
    fn five_field_cron_fires_at_second_zero() {
        let cron = Timing::Cron(parse_cron("*/5 * * * *").expect("valid"));
        // 1970-01-01 00:07:30 -> next 00:10:00, previous 00:05:00.
        assert_eq!(cron.next_after(450_000), Some(600_000));
        assert_eq!(cron.latest_at_or_before(450_000), Some(300_000));
        assert_eq!(cron.latest_at_or_before(600_000), Some(600_000));
        assert_eq!(cron.period_after(450_000), Duration::from_secs(300));
    }

    #[test]
    fn six_field_cron_has_seconds() {
        let cron = Timing::Cron(parse_cron("*/10 * * * * *").expect("valid"));
        assert_eq!(cron.next_after(1_000), Some(10_000));
    }

    #[test]
    fn cron_errors_name_the_field() {
        let cases = [
            ("61 * * * *", Some("minutes")),
            ("* 25 * * *", Some("hours")),
            ("* * 32 * *", Some("day of month")),
            ("* * * 13 *", Some("month")),
            ("* * * * nope", Some("day of week")),
            ("99 * * * * *", Some("seconds")),
            ("* * *", None),
        ];
        for (expression, field) in cases {
            let problem = parse_cron(expression)
                .err()
                .unwrap_or_else(|| panic!("{expression} parsed"));
            assert_eq!(problem.field, field, "{expression}: {}", problem.reason);
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "s", "5 parsecs", "5x", "ten minutes", "5m 3"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(format_duration(Duration::from_secs(300)), "300s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
