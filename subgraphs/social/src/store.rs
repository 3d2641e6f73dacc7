//! sea-orm entities of the social store (tables created by `migration-social`).

pub mod account {
    use sea_orm::entity::prelude::*;

    /// An account social knows of (from `UserRegistered`), with its privacy setting.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub is_private: bool,
        pub registered_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod follow {
    use sea_orm::entity::prelude::*;

    /// Stored as its lowercase name; an unknown stored value fails the read.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
    pub enum Status {
        #[sea_orm(string_value = "accepted")]
        Accepted,
        #[sea_orm(string_value = "pending")]
        Pending,
    }

    /// `follower_id` follows (or asked to follow) `followee_id`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "follows")]
    pub struct Model {
        /// UUIDv7: time-ordered, the keyset of every follow list.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub follower_id: Uuid,
        pub followee_id: Uuid,
        pub status: Status,
        pub created_at: ChronoDateTimeUtc,
        pub accepted_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod block {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "blocks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub blocker_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub blocked_id: Uuid,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
