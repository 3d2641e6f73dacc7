//! Migrations of the posts subgraph's store: topics and subscriptions, posts with their stored ranks, tags,
//! threaded comments (materialised path), votes, and the projection of blocks. The kit's event tables first.
//!
//! Ranks are stored, indexed columns so every sort is a keyset walk of an index: `hot_rank` (Lemmy's formula,
//! refreshed on vote and periodically for decay), `controversy_rank`, `score`, and the time-ordered UUIDv7 `id`.

use parley_kit::migration::index;
pub use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreatePosts),
            Box::new(Audience),
            Box::new(Attachments),
        ]
    }
}

#[derive(DeriveIden)]
enum Topics {
    Table,
    Id,
    Name,
    Title,
    Description,
    CreatorId,
    SubscriberCount,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TopicSubscriptions {
    Table,
    UserId,
    TopicId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Posts {
    Table,
    Id,
    AuthorId,
    TopicId,
    Title,
    Body,
    Tags,
    Score,
    Upvotes,
    Downvotes,
    CommentCount,
    HotRank,
    ControversyRank,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
    DeletedBy,
    DeleteReason,
}

#[derive(DeriveIden)]
enum PostTags {
    Table,
    PostId,
    Tag,
}

#[derive(DeriveIden)]
enum Comments {
    Table,
    Id,
    PostId,
    ParentId,
    AuthorId,
    Body,
    Path,
    Depth,
    Score,
    Upvotes,
    Downvotes,
    ReplyCount,
    HotRank,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Votes {
    Table,
    UserId,
    TargetId,
    TargetKind,
    Value,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Blocks {
    Table,
}

struct CreatePosts;

impl MigrationName for CreatePosts {
    fn name(&self) -> &str {
        "m0001_create_posts"
    }
}

/// The materialised path is compared byte by byte (range scans, depth-first order): on PostgreSQL that needs
/// the C collation whatever the database's default is.
fn path_column(m: &SchemaManager<'_>) -> ColumnDef {
    let mut col = string(Comments::Path);
    if m.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
        col.extra("COLLATE \"C\"");
    }
    col
}

#[async_trait::async_trait]
impl MigrationTrait for CreatePosts {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Topics::Table)
                .col(uuid(Topics::Id).primary_key())
                .col(string_uniq(Topics::Name))
                .col(string(Topics::Title))
                .col(text_null(Topics::Description))
                .col(uuid(Topics::CreatorId))
                .col(integer(Topics::SubscriberCount))
                .col(timestamp_with_time_zone(Topics::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TopicSubscriptions::Table)
                .col(uuid(TopicSubscriptions::UserId))
                .col(uuid(TopicSubscriptions::TopicId))
                .col(timestamp_with_time_zone(TopicSubscriptions::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(TopicSubscriptions::UserId)
                        .col(TopicSubscriptions::TopicId),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Posts::Table)
                .col(uuid(Posts::Id).primary_key())
                .col(uuid(Posts::AuthorId))
                .col(uuid_null(Posts::TopicId))
                .col(string(Posts::Title))
                .col(text(Posts::Body))
                .col(text(Posts::Tags))
                .col(integer(Posts::Score))
                .col(integer(Posts::Upvotes))
                .col(integer(Posts::Downvotes))
                .col(integer(Posts::CommentCount))
                .col(double(Posts::HotRank))
                .col(double(Posts::ControversyRank))
                .col(timestamp_with_time_zone(Posts::CreatedAt))
                .col(timestamp_with_time_zone(Posts::UpdatedAt))
                .col(timestamp_with_time_zone_null(Posts::DeletedAt))
                .col(uuid_null(Posts::DeletedBy))
                .col(text_null(Posts::DeleteReason))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_posts_hot",
            Posts::Table,
            vec![Posts::HotRank.into_iden(), Posts::Id.into_iden()],
        )
        .await?;
        index(
            m,
            "idx_posts_top",
            Posts::Table,
            vec![Posts::Score.into_iden(), Posts::Id.into_iden()],
        )
        .await?;
        index(
            m,
            "idx_posts_controversial",
            Posts::Table,
            vec![Posts::ControversyRank.into_iden(), Posts::Id.into_iden()],
        )
        .await?;
        index(
            m,
            "idx_posts_topic_hot",
            Posts::Table,
            vec![
                Posts::TopicId.into_iden(),
                Posts::HotRank.into_iden(),
                Posts::Id.into_iden(),
            ],
        )
        .await?;
        index(
            m,
            "idx_posts_topic_new",
            Posts::Table,
            vec![Posts::TopicId.into_iden(), Posts::Id.into_iden()],
        )
        .await?;
        index(
            m,
            "idx_posts_author",
            Posts::Table,
            vec![Posts::AuthorId.into_iden(), Posts::Id.into_iden()],
        )
        .await?;
        index(
            m,
            "idx_posts_created",
            Posts::Table,
            vec![Posts::CreatedAt.into_iden()],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PostTags::Table)
                .col(uuid(PostTags::PostId))
                .col(string(PostTags::Tag))
                .primary_key(Index::create().col(PostTags::PostId).col(PostTags::Tag))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_post_tags_tag",
            PostTags::Table,
            vec![PostTags::Tag.into_iden(), PostTags::PostId.into_iden()],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Comments::Table)
                .col(uuid(Comments::Id).primary_key())
                .col(uuid(Comments::PostId))
                .col(uuid_null(Comments::ParentId))
                .col(uuid(Comments::AuthorId))
                .col(text(Comments::Body))
                .col(path_column(m))
                .col(integer(Comments::Depth))
                .col(integer(Comments::Score))
                .col(integer(Comments::Upvotes))
                .col(integer(Comments::Downvotes))
                .col(integer(Comments::ReplyCount))
                .col(double(Comments::HotRank))
                .col(timestamp_with_time_zone(Comments::CreatedAt))
                .col(timestamp_with_time_zone(Comments::UpdatedAt))
                .col(timestamp_with_time_zone_null(Comments::DeletedAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_comments_level_new",
            Comments::Table,
            vec![
                Comments::PostId.into_iden(),
                Comments::ParentId.into_iden(),
                Comments::Id.into_iden(),
            ],
        )
        .await?;
        index(
            m,
            "idx_comments_level_top",
            Comments::Table,
            vec![
                Comments::PostId.into_iden(),
                Comments::ParentId.into_iden(),
                Comments::Score.into_iden(),
                Comments::Id.into_iden(),
            ],
        )
        .await?;
        index(
            m,
            "idx_comments_level_hot",
            Comments::Table,
            vec![
                Comments::PostId.into_iden(),
                Comments::ParentId.into_iden(),
                Comments::HotRank.into_iden(),
                Comments::Id.into_iden(),
            ],
        )
        .await?;
        index(
            m,
            "idx_comments_path",
            Comments::Table,
            vec![Comments::Path.into_iden()],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Votes::Table)
                .col(uuid(Votes::UserId))
                .col(uuid(Votes::TargetId))
                .col(string(Votes::TargetKind))
                .col(small_integer(Votes::Value))
                .col(timestamp_with_time_zone(Votes::CreatedAt))
                .col(timestamp_with_time_zone(Votes::UpdatedAt))
                .primary_key(Index::create().col(Votes::UserId).col(Votes::TargetId))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_votes_target",
            Votes::Table,
            vec![Votes::TargetId.into_iden()],
        )
        .await?;
        parley_kit::blocks::create_table(m).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Blocks::Table.into_iden(),
            Votes::Table.into_iden(),
            Comments::Table.into_iden(),
            PostTags::Table.into_iden(),
            Posts::Table.into_iden(),
            TopicSubscriptions::Table.into_iden(),
            Topics::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// What the visibility rule reads besides blocks ([`parley_kit::audience`]): approved follows and private
/// accounts, projected from social's events. An existing store learns them from the events after this
/// migration (an account private before it is hidden once it sets its privacy again).
struct Audience;

impl MigrationName for Audience {
    fn name(&self) -> &str {
        "m0002_audience"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Audience {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        parley_kit::audience::create_follows(m).await?;
        parley_kit::audience::create_private_accounts(m).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        parley_kit::audience::drop_private_accounts(m).await?;
        parley_kit::audience::drop_follows(m).await
    }
}

#[derive(DeriveIden)]
enum PostAttachments {
    Table,
    PostId,
    MediaId,
    Position,
}

/// Media attached to posts (in the author's order), and the projection of media's READY uploads that says
/// which an author may attach ([`parley_kit::known_media`]).
struct Attachments;

impl MigrationName for Attachments {
    fn name(&self) -> &str {
        "m0003_attachments"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Attachments {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        parley_kit::known_media::create_table(m).await?;
        m.create_table(
            Table::create()
                .table(PostAttachments::Table)
                .col(uuid(PostAttachments::PostId))
                .col(uuid(PostAttachments::MediaId))
                .col(integer(PostAttachments::Position))
                .primary_key(
                    Index::create()
                        .col(PostAttachments::PostId)
                        .col(PostAttachments::MediaId),
                )
                .to_owned(),
        )
        .await?;
        // A deleted upload leaves every post it was attached to.
        parley_kit::migration::index(
            m,
            "idx_post_attachments_media",
            PostAttachments::Table,
            vec![PostAttachments::MediaId.into_iden()],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PostAttachments::Table).to_owned())
            .await?;
        m.drop_table(
            Table::drop()
                .table(parley_kit::known_media::KnownMedia::Table)
                .to_owned(),
        )
        .await
    }
}
