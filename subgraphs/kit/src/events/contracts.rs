//! The event contract between subgraphs: one Rust type per event kind, its wire name and producer tied to it
//! by [`Event`], so a producer cannot append a payload under the wrong name and a consumer matches on types.
//!
//! Layout: [`Event`] and [`EventKind`]; the payloads (fields are only ever added: consumers ignore unknown
//! ones); the kinds that share a payload as newtypes over it ([`PostCreated`]`(`[`PostChanged`]`)`, …); the
//! table of every kind with its wire name and producer ([`ALL`]); [`Consumed`] and the [`consumed!`] macro,
//! with which a consumer declares the one enum of the events it applies.
//!
//! Wire names are the product brief's event names. The follow events keep the names the product brief gave them
//! (`SubscriptionRequestSent` …) on the wire; their Rust types say what they are (`FollowRequested` …).

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::EventEnvelope;

/// One kind of event: the name it travels under and the subgraph that produces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKind {
    /// The wire name, e.g. `UserRegistered`.
    pub name: &'static str,
    /// The producing subgraph, whose stream or feed carries it.
    pub source: &'static str,
}

/// A payload type and the one kind it is written under.
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: EventKind;
}

/// A payload that does not decode as the type its kind names.
#[derive(Debug, Clone, thiserror::Error)]
#[error("bad {kind} payload: {reason}")]
pub struct DecodeError {
    pub kind: String,
    pub reason: String,
}

impl EventEnvelope {
    /// Whether this envelope carries an `E`.
    pub fn is<E: Event>(&self) -> bool {
        self.kind == E::KIND.name
    }

    /// The payload as an `E`, if this envelope is one.
    pub fn decode<E: Event>(&self) -> Result<Option<E>, DecodeError> {
        if !self.is::<E>() {
            return Ok(None);
        }
        E::deserialize(&self.payload)
            .map(Some)
            .map_err(|e| DecodeError {
                kind: self.kind.clone(),
                reason: e.to_string(),
            })
    }
}

/// The events one consumer applies, as one enum (see [`consumed!`]): its kinds are what the registry
/// subscribes the domain to, so the two cannot disagree.
pub trait Consumed: Sized + Send + 'static {
    /// Every kind the enum has a variant for.
    const KINDS: &'static [EventKind];
    /// The envelope as a variant; `None` for a kind the consumer does not apply.
    fn decode(envelope: &EventEnvelope) -> Result<Option<Self>, DecodeError>;
}

/// A consumer of no events.
#[derive(Debug)]
pub enum NoEvents {}

impl Consumed for NoEvents {
    const KINDS: &'static [EventKind] = &[];
    fn decode(_: &EventEnvelope) -> Result<Option<Self>, DecodeError> {
        Ok(None)
    }
}

/// Declares the enum of the events a consumer applies, one variant per event type of this module:
/// `consumed! { pub enum FeedEvent { PostCreated, FollowAccepted } }`.
#[macro_export]
macro_rules! consumed {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($kind:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug)]
        // Variants are named after the event types, which may share a prefix (`UserBlocked`, `UserUnblocked`).
        #[allow(clippy::enum_variant_names)]
        $vis enum $name {
            $($kind($crate::events::contracts::$kind),)+
        }

        impl $crate::events::contracts::Consumed for $name {
            const KINDS: &'static [$crate::events::contracts::EventKind] =
                &[$(<$crate::events::contracts::$kind as $crate::events::contracts::Event>::KIND,)+];

            fn decode(
                envelope: &$crate::events::EventEnvelope,
            ) -> Result<Option<Self>, $crate::events::contracts::DecodeError> {
                $(
                    if let Some(event) = envelope.decode::<$crate::events::contracts::$kind>()? {
                        return Ok(Some(Self::$kind(event)));
                    }
                )+
                Ok(None)
            }
        }
    };
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub nickname: String,
    /// Absent from events written before profiles travelled with them.
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// The display name and bio (what search finds a user by besides the nickname; absent from older events).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub bio: Option<String>,
    /// The OpenID Connect provider the account was made with (its configured name); absent for email and
    /// password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UserLoggedIn {
    pub user_id: Uuid,
    /// The OpenID Connect provider signed in with; absent for email and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// A user proved they own their address (the verification link): the one event that carries it, for
