//! The live front's one link to the engine per worker thread (issue 23; docs/live-sharing.md): every
//! operation a WebSocket client of the front sends that the front does not serve itself (queries,
//! mutations, chats' per-viewer fields, notifications) is relayed over a single loopback graphql-transport-ws
//! connection, not one per client — a client holds one socket in the router, not three.
//!
//! - Ids: each relayed operation gets an id of the link's own (a counter); the engine's answers are routed
//!   back by it, the client's id written in their place.
//! - Headers: the engine reads an operation's headers from its `extensions.headers` (`websocket.headers.
//!   source: operation` while the front takes WebSockets), so each carries its own client's: what the client
//!   wrote in `connection_init` (or its `headers`) overlaid by the operation's own, with the client's
//!   address — the connection's, which nothing the client writes replaces — as `x-forwarded-for`. Nothing is
//!   kept on the link between operations.
//! - Bounds: [`MAX_IN_FLIGHT`] operations per client at once; a malformed `subscribe` or a reused id closes
//!   that client as the engine would (4400, 4409) instead of reaching the link, where the engine would close
//!   every client's operations with it.
//! - The link opens on the first operation that needs it (what is sent meanwhile waits, in order); if it
//!   breaks, the clients with operations on it are closed (1011: reconnect) and the next operation opens a
//!   new one.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use hive_router::ntex::web::ws;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WireMessage;

use super::live::{LiveFront, LIVE_FRONT};
use super::live_ws::{close, text_message, SUBPROTOCOL};
use parley_protocol::headers::FORWARDED_FOR;
use parley_protocol::ErrorCode;

/// Operations one client may have relayed and unfinished at once.
pub const MAX_IN_FLIGHT: usize = 200;

/// Headers a client may not write for itself: the address is the connection's, the secret the front's.
const NOT_THE_CLIENTS: [&str; 3] = [FORWARDED_FOR, "x-real-ip", LIVE_FRONT];

thread_local! {
    /// This worker thread's link (ntex serves each connection on one thread).
    static RELAY: RefCell<Option<Rc<Relay>>> = const { RefCell::new(None) };
}

/// Identifies a client connection of the front on its relay.
pub type ClientKey = u64;

/// Why a client's operation was not relayed.
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// Not a graphql-transport-ws `subscribe` the engine would read: the client is closed with 4400.
    Malformed,
    /// The client reused the id of an operation still running: closed with 4409.
    Duplicate,
    /// Over [`MAX_IN_FLIGHT`]: answered with an `error` for that id.
    TooMany,
    /// The link is gone: the client is closed with 1011.
    Gone,
}

/// The link and who is waiting on it.
pub struct Relay {
    front: Arc<LiveFront>,
    next_key: Cell<u64>,
    next_id: Cell<u64>,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    /// Messages for the engine, once a link was started; `None` before, or after it broke.
    link: Option<mpsc::UnboundedSender<String>>,
    /// Whether the link's engine acknowledged it (`None` until it answered; `Some(false)`: it failed).
    ready: Option<watch::Receiver<Option<bool>>>,
    /// The clients with relayed operations: their sink and their operations (client id → link id).
    clients: HashMap<ClientKey, Client>,
    /// Link id → (client, client id).
    routes: HashMap<u64, (ClientKey, String)>,
}

struct Client {
    sink: ws::WsSink,
    operations: HashMap<String, u64>,
}

impl Relay {
    /// This thread's relay to the engine of `front`.
    pub fn for_thread(front: &Arc<LiveFront>) -> Rc<Relay> {
        RELAY.with(|relay| {
            relay
                .borrow_mut()
                .get_or_insert_with(|| {
                    Rc::new(Relay {
                        front: front.clone(),
                        next_key: Cell::new(0),
                        next_id: Cell::new(0),
                        state: RefCell::new(State::default()),
                    })
                })
                .clone()
        })
    }

    /// A key for a new client connection.
    pub fn client_key(&self) -> ClientKey {
        let key = self.next_key.get() + 1;
        self.next_key.set(key);
        key
    }

    /// Resolves once the link is open and acknowledged (opening it if need be): `false` if it could not be.
    pub async fn ready(self: &Rc<Self>) -> bool {
        self.open();
        let Some(mut ready) = self.state.borrow().ready.clone() else {
            return false;
        };
        let answered = match ready.wait_for(Option::is_some).await {
            Ok(answer) => answer.unwrap_or(false),
            Err(_) => false,
        };
        answered
    }

