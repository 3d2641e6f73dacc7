//! What social learns from other subgraphs' events: which accounts exist (`UserRegistered`).

use async_trait::async_trait;
use chrono::Utc;
use parley_kit::events::Handler;
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait, Set};

use crate::store::account;

parley_kit::consumed! {
    pub enum SocialEvent { UserRegistered }
}

pub struct Projection;

#[async_trait]
impl Handler for Projection {
    type Event = SocialEvent;

    async fn apply(&self, txn: &DatabaseTransaction, event: SocialEvent) -> Result<(), DbErr> {
        let SocialEvent::UserRegistered(registered) = event;
        let row = account::ActiveModel {
            user_id: Set(registered.user_id),
            is_private: Set(false),
            registered_at: Set(Utc::now()),
        };
        account::Entity::insert(row)
            .on_conflict_do_nothing_on([account::Column::UserId])
            .exec(txn)
            .await?;
        Ok(())
    }
}
