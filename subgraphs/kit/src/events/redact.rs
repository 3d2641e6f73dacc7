//! Withdrawn content. An event carries what changed (a message's text, for live delivery), so after an
//! edit or a delete-for-everyone the earlier events of that message still hold the old text — in the
//! outbox (the `/events` log) and in the bus. [`redact`] erases the named fields from those earlier events
//! in the outbox, in the transaction of the edit, and returns their bus ids; the caller erases those from
//! the bus once it committed ([`super::EventBus::erase`]). A consumer that reads them later finds the field
//! empty (or, in Redis, the entry gone) and the newer event that replaced them.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use serde_json::Value;
use uuid::Uuid;

use super::tables::outbox;

/// Sets `fields` to `null` in `aggregate`'s outbox events of `kinds` whose payload's `key` is `subject`;
/// returns the bus ids of those already published.
pub async fn redact<C: ConnectionTrait>(
    db: &C,
    aggregate: &str,
    kinds: &[&str],
    key: &str,
    subject: Uuid,
    fields: &[&str],
) -> Result<Vec<String>, DbErr> {
    let subject = subject.to_string();
    let rows = outbox::Entity::find()
        .filter(outbox::Column::AggregateId.eq(aggregate))
        .filter(outbox::Column::Kind.is_in(kinds.iter().copied()))
        .filter(outbox::Column::Payload.contains(&subject))
        .all(db)
        .await?;
    let mut erased = Vec::new();
    for row in rows {
        let Ok(mut payload) = serde_json::from_str::<Value>(&row.payload) else {
            continue;
        };
        if payload.get(key).and_then(Value::as_str) != Some(subject.as_str()) {
            continue;
        }
        let mut changed = false;
        for field in fields {
            if let Some(value) = payload.get_mut(*field).filter(|v| !v.is_null()) {
                *value = Value::Null;
                changed = true;
            }
        }
        if !changed {
            continue;
        }
        outbox::Entity::update_many()
            .col_expr(outbox::Column::Payload, Expr::value(payload.to_string()))
            .filter(outbox::Column::Position.eq(row.position))
            .exec(db)
            .await?;
        erased.extend(row.bus_id);
    }
    Ok(erased)
}
