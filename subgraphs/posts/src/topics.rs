//! Topics (communities): create, subscribe, unsubscribe, look up, list.

use chrono::Utc;
use parley_kit::events::append;
use parley_kit::events::contracts::{TopicSubscribed, TopicSubscriptionChanged, TopicUnsubscribed};
use parley_kit::pagination::Page;
use parley_kit::store::begin_write;
use parley_kit::Identity;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, ModelTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::error::{PostsError, Result};
use crate::service::Content;
use crate::store::{topic, topic_subscription};
use crate::validate;

pub struct NewTopic {
    pub name: String,
    pub title: String,
    pub description: Option<String>,
}

impl Content {
    pub async fn create_topic(&self, me: &Identity, input: NewTopic) -> Result<topic::Model> {
        let name = validate::topic_name(&input.name)?;
        let title = validate::topic_title(&input.title)?;
        let description = match input.description {
            Some(d) => Some(validate::body(&d)?).filter(|d| !d.is_empty()),
            None => None,
        };
        if topic_by_name(&self.db, &name).await?.is_some() {
            return Err(PostsError::Conflict(format!("topic {name:?} exists")));
        }
        let row = topic::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(name.clone()),
            title: Set(title),
            description: Set(description),
            creator_id: Set(me.user_id),
            subscriber_count: Set(0),
            created_at: Set(Utc::now()),
        };
        match row.insert(&self.db).await {
            Ok(t) => Ok(t),
            Err(e) if parley_kit::error::is_unique_violation(&e) => {
                Err(PostsError::Conflict(format!("topic {name:?} exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Subscribes (or with `subscribe = false` unsubscribes) the caller; idempotent.
    pub async fn subscribe_topic(
        &self,
        me: &Identity,
        topic_id: Uuid,
        subscribe: bool,
    ) -> Result<bool> {
        topic::Entity::find_by_id(topic_id)
            .one(&self.db)
            .await?
            .ok_or(PostsError::NotFound("topic"))?;
        let txn = begin_write(&self.db).await?;
        let existing = topic_subscription::Entity::find_by_id((me.user_id, topic_id))
            .one(&txn)
            .await?;
        let changed = match (existing, subscribe) {
            (None, true) => {
                topic_subscription::ActiveModel {
                    user_id: Set(me.user_id),
                    topic_id: Set(topic_id),
                    created_at: Set(Utc::now()),
                }
                .insert(&txn)
                .await?;
                true
            }
            (Some(row), false) => {
                row.delete(&txn).await?;
                true
            }
            _ => false,
        };
        if changed {
            let delta = if subscribe { 1 } else { -1 };
            topic::Entity::update_many()
                .col_expr(
                    topic::Column::SubscriberCount,
                    Expr::col(topic::Column::SubscriberCount).add(delta),
                )
                .filter(topic::Column::Id.eq(topic_id))
                .exec(&txn)
                .await?;
            let change = TopicSubscriptionChanged {
                user_id: me.user_id,
                topic_id,
            };
            if subscribe {
                append(&txn, topic_id, &TopicSubscribed(change)).await?;
            } else {
                append(&txn, topic_id, &TopicUnsubscribed(change)).await?;
            }
        }
        txn.commit().await?;
        self.events.wake();
        Ok(subscribe)
    }
}

pub async fn topic_by_name<C: ConnectionTrait>(db: &C, name: &str) -> Result<Option<topic::Model>> {
    // No topic name is this long: not looked up.
    if name.len() > 256 {
        return Ok(None);
    }
    Ok(topic::Entity::find()
        .filter(topic::Column::Name.eq(name.trim().to_lowercase()))
        .one(db)
        .await?)
}

/// Topics by name, keyset-paginated.
pub async fn list<C: ConnectionTrait>(db: &C, page: &Page) -> Result<Vec<topic::Model>> {
    let mut select = topic::Entity::find();
    if let Some(after) = page.after.as_ref().and_then(|a| a.first()) {
        select = select.filter(topic::Column::Name.gt(after.clone()));
    }
    Ok(select
        .order_by_asc(topic::Column::Name)
        .limit(page.limit())
        .all(db)
        .await?)
}

pub async fn is_subscribed<C: ConnectionTrait>(db: &C, user: Uuid, topic_id: Uuid) -> Result<bool> {
    Ok(topic_subscription::Entity::find_by_id((user, topic_id))
        .one(db)
        .await?
        .is_some())
}
