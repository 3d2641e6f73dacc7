//! Posts: create, edit (author), soft delete (author, moderators, admins; the reason is kept), and the ranked,
//! keyset-paginated lists.

use chrono::{Duration, Utc};
use parley_kit::audience::{authors_visible_to, Viewer};
use parley_kit::events::append;
use parley_kit::events::contracts::{PostChanged, PostCreated, PostDeleted, PostUpdated};
use parley_kit::pagination::{self, keyset_desc, Page, RankType};
use parley_kit::store::begin_write;
use parley_kit::{rank, Identity, Role};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter,
    QuerySelect, Select, Set,
};
use uuid::Uuid;

use crate::attachments;
use crate::error::{invalid, PostsError, Result};
use crate::service::Content;
use crate::store::{post, post_tag, topic};
use crate::validate;

/// How a list of posts is ordered.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PostSort {
    /// Lemmy's hot rank: score decayed by age.
    #[default]
    Hot,
    /// Newest first.
    New,
    /// Highest score first, within `period`.
    Top,
    /// Most evenly split votes first.
    Controversial,
}

/// The window of a TOP list.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TopPeriod {
    Day,
    Week,
    Month,
    Year,
    #[default]
    All,
}

impl TopPeriod {
    fn window(self) -> Option<Duration> {
        match self {
            TopPeriod::Day => Some(Duration::days(1)),
            TopPeriod::Week => Some(Duration::weeks(1)),
            TopPeriod::Month => Some(Duration::days(30)),
            TopPeriod::Year => Some(Duration::days(365)),
            TopPeriod::All => None,
        }
    }
}

pub struct NewPost {
    pub title: String,
    pub body: String,
    pub topic: Option<String>,
    pub tags: Vec<String>,
    /// Media ids, in order ([`crate::attachments`]).
    pub attachments: Vec<Uuid>,
}

#[derive(Default)]
pub struct PostChanges {
    pub title: Option<String>,
    pub body: Option<String>,
    pub tags: Option<Vec<String>>,
    pub attachments: Option<Vec<Uuid>>,
}

/// Which posts a list shows.
#[derive(Default)]
pub struct PostFilter {
    pub topic_id: Option<Uuid>,
    pub tag: Option<String>,
    pub author_id: Option<Uuid>,
}

