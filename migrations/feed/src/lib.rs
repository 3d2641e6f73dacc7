//! Migrations of the feed subgraph's store: projections of posts, follows, topic subscriptions and blocks
//! (all from events), and each user's timeline (fan-out on write) with its ranks stored for keyset sorts.

use parley_kit::migration::index;
pub use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateFeed), Box::new(PrivateAccounts)]
    }
}

#[derive(DeriveIden)]
enum FeedPosts {
    Table,
    PostId,
    AuthorId,
    TopicId,
    CreatedAt,
    Score,
    HotRank,
    ControversyRank,
}

#[derive(DeriveIden, Clone, Copy)]
enum Follows {
    Table,
    FollowerId,
    FolloweeId,
}

#[derive(DeriveIden, Clone, Copy)]
enum TopicSubs {
    Table,
    UserId,
    TopicId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Blocks {
    Table,
}

#[derive(DeriveIden)]
enum Timeline {
    Table,
    UserId,
    PostId,
    AuthorId,
    TopicId,
    Score,
    HotRank,
    ControversyRank,
}

struct CreateFeed;

impl MigrationName for CreateFeed {
    fn name(&self) -> &str {
        "m0001_create_feed"
    }
}

fn pair_table(
    table: impl IntoIden,
    a: impl IntoIden + Clone,
    b: impl IntoIden + Clone,
) -> TableCreateStatement {
    Table::create()
        .table(table)
        .col(uuid(a.clone()))
        .col(uuid(b.clone()))
        .primary_key(Index::create().col(a).col(b))
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateFeed {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(FeedPosts::Table)
                .col(uuid(FeedPosts::PostId).primary_key())
                .col(uuid(FeedPosts::AuthorId))
                .col(uuid_null(FeedPosts::TopicId))
                .col(timestamp_with_time_zone(FeedPosts::CreatedAt))
                .col(integer(FeedPosts::Score))
                .col(double(FeedPosts::HotRank))
                .col(double(FeedPosts::ControversyRank))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_feed_posts_author",
            FeedPosts::Table,
            vec![
                FeedPosts::AuthorId.into_iden(),
                FeedPosts::PostId.into_iden(),
            ],
        )
        .await?;
        index(
            m,
            "idx_feed_posts_topic",
            FeedPosts::Table,
            vec![
                FeedPosts::TopicId.into_iden(),
                FeedPosts::PostId.into_iden(),
            ],
        )
        .await?;
        index(
            m,
            "idx_feed_posts_created",
            FeedPosts::Table,
            vec![FeedPosts::CreatedAt.into_iden()],
        )
        .await?;
        m.create_table(pair_table(
            Follows::Table,
            Follows::FollowerId,
            Follows::FolloweeId,
        ))
        .await?;
        index(
            m,
            "idx_follows_followee",
            Follows::Table,
            vec![Follows::FolloweeId.into_iden()],
        )
        .await?;
        m.create_table(pair_table(
            TopicSubs::Table,
            TopicSubs::UserId,
            TopicSubs::TopicId,
        ))
        .await?;
        index(
            m,
            "idx_topic_subs_topic",
            TopicSubs::Table,
            vec![TopicSubs::TopicId.into_iden()],
        )
        .await?;
        parley_kit::blocks::create_table(m).await?;
        m.create_table(
            Table::create()
                .table(Timeline::Table)
                .col(uuid(Timeline::UserId))
                .col(uuid(Timeline::PostId))
                .col(uuid(Timeline::AuthorId))
                .col(uuid_null(Timeline::TopicId))
                .col(integer(Timeline::Score))
                .col(double(Timeline::HotRank))
                .col(double(Timeline::ControversyRank))
                .primary_key(Index::create().col(Timeline::UserId).col(Timeline::PostId))
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("idx_timeline_hot", Timeline::HotRank),
            ("idx_timeline_top", Timeline::Score),
            ("idx_timeline_controversial", Timeline::ControversyRank),
        ] {
            index(
                m,
                name,
                Timeline::Table,
                vec![
                    Timeline::UserId.into_iden(),
                    col.into_iden(),
                    Timeline::PostId.into_iden(),
                ],
            )
            .await?;
        }
        index(
            m,
            "idx_timeline_post",
            Timeline::Table,
            vec![Timeline::PostId.into_iden()],
        )
        .await?;
        index(
            m,
            "idx_timeline_author",
            Timeline::Table,
            vec![Timeline::UserId.into_iden(), Timeline::AuthorId.into_iden()],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Timeline::Table.into_iden(),
            Blocks::Table.into_iden(),
            TopicSubs::Table.into_iden(),
            Follows::Table.into_iden(),
            FeedPosts::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// Private accounts, projected from social's events: a private author's posts leave the timelines of readers
/// who do not follow them (topic subscribers) at once ([`parley_kit::audience`]).
struct PrivateAccounts;

impl MigrationName for PrivateAccounts {
    fn name(&self) -> &str {
        "m0002_private_accounts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PrivateAccounts {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        parley_kit::audience::create_private_accounts(m).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        parley_kit::audience::drop_private_accounts(m).await
    }
}
