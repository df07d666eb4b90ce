//! The built-in word lists (gazetteers, given names, titles, non-entity words), compiled in
//! from `data/*.txt` and indexed once per process.
//!
//! Phrases are keyed by their lower-cased words joined with single spaces, so one lookup
//! serves every casing; the original spellings are kept to decide whether a mention's
//! casing is plausible for the entry (see [`Entry::matches_case`]).

use std::sync::OnceLock;

use crate::Label;

const GPE: &str = include_str!("../data/gpe.txt");
const LOC: &str = include_str!("../data/loc.txt");
const NORP: &str = include_str!("../data/norp.txt");
const ORG: &str = include_str!("../data/org.txt");
const FAC: &str = include_str!("../data/fac.txt");
const PERSON: &str = include_str!("../data/person.txt");
const FIRST_NAMES: &str = include_str!("../data/first_names.txt");
const TITLES: &str = include_str!("../data/titles.txt");
const NOT_ENTITIES: &str = include_str!("../data/not_entities.txt");
const ORG_SUFFIXES: &str = include_str!("../data/org_suffixes.txt");
const FAC_SUFFIXES: &str = include_str!("../data/fac_suffixes.txt");
const EVENT_SUFFIXES: &str = include_str!("../data/event_suffixes.txt");
const NAME_SUPPRESSORS: &str = include_str!("../data/name_suppressors.txt");
const LOWERCASE_UNSAFE: &str = include_str!("../data/lowercase_unsafe.txt");

// FxHash: the keys are short words, where SipHash's setup cost dominates and
// hash-flooding resistance buys nothing (the tables are fixed at build time).
type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;
type FastSet<K> = rustc_hash::FxHashSet<K>;

/// One gazetteer phrase.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The label of the first list the phrase appears in.
    pub(crate) label: Label,
    /// Every spelling the lists give for this key ("WikiLeaks", "Wikileaks").
    spellings: Vec<&'static str>,
    /// Whether an all-lower-case mention ("florida", "north korea") counts: true for
    /// places, nationalities and multi-word names whose lower-case form is not a common word.
    pub(crate) lowercase_ok: bool,
}

impl Entry {
    /// Whether `words` (the mention, split like the key) is cased like one of the entry's
    /// spellings: each word as spelled or fully upper-cased, or all lower-case when the
    /// entry allows it. Shouted text is checked by the caller, not here.
    pub(crate) fn matches_case<'a>(&self, words: impl Iterator<Item = &'a str> + Clone) -> bool {
        if self.lowercase_ok
            && words
                .clone()
                .all(|word| !word.chars().any(char::is_uppercase))
        {
            return true;
        }
        self.spellings.iter().any(|spelling| {
            spelling
                .split(' ')
                .zip(words.clone())
                .all(|(expected, word)| word == expected || is_upper_form(word, expected))
        })
    }
}

/// Whether `word` is `expected` written in capitals ("TRUMP" for "Trump"), the usual
/// emphasis in otherwise normal text.
fn is_upper_form(word: &str, expected: &str) -> bool {
    word.len() == expected.len()
        && word.chars().any(char::is_alphabetic)
        && !word.chars().any(char::is_lowercase)
        && word
            .chars()
            .zip(expected.chars())
            .all(|(a, b)| b.to_uppercase().eq(std::iter::once(a)) || a == b)
}

/// A phrase, or the first words of one, in the phrase index.
#[derive(Debug, Default)]
pub(crate) struct Node {
    /// The entry when these words are a whole phrase.
    pub(crate) entry: Option<Entry>,
    /// Whether some longer phrase starts with these words, so a lookup should go on.
    pub(crate) continues: bool,
}

/// The indexed word lists.
pub(crate) struct Lexicon {
    /// Every phrase and every run of first words of a phrase ("new", "new york"), so a
    /// longest-match lookup stops as soon as no phrase can match.
    phrases: FastMap<String, Node>,
    /// The longest phrase, in words.
    pub(crate) max_phrase_words: usize,
    first_names: FastSet<String>,
    titles: FastMap<String, usize>,
    not_entities: FastSet<String>,
    org_suffixes: FastSet<String>,
    fac_suffixes: FastSet<String>,
    event_suffixes: FastSet<String>,
    name_suppressors: FastSet<String>,
}

