//! The search subgraph's entities: the documents the index is built from, the change clock, chat members.

pub mod document {
    use sea_orm::entity::prelude::*;

    /// One searchable thing as it is now. A deleted one stays as a tombstone (`deleted`), so the index
    /// learns to drop it; `change` is the clock's number of its latest change, which the index tails.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "search_documents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// [`crate::documents::Kind`]'s name: `user`, `post`, `comment`, `message`.
        pub kind: String,
        /// The writer; a user's document is the user.
        pub author_id: Uuid,
        /// A post's own id; a comment's post.
        pub post_id: Option<Uuid>,
        /// The author of the post (a comment is visible only where its post is).
        pub post_author_id: Option<Uuid>,
        pub chat_id: Option<Uuid>,
        /// The topic's name, lowercased.
        pub topic: Option<String>,
        /// JSON list of lowercased tags.
        pub tags: String,
        /// A post's title; a user's nickname.
        pub title: String,
        /// A post's, comment's or message's text; a user's name and bio.
        pub body: String,
        pub score: i64,
        pub created_at: ChronoDateTimeUtc,
        pub deleted: bool,
        pub change: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod chat_member {
    use sea_orm::entity::prelude::*;

    /// `user_id` is a member of `chat_id` now (chat's rule: only members read a chat).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "search_chat_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub chat_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
