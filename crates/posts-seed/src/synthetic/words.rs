//! The word and name lists the synthetic generator writes with: everyday vocabulary and
//! the people, places and organisations posts mention, so entity extraction and text
//! search have realistic material. They live in `data/*.txt` (one entry a line) and are
//! compiled in; the order of the lines is part of the generator's output definition.

use std::sync::OnceLock;

const PEOPLE: &str = include_str!("../../data/people.txt");
const PLACES: &str = include_str!("../../data/places.txt");
const ORGANISATIONS: &str = include_str!("../../data/organisations.txt");
const WORDS: &str = include_str!("../../data/words.txt");
const EMOJI: &str = include_str!("../../data/emoji.txt");
const DOMAINS: &str = include_str!("../../data/domains.txt");
const HASHTAGS: &str = include_str!("../../data/hashtags.txt");

/// Every list, split into entries.
pub(crate) struct Words {
    /// People, as news and chatter mention them.
    pub(crate) people: Vec<&'static str>,
    /// Countries, cities and regions.
    pub(crate) places: Vec<&'static str>,
    /// Companies, institutions, parties, teams and media.
    pub(crate) organisations: Vec<&'static str>,
    /// Everyday words sentences are made of.
    pub(crate) words: Vec<&'static str>,
    /// Emoji sprinkled into posts.
    pub(crate) emoji: Vec<&'static str>,
    /// Link domains.
    pub(crate) domains: Vec<&'static str>,
    /// Everyday hashtags.
    pub(crate) hashtags: Vec<&'static str>,
}

impl Words {
    /// The lists, split once per process.
    pub(crate) fn get() -> &'static Words {
        static WORDS_ONCE: OnceLock<Words> = OnceLock::new();
        WORDS_ONCE.get_or_init(|| Words {
            people: entries(PEOPLE),
            places: entries(PLACES),
            organisations: entries(ORGANISATIONS),
            words: entries(WORDS),
            emoji: entries(EMOJI),
            domains: entries(DOMAINS),
            hashtags: entries(HASHTAGS),
        })
    }
}

/// The non-blank lines of a list, trimmed.
fn entries(list: &'static str) -> Vec<&'static str> {
    list.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_list_is_non_empty_and_free_of_duplicates() {
        let words = Words::get();
        // `words` may repeat an entry: a repeat makes the word more frequent.
        assert!(words.words.len() > 100);
        for (name, list) in [
            ("people", &words.people),
            ("places", &words.places),
            ("organisations", &words.organisations),
            ("emoji", &words.emoji),
            ("domains", &words.domains),
            ("hashtags", &words.hashtags),
        ] {
            assert!(!list.is_empty(), "{name} is empty");
            let distinct: std::collections::HashSet<_> = list.iter().collect();
            assert_eq!(distinct.len(), list.len(), "{name} repeats an entry");
        }
    }
}
