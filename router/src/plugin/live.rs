//! `on_http_request`: anonymous SSE viewers of a post share one upstream stream ([`crate::sharing`]) instead
//! of one engine subscription each (issue 23; docs/live-sharing.md).
//!
//! A `POST /graphql` asking for `text/event-stream` as JSON, without a token, whose operation
//! [`crate::shareable`] admits with a post's root (`commentAdded`, `postScoreChanged`), is answered here:
//! 1. the caller's subscription rate limit and long-lived client slot, as the engine path takes them;
//! 2. the viewer's right, checked as the viewer by the posts subgraph (`post(id)` through the engine on
//!    loopback): a post an anonymous reader may not see is refused with its code, as before;
//! 3. the viewer joins the key's stream; its first viewer opens it — one anonymous SSE subscription through
//!    the engine on loopback, so each event is resolved (authors from users, …) and framed once;
//! 4. each event goes out as the same `event: next` frame to every viewer, with heartbeats; a viewer a whole
//!    ring behind gets a last payload with `SUBSCRIPTION_LAGGED`, then `complete`.
//!
//! What an anonymous viewer may see is the same for all of them, and the upstream (anonymous too) is checked
//! by posts event by event: a deleted post or an author gone private stops the stream for all at once.
//! Everything else — a signed-in viewer (blocks make each one's view their own), a chat's messages (members
//! only), a selection with per-viewer fields — has its body put back and runs in the engine unchanged.
//!
//! The front's own loopback requests carry a per-process secret ([`LIVE_FRONT`]): they are never shared again,
//! take no client slot, and name the viewer's address, so the join check counts against the viewer.

use std::net::IpAddr;
use std::time::Duration;

use futures::{Stream, StreamExt};
use hive_router::ntex::http::error::PayloadError;
use hive_router::ntex::http::header::{HeaderName, HeaderValue};
use hive_router::ntex::http::{HeaderMap, Method, Payload, Response, StatusCode};
use hive_router::ntex::util::{Bytes, BytesMut};
use hive_router::ntex::web::{DefaultError, WebRequest};
use hive_router::query_planner::state::supergraph_state::OperationKind;
use parley_protocol::headers::{AUTHORIZATION, FORWARDED_FOR, REQUEST_ID};
use parley_protocol::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::clients::Slot;
use crate::rate_limit::RateLimiter;
use crate::shareable::{classify, SharedKey};
use crate::sharing::{Delivery, Hub, Viewer};

/// The header marking the front's own requests to the engine (its value: the per-process secret).
pub const LIVE_FRONT: &str = "x-parley-live-front";

/// Bodies read to classify at most; a larger one is not a shareable subscription.
const MAX_BODY: usize = 16 * 1024;
/// Idle time after which a viewer gets an SSE comment, so proxies keep the stream open (the engine's too).
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long the join check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The front's section of the plugin config (`plugins.parley.config.live_sharing`); `parley router` fills it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSharingConfig {
    /// The engine's own `/graphql` on loopback; sharing is off without it.
    #[serde(default)]
    pub engine_url: Option<String>,
    /// The per-process secret of the front's loopback requests.
    #[serde(default)]
    pub secret: Option<String>,
    /// Events a stream keeps for its slowest viewer (default 256).
    #[serde(default)]
    pub ring: Option<usize>,
}

/// The shared streams of this router process and how to open them.
pub struct LiveFront {
    hub: Hub<SharedKey, Bytes>,
    http: reqwest::Client,
    engine_url: String,
    secret: String,
}

