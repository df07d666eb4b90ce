//! Seeding from the raw sample files: finding them, streaming their items into the
//! writer (one transaction, so strict mode can leave nothing behind), rejecting
//! duplicates, and attaching session users.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use posts_model::{ContentItem, Platform, Timestamp};

use posts_store::write::{Commit, PostRow, PostsWriter};

use crate::identity::UserIdentity;
use crate::users::{self, UserPoolOptions};
use crate::{ProgressEvent, RecordError, SeedError, SeedOptions, SeedSummary, TEST_USER};

mod csv_input;
mod facebook;
mod jsonl;
mod reddit;
mod twitter;

/// The known kinds of raw file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    FacebookCsv,
    RedditCsv,
    TwitterJson,
    Jsonl(Option<Platform>),
}

/// The raw files of `dir` in load order: the three platform files, then `*.jsonl` by name.
fn discover(dir: &Path) -> Result<Vec<(PathBuf, Format)>, SeedError> {
    let mut found = Vec::new();
    for (name, format) in [
        ("facebook.csv", Format::FacebookCsv),
        ("reddit.csv", Format::RedditCsv),
        ("twitter.json", Format::TwitterJson),
    ] {
        let path = dir.join(name);
        if path.is_file() {
            found.push((path, format));
        }
    }
    let entries = std::fs::read_dir(dir).map_err(|e| SeedError::io(dir, e))?;
    let mut jsonl_files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| SeedError::io(dir, e))?.path();
        let is_jsonl = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
        if is_jsonl && path.is_file() {
            jsonl_files.push(path);
        }
    }
    jsonl_files.sort();
    found.extend(jsonl_files.into_iter().map(|p| {
        let platform = jsonl::platform_of(&p);
        (p, Format::Jsonl(platform))
    }));
    if found.is_empty() {
        return Err(SeedError::NoInput {
            dir: dir.to_owned(),
        });
    }
    Ok(found)
}

/// Receives each record with its file and record number.
type NumberedSink<'a> =
    dyn FnMut(&Path, u64, Result<ContentItem, RecordError>) -> Result<(), SeedError> + 'a;

/// Reads every file, handing each item or rejection to `emit` with its file and
/// record number (records count from 1 within each file, in file order).
fn read_all(
    files: Vec<(PathBuf, Format)>,
    progress: &mut dyn FnMut(&ProgressEvent),
    emit: &mut NumberedSink<'_>,
) -> Result<(), SeedError> {
    let mut handled = 0u64;
    for (path, format) in files {
        progress(&ProgressEvent::Reading { path: path.clone() });
        let mut record = 0u64;
        let mut numbered = |result: Result<ContentItem, RecordError>| {
            record += 1;
            handled += 1;
            // Rows are reported in steps so a huge file does not flood the callback.
            if handled.is_multiple_of(1_000) {
                progress(&ProgressEvent::Rows { done: handled });
            }
            emit(&path, record, result)
        };
        match format {
            Format::FacebookCsv => facebook::read(&path, &mut numbered)?,
            Format::RedditCsv => reddit::read(&path, &mut numbered)?,
            Format::TwitterJson => twitter::read(&path, &mut numbered)?,
            Format::Jsonl(Some(platform)) => jsonl::read(&path, platform, &mut numbered)?,
            Format::Jsonl(None) => numbered(Err(RecordError {
                file: path.clone(),
                platform: None,
                record: 0,
                line: None,
                field: None,
                reason: "the file name names no platform (expected facebook, reddit or twitter, e.g. reddit.jsonl); no record of it was loaded".to_owned(),
            }))?,
        }
    }
    progress(&ProgressEvent::Rows { done: handled });
    Ok(())
}

/// Counts and vets records: rejections are recorded (or end a strict seed), items with
/// an id already seen are rejected as duplicates.
struct Intake<'a> {
    strict: bool,
    summary: &'a mut SeedSummary,
    first_seen: HashMap<String, (PathBuf, u64)>,
}

impl Intake<'_> {
    fn accept(
        &mut self,
        record: Result<ContentItem, RecordError>,
        origin_of: impl FnOnce() -> (PathBuf, u64),
    ) -> Result<Option<ContentItem>, SeedError> {
        let rejection = match record {
            Ok(item) => match self.first_seen.get(&item.id) {
                None => {
                    self.first_seen.insert(item.id.clone(), origin_of());
                    return Ok(Some(item));
                }
                Some((file, record)) => {
                    let (this_file, this_record) = origin_of();
                    RecordError {
                        file: this_file,
                        platform: Some(item.platform()),
                        record: this_record,
                        line: None,
                        field: Some("id".to_owned()),
                        reason: format!(
                            "duplicate id {:?}, already loaded from {} record {record}",
                            item.id,
                            file.display()
                        ),
                    }
                }
            },
            Err(rejection) => rejection,
        };
        if self.strict {
            return Err(SeedError::Strict(rejection));
        }
        if let Some(platform) = rejection.platform {
            self.summary.counts(platform).rejected += 1;
        }
        self.summary.rejected_records.push(rejection);
        Ok(None)
    }
}

/// Loads the raw files of `dir` as `options` say.
pub(crate) fn load(
    options: &SeedOptions,
    dir: &Path,
    pool: Option<&UserPoolOptions>,
    now: Timestamp,
    progress: &mut dyn FnMut(&ProgressEvent),
) -> Result<SeedSummary, SeedError> {
    if let Some(pool) = pool {
        pool.validate()?;
    }
    // Finding the files first leaves no empty DB behind when there are none; opening
    // the writer before reading makes an existing table an error before any work.
    let files = discover(dir)?;
    let mut writer = PostsWriter::open(&options.db_path, options.mode, Commit::AllOrNothing)?;
    let mut summary = SeedSummary::new(&options.db_path);
    let mut collected: BTreeMap<Platform, Vec<ContentItem>> = BTreeMap::new();
    let test_user = UserIdentity::derive(TEST_USER, &options.salt);
    let mut intake = Intake {
        strict: options.strict,
        summary: &mut summary,
        first_seen: HashMap::new(),
    };
    progress(&ProgressEvent::Started { total_rows: None });
    let mut emit = |file: &Path, record: u64, result: Result<ContentItem, RecordError>| {
        let Some(item) = intake.accept(result, || (file.to_owned(), record))? else {
            return Ok(());
        };
        match pool {
            Some(_) => collected.entry(item.platform()).or_default().push(item),
            None => {
                writer.push(PostRow::from_item(&item, &test_user.user_id, now))?;
                intake.summary.counts(item.platform()).loaded += 1;
            }
        }
        Ok(())
    };
    read_all(files, progress, &mut emit)?;

    match pool {
        Some(pool) => {
            let plan = users::plan(&collected, pool, &options.salt, now)?;
            summary.users = plan.users;
            summary.sessions = plan.sessions;
            for (platform, unused) in &plan.unused {
                summary.counts(*platform).unused += unused;
            }
            for placed in plan.rows {
                let items = collected
                    .get(&placed.platform)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                if let Some(item) = items.get(placed.index) {
                    writer.push(PostRow::from_item(
                        item,
                        &placed.user_id,
                        placed.session_time,
                    ))?;
                    summary.counts(placed.platform).loaded += 1;
                }
            }
        }
        None => {
            summary.users = u64::from(summary.platforms.values().any(|c| c.loaded > 0));
            summary.sessions = summary.platforms.values().filter(|c| c.loaded > 0).count() as u64;
        }
    }
    progress(&ProgressEvent::Finishing);
    summary.rows_written = writer.finish()?;
    Ok(summary)
}
