//! What chat learns from other subgraphs: which users exist and their public card (users' `UserRegistered`
//! and `UserProfileUpdated`), and who blocked whom (social's blocks, through the kit's projection).
//!
//! Users' events arrive in the order they were written, so the last one applied holds the current card.

use async_trait::async_trait;
use parley_kit::events::contracts::{kind, UserProfileUpdated, UserRegistered};
use parley_kit::events::{EventEnvelope, EventHandler};
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait, Set};
use uuid::Uuid;

use crate::store::known_user;

pub struct Projection;

#[async_trait]
impl EventHandler for Projection {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &EventEnvelope,
    ) -> Result<bool, DbErr> {
        match event.kind.as_str() {
            kind::USER_REGISTERED => {
                let e: UserRegistered = event.decode()?;
                remember(txn, e.user_id, e.nickname, e.avatar_url).await?;
                Ok(true)
            }
            kind::USER_PROFILE_UPDATED => {
                let e: UserProfileUpdated = event.decode()?;
                remember(txn, e.user_id, e.nickname, e.avatar_url).await?;
                Ok(true)
            }
            _ => Ok(parley_kit::blocks::apply(txn, event).await?.is_some()),
        }
    }
}

async fn remember(
    txn: &DatabaseTransaction,
    user_id: Uuid,
    nickname: String,
    avatar_url: Option<String>,
) -> Result<(), DbErr> {
    known_user::Entity::insert(known_user::ActiveModel {
        user_id: Set(user_id),
        nickname: Set(Some(nickname)),
        avatar_url: Set(avatar_url),
    })
    .on_conflict(
        OnConflict::column(known_user::Column::UserId)
            .update_columns([known_user::Column::Nickname, known_user::Column::AvatarUrl])
            .to_owned(),
    )
    .exec(txn)
    .await?;
    Ok(())
}
