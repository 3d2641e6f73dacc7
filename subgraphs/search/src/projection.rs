//! The events search applies: users' profiles, posts, comments and votes, chat messages and memberships,
//! and the visibility rule's events (blocks, follows, privacy) — each into the documents
//! ([`crate::documents`]) or the rule's tables, in the consumer's transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parley_kit::audience::{self, AudienceEvent};
use parley_kit::events::contracts::{ChatMessage, CommentChanged, PostChanged, VoteCast};
use parley_kit::events::Handler;
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, ExprTrait, Set};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::documents::{self, Doc, Kind};
use crate::store::{chat_member, document};

parley_kit::consumed! {
    /// Everything search learns from.
    pub enum SearchInput {
        UserRegistered, UserProfileUpdated,
        UserBlocked, UserUnblocked, FollowAccepted, FollowRemoved, AccountPrivacyChanged,
        PostCreated, PostUpdated, PostDeleted, CommentCreated, CommentUpdated, CommentDeleted,
        VoteSubmitted, VoteUpdated,
        ChatCreated, ChatMemberAdded, ChatMemberRemoved, MessageSent, MessageEdited, MessageDeleted,
    }
}

/// Applies the events; wakes this instance's index after each commit ([`crate::index::Tail`]).
pub struct Projection {
    pub wake: std::sync::Arc<Notify>,
}

#[async_trait]
impl Handler for Projection {
    type Event = SearchInput;

    async fn apply(&self, txn: &DatabaseTransaction, event: SearchInput) -> Result<(), DbErr> {
        use SearchInput as E;
        match event {
            E::UserRegistered(u) => {
                documents::put(txn, user(u.user_id, &u.nickname, &u.name, u.bio.as_deref())).await
            }
            E::UserProfileUpdated(u) => {
                documents::put(txn, user(u.user_id, &u.nickname, &u.name, u.bio.as_deref())).await
            }
            E::UserBlocked(b) => audience::apply(txn, &AudienceEvent::UserBlocked(b)).await,
            E::UserUnblocked(b) => audience::apply(txn, &AudienceEvent::UserUnblocked(b)).await,
            E::FollowAccepted(f) => audience::apply(txn, &AudienceEvent::FollowAccepted(f)).await,
            E::FollowRemoved(f) => audience::apply(txn, &AudienceEvent::FollowRemoved(f)).await,
            E::AccountPrivacyChanged(p) => {
                let author = p.user_id;
                audience::apply(txn, &AudienceEvent::AccountPrivacyChanged(p)).await?;
                // Who may find the author's posts and the comments on them changed: index them again.
                documents::reindex_where(
                    txn,
                    document::Column::AuthorId
                        .eq(author)
                        .or(document::Column::PostAuthorId.eq(author)),
                )
                .await
            }
            E::PostCreated(p) => documents::put(txn, post(p.0)).await,
            E::PostUpdated(p) => documents::put(txn, post(p.0)).await,
            E::PostDeleted(p) => {
                // Its comments go with it: posts shows no comment of a deleted post.
                documents::delete_where(
                    txn,
                    document::Column::Id
                        .eq(p.post_id)
                        .or(document::Column::PostId.eq(p.post_id)),
                )
                .await
            }
            E::CommentCreated(c) => comment(txn, c.0).await,
            E::CommentUpdated(c) => comment(txn, c.0).await,
            E::CommentDeleted(c) => {
                documents::delete_where(txn, document::Column::Id.eq(c.comment_id)).await
            }
            E::VoteSubmitted(v) => vote(txn, &v.0).await,
            E::VoteUpdated(v) => vote(txn, &v.0).await,
            E::ChatCreated(c) => {
                for member in c.member_ids {
                    join(txn, c.chat_id, member).await?;
                }
                Ok(())
            }
            E::ChatMemberAdded(m) => join(txn, m.chat_id, m.user_id).await,
            E::ChatMemberRemoved(m) => {
                chat_member::Entity::delete_by_id((m.user_id, m.chat_id))
                    .exec(txn)
                    .await?;
                Ok(())
            }
            E::MessageSent(m) => message(txn, m.0).await,
            E::MessageEdited(m) => message(txn, m.0).await,
            E::MessageDeleted(m) => {
                documents::delete_where(txn, document::Column::Id.eq(m.message_id)).await
            }
        }
    }

