//! Migrations of the media subgraph's store: one row per upload (its owner, purpose and status, what its
//! bytes turned out to be). The bytes themselves live in the object store. The kit's event tables come first.

pub use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateMedia),
            Box::new(Processing),
            Box::new(Attached),
            // Billing's word on each user's plan (what this domain enforces of it).
            Box::new(parley_kit::entitlements::CreateTable("m0004_entitlements")),
        ]
    }
}

#[derive(DeriveIden)]
enum Media {
    Table,
    Id,
    OwnerId,
    Purpose,
    Status,
    FileName,
    DeclaredType,
    DeclaredSize,
    Mime,
    Kind,
    Size,
    Width,
    Height,
    CreatedAt,
    UpdatedAt,
    Blurhash,
    VariantType,
    Attempts,
    ClaimedAt,
    AttachedAt,
}

struct CreateMedia;

impl MigrationName for CreateMedia {
    fn name(&self) -> &str {
        "m0001_create_media"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateMedia {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Media::Table)
                .col(uuid(Media::Id).primary_key())
                .col(uuid(Media::OwnerId))
                .col(string(Media::Purpose))
                .col(string(Media::Status))
                .col(string(Media::FileName))
                .col(string(Media::DeclaredType))
                .col(big_integer(Media::DeclaredSize))
                .col(string_null(Media::Mime))
                .col(string_null(Media::Kind))
                .col(big_integer_null(Media::Size))
                .col(big_integer_null(Media::Width))
                .col(big_integer_null(Media::Height))
                .col(timestamp_with_time_zone(Media::CreatedAt))
                .col(timestamp_with_time_zone(Media::UpdatedAt))
                .to_owned(),
        )
        .await?;
        // The sweep of stale uploads walks by status and age.
        parley_kit::migration::index(
            m,
            "idx_media_status_created",
            Media::Table,
            vec![Media::Status.into_iden(), Media::CreatedAt.into_iden()],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Media::Table).to_owned())
            .await
    }
}

/// Image processing: the blurhash and the type of the variants once READY, and the work queue's bookkeeping —
/// a `processing` row is claimed by a worker (`claimed_at`), and a claim older than its lease (a worker that
/// crashed) is taken again, at most a few `attempts`.
struct Processing;

impl MigrationName for Processing {
    fn name(&self) -> &str {
        "m0002_processing"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Processing {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            string_null(Media::Blurhash),
            string_null(Media::VariantType),
            integer(Media::Attempts).default(0).to_owned(),
            timestamp_with_time_zone_null(Media::ClaimedAt),
        ];
        for mut column in columns {
            m.alter_table(
                Table::alter()
                    .table(Media::Table)
                    .add_column(&mut column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Media::Blurhash,
            Media::VariantType,
            Media::Attempts,
            Media::ClaimedAt,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Media::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

/// When an upload was first put to use (a message, a post, an avatar: the holders' events), so the sweep
/// removes only uploads nobody used.
struct Attached;

impl MigrationName for Attached {
    fn name(&self) -> &str {
        "m0003_attached"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Attached {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Media::Table)
                .add_column(timestamp_with_time_zone_null(Media::AttachedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Media::Table)
                .drop_column(Media::AttachedAt)
                .to_owned(),
        )
        .await
    }
}