/// notifications' digest mails (the only consumer; it keeps nothing else of it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EmailVerified {
    pub user_id: Uuid,
    pub email: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UserProfileUpdated {
    pub user_id: Uuid,
    pub nickname: String,
    /// The profile's avatar after the change (absent from events written before it travelled with them).
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// The display name and bio after the change (absent from older events).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub bio: Option<String>,
}

/// What other subgraphs show of a user next to their content without asking users: the public card.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserCard {
    pub nickname: String,
    pub avatar_url: Option<String>,
}

/// A follow relation changed: `follower_id` → `followee_id`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FollowChanged {
    pub follower_id: Uuid,
    pub followee_id: Uuid,
}

/// An account went private (`private`) or public again: its content and lists are then for itself, its
/// approved followers and staff only, or for everyone.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AccountPrivacyChanged {
    pub user_id: Uuid,
    pub private: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BlockChanged {
    pub blocker_id: Uuid,
    pub blocked_id: Uuid,
}

/// A post was created, edited or (soft-)deleted.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PostChanged {
    pub post_id: Uuid,
    pub author_id: Uuid,
    pub topic_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub score: i64,
    /// Nicknames `@mentioned` in the title or body ([`crate::mentions::nicknames`]; absent from older events).
    #[serde(default)]
    pub mentions: Vec<String>,
    /// The text, tags and topic name as they are after the change (what search indexes; absent from older
    /// events).
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub topic: Option<String>,
}

/// A comment was created, edited or deleted.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CommentChanged {
    pub comment_id: Uuid,
    pub post_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub author_id: Uuid,
    /// Who the comment answers: the post's author, or the parent comment's.
    pub post_author_id: Uuid,
    pub parent_author_id: Option<Uuid>,
    /// Nicknames `@mentioned` in the body ([`crate::mentions::nicknames`]; absent from older events).
    #[serde(default)]
    pub mentions: Vec<String>,
    /// The text after the change, when it was written and its score (what search indexes; absent from
    /// older events).
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub score: i64,
    /// Where the comment sits in its thread (its materialised path, and depth): with the fields above, a new
    /// comment whole, so live subscribers build it from the event instead of reading it once each (absent
    /// from older events).
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub depth: i32,
}

/// A vote was cast, changed or removed (`value` 0); carries the target's new totals.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VoteCast {
    pub user_id: Uuid,
    pub target_id: Uuid,
    /// `post` or `comment`.
    pub target_kind: String,
    /// The post the target belongs to (the target itself for a post).
    pub post_id: Uuid,
    pub value: i16,
    pub score: i64,
    pub upvotes: i64,
    pub downvotes: i64,
}

/// An upload's bytes passed the checks (`MediaUploaded`; an image is then processed), it can be used
/// (`MediaProcessed`: READY, every variant stored), or its owner deleted it (`MediaDeleted`).
/// `kind` is `IMAGE`, `VIDEO`, `AUDIO` or `FILE`; `purpose` is `avatar`, `post` or `message`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MediaChanged {
    pub media_id: Uuid,
    pub owner_id: Uuid,
    pub purpose: String,
    pub kind: String,
    pub mime: String,
    /// An avatar's lasting signed link to its SMALL size (what `User.avatarUrl` shows); none otherwise.
    #[serde(default)]
    pub link: Option<String>,
}

/// An upload was refused after its bytes were taken (an image that does not decode, an animation over its
/// limits, processing given up after its attempts): FAILED, nothing kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MediaFailed {
    pub media: MediaChanged,
    /// Client-safe: what was wrong with the file.
    pub reason: String,
}

/// An upload was put to use (sent in a message, attached to a post, made an avatar): media then keeps it
/// when it sweeps uploads nobody used within a day. `holder_id`: the message, post or user.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MediaUse {
    pub media_id: Uuid,
    pub holder_id: Uuid,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TopicSubscriptionChanged {
    pub user_id: Uuid,
    pub topic_id: Uuid,
}

/// A chat was created (`member_ids` includes the creator).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChatCreated {
    pub chat_id: Uuid,
    pub kind: String,
    pub creator_id: Uuid,
    pub member_ids: Vec<Uuid>,
}

