//! Hot ranks decay with age, so a background task recomputes them for the last week's posts and comments
//! (older ones are set to 0 once). Votes recompute their target's rank immediately.

use std::time::Duration;

use chrono::Utc;
use parley_kit::rank;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect};

use crate::store::{comment, post};

/// How often ranks are refreshed.
pub const INTERVAL: Duration = Duration::from_secs(300);

pub fn start(db: DatabaseConnection) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(err) = refresh(&db).await {
                tracing::warn!(error = %err, "hot rank refresh failed");
            }
        }
    })
}

/// Recomputes hot ranks of the window's posts and comments; zeroes those that left it.
pub async fn refresh(db: &DatabaseConnection) -> Result<(), DbErr> {
    let now = Utc::now();
    let since = now - chrono::Duration::hours(rank::HOT_WINDOW_HOURS as i64);
    let posts: Vec<(uuid::Uuid, i32, chrono::DateTime<Utc>)> = post::Entity::find()
        .select_only()
        .columns([
            post::Column::Id,
            post::Column::Score,
            post::Column::CreatedAt,
        ])
        .filter(post::Column::CreatedAt.gte(since))
        .filter(post::Column::DeletedAt.is_null())
        .into_tuple()
        .all(db)
        .await?;
    for (id, score, created) in posts {
        post::Entity::update_many()
            .col_expr(
                post::Column::HotRank,
                Expr::value(rank::hot(i64::from(score), created, now)),
            )
            .filter(post::Column::Id.eq(id))
            .exec(db)
            .await?;
    }
    post::Entity::update_many()
        .col_expr(post::Column::HotRank, Expr::value(0.0))
        .filter(post::Column::CreatedAt.lt(since))
        .filter(post::Column::HotRank.gt(0.0))
        .exec(db)
        .await?;
    let comments: Vec<(uuid::Uuid, i32, chrono::DateTime<Utc>)> = comment::Entity::find()
        .select_only()
        .columns([
            comment::Column::Id,
            comment::Column::Score,
            comment::Column::CreatedAt,
        ])
        .filter(comment::Column::CreatedAt.gte(since))
        .into_tuple()
        .all(db)
        .await?;
    for (id, score, created) in comments {
        comment::Entity::update_many()
            .col_expr(
                comment::Column::HotRank,
                Expr::value(rank::hot(i64::from(score), created, now)),
            )
            .filter(comment::Column::Id.eq(id))
            .exec(db)
            .await?;
    }
    comment::Entity::update_many()
        .col_expr(comment::Column::HotRank, Expr::value(0.0))
        .filter(comment::Column::CreatedAt.lt(since))
        .filter(comment::Column::HotRank.gt(0.0))
        .exec(db)
        .await?;
    Ok(())
}
