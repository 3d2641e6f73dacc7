//! `on_http_request`: SSE viewers of a post or a chat share one upstream stream ([`crate::sharing`])
//! instead of one engine subscription each (issue 23; docs/live-sharing.md).
//!
//! A `POST /graphql` asking for `text/event-stream` as JSON whose operation [`crate::shareable`] admits
//! (`commentAdded`, `postScoreChanged`; `messageAdded` for signed-in viewers) is answered here:
//! 1. the viewer's right, checked as the viewer by the owner (`post(id)` or `chat(id)` through the engine
//!    on loopback, with the viewer's token if any): a post the viewer may not see, a chat they are not in,
//!    or a token the engine refuses, is refused as before;
//! 2. the caller's subscription rate limit and long-lived client slots, as the engine path takes them;
//! 3. the viewer joins the key's stream; its first viewer opens it — one SSE subscription through the engine
//!    on loopback, so each event is resolved (authors from users, …) and framed once;
//! 4. each event goes out as the same `event: next` frame to every viewer it is for, with heartbeats; a
//!    viewer a whole ring behind gets a last payload with `SUBSCRIPTION_LAGGED`, then `complete`.
//!
//! Anonymous viewers share an anonymous upstream: what one may see, all may, and posts checks that upstream
//! event by event (a deleted post or an author gone private stops it for all at once). Signed-in viewers
//! ([`SignedIn`]) share another, opened as the live front's own account, which sees what staff see and
//! may follow any chat; for each event the front asks the owner once which of them it is for
//! (`/internal/live-audience`; posts: blocks either way, private authors and their followers, the post
//! still theirs; chat: still a member; both: the session not revoked), so a viewer gets exactly what their
//! own subscription would, and a viewer whose right ended is ended, the others going on. A small chat's
//! messages are not asked about: each names the chat's members as its events went ([`super::listed`]). A
//! viewer's stream also ends when their token expires (`UNAUTHENTICATED`: refresh and subscribe again).
//! Everything else —
//! an anonymous chat stream, a selection with per-viewer fields — has its body put back and runs in the
//! engine unchanged.
//!
//! The front's own loopback requests carry a per-process secret ([`LIVE_FRONT`]): they are never shared again,
//! take no client slot, and name the viewer's address, so the join check counts against the viewer.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use hive_router::ntex::http::error::PayloadError;
use hive_router::ntex::http::header::{HeaderName, HeaderValue};
use hive_router::ntex::http::{HeaderMap, Method, Payload, Response, StatusCode};
use hive_router::ntex::util::{Bytes, BytesMut};
use hive_router::ntex::web::{DefaultError, WebRequest};
use hive_router::query_planner::state::supergraph_state::OperationKind;
use parley_protocol::extensions::{REASON, TOKEN_REFUSED};
use parley_protocol::headers::{AUTHORIZATION, FORWARDED_FOR, REQUEST_ID, ROUTER_KEY};
use parley_protocol::live_front::TOKEN_PATH;
use parley_protocol::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::audience::{Owner, Verdict};
use super::clients::Slot;
use super::listed::{self, Revocations};
use super::roster::{Member, Named, Roster, Verdicts};
use crate::rate_limit::RateLimiter;
use crate::shareable::{classify, SharedKey};
use crate::sharing::{Delivery, Hub, Viewer};

/// The header marking the front's own requests to the engine (its value: the per-process secret).
pub const LIVE_FRONT: &str = "x-parley-live-front";

/// Bodies read to classify at most; a larger one is not a shareable subscription.
const MAX_BODY: usize = 16 * 1024;
/// Idle time after which a viewer gets an SSE comment, so proxies keep the stream open (the engine's too).
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long the join check, an event's audience and the front's token may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Join checks in flight at once, per router; the rest wait their turn. 10,000 viewers arriving together (a
/// chat's members reconnecting after a deploy) would otherwise be 10,000 loopback requests to the engine at
/// once: `benches/chat.sh` saw the router's memory peak at 666 MB joining one chat's 10,000 WebSocket members.
const MAX_JOIN_CHECKS: usize = 64;
/// Viewers named in one audience question (the owners take up to 10,000 a request; [`super::audience`]
/// batches small questions).
const AUDIENCE_CHUNK: usize = 2_000;

/// The front's section of the plugin config (`plugins.parley.config.live_sharing`); `parley router` fills it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSharingConfig {
    /// The engine's own `/graphql` on loopback; sharing is off without it.
    #[serde(default)]
    pub engine_url: Option<String>,
    /// The engine's own WebSocket endpoint on loopback: WebSocket clients are served by the front when set.
    #[serde(default)]
    pub engine_ws_url: Option<String>,
    /// The per-process secret of the front's loopback requests.
    #[serde(default)]
    pub secret: Option<String>,
    /// Events a stream keeps for its slowest viewer (default 256).
    #[serde(default)]
    pub ring: Option<usize>,
    /// Signed-in viewers share too when the front can reach users (its token) and posts (each event's
    /// audience) with the router key; otherwise they run in the engine. A chat's members share when chat
    /// (its messages' audience) is reachable too.
    #[serde(default)]
    pub users_url: Option<String>,
    #[serde(default)]
    pub posts_url: Option<String>,
    #[serde(default)]
    pub chat_url: Option<String>,
    #[serde(default)]
    pub router_key: Option<String>,
}

