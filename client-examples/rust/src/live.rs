//! A chat followed live over graphql-transport-ws, the way a chat screen needs it: every message once, in
//! order, across dropped connections.
//!
//! One background task per [`ChatFeed`] runs connect → `connection_init` (the access token) →
//! `subscribe` to `messageAdded` → a resync with `messages(afterSeq: last)`, then reads. Messages carry their
//! chat position `seq`, so the feed yields only what comes after the last one it yielded: the resync and the
//! live stream may overlap, never duplicate, and a gap in `seq` triggers another resync. When the connection
//! drops (or goes quiet past [`QUIET_LIMIT`]) the task reconnects with backoff; when the server refuses the
//! token it refreshes first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use graphql_client::GraphQLQuery;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::client::Parley;
use crate::error::ClientError;
use crate::operations::{self, MessageAdded, MessagesAfter};

/// A message as the feed yields it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub id: String,
    /// Position in the chat: 1, 2, 3, … with no gaps.
    pub seq: i64,
    /// `None` once deleted for everyone.
    pub text: Option<String>,
    pub author: String,
}

// The `ChatMessage` fragment, generated once per operation module that selects it.
macro_rules! message_from {
    ($($module:ident),*) => {$(
        impl From<operations::$module::ChatMessage> for ChatMessage {
            fn from(message: operations::$module::ChatMessage) -> Self {
                ChatMessage {
                    id: message.id,
                    seq: message.seq,
                    text: message.text,
                    author: message.author.nickname,
                }
            }
        }
    )*};
}
message_from!(message_added, messages_after, send_message);

