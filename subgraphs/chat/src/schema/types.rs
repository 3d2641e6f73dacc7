//! The chat subgraph's GraphQL types: `Chat` and `Message` (entities it owns), a member's `ChatMember` and
//! `ChatSettings`, the live `ChatEvent`, and `User` (a reference the router completes from users; chat
//! provides only a message author's public card).
//! A `Chat` is only ever built for a member (its viewer), after the membership check.

use async_graphql::connection::Connection;
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use parley_kit::auth::identity;
use parley_kit::error::{coded, to_graphql, to_graphql_arc};
use parley_kit::events::contracts::{ChatMessage, UserCard};
use parley_kit::ids::to_id;
use parley_kit::pagination::{backward_connection, connection, Paging};
use parley_kit::{ApiResult, ErrorCode, ResultExt};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

use super::loaders::{ChatLoader, MembersKey, MembershipKey, MessageKey, SeqKey, UnreadKey};
use crate::error::ChatError;
use crate::error::NOT_A_MEMBER;
use crate::messages::{self, Direction};
use crate::receipts;
use crate::service;
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

impl Chat {
    /// The viewer's membership (a `Chat` is only built for a member; one who left since gets `FORBIDDEN`).
    async fn membership(&self, ctx: &Context<'_>) -> ApiResult<member::Model> {
        let key = MembershipKey {
            chat: self.chat.id,
            user: self.viewer,
        };
        load(ctx, key)
            .await?
            .ok_or_else(|| to_graphql(NOT_A_MEMBER))
    }
}

/// One value through the schema's batched [`ChatLoader`].
async fn load<K>(ctx: &Context<'_>, key: K) -> ApiResult<Option<<ChatLoader as Loader<K>>::Value>>
where
    K: Send + Sync + Clone + Eq + std::hash::Hash + 'static,
    ChatLoader: Loader<K, Error = Arc<ChatError>>,
{
    ctx.data::<DataLoader<ChatLoader>>()?
        .load_one(key)
        .await
        .map_err(|e| to_graphql_arc(&e))
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
        let rows = load(ctx, MembersKey(self.chat.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(|m| user(m.user_id)).collect())
    }

    /// Members with their role.
    async fn memberships(&self, ctx: &Context<'_>) -> ApiResult<Vec<ChatMember>> {
        let rows = load(ctx, MembersKey(self.chat.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(ChatMember).collect())
    }

    async fn last_message(&self, ctx: &Context<'_>) -> ApiResult<Option<Message>> {
        if self.chat.last_seq == 0 {
            return Ok(None);
        }
        let key = SeqKey {
            chat: self.chat.id,
            seq: self.chat.last_seq,
        };
        Ok(load(ctx, key).await?.map(Message::from))
    }

    /// Messages of others the viewer has not read yet.
    async fn unread_count(&self, ctx: &Context<'_>) -> ApiResult<u64> {
        let mine = self.membership(ctx).await?;
        let key = UnreadKey {
            chat: self.chat.id,
            reader: self.viewer,
            after: mine.read_seq,
        };
        Ok(load(ctx, key).await?.unwrap_or(0))
    }

    /// The viewer's own settings.
    async fn my_settings(&self, ctx: &Context<'_>) -> ApiResult<ChatSettings> {
        Ok(ChatSettings(self.membership(ctx).await?))
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
        let paging = Paging::new(first, after, last, before)?;
        let key = |m: &message::Model| vec![m.seq.to_string()];
        let db = db(ctx)?;
        let (viewer, chat) = (self.viewer, self.chat.id);
        match paging {
            Paging::Forward(mut page) => {
                let after = match after_seq {
                    Some(seq) => {
                        page.after = (seq > 0).then(|| vec![seq.to_string()]);
                        seq
                    }
                    None => page.after.as_deref().map(seq_of).transpose()?.unwrap_or(0),
                };
                let direction = Direction::Forward { after };
                let rows = messages::history(db, viewer, chat, direction, page.limit())
                    .await
                    .gql()?;
                Ok(connection(&page, rows, key, Message::from))
            }
            Paging::Backward(_) if after_seq.is_some() => Err(coded(
                ErrorCode::BadUserInput,
                "page forward (first/after/afterSeq) or backward (last/before), not both",
            )),
            Paging::Backward(page) => {
                let before = page.after.as_deref().map(seq_of).transpose()?;
                let direction = Direction::Backward { before };
                let rows = messages::history(db, viewer, chat, direction, page.limit())
                    .await
                    .gql()?;
                Ok(backward_connection(&page, rows, key, Message::from))
            }
        }
    }
}

/// The sequence number a message cursor holds.
fn seq_of(parts: &[String]) -> ApiResult<i64> {
    parts
        .first()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| coded(ErrorCode::BadUserInput, "invalid cursor"))
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
pub struct Message(
    pub message::Model,
    pub Option<UserCard>,
    /// In the live front's stream of a small chat: its members when the message came
    /// ([`crate::live::Audience`]).
    pub Option<Arc<[Uuid]>>,
);

impl From<message::Model> for Message {
    fn from(stored: message::Model) -> Self {
        Message(stored, None, None)
    }
}

impl Message {
    /// A live message from its event payload; `None` for one this code cannot read.
    pub fn live(payload: ChatMessage) -> Option<Self> {
        let (model, author) = service::from_payload(payload).ok()?;
        Some(Message(model, author, None))
    }

    /// The message with the members it is for, for the live front.
    pub fn for_audience(mut self, audience: Option<Arc<[Uuid]>>) -> Self {
        self.2 = audience;
        self
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

    /// The media item of an IMAGE or FILE message (sizes, links), for the chat's members as the message is.
    async fn media(&self) -> Option<parley_kit::known_media::MediaRef> {
        self.0.media_id.map(parley_kit::known_media::MediaRef::new)
    }

    /// For SYSTEM messages: the member the message is about.
    async fn subject(&self) -> Option<User> {
        self.0.subject_id.map(user)
    }

    async fn reply_to(&self, ctx: &Context<'_>) -> ApiResult<Option<Message>> {
        let Some(id) = self.0.reply_to_id else {
            return Ok(None);
        };
        Ok(load(ctx, MessageKey(id)).await?.map(Message::from))
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

    /// For the router's live front alone (`null` for everyone else, and outside its live streams): the
    /// members of a small chat when this message came, in the order of the chat's events, so the front
    /// serves the message to those of its viewers without asking chat. `null` for a chat of more than 100.
    async fn live_audience(&self, ctx: &Context<'_>) -> Option<Vec<ID>> {
        let me = identity(ctx)?.user_id;
        if !crate::live::follows_every_chat(me) {
            return None;
        }
        Some(self.2.as_ref()?.iter().copied().map(to_id).collect())
    }

    /// Members (other than the author) who have read this message.
    async fn read_by(&self, ctx: &Context<'_>) -> ApiResult<Vec<User>> {
        let members = load(ctx, MembersKey(self.0.chat_id))
            .await?
            .unwrap_or_default();
        Ok(receipts::read_by(&members, &self.0)
            .into_iter()
            .map(user)
            .collect())
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
