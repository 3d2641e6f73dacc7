//! The posts subgraph's GraphQL types: `Post`, `Comment`, `Topic` (entities it owns), `User` (extended with
//! `posts`) and `VoteResult`.

use async_graphql::connection::Connection;
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use parley_kit::auth::identity;
use parley_kit::error::to_graphql_arc;
use parley_kit::ids::to_id;
use parley_kit::pagination::{connection, Page};
use parley_kit::{ApiResult, ResultExt};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use parley_kit::known_media::MediaRef;

use super::loaders::{AttachmentsKey, CommentKey, PostsLoader, TopicKey, VoteKey};
use crate::comments::{self, CommentSort};
use crate::posts::{self, PostFilter, PostSort, TopPeriod};
use crate::store::{comment, post, topic};

fn loader<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a DataLoader<PostsLoader>> {
    ctx.data::<DataLoader<PostsLoader>>()
}

fn db<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a DatabaseConnection> {
    ctx.data::<DatabaseConnection>()
}

async fn my_vote(ctx: &Context<'_>, target: Uuid) -> ApiResult<i32> {
    let Some(me) = identity(ctx) else {
        return Ok(0);
    };
    let vote = loader(ctx)?
        .load_one(VoteKey {
            user: me.user_id,
            target,
        })
        .await
        .map_err(|e| to_graphql_arc(&e))?;
    Ok(i32::from(vote.unwrap_or(0)))
}

/// A page of posts as a connection.
pub async fn post_page(
    ctx: &Context<'_>,
    filter: PostFilter,
    sort: Option<PostSort>,
    period: Option<TopPeriod>,
    first: Option<i32>,
    after: Option<String>,
) -> ApiResult<Connection<String, Post>> {
    let page = Page::new(first, after)?;
    let sort = sort.unwrap_or_default();
    let viewer = super::viewer(ctx);
    let period = period.unwrap_or_default();
    let rows = posts::list(db(ctx)?, &viewer, &filter, sort, period, &page)
        .await
        .gql()?;
    Ok(connection(&page, rows, |p| posts::sort_key(p, sort), Post))
}

async fn comment_page(
    ctx: &Context<'_>,
    post_id: Uuid,
    parent: Option<Uuid>,
    sort: Option<CommentSort>,
    first: Option<i32>,
    after: Option<String>,
) -> ApiResult<Connection<String, Comment>> {
    let page = Page::new(first, after)?;
    let sort = sort.unwrap_or_default();
    let viewer = super::viewer(ctx);
    let rows = comments::level(db(ctx)?, &viewer, post_id, parent, sort, &page)
        .await
        .gql()?;
    Ok(connection(
        &page,
        rows,
        |c| comments::sort_key(c, sort),
        Comment,
    ))
}

/// A reference to a user; its fields come from the users subgraph (and others that extend it).
pub struct User {
    pub id: Uuid,
}

#[Object(extends)]
impl User {
    #[graphql(external)]
    async fn id(&self) -> ID {
        to_id(self.id)
    }

