//! The domain events analytics records: every kind there is (it consumes every producer), each with the user
//! who acted, read from the payload field that names them. Where the platform acted — a notification, a
//! renewal, a finished upload — or the actor is not clear from the event, no one counts as active.
//! Typing signals and the assistant's drafts (live only) are not recorded.

use async_trait::async_trait;
use parley_kit::events::contracts::{
    self, AssistantDraft, ChatTyping, Consumed, DecodeError, Event, EventKind,
};
use parley_kit::events::{EventEnvelope, Handler};
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

use crate::ingest::{self, user_actor, Record};
use crate::time::Clock;

/// A domain event, as analytics records it.
#[derive(Debug)]
pub struct DomainEvent(pub Record);

/// The kinds only live streams read (published straight to the bus, never stored): typing signals and the
/// assistant's drafts.
const LIVE_ONLY: [&str; 2] = [ChatTyping::KIND.name, AssistantDraft::KIND.name];

/// Every kind but the live-only ones.
const RECORDED: [EventKind; contracts::ALL.len() - LIVE_ONLY.len()] = {
    let mut kinds = [contracts::ALL[0]; contracts::ALL.len() - LIVE_ONLY.len()];
    let (mut i, mut kept) = (0, 0);
    while i < contracts::ALL.len() {
        if !live_only(contracts::ALL[i].name) {
            // Overflows (at compile time) if a live-only name is not a kind: then this list needs a look.
            kinds[kept] = contracts::ALL[i];
            kept += 1;
        }
        i += 1;
    }
    kinds
};

const fn live_only(name: &str) -> bool {
    let mut i = 0;
    while i < LIVE_ONLY.len() {
        if same(name, LIVE_ONLY[i]) {
            return true;
        }
        i += 1;
    }
    false
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl Consumed for DomainEvent {
    const KINDS: &'static [EventKind] = &RECORDED;

    fn decode(envelope: &EventEnvelope) -> Result<Option<Self>, DecodeError> {
        if live_only(&envelope.kind) {
            return Ok(None);
        }
        let user_id = actor_field(&envelope.kind)
            .and_then(|field| envelope.payload.get(field))
            .and_then(|id| id.as_str())
            .and_then(|id| Uuid::parse_str(id).ok());
        Ok(Some(DomainEvent(Record {
            id: envelope.id,
            name: envelope.kind.clone(),
            source: envelope.source.clone(),
            user_id,
            actor: user_id.map(user_actor),
            was_anonymous: None,
            occurred_at: envelope.occurred_at,
            properties: None,
        })))
    }
}

/// The payload field naming who acted in an event of `kind`.
fn actor_field(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "UserRegistered"
        | "UserLoggedIn"
        | "UserProfileUpdated"
        | "EmailVerified"
        | "AccountPrivacyChanged"
        | "TopicSubscribed"
        | "TopicUnsubscribed"
        | "VoteSubmitted"
        | "VoteUpdated"
        | "MessageReceived"
        | "MessageRead"
        | "ChatSettingsChanged"
        | "AssistantAnswered" => "user_id",
        "SubscriptionRequestSent" | "SubscriptionRequestAccepted" => "follower_id",
        "SubscriptionRequestDeclined" => "followee_id",
        "UserBlocked" | "UserUnblocked" => "blocker_id",
        "PostCreated" | "PostUpdated" | "PostDeleted" | "CommentCreated" | "CommentUpdated"
        | "CommentDeleted" | "MessageSent" | "MessageEdited" | "MessageDeleted" => "author_id",
        "ChatCreated" => "creator_id",
        "ChatMemberAdded" | "ChatMemberRemoved" => "by",
        "MediaUploaded" | "MediaDeleted" => "owner_id",
        _ => return None,
    })
}

/// Records each domain event in the consumer's transaction.
pub struct Projection {
    pub clock: Clock,
}

#[async_trait]
impl Handler for Projection {
    type Event = DomainEvent;

    async fn apply(&self, txn: &DatabaseTransaction, event: DomainEvent) -> Result<(), DbErr> {
        let mut record = event.0;
        record.occurred_at = self.clock.shift(record.occurred_at);
        ingest::record(txn, record, self.clock.now()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_that_names_an_actor_names_a_field_its_payload_has() {
        for kind in contracts::ALL {
            let Some(field) = actor_field(kind.name) else {
                continue;
            };
            let sample = contracts::sample(kind.name).expect("sample");
            assert!(
                sample.get(field).is_some(),
                "{} has no `{field}`: {sample}",
                kind.name
            );
        }
    }
}