    fn committed(&self) {
        self.wake.notify_one();
    }
}

fn user(id: Uuid, nickname: &str, name: &str, bio: Option<&str>) -> Doc {
    let about = match bio {
        Some(bio) if !bio.is_empty() => format!("{name}\n{bio}"),
        _ => name.to_string(),
    };
    Doc {
        id,
        kind: Kind::User,
        author_id: id,
        post_id: None,
        post_author_id: None,
        chat_id: None,
        topic: None,
        tags: Vec::new(),
        title: nickname.to_string(),
        body: about,
        score: 0,
        created_at: created_at_of(id),
    }
}

fn post(p: PostChanged) -> Doc {
    Doc {
        id: p.post_id,
        kind: Kind::Post,
        author_id: p.author_id,
        post_id: Some(p.post_id),
        post_author_id: Some(p.author_id),
        chat_id: None,
        topic: p.topic.map(|t| t.to_lowercase()),
        tags: p.tags.iter().map(|t| t.to_lowercase()).collect(),
        title: p.title,
        body: p.body,
        score: p.score,
        created_at: p.created_at,
    }
}

async fn comment(txn: &DatabaseTransaction, c: CommentChanged) -> Result<(), DbErr> {
    let (topic, post_deleted) = documents::post_of(txn, c.post_id)
        .await?
        .unwrap_or((None, false));
    let id = c.comment_id;
    documents::put(
        txn,
        Doc {
            id,
            kind: Kind::Comment,
            author_id: c.author_id,
            post_id: Some(c.post_id),
            post_author_id: Some(c.post_author_id),
            chat_id: None,
            topic,
            tags: Vec::new(),
            title: String::new(),
            body: c.body,
            score: c.score,
            created_at: c.created_at.unwrap_or_else(|| created_at_of(id)),
        },
    )
    .await?;
    if post_deleted {
        documents::delete_where(txn, document::Column::Id.eq(id)).await?;
    }
    Ok(())
}

async fn vote(txn: &DatabaseTransaction, v: &VoteCast) -> Result<(), DbErr> {
    documents::rescore(txn, v.target_id, v.score).await
}

async fn join(txn: &DatabaseTransaction, chat_id: Uuid, user_id: Uuid) -> Result<(), DbErr> {
    chat_member::Entity::insert(chat_member::ActiveModel {
        user_id: Set(user_id),
        chat_id: Set(chat_id),
    })
    .on_conflict_do_nothing_on([chat_member::Column::UserId, chat_member::Column::ChatId])
    .exec(txn)
    .await?;
    Ok(())
}

/// Text messages are searchable; system messages and files without a caption are not.
async fn message(txn: &DatabaseTransaction, m: ChatMessage) -> Result<(), DbErr> {
    let text = m.text.unwrap_or_default();
    if m.kind == "SYSTEM" || text.trim().is_empty() || m.deleted_at.is_some() {
        return documents::delete_where(txn, document::Column::Id.eq(m.message_id)).await;
    }
    documents::put(
        txn,
        Doc {
            id: m.message_id,
            kind: Kind::Message,
            author_id: m.author_id,
            post_id: None,
            post_author_id: None,
            chat_id: Some(m.chat_id),
            topic: None,
            tags: Vec::new(),
            title: String::new(),
            body: text,
            score: 0,
            created_at: m.created_at,
        },
    )
    .await
}

/// A UUIDv7's time (a user's document has no other).
fn created_at_of(id: Uuid) -> DateTime<Utc> {
    id.get_timestamp()
        .and_then(|ts| {
            let (secs, nanos) = ts.to_unix();
            DateTime::from_timestamp(secs as i64, nanos)
        })
        .unwrap_or_else(Utc::now)
}
