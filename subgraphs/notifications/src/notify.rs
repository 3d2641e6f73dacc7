//! Telling someone: a [`Notice`] (what a rule in [`crate::rules`] decided) folds into the recipient's unread
//! notification of the same group, or starts one — as Mastodon groups: "alice and 3 others commented on your
//! post" — in the transaction that applies the event, with its `NotificationCreated`/`NotificationGrouped`
//! event (what `notificationAdded` streams) and a push job per registered subscription when the kind's push
//! channel is on. The consumer applies each event once (the kit's inbox), so a redelivered event tells
//! nobody twice.

use chrono::Utc;
use parley_kit::events::append;
use parley_kit::events::contracts::{
    NotificationChanged, NotificationCreated, NotificationGrouped,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::kinds::NotificationKind;
use crate::preferences;
use crate::store::{notification, push_job, push_subscription};

/// Actors a notification names (the newest); `count` says how many events there were.
pub const MAX_ACTORS: usize = 5;

/// What to tell whom.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub recipient: Uuid,
    pub kind: NotificationKind,
    /// Notices with the same group fold into one unread notification (`COMMENT:<post>`, …).
    pub group: String,
    /// Who did it, newest first (none for a vote milestone: votes are not public).
    pub actors: Vec<Uuid>,
    /// Events this notice stands for (held messages arrive several at once).
    pub count: i64,
    pub post_id: Option<Uuid>,
    pub comment_id: Option<Uuid>,
    pub chat_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    pub last_seq: Option<i64>,
    pub milestone: Option<i32>,
}

impl Notice {
    /// A notice of one event by `actor` (if any), grouped under `group`.
    pub fn new(
        recipient: Uuid,
        kind: NotificationKind,
        group: String,
        actor: Option<Uuid>,
    ) -> Self {
        Self {
            recipient,
            kind,
            group,
            actors: actor.into_iter().collect(),
            count: 1,
            post_id: None,
            comment_id: None,
            chat_id: None,
            message_id: None,
            last_seq: None,
            milestone: None,
        }
    }
}

/// The stored actor list, newest first.
pub fn actors(row: &notification::Model) -> Vec<Uuid> {
    serde_json::from_str(&row.actors).unwrap_or_default()
}

/// `newer` ahead of `older`, each actor once, at most [`MAX_ACTORS`].
pub fn merge_actors(newer: &[Uuid], older: &[Uuid]) -> Vec<Uuid> {
    let mut merged: Vec<Uuid> = Vec::with_capacity(MAX_ACTORS);
    for actor in newer.iter().chain(older) {
        if merged.len() == MAX_ACTORS {
            break;
        }
        if !merged.contains(actor) {
            merged.push(*actor);
        }
    }
    merged
}

fn to_json(actors: &[Uuid]) -> String {
    serde_json::to_string(actors).unwrap_or_else(|_| "[]".into())
}

/// Folds `notice` into its recipient's unread group or starts one; returns the notification.
pub async fn notify(
    txn: &DatabaseTransaction,
    notice: Notice,
) -> Result<notification::Model, DbErr> {
    let now = Utc::now();
    let (listed, pushed) = preferences::in_app_and_push(txn, notice.recipient, notice.kind).await?;
    // An event folds only into a group shown the way it would be (IN_APP turned off meanwhile: a new one).
    let open = notification::Entity::find()
        .filter(notification::Column::RecipientId.eq(notice.recipient))
        .filter(notification::Column::GroupKey.eq(&notice.group))
        .filter(notification::Column::Listed.eq(listed))
        .filter(notification::Column::ReadAt.is_null())
        .order_by_desc(notification::Column::SortKey)
        .one(txn)
        .await?;
    let (row, created) = match open {
        Some(open) => {
            let actors = merge_actors(&notice.actors, &actors(&open));
            let count = open.count + notice.count;
            let mut active: notification::ActiveModel = open.clone().into();
            active.count = Set(count);
            active.actors = Set(to_json(&actors));
            // The newest event's content is what the notification points at.
            if notice.comment_id.is_some() {
                active.comment_id = Set(notice.comment_id);
            }
            if notice.message_id.is_some() {
                active.message_id = Set(notice.message_id);
            }
            if notice.last_seq.is_some() {
                active.last_seq = Set(notice.last_seq);
            }
            // What arrived since the last digest is news for the next one.
            active.emailed_at = Set(None);
            active.sort_key = Set(Uuid::now_v7());
            active.updated_at = Set(now);
            (active.update(txn).await?, false)
        }
        None => {
            let row = notification::ActiveModel {
                id: Set(Uuid::now_v7()),
                recipient_id: Set(notice.recipient),
                kind: Set(notice.kind.as_str().to_string()),
                group_key: Set(notice.group.clone()),
                count: Set(notice.count),
                actors: Set(to_json(&merge_actors(&notice.actors, &[]))),
                post_id: Set(notice.post_id),
                comment_id: Set(notice.comment_id),
                chat_id: Set(notice.chat_id),
                message_id: Set(notice.message_id),
                last_seq: Set(notice.last_seq),
                milestone: Set(notice.milestone),
                listed: Set(listed),
                read_at: Set(None),
                emailed_at: Set(None),
                sort_key: Set(Uuid::now_v7()),
                created_at: Set(now),
                updated_at: Set(now),
            };
            (row.insert(txn).await?, true)
        }
    };
    let changed = NotificationChanged {
        notification_id: row.id,
        recipient_id: row.recipient_id,
        kind: row.kind.clone(),
        count: row.count,
    };
    let recipient = row.recipient_id.to_string();
    if created {
        append(txn, &recipient, &NotificationCreated(changed)).await?;
    } else {
        append(txn, &recipient, &NotificationGrouped(changed)).await?;
    }
    if pushed {
        queue_pushes(txn, &row).await?;
    }
    Ok(row)
}

