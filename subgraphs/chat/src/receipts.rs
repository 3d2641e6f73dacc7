//! Receipts: each member's delivered and read markers (sequence numbers that only move forward), the unread
//! count they imply, and who has read a message.

use parley_kit::events::append;
use parley_kit::events::contracts::{ChatReceipt, MessageRead, MessageReceived};
use parley_kit::store::begin_write;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::error::{ChatError, Result};
use crate::service::{member_of, ChatService};
use crate::store::{member, message};

/// Which marker a receipt moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Delivered,
    Read,
}

impl ChatService {
    /// Moves the caller's marker up to `message_id` (reading implies delivery). Returns whether it moved;
    /// a marker never moves back.
    pub async fn mark(
        &self,
        me: Uuid,
        chat_id: Uuid,
        message_id: Uuid,
        marker: Marker,
    ) -> Result<bool> {
        let txn = begin_write(&self.db).await?;
        let (_, mine) = member_of(&txn, chat_id, me).await?;
        let target = message::Entity::find_by_id(message_id)
            .one(&txn)
            .await?
            .filter(|m| m.chat_id == chat_id)
            .ok_or(ChatError::NotFound("message"))?;
        let seq = target.seq;
        let current = match marker {
            Marker::Delivered => mine.delivered_seq,
            Marker::Read => mine.read_seq,
        };
        if seq <= current {
            return Ok(false);
        }
        let mut update = member::Entity::update_many()
            .col_expr(
                member::Column::DeliveredSeq,
                Expr::value(seq.max(mine.delivered_seq)),
            )
            .filter(member::Column::ChatId.eq(chat_id))
            .filter(member::Column::UserId.eq(me));
        if marker == Marker::Read {
            update = update.col_expr(member::Column::ReadSeq, Expr::value(seq));
        }
        update.exec(&txn).await?;
        let receipt = ChatReceipt {
            chat_id,
            user_id: me,
            message_id,
            seq,
        };
        match marker {
            Marker::Delivered => append(&txn, chat_id, &MessageReceived(receipt)).await?,
            Marker::Read => append(&txn, chat_id, &MessageRead(receipt)).await?,
        }
        txn.commit().await?;
        self.events.wake();
        Ok(true)
    }
}

/// Members other than its author whose read marker reached `m`, by id (from the chat's `members`).
pub fn read_by(members: &[member::Model], m: &message::Model) -> Vec<Uuid> {
    let mut readers: Vec<Uuid> = members
        .iter()
        .filter(|member| member.read_seq >= m.seq && member.user_id != m.author_id)
        .map(|member| member.user_id)
        .collect();
    readers.sort();
    readers
}
