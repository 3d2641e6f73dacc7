//! Who sees which live event: the rules behind `messageAdded(chatId)` and `chatEvents`, kept out of the
//! schema layer. Chat content is for current members only: a member follows a chat's events from the moment
//! they join (the join itself included) until they leave or are removed (the removal included); nobody sees
//! their own typing.
//!
//! The router's live front follows a chat's messages for all its members at once ([`follows_every_chat`]);
//! each message names the members of a small chat as the chat's events went ([`Audience`]).
//!
//! Events reach the live streams on topics: each chat's id, plus `user:<id>` for the users a membership
//! change concerns ([`user_topics`]), so a member's `chatEvents` learns of a chat the moment they join it.

use std::collections::HashSet;
use std::sync::Arc;

use parley_kit::events::contracts::{ChatMemberRemoved, ChatMessage, MessageSent};
use parley_kit::events::{Consumed, EventEnvelope};
use parley_kit::live::{Delivery, SharedEvent};
use uuid::Uuid;

use crate::receipts::Marker;

parley_kit::consumed! {
    /// Chat's own events as its live streams read them off the bus.
    enum LiveEvent {
        ChatCreated, ChatMemberAdded, ChatMemberRemoved, MessageSent, MessageEdited, MessageDeleted,
        MessageReceived, MessageRead, ChatTyping, AssistantDraft,
    }
}

/// What happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageChange {
    Added,
    Edited,
    Deleted,
}

/// What a member is shown of one event in one of their chats.
#[derive(Debug, PartialEq)]
pub enum Seen {
    ChatCreated {
        creator: Uuid,
    },
    MemberAdded {
        user: Uuid,
    },
    MemberRemoved {
        user: Uuid,
    },
    Message {
        change: MessageChange,
        message: Box<ChatMessage>,
    },
    Receipt {
        marker: Marker,
        user: Uuid,
        seq: i64,
    },
    Typing {
        user: Uuid,
        typing: bool,
    },
}

/// The live topic of the events concerning `user` beyond their chats' own.
pub fn user_topic(user: Uuid) -> String {
    format!("user:{user}")
}

/// The users an event concerns beyond its chat's members (those joining or leaving it): the live
/// dispatcher's extra topics.
pub fn user_topics(e: &EventEnvelope) -> Vec<String> {
    match LiveEvent::decode(e) {
        Ok(Some(LiveEvent::ChatCreated(c))) => c.member_ids.into_iter().map(user_topic).collect(),
        Ok(Some(LiveEvent::ChatMemberAdded(c))) => vec![user_topic(c.user_id)],
        Ok(Some(LiveEvent::ChatMemberRemoved(c))) => vec![user_topic(c.user_id)],
        _ => Vec::new(),
    }
}

/// One step of `me`'s `messageAdded` stream.
#[derive(Debug)]
pub enum Step {
    Show(SharedEvent),
    Skip,
    /// They left or were removed: the stream ends.
    End,
}

/// What `delivery` means for `me`'s stream: their removal ends it; so does a gap (skipped events) after which
/// `still_member` (the store) says they are no longer in the chat — a removal is never missed.
pub async fn member_step<F, Fut>(me: Uuid, delivery: Delivery, still_member: F) -> Step
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    match delivery {
        Delivery::Event(e) if ends_stream_of(me, &e) => Step::End,
        Delivery::Event(e) => Step::Show(e),
        Delivery::Gap if still_member().await => Step::Skip,
        Delivery::Gap => Step::End,
    }
}

/// Whether `me` may follow any chat's messages without being a member: the router's live front, whose one
/// stream per chat serves every member watching it, each message naming a small chat's members
/// ([`Audience`]) or, for a larger chat, judged by `live_audience`.
pub fn follows_every_chat(me: Uuid) -> bool {
    me == parley_kit::audience::LIVE_FRONT
}

