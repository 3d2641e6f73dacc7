//! A graphql-transport-ws client of the router (WebSocket on `/graphql`).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::platform::Platform;

/// A graphql-transport-ws client connection to the router. A task owns the socket and answers the
/// server's pings at once, as real clients (graphql-ws, Apollo) do, so a test that is busy elsewhere for a
/// while is not closed as a silent client; every other frame waits in `incoming` for the test to read.
/// Dropping the client drops the connection without a close frame (a client that just goes away).
pub struct WsClient {
    outgoing: mpsc::UnboundedSender<Message>,
    incoming: mpsc::UnboundedReceiver<Message>,
}

impl WsClient {
    /// Opens a graphql-transport-ws socket to the router without sending `connection_init`.
    pub async fn open(p: &Platform) -> WsClient {
        Self::open_url(&p.ws_url()).await
    }

    /// Opens a graphql-transport-ws socket to `ws_url` (a router's, or a subgraph's `/ws`) without sending
    /// `connection_init`.
    pub async fn open_url(ws_url: &str) -> WsClient {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = ws_url.into_client_request().expect("ws request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("ws connect");
        let (outgoing, to_send) = mpsc::unbounded_channel();
        let (received, incoming) = mpsc::unbounded_channel();
        tokio::spawn(pump(socket, to_send, received));
        WsClient { outgoing, incoming }
    }

    /// Sends one text frame as it is (nothing happens if the connection is gone).
    pub async fn send_raw(&mut self, text: &str) {
        let _ = self.outgoing.send(text.to_string().into());
    }

    /// The next frame the server sent (pings excepted), within `wait`; `None` when the time is up or the
    /// connection is gone.
    async fn next_frame(&mut self, deadline: Instant) -> Option<Message> {
        let left = deadline.checked_duration_since(Instant::now())?;
        tokio::time::timeout(left, self.incoming.recv())
            .await
            .ok()?
    }

    /// The close code the server ends the connection with (skipping other frames), within `wait`.
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        let deadline = Instant::now() + wait;
        loop {
            if let Message::Close(frame) = self.next_frame(deadline).await? {
                return frame.map(|f| u16::from(f.code));
            }
        }
    }

    /// Connects to the router's `/graphql`, sends `connection_init` (with the token, if any), waits for the ack.
    pub async fn connect(p: &Platform, token: Option<&str>) -> WsClient {
        Self::connect_url(&p.ws_url(), token).await
    }

    /// Like [`Self::connect`], to the router at `ws_url`.
    pub async fn connect_url(ws_url: &str, token: Option<&str>) -> WsClient {
        let payload = match token {
            Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
            None => json!({}),
        };
        Self::connect_with(ws_url, payload).await
    }

    /// Opens `ws_url`, sends `connection_init` with `payload`, waits for the ack.
    pub async fn connect_with(ws_url: &str, payload: Value) -> WsClient {
        let mut client = Self::open_url(ws_url).await;
        client
            .send_raw(&json!({ "type": "connection_init", "payload": payload }).to_string())
            .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let msg = client.next_frame(deadline).await.expect("ack in time");
            if let Ok(text) = msg.to_text() {
                let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                if v["type"] == "connection_ack" {
                    return client;
                }
                assert_ne!(v["type"], "error", "{v}");
            }
        }
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.subscribe_with(id, json!({ "query": query, "variables": variables }))
            .await;
    }

    /// Sends a `subscribe` with this payload as it is (e.g. with `extensions`).
    pub async fn subscribe_with(&mut self, id: &str, payload: Value) {
        self.send_raw(&json!({ "id": id, "type": "subscribe", "payload": payload }).to_string())
            .await;
    }

    pub async fn complete(&mut self, id: &str) {
        self.send_raw(&json!({ "id": id, "type": "complete" }).to_string())
            .await;
    }

    /// The next `next`/`error`/`complete` message, within `wait`.
    pub async fn next_message(&mut self, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let msg = self.next_frame(deadline).await?;
            let Ok(text) = msg.to_text() else { continue };
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            if matches!(v["type"].as_str(), Some("next" | "error" | "complete")) {
                return Some(v);
            }
        }
    }

    /// The next `next`/`error` message for subscription `id` (other ids' messages and `complete`s skipped).
    pub async fn next_for(&mut self, id: &str, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let message = self.next_message(left).await?;
            if message["id"] == id && message["type"] != "complete" {
                return Some(message);
            }
        }
    }

    /// Closes the connection with a close frame.
    pub async fn close(self) {
        let _ = self.outgoing.send(Message::Close(None));
    }
}

/// Owns the socket: sends what the client queues, answers pings, hands every other frame to the client.
/// Ends when the server closes, or when the client sends a close frame or is dropped.
async fn pump(
    mut socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    mut to_send: mpsc::UnboundedReceiver<Message>,
    received: mpsc::UnboundedSender<Message>,
) {
    use futures::{SinkExt, StreamExt};
    loop {
        tokio::select! {
            queued = to_send.recv() => match queued {
                Some(Message::Close(frame)) => {
                    let _ = socket.close(frame).await;
                    return;
                }
                Some(message) => {
                    if socket.send(message).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            frame = socket.next() => {
                let Some(Ok(frame)) = frame else { return };
                let is_ping = frame
                    .to_text()
                    .ok()
                    .and_then(|text| serde_json::from_str::<Value>(text).ok())
                    .is_some_and(|v| v["type"] == "ping");
                if is_ping {
                    let _ = socket.send(json!({ "type": "pong" }).to_string().into()).await;
                } else if received.send(frame).is_err() {
                    return;
                }
            }
        }
    }
}

/// The error codes of a subscription's answer: an `error` message's payload, or a `next` carrying errors.
pub fn ws_codes(message: &Value) -> Vec<String> {
    let errors = if message["type"] == "error" {
        message["payload"].clone()
    } else {
        message["payload"]["errors"].clone()
    };
    errors
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["extensions"]["code"].as_str().map(str::to_string))
        .collect()
}
