//! The GraphQL types: `Notification` (owned here), settings, and the references to what other subgraphs own
//! (`User`, `Post`, `Comment`, `Chat`, `Message`), which the router resolves at their owners — each applying
//! its own visibility rule, so a reference to something the recipient may no longer see comes back null.

use async_graphql::{InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use parley_kit::ids::to_id;
use parley_kit::refs::{ChatRef, CommentRef, MessageRef, PostRef, UserRef};

use crate::kinds::{NotificationChannel, NotificationKind};
use crate::notify;
use crate::preferences::Setting;
use crate::store::notification;

/// Something that happened that concerns you: events of one kind on one target, grouped while unread
/// ("alice and 3 others commented on your post").
pub struct Notification(pub notification::Model);

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    async fn kind(&self) -> async_graphql::Result<NotificationKind> {
        NotificationKind::parse(&self.0.kind).ok_or_else(|| {
            parley_kit::error::coded(parley_kit::ErrorCode::Internal, "unknown notification kind")
        })
    }

    /// Who did it, newest first (at most 5; `count` says how many events there were). Empty for a vote
    /// milestone: votes are not public.
    async fn actors(&self) -> Vec<UserRef> {
        notify::actors(&self.0)
            .into_iter()
            .map(UserRef::new)
            .collect()
    }

    /// Events grouped into this notification (messages, for MESSAGE).
    async fn count(&self) -> i64 {
        self.0.count
    }

    async fn read(&self) -> bool {
        self.0.read_at.is_some()
    }

    /// The post concerned (COMMENT, REPLY, MENTION in a post or comment, VOTE_MILESTONE).
    async fn post(&self) -> Option<PostRef> {
        self.0.post_id.map(PostRef::new)
    }

    /// The newest comment concerned.
    async fn comment(&self) -> Option<CommentRef> {
        self.0.comment_id.map(CommentRef::new)
    }

    /// The chat concerned (MESSAGE, CHAT_INVITE, MENTION in a message).
    async fn chat(&self) -> Option<ChatRef> {
        self.0.chat_id.map(ChatRef::new)
    }

    /// The newest message concerned.
    async fn message(&self) -> Option<MessageRef> {
        self.0.message_id.map(MessageRef::new)
    }

    /// VOTE_MILESTONE: the score reached (10, 100 or 1,000).
    async fn milestone(&self) -> Option<i32> {
        self.0.milestone
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the latest event was grouped in.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// One kind on one channel.
#[derive(SimpleObject)]
pub struct NotificationSetting {
    pub kind: NotificationKind,
    pub channel: NotificationChannel,
    pub enabled: bool,
}

/// Every kind × channel, defaults filled in.
#[derive(SimpleObject)]
pub struct NotificationSettings {
    pub entries: Vec<NotificationSetting>,
}

impl NotificationSettings {
    pub fn of(settings: Vec<Setting>) -> Self {
        Self {
            entries: settings
                .into_iter()
                .map(|s| NotificationSetting {
                    kind: s.kind,
                    channel: s.channel,
                    enabled: s.enabled,
                })
                .collect(),
        }
    }
}

/// Turns one kind on one channel on or off.
#[derive(InputObject)]
pub struct NotificationSettingsInput {
    pub kind: NotificationKind,
    pub channel: NotificationChannel,
    pub enabled: bool,
}

/// A browser's or device's push subscription, as the Push API gives it (`PushSubscription.toJSON()`):
/// the push service's URL and the keys (base64url) the payload is encrypted to.
#[derive(InputObject)]
pub struct PushSubscriptionInput {
    pub endpoint: String,
    #[graphql(name = "p256dh")]
    pub p256dh: String,
    pub auth: String,
}