/// The request's body, as the front read it.
#[derive(Deserialize)]
struct Body {
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
        Some(Self {
            hub: Hub::new(config.ring.unwrap_or(256)),
            http: reqwest::Client::new(),
            engine_url,
            secret,
        })
    }

    /// Whether a request's [`LIVE_FRONT`] header value is this front's secret (compared in time independent
    /// of where it differs): the request is the front's own.
    pub fn is_own(&self, header: Option<&[u8]>) -> bool {
        header.is_some_and(|value| same_secret(value, self.secret.as_bytes()))
    }

    /// Answers `request` when it is a shareable anonymous SSE subscription; otherwise puts back what it read
    /// and returns `None` for the engine to run it. `slot` takes the caller's long-lived client slot.
    pub async fn answer(
        &self,
        request: &mut WebRequest<DefaultError>,
        client: Option<IpAddr>,
        limiter: Option<&RateLimiter>,
        slot: impl FnOnce() -> Option<Slot>,
    ) -> Option<Response> {
        if !is_candidate(request.method(), request.path(), request.headers()) {
            return None;
        }
        let body = read_body(request).await?;
        let parsed = serde_json::from_slice::<Body>(&body).ok();
        let shared = parsed.as_ref().and_then(|parsed| {
            let query = parsed
                .query
                .as_deref()
                .filter(|_| parsed.extensions.is_none())?;
            let variables = parsed.variables.clone().unwrap_or(Value::Null);
            let key = classify(query, parsed.operation_name.as_deref(), &variables)?;
            // Only a post's streams: a chat's are for members, never anonymous.
            matches!(key.field, "commentAdded" | "postScoreChanged").then_some((key, variables))
        });
        let Some((key, variables)) = shared else {
            request.set_payload(payload_of(body));
            return None;
        };
        let request_id = request.headers().get(REQUEST_ID).cloned();
        let response = self.join(key, variables, client, limiter, slot).await;
        Some(with_request_id(response, request_id))
    }
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
            && !headers.contains_key(AUTHORIZATION)
            && !headers.contains_key(LIVE_FRONT)
            && header("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .is_some_and(|length| length <= MAX_BODY)
}

impl LiveFront {
    async fn join(
        &self,
        key: SharedKey,
        variables: Value,
        client: Option<IpAddr>,
        limiter: Option<&RateLimiter>,
        slot: impl FnOnce() -> Option<Slot>,
    ) -> Response {
        let address = client.map(|ip| ip.to_string());
        if let Some(limiter) = limiter {
            let kind = OperationKind::Subscription;
            if let Some(error) =
                super::rate::check(limiter, None, address.as_deref(), Some(&kind), 1).await
            {
                let error = serde_json::to_value(&error).unwrap_or(Value::Null);
                return single_payload(StatusCode::TOO_MANY_REQUESTS, json!({ "errors": [error] }));
            }
        }
        let Some(slot) = slot() else {
            return super::http::too_many_clients();
        };
        if let Err(errors) = self.check_right(&key, address.as_deref()).await {
            return single_payload(StatusCode::OK, json!({ "data": null, "errors": errors }));
        }
        let viewer = self.hub.join(key.clone(), || {
            upstream(
                self.http.clone(),
                self.engine_url.clone(),
                self.secret.clone(),
                &key,
                variables,
            )
        });
        Response::Ok()
            .content_type("text/event-stream")
            .header("cache-control", "no-cache")
            .streaming(Box::pin(frames(viewer, slot)))
    }

