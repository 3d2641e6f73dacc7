//! Small chats' messages judged without asking chat (docs/live-sharing.md): the front's upstream of a chat
//! asks for `liveAudience` ([`crate::shareable::AUDIENCE`]), the chat's members when the message came, in
//! the order of the chat's events (chat lists chats of up to 100). A signed-in viewer then sees the message
//! if they are among them and their session is not revoked; one who is not among them has left or been
//! removed (they were a member when they joined) and is ended, as their own subscription would be.
//!
//! - [`take_audience`] takes the field out of the event's payload, so viewers get exactly what they asked
//!   for (the engine writes it last, after what the viewer selected).
//! - [`Revocations`] are users' list of sessions signed out, read at most a second before an event is
//!   judged (the subgraphs poll the same list every second); when users does not answer, the front asks
//!   chat about the message instead, as for a large chat.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_protocol::headers::ROUTER_KEY;
use serde::Deserialize;

use crate::shareable::AUDIENCE;

/// How old the list of revoked sessions may be when an event is judged.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// How long users has to answer.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// `payload` (a `messageAdded` event as the engine wrote it) without the [`AUDIENCE`] field, and the
/// members that field names (`None`: not listed — a large chat, or a payload not as expected, which is
/// then left whole and judged by asking chat).
pub fn take_audience(mut payload: Vec<u8>) -> (Vec<u8>, Option<Vec<String>>) {
    let key = format!("\"{AUDIENCE}\":");
    let Some(found) = find_last(&payload, key.as_bytes()) else {
        return (payload, None);
    };
    // A key is followed by `:`, which cannot follow the closing quote of a string value, so this is the
    // field itself; its value is `null` or a list of ids (no nested brackets).
    let value_at = found + key.len();
    let rest = &payload[value_at..];
    let value_len = if rest.starts_with(b"null") {
        4
    } else if rest.starts_with(b"[") {
        match rest.iter().position(|&b| b == b']') {
            Some(end) => end + 1,
            None => return (payload, None),
        }
    } else {
        return (payload, None);
    };
    let members: Option<Vec<String>> = serde_json::from_slice(&rest[..value_len]).ok().flatten();
    // Take the field and the comma that joined it to its neighbour.
    let (start, end) = if found > 0 && payload[found - 1] == b',' {
        (found - 1, value_at + value_len)
    } else if payload.get(value_at + value_len) == Some(&b',') {
        (found, value_at + value_len + 1)
    } else {
        (found, value_at + value_len)
    };
    payload.drain(start..end);
    (payload, members)
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}

/// The sessions users lists as revoked, read again when an event needs them and the last read is over
/// [`FRESH_FOR`] old. One read at a time: events judged meanwhile wait for it.
pub struct Revocations {
    http: reqwest::Client,
    url: String,
    router_key: String,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Revoked session → when its last access token expires (Unix seconds).
    sessions: Arc<HashMap<String, i64>>,
    /// Users' clock at the last read less a second of overlap (Unix ms): the next `since`.
    since: i64,
    read_at: Option<Instant>,
    /// A read failed at this time: none is tried again within [`FRESH_FOR`].
    failed_at: Option<Instant>,
}

#[derive(Deserialize)]
struct Answer {
    sessions: Vec<Session>,
    now: i64,
}

#[derive(Deserialize)]
struct Session {
    sid: String,
    until: i64,
}

impl Revocations {
    pub fn new(http: reqwest::Client, users_url: &str, router_key: &str) -> Self {
        Self {
            http,
            url: format!(
                "{}{}",
                users_url.trim_end_matches('/'),
                parley_protocol::revocation::PATH
            ),
            router_key: router_key.to_string(),
            state: tokio::sync::Mutex::default(),
        }
    }

    /// The sessions revoked, as users listed them at most [`FRESH_FOR`] ago; `None` when it cannot say.
    pub async fn current(&self) -> Option<Arc<HashMap<String, i64>>> {
        let mut state = self.state.lock().await;
        let fresh = |at: Option<Instant>| at.is_some_and(|at| at.elapsed() < FRESH_FOR);
        if fresh(state.read_at) {
            return Some(state.sessions.clone());
        }
        if fresh(state.failed_at) {
            return None;
        }
        let answer = async {
            self.http
                .get(&self.url)
                .query(&[("since", state.since)])
                .header(ROUTER_KEY, &self.router_key)
                .timeout(READ_TIMEOUT)
                .send()
                .await?
                .error_for_status()?
                .json::<Answer>()
                .await
        }
        .await;
        match answer {
            Ok(answer) => {
                let now = answer.now / 1_000;
                let sessions = Arc::make_mut(&mut state.sessions);
                sessions.retain(|_, until| *until > now);
                for session in answer.sessions.into_iter().filter(|s| s.until > now) {
                    sessions.insert(session.sid, session.until);
                }
                state.since = answer.now - 1_000;
                state.read_at = Some(Instant::now());
                state.failed_at = None;
                Some(state.sessions.clone())
            }
            Err(err) => {
                tracing::warn!(error = %err, "live front: revoked sessions unavailable; asking chat");
                state.failed_at = Some(Instant::now());
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(payload: &str) -> (String, Option<Vec<String>>) {
        let (stripped, members) = take_audience(payload.as_bytes().to_vec());
        (String::from_utf8(stripped).expect("utf-8"), members)
    }

    #[test]
    fn the_audience_is_taken_out_of_the_payload() {
        let (payload, members) = take(
            r#"{"data":{"messageAdded":{"text":"hi","author":{"nickname":"a"},"liveAudience":["u1","u2"]}}}"#,
        );
        assert_eq!(
            payload,
            r#"{"data":{"messageAdded":{"text":"hi","author":{"nickname":"a"}}}}"#
        );
        assert_eq!(members, Some(vec!["u1".to_string(), "u2".to_string()]));

        // A large chat: taken out, not listed.
        let (payload, members) = take(r#"{"data":{"messageAdded":{"seq":1,"liveAudience":null}}}"#);
        assert_eq!(payload, r#"{"data":{"messageAdded":{"seq":1}}}"#);
        assert_eq!(members, None);

        // Written first, whatever the engine's order.
        let (payload, members) =
            take(r#"{"data":{"messageAdded":{"liveAudience":["u1"],"seq":1}}}"#);
        assert_eq!(payload, r#"{"data":{"messageAdded":{"seq":1}}}"#);
        assert_eq!(members, Some(vec!["u1".to_string()]));
    }

    #[test]
    fn text_that_looks_like_the_field_is_left_alone() {
        let text = r#"{"data":{"messageAdded":{"text":"\"liveAudience\":[\"me\"]"}}}"#;
        let (payload, members) = take(text);
        assert_eq!(payload, text, "a string's quotes are escaped");
        assert_eq!(members, None);

        // The upstream's own error: nothing to take.
        let error = r#"{"errors":[{"message":"gone","path":["messageAdded","liveAudience"]}]}"#;
        assert_eq!(take(error), (error.to_string(), None));
    }
}
