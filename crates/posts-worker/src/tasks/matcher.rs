//! Case-insensitive substring search, Unicode-correct with a fast path for the common case
//! of an ASCII needle.
//!
//! "Case-insensitive" means: the needle occurs in the text after both are mapped character
//! by character through Unicode's full lowercase mapping (`char::to_lowercase`), with the
//! final sigma `ς` mapped to `σ` (which lowercasing a whole string would not do).
//!
//! Why the ASCII path is exact: an ASCII needle can only match lowercased text made of
//! ASCII characters, and those come from ASCII characters of the original text, except for
//! the two non-ASCII characters whose lowercase contains ASCII ([`ASCII_PRODUCING`]). Texts
//! without those two can be searched byte-wise with ASCII case folding, no copy needed.

use memchr::memmem;

/// The non-ASCII characters whose lowercase mapping contains an ASCII character: `İ`
/// (U+0130, lowercases to `i` + U+0307) and the Kelvin sign (U+212A, lowercases to `k`).
/// A test checks this list against the whole Unicode range.
const ASCII_PRODUCING: [char; 2] = ['\u{130}', '\u{212A}'];

/// A compiled needle.
#[derive(Debug, Clone)]
pub struct Matcher {
    folded: String,
    finder: memmem::Finder<'static>,
    ascii: Option<AsciiNeedle>,
}

/// The ASCII path's needle: lowercase bytes and the position of its rarest byte, which
/// `memchr2` looks for in both cases to find candidates quickly.
#[derive(Debug, Clone)]
struct AsciiNeedle {
    lower: Vec<u8>,
    anchor: usize,
}

impl Matcher {
    /// Compiles `needle`. An empty needle matches every text, as `str::contains` does.
    pub fn new(needle: &str) -> Self {
        let mut folded = String::with_capacity(needle.len());
        fold_into(needle, &mut folded);
        let ascii = folded.is_ascii().then(|| {
            let lower = folded.as_bytes().to_vec();
            let anchor = (0..lower.len())
                .min_by_key(|&i| commonness(lower[i]))
                .unwrap_or(0);
            AsciiNeedle { lower, anchor }
        });
        let finder = memmem::Finder::new(folded.as_bytes()).into_owned();
        Self {
            folded,
            finder,
            ascii,
        }
    }

    /// Whether `text` contains the needle, ignoring case. `scratch` is a buffer reused
    /// between calls so the slow path does not allocate per text.
    pub fn is_match(&self, text: &str, scratch: &mut String) -> bool {
        if self.folded.is_empty() {
            return true;
        }
        if let Some(needle) = &self.ascii
            && (text.is_ascii() || !has_ascii_producing(text.as_bytes()))
        {
            return needle.find_in(text.as_bytes());
        }
        scratch.clear();
        fold_into(text, scratch);
        self.finder.find(scratch.as_bytes()).is_some()
    }
}

impl AsciiNeedle {
    fn find_in(&self, hay: &[u8]) -> bool {
        let n = self.lower.len();
        if hay.len() < n {
            return false;
        }
        let anchor = self.lower[self.anchor];
        let upper = anchor.to_ascii_uppercase();
        let mut from = self.anchor;
        let last_anchor = hay.len() - n + self.anchor;
        while from <= last_anchor {
            let found = if upper == anchor {
                memchr::memchr(anchor, &hay[from..=last_anchor])
            } else {
                memchr::memchr2(anchor, upper, &hay[from..=last_anchor])
            };
            let Some(offset) = found else {
                return false;
            };
            let at = from + offset;
            let start = at - self.anchor;
            if hay[start..start + n].eq_ignore_ascii_case(&self.lower) {
                return true;
            }
            from = at + 1;
        }
        false
    }
}

