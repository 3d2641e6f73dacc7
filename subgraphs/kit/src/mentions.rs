//! `@nickname` mentions in text, read the same way by the domains that write text (posts puts them in its
//! events) and by notifications (which reads chat messages' text itself).

use std::collections::BTreeSet;

/// At most this many distinct nicknames are taken from one text: a post naming a thousand people notifies
/// the first few, it does not become a mass mailing.
pub const MAX_MENTIONS: usize = 20;

/// The nicknames mentioned in `text`, lowercased, distinct, at most [`MAX_MENTIONS`]: `@` at the start or after
/// a character that cannot be part of a nickname (so `a@b.com` is no mention), then 3–30 letters, digits or
/// underscores (users' nickname rule), not followed by another such character.
pub fn nicknames(text: &str) -> Vec<String> {
    let mut found = BTreeSet::new();
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() && found.len() < MAX_MENTIONS {
        if bytes[i] == b'@' && (i == 0 || !word(bytes[i - 1])) {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && word(bytes[end]) {
                end += 1;
            }
            if (3..=30).contains(&(end - start)) {
                found.insert(text[start..end].to_ascii_lowercase());
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mentions_not_addresses() {
        assert_eq!(
            nicknames("hi @Alice and @bob_2, mail a@carol.com, @al, (@dave)!"),
            ["alice", "bob_2", "dave"]
        );
        assert_eq!(nicknames("@alice @ALICE"), ["alice"]);
        assert!(nicknames(&"@x".repeat(1000)).is_empty());
        let many: String = (0..100).map(|n| format!("@user{n:03} ")).collect();
        assert_eq!(nicknames(&many).len(), MAX_MENTIONS);
        assert_eq!(
            nicknames(&format!("@{}", "a".repeat(31))),
            Vec::<String>::new()
        );
    }
}
