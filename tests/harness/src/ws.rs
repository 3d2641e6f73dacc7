//! A graphql-transport-ws client of the router (WebSocket on `/graphql`).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::platform::Platform;

/// A graphql-transport-ws client connection to the router.
pub struct WsClient {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
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
        WsClient { socket }
    }

    /// Sends one text frame as it is.
    pub async fn send_raw(&mut self, text: &str) {
        use futures::SinkExt;
        self.socket
            .send(text.to_string().into())
            .await
            .expect("send frame");
    }

    /// The close code the server ends the connection with (skipping other frames), within `wait`.
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.socket.next())
                .await
                .ok()??
            {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
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
        use futures::StreamExt;
        let mut client = Self::open_url(ws_url).await;
        client
            .send_raw(&json!({ "type": "connection_init", "payload": payload }).to_string())
            .await;
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), client.socket.next())
                .await
                .expect("ack in time")
                .expect("open")
                .expect("frame");
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
        use futures::SinkExt;
        self.socket
            .send(json!({ "id": id, "type": "complete" }).to_string().into())
            .await
            .expect("send complete");
    }

    /// The next `next`/`error` message (pings answered), within `wait`.
    pub async fn next_message(&mut self, wait: Duration) -> Option<Value> {
        use futures::{SinkExt, StreamExt};
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let msg = tokio::time::timeout(left, self.socket.next())
                .await
                .ok()??
                .ok()?;
            let Ok(text) = msg.to_text() else { continue };
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            match v["type"].as_str() {
                Some("ping") => {
                    let _ = self
                        .socket
                        .send(json!({ "type": "pong" }).to_string().into())
                        .await;
                }
                Some("next") | Some("error") | Some("complete") => return Some(v),
                _ => {}
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

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
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
