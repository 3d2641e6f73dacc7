//! The media subgraph's entities: one row per upload. Its purpose and status are stored as lower-case names;
//! a stored value the code does not know fails the read.

pub mod media {
    use sea_orm::entity::prelude::*;

    /// What the upload is for (the rules of [`crate::rules::Purpose`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
    pub enum Purpose {
        #[sea_orm(string_value = "avatar")]
        Avatar,
        #[sea_orm(string_value = "post")]
        Post,
        #[sea_orm(string_value = "message")]
        Message,
    }

    /// Where an upload is: a ticket was issued (`Pending`), its bytes arrived (`Uploaded`), they passed the
    /// checks and an image waits for its variants (`Processing`), it can be used (`Ready`: every file it
    /// names exists), or it was refused (`Failed`, nothing kept).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
    pub enum Status {
        #[sea_orm(string_value = "pending")]
        Pending,
        #[sea_orm(string_value = "uploaded")]
        Uploaded,
        #[sea_orm(string_value = "processing")]
        Processing,
        #[sea_orm(string_value = "ready")]
        Ready,
        #[sea_orm(string_value = "failed")]
        Failed,
    }

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "media")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub owner_id: Uuid,
        pub purpose: Purpose,
        pub status: Status,
        /// As the client named and declared it (shown back, never trusted).
        pub file_name: String,
        pub declared_type: String,
        pub declared_size: i64,
        /// What the bytes turned out to be, once checked.
        pub mime: Option<String>,
        pub kind: Option<String>,
        pub size: Option<i64>,
        pub width: Option<i64>,
        pub height: Option<i64>,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
        /// An image's blurhash and the type its variants are stored as, once processed.
        pub blurhash: Option<String>,
        pub variant_type: Option<String>,
        /// Processing claims: how many were made, and when the last was (a crashed worker's lapses).
        pub attempts: i32,
        pub claimed_at: Option<ChronoDateTimeUtc>,
        /// When a message, post or profile first used it (the sweep keeps it from then on).
        pub attached_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl media::Purpose {
    /// The upload rules of this purpose.
    pub fn rules(self) -> crate::rules::Purpose {
        match self {
            media::Purpose::Avatar => crate::rules::Purpose::Avatar,
            media::Purpose::Post => crate::rules::Purpose::Post,
            media::Purpose::Message => crate::rules::Purpose::Message,
        }
    }
}
