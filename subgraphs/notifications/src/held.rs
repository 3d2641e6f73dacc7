//! Messages while away. A chat message is held for each member it would notify ([`crate::rules`]) for a
//! grace period: chat marks a message delivered when it reaches a member's open `chatEvents` stream, and
//! that receipt drops what was held — the member was there. What is still held when due becomes (or
//! grows) the chat's one MESSAGE notification. The release is a conditional delete, so with several
//! instances each held row is released once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use parley_kit::events::Events;
use parley_kit::store::begin_write;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::kinds::NotificationKind;
use crate::notify::{notify, Notice};
use crate::store::{chat_member, held_message};

/// How often due rows are looked for.
const TICK: Duration = Duration::from_millis(250);
/// Rows released per look.
const BATCH: u64 = 200;

/// Releases due held messages, forever.
pub async fn run(db: DatabaseConnection, events: Events) {
    loop {
        match release_due(&db, Utc::now()).await {
            Ok(0) => tokio::time::sleep(TICK).await,
            Ok(_) => events.wake(),
            Err(e) => {
                tracing::warn!(error = %e, "releasing held messages failed");
                tokio::time::sleep(TICK).await;
            }
        }
    }
}

/// Turns every held row due by `now` into its chat's MESSAGE notification; returns how many.
pub async fn release_due(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<usize, DbErr> {
    let due = held_message::Entity::find()
        .filter(held_message::Column::DueAt.lte(now))
        .order_by_asc(held_message::Column::DueAt)
        .limit(BATCH)
        .all(db)
        .await?;
    let mut released = 0;
    for held in due {
        let txn = begin_write(db).await?;
        // Still the same row (no receipt dropped it, no other instance took it).
        let taken = held_message::Entity::delete_many()
            .filter(held_message::Column::ChatId.eq(held.chat_id))
            .filter(held_message::Column::UserId.eq(held.user_id))
            .filter(held_message::Column::LastSeq.eq(held.last_seq))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        let member = chat_member::Entity::find_by_id((held.chat_id, held.user_id))
            .one(&txn)
            .await?;
        let muted = member
            .as_ref()
            .is_none_or(|m| m.muted_until.is_some_and(|until| until > Utc::now()));
        if taken && !muted {
            let mut notice = Notice::new(
                held.user_id,
                NotificationKind::Message,
                format!("MESSAGE:{}", held.chat_id),
                None,
            );
            notice.actors = serde_json::from_str::<Vec<Uuid>>(&held.actors).unwrap_or_default();
            notice.count = held.count;
            notice.chat_id = Some(held.chat_id);
            notice.message_id = Some(held.last_message_id);
            notice.last_seq = Some(held.last_seq);
            notify(&txn, notice).await?;
            released += 1;
        }
        txn.commit().await?;
    }
    Ok(released)
}
