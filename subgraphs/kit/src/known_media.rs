//! The projection of media's checked uploads that a domain keeps when its content names media (chat's
//! messages, posts' attachments, users' avatars): learnt from `MediaProcessed` (READY) and forgotten on
//! `MediaDeleted`, so a domain refuses a `mediaId` that is not the caller's own READY upload of the right
//! purpose and kind without calling media. [`create_table`] goes in the domain's migration; [`remember`] and
//! [`forget`] in its handler; [`usable`] reads it. [`MediaRef`] is the `Media` such a domain returns: a
//! reference the router resolves at media.

use async_graphql::{SimpleObject, ID};
use sea_orm::sea_query::Condition;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set,
};
use sea_orm_migration::prelude::{DeriveIden, SchemaManager, Table};
use sea_orm_migration::schema::{string, string_null, uuid};
use uuid::Uuid;

use crate::events::contracts::MediaChanged;

pub mod upload {
    use sea_orm::entity::prelude::*;

    /// A READY upload: whose, what it is (`IMAGE`, `VIDEO`, `AUDIO`, `FILE`) and what for (`avatar`,
    /// `post`, `message`; empty on rows learnt before purposes were recorded). `link`: an avatar's lasting
    /// signed link to its SMALL size.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "known_media")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub media_id: Uuid,
        pub owner_id: Uuid,
        pub kind: String,
        pub purpose: Option<String>,
        pub link: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

// A reference to media (owned by media, resolved there); no description: a reference type takes none.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Media", unresolvable = "id")]
pub struct MediaRef {
    pub id: ID,
}

impl MediaRef {
    pub fn new(id: Uuid) -> Self {
        Self {
            id: crate::ids::to_id(id),
        }
    }
}

#[derive(DeriveIden)]
pub enum KnownMedia {
    #[sea_orm(iden = "known_media")]
    Table,
    MediaId,
    OwnerId,
    Kind,
    Purpose,
    Link,
}

/// Creates the `known_media` table (for a domain's migration).
pub async fn create_table(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(KnownMedia::Table)
            .col(uuid(KnownMedia::MediaId).primary_key())
            .col(uuid(KnownMedia::OwnerId))
            .col(string(KnownMedia::Kind))
            .col(string_null(KnownMedia::Purpose))
            .col(string_null(KnownMedia::Link))
            .to_owned(),
    )
    .await
}

/// Records a READY upload (`MediaProcessed`).
pub async fn remember(txn: &DatabaseTransaction, m: &MediaChanged) -> Result<(), DbErr> {
    upload::Entity::insert(upload::ActiveModel {
        media_id: Set(m.media_id),
        owner_id: Set(m.owner_id),
        kind: Set(m.kind.clone()),
        purpose: Set(Some(m.purpose.clone())),
        link: Set(m.link.clone()),
    })
    .on_conflict_do_nothing_on([upload::Column::MediaId])
    .exec(txn)
    .await?;
    Ok(())
}

/// Forgets a deleted upload (`MediaDeleted`).
pub async fn forget(txn: &DatabaseTransaction, m: &MediaChanged) -> Result<(), DbErr> {
    upload::Entity::delete_by_id(m.media_id).exec(txn).await?;
    Ok(())
}

/// Which of `ids` are `owner`'s READY uploads for `purpose` of one of `kinds` (every kind when empty).
pub async fn usable<C: ConnectionTrait>(
    db: &C,
    owner: Uuid,
    ids: &[Uuid],
    purpose: &str,
    kinds: &[&str],
) -> Result<Vec<upload::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = upload::Entity::find()
        .filter(upload::Column::MediaId.is_in(ids.iter().copied()))
        .filter(upload::Column::OwnerId.eq(owner))
        .filter(
            Condition::any()
                .add(upload::Column::Purpose.eq(purpose))
                .add(upload::Column::Purpose.is_null()),
        );
    if !kinds.is_empty() {
        found = found.filter(upload::Column::Kind.is_in(kinds.iter().copied()));
    }
    found.all(db).await
}