/// The shared streams of this router process and how to open them.
pub struct LiveFront {
    hub: Hub<StreamKey, Arc<Out>>,
    http: reqwest::Client,
    engine_url: String,
    engine_ws_url: Option<String>,
    secret: String,
    signed_in: Option<Arc<SignedIn>>,
    /// Turns for join checks ([`MAX_JOIN_CHECKS`]).
    joins: tokio::sync::Semaphore,
}

/// A shared stream: its operation, and whether its viewers are signed in (their own upstream).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct StreamKey {
    shared: SharedKey,
    signed_in: bool,
}

/// One event as the ring holds it: the frame, built once, and for a signed-in stream whom it is for.
#[derive(Debug)]
pub struct Out {
    frame: Bytes,
    /// By viewer tag; `None`: for everyone (an anonymous stream, or the upstream's own error).
    verdicts: Option<Verdicts>,
}

impl Out {
    /// The event's payload (the JSON inside the frame), for a WebSocket `next`.
    pub(super) fn payload(&self) -> Bytes {
        self.frame
            .slice(NEXT_PREFIX.len()..self.frame.len().saturating_sub(2).max(NEXT_PREFIX.len()))
    }
}

/// What signed-in sharing needs: the front's token, who watches each signed-in stream, and whom to ask
/// (posts for a post's streams, chat for a chat's).
pub struct SignedIn {
    http: reqwest::Client,
    users_url: String,
    posts: Arc<Owner>,
    /// `None`: a chat's members run in the engine.
    chat: Option<Arc<Owner>>,
    /// Sessions signed out, for judging a small chat's messages from the members they name.
    revocations: Revocations,
    router_key: String,
    /// The front's access token and when it expires (Unix seconds).
    token: tokio::sync::Mutex<Option<(String, i64)>>,
    /// The viewers of each signed-in stream. Read by key at each event, so a stream reopened for a new viewer
    /// sees them whichever pump serves it.
    members: Mutex<HashMap<StreamKey, Roster>>,
    tags: AtomicU64,
}

/// A viewer's place among a stream's members; leaving drops it.
struct Membership {
    signed_in: Arc<SignedIn>,
    key: StreamKey,
    tag: u64,
    expires_at: i64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut members = self.signed_in.lock_members();
        if let Some(roster) = members.get_mut(&self.key) {
            if roster.remove(self.tag) {
                members.remove(&self.key);
            }
        }
    }
}

