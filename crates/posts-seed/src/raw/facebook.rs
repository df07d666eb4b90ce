//! The Facebook CSV export: `id,parent_id,all_post_ids,text,author_name_hash,type,
//! created_at,like,love,haha,wow,sad,angry,comment,share`.

use std::path::Path;

use posts_model::{ContentItem, Engagements, FacebookEngagements, Platform};

use super::csv_input::{Row, read_csv, urls_in_text};
use crate::{RecordError, SeedError};

const COLUMNS: [&str; 15] = [
    "id",
    "parent_id",
    "all_post_ids",
    "text",
    "author_name_hash",
    "type",
    "created_at",
    "like",
    "love",
    "haha",
    "wow",
    "sad",
    "angry",
    "comment",
    "share",
];

/// Reads `path`, handing each item or rejected record to `emit`.
pub(crate) fn read(
    path: &Path,
    emit: &mut dyn FnMut(Result<ContentItem, RecordError>) -> Result<(), SeedError>,
) -> Result<(), SeedError> {
    read_csv(path, Platform::Facebook, &COLUMNS, convert, emit)
}

fn convert(row: &Row<'_>) -> Result<ContentItem, RecordError> {
    let engagements = FacebookEngagements {
        like: row.count("like")?,
        love: row.count("love")?,
        // The export has no `care` column; newer exports that add one are honoured.
        care: if row.has_column("care") {
            row.count("care")?
        } else {
            0
        },
        haha: row.count("haha")?,
        wow: row.count("wow")?,
        sad: row.count("sad")?,
        angry: row.count("angry")?,
        comment: row.count("comment")?,
        share: row.count("share")?,
    };
    let mut item = row.content_item(Engagements::Facebook(engagements))?;
    item.post_id = row.optional("all_post_ids");
    item.embedded_urls = Some(urls_in_text(&item.text));
    Ok(item)
}
