//! The chat subgraph schema: queries, mutations, the live subscriptions, and the types in `types`.

mod loaders;
mod types;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object, Schema, Subscription, ID};
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::stream::SelectAll;
use futures::{Stream, StreamExt};
use parley_kit::auth::{identity, require_identity};
use parley_kit::events::EventEnvelope;
use parley_kit::ids::{parse_id, to_id};
use parley_kit::live::{Delivery, Live};
use parley_kit::pagination::{connection, Page};
use parley_kit::{ApiResult, ResultExt};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::assistant::Assistant;
use crate::chats;
use crate::live::{self, Follower, MessageChange, Seen};
use crate::messages;
use crate::receipts::Marker;
use crate::service::{member_of, ChatService, NewMessage};
use crate::store::member::NotificationLevel;
use crate::store::message;
use crate::typing::Typing;
pub use types::{Chat, ChatEvent, ChatEventKind, ChatMember, ChatSettings, Message, User};

pub type ChatSchema = Schema<Query, Mutation, Subscription>;

pub fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription)
        .enable_federation()
        .enable_subscription_in_federation()
}

pub fn build(
    db: DatabaseConnection,
    service: Arc<ChatService>,
    live: Arc<Live>,
    typing: Arc<Typing>,
    assistant: Option<Arc<Assistant>>,
) -> ChatSchema {
    let mut schema = builder()
        .data(parley_kit::server::loader(types::CardLoader(db.clone())))
        .data(parley_kit::server::loader(loaders::ChatLoader(db.clone())))
        .data(db)
        .data(service)
        .data(live)
        .data(typing);
    if let Some(assistant) = assistant {
        schema = schema.data(assistant);
    }
    schema.finish()
}

fn service<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Arc<ChatService>> {
    ctx.data::<Arc<ChatService>>()
}

fn db<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a DatabaseConnection> {
    ctx.data::<DatabaseConnection>()
}

/// The chat `id` as `viewer` sees it; `FORBIDDEN` for a non-member and for a chat that does not exist.
async fn chat_for(ctx: &Context<'_>, viewer: Uuid, id: Uuid) -> ApiResult<Chat> {
    let (chat, _) = member_of(db(ctx)?, id, viewer).await.gql()?;
    Ok(Chat { chat, viewer })
}

pub struct Query;

