//! The notifications subgraph's entities. Kinds and channels are stored by their GraphQL names
//! ([`crate::kinds`]); actors as a JSON list of ids, newest first.

pub mod notification {
    use sea_orm::entity::prelude::*;

    /// One notification: a group of events of one kind on one target while it is unread.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "notifications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub recipient_id: Uuid,
        pub kind: String,
        /// What events fold into this one while it is unread (`COMMENT:<post>`, `MESSAGE:<chat>`, …).
        pub group_key: String,
        /// Events folded in.
        pub count: i64,
        /// JSON list of the latest actors' ids, newest first (at most [`crate::notify::MAX_ACTORS`]).
        pub actors: String,
        pub post_id: Option<Uuid>,
        pub comment_id: Option<Uuid>,
        pub chat_id: Option<Uuid>,
        pub message_id: Option<Uuid>,
        /// MESSAGE: the chat sequence number of the latest message counted (reading up to it reads this).
        pub last_seq: Option<i64>,
        /// VOTE_MILESTONE: the score reached.
        pub milestone: Option<i32>,
        /// In the list and the unread count (the kind's IN_APP channel was on); mail and push follow their
        /// own channels either way.
        pub listed: bool,
        pub read_at: Option<ChronoDateTimeUtc>,
        /// When a digest mail listed it (never listed twice).
        pub emailed_at: Option<ChronoDateTimeUtc>,
        /// A fresh UUIDv7 at each change: the list is newest change first, keyset-paged on it.
        pub sort_key: Uuid,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod preference {
    use sea_orm::entity::prelude::*;

    /// A recipient's choice for one kind on one channel (absent: the kind's default).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "preferences")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub channel: String,
        pub enabled: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod recipient {
    use sea_orm::entity::prelude::*;

    /// What notifications knows of a user: the nickname mentions name them by (lowercased) and as written, the address
    /// they proved they own, and when their last digest went out.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "recipients")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub nickname: Option<String>,
        /// The nickname as its owner wrote it, for mails and pushes.
        pub display_name: Option<String>,
        pub email: Option<String>,
        pub last_digest_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod content {
    use sea_orm::entity::prelude::*;

    /// A post (`post_id == id`) or comment: whose it is, the highest vote milestone told, whether deleted.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "content")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub author_id: Uuid,
        pub post_id: Uuid,
        pub post_author_id: Uuid,
        pub milestone: i32,
        pub deleted: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod chat_member {
    use sea_orm::entity::prelude::*;

    /// A chat member as notifications needs them: whether the chat is a group, their mute and level.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "chat_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub chat_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub group: bool,
        pub muted_until: Option<ChronoDateTimeUtc>,
        /// `ALL`, `MENTIONS` or `NONE` (chat's notification level).
        pub level: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod follow_request {
    use sea_orm::entity::prelude::*;

    /// A follow request still open (its acceptance is FOLLOW_ACCEPTED, not a new FOLLOW).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "follow_requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub follower_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub followee_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod held_message {
    use sea_orm::entity::prelude::*;

    /// Messages of one chat for one member, held back until `due_at`: if the member's app takes them
    /// live meanwhile (a delivered or read receipt), they were connected and nothing is said.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "held_messages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub chat_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub count: i64,
        pub last_seq: i64,
        pub last_message_id: Uuid,
        pub actors: String,
        pub due_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod push_subscription {
    use sea_orm::entity::prelude::*;

    /// A browser's or device's push subscription (the Push API's `endpoint` and keys).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "push_subscriptions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub endpoint: String,
        pub user_id: Uuid,
        pub p256dh: String,
        pub auth: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod push_job {
    use sea_orm::entity::prelude::*;

    /// One push to send: a notification's change to one subscription, retried with backoff.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "push_jobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub notification_id: Uuid,
        pub endpoint: String,
        pub attempts: i32,
        pub next_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod secret {
    use sea_orm::entity::prelude::*;

    /// A secret made on first start and shared by every instance (`vapid`, `unsubscribe`).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "secrets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub value: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
