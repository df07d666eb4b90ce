//! Reading per-platform CSV exports record by record: header mapping, column-count and
//! unterminated-quote checks, and typed field access whose failures become
//! [`RecordError`]s naming the record and field.

use std::collections::HashMap;
use std::path::Path;

use posts_model::{ContentItem, ContentType, Engagements, Platform, Timestamp, check_http_url};

use crate::{RecordError, SeedError};

/// Where a record came from, for error reports.
#[derive(Clone, Copy)]
pub(crate) struct Origin<'a> {
    pub file: &'a Path,
    pub platform: Platform,
    pub record: u64,
    pub line: Option<u64>,
}

impl Origin<'_> {
    pub(super) fn reject(&self, field: Option<&str>, reason: impl Into<String>) -> RecordError {
        RecordError {
            file: self.file.to_owned(),
            platform: Some(self.platform),
            record: self.record,
            line: self.line,
            field: field.map(str::to_owned),
            reason: reason.into(),
        }
    }
}

/// One CSV record with its header, for typed access by column name.
pub(crate) struct Row<'a> {
    values: &'a [String],
    columns: &'a HashMap<String, usize>,
    pub origin: Origin<'a>,
}

impl Row<'_> {
    /// The raw text of `column`, or `""` when the file has no such (optional) column.
    pub(super) fn text(&self, column: &str) -> &str {
        self.columns
            .get(column)
            .and_then(|&i| self.values.get(i))
            .map_or("", String::as_str)
    }

    pub(super) fn has_column(&self, column: &str) -> bool {
        self.columns.contains_key(column)
    }

    pub(super) fn reject(&self, column: &str, reason: impl Into<String>) -> RecordError {
        self.origin.reject(Some(column), reason)
    }

    /// A trimmed value that must not be empty.
    pub(super) fn required(&self, column: &str) -> Result<String, RecordError> {
        let value = self.text(column).trim();
        if value.is_empty() {
            Err(self.reject(column, "empty, but a value is required"))
        } else {
            Ok(value.to_owned())
        }
    }

    /// A trimmed value, `None` when empty.
    pub(super) fn optional(&self, column: &str) -> Option<String> {
        let value = self.text(column).trim();
        (!value.is_empty()).then(|| value.to_owned())
    }

    pub(super) fn timestamp(&self, column: &str) -> Result<Timestamp, RecordError> {
        Timestamp::parse(self.text(column).trim()).map_err(|e| self.reject(column, e.to_string()))
    }

    pub(super) fn content_type(&self, column: &str) -> Result<ContentType, RecordError> {
        let value = self.text(column).trim();
        value.parse::<ContentType>().map_err(|_| {
            self.reject(
                column,
                format!("unknown type {value:?}, expected Post or Comment"),
            )
        })
    }

    /// A count that may be negative: empty is 0, whole floats such as `993.0` are
    /// accepted (spreadsheet and pandas exports write them).
    pub(super) fn signed_count(&self, column: &str) -> Result<i64, RecordError> {
        parse_count(self.text(column)).map_err(|reason| self.reject(column, reason))
    }

    /// The item the columns every CSV export shares describe (`id`, `type`, `text`,
    /// `author_name_hash`, `created_at`, `parent_id`), with `engagements`; the caller
    /// fills in what its platform adds.
    pub(super) fn content_item(
        &self,
        engagements: Engagements,
    ) -> Result<ContentItem, RecordError> {
        let mut item = ContentItem::new(
            self.required("id")?,
            self.content_type("type")?,
            self.text("text").to_owned(),
            self.text("author_name_hash").trim(),
            self.timestamp("created_at")?,
            engagements,
        );
        item.parent_id = self.optional("parent_id");
        Ok(item)
    }

    /// A count that must not be negative.
    pub(super) fn count(&self, column: &str) -> Result<u64, RecordError> {
        let n = self.signed_count(column)?;
        u64::try_from(n).map_err(|_| self.reject(column, format!("negative count {n}")))
    }
}

/// Parses a count: empty is 0, integers and whole floats are accepted.
pub(crate) fn parse_count(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n);
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(f as i64),
        _ => Err(format!("not a whole number: {:?}", truncate(text, 40))),
    }
}

pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    let mut out: String = text.chars().take(max_chars).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// The absolute http(s) URLs written in `text`, in order, without trailing punctuation.
pub(crate) fn urls_in_text(text: &str) -> Vec<String> {
    let mut urls = Vec::new();
    let mut rest = text;
    while let Some(start) = find_url_start(rest) {
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(candidate.len());
        let mut url = &candidate[..end];
        loop {
            let trimmed = url.trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', ']', '}']);
            let trimmed = if trimmed.ends_with(')') && !trimmed.contains('(') {
                &trimmed[..trimmed.len() - 1]
            } else {
                trimmed
            };
            if trimmed.len() == url.len() {
                break;
            }
            url = trimmed;
        }
        if check_http_url(url).is_ok() {
            urls.push(url.to_owned());
        }
        rest = &candidate[end.max(1)..];
    }
    urls
}

