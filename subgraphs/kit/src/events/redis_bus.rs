//! The event bus between instances and machines: Redis Streams.
//!
//! - Each producing subgraph has one stream, `parley:events:<source>`, trimmed to about
//!   `event_stream_maxlen` entries; an entry's one field `event` is the JSON envelope.
//! - [`RedisBus::publish`] appends (the relay calls it in outbox order, and marks a row published only once
//!   Redis answered; ephemeral signals such as typing are appended directly).
//! - Every instance tails its own subgraph's stream ([`RedisBus::subscribe`]) for live subscriptions, so an
//!   event written through any instance reaches the subscribers of all of them.
//! - Other subgraphs read the stream through consumer groups ([`super::group`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::StreamReadReply;
use redis::AsyncConnectionConfig;
use tokio::sync::broadcast;

use super::{BusError, EventBus, EventEnvelope};

/// The stream a subgraph publishes to.
pub fn stream_key(source: &str) -> String {
    format!("parley:events:{source}")
}

/// The entry field holding the envelope.
pub(crate) const FIELD: &str = "event";

/// How long a blocking read waits before it asks again (and notices a dead connection).
pub(crate) const BLOCK_MS: u64 = 2_000;

/// Connects to Redis: a managed connection for ordinary commands (reconnects by itself).
pub async fn connect(client: &redis::Client) -> Result<ConnectionManager, BusError> {
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(3)))
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_max_delay(Duration::from_secs(1))
        .set_number_of_retries(2);
    ConnectionManager::new_with_config(client.clone(), config)
        .await
        .map_err(unavailable)
}

/// A connection of its own for blocking reads (a blocked command holds its connection; no response timeout).
pub(crate) async fn blocking_connection(
    client: &redis::Client,
) -> Result<MultiplexedConnection, BusError> {
    let config = AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(Some(Duration::from_secs(3)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(unavailable)
}

pub(crate) fn unavailable(err: redis::RedisError) -> BusError {
    BusError::Unavailable(err.to_string())
}

/// A subgraph's handle on the Redis bus.
pub struct RedisBus {
    pub client: redis::Client,
    pub conn: ConnectionManager,
    stream: String,
    maxlen: u64,
    live: broadcast::Sender<EventEnvelope>,
    tail: tokio::task::JoinHandle<()>,
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.tail.abort();
    }
}

impl RedisBus {
    /// Connects and starts tailing `source`'s stream for live subscribers.
    pub async fn connect(url: &str, source: &str, maxlen: u64) -> Result<Arc<Self>, BusError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let mut conn = connect(&client).await?;
        let stream = stream_key(source);
        // Start after the newest entry: live subscribers want what happens from now on.
        let newest: Vec<(String, redis::Value)> = redis::cmd("XREVRANGE")
            .arg(&stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let after = newest
            .first()
            .map_or_else(|| "0-0".to_string(), |e| e.0.clone());
        let live = broadcast::channel(4096).0;
        let tail = tokio::spawn(tail(client.clone(), stream.clone(), after, live.clone()));
        Ok(Arc::new(Self {
            client,
            conn,
            stream,
            maxlen,
            live,
            tail,
        }))
    }
}

/// Reads the stream after `after` forever and hands each event to the live subscribers of this process.
async fn tail(
    client: redis::Client,
    stream: String,
    mut after: String,
    live: broadcast::Sender<EventEnvelope>,
) {
    loop {
        let mut conn = match blocking_connection(&client).await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::debug!(error = %err, "live tail: Redis unavailable; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        loop {
            let reply: Result<Option<StreamReadReply>, _> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(500)
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("STREAMS")
                .arg(&stream)
                .arg(&after)
                .query_async(&mut conn)
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(err) => {
                    tracing::debug!(error = %err, "live tail: read failed; reconnecting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            };
            for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                after = entry.id.clone();
                if let Some(event) = decode(&entry) {
                    let _ = live.send(event);
                }
            }
        }
    }
}

/// The envelope of a stream entry (`None`, logged, for an entry that is not one).
pub(crate) fn decode(entry: &redis::streams::StreamId) -> Option<EventEnvelope> {
    let text: String = entry.get(FIELD)?;
    match serde_json::from_str(&text) {
        Ok(event) => Some(event),
        Err(err) => {
            tracing::warn!(id = %entry.id, error = %err, "stream entry is not an event");
            None
        }
    }
}

impl RedisBus {
    /// `XADD` of one event to this subgraph's stream, trimmed to about `maxlen` entries.
    fn append(&self, event: &EventEnvelope) -> Result<redis::Cmd, BusError> {
        let json = serde_json::to_string(event)
            .map_err(|e| BusError::Unavailable(format!("encoding event: {e}")))?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.maxlen)
            .arg("*")
            .arg(FIELD)
            .arg(json);
        Ok(cmd)
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, event: &EventEnvelope) -> Result<(), BusError> {
        let _: String = self
            .append(event)?
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// One round trip for the whole batch (a pipeline keeps its order).
    async fn publish_batch(&self, events: &[EventEnvelope]) -> Result<(), BusError> {
        let mut pipe = redis::pipe();
        for event in events {
            pipe.add_command(self.append(event)?).ignore();
        }
        let () = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<EventEnvelope> {
        self.live.subscribe()
    }
}
