//! Consuming another subgraph's Redis stream through a consumer group (one group per consuming subgraph).
//!
//! At-least-once from Redis, exactly-once in effect: an entry is acknowledged (`XACK`) only after
//! [`super::consumer::apply`] committed it together with its inbox row, so a redelivery changes nothing.
//! One instance of the consuming subgraph reads the group at a time (a [`crate::lease::Leadership`] lease),
//! which keeps events in stream order — and so in order per aggregate. Each round:
//! 1. entries other consumers were handed and never acknowledged are claimed (`XAUTOCLAIM`): all of them
//!    when this instance has just taken over (the previous holder is gone), else those idle longer than the
//!    takeover time;
//! 2. this consumer's own pending entries are applied, in order;
//! 3. new entries are read (`XREADGROUP … >`, blocking briefly) and applied.
//!
//! An entry that fails stays pending and is retried next round before anything newer. While the consuming
//! store is unavailable it is retried with backoff, uncounted, however long that lasts; after
//! `max_deliveries` failures of its own (at once when its payload does not decode: no retry can help) it
//! goes to the dead-letter stream `parley:dead:<source>:<group>` and is acknowledged, so one poison event
//! cannot stop a domain ([`super::consumer::Attempts`]).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{StreamId, StreamReadReply};
use sea_orm::DatabaseConnection;

use super::consumer::{apply, apply_batch_only, Attempts, EventHandler, Verdict};
use super::redis_bus::{blocking_connection, decode, stream_key, unavailable, BLOCK_MS, FIELD};
use super::{BusError, EventEnvelope};

const BATCH: usize = 200;

/// One consuming subgraph's reading of one producer's stream.
#[derive(Clone)]
pub struct GroupConsumer {
    pub client: redis::Client,
    pub conn: ConnectionManager,
    /// The producer (`users`, …).
    pub source: String,
    /// The consuming subgraph: the group's name.
    pub group: String,
    /// This instance: the consumer's name within the group.
    pub consumer: String,
    /// Entries idle this long in another consumer are taken over.
    pub claim_after: Duration,
    pub max_deliveries: u32,
}

/// The dead-letter stream of `group`'s reading of `source`.
pub fn dead_letter_key(source: &str, group: &str) -> String {
    format!("parley:dead:{source}:{group}")
}

impl GroupConsumer {
    /// Reads and applies until cancelled (the lease holder runs this); Redis or store failures back off and
    /// retry.
    pub async fn run(self, db: DatabaseConnection, handler: Arc<dyn EventHandler>) {
        let mut attempts = Attempts::default();
        let mut just_took_over = true;
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut blocking = match blocking_connection(&self.client).await {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::debug!(error = %err, "event group: Redis unavailable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            loop {
                let round = self
                    .round(
                        &mut blocking,
                        &db,
                        handler.as_ref(),
                        &mut attempts,
                        just_took_over,
                    )
                    .await;
                match round {
                    Ok(()) => {
                        just_took_over = false;
                        backoff = Duration::from_millis(100);
                    }
                    Err(err) => {
                        tracing::debug!(source = %self.source, error = %err, "event group round failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        break; // a fresh connection: the old one may be dead
                    }
                }
            }
        }
    }

    async fn round(
        &self,
        blocking: &mut MultiplexedConnection,
        db: &DatabaseConnection,
        handler: &dyn EventHandler,
        attempts: &mut Attempts,
        just_took_over: bool,
    ) -> Result<(), BusError> {
        let stream = stream_key(&self.source);
        let mut conn = self.conn.clone();
        self.ensure_group(&mut conn, &stream).await?;
        let min_idle = if just_took_over {
            0
        } else {
            self.claim_after.as_millis() as u64
        };
        self.claim(&mut conn, &stream, min_idle).await?;

        let pending = self.read(&mut conn, &stream, "0", None).await?;
        if !pending.is_empty() {
            if let Some(delay) = self
                .apply_all(&mut conn, &stream, db, handler, attempts, pending)
                .await?
            {
                // Back off before retrying the failed entry (nothing newer goes first).
                tokio::time::sleep(delay).await;
            }
            return Ok(());
        }
        let fresh = self.read(blocking, &stream, ">", Some(BLOCK_MS)).await?;
        self.apply_all(&mut conn, &stream, db, handler, attempts, fresh)
            .await?;
        Ok(())
    }

    /// Creates the group reading from the stream's start (a stream recreated after a Redis restart holds
    /// only events not yet delivered; the inbox skips any seen before).
    async fn ensure_group(
        &self,
        conn: &mut ConnectionManager,
        stream: &str,
    ) -> Result<(), BusError> {
        let created: Result<String, redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
            Err(err) => Err(unavailable(err)),
        }
    }

