//! The deterministic generator of large realistic posts databases for benchmarks:
//! platform and post/comment mix, threads of comments under posts, text lengths with a
//! long tail, entity mentions written the ways people write them (plain, ALL CAPS,
//! #hashtag, @mention), links, emoji, heavy-tailed engagement counts, and timestamps
//! spread over a range.
//!
//! Items are generated in fixed-size chunks, each from its own RNG seeded by the seed and
//! the chunk number, so the same options always give the same rows. A generator thread
//! fills reusable batch buffers (the JSON blob written straight into them) that the
//! writer inserts as borrowed rows, so generating and inserting overlap on two cores and
//! neither allocates per row.

mod words;

use std::io::Write as _;
use std::ops::Range;
use std::path::Path;
use std::sync::mpsc;

use chrono::NaiveDate;
use posts_model::{
    ContentType, Engagements, FacebookEngagements, Platform, RedditEngagements, Timestamp,
    TwitterEngagements,
};
use posts_store::write::{Commit, PostRowRef, PostsWriter, WriteMode};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use self::words::Words;
use crate::identity::sha256_hex;
use crate::{ProgressEvent, SeedError, SeedSummary};

/// Items per generation chunk; part of the output's definition (changing it changes the
/// rows a seed gives).
const CHUNK: u64 = 8_192;
/// Distinct authors in a synthetic DB.
const AUTHORS: usize = 20_000;
/// Distinct sentences texts are assembled from: composing words one by one for every
/// item would make generation slower than SQLite.
const SENTENCES: usize = 8_192;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SyntheticOptions {
    /// Number of items.
    pub count: u64,
    /// Seed; the same options give the same rows.
    pub seed: u64,
    /// Earliest `created_at`.
    pub from: Timestamp,
    /// `created_at` stays before this.
    pub to: Timestamp,
    /// Session users the items are spread over; 0 picks one per 2,000 items (1 to
    /// 10,000).
    pub users: u32,
}

impl SyntheticOptions {
    /// `count` items with seed 42 over 2017 (UTC), users picked from the count.
    pub fn new(count: u64) -> Self {
        let year = |y| {
            NaiveDate::from_ymd_opt(y, 1, 1)
                .map(Timestamp::from_date)
                .unwrap_or_else(Timestamp::now)
        };
        SyntheticOptions {
            count,
            seed: 42,
            from: year(2017),
            to: year(2018),
            users: 0,
        }
    }

    fn user_count(&self) -> usize {
        if self.users > 0 {
            self.users as usize
        } else {
            (self.count / 2_000).clamp(1, 10_000) as usize
        }
    }

    fn validate(&self) -> Result<(), SeedError> {
        if self.from >= self.to {
            return Err(SeedError::InvalidOption {
                name: "--from/--to",
                reason: format!("the range {} to {} is empty", self.from, self.to),
            });
        }
        Ok(())
    }
}

/// Parses a `--from`/`--to` bound: a date (`YYYY-MM-DD`, midnight UTC) or any datetime
/// form [`Timestamp::parse`] accepts.
pub fn parse_date_bound(name: &'static str, text: &str) -> Result<Timestamp, SeedError> {
    if let Ok(date) = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        return Ok(Timestamp::from_date(date));
    }
    Timestamp::parse(text.trim()).map_err(|e| SeedError::InvalidOption {
        name,
        reason: format!("{e}; a date YYYY-MM-DD is also accepted"),
    })
}

