//! Batched lookups for every per-row field of chats and messages, so a page of chats with their unread
//! counts, last messages and who read them costs a fixed number of queries whatever the page size.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::error::ChatError;
use crate::store::{member, message};

pub struct ChatLoader(pub DatabaseConnection);

type Loaded<K, V> = Result<HashMap<K, V>, Arc<ChatError>>;

fn failed(err: sea_orm::DbErr) -> Arc<ChatError> {
    Arc::new(ChatError::from(err))
}

/// `user`'s membership of `chat`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MembershipKey {
    pub chat: Uuid,
    pub user: Uuid,
}

impl Loader<MembershipKey> for ChatLoader {
    type Value = member::Model;
    type Error = Arc<ChatError>;

    async fn load(&self, keys: &[MembershipKey]) -> Loaded<MembershipKey, member::Model> {
        let mut chats_of: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for key in keys {
            chats_of.entry(key.user).or_default().push(key.chat);
        }
        let mut any = Condition::any();
        for (user, chats) in chats_of {
            any = any.add(
                member::Column::UserId
                    .eq(user)
                    .and(member::Column::ChatId.is_in(chats)),
            );
        }
        let rows = member::Entity::find()
            .filter(any)
            .all(&self.0)
            .await
            .map_err(failed)?;
        Ok(rows
            .into_iter()
            .map(|m| {
                let key = MembershipKey {
                    chat: m.chat_id,
                    user: m.user_id,
                };
                (key, m)
            })
            .collect())
    }
}

/// A chat's members, oldest first.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MembersKey(pub Uuid);

impl Loader<MembersKey> for ChatLoader {
    type Value = Vec<member::Model>;
    type Error = Arc<ChatError>;

    async fn load(&self, keys: &[MembersKey]) -> Loaded<MembersKey, Vec<member::Model>> {
        let rows = member::Entity::find()
            .filter(member::Column::ChatId.is_in(keys.iter().map(|k| k.0)))
            .order_by_asc(member::Column::JoinedAt)
            .order_by_asc(member::Column::UserId)
            .all(&self.0)
            .await
            .map_err(failed)?;
        let mut members: HashMap<MembersKey, Vec<member::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            members
                .entry(MembersKey(row.chat_id))
                .or_default()
                .push(row);
        }
        Ok(members)
    }
}

/// Messages of others in `chat` after sequence number `after` (a member's read marker), not deleted.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnreadKey {
    pub chat: Uuid,
    pub reader: Uuid,
    pub after: i64,
}

impl Loader<UnreadKey> for ChatLoader {
    type Value = u64;
    type Error = Arc<ChatError>;

    async fn load(&self, keys: &[UnreadKey]) -> Loaded<UnreadKey, u64> {
        let mut any = Condition::any();
        for key in keys {
            any = any.add(
                message::Column::ChatId
                    .eq(key.chat)
                    .and(message::Column::Seq.gt(key.after))
                    .and(message::Column::AuthorId.ne(key.reader)),
            );
        }
        let counts: Vec<(Uuid, i64)> = message::Entity::find()
            .select_only()
            .column(message::Column::ChatId)
            .column_as(Expr::col(message::Column::Id).count(), "unread")
            .filter(any)
            .filter(message::Column::DeletedAt.is_null())
            .group_by(message::Column::ChatId)
            .into_tuple()
            .all(&self.0)
            .await
            .map_err(failed)?;
        let by_chat: HashMap<Uuid, i64> = counts.into_iter().collect();
        // One reader per chat in a batch (a chat is only ever shown to its viewer).
        Ok(keys
            .iter()
            .map(|key| (*key, by_chat.get(&key.chat).copied().unwrap_or(0) as u64))
            .collect())
    }
}

/// The message numbered `seq` in `chat` (a chat's last message is its `last_seq`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqKey {
    pub chat: Uuid,
    pub seq: i64,
}

impl Loader<SeqKey> for ChatLoader {
    type Value = message::Model;
    type Error = Arc<ChatError>;

    async fn load(&self, keys: &[SeqKey]) -> Loaded<SeqKey, message::Model> {
        let mut any = Condition::any();
        for key in keys {
            any = any.add(
                message::Column::ChatId
                    .eq(key.chat)
                    .and(message::Column::Seq.eq(key.seq)),
            );
        }
        let rows = message::Entity::find()
            .filter(any)
            .all(&self.0)
            .await
            .map_err(failed)?;
        Ok(rows
            .into_iter()
            .map(|m| {
                let key = SeqKey {
                    chat: m.chat_id,
                    seq: m.seq,
                };
                (key, m)
            })
            .collect())
    }
}

/// A message by id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageKey(pub Uuid);

impl Loader<MessageKey> for ChatLoader {
    type Value = message::Model;
    type Error = Arc<ChatError>;

    async fn load(&self, keys: &[MessageKey]) -> Loaded<MessageKey, message::Model> {
        let ids: BTreeSet<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = message::Entity::find()
            .filter(message::Column::Id.is_in(ids))
            .all(&self.0)
            .await
            .map_err(failed)?;
        Ok(rows.into_iter().map(|m| (MessageKey(m.id), m)).collect())
    }
}
