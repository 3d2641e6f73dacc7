//! graphql-transport-ws for a subgraph's subscriptions, built for many operations on one connection.
//!
//! The router keeps one WebSocket per subgraph for every subscriber (its connection pool keys connections by
//! everything but the caller), so a chat of 10,000 members is 10,000 operations on a single socket. That
//! shapes this server:
//! - **Who is calling is per operation on a router connection.** The router proves itself in
//!   `connection_init` with the shared router key (`x-parley-router-key`, compared in constant time); each
//!   `subscribe` then carries the claims the router verified at the edge in `extensions.parleyIdentity`
//!   (none: anonymous). A connection without the key is a single caller's: its token (if any) is verified once
//!   at `connection_init` and holds for all its operations. A wrong key, or a bad token, closes with 4403.
//! - **Each operation runs in a task of its own** and hands finished frames to the connection, so the two
//!   cores share the work of a fan-out and a connection only wakes for operations that have something to send
//!   (async-graphql's own handler polls every operation of a connection on each wake-up).
//! - **Frames are written in batches**: whatever is ready goes out in one write, then one flush.
//! - **Each caller's share is capped**: at most [`MAX_SUBSCRIPTIONS_PER_USER`] open operations per user over
//!   every connection, [`MAX_ANONYMOUS_SUBSCRIPTIONS`] anonymous ones together, and
//!   [`MAX_LIVE_FRONT_SUBSCRIPTIONS`] for the router's live front (`RATE_LIMITED` beyond).
//! - **A revoked session's operations end** with `UNAUTHENTICATED` as soon as the verifier learns of the
//!   revocation (`crate::revocation`), and a new one of that session is refused.
//!
//! Close codes are the protocol's: 4400 bad message, 4401 subscribe before `connection_ack`, 4403 forbidden,
//! 4408 no `connection_init` in time, 4409 duplicate operation id, 4429 a second `connection_init`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Executor, Request};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio::task::AbortHandle;

use crate::auth::{bearer, Identity, JwtVerifier};

/// The `subscribe` extension carrying the caller's claims on a router connection.
pub use parley_protocol::extensions::IDENTITY as IDENTITY_EXTENSION;
/// The `connection_init` field (a header name, as the router sends headers) carrying the router key.
pub use parley_protocol::headers::ROUTER_KEY as ROUTER_KEY_FIELD;

/// How long a client may take to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames waiting for the socket, per connection; a full queue makes operations wait (backpressure).
const OUTBOX: usize = 4096;
/// Frames written before one flush.
const BATCH: usize = 512;
/// Bytes a close frame's reason may hold (the frame's payload is at most 125 bytes, 2 of them the code).
const MAX_CLOSE_REASON: usize = 123;
/// Times the writer yields to let more frames come before it writes.
const GATHER_YIELDS: usize = 4;

/// Subscriptions one user may hold open in one subgraph process (over every connection).
pub const MAX_SUBSCRIPTIONS_PER_USER: usize = 100;
/// Anonymous subscriptions one subgraph process holds at most, all callers together (the router caps them
/// per address by connection); signed-in users keep their own share however many anonymous ones come.
pub const MAX_ANONYMOUS_SUBSCRIPTIONS: usize = 10_000;
/// Subscriptions the router's live front ([`crate::audience::LIVE_FRONT`]) holds open in one subgraph process:
/// one per post or chat its signed-in viewers share, so as many as one router's long-lived clients (20,000),
/// not a user's share — a 101st shared chat would otherwise be refused. Its viewers are capped at the router.
pub const MAX_LIVE_FRONT_SUBSCRIPTIONS: usize = 20_000;

/// What a connection's operations need.
pub struct WsSettings {
    /// The subgraph's name (the `subgraph` label of `parley_ws_connections`).
    pub subgraph: String,
    pub verifier: Arc<JwtVerifier>,
    /// The secret the router presents; `None`: no connection is treated as the router's.
    pub router_key: Option<Arc<str>>,
    /// Open subscriptions per caller, over every connection.
    pub open: OpenSubscriptions,
}