    /// Relays the client's `subscribe` of operation `id` with `payload`, its headers made from `init` (the
    /// client's `connection_init` payload), the operation's own and `address`.
    pub fn subscribe(
        self: &Rc<Self>,
        client: ClientKey,
        sink: &ws::WsSink,
        id: &str,
        payload: &Value,
        init: &Value,
        address: Option<IpAddr>,
    ) -> Result<(), Refused> {
        let payload = relayed_payload(payload, init, address).ok_or(Refused::Malformed)?;
        let link_id = {
            let mut state = self.state.borrow_mut();
            let entry = state.clients.entry(client).or_insert_with(|| Client {
                sink: sink.clone(),
                operations: HashMap::new(),
            });
            if entry.operations.contains_key(id) {
                return Err(Refused::Duplicate);
            }
            if entry.operations.len() >= MAX_IN_FLIGHT {
                return Err(Refused::TooMany);
            }
            let link_id = self.next_id.get() + 1;
            self.next_id.set(link_id);
            entry.operations.insert(id.to_string(), link_id);
            state.routes.insert(link_id, (client, id.to_string()));
            link_id
        };
        let message = json!({ "id": link_id.to_string(), "type": "subscribe", "payload": payload });
        self.open();
        let sent = self
            .state
            .borrow()
            .link
            .as_ref()
            .is_some_and(|link| link.send(message.to_string()).is_ok());
        if sent {
            Ok(())
        } else {
            self.forget(client, id);
            Err(Refused::Gone)
        }
    }

    /// Whether the client has operation `id` running here.
    pub fn has(&self, client: ClientKey, id: &str) -> bool {
        self.state
            .borrow()
            .clients
            .get(&client)
            .is_some_and(|c| c.operations.contains_key(id))
    }

    /// The client completed operation `id`: `false` when it was not one relayed here (or already ended).
    pub fn complete(&self, client: ClientKey, id: &str) -> bool {
        let Some(link_id) = self.forget(client, id) else {
            return false;
        };
        self.send_if_open(complete_text(&link_id.to_string()));
        true
    }

    /// The client is gone: its operations are completed on the link.
    pub fn client_gone(&self, client: ClientKey) {
        let removed = self.state.borrow_mut().clients.remove(&client);
        let Some(removed) = removed else { return };
        for link_id in removed.operations.into_values() {
            self.state.borrow_mut().routes.remove(&link_id);
            self.send_if_open(complete_text(&link_id.to_string()));
        }
    }

    /// Forgets the client's operation `id`; its link id.
    fn forget(&self, client: ClientKey, id: &str) -> Option<u64> {
        let mut state = self.state.borrow_mut();
        let entry = state.clients.get_mut(&client)?;
        let link_id = entry.operations.remove(id)?;
        if entry.operations.is_empty() {
            state.clients.remove(&client);
        }
        state.routes.remove(&link_id);
        Some(link_id)
    }

    /// Sends `text` on the link if there is one (a `complete`: with the link gone, so is the operation).
    fn send_if_open(&self, text: String) {
        if let Some(link) = &self.state.borrow().link {
            let _ = link.send(text);
        }
    }

    /// Starts the link unless one is running.
    fn open(self: &Rc<Self>) {
        let mut state = self.state.borrow_mut();
        if state.link.is_some() {
            return;
        }
        let (to_engine, outgoing) = mpsc::unbounded_channel();
        let (answered, ready) = watch::channel(None);
        state.link = Some(to_engine);
        state.ready = Some(ready);
        hive_router::ntex::rt::spawn(self.clone().run(outgoing, answered));
    }

