//! What a notification can be about and where it can go: the kinds, the channels, and which channels each
//! kind uses until its recipient says otherwise.

use async_graphql::Enum;
use serde::{Deserialize, Serialize};

/// What happened (DESIGN §6 `NotificationKind`); stored by name.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationKind {
    /// Someone commented on your post.
    Comment,
    /// Someone replied to your comment.
    Reply,
    /// Someone `@mentioned` you in a post, comment or message.
    Mention,
    /// Your post or comment reached a score of 10, 100 or 1,000.
    VoteMilestone,
    /// Someone followed you.
    Follow,
    /// Someone asks to follow your private account.
    FollowRequest,
    /// Someone accepted your follow request.
    FollowAccepted,
    /// Messages in a chat arrived while you were away (one notification per chat, counting them).
    Message,
    /// Someone added you to a group chat.
    ChatInvite,
    /// Something about your subscription: a payment failed, money was refunded, the subscription ended.
    Billing,
}

/// Where a notification is delivered.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationChannel {
    /// The list, the unread count and `notificationAdded`.
    InApp,
    /// The digest mail.
    Email,
    /// Web Push to the recipient's registered browsers and devices.
    Push,
}

pub const KINDS: [NotificationKind; 10] = [
    NotificationKind::Comment,
    NotificationKind::Reply,
    NotificationKind::Mention,
    NotificationKind::VoteMilestone,
    NotificationKind::Follow,
    NotificationKind::FollowRequest,
    NotificationKind::FollowAccepted,
    NotificationKind::Message,
    NotificationKind::ChatInvite,
    NotificationKind::Billing,
];

pub const CHANNELS: [NotificationChannel; 3] = [
    NotificationChannel::InApp,
    NotificationChannel::Email,
    NotificationChannel::Push,
];

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Comment => "COMMENT",
            NotificationKind::Reply => "REPLY",
            NotificationKind::Mention => "MENTION",
            NotificationKind::VoteMilestone => "VOTE_MILESTONE",
            NotificationKind::Follow => "FOLLOW",
            NotificationKind::FollowRequest => "FOLLOW_REQUEST",
            NotificationKind::FollowAccepted => "FOLLOW_ACCEPTED",
            NotificationKind::Message => "MESSAGE",
            NotificationKind::ChatInvite => "CHAT_INVITE",
            NotificationKind::Billing => "BILLING",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        KINDS.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether `channel` is on for this kind until the recipient changes it: everything in-app; by mail
    /// and push what a person waits for (what others said to or about them, requests, invitations), not
    /// scores and new followers, which would make the digest noise.
    pub fn on_by_default(self, channel: NotificationChannel) -> bool {
        match channel {
            NotificationChannel::InApp => true,
            NotificationChannel::Email | NotificationChannel::Push => !matches!(
                self,
                NotificationKind::VoteMilestone
                    | NotificationKind::Follow
                    | NotificationKind::FollowAccepted
            ),
        }
    }

    /// What the digest and the push say, after the actors' names.
    pub fn phrase(self) -> &'static str {
        match self {
            NotificationKind::Comment => "commented on your post",
            NotificationKind::Reply => "replied to your comment",
            NotificationKind::Mention => "mentioned you",
            NotificationKind::VoteMilestone => "Your content reached a score milestone",
            NotificationKind::Follow => "followed you",
            NotificationKind::FollowRequest => "asked to follow you",
            NotificationKind::FollowAccepted => "accepted your follow request",
            NotificationKind::Message => "sent you messages",
            NotificationKind::ChatInvite => "added you to a group chat",
            NotificationKind::Billing => "Your subscription changed",
        }
    }
}

impl NotificationChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationChannel::InApp => "IN_APP",
            NotificationChannel::Email => "EMAIL",
            NotificationChannel::Push => "PUSH",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        CHANNELS.into_iter().find(|c| c.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_defaults_keep_in_app_on() {
        for kind in KINDS {
            assert_eq!(NotificationKind::parse(kind.as_str()), Some(kind));
            assert!(kind.on_by_default(NotificationChannel::InApp));
        }
        for channel in CHANNELS {
            assert_eq!(NotificationChannel::parse(channel.as_str()), Some(channel));
        }
        assert!(!NotificationKind::VoteMilestone.on_by_default(NotificationChannel::Email));
        assert!(NotificationKind::Comment.on_by_default(NotificationChannel::Email));
    }
}