#[Object]
impl Query {
    /// The caller's chats, most recently active first.
    async fn chats(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Chat>> {
        let me = require_identity(ctx)?.user_id;
        let page = Page::new(first, after)?;
        let after = match &page.after {
            Some(parts) => Some(activity_cursor(parts)?),
            None => None,
        };
        let rows = chats::list_for(db(ctx)?, me, after, page.limit())
            .await
            .gql()?;
        Ok(connection(
            &page,
            rows,
            |chat| vec![chat.activity.to_string(), chat.id.to_string()],
            |chat| Chat { chat, viewer: me },
        ))
    }

    /// A chat the caller is a member of; `FORBIDDEN` otherwise (whether or not it exists).
    async fn chat(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Chat> {
        let me = require_identity(ctx)?.user_id;
        chat_for(ctx, me, parse_id(&id)?).await
    }

    /// A message of one of the caller's chats.
    async fn message(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Message> {
        let me = require_identity(ctx)?.user_id;
        let found = messages::visible(db(ctx)?, me, parse_id(&id)?)
            .await
            .gql()?;
        Ok(Message::from(found))
    }

    #[graphql(entity)]
    async fn find_chat_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Chat>> {
        let (Some(me), Ok(id)) = (identity(ctx), parse_id(&id)) else {
            return Ok(None);
        };
        Ok(chat_for(ctx, me.user_id, id).await.ok())
    }

    #[graphql(entity)]
    async fn find_message_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Message>> {
        let (Some(me), Ok(id)) = (identity(ctx), parse_id(&id)) else {
            return Ok(None);
        };
        Ok(messages::visible(db(ctx)?, me.user_id, id)
            .await
            .ok()
            .map(Message::from))
    }
}

fn activity_cursor(parts: &[String]) -> ApiResult<(i64, Uuid)> {
    let bad = || parley_kit::error::coded(parley_kit::ErrorCode::BadUserInput, "invalid cursor");
    match parts {
        [activity, id] => Ok((
            activity.parse().map_err(|_| bad())?,
            Uuid::parse_str(id).map_err(|_| bad())?,
        )),
        _ => Err(bad()),
    }
}

#[derive(InputObject)]
pub struct SendMessageInput {
    #[graphql(default_with = "message::Kind::Text")]
    pub kind: message::Kind,
    pub text: Option<String>,
    pub media_id: Option<ID>,
    pub reply_to_id: Option<ID>,
    /// Chosen by the client, unique per chat for its sender: a retried send with the same id returns the
    /// first message instead of sending another.
    pub client_message_id: Option<String>,
}

#[derive(InputObject)]
pub struct ChatSettingsInput {
    /// Mute until then; `null` unmutes.
    pub muted_until: Option<Option<DateTime<Utc>>>,
    pub notification_level: Option<NotificationLevel>,
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// The caller's direct chat with `userId`: created on first use, the same chat every time after.
    async fn create_direct_chat(&self, ctx: &Context<'_>, user_id: ID) -> ApiResult<Chat> {
        let me = require_identity(ctx)?.user_id;
        let chat = service(ctx)?
            .open_direct(me, parse_id(&user_id)?)
            .await
            .gql()?;
        Ok(Chat { chat, viewer: me })
    }

    /// A group with the caller as admin.
    async fn create_group_chat(
        &self,
        ctx: &Context<'_>,
        title: String,
        member_ids: Vec<ID>,
    ) -> ApiResult<Chat> {
        let me = require_identity(ctx)?.user_id;
        crate::chats::check_initial_count(member_ids.len()).gql()?;
        let ids = member_ids
            .iter()
            .map(parse_id)
            .collect::<Result<Vec<_>, _>>()?;
        let chat = service(ctx)?.create_group(me, &title, &ids).await.gql()?;
        Ok(Chat { chat, viewer: me })
    }

    /// Admins only.
    async fn add_chat_member(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        user_id: ID,
    ) -> ApiResult<Chat> {
        let me = require_identity(ctx)?.user_id;
        let chat = service(ctx)?
            .add_member(me, parse_id(&chat_id)?, parse_id(&user_id)?)
            .await
            .gql()?;
        Ok(Chat { chat, viewer: me })
    }

    /// Admins only; members leave with `leaveChat`.
    async fn remove_chat_member(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        user_id: ID,
    ) -> ApiResult<Chat> {
        let me = require_identity(ctx)?.user_id;
        let chat = service(ctx)?
            .remove_member(me, parse_id(&chat_id)?, parse_id(&user_id)?)
            .await
            .gql()?;
        Ok(Chat { chat, viewer: me })
    }

    /// Admins make other members admins (or members again).
    async fn set_chat_admin(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        user_id: ID,
        admin: bool,
    ) -> ApiResult<Chat> {
        let me = require_identity(ctx)?.user_id;
        let chat = service(ctx)?
            .set_admin(me, parse_id(&chat_id)?, parse_id(&user_id)?, admin)
            .await
            .gql()?;
        Ok(Chat { chat, viewer: me })
    }

    async fn leave_chat(&self, ctx: &Context<'_>, chat_id: ID) -> ApiResult<bool> {
        let me = require_identity(ctx)?.user_id;
        service(ctx)?.leave(me, parse_id(&chat_id)?).await.gql()?;
        Ok(true)
    }

    /// The caller's mute and notification settings for a chat.
    async fn update_chat_settings(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        input: ChatSettingsInput,
    ) -> ApiResult<ChatSettings> {
        let me = require_identity(ctx)?.user_id;
        let settings = service(ctx)?
            .update_settings(
                me,
                parse_id(&chat_id)?,
                input.muted_until,
                input.notification_level,
            )
            .await
            .gql()?;
        Ok(ChatSettings(settings))
    }

    async fn send_message(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        input: SendMessageInput,
    ) -> ApiResult<Message> {
        let me = require_identity(ctx)?.user_id;
        let new = NewMessage {
            kind: input.kind,
            text: input.text,
            media_id: input.media_id.as_ref().map(parse_id).transpose()?,
            reply_to_id: input.reply_to_id.as_ref().map(parse_id).transpose()?,
            subject_id: None,
            client_message_id: input.client_message_id,
        };
        let sent = service(ctx)?
            .send(me, parse_id(&chat_id)?, new)
            .await
            .gql()?;
        // The assistant decides whether it is for it (and answers each message once).
        if let Some(assistant) = ctx.data_opt::<Arc<Assistant>>() {
            assistant.heard(sent.clone());
        }
        Ok(Message::from(sent))
    }

    /// The author changes a message's text.
    async fn edit_message(&self, ctx: &Context<'_>, id: ID, text: String) -> ApiResult<Message> {
        let me = require_identity(ctx)?.user_id;
        Ok(Message::from(
            service(ctx)?.edit(me, parse_id(&id)?, &text).await.gql()?,
        ))
    }

    /// `forEveryone` (author only) removes the content and keeps a tombstone; otherwise the message is
    /// hidden from the caller's history only.
    async fn delete_message(
        &self,
        ctx: &Context<'_>,
        id: ID,
        for_everyone: bool,
    ) -> ApiResult<bool> {
        let me = require_identity(ctx)?.user_id;
        service(ctx)?
            .delete(me, parse_id(&id)?, for_everyone)
            .await
            .gql()?;
        Ok(true)
    }

    /// Moves the caller's delivered marker up to `messageId`. Returns whether it moved.
    async fn mark_delivered(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        message_id: ID,
    ) -> ApiResult<bool> {
        let me = require_identity(ctx)?.user_id;
        service(ctx)?
            .mark(
                me,
                parse_id(&chat_id)?,
                parse_id(&message_id)?,
                Marker::Delivered,
            )
            .await
            .gql()
    }

    /// Moves the caller's read marker up to `messageId` (never back). Returns whether it moved.
    async fn mark_read(&self, ctx: &Context<'_>, chat_id: ID, message_id: ID) -> ApiResult<bool> {
        let me = require_identity(ctx)?.user_id;
        service(ctx)?
            .mark(
                me,
                parse_id(&chat_id)?,
                parse_id(&message_id)?,
                Marker::Read,
            )
            .await
            .gql()
    }

    /// Ephemeral: members see it on `chatEvents`; it expires after a few seconds unless renewed.
    async fn set_typing(&self, ctx: &Context<'_>, chat_id: ID, typing: bool) -> ApiResult<bool> {
        let me = require_identity(ctx)?.user_id;
        let chat_id = parse_id(&chat_id)?;
        ctx.data::<Arc<Typing>>()?
            .announce(db(ctx)?, chat_id, me, typing)
            .await
            .gql()?;
        Ok(true)
    }
}

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Each new message of a chat the caller is a member of; ends if the caller leaves or is removed.
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
    ) -> async_graphql::Result<BoxStream<'static, Message>> {
        let me = require_identity(ctx)?.user_id;
        let chat_id = parse_id(&chat_id)?;
        let live = ctx.data::<Arc<Live>>()?;
        // Listen before checking membership: a removal committed just after the check still ends the stream
        // (listening after it could miss the removal's event and keep the stream for good).
        let events = live.keyed_or_gap(&chat_id.to_string());
        let db = db(ctx)?.clone();
        let guard = live.guard();
        // The router's live front follows any chat for the members it serves, each message naming them.
        if live::follows_every_chat(me) {
            return Ok(front_stream(events, db, chat_id, guard).await.boxed());
        }
        member_of(&db, chat_id, me).await.gql()?;
        Ok(events
            .then(move |delivery| {
                let db = db.clone();
                async move {
                    live::member_step(me, delivery, || async {
                        member_of(&db, chat_id, me).await.is_ok()
                    })
                    .await
                }
            })
            .take_while(|step| std::future::ready(!matches!(step, live::Step::End)))
            .filter_map(move |step| {
                let _alive = &guard;
                std::future::ready(match step {
                    live::Step::Show(e) => live::added_message(&e).and_then(Message::live),
                    live::Step::Skip | live::Step::End => None,
                })
            })
            .boxed())
    }

