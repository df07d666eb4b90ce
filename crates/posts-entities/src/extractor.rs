//! The rule-based extractor: built-in gazetteers combined with capitalisation and context
//! rules, tuned to reproduce what spaCy's `en_core_web_sm` reports on social-media posts.
//!
//! A post is read once, left to right. Runs of capitalised words become candidate names;
//! each run loses leading titles ("President") and common words ("So", "The"), then is cut
//! into known phrases (longest match first) and unknown stretches, which count as names
//! unless they are a lone word that is capitalised for another reason (it opens a sentence,
//! it is shouted, it is a common word or a plural). A whole run ending in an organisation,
//! facility or place word ("Committee", "Tower", "County") is one name; one ending in an
//! event word ("Open", "Day") or starting with "Hurricane" is none. Lower-case words only
//! match gazetteer entries that are safe in lower case ("florida"); a post written in
//! capitals, or a run of capitals inside a normal post, is matched against the gazetteers
//! alone, case-insensitively. A hashtag counts when its tag is a known name or a
//! capitalised tag on its own; @mentions and URLs never do.

use std::cell::{Cell, RefCell};

use crate::lexicon::{Entry, Lexicon};
use crate::tokenize::{Kind, Token, tokenize};
use crate::{Entity, EntityExtractor, Label};

/// Lower-case words that may join the capitalised words of one name ("Bank of America").
const CONNECTORS: &[&str] = &[
    "of", "de", "del", "da", "la", "le", "van", "von", "bin", "al", "du", "der", "&",
];

/// Generation suffixes that belong to the name before them ("Trump Jr").
const GENERATIONS: &[&str] = &["jr", "jr.", "sr", "sr.", "ii", "iii"];

/// Last words that make a capitalised name an administrative area ("Tulsa County").
const PLACE_SUFFIXES: &[&str] = &["county", "parish", "province", "borough", "township"];

/// Finds people, organisations, places, facilities and nationalities or groups with
/// built-in word lists and capitalisation rules, in pure Rust.
///
/// Cheap to create and to clone: the word lists are compiled in and indexed once per
/// process, and the per-call buffers are kept per thread.
#[derive(Clone, Copy)]
pub struct RuleBasedExtractor {
    lexicon: &'static Lexicon,
}

impl RuleBasedExtractor {
    /// An extractor using the built-in word lists.
    pub fn new() -> Self {
        Self {
            lexicon: Lexicon::shared(),
        }
    }
}

impl Default for RuleBasedExtractor {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RuleBasedExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleBasedExtractor").finish_non_exhaustive()
    }
}

impl EntityExtractor for RuleBasedExtractor {
    fn extract(&self, text: &str) -> Vec<Entity> {
        let mut out = Vec::new();
        self.extract_into(text, &mut out);
        out
    }

    fn extract_into(&self, text: &str, out: &mut Vec<Entity>) {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => {
                self.run(text, &mut scratch, out);
                // Don't keep a huge post's buffers alive for the rest of the thread.
                if text.len() > LARGE_POST_BYTES {
                    *scratch = Scratch::default();
                }
            }
            // Only reachable if an extractor is called from inside another's call on the
            // same thread; fresh buffers keep that correct.
            Err(_) => self.run(text, &mut Scratch::default(), out),
        });
    }
}

/// Posts longer than this get fresh buffers afterwards instead of keeping theirs.
const LARGE_POST_BYTES: usize = 64 * 1024;

/// Buffers reused across calls on one thread, so extraction allocates only the results.
#[derive(Default)]
struct Scratch {
    tokens: Vec<Token>,
    /// The lower-cased words of the post, one after another.
    lower: String,
    /// Per token: the range of its lower-cased form in `lower`, and where its head ends.
    lower_ranges: Vec<LowerRange>,
    /// The phrase key being looked up.
    key: String,
    /// Per token: the gazetteer phrase starting there, once looked up (the rules ask
    /// about the same word several times).
    phrases: Vec<Cell<Option<Option<Match<'static>>>>>,
}

