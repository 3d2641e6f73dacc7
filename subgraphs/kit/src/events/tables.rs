//! The kit's own tables in every domain store: the outbox (events to publish), the inbox (event ids applied by
//! consumers), the position of each consumed feed, and the dead letters (consumed events whose payload did not
//! decode). A domain's migration crate lists only its own migrations: [`WithKitTables`] adds the kit's
//! ([`KitEventTables`], [`KitPublishOrder`], [`KitDeadLetters`], [`KitBusIds`]) around them, and is what the kit runs.

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
        /// The entry's id in the bus (a Redis stream id), so an event whose content was withdrawn since
        /// (an edited or deleted message) can be erased there too.
        pub bus_id: Option<String>,
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

pub mod dead_letter {
    use sea_orm::entity::prelude::*;

    /// A consumed event set aside because its payload did not decode (it would fail again on every retry).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "parley_dead_letters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: Uuid,
        pub source: String,
        pub position: i64,
        pub kind: String,
        #[sea_orm(column_type = "Text")]
        pub payload: String,
        #[sea_orm(column_type = "Text")]
        pub error: String,
        pub failed_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A domain's migrator `M` with the kit's tables added: the kit's first (the outbox before anything that
/// writes events), then the domain's. Migrations are matched by name, so stores migrated when the domains
/// listed the kit's by hand see no change.
pub struct WithKitTables<M>(std::marker::PhantomData<M>);

#[async_trait::async_trait]
impl<M: MigratorTrait> MigratorTrait for WithKitTables<M> {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all: Vec<Box<dyn MigrationTrait>> = vec![
            Box::new(KitEventTables),
            Box::new(KitPublishOrder),
            Box::new(KitDeadLetters),
            Box::new(KitBusIds),
        ];
        all.extend(M::migrations());
        all
    }
}

/// A domain with no tables of its own (and a store with only the kit's).
pub struct NoTables;

impl MigratorTrait for NoTables {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }
}

#[derive(DeriveIden)]
enum ParleyDeadLetters {
    Table,
    EventId,
    Source,
    Position,
    Kind,
    Payload,
    Error,
    FailedAt,
}

/// Creates the dead-letter table.
pub struct KitDeadLetters;

impl MigrationName for KitDeadLetters {
    fn name(&self) -> &str {
        "m9002_parley_kit_dead_letters"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for KitDeadLetters {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ParleyDeadLetters::Table)
                    .if_not_exists()
                    .col(uuid(ParleyDeadLetters::EventId).primary_key())
                    .col(string(ParleyDeadLetters::Source))
                    .col(big_integer(ParleyDeadLetters::Position))
                    .col(string(ParleyDeadLetters::Kind))
                    .col(text(ParleyDeadLetters::Payload))
                    .col(text(ParleyDeadLetters::Error))
                    .col(timestamp_with_time_zone(ParleyDeadLetters::FailedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ParleyDeadLetters::Table).to_owned())
            .await
    }
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
    BusId,
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

/// Adds `bus_id` to the outbox (where each event went in the bus) and an index by aggregate.
pub struct KitBusIds;

impl MigrationName for KitBusIds {
    fn name(&self) -> &str {
        "m9003_parley_kit_outbox_bus_id"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for KitBusIds {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ParleyOutbox::Table)
                    .add_column(string_null(ParleyOutbox::BusId))
                    .to_owned(),
            )
            .await?;
        // Redaction finds an aggregate's earlier events (`super::redact`).
        manager
            .create_index(
                Index::create()
                    .name("idx_parley_outbox_aggregate")
                    .table(ParleyOutbox::Table)
                    .col(ParleyOutbox::AggregateId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_parley_outbox_aggregate")
                    .table(ParleyOutbox::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ParleyOutbox::Table)
                    .drop_column(ParleyOutbox::BusId)
                    .to_owned(),
            )
            .await
    }
}
