//! The event bus between instances and machines: Redis Streams.
//!
//! - Each producing subgraph has one stream, `parley:events:<source>`; an entry's one field `event` is the
//!   JSON envelope. It is trimmed every few seconds ([`RedisBus::trim`]) only below what every consumer
//!   group has acknowledged, never past an entry a slow group has not read: a group that falls more than
//!   `event_stream_maxlen` behind is reported (log and `parley_event_stream_unread` gauge), not skipped.
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
    trimmer: tokio::task::JoinHandle<()>,
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.tail.abort();
        self.trimmer.abort();
    }
}

/// How often the stream is trimmed.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// A stream id (`<ms>-<seq>`) as a comparable pair.
fn stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
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
        let trimmer = {
            let (conn, stream) = (conn.clone(), stream.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(TRIM_EVERY).await;
                    if let Err(err) = trim(&mut conn.clone(), &stream, maxlen).await {
                        tracing::debug!(%stream, error = %err, "stream trim failed; next round");
                    }
                }
            })
        };
        Ok(Arc::new(Self {
            client,
            conn,
            stream,
            maxlen,
            live,
            tail,
            trimmer,
        }))
    }

    /// Trims this subgraph's stream now ([`trim`]); returns its length after.
    pub async fn trim(&self) -> Result<u64, BusError> {
        trim(&mut self.conn.clone(), &self.stream, self.maxlen).await
    }
}

/// Deletes the entries every consumer group of `stream` has acknowledged: below the oldest entry any group
/// still holds pending, or has not been delivered yet. Without groups (no consumer yet) the stream keeps
/// about `maxlen` entries. A stream still longer than `maxlen` after trimming has a group that fell behind:
/// reported, never cut. Returns the length after.
pub async fn trim(
    conn: &mut ConnectionManager,
    stream: &str,
    maxlen: u64,
) -> Result<u64, BusError> {
    let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(conn)
        .await
        .or_else(|err| {
            // No stream yet: nothing to trim.
            if err.to_string().contains("no such key") {
                Ok(Vec::new())
            } else {
                Err(err)
            }
        })
        .map_err(unavailable)?;
    let mut keep_from: Option<(u64, u64)> = None;
    for group in &groups {
        let name: String = group
            .get("name")
            .and_then(|v| redis::from_redis_value_ref(v).ok())
            .unwrap_or_default();
        let pending: u64 = group
            .get("pending")
            .and_then(|v| redis::from_redis_value_ref(v).ok())
            .unwrap_or(0);
        let oldest_needed = if pending > 0 {
            let summary: Vec<redis::Value> = redis::cmd("XPENDING")
                .arg(stream)
                .arg(&name)
                .query_async(conn)
                .await
                .map_err(unavailable)?;
            summary
                .get(1)
                .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
        } else {
            // Everything up to the last delivered entry is acknowledged; it stays (harmless) as the floor.
            group
                .get("last-delivered-id")
                .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
        };
        let Some(id) = oldest_needed.as_deref().and_then(stream_id) else {
            return Ok(0); // a group we cannot read: trim nothing
        };
        keep_from = Some(keep_from.map_or(id, |k| k.min(id)));
    }
    let mut cmd = redis::cmd("XTRIM");
    cmd.arg(stream);
    match keep_from {
        Some((ms, seq)) => cmd.arg("MINID").arg(format!("{ms}-{seq}")),
        None => cmd.arg("MAXLEN").arg("~").arg(maxlen),
    };
    let _: i64 = cmd.query_async(conn).await.map_err(unavailable)?;
    let len: u64 = redis::cmd("XLEN")
        .arg(stream)
        .query_async(conn)
        .await
        .map_err(unavailable)?;
    metrics::gauge!("parley_event_stream_unread", "stream" => stream.to_string()).set(len as f64);
    if len > maxlen {
        tracing::warn!(%stream, len, maxlen, "a consumer group is far behind; its unread events are kept");
    }
    Ok(len)
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
    /// `XADD` of one event to this subgraph's stream (trimming is [`trim`]'s, which knows what was read).
    fn append(&self, event: &EventEnvelope) -> Result<redis::Cmd, BusError> {
        let json = serde_json::to_string(event)
            .map_err(|e| BusError::Unavailable(format!("encoding event: {e}")))?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.stream).arg("*").arg(FIELD).arg(json);
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

    /// One round trip for the whole batch (a pipeline keeps its order); the entries' stream ids.
    async fn publish_batch(
        &self,
        events: &[EventEnvelope],
    ) -> Result<Vec<Option<String>>, BusError> {
        let mut pipe = redis::pipe();
        for event in events {
            pipe.add_command(self.append(event)?);
        }
        let ids: Vec<String> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(ids.into_iter().map(Some).collect())
    }

    /// `XDEL` of the entries: gone for every group and tail that has not read them yet.
    async fn erase(&self, ids: &[String]) -> Result<(), BusError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: i64 = redis::cmd("XDEL")
            .arg(&self.stream)
            .arg(ids)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<EventEnvelope> {
        self.live.subscribe()
    }
}
