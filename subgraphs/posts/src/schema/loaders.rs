//! Batched lookups: posts, comments, topics by id, posts' attachments and the caller's votes, so nested lists and `_entities`
//! cost one query per kind, not one per item.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::error::PostsError;
use crate::store::{comment, post, topic, vote};

pub struct PostsLoader(pub DatabaseConnection);

type Loaded<K, V> = Result<HashMap<K, V>, Arc<PostsError>>;

impl Loader<Uuid> for PostsLoader {
    type Value = post::Model;
    type Error = Arc<PostsError>;

    async fn load(&self, keys: &[Uuid]) -> Loaded<Uuid, post::Model> {
        let rows = post::Entity::find()
            .filter(post::Column::Id.is_in(keys.iter().copied()))
            .all(&self.0)
            .await
            .map_err(|e| Arc::new(e.into()))?;
        Ok(rows.into_iter().map(|p| (p.id, p)).collect())
    }
}

/// Comment ids (a newtype so one loader serves several key kinds).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommentKey(pub Uuid);

impl Loader<CommentKey> for PostsLoader {
    type Value = comment::Model;
    type Error = Arc<PostsError>;

    async fn load(&self, keys: &[CommentKey]) -> Loaded<CommentKey, comment::Model> {
        let rows = comment::Entity::find()
            .filter(comment::Column::Id.is_in(keys.iter().map(|k| k.0)))
            .all(&self.0)
            .await
            .map_err(|e| Arc::new(e.into()))?;
        Ok(rows.into_iter().map(|c| (CommentKey(c.id), c)).collect())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopicKey(pub Uuid);

impl Loader<TopicKey> for PostsLoader {
    type Value = topic::Model;
    type Error = Arc<PostsError>;

    async fn load(&self, keys: &[TopicKey]) -> Loaded<TopicKey, topic::Model> {
        let rows = topic::Entity::find()
            .filter(topic::Column::Id.is_in(keys.iter().map(|k| k.0)))
            .all(&self.0)
            .await
            .map_err(|e| Arc::new(e.into()))?;
        Ok(rows.into_iter().map(|t| (TopicKey(t.id), t)).collect())
    }
}

/// A post's attachments (media ids in order).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttachmentsKey(pub Uuid);

impl Loader<AttachmentsKey> for PostsLoader {
    type Value = Vec<Uuid>;
    type Error = Arc<PostsError>;

    async fn load(&self, keys: &[AttachmentsKey]) -> Loaded<AttachmentsKey, Vec<Uuid>> {
        let posts: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let found = crate::attachments::of_posts(&self.0, &posts)
            .await
            .map_err(|e| Arc::new(e.into()))?;
        Ok(found
            .into_iter()
            .map(|(post, ids)| (AttachmentsKey(post), ids))
            .collect())
    }
}

/// The caller's vote on a target.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VoteKey {
    pub user: Uuid,
    pub target: Uuid,
}

impl Loader<VoteKey> for PostsLoader {
    type Value = i16;
    type Error = Arc<PostsError>;

    async fn load(&self, keys: &[VoteKey]) -> Loaded<VoteKey, i16> {
        let mut by_user: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for key in keys {
            by_user.entry(key.user).or_default().push(key.target);
        }
        let mut out = HashMap::new();
        for (user, targets) in by_user {
            let rows = vote::Entity::find()
                .filter(vote::Column::UserId.eq(user))
                .filter(vote::Column::TargetId.is_in(targets))
                .all(&self.0)
                .await
                .map_err(|e| Arc::new(e.into()))?;
            out.extend(rows.into_iter().map(|v| {
                (
                    VoteKey {
                        user,
                        target: v.target_id,
                    },
                    v.value,
                )
            }));
        }
        Ok(out)
    }
}
