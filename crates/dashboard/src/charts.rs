//! The two charts, as inline SVG drawn on the server: throughput over the last hour, and
//! a bar chart of `[label, count]` pairs (e.g. the top named entities). This module only
//! computes the geometry; the templates draw it, escaping every label.

use jobq::monitor::MinuteCounts;
use serde_json::Value;

/// A stacked column chart of the jobs finished per minute.
pub(crate) struct ThroughputChart {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) columns: Vec<Column>,
    /// The largest minute's total, the top of the scale.
    pub(crate) peak: u64,
    pub(crate) total_succeeded: u64,
    pub(crate) total_failed: u64,
    /// Failed among finished, over the hour, as a percentage.
    pub(crate) failure_rate: String,
    /// The first and the last minute shown (UTC).
    pub(crate) start: String,
    pub(crate) end: String,
}

/// One minute: a succeeded bar with a failed bar on top.
pub(crate) struct Column {
    pub(crate) x: u32,
    pub(crate) width: u32,
    pub(crate) ok_y: u32,
    pub(crate) ok_height: u32,
    pub(crate) failed_y: u32,
    pub(crate) failed_height: u32,
    pub(crate) title: String,
}

const PLOT_HEIGHT: u32 = 120;
const COLUMN_WIDTH: u32 = 10;

impl ThroughputChart {
    pub(crate) fn new(minutes: &[MinuteCounts]) -> Self {
        let peak = minutes
            .iter()
            .map(|m| m.succeeded + m.failed)
            .max()
            .unwrap_or(0);
        let scale = |n: u64| -> u32 {
            if peak == 0 {
                0
            } else {
                ((n as f64 / peak as f64) * f64::from(PLOT_HEIGHT)).round() as u32
            }
        };
        let columns = minutes
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let ok_height = scale(m.succeeded);
                let failed_height = scale(m.failed);
                Column {
                    x: i as u32 * COLUMN_WIDTH,
                    width: COLUMN_WIDTH - 2,
                    ok_y: PLOT_HEIGHT - ok_height,
                    ok_height,
                    failed_y: PLOT_HEIGHT - ok_height - failed_height,
                    failed_height,
                    title: format!(
                        "{}: {} succeeded, {} failed, {} retried",
                        crate::views::time(m.minute_ms),
                        m.succeeded,
                        m.failed,
                        m.retried
                    ),
                }
            })
            .collect::<Vec<_>>();
        let total_succeeded: u64 = minutes.iter().map(|m| m.succeeded).sum();
        let total_failed: u64 = minutes.iter().map(|m| m.failed).sum();
        let finished = total_succeeded + total_failed;
        ThroughputChart {
            width: (minutes.len() as u32 * COLUMN_WIDTH).max(COLUMN_WIDTH),
            height: PLOT_HEIGHT,
            columns,
            peak,
            total_succeeded,
            total_failed,
            start: minutes
                .first()
                .map_or_else(String::new, |m| crate::views::time(m.minute_ms)),
            end: minutes
                .last()
                .map_or_else(String::new, |m| crate::views::time(m.minute_ms)),
            failure_rate: if finished == 0 {
                "-".to_owned()
            } else {
                format!("{:.1} %", total_failed as f64 * 100.0 / finished as f64)
            },
        }
    }
}

/// A horizontal bar chart of labelled counts.
pub(crate) struct BarChart {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) bars: Vec<Bar>,
}

pub(crate) struct Bar {
    pub(crate) label: String,
    pub(crate) count: String,
    pub(crate) y: u32,
    pub(crate) text_y: u32,
    pub(crate) width: u32,
}

const LABEL_WIDTH: u32 = 200;
const BAR_SPACE: u32 = 360;
const ROW_HEIGHT: u32 = 24;

impl BarChart {
    /// The chart of the first field of `value` (or `value` itself) that is a non-empty
    /// list of `[label, count]` pairs; `None` when there is none.
    pub(crate) fn from_value(value: &Value) -> Option<BarChart> {
        let pairs = pairs_of(value).or_else(|| value.as_object()?.values().find_map(pairs_of))?;
        let peak = pairs.iter().map(|(_, n)| *n).fold(0.0, f64::max);
        let bars = pairs
            .into_iter()
            .enumerate()
            .map(|(i, (label, count))| {
                let y = i as u32 * ROW_HEIGHT;
                Bar {
                    label: crate::views::shorten(&label, 28),
                    count: if count.fract() == 0.0 {
                        format!("{count:.0}")
                    } else {
                        format!("{count}")
                    },
                    y: y + 4,
                    text_y: y + 17,
                    width: if peak > 0.0 {
                        ((count / peak) * f64::from(BAR_SPACE)).round().max(1.0) as u32
                    } else {
                        1
                    },
                }
            })
            .collect::<Vec<_>>();
        Some(BarChart {
            width: LABEL_WIDTH + BAR_SPACE + 60,
            height: bars.len() as u32 * ROW_HEIGHT + 4,
            bars,
        })
    }

    /// Where the bars start (after the labels).
    pub(crate) fn bar_x(&self) -> u32 {
        LABEL_WIDTH
    }
}

/// `value` as `[label, count]` pairs, when it is a non-empty list of them.
fn pairs_of(value: &Value) -> Option<Vec<(String, f64)>> {
    let list = value.as_array().filter(|l| !l.is_empty())?;
    list.iter()
        .map(|pair| {
            let [label, count] = pair.as_array()?.as_slice() else {
                return None;
            };
            let label = match label {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((label, count.as_f64()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn top_entities_become_bars_scaled_to_the_largest() {
        let value = json!({"top_named_entities": [["Trump", 40], ["Paris", 10]], "timestamp": "t"});
        let chart = BarChart::from_value(&value).expect("a chart");
        assert_eq!(chart.bars.len(), 2);
        assert_eq!(chart.bars[0].label, "Trump");
        assert_eq!(chart.bars[0].count, "40");
        assert_eq!(chart.bars[0].width, BAR_SPACE);
        assert_eq!(chart.bars[1].width, BAR_SPACE / 4);
    }

    #[test]
    fn values_without_pairs_have_no_chart() {
        assert!(BarChart::from_value(&json!({"count": 3})).is_none());
        assert!(BarChart::from_value(&json!([["a", "b"]])).is_none());
        assert!(BarChart::from_value(&json!([])).is_none());
    }

    #[test]
    fn throughput_scales_to_the_busiest_minute() {
        let minutes = [MinuteCounts::default(), jobq_minute(30, 10)];
        let chart = ThroughputChart::new(&minutes);
        assert_eq!(chart.peak, 40);
        assert_eq!(chart.columns[1].ok_height, 90);
        assert_eq!(chart.columns[1].failed_height, 30);
        assert_eq!(chart.failure_rate, "25.0 %");
    }

    fn jobq_minute(succeeded: u64, failed: u64) -> MinuteCounts {
        let mut minute = MinuteCounts::default();
        minute.succeeded = succeeded;
        minute.failed = failed;
        minute
    }
}
