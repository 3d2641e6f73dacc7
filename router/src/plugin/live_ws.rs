//! The live front's WebSocket side (issue 23; docs/live-sharing.md): the plugin takes over the
//! graphql-transport-ws upgrades of the engine's WebSocket path, so a WebSocket client's subscription to a
//! post's or a chat's stream joins the same shared streams as SSE viewers ([`super::live`]), and every other
//! operation on the connection goes to the engine over this worker's one link ([`super::relay`]).
//!
//! Per connection ([`Connection`]):
//! - `connection_init` is acknowledged here, as the engine does (tokens are checked per operation); its
//!   payload is kept: the operations' `Authorization` and other headers. With a token, the client is
//!   acknowledged once the link is up, so a chat subscription sent next starts as early as without the front
//!   (clients resync history right after subscribing).
//! - A `subscribe` the front serves (a post's stream; a chat's or a signed-in one when it may be judged per
//!   event) is admitted as over SSE and each event written as a `next` from the frame built once for all
//!   viewers; a refusal is one `next` with the errors and `complete`. The client's `complete` ends it.
//! - Any other `subscribe` is relayed over the link with the client's headers and address, its answers
//!   coming back under the client's id; a reused id (4409) or a malformed message (4400) closes the client.
//! - `ping` is answered here. Closing the client, or its going away, ends its shared operations (leaving
//!   their streams) and completes its relayed ones.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hive_router::ntex::service::{chain, fn_factory_with_config, fn_service, fn_shutdown};
use hive_router::ntex::util::ByteString;
use hive_router::ntex::web::{ws, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::clients::{Slot, Slots};
use super::http::address_key;
use super::live::{Admission, Body, Item, LiveFront, Refusal, Watching};
use super::relay::{self, ClientKey, Refused, Relay};
use crate::rate_limit::RateLimiter;

/// The subprotocol spoken.
pub(super) const SUBPROTOCOL: &str = "graphql-transport-ws";
/// The engine's timings: a ping every 5 s, a client silent for 10 s closed, `connection_init` within 10 s.
const PING_EVERY: Duration = Duration::from_secs(5);
const SILENT_FOR: Duration = Duration::from_secs(10);
const INIT_WITHIN: Duration = Duration::from_secs(10);

/// What a taken-over connection needs from the plugin.
pub struct Takeover {
    pub front: Arc<LiveFront>,
    pub limiter: Option<Arc<RateLimiter>>,
    pub slots: Slots,
    pub per_address: usize,
    pub per_user: usize,
    pub client: Option<IpAddr>,
    /// The address's slot the upgrade took: held as long as the connection.
    pub _slot: Slot,
}

/// Answers the upgrade `request` and serves the connection here.
pub async fn start(request: HttpRequest, takeover: Takeover) -> HttpResponse {
    let accepted = ws::subprotocols(&request).any(|p| p == SUBPROTOCOL);
    let takeover = Rc::new(RefCell::new(Some(takeover)));
    let started = ws::start::<_, _, _, hive_router::ntex::web::Error>(
        request,
        accepted.then_some(SUBPROTOCOL),
        fn_factory_with_config(move |sink: ws::WsSink| {
            let takeover = takeover.borrow_mut().take();
            async move {
                let Some(takeover) = takeover else {
                    return Err(hive_router::ntex::web::error::ErrorInternalServerError(
                        "the connection was already served",
                    ));
                };
                if !accepted {
                    let _ = sink
                        .send(ws::Message::Close(Some(ws::CloseReason {
                            code: 4406u16.into(),
                            description: Some("Subprotocol not acceptable".into()),
                        })))
                        .await;
                }
                let relay = Relay::for_thread(&takeover.front);
                let connection = Rc::new(Connection {
                    sink,
                    takeover,
                    init: RefCell::new(None),
                    shared: RefCell::new(HashMap::new()),
                    key: relay.client_key(),
                    relay,
                    last_seen: Cell::new(Instant::now()),
                });
                hive_router::ntex::rt::spawn(keep_alive(connection.clone()));
                let on_frame = connection.clone();
                let service = fn_service(move |frame: ws::Frame| {
                    let connection = on_frame.clone();
                    async move { Ok::<_, std::io::Error>(connection.on_frame(frame).await) }
                });
                let on_shutdown = fn_shutdown(async move || connection.shut());
                Ok(chain(service).and_then(on_shutdown))
            }
        }),
    )
    .await;
    started.unwrap_or_else(|err| {
        tracing::debug!(error = %err, "live front: WebSocket handshake refused");
        HttpResponse::BadRequest().finish()
    })
}

/// One client connection.
struct Connection {
    sink: ws::WsSink,
    takeover: Takeover,
    /// The client's `connection_init` payload, once received.
    init: RefCell<Option<Value>>,
    /// The operations served here, by id: dropping the sender ends one.
    shared: RefCell<HashMap<String, oneshot::Sender<()>>>,
    /// This thread's link to the engine, for the operations the front does not serve; this client's key on it.
    relay: Rc<Relay>,
    key: ClientKey,
    /// When the client last sent anything (a pong included).
    last_seen: Cell<Instant>,
}

/// Pings the client every [`PING_EVERY`] (as the engine does); closes a connection that sent no
/// `connection_init` within [`INIT_WITHIN`] (4408), or nothing at all, not even a pong, for [`SILENT_FOR`].
async fn keep_alive(connection: Rc<Connection>) {
    let opened = Instant::now();
    let disconnected = connection.sink.on_disconnect();
    futures::pin_mut!(disconnected);
    loop {
        tokio::select! {
            () = tokio::time::sleep(PING_EVERY) => {}
            () = &mut disconnected => return,
        }
        let closing = if connection.init.borrow().is_none() && opened.elapsed() > INIT_WITHIN {
            Some(close(4408, "Connection initialisation timeout"))
        } else if connection.last_seen.get().elapsed() > SILENT_FOR {
            Some(close(1002, "no answer to pings"))
        } else {
            None
        };
        if let Some(closing) = closing {
            connection.send(closing).await;
            connection.shut();
            return;
        }
        if connection
            .sink
            .send(ws::Message::Ping(Default::default()))
            .await
            .is_err()
        {
            connection.shut();
            return;
        }
    }
}

impl Connection {
    async fn on_frame(self: &Rc<Self>, frame: ws::Frame) -> Option<ws::Message> {
        self.last_seen.set(Instant::now());
        match frame {
            ws::Frame::Text(text) => {
                let text = String::from_utf8(text.to_vec()).ok()?;
                self.on_text(text).await
            }
            ws::Frame::Ping(data) => Some(ws::Message::Pong(data)),
            ws::Frame::Close(reason) => {
                self.shut();
                Some(ws::Message::Close(reason))
            }
            ws::Frame::Binary(_) | ws::Frame::Continuation(_) => {
                Some(close(4400, "binary frames are not graphql-transport-ws"))
            }
            ws::Frame::Pong(_) => None,
        }
    }

    async fn on_text(self: &Rc<Self>, text: String) -> Option<ws::Message> {
        let Ok(message) = serde_json::from_str::<Value>(&text) else {
            return Some(close(4400, "invalid message"));
        };
        match message["type"].as_str() {
            Some("connection_init") => {
                if self.init.borrow().is_some() {
                    return Some(close(4429, "Too many initialisation requests"));
                }
                *self.init.borrow_mut() = Some(message["payload"].clone());
                // A signed-in client's other operations (chats, notifications) go to the engine: the client
                // is acknowledged once the link is up, so an operation it sends next starts as soon as it
                // would have without the front.
                if self.authorization(&Value::Null).is_some() {
                    let connection = self.clone();
                    hive_router::ntex::rt::spawn(async move {
                        let answer = if connection.relay.ready().await {
                            text_message(r#"{"type":"connection_ack"}"#.to_string())
                        } else {
                            close(1011, "the API is unavailable; reconnect")
                        };
                        connection.send(answer).await;
                    });
                    return None;
                }
                Some(text_message(r#"{"type":"connection_ack"}"#.to_string()))
            }
            Some("ping") => Some(text_message(r#"{"type":"pong"}"#.to_string())),
            Some("pong") => None,
            Some("subscribe") => {
                if self.init.borrow().is_none() {
                    return Some(close(4401, "Unauthorized"));
                }
                let Some(id) = message["id"].as_str().map(str::to_string) else {
                    return Some(close(4400, "a subscribe without an id"));
                };
                if self.shared.borrow().contains_key(&id) || self.relay.has(self.key, &id) {
                    return Some(close(4409, &format!("Subscriber for {id} already exists")));
                }
                let body = serde_json::from_value::<Body>(message["payload"].clone()).ok();
                let authorization = self.authorization(&message["payload"]);
                let served = body.and_then(|body| {
                    self.takeover
                        .front
                        .shareable(&body, authorization.is_some())
                });
                match served {
                    Some((key, variables)) => {
                        self.serve(id, key, variables, authorization).await;
                        None
                    }
                    None => self.relay(&id, &message["payload"]),
                }
            }
            Some("complete") => {
                let id = message["id"].as_str().unwrap_or_default();
                if self.shared.borrow_mut().remove(id).is_none() {
                    self.relay.complete(self.key, id);
                }
                None
            }
            _ => Some(close(4400, "Invalid message received")),
        }
    }

    /// The operation's `Authorization`: its own `extensions.headers`, else the connection's (the init
    /// payload's `headers`, or its top level), as the engine reads them.
    fn authorization(&self, payload: &Value) -> Option<String> {
        let init = self.init.borrow();
        let init = init.as_ref().map(|init| {
            if init["headers"].is_object() {
                &init["headers"]
            } else {
                init
            }
        });
        let found = [Some(&payload["extensions"]["headers"]), init]
            .into_iter()
            .flatten()
            .find_map(|headers| {
                headers.as_object()?.iter().find_map(|(name, value)| {
                    name.eq_ignore_ascii_case("authorization")
                        .then(|| value.as_str().map(str::to_string))
                        .flatten()
                })
            });
        found
    }

    /// Admits the operation to its shared stream and writes its events until it ends, the client
    /// completes it or goes away.
    async fn serve(
        self: &Rc<Self>,
        id: String,
        key: crate::shareable::SharedKey,
        variables: Value,
        authorization: Option<String>,
    ) {
        let takeover = &self.takeover;
        let slots = |user: Option<&str>| match user {
            None => takeover
                .slots
                .take(address_key(takeover.client), takeover.per_address),
            Some(user) => takeover.slots.take(user.to_string(), takeover.per_user),
        };
        let admitted = takeover
            .front
            .admit(
                key,
                variables,
                authorization,
                takeover.client,
                takeover.limiter.as_deref(),
                slots,
            )
            .await;
        let admission: Admission = match admitted {
            Ok(admission) => admission,
            Err(refusal) => {
                let payload = match refusal {
                    Refusal::Payload(_, payload) => payload,
                    Refusal::TooManyClients => json!({ "errors": [{
                        "message": "too many open streams from this caller",
                        "extensions": { "code": parley_protocol::ErrorCode::RateLimited.as_str() },
                    }] }),
                };
                self.send(next_message(&id, payload.to_string().as_bytes()))
                    .await;
                self.send(complete_message(&id)).await;
                return;
            }
        };
        let (stop, mut stopped) = oneshot::channel();
        self.shared.borrow_mut().insert(id.clone(), stop);
        let connection = self.clone();
        hive_router::ntex::rt::spawn(async move {
            let mut watching = Watching::from(admission);
            let disconnected = connection.sink.on_disconnect();
            futures::pin_mut!(disconnected);
            loop {
                let item = tokio::select! {
                    item = watching.next() => item,
                    _ = &mut stopped => return,
                    () = &mut disconnected => return,
                };
                match item {
                    Item::Event(out) => connection.send(next_message(&id, &out.payload())).await,
                    Item::Idle => {}
                    Item::Last(payload) => {
                        if let Some(payload) = payload {
                            connection
                                .send(next_message(&id, payload.to_string().as_bytes()))
                                .await;
                        }
                        connection.send(complete_message(&id)).await;
                        connection.shared.borrow_mut().remove(&id);
                        return;
                    }
                }
            }
        });
    }

    /// Relays a `subscribe` the front does not serve to the engine, over this thread's link.
    fn relay(&self, id: &str, payload: &Value) -> Option<ws::Message> {
        let init = self.init.borrow().clone().unwrap_or(Value::Null);
        let relayed = self.relay.subscribe(
            self.key,
            &self.sink,
            id,
            payload,
            &init,
            self.takeover.client,
        );
        match relayed {
            Ok(()) => None,
            Err(Refused::Malformed) => Some(close(4400, "Invalid message received")),
            Err(Refused::Duplicate) => {
                Some(close(4409, &format!("Subscriber for {id} already exists")))
            }
            Err(Refused::TooMany) => Some(relay::too_many(id)),
            Err(Refused::Gone) => Some(close(1011, "the API is unavailable; reconnect")),
        }
    }

    async fn send(&self, message: ws::Message) {
        let _ = self.sink.send(message).await;
    }

    /// The client is gone: its shared operations end, the engine connection closes.
    fn shut(&self) {
        self.shared.borrow_mut().clear();
        self.relay.client_gone(self.key);
    }
}

pub(super) fn text_message(text: String) -> ws::Message {
    ws::Message::Text(ByteString::from(text))
}

pub(super) fn close(code: u16, description: &str) -> ws::Message {
    ws::Message::Close(Some(ws::CloseReason {
        code: code.into(),
        description: Some(description.to_string()),
    }))
}

/// `{"id":…,"type":"next","payload":…}`, the payload written as it is.
fn next_message(id: &str, payload: &[u8]) -> ws::Message {
    let id = Value::from(id).to_string();
    let mut text = String::with_capacity(payload.len() + id.len() + 32);
    text.push_str(r#"{"id":"#);
    text.push_str(&id);
    text.push_str(r#","type":"next","payload":"#);
    text.push_str(&String::from_utf8_lossy(payload));
    text.push('}');
    text_message(text)
}

fn complete_message(id: &str) -> ws::Message {
    text_message(json!({ "id": id, "type": "complete" }).to_string())
}
