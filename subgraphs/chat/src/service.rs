//! The bottom of the chat domain, which the rest builds on: the [`ChatService`] handle, the membership gate
//! ([`member_of`]: a non-member and a missing chat get one answer, so nobody learns which chats exist), and
//! writing a message as its chat's next one ([`insert_message`], used by sending and by the SYSTEM messages
//! of membership changes).

use chrono::Utc;
use parley_kit::events::contracts::{ChatMessage, MessageSent, UserCard};
use parley_kit::events::{append, Events};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    ExprTrait, QueryFilter, QuerySelect, Set,
};
use uuid::Uuid;

use crate::error::{invalid, ChatError, Result, NOT_A_MEMBER};
use crate::store::message::Kind;
use crate::store::{chat, known_user, member, message};

/// The chat domain's write side: the store and its events.
pub struct ChatService {
    pub db: DatabaseConnection,
    pub events: Events,
    /// Whether people may open chats with the assistant (its endpoint is configured).
    pub assistant_offered: bool,
}

/// The chat and the caller's membership; [`NOT_A_MEMBER`] when either is missing.
pub async fn member_of<C: ConnectionTrait>(
    db: &C,
    chat_id: Uuid,
    user: Uuid,
) -> Result<(chat::Model, member::Model)> {
    let membership = member::Entity::find_by_id((chat_id, user))
        .one(db)
        .await?
        .ok_or(NOT_A_MEMBER)?;
    let chat = chat::Entity::find_by_id(chat_id)
        .one(db)
        .await?
        .ok_or(NOT_A_MEMBER)?;
    Ok((chat, membership))
}

/// Longest text of a message, in characters.
pub const MAX_TEXT: usize = 4_000;
const MAX_CLIENT_ID: usize = 64;

/// What a client (or the chat itself, for SYSTEM messages) sends.
pub struct NewMessage {
    pub kind: Kind,
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
            kind: Kind::System,
            text: Some(what.to_string()),
            media_id: None,
            reply_to_id: None,
            subject_id: Some(subject),
            client_message_id: None,
        }
    }

    /// Checks a client's message: TEXT needs text; IMAGE and FILE need a media id (text is a caption).
    pub fn validated(self) -> Result<Self> {
        if self.kind == Kind::System {
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
        if self.kind == Kind::Text && text.is_none() {
            return Err(invalid("text: a TEXT message needs text"));
        }
        if self.kind != Kind::Text && self.media_id.is_none() {
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
        kind: m.kind.to_value(),
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

/// A message and its author's card rebuilt from its event payload (live subscribers read no store); an
/// error for a kind this code does not know.
pub fn from_payload(p: ChatMessage) -> Result<(message::Model, Option<UserCard>)> {
    let model = message::Model {
        id: p.message_id,
        chat_id: p.chat_id,
        seq: p.seq,
        author_id: p.author_id,
        kind: Kind::try_from_value(&p.kind)?,
        text: p.text,
        media_id: p.media_id,
        reply_to_id: p.reply_to_id,
        subject_id: p.subject_id,
        client_message_id: None,
        created_at: p.created_at,
        edited_at: p.edited_at,
        deleted_at: p.deleted_at,
    };
    Ok((model, p.author))
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
        kind: Set(new.kind),
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
