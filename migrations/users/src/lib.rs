//! Migrations of the users subgraph's store: accounts, refresh-token sessions, one-time tokens (password reset,
//! email verification), the JWT signing keys, and sign-in with OpenID Connect providers (linked identities,
//! sign-ins under way). The kit's event tables come first.

use parley_kit::migration::index;
pub use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateUsers),
            Box::new(RevokedSessionsIndex),
            Box::new(Avatars),
            Box::new(OAuth),
        ]
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Nickname,
    NicknameKey,
    Name,
    NameKey,
    PasswordHash,
    Bio,
    AvatarUrl,
    AvatarId,
    Status,
    Role,
    EmailVerified,
    CreatedAt,
    UpdatedAt,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    FamilyId,
    UserId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    ReplacedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum UserTokens {
    Table,
    TokenHash,
    UserId,
    Purpose,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    PrivateKey,
    PublicKey,
    CreatedAt,
}

struct CreateUsers;

impl MigrationName for CreateUsers {
    fn name(&self) -> &str {
        "m0001_create_users"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateUsers {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(uuid(Users::Id).primary_key())
                .col(string_uniq(Users::Email))
                .col(string(Users::Nickname))
                .col(string_uniq(Users::NicknameKey))
                .col(string(Users::Name))
                .col(string(Users::NameKey))
                .col(string(Users::PasswordHash))
                .col(text_null(Users::Bio))
                .col(string_null(Users::AvatarUrl))
                .col(string_null(Users::Status))
                .col(string(Users::Role))
                .col(boolean(Users::EmailVerified))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .col(timestamp_with_time_zone(Users::UpdatedAt))
                .col(timestamp_with_time_zone_null(Users::LastSeenAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_users_name_key")
                .table(Users::Table)
                .col(Users::NameKey)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(uuid(Sessions::Id).primary_key())
                .col(uuid(Sessions::FamilyId))
                .col(uuid(Sessions::UserId))
                .col(string_uniq(Sessions::TokenHash))
                .col(timestamp_with_time_zone(Sessions::CreatedAt))
                .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                .col(timestamp_with_time_zone_null(Sessions::ReplacedAt))
                .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Sessions::Table, Sessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("idx_sessions_family", Sessions::FamilyId),
            ("idx_sessions_user", Sessions::UserId),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(Sessions::Table)
                    .col(col)
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(UserTokens::Table)
                .col(string(UserTokens::TokenHash).primary_key())
                .col(uuid(UserTokens::UserId))
                .col(string(UserTokens::Purpose))
                .col(timestamp_with_time_zone(UserTokens::ExpiresAt))
                .col(timestamp_with_time_zone_null(UserTokens::UsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(UserTokens::Table, UserTokens::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SigningKeys::Table)
                .col(string(SigningKeys::Kid).primary_key())
                .col(text(SigningKeys::PrivateKey))
                .col(string(SigningKeys::PublicKey))
                .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SigningKeys::Table.into_iden(),
            UserTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// Every subgraph asks each second for the sessions revoked since its last read: an index on `revoked_at`
/// keeps that a range scan however many sessions there are.
struct RevokedSessionsIndex;

impl MigrationName for RevokedSessionsIndex {
    fn name(&self) -> &str {
        "m0002_revoked_sessions_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RevokedSessionsIndex {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        index(
            m,
            "idx_sessions_revoked_at",
            Sessions::Table,
            vec![Sessions::RevokedAt.into_iden()],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_sessions_revoked_at")
                .table(Sessions::Table)
                .to_owned(),
        )
        .await
    }
}

/// Avatars are uploads: a user's `avatar_id` (its `avatar_url` is then the upload's lasting link), and the
/// projection of media's READY uploads that says which a user may pick ([`parley_kit::known_media`]).
struct Avatars;

impl MigrationName for Avatars {
    fn name(&self) -> &str {
        "m0003_avatars"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Avatars {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        parley_kit::known_media::create_table(m).await?;
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(uuid_null(Users::AvatarId))
                .to_owned(),
        )
        .await?;
        // A deleted avatar finds the users showing it.
        index(
            m,
            "idx_users_avatar_id",
            Users::Table,
            vec![Users::AvatarId.into_iden()],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_users_avatar_id")
                .table(Users::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .drop_column(Users::AvatarId)
                .to_owned(),
        )
        .await?;
        m.drop_table(
            Table::drop()
                .table(parley_kit::known_media::KnownMedia::Table)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum OauthIdentities {
    Table,
    Provider,
    Subject,
    UserId,
    Email,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OauthAttempts {
    Table,
    StateHash,
    Provider,
    RedirectUri,
    PkceVerifier,
    Nonce,
    UserId,
    ExpiresAt,
}

/// Sign-in with OpenID Connect: an account's identity at each provider (one per provider and account, one
/// account per identity), and each sign-in under way (its PKCE verifier and nonce, until it finishes or
/// expires).
struct OAuth;

impl MigrationName for OAuth {
    fn name(&self) -> &str {
        "m0004_oauth"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OAuth {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(OauthIdentities::Table)
                .col(string(OauthIdentities::Provider))
                .col(string(OauthIdentities::Subject))
                .col(uuid(OauthIdentities::UserId))
                .col(string_null(OauthIdentities::Email))
                .col(timestamp_with_time_zone(OauthIdentities::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(OauthIdentities::Provider)
                        .col(OauthIdentities::Subject),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_oauth_identities_user_provider")
                .table(OauthIdentities::Table)
                .col(OauthIdentities::UserId)
                .col(OauthIdentities::Provider)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(OauthAttempts::Table)
                .col(string(OauthAttempts::StateHash).primary_key())
                .col(string(OauthAttempts::Provider))
                .col(string(OauthAttempts::RedirectUri))
                .col(string(OauthAttempts::PkceVerifier))
                .col(string(OauthAttempts::Nonce))
                .col(uuid_null(OauthAttempts::UserId))
                .col(timestamp_with_time_zone(OauthAttempts::ExpiresAt))
                .to_owned(),
        )
        .await?;
        // Expired attempts are swept by time.
        index(
            m,
            "idx_oauth_attempts_expires_at",
            OauthAttempts::Table,
            vec![OauthAttempts::ExpiresAt.into_iden()],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OauthAttempts::Table.into_iden(),
            OauthIdentities::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
