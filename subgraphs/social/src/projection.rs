//! What social learns from other subgraphs' events: which accounts exist (`UserRegistered`).

use async_trait::async_trait;
use chrono::Utc;
use parley_kit::events::contracts::{kind, UserRegistered};
use parley_kit::events::{EventEnvelope, EventHandler};
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait, Set};

use crate::store::account;

pub struct Projection;

#[async_trait]
impl EventHandler for Projection {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &EventEnvelope,
    ) -> Result<bool, DbErr> {
        if event.kind != kind::USER_REGISTERED {
            return Ok(false);
        }
        let registered: UserRegistered = event.decode()?;
        let row = account::ActiveModel {
            user_id: Set(registered.user_id),
            is_private: Set(false),
            registered_at: Set(Utc::now()),
        };
        account::Entity::insert(row)
            .on_conflict_do_nothing_on([account::Column::UserId])
            .exec(txn)
            .await?;
        Ok(true)
    }
}
