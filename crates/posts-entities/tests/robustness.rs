//! Any input, however odd, gives entities that are clean slices of it, without panicking.

use posts_entities::{EntityExtractor, default_extractor};
use proptest::prelude::*;

/// Texts built from the pieces posts are made of, so the rules (not just the tokenizer)
/// get exercised.
fn post_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("Trump".to_owned()),
        Just("TRUMP".to_owned()),
        Just("the".to_owned()),
        Just("White House".to_owned()),
        Just("'s".to_owned()),
        Just("’".to_owned()),
        Just("#MAGA".to_owned()),
        Just("@CNN".to_owned()),
        Just("https://t.co/x".to_owned()),
        Just("U.S.".to_owned()),
        Just("-".to_owned()),
        Just(".".to_owned()),
        Just("&amp;".to_owned()),
        Just("😂".to_owned()),
        Just("President".to_owned()),
        Just("of".to_owned()),
        Just("Jr".to_owned()),
        "[A-Za-zÀ-ÿ]{1,8}",
        any::<String>(),
    ];
    prop::collection::vec((piece, prop_oneof![Just(" "), Just(""), Just("\n")]), 0..24)
        .prop_map(|parts| parts.into_iter().map(|(p, sep)| p + sep).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn entities_are_trimmed_slices_of_the_input(text in post_like()) {
        let extractor = default_extractor();
        let entities = extractor.extract(&text);
        for entity in &entities {
            prop_assert!(!entity.text.is_empty());
            prop_assert!(text.contains(&entity.text), "{:?} not in {:?}", entity.text, text);
            prop_assert_eq!(entity.text.trim(), entity.text.as_str());
            prop_assert!(!entity.text.starts_with('@'));
            prop_assert!(!entity.text.contains("://"));
        }
        prop_assert_eq!(extractor.extract(&text), entities);
    }

    #[test]
    fn arbitrary_unicode_never_panics(text in any::<String>()) {
        let entities = default_extractor().extract(&text);
        prop_assert!(entities.iter().all(|e| text.contains(&e.text)));
    }
}
