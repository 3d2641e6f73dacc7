//! What posts learns from other subgraphs: the visibility rule's events from social (blocks, approved
//! follows, private accounts: [`parley_kit::audience`]) and media's uploads — READY ones an author may
//! attach, deleted ones that leave every post.

use async_trait::async_trait;
use parley_kit::events::Handler;
use parley_kit::{audience, blocks, known_media};
use sea_orm::{DatabaseTransaction, DbErr};

use crate::attachments;

parley_kit::consumed! {
    pub enum PostsInput {
        UserBlocked, UserUnblocked, FollowAccepted, FollowRemoved, AccountPrivacyChanged,
        MediaProcessed, MediaDeleted,
    }
}

pub struct Projection;

#[async_trait]
impl Handler for Projection {
    type Event = PostsInput;

    async fn apply(&self, txn: &DatabaseTransaction, event: PostsInput) -> Result<(), DbErr> {
        match event {
            PostsInput::UserBlocked(b) => blocks::block(txn, &b).await,
            PostsInput::UserUnblocked(b) => blocks::unblock(txn, &b).await,
            PostsInput::FollowAccepted(f) => audience::followed(txn, &f).await,
            PostsInput::FollowRemoved(f) => audience::unfollowed(txn, &f).await,
            PostsInput::AccountPrivacyChanged(p) => audience::privacy_changed(txn, &p).await,
            PostsInput::MediaProcessed(m) => known_media::remember(txn, &m).await,
            PostsInput::MediaDeleted(m) => {
                known_media::forget(txn, &m).await?;
                attachments::detach(txn, m.media_id).await
            }
        }
    }
}
