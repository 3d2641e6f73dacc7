//! What chat learns from other subgraphs: which users exist (users' `UserRegistered`) and who blocked whom
//! (social's blocks, through the kit's projection).

use async_trait::async_trait;
use parley_kit::events::contracts::{kind, UserRegistered};
use parley_kit::events::{EventEnvelope, EventHandler};
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait, Set};

use crate::store::known_user;

pub struct Projection;

#[async_trait]
impl EventHandler for Projection {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &EventEnvelope,
    ) -> Result<bool, DbErr> {
        if event.kind == kind::USER_REGISTERED {
            let registered: UserRegistered = event.decode()?;
            known_user::Entity::insert(known_user::ActiveModel {
                user_id: Set(registered.user_id),
            })
            .on_conflict_do_nothing_on([known_user::Column::UserId])
            .exec(txn)
            .await?;
            return Ok(true);
        }
        Ok(parley_kit::blocks::apply(txn, event).await?.is_some())
    }
}
