//! Who watches the live front's signed-in streams (issue 23; [`super::live`]), and what an event's audience
//! question names, built once per change in the viewers rather than once per event.
//!
//! An event of a signed-in post stream or of a chat too large to list its members is judged by its owner for
//! every viewer ([`super::audience`]). Building the question's viewer objects anew for each event (10,000 of
//! them for one large chat) was about a seventh of the router's CPU in `benches/chat.sh`: a [`Roster`] keeps
//! the lists as JSON text, made at the first event after a viewer joins or leaves and shared by the events
//! that follow. The owner answers in the order it was asked, so a roster's viewers are kept in tag order,
//! the verdicts come out sorted by tag ([`Verdicts`]), and each viewer finds its own by binary search.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::audience::Verdict;

/// A signed-in viewer, as the token the join check accepted names them.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub user: String,
    pub session: String,
    pub staff: bool,
    /// Unix seconds.
    pub expires_at: i64,
}

impl Member {
    pub fn of(authorization: &str) -> Option<Member> {
        let claims = crate::rate_limit::unverified_claims(authorization)?;
        let roles = claims["roles"].as_array()?;
        Some(Member {
            user: claims["sub"].as_str()?.to_string(),
            session: claims["sid"].as_str()?.to_string(),
            staff: roles
                .iter()
                .any(|role| matches!(role.as_str(), Some("moderator" | "admin"))),
            expires_at: claims["exp"].as_i64()?,
        })
    }
}

/// One stream's viewers by tag, and its audience lists while no one joins or leaves.
#[derive(Debug, Default)]
pub(super) struct Roster {
    viewers: BTreeMap<u64, Member>,
    named: Option<Arc<[Named]>>,
}

/// Up to one question's worth of viewers: their tags, and the JSON array an audience question names them
/// by (`{"user","session","staff"}` each, in the same order).
#[derive(Debug)]
pub(super) struct Named {
    pub tags: Vec<u64>,
    pub viewers: String,
}

impl Roster {
    pub fn insert(&mut self, tag: u64, member: Member) {
        self.viewers.insert(tag, member);
        self.named = None;
    }

    /// Takes the viewer out; whether the roster is empty now.
    pub fn remove(&mut self, tag: u64) -> bool {
        if self.viewers.remove(&tag).is_some() {
            self.named = None;
        }
        self.viewers.is_empty()
    }

    /// The viewers in tag order.
    pub fn members(&self) -> impl Iterator<Item = (u64, &Member)> {
        self.viewers.iter().map(|(tag, member)| (*tag, member))
    }

    /// The viewers as audience lists of at most `chunk` each, in tag order (made now if a viewer came or
    /// went since the last event).
    pub fn named(&mut self, chunk: usize) -> Arc<[Named]> {
        #[derive(Serialize)]
        struct Viewer<'a> {
            user: &'a str,
            session: &'a str,
            staff: bool,
        }
        let viewers = &self.viewers;
        self.named
            .get_or_insert_with(|| {
                let members: Vec<(&u64, &Member)> = viewers.iter().collect();
                members
                    .chunks(chunk.max(1))
                    .map(|chunk| {
                        let listed: Vec<Viewer<'_>> = chunk
                            .iter()
                            .map(|(_, m)| Viewer {
                                user: &m.user,
                                session: &m.session,
                                staff: m.staff,
                            })
                            .collect();
                        Named {
                            tags: chunk.iter().map(|(tag, _)| **tag).collect(),
                            // Strings and booleans only: serializing cannot fail.
                            viewers: serde_json::to_string(&listed).unwrap_or_default(),
                        }
                    })
                    .collect()
            })
            .clone()
    }
}

/// One event's verdicts by viewer tag.
#[derive(Debug, Default)]
pub(super) struct Verdicts(Vec<(u64, Verdict)>);

impl Verdicts {
    /// From `(tag, verdict)` pairs; already in tag order when they come from a roster, so sorting them
    /// is one pass.
    pub fn new(mut pairs: Vec<(u64, Verdict)>) -> Self {
        pairs.sort_by_key(|(tag, _)| *tag);
        Verdicts(pairs)
    }

    pub fn get(&self, tag: u64) -> Option<Verdict> {
        self.0
            .binary_search_by_key(&tag, |(t, _)| *t)
            .ok()
            .map(|at| self.0[at].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(n: u64) -> Member {
        Member {
            user: format!("u{n}"),
            session: format!("s{n}"),
            staff: n == 0,
            expires_at: 0,
        }
    }

    /// The lists are made once per change, in tag order, chunked; a change makes them anew.
    #[test]
    fn lists_are_kept_until_a_viewer_comes_or_goes() {
        let mut roster = Roster::default();
        for tag in [5, 1, 3] {
            roster.insert(tag, member(tag));
        }
        let named = roster.named(2);
        assert_eq!(named.len(), 2);
        assert_eq!(
            (&named[0].tags[..], &named[1].tags[..]),
            (&[1, 3][..], &[5][..])
        );
        let listed: serde_json::Value = serde_json::from_str(&named[0].viewers).expect("json");
        assert_eq!(
            listed,
            serde_json::json!([
                { "user": "u1", "session": "s1", "staff": false },
                { "user": "u3", "session": "s3", "staff": false },
            ])
        );
        assert!(
            Arc::ptr_eq(&named, &roster.named(2)),
            "kept while no one moves"
        );
        assert!(!roster.remove(3));
        let after = roster.named(2);
        assert!(!Arc::ptr_eq(&named, &after));
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].tags, vec![1, 5]);
        // Leaving twice changes nothing; the last one out empties the roster.
        assert!(!roster.remove(3));
        assert!(Arc::ptr_eq(&after, &roster.named(2)));
        assert!(!roster.remove(1));
        assert!(roster.remove(5));
    }

    #[test]
    fn each_viewer_finds_its_verdict() {
        let verdicts = Verdicts::new(vec![
            (9, Verdict::End),
            (2, Verdict::See),
            (4, Verdict::Skip),
        ]);
        assert_eq!(verdicts.get(2), Some(Verdict::See));
        assert_eq!(verdicts.get(4), Some(Verdict::Skip));
        assert_eq!(verdicts.get(9), Some(Verdict::End));
        assert_eq!(verdicts.get(3), None);
        assert_eq!(Verdicts::default().get(1), None);
    }
}