    /// This user's posts, newest first by default.
    async fn posts(
        &self,
        ctx: &Context<'_>,
        sort: Option<PostSort>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Post>> {
        let filter = PostFilter {
            author_id: Some(self.id),
            ..Default::default()
        };
        post_page(
            ctx,
            filter,
            Some(sort.unwrap_or(PostSort::New)),
            None,
            first,
            after,
        )
        .await
    }
}

pub struct Post(pub post::Model);

#[Object]
impl Post {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// Markdown, as written.
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn author(&self) -> User {
        User {
            id: self.0.author_id,
        }
    }
    async fn topic(&self, ctx: &Context<'_>) -> ApiResult<Option<Topic>> {
        let Some(id) = self.0.topic_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?
            .load_one(TopicKey(id))
            .await
            .map_err(|e| to_graphql_arc(&e))?
            .map(Topic))
    }
    async fn tags(&self) -> Vec<String> {
        self.0.tag_list()
    }
    /// Images and videos, in the author's order (resolved by media for whoever may read the post).
    async fn attachments(&self, ctx: &Context<'_>) -> ApiResult<Vec<MediaRef>> {
        let ids = loader(ctx)?
            .load_one(AttachmentsKey(self.0.id))
            .await
            .map_err(|e| to_graphql_arc(&e))?
            .unwrap_or_default();
        Ok(ids.into_iter().map(MediaRef::new).collect())
    }
    async fn score(&self) -> i32 {
        self.0.score
    }
    async fn upvotes(&self) -> i32 {
        self.0.upvotes
    }
    async fn downvotes(&self) -> i32 {
        self.0.downvotes
    }
    /// The caller's vote: -1, 0 or 1 (0 when signed out).
    async fn my_vote(&self, ctx: &Context<'_>) -> ApiResult<i32> {
        my_vote(ctx, self.0.id).await
    }
    async fn comment_count(&self) -> i32 {
        self.0.comment_count
    }
    /// Top-level comments; each one's `replies` is the next level.
    async fn comments(
        &self,
        ctx: &Context<'_>,
        sort: Option<CommentSort>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Comment>> {
        comment_page(ctx, self.0.id, None, sort, first, after).await
    }
    async fn hot_rank(&self) -> f64 {
        self.0.hot_rank
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct Comment(pub comment::Model);

#[Object]
impl Comment {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Empty once deleted (the comment keeps its place in the thread).
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn deleted(&self) -> bool {
        self.0.deleted_at.is_some()
    }
    async fn author(&self) -> User {
        User {
            id: self.0.author_id,
        }
    }
    /// `NOT_FOUND` when the caller may not see the post (deleted, or its author's privacy or blocks).
    async fn post(&self, ctx: &Context<'_>) -> ApiResult<Post> {
        let found = loader(ctx)?
            .load_one(self.0.post_id)
            .await
            .map_err(|e| to_graphql_arc(&e))?;
        super::shown_post(ctx, found).await?.ok_or_else(|| {
            parley_kit::error::coded(parley_kit::ErrorCode::NotFound, "post not found")
        })
    }
    /// `null` for a top-level comment, or one whose parent the caller may not see.
    async fn parent(&self, ctx: &Context<'_>) -> ApiResult<Option<Comment>> {
        let Some(id) = self.0.parent_id else {
            return Ok(None);
        };
        let found = loader(ctx)?
            .load_one(CommentKey(id))
            .await
            .map_err(|e| to_graphql_arc(&e))?;
        super::shown_comment(ctx, found).await
    }
    async fn replies(
        &self,
        ctx: &Context<'_>,
        sort: Option<CommentSort>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Comment>> {
        comment_page(ctx, self.0.post_id, Some(self.0.id), sort, first, after).await
    }
    async fn reply_count(&self) -> i32 {
        self.0.reply_count
    }
    /// The whole subtree below this comment in thread order (depth first), one range scan.
    async fn descendants(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Comment>> {
        let page = Page::new(first, after)?;
        let viewer = super::viewer(ctx);
        let rows = comments::descendants(db(ctx)?, &viewer, &self.0, &page)
            .await
            .gql()?;
        Ok(connection(&page, rows, |c| vec![c.path.clone()], Comment))
    }
    async fn depth(&self) -> i32 {
        self.0.depth
    }
    async fn score(&self) -> i32 {
        self.0.score
    }
    async fn upvotes(&self) -> i32 {
        self.0.upvotes
    }
    async fn downvotes(&self) -> i32 {
        self.0.downvotes
    }
    async fn my_vote(&self, ctx: &Context<'_>) -> ApiResult<i32> {
        my_vote(ctx, self.0.id).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct Topic(pub topic::Model);

#[Object]
impl Topic {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn creator(&self) -> User {
        User {
            id: self.0.creator_id,
        }
    }
    async fn subscriber_count(&self) -> i32 {
        self.0.subscriber_count
    }
    /// Whether the caller subscribed (false when signed out).
    async fn is_subscribed(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let Some(me) = identity(ctx) else {
            return Ok(false);
        };
        crate::topics::is_subscribed(db(ctx)?, me.user_id, self.0.id)
            .await
            .gql()
    }
    async fn posts(
        &self,
        ctx: &Context<'_>,
        sort: Option<PostSort>,
        period: Option<TopPeriod>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Post>> {
        let filter = PostFilter {
            topic_id: Some(self.0.id),
            ..Default::default()
        };
        post_page(ctx, filter, sort, period, first, after).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A target's totals after a vote.
#[derive(SimpleObject)]
pub struct VoteResult {
    pub target_id: ID,
    pub score: i32,
    pub upvotes: i32,
    pub downvotes: i32,
    pub my_vote: i32,
}
