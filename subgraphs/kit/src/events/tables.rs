//! The kit's own tables in every domain store: the outbox (events to publish), the inbox (event ids applied by
//! consumers) and the position of each consumed feed. [`KitEventTables`] is the migration that creates them;
//! every domain's migrator lists it first. [`KitPublishOrder`] adds the publish order to the outbox; migrators
//! list it after their own.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub mod outbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "parley_outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub position: i64,
        #[sea_orm(unique)]
        pub event_id: Uuid,
        pub kind: String,
        pub aggregate_id: String,
        #[sea_orm(column_type = "Text")]
        pub payload: String,
        pub occurred_at: ChronoDateTimeUtc,
        pub published_at: Option<ChronoDateTimeUtc>,
        /// The order the relay published in (commit order, which on PostgreSQL can differ from `position`:
        /// a transaction holding position 10 may commit after the one holding 11). The event feed is read in
        /// this order, so a consumer's "after N" never skips a late commit.
        #[sea_orm(unique)]
        pub published_seq: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod inbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "parley_inbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: Uuid,
        pub applied_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod feed_position {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "parley_feed_position")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub source: String,
        pub position: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[derive(DeriveIden)]
enum ParleyOutbox {
    Table,
    Position,
    EventId,
    Kind,
    AggregateId,
    Payload,
    OccurredAt,
    PublishedAt,
    PublishedSeq,
}

#[derive(DeriveIden)]
enum ParleyInbox {
    Table,
    EventId,
    AppliedAt,
}

#[derive(DeriveIden)]
enum ParleyFeedPosition {
    Table,
    Source,
    Position,
}

/// Creates the outbox, inbox and feed-position tables.
pub struct KitEventTables;

impl MigrationName for KitEventTables {
    fn name(&self) -> &str {
        "m0000_parley_kit_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for KitEventTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ParleyOutbox::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ParleyOutbox::Position))
                    .col(uuid_uniq(ParleyOutbox::EventId))
                    .col(string(ParleyOutbox::Kind))
                    .col(string(ParleyOutbox::AggregateId))
                    .col(text(ParleyOutbox::Payload))
                    .col(timestamp_with_time_zone(ParleyOutbox::OccurredAt))
                    .col(timestamp_with_time_zone_null(ParleyOutbox::PublishedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_parley_outbox_unpublished")
                    .table(ParleyOutbox::Table)
                    .col(ParleyOutbox::PublishedAt)
                    .col(ParleyOutbox::Position)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ParleyInbox::Table)
                    .if_not_exists()
                    .col(uuid(ParleyInbox::EventId).primary_key())
                    .col(timestamp_with_time_zone(ParleyInbox::AppliedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ParleyFeedPosition::Table)
                    .if_not_exists()
                    .col(string(ParleyFeedPosition::Source).primary_key())
                    .col(big_integer(ParleyFeedPosition::Position))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ParleyOutbox::Table.into_iden(),
            ParleyInbox::Table.into_iden(),
            ParleyFeedPosition::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Adds `published_seq` to the outbox (rows already published keep their position as their sequence, so
/// consumers' saved positions stay valid).
pub struct KitPublishOrder;

impl MigrationName for KitPublishOrder {
    fn name(&self) -> &str {
        "m9001_parley_kit_publish_order"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for KitPublishOrder {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ParleyOutbox::Table)
                    .add_column(big_integer_null(ParleyOutbox::PublishedSeq))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(ParleyOutbox::Table)
                    .value(
                        ParleyOutbox::PublishedSeq,
                        Expr::col(ParleyOutbox::Position),
                    )
                    .and_where(Expr::col(ParleyOutbox::PublishedAt).is_not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_parley_outbox_published_seq")
                    .table(ParleyOutbox::Table)
                    .col(ParleyOutbox::PublishedSeq)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_parley_outbox_published_seq")
                    .table(ParleyOutbox::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ParleyOutbox::Table)
                    .drop_column(ParleyOutbox::PublishedSeq)
                    .to_owned(),
            )
            .await
    }
}
