//! The extractor's word lists read straight from `data/*.txt`, so tests can check that a
//! text they call unknown really is in none of them.

use std::collections::BTreeSet;

/// Every list whose entries are reported as entities, and the given names.
const NAME_LISTS: [&str; 7] = [
    include_str!("../../data/gpe.txt"),
    include_str!("../../data/loc.txt"),
    include_str!("../../data/norp.txt"),
    include_str!("../../data/person.txt"),
    include_str!("../../data/fac.txt"),
    include_str!("../../data/org.txt"),
    include_str!("../../data/first_names.txt"),
];

/// The lower-cased entries of the name lists.
pub(crate) fn entries() -> BTreeSet<String> {
    NAME_LISTS
        .iter()
        .flat_map(|list| list.lines())
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_lowercase)
        .collect()
}

/// Whether `text` is an entry, ignoring case, a leading "the" and a trailing possessive
/// (the forms in which the extractor reports a listed name).
pub(crate) fn is_entry(entries: &BTreeSet<String>, text: &str) -> bool {
    let lower = text.to_lowercase();
    let without_article = lower.strip_prefix("the ").unwrap_or(&lower);
    let mut forms = vec![lower.as_str(), without_article];
    for form in [lower.as_str(), without_article] {
        for suffix in ["'s", "’s", "'", "’"] {
            if let Some(stem) = form.strip_suffix(suffix) {
                forms.push(stem);
            }
        }
    }
    forms.iter().any(|form| entries.contains(*form))
}
