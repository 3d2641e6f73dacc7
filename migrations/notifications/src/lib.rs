//! Migrations of the notifications subgraph's store: the notifications (one row per group), each user's
//! channel preferences, push subscriptions and the push queue, the secrets made on first start, messages held back while their reader may be
//! connected, and what notifications learns from other domains to decide who is told (nicknames and proven
//! addresses, posts' and comments' authors, chat members and their mute settings, pending follow requests)
//! — with the visibility rule's tables (blocks, follows, private accounts). The kit's event tables first.

use parley_kit::migration::index;
pub use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateNotifications)]
    }
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    RecipientId,
    Kind,
    GroupKey,
    Count,
    Actors,
    PostId,
    CommentId,
    ChatId,
    MessageId,
    LastSeq,
    Milestone,
    Listed,
    ReadAt,
    EmailedAt,
    SortKey,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Preferences {
    Table,
    UserId,
    Kind,
    Channel,
    Enabled,
}

#[derive(DeriveIden)]
enum Recipients {
    Table,
    UserId,
    Nickname,
    DisplayName,
    Email,
    LastDigestAt,
}

#[derive(DeriveIden)]
enum Content {
    Table,
    Id,
    AuthorId,
    PostId,
    PostAuthorId,
    Milestone,
    Deleted,
}

#[derive(DeriveIden)]
enum ChatMembers {
    Table,
    ChatId,
    UserId,
    Group,
    MutedUntil,
    Level,
}

#[derive(DeriveIden)]
enum FollowRequests {
    Table,
    FollowerId,
    FolloweeId,
}

#[derive(DeriveIden)]
enum HeldMessages {
    Table,
    ChatId,
    UserId,
    Count,
    LastSeq,
    LastMessageId,
    Actors,
    DueAt,
}