/// Generates the rows of `options` into the DB at `path`.
pub(crate) fn load(
    path: &Path,
    options: &SyntheticOptions,
    mode: WriteMode,
    salt: &str,
    progress: &mut dyn FnMut(&ProgressEvent),
) -> Result<SeedSummary, SeedError> {
    options.validate()?;
    // A failed synthetic load is simply rerun, so a new file is loaded without a
    // journal: much faster on big loads. The writer keeps WAL safety for existing files
    // (readers may have them open) and upserts.
    let commit = if mode == WriteMode::Upsert {
        Commit::EveryBatch
    } else {
        Commit::Unjournaled
    };
    let mut writer = PostsWriter::open(path, mode, commit)?;
    let generator = Generator::new(options, salt);
    let mut summary = SeedSummary::new(path);
    summary.users = generator.users.len() as u64;
    progress(&ProgressEvent::Started {
        total_rows: Some(options.count),
    });
    let chunks = options.count.div_ceil(CHUNK);
    std::thread::scope(|scope| -> Result<(), SeedError> {
        // Generation and insertion each keep a core busy. A small bound keeps memory
        // flat while letting generation run ahead of SQLite; written batches go back to
        // the generator so their buffers are reused.
        let (full, filled) = mpsc::sync_channel::<Batch>(4);
        let (recycle, empties) = mpsc::channel::<Batch>();
        let generator = &generator;
        scope.spawn(move || {
            for chunk in 0..chunks {
                let mut batch = empties.try_recv().unwrap_or_default();
                generator.fill(chunk, &mut batch);
                if full.send(batch).is_err() {
                    break;
                }
            }
        });
        for batch in filled {
            for row in &batch.rows {
                summary.counts(row.platform).loaded += 1;
            }
            writer.write_rows(generator.rows(&batch))?;
            progress(&ProgressEvent::Rows {
                done: writer.rows(),
            });
            // The generator may have finished; then the buffer is simply dropped.
            let _ = recycle.send(batch);
        }
        Ok(())
    })?;
    progress(&ProgressEvent::Finishing);
    summary.rows_written = writer.finish()?;
    Ok(summary)
}

/// Everything chunk generation shares.
pub(crate) struct Generator {
    options: SyntheticOptions,
    authors: Vec<String>,
    users: Vec<String>,
    sentences: Vec<String>,
    /// `syn{seed}-`, the start of every id.
    id_prefix: String,
}

/// One chunk of generated rows: all their text in one buffer, reused from chunk to
/// chunk, so generating a row allocates next to nothing.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    text: String,
    rows: Vec<RowSpans>,
}

/// Where one row's values are: spans of [`Batch::text`] and indexes into the
/// generator's author and user pools.
#[derive(Debug, Clone)]
struct RowSpans {
    id: Range<usize>,
    session_timestamp: Range<usize>,
    created_at: Range<usize>,
    post_blob: Range<usize>,
    user: usize,
    author: usize,
    platform: Platform,
    content_type: ContentType,
}

/// A post comments can attach to; items are named by their number (see
/// [`Generator::push_id`]).
struct Thread {
    item: u64,
    created_at: i64,
    /// Recent comments, for nested replies.
    comments: [u64; MAX_REPLY_TARGETS],
    comment_count: usize,
}

/// Recent comments of a thread that new comments may reply to.
const MAX_REPLY_TARGETS: usize = 8;
/// Threads per platform that new comments may join.
const OPEN_THREADS: usize = 48;

impl Generator {
    /// Prepares author and user pools (salted like real session users).
    pub(crate) fn new(options: &SyntheticOptions, salt: &str) -> Self {
        let authors = (0..AUTHORS)
            .map(|i| sha256_hex(&["synthetic_author_", &i.to_string()]))
            .collect();
        let users = (0..options.user_count())
            .map(|i| sha256_hex(&[&format!("synthetic_user_{i:05}"), salt]))
            .collect();
        let mut rng = SmallRng::seed_from_u64(options.seed);
        let sentences = (0..SENTENCES)
            .map(|_| {
                let length = rng.random_range(8..140);
                sentence(&mut rng, length)
            })
            .collect();
        Generator {
            options: options.clone(),
            authors,
            users,
            sentences,
            id_prefix: format!("syn{}-", options.seed),
        }
    }

    /// The rows of chunk `index` (items `index * 8192 ..`), always the same for the
    /// same options.
    #[cfg(test)]
    pub(crate) fn chunk(&self, index: u64) -> Vec<posts_store::write::PostRow> {
        let mut batch = Batch::default();
        self.fill(index, &mut batch);
        self.rows(&batch)
            .map(|row| posts_store::write::PostRow {
                id: row.id.to_owned(),
                session_timestamp: row.session_timestamp.to_owned(),
                session_user_id: row.session_user_id.to_owned(),
                platform: row.platform,
                content_type: row.content_type,
                author_name_hash: row.author_name_hash.to_owned(),
                created_at: row.created_at.to_owned(),
                post_blob: row.post_blob.to_owned(),
            })
            .collect()
    }

