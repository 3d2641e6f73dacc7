//! What a user typed, as words to find: free words (typo-tolerant; the last one a prefix while it is being
//! typed), `"quoted phrases"` and `-excluded` words. Bounded before any work: at most [`MAX_CHARS`]
//! characters and [`MAX_TERMS`] words. Syntax that does not parse (an unclosed quote) is read as plain
//! words, never an error; stop words are dropped from the free words, so a query of only stop words or
//! punctuation finds nothing, at once.

use crate::error::{invalid, Result};
use crate::index::words;

/// The longest query (characters).
pub const MAX_CHARS: usize = 256;
/// The most words a query may have, phrases' and exclusions' included.
pub const MAX_TERMS: usize = 16;

/// A parsed query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// Every one must match (within its typo budget).
    pub words: Vec<Word>,
    /// Every one must match, word for word, in order.
    pub phrases: Vec<Vec<String>>,
    /// None may match.
    pub excluded: Vec<String>,
}

/// A free word.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub text: String,
    /// Typos allowed: [`typo_budget`].
    pub typos: u8,
    /// The last word of a query that does not end in a space: it may be the start of a longer word.
    pub prefix: bool,
}

impl Parsed {
    /// Whether there is nothing to look for (only stop words, punctuation or exclusions).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.phrases.is_empty()
    }
}

/// Typos allowed in a word as Meilisearch allows them: none below 5 letters, one from 5, two from 9.
pub fn typo_budget(word: &str) -> u8 {
    match word.chars().count() {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// Reads `raw`.
pub fn parse(raw: &str) -> Result<Parsed> {
    if raw.trim().is_empty() {
        return Err(invalid("query must not be empty"));
    }
    if raw.chars().count() > MAX_CHARS {
        return Err(invalid(format!(
            "query must be at most {MAX_CHARS} characters"
        )));
    }
    let typing = !raw.ends_with(char::is_whitespace);
    let (free, phrases, excluded) = if raw.matches('"').count().is_multiple_of(2) {
        split(raw)
    } else {
        // An unclosed quote: plain words.
        (raw.replace('"', " "), Vec::new(), Vec::new())
    };
    let free_words = words(&free);
    let terms = free_words.len() + phrases.iter().map(Vec::len).sum::<usize>() + excluded.len();
    if terms > MAX_TERMS {
        return Err(invalid(format!(
            "query must have at most {MAX_TERMS} words"
        )));
    }
    let last = free_words.len().saturating_sub(1);
    // The last free word is being typed only when it ends the query (not a phrase or an exclusion).
    let ends_free = typing
        && !raw.ends_with('"')
        && raw
            .split_whitespace()
            .last()
            .is_some_and(|token| !token.starts_with('-'));
    let words = free_words
        .iter()
        .enumerate()
        .filter(|(_, w)| !STOP_WORDS.contains(&w.as_str()))
        .map(|(n, w)| Word {
            typos: typo_budget(w),
            prefix: ends_free && n == last,
            text: w.clone(),
        })
        .collect();
    Ok(Parsed {
        words,
        phrases: phrases.into_iter().filter(|p| !p.is_empty()).collect(),
        excluded,
    })
}

/// Splits balanced-quote syntax into free text, phrases and exclusions.
fn split(raw: &str) -> (String, Vec<Vec<String>>, Vec<String>) {
    let mut free = String::new();
    let mut phrases = Vec::new();
    let mut excluded = Vec::new();
    for (n, part) in raw.split('"').enumerate() {
        if n % 2 == 1 {
            phrases.push(words(part));
            continue;
        }
        for token in part.split_whitespace() {
            match token.strip_prefix('-') {
                Some(rest) if !rest.is_empty() => excluded.extend(words(rest)),
                _ => {
                    free.push_str(token);
                    free.push(' ');
                }
            }
        }
    }
    (free, phrases, excluded)
}

/// English words too common to narrow a search (they still count inside phrases).
pub const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_typo_budget_grows_with_the_word() {
        assert_eq!(typo_budget("oil"), 0);
        assert_eq!(typo_budget("motor"), 1);
        assert_eq!(typo_budget("engnie"), 1);
        assert_eq!(typo_budget("maintenance"), 2);
    }

    #[test]
    fn words_phrases_and_exclusions() {
        let p = parse(r#"engine "oil change" -diesel mainten"#).expect("parses");
        assert_eq!(
            p.words
                .iter()
                .map(|w| (w.text.as_str(), w.prefix))
                .collect::<Vec<_>>(),
            vec![("engine", false), ("mainten", true)]
        );
        assert_eq!(
            p.phrases,
            vec![vec!["oil".to_string(), "change".to_string()]]
        );
        assert_eq!(p.excluded, vec!["diesel".to_string()]);
    }

    #[test]
    fn a_trailing_space_ends_the_last_word() {
        let p = parse("engine oil ").expect("parses");
        assert!(p.words.iter().all(|w| !w.prefix));
        let p = parse("engine oil").expect("parses");
        assert!(p.words[1].prefix);
        let p = parse(r#"oil "engine""#).expect("parses");
        assert!(!p.words[0].prefix);
    }

    #[test]
    fn an_unclosed_quote_is_plain_words() {
        let p = parse(r#"engine "oil"#).expect("parses");
        assert_eq!(p.words.len(), 2);
        assert!(p.phrases.is_empty());
    }

    #[test]
    fn stop_words_and_punctuation_leave_nothing() {
        assert!(parse("the of and").expect("parses").is_empty());
        assert!(parse("?!... ---").expect("parses").is_empty());
        assert!(parse("-oil").expect("parses").is_empty());
        assert!(parse("\"the\" of").expect("parses").phrases.len() == 1);
    }

    #[test]
    fn bad_queries_are_refused() {
        assert!(parse("   ").is_err());
        assert!(parse(&"a".repeat(MAX_CHARS + 1)).is_err());
        assert!(parse(&"word ".repeat(MAX_TERMS + 1)).is_err());
        assert!(parse(&"word ".repeat(MAX_TERMS)).is_ok());
    }
}