impl SignedIn {
    fn lock_members(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, Roster>> {
        // Every critical section leaves the map whole.
        self.members
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn enter(self: &Arc<Self>, key: &StreamKey, member: Member) -> Membership {
        let tag = self.tags.fetch_add(1, Ordering::Relaxed);
        let expires_at = member.expires_at;
        self.lock_members()
            .entry(key.clone())
            .or_default()
            .insert(tag, member);
        Membership {
            signed_in: self.clone(),
            key: key.clone(),
            tag,
            expires_at,
        }
    }

    /// The front's access token, fetched from users when it has less than a minute left.
    async fn token(&self) -> Option<String> {
        let mut cached = self.token.lock().await;
        let now = chrono_now();
        if let Some((token, expires_at)) = cached.as_ref() {
            if *expires_at - 60 > now {
                return Some(token.clone());
            }
        }
        let answer: Value = self
            .http
            .post(format!("{}{TOKEN_PATH}", self.users_url))
            .timeout(CHECK_TIMEOUT)
            .header(ROUTER_KEY, &self.router_key)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .ok()?
            .json()
            .await
            .ok()?;
        let token = answer["token"].as_str()?.to_string();
        *cached = Some((token.clone(), answer["expiresAt"].as_i64()?));
        Some(token)
    }

    /// Whom an event of `key` is for: a small chat's message by the members it names (`listed`,
    /// [`super::listed`]), otherwise its owner judges it for every viewer at once (in chunks, asked together).
    async fn judge(
        &self,
        key: &StreamKey,
        payload: &[u8],
        listed: Option<Vec<String>>,
    ) -> Option<Verdicts> {
        let parsed: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        let data = &parsed["data"][key.shared.field];
        if !data.is_object() {
            // The upstream's own error (the stream is ending): for everyone.
            return None;
        }
        if let Some(listed) = listed {
            if let Some(revoked) = self.revocations.current().await {
                let listed: HashSet<String> = listed.into_iter().collect();
                let verdicts = self.lock_members().get(key).map(|roster| {
                    roster
                        .members()
                        .map(|(tag, m)| {
                            let verdict = if revoked.contains_key(&m.session) {
                                Verdict::Revoked
                            } else if listed.contains(&m.user) {
                                Verdict::See
                            } else {
                                Verdict::End
                            };
                            (tag, verdict)
                        })
                        .collect()
                });
                return Some(Verdicts::new(verdicts.unwrap_or_default()));
            }
        }
        // A comment's stream names the comment; a post's score concerns the post alone, a message its chat.
        let comment_id = (key.shared.field == "commentAdded")
            .then(|| data["id"].as_str())
            .flatten();
        let named = match self.lock_members().get_mut(key) {
            Some(roster) => roster.named(AUDIENCE_CHUNK),
            None => return Some(Verdicts::default()),
        };
        let answers =
            futures::future::join_all(named.iter().map(|chunk| self.ask(key, comment_id, chunk)))
                .await;
        let mut verdicts = Vec::with_capacity(named.iter().map(|chunk| chunk.tags.len()).sum());
        for (chunk, answer) in named.iter().zip(answers) {
            for (index, tag) in chunk.tags.iter().enumerate() {
                let verdict = answer
                    .as_ref()
                    .and_then(|verdicts| verdicts.get(index).copied())
                    .unwrap_or(Verdict::Unknown);
                verdicts.push((*tag, verdict));
            }
        }
        Some(Verdicts::new(verdicts))
    }

    /// The owner's verdicts for one chunk of viewers, the question written around its ready-made list.
    async fn ask(
        &self,
        key: &StreamKey,
        comment_id: Option<&str>,
        chunk: &Named,
    ) -> Option<Vec<Verdict>> {
        let object = Value::from(key.shared.object_id.as_str());
        let (owner, question) = if key.shared.field == "messageAdded" {
            let question = format!(r#"{{"chatId":{object},"viewers":{}}}"#, chunk.viewers);
            (self.chat.as_ref()?, question)
        } else {
            let comment = Value::from(comment_id);
            let question = format!(
                r#"{{"postId":{object},"commentId":{comment},"viewers":{}}}"#,
                chunk.viewers
            );
            (&self.posts, question)
        };
        owner.ask(question, chunk.tags.len()).await
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A GraphQL request's body (or a WebSocket `subscribe`'s payload), as the front reads it.
#[derive(Deserialize)]
pub(super) struct Body {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<Value>,
    /// Persisted queries and other extensions go to the engine.
    #[serde(default)]
    extensions: Option<Value>,
}

impl LiveFront {
    /// The front, when the config names the engine and a secret.
    pub fn new(config: &LiveSharingConfig) -> Option<Self> {
        let engine_url = config.engine_url.clone()?;
        let secret = config.secret.clone().filter(|s| !s.is_empty())?;
        let http = reqwest::Client::new();
        let signed_in = match (&config.users_url, &config.posts_url, &config.router_key) {
            (Some(users), Some(posts), Some(key)) if !key.is_empty() => Some(Arc::new(SignedIn {
                http: http.clone(),
                users_url: users.trim_end_matches('/').to_string(),
                posts: Owner::new(http.clone(), posts, key, CHECK_TIMEOUT),
                chat: config
                    .chat_url
                    .as_ref()
                    .map(|chat| Owner::new(http.clone(), chat, key, CHECK_TIMEOUT)),
                revocations: Revocations::new(http.clone(), users, key),
                router_key: key.clone(),
                token: tokio::sync::Mutex::default(),
                members: Mutex::default(),
                tags: AtomicU64::default(),
            })),
            _ => None,
        };
        Some(Self {
            hub: Hub::new(config.ring.unwrap_or(256)),
            http,
            engine_url,
            engine_ws_url: config.engine_ws_url.clone(),
            secret,
            signed_in,
            joins: tokio::sync::Semaphore::new(MAX_JOIN_CHECKS),
        })
    }

    /// Whether WebSocket clients are served here ([`super::live_ws`]).
    pub fn takes_websockets(&self) -> bool {
        self.engine_ws_url.is_some()
    }

    /// The engine's WebSocket endpoint on loopback.
    pub fn engine_ws_url(&self) -> &str {
        self.engine_ws_url.as_deref().unwrap_or_default()
    }

    /// The secret marking the front's own requests.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Whether a request's [`LIVE_FRONT`] header value is this front's secret (compared in time independent
    /// of where it differs): the request is the front's own.
    pub fn is_own(&self, header: Option<&[u8]>) -> bool {
        header.is_some_and(|value| same_secret(value, self.secret.as_bytes()))
    }

    /// Answers `request` when it is a shareable SSE subscription; otherwise puts back what it read and
    /// returns `None` for the engine to run it. `slots` takes one of the caller's long-lived client slots:
    /// its address's, or its user's when given one (`user:<id>`).
    pub async fn answer(
        &self,
        request: &mut WebRequest<DefaultError>,
        client: Option<IpAddr>,
        limiter: Option<&RateLimiter>,
        slots: impl Fn(Option<&str>) -> Option<Slot>,
    ) -> Option<Response> {
        if !is_candidate(request.method(), request.path(), request.headers()) {
            return None;
        }
        let authorization = request
            .headers()
            .get(AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_string));
        let authorization = match authorization {
            None => None,
            Some(Ok(value)) if self.signed_in.is_some() => Some(value),
            // Signed-in sharing is off, or the header is not text: the engine's to answer.
            Some(_) => return None,
        };
        let body = read_body(request).await?;
        let shared = serde_json::from_slice::<Body>(&body)
            .ok()
            .and_then(|parsed| self.shareable(&parsed, authorization.is_some()));
        let Some((key, variables)) = shared else {
            request.set_payload(payload_of(body));
            return None;
        };
        let request_id = request.headers().get(REQUEST_ID).cloned();
        let response = self
            .join(key, variables, authorization, client, limiter, slots)
            .await;
        Some(with_request_id(response, request_id))
    }
}

impl LiveFront {
    /// The key and variables of `body` when the front serves it: shareable ([`classify`]), without
    /// extensions other than headers (persisted queries go to the engine); a post's stream for anyone, a
    /// signed-in viewer's only when it can be judged per event; a chat's for signed-in viewers (members)
    /// when chat can judge its messages.
    pub(super) fn shareable(&self, body: &Body, signed_in: bool) -> Option<(SharedKey, Value)> {
        let (key, variables) = shareable_query(body)?;
        let judged = key.signed_in && self.signed_in.is_some();
        let shared = match key.field {
            "messageAdded" => {
                judged && signed_in && self.signed_in.as_ref().is_some_and(|s| s.chat.is_some())
            }
            _ => !signed_in || judged,
        };
        shared.then_some((key, variables))
    }
}

/// `body`'s key and variables when its operation is a shareable subscription.
fn shareable_query(body: &Body) -> Option<(SharedKey, Value)> {
    let only_headers = body.extensions.as_ref().is_none_or(|extensions| {
        extensions
            .as_object()
            .is_some_and(|map| map.keys().all(|key| key == "headers"))
    });
    let query = body.query.as_deref().filter(|_| only_headers)?;
    let variables = body.variables.clone().unwrap_or(Value::Null);
    let key = classify(query, body.operation_name.as_deref(), &variables)?;
    Some((key, variables))
}

/// A request that may be a shareable subscription: read its body to know.
fn is_candidate(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    *method == Method::POST
            && path == "/graphql"
            && header("accept").is_some_and(|v| v.contains("text/event-stream"))
            // The engine's CSRF rule: a simple (form or text) POST never runs an operation.
            && header("content-type").is_some_and(|v| v.starts_with("application/json"))
            && header("content-encoding").is_none()
            && !headers.contains_key(LIVE_FRONT)
            && header("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .is_some_and(|length| length <= MAX_BODY)
}

/// A viewer let in: its place in the stream, its client slots and (signed in) its membership.
pub(super) struct Admission {
    pub(super) viewer: Viewer<StreamKey, Arc<Out>>,
    slots: Vec<Slot>,
    membership: Option<Membership>,
}

/// Why a viewer was not let in.
pub(super) enum Refusal {
    /// One payload of errors to send (with this HTTP status over SSE).
    Payload(StatusCode, Value),
    /// Over the caller's long-lived clients cap.
    TooManyClients,
}

impl LiveFront {
    async fn join(
        &self,
        key: SharedKey,
        variables: Value,
        authorization: Option<String>,
        client: Option<IpAddr>,
        limiter: Option<&RateLimiter>,
        slots: impl Fn(Option<&str>) -> Option<Slot>,
    ) -> Response {
        match self
            .admit(key, variables, authorization, client, limiter, slots)
            .await
        {
            Ok(admission) => Response::Ok()
                .content_type("text/event-stream")
                .header("cache-control", "no-cache")
                .streaming(Box::pin(frames(admission))),
            Err(Refusal::Payload(status, payload)) => single_payload(status, payload),
            Err(Refusal::TooManyClients) => super::http::too_many_clients(),
        }
    }

    /// Lets a viewer into `key`'s stream, as its own subscription would have been let in: the caller's
    /// subscription rate limit and long-lived client slots, the viewer's right checked by posts as the
    /// viewer. `slots` takes the address's slot (`None`) or the user's (`Some("user:<id>")`).
    pub(super) async fn admit(
        &self,
        key: SharedKey,
        variables: Value,
        authorization: Option<String>,
        client: Option<IpAddr>,
        limiter: Option<&RateLimiter>,
        slots: impl Fn(Option<&str>) -> Option<Slot>,
    ) -> Result<Admission, Refusal> {
        let address = client.map(|ip| ip.to_string());
        // Anonymous callers are limited before the check; a token is counted as its user once it checked out.
        if authorization.is_none() {
            self.over_limit(limiter, None, address.as_deref()).await?;
        }
        let address_slot = slots(None).ok_or(Refusal::TooManyClients)?;
        self.check_right(&key, authorization.as_deref(), address.as_deref())
            .await
            .map_err(|(status, errors)| {
                Refusal::Payload(status, json!({ "data": null, "errors": errors }))
            })?;
        let member = match (&authorization, &self.signed_in) {
            (None, _) => None,
            (Some(token), Some(signed_in)) => match Member::of(token) {
                Some(member) => Some((signed_in, member)),
                None => return Err(token_refused(key.field)),
            },
            (Some(_), None) => return Err(token_refused(key.field)),
        };
        let mut held = vec![address_slot];
        if let Some((_, member)) = &member {
            self.over_limit(limiter, authorization.as_deref(), address.as_deref())
                .await?;
            let user_slot = slots(Some(&format!("user:{}", member.user)));
            held.push(user_slot.ok_or(Refusal::TooManyClients)?);
        }
        let stream = StreamKey {
            shared: key,
            signed_in: member.is_some(),
        };
        let membership = member.map(|(signed_in, member)| signed_in.enter(&stream, member));
        let signed_in = self.signed_in.clone().filter(|_| stream.signed_in);
        let viewer = self.hub.join(stream.clone(), || {
            upstream(
                self.http.clone(),
                self.engine_url.clone(),
                self.secret.clone(),
                stream,
                variables,
                signed_in,
            )
        });
        Ok(Admission {
            viewer,
            slots: held,
            membership,
        })
    }

    /// The caller's subscription rate limit: `RATE_LIMITED` when over it.
    async fn over_limit(
        &self,
        limiter: Option<&RateLimiter>,
        token: Option<&str>,
        address: Option<&str>,
    ) -> Result<(), Refusal> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        let kind = OperationKind::Subscription;
        match super::rate::check(limiter, token, address, Some(&kind), 1).await {
            None => Ok(()),
            Some(error) => {
                let error = serde_json::to_value(&error).unwrap_or(Value::Null);
                Err(Refusal::Payload(
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({ "errors": [error] }),
                ))
            }
        }
    }

    /// The viewer's right to watch: the owner answers `post(id)` (posts) or `chat(id)` (chat: members
    /// only) as the viewer would see it, the engine verifying their token first. `Err` carries the status
    /// and the errors to send, their path the subscription's field.
    async fn check_right(
        &self,
        key: &SharedKey,
        authorization: Option<&str>,
        address: Option<&str>,
    ) -> Result<(), (StatusCode, Vec<Value>)> {
        let (root, query) = if key.field == "messageAdded" {
            (
                "chat",
                "query ParleyLiveJoin($id: ID!) { chat(id: $id) { id } }",
            )
        } else {
            (
                "post",
                "query ParleyLiveJoin($id: ID!) { post(id: $id) { id } }",
            )
        };
        // The semaphore is never closed: a turn always comes.
        let _turn = self.joins.acquire().await.ok();
        let mut request = self
            .http
            .post(&self.engine_url)
            .timeout(CHECK_TIMEOUT)
            .header(LIVE_FRONT, &self.secret)
            .json(&json!({ "query": query, "variables": { "id": key.object_id } }));
        if let Some(address) = address {
            request = request.header(FORWARDED_FOR, address);
        }
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        let answer: Result<(u16, Value), _> = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                response.json().await.map(|answer| (status, answer))
            }
            Err(err) => Err(err),
        };
        let (status, answer) = match answer {
            Ok(answer) => answer,
            Err(err) => {
                tracing::warn!(error = %err, "live front: the join check did not answer");
                return Err((
                    StatusCode::OK,
                    vec![coded(
                        ErrorCode::SubgraphUnavailable,
                        "the live stream is unavailable; retry",
                        key.field,
                    )],
                ));
            }
        };
        // A token the engine refused: 401, so clients refresh (as the engine's own SSE refusal).
        let status = if status == 401 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        let errors = answer["errors"].as_array().cloned().unwrap_or_default();
        if !errors.is_empty() {
            return Err((
                status,
                errors
                    .into_iter()
                    .map(|mut error| {
                        error["path"] = json!([key.field]);
                        error
                    })
                    .collect(),
            ));
        }
        if answer["data"][root]["id"].is_string() {
            Ok(())
        } else {
            Err((
                StatusCode::OK,
                vec![coded(ErrorCode::NotFound, "not found", key.field)],
            ))
        }
    }
}

/// `UNAUTHENTICATED` with HTTP 401, for a token the front cannot use.
fn token_refused(field: &str) -> Refusal {
    Refusal::Payload(
        StatusCode::UNAUTHORIZED,
        json!({ "data": null, "errors": [unauthenticated(field)] }),
    )
}

/// The error ending a signed-in viewer's stream when their token expires or their session is revoked: the
/// client refreshes (or signs in again) and subscribes again.
fn unauthenticated(field: &str) -> Value {
    let mut error = coded(
        ErrorCode::Unauthenticated,
        "your session ended; sign in again and resubscribe",
        field,
    );
    error["extensions"][REASON] = json!(TOKEN_REFUSED);
    error
}

/// A GraphQL error with Parley's `code` at `field`.
fn coded(code: ErrorCode, message: &str, field: &str) -> Value {
    json!({ "message": message, "path": [field], "extensions": { "code": code.as_str() } })
}

/// The body, read whole; `None` when it could not be read (the engine then answers the broken request as
/// it would have, with an empty body).
async fn read_body(request: &mut WebRequest<DefaultError>) -> Option<Bytes> {
    let mut payload = request.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(chunk) if body.len() + chunk.len() <= MAX_BODY => body.extend_from_slice(&chunk),
            _ => return None,
        }
    }
    Some(body.freeze())
}

