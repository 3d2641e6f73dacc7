//! Votes: -1/0/+1 per user and target (a post or a comment), changeable and removable. The target row is
//! locked first (an UPDATE, which takes PostgreSQL's row lock and SQLite's write lock), so concurrent votes
//! serialise and totals never double count.

use chrono::Utc;
use parley_kit::events::append;
use parley_kit::events::contracts::{VoteCast, VoteSubmitted, VoteUpdated};
use parley_kit::store::begin_write;
use parley_kit::{rank, Identity};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, ModelTrait,
    QueryFilter, Set,
};
use uuid::Uuid;

use crate::error::{PostsError, Result};
use crate::service::{ensure_not_blocked, Content};
use crate::store::{comment, post, vote};
use crate::visibility::{visible_comment, visible_post};
use parley_kit::audience::Viewer;

/// The target's totals after a vote.
pub struct Totals {
    pub target_id: Uuid,
    pub post_id: Uuid,
    pub score: i32,
    pub upvotes: i32,
    pub downvotes: i32,
    pub my_vote: i16,
}

impl Content {
    pub async fn vote(&self, me: &Identity, target_id: Uuid, value: i16) -> Result<Totals> {
        let txn = begin_write(&self.db).await?;
        let target = lock_target(&txn, target_id).await?;
        ensure_not_blocked(&txn, me.user_id, target.author_id).await?;
        // What the caller cannot see (a private author's post, a comment on it) is not there for them.
        let viewer = Viewer::of(Some(me));
        if target.kind == vote::TargetKind::Post {
            visible_post(&txn, &viewer, target_id).await?;
        } else {
            visible_comment(&txn, &viewer, target_id).await?;
        }
        let existing = vote::Entity::find_by_id((me.user_id, target_id))
            .one(&txn)
            .await?;
        let old = existing.as_ref().map_or(0, |v| v.value);
        if old == value {
            drop(txn);
            return Ok(target.totals(value));
        }
        let now = Utc::now();
        match (existing, value) {
            (Some(row), 0) => {
                row.delete(&txn).await?;
            }
            (Some(row), v) => {
                let mut active: vote::ActiveModel = row.into();
                active.value = Set(v);
                active.updated_at = Set(now);
                active.update(&txn).await?;
            }
            (None, v) => {
                vote::ActiveModel {
                    user_id: Set(me.user_id),
                    target_id: Set(target_id),
                    target_kind: Set(target.kind),
                    value: Set(v),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
                .insert(&txn)
                .await?;
            }
        }
        let up = i32::from(value == 1) - i32::from(old == 1);
        let down = i32::from(value == -1) - i32::from(old == -1);
        let totals = Totals {
            target_id,
            post_id: target.post_id,
            score: target.score + up - down,
            upvotes: target.upvotes + up,
            downvotes: target.downvotes + down,
            my_vote: value,
        };
        write_totals(&txn, &target, &totals).await?;
        let event = VoteCast {
            user_id: me.user_id,
            target_id,
            target_kind: target.kind.to_value(),
            post_id: target.post_id,
            value,
            score: i64::from(totals.score),
            upvotes: i64::from(totals.upvotes),
            downvotes: i64::from(totals.downvotes),
        };
        if old == 0 {
            append(&txn, target.post_id, &VoteSubmitted(event)).await?;
        } else {
            append(&txn, target.post_id, &VoteUpdated(event)).await?;
        }
        txn.commit().await?;
        self.events.wake();
        Ok(totals)
    }
}

/// What a vote needs to know about its target.
struct Target {
    id: Uuid,
    kind: vote::TargetKind,
    post_id: Uuid,
    author_id: Uuid,
    created_at: chrono::DateTime<Utc>,
    score: i32,
    upvotes: i32,
    downvotes: i32,
}

impl Target {
    fn totals(&self, my_vote: i16) -> Totals {
        Totals {
            target_id: self.id,
            post_id: self.post_id,
            score: self.score,
            upvotes: self.upvotes,
            downvotes: self.downvotes,
            my_vote,
        }
    }
}

/// Locks the target row with a no-op UPDATE, then reads it. Deleted targets are `NOT_FOUND`.
async fn lock_target(txn: &DatabaseTransaction, id: Uuid) -> Result<Target> {
    let locked = post::Entity::update_many()
        .col_expr(post::Column::Score, Expr::col(post::Column::Score))
        .filter(post::Column::Id.eq(id))
        .filter(post::Column::DeletedAt.is_null())
        .exec(txn)
        .await?
        .rows_affected;
    if locked == 1 {
        let p = post::Entity::find_by_id(id)
            .one(txn)
            .await?
            .ok_or(PostsError::NotFound("post"))?;
        return Ok(Target {
            id,
            kind: vote::TargetKind::Post,
            post_id: p.id,
            author_id: p.author_id,
            created_at: p.created_at,
            score: p.score,
            upvotes: p.upvotes,
            downvotes: p.downvotes,
        });
    }
    let locked = comment::Entity::update_many()
        .col_expr(comment::Column::Score, Expr::col(comment::Column::Score))
        .filter(comment::Column::Id.eq(id))
        .filter(comment::Column::DeletedAt.is_null())
        .exec(txn)
        .await?
        .rows_affected;
    if locked != 1 {
        return Err(PostsError::NotFound("post or comment"));
    }
    let c = comment::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or(PostsError::NotFound("comment"))?;
    Ok(Target {
        id,
        kind: vote::TargetKind::Comment,
        post_id: c.post_id,
        author_id: c.author_id,
        created_at: c.created_at,
        score: c.score,
        upvotes: c.upvotes,
        downvotes: c.downvotes,
    })
}

async fn write_totals(txn: &DatabaseTransaction, target: &Target, totals: &Totals) -> Result<()> {
    let now = Utc::now();
    let hot = rank::hot(i64::from(totals.score), target.created_at, now);
    if target.kind == vote::TargetKind::Post {
        let controversy = rank::controversy(i64::from(totals.upvotes), i64::from(totals.downvotes));
        post::Entity::update_many()
            .col_expr(post::Column::Score, Expr::value(totals.score))
            .col_expr(post::Column::Upvotes, Expr::value(totals.upvotes))
            .col_expr(post::Column::Downvotes, Expr::value(totals.downvotes))
            .col_expr(post::Column::HotRank, Expr::value(hot))
            .col_expr(post::Column::ControversyRank, Expr::value(controversy))
            .filter(post::Column::Id.eq(totals.target_id))
            .exec(txn)
            .await?;
    } else {
        comment::Entity::update_many()
            .col_expr(comment::Column::Score, Expr::value(totals.score))
            .col_expr(comment::Column::Upvotes, Expr::value(totals.upvotes))
            .col_expr(comment::Column::Downvotes, Expr::value(totals.downvotes))
            .col_expr(comment::Column::HotRank, Expr::value(hot))
            .filter(comment::Column::Id.eq(totals.target_id))
            .exec(txn)
            .await?;
    }
    Ok(())
}
