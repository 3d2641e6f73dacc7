//! What posts learns from social's events: who blocked whom (content from or to a blocked user is refused).

use async_trait::async_trait;
use parley_kit::events::contracts::{kind, BlockChanged};
use parley_kit::events::{EventEnvelope, EventHandler};
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set};

use crate::store::block;

pub struct Projection;

#[async_trait]
impl EventHandler for Projection {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &EventEnvelope,
    ) -> Result<bool, DbErr> {
        match event.kind.as_str() {
            kind::USER_BLOCKED => {
                let b: BlockChanged = event.decode()?;
                block::Entity::insert(block::ActiveModel {
                    blocker_id: Set(b.blocker_id),
                    blocked_id: Set(b.blocked_id),
                })
                .on_conflict_do_nothing_on([block::Column::BlockerId, block::Column::BlockedId])
                .exec(txn)
                .await?;
                Ok(true)
            }
            kind::USER_UNBLOCKED => {
                let b: BlockChanged = event.decode()?;
                block::Entity::delete_many()
                    .filter(block::Column::BlockerId.eq(b.blocker_id))
                    .filter(block::Column::BlockedId.eq(b.blocked_id))
                    .exec(txn)
                    .await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