/// A payload that yields `body` once, for the engine to read as if no one had.
fn payload_of(body: Bytes) -> Payload {
    let once = futures::stream::once(async move { Ok::<_, PayloadError>(body) });
    Payload::Stream(Box::pin(once))
}

fn with_request_id(mut response: Response, id: Option<HeaderValue>) -> Response {
    if let Some(id) = id {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), id);
    }
    response
}

/// One `next` payload then `complete`, as the engine answers a subscription refused at its start.
pub(super) fn single_payload(status: StatusCode, payload: Value) -> Response {
    let mut frames = next_frame(payload.to_string().as_bytes()).to_vec();
    frames.extend_from_slice(COMPLETE);
    Response::build(status)
        .content_type("text/event-stream")
        .header("cache-control", "no-cache")
        .body(frames)
}

const COMPLETE: &[u8] = b"event: complete\n\n";

const NEXT_PREFIX: &[u8] = b"event: next\ndata: ";

fn next_frame(data: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(data.len() + 20);
    frame.extend_from_slice(NEXT_PREFIX);
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\n\n");
    frame.freeze()
}

/// What a viewer's SSE response carries: the shared frames it is for, heartbeats while idle, and the end.
/// The viewer, its client slots and its membership live as long as the response: a client going away drops
/// them.
fn frames(admission: Admission) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(Some(Watching::from(admission)), |state| async move {
        let mut state = state?;
        match state.next().await {
            Item::Event(out) => Some((Ok(out.frame.clone()), Some(state))),
            Item::Idle => Some((Ok(Bytes::from_static(b":\n\n")), Some(state))),
            Item::Last(Some(payload)) => Some((Ok(last(payload)), None)),
            Item::Last(None) => Some((Ok(Bytes::from_static(COMPLETE)), None)),
        }
    })
}

