//! parley-feed: the home feed subgraph. It owns no entity: `Query.feed` returns `Post` references that the
//! router completes from posts. Timelines are built by fan-out on write from posts' and social's events into
//! this subgraph's own store (it never reads another store), ranks copied for keyset sorts and refreshed for
//! decay.
//!
//! Layout: [`Feed`] (the subgraph as a value); `schema` (the query); `fanout` (the event handler and rank refresh); `store`
//! (entities); [`FeedError`].

mod fanout;
mod schema;
mod store;

use std::time::Duration;

use async_graphql::{EmptyMutation, EmptySubscription, SchemaBuilder};
use parley_kit::{CodedError, Domain, ErrorCode, Parts, Runtime};

pub use migration_feed::Migrator;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("store error: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl CodedError for FeedError {
    fn code(&self) -> ErrorCode {
        ErrorCode::Internal
    }
}

/// How often hot ranks in timelines are refreshed.
const DECAY_INTERVAL: Duration = Duration::from_secs(300);

/// The feed subgraph.
pub struct Feed;

#[async_trait::async_trait]
impl Domain for Feed {
    const NAME: &'static str = "feed";
    const PORT: u16 = 4004;
    type Migrator = Migrator;
    type Handler = fanout::Fanout;
    type Settings = parley_kit::config::NoSettings;
    type Query = schema::Query;
    type Mutation = EmptyMutation;
    type Subscription = EmptySubscription;

    fn schema() -> SchemaBuilder<schema::Query, EmptyMutation, EmptySubscription> {
        schema::builder()
    }

    /// The rank refresh task and the schema.
    async fn build(runtime: &mut Runtime, _: Self::Settings) -> anyhow::Result<Parts<Self>> {
        let db = runtime.db.clone();
        runtime.add_task(tokio::spawn(async move {
            let mut tick = tokio::time::interval(DECAY_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(err) = fanout::refresh_ranks(&db).await {
                    tracing::warn!(error = %err, "feed rank refresh failed");
                }
            }
        }));
        Ok(Parts {
            schema: schema::build(runtime.db.clone()),
            routes: axum::Router::new(),
            handler: fanout::Fanout,
        })
    }
}

#[cfg(test)]
mod tests {
    //! The fan-out handler applied through the kit's consumer path, as events arrive.

    use chrono::Utc;
    use parley_kit::events::consumer::apply;
    use parley_kit::events::contracts::{FollowAccepted, FollowChanged, PostChanged, PostCreated};
    use parley_kit::events::{Event, EventEnvelope, EventHandler};
    use sea_orm::{EntityTrait, PaginatorTrait};
    use uuid::Uuid;

    use super::*;
    use crate::store::timeline;

    fn envelope<E: Event>(position: i64, event: E) -> EventEnvelope {
        parley_kit::testing::envelope(position, "x", event)
    }

    fn post_event(position: i64, author: Uuid) -> EventEnvelope {
        let post = PostChanged {
            post_id: Uuid::now_v7(),
            author_id: author,
            topic_id: None,
            created_at: Utc::now(),
            score: 0,
            mentions: Vec::new(),
            ..Default::default()
        };
        envelope(position, PostCreated(post))
    }

    fn follow_event(position: i64, reader: Uuid, author: Uuid) -> EventEnvelope {
        let follow = FollowChanged {
            follower_id: reader,
            followee_id: author,
        };
        envelope(position, FollowAccepted(follow))
    }

    /// A follow and its followee's new post applied at the same time, each in its own transaction (feed reads
    /// social's and posts' streams at once): the post still reaches the follower's timeline. Without the
    /// fan-out lock the follow's backfill does not see the uncommitted post and the post's fan-out does not
    /// see the follow.
    #[tokio::test]
    async fn a_follow_beside_its_followees_new_post_keeps_the_post() {
        use sea_orm::TransactionTrait;
        let Some(admin) = parley_kit::testing::postgres_url() else {
            return;
        };
        let url = parley_kit::testing::fresh_postgres_db(&admin, "feed_race").await;
        let mut config =
            parley_kit::testing::config(Feed::NAME, parley_kit::testing::temp_dir("feed-race"));
        config.database_url = Some(url);
        let (runtime, _) = Feed::start(config).await.expect("build");
        let (reader, author) = (Uuid::now_v7(), Uuid::now_v7());
        let post = post_event(1, author);
        let follow = follow_event(1, reader, author);

        // Each as the consumer applies it: `begin`, then `handle`, in one transaction.
        let posting = runtime.db.begin().await.expect("begin");
        fanout::Fanout.begin(&posting).await.expect("begin post");
        fanout::Fanout
            .handle(&posting, &post)
            .await
            .expect("post applied");
        let db = runtime.db.clone();
        let following = tokio::spawn(async move {
            let txn = db.begin().await.expect("begin");
            fanout::Fanout.begin(&txn).await.expect("begin follow");
            fanout::Fanout
                .handle(&txn, &follow)
                .await
                .expect("follow applied");
            txn.commit().await.expect("commit follow");
        });
        // Give the follow time to run (or to wait for the post's transaction).
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        posting.commit().await.expect("commit post");
        following.await.expect("follow task");

        let rows = timeline::Entity::find()
            .count(&runtime.db)
            .await
            .expect("count");
        assert_eq!(rows, 1, "the post is in the follower's timeline");
    }

    #[tokio::test]
    async fn replaying_events_changes_nothing() {
        let config =
            parley_kit::testing::config(Feed::NAME, parley_kit::testing::temp_dir("feed-replay"));
        let (runtime, _) = Feed::start(config).await.expect("build");
        let (reader, author) = (Uuid::now_v7(), Uuid::now_v7());
        let follow = follow_event(1, reader, author);
        let post = post_event(2, author);
        for _ in 0..3 {
            for event in [&follow, &post] {
                apply(&runtime.db, "posts", &fanout::Fanout, event)
                    .await
                    .expect("apply");
            }
        }
        let rows = timeline::Entity::find()
            .count(&runtime.db)
            .await
            .expect("count");
        assert_eq!(
            rows, 1,
            "one post in one timeline, however often the events came"
        );
    }
}
