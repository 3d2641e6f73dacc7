//! Input rules for topics, posts, comments, tags and votes.

use crate::error::{invalid, Result};

pub const MAX_TITLE: usize = 300;
pub const MAX_BODY: usize = 40_000;
pub const MAX_COMMENT: usize = 10_000;
pub const MAX_TAGS: usize = 5;
/// A tag as sent (before trimming) longer than this is refused before it is normalised.
const MAX_RAW_TAG_BYTES: usize = 256;

fn text(field: &str, raw: &str, min: usize, max: usize) -> Result<String> {
    let value = raw.trim();
    let len = value.chars().count();
    if len < min || len > max {
        return Err(invalid(format!("{field}: {min} to {max} characters")));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(invalid(format!("{field}: no control characters")));
    }
    Ok(value.to_string())
}

pub fn title(raw: &str) -> Result<String> {
    text("title", raw, 1, MAX_TITLE)
}

pub fn body(raw: &str) -> Result<String> {
    text("body", raw, 0, MAX_BODY)
}

pub fn comment(raw: &str) -> Result<String> {
    text("body", raw, 1, MAX_COMMENT)
}

/// A topic's name: 3–40 lower-case letters, digits, `-` or `_` (its address, so it is normalised).
pub fn topic_name(raw: &str) -> Result<String> {
    let name = raw.trim().to_lowercase();
    let ok = (3..=40).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(invalid("name: 3 to 40 letters, digits, '-' or '_'"))
    }
}

pub fn topic_title(raw: &str) -> Result<String> {
    text("title", raw, 1, 100)
}

/// Tags: trimmed, lower-cased, `#` dropped, spaces to `-`; 1–30 letters, digits or `-`; at most 5, no repeats.
/// The count is checked before any tag is looked at, so the work is bounded whatever the client sends.
pub fn tags(raw: &[String]) -> Result<Vec<String>> {
    if raw.len() > MAX_TAGS {
        return Err(invalid(format!("tags: at most {MAX_TAGS}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for tag in raw {
        if tag.len() > MAX_RAW_TAG_BYTES {
            return Err(invalid("tags: 1 to 30 letters, digits or '-' each"));
        }
        let tag = tag
            .trim()
            .trim_start_matches('#')
            .to_lowercase()
            .replace(char::is_whitespace, "-");
        let ok = (1..=30).contains(&tag.chars().count())
            && tag.chars().all(|c| c.is_alphanumeric() || c == '-');
        if !ok {
            return Err(invalid(format!(
                "tags: {tag:?} is not a tag (1 to 30 letters, digits or '-')"
            )));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

pub fn vote(value: i32) -> Result<i16> {
    match value {
        -1 => Ok(-1),
        0 => Ok(0),
        1 => Ok(1),
        _ => Err(invalid("value: -1, 0 or 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_normalised() {
        let tags = tags(&["#Rust".into(), " rust ".into(), "Web Dev".into()]).expect("ok");
        assert_eq!(tags, vec!["rust", "web-dev"]);
        assert!(super::tags(&["a/b".into()]).is_err());
        assert!(super::tags(&(0..6).map(|i| format!("t{i}")).collect::<Vec<_>>()).is_err());
    }

    #[test]
    fn titles_topics_votes() {
        assert!(title("   ").is_err());
        assert!(title(&"x".repeat(301)).is_err());
        assert_eq!(topic_name(" Car-Models ").expect("ok"), "car-models");
        assert!(topic_name("no spaces").is_err());
        assert!(vote(2).is_err());
        assert_eq!(vote(-1).expect("ok"), -1);
    }
}
