//! Migrations of the social subgraph's store: the projection of known accounts (with each one's privacy
//! setting), follow relations (accepted or requested) and blocks. The kit's event tables come first.

pub use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateSocial)]
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    UserId,
    IsPrivate,
    RegisteredAt,
}

#[derive(DeriveIden)]
enum Follows {
    Table,
    Id,
    FollowerId,
    FolloweeId,
    Status,
    CreatedAt,
    AcceptedAt,
}

#[derive(DeriveIden)]
enum Blocks {
    Table,
    BlockerId,
    BlockedId,
    CreatedAt,
}

struct CreateSocial;

impl MigrationName for CreateSocial {
    fn name(&self) -> &str {
        "m0001_create_social"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSocial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Accounts::Table)
                .col(uuid(Accounts::UserId).primary_key())
                .col(boolean(Accounts::IsPrivate))
                .col(timestamp_with_time_zone(Accounts::RegisteredAt))
                .to_owned(),
        )
        .await?;
        // `id` is a UUIDv7, so ordering by it is ordering by time: the keyset of every list.
        m.create_table(
            Table::create()
                .table(Follows::Table)
                .col(uuid(Follows::Id).primary_key())
                .col(uuid(Follows::FollowerId))
                .col(uuid(Follows::FolloweeId))
                .col(string(Follows::Status))
                .col(timestamp_with_time_zone(Follows::CreatedAt))
                .col(timestamp_with_time_zone_null(Follows::AcceptedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_follows_pair")
                .table(Follows::Table)
                .col(Follows::FollowerId)
                .col(Follows::FolloweeId)
                .unique()
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("idx_follows_followee", Follows::FolloweeId),
            ("idx_follows_follower", Follows::FollowerId),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(Follows::Table)
                    .col(col)
                    .col(Follows::Status)
                    .col(Follows::Id)
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(Blocks::Table)
                .col(uuid(Blocks::BlockerId))
                .col(uuid(Blocks::BlockedId))
                .col(timestamp_with_time_zone(Blocks::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(Blocks::BlockerId)
                        .col(Blocks::BlockedId),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_blocks_blocked")
                .table(Blocks::Table)
                .col(Blocks::BlockedId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Blocks::Table.into_iden(),
            Follows::Table.into_iden(),
            Accounts::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
