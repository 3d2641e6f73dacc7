//! Receipts: each member's delivered and read markers (sequence numbers that only move forward), the unread
//! count they imply, and who has read a message.

use parley_kit::events::append;
use parley_kit::events::contracts::{ChatReceipt, MessageRead, MessageReceived};
use parley_kit::store::begin_write;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
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

/// Messages of others after the member's read marker, not deleted.
pub async fn unread_count<C: ConnectionTrait>(db: &C, mine: &member::Model) -> Result<u64> {
    Ok(message::Entity::find()
        .filter(message::Column::ChatId.eq(mine.chat_id))
        .filter(message::Column::Seq.gt(mine.read_seq))
        .filter(message::Column::AuthorId.ne(mine.user_id))
        .filter(message::Column::DeletedAt.is_null())
        .count(db)
        .await?)
}

/// Members other than the author whose read marker reached the message.
pub async fn read_by<C: ConnectionTrait>(db: &C, m: &message::Model) -> Result<Vec<Uuid>> {
    Ok(member::Entity::find()
        .filter(member::Column::ChatId.eq(m.chat_id))
        .filter(member::Column::ReadSeq.gte(m.seq))
        .filter(member::Column::UserId.ne(m.author_id))
        .order_by_asc(member::Column::UserId)
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect())
}
