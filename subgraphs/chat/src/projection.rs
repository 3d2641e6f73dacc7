//! What chat learns from other subgraphs: which users exist and their public card (users' `UserRegistered`
//! and `UserProfileUpdated`), who blocked whom (social's blocks, through the kit's projection), and which
//! uploads may be sent (media's `MediaProcessed` / `MediaDeleted`).
//!
//! Users' events arrive in the order they were written, so the last one applied holds the current card.

use async_trait::async_trait;
use parley_kit::blocks;
use parley_kit::events::Handler;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait, Set};
use uuid::Uuid;

use parley_kit::known_media;

use crate::store::known_user;

use parley_kit::entitlements;

parley_kit::consumed! {
    pub enum ChatInput {
        UserRegistered, UserProfileUpdated, UserBlocked, UserUnblocked, MediaProcessed, MediaDeleted,
        BillingSubscriptionStarted, BillingSubscriptionChanged, BillingSubscriptionCanceled,
    }
}

pub struct Projection;

#[async_trait]
impl Handler for Projection {
    type Event = ChatInput;

    async fn apply(&self, txn: &DatabaseTransaction, event: ChatInput) -> Result<(), DbErr> {
        match event {
            ChatInput::UserRegistered(e) => {
                remember(txn, e.user_id, e.nickname, e.avatar_url).await
            }
            ChatInput::UserProfileUpdated(e) => {
                remember(txn, e.user_id, e.nickname, e.avatar_url).await
            }
            ChatInput::UserBlocked(b) => blocks::block(txn, &b).await,
            ChatInput::UserUnblocked(b) => blocks::unblock(txn, &b).await,
            ChatInput::MediaProcessed(m) => known_media::remember(txn, &m).await,
            ChatInput::MediaDeleted(m) => known_media::forget(txn, &m).await,
            ChatInput::BillingSubscriptionStarted(s) => entitlements::apply(txn, &s).await,
            ChatInput::BillingSubscriptionChanged(s) => entitlements::apply(txn, &s).await,
            ChatInput::BillingSubscriptionCanceled(s) => entitlements::apply(txn, &s).await,
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
