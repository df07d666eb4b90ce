//! `*.jsonl` files: one pydantic `ContentItem` per line, the platform told by the file
//! name (`reddit.jsonl`, `twitter-extra.jsonl`).

use std::io::BufRead;
use std::path::Path;

use posts_model::{ContentItem, ModelError, Platform};

use super::csv_input::Origin;
use crate::{RecordError, SeedError};

/// The platform a `.jsonl` file name announces: the stem, or its part before the first
/// `-`, `_` or `.`.
pub(crate) fn platform_of(path: &Path) -> Option<Platform> {
    let stem = path.file_stem()?.to_str()?;
    let head = stem.split(['-', '_', '.']).next().unwrap_or(stem);
    head.parse().ok()
}

/// Reads `path` as items of `platform`, handing each item or rejected line to `emit`.
pub(crate) fn read(
    path: &Path,
    platform: Platform,
    emit: &mut dyn FnMut(Result<ContentItem, RecordError>) -> Result<(), SeedError>,
) -> Result<(), SeedError> {
    let file = std::fs::File::open(path).map_err(|e| SeedError::io(path, e))?;
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut records = 0u64;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| SeedError::io(path, e))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        // Blank lines are not records, so record numbers count the non-blank lines.
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        records += 1;
        let origin = Origin {
            file: path,
            platform,
            record: records,
            line: Some(number),
        };
        let Ok(text) = std::str::from_utf8(&line) else {
            emit(Err(origin.reject(None, "not valid UTF-8")))?;
            continue;
        };
        let text = text.trim();
        let item = ContentItem::from_json(text)
            .map_err(|e| match e {
                ModelError::Invalid { field, reason } => {
                    origin.reject(Some(&field), reason.to_string())
                }
                json @ ModelError::Json { .. } => origin.reject(None, json.to_string()),
            })
            .and_then(|item| {
                if item.platform() == platform {
                    Ok(item)
                } else {
                    Err(origin.reject(
                        Some("engagements"),
                        format!(
                            "has the {} engagement shape, but the file holds {platform} items",
                            item.platform()
                        ),
                    ))
                }
            });
        emit(item)?;
    }
}