#[derive(Clone, Copy, Default)]
struct LowerRange {
    start: usize,
    head_end: usize,
    end: usize,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl RuleBasedExtractor {
    fn run(&self, text: &str, scratch: &mut Scratch, out: &mut Vec<Entity>) {
        let Scratch {
            tokens,
            lower,
            lower_ranges,
            key,
            phrases,
        } = scratch;
        tokenize(text, tokens);
        lower_words(text, tokens, lower, lower_ranges);
        phrases.clear();
        phrases.resize(tokens.len(), Cell::new(None));
        let post = Post {
            text,
            tokens,
            lower,
            lower_ranges,
            lexicon: self.lexicon,
            shouting: is_shouting(text, tokens),
            phrases,
        };
        let mut i = 0;
        while i < tokens.len() {
            i = match tokens[i].kind {
                Kind::Word => post.at_word(i, key, out),
                Kind::Hashtag => {
                    post.hashtag(i, out);
                    i + 1
                }
                _ => i + 1,
            };
        }
    }
}

/// Fills `lower` with the lower-cased words (and hashtag bodies) of `tokens`.
fn lower_words(text: &str, tokens: &[Token], lower: &mut String, ranges: &mut Vec<LowerRange>) {
    lower.clear();
    ranges.clear();
    for token in tokens {
        let start = lower.len();
        if matches!(token.kind, Kind::Word | Kind::Hashtag) {
            let body_start = if token.kind == Kind::Hashtag {
                token.start + 1
            } else {
                token.start
            };
            push_lower(lower, &text[body_start..token.head_end]);
            let head_end = lower.len();
            push_lower(lower, &text[token.head_end..token.end]);
            ranges.push(LowerRange {
                start,
                head_end,
                end: lower.len(),
            });
        } else {
            ranges.push(LowerRange {
                start,
                head_end: start,
                end: start,
            });
        }
    }
}

fn push_lower(buffer: &mut String, word: &str) {
    if word.is_ascii() {
        let start = buffer.len();
        buffer.push_str(word);
        buffer[start..].make_ascii_lowercase();
    } else {
        buffer.extend(word.chars().flat_map(char::to_lowercase));
    }
}

/// "I", "I'm", "I'll", ...: capitalised, but never part of a name.
fn is_first_person(lower: &str) -> bool {
    lower == "i" || lower.starts_with("i'") || lower.starts_with("i\u{2019}")
}

/// Whether the post is written in capitals, where case says nothing about names.
fn is_shouting(text: &str, tokens: &[Token]) -> bool {
    let (mut upper, mut lower) = (0usize, 0usize);
    for token in tokens.iter().filter(|t| t.kind == Kind::Word) {
        for c in text[token.start..token.end].chars() {
            if c.is_uppercase() {
                upper += 1;
            } else if c.is_lowercase() {
                lower += 1;
            }
        }
    }
    upper >= 8 && lower * 10 <= upper
}

/// A gazetteer phrase found at some token.
#[derive(Clone, Copy)]
struct Match<'l> {
    /// How many words it covers.
    words: usize,
    entry: &'l Entry,
    /// Whether it matched the head of its last word ("US" in "US-backed").
    head_only: bool,
}

/// One post being read.
struct Post<'a> {
    text: &'a str,
    tokens: &'a [Token],
    lower: &'a str,
    lower_ranges: &'a [LowerRange],
    lexicon: &'static Lexicon,
    shouting: bool,
    phrases: &'a [Cell<Option<Option<Match<'static>>>>],
}