/// `user_id` joined or left `chat_id` (`by` is who added or removed them; themself when leaving).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChatMemberChanged {
    pub chat_id: Uuid,
    pub user_id: Uuid,
    pub by: Uuid,
}

/// A message as sent, edited or deleted: the whole message, so live subscribers need no store read.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChatMessage {
    pub message_id: Uuid,
    pub chat_id: Uuid,
    pub seq: i64,
    pub author_id: Uuid,
    pub kind: String,
    pub text: Option<String>,
    pub media_id: Option<Uuid>,
    pub reply_to_id: Option<Uuid>,
    /// For SYSTEM messages: the member the message is about.
    pub subject_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// The author's card when the event was written, so live subscribers get `author { nickname avatarUrl }`
    /// from chat itself (absent from older events, and for an author chat did not know yet).
    #[serde(default)]
    pub author: Option<UserCard>,
}

/// A member's delivered or read marker moved forward to `seq`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChatReceipt {
    pub chat_id: Uuid,
    pub user_id: Uuid,
    pub message_id: Uuid,
    pub seq: i64,
}

/// A member started or stopped typing; `typing` is true until `expires_at` unless renewed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChatTyping {
    pub chat_id: Uuid,
    pub user_id: Uuid,
    pub typing: bool,
    pub expires_at: DateTime<Utc>,
}

/// The chat assistant answered `user_id` in a chat (or refused: not entitled, over a limit, or the provider
/// failed): what it cost, for analytics and budgets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AssistantAnswered {
    pub user_id: Uuid,
    pub chat_id: Uuid,
    /// The assistant's message.
    pub message_id: Uuid,
    /// `ANSWERED`, `NOT_ENTITLED`, `RATE_LIMITED`, `BUDGET_SPENT` or `FAILED`.
    pub outcome: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// A member changed their own settings of a chat: muted until a time (none: not muted), and which messages
/// notify them (`ALL`, `MENTIONS`, `NONE`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChatSettingsChanged {
    pub chat_id: Uuid,
    pub user_id: Uuid,
    pub muted_until: Option<DateTime<Utc>>,
    pub level: String,
}

/// A notification was made or grew (another event folded into it): its recipient, kind
/// (`COMMENT`, `MESSAGE`, …) and how many events it now counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NotificationChanged {
    pub notification_id: Uuid,
    pub recipient_id: Uuid,
    pub kind: String,
    pub count: i64,
}

/// A notification went out on a channel (`EMAIL` or `PUSH`) to its recipient.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NotificationSent {
    pub notification_id: Uuid,
    pub recipient_id: Uuid,
    pub channel: String,
}

/// Billing's word on a user's subscription: its plan, status and the plan's limits (the enforcing domains'
/// entitlements projection, [`crate::entitlements`], applies it). Aggregate: the user.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BillingSubscriptionState {
    pub subscription_id: Uuid,
    pub user_id: Uuid,
    /// `FREE`, `PLUS` or `PRO`.
    pub plan_code: String,
    pub plan_id: String,
    /// `INCOMPLETE`, `ACTIVE`, `PAST_DUE` or `CANCELED`.
    pub status: String,
    pub limits: crate::entitlements::Limits,
    pub current_period_end: Option<DateTime<Utc>>,
}

/// A payment attempt's outcome. `failure_code` (e.g. `card_declined`) when it failed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PaymentOutcome {
    pub payment_id: Uuid,
    pub user_id: Uuid,
    pub subscription_id: Uuid,
    pub invoice_id: Uuid,
    pub amount_cents: i64,
    pub currency: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
}