/// Open subscriptions per user (`None`: the anonymous ones together), capped.
#[derive(Clone, Default)]
pub struct OpenSubscriptions {
    counts: Arc<std::sync::Mutex<HashMap<Option<uuid::Uuid>, usize>>>,
}

/// One open subscription, counted until dropped.
pub struct OpenSlot {
    counts: Arc<std::sync::Mutex<HashMap<Option<uuid::Uuid>, usize>>>,
    user: Option<uuid::Uuid>,
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

impl OpenSubscriptions {
    /// A slot for `user`'s next subscription, unless they hold their cap.
    pub fn take(&self, user: Option<uuid::Uuid>) -> Option<OpenSlot> {
        let cap = match user {
            None => MAX_ANONYMOUS_SUBSCRIPTIONS,
            Some(id) if id == crate::audience::LIVE_FRONT => MAX_LIVE_FRONT_SUBSCRIPTIONS,
            Some(_) => MAX_SUBSCRIPTIONS_PER_USER,
        };
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(user).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(OpenSlot {
            counts: self.counts.clone(),
            user,
        })
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<serde_json::Value>,
    },
    Ping {},
    Pong {},
    Subscribe {
        id: String,
        payload: Box<Request>,
    },
    Complete {
        id: String,
    },
}

/// Who the operations of a connection run as, once `connection_init` checked out.
enum Caller {
    /// The router: each operation names its caller.
    Router,
    /// One client for every operation (anonymous when `None`).
    Client(Option<Identity>),
}

impl Caller {
    fn label(&self) -> &'static str {
        match self {
            Caller::Router => "router",
            Caller::Client(_) => "client",
        }
    }
}

/// Counts an initialised connection in `parley_ws_connections{subgraph, caller}` while it is open.
struct Counted {
    subgraph: String,
    caller: &'static str,
}

impl Counted {
    fn new(subgraph: &str, caller: &'static str) -> Self {
        metrics::gauge!("parley_ws_connections", "subgraph" => subgraph.to_string(), "caller" => caller)
            .increment(1.0);
        Counted {
            subgraph: subgraph.to_string(),
            caller,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        metrics::gauge!("parley_ws_connections", "subgraph" => self.subgraph.clone(), "caller" => self.caller)
            .decrement(1.0);
    }
}

/// A frame an operation's task hands to its connection.
enum Outgoing {
    Next {
        id: Arc<str>,
        run: u64,
        frame: String,
    },
    Complete {
        id: Arc<str>,
        run: u64,
    },
    /// The operation's session was revoked: an `error` (which ends it).
    Refused {
        id: Arc<str>,
        run: u64,
    },
}

/// Why a connection ends with a close frame.
struct Close(u16, String);

/// Serves one upgraded socket until the client leaves or breaks the protocol.
pub async fn serve<E: Executor>(socket: WebSocket, executor: E, settings: Arc<WsSettings>) {
    let (mut sink, mut incoming) = socket.split();
    let (outbox, mut ready) = mpsc::channel::<Outgoing>(OUTBOX);
    let mut connection = Connection {
        executor,
        settings,
        outbox,
        caller: None,
        counted: None,
        operations: HashMap::new(),
        runs: 0,
    };
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(init_deadline);
    let close = loop {
        tokio::select! {
            Some(first) = ready.recv() => {
                let batch = gather(first, &mut ready).await;
                if write_batch(&mut sink, &mut connection, batch).await.is_err() {
                    break None;
                }
            }
            message = incoming.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => break Some(Close(4400, "binary frames are not part of the protocol".into())),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
                };
                match connection.on_message(text.as_str()).await {
                    Ok(Some(reply)) => {
                        if sink.send(Message::Text(reply.into())).await.is_err() {
                            break None;
                        }
                    }
                    Ok(None) => {}
                    Err(close) => break Some(close),
                }
            }
            () = &mut init_deadline, if connection.caller.is_none() => {
                break Some(Close(4408, "Connection initialisation timeout".into()));
            }
        }
    };
    for (_, (_, task)) in connection.operations.drain() {
        task.abort();
    }
    if let Some(Close(code, mut reason)) = close {
        // A close frame's reason holds at most 123 bytes; a longer one would not be sent at all.
        while reason.len() > MAX_CLOSE_REASON {
            reason.pop();
        }
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
}

