//! Streaming scans of posts whose `created_at` lies in a range, and their split into parts
//! that separate threads (each with its own pooled connection) can scan in parallel (see
//! [`ReadPool::fold_range`](super::ReadPool::fold_range), which runs them).
//!
//! A scan hands each row to a callback as borrowed slices of SQLite's own buffers, so
//! neither the range nor even one owned row is ever materialised. The range keeps SQLite's
//! `created_at BETWEEN ?1 AND ?2` semantics (bound values, string comparison over the stored
//! text timestamps) in every part, so splitting never changes which rows are seen.

use std::ops::ControlFlow;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params_from_iter};

use super::error::{OrReadError, ReadError};
use super::pool::ReadPool;

/// The columns every scan yields, and the table they come from.
const SELECT_ROW: &str = "SELECT rowid, platform, created_at, post_blob FROM posts";

/// Parts smaller than this are not worth a connection and a thread of their own.
const MIN_ROWS_PER_PART: u64 = 2048;

/// An inclusive range of `created_at` values, compared as SQLite's `BETWEEN` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedAtRange {
    from: String,
    to: String,
}

impl CreatedAtRange {
    /// The range `from ..= to`; both are bound as text, never interpolated into SQL.
    ///
    /// Comparison follows SQLite exactly, column affinity included: against a `TIMESTAMP`
    /// column a bound that looks like a number (`"2017"`) is compared as a number and so
    /// sorts below every text timestamp. Callers validate dates before building a range.
    pub fn new(from: impl Into<String>, to: impl Into<String>) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
        }
    }

    /// The lower bound.
    pub fn from(&self) -> &str {
        &self.from
    }

    /// The upper bound.
    pub fn to(&self) -> &str {
        &self.to
    }
}

/// One post as a scan sees it, borrowed from SQLite for the duration of the callback.
/// (Not to be confused with the writer's owned row: this one only has what readers need.)
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ScannedPost<'a> {
    /// The row's rowid (the `id` column in the integer-key schema variant).
    pub rowid: i64,
    /// `platform`, `None` when NULL.
    pub platform: Option<&'a str>,
    /// `created_at` as stored, `None` when NULL.
    pub created_at: Option<&'a str>,
    /// `post_blob`'s bytes (stored as TEXT or BLOB), `None` when NULL or not text.
    pub post_blob: Option<&'a [u8]>,
}

/// How a scan of one part ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanOutcome {
    /// Rows handed to the callback.
    pub(crate) rows: u64,
    /// Whether the callback asked to stop before the end.
    pub(crate) stopped: bool,
}

/// How a [`ScanPlan`] divides its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanStrategy {
    /// One part, letting SQLite pick its access path.
    Single,
    /// Equal `rowid` spans, each read sequentially from the table; used when the range
    /// covers much of the table (or there is no `created_at` index), where sequential reads
    /// beat following the index.
    RowidSpans,
    /// Consecutive `created_at` sub-ranges holding about the same number of rows, each read
    /// through the `created_at` index; used for selective ranges.
    CreatedAtQuantiles,
}

/// A range split into parts whose union is exactly the range's rows, each row in one part.
#[derive(Debug, Clone)]
pub(crate) struct ScanPlan {
    strategy: ScanStrategy,
    parts: Vec<ScanPart>,
}

impl ScanPlan {
    /// How the range was divided.
    pub(crate) fn strategy(&self) -> ScanStrategy {
        self.strategy
    }

    /// The parts, in no particular order of cost.
    pub(crate) fn parts(&self) -> &[ScanPart] {
        &self.parts
    }
}

/// Which slice of the range a part covers.
#[derive(Debug, Clone, PartialEq)]
enum Bounds {
    Whole,
    Rowids {
        first: i64,
        last: i64,
    },
    CreatedAt {
        at_least: Option<Value>,
        below: Option<Value>,
    },
}

/// One independently scannable slice of a range.
#[derive(Debug, Clone)]
pub(crate) struct ScanPart {
    range: CreatedAtRange,
    bounds: Bounds,
}

impl ScanPart {
    /// A part covering the whole range.
    pub(crate) fn whole(range: CreatedAtRange) -> Self {
        Self {
            range,
            bounds: Bounds::Whole,
        }
    }

