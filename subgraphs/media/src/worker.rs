//! The processing queue: images whose bytes passed the checks wait as `processing` rows, and a worker turns
//! each into its variants ([`crate::processing`]) off the request path.
//!
//! The queue is the table itself, so nothing is lost in a crash: a worker **claims** a row (a conditional
//! update stamping `claimed_at` and counting `attempts`, so two replicas never take the same one), writes
//! every file, and only then marks it `ready` — with its `MediaProcessed` event, in one transaction — so a
//! READY row always has all its files. A worker that dies mid-way leaves a claim that lapses after [`LEASE`];
//! the row is claimed again (on start-up and every [`RESCAN`]), at most [`MAX_ATTEMPTS`] times, then
//! `failed`. An image that does not decode is the client's: `failed` at once, its files removed, `MediaFailed`
//! published. A storage or database error is ours: the claim lapses and the work is retried.

use std::sync::Arc;

use chrono::Utc;
use parley_kit::events::append;
use parley_kit::events::contracts::{MediaFailed, MediaProcessed};
use parley_kit::store::begin_write;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::error::{MediaError, Result};
use crate::processing::{self, Processed, Unprocessable, VARIANTS};
use crate::store::media::{self, Status};
use crate::uploads::{original, variant_path, Uploads};

/// How long a claim holds before another worker may take the row (a 40-megapixel image takes about a
/// second; this is for a worker that died).
pub const LEASE: chrono::Duration = chrono::Duration::minutes(2);
/// How many claims a row gets before it is given up as failed.
pub const MAX_ATTEMPTS: i32 = 3;
/// How often the queue is looked at without being woken (for lapsed claims).
const RESCAN: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the queue until the process ends: one image at a time (decoding is CPU-bound; the request path
/// keeps the other cores).
pub async fn run(uploads: Arc<Uploads>) {
    loop {
        // Registered before looking, so a wake-up between the look and the wait is not missed.
        let woken = uploads.work.notified();
        match next(&uploads).await {
            Ok(Some(row)) => {
                let id = row.id;
                if let Err(err) = handle(&uploads, row).await {
                    tracing::warn!(media = %id, error = %err, "processing failed; the claim will lapse and be retried");
                }
                let _ = uploads.done.send(id);
            }
            Ok(None) => {
                let _ = tokio::time::timeout(RESCAN, woken).await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "the processing queue could not be read");
                tokio::time::sleep(RESCAN).await;
            }
        }
    }
}

/// Claims the oldest row waiting (unclaimed, or whose claim lapsed); one over its attempts is failed instead.
pub async fn next(uploads: &Uploads) -> Result<Option<media::Model>> {
    loop {
        let lapsed = Utc::now() - LEASE;
        let waiting = media::Entity::find()
            .filter(media::Column::Status.eq(Status::Processing))
            .filter(
                media::Column::ClaimedAt
                    .is_null()
                    .or(media::Column::ClaimedAt.lt(lapsed)),
            )
            .order_by_asc(media::Column::UpdatedAt)
            .one(&uploads.db)
            .await?;
        let Some(row) = waiting else {
            return Ok(None);
        };
        if row.attempts >= MAX_ATTEMPTS {
            fail(uploads, &row, "file: the image could not be processed").await?;
            continue;
        }
        // The claim: only if nobody took it since the look.
        let now = Utc::now();
        let claimed = media::Entity::update_many()
            .col_expr(media::Column::ClaimedAt, Expr::value(now))
            .col_expr(
                media::Column::Attempts,
                Expr::col(media::Column::Attempts).add(1),
            )
            .filter(media::Column::Id.eq(row.id))
            .filter(media::Column::Status.eq(Status::Processing))
            .filter(match row.claimed_at {
                Some(at) => media::Column::ClaimedAt.eq(at),
                None => media::Column::ClaimedAt.is_null(),
            })
            .exec(&uploads.db)
            .await?;
        if claimed.rows_affected == 1 {
            return Ok(Some(media::Model {
                claimed_at: Some(now),
                attempts: row.attempts + 1,
                ..row
            }));
        }
    }
}

/// Processes a claimed row: every file written, then READY with its event; or FAILED when the image is bad.
pub async fn handle(uploads: &Uploads, row: media::Model) -> Result<()> {
    let bytes = uploads
        .files
        .read(&original(row.id), None)
        .await?
        .bytes()
        .await
        .map_err(|e| MediaError::Storage(e.to_string()))?;
    let mime = row.mime.clone().unwrap_or_default();
    let done = tokio::task::spawn_blocking(move || processing::process(bytes, &mime))
        .await
        .map_err(|e| MediaError::Storage(format!("the processing task stopped: {e}")))?;
    match done {
        Err(Unprocessable(why)) => fail(uploads, &row, &why).await,
        Ok(processed) => finish(uploads, row, processed).await,
    }
}