impl Content {
    pub async fn create_post(&self, me: &Identity, input: NewPost) -> Result<post::Model> {
        let title = validate::title(&input.title)?;
        let body = validate::body(&input.body)?;
        let tags = validate::tags(&input.tags)?;
        let attachments = attachments::unique(&input.attachments)?;
        let topic_id = match input.topic {
            Some(name) => Some(
                crate::topics::topic_by_name(&self.db, &name)
                    .await?
                    .ok_or(PostsError::NotFound("topic"))?
                    .id,
            ),
            None => None,
        };
        let now = Utc::now();
        let row = post::ActiveModel {
            id: Set(Uuid::now_v7()),
            author_id: Set(me.user_id),
            topic_id: Set(topic_id),
            title: Set(title),
            body: Set(body),
            tags: Set(serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into())),
            score: Set(0),
            upvotes: Set(0),
            downvotes: Set(0),
            comment_count: Set(0),
            hot_rank: Set(rank::hot(0, now, now)),
            controversy_rank: Set(0.0),
            created_at: Set(now),
            updated_at: Set(now),
            deleted_at: Set(None),
            deleted_by: Set(None),
            delete_reason: Set(None),
        };
        let txn = begin_write(&self.db).await?;
        // Checked in the transaction, so an upload deleted meanwhile is not attached.
        let attachments = attachments::checked(&txn, me.user_id, attachments).await?;
        let post = row.insert(&txn).await?;
        set_tags(&txn, post.id, &tags).await?;
        attachments::set(&txn, post.id, &attachments).await?;
        append(&txn, post.id, &PostCreated(changed(&txn, &post).await?)).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(post)
    }

    /// Only the author edits a post.
    pub async fn update_post(
        &self,
        me: &Identity,
        id: Uuid,
        changes: PostChanges,
    ) -> Result<post::Model> {
        // Inputs first: a bad one costs no read.
        let title = changes.title.as_deref().map(validate::title).transpose()?;
        let body = changes.body.as_deref().map(validate::body).transpose()?;
        let tags = changes.tags.as_deref().map(validate::tags).transpose()?;
        let attached = changes
            .attachments
            .as_deref()
            .map(attachments::unique)
            .transpose()?;
        let current = live_post(&self.db, id).await?;
        if current.author_id != me.user_id {
            return Err(PostsError::Forbidden("only the author edits a post"));
        }
        let mut active: post::ActiveModel = current.into();
        if let Some(title) = title {
            active.title = Set(title);
        }
        if let Some(body) = body {
            active.body = Set(body);
        }
        if let Some(tags) = &tags {
            active.tags = Set(serde_json::to_string(tags).unwrap_or_else(|_| "[]".into()));
        }
        active.updated_at = Set(Utc::now());
        let txn = begin_write(&self.db).await?;
        let post = active.update(&txn).await?;
        if let Some(tags) = &tags {
            set_tags(&txn, post.id, tags).await?;
        }
        if let Some(ids) = attached {
            let ids = attachments::checked(&txn, me.user_id, ids).await?;
            attachments::set(&txn, post.id, &ids).await?;
        }
        append(&txn, post.id, &PostUpdated(changed(&txn, &post).await?)).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(post)
    }

    /// Soft delete by the author, or by a moderator or admin (the reason is kept).
    pub async fn delete_post(
        &self,
        me: &Identity,
        id: Uuid,
        reason: Option<String>,
    ) -> Result<bool> {
        let current = live_post(&self.db, id).await?;
        let moderating = current.author_id != me.user_id;
        if moderating && !me.has_role(Role::Moderator) {
            return Err(PostsError::Forbidden(
                "only the author or a moderator deletes a post",
            ));
        }
        let reason = match reason {
            Some(r) if r.chars().count() > 500 => {
                return Err(invalid("reason: at most 500 characters"))
            }
            other => other
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty()),
        };
        let txn = begin_write(&self.db).await?;
        let mut active: post::ActiveModel = current.into();
        active.deleted_at = Set(Some(Utc::now()));
        active.deleted_by = Set(Some(me.user_id));
        active.delete_reason = Set(reason);
        active.hot_rank = Set(0.0);
        let post = active.update(&txn).await?;
        append(&txn, post.id, &PostDeleted(changed(&txn, &post).await?)).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(true)
    }
}

/// The event a post's change publishes: its text, tags and topic name travel with it (search indexes them).
pub async fn changed<C: ConnectionTrait>(db: &C, post: &post::Model) -> Result<PostChanged> {
    let topic = match post.topic_id {
        Some(id) => topic::Entity::find_by_id(id).one(db).await?.map(|t| t.name),
        None => None,
    };
    Ok(PostChanged {
        post_id: post.id,
        author_id: post.author_id,
        topic_id: post.topic_id,
        created_at: post.created_at,
        score: i64::from(post.score),
        mentions: parley_kit::mentions::nicknames(&format!("{}\n{}", post.title, post.body)),
        title: post.title.clone(),
        body: post.body.clone(),
        tags: post.tag_list(),
        topic,
    })
}

async fn set_tags<C: ConnectionTrait>(db: &C, post_id: Uuid, tags: &[String]) -> Result<()> {
    post_tag::Entity::delete_many()
        .filter(post_tag::Column::PostId.eq(post_id))
        .exec(db)
        .await?;
    if tags.is_empty() {
        return Ok(());
    }
    post_tag::Entity::insert_many(tags.iter().map(|tag| post_tag::ActiveModel {
        post_id: Set(post_id),
        tag: Set(tag.clone()),
    }))
    .exec(db)
    .await?;
    Ok(())
}

/// A post that exists and is not deleted.
pub async fn live_post<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<post::Model> {
    post::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or(PostsError::NotFound("post"))
}

/// One page of posts in `sort` order, keyset-paginated on (rank column, id).
pub async fn list<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    filter: &PostFilter,
    sort: PostSort,
    period: TopPeriod,
    page: &Page,
) -> Result<Vec<post::Model>> {
    Ok(list_query(viewer, filter, sort, period, page)?
        .all(db)
        .await?)
}