    /// Streams this part's rows to `visit` on `conn` until the end or until `visit` breaks.
    ///
    /// # Errors
    /// [`ReadError::Sqlite`] for SQLite failures, [`ReadError::Cancelled`] for an
    /// interrupt, and [`ReadError::InvalidText`] for a `platform` or `created_at` that is
    /// not UTF-8.
    pub(crate) fn for_each<F>(
        &self,
        conn: &Connection,
        mut visit: F,
    ) -> Result<ScanOutcome, ReadError>
    where
        F: FnMut(ScannedPost<'_>) -> ControlFlow<()>,
    {
        let mut params = vec![
            Value::Text(self.range.from.clone()),
            Value::Text(self.range.to.clone()),
        ];
        let sql = match &self.bounds {
            Bounds::Whole => format!("{SELECT_ROW} WHERE created_at BETWEEN ?1 AND ?2"),
            Bounds::Rowids { first, last } => {
                params.push(Value::Integer(*first));
                params.push(Value::Integer(*last));
                // NOT INDEXED keeps SQLite on the rowid b-tree (a sequential read) instead of
                // hopping through the created_at index, which is what makes this part cheap.
                format!(
                    "{SELECT_ROW} NOT INDEXED WHERE rowid BETWEEN ?3 AND ?4 \
                     AND created_at BETWEEN ?1 AND ?2"
                )
            }
            Bounds::CreatedAt { at_least, below } => {
                let mut sql = format!("{SELECT_ROW} WHERE created_at BETWEEN ?1 AND ?2");
                if let Some(value) = at_least {
                    params.push(value.clone());
                    sql.push_str(&format!(" AND created_at >= ?{}", params.len()));
                }
                if let Some(value) = below {
                    params.push(value.clone());
                    sql.push_str(&format!(" AND created_at < ?{}", params.len()));
                }
                sql
            }
        };
        let mut stmt = conn.prepare_cached(&sql).or_read_error()?;
        let mut rows = stmt.query(params_from_iter(params)).or_read_error()?;
        let mut outcome = ScanOutcome {
            rows: 0,
            stopped: false,
        };
        while let Some(row) = rows.next().or_read_error()? {
            let rowid: i64 = row.get(0).or_read_error()?;
            let post = ScannedPost {
                rowid,
                platform: text_column(rowid, "platform", row.get_ref(1).or_read_error()?)?,
                created_at: text_column(rowid, "created_at", row.get_ref(2).or_read_error()?)?,
                post_blob: match row.get_ref(3).or_read_error()? {
                    ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Some(bytes),
                    ValueRef::Null | ValueRef::Integer(_) | ValueRef::Real(_) => None,
                },
            };
            outcome.rows += 1;
            if visit(post).is_break() {
                outcome.stopped = true;
                break;
            }
        }
        Ok(outcome)
    }
}

/// A text column's value; numbers (which a `TIMESTAMP` column's affinity may have produced)
/// are not the timestamps or platform names readers expect, so they read as missing.
fn text_column<'a>(
    rowid: i64,
    column: &'static str,
    value: ValueRef<'a>,
) -> Result<Option<&'a str>, ReadError> {
    match value {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ReadError::InvalidText { rowid, column }),
        ValueRef::Null | ValueRef::Integer(_) | ValueRef::Real(_) | ValueRef::Blob(_) => Ok(None),
    }
}

/// What the planner needs to know about the posts table.
struct Layout {
    created_at_indexed: bool,
}

impl ReadPool {
    /// Splits `range` into at most `parts` parts of similar size for a parallel scan.
    ///
    /// Selective ranges are cut at `created_at` quantiles read from the index; ranges
    /// covering more than a third of the table (or tables without a `created_at` index) are
    /// cut into `rowid` spans read sequentially. Small ranges get fewer parts.
    ///
    /// # Errors
    /// [`ReadError::Schema`] when `posts` lacks `platform`, `created_at` or `post_blob`;
    /// [`ReadError::NoConnection`] / [`ReadError::Sqlite`] otherwise.
    pub(crate) fn plan_scan(
        &self,
        range: &CreatedAtRange,
        parts: usize,
    ) -> Result<ScanPlan, ReadError> {
        let conn = self.get()?;
        let layout = inspect(&conn)?;
        let single = || ScanPlan {
            strategy: ScanStrategy::Single,
            parts: vec![ScanPart::whole(range.clone())],
        };
        let (first, last): (Option<i64>, Option<i64>) = conn
            .query_row("SELECT min(rowid), max(rowid) FROM posts", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .or_read_error()?;
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(single());
        };
        let parts = parts.max(1) as u64;
        let span = u64::try_from(i128::from(last) - i128::from(first) + 1).unwrap_or(u64::MAX);
        if parts == 1 || span < MIN_ROWS_PER_PART {
            return Ok(single());
        }
        if layout.created_at_indexed {
            let dense_from = span / 3;
            let in_range: i64 = conn
                .query_row(
                    "SELECT count(*) FROM (SELECT 1 FROM posts WHERE created_at BETWEEN ?1 AND ?2 \
                 LIMIT ?3)",
                    (
                        &range.from,
                        &range.to,
                        i64::try_from(dense_from + 1).unwrap_or(i64::MAX),
                    ),
                    |row| row.get(0),
                )
                .or_read_error()?;
            let in_range = u64::try_from(in_range).unwrap_or(0);
            if in_range <= dense_from {
                let parts = parts.min(in_range / MIN_ROWS_PER_PART);
                if parts <= 1 {
                    return Ok(single());
                }
                return quantile_plan(&conn, range, in_range, parts);
            }
        }
        Ok(rowid_plan(range, first, last, span, parts))
    }
}

