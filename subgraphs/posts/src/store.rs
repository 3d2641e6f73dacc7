//! sea-orm entities of the posts store (tables created by `migration-posts`).

pub mod topic {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "topics")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Lower-case slug, unique: the topic's address (`topic(name:)`).
        pub name: String,
        pub title: String,
        pub description: Option<String>,
        pub creator_id: Uuid,
        pub subscriber_count: i32,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod topic_subscription {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "topic_subscriptions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub topic_id: Uuid,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod post {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "posts")]
    pub struct Model {
        /// UUIDv7: ordering by id is ordering by creation (the NEW sort).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub author_id: Uuid,
        pub topic_id: Option<Uuid>,
        pub title: String,
        /// Markdown, stored as written.
        #[sea_orm(column_type = "Text")]
        pub body: String,
        /// Normalised tags as a JSON array (filtering goes through `post_tags`).
        #[sea_orm(column_type = "Text")]
        pub tags: String,
        pub score: i32,
        pub upvotes: i32,
        pub downvotes: i32,
        pub comment_count: i32,
        pub hot_rank: f64,
        pub controversy_rank: f64,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
        pub deleted_at: Option<ChronoDateTimeUtc>,
        pub deleted_by: Option<Uuid>,
        pub delete_reason: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl Model {
        pub fn tag_list(&self) -> Vec<String> {
            serde_json::from_str(&self.tags).unwrap_or_default()
        }
    }
}

pub mod post_tag {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "post_tags")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub post_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub tag: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod post_attachment {
    use sea_orm::entity::prelude::*;

    /// Media `media_id` is attached to post `post_id`, at `position` in the author's order.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "post_attachments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub post_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub media_id: Uuid,
        pub position: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod comment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "comments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub post_id: Uuid,
        pub parent_id: Option<Uuid>,
        pub author_id: Uuid,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        /// Materialised path: the ids from the top-level comment down to this one, `/`-separated, so a
        /// subtree is one range scan of the `path` index.
        pub path: String,
        pub depth: i32,
        pub score: i32,
        pub upvotes: i32,
        pub downvotes: i32,
        pub reply_count: i32,
        pub hot_rank: f64,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
        pub deleted_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod vote {
    use sea_orm::entity::prelude::*;

    /// What a vote is on; stored as its lowercase name (also the `target_kind` of vote events); an unknown
    /// stored value fails the read.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
    pub enum TargetKind {
        #[sea_orm(string_value = "post")]
        Post,
        #[sea_orm(string_value = "comment")]
        Comment,
    }

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "votes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub target_id: Uuid,
        pub target_kind: TargetKind,
        /// -1 or +1 (a removed vote is deleted).
        pub value: i16,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
