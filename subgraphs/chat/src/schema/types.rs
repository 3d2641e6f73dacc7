//! The chat subgraph's GraphQL types: `Chat` and `Message` (entities it owns), a member's `ChatMember` and
//! `ChatSettings`, the live `ChatEvent`, and `User` (a reference the router completes from users).
//! A `Chat` is only ever built for a member (its viewer), after the membership check.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use parley_kit::error::coded;
use parley_kit::ids::to_id;
use parley_kit::pagination::{decode_cursor, encode_cursor, DEFAULT_PAGE, MAX_PAGE};
use parley_kit::{ApiResult, ErrorCode, ResultExt};
use sea_orm::{DatabaseConnection, EntityTrait};
use std::sync::Arc;
use uuid::Uuid;

use crate::chats::{self, member_of, NotificationLevel};
use crate::messages::{self, Direction};
use crate::receipts;
use crate::store::{chat, member, message};
use crate::typing::Typing;

fn db<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a DatabaseConnection> {
    ctx.data::<DatabaseConnection>()
}

/// A user; its fields come from the users subgraph.
#[derive(SimpleObject, Clone)]
#[graphql(unresolvable)]
pub struct User {
    pub id: ID,
}

pub fn user(id: Uuid) -> User {
    User { id: to_id(id) }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ChatKind {
    Direct,
    Group,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    Admin,
    Member,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Image,
    File,
    System,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => messages::TEXT,
            MessageKind::Image => messages::IMAGE,
            MessageKind::File => messages::FILE,
            MessageKind::System => messages::SYSTEM,
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            messages::IMAGE => MessageKind::Image,
            messages::FILE => MessageKind::File,
            messages::SYSTEM => MessageKind::System,
            _ => MessageKind::Text,
        }
    }
}

/// A chat as one of its members sees it.
pub struct Chat {
    pub chat: chat::Model,
    pub viewer: Uuid,
}

#[Object]
impl Chat {
    async fn id(&self) -> ID {
        to_id(self.chat.id)
    }

    async fn kind(&self) -> ChatKind {
        if self.chat.kind == chat::DIRECT {
            ChatKind::Direct
        } else {
            ChatKind::Group
        }
    }

    /// Groups only.
    async fn title(&self) -> Option<&str> {
        self.chat.title.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.chat.created_at
    }

    /// When the last message was sent (or the chat created).
    async fn last_activity_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.chat.activity).unwrap_or(self.chat.created_at)
    }

    /// The sequence number of the last message: a client that has seen up to N asks for
    /// `messages(afterSeq: N)`.
    async fn last_seq(&self) -> i64 {
        self.chat.last_seq
    }

    async fn members(&self, ctx: &Context<'_>) -> ApiResult<Vec<User>> {
        let rows = chats::members(db(ctx)?, self.chat.id).await.gql()?;
        Ok(rows.into_iter().map(|m| user(m.user_id)).collect())
    }

    /// Members with their role.
    async fn memberships(&self, ctx: &Context<'_>) -> ApiResult<Vec<ChatMember>> {
        let rows = chats::members(db(ctx)?, self.chat.id).await.gql()?;
        Ok(rows.into_iter().map(ChatMember).collect())
    }

    async fn last_message(&self, ctx: &Context<'_>) -> ApiResult<Option<Message>> {
        Ok(messages::last_message(db(ctx)?, self.chat.id)
            .await
            .gql()?
            .map(Message))
    }

    /// Messages of others the viewer has not read yet.
    async fn unread_count(&self, ctx: &Context<'_>) -> ApiResult<u64> {
        let db = db(ctx)?;
        let (_, mine) = member_of(db, self.chat.id, self.viewer).await.gql()?;
        receipts::unread_count(db, &mine).await.gql()
    }

    /// The viewer's own settings.
    async fn my_settings(&self, ctx: &Context<'_>) -> ApiResult<ChatSettings> {
        let (_, mine) = member_of(db(ctx)?, self.chat.id, self.viewer).await.gql()?;
        Ok(ChatSettings(mine))
    }

    /// Members typing now.
    async fn typing(&self, ctx: &Context<'_>) -> ApiResult<Vec<User>> {
        let typing = ctx.data::<Arc<Typing>>()?;
        Ok(typing
            .in_chat(self.chat.id)
            .into_iter()
            .filter(|u| *u != self.viewer)
            .map(user)
            .collect())
    }

    /// History in sequence order. Backward from the newest by default (`last`/`before`); forward with
    /// `first`/`after`, or `afterSeq` to resync everything after a known number.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        after_seq: Option<i64>,
    ) -> ApiResult<Connection<String, Message>> {
        let forward = first.is_some() || after.is_some() || after_seq.is_some();
        if forward && (last.is_some() || before.is_some()) {
            return Err(coded(
                ErrorCode::BadUserInput,
                "page forward (first/after/afterSeq) or backward (last/before), not both",
            ));
        }
        let size = page_size(if forward { first } else { last })?;
        let db = db(ctx)?;
        if forward {
            let after = match (after_seq, after) {
                (Some(seq), _) => seq,
                (None, Some(cursor)) => seq_of(&cursor)?,
                (None, None) => 0,
            };
            let mut rows = messages::history(
                db,
                self.viewer,
                self.chat.id,
                Direction::Forward { after },
                size + 1,
            )
            .await
            .gql()?;
            let has_next = rows.len() as u64 > size;
            rows.truncate(size as usize);
            Ok(message_connection(rows, after > 0, has_next))
        } else {
            let before = before.as_deref().map(seq_of).transpose()?;
            let mut rows = messages::history(
                db,
                self.viewer,
                self.chat.id,
                Direction::Backward { before },
                size + 1,
            )
            .await
            .gql()?;
            let has_previous = rows.len() as u64 > size;
            if has_previous {
                rows.remove(0);
            }
            Ok(message_connection(rows, has_previous, before.is_some()))
        }
    }
}