/// Writes the files, then marks the row READY (if it is still there: its owner may have deleted it).
async fn finish(uploads: &Uploads, row: media::Model, done: Processed) -> Result<()> {
    for (variant, bytes) in done.variants {
        uploads
            .files
            .put(&variant_path(row.id, variant), bytes.into())
            .await?;
    }
    let size = done.original.len();
    uploads.files.put(&original(row.id), done.original).await?;
    let txn = begin_write(&uploads.db).await?;
    let now = Utc::now();
    let updated = media::Entity::update_many()
        .col_expr(media::Column::Status, Expr::value(Status::Ready))
        .col_expr(media::Column::Size, Expr::value(size as i64))
        .col_expr(media::Column::Width, Expr::value(i64::from(done.width)))
        .col_expr(media::Column::Height, Expr::value(i64::from(done.height)))
        .col_expr(media::Column::Blurhash, Expr::value(done.blurhash))
        .col_expr(media::Column::VariantType, Expr::value(done.variant_mime))
        .col_expr(media::Column::UpdatedAt, Expr::value(now))
        .filter(media::Column::Id.eq(row.id))
        .filter(media::Column::Status.eq(Status::Processing))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        txn.rollback().await?;
        // Deleted (or given up) while it was processed: what was just written goes too.
        return remove_files(uploads, row.id).await;
    }
    let ready = media::Entity::find_by_id(row.id)
        .one(&txn)
        .await?
        .ok_or(MediaError::NotFound)?;
    append(&txn, row.id, &MediaProcessed(uploads.changed(&ready))).await?;
    txn.commit().await?;
    uploads.events.wake();
    Ok(())
}

/// Gives a row up: FAILED with `MediaFailed`, its files removed.
async fn fail(uploads: &Uploads, row: &media::Model, why: &str) -> Result<()> {
    let txn = begin_write(&uploads.db).await?;
    let updated = media::Entity::update_many()
        .col_expr(media::Column::Status, Expr::value(Status::Failed))
        .col_expr(media::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(media::Column::Id.eq(row.id))
        .filter(media::Column::Status.eq(Status::Processing))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 1 {
        append(
            &txn,
            row.id,
            &MediaFailed {
                media: uploads.changed(row),
                reason: why.to_string(),
            },
        )
        .await?;
    }
    txn.commit().await?;
    uploads.events.wake();
    remove_files(uploads, row.id).await
}

/// Every file of media `id`: the original and each variant.
pub async fn remove_files(uploads: &Uploads, id: Uuid) -> Result<()> {
    uploads.files.delete(&original(id)).await?;
    for variant in VARIANTS {
        uploads.files.delete(&variant_path(id, variant)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, Set};

    use super::*;
    use crate::store::media::Purpose;
    use crate::uploads::tests::{idle, png, received};

    /// A crash between the upload and its variants: the claim lapses and the next worker finishes the job;
    /// a row that keeps failing is given up after its attempts.
    #[tokio::test]
    async fn a_crashed_claim_is_taken_again() {
        let u = idle("http://127.0.0.1:4000").await;
        let me = Uuid::now_v7();
        let id = received(&u, me, png(300, 200), Purpose::Post).await;
        // No worker: completion answers PROCESSING after its wait.
        let queued = tokio::time::timeout(crate::uploads::COMPLETE_WAIT * 2, u.complete(me, id))
            .await
            .expect("answers")
            .expect("queued");
        assert_eq!(queued.status, Status::Processing);

        // A worker claims it and dies before writing anything.
        let claimed = next(&u).await.expect("queue").expect("claimed");
        assert_eq!((claimed.id, claimed.attempts), (id, 1));
        assert!(
            next(&u).await.expect("queue").is_none(),
            "claimed: not handed out twice"
        );

        // Its claim lapses; the next worker takes it and finishes.
        let mut row: media::ActiveModel = u.row(id).await.expect("row").into();
        row.claimed_at = Set(Some(Utc::now() - LEASE - chrono::Duration::seconds(1)));
        row.update(&u.db).await.expect("lapse");
        let again = next(&u).await.expect("queue").expect("claimed again");
        assert_eq!(again.attempts, 2);
        handle(&u, again).await.expect("processed");
        let ready = u.row(id).await.expect("row");
        assert_eq!(ready.status, Status::Ready);
        assert_eq!(ready.variant_type.as_deref(), Some("image/jpeg"));

        // A row past its attempts is failed, its files removed.
        let mut row: media::ActiveModel = ready.into();
        row.status = Set(Status::Processing);
        row.attempts = Set(MAX_ATTEMPTS);
        row.claimed_at = Set(None);
        row.update(&u.db).await.expect("requeue");
        assert!(next(&u).await.expect("queue").is_none());
        assert_eq!(u.row(id).await.expect("row").status, Status::Failed);
        assert_eq!(
            u.files.size(&original(id)).await.err(),
            Some(MediaError::NotFound)
        );
    }
}