/// The client pings this often, so a dead connection shows.
const PING_EVERY: Duration = Duration::from_secs(15);
/// A connection silent this long (no pong, no event) is dropped and replaced.
pub const QUIET_LIMIT: Duration = Duration::from_secs(40);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Messages of one chat as they arrive; stops its task when dropped.
pub struct ChatFeed {
    messages: mpsc::Receiver<Result<ChatMessage, ClientError>>,
    reconnects: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl ChatFeed {
    /// Follows `chat_id` from the message after `after_seq` (0: from the start).
    pub fn follow(parley: &Parley, chat_id: &str, after_seq: i64) -> ChatFeed {
        let (sender, messages) = mpsc::channel(256);
        let reconnects = Arc::new(AtomicU64::new(0));
        let follower = Follower {
            parley: parley.clone(),
            chat_id: chat_id.to_string(),
            last_seq: after_seq,
            sender,
            reconnects: reconnects.clone(),
        };
        ChatFeed {
            messages,
            reconnects,
            task: tokio::spawn(follower.run()),
        }
    }

    /// The next message; an error ends the feed (signed out, not a member any more); `None` once ended.
    pub async fn next(&mut self) -> Option<Result<ChatMessage, ClientError>> {
        self.messages.recv().await
    }

    /// How many times the connection was replaced.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }
}

impl Drop for ChatFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why one connection ended.
enum Ended {
    /// The feed is over: the reader left, or the server completed the stream.
    Done,
    /// Connect again (after a pause, unless it was only the token).
    Reconnect { pause: bool },
    /// Tell the reader and stop.
    Fatal(ClientError),
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Follower {
    parley: Parley,
    chat_id: String,
    last_seq: i64,
    sender: mpsc::Sender<Result<ChatMessage, ClientError>>,
    reconnects: Arc<AtomicU64>,
}

impl Follower {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.connection(&mut backoff).await {
                Ended::Done => return,
                Ended::Fatal(error) => {
                    let _ = self.sender.send(Err(error)).await;
                    return;
                }
                Ended::Reconnect { pause } => {
                    if self.sender.is_closed() {
                        return;
                    }
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                    if pause {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
    }

    /// One connection, from the handshake to its end.
    async fn connection(&mut self, backoff: &mut Duration) -> Ended {
        let token = self.parley.tokens().map(|t| t.access_token);
        let mut socket = match self.open(token.as_deref()).await {
            Ok(socket) => socket,
            Err(Refused::Token) => return self.refreshed(token.as_deref()).await,
            Err(Refused::Other) => return Ended::Reconnect { pause: true },
        };
        *backoff = Duration::from_millis(100);
        let subscribe = MessageAdded::build_query(operations::message_added::Variables {
            chat_id: self.chat_id.clone(),
        });
        let frame = json!({"id": "1", "type": "subscribe", "payload": subscribe});
        if socket.send(Frame::text(frame.to_string())).await.is_err() {
            return Ended::Reconnect { pause: true };
        }
        // After subscribing, so nothing falls between the history and the stream.
        if let Err(ended) = self.resync().await {
            return ended;
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        let mut heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                frame = socket.next() => {
                    heard = tokio::time::Instant::now();
                    let text = match frame {
                        Some(Ok(Frame::Text(text))) => text,
                        Some(Ok(Frame::Close(frame))) => {
                            let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                            return if matches!(code, 4401 | 4403) {
                                self.refreshed(token.as_deref()).await
                            } else {
                                Ended::Reconnect { pause: true }
                            };
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(_)) | None => return Ended::Reconnect { pause: true },
                    };
                    match self.handle(&mut socket, &text, token.as_deref()).await {
                        Ok(()) => {}
                        Err(ended) => return ended,
                    }
                }
                _ = ping.tick() => {
                    if heard.elapsed() > QUIET_LIMIT {
                        return Ended::Reconnect { pause: false };
                    }
                    if socket.send(Frame::text(r#"{"type":"ping"}"#)).await.is_err() {
                        return Ended::Reconnect { pause: true };
                    }
                }
                _ = self.sender.closed() => return Ended::Done,
            }
        }
    }

    /// Opens the socket and completes the graphql-transport-ws handshake.
    async fn open(&self, token: Option<&str>) -> Result<Socket, Refused> {
        let mut request = self
            .parley
            .ws_url()
            .into_client_request()
            .map_err(|_| Refused::Other)?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().map_err(|_| Refused::Other)?,
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|_| Refused::Other)?;
        let payload = match token {
            Some(token) => json!({"Authorization": format!("Bearer {token}")}),
            None => json!({}),
        };
        let init = json!({"type": "connection_init", "payload": payload});
        socket
            .send(Frame::text(init.to_string()))
            .await
            .map_err(|_| Refused::Other)?;
        loop {
            let frame = tokio::time::timeout(QUIET_LIMIT, socket.next())
                .await
                .map_err(|_| Refused::Other)?;
            match frame {
                Some(Ok(Frame::Text(text))) => {
                    let message: Value = serde_json::from_str(&text).map_err(|_| Refused::Other)?;
                    match message["type"].as_str() {
                        Some("connection_ack") => return Ok(socket),
                        Some("ping") => {
                            let _ = socket.send(Frame::text(r#"{"type":"pong"}"#)).await;
                        }
                        _ => return Err(Refused::Other),
                    }
                }
                Some(Ok(Frame::Close(Some(close))))
                    if matches!(u16::from(close.code), 4401 | 4403) =>
                {
                    return Err(Refused::Token)
                }
                Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => continue,
                _ => return Err(Refused::Other),
            }
        }
    }

    /// One text frame of the running subscription.
    async fn handle(
        &mut self,
        socket: &mut Socket,
        text: &str,
        token: Option<&str>,
    ) -> Result<(), Ended> {
        let message: Value = serde_json::from_str(text)
            .map_err(|_| Ended::Fatal(ClientError::Protocol(format!("not JSON: {text}"))))?;
        match message["type"].as_str() {
            Some("next") => {
                let answer: graphql_client::Response<operations::message_added::ResponseData> =
                    serde_json::from_value(message["payload"].clone())
                        .map_err(|e| Ended::Fatal(ClientError::Protocol(e.to_string())))?;
                if let Some(error) = answer.errors.and_then(|errors| errors.into_iter().next()) {
                    return Err(self.refused(error, token).await);
                }
                if let Some(data) = answer.data {
                    let message = ChatMessage::from(data.message_added);
                    if message.seq > self.last_seq + 1 {
                        // Something was missed (the server dropped an event for a slow reader): fetch it.
                        self.resync().await?;
                    }
                    self.deliver(message).await?;
                }
                Ok(())
            }
            Some("error") => {
                let errors: Vec<graphql_client::Error> =
                    serde_json::from_value(message["payload"].clone()).unwrap_or_default();
                match errors.into_iter().next() {
                    Some(error) => Err(self.refused(error, token).await),
                    None => Err(Ended::Reconnect { pause: true }),
                }
            }
            Some("complete") => Err(Ended::Done),
            Some("ping") => {
                let _ = socket.send(Frame::text(r#"{"type":"pong"}"#)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// What a GraphQL error on the stream means: a stale token is refreshed and the connection replaced;
    /// anything else (not a member, no such chat) ends the feed.
    async fn refused(&self, error: graphql_client::Error, token: Option<&str>) -> Ended {
        match ClientError::from(error) {
            error if error.is_unauthenticated() => self.refreshed(token).await,
            error => Ended::Fatal(error),
        }
    }

    async fn refreshed(&self, token: Option<&str>) -> Ended {
        match self.parley.refresh(token).await {
            Ok(()) => Ended::Reconnect { pause: false },
            Err(ClientError::SignedOut) => Ended::Fatal(ClientError::SignedOut),
            Err(_) => Ended::Reconnect { pause: true },
        }
    }

    /// Yields every message after the last one yielded, a page at a time.
    async fn resync(&mut self) -> Result<(), Ended> {
        loop {
            let variables = operations::messages_after::Variables {
                chat_id: self.chat_id.clone(),
                after_seq: self.last_seq,
            };
            let page = match self.parley.run::<MessagesAfter>(variables).await {
                Ok(page) => page.chat.messages.edges,
                Err(ClientError::SignedOut) => return Err(Ended::Fatal(ClientError::SignedOut)),
                Err(ClientError::GraphQl { code, message }) if code != "INTERNAL" => {
                    return Err(Ended::Fatal(ClientError::GraphQl { code, message }))
                }
                Err(_) => return Err(Ended::Reconnect { pause: true }),
            };
            let full = page.len() >= 100;
            for edge in page {
                self.deliver(edge.node.into()).await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Hands `message` to the reader unless it was already handed over.
    async fn deliver(&mut self, message: ChatMessage) -> Result<(), Ended> {
        if message.seq <= self.last_seq {
            return Ok(());
        }
        self.last_seq = message.seq;
        self.sender.send(Ok(message)).await.map_err(|_| Ended::Done)
    }
}

/// Why a handshake failed.
enum Refused {
    /// The server refused the token (close 4401/4403).
    Token,
    Other,
}