/// One push job per subscription of the recipient.
async fn queue_pushes(txn: &DatabaseTransaction, row: &notification::Model) -> Result<(), DbErr> {
    let subscriptions = push_subscription::Entity::find()
        .filter(push_subscription::Column::UserId.eq(row.recipient_id))
        .all(txn)
        .await?;
    for subscription in subscriptions {
        push_job::ActiveModel {
            id: Set(Uuid::now_v7()),
            notification_id: Set(row.id),
            endpoint: Set(subscription.endpoint),
            attempts: Set(0),
            next_at: Set(Utc::now()),
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

/// Marks `recipient`'s unread notifications read — those in `ids`, or all; returns how many.
pub async fn mark_read<C: ConnectionTrait>(
    db: &C,
    recipient: Uuid,
    ids: Option<&[Uuid]>,
) -> Result<u64, DbErr> {
    let mut update = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(Utc::now()))
        .filter(notification::Column::RecipientId.eq(recipient))
        .filter(notification::Column::ReadAt.is_null());
    if let Some(ids) = ids {
        update = update.filter(notification::Column::Id.is_in(ids.iter().copied()));
    }
    Ok(update.exec(db).await?.rows_affected)
}

/// Removes every notification about deleted content (`column` is the post, comment or message).
pub async fn forget_content<C: ConnectionTrait>(
    db: &C,
    column: notification::Column,
    id: Uuid,
) -> Result<(), DbErr> {
    notification::Entity::delete_many()
        .filter(column.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Read notifications older than `days` go.
pub async fn prune_read<C: ConnectionTrait>(db: &C, days: i64) -> Result<u64, DbErr> {
    let before = Utc::now() - chrono::Duration::days(days);
    Ok(notification::Entity::delete_many()
        .filter(notification::Column::ReadAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}

/// "alice and 3 others commented on your post".
pub async fn describe<C: ConnectionTrait>(
    db: &C,
    row: &notification::Model,
    actors: &[Uuid],
) -> std::result::Result<String, DbErr> {
    let kind = NotificationKind::parse(&row.kind).unwrap_or(NotificationKind::Comment);
    if kind == NotificationKind::Billing {
        let said = crate::rules::BillingNews::phrase_of(&row.group_key).unwrap_or(kind.phrase());
        return Ok(said.to_string());
    }
    let Some(first) = actors.first() else {
        return Ok(match row.milestone {
            Some(m) => format!("{} ({m})", kind.phrase()),
            None => kind.phrase().to_string(),
        });
    };
    let name = crate::store::recipient::Entity::find_by_id(*first)
        .one(db)
        .await?
        .and_then(|r| r.display_name)
        .unwrap_or_else(|| "Someone".into());
    // A chat counts messages, not people.
    if kind == NotificationKind::Message {
        return Ok(format!("{name} sent you {} message(s)", row.count));
    }
    // Other people, as far as the kept actors tell: exact under the cap; at it, "4+".
    let others = actors.len() - 1;
    let more = if actors.len() == MAX_ACTORS && row.count > actors.len() as i64 {
        "+"
    } else {
        ""
    };
    Ok(match (others, more) {
        (0, _) => format!("{name} {}", kind.phrase()),
        (1, "") => format!("{name} and 1 other {}", kind.phrase()),
        (n, more) => format!("{name} and {n}{more} others {}", kind.phrase()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_actors_first_once_each_bounded() {
        let ids: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
        assert_eq!(merge_actors(&[ids[1]], &[ids[0], ids[1]]), [ids[1], ids[0]]);
        assert_eq!(merge_actors(&ids, &[]).len(), MAX_ACTORS);
        assert_eq!(merge_actors(&[ids[7]], &ids[..5])[0], ids[7]);
    }
}
