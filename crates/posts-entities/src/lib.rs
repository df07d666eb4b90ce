//! Named-entity extraction for informal social-media text.
//!
//! [`EntityExtractor`] is the seam: the worker's `count_top_named_entities` task and the
//! `posts-worker entities` command only see the trait, so a better model can be plugged in
//! later without touching them.
//!
//! [`RuleBasedExtractor`] (what [`default_extractor`] returns) is the built-in
//! implementation: compiled-in gazetteers plus capitalisation and context rules, made to
//! report the entity texts spaCy's `en_core_web_sm` would (`"Trump's"` gives `"Trump"`,
//! `"the White House"` keeps its article, URLs and @mentions are never entities).
//!
//! The word lists live in `data/*.txt` (one entry a line, compiled in with `include_str!`).
//! Quality is measured against spaCy on `tests/data/*.jsonl` by the `dev_set` test. F1 on
//! entity texts (what the worker counts) / on (text, label) pairs: dev set held-out split
//! 0.856 / 0.711, sample-data set 0.785 / 0.622, and 0.697 / 0.338 on the novel-entity set,
//! whose entities are in no word list. Most entities found only in the dev set's held-out
//! split are word-list entries, so the novel-entity set is the figure for unseen names;
//! `cargo run -p posts-entities --example evaluate -- --diff` shows where the two disagree,
//! `eval/label_with_spacy.py` (optional, Python) relabels a set of posts, and
//! `cargo run --release -p posts-entities --example throughput` measures posts per second.
//!
//! ```
//! use posts_entities::{EntityExtractor, default_extractor};
//!
//! let texts: Vec<String> = default_extractor()
//!     .extract("Trump's lawyers met the FBI in Washington yesterday")
//!     .into_iter()
//!     .map(|entity| entity.text)
//!     .collect();
//! assert_eq!(texts, ["Trump", "FBI", "Washington"]);
//! ```

mod extractor;
mod lexicon;
mod tokenize;

pub use extractor::RuleBasedExtractor;

/// The extractor the worker uses: the built-in [`RuleBasedExtractor`].
pub fn default_extractor() -> RuleBasedExtractor {
    RuleBasedExtractor::new()
}

/// The kind of a named entity, following spaCy's OntoNotes labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// People, including fictional ones (`PERSON`).
    Person,
    /// Companies, agencies, institutions, teams, parties (`ORG`).
    Org,
    /// Countries, cities, states (`GPE`).
    Gpe,
    /// Non-GPE locations: mountain ranges, bodies of water, regions (`LOC`).
    Loc,
    /// Nationalities, religious and political groups (`NORP`).
    Norp,
    /// Buildings, airports, highways, bridges (`FAC`).
    Fac,
}

/// One entity mention found in a text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entity {
    /// The entity as it should be counted (surface form, normalised as spaCy would print it).
    pub text: String,
    /// What kind of entity it is.
    pub label: Label,
}

/// Finds named entities in a text.
pub trait EntityExtractor: Send + Sync {
    /// Returns the entity mentions of `text` in reading order (a mention may repeat).
    fn extract(&self, text: &str) -> Vec<Entity>;

    /// Appends the entity mentions of `text` to `out`, so a caller looping over many texts
    /// can reuse one vector.
    fn extract_into(&self, text: &str, out: &mut Vec<Entity>) {
        out.extend(self.extract(text));
    }
}
