//! Migrations of the analytics subgraph's store: the raw events (kept for the retention period), the hourly
//! and daily counts per event name (kept), who was active on which day (kept for the retention period) and
//! in which week (kept two years: the retention cohorts), each user's first active day (kept), one
//! distinct-users sketch per closed day (kept: active users over any range are a merge of them), and the
//! routers' request-duration histograms as sampled (the performance report; kept for the retention
//! period). On PostgreSQL the raw events are partitioned by day (m0002; the subgraph makes and drops the
//! day partitions), keyed by (day, id) on both stores.

use parley_kit::migration::index;
pub use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateAnalytics),
            Box::new(PartitionEventsByDay),
            Box::new(ActivityHours),
            Box::new(ActorAliases),
        ]
    }
}

#[derive(DeriveIden)]
enum AnalyticsEvents {
    Table,
    Id,
    Name,
    Source,
    UserId,
    Actor,
    OccurredAt,
    Day,
    Properties,
}

#[derive(DeriveIden)]
enum AnalyticsHourly {
    Table,
    Hour,
    Name,
    Count,
}

#[derive(DeriveIden)]
enum AnalyticsDaily {
    Table,
    Day,
    Name,
    Count,
}

#[derive(DeriveIden)]
enum AnalyticsActive {
    Table,
    Day,
    UserId,
}

#[derive(DeriveIden)]
enum AnalyticsActiveWeeks {
    Table,
    Week,
    UserId,
}

#[derive(DeriveIden)]
enum AnalyticsFirstSeen {
    Table,
    UserId,
    Day,
}

#[derive(DeriveIden)]
enum AnalyticsPerfSamples {
    Table,
    TakenAt,
    Target,
    Operation,
    Count,
    Errors,
    Sum,
    Buckets,
}

#[derive(DeriveIden)]
enum AnalyticsSketches {
    Table,
    Day,
    Users,
    Sketch,
}

struct CreateAnalytics;