impl Lexicon {
    /// The process-wide lexicon, built on first use.
    pub(crate) fn shared() -> &'static Lexicon {
        static LEXICON: OnceLock<Lexicon> = OnceLock::new();
        LEXICON.get_or_init(Lexicon::build)
    }

    fn build() -> Lexicon {
        let lowercase_unsafe: FastSet<String> =
            lines(LOWERCASE_UNSAFE).map(str::to_lowercase).collect();
        let mut lexicon = Lexicon {
            phrases: FastMap::default(),
            max_phrase_words: 1,
            first_names: lines(FIRST_NAMES).map(str::to_lowercase).collect(),
            titles: FastMap::default(),
            not_entities: lines(NOT_ENTITIES).map(str::to_lowercase).collect(),
            org_suffixes: lines(ORG_SUFFIXES).map(str::to_lowercase).collect(),
            fac_suffixes: lines(FAC_SUFFIXES).map(str::to_lowercase).collect(),
            event_suffixes: lines(EVENT_SUFFIXES).map(str::to_lowercase).collect(),
            name_suppressors: lines(NAME_SUPPRESSORS).map(str::to_lowercase).collect(),
        };
        for title in lines(TITLES) {
            lexicon
                .titles
                .insert(title.to_lowercase(), title.split(' ').count());
        }
        // Earlier lists win when a phrase appears twice: a place before an organisation.
        let lists = [
            (GPE, Label::Gpe),
            (LOC, Label::Loc),
            (NORP, Label::Norp),
            (PERSON, Label::Person),
            (FAC, Label::Fac),
            (ORG, Label::Org),
        ];
        for (list, label) in lists {
            for phrase in lines(list) {
                lexicon.add_phrase(phrase, label, &lowercase_unsafe);
            }
        }
        lexicon
    }

    fn add_phrase(
        &mut self,
        phrase: &'static str,
        label: Label,
        lowercase_unsafe: &FastSet<String>,
    ) {
        let key = phrase.to_lowercase();
        let words = phrase.split(' ').count();
        self.max_phrase_words = self.max_phrase_words.max(words);
        for (at, _) in key.match_indices(' ') {
            self.phrases
                .entry(key[..at].to_owned())
                .or_default()
                .continues = true;
        }
        let is_acronym = !phrase.chars().any(char::is_lowercase);
        let lowercase_ok = !lowercase_unsafe.contains(&key)
            && !self.not_entities.contains(&key)
            && match label {
                Label::Gpe | Label::Loc | Label::Norp => !is_acronym && key.len() >= 4,
                Label::Person => words >= 2,
                // Lower-cased acronyms ("fbi", "cnn") are still read as names.
                Label::Org => is_acronym && key.len() >= 3,
                Label::Fac => false,
            };
        let node = self.phrases.entry(key).or_default();
        let entry = node.entry.get_or_insert_with(|| Entry {
            label,
            spellings: Vec::new(),
            lowercase_ok,
        });
        entry.spellings.push(phrase);
    }

    /// The index node for lower-cased, single-space-joined words.
    pub(crate) fn node(&self, key: &str) -> Option<&Node> {
        self.phrases.get(key)
    }

    /// The entry for a lower-cased, single-space-joined phrase.
    pub(crate) fn phrase(&self, key: &str) -> Option<&Entry> {
        self.node(key).and_then(|node| node.entry.as_ref())
    }

    /// Whether the lower-cased word is a common given name.
    pub(crate) fn is_first_name(&self, lower_word: &str) -> bool {
        self.first_names.contains(lower_word)
    }

    /// How many words the title starting this lower-cased phrase has, if it is one.
    pub(crate) fn title_words(&self, lower_phrase: &str) -> Option<usize> {
        self.titles.get(lower_phrase).copied()
    }

    /// Whether the lower-cased word is a common word that is not an entity on its own.
    pub(crate) fn is_not_entity(&self, lower_word: &str) -> bool {
        self.not_entities.contains(lower_word)
    }

    /// Whether a name ending in this lower-cased word is an organisation ("Committee").
    pub(crate) fn is_org_suffix(&self, lower_word: &str) -> bool {
        self.org_suffixes.contains(lower_word)
    }

    /// Whether a name ending in this lower-cased word is an event or a date ("Open", "Day").
    pub(crate) fn is_event_suffix(&self, lower_word: &str) -> bool {
        self.event_suffixes.contains(lower_word)
    }

    /// Whether a name starting with this lower-cased word is not reported ("Hurricane").
    pub(crate) fn is_name_suppressor(&self, lower_word: &str) -> bool {
        self.name_suppressors.contains(lower_word)
    }

    /// Whether a name ending in this lower-cased word is a facility ("Tower", "Airport").
    pub(crate) fn is_fac_suffix(&self, lower_word: &str) -> bool {
        self.fac_suffixes.contains(lower_word)
    }
}

/// The entries of a word list: trimmed, without blank lines and `#` comments.
fn lines(list: &'static str) -> impl Iterator<Item = &'static str> {
    list.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_parses_into_the_lexicon() {
        let lexicon = Lexicon::shared();
        assert_eq!(
            lexicon.phrase("north korea").map(|e| e.label),
            Some(Label::Gpe)
        );
        assert_eq!(lexicon.phrase("cnn").map(|e| e.label), Some(Label::Org));
        assert_eq!(
            lexicon.phrase("republicans").map(|e| e.label),
            Some(Label::Norp)
        );
        assert!(lexicon.is_first_name("jessica"));
        assert_eq!(lexicon.title_words("vice president"), Some(2));
        assert!(lexicon.is_not_entity("monday"));
        assert!(lexicon.is_org_suffix("committee"));
        assert!(lexicon.is_fac_suffix("airport"));
        assert!(lexicon.is_event_suffix("open"));
        assert!(lexicon.is_name_suppressor("hurricane"));
        assert!(lexicon.max_phrase_words >= 4);
        let new = lexicon.node("new").expect("\"new\" starts phrases");
        assert!(new.continues && new.entry.is_none());
        assert!(
            lexicon
                .node("new york")
                .is_some_and(|n| n.continues && n.entry.is_some())
        );
    }

    #[test]
    fn casing_rules_follow_the_entry() {
        let lexicon = Lexicon::shared();
        let us = lexicon.phrase("us").expect("US is listed");
        assert!(us.matches_case(["US"].into_iter()));
        assert!(!us.matches_case(["us"].into_iter()));
        assert!(!us.matches_case(["Us"].into_iter()));
        let florida = lexicon.phrase("florida").expect("Florida is listed");
        assert!(florida.matches_case(["florida"].into_iter()));
        assert!(florida.matches_case(["FLORIDA"].into_iter()));
        let trump = lexicon.phrase("trump").expect("Trump is listed");
        assert!(!trump.matches_case(["trump"].into_iter()));
        assert!(trump.matches_case(["TRUMP"].into_iter()));
    }
}