/// Kinds whose payload another kind shares: a newtype each, the same JSON on the wire.
macro_rules! newtypes {
    ($($(#[$meta:meta])* $kind:ident($payload:ty);)+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
            #[serde(transparent)]
            pub struct $kind(pub $payload);

            impl std::ops::Deref for $kind {
                type Target = $payload;
                fn deref(&self) -> &$payload {
                    &self.0
                }
            }
        )+
    };
}

newtypes! {
    /// A follow was requested of a private account (`follower_id` asks `followee_id`).
    FollowRequested(FollowChanged);
    /// A follow began: a public account followed, or a request accepted.
    FollowAccepted(FollowChanged);
    FollowDeclined(FollowChanged);
    /// A follow ended: unfollowed, follower removed, or cut by a block.
    FollowRemoved(FollowChanged);
    UserBlocked(BlockChanged);
    UserUnblocked(BlockChanged);
    PostCreated(PostChanged);
    PostUpdated(PostChanged);
    /// Soft-deleted.
    PostDeleted(PostChanged);
    CommentCreated(CommentChanged);
    CommentUpdated(CommentChanged);
    CommentDeleted(CommentChanged);
    /// A first vote by this user on the target.
    VoteSubmitted(VoteCast);
    /// A vote changed or removed (`value` 0).
    VoteUpdated(VoteCast);
    TopicSubscribed(TopicSubscriptionChanged);
    TopicUnsubscribed(TopicSubscriptionChanged);
    ChatMemberAdded(ChatMemberChanged);
    ChatMemberRemoved(ChatMemberChanged);
    MessageSent(ChatMessage);
    MessageEdited(ChatMessage);
    MessageDeleted(ChatMessage);
    /// The assistant's answer so far, as it is written (live only, like typing: never stored, published
    /// straight to the bus for live streams; the finished answer is a `MessageEdited`).
    AssistantDraft(ChatMessage);
    /// A member's delivered marker moved.
    MessageReceived(ChatReceipt);
    MediaUploaded(MediaChanged);
    MessageMediaAttached(MediaUse);
    PostMediaAttached(MediaUse);
    AvatarAttached(MediaUse);
    MediaProcessed(MediaChanged);
    MediaDeleted(MediaChanged);
    MessageRead(ChatReceipt);
    NotificationCreated(NotificationChanged);
    /// Another event folded into an unread notification (its count and actors changed).
    NotificationGrouped(NotificationChanged);
    /// A subscription was paid for the first time: its plan's entitlements begin.
    BillingSubscriptionStarted(BillingSubscriptionState);
    /// Plan or status changed (an upgrade, a downgrade taking effect, PAST_DUE, back to ACTIVE).
    BillingSubscriptionChanged(BillingSubscriptionState);
    /// Ended: entitlements fall back to FREE.
    BillingSubscriptionCanceled(BillingSubscriptionState);
    PaymentSucceeded(PaymentOutcome);
    PaymentFailed(PaymentOutcome);
    /// Money given back: a payment for something that could no longer happen (compensation).
    PaymentRefunded(PaymentOutcome);
}

/// Ties each type to its wire name and producer, and lists them all.
macro_rules! kinds {
    ($($kind:ident = $name:literal from $source:literal;)+) => {
        $(
            impl Event for $kind {
                const KIND: EventKind = EventKind { name: $name, source: $source };
            }
        )+

        /// Every event kind there is.
        pub const ALL: &[EventKind] = &[$(<$kind as Event>::KIND,)+];

        /// A payload of kind `name` with every field at its default (for tests that feed every kind to
        /// every consumer).
        pub fn sample(name: &str) -> Option<serde_json::Value> {
            $(
                if name == $name {
                    return serde_json::to_value($kind::default()).ok();
                }
            )+
            None
        }
    };
}

kinds! {
    UserRegistered = "UserRegistered" from "users";
    UserLoggedIn = "UserLoggedIn" from "users";
    UserProfileUpdated = "UserProfileUpdated" from "users";
    FollowRequested = "SubscriptionRequestSent" from "social";
    FollowAccepted = "SubscriptionRequestAccepted" from "social";
    FollowDeclined = "SubscriptionRequestDeclined" from "social";
    FollowRemoved = "SubscriptionRemoved" from "social";
    UserBlocked = "UserBlocked" from "social";
    UserUnblocked = "UserUnblocked" from "social";
    AccountPrivacyChanged = "AccountPrivacyChanged" from "social";
    PostCreated = "PostCreated" from "posts";
    PostUpdated = "PostUpdated" from "posts";
    PostDeleted = "PostDeleted" from "posts";
    CommentCreated = "CommentCreated" from "posts";
    CommentUpdated = "CommentUpdated" from "posts";
    CommentDeleted = "CommentDeleted" from "posts";
    VoteSubmitted = "VoteSubmitted" from "posts";
    VoteUpdated = "VoteUpdated" from "posts";
    TopicSubscribed = "TopicSubscribed" from "posts";
    TopicUnsubscribed = "TopicUnsubscribed" from "posts";
    ChatCreated = "ChatCreated" from "chat";
    ChatMemberAdded = "ChatMemberAdded" from "chat";
    ChatMemberRemoved = "ChatMemberRemoved" from "chat";
    MessageSent = "MessageSent" from "chat";
    MessageEdited = "MessageEdited" from "chat";
    MessageDeleted = "MessageDeleted" from "chat";
    MessageReceived = "MessageReceived" from "chat";
    MessageRead = "MessageRead" from "chat";
    ChatTyping = "ChatTyping" from "chat";
    MediaUploaded = "MediaUploaded" from "media";
    MediaProcessed = "MediaProcessed" from "media";
    MediaFailed = "MediaFailed" from "media";
    MediaDeleted = "MediaDeleted" from "media";
    MessageMediaAttached = "MessageMediaAttached" from "chat";
    PostMediaAttached = "PostMediaAttached" from "posts";
    AvatarAttached = "AvatarAttached" from "users";
    EmailVerified = "EmailVerified" from "users";
    ChatSettingsChanged = "ChatSettingsChanged" from "chat";
    AssistantAnswered = "AssistantAnswered" from "chat";
    AssistantDraft = "AssistantDraft" from "chat";
    NotificationCreated = "NotificationCreated" from "notifications";
    NotificationGrouped = "NotificationGrouped" from "notifications";
    NotificationSent = "NotificationSent" from "notifications";
    BillingSubscriptionStarted = "BillingSubscriptionStarted" from "billing";
    BillingSubscriptionChanged = "BillingSubscriptionChanged" from "billing";
    BillingSubscriptionCanceled = "BillingSubscriptionCanceled" from "billing";
    PaymentSucceeded = "PaymentSucceeded" from "billing";
    PaymentFailed = "PaymentFailed" from "billing";
    PaymentRefunded = "PaymentRefunded" from "billing";
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_kind_has_one_wire_name() {
        let names: HashSet<_> = ALL.iter().map(|k| k.name).collect();
        assert_eq!(names.len(), ALL.len(), "two types share a wire name");
    }

    #[test]
    fn a_newtype_travels_as_its_payload() {
        let pair = FollowChanged {
            follower_id: Uuid::now_v7(),
            followee_id: Uuid::now_v7(),
        };
        let json = serde_json::to_value(FollowAccepted(pair.clone())).expect("json");
        assert_eq!(json, serde_json::to_value(&pair).expect("json"));
    }

    consumed! {
        enum Sample { UserBlocked, PostCreated }
    }

    fn envelope(kind: &str, payload: serde_json::Value) -> EventEnvelope {
        EventEnvelope {
            position: 1,
            id: Uuid::now_v7(),
            source: "test".into(),
            kind: kind.into(),
            aggregate_id: "x".into(),
            occurred_at: Utc::now(),
            payload,
        }
    }

    #[test]
    fn a_consumer_decodes_its_kinds_skips_others_and_refuses_bad_payloads() {
        assert_eq!(
            Sample::KINDS,
            [UserBlocked::KIND, PostCreated::KIND].as_slice()
        );
        let block = BlockChanged {
            blocker_id: Uuid::now_v7(),
            blocked_id: Uuid::now_v7(),
        };
        let event = envelope("UserBlocked", serde_json::to_value(&block).expect("json"));
        assert!(matches!(Sample::decode(&event), Ok(Some(Sample::UserBlocked(b))) if b.0 == block));
        let other = envelope("UserLoggedIn", serde_json::json!({}));
        assert!(matches!(Sample::decode(&other), Ok(None)));
        let post = PostChanged::default();
        let event = envelope("PostCreated", serde_json::to_value(&post).expect("json"));
        assert!(matches!(Sample::decode(&event), Ok(Some(Sample::PostCreated(p))) if p.0 == post));
        let bad = envelope("PostCreated", serde_json::json!({ "post_id": 7 }));
        assert!(Sample::decode(&bad).is_err());
    }
}
