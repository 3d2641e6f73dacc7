//! Fan-out on write: the feed's reaction to posts' and social's events. Each handler keeps the projections
//! (posts, follows, topic subscriptions, blocks) and every affected timeline in step, inside the consumer's
//! transaction, so replaying an event changes nothing.
//!
//! Rule: a post is in U's timeline when U follows its author or subscribed its topic, and neither blocked
//! the other. New follows and subscriptions backfill the latest posts.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::Utc;
use parley_kit::events::contracts::{
    BlockChanged, FollowChanged, PostChanged, TopicSubscriptionChanged, VoteCast,
};
use parley_kit::events::Handler;
use parley_kit::rank;
use parley_kit::store::set_by_key;
use parley_kit::{audience, blocks};
use sea_orm::sea_query::{Condition, Expr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, ExprTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::store::{feed_post, follow, timeline, topic_sub};

/// How many of a followee's (or topic's) latest posts a new follow (or subscription) brings in.
pub const BACKFILL: u64 = 200;

pub struct Fanout;

/// The PostgreSQL advisory lock fan-out transactions hold (`parleyfd`).
const FANOUT_LOCK: i64 = 0x7061_726c_6579_6664;

parley_kit::consumed! {
    /// Everything the fan-out rule depends on.
    pub enum FeedEvent {
        PostCreated, PostDeleted, VoteSubmitted, VoteUpdated, FollowAccepted, FollowRemoved,
        TopicSubscribed, TopicUnsubscribed, UserBlocked, UserUnblocked, AccountPrivacyChanged,
    }
}

#[async_trait]
impl Handler for Fanout {
    type Event = FeedEvent;

    /// Fan-out transactions run one at a time. Feed reads two streams (posts, social) at once, and two
    /// transactions that each read what the other writes would miss each other: a follow applied while its
    /// followee's new post is applied sees no post to backfill, the post sees no follower to fan out to, and
    /// the post never reaches the timeline (likewise an unfollow, block or subscription beside a post). On
    /// PostgreSQL a transaction-scoped advisory lock, taken before anything is read, orders them, and each
    /// statement after it sees what the one before committed; SQLite already runs one writer at a time.
    async fn begin(&self, txn: &DatabaseTransaction) -> Result<(), DbErr> {
        if txn.get_database_backend() == DbBackend::Postgres {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({FANOUT_LOCK})"))
                .await?;
        }
        Ok(())
    }

    async fn apply(&self, txn: &DatabaseTransaction, event: FeedEvent) -> Result<(), DbErr> {
        match event {
            FeedEvent::PostCreated(post) => post_created(txn, post.0).await,
            FeedEvent::PostDeleted(post) => post_deleted(txn, post.post_id).await,
            FeedEvent::VoteSubmitted(v) => vote(txn, v.0).await,
            FeedEvent::VoteUpdated(v) => vote(txn, v.0).await,
            FeedEvent::FollowAccepted(f) => followed(txn, f.0).await,
            FeedEvent::FollowRemoved(f) => unfollowed(txn, f.0).await,
            FeedEvent::TopicSubscribed(t) => subscribed(txn, t.0).await,
            FeedEvent::TopicUnsubscribed(t) => unsubscribed(txn, t.0).await,
            FeedEvent::UserBlocked(b) => {
                blocks::block(txn, &b).await?;
                blocked(txn, b.0).await
            }
            FeedEvent::UserUnblocked(b) => blocks::unblock(txn, &b).await,
            // Read at query time: a private author's posts stay in timelines but show only to followers.
            FeedEvent::AccountPrivacyChanged(p) => audience::privacy_changed(txn, &p).await,
        }
    }
}

fn entry(user: Uuid, post: &feed_post::Model) -> timeline::ActiveModel {
    timeline::ActiveModel {
        user_id: Set(user),
        post_id: Set(post.post_id),
        author_id: Set(post.author_id),
        topic_id: Set(post.topic_id),
        score: Set(post.score),
        hot_rank: Set(post.hot_rank),
        controversy_rank: Set(post.controversy_rank),
    }
}

/// Inserts timeline rows, skipping any that exist.
async fn insert_entries<C: ConnectionTrait>(
    db: &C,
    rows: Vec<timeline::ActiveModel>,
) -> Result<(), DbErr> {
    for chunk in rows.chunks(500) {
        timeline::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([timeline::Column::UserId, timeline::Column::PostId])
            .exec(db)
            .await?;
    }
    Ok(())
}

async fn post_created(txn: &DatabaseTransaction, p: PostChanged) -> Result<(), DbErr> {
    let now = Utc::now();
    let post = feed_post::Model {
        post_id: p.post_id,
        author_id: p.author_id,
        topic_id: p.topic_id,
        created_at: p.created_at,
        score: p.score as i32,
        hot_rank: rank::hot(p.score, p.created_at, now),
        controversy_rank: 0.0,
    };
    let active: feed_post::ActiveModel = post.clone().into();
    feed_post::Entity::insert(active)
        .on_conflict_do_nothing_on([feed_post::Column::PostId])
        .exec(txn)
        .await?;
    let mut readers: BTreeSet<Uuid> = follow::Entity::find()
        .filter(follow::Column::FolloweeId.eq(p.author_id))
        .all(txn)
        .await?
        .into_iter()
        .map(|f| f.follower_id)
        .collect();
    if let Some(topic) = p.topic_id {
        let subscribers = topic_sub::Entity::find()
            .filter(topic_sub::Column::TopicId.eq(topic))
            .all(txn)
            .await?;
        readers.extend(subscribers.into_iter().map(|s| s.user_id));
    }
    let excluded = parley_kit::blocks::partners(txn, p.author_id).await?;
    readers.retain(|r| !excluded.contains(r));
    insert_entries(txn, readers.into_iter().map(|u| entry(u, &post)).collect()).await
}

async fn post_deleted(txn: &DatabaseTransaction, post_id: Uuid) -> Result<(), DbErr> {
    timeline::Entity::delete_many()
        .filter(timeline::Column::PostId.eq(post_id))
        .exec(txn)
        .await?;
    feed_post::Entity::delete_by_id(post_id).exec(txn).await?;
    Ok(())
}

async fn vote(txn: &DatabaseTransaction, v: VoteCast) -> Result<(), DbErr> {
    if v.target_kind != "post" {
        return Ok(());
    }
    let Some(post) = feed_post::Entity::find_by_id(v.target_id).one(txn).await? else {
        return Ok(());
    };
    let hot = rank::hot(v.score, post.created_at, Utc::now());
    let controversy = rank::controversy(v.upvotes, v.downvotes);
    let score = v.score as i32;
    feed_post::Entity::update_many()
        .col_expr(feed_post::Column::Score, Expr::value(score))
        .col_expr(feed_post::Column::HotRank, Expr::value(hot))
        .col_expr(feed_post::Column::ControversyRank, Expr::value(controversy))
        .filter(feed_post::Column::PostId.eq(v.target_id))
        .exec(txn)
        .await?;
    timeline::Entity::update_many()
        .col_expr(timeline::Column::Score, Expr::value(score))
        .col_expr(timeline::Column::HotRank, Expr::value(hot))
        .col_expr(timeline::Column::ControversyRank, Expr::value(controversy))
        .filter(timeline::Column::PostId.eq(v.target_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Backfills the newest posts matching `filter` into `user`'s timeline (skipping blocked authors).
async fn backfill(txn: &DatabaseTransaction, user: Uuid, filter: Condition) -> Result<(), DbErr> {
    let excluded = parley_kit::blocks::partners(txn, user).await?;
    let posts = feed_post::Entity::find()
        .filter(filter)
        .order_by_desc(feed_post::Column::PostId)
        .limit(BACKFILL)
        .all(txn)
        .await?;
    let rows = posts
        .iter()
        .filter(|p| !excluded.contains(&p.author_id))
        .map(|p| entry(user, p))
        .collect();
    insert_entries(txn, rows).await
}

async fn followed(txn: &DatabaseTransaction, f: FollowChanged) -> Result<(), DbErr> {
    audience::followed(txn, &f).await?;
    backfill(
        txn,
        f.follower_id,
        Condition::all().add(feed_post::Column::AuthorId.eq(f.followee_id)),
    )
    .await
}

async fn unfollowed(txn: &DatabaseTransaction, f: FollowChanged) -> Result<(), DbErr> {
    audience::unfollowed(txn, &f).await?;
    // Keep the author's posts that still come in through a subscribed topic.
    let subscribed = Query::select()
        .column(topic_sub::Column::TopicId)
        .from(topic_sub::Entity)
        .and_where(topic_sub::Column::UserId.eq(f.follower_id))
        .to_owned();
    timeline::Entity::delete_many()
        .filter(timeline::Column::UserId.eq(f.follower_id))
        .filter(timeline::Column::AuthorId.eq(f.followee_id))
        .filter(
            Condition::any()
                .add(timeline::Column::TopicId.is_null())
                .add(Expr::col(timeline::Column::TopicId).not_in_subquery(subscribed)),
        )
        .exec(txn)
        .await?;
    Ok(())
}

async fn subscribed(txn: &DatabaseTransaction, s: TopicSubscriptionChanged) -> Result<(), DbErr> {
    topic_sub::Entity::insert(topic_sub::ActiveModel {
        user_id: Set(s.user_id),
        topic_id: Set(s.topic_id),
    })
    .on_conflict_do_nothing_on([topic_sub::Column::UserId, topic_sub::Column::TopicId])
    .exec(txn)
    .await?;
    backfill(
        txn,
        s.user_id,
        Condition::all().add(feed_post::Column::TopicId.eq(s.topic_id)),
    )
    .await
}

async fn unsubscribed(txn: &DatabaseTransaction, s: TopicSubscriptionChanged) -> Result<(), DbErr> {
    topic_sub::Entity::delete_many()
        .filter(topic_sub::Column::UserId.eq(s.user_id))
        .filter(topic_sub::Column::TopicId.eq(s.topic_id))
        .exec(txn)
        .await?;
    // Keep the topic's posts by authors the user follows.
    let followed = Query::select()
        .column(follow::Column::FolloweeId)
        .from(follow::Entity)
        .and_where(follow::Column::FollowerId.eq(s.user_id))
        .to_owned();
    timeline::Entity::delete_many()
        .filter(timeline::Column::UserId.eq(s.user_id))
        .filter(timeline::Column::TopicId.eq(s.topic_id))
        .filter(Expr::col(timeline::Column::AuthorId).not_in_subquery(followed))
        .exec(txn)
        .await?;
    Ok(())
}

/// Each side of a new block leaves the other's timeline.
async fn blocked(txn: &DatabaseTransaction, b: BlockChanged) -> Result<(), DbErr> {
    for (reader, author) in [(b.blocker_id, b.blocked_id), (b.blocked_id, b.blocker_id)] {
        timeline::Entity::delete_many()
            .filter(timeline::Column::UserId.eq(reader))
            .filter(timeline::Column::AuthorId.eq(author))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Recomputes hot ranks of the week's posts in the projection and in every timeline (decay).
pub async fn refresh_ranks<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    let now = Utc::now();
    let since = now - chrono::Duration::hours(rank::HOT_WINDOW_HOURS as i64);
    let ranks: Vec<_> = feed_post::Entity::find()
        .filter(feed_post::Column::CreatedAt.gte(since))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.post_id, rank::hot(i64::from(p.score), p.created_at, now)))
        .collect();
    set_by_key::<timeline::Entity, _>(
        db,
        timeline::Column::PostId,
        timeline::Column::HotRank,
        &ranks,
    )
    .await?;
    set_by_key::<feed_post::Entity, _>(
        db,
        feed_post::Column::PostId,
        feed_post::Column::HotRank,
        &ranks,
    )
    .await?;
    let stale = Query::select()
        .column(feed_post::Column::PostId)
        .from(feed_post::Entity)
        .and_where(feed_post::Column::CreatedAt.lt(since))
        .and_where(feed_post::Column::HotRank.gt(0.0))
        .to_owned();
    timeline::Entity::update_many()
        .col_expr(timeline::Column::HotRank, Expr::value(0.0))
        .filter(Expr::col(timeline::Column::PostId).in_subquery(stale))
        .exec(db)
        .await?;
    feed_post::Entity::update_many()
        .col_expr(feed_post::Column::HotRank, Expr::value(0.0))
        .filter(feed_post::Column::CreatedAt.lt(since))
        .exec(db)
        .await?;
    Ok(())
}