/// A chat's members as the live front's stream of its messages sees them, in the order of the chat's events:
/// each message names its audience (`Message.liveAudience`), so the front judges it without asking chat.
/// A removal ends a member's share from the next message on, as it ends their own subscription; a member's
/// own removal notice (sent just before the removal's event) still reaches them, as it reaches their own.
/// Only small chats are listed ([`Audience::MAX`]): a larger one is `None`, each message then asked about.
#[derive(Debug, Default)]
pub struct Audience {
    /// `None`: more than [`Audience::MAX`] members, or not known (a failed read after a gap).
    members: Option<HashSet<Uuid>>,
    /// The last listing handed out, until the members change (messages share it).
    listed: Option<Arc<[Uuid]>>,
}

impl Audience {
    /// The most members a message names.
    pub const MAX: usize = 100;

    /// From the store's members (read after listening to the chat, so no later change is missed; up to
    /// `MAX + 1` of them: more is too many to list).
    pub fn from_store(members: Option<Vec<Uuid>>) -> Self {
        let members = members.filter(|m| m.len() <= Self::MAX);
        Self {
            members: members.map(|m| m.into_iter().collect()),
            listed: None,
        }
    }

    /// Follows one of the chat's events: a member added or removed. Growing past [`Audience::MAX`] stops
    /// the listing for the rest of the stream.
    pub fn follow(&mut self, e: &EventEnvelope) {
        let Some(members) = self.members.as_mut() else {
            return;
        };
        let changed = match LiveEvent::decode(e) {
            Ok(Some(LiveEvent::ChatCreated(c))) => {
                members.extend(c.member_ids);
                true
            }
            Ok(Some(LiveEvent::ChatMemberAdded(c))) => members.insert(c.user_id),
            Ok(Some(LiveEvent::ChatMemberRemoved(c))) => members.remove(&c.user_id),
            _ => false,
        };
        if changed {
            self.listed = None;
            if members.len() > Self::MAX {
                self.members = None;
            }
        }
    }

    /// Who the chat's next message is for, if listed.
    pub fn listing(&mut self) -> Option<Arc<[Uuid]>> {
        let members = self.members.as_ref()?;
        Some(
            self.listed
                .get_or_insert_with(|| members.iter().copied().collect())
                .clone(),
        )
    }
}

/// Whether `e` ends `me`'s `messageAdded` stream of its chat: they left or were removed.
pub fn ends_stream_of(me: Uuid, e: &EventEnvelope) -> bool {
    e.decode::<ChatMemberRemoved>()
        .is_ok_and(|removed| removed.is_some_and(|r| r.user_id == me))
}

/// The message `e` adds to its chat, for `messageAdded`.
pub fn added_message(e: &EventEnvelope) -> Option<ChatMessage> {
    e.decode::<MessageSent>().ok().flatten().map(|sent| sent.0)
}

/// One member following everything in their chats (`chatEvents`): the chats they are in, kept current by
/// the membership events themselves.
pub struct Follower {
    me: Uuid,
    mine: HashSet<Uuid>,
}

impl Follower {
    /// `me`, a member of `mine` now.
    pub fn new(me: Uuid, mine: HashSet<Uuid>) -> Self {
        Self { me, mine }
    }

    /// Starts over from what the store says `me` is a member of (after skipped events).
    pub fn reset(&mut self, mine: HashSet<Uuid>) {
        self.mine = mine;
    }

    /// Whether `me` is (as far as the events went) a member of `chat`.
    pub fn follows(&self, chat: Uuid) -> bool {
        self.mine.contains(&chat)
    }

