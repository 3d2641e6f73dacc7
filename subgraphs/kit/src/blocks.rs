//! The projection of social's blocks that every content domain keeps (posts, feed, chat): who blocked whom,
//! learnt from `UserBlocked` / `UserUnblocked`, so a domain can refuse an interaction between two users
//! without calling social. [`create_table`] goes in the domain's migration; [`Projection`] (or [`block`] and
//! [`unblock`] inside a domain's own handler) keeps it current; [`either_blocked`] and [`partners`] read it.

use std::collections::BTreeSet;

use async_trait::async_trait;
use sea_orm::sea_query::Condition;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, ExprTrait, QueryFilter,
    Set,
};
use sea_orm_migration::prelude::{DeriveIden, Index, SchemaManager, Table};
use sea_orm_migration::schema::uuid;
use uuid::Uuid;

use crate::events::contracts::BlockChanged;
use crate::events::Handler;

pub mod block {
    use sea_orm::entity::prelude::*;

    /// `blocker_id` blocked `blocked_id`.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "blocks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub blocker_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub blocked_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[derive(DeriveIden)]
enum Blocks {
    Table,
    BlockerId,
    BlockedId,
}

/// Creates the `blocks` table (for a domain's migration).
pub async fn create_table(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(Blocks::Table)
            .col(uuid(Blocks::BlockerId))
            .col(uuid(Blocks::BlockedId))
            .primary_key(
                Index::create()
                    .col(Blocks::BlockerId)
                    .col(Blocks::BlockedId),
            )
            .to_owned(),
    )
    .await
}

/// Records that `b.blocker_id` blocked `b.blocked_id` (`UserBlocked`).
pub async fn block(txn: &DatabaseTransaction, b: &BlockChanged) -> Result<(), DbErr> {
    block::Entity::insert(block::ActiveModel {
        blocker_id: Set(b.blocker_id),
        blocked_id: Set(b.blocked_id),
    })
    .on_conflict_do_nothing_on([block::Column::BlockerId, block::Column::BlockedId])
    .exec(txn)
    .await?;
    Ok(())
}

/// Forgets that block (`UserUnblocked`).
pub async fn unblock(txn: &DatabaseTransaction, b: &BlockChanged) -> Result<(), DbErr> {
    block::Entity::delete_many()
        .filter(block::Column::BlockerId.eq(b.blocker_id))
        .filter(block::Column::BlockedId.eq(b.blocked_id))
        .exec(txn)
        .await?;
    Ok(())
}

crate::consumed! {
    /// What a domain whose only interest in social is blocks consumes.
    pub enum BlockEvent { UserBlocked, UserUnblocked }
}

/// The handler of a domain whose only interest in social is blocks.
pub struct Projection;

#[async_trait]
impl Handler for Projection {
    type Event = BlockEvent;

    async fn apply(&self, txn: &DatabaseTransaction, event: BlockEvent) -> Result<(), DbErr> {
        match event {
            BlockEvent::UserBlocked(b) => block(txn, &b).await,
            BlockEvent::UserUnblocked(b) => unblock(txn, &b).await,
        }
    }
}

/// Whether `a` blocked `b` or `b` blocked `a` (never for a user and themself).
pub async fn either_blocked<C: ConnectionTrait>(db: &C, a: Uuid, b: Uuid) -> Result<bool, DbErr> {
    if a == b {
        return Ok(false);
    }
    let row = block::Entity::find()
        .filter(
            Condition::any()
                .add(
                    block::Column::BlockerId
                        .eq(a)
                        .and(block::Column::BlockedId.eq(b)),
                )
                .add(
                    block::Column::BlockerId
                        .eq(b)
                        .and(block::Column::BlockedId.eq(a)),
                ),
        )
        .one(db)
        .await?;
    Ok(row.is_some())
}

/// Users that blocked `user` or that `user` blocked.
pub async fn partners<C: ConnectionTrait>(db: &C, user: Uuid) -> Result<BTreeSet<Uuid>, DbErr> {
    let rows = block::Entity::find()
        .filter(
            Condition::any()
                .add(block::Column::BlockerId.eq(user))
                .add(block::Column::BlockedId.eq(user)),
        )
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|b| {
            if b.blocker_id == user {
                b.blocked_id
            } else {
                b.blocker_id
            }
        })
        .collect())
}
