//! The outbox relay: publishes committed outbox rows to the bus (in position order among those committed)
//! and marks them published, with their sequence number in the log, only after the bus took them, so a bus
//! outage delays events and loses none.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::sync::{watch, Notify};

use super::tables::outbox;
use super::{EventBus, EventEnvelope, Events};
use crate::lease::Leadership;

/// How often the relay looks at the outbox when nobody woke it.
const POLL: Duration = Duration::from_millis(500);
const BATCH: u64 = 200;

/// Starts the relay task for `source`'s outbox and returns the handle domain code uses after commits. With
/// several instances of a subgraph, only the holder of the relay lease publishes, so the outbox goes out once
/// and in order.
pub fn start(
    db: DatabaseConnection,
    source: String,
    bus: Arc<dyn EventBus>,
    leadership: Leadership,
) -> (Events, tokio::task::JoinHandle<()>) {
    let wake = Arc::new(Notify::new());
    let (published_tx, published) = watch::channel(0_i64);
    let events = Events {
        wake: wake.clone(),
        published,
        bus: bus.clone(),
    };
    let published_tx = Arc::new(published_tx);
    let lease = format!("relay:{source}");
    let task = tokio::spawn(async move {
        leadership
            .run(&lease, || {
                relay_loop(
                    db.clone(),
                    source.clone(),
                    bus.clone(),
                    wake.clone(),
                    published_tx.clone(),
                )
            })
            .await;
    });
    (events, task)
}

async fn relay_loop(
    db: DatabaseConnection,
    source: String,
    bus: Arc<dyn EventBus>,
    wake: Arc<Notify>,
    published_tx: Arc<watch::Sender<i64>>,
) {
    loop {
        match relay_batch(&db, &source, bus.as_ref()).await {
            Ok(Some(last)) => {
                published_tx.send_replace(last);
                continue; // there may be more
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "outbox relay failed; retrying"),
        }
        let _ = tokio::time::timeout(POLL, wake.notified()).await;
    }
}

/// Publishes one batch; returns the last position published, if any.
async fn relay_batch(
    db: &DatabaseConnection,
    source: &str,
    bus: &dyn EventBus,
) -> Result<Option<i64>, DbErr> {
    let rows = outbox::Entity::find()
        .filter(outbox::Column::PublishedAt.is_null())
        .order_by_asc(outbox::Column::Position)
        .limit(BATCH)
        .all(db)
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    // Sequence numbers continue from the last published row (one relay runs at a time; the unique index on
    // `published_seq` refuses a second one's overlapping numbers).
    let last_seq: Option<i64> = outbox::Entity::find()
        .select_only()
        .column_as(outbox::Column::PublishedSeq.max(), "max_seq")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?
        .flatten();
    let first_seq = last_seq.unwrap_or(0) + 1;
    let mut numbered = Vec::with_capacity(rows.len());
    let mut envelopes = Vec::with_capacity(rows.len());
    for (seq, row) in (first_seq..).zip(rows) {
        numbered.push((row.position, seq));
        envelopes.push(envelope(source, row, seq)?);
    }
    let bus_ids = match bus.publish_batch(&envelopes).await {
        Ok(ids) => ids,
        Err(err) => {
            tracing::warn!(error = %err, "bus refused events; will retry");
            return Ok(None); // nothing marked: the whole batch goes again, in order
        }
    };
    mark_published(db, &numbered, &bus_ids).await?;
    metrics::counter!("parley_events_published_total", "source" => source.to_string())
        .increment(envelopes.len() as u64);
    Ok(numbered.last().map(|(_, seq)| *seq))
}

/// Marks rows published with their sequence numbers and bus ids: one `UPDATE … CASE` for the batch.
async fn mark_published(
    db: &DatabaseConnection,
    numbered: &[(i64, i64)],
    bus_ids: &[Option<String>],
) -> Result<(), DbErr> {
    use sea_orm::sea_query::{CaseStatement, Expr};
    let case = numbered
        .iter()
        .fold(CaseStatement::new(), |case, (position, seq)| {
            case.case(outbox::Column::Position.eq(*position), Expr::value(*seq))
        })
        .finally(Expr::col(outbox::Column::PublishedSeq));
    let ids: Vec<(i64, String)> = numbered
        .iter()
        .zip(bus_ids)
        .filter_map(|((position, _), id)| id.as_ref().map(|id| (*position, id.clone())))
        .collect();
    let mut update = outbox::Entity::update_many()
        .col_expr(outbox::Column::PublishedAt, Expr::value(Utc::now()))
        .col_expr(outbox::Column::PublishedSeq, case.into());
    // Only a bus that keeps entries gives ids (an empty CASE is not SQL).
    if !ids.is_empty() {
        let case = ids
            .into_iter()
            .fold(CaseStatement::new(), |case, (position, id)| {
                case.case(outbox::Column::Position.eq(position), Expr::value(id))
            })
            .finally(Expr::col(outbox::Column::BusId));
        update = update.col_expr(outbox::Column::BusId, case.into());
    }
    update
        .filter(outbox::Column::Position.is_in(numbered.iter().map(|(p, _)| *p)))
        .exec(db)
        .await?;
    Ok(())
}

/// An outbox row as an envelope; its position in the log is its publish sequence number.
pub(crate) fn envelope(source: &str, row: outbox::Model, seq: i64) -> Result<EventEnvelope, DbErr> {
    Ok(EventEnvelope {
        position: seq,
        id: row.event_id,
        source: source.to_string(),
        kind: row.kind,
        aggregate_id: row.aggregate_id,
        occurred_at: row.occurred_at,
        payload: serde_json::from_str(&row.payload)
            .map_err(|e| DbErr::Custom(format!("outbox payload: {e}")))?,
    })
}
