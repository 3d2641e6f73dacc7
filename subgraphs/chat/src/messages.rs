//! Messages: sending (idempotent by `clientMessageId`), editing, deleting for oneself or for everyone, and
//! reading history. Every message of a chat takes the next number of the chat's counter inside the sending
//! transaction (the chat row is locked first), so numbers are unique and gap-free and "everything after N"
//! is one index range.

use chrono::Utc;
use parley_kit::events::append;
use parley_kit::events::contracts::{
    ChatMessage, MessageDeleted, MessageEdited, MessageSent, UserCard,
};
use parley_kit::store::begin_write;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, ExprTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::chats::{member_of, ChatService};
use crate::error::{invalid, ChatError, Result};
use crate::store::{chat, hidden, known_user, member, message};

pub const TEXT: &str = "TEXT";
pub const IMAGE: &str = "IMAGE";
pub const FILE: &str = "FILE";
pub const SYSTEM: &str = "SYSTEM";

/// Longest text of a message, in characters.
pub const MAX_TEXT: usize = 4_000;
const MAX_CLIENT_ID: usize = 64;

/// What a client (or the chat itself, for SYSTEM messages) sends.
pub struct NewMessage {
    pub kind: &'static str,
    pub text: Option<String>,
    pub media_id: Option<Uuid>,
    pub reply_to_id: Option<Uuid>,
    pub subject_id: Option<Uuid>,
    pub client_message_id: Option<String>,
}

impl NewMessage {
    /// A SYSTEM message about `subject` (`what`: MEMBER_ADDED, MEMBER_REMOVED, MEMBER_LEFT).
    pub fn system(what: &str, subject: Uuid) -> Self {
        Self {
            kind: SYSTEM,
            text: Some(what.to_string()),
            media_id: None,
            reply_to_id: None,
            subject_id: Some(subject),
            client_message_id: None,
        }
    }

    /// Checks a client's message: TEXT needs text; IMAGE and FILE need a media id (text is a caption).
    pub fn validated(self) -> Result<Self> {
        if self.kind == SYSTEM {
            return Err(invalid(
                "kind: SYSTEM messages are written by the chat itself",
            ));
        }
        let text = self
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        if let Some(t) = text {
            if t.chars().count() > MAX_TEXT {
                return Err(invalid(format!("text: at most {MAX_TEXT} characters")));
            }
        }
        if self.kind == TEXT && text.is_none() {
            return Err(invalid("text: a TEXT message needs text"));
        }
        if self.kind != TEXT && self.media_id.is_none() {
            return Err(invalid("mediaId: IMAGE and FILE messages need a media id"));
        }
        if let Some(id) = &self.client_message_id {
            if id.is_empty() || id.len() > MAX_CLIENT_ID {
                return Err(invalid(format!(
                    "clientMessageId: 1 to {MAX_CLIENT_ID} characters"
                )));
            }
        }
        Ok(Self {
            text: text.map(str::to_string),
            ..self
        })
    }
}

/// The event payload (and live form) of a stored message, with its author's card as chat knows it now.
pub async fn payload<C: ConnectionTrait>(db: &C, m: &message::Model) -> Result<ChatMessage> {
    let author = known_user::Entity::find_by_id(m.author_id)
        .one(db)
        .await?
        .and_then(known_user::Model::card);
    Ok(ChatMessage {
        message_id: m.id,
        chat_id: m.chat_id,
        seq: m.seq,
        author_id: m.author_id,
        kind: m.kind.clone(),
        text: m.text.clone(),
        media_id: m.media_id,
        reply_to_id: m.reply_to_id,
        subject_id: m.subject_id,
        created_at: m.created_at,
        edited_at: m.edited_at,
        deleted_at: m.deleted_at,
        author,
    })
}

/// A message and its author's card rebuilt from its event payload (live subscribers read no store).
pub fn from_payload(p: ChatMessage) -> (message::Model, Option<UserCard>) {
    let model = message::Model {
        id: p.message_id,
        chat_id: p.chat_id,
        seq: p.seq,
        author_id: p.author_id,
        kind: p.kind,
        text: p.text,
        media_id: p.media_id,
        reply_to_id: p.reply_to_id,
        subject_id: p.subject_id,
        client_message_id: None,
        created_at: p.created_at,
        edited_at: p.edited_at,
        deleted_at: p.deleted_at,
    };
    (model, p.author)
}

