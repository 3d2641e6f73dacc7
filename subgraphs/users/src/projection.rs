//! What users learns from media: READY uploads a user may pick as an avatar (with their lasting links), and
//! deleted ones, which leave every profile that showed them.

use async_trait::async_trait;
use parley_kit::events::Handler;
use parley_kit::known_media;
use sea_orm::{DatabaseTransaction, DbErr};

use crate::profiles;

parley_kit::consumed! {
    pub enum UsersInput { MediaProcessed, MediaDeleted }
}

pub struct Projection;

#[async_trait]
impl Handler for Projection {
    type Event = UsersInput;

    async fn apply(&self, txn: &DatabaseTransaction, event: UsersInput) -> Result<(), DbErr> {
        match event {
            UsersInput::MediaProcessed(m) => known_media::remember(txn, &m).await,
            UsersInput::MediaDeleted(m) => {
                known_media::forget(txn, &m).await?;
                profiles::avatar_deleted(txn, m.media_id).await
            }
        }
    }
}