    /// The link: opens the engine's WebSocket, then carries messages both ways until either side ends.
    async fn run(
        self: Rc<Self>,
        mut outgoing: mpsc::UnboundedReceiver<String>,
        answered: watch::Sender<Option<bool>>,
    ) {
        let Some(mut socket) = self.connect().await else {
            tracing::warn!("live front: the engine's WebSocket did not open");
            let _ = answered.send(Some(false));
            self.broken();
            return;
        };
        // Operations wait for the engine's `connection_ack`: one sent before it would close the link (4401).
        let mut acknowledged = false;
        loop {
            tokio::select! {
                message = outgoing.recv(), if acknowledged => {
                    // The sender lives in the state until the link breaks, so `None` does not come.
                    let Some(text) = message else { return };
                    if socket.send(WireMessage::text(text)).await.is_err() {
                        break;
                    }
                }
                incoming = socket.next() => match incoming {
                    Some(Ok(WireMessage::Text(text))) => {
                        let text = text.as_str();
                        if is_bare(text, "connection_ack") {
                            acknowledged = true;
                            let _ = answered.send(Some(true));
                        } else if is_bare(text, "ping") {
                            let _ = socket.send(WireMessage::text(r#"{"type":"pong"}"#)).await;
                        } else {
                            self.deliver(text);
                        }
                    }
                    Some(Ok(WireMessage::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        tracing::warn!("live front: the engine's WebSocket closed");
        let _ = answered.send(Some(false));
        self.broken();
    }

    async fn connect(
        &self,
    ) -> Option<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    > {
        let mut request = self.front.engine_ws_url().into_client_request().ok()?;
        let headers = request.headers_mut();
        headers.insert("sec-websocket-protocol", SUBPROTOCOL.parse().ok()?);
        headers.insert(LIVE_FRONT, self.front.secret().parse().ok()?);
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.ok()?;
        let init = json!({ "type": "connection_init", "payload": {} }).to_string();
        socket.send(WireMessage::text(init)).await.ok()?;
        Some(socket)
    }

    /// Routes one of the engine's messages to its client, under the client's id; an operation's `error` or
    /// `complete` ends its route.
    fn deliver(&self, text: &str) {
        let Some((link_id, kind)) = id_and_type(text) else {
            return;
        };
        let route = self.state.borrow().routes.get(&link_id).cloned();
        let Some((client, id)) = route else { return };
        let sink = self
            .state
            .borrow()
            .clients
            .get(&client)
            .map(|c| c.sink.clone());
        let Some(sink) = sink else { return };
        if matches!(kind.as_str(), "error" | "complete") {
            self.forget(client, &id);
        }
        if let Some(rewritten) = with_id(text, link_id, &id) {
            write(&sink, text_message(rewritten));
        }
    }

    /// The link broke: the clients with operations on it are told to reconnect; the next operation opens
    /// a new link.
    fn broken(&self) {
        let clients = {
            let mut state = self.state.borrow_mut();
            state.link = None;
            state.ready = None;
            state.routes.clear();
            std::mem::take(&mut state.clients)
        };
        for client in clients.into_values() {
            write(
                &client.sink,
                close(1011, "the API is unavailable; reconnect"),
            );
        }
    }
}

/// Writes `message` to a client now: ntex's `send` encodes into the connection's buffer when called (the
/// future it returns is already done), so a slow client does not hold up the link for the others.
fn write(sink: &ws::WsSink, message: ws::Message) {
    drop(sink.send(message));
}

fn complete_text(link_id: &str) -> String {
    json!({ "id": link_id, "type": "complete" }).to_string()
}

/// Whether `text` is a message of type `kind` without an operation (`connection_ack`, `ping`).
fn is_bare(text: &str, kind: &str) -> bool {
    text.len() < 128
        && serde_json::from_str::<Value>(text)
            .ok()
            .is_some_and(|v| v["type"] == kind && v.get("id").is_none())
}

/// The link id and type of one of the engine's operation messages. The engine writes `type`, then `id`,
/// then `payload`; the first `"id":"` is the message's own, and link ids are digits.
fn id_and_type(text: &str) -> Option<(u64, String)> {
    let kind = field_at_start(text, "\"type\":\"")?;
    let id = field_at_start(text, "\"id\":\"")?;
    Some((id.parse().ok()?, kind.to_string()))
}

/// The string value after the first `key`, which must be within the message's head (before any payload).
fn field_at_start<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let start = text.find(key).filter(|at| *at < HEAD)? + key.len();
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

/// Bytes of a message before its payload: where its `type` and `id` are.
const HEAD: usize = 64;

/// `text` with its link id replaced by the client's `id`.
fn with_id(text: &str, link_id: u64, id: &str) -> Option<String> {
    let quoted = format!("\"id\":\"{link_id}\"");
    let at = text.find(&quoted).filter(|at| *at < HEAD)?;
    let id = Value::from(id).to_string();
    let mut out = String::with_capacity(text.len() + id.len());
    out.push_str(&text[..at]);
    out.push_str("\"id\":");
    out.push_str(&id);
    out.push_str(&text[at + quoted.len()..]);
    Some(out)
}

/// The `subscribe` payload relayed for a client: checked as the engine reads it (`query` a string,
/// `operationName` a string, `variables` and `extensions` objects, each optional), with `extensions.headers`
/// replaced by the client's headers and its address. `None` when malformed.
pub fn relayed_payload(payload: &Value, init: &Value, address: Option<IpAddr>) -> Option<Value> {
    let fields = payload.as_object()?;
    let optional =
        |name: &str, ok: fn(&Value) -> bool| fields.get(name).is_none_or(|v| v.is_null() || ok(v));
    let well_formed = optional("query", Value::is_string)
        && optional("operationName", Value::is_string)
        && optional("variables", Value::is_object)
        && optional("extensions", Value::is_object);
    if !well_formed {
        return None;
    }
    let init_headers = match init.get("headers") {
        Some(headers) if headers.is_object() => headers,
        _ => init,
    };
    let mut headers = Map::new();
    for source in [init_headers, &payload["extensions"]["headers"]] {
        for (name, value) in source.as_object().into_iter().flatten() {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            headers.insert(name.to_ascii_lowercase(), Value::String(value));
        }
    }
    for name in NOT_THE_CLIENTS {
        headers.remove(name);
    }
    if let Some(address) = address {
        headers.insert(FORWARDED_FOR.into(), Value::String(address.to_string()));
    }
    let mut relayed = fields.clone();
    let extensions = relayed
        .entry("extensions")
        .or_insert_with(|| Value::Object(Map::new()));
    if !extensions.is_object() {
        *extensions = Value::Object(Map::new());
    }
    extensions["headers"] = Value::Object(headers);
    Some(Value::Object(relayed))
}

/// The `error` answering an operation over [`MAX_IN_FLIGHT`].
pub fn too_many(id: &str) -> ws::Message {
    text_message(
        json!({ "id": id, "type": "error", "payload": [{
            "message": format!("at most {MAX_IN_FLIGHT} operations may run at once on one connection"),
            "extensions": { "code": ErrorCode::RateLimited.as_str() },
        }] })
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_headers_go_with_each_operation_and_its_address_is_the_connections() {
        let init =
            json!({ "Authorization": "Bearer a", "X-Forwarded-For": "6.6.6.6", "n": 1, "o": {} });
        let payload = json!({ "query": "{ me { id } }", "extensions": {
            "headers": { "x-client": "web", "x-parley-live-front": "guess", "X-Real-IP": "7.7.7.7" },
            "persistedQuery": { "version": 1 } } });
        let relayed =
            relayed_payload(&payload, &init, "203.0.113.5".parse().ok()).expect("relayed");
        assert_eq!(
            relayed["extensions"]["headers"],
            json!({ "authorization": "Bearer a", "n": "1", "x-client": "web",
                    "x-forwarded-for": "203.0.113.5" })
        );
        assert_eq!(relayed["extensions"]["persistedQuery"]["version"], 1);
        assert_eq!(relayed["query"], "{ me { id } }");
        // The operation's own header wins over the connection's; nested `headers` are the connection's.
        let init =
            json!({ "headers": { "authorization": "Bearer old" }, "authorization": "Bearer top" });
        let payload = json!({ "extensions": { "headers": { "Authorization": "Bearer new" } } });
        let relayed = relayed_payload(&payload, &init, None).expect("relayed");
        assert_eq!(
            relayed["extensions"]["headers"],
            json!({ "authorization": "Bearer new" })
        );
        let relayed = relayed_payload(&json!({}), &init, None).expect("relayed");
        assert_eq!(
            relayed["extensions"]["headers"],
            json!({ "authorization": "Bearer old" })
        );
    }

    #[test]
    fn what_the_engine_would_refuse_is_not_relayed() {
        for bad in [
            json!("query"),
            json!({ "query": 1 }),
            json!({ "operationName": [] }),
            json!({ "variables": "x" }),
            json!({ "extensions": 2 }),
        ] {
            assert_eq!(relayed_payload(&bad, &Value::Null, None), None, "{bad}");
        }
        assert!(relayed_payload(
            &json!({ "query": "{ a }", "variables": null }),
            &Value::Null,
            None
        )
        .is_some());
    }

    #[test]
    fn the_engines_answers_go_back_under_the_clients_id() {
        let next = r#"{"type":"next","id":"42","payload":{"data":{"id":"42"}}}"#;
        assert_eq!(id_and_type(next), Some((42, "next".to_string())));
        assert_eq!(
            with_id(next, 42, "sub \"1\"").as_deref(),
            Some(r#"{"type":"next","id":"sub \"1\"","payload":{"data":{"id":"42"}}}"#)
        );
        assert_eq!(
            id_and_type(r#"{"type":"complete","id":"7"}"#),
            Some((7, "complete".to_string()))
        );
        assert_eq!(id_and_type(r#"{"type":"next","id":"x"}"#), None);
        assert!(is_bare(r#"{"type":"connection_ack"}"#, "connection_ack"));
        assert!(is_bare(r#"{"type":"ping","payload":{}}"#, "ping"));
        assert!(!is_bare(r#"{"type":"next","id":"1"}"#, "ping"));
    }
}
