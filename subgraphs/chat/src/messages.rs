//! Messages: sending (idempotent by `clientMessageId`), editing, deleting for oneself or for everyone, and
//! reading history. Every message of a chat takes the next number of the chat's counter inside the sending
//! transaction (the chat row is locked first), so numbers are unique and gap-free and "everything after N"
//! is one index range.

use chrono::Utc;
use parley_kit::events::append;
use parley_kit::events::contracts::{
    MediaUse, MessageDeleted, MessageEdited, MessageMediaAttached, MessageSent,
};
use parley_kit::events::Event;
use parley_kit::store::begin_write;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::error::{invalid, ChatError, Result};
use crate::service::{insert_message, member_of, payload, ChatService, NewMessage, MAX_TEXT};
use parley_kit::known_media;

use crate::store::{chat, hidden, member, message};

async fn by_client_id<C: ConnectionTrait>(
    db: &C,
    chat_id: Uuid,
    author: Uuid,
    client_id: &str,
) -> Result<Option<message::Model>> {
    Ok(message::Entity::find()
        .filter(message::Column::ChatId.eq(chat_id))
        .filter(message::Column::AuthorId.eq(author))
        .filter(message::Column::ClientMessageId.eq(client_id))
        .one(db)
        .await?)
}

/// A message the caller may see: it exists and they are a member of its chat (else one answer for both).
pub async fn visible<C: ConnectionTrait>(db: &C, me: Uuid, id: Uuid) -> Result<message::Model> {
    let found = message::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ChatError::NotFound("message"))?;
    member_of(db, found.chat_id, me)
        .await
        .map_err(|_| ChatError::NotFound("message"))?;
    Ok(found)
}

impl ChatService {
    /// Sends a message. With a `clientMessageId` already used by the caller in this chat, returns that
    /// message instead of writing another (a retried send).
    pub async fn send(&self, me: Uuid, chat_id: Uuid, new: NewMessage) -> Result<message::Model> {
        let new = new.validated()?;
        let client_id = new.client_message_id.clone();
        if let Some(id) = &client_id {
            if let Some(found) = by_client_id(&self.db, chat_id, me, id).await? {
                member_of(&self.db, chat_id, me).await?;
                return Ok(found);
            }
        }
        let txn = begin_write(&self.db).await?;
        let (chat, _) = member_of(&txn, chat_id, me).await?;
        if chat.kind == chat::Kind::Direct {
            let other = member::Entity::find()
                .filter(member::Column::ChatId.eq(chat_id))
                .filter(member::Column::UserId.ne(me))
                .one(&txn)
                .await?;
            if let Some(other) = other {
                if parley_kit::blocks::either_blocked(&txn, me, other.user_id).await? {
                    return Err(ChatError::Forbidden("one of you blocked the other"));
                }
            }
        }
        if let Some(media) = new.media_id {
            ensure_sendable_media(&txn, me, media, new.kind).await?;
        }
        if let Some(reply) = new.reply_to_id {
            let target = message::Entity::find_by_id(reply).one(&txn).await?;
            if target.is_none_or(|t| t.chat_id != chat_id) {
                return Err(ChatError::NotFound("reply-to message"));
            }
        }
        let stored = match insert_message(&txn, &chat, me, new).await {
            Ok(stored) => stored,
            // The same send raced itself (a client retry): the first one won; answer with it.
            Err(ChatError::Store(err)) if parley_kit::error::is_unique_violation(&err) => {
                drop(txn);
                let id = client_id.ok_or(ChatError::Store(err))?;
                return by_client_id(&self.db, chat_id, me, &id)
                    .await?
                    .ok_or(ChatError::Conflict("message is being sent"));
            }
            Err(err) => return Err(err),
        };
        if let Some(media_id) = stored.media_id {
            let used = MediaUse {
                media_id,
                holder_id: stored.id,
            };
            append(&txn, media_id, &MessageMediaAttached(used)).await?;
        }
        txn.commit().await?;
        self.events.wake();
        Ok(stored)
    }