    /// The rows of a batch [`fill`](Self::fill)ed by this generator.
    pub(crate) fn rows<'a>(&'a self, batch: &'a Batch) -> impl Iterator<Item = PostRowRef<'a>> {
        // Spans come from `fill`, which only cuts at the ASCII bytes that end values.
        let text = |span: &Range<usize>| batch.text.get(span.clone()).unwrap_or_default();
        batch.rows.iter().map(move |row| PostRowRef {
            id: text(&row.id),
            session_timestamp: text(&row.session_timestamp),
            session_user_id: &self.users[row.user],
            platform: row.platform,
            content_type: row.content_type,
            author_name_hash: &self.authors[row.author],
            created_at: text(&row.created_at),
            post_blob: text(&row.post_blob),
        })
    }

    /// Replaces the contents of `batch` with the rows of chunk `index`.
    pub(crate) fn fill(&self, index: u64, batch: &mut Batch) {
        let o = &self.options;
        let first = index * CHUNK;
        let last = (first + CHUNK).min(o.count);
        let mut rng = SmallRng::seed_from_u64(o.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let span = (o.to.unix_seconds() - o.from.unix_seconds()).max(1);
        let base = o.from.unix_seconds();
        let mut threads: [Vec<Thread>; 3] = Default::default();
        // Written as bytes because serde_json writes to `io::Write`; every piece is
        // UTF-8, and the buffer goes back into a String below.
        let mut out = std::mem::take(&mut batch.text).into_bytes();
        out.clear();
        batch.rows.clear();
        let mut text = String::new();
        let mut urls = Vec::new();
        for n in first..last {
            let platform = pick_platform(rng.random());
            let open = &mut threads[platform as usize];
            let comment_share = match platform {
                Platform::Facebook => 0.7,
                Platform::Reddit => 0.8,
                Platform::Twitter => 0.35,
            };
            let at_index =
                base + (span as f64 * (n as f64 + rng.random::<f64>()) / o.count as f64) as i64;
            let is_comment = !open.is_empty() && rng.random_bool(comment_share);
            // (content type, created, post the item belongs to, item it replies to)
            let (content_type, created, post, parent) = if is_comment {
                let pick_thread = rng.random_range(0..open.len());
                let thread = &mut open[pick_thread];
                let delay = rng.random_range(60..172_800);
                let created = (thread.created_at + delay).clamp(base, base + span - 1);
                let parent = if thread.comment_count > 0 && rng.random_bool(0.3) {
                    thread.comments[rng.random_range(0..thread.comment_count)]
                } else {
                    thread.item
                };
                if thread.comment_count < MAX_REPLY_TARGETS {
                    thread.comments[thread.comment_count] = n;
                    thread.comment_count += 1;
                } else {
                    let slot = rng.random_range(0..MAX_REPLY_TARGETS);
                    thread.comments[slot] = n;
                }
                (ContentType::Comment, created, thread.item, Some(parent))
            } else {
                let created = at_index.clamp(base, base + span - 1);
                let thread = Thread {
                    item: n,
                    created_at: created,
                    comments: [0; MAX_REPLY_TARGETS],
                    comment_count: 0,
                };
                if open.len() < OPEN_THREADS {
                    open.push(thread);
                } else {
                    let slot = rng.random_range(0..open.len());
                    open[slot] = thread;
                }
                (ContentType::Post, created, n, None)
            };
            let is_post = content_type == ContentType::Post;
            text.clear();
            urls.clear();
            compose_text(
                &mut rng,
                &self.sentences,
                platform,
                is_post,
                &mut text,
                &mut urls,
            );
            let created_at = Timestamp::from_unix_seconds(created).unwrap_or(o.from);
            let author = skewed(&mut rng, self.authors.len());
            let engagements = engagements(&mut rng, platform, is_post);
            let (language, title) = match platform {
                Platform::Twitter => (Some(if rng.random_bool(0.95) { "en" } else { "und" }), None),
                Platform::Reddit if is_post => (
                    None,
                    Some(self.sentences[rng.random_range(0..SENTENCES)].as_str()),
                ),
                _ => (None, None),
            };
            // Tweets carry no post id.
            let post = (platform != Platform::Twitter).then_some(post);
            let user = rng.random_range(0..self.users.len());
            let seen = created_at
                .plus_seconds(rng.random_range(60..21_600))
                .unwrap_or(created_at);

            let id = self.push_id(&mut out, n);
            let session_timestamp = push_span(&mut out, seen.to_db_string().as_bytes());
            let created_at_db = push_span(&mut out, created_at.to_db_string().as_bytes());
            // The blob is written key by key in the order (and with the nulls)
            // `ContentItem::to_json` gives, without building the item; the tests check
            // the two agree.
            let blob_start = out.len();
            out.extend_from_slice(b"{\"id\":\"");
            out.extend_from_within(id.clone());
            out.extend_from_slice(b"\",\"original_rank\":null,\"post_id\":");
            self.push_optional_id(&mut out, post);
            out.extend_from_slice(b",\"parent_id\":");
            self.push_optional_id(&mut out, parent);
            out.extend_from_slice(b",\"title\":");
            push_json(&mut out, &title);
            out.extend_from_slice(b",\"text\":");
            push_json(&mut out, &text);
            out.extend_from_slice(b",\"author_name_hash\":");
            push_json(&mut out, &self.authors[author]);
            out.extend_from_slice(b",\"type\":");
            push_json(&mut out, &content_type);
            out.extend_from_slice(b",\"embedded_urls\":");
            push_json(&mut out, &urls);
            out.extend_from_slice(b",\"created_at\":");
            push_json(&mut out, &created_at);
            out.extend_from_slice(b",\"engagements\":");
            push_json(&mut out, &engagements);
            out.extend_from_slice(b",\"language\":");
            push_json(&mut out, &language);
            out.push(b'}');
            batch.rows.push(RowSpans {
                id,
                session_timestamp,
                created_at: created_at_db,
                post_blob: blob_start..out.len(),
                user,
                author,
                platform,
                content_type,
            });
        }
        // Every byte written came from a `&str` or from serde_json, so this never
        // falls back to the lossy copy.
        batch.text = String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    }

    /// Appends the id of item `n` (`syn{seed}-{n:010}`) and returns its span.
    fn push_id(&self, out: &mut Vec<u8>, n: u64) -> Range<usize> {
        let start = out.len();
        out.extend_from_slice(self.id_prefix.as_bytes());
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{n:010}");
        start..out.len()
    }

    /// Appends the id of item `n` as a JSON string, or `null`.
    fn push_optional_id(&self, out: &mut Vec<u8>, n: Option<u64>) {
        match n {
            Some(n) => {
                out.push(b'"');
                self.push_id(out, n);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
    }
}

/// Appends `bytes` and returns their span.
fn push_span(out: &mut Vec<u8>, bytes: &[u8]) -> Range<usize> {
    let start = out.len();
    out.extend_from_slice(bytes);
    start..out.len()
}

/// Appends `value` as compact JSON, as `ContentItem::to_json` writes it.
fn push_json(out: &mut Vec<u8>, value: &impl Serialize) {
    // Strings, counts and timestamps always serialize, and a Vec takes every write.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Platform mix of the research teams' data: facebook 11 : reddit 7.4 : twitter 1.25.
fn pick_platform(u: f64) -> Platform {
    const FACEBOOK: f64 = 11.0 / 19.65;
    const REDDIT: f64 = (11.0 + 7.4) / 19.65;
    if u < FACEBOOK {
        Platform::Facebook
    } else if u < REDDIT {
        Platform::Reddit
    } else {
        Platform::Twitter
    }
}

/// An index in `0..len` favouring small values: a few prolific authors, a long tail.
fn skewed(rng: &mut SmallRng, len: usize) -> usize {
    let u: f64 = rng.random();
    ((u * u * u) * len as f64) as usize % len.max(1)
}

/// A Pareto-like count: mostly small, occasionally very large.
fn heavy(rng: &mut SmallRng, scale: f64) -> u64 {
    let u: f64 = rng.random_range(0.0..0.999);
    ((1.0 / (1.0 - u) - 1.0) * scale) as u64
}

fn engagements(rng: &mut SmallRng, platform: Platform, is_post: bool) -> Engagements {
    let scale = if is_post { 6.0 } else { 1.5 };
    match platform {
        Platform::Twitter => Engagements::Twitter(TwitterEngagements {
            retweet: heavy(rng, scale),
            like: heavy(rng, scale * 4.0),
            comment: heavy(rng, scale / 2.0),
            share: heavy(rng, scale / 4.0),
        }),
        Platform::Reddit => {
            let upvote = heavy(rng, scale * 5.0);
            let downvote = heavy(rng, scale);
            Engagements::Reddit(RedditEngagements {
                upvote: Some(upvote),
                downvote: Some(downvote),
                score: Some(upvote as i64 - downvote as i64),
                comment: if is_post {
                    heavy(rng, 8.0)
                } else {
                    heavy(rng, 0.5)
                },
                award: u64::from(rng.random_bool(0.01)),
                absent: Default::default(),
            })
        }
        Platform::Facebook => Engagements::Facebook(FacebookEngagements {
            like: heavy(rng, scale * 4.0),
            love: heavy(rng, scale),
            care: heavy(rng, scale / 8.0),
            haha: heavy(rng, scale / 2.0),
            wow: heavy(rng, scale / 6.0),
            sad: heavy(rng, scale / 6.0),
            angry: heavy(rng, scale / 4.0),
            comment: heavy(rng, scale),
            share: heavy(rng, scale / 3.0),
        }),
    }
}

/// Target text length: 45% short, 35% medium, 15% long, 5% very long.
fn text_length(rng: &mut SmallRng, platform: Platform) -> usize {
    let u: f64 = rng.random();
    let len = if u < 0.45 {
        rng.random_range(12..80)
    } else if u < 0.80 {
        rng.random_range(80..220)
    } else if u < 0.95 {
        rng.random_range(220..600)
    } else {
        rng.random_range(600..2_000)
    };
    if platform == Platform::Twitter {
        len.min(270)
    } else {
        len
    }
}

fn pick<'a>(rng: &mut SmallRng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// An entity mention in one of the forms people write.
fn mention(rng: &mut SmallRng, out: &mut String) {
    let words = Words::get();
    let (name, is_person_or_org) = match rng.random_range(0..3) {
        0 => (pick(rng, &words.people), true),
        1 => (pick(rng, &words.places), false),
        _ => (pick(rng, &words.organisations), true),
    };
    let form: f64 = rng.random();
    if form < 0.72 {
        out.push_str(name);
    } else if form < 0.82 {
        out.extend(name.chars().flat_map(char::to_uppercase));
    } else if form < 0.92 || !is_person_or_org {
        out.push('#');
        out.extend(name.chars().filter(|c| c.is_alphanumeric()));
    } else {
        out.push('@');
        out.extend(name.chars().filter(|c| c.is_alphanumeric()));
    }
}

/// One sentence of roughly `target` bytes.
fn sentence(rng: &mut SmallRng, target: usize) -> String {
    let mut out = String::with_capacity(target + 24);
    append_sentence(rng, &mut out, target);
    out
}

fn append_sentence(rng: &mut SmallRng, out: &mut String, target: usize) {
    let words = Words::get();
    let start = out.len();
    let shout = rng.random_bool(0.04);
    let mut first = true;
    while out.len() - start < target {
        if !first {
            out.push(' ');
        }
        if rng.random_bool(0.09) {
            mention(rng, out);
        } else {
            let word = pick(rng, &words.words);
            if first || shout {
                let mut chars = word.chars();
                if let Some(c) = chars.next() {
                    out.extend(c.to_uppercase());
                    if shout {
                        out.extend(chars.flat_map(char::to_uppercase));
                    } else {
                        out.push_str(chars.as_str());
                    }
                }
            } else {
                out.push_str(word);
            }
        }
        first = false;
    }
    out.push_str(match rng.random_range(0..10) {
        0..=5 => ".",
        6 | 7 => "!",
        8 => "?",
        _ => "!!!",
    });
}

/// Writes an item's text into the empty `text`, and the URLs it links to into `urls`.
fn compose_text(
    rng: &mut SmallRng,
    sentences: &[String],
    platform: Platform,
    is_post: bool,
    text: &mut String,
    urls: &mut Vec<String>,
) {
    let words = Words::get();
    if platform == Platform::Reddit {
        let u: f64 = rng.random();
        if u < 0.03 {
            text.push_str("[removed]");
            return;
        } else if u < 0.05 {
            text.push_str("[deleted]");
            return;
        } else if is_post && u < 0.40 {
            // Link posts: the title says it all, the body is empty.
            urls.push(link(rng));
            return;
        }
    }
    let target = text_length(rng, platform);
    if platform == Platform::Twitter && !is_post {
        text.push('@');
        text.extend(
            pick(rng, &words.people)
                .chars()
                .filter(|c| c.is_alphanumeric()),
        );
        text.push(' ');
    }
    while text.len() < target {
        if !text.is_empty() && !text.ends_with(' ') {
            text.push(' ');
        }
        text.push_str(&sentences[rng.random_range(0..sentences.len())]);
    }
    if rng.random_bool(0.15) {
        text.push(' ');
        text.push_str(pick(rng, &words.emoji));
    }
    if platform == Platform::Twitter && rng.random_bool(0.4) {
        text.push(' ');
        text.push_str(pick(rng, &words.hashtags));
    }
    if rng.random_bool(0.08) {
        let url = link(rng);
        text.push(' ');
        text.push_str(&url);
        urls.push(url);
    }
}

fn link(rng: &mut SmallRng) -> String {
    format!(
        "https://{}/{}/{}",
        pick(rng, &Words::get().domains),
        rng.random_range(2010..2020),
        rng.random_range(10_000..99_999_999)
    )
}

#[cfg(test)]
mod tests {
    use posts_model::ContentItem;

    use super::*;

    #[test]
    fn chunks_are_deterministic_and_valid() {
        let options = SyntheticOptions::new(3_000);
        let a = Generator::new(&options, "salt").chunk(0);
        let b = Generator::new(&options, "salt").chunk(0);
        assert_eq!(a, b);
        assert_eq!(a.len(), 3_000);
        let other = Generator::new(
            &SyntheticOptions {
                seed: 7,
                ..options.clone()
            },
            "salt",
        )
        .chunk(0);
        assert_ne!(a, other);
        for row in &a {
            let item = ContentItem::from_json(&row.post_blob);
            assert_eq!(
                item.as_ref().map(|i| i.platform()).ok(),
                Some(row.platform),
                "{row:?}"
            );
            // The hand-assembled blob is exactly what the model itself encodes.
            let item = item.unwrap_or_else(|e| panic!("{e}: {row:?}"));
            assert_eq!(item.to_json(), row.post_blob);
            assert_eq!(
                (item.id.as_str(), item.author_name_hash.as_str()),
                (row.id.as_str(), row.author_name_hash.as_str())
            );
            assert_eq!(item.created_at.to_db_string(), row.created_at);
            assert!(
                row.created_at.as_str() >= "2017-01-01" && row.created_at.as_str() < "2018",
                "{row:?}"
            );
        }
        let platforms: std::collections::BTreeSet<_> = a.iter().map(|r| r.platform).collect();
        let comments = a
            .iter()
            .filter(|r| r.content_type == ContentType::Comment)
            .count();
        assert_eq!(platforms.len(), 3);
        assert!(comments > 1_000 && comments < 2_800, "{comments} comments");
    }
}
