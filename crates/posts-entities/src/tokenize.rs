//! Splits a post into the tokens the rules look at: words (with abbreviations, initials
//! and hyphenated compounds kept whole), possessive endings, URLs, @mentions, #hashtags,
//! numbers, punctuation and symbols such as emoji, and marks where sentences start.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Letters (and digits, apostrophes, hyphens, abbreviation dots) starting with a letter,
    /// or a digit run that contains letters ("49ers").
    Word,
    /// Digits and separators only.
    Number,
    /// `#` and the tag; the tag may name an entity.
    Hashtag,
    /// `@handle`; never an entity (spaCy's convention).
    Mention,
    /// `http://...`, `https://...`, `www....`; never an entity.
    Url,
    /// `'s` or a bare `'` after a word ending in s, written without a space.
    Possessive,
    /// One ASCII punctuation character.
    Punct,
    /// Anything else: emoji, pictographs, other symbols.
    Symbol,
}

/// One token, as byte offsets into the post.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// Where the token's entity-bearing head ends: before the hyphen of a compound with
    /// a lower-case tail ("Russian" in "Russian-linked"), else `end`.
    pub(crate) head_end: usize,
    /// Whether this is the first word of a sentence (capitals there say little).
    pub(crate) sentence_start: bool,
}

impl Token {
    /// Whether the token was cut at a hyphen ("US-backed").
    pub(crate) fn is_cut(&self) -> bool {
        self.head_end != self.end
    }
}

/// Abbreviations whose dot belongs to the word ("Mr.", "Sen.", "Jr.") rather than ending
/// the sentence.
const DOTTED_ABBREVIATIONS: &[&str] = &[
    "Mr", "Mrs", "Ms", "Dr", "Jr", "Sr", "St", "Mt", "Ft", "Sen", "Gov", "Rep", "Gen", "Col",
    "Capt", "Sgt", "Lt", "Prof", "Rev", "Inc", "Corp", "Ltd", "Co", "Ave", "Blvd", "vs", "Pres",
];

/// HTML character references that posts exported from Twitter carry verbatim.
const HTML_ENTITIES: &[&str] = &["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&apos;"];

/// Splits `text` into `out` (cleared first).
pub(crate) fn tokenize(text: &str, out: &mut Vec<Token>) {
    out.clear();
    let mut pos = 0;
    let mut sentence_start = true;
    while let Some(c) = text[pos..].chars().next() {
        if c.is_whitespace() {
            if c == '\n' {
                sentence_start = true;
            }
            pos += c.len_utf8();
            continue;
        }
        let rest = &text[pos..];
        let (kind, end, head_end) = if is_url_start(rest) {
            let end = pos + rest.find(char::is_whitespace).unwrap_or(rest.len());
            (Kind::Url, end, end)
        } else if (c == '@' || c == '#') && rest[1..].starts_with(is_handle_char) {
            let end = pos
                + 1
                + rest[1..]
                    .find(|ch| !is_handle_char(ch))
                    .unwrap_or(rest.len() - 1);
            let kind = if c == '@' {
                Kind::Mention
            } else {
                Kind::Hashtag
            };
            (kind, end, end)
        } else if c.is_alphanumeric() {
            let (end, head_end) = scan_word(text, pos);
            let is_word = c.is_alphabetic() || text[pos..end].chars().any(char::is_alphabetic);
            (
                if is_word { Kind::Word } else { Kind::Number },
                end,
                head_end,
            )
        } else if let Some(entity) = HTML_ENTITIES.iter().find(|e| rest.starts_with(*e)) {
            // Twitter exports escape "&" as "&amp;"; its ';' must not end a sentence.
            (Kind::Punct, pos + entity.len(), pos + entity.len())
        } else if let Some(len) = possessive_len(text, pos, out.last()) {
            (Kind::Possessive, pos + len, pos + len)
        } else if c.is_ascii_punctuation() {
            (Kind::Punct, pos + 1, pos + 1)
        } else {
            let end = pos + c.len_utf8();
            (Kind::Symbol, end, end)
        };
        out.push(Token {
            kind,
            start: pos,
            end,
            head_end,
            sentence_start: sentence_start && kind == Kind::Word,
        });
        sentence_start = match kind {
            Kind::Word | Kind::Number | Kind::Possessive => false,
            Kind::Punct if end - pos > 1 => sentence_start,
            Kind::Punct => matches!(c, '.' | '!' | '?' | ':' | ';') || sentence_start,
            // Emoji usually close a thought in posts; what follows reads as a new sentence.
            Kind::Symbol => true,
            Kind::Url | Kind::Mention | Kind::Hashtag => sentence_start,
        };
        pos = end;
    }
}