/// `first` and whatever else is ready, up to [`BATCH`]. In a fan-out the operations' tasks finish their frames
/// one after another: yielding a few times before writing lets them catch up, so the socket gets a few large
/// writes rather than one small write (and one wake-up of the reader) per handful of frames.
async fn gather(first: Outgoing, ready: &mut mpsc::Receiver<Outgoing>) -> Vec<Outgoing> {
    let mut batch = vec![first];
    for _ in 0..GATHER_YIELDS {
        let before = batch.len();
        while batch.len() < BATCH {
            match ready.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if batch.len() >= BATCH || (batch.len() == before && before > 1) {
            break;
        }
        tokio::task::yield_now().await;
    }
    batch
}

/// Writes the frames of operations still running (one `complete` ends an operation), then flushes once.
async fn write_batch<E: Executor>(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    connection: &mut Connection<E>,
    batch: Vec<Outgoing>,
) -> Result<(), axum::Error> {
    for outgoing in batch {
        let frame = match outgoing {
            Outgoing::Next { id, run, frame } => {
                // A client's `complete` may overtake frames already queued: those are dropped.
                if !connection.is_current(&id, run) {
                    continue;
                }
                frame
            }
            Outgoing::Complete { id, run } => {
                if !connection.is_current(&id, run) {
                    continue;
                }
                connection.operations.remove(&*id);
                serde_json::json!({ "type": "complete", "id": &*id }).to_string()
            }
            Outgoing::Refused { id, run } => {
                if !connection.is_current(&id, run) {
                    continue;
                }
                connection.operations.remove(&*id);
                refused(&id)
            }
        };
        sink.feed(Message::Text(frame.into())).await?;
    }
    sink.flush().await
}

struct Connection<E> {
    executor: E,
    settings: Arc<WsSettings>,
    outbox: mpsc::Sender<Outgoing>,
    caller: Option<Caller>,
    counted: Option<Counted>,
    /// Running operations by id: which run of that id (ids may be reused after `complete`) and its task.
    operations: HashMap<String, (u64, AbortHandle)>,
    runs: u64,
}

impl<E: Executor> Connection<E> {
    fn is_current(&self, id: &str, run: u64) -> bool {
        self.operations.get(id).is_some_and(|(r, _)| *r == run)
    }

    /// Handles one client message; `Ok(Some(text))` is an immediate reply.
    async fn on_message(&mut self, text: &str) -> Result<Option<String>, Close> {
        let message: ClientMessage =
            serde_json::from_str(text).map_err(|e| Close(4400, format!("invalid message: {e}")))?;
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.caller.is_some() {
                    return Err(Close(4429, "Too many initialisation requests".into()));
                }
                let caller = self.authenticate(payload.as_ref()).await?;
                self.counted = Some(Counted::new(&self.settings.subgraph, caller.label()));
                self.caller = Some(caller);
                Ok(Some(r#"{"type":"connection_ack"}"#.to_string()))
            }
            ClientMessage::Ping {} => Ok(Some(r#"{"type":"pong"}"#.to_string())),
            ClientMessage::Pong {} => Ok(None),
            ClientMessage::Subscribe { id, payload } => {
                let Some(caller) = &self.caller else {
                    return Err(Close(4401, "Unauthorized".into()));
                };
                if self.operations.contains_key(&id) {
                    return Err(Close(4409, format!("Subscriber for {id} already exists")));
                }
                let identity = match caller {
                    Caller::Client(identity) => identity.clone(),
                    Caller::Router => match forwarded_identity(&payload) {
                        Ok(identity) => identity,
                        Err(()) => return Ok(Some(refused(&id))),
                    },
                };
                // A session signed out since (a client's own connection outlives its token's check).
                let identity = match identity
                    .map(|i| self.settings.verifier.admit(i))
                    .transpose()
                {
                    Ok(identity) => identity,
                    Err(_) => return Ok(Some(refused(&id))),
                };
                let Some(slot) = self
                    .settings
                    .open
                    .take(identity.as_ref().map(|i| i.user_id))
                else {
                    return Ok(Some(too_many(&id)));
                };
                self.start(id, *payload, identity, slot);
                Ok(None)
            }
            ClientMessage::Complete { id } => {
                if let Some((_, task)) = self.operations.remove(&id) {
                    task.abort();
                }
                Ok(None)
            }
        }
    }

    async fn authenticate(&self, payload: Option<&serde_json::Value>) -> Result<Caller, Close> {
        let forbidden = || Close(4403, "Forbidden".into());
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| payload?.get(*name)?.as_str().map(str::to_string))
        };
        if let Some(presented) = field(&[ROUTER_KEY_FIELD]) {
            let matches = self
                .settings
                .router_key
                .as_deref()
                .is_some_and(|key| same_secret(presented.as_bytes(), key.as_bytes()));
            if !matches {
                // Every subscription through that router fails until this is fixed: say so where operators look.
                tracing::warn!(
                    subgraph = %self.settings.subgraph,
                    configured = self.settings.router_key.is_some(),
                    "refused a connection presenting a router key that does not match PARLEY_ROUTER_KEY"
                );
                return Err(forbidden());
            }
            return Ok(Caller::Router);
        }
        let token = field(&["Authorization", "authorization"])
            .and_then(|header| bearer(&header).map(str::to_string))
            .or_else(|| field(&["token"]));
        match token {
            Some(token) => match self.settings.verifier.verify(&token).await {
                Ok(identity) => Ok(Caller::Client(Some(identity))),
                Err(_) => Err(forbidden()),
            },
            None => Ok(Caller::Client(None)),
        }
    }

    /// Runs one operation in its own task; its frames go through the connection's outbox.
    fn start(
        &mut self,
        id: String,
        mut request: Request,
        identity: Option<Identity>,
        slot: OpenSlot,
    ) {
        request.extensions.remove(IDENTITY_EXTENSION);
        let session = identity.as_ref().map(|i| i.session_id);
        if let Some(identity) = identity {
            request = request.data(identity);
        }
        self.runs += 1;
        let run = self.runs;
        let key: Arc<str> = Arc::from(id.as_str());
        let executor = self.executor.clone();
        let outbox = self.outbox.clone();
        let mut revocations = self.settings.verifier.revoked().watch();
        let task = tokio::spawn(async move {
            // Counted while the operation runs (dropped with the task, however it ends).
            let _slot = slot;
            let mut responses = executor.execute_stream(request, None);
            loop {
                let response = tokio::select! {
                    response = responses.next() => response,
                    // The caller's session was signed out: the operation ends with UNAUTHENTICATED.
                    revoked = revocations.recv(), if session.is_some() => {
                        match revoked {
                            Ok(sid) if Some(sid) != session => continue,
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            _ => {
                                let _ = outbox.send(Outgoing::Refused { id: key.clone(), run }).await;
                                return;
                            }
                        }
                    }
                };
                let Some(response) = response else { break };
                let frame = next_frame(&key, &response);
                let next = Outgoing::Next {
                    id: key.clone(),
                    run,
                    frame,
                };
                if outbox.send(next).await.is_err() {
                    return;
                }
            }
            let _ = outbox.send(Outgoing::Complete { id: key, run }).await;
        });
        self.operations.insert(id, (run, task.abort_handle()));
    }
}

/// A `next` message, serialized straight from the response (no intermediate JSON value).
fn next_frame(id: &str, response: &async_graphql::Response) -> String {
    #[derive(serde::Serialize)]
    struct Next<'a> {
        r#type: &'static str,
        id: &'a str,
        payload: &'a async_graphql::Response,
    }
    serde_json::to_string(&Next {
        r#type: "next",
        id,
        payload: response,
    })
    .unwrap_or_else(|_| {
        // A response always serializes; should it not, the client still learns the operation failed.
        serde_json::json!({ "type": "error", "id": id, "payload": [{ "message": "internal error" }] })
            .to_string()
    })
}

