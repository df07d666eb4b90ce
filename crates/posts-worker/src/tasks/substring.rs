//! `substring_matches_by_platform(match, from_, to)`: per platform, how many posts in a
//! `created_at` range contain a substring, ignoring case.

use std::collections::BTreeMap;

use serde::Serialize;

use posts_store::read::CancelToken;

use super::PostsData;
use super::args::checked_range;
use super::error::PostsTaskError;
use super::matcher::Matcher;
use super::post_text::post_text;

/// The task's result: `{"<platform>": n, ..., "total_rows": N}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubstringMatches {
    /// Matching posts per platform; platforms without a match are absent.
    #[serde(flatten)]
    pub per_platform: BTreeMap<String, u64>,
    /// All posts in the range, matching or not.
    pub total_rows: u64,
}

/// One part's counts.
#[derive(Default)]
struct Tally {
    per_platform: BTreeMap<String, u64>,
    undecodable: u64,
    first_undecodable: Option<i64>,
    scratch: String,
}

/// Counts, per platform, the posts with `from_ <= created_at <= to` whose text contains
/// `needle` case-insensitively (see the matcher's definition). A post without text (or
/// whose blob is not a JSON object, which is logged) counts as having empty text; posts
/// without a platform count only towards `total_rows`.
pub fn substring_matches_by_platform(
    data: &PostsData,
    cancel: &CancelToken,
    needle: &str,
    from: &str,
    to: &str,
) -> Result<SubstringMatches, PostsTaskError> {
    let range = checked_range(from, to)?;
    let matcher = Matcher::new(needle);
    let folded = data.pool().fold_range(
        &range,
        cancel,
        Tally::default,
        |tally, row| {
            let text = match post_text(row.post_blob) {
                Ok(text) => text,
                Err(_) => {
                    tally.undecodable += 1;
                    tally.first_undecodable.get_or_insert(row.rowid);
                    "".into()
                }
            };
            let Some(platform) = row.platform else {
                return;
            };
            if matcher.is_match(&text, &mut tally.scratch) {
                match tally.per_platform.get_mut(platform) {
                    Some(n) => *n += 1,
                    None => {
                        tally.per_platform.insert(platform.to_owned(), 1);
                    }
                }
            }
        },
        |mut a, b| {
            for (platform, n) in b.per_platform {
                *a.per_platform.entry(platform).or_default() += n;
            }
            a.undecodable += b.undecodable;
            a.first_undecodable = a.first_undecodable.or(b.first_undecodable);
            a
        },
    )?;
    if folded.state.undecodable > 0 {
        tracing::warn!(
            rows = folded.state.undecodable,
            first_rowid = folded.state.first_undecodable,
            "post_blob is not a JSON object with a string text; counted as empty text"
        );
    }
    Ok(SubstringMatches {
        per_platform: folded.state.per_platform,
        total_rows: folded.rows,
    })
}
