//! Hot ranks decay with age, so a background task recomputes them for the last week's posts and comments
//! (older ones are set to 0 once). Votes recompute their target's rank immediately.

use std::time::Duration;

use chrono::Utc;
use parley_kit::rank;
use parley_kit::store::set_by_key;
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
    let ranks: Vec<_> = posts
        .into_iter()
        .map(|(id, score, created)| (id, rank::hot(i64::from(score), created, now)))
        .collect();
    set_by_key::<post::Entity, _>(db, post::Column::Id, post::Column::HotRank, &ranks).await?;
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
    let ranks: Vec<_> = comments
        .into_iter()
        .map(|(id, score, created)| (id, rank::hot(i64::from(score), created, now)))
        .collect();
    set_by_key::<comment::Entity, _>(db, comment::Column::Id, comment::Column::HotRank, &ranks)
        .await?;
    comment::Entity::update_many()
        .col_expr(comment::Column::HotRank, Expr::value(0.0))
        .filter(comment::Column::CreatedAt.lt(since))
        .filter(comment::Column::HotRank.gt(0.0))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    use uuid::Uuid;

    use super::*;

    fn post_at(hours_ago: i64, score: i32, hot_rank: f64) -> post::ActiveModel {
        let created = Utc::now() - chrono::Duration::hours(hours_ago);
        post::ActiveModel {
            id: Set(Uuid::now_v7()),
            author_id: Set(Uuid::now_v7()),
            topic_id: Set(None),
            title: Set("t".into()),
            body: Set(String::new()),
            tags: Set("[]".into()),
            score: Set(score),
            upvotes: Set(score.max(0)),
            downvotes: Set(0),
            comment_count: Set(0),
            hot_rank: Set(hot_rank),
            controversy_rank: Set(0.0),
            created_at: Set(created),
            updated_at: Set(created),
            deleted_at: Set(None),
            deleted_by: Set(None),
            delete_reason: Set(None),
        }
    }

    /// More posts than one bulk statement holds, each with its own age and score: every rank is recomputed,
    /// and a post older than the window drops to 0.
    #[tokio::test]
    async fn refresh_recomputes_every_rank_of_the_window() {
        let url = format!(
            "sqlite://{}?mode=rwc",
            parley_kit::testing::temp_dir("posts-decay")
                .join("posts.db")
                .display()
        );
        let db = parley_kit::store::connect_url::<migration_posts::Migrator>(&url, 1)
            .await
            .expect("store");
        let mut recent = Vec::new();
        for i in 0..1_203 {
            let model = post_at(i % 150, (i % 40) as i32 - 5, 99.0)
                .insert(&db)
                .await
                .expect("insert");
            recent.push(model.id);
        }
        let old = post_at(24 * 8, 10, 99.0).insert(&db).await.expect("insert");

        refresh(&db).await.expect("refresh");

        let now = Utc::now();
        for id in recent {
            let p = post::Entity::find_by_id(id)
                .one(&db)
                .await
                .expect("read")
                .expect("post");
            // Seconds pass between the refresh and this check: compare within 0.1 %.
            let expected = rank::hot(i64::from(p.score), p.created_at, now);
            assert!(
                (p.hot_rank - expected).abs() <= expected * 1e-3 && p.hot_rank != 99.0,
                "{} vs {expected}",
                p.hot_rank
            );
        }
        let old = post::Entity::find_by_id(old.id)
            .one(&db)
            .await
            .expect("read")
            .expect("post");
        assert_eq!(old.hot_rank, 0.0);
    }
}