    /// The author changes a message's text (`editedAt` records when).
    pub async fn edit(&self, me: Uuid, id: Uuid, text: &str) -> Result<message::Model> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > MAX_TEXT {
            return Err(invalid(format!("text: 1 to {MAX_TEXT} characters")));
        }
        let txn = begin_write(&self.db).await?;
        let found = visible(&txn, me, id).await?;
        if found.author_id != me {
            return Err(ChatError::Forbidden("only its author edits a message"));
        }
        if found.deleted_at.is_some() || found.kind == message::Kind::System {
            return Err(invalid("id: this message cannot be edited"));
        }
        let mut active: message::ActiveModel = found.into();
        active.text = Set(Some(text.to_string()));
        active.edited_at = Set(Some(Utc::now()));
        let edited = active.update(&txn).await?;
        // The old text leaves the earlier events; the new one travels in this one.
        let erased = withdraw(&txn, &edited, &["text"]).await?;
        append(
            &txn,
            edited.chat_id,
            &MessageEdited(payload(&txn, &edited).await?),
        )
        .await?;
        txn.commit().await?;
        self.events.wake();
        self.erase(&erased).await;
        Ok(edited)
    }

    /// For everyone (author only): the content goes, a tombstone stays. For me: hidden from my history.
    pub async fn delete(&self, me: Uuid, id: Uuid, for_everyone: bool) -> Result<()> {
        let txn = begin_write(&self.db).await?;
        let found = visible(&txn, me, id).await?;
        if !for_everyone {
            hidden::Entity::insert(hidden::ActiveModel {
                user_id: Set(me),
                message_id: Set(id),
            })
            .on_conflict_do_nothing_on([hidden::Column::UserId, hidden::Column::MessageId])
            .exec(&txn)
            .await?;
            txn.commit().await?;
            return Ok(());
        }
        if found.author_id != me {
            return Err(ChatError::Forbidden(
                "only its author deletes a message for everyone",
            ));
        }
        if found.deleted_at.is_some() {
            return Ok(());
        }
        let mut active: message::ActiveModel = found.into();
        active.text = Set(None);
        active.media_id = Set(None);
        active.deleted_at = Set(Some(Utc::now()));
        let deleted = active.update(&txn).await?;
        let erased = withdraw(&txn, &deleted, &["text", "media_id"]).await?;
        append(
            &txn,
            deleted.chat_id,
            &MessageDeleted(payload(&txn, &deleted).await?),
        )
        .await?;
        txn.commit().await?;
        self.events.wake();
        self.erase(&erased).await;
        Ok(())
    }

    /// Erases withdrawn events from the bus once their redaction committed (best effort: a bus that is down
    /// now is told nothing, and its entries keep the old text until the stream is trimmed — logged).
    async fn erase(&self, bus_ids: &[String]) {
        if let Err(err) = self.events.bus.erase(bus_ids).await {
            tracing::warn!(error = %err, count = bus_ids.len(), "withdrawn message events not erased from the bus");
        }
    }
}

/// Erases `fields` from the earlier events of message `m` (sent, edited) in the outbox; their bus ids.
async fn withdraw<C: ConnectionTrait>(
    txn: &C,
    m: &message::Model,
    fields: &[&str],
) -> Result<Vec<String>> {
    Ok(parley_kit::events::redact::redact(
        txn,
        &m.chat_id.to_string(),
        &[MessageSent::KIND.name, MessageEdited::KIND.name],
        "message_id",
        m.id,
        fields,
    )
    .await?)
}

/// Which way a history page runs from its cursor.
pub enum Direction {
    /// Older messages than `before` (or the newest when none), returned newest first.
    Backward { before: Option<i64> },
    /// Newer messages than `after` (or from the first), oldest first.
    Forward { after: i64 },
}

/// Up to `limit` messages of a chat the viewer has not hidden, in the direction's order.
pub async fn history(
    db: &DatabaseConnection,
    viewer: Uuid,
    chat_id: Uuid,
    direction: Direction,
    limit: u64,
) -> Result<Vec<message::Model>> {
    let hidden_ids = Query::select()
        .column(hidden::Column::MessageId)
        .from(hidden::Entity)
        .and_where(hidden::Column::UserId.eq(viewer))
        .to_owned();
    let select = message::Entity::find()
        .filter(message::Column::ChatId.eq(chat_id))
        .filter(message::Column::Id.not_in_subquery(hidden_ids));
    Ok(match direction {
        Direction::Forward { after } => {
            select
                .filter(message::Column::Seq.gt(after))
                .order_by_asc(message::Column::Seq)
                .limit(limit)
                .all(db)
                .await?
        }
        Direction::Backward { before } => {
            let select = match before {
                Some(before) => select.filter(message::Column::Seq.lt(before)),
                None => select,
            };
            select
                .order_by_desc(message::Column::Seq)
                .limit(limit)
                .all(db)
                .await?
        }
    })
}

/// A message names only its sender's checked upload, of a kind its own kind takes (an IMAGE message an
/// image; a FILE message anything).
async fn ensure_sendable_media<C: ConnectionTrait>(
    db: &C,
    me: Uuid,
    media: Uuid,
    kind: message::Kind,
) -> Result<()> {
    let kinds: &[&str] = if kind == message::Kind::Image {
        &["IMAGE"]
    } else {
        &[]
    };
    if known_media::usable(db, me, &[media], "message", kinds)
        .await?
        .is_empty()
    {
        return Err(invalid(
            "mediaId: not a ready upload of yours for messages that this kind of message takes",
        ));
    }
    Ok(())
}