/// One viewer's stream, whatever carries it (an SSE response, a WebSocket operation).
pub(super) struct Watching {
    viewer: Viewer<StreamKey, Arc<Out>>,
    _slots: Vec<Slot>,
    membership: Option<Membership>,
    field: &'static str,
    /// Silence after which the viewer gets [`Item::Idle`] ([`HEARTBEAT`]).
    every: Duration,
    /// Made at the first wait, inside the runtime.
    timers: Option<Timers>,
}

/// A viewer's heartbeat and token expiry: made once and re-armed, not made anew for each event (two timer
/// registrations per delivery were a few per cent of the router's CPU at 10,000 viewers).
struct Timers {
    heartbeat: Pin<Box<tokio::time::Sleep>>,
    /// When the viewer last got something; the heartbeat fires `every` after that.
    last_sent: tokio::time::Instant,
    every: Duration,
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Timers {
    fn new(every: Duration, expires_at: Option<i64>) -> Self {
        let now = tokio::time::Instant::now();
        Timers {
            heartbeat: Box::pin(tokio::time::sleep_until(now + every)),
            last_sent: now,
            every,
            expiry: expires_at.map(|at| {
                let left = u64::try_from(at - chrono_now()).unwrap_or(0);
                Box::pin(tokio::time::sleep_until(now + Duration::from_secs(left)))
            }),
        }
    }
}

impl From<Admission> for Watching {
    fn from(admission: Admission) -> Self {
        let field = admission.viewer.key().shared.field;
        Watching {
            viewer: admission.viewer,
            _slots: admission.slots,
            membership: admission.membership,
            field,
            every: HEARTBEAT,
            timers: None,
        }
    }
}

/// What a viewer gets next.
pub(super) enum Item {
    Event(Arc<Out>),
    /// Nothing for a while (keep the connection warm).
    Idle,
    /// The end: one last payload (an error) if any, then `complete`.
    Last(Option<Value>),
}

impl Watching {
    pub(super) async fn next(&mut self) -> Item {
        let field = self.field;
        let expires_at = self.membership.as_ref().map(|m| m.expires_at);
        let every = self.every;
        let Timers {
            heartbeat,
            last_sent,
            every,
            expiry,
        } = self
            .timers
            .get_or_insert_with(|| Timers::new(every, expires_at));
        loop {
            let expired = async {
                match expiry.as_mut() {
                    Some(expiry) => expiry.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            let delivery = tokio::select! {
                delivery = self.viewer.next() => delivery,
                () = heartbeat.as_mut() => {
                    let now = tokio::time::Instant::now();
                    let due = *last_sent + *every;
                    if due > now {
                        heartbeat.as_mut().reset(due);
                        continue;
                    }
                    *last_sent = now;
                    heartbeat.as_mut().reset(now + *every);
                    return Item::Idle;
                }
                () = expired => return Item::Last(Some(json!({ "errors": [unauthenticated(field)] }))),
            };
            let out = match delivery {
                Some(Delivery::Event(out)) => out,
                Some(Delivery::Lagged(missed)) => {
                    return Item::Last(Some(json!({
                        "errors": [{
                            "message": format!("this stream fell {missed} events behind; reload and subscribe again"),
                            "extensions": { "code": ErrorCode::SubscriptionLagged.as_str() },
                        }],
                    })));
                }
                None => return Item::Last(None),
            };
            let verdict = match (&out.verdicts, &self.membership) {
                (Some(verdicts), Some(membership)) => verdicts.get(membership.tag),
                _ => Some(Verdict::See),
            };
            match verdict {
                Some(Verdict::See) => {
                    *last_sent = tokio::time::Instant::now();
                    return Item::Event(out);
                }
                // Not theirs to see; or they joined after posts judged it.
                Some(Verdict::Skip) | None => continue,
                Some(Verdict::End) => return Item::Last(None),
                Some(Verdict::Revoked) => {
                    return Item::Last(Some(json!({ "errors": [unauthenticated(field)] })))
                }
                Some(Verdict::Unknown) => {
                    return Item::Last(Some(json!({
                        "errors": [coded(ErrorCode::SubgraphUnavailable, "the live stream was interrupted; subscribe again", field)],
                    })))
                }
            }
        }
    }
}

/// `payload` as the last `next`, then `complete`.
fn last(payload: Value) -> Bytes {
    let mut frame = BytesMut::from(&next_frame(payload.to_string().as_bytes())[..]);
    frame.extend_from_slice(COMPLETE);
    frame.freeze()
}

/// The one upstream of `key`: an SSE subscription through the engine on loopback — anonymous, or as the
/// front's account for signed-in viewers, each event then judged by posts — yielding each event already
/// framed. Dropping it closes the subscription.
fn upstream(
    http: reqwest::Client,
    engine_url: String,
    secret: String,
    key: StreamKey,
    variables: Value,
    signed_in: Option<Arc<SignedIn>>,
) -> impl Stream<Item = Arc<Out>> + Send + 'static {
    let request = http
        .post(engine_url)
        .header("accept", "text/event-stream")
        .header(LIVE_FRONT, secret)
        .json(&json!({
            "query": key.shared.document,
            "operationName": key.shared.operation_name,
            "variables": variables,
        }));
    let field = key.shared.field;
    let state = Upstream::Connecting(Some(request), signed_in.clone());
    let events = futures::stream::unfold(state, move |mut state| async move {
        let payload = state.next(field).await?;
        Some((payload, state))
    });
    events.then(move |payload| {
        let signed_in = signed_in.clone();
        let key = key.clone();
        async move {
            let (payload, listed) = match &signed_in {
                Some(_) if key.shared.field == "messageAdded" => listed::take_audience(payload),
                _ => (payload, None),
            };
            let verdicts = match &signed_in {
                Some(signed_in) => signed_in.judge(&key, &payload, listed).await,
                None => None,
            };
            Arc::new(Out {
                frame: next_frame(&payload),
                verdicts,
            })
        }
    })
}

enum Upstream {
    /// The request, and the signed-in side whose token it carries.
    Connecting(Option<reqwest::RequestBuilder>, Option<Arc<SignedIn>>),
    Reading {
        response: reqwest::Response,
        buffer: Vec<u8>,
    },
    Done,
}

impl Upstream {
    /// The next event's payload; a broken upstream ends with one `SUBGRAPH_UNAVAILABLE` payload so viewers
    /// know to resubscribe.
    async fn next(&mut self, field: &'static str) -> Option<Vec<u8>> {
        loop {
            match self {
                Upstream::Done => return None,
                Upstream::Connecting(request, signed_in) => {
                    let mut request = request.take()?;
                    if let Some(signed_in) = signed_in {
                        match signed_in.token().await {
                            Some(token) => request = request.bearer_auth(token),
                            None => {
                                tracing::warn!("live front: users gave no token");
                                return self.fail(field);
                            }
                        }
                    }
                    let sent = request.send().await;
                    match sent {
                        Ok(response) if response.status().is_success() => {
                            *self = Upstream::Reading {
                                response,
                                buffer: Vec::new(),
                            };
                        }
                        Ok(response) => {
                            tracing::warn!(status = %response.status(), "live front: upstream refused");
                            return self.fail(field);
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "live front: upstream unreachable");
                            return self.fail(field);
                        }
                    }
                }
                Upstream::Reading { response, buffer } => {
                    if let Some(end) = find(buffer, b"\n\n") {
                        let frame: Vec<u8> = buffer.drain(..end + 2).collect();
                        match parse_frame(&frame) {
                            Frame::Next(data) => return Some(data),
                            Frame::Complete => {
                                *self = Upstream::Done;
                                return None;
                            }
                            Frame::Other => continue,
                        }
                    }
                    match response.chunk().await {
                        Ok(Some(chunk)) => buffer.extend_from_slice(&chunk),
                        Ok(None) | Err(_) => return self.fail(field),
                    }
                }
            }
        }
    }

