//! Named-entity extraction for informal social-media text.
//!
//! [`EntityExtractor`] is the seam: the worker's `count_top_named_entities` task and the
//! `posts-worker entities` command only see the trait, so a better model can be plugged in
//! later without touching them.

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
}
