//! sea-orm entities of the chat store (tables created by `migration-chat`).
//!
//! Enumerated columns are sea-orm `ActiveEnum`s stored as their SCREAMING_SNAKE names (also their GraphQL
//! names): a stored value the code does not know fails the read instead of passing for a default.

pub mod chat {
    use sea_orm::entity::prelude::*;

    #[derive(
        Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, async_graphql::Enum,
    )]
    #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
    #[graphql(name = "ChatKind")]
    pub enum Kind {
        #[sea_orm(string_value = "DIRECT")]
        Direct,
        #[sea_orm(string_value = "GROUP")]
        Group,
    }

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "chats")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub kind: Kind,
        pub title: Option<String>,
        /// Direct chats only: the two user ids, ordered, so a pair has exactly one chat.
        pub direct_key: Option<String>,
        pub creator_id: Uuid,
        /// The sequence number of the chat's last message (0 before the first).
        pub last_seq: i64,
        /// Microseconds since the epoch of the last activity (chats are listed by it).
        pub activity: i64,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod member {
    use sea_orm::entity::prelude::*;

    #[derive(
        Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, async_graphql::Enum,
    )]
    #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
    #[graphql(name = "ChatRole")]
    pub enum Role {
        #[sea_orm(string_value = "ADMIN")]
        Admin,
        #[sea_orm(string_value = "MEMBER")]
        Member,
    }

    /// A member's notification level.
    #[derive(
        Clone, Copy, Debug, Default, PartialEq, Eq, EnumIter, DeriveActiveEnum, async_graphql::Enum,
    )]
    #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
    pub enum NotificationLevel {
        #[default]
        #[sea_orm(string_value = "ALL")]
        All,
        #[sea_orm(string_value = "MENTIONS")]
        Mentions,
        #[sea_orm(string_value = "NONE")]
        None,
    }

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "chat_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub chat_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub role: Role,
        pub joined_at: ChronoDateTimeUtc,
        /// The chat's last sequence number when this member joined.
        pub joined_seq: i64,
        pub muted_until: Option<ChronoDateTimeUtc>,
        pub notification_level: NotificationLevel,
        /// Markers only move forward.
        pub delivered_seq: i64,
        pub read_seq: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod message {
    use sea_orm::entity::prelude::*;

    #[derive(
        Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, async_graphql::Enum,
    )]
    #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
    #[graphql(name = "MessageKind")]
    pub enum Kind {
        #[sea_orm(string_value = "TEXT")]
        Text,
        #[sea_orm(string_value = "IMAGE")]
        Image,
        #[sea_orm(string_value = "FILE")]
        File,
        #[sea_orm(string_value = "SYSTEM")]
        System,
    }

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "messages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub chat_id: Uuid,
        pub seq: i64,
        pub author_id: Uuid,
        pub kind: Kind,
        #[sea_orm(column_type = "Text", nullable)]
        pub text: Option<String>,
        pub media_id: Option<Uuid>,
        pub reply_to_id: Option<Uuid>,
        pub subject_id: Option<Uuid>,
        pub client_message_id: Option<String>,
        pub created_at: ChronoDateTimeUtc,
        pub edited_at: Option<ChronoDateTimeUtc>,
        /// Deleted for everyone: content removed, the tombstone kept.
        pub deleted_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod hidden {
    use sea_orm::entity::prelude::*;

    /// A message one user deleted for themself.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "hidden_messages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub message_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod known_user {
    use sea_orm::entity::prelude::*;

    /// Projection of users' `UserRegistered` and `UserProfileUpdated`: who can be in a chat, and their public
    /// card (`None` only for rows older than cards, until the user's next event).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "known_users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub nickname: Option<String>,
        pub avatar_url: Option<String>,
    }

    impl Model {
        pub fn card(self) -> Option<parley_kit::events::contracts::UserCard> {
            Some(parley_kit::events::contracts::UserCard {
                nickname: self.nickname?,
                avatar_url: self.avatar_url,
            })
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod assistant_usage {
    use sea_orm::entity::prelude::*;

    /// What `user_id` asked of the assistant on `day` (UTC days since 1970).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "assistant_usage")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: i64,
        pub requests: i64,
        pub tokens: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