/// An `error` message for an operation whose forwarded identity does not parse (nothing runs): the same
/// `UNAUTHENTICATED` error a bad token gets over HTTP.
fn refused(id: &str) -> String {
    let error = crate::auth::AuthError::InvalidToken
        .to_graphql()
        .into_server_error(async_graphql::Pos::default());
    serde_json::json!({ "type": "error", "id": id, "payload": [error] }).to_string()
}

/// The `error` answer to a subscription over its caller's cap.
fn too_many(id: &str) -> String {
    let error = crate::error::coded(
        crate::ErrorCode::RateLimited,
        format!("too many open subscriptions (at most {MAX_SUBSCRIPTIONS_PER_USER} per user)"),
    )
    .into_server_error(async_graphql::Pos::default());
    serde_json::json!({ "type": "error", "id": id, "payload": [error] }).to_string()
}

/// The caller the router names in a `subscribe` (anonymous without the extension).
fn forwarded_identity(request: &Request) -> Result<Option<Identity>, ()> {
    let Some(claims) = request.extensions.get(IDENTITY_EXTENSION) else {
        return Ok(None);
    };
    let claims = claims.clone().into_json().map_err(|_| ())?;
    Identity::from_forwarded_claims(&claims, chrono::Utc::now().timestamp())
        .map(Some)
        .ok_or(())
}