    /// What `e` (about chat `chat`) shows `me`, if anything; a chat `me` joins is followed from then on.
    pub fn see(&mut self, chat: Uuid, e: &EventEnvelope) -> Option<Seen> {
        let event = LiveEvent::decode(e).ok()??;
        match event {
            LiveEvent::ChatCreated(created) => {
                if !created.member_ids.contains(&self.me) {
                    return None;
                }
                self.mine.insert(chat);
                Some(Seen::ChatCreated {
                    creator: created.creator_id,
                })
            }
            LiveEvent::ChatMemberAdded(change) => {
                if change.user_id == self.me {
                    self.mine.insert(chat);
                }
                self.follows(chat).then_some(Seen::MemberAdded {
                    user: change.user_id,
                })
            }
            LiveEvent::ChatMemberRemoved(change) => {
                let seen = self.follows(chat).then_some(Seen::MemberRemoved {
                    user: change.user_id,
                });
                if change.user_id == self.me {
                    self.mine.remove(&chat);
                }
                seen
            }
            _ if !self.follows(chat) => None,
            LiveEvent::MessageSent(m) => Some(message(MessageChange::Added, m.0)),
            // The assistant's answer growing: to a client, an edit of its message.
            LiveEvent::MessageEdited(m) => Some(message(MessageChange::Edited, m.0)),
            LiveEvent::AssistantDraft(m) => Some(message(MessageChange::Edited, m.0)),
            LiveEvent::MessageDeleted(m) => Some(message(MessageChange::Deleted, m.0)),
            LiveEvent::MessageReceived(r) => Some(Seen::Receipt {
                marker: Marker::Delivered,
                user: r.user_id,
                seq: r.seq,
            }),
            LiveEvent::MessageRead(r) => Some(Seen::Receipt {
                marker: Marker::Read,
                user: r.user_id,
                seq: r.seq,
            }),
            LiveEvent::ChatTyping(signal) => (signal.user_id != self.me).then_some(Seen::Typing {
                user: signal.user_id,
                typing: signal.typing,
            }),
        }
    }
}