#[derive(DeriveIden)]
enum PushSubscriptions {
    Table,
    Endpoint,
    UserId,
    P256dh,
    Auth,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PushJobs {
    Table,
    Id,
    NotificationId,
    Endpoint,
    Attempts,
    NextAt,
}

/// The kit's table, named to drop it.
#[derive(DeriveIden)]
enum Blocks {
    Table,
}

#[derive(DeriveIden)]
enum Secrets {
    Table,
    Name,
    Value,
}

struct CreateNotifications;

impl MigrationName for CreateNotifications {
    fn name(&self) -> &str {
        "m0001_create_notifications"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateNotifications {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Notifications::Table)
                .col(uuid(Notifications::Id).primary_key())
                .col(uuid(Notifications::RecipientId))
                .col(string(Notifications::Kind))
                .col(string(Notifications::GroupKey))
                .col(big_integer(Notifications::Count))
                .col(text(Notifications::Actors))
                .col(uuid_null(Notifications::PostId))
                .col(uuid_null(Notifications::CommentId))
                .col(uuid_null(Notifications::ChatId))
                .col(uuid_null(Notifications::MessageId))
                .col(big_integer_null(Notifications::LastSeq))
                .col(integer_null(Notifications::Milestone))
                .col(boolean(Notifications::Listed))
                .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                .col(timestamp_with_time_zone_null(Notifications::EmailedAt))
                .col(uuid(Notifications::SortKey))
                .col(timestamp_with_time_zone(Notifications::CreatedAt))
                .col(timestamp_with_time_zone(Notifications::UpdatedAt))
                .to_owned(),
        )
        .await?;
        // A recipient's list, newest change first.
        index(
            m,
            "idx_notifications_recipient_sort",
            Notifications::Table,
            vec![
                Notifications::RecipientId.into_iden(),
                Notifications::SortKey.into_iden(),
            ],
        )
        .await?;
        // The unread group an event folds into.
        index(
            m,
            "idx_notifications_recipient_group",
            Notifications::Table,
            vec![
                Notifications::RecipientId.into_iden(),
                Notifications::GroupKey.into_iden(),
            ],
        )
        .await?;
        // Pruning read ones.
        index(
            m,
            "idx_notifications_read_at",
            Notifications::Table,
            vec![Notifications::ReadAt.into_iden()],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Preferences::Table)
                .col(uuid(Preferences::UserId))
                .col(string(Preferences::Kind))
                .col(string(Preferences::Channel))
                .col(boolean(Preferences::Enabled))
                .primary_key(
                    Index::create()
                        .col(Preferences::UserId)
                        .col(Preferences::Kind)
                        .col(Preferences::Channel),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Recipients::Table)
                .col(uuid(Recipients::UserId).primary_key())
                .col(string_null(Recipients::Nickname))
                .col(string_null(Recipients::DisplayName))
                .col(string_null(Recipients::Email))
                .col(timestamp_with_time_zone_null(Recipients::LastDigestAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_recipients_nickname",
            Recipients::Table,
            vec![Recipients::Nickname.into_iden()],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Content::Table)
                .col(uuid(Content::Id).primary_key())
                .col(uuid(Content::AuthorId))
                .col(uuid(Content::PostId))
                .col(uuid(Content::PostAuthorId))
                .col(integer(Content::Milestone).default(0))
                .col(boolean(Content::Deleted).default(false))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ChatMembers::Table)
                .col(uuid(ChatMembers::ChatId))
                .col(uuid(ChatMembers::UserId))
                .col(boolean(ChatMembers::Group))
                .col(timestamp_with_time_zone_null(ChatMembers::MutedUntil))
                .col(string(ChatMembers::Level))
                .primary_key(
                    Index::create()
                        .col(ChatMembers::ChatId)
                        .col(ChatMembers::UserId),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(FollowRequests::Table)
                .col(uuid(FollowRequests::FollowerId))
                .col(uuid(FollowRequests::FolloweeId))
                .primary_key(
                    Index::create()
                        .col(FollowRequests::FollowerId)
                        .col(FollowRequests::FolloweeId),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(HeldMessages::Table)
                .col(uuid(HeldMessages::ChatId))
                .col(uuid(HeldMessages::UserId))
                .col(big_integer(HeldMessages::Count))
                .col(big_integer(HeldMessages::LastSeq))
                .col(uuid(HeldMessages::LastMessageId))
                .col(text(HeldMessages::Actors))
                .col(timestamp_with_time_zone(HeldMessages::DueAt))
                .primary_key(
                    Index::create()
                        .col(HeldMessages::ChatId)
                        .col(HeldMessages::UserId),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_held_messages_due",
            HeldMessages::Table,
            vec![HeldMessages::DueAt.into_iden()],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PushSubscriptions::Table)
                .col(string(PushSubscriptions::Endpoint).primary_key())
                .col(uuid(PushSubscriptions::UserId))
                .col(string(PushSubscriptions::P256dh))
                .col(string(PushSubscriptions::Auth))
                .col(timestamp_with_time_zone(PushSubscriptions::CreatedAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_push_subscriptions_user",
            PushSubscriptions::Table,
            vec![PushSubscriptions::UserId.into_iden()],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PushJobs::Table)
                .col(uuid(PushJobs::Id).primary_key())
                .col(uuid(PushJobs::NotificationId))
                .col(string(PushJobs::Endpoint))
                .col(integer(PushJobs::Attempts).default(0))
                .col(timestamp_with_time_zone(PushJobs::NextAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_push_jobs_next",
            PushJobs::Table,
            vec![PushJobs::NextAt.into_iden()],
        )
        .await?;
        // Made on first start and shared by every instance: the VAPID key pair, the unsubscribe-link key.
        m.create_table(
            Table::create()
                .table(Secrets::Table)
                .col(string(Secrets::Name).primary_key())
                .col(string(Secrets::Value))
                .to_owned(),
        )
        .await?;
        parley_kit::blocks::create_table(m).await?;
        parley_kit::audience::create_follows(m).await?;
        parley_kit::audience::create_private_accounts(m).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Notifications::Table.into_iden(),
            Preferences::Table.into_iden(),
            Recipients::Table.into_iden(),
            Content::Table.into_iden(),
            ChatMembers::Table.into_iden(),
            FollowRequests::Table.into_iden(),
            HeldMessages::Table.into_iden(),
            PushSubscriptions::Table.into_iden(),
            PushJobs::Table.into_iden(),
            Secrets::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        parley_kit::audience::drop_follows(m).await?;
        parley_kit::audience::drop_private_accounts(m).await?;
        m.drop_table(Table::drop().table(Blocks::Table).to_owned())
            .await
    }
}
