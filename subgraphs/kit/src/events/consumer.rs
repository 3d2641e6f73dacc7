//! Pull consumers of other subgraphs' event feeds.
//!
//! Each event is applied in one transaction together with the inbox row (its id) and the new feed position,
//! so a crash between "applied" and "recorded" cannot happen and a redelivered event is skipped.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, Set};

use super::tables::{feed_position, inbox};
use super::EventEnvelope;
use crate::config::EventSource;
use crate::store::begin_write;

/// A domain's reaction to events of other domains.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Applies `event` inside `txn`. Returns whether the event concerned this domain (only those are
    /// remembered in the inbox).
    async fn handle(&self, txn: &DatabaseTransaction, event: &EventEnvelope)
        -> Result<bool, DbErr>;
}

const LONG_POLL_MS: u64 = 20_000;

/// Starts one consumer task per source.
pub fn spawn_consumers(
    db: DatabaseConnection,
    sources: &[EventSource],
    handler: Arc<dyn EventHandler>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(LONG_POLL_MS + 10_000))
        .build()
        .unwrap_or_default();
    sources
        .iter()
        .cloned()
        .map(|source| {
            let (db, handler, http) = (db.clone(), handler.clone(), http.clone());
            tokio::spawn(async move { consume(db, source, handler, http).await })
        })
        .collect()
}

async fn consume(
    db: DatabaseConnection,
    source: EventSource,
    handler: Arc<dyn EventHandler>,
    http: reqwest::Client,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match poll_once(&db, &source, handler.as_ref(), &http).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(err) => {
                tracing::debug!(source = %source.name, error = %err, "event feed unavailable; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(3));
            }
        }
    }
}

async fn poll_once(
    db: &DatabaseConnection,
    source: &EventSource,
    handler: &dyn EventHandler,
    http: &reqwest::Client,
) -> anyhow::Result<()> {
    let after = feed_position::Entity::find_by_id(source.name.clone())
        .one(db)
        .await?
        .map_or(0, |row| row.position);
    let url = format!(
        "{}/events?after={after}&limit=200&wait_ms={LONG_POLL_MS}",
        source.url
    );
    let events: Vec<EventEnvelope> = http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    for event in events {
        apply(db, &source.name, handler, &event).await?;
    }
    Ok(())
}

/// Applies one event exactly once: handler + inbox + position in one transaction.
pub async fn apply(
    db: &DatabaseConnection,
    source: &str,
    handler: &dyn EventHandler,
    event: &EventEnvelope,
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    let seen = inbox::Entity::find_by_id(event.id)
        .one(&txn)
        .await?
        .is_some();
    if !seen && handler.handle(&txn, event).await? {
        inbox::ActiveModel {
            event_id: Set(event.id),
            applied_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await?;
    }
    let position = feed_position::ActiveModel {
        source: Set(source.to_string()),
        position: Set(event.position),
    };
    feed_position::Entity::insert(position)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(feed_position::Column::Source)
                .update_column(feed_position::Column::Position)
                .to_owned(),
        )
        .exec(&txn)
        .await?;
    txn.commit().await?;
    metrics::counter!("parley_events_consumed_total", "source" => source.to_string()).increment(1);
    Ok(())
}