fn message(change: MessageChange, message: ChatMessage) -> Seen {
    Seen::Message {
        change,
        message: Box::new(message),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use parley_kit::events::contracts::{
        ChatCreated, ChatMemberAdded, ChatMemberChanged, ChatTyping, MessageSent,
    };
    use parley_kit::events::Event;

    use super::*;

    fn envelope<E: Event>(chat: Uuid, event: E) -> EventEnvelope {
        parley_kit::testing::envelope(0, chat, event)
    }

    fn sent(chat: Uuid, author: Uuid) -> EventEnvelope {
        let message = ChatMessage {
            message_id: Uuid::now_v7(),
            chat_id: chat,
            author_id: author,
            seq: 1,
            kind: "TEXT".into(),
            text: Some("hi".into()),
            ..Default::default()
        };
        envelope(chat, MessageSent(message))
    }

    fn membership(chat: Uuid, user: Uuid) -> ChatMemberChanged {
        ChatMemberChanged {
            chat_id: chat,
            user_id: user,
            by: user,
        }
    }

    #[test]
    fn messages_of_a_chat_are_seen_only_while_a_member() {
        let (me, other, chat) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut follower = Follower::new(me, HashSet::new());
        assert_eq!(
            follower.see(chat, &sent(chat, other)),
            None,
            "not a member yet"
        );

        let added = envelope(chat, ChatMemberAdded(membership(chat, me)));
        assert_eq!(
            follower.see(chat, &added),
            Some(Seen::MemberAdded { user: me })
        );
        assert!(matches!(
            follower.see(chat, &sent(chat, other)),
            Some(Seen::Message {
                change: MessageChange::Added,
                ..
            })
        ));

        let removed = envelope(chat, ChatMemberRemoved(membership(chat, me)));
        assert_eq!(
            follower.see(chat, &removed),
            Some(Seen::MemberRemoved { user: me }),
            "the removal itself is shown"
        );
        assert_eq!(follower.see(chat, &sent(chat, other)), None, "then nothing");
    }

    #[test]
    fn a_chat_created_with_me_is_followed_and_one_without_me_is_not() {
        let (me, other, chat) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let created = |members: Vec<Uuid>| {
            envelope(
                chat,
                ChatCreated {
                    chat_id: chat,
                    kind: "GROUP".into(),
                    creator_id: other,
                    member_ids: members,
                },
            )
        };
        let mut follower = Follower::new(me, HashSet::new());
        assert_eq!(follower.see(chat, &created(vec![other])), None);
        assert!(!follower.follows(chat));
        assert_eq!(
            follower.see(chat, &created(vec![other, me])),
            Some(Seen::ChatCreated { creator: other })
        );
        assert!(follower.follows(chat));
    }

    #[test]
    fn my_own_typing_is_not_shown_to_me() {
        let (me, other, chat) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let typing = |user| {
            envelope(
                chat,
                ChatTyping {
                    chat_id: chat,
                    user_id: user,
                    typing: true,
                    expires_at: Utc::now(),
                },
            )
        };
        let mut follower = Follower::new(me, HashSet::from([chat]));
        assert_eq!(follower.see(chat, &typing(me)), None);
        assert_eq!(
            follower.see(chat, &typing(other)),
            Some(Seen::Typing {
                user: other,
                typing: true
            })
        );
    }

    #[test]
    fn a_removal_ends_only_the_removed_members_stream() {
        let (me, other, chat) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let removed = envelope(chat, ChatMemberRemoved(membership(chat, other)));
        assert!(!ends_stream_of(me, &removed));
        assert!(ends_stream_of(other, &removed));
        assert!(!ends_stream_of(other, &sent(chat, me)));
        assert!(added_message(&sent(chat, me)).is_some());
        assert!(added_message(&removed).is_none());
        assert_eq!(user_topics(&removed), vec![user_topic(other)]);
    }

    #[test]
    fn a_small_chats_audience_follows_its_membership_in_order() {
        let (a, b, c, chat) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let listed = |audience: &mut Audience| {
            let mut ids = audience.listing().map(|l| l.to_vec()).unwrap_or_default();
            ids.sort();
            ids
        };
        let sorted = |mut ids: Vec<Uuid>| {
            ids.sort();
            ids
        };
        let mut audience = Audience::from_store(Some(vec![a, b]));
        assert_eq!(listed(&mut audience), sorted(vec![a, b]));
        let first = audience.listing().expect("listed");
        audience.follow(&sent(chat, a));
        assert!(
            Arc::ptr_eq(&first, &audience.listing().expect("listed")),
            "messages share one listing until the members change"
        );
        audience.follow(&envelope(chat, ChatMemberAdded(membership(chat, c))));
        assert_eq!(listed(&mut audience), sorted(vec![a, b, c]));
        audience.follow(&envelope(chat, ChatMemberRemoved(membership(chat, b))));
        assert_eq!(listed(&mut audience), sorted(vec![a, c]));

        // Too many to list, from the store or by growing: not listed (each message asked about instead).
        let many: Vec<Uuid> = (0..=Audience::MAX).map(|_| Uuid::now_v7()).collect();
        assert!(Audience::from_store(Some(many.clone())).listing().is_none());
        let mut growing = Audience::from_store(Some(many[..Audience::MAX].to_vec()));
        assert!(growing.listing().is_some());
        growing.follow(&envelope(chat, ChatMemberAdded(membership(chat, a))));
        assert!(growing.listing().is_none());
        growing.follow(&envelope(chat, ChatMemberRemoved(membership(chat, a))));
        assert!(
            growing.listing().is_none(),
            "not listed again until read again"
        );
        // A read that failed: not known.
        assert!(Audience::from_store(None).listing().is_none());
    }

    #[tokio::test]
    async fn a_removal_ends_the_stream_even_when_its_event_was_skipped() {
        let (chat, me) = (Uuid::now_v7(), Uuid::now_v7());
        let event = |e: EventEnvelope| Delivery::Event(std::sync::Arc::new(e));
        let removed = envelope(chat, ChatMemberRemoved(membership(chat, me)));
        assert!(matches!(
            member_step(me, event(removed), || async { true }).await,
            Step::End
        ));
        assert!(matches!(
            member_step(me, event(sent(chat, Uuid::now_v7())), || async { true }).await,
            Step::Show(_)
        ));
        // Events were skipped: the store decides.
        assert!(matches!(
            member_step(me, Delivery::Gap, || async { true }).await,
            Step::Skip
        ));
        assert!(matches!(
            member_step(me, Delivery::Gap, || async { false }).await,
            Step::End
        ));
    }
}
