//! The posts domain's write side: one `Content` handle (store + events) whose methods live in `topics`,
//! `posts`, `comments` and `votes`.

use parley_kit::events::Events;
use sea_orm::sea_query::Condition;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, ExprTrait, QueryFilter,
};
use uuid::Uuid;

use crate::error::{PostsError, Result};
use crate::store::block;

pub struct Content {
    pub db: DatabaseConnection,
    pub events: Events,
}

/// Refuses an interaction between two users when either blocked the other.
pub async fn ensure_not_blocked<C: ConnectionTrait>(db: &C, a: Uuid, b: Uuid) -> Result<()> {
    if a == b {
        return Ok(());
    }
    let blocked = block::Entity::find()
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
        .await?
        .is_some();
    if blocked {
        Err(PostsError::Forbidden("one of you blocked the other"))
    } else {
        Ok(())
    }
}