    fn fail(&mut self, field: &'static str) -> Option<Vec<u8>> {
        *self = Upstream::Done;
        let payload = json!({
            "errors": [coded(ErrorCode::SubgraphUnavailable, "the live stream was interrupted; subscribe again", field)],
        });
        Some(payload.to_string().into_bytes())
    }
}

enum Frame {
    Next(Vec<u8>),
    Complete,
    /// A heartbeat or a frame without data.
    Other,
}

/// One SSE frame (without its blank line): its `event:` and its `data:` lines joined.
fn parse_frame(frame: &[u8]) -> Frame {
    let mut event: &[u8] = b"message";
    let mut data = Vec::new();
    for line in frame.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(value) = line.strip_prefix(b"event:") {
            event = value.trim_ascii();
        } else if let Some(value) = line.strip_prefix(b"data:") {
            if !data.is_empty() {
                data.push(b'\n');
            }
            data.extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
        }
    }
    match event {
        b"complete" => Frame::Complete,
        _ if data.is_empty() => Frame::Other,
        _ => Frame::Next(data),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Equal secrets, compared without an early exit.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_as_the_engine_writes_them() {
        match parse_frame(b"event: next\ndata: {\"data\":1}\n\n") {
            Frame::Next(data) => assert_eq!(data, b"{\"data\":1}"),
            _ => panic!("next"),
        }
        assert!(matches!(
            parse_frame(b"event: complete\n\n"),
            Frame::Complete
        ));
        assert!(matches!(parse_frame(b":\n\n"), Frame::Other));
        assert_eq!(
            &next_frame(b"{}")[..],
            b"event: next\ndata: {}\n\n".as_slice()
        );
    }

    /// Post `p`'s comment stream, for anonymous or signed-in viewers.
    fn comment_key(signed_in: bool) -> StreamKey {
        StreamKey {
            shared: SharedKey {
                field: "commentAdded",
                object_id: "p".into(),
                document: "subscription{commentAdded(postId:\"p\"){id}}".into(),
                operation_name: None,
                signed_in: true,
            },
            signed_in,
        }
    }

    /// A viewer whose response is not read falls a ring behind: its last frames say `SUBSCRIPTION_LAGGED`
    /// and `complete`; a viewer reading as events come gets every one.
    #[tokio::test]
    async fn a_viewer_falling_behind_is_told_and_the_others_keep_up() {
        let hub: Hub<StreamKey, Arc<Out>> = Hub::new(4);
        let slots = super::super::clients::Slots::default();
        let key = comment_key(false);
        let (feed, events) = tokio::sync::mpsc::unbounded_channel::<Arc<Out>>();
        let events = tokio_stream::wrappers::UnboundedReceiverStream::new(events);
        let mut events = Some(events);
        let mut join = || {
            let viewer = hub.join(key.clone(), || events.take().expect("opened once"));
            let slot = slots.take("ip:test".into(), 10).expect("slot");
            Box::pin(frames(Admission {
                viewer,
                slots: vec![slot],
                membership: None,
            }))
        };
        let out = |n: u32| {
            Arc::new(Out {
                frame: next_frame(format!("{{\"n\":{n}}}").as_bytes()),
                verdicts: None,
            })
        };
        let mut reader = join();
        let slow = join();
        for n in 0..10 {
            feed.send(out(n)).expect("send");
            let frame = reader.next().await.expect("frame").expect("ok");
            assert!(std::str::from_utf8(&frame)
                .expect("utf8")
                .contains(&format!("\"n\":{n}")));
        }
        let told: Vec<Bytes> = slow.map(|frame| frame.expect("ok")).collect().await;
        let last = std::str::from_utf8(told.last().expect("a last frame")).expect("utf8");
        assert!(last.contains("SUBSCRIPTION_LAGGED"), "{last}");
        assert!(last.ends_with("event: complete\n\n"), "{last}");
        // The slow viewer is gone, the reader is not.
        assert_eq!(hub.viewers(&key), 1);
        feed.send(out(10)).expect("send");
        let frame = reader.next().await.expect("frame").expect("ok");
        assert!(std::str::from_utf8(&frame)
            .expect("utf8")
            .contains("\"n\":10"));
    }

    /// A quiet viewer gets a heartbeat once `every` passed since the last thing it got, not sooner; an event
    /// puts the next one off.
    #[tokio::test]
    async fn heartbeats_come_after_silence_only() {
        let hub: Hub<StreamKey, Arc<Out>> = Hub::new(4);
        let slots = super::super::clients::Slots::default();
        let key = comment_key(false);
        let (feed, events) = tokio::sync::mpsc::unbounded_channel::<Arc<Out>>();
        let events = tokio_stream::wrappers::UnboundedReceiverStream::new(events);
        let viewer = hub.join(key.clone(), || events);
        let slot = slots.take("ip:test".into(), 10).expect("slot");
        let mut watching = Watching::from(Admission {
            viewer,
            slots: vec![slot],
            membership: None,
        });
        let every = Duration::from_millis(300);
        watching.every = every;
        let started = std::time::Instant::now();
        assert!(matches!(watching.next().await, Item::Idle));
        assert!(started.elapsed() >= every);

        // An event 200 ms into the next wait: the heartbeat after it comes `every` after the event.
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let sent = std::time::Instant::now();
            feed.send(Arc::new(Out {
                frame: next_frame(b"{}"),
                verdicts: None,
            }))
            .expect("send");
            (sent, feed)
        });
        assert!(matches!(watching.next().await, Item::Event(_)));
        let (sent, _feed) = sender.await.expect("sender");
        assert!(matches!(watching.next().await, Item::Idle));
        assert!(sent.elapsed() >= every, "{:?}", sent.elapsed());
    }

    /// A signed-in viewer gets the events posts judged theirs, skips the others, and is ended by `end`.
    #[tokio::test]
    async fn a_signed_in_viewer_gets_what_posts_judged_theirs() {
        let signed_in = Arc::new(SignedIn {
            http: reqwest::Client::new(),
            users_url: String::new(),
            posts: Owner::new(reqwest::Client::new(), "", "", CHECK_TIMEOUT),
            chat: None,
            revocations: Revocations::new(reqwest::Client::new(), "", ""),
            router_key: String::new(),
            token: tokio::sync::Mutex::default(),
            members: Mutex::default(),
            tags: AtomicU64::default(),
        });
        let hub: Hub<StreamKey, Arc<Out>> = Hub::new(16);
        let slots = super::super::clients::Slots::default();
        let key = comment_key(true);
        let member = Member {
            user: "u".into(),
            session: "s".into(),
            staff: false,
            expires_at: chrono_now() + 600,
        };
        let membership = signed_in.enter(&key, member);
        let tag = membership.tag;
        let (feed, events) = tokio::sync::mpsc::unbounded_channel::<Arc<Out>>();
        let events = tokio_stream::wrappers::UnboundedReceiverStream::new(events);
        let viewer = hub.join(key.clone(), || events);
        let slot = slots.take("user:u".into(), 10).expect("slot");
        let stream = frames(Admission {
            viewer,
            slots: vec![slot],
            membership: Some(membership),
        });
        for (n, verdict) in [
            (0, Verdict::See),
            (1, Verdict::Skip),
            (2, Verdict::See),
            (3, Verdict::End),
        ] {
            feed.send(Arc::new(Out {
                frame: next_frame(format!("{{\"n\":{n}}}").as_bytes()),
                verdicts: Some(Verdicts::new(vec![(tag, verdict)])),
            }))
            .expect("send");
        }
        let got: Vec<String> = stream
            .map(|frame| String::from_utf8(frame.expect("ok").to_vec()).expect("utf8"))
            .collect()
            .await;
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].contains("\"n\":0") && got[1].contains("\"n\":2"),
            "{got:?}"
        );
        assert_eq!(got[2], "event: complete\n\n");
        // Leaving took the viewer out of the stream's members.
        assert!(signed_in.lock_members().is_empty());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
    }
}