/// Cuts `first..=last` into `parts` equal rowid spans.
fn rowid_plan(range: &CreatedAtRange, first: i64, last: i64, span: u64, parts: u64) -> ScanPlan {
    let parts = parts.min(span);
    let step = span.div_ceil(parts);
    let mut out = Vec::with_capacity(parts as usize);
    let mut start = i128::from(first);
    while start <= i128::from(last) {
        let end = (start + i128::from(step) - 1).min(i128::from(last));
        // Both ends lie within first..=last, so they fit in i64.
        out.push(ScanPart {
            range: range.clone(),
            bounds: Bounds::Rowids {
                first: start as i64,
                last: end as i64,
            },
        });
        start = end + 1;
    }
    ScanPlan {
        strategy: ScanStrategy::RowidSpans,
        parts: out,
    }
}

/// Cuts the range at every `rows / parts`-th `created_at` value along the index.
fn quantile_plan(
    conn: &Connection,
    range: &CreatedAtRange,
    rows: u64,
    parts: u64,
) -> Result<ScanPlan, ReadError> {
    let step = rows.div_ceil(parts).max(1);
    let mut cuts: Vec<Value> = Vec::with_capacity(parts as usize);
    let mut stmt = conn
        .prepare(
            "SELECT created_at FROM posts WHERE created_at BETWEEN ?1 AND ?2 ORDER BY created_at",
        )
        .or_read_error()?;
    let mut values = stmt.query((&range.from, &range.to)).or_read_error()?;
    let mut seen = 0u64;
    while let Some(row) = values.next().or_read_error()? {
        seen += 1;
        if seen.is_multiple_of(step) && seen < rows {
            let value: Value = row.get(0).or_read_error()?;
            // Equal timestamps must stay in one part: a cut equal to the previous one would
            // make an empty part, so it is skipped.
            if cuts.last() != Some(&value) {
                cuts.push(value);
            }
        }
        if cuts.len() as u64 + 1 >= parts {
            break;
        }
    }
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut at_least = None;
    for cut in cuts {
        out.push(ScanPart {
            range: range.clone(),
            bounds: Bounds::CreatedAt {
                at_least: at_least.take(),
                below: Some(cut.clone()),
            },
        });
        at_least = Some(cut);
    }
    out.push(ScanPart {
        range: range.clone(),
        bounds: Bounds::CreatedAt {
            at_least,
            below: None,
        },
    });
    Ok(ScanPlan {
        strategy: ScanStrategy::CreatedAtQuantiles,
        parts: out,
    })
}

/// Checks that `posts` has the columns readers need and whether `created_at` is indexed.
fn inspect(conn: &Connection) -> Result<Layout, ReadError> {
    check_columns(conn)?;
    // An index helps a range on created_at only when created_at is its first column.
    let created_at_indexed: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_index_list('posts') AS il \
         JOIN pragma_index_info(il.name) AS ii WHERE ii.seqno = 0 AND ii.name = 'created_at')",
            [],
            |row| row.get(0),
        )
        .or_read_error()?;
    Ok(Layout { created_at_indexed })
}

/// Checks that `posts` has the columns readers need.
fn check_columns(conn: &Connection) -> Result<(), ReadError> {
    let mut stmt = conn
        .prepare_cached("SELECT name FROM pragma_table_info('posts')")
        .or_read_error()?;
    let columns: Vec<String> = stmt
        .query_map([], |row| row.get(0))
        .or_read_error()?
        .collect::<Result<_, _>>()
        .or_read_error()?;
    if columns.is_empty() {
        return Err(ReadError::Schema {
            reason: "there is no table named posts".into(),
        });
    }
    let missing: Vec<&str> = crate::schema::READER_COLUMNS
        .into_iter()
        .filter(|needed| !columns.iter().any(|c| c.eq_ignore_ascii_case(needed)))
        .collect();
    if !missing.is_empty() {
        return Err(ReadError::Schema {
            reason: format!("table posts lacks column(s) {}", missing.join(", ")),
        });
    }
    Ok(())
}
