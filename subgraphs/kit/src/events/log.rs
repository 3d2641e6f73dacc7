//! `GET /events?after=N&limit=M&wait_ms=W`: a subgraph's published events as an ordered log (by publish
//! sequence number), for consumers in other processes. Long-polls: with nothing after N, waits up to `wait_ms` for the relay to publish more.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Deserialize;

use super::relay::envelope;
use super::tables::outbox;
use super::{EventEnvelope, Events};

#[derive(Debug, Deserialize)]
pub struct FeedParams {
    #[serde(default)]
    after: i64,
    limit: Option<u64>,
    #[serde(default)]
    wait_ms: u64,
}

/// What the feed handler needs.
#[derive(Clone)]
pub struct LogState {
    pub db: DatabaseConnection,
    pub source: String,
    pub events: Events,
}

const MAX_LIMIT: u64 = 500;
const MAX_WAIT: Duration = Duration::from_secs(30);

pub async fn handler(
    State(state): State<LogState>,
    Query(params): Query<FeedParams>,
) -> Result<Json<Vec<EventEnvelope>>, StatusCode> {
    let limit = params.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    let mut published = state.events.published.clone();
    let first = read(&state, params.after, limit).await?;
    if !first.is_empty() || params.wait_ms == 0 {
        return Ok(Json(first));
    }
    let wait = Duration::from_millis(params.wait_ms).min(MAX_WAIT);
    let _ = tokio::time::timeout(wait, published.wait_for(|last| *last > params.after)).await;
    Ok(Json(read(&state, params.after, limit).await?))
}

async fn read(state: &LogState, after: i64, limit: u64) -> Result<Vec<EventEnvelope>, StatusCode> {
    let rows = outbox::Entity::find()
        .filter(outbox::Column::PublishedSeq.gt(after))
        .order_by_asc(outbox::Column::PublishedSeq)
        .limit(limit)
        .all(&state.db)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "event feed read failed");
            StatusCode::SERVICE_UNAVAILABLE
        })?;
    rows.into_iter()
        .map(|row| {
            let seq = row.published_seq.unwrap_or(row.position);
            envelope(&state.source, row, seq)
        })
        .collect::<Result<_, _>>()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}
