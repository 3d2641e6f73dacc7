//! The analytics subgraph's entities. Days are whole UTC days since 1970-01-01 and hours whole hours since
//! then ([`crate::time`]), so rollups key on integers.

pub mod event {
    use sea_orm::entity::prelude::*;

    /// One event as it came: a domain event (its bus id) or a client's (`trackEvent`), kept for the
    /// retention period. Keyed by (day, id): PostgreSQL keeps a partition per day ([`crate::partitions`]),
    /// and a partitioned table's keys hold the partition column.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The domain event's kind (`PostCreated`) or the client's name (`signup_started`).
        pub name: String,
        /// The producing subgraph, or `client`.
        pub source: String,
        /// The signed-in user who acted, if one did.
        pub user_id: Option<Uuid>,
        /// Who acted, for funnels: `u:<user id>` or `a:<anonymous id>`.
        pub actor: Option<String>,
        pub occurred_at: ChronoDateTimeUtc,
        /// A client event's properties, as JSON.
        pub properties: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod hourly {
    use sea_orm::entity::prelude::*;

    /// How many events of `name` happened in `hour`.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_hourly")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub hour: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub count: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod daily {
    use sea_orm::entity::prelude::*;

    /// How many events of `name` happened on `day`.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_daily")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub count: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod active {
    use sea_orm::entity::prelude::*;

    /// `user_id` did something on `day` (kept for the retention period), in the UTC hours whose bits
    /// `hours` has set (bit 0: 00:00–01:00).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_active")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub hours: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod active_week {
    use sea_orm::entity::prelude::*;

    /// `user_id` did something in `week` (Monday-first week number, [`crate::time::week_of`]), first in
    /// its hour `first_hour` and last in `last_hour` (0–167 from Monday 00:00 UTC: enough to tell the
    /// week a zone's week boundaries give it); kept two years, for retention cohorts.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_active_weeks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub week: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub first_hour: i64,
        pub last_hour: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod first_seen {
    use sea_orm::entity::prelude::*;

    /// The first day `user_id` was active (their retention cohort), and its first UTC hour they were.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_first_seen")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub day: i64,
        pub hour: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod sketch {
    use sea_orm::entity::prelude::*;

    /// A closed day's distinct active users: the exact count and a HyperLogLog sketch (JSON) to merge.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_sketches")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: i64,
        pub users: i64,
        pub sketch: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod alias {
    use sea_orm::entity::prelude::*;

    /// An anonymous visitor (`a:<id>`) who signed in as `actor_to` (`u:<id>`): funnels count them as one.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_aliases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub actor_from: String,
        pub actor_to: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod hour_sketch {
    use sea_orm::entity::prelude::*;

    /// A closed hour's distinct active users (hour number since 1970, [`crate::time::hour_of`]), kept
    /// like a day's: a time zone's days are merged from them once the activity rows are gone.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_hour_sketches")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub hour: i64,
        pub users: i64,
        pub sketch: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod span_sketch {
    use sea_orm::entity::prelude::*;

    /// A closed day of a time zone other than UTC, as the UTC hours `first_hour..end_hour`: its distinct
    /// active users and their sketch, kept once built.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_span_sketches")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub first_hour: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub end_hour: i64,
        pub users: i64,
        pub sketch: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod perf_sample {
    use sea_orm::entity::prelude::*;

    /// One router's cumulative request-duration histogram for one operation when it was read
    /// ([`crate::perf`]); `buckets` is JSON `[[upper bound (null: +Inf), cumulative count], …]`.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "analytics_perf_samples")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub taken_at: ChronoDateTimeUtc,
        #[sea_orm(primary_key, auto_increment = false)]
        pub target: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub operation: String,
        pub count: f64,
        pub errors: f64,
        pub sum: f64,
        pub buckets: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
