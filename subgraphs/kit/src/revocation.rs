//! Sessions signed out before their access tokens expire. An access token is checked by signature alone, so
//! a logout, a password change or a reset would leave it working for up to its 15 minutes; instead the users
//! subgraph lists the sessions revoked recently (`GET /internal/revoked-sessions`, router key required) and
//! every subgraph polls that list every second ([`poll`]) into its [`Revoked`] set. Its token verifier then
//! refuses those sessions' tokens and forwarded identities (`UNAUTHENTICATED`), and its WebSocket operations
//! of a revoked session end at once ([`Revoked::watch`]). A session is remembered until its last token
//! expires.
//!
//! The wire format is [`RevokedSessions`]; `since` is the `now` of the previous answer less a second of
//! overlap, so a revocation committed as the previous answer was read is not missed (repeats are harmless).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

/// The path the users subgraph serves the list at.
pub const PATH: &str = parley_protocol::revocation::PATH;

/// How often the list is read.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// One revoked session and when its last access token expires (Unix seconds).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RevokedSession {
    pub sid: Uuid,
    pub until: i64,
}

/// The answer of [`PATH`]`?since=<ms>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RevokedSessions {
    pub sessions: Vec<RevokedSession>,
    /// The server's clock (Unix milliseconds) when it read the list: the next `since`.
    pub now: i64,
}

/// The sessions this process knows to be revoked.
pub struct Revoked {
    sessions: RwLock<HashMap<Uuid, i64>>,
    announce: broadcast::Sender<Uuid>,
}

impl Default for Revoked {
    fn default() -> Self {
        Self {
            sessions: RwLock::default(),
            announce: broadcast::channel(1024).0,
        }
    }
}

impl Revoked {
    /// Whether `sid` was revoked.
    pub fn contains(&self, sid: Uuid) -> bool {
        self.sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&sid)
    }

    /// Records revocations (announcing the new ones) and forgets sessions whose tokens have all expired.
    pub fn record(&self, revoked: &[RevokedSession], now: i64) {
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, until| *until > now);
        for session in revoked.iter().filter(|s| s.until > now) {
            if sessions.insert(session.sid, session.until).is_none() {
                let _ = self.announce.send(session.sid);
            }
        }
    }

    /// Sessions revoked from now on, as they are learnt (for streams to end theirs).
    pub fn watch(&self) -> broadcast::Receiver<Uuid> {
        self.announce.subscribe()
    }
}

/// Reads `url` (the users subgraph's [`PATH`]) every second into `revoked`, with the router key. Runs until
/// aborted; a failed read is retried at the next tick (and logged once per failure streak).
pub async fn poll(revoked: Arc<Revoked>, url: String, router_key: Option<String>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    let mut since: i64 = 0;
    let mut failing = false;
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut request = http.get(&url).query(&[("since", since)]);
        if let Some(key) = &router_key {
            request = request.header(parley_protocol::headers::ROUTER_KEY, key);
        }
        let answer = async {
            request
                .send()
                .await?
                .error_for_status()?
                .json::<RevokedSessions>()
                .await
        }
        .await;
        match answer {
            Ok(answer) => {
                failing = false;
                revoked.record(&answer.sessions, chrono::Utc::now().timestamp());
                since = answer.now - 1_000;
            }
            Err(err) => {
                if !failing {
                    tracing::warn!(url = %url, error = %err, "revoked sessions unavailable; retrying");
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_are_announced_once_and_forgotten_after_their_tokens() {
        let revoked = Revoked::default();
        let mut watch = revoked.watch();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let list = [
            RevokedSession { sid: a, until: 100 },
            RevokedSession { sid: b, until: 50 },
        ];
        revoked.record(&list, 60);
        assert!(revoked.contains(a));
        assert!(!revoked.contains(b), "its tokens had expired");
        revoked.record(&list, 61);
        assert_eq!(watch.try_recv().ok(), Some(a));
        assert!(watch.try_recv().is_err(), "announced once");
        revoked.record(&[], 100);
        assert!(!revoked.contains(a));
    }
}