fn is_url_start(rest: &str) -> bool {
    let lower_prefix = |prefix: &str| {
        rest.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    lower_prefix("http://") || lower_prefix("https://") || lower_prefix("www.")
}

fn is_handle_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

/// The length of a possessive ending at `pos` ("'s", or "'" after a plural), if the
/// previous token is a word it is glued to.
fn possessive_len(text: &str, pos: usize, previous: Option<&Token>) -> Option<usize> {
    let previous = previous.filter(|t| t.kind == Kind::Word && t.end == pos)?;
    let mut chars = text[pos..].chars();
    let apostrophe = chars.next().filter(|&c| is_apostrophe(c))?;
    let after = chars.clone().next();
    match after {
        Some('s' | 'S') if !chars.nth(1).is_some_and(char::is_alphanumeric) => {
            Some(apostrophe.len_utf8() + 1)
        }
        Some(c) if c.is_alphanumeric() => None,
        _ if text[previous.start..previous.end].ends_with(['s', 'S']) => {
            Some(apostrophe.len_utf8())
        }
        _ => None,
    }
}

/// Scans a word starting at `start`; returns its end and the end of its head.
fn scan_word(text: &str, start: usize) -> (usize, usize) {
    let mut pos = start;
    let mut head_end = None;
    let mut chars = text[start..].char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        let at = start + offset;
        let next = chars.peek().map(|&(_, n)| n);
        if c.is_alphanumeric() {
            pos = at + c.len_utf8();
            continue;
        }
        let next_is_alnum = next.is_some_and(char::is_alphanumeric);
        if is_apostrophe(c) && next_is_alnum {
            // "O'Hare", "don't" stay whole; "'s" (and only it) is a separate possessive.
            let tail = &text[at + c.len_utf8()..];
            let is_possessive = tail.starts_with(['s', 'S'])
                && !tail[1..].starts_with(|ch: char| ch.is_alphanumeric());
            if is_possessive {
                break;
            }
            pos = at + c.len_utf8();
        } else if c == '-' && next_is_alnum {
            if head_end.is_none() && next.is_some_and(char::is_lowercase) {
                head_end = Some(at);
            }
            pos = at + 1;
        } else if c == '.' && is_dotted(&text[start..at], next) {
            pos = at + 1;
            if !next.is_some_and(char::is_alphabetic) {
                break;
            }
        } else {
            break;
        }
    }
    (pos, head_end.unwrap_or(pos))
}

/// Whether a dot after `word` belongs to it: initials and dotted acronyms ("J.", "U.S."),
/// and known abbreviations ("Mr.") when no letter follows.
fn is_dotted(word: &str, next: Option<char>) -> bool {
    let last_part = word.rsplit('.').next().unwrap_or(word);
    let single_letter = last_part.chars().count() == 1 && last_part.chars().all(char::is_uppercase);
    if single_letter {
        return true;
    }
    !next.is_some_and(char::is_alphabetic) && DOTTED_ABBREVIATIONS.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<(Kind, &str)> {
        let mut tokens = Vec::new();
        tokenize(text, &mut tokens);
        tokens
            .iter()
            .map(|t| (t.kind, &text[t.start..t.end]))
            .collect()
    }

    #[test]
    fn splits_possessives_and_keeps_inner_apostrophes() {
        assert_eq!(
            texts("Trump's O'Hare don't Bucks' fans"),
            vec![
                (Kind::Word, "Trump"),
                (Kind::Possessive, "'s"),
                (Kind::Word, "O'Hare"),
                (Kind::Word, "don't"),
                (Kind::Word, "Bucks"),
                (Kind::Possessive, "'"),
                (Kind::Word, "fans"),
            ]
        );
    }

    #[test]
    fn keeps_abbreviations_and_initials() {
        assert_eq!(
            texts("the U.S. and Mr. Donald J. Trump. Then"),
            vec![
                (Kind::Word, "the"),
                (Kind::Word, "U.S."),
                (Kind::Word, "and"),
                (Kind::Word, "Mr."),
                (Kind::Word, "Donald"),
                (Kind::Word, "J."),
                (Kind::Word, "Trump"),
                (Kind::Punct, "."),
                (Kind::Word, "Then"),
            ]
        );
    }

    #[test]
    fn urls_mentions_hashtags_and_emoji_are_single_tokens() {
        assert_eq!(
            texts("RT @CNN: wow https://t.co/x1?a=b #MAGA 🇺🇸!"),
            vec![
                (Kind::Word, "RT"),
                (Kind::Mention, "@CNN"),
                (Kind::Punct, ":"),
                (Kind::Word, "wow"),
                (Kind::Url, "https://t.co/x1?a=b"),
                (Kind::Hashtag, "#MAGA"),
                (Kind::Symbol, "🇺"),
                (Kind::Symbol, "🇸"),
                (Kind::Punct, "!"),
            ]
        );
    }

    #[test]
    fn marks_sentence_starts_and_hyphen_heads() {
        let text = "Russian-linked ads. Kim Jong-un 😂 Wow";
        let mut tokens = Vec::new();
        tokenize(text, &mut tokens);
        let starts: Vec<&str> = tokens
            .iter()
            .filter(|t| t.sentence_start)
            .map(|t| &text[t.start..t.end])
            .collect();
        assert_eq!(starts, vec!["Russian-linked", "Kim", "Wow"]);
        assert_eq!(&text[tokens[0].start..tokens[0].head_end], "Russian");
        let jong = tokens.iter().find(|t| text[t.start..].starts_with("Jong"));
        assert!(jong.is_some_and(Token::is_cut));
    }
}