/// A fresh random router key (32 bytes, hex) for a platform started in one go (`parley up`, tests).
pub fn new_router_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal secrets, compared without an early exit (no timing hint of how much of a guess was right).
/// Compares secrets in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user holds at most their share; the live front one per stream it shares, far more.
    #[test]
    fn the_live_front_is_not_held_to_a_users_share() {
        let open = OpenSubscriptions::default();
        let user = Some(uuid::Uuid::now_v7());
        let held: Vec<OpenSlot> = (0..MAX_SUBSCRIPTIONS_PER_USER)
            .map(|_| open.take(user).expect("within the share"))
            .collect();
        assert!(open.take(user).is_none(), "one over the share");
        let front: Vec<OpenSlot> = (0..MAX_SUBSCRIPTIONS_PER_USER * 3)
            .map(|_| {
                open.take(Some(crate::audience::LIVE_FRONT))
                    .expect("a shared stream")
            })
            .collect();
        assert_eq!(front.len(), MAX_SUBSCRIPTIONS_PER_USER * 3);
        drop(held);
        assert!(open.take(user).is_some(), "slots come back when dropped");
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"key-1", b"key-1"));
        assert!(!same_secret(b"key-1", b"key-2"));
        assert!(!same_secret(b"key", b"key-1"));
    }

    #[test]
    fn unusable_claims_are_refused_as_unauthenticated() {
        let frame: serde_json::Value = serde_json::from_str(&refused("7")).expect("json");
        assert_eq!(frame["type"], "error");
        assert_eq!(frame["id"], "7");
        assert_eq!(frame["payload"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }

    #[test]
    fn messages_parse() {
        let message: ClientMessage = serde_json::from_str(
            r#"{"type":"subscribe","id":"1","payload":{"query":"subscription { a }","extensions":{"parleyIdentity":{"sub":"x"}}}}"#,
        )
        .expect("subscribe");
        let ClientMessage::Subscribe { id, payload } = message else {
            panic!("not a subscribe");
        };
        assert_eq!(id, "1");
        assert!(payload.extensions.contains_key(IDENTITY_EXTENSION));
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"nonsense"}"#).is_err());
    }
}