/// The query behind [`list`]: a keyset walk of the sort's index, keeping the posts `viewer` may see.
fn list_query(
    viewer: &Viewer,
    filter: &PostFilter,
    sort: PostSort,
    period: TopPeriod,
    page: &Page,
) -> Result<Select<post::Entity>> {
    let mut select = post::Entity::find()
        .filter(post::Column::DeletedAt.is_null())
        .filter(authors_visible_to(viewer, post::Column::AuthorId));
    if let Some(topic_id) = filter.topic_id {
        select = select.filter(post::Column::TopicId.eq(topic_id));
    }
    if let Some(author_id) = filter.author_id {
        select = select.filter(post::Column::AuthorId.eq(author_id));
    }
    if let Some(tag) = &filter.tag {
        if tag.len() > 256 {
            return Err(invalid("tag: 1 to 30 letters, digits or '-'"));
        }
        let tag = tag.trim().trim_start_matches('#').to_lowercase();
        select = select.filter(
            Expr::col(post::Column::Id).in_subquery(
                Query::select()
                    .column(post_tag::Column::PostId)
                    .from(post_tag::Entity)
                    .and_where(post_tag::Column::Tag.eq(tag))
                    .to_owned(),
            ),
        );
    }
    if sort == PostSort::Top {
        if let Some(window) = period.window() {
            select = select.filter(post::Column::CreatedAt.gte(Utc::now() - window));
        }
    }
    let select = keyset_desc(select, rank_of(sort), post::Column::Id, page.after.as_ref())
        .map_err(|e| invalid(e.message))?;
    Ok(select.limit(page.limit()))
}

/// The rank column of a sort (NEW has none: it is the time-ordered id).
fn rank_of(sort: PostSort) -> Option<(post::Column, RankType)> {
    match sort {
        PostSort::New => None,
        PostSort::Hot => Some((post::Column::HotRank, RankType::Float)),
        PostSort::Top => Some((post::Column::Score, RankType::Int)),
        PostSort::Controversial => Some((post::Column::ControversyRank, RankType::Float)),
    }
}

/// The cursor of a post in `sort` order.
pub fn sort_key(post: &post::Model, sort: PostSort) -> Vec<String> {
    let rank = match sort {
        PostSort::New => None,
        PostSort::Hot => Some(post.hot_rank.to_string()),
        PostSort::Top => Some(post.score.to_string()),
        PostSort::Controversial => Some(post.controversy_rank.to_string()),
    };
    pagination::sort_key(rank, post.id)
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, QueryTrait, Statement};

    use super::*;

    /// The plan SQLite picks for a list: it must walk the sort's index, never sort the table.
    async fn plan(sort: PostSort, filter: PostFilter, after: Option<Vec<String>>) -> String {
        let url = format!(
            "sqlite://{}?mode=rwc",
            parley_kit::testing::temp_dir("posts-plan")
                .join("posts.db")
                .display()
        );
        let db = parley_kit::store::connect_url::<migration_posts::Migrator>(&url, 1)
            .await
            .expect("store");
        let page = Page { first: 25, after };
        let sql = list_query(&Viewer::ANONYMOUS, &filter, sort, TopPeriod::All, &page)
            .expect("query")
            .build(db.get_database_backend())
            .to_string();
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!("EXPLAIN QUERY PLAN {sql}"),
            ))
            .await
            .expect("explain");
        rows.iter()
            .filter_map(|r| r.try_get::<String>("", "detail").ok())
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[tokio::test]
    async fn ranked_lists_walk_an_index_without_sorting() {
        let after = Some(vec!["1".to_string(), Uuid::now_v7().to_string()]);
        for (sort, index) in [
            (PostSort::Hot, "idx_posts_hot"),
            (PostSort::Top, "idx_posts_top"),
            (PostSort::Controversial, "idx_posts_controversial"),
        ] {
            let plan = plan(sort, PostFilter::default(), after.clone()).await;
            assert!(plan.contains(index), "{sort:?}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sort:?} sorts: {plan}");
        }
        let new = plan(PostSort::New, PostFilter::default(), None).await;
        assert!(!new.contains("TEMP B-TREE"), "NEW sorts: {new}");
        let topic = PostFilter {
            topic_id: Some(Uuid::now_v7()),
            ..Default::default()
        };
        let by_topic = plan(PostSort::Hot, topic, None).await;
        assert!(by_topic.contains("idx_posts_topic_hot"), "{by_topic}");
        assert!(!by_topic.contains("TEMP B-TREE"), "{by_topic}");
    }
}