impl MigrationName for CreateAnalytics {
    fn name(&self) -> &str {
        "m0001_create_analytics"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAnalytics {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AnalyticsEvents::Table)
                .col(uuid(AnalyticsEvents::Id).primary_key())
                .col(string(AnalyticsEvents::Name))
                .col(string(AnalyticsEvents::Source))
                .col(uuid_null(AnalyticsEvents::UserId))
                .col(string_null(AnalyticsEvents::Actor))
                .col(timestamp_with_time_zone(AnalyticsEvents::OccurredAt))
                .col(big_integer(AnalyticsEvents::Day))
                .col(text_null(AnalyticsEvents::Properties))
                .to_owned(),
        )
        .await?;
        // Funnels read the named steps in a time range; the retention job deletes by day; a user's activity.
        index(
            m,
            "idx_analytics_events_name_time",
            AnalyticsEvents::Table,
            vec![
                AnalyticsEvents::Name.into_iden(),
                AnalyticsEvents::OccurredAt.into_iden(),
            ],
        )
        .await?;
        index(
            m,
            "idx_analytics_events_day",
            AnalyticsEvents::Table,
            vec![AnalyticsEvents::Day.into_iden()],
        )
        .await?;
        index(
            m,
            "idx_analytics_events_user",
            AnalyticsEvents::Table,
            vec![
                AnalyticsEvents::UserId.into_iden(),
                AnalyticsEvents::OccurredAt.into_iden(),
            ],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AnalyticsHourly::Table)
                .col(big_integer(AnalyticsHourly::Hour))
                .col(string(AnalyticsHourly::Name))
                .col(big_integer(AnalyticsHourly::Count))
                .primary_key(
                    Index::create()
                        .col(AnalyticsHourly::Hour)
                        .col(AnalyticsHourly::Name),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AnalyticsDaily::Table)
                .col(big_integer(AnalyticsDaily::Day))
                .col(string(AnalyticsDaily::Name))
                .col(big_integer(AnalyticsDaily::Count))
                .primary_key(
                    Index::create()
                        .col(AnalyticsDaily::Day)
                        .col(AnalyticsDaily::Name),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AnalyticsActive::Table)
                .col(big_integer(AnalyticsActive::Day))
                .col(uuid(AnalyticsActive::UserId))
                .primary_key(
                    Index::create()
                        .col(AnalyticsActive::Day)
                        .col(AnalyticsActive::UserId),
                )
                .to_owned(),
        )
        .await?;
        // A user's activity.
        index(
            m,
            "idx_analytics_active_user",
            AnalyticsActive::Table,
            vec![
                AnalyticsActive::UserId.into_iden(),
                AnalyticsActive::Day.into_iden(),
            ],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AnalyticsActiveWeeks::Table)
                .col(big_integer(AnalyticsActiveWeeks::Week))
                .col(uuid(AnalyticsActiveWeeks::UserId))
                .primary_key(
                    Index::create()
                        .col(AnalyticsActiveWeeks::Week)
                        .col(AnalyticsActiveWeeks::UserId),
                )
                .to_owned(),
        )
        .await?;
        // Retention joins a cohort's users to their active weeks.
        index(
            m,
            "idx_analytics_active_weeks_user",
            AnalyticsActiveWeeks::Table,
            vec![
                AnalyticsActiveWeeks::UserId.into_iden(),
                AnalyticsActiveWeeks::Week.into_iden(),
            ],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AnalyticsFirstSeen::Table)
                .col(uuid(AnalyticsFirstSeen::UserId).primary_key())
                .col(big_integer(AnalyticsFirstSeen::Day))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "idx_analytics_first_seen_day",
            AnalyticsFirstSeen::Table,
            vec![AnalyticsFirstSeen::Day.into_iden()],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AnalyticsSketches::Table)
                .col(big_integer(AnalyticsSketches::Day).primary_key())
                .col(big_integer(AnalyticsSketches::Users))
                .col(text(AnalyticsSketches::Sketch))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AnalyticsPerfSamples::Table)
                .col(timestamp_with_time_zone(AnalyticsPerfSamples::TakenAt))
                .col(string(AnalyticsPerfSamples::Target))
                .col(string(AnalyticsPerfSamples::Operation))
                .col(double(AnalyticsPerfSamples::Count))
                .col(double(AnalyticsPerfSamples::Errors))
                .col(double(AnalyticsPerfSamples::Sum))
                .col(text(AnalyticsPerfSamples::Buckets))
                .primary_key(
                    Index::create()
                        .col(AnalyticsPerfSamples::TakenAt)
                        .col(AnalyticsPerfSamples::Target)
                        .col(AnalyticsPerfSamples::Operation),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AnalyticsEvents::Table.into_iden(),
            AnalyticsHourly::Table.into_iden(),
            AnalyticsDaily::Table.into_iden(),
            AnalyticsActive::Table.into_iden(),
            AnalyticsActiveWeeks::Table.into_iden(),
            AnalyticsFirstSeen::Table.into_iden(),
            AnalyticsSketches::Table.into_iden(),
            AnalyticsPerfSamples::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// The raw events by day: on PostgreSQL a table partitioned by range of `day` with a default partition
/// (whatever was there moves into it; the subgraph's job moves each day into its own partition), on SQLite
/// the same key, (day, id), as a unique index. A partitioned table's keys must hold the partition column,
/// so an event is one per (day, id) on both; an event's day never changes.
struct PartitionEventsByDay;

impl MigrationName for PartitionEventsByDay {
    fn name(&self) -> &str {
        "m0002_partition_analytics_events_by_day"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PartitionEventsByDay {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DatabaseBackend::Postgres {
            statements(
                m,
                "DROP INDEX idx_analytics_events_day;
                 CREATE UNIQUE INDEX idx_analytics_events_day_id ON analytics_events (day, id);",
            )
            .await?;
            return Ok(());
        }
        statements(
                m,
            "DROP INDEX idx_analytics_events_day, idx_analytics_events_name_time, idx_analytics_events_user;
             ALTER TABLE analytics_events RENAME TO analytics_events_unpartitioned;
             ALTER TABLE analytics_events_unpartitioned
                 RENAME CONSTRAINT analytics_events_pkey TO analytics_events_unpartitioned_pkey;
             CREATE TABLE analytics_events (LIKE analytics_events_unpartitioned INCLUDING DEFAULTS)
                 PARTITION BY RANGE (day);
             ALTER TABLE analytics_events ADD PRIMARY KEY (day, id);
             CREATE TABLE analytics_events_default PARTITION OF analytics_events DEFAULT;
             CREATE INDEX idx_analytics_events_name_time ON analytics_events (name, occurred_at);
             CREATE INDEX idx_analytics_events_user ON analytics_events (user_id, occurred_at);
             INSERT INTO analytics_events SELECT * FROM analytics_events_unpartitioned;
             DROP TABLE analytics_events_unpartitioned;",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DatabaseBackend::Postgres {
            statements(
                m,
                "DROP INDEX idx_analytics_events_day_id;
                 CREATE INDEX idx_analytics_events_day ON analytics_events (day);",
            )
            .await?;
            return Ok(());
        }
        statements(
            m,
            "DROP INDEX idx_analytics_events_name_time, idx_analytics_events_user;
             ALTER TABLE analytics_events RENAME TO analytics_events_partitioned;
             ALTER TABLE analytics_events_partitioned
                 RENAME CONSTRAINT analytics_events_pkey TO analytics_events_partitioned_pkey;
             CREATE TABLE analytics_events (LIKE analytics_events_partitioned INCLUDING DEFAULTS);
             ALTER TABLE analytics_events ADD PRIMARY KEY (id);
             INSERT INTO analytics_events SELECT * FROM analytics_events_partitioned;
             DROP TABLE analytics_events_partitioned;
             CREATE INDEX idx_analytics_events_name_time ON analytics_events (name, occurred_at);
             CREATE INDEX idx_analytics_events_day ON analytics_events (day);
             CREATE INDEX idx_analytics_events_user ON analytics_events (user_id, occurred_at);",
        )
        .await?;
        Ok(())
    }
}

/// The hours of activity, so reports can start their days at midnight in any time zone: which UTC hours of
/// a day a user was active in (a 24-bit mask; rows from before are taken as active all day), the first and
/// last hour of a week they were (0–167), the hour of their first active day they began; closed hours'
/// distinct-users sketches (what a zone's day is merged from once the day's activity rows are gone), and
/// the sketches of zone days kept once built (keyed by their UTC hours, `first_hour..end_hour`).
struct ActivityHours;

impl MigrationName for ActivityHours {
    fn name(&self) -> &str {
        "m0003_activity_hours"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ActivityHours {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        statements(
            m,
            "ALTER TABLE analytics_active ADD COLUMN hours BIGINT NOT NULL DEFAULT 16777215;
             ALTER TABLE analytics_active_weeks ADD COLUMN first_hour BIGINT NOT NULL DEFAULT 0;
             ALTER TABLE analytics_active_weeks ADD COLUMN last_hour BIGINT NOT NULL DEFAULT 167;
             ALTER TABLE analytics_first_seen ADD COLUMN hour BIGINT NOT NULL DEFAULT 0;
             CREATE TABLE analytics_hour_sketches (
                 hour BIGINT NOT NULL PRIMARY KEY, users BIGINT NOT NULL, sketch TEXT NOT NULL);
             CREATE TABLE analytics_span_sketches (
                 first_hour BIGINT NOT NULL, end_hour BIGINT NOT NULL, users BIGINT NOT NULL,
                 sketch TEXT NOT NULL, PRIMARY KEY (first_hour, end_hour))",
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        statements(
            m,
            "DROP TABLE analytics_span_sketches;
             DROP TABLE analytics_hour_sketches;
             ALTER TABLE analytics_first_seen DROP COLUMN hour;
             ALTER TABLE analytics_active_weeks DROP COLUMN last_hour;
             ALTER TABLE analytics_active_weeks DROP COLUMN first_hour;
             ALTER TABLE analytics_active DROP COLUMN hours",
        )
        .await
    }
}

/// Anonymous visitors who signed in, so funnels follow one person across it: `a:<id>` → `u:<id>`.
struct ActorAliases;

impl MigrationName for ActorAliases {
    fn name(&self) -> &str {
        "m0004_actor_aliases"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ActorAliases {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        statements(
            m,
            "CREATE TABLE analytics_aliases (
                 actor_from VARCHAR NOT NULL PRIMARY KEY, actor_to VARCHAR NOT NULL)",
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        statements(m, "DROP TABLE analytics_aliases").await
    }
}

/// Runs `sql`'s statements one by one (`;`-separated, none containing one).
async fn statements(m: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        m.get_connection().execute_unprepared(statement).await?;
    }
    Ok(())
}