/// Stores a message as the chat's next one, inside `txn`, with its `MessageSent` event. The author's own
/// markers move to it (you have read what you wrote).
pub async fn insert_message<C: ConnectionTrait>(
    txn: &C,
    chat: &chat::Model,
    author: Uuid,
    new: NewMessage,
) -> Result<message::Model> {
    let now = Utc::now();
    // The update takes the chat row's lock (PostgreSQL) inside the writer's transaction (SQLite): senders to
    // one chat queue here, and each reads back the number it took.
    chat::Entity::update_many()
        .col_expr(
            chat::Column::LastSeq,
            Expr::col(chat::Column::LastSeq).add(1),
        )
        .col_expr(chat::Column::Activity, Expr::value(now.timestamp_micros()))
        .filter(chat::Column::Id.eq(chat.id))
        .exec(txn)
        .await?;
    let seq: i64 = chat::Entity::find_by_id(chat.id)
        .select_only()
        .column(chat::Column::LastSeq)
        .into_tuple()
        .one(txn)
        .await?
        .ok_or(ChatError::NotFound("chat"))?;
    let stored = message::ActiveModel {
        id: Set(Uuid::now_v7()),
        chat_id: Set(chat.id),
        seq: Set(seq),
        author_id: Set(author),
        kind: Set(new.kind.to_string()),
        text: Set(new.text),
        media_id: Set(new.media_id),
        reply_to_id: Set(new.reply_to_id),
        subject_id: Set(new.subject_id),
        client_message_id: Set(new.client_message_id),
        created_at: Set(now),
        edited_at: Set(None),
        deleted_at: Set(None),
    }
    .insert(txn)
    .await?;
    member::Entity::update_many()
        .col_expr(member::Column::ReadSeq, Expr::value(seq))
        .col_expr(member::Column::DeliveredSeq, Expr::value(seq))
        .filter(member::Column::ChatId.eq(chat.id))
        .filter(member::Column::UserId.eq(author))
        .exec(txn)
        .await?;
    let sent = payload(txn, &stored).await?;
    append(txn, chat.id, &MessageSent(sent)).await?;
    Ok(stored)
}

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
        if chat.kind == chat::DIRECT {
            let other = crate::chats::members(&txn, chat_id)
                .await?
                .into_iter()
                .find(|m| m.user_id != me);
            if let Some(other) = other {
                if parley_kit::blocks::either_blocked(&txn, me, other.user_id).await? {
                    return Err(ChatError::Forbidden("one of you blocked the other"));
                }
            }
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
        if found.deleted_at.is_some() || found.kind == SYSTEM {
            return Err(invalid("id: this message cannot be edited"));
        }
        let mut active: message::ActiveModel = found.into();
        active.text = Set(Some(text.to_string()));
        active.edited_at = Set(Some(Utc::now()));
        let edited = active.update(&txn).await?;
        append(
            &txn,
            edited.chat_id,
            &MessageEdited(payload(&txn, &edited).await?),
        )
        .await?;
        txn.commit().await?;
        self.events.wake();
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
        append(
            &txn,
            deleted.chat_id,
            &MessageDeleted(payload(&txn, &deleted).await?),
        )
        .await?;
        txn.commit().await?;
        self.events.wake();
        Ok(())
    }
}

/// Which way a history page runs from its cursor.
pub enum Direction {
    /// Older messages than `before` (or the newest when none), returned oldest first.
    Backward { before: Option<i64> },
    /// Newer messages than `after` (or from the first), oldest first.
    Forward { after: i64 },
}

/// Up to `limit` messages of a chat the viewer has not hidden, in sequence order.
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
            let mut rows = select
                .order_by_desc(message::Column::Seq)
                .limit(limit)
                .all(db)
                .await?;
            rows.reverse();
            rows
        }
    })
}

/// The chat's newest message.
pub async fn last_message(
    db: &DatabaseConnection,
    chat_id: Uuid,
) -> Result<Option<message::Model>> {
    Ok(message::Entity::find()
        .filter(message::Column::ChatId.eq(chat_id))
        .order_by_desc(message::Column::Seq)
        .one(db)
        .await?)
}