/// Whether `text` holds one of [`ASCII_PRODUCING`]; candidates are found by their UTF-8
/// lead bytes (`0xC4`, `0xE2`), which a test checks.
fn has_ascii_producing(text: &[u8]) -> bool {
    let mut buf = [0u8; 4];
    memchr::memchr2_iter(0xC4, 0xE2, text).any(|at| {
        ASCII_PRODUCING
            .iter()
            .any(|c| text[at..].starts_with(c.encode_utf8(&mut buf).as_bytes()))
    })
}

/// Appends the case-folded form of `text` to `out` (see the module docs).
fn fold_into(text: &str, out: &mut String) {
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else if c == 'ς' {
            out.push('σ');
        } else {
            out.extend(c.to_lowercase());
        }
    }
}

/// A rough rank of how common a byte is in English social-media text (higher = more
/// common); the needle's least common byte makes the fewest false candidates.
fn commonness(byte: u8) -> u8 {
    const BY_FREQUENCY: &[u8] = b"etaoinshrdlcumwfgypbvkjxqz";
    match byte {
        b' ' => 255,
        b'a'..=b'z' => {
            let rank = BY_FREQUENCY.iter().position(|&b| b == byte).unwrap_or(0);
            200 - rank as u8 * 7
        }
        b'0'..=b'9' => 40,
        _ => 20,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(needle: &str, text: &str) -> bool {
        Matcher::new(needle).is_match(text, &mut String::new())
    }

    /// The definition the fast path must agree with.
    fn reference(needle: &str, text: &str) -> bool {
        let mut n = String::new();
        let mut t = String::new();
        fold_into(needle, &mut n);
        fold_into(text, &mut t);
        t.contains(&n)
    }

    #[test]
    fn ascii_producing_list_is_complete() {
        let found: Vec<char> = (0x80..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|c| c.to_lowercase().any(|l| l.is_ascii()))
            .collect();
        assert_eq!(found, ASCII_PRODUCING);
        let leads: Vec<u8> = found.iter().map(|c| c.to_string().as_bytes()[0]).collect();
        assert_eq!(leads, [0xC4, 0xE2]);
    }

    #[test]
    fn matches_ignoring_case() {
        assert!(check("trump", "TRUMP's tweets"));
        assert!(check("Trump", "what did trump say"));
        assert!(check("tRuMp", "#TrumpTrain"));
        assert!(!check("trump", "trum p"));
        assert!(check("", "anything"));
        assert!(check("", ""));
        assert!(!check("x", ""));
        assert!(check("e", "e"));
        assert!(!check("ab", "a"));
    }

    #[test]
    fn unicode_text_and_needles() {
        assert!(check("café", "CAFÉ society"));
        assert!(check("CAFÉ", "a café 😀"));
        assert!(check("straße", "STRAẞE"));
        assert!(check("trump", "😀 Trump 🇺🇸"));
        assert!(check("οδοσ", "ΟΔΟΣ"));
        assert!(check("ς", "ΟΔΟΣ"));
        // The Kelvin sign lowercases to an ASCII 'k'.
        assert!(check("kelvin", "\u{212A}ELVIN"));
        assert!(check("\u{212A}", "ok"));
        assert!(check("i", "\u{130}stanbul"));
        assert!(!check("ü", "u"));
    }

    #[test]
    fn agrees_with_the_reference_on_mixed_inputs() {
        let texts = [
            "Trump's rally in Ohio",
            "TRUMP",
            "\u{212A}",
            "İzmir",
            "ǅemal",
            "ﬁnance FINANCE",
            "Σίσυφος",
            "ok 👍 OK",
            "",
            "tRUMPET",
            "  trump  ",
            "ΣΑΣ",
        ];
        let needles = [
            "trump", "k", "i", "ǆ", "fi", "σ", "👍 ok", "", "TRUMPET", "ς", " ",
        ];
        for text in texts {
            for needle in needles {
                assert_eq!(
                    check(needle, text),
                    reference(needle, text),
                    "{needle:?} in {text:?}"
                );
            }
        }
    }
}
