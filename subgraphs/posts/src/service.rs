//! The posts domain's write side: one `Content` handle (store + events) whose methods live in `topics`,
//! `posts`, `comments` and `votes`.

use parley_kit::events::Events;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use crate::error::{PostsError, Result};

pub struct Content {
    pub db: DatabaseConnection,
    pub events: Events,
}

/// Refuses an interaction between two users when either blocked the other.
pub async fn ensure_not_blocked<C: ConnectionTrait>(db: &C, a: Uuid, b: Uuid) -> Result<()> {
    if parley_kit::blocks::either_blocked(db, a, b).await? {
        Err(PostsError::Forbidden("one of you blocked the other"))
    } else {
        Ok(())
    }
}
