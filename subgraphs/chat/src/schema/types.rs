//! The chat subgraph's GraphQL types: `Chat` and `Message` (entities it owns), a member's `ChatMember` and
//! `ChatSettings`, the live `ChatEvent`, and `User` (a reference the router completes from users; chat
//! provides only a message author's public card).
//! A `Chat` is only ever built for a member (its viewer), after the membership check.

use async_graphql::connection::{Connection, Edge};
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use parley_kit::error::{coded, to_graphql_arc};
use parley_kit::events::contracts::{ChatMessage, UserCard};
use parley_kit::ids::to_id;
use parley_kit::pagination::{decode_cursor, encode_cursor, DEFAULT_PAGE, MAX_PAGE};
use parley_kit::{ApiResult, ErrorCode, ResultExt};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

use crate::error::ChatError;
use crate::messages::{self, Direction};
use crate::receipts;
use crate::service::{self, member_of};
use crate::store::member::NotificationLevel;
use crate::store::{chat, known_user, member, message};
use crate::typing::Typing;

fn db<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a DatabaseConnection> {
    ctx.data::<DatabaseConnection>()
}

/// A user; its fields come from the users subgraph. Next to a message, chat provides the author's nickname
/// and avatar itself (`Message.author @provides`): a live message reaches thousands of subscribers, each
/// with their own token, and the router would otherwise ask users for the same author once per subscriber.
#[derive(Clone)]
pub struct User {
    pub id: Uuid,
    /// Carried by a live message's payload; otherwise loaded from chat's projection when asked for.
    pub card: Option<UserCard>,
}

pub fn user(id: Uuid) -> User {
    User { id, card: None }
}

/// A user: chat provides a message author's nickname and avatar; everything else comes from the users
/// subgraph.
#[Object(unresolvable = "id")]
impl User {
    async fn id(&self) -> ID {
        to_id(self.id)
    }

    #[graphql(external)]
    async fn nickname(&self, ctx: &Context<'_>) -> ApiResult<String> {
        Ok(self.card(ctx).await?.nickname)
    }

    #[graphql(external)]
    async fn avatar_url(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        Ok(self.card(ctx).await?.avatar_url)
    }
}

impl User {
    async fn card(&self, ctx: &Context<'_>) -> ApiResult<UserCard> {
        if let Some(card) = &self.card {
            return Ok(card.clone());
        }
        ctx.data::<DataLoader<CardLoader>>()?
            .load_one(self.id)
            .await
            .map_err(|e| to_graphql_arc(&e))?
            .ok_or_else(|| coded(ErrorCode::NotFound, "user profile not found"))
    }
}

/// Batches the cards of the authors on one page of messages into one read.
pub struct CardLoader(pub DatabaseConnection);

impl Loader<Uuid> for CardLoader {
    type Value = UserCard;
    type Error = Arc<ChatError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, UserCard>, Self::Error> {
        let rows = known_user::Entity::find()
            .filter(known_user::Column::UserId.is_in(keys.iter().copied()))
            .all(&self.0)
            .await
            .map_err(|e| Arc::new(ChatError::from(e)))?;
        Ok(rows
            .into_iter()
            .filter_map(|row| Some((row.user_id, row.card()?)))
            .collect())
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

    async fn kind(&self) -> chat::Kind {
        self.chat.kind
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
        let rows = service::members(db(ctx)?, self.chat.id).await.gql()?;
        Ok(rows.into_iter().map(|m| user(m.user_id)).collect())
    }

    /// Members with their role.
    async fn memberships(&self, ctx: &Context<'_>) -> ApiResult<Vec<ChatMember>> {
        let rows = service::members(db(ctx)?, self.chat.id).await.gql()?;
        Ok(rows.into_iter().map(ChatMember).collect())
    }

    async fn last_message(&self, ctx: &Context<'_>) -> ApiResult<Option<Message>> {
        Ok(messages::last_message(db(ctx)?, self.chat.id)
            .await
            .gql()?
            .map(Message::from))
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
            .map(|m| Edge::new(encode_cursor(&[&m.seq.to_string()]), Message::from(m))),
    );
    conn
}

pub struct ChatMember(pub member::Model);

#[Object]
impl ChatMember {
    async fn user(&self) -> User {
        user(self.0.user_id)
    }

    async fn role(&self) -> member::Role {
        self.0.role
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
        self.0.notification_level
    }
}

/// A message; a live one carries its author's card from the event.
pub struct Message(pub message::Model, pub Option<UserCard>);

impl From<message::Model> for Message {
    fn from(stored: message::Model) -> Self {
        Message(stored, None)
    }
}

impl Message {
    /// A live message from its event payload; `None` for one this code cannot read.
    pub fn live(payload: ChatMessage) -> Option<Self> {
        let (model, author) = service::from_payload(payload).ok()?;
        Some(Message(model, author))
    }
}

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

    #[graphql(provides = "nickname avatarUrl")]
    async fn author(&self) -> User {
        User {
            id: self.0.author_id,
            card: self.1.clone(),
        }
    }

    async fn kind(&self) -> message::Kind {
        self.0.kind
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
            .map(Message::from))
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