    /// The viewer's right to watch the post: the posts subgraph answers `post(id)` as the viewer would see
    /// it. `Err` carries the errors to send, their path the subscription's field.
    async fn check_right(&self, key: &SharedKey, address: Option<&str>) -> Result<(), Vec<Value>> {
        let mut request = self
            .http
            .post(&self.engine_url)
            .timeout(CHECK_TIMEOUT)
            .header(LIVE_FRONT, &self.secret)
            .json(&json!({
                "query": "query ParleyLiveJoin($id: ID!) { post(id: $id) { id } }",
                "variables": { "id": key.object_id },
            }));
        if let Some(address) = address {
            request = request.header(FORWARDED_FOR, address);
        }
        let answer: Result<Value, _> = match request.send().await {
            Ok(response) => response.json().await,
            Err(err) => Err(err),
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(err) => {
                tracing::warn!(error = %err, "live front: the join check did not answer");
                return Err(vec![coded(
                    ErrorCode::SubgraphUnavailable,
                    "the live stream is unavailable; retry",
                    key.field,
                )]);
            }
        };
        let errors = answer["errors"].as_array().cloned().unwrap_or_default();
        if !errors.is_empty() {
            return Err(errors
                .into_iter()
                .map(|mut error| {
                    error["path"] = json!([key.field]);
                    error
                })
                .collect());
        }
        if answer["data"]["post"]["id"].is_string() {
            Ok(())
        } else {
            Err(vec![coded(
                ErrorCode::NotFound,
                "post not found",
                key.field,
            )])
        }
    }
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

fn next_frame(data: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(data.len() + 20);
    frame.extend_from_slice(b"event: next\ndata: ");
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\n\n");
    frame.freeze()
}

/// What a viewer's response carries: the shared frames, heartbeats while idle, and the end. The viewer and
/// the client slot live as long as the response: a client going away drops both.
fn frames(
    viewer: Viewer<SharedKey, Bytes>,
    slot: Slot,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(Some((viewer, slot)), |state| async move {
        let (mut viewer, slot) = state?;
        let delivery = tokio::select! {
            delivery = viewer.next() => delivery,
            () = tokio::time::sleep(HEARTBEAT) => {
                return Some((Ok(Bytes::from_static(b":\n\n")), Some((viewer, slot))));
            }
        };
        match delivery {
            Some(Delivery::Event(frame)) => Some((Ok(frame), Some((viewer, slot)))),
            Some(Delivery::Lagged(missed)) => {
                let lagged = json!({
                    "errors": [{
                        "message": format!("this stream fell {missed} events behind; reload and subscribe again"),
                        "extensions": { "code": ErrorCode::SubscriptionLagged.as_str() },
                    }],
                });
                let mut last = BytesMut::from(&next_frame(lagged.to_string().as_bytes())[..]);
                last.extend_from_slice(COMPLETE);
                Some((Ok(last.freeze()), None))
            }
            None => Some((Ok(Bytes::from_static(COMPLETE)), None)),
        }
    })
}

/// The one upstream of `key`: an anonymous SSE subscription through the engine on loopback, yielding each
/// event already framed for the viewers. Dropping it closes the subscription.
fn upstream(
    http: reqwest::Client,
    engine_url: String,
    secret: String,
    key: &SharedKey,
    variables: Value,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let request = http
        .post(engine_url)
        .header("accept", "text/event-stream")
        .header(LIVE_FRONT, secret)
        .json(&json!({
            "query": key.document,
            "operationName": key.operation_name,
            "variables": variables,
        }));
    let field = key.field;
    futures::stream::unfold(
        Upstream::Connecting(Some(request)),
        move |state| async move {
            let mut state = state;
            let frame = state.next(field).await?;
            Some((frame, state))
        },
    )
}

enum Upstream {
    Connecting(Option<reqwest::RequestBuilder>),
    Reading {
        response: reqwest::Response,
        buffer: Vec<u8>,
    },
    Done,
}

impl Upstream {
    /// The next event's frame; a broken upstream ends with one `SUBGRAPH_UNAVAILABLE` payload so viewers
    /// know to resubscribe.
    async fn next(&mut self, field: &'static str) -> Option<Bytes> {
        loop {
            match self {
                Upstream::Done => return None,
                Upstream::Connecting(request) => {
                    let sent = request.take()?.send().await;
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
                            Frame::Next(data) => return Some(next_frame(&data)),
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

    fn fail(&mut self, field: &'static str) -> Option<Bytes> {
        *self = Upstream::Done;
        let payload = json!({
            "errors": [coded(ErrorCode::SubgraphUnavailable, "the live stream was interrupted; subscribe again", field)],
        });
        Some(next_frame(payload.to_string().as_bytes()))
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

    /// A viewer whose response is not read falls a ring behind: its last frames say `SUBSCRIPTION_LAGGED`
    /// and `complete`; a viewer reading as events come gets every one.
    #[tokio::test]
    async fn a_viewer_falling_behind_is_told_and_the_others_keep_up() {
        let hub: Hub<SharedKey, Bytes> = Hub::new(4);
        let slots = super::super::clients::Slots::default();
        let key = SharedKey {
            field: "commentAdded",
            object_id: "p".into(),
            document: "subscription{commentAdded(postId:\"p\"){id}}".into(),
            operation_name: None,
        };
        let (feed, events) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let events = tokio_stream::wrappers::UnboundedReceiverStream::new(events);
        let mut events = Some(events);
        let mut join = || {
            let viewer = hub.join(key.clone(), || events.take().expect("opened once"));
            let slot = slots.take("ip:test".into(), 10).expect("slot");
            Box::pin(frames(viewer, slot))
        };
        let mut reader = join();
        let slow = join();
        for n in 0..10 {
            feed.send(next_frame(format!("{{\"n\":{n}}}").as_bytes()))
                .expect("send");
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
        feed.send(next_frame(b"{\"n\":10}")).expect("send");
        let frame = reader.next().await.expect("frame").expect("ok");
        assert!(std::str::from_utf8(&frame)
            .expect("utf8")
            .contains("\"n\":10"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
    }
}
