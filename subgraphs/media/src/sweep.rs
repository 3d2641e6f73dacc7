//! The sweep: uploads nobody used go after [`UNUSED_FOR`] — tickets whose bytes never came or were never
//! completed, refused uploads' rows, and READY uploads no message, post or profile took (their holders'
//! `…MediaAttached` events set `attached_at`, [`Projection`]). A READY one leaves with `MediaDeleted`, so
//! the domains that knew it forget it; its files go after the row, as on delete.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use parley_kit::events::append;
use parley_kit::events::contracts::MediaDeleted;
use parley_kit::events::Handler;
use parley_kit::store::begin_write;
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

// `Result` stays std's: `consumed!` expands to it.
use crate::error::Result as Outcome;
use crate::store::media::{self, Status};
use crate::uploads::Uploads;
use crate::worker::remove_files;

/// How long an upload may wait to be used.
pub const UNUSED_FOR: Duration = Duration::days(1);
/// How often the sweep runs.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(3_600);
/// Rows looked at per pass (the next pass takes the rest).
const BATCH: u64 = 500;

use parley_kit::entitlements;

parley_kit::consumed! {
    pub enum MediaInput {
        MessageMediaAttached, PostMediaAttached, AvatarAttached,
        BillingSubscriptionStarted, BillingSubscriptionChanged, BillingSubscriptionCanceled,
    }
}

/// Media learns from chat, posts and users which uploads were put to use, and from billing how large an
/// upload each user's plan takes.
pub struct Projection;

#[async_trait]
impl Handler for Projection {
    type Event = MediaInput;

    async fn apply(&self, txn: &DatabaseTransaction, event: MediaInput) -> Result<(), DbErr> {
        let used = match &event {
            MediaInput::MessageMediaAttached(u) => &u.0,
            MediaInput::PostMediaAttached(u) => &u.0,
            MediaInput::AvatarAttached(u) => &u.0,
            MediaInput::BillingSubscriptionStarted(s) => return entitlements::apply(txn, s).await,
            MediaInput::BillingSubscriptionChanged(s) => return entitlements::apply(txn, s).await,
            MediaInput::BillingSubscriptionCanceled(s) => return entitlements::apply(txn, s).await,
        };
        media::Entity::update_many()
            .col_expr(media::Column::AttachedAt, Expr::value(Utc::now()))
            .filter(media::Column::Id.eq(used.media_id))
            .filter(media::Column::AttachedAt.is_null())
            .exec(txn)
            .await?;
        Ok(())
    }
}

/// Sweeps every [`EVERY`] until the process ends.
pub async fn run(uploads: std::sync::Arc<Uploads>) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        match sweep(&uploads, Utc::now()).await {
            Ok(0) => {}
            Ok(swept) => tracing::info!(swept, "swept unused uploads"),
            Err(err) => tracing::warn!(error = %err, "the sweep failed; it runs again later"),
        }
    }
}

/// One pass as of `now`: the number of uploads removed.
pub async fn sweep(uploads: &Uploads, now: DateTime<Utc>) -> Outcome<usize> {
    let before = now - UNUSED_FOR;
    let stale = media::Entity::find()
        .filter(
            Condition::any()
                .add(
                    media::Column::Status
                        .is_in([Status::Pending, Status::Uploaded, Status::Failed])
                        .and(media::Column::UpdatedAt.lt(before)),
                )
                .add(
                    media::Column::Status
                        .eq(Status::Ready)
                        .and(media::Column::AttachedAt.is_null())
                        .and(media::Column::CreatedAt.lt(before)),
                ),
        )
        .order_by_asc(media::Column::CreatedAt)
        .limit(BATCH)
        .all(&uploads.db)
        .await?;
    let mut swept = 0;
    for row in stale {
        if remove(uploads, &row).await? {
            remove_files(uploads, row.id).await?;
            swept += 1;
        }
    }
    Ok(swept)
}

/// Deletes `row` if it is still as the sweep found it (not used, completed or changed since); whether it did.
async fn remove(uploads: &Uploads, row: &media::Model) -> Outcome<bool> {
    let txn = begin_write(&uploads.db).await?;
    let deleted = media::Entity::delete_many()
        .filter(media::Column::Id.eq(row.id))
        .filter(media::Column::Status.eq(row.status))
        .filter(media::Column::AttachedAt.is_null())
        .filter(media::Column::UpdatedAt.eq(row.updated_at))
        .exec(&txn)
        .await?;
    if deleted.rows_affected == 0 {
        return Ok(false);
    }
    if row.status == Status::Ready {
        append(&txn, row.id, &MediaDeleted(uploads.changed(row))).await?;
    }
    txn.commit().await?;
    uploads.events.wake();
    Ok(true)
}

#[cfg(test)]
mod tests {
    use sea_orm::TransactionTrait;

    use super::*;
    use crate::store::media::Purpose;
    use crate::uploads::tests::{declared, png, received, testing};
    use parley_kit::events::contracts::{MediaUse, PostMediaAttached};

    /// A day on, the upload nobody used and the ticket never sent are gone with their files; the one a
    /// post took stays.
    #[tokio::test]
    async fn what_nobody_used_goes_after_a_day() {
        let u = testing("http://127.0.0.1:4000").await;
        let me = uuid::Uuid::now_v7();
        let mut ready = Vec::new();
        for _ in 0..2 {
            let id = received(&u, me, png(40, 30), Purpose::Post).await;
            ready.push(u.complete(me, id).await.expect("ready").id);
        }
        let abandoned = u
            .create(me, declared("b.png", "image/png", 100, Purpose::Post))
            .await
            .expect("ticket")
            .media
            .id;
        // A post took the first one (its event, applied as the consumer would).
        let txn = u.db.begin().await.expect("txn");
        let used = MediaUse {
            media_id: ready[0],
            holder_id: uuid::Uuid::now_v7(),
        };
        Projection
            .apply(&txn, MediaInput::PostMediaAttached(PostMediaAttached(used)))
            .await
            .expect("applied");
        txn.commit().await.expect("commit");

        assert_eq!(sweep(&u, Utc::now()).await.expect("sweep"), 0, "too soon");
        let later = Utc::now() + UNUSED_FOR + Duration::minutes(1);
        assert_eq!(sweep(&u, later).await.expect("sweep"), 2);
        assert!(u.row(ready[0]).await.is_ok(), "used: kept");
        for gone in [ready[1], abandoned] {
            assert!(u.row(gone).await.is_err());
            assert!(u.files.size(&crate::uploads::original(gone)).await.is_err());
        }
    }
}