    /// Takes over entries idle for `min_idle_ms` in other consumers of the group.
    async fn claim(
        &self,
        conn: &mut ConnectionManager,
        stream: &str,
        min_idle_ms: u64,
    ) -> Result<(), BusError> {
        let mut cursor = "0-0".to_string();
        for _ in 0..100 {
            let reply: Vec<redis::Value> = redis::cmd("XAUTOCLAIM")
                .arg(stream)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(min_idle_ms)
                .arg(&cursor)
                .arg("COUNT")
                .arg(BATCH)
                .arg("JUSTID")
                .query_async(conn)
                .await
                .map_err(unavailable)?;
            let next: String = reply
                .first()
                .and_then(|v| redis::from_redis_value_ref(v).ok())
                .unwrap_or_else(|| "0-0".into());
            if next == "0-0" {
                break;
            }
            cursor = next;
        }
        Ok(())
    }

    /// `XREADGROUP` from `id` (`0`: this consumer's pending entries; `>`: new ones).
    async fn read<C: redis::aio::ConnectionLike>(
        &self,
        conn: &mut C,
        stream: &str,
        id: &str,
        block_ms: Option<u64>,
    ) -> Result<Vec<StreamId>, BusError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(BATCH);
        if let Some(ms) = block_ms {
            cmd.arg("BLOCK").arg(ms);
        }
        cmd.arg("STREAMS").arg(stream).arg(id);
        let reply: Option<StreamReadReply> = cmd.query_async(conn).await.map_err(unavailable)?;
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .collect())
    }

    /// Applies entries in order: the whole batch in one transaction and one `XACK` when it goes through,
    /// else entry by entry ([`Self::apply_each`]). `Some(delay)`: stopped at an entry to retry after that.
    async fn apply_all(
        &self,
        conn: &mut ConnectionManager,
        stream: &str,
        db: &DatabaseConnection,
        handler: &dyn EventHandler,
        attempts: &mut Attempts,
        entries: Vec<StreamId>,
    ) -> Result<Option<Duration>, BusError> {
        if entries.len() > 1 {
            let events: Option<Vec<EventEnvelope>> = entries
                .iter()
                .filter(|entry| !entry.map.is_empty())
                .map(decode)
                .collect();
            if let Some(events) = events {
                if apply_batch_only(db, &self.source, handler, &events)
                    .await
                    .is_ok()
                {
                    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
                    self.ack(conn, stream, &ids).await?;
                    for id in ids {
                        attempts.done(id);
                    }
                    return Ok(None);
                }
            }
        }
        self.apply_each(conn, stream, db, handler, attempts, entries)
            .await
    }

    /// Applies entries one by one, acknowledging each; stops at the first failure to retry (returning the
    /// delay) so nothing newer overtakes it.
    async fn apply_each(
        &self,
        conn: &mut ConnectionManager,
        stream: &str,
        db: &DatabaseConnection,
        handler: &dyn EventHandler,
        attempts: &mut Attempts,
        entries: Vec<StreamId>,
    ) -> Result<Option<Duration>, BusError> {
        for entry in entries {
            let failure = match decode(&entry) {
                Some(event) => apply(db, &self.source, handler, &event).await.err(),
                // An entry trimmed away after delivery reads back with no fields: nothing to apply.
                None if entry.map.is_empty() => None,
                None => {
                    self.dead_letter(conn, &entry, "not an event envelope")
                        .await?;
                    self.ack(conn, stream, &[entry.id.as_str()]).await?;
                    continue;
                }
            };
            if let Some(error) = failure {
                match attempts.failed(&entry.id, &error, self.max_deliveries) {
                    Verdict::Retry(delay) => {
                        tracing::warn!(source = %self.source, id = %entry.id, %error, transient = error.is_transient(), "event not applied; will retry");
                        return Ok(Some(delay));
                    }
                    Verdict::DeadLetter => {
                        tracing::error!(source = %self.source, id = %entry.id, %error, "event set aside; dead-lettered");
                        self.dead_letter(conn, &entry, &error.to_string()).await?;
                    }
                }
            }
            attempts.done(&entry.id);
            self.ack(conn, stream, &[entry.id.as_str()]).await?;
        }
        Ok(None)
    }

    /// Acknowledges entries: the group will not hand them out again.
    async fn ack(
        &self,
        conn: &mut ConnectionManager,
        stream: &str,
        ids: &[&str],
    ) -> Result<(), BusError> {
        let _: i64 = redis::cmd("XACK")
            .arg(stream)
            .arg(&self.group)
            .arg(ids)
            .query_async(conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn dead_letter(
        &self,
        conn: &mut ConnectionManager,
        entry: &StreamId,
        error: &str,
    ) -> Result<(), BusError> {
        let body: String = entry.get(FIELD).unwrap_or_default();
        let _: String = redis::cmd("XADD")
            .arg(dead_letter_key(&self.source, &self.group))
            .arg("MAXLEN")
            .arg("~")
            .arg(100_000)
            .arg("*")
            .arg(FIELD)
            .arg(body)
            .arg("id")
            .arg(&entry.id)
            .arg("error")
            .arg(error)
            .query_async(conn)
            .await
            .map_err(unavailable)?;
        metrics::counter!("parley_events_dead_lettered_total", "source" => self.source.clone(), "consumer" => self.group.clone())
            .increment(1);
        Ok(())
    }
}
