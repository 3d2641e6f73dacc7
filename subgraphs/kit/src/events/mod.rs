//! Domain events (docs/architecture.md, *Events*).
//!
//! - A state change and its event are written in **one transaction**: [`append`] inserts into the domain's outbox
//!   table, so no event is lost when the bus is down and none is published for a rolled-back change.
//! - The [`relay`] moves committed outbox rows, in order, to the [`EventBus`] and marks them published.
//! - [`InProcessBus`] is the bus of one process (tokio broadcast). Between processes on one machine, each
//!   subgraph serves its published outbox as an ordered log at `GET /events` ([`log`]) and consumers pull it
//!   ([`consumer`]), keeping their position and the ids they applied in their own store, so a consumer that was
//!   down catches up and a redelivered event changes nothing.
//! - [`redis_bus::RedisBus`] (production, several instances): the relay appends to the subgraph's Redis
//!   stream, every instance tails it for live subscriptions, and consuming subgraphs read it through consumer
//!   groups ([`group`]) with the same exactly-once apply.
//!
//! Layout: `contracts` (one type per event kind, shared by producers and consumers), `tables` (sea-orm
//! entities + the kit's migrations, added to every domain's), `relay`, `log` + `consumer` (between processes over
//! HTTP), `redis_bus` + `group` (over Redis Streams), `redact` (withdrawn content erased from earlier events).

pub mod consumer;
pub mod contracts;
pub mod group;
pub mod log;
pub mod redact;
pub mod redis_bus;
pub mod relay;
pub mod tables;

use std::fmt::Display;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

pub use consumer::{spawn_consumers, EventHandler, HandleError, Handler, NoHandler};
pub use contracts::{Consumed, Event, EventKind};
pub use tables::{NoTables, WithKitTables};

/// One event as it travels: the outbox row plus where it came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventEnvelope {
    /// Order within the producing subgraph's log (the order it was published in).
    pub position: i64,
    /// Globally unique; consumers use it to apply an event once.
    pub id: Uuid,
    /// The producing subgraph.
    pub source: String,
    /// The kind's wire name, e.g. `UserRegistered` (see [`contracts`]).
    pub kind: String,
    /// The entity the event is about (ordering is per aggregate).
    pub aggregate_id: String,
    pub occurred_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

/// Writes `event` into the outbox under its kind's name, inside the caller's transaction.
pub async fn append<C: ConnectionTrait, E: Event>(
    db: &C,
    aggregate_id: impl Display,
    event: &E,
) -> Result<(), DbErr> {
    let payload =
        serde_json::to_string(event).map_err(|e| DbErr::Custom(format!("event payload: {e}")))?;
    tables::outbox::ActiveModel {
        event_id: Set(Uuid::now_v7()),
        kind: Set(E::KIND.name.to_string()),
        aggregate_id: Set(aggregate_id.to_string()),
        payload: Set(payload),
        occurred_at: Set(Utc::now()),
        published_at: Set(None),
        published_seq: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
}

/// Where relayed events go. One trait, an implementation per transport.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    async fn publish(&self, event: &EventEnvelope) -> Result<(), BusError>;
    /// Publishes `events` in order; an error means any of them may have gone out (the relay retries them
    /// all, and consumers skip the ones they applied). Returns each event's id in the bus, where it has one.
    async fn publish_batch(
        &self,
        events: &[EventEnvelope],
    ) -> Result<Vec<Option<String>>, BusError> {
        for event in events {
            self.publish(event).await?;
        }
        Ok(vec![None; events.len()])
    }
    /// Erases published entries (by the ids `publish_batch` returned) whose content was withdrawn: an
    /// edited or deleted message's earlier text. Nothing to do for a bus that keeps no entries.
    async fn erase(&self, _ids: &[String]) -> Result<(), BusError> {
        Ok(())
    }
    /// Live events published from now on (for subscriptions and in-process consumers).
    fn subscribe(&self) -> broadcast::Receiver<EventEnvelope>;
}

/// The bus of one process: a tokio broadcast channel.
pub struct InProcessBus {
    tx: broadcast::Sender<EventEnvelope>,
}

impl InProcessBus {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            tx: broadcast::channel(1024).0,
        })
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: &EventEnvelope) -> Result<(), BusError> {
        // No receivers is fine: the event stays in the outbox log for pull consumers.
        let _ = self.tx.send(event.clone());
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<EventEnvelope> {
        self.tx.subscribe()
    }
}

/// A subgraph's handle on its events: wake the relay after a commit, follow the published position.
#[derive(Clone)]
pub struct Events {
    pub(crate) wake: Arc<tokio::sync::Notify>,
    pub(crate) published: watch::Receiver<i64>,
    pub bus: Arc<dyn EventBus>,
}

impl Events {
    /// Tells the relay that new outbox rows were committed (it also polls, so a missed call only delays).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}