fn page_size(n: Option<i32>) -> ApiResult<u64> {
    match n {
        None => Ok(DEFAULT_PAGE as u64),
        Some(n) if (0..=MAX_PAGE as i32).contains(&n) => Ok(n as u64),
        Some(_) => Err(coded(
            ErrorCode::BadUserInput,
            format!("page size must be between 0 and {MAX_PAGE}"),
        )),
    }
}

fn seq_of(cursor: &str) -> ApiResult<i64> {
    decode_cursor(cursor)?
        .first()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| coded(ErrorCode::BadUserInput, "invalid cursor"))
}

fn message_connection(
    rows: Vec<message::Model>,
    has_previous: bool,
    has_next: bool,
) -> Connection<String, Message> {
    let mut conn = Connection::new(has_previous, has_next);
    conn.edges.extend(
        rows.into_iter()
            .map(|m| Edge::new(encode_cursor(&[&m.seq.to_string()]), Message(m))),
    );
    conn
}

pub struct ChatMember(pub member::Model);

#[Object]
impl ChatMember {
    async fn user(&self) -> User {
        user(self.0.user_id)
    }

    async fn role(&self) -> ChatRole {
        if self.0.role == member::ADMIN {
            ChatRole::Admin
        } else {
            ChatRole::Member
        }
    }

    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }

    /// Sequence number of the last message delivered to this member.
    async fn delivered_seq(&self) -> i64 {
        self.0.delivered_seq
    }

    /// Sequence number of the last message this member read.
    async fn read_seq(&self) -> i64 {
        self.0.read_seq
    }
}

/// A member's own settings for a chat.
pub struct ChatSettings(pub member::Model);

#[Object]
impl ChatSettings {
    async fn muted_until(&self) -> Option<DateTime<Utc>> {
        self.0.muted_until
    }

    async fn muted(&self) -> bool {
        self.0.muted_until.is_some_and(|until| until > Utc::now())
    }

    async fn notification_level(&self) -> NotificationLevel {
        NotificationLevel::parse(&self.0.notification_level)
    }
}

pub struct Message(pub message::Model);

#[Object]
impl Message {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    async fn chat_id(&self) -> ID {
        to_id(self.0.chat_id)
    }

    /// Position in the chat: 1, 2, 3, … with no gaps.
    async fn seq(&self) -> i64 {
        self.0.seq
    }

    async fn author(&self) -> User {
        user(self.0.author_id)
    }

    async fn kind(&self) -> MessageKind {
        MessageKind::parse(&self.0.kind)
    }

    /// `null` once deleted for everyone. For SYSTEM messages: MEMBER_ADDED, MEMBER_REMOVED or MEMBER_LEFT.
    async fn text(&self) -> Option<&str> {
        self.0.text.as_deref()
    }

    /// The media item of an IMAGE or FILE message.
    async fn media_id(&self) -> Option<ID> {
        self.0.media_id.map(to_id)
    }

    /// For SYSTEM messages: the member the message is about.
    async fn subject(&self) -> Option<User> {
        self.0.subject_id.map(user)
    }

    async fn reply_to(&self, ctx: &Context<'_>) -> ApiResult<Option<Message>> {
        let Some(id) = self.0.reply_to_id else {
            return Ok(None);
        };
        Ok(message::Entity::find_by_id(id)
            .one(db(ctx)?)
            .await
            .map_err(crate::error::ChatError::from)
            .gql()?
            .map(Message))
    }

    /// The id the sender's client chose (echoed so it can match its pending message).
    async fn client_message_id(&self) -> Option<&str> {
        self.0.client_message_id.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn edited_at(&self) -> Option<DateTime<Utc>> {
        self.0.edited_at
    }

    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at
    }

    /// Members (other than the author) who have read this message.
    async fn read_by(&self, ctx: &Context<'_>) -> ApiResult<Vec<User>> {
        let ids = receipts::read_by(db(ctx)?, &self.0).await.gql()?;
        Ok(ids.into_iter().map(user).collect())
    }
}

/// What happened in one of the caller's chats.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChatEventKind {
    ChatCreated,
    MemberAdded,
    MemberRemoved,
    MessageAdded,
    MessageEdited,
    MessageDeleted,
    Delivered,
    Read,
    Typing,
}

#[derive(SimpleObject)]
pub struct ChatEvent {
    pub kind: ChatEventKind,
    pub chat_id: ID,
    /// The message, for MESSAGE_* events.
    pub message: Option<Message>,
    /// Who: the member added or removed, the reader, the typist.
    pub user: Option<User>,
    /// The message number a receipt reaches.
    pub seq: Option<i64>,
    /// For TYPING: started (true) or stopped.
    pub typing: Option<bool>,
    pub at: DateTime<Utc>,
}