fn find_url_start(text: &str) -> Option<usize> {
    let http = text.find("http://");
    let https = text.find("https://");
    match (http, https) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads the CSV file at `path`, converting each record with `convert` and handing
/// items and rejections to `emit` in file order.
pub(crate) fn read_csv(
    path: &Path,
    platform: Platform,
    required_columns: &[&str],
    convert: impl Fn(&Row<'_>) -> Result<ContentItem, RecordError>,
    emit: &mut dyn FnMut(Result<ContentItem, RecordError>) -> Result<(), SeedError>,
) -> Result<(), SeedError> {
    let bytes = std::fs::read(path).map_err(|e| SeedError::io(path, e))?;
    let data = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let file_origin = Origin {
        file: path,
        platform,
        record: 0,
        line: Some(1),
    };

    let mut record = csv::ByteRecord::new();
    let header_read = reader
        .read_byte_record(&mut record)
        .map_err(|e| file_origin.reject(None, format!("unreadable header: {e}")));
    match header_read {
        Ok(true) => {}
        Ok(false) => return emit(Err(file_origin.reject(None, "empty file, no header"))),
        Err(rejection) => return emit(Err(rejection)),
    }
    let columns: HashMap<String, usize> = record
        .iter()
        .enumerate()
        .map(|(i, name)| (String::from_utf8_lossy(name).trim().to_ascii_lowercase(), i))
        .collect();
    let width = record.len();
    let missing: Vec<&str> = required_columns
        .iter()
        .copied()
        .filter(|c| !columns.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        return emit(Err(file_origin.reject(
            None,
            format!(
                "header lacks column(s) {}; no record of this file was loaded",
                missing.join(", ")
            ),
        )));
    }

    let mut number = 0u64;
    let mut values: Vec<String> = Vec::with_capacity(width);
    loop {
        let start = reader.position().byte() as usize;
        let read = reader.read_byte_record(&mut record);
        number += 1;
        let origin = Origin {
            file: path,
            platform,
            record: number,
            line: record.position().map(|p| p.line()),
        };
        match read {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => {
                emit(Err(origin.reject(None, format!("unreadable record: {e}"))))?;
                continue;
            }
        }
        let end = reader.position().byte() as usize;
        let raw = data.get(start..end).unwrap_or_default();
        if end >= data.len() && raw.iter().filter(|&&b| b == b'"').count() % 2 == 1 {
            emit(Err(origin.reject(
                None,
                "unterminated quoted field: the record runs to the end of the file (truncated file?); any records after its opening quote could not be read",
            )))?;
            return Ok(());
        }
        if record.len() != width {
            emit(Err(origin.reject(
                None,
                format!(
                    "expected {width} fields as in the header, found {}",
                    record.len()
                ),
            )))?;
            continue;
        }
        values.clear();
        let mut bad_utf8 = None;
        for (i, field) in record.iter().enumerate() {
            match std::str::from_utf8(field) {
                Ok(s) => values.push(s.to_owned()),
                Err(_) => {
                    bad_utf8 = Some(i);
                    break;
                }
            }
        }
        if let Some(i) = bad_utf8 {
            let name = columns
                .iter()
                .find(|&(_, &c)| c == i)
                .map_or_else(|| format!("#{}", i + 1), |(n, _)| n.clone());
            emit(Err(origin.reject(Some(&name), "not valid UTF-8")))?;
            continue;
        }
        let row = Row {
            values: &values,
            columns: &columns,
            origin,
        };
        emit(convert(&row))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accept_empty_integers_and_whole_floats() {
        assert_eq!(parse_count(""), Ok(0));
        assert_eq!(parse_count(" 12 "), Ok(12));
        assert_eq!(parse_count("993.0"), Ok(993));
        assert_eq!(parse_count("-4"), Ok(-4));
        assert_eq!(parse_count("1e3"), Ok(1000));
        assert!(parse_count("1.5").is_err());
        assert!(parse_count("many").is_err());
        assert!(parse_count("NaN").is_err());
    }

    #[test]
    fn urls_are_found_and_trimmed() {
        let text =
            "See https://example.com/a_(b). And (http://news.example/x?y=1), ok? https:// bare";
        assert_eq!(
            urls_in_text(text),
            vec!["https://example.com/a_(b)", "http://news.example/x?y=1"]
        );
        assert!(urls_in_text("no links here").is_empty());
    }
}
