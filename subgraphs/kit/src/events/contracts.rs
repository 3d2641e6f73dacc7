//! Event payloads: the contract between subgraphs. A producer writes these with [`super::append`]; a consumer
//! reads them with [`super::EventEnvelope::decode`]. Fields are only ever added (consumers ignore unknown ones).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Event names (DESIGN §3).
pub mod kind {
    pub const USER_REGISTERED: &str = "UserRegistered";
    pub const USER_LOGGED_IN: &str = "UserLoggedIn";
    pub const USER_PROFILE_UPDATED: &str = "UserProfileUpdated";
    pub const SUBSCRIPTION_REQUEST_SENT: &str = "SubscriptionRequestSent";
    pub const SUBSCRIPTION_REQUEST_ACCEPTED: &str = "SubscriptionRequestAccepted";
    pub const SUBSCRIPTION_REQUEST_DECLINED: &str = "SubscriptionRequestDeclined";
    pub const SUBSCRIPTION_REMOVED: &str = "SubscriptionRemoved";
    pub const USER_BLOCKED: &str = "UserBlocked";
    pub const USER_UNBLOCKED: &str = "UserUnblocked";
    pub const POST_CREATED: &str = "PostCreated";
    pub const POST_UPDATED: &str = "PostUpdated";
    pub const POST_DELETED: &str = "PostDeleted";
    pub const COMMENT_CREATED: &str = "CommentCreated";
    pub const COMMENT_UPDATED: &str = "CommentUpdated";
    pub const COMMENT_DELETED: &str = "CommentDeleted";
    pub const VOTE_SUBMITTED: &str = "VoteSubmitted";
    pub const VOTE_UPDATED: &str = "VoteUpdated";
    pub const TOPIC_SUBSCRIBED: &str = "TopicSubscribed";
    pub const TOPIC_UNSUBSCRIBED: &str = "TopicUnsubscribed";
    pub const CHAT_CREATED: &str = "ChatCreated";
    pub const CHAT_MEMBER_ADDED: &str = "ChatMemberAdded";
    pub const CHAT_MEMBER_REMOVED: &str = "ChatMemberRemoved";
    pub const MESSAGE_SENT: &str = "MessageSent";
    pub const MESSAGE_EDITED: &str = "MessageEdited";
    pub const MESSAGE_DELETED: &str = "MessageDeleted";
    pub const MESSAGE_RECEIVED: &str = "MessageReceived";
    pub const MESSAGE_READ: &str = "MessageRead";
    /// Ephemeral: published straight to the bus, never stored in an outbox.
    pub const CHAT_TYPING: &str = "ChatTyping";
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub nickname: String,
    /// Absent from events written before profiles travelled with them.
    #[serde(default)]
    pub avatar_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserLoggedIn {
    pub user_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserProfileUpdated {
    pub user_id: Uuid,
    pub nickname: String,
    /// The profile's avatar after the change (absent from events written before it travelled with them).
    #[serde(default)]
    pub avatar_url: Option<String>,
}

/// What other subgraphs show of a user next to their content without asking users: the public card.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserCard {
    pub nickname: String,
    pub avatar_url: Option<String>,
}

/// A follow relation changed: `follower_id` → `followee_id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FollowChanged {
    pub follower_id: Uuid,
    pub followee_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlockChanged {
    pub blocker_id: Uuid,
    pub blocked_id: Uuid,
}

/// A post was created, edited or (soft-)deleted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PostChanged {
    pub post_id: Uuid,
    pub author_id: Uuid,
    pub topic_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub score: i64,
}

/// A comment was created, edited or deleted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommentChanged {
    pub comment_id: Uuid,
    pub post_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub author_id: Uuid,
    /// Who the comment answers: the post's author, or the parent comment's.
    pub post_author_id: Uuid,
    pub parent_author_id: Option<Uuid>,
}

/// A vote was cast, changed or removed (`value` 0); carries the target's new totals.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicSubscriptionChanged {
    pub user_id: Uuid,
    pub topic_id: Uuid,
}

/// A chat was created (`member_ids` includes the creator).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatCreated {
    pub chat_id: Uuid,
    pub kind: String,
    pub creator_id: Uuid,
    pub member_ids: Vec<Uuid>,
}

/// `user_id` joined or left `chat_id` (`by` is who added or removed them; themself when leaving).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatMemberChanged {
    pub chat_id: Uuid,
    pub user_id: Uuid,
    pub by: Uuid,
}

/// A message as sent, edited or deleted: the whole message, so live subscribers need no store read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatReceipt {
    pub chat_id: Uuid,
    pub user_id: Uuid,
    pub message_id: Uuid,
    pub seq: i64,
}

/// A member started or stopped typing; `typing` is true until `expires_at` unless renewed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatTyping {
    pub chat_id: Uuid,
    pub user_id: Uuid,
    pub typing: bool,
    pub expires_at: DateTime<Utc>,
}
