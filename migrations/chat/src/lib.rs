//! Migrations of the chat subgraph's store: chats (direct ones keyed by their pair of users), members with
//! their role, settings and receipt markers, messages numbered per chat, per-user hidden messages ("delete for
//! me"), and the projections of known users and of blocks. The kit's event tables first.
//!
//! A chat's `last_seq` is its message counter: sending locks the chat row and takes the next number, so
//! `(chat_id, seq)` is unique and gap-free and a client resyncs with "everything after N".

use parley_kit::migration::{index, unique_index};
pub use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateChat),
            Box::new(KnownUserCards),
            Box::new(KnownMedia),
            Box::new(KnownMediaPurpose),
            // Billing's word on each user's plan (what this domain enforces of it).
            Box::new(parley_kit::entitlements::CreateTable("m0005_entitlements")),
            Box::new(CreateAssistantUsage),
        ]
    }
}

#[derive(DeriveIden)]
enum Chats {
    Table,
    Id,
    Kind,
    Title,
    DirectKey,
    CreatorId,
    LastSeq,
    /// Microseconds since the epoch of the last message (chats are listed by it).
    Activity,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ChatMembers {
    Table,
    ChatId,
    UserId,
    Role,
    JoinedAt,
    JoinedSeq,
    MutedUntil,
    NotificationLevel,
    DeliveredSeq,
    ReadSeq,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    ChatId,
    Seq,
    AuthorId,
    Kind,
    Text,
    MediaId,
    ReplyToId,
    SubjectId,
    ClientMessageId,
    CreatedAt,
    EditedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum HiddenMessages {
    Table,
    UserId,
    MessageId,
}

#[derive(DeriveIden)]
enum KnownUsers {
    Table,
    UserId,
    Nickname,
    AvatarUrl,
}

struct CreateChat;

impl MigrationName for CreateChat {
    fn name(&self) -> &str {
        "m0001_create_chat"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateChat {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Chats::Table)
                .col(uuid(Chats::Id).primary_key())
                .col(string(Chats::Kind))
                .col(string_null(Chats::Title))
                .col(string_null(Chats::DirectKey).unique_key())
                .col(uuid(Chats::CreatorId))
                .col(big_integer(Chats::LastSeq))
                .col(big_integer(Chats::Activity))
                .col(timestamp_with_time_zone(Chats::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ChatMembers::Table)
                .col(uuid(ChatMembers::ChatId))
                .col(uuid(ChatMembers::UserId))
                .col(string(ChatMembers::Role))
                .col(timestamp_with_time_zone(ChatMembers::JoinedAt))
                .col(big_integer(ChatMembers::JoinedSeq))
                .col(timestamp_with_time_zone_null(ChatMembers::MutedUntil))
                .col(string(ChatMembers::NotificationLevel))
                .col(big_integer(ChatMembers::DeliveredSeq))
                .col(big_integer(ChatMembers::ReadSeq))
                .primary_key(
                    Index::create()
                        .col(ChatMembers::ChatId)
                        .col(ChatMembers::UserId),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_chat_members_user",
            ChatMembers::Table,
            vec![
                ChatMembers::UserId.into_iden(),
                ChatMembers::ChatId.into_iden(),
            ],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Messages::Table)
                .col(uuid(Messages::Id).primary_key())
                .col(uuid(Messages::ChatId))
                .col(big_integer(Messages::Seq))
                .col(uuid(Messages::AuthorId))
                .col(string(Messages::Kind))
                .col(text_null(Messages::Text))
                .col(uuid_null(Messages::MediaId))
                .col(uuid_null(Messages::ReplyToId))
                .col(uuid_null(Messages::SubjectId))
                .col(string_null(Messages::ClientMessageId))
                .col(timestamp_with_time_zone(Messages::CreatedAt))
                .col(timestamp_with_time_zone_null(Messages::EditedAt))
                .col(timestamp_with_time_zone_null(Messages::DeletedAt))
                .to_owned(),
        )
        .await?;
        unique_index(
            m,
            "idx_messages_chat_seq",
            Messages::Table,
            vec![Messages::ChatId.into_iden(), Messages::Seq.into_iden()],
        )
        .await?;
        // A retried send finds its message here (NULL client ids never collide).
        unique_index(
            m,
            "idx_messages_client_id",
            Messages::Table,
            vec![
                Messages::ChatId.into_iden(),
                Messages::AuthorId.into_iden(),
                Messages::ClientMessageId.into_iden(),
            ],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(HiddenMessages::Table)
                .col(uuid(HiddenMessages::UserId))
                .col(uuid(HiddenMessages::MessageId))
                .primary_key(
                    Index::create()
                        .col(HiddenMessages::UserId)
                        .col(HiddenMessages::MessageId),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(KnownUsers::Table)
                .col(uuid(KnownUsers::UserId).primary_key())
                .to_owned(),
        )
        .await?;
        parley_kit::blocks::create_table(m).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Alias::new("blocks").into_iden(),
            KnownUsers::Table.into_iden(),
            HiddenMessages::Table.into_iden(),
            Messages::Table.into_iden(),
            ChatMembers::Table.into_iden(),
            Chats::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// The public card (nickname, avatar) of each known user, from users' events, so chat answers
/// `Message.author { nickname avatarUrl }` itself (`@provides`) instead of the router asking users once per
/// live subscriber. Nullable: rows from before this migration get their card with the user's next event.
struct KnownUserCards;

impl MigrationName for KnownUserCards {
    fn name(&self) -> &str {
        "m0002_known_user_cards"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for KnownUserCards {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [KnownUsers::Nickname, KnownUsers::AvatarUrl] {
            m.alter_table(
                Table::alter()
                    .table(KnownUsers::Table)
                    .add_column(string_null(column))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [KnownUsers::Nickname, KnownUsers::AvatarUrl] {
            m.alter_table(
                Table::alter()
                    .table(KnownUsers::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum KnownMediaTable {
    #[sea_orm(iden = "known_media")]
    Table,
    MediaId,
    OwnerId,
    Kind,
}

/// Uploads that can be sent in a message (media's `MediaProcessed`, forgotten on `MediaDeleted`): a message
/// names only its sender's checked uploads.
struct KnownMedia;

impl MigrationName for KnownMedia {
    fn name(&self) -> &str {
        "m0003_known_media"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for KnownMedia {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(KnownMediaTable::Table)
                .col(uuid(KnownMediaTable::MediaId).primary_key())
                .col(uuid(KnownMediaTable::OwnerId))
                .col(string(KnownMediaTable::Kind))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(KnownMediaTable::Table).to_owned())
            .await
    }
}

use parley_kit::known_media::KnownMedia as KitColumns;

/// The kit's `known_media` columns chat's first version lacked: what an upload is for (a message names only
/// uploads made for messages) and an avatar's link. Rows from before keep no purpose and stay usable.
struct KnownMediaPurpose;

impl MigrationName for KnownMediaPurpose {
    fn name(&self) -> &str {
        "m0004_known_media_purpose"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for KnownMediaPurpose {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [KitColumns::Purpose, KitColumns::Link] {
            m.alter_table(
                Table::alter()
                    .table(KitColumns::Table)
                    .add_column(string_null(column))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [KitColumns::Purpose, KitColumns::Link] {
            m.alter_table(
                Table::alter()
                    .table(KitColumns::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum AssistantUsage {
    Table,
    UserId,
    Day,
    Requests,
    Tokens,
}

/// What each user asked of the chat assistant per UTC day (days since 1970): its rate and daily budget.
struct CreateAssistantUsage;

impl MigrationName for CreateAssistantUsage {
    fn name(&self) -> &str {
        "m0006_assistant_usage"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAssistantUsage {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AssistantUsage::Table)
                .col(uuid(AssistantUsage::UserId))
                .col(big_integer(AssistantUsage::Day))
                .col(big_integer(AssistantUsage::Requests))
                .col(big_integer(AssistantUsage::Tokens))
                .primary_key(
                    Index::create()
                        .col(AssistantUsage::UserId)
                        .col(AssistantUsage::Day),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AssistantUsage::Table).to_owned())
            .await
    }
}