impl<'a> Post<'a> {
    fn word(&self, i: usize) -> &'a str {
        let token = &self.tokens[i];
        &self.text[token.start..token.end]
    }

    fn head(&self, i: usize) -> &'a str {
        let token = &self.tokens[i];
        &self.text[token.start..token.head_end]
    }

    fn lower(&self, i: usize) -> &'a str {
        let range = self.lower_ranges[i];
        &self.lower[range.start..range.end]
    }

    fn lower_head(&self, i: usize) -> &'a str {
        let range = self.lower_ranges[i];
        &self.lower[range.start..range.head_end]
    }

    fn is_word(&self, i: usize) -> bool {
        self.tokens.get(i).is_some_and(|t| t.kind == Kind::Word)
    }

    fn is_capitalized(&self, i: usize) -> bool {
        self.word(i).chars().next().is_some_and(char::is_uppercase)
    }

    fn is_all_caps(&self, i: usize) -> bool {
        let word = self.head(i);
        word.chars().filter(|c| c.is_alphabetic()).count() >= 2
            && !word.chars().any(char::is_lowercase)
    }

    /// A capitalised word that continues a name (not the start of a new sentence, nor
    /// the pronoun "I", as in "Marcus Lee I'm here").
    fn continues_name(&self, i: usize) -> bool {
        self.is_word(i)
            && !self.tokens[i].sentence_start
            && self.is_capitalized(i)
            && !is_first_person(self.lower(i))
    }

    /// Whether token `i` exists and is "the".
    fn is_article(&self, i: usize) -> bool {
        self.is_word(i) && self.lower(i) == "the"
    }

    fn is_connector(&self, i: usize) -> bool {
        match self.tokens.get(i).map(|t| t.kind) {
            Some(Kind::Word) => CONNECTORS.contains(&self.lower(i)),
            Some(Kind::Punct) => matches!(self.word(i), "&" | "&amp;"),
            _ => false,
        }
    }

    /// Handles the word at `i`; returns the index of the next token to look at.
    fn at_word(&self, i: usize, key: &mut String, out: &mut Vec<Entity>) -> usize {
        if self.shouting || !self.is_capitalized(i) {
            return match self.phrase_at(i, key) {
                Some(found) if !self.is_rejected_single(i, found) => {
                    self.emit(i, i + found.words, found.head_only, found.entry.label, out);
                    i + found.words
                }
                _ => {
                    if self.is_lowercase_opening_surname(i) {
                        self.emit(i, i + 1, false, Label::Person, out);
                    }
                    i + 1
                }
            };
        }
        let end = self.name_end(i);
        self.resolve_name(i, end, key, out).max(end)
    }

    /// The end of the run of capitalised words starting at `i`.
    fn name_end(&self, i: usize) -> usize {
        let mut k = i + 1;
        if self.tokens[i].is_cut() {
            return k;
        }
        while k < self.tokens.len() {
            let step = if self.continues_name(k) {
                1
            } else if self.is_connector(k) && self.continues_name(k + 1) {
                2
            } else {
                break;
            };
            k += step;
            if self.tokens[k - 1].is_cut() {
                break;
            }
        }
        k
    }

    /// Splits the capitalised run `[start, end)` into entities; returns where reading goes on.
    fn resolve_name(
        &self,
        start: usize,
        end: usize,
        key: &mut String,
        out: &mut Vec<Entity>,
    ) -> usize {
        if self.lexicon.is_name_suppressor(self.lower(start))
            || (end - start >= 2 && self.lexicon.is_event_suffix(self.lower_head(end - 1)))
        {
            return end;
        }
        let shouted = (start..end).all(|k| self.is_all_caps(k) || self.is_connector(k));
        if end - start >= 2 && shouted {
            return self.resolve_shouted(start, end, key, out);
        }
        let mut p = start;
        let mut after_title = false;
        while p < end {
            let found = self.phrase_at(p, key);
            if found.is_some_and(|f| f.words >= 2) {
                break;
            }
            if let Some(words) = self.title_at(p, end, key) {
                p += words;
                after_title = true;
                continue;
            }
            let known = found.is_some_and(|f| !self.is_rejected_single(p, f));
            // A leading common word is not part of the name ("So", "Great Job"), unless the
            // run has the shape of a name and no sentence start explains its capital: mid-
            // sentence, "the Fake News Media" is one name.
            let named_shape = !self.tokens[p].sentence_start
                && end - p >= 2
                && self.whole_name_label(p, end, found).is_some();
            let common = self.lexicon.is_not_entity(self.lower(p)) && !named_shape;
            if !known && (common || self.is_opening_verb(p, end)) {
                p += 1;
                continue;
            }
            break;
        }
        let mut q = p;
        while q < end {
            let found = self.phrase_at(q, key);
            let rest = end - q;
            let whole = (q == p && rest >= 2 && found.is_none_or(|f| f.words < rest))
                .then(|| self.whole_name_label(q, end, found))
                .flatten();
            if let Some(label) = whole {
                self.emit(q, end, self.tokens[end - 1].is_cut(), label, out);
                return end;
            }
            let title = self.title_at(q, end, key);
            match (found, title) {
                (Some(f), _) if f.words >= 2 || !self.is_rejected_single(q, f) => {
                    let mut words = f.words;
                    let generation =
                        q + words < end && !f.head_only && f.entry.label == Label::Person;
                    if generation && GENERATIONS.contains(&self.lower(q + words)) {
                        words += 1;
                    }
                    self.emit(q, q + words, f.head_only, f.entry.label, out);
                    q += words;
                }
                (_, Some(words)) => {
                    q += words;
                    after_title = true;
                }
                _ => {
                    let mut r = q + 1;
                    while r < end && self.phrase_at(r, key).is_none() {
                        r += 1;
                    }
                    // Common words between known names are not names ("America Great Again").
                    let first = (q..r)
                        .find(|&k| q == p || !self.lexicon.is_not_entity(self.lower(k)))
                        .unwrap_or(r);
                    if first < r {
                        self.unknown_name(first, r, after_title, out);
                    }
                    q = r;
                }
            }
        }
        q
    }

    /// A run of capitals inside normal text ("LETS GO PENS", "GOLDEN STATE WARRIORS") is
    /// shouting, not a name: only gazetteer phrases in it count, as in a shouted post.
    fn resolve_shouted(
        &self,
        start: usize,
        end: usize,
        key: &mut String,
        out: &mut Vec<Entity>,
    ) -> usize {
        let mut q = start;
        while q < end {
            match self.phrase_at(q, key) {
                Some(f) if f.words >= 2 || !self.lexicon.is_not_entity(self.lower_head(q)) => {
                    self.emit(q, q + f.words, f.head_only, f.entry.label, out);
                    q += f.words;
                }
                _ => q += 1,
            }
        }
        q
    }

    /// The label for a whole multi-word run that the gazetteers do not cover in one piece,
    /// when its shape says what it is: an organisation or facility word at the end, or a
    /// given name at the start.
    fn whole_name_label(
        &self,
        start: usize,
        end: usize,
        found: Option<Match<'_>>,
    ) -> Option<Label> {
        let last = self.lower_head(end - 1);
        if PLACE_SUFFIXES.contains(&last) {
            return Some(Label::Gpe);
        }
        if self.lexicon.is_org_suffix(last) {
            return Some(Label::Org);
        }
        if self.lexicon.is_fac_suffix(last) {
            return Some(Label::Fac);
        }
        let starts_with_given_name = self.lexicon.is_first_name(self.lower(start))
            && end - start <= 4
            && found.is_none_or(|f| f.entry.label == Label::Person || f.words == 1);
        starts_with_given_name.then_some(Label::Person)
    }

    /// Reports a capitalised stretch no list knows, unless it is a lone word that says
    /// nothing by being capitalised (sentence opener, shouted word, common word, title).
    fn unknown_name(&self, start: usize, end: usize, after_title: bool, out: &mut Vec<Entity>) {
        let lower = self.lower_head(start);
        if end - start == 1 {
            let given_name = self.lexicon.is_first_name(lower);
            let opener = self.tokens[start].sentence_start && !given_name && !after_title;
            // Short capitals mid-sentence are acronyms ("KD", "GSW"); longer ones shouting.
            let shouted = self.is_all_caps(start)
                && !after_title
                && (self.tokens[start].sentence_start || lower.chars().count() > 4);
            let common = self.lexicon.is_not_entity(lower)
                || self.lexicon.title_words(lower).is_some()
                || lower.chars().count() < 2;
            let plural = lower.len() > 4
                && lower.ends_with('s')
                && !lower.ends_with("ss")
                && !self.is_all_caps(start);
            if opener || shouted || common || plural {
                return;
            }
        }
        // spaCy calls most unknown capitalised names people; a lone acronym ("GSW") or a
        // name after "the" ("the Champions Trophy") is mostly an organisation.
        let acronym = end - start == 1 && self.is_all_caps(start) && !after_title;
        let after_article = start.checked_sub(1).is_some_and(|k| self.is_article(k));
        let label = if acronym || after_article {
            Label::Org
        } else {
            Label::Person
        };
        self.emit(start, end, self.tokens[end - 1].is_cut(), label, out);
    }

    /// Whether word `i` is a well-known person's name written in lower case at the start of
    /// a sentence ("trump said ..."): spaCy reads those as names, though not mid-sentence.
    fn is_lowercase_opening_surname(&self, i: usize) -> bool {
        self.tokens[i].sentence_start
            && !self.shouting
            && !self.tokens[i].is_cut()
            && self.word(i).chars().all(char::is_lowercase)
            && self
                .lexicon
                .phrase(self.lower(i))
                .is_some_and(|entry| entry.label == Label::Person)
            && !self.lexicon.is_not_entity(self.lower(i))
            && !self.lexicon.is_first_name(self.lower(i))
    }

    /// Whether word `i` opens a sentence with an "-ing" verb ("Watching Game of Thrones",
    /// "Visiting Grandma"), which is capitalised only because of its position.
    fn is_opening_verb(&self, i: usize, end: usize) -> bool {
        let lower = self.lower(i);
        self.tokens[i].sentence_start
            && i + 1 < end
            && lower.len() > 5
            && lower.ends_with("ing")
            && !self.lexicon.is_first_name(lower)
    }

    /// How many words a title at `i` has ("President", "Vice President"), when a name
    /// follows it inside the run.
    fn title_at(&self, i: usize, end: usize, key: &mut String) -> Option<usize> {
        if i + 1 < end {
            key.clear();
            key.push_str(self.lower(i));
            key.push(' ');
            key.push_str(self.lower(i + 1));
            if let Some(words) = self.lexicon.title_words(key).filter(|_| i + 2 < end) {
                return Some(words);
            }
            return self.lexicon.title_words(self.lower(i));
        }
        None
    }

    /// A single-word gazetteer match that is really a common word here: any in shouted
    /// text ("US" in "RIPPING US OFF"), or a sentence opener such as "Nice to see".
    fn is_rejected_single(&self, i: usize, found: Match<'_>) -> bool {
        found.words == 1
            && self.lexicon.is_not_entity(self.lower_head(i))
            && (self.shouting || (self.tokens[i].sentence_start && !self.is_all_caps(i)))
    }

    /// The longest gazetteer phrase starting at word `i` whose casing fits.
    fn phrase_at(&self, i: usize, key: &mut String) -> Option<Match<'static>> {
        if let Some(known) = self.phrases[i].get() {
            return known;
        }
        let found = self.look_up_phrase(i, key);
        self.phrases[i].set(Some(found));
        found
    }

    fn look_up_phrase(&self, i: usize, key: &mut String) -> Option<Match<'static>> {
        key.clear();
        let mut best = None;
        for words in 1..=self.lexicon.max_phrase_words {
            let k = i + words - 1;
            if !self.is_word(k) || (words > 1 && self.tokens[k].sentence_start) {
                break;
            }
            if words > 1 {
                key.push(' ');
            }
            let base = key.len();
            if self.tokens[k].is_cut() {
                // "US-backed": the head can end a phrase, but nothing continues after it.
                key.push_str(self.lower_head(k));
                if let Some(entry) = self
                    .lexicon
                    .phrase(key)
                    .filter(|e| self.case_fits(i, words, true, e))
                {
                    best = Some(Match {
                        words,
                        entry,
                        head_only: true,
                    });
                }
                key.truncate(base);
            }
            key.push_str(self.lower(k));
            let Some(node) = self.lexicon.node(key) else {
                break;
            };
            if let Some(entry) = node
                .entry
                .as_ref()
                .filter(|e| self.case_fits(i, words, false, e))
            {
                best = Some(Match {
                    words,
                    entry,
                    head_only: false,
                });
            }
            if !node.continues {
                break;
            }
        }
        best
    }

    fn case_fits(&self, start: usize, words: usize, head_only: bool, entry: &Entry) -> bool {
        if self.shouting {
            return true;
        }
        let last = start + words - 1;
        entry.matches_case((start..=last).map(|k| {
            if k == last && head_only {
                self.head(k)
            } else {
                self.word(k)
            }
        }))
    }

    /// A hashtag whose tag reads as a name: a known entity as written ("#Brexit"), an
    /// acronym ("#MAGA"), or a capitalised tag standing on its own ("#DubNation"), which
    /// spaCy reads as names too; other tags in a row of hashtags are topic labels
    /// ("#Resist #TheResistance").
    fn hashtag(&self, i: usize, out: &mut Vec<Entity>) {
        let tag = &self.word(i)[1..];
        let lower = self.lower(i);
        if self.lexicon.is_not_entity(lower) {
            return;
        }
        let known = self.lexicon.phrase(lower).filter(|entry| {
            let upper = self.shouting || !tag.chars().any(char::is_lowercase);
            upper || entry.matches_case(std::iter::once(tag))
        });
        let in_a_row = |k: Option<usize>| {
            k.and_then(|k| self.tokens.get(k))
                .is_some_and(|t| t.kind == Kind::Hashtag)
        };
        let alone = !in_a_row(i.checked_sub(1)) && !in_a_row(Some(i + 1));
        let capitalised = tag.chars().next().is_some_and(char::is_uppercase);
        let acronym = tag.len() >= 3 && !tag.chars().any(|c| !c.is_ascii_uppercase());
        let label = match known {
            Some(entry) => entry.label,
            None if acronym => Label::Org,
            None if alone && capitalised => Label::Person,
            None => return,
        };
        out.push(Entity {
            text: tag.to_owned(),
            label,
        });
    }

    /// Reports words `[start, end)` as spaCy would print them: a multi-word name keeps a
    /// following possessive ("Jeremy Corbyn's") and, unless it is a person or group, a
    /// preceding "the" ("the White House"); a single word drops both ("Trump").
    fn emit(&self, start: usize, end: usize, head_only: bool, label: Label, out: &mut Vec<Entity>) {
        let last = &self.tokens[end - 1];
        let mut from = self.tokens[start].start;
        let mut to = if head_only { last.head_end } else { last.end };
        if end - start >= 2 {
            let next = self.tokens.get(end);
            if let Some(next) =
                next.filter(|n| !head_only && n.kind == Kind::Possessive && n.start == to)
            {
                to = next.end;
            }
            let article = start.checked_sub(1).filter(|&k| self.is_article(k));
            if let Some(article) = article.filter(|_| !matches!(label, Label::Person | Label::Norp))
            {
                from = self.tokens[article].start;
            }
        }
        out.push(Entity {
            text: self.text[from..to].to_owned(),
            label,
        });
    }
}
