//! The Reddit CSV export: `id,title,parent_id,post_id,text,author_name_hash,type,
//! created_at,upvotes,downvotes`.

use std::path::Path;

use posts_model::{ContentItem, Engagements, Platform, RedditEngagements};

use super::csv_input::{Row, read_csv, urls_in_text};
use crate::{RecordError, SeedError};

const COLUMNS: [&str; 10] = [
    "id",
    "title",
    "parent_id",
    "post_id",
    "text",
    "author_name_hash",
    "type",
    "created_at",
    "upvotes",
    "downvotes",
];

/// Reads `path`, handing each item or rejected record to `emit`.
pub(crate) fn read(
    path: &Path,
    emit: &mut dyn FnMut(Result<ContentItem, RecordError>) -> Result<(), SeedError>,
) -> Result<(), SeedError> {
    read_csv(path, Platform::Reddit, &COLUMNS, convert, emit)
}

fn convert(row: &Row<'_>) -> Result<ContentItem, RecordError> {
    let upvotes = row.signed_count("upvotes")?;
    let downvotes = row.signed_count("downvotes")?;
    // Reddit reports a net-negative item with negative `ups`; the counts clamp to 0 as
    // the original pipeline did, and the score keeps the net value.
    let engagements = RedditEngagements {
        upvote: Some(upvotes.max(0).unsigned_abs()),
        downvote: Some(downvotes.max(0).unsigned_abs()),
        score: Some(upvotes.saturating_sub(downvotes)),
        comment: 0,
        award: 0,
        absent: Default::default(),
    };
    let mut item = row.content_item(Engagements::Reddit(engagements))?;
    item.title = row.optional("title");
    item.post_id = row.optional("post_id");
    let mut urls = item.title.as_deref().map(urls_in_text).unwrap_or_default();
    urls.extend(urls_in_text(&item.text));
    item.embedded_urls = Some(urls);
    Ok(item)
}