    /// Everything that happens in the caller's chats: messages, edits, deletions, receipts, typing and
    /// membership changes (chats joined later included).
    async fn chat_events(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = ChatEvent>> {
        let me = require_identity(ctx)?.user_id;
        let live = ctx.data::<Arc<Live>>()?.clone();
        // The caller's chats' topics, plus the caller's own for chats they join; a chat joined later is
        // followed from then on. The caller's own is listened to before their chats are read, so a chat
        // joined in between is not missed.
        let mut topics = SelectAll::new();
        topics.push(live.keyed_or_gap(&live::user_topic(me)).boxed());
        let db = db(ctx)?.clone();
        let mine: HashSet<Uuid> = chats::chat_ids_of(&db, me)
            .await
            .gql()?
            .into_iter()
            .collect();
        for chat in &mine {
            topics.push(live.keyed_or_gap(&chat.to_string()).boxed());
        }
        let state = ChatEventsState {
            topics,
            db,
            follower: Follower::new(me, mine),
            seen: VecDeque::new(),
            _guard: live.guard(),
            live,
        };
        Ok(futures::stream::unfold(
            state,
            move |mut state| async move {
                loop {
                    let event = match state.topics.next().await? {
                        Delivery::Event(event) => event,
                        // Skipped events may have added or removed the caller: the store says which chats
                        // are theirs now (a chat joined meanwhile gets its topic).
                        Delivery::Gap => {
                            let now = chats::chat_ids_of(&state.db, me).await.ok()?;
                            for chat in &now {
                                if !state.follower.follows(*chat) {
                                    state
                                        .topics
                                        .push(state.live.keyed_or_gap(&chat.to_string()).boxed());
                                }
                            }
                            state.follower.reset(now.into_iter().collect());
                            continue;
                        }
                    };
                    // An event about the caller in one of their chats comes on both topics.
                    if state.seen.contains(&event.id) {
                        continue;
                    }
                    if state.seen.len() == 64 {
                        state.seen.pop_front();
                    }
                    state.seen.push_back(event.id);
                    let Ok(chat) = Uuid::parse_str(&event.aggregate_id) else {
                        continue;
                    };
                    let followed = state.follower.follows(chat);
                    let seen = state.follower.see(chat, &event);
                    if !followed && state.follower.follows(chat) {
                        state
                            .topics
                            .push(state.live.keyed_or_gap(&event.aggregate_id).boxed());
                    }
                    if let Some(out) = seen.and_then(|seen| chat_event(chat, &event, seen)) {
                        return Some((out, state));
                    }
                }
            },
        ))
    }
}

/// What a `chatEvents` subscription holds while open.
struct ChatEventsState {
    topics: SelectAll<futures::stream::BoxStream<'static, Delivery>>,
    db: DatabaseConnection,
    follower: Follower,
    seen: VecDeque<Uuid>,
    live: Arc<Live>,
    /// Counts the subscription while it is open.
    _guard: parley_kit::live::Guard,
}

/// The `ChatEvent` of what the follower was shown.
fn chat_event(chat: Uuid, e: &EventEnvelope, seen: Seen) -> Option<ChatEvent> {
    let event = |kind, user: Option<Uuid>| ChatEvent {
        kind,
        chat_id: to_id(chat),
        message: None,
        user: user.map(types::user),
        seq: None,
        typing: None,
        at: e.occurred_at,
    };
    Some(match seen {
        Seen::ChatCreated { creator } => event(ChatEventKind::ChatCreated, Some(creator)),
        Seen::MemberAdded { user } => event(ChatEventKind::MemberAdded, Some(user)),
        Seen::MemberRemoved { user } => event(ChatEventKind::MemberRemoved, Some(user)),
        Seen::Message { change, message } => {
            let kind = match change {
                MessageChange::Added => ChatEventKind::MessageAdded,
                MessageChange::Edited => ChatEventKind::MessageEdited,
                MessageChange::Deleted => ChatEventKind::MessageDeleted,
            };
            let (author, seq) = (message.author_id, message.seq);
            ChatEvent {
                seq: Some(seq),
                message: Some(Message::live(*message)?),
                ..event(kind, Some(author))
            }
        }
        Seen::Receipt { marker, user, seq } => {
            let kind = match marker {
                Marker::Delivered => ChatEventKind::Delivered,
                Marker::Read => ChatEventKind::Read,
            };
            ChatEvent {
                seq: Some(seq),
                ..event(kind, Some(user))
            }
        }
        Seen::Typing { user, typing } => ChatEvent {
            typing: Some(typing),
            ..event(ChatEventKind::Typing, Some(user))
        },
    })
}

/// The live front's stream of `chat`'s messages, each naming its audience ([`live::Audience`]): the members
/// are read once after listening (and again after skipped events), then followed event by event.
async fn front_stream(
    events: impl Stream<Item = Delivery> + Send + 'static,
    db: DatabaseConnection,
    chat: Uuid,
    guard: impl Send + 'static,
) -> impl Stream<Item = Message> + Send + 'static {
    let read = move |db: DatabaseConnection| async move {
        let limit = u64::try_from(live::Audience::MAX + 1).unwrap_or(u64::MAX);
        chats::member_ids(&db, chat, limit).await.ok()
    };
    let audience = live::Audience::from_store(read(db.clone()).await);
    futures::stream::unfold(
        (events.boxed(), audience, guard),
        move |(mut events, mut audience, guard)| {
            let db = db.clone();
            async move {
                loop {
                    match events.next().await? {
                        Delivery::Event(e) => {
                            audience.follow(&e);
                            let message = live::added_message(&e).and_then(Message::live);
                            if let Some(message) = message {
                                let message = message.for_audience(audience.listing());
                                return Some((message, (events, audience, guard)));
                            }
                        }
                        Delivery::Gap => {
                            audience = live::Audience::from_store(read(db.clone()).await)
                        }
                    }
                }
            }
        },
    )
}
