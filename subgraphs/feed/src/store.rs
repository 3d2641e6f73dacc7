//! sea-orm entities of the feed store (tables created by `migration-feed`).

pub mod feed_post {
    use sea_orm::entity::prelude::*;

    /// What feed knows of a live post (from posts' events).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "feed_posts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub post_id: Uuid,
        pub author_id: Uuid,
        pub topic_id: Option<Uuid>,
        pub created_at: ChronoDateTimeUtc,
        pub score: i32,
        pub hot_rank: f64,
        pub controversy_rank: f64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Approved follows: the kit's table of the visibility rule, which the fan-out reads too.
pub use parley_kit::audience::follow;

pub mod topic_sub {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "topic_subs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub topic_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod timeline {
    use sea_orm::entity::prelude::*;

    /// One post in one user's home feed, with the post's ranks copied for keyset sorting.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "timeline")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        /// UUIDv7: the NEW order.
        #[sea_orm(primary_key, auto_increment = false)]
        pub post_id: Uuid,
        pub author_id: Uuid,
        pub topic_id: Option<Uuid>,
        pub score: i32,
        pub hot_rank: f64,
        pub controversy_rank: f64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
