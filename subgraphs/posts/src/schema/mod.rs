//! The posts subgraph schema: queries, mutations, the live subscriptions, and the entities in `types`.

mod loaders;
mod types;

use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, InputObject, Object, Schema, Subscription, ID};
use futures::Stream;
use parley_kit::auth::require_identity;
use parley_kit::error::{coded, to_graphql_arc};
use parley_kit::events::contracts::{CommentCreated, VoteSubmitted, VoteUpdated};
use parley_kit::ids::{parse_id, to_id};
use parley_kit::pagination::{connection, Page};
use parley_kit::{ApiResult, ErrorCode, ResultExt};
use sea_orm::{ActiveEnum, DatabaseConnection};

use crate::comments::{created_from_event, live_comment};
use crate::posts::{NewPost, PostChanges, PostFilter, PostSort, TopPeriod};
use crate::service::Content;
use crate::store::{comment, post};
use crate::topics::{self, NewTopic};
use crate::validate;
use crate::visibility::{
    comment_facts, comment_visible, comment_visible_given, post_facts, post_visible,
    post_visible_given, visible_post, CommentFacts, PostFacts,
};
use loaders::{CommentKey, PostsLoader, TopicKey};
use parley_kit::audience::Viewer;
use parley_kit::live::{Live, PerEvent};
pub use types::{Comment, Post, Topic, User, VoteResult};

pub type PostsSchema = Schema<Query, Mutation, Subscription>;

pub fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription)
        .enable_federation()
        .enable_subscription_in_federation()
}

pub fn build(db: DatabaseConnection, content: Arc<Content>, live: Arc<Live>) -> PostsSchema {
    builder()
        .data(parley_kit::server::loader(PostsLoader(db.clone())))
        .data(db)
        .data(content)
        .data(live)
        .data(Arc::new(LiveReads::default()))
        .finish()
}

/// Live events' reads shared by all their subscribers ([`PerEvent`]): a vote's post, a new comment's facts.
pub struct LiveReads {
    posts: PerEvent<Option<PostFacts>>,
    comments: PerEvent<Option<CommentFacts>>,
}

/// Events whose shared reads are kept: far more than subscribers lag behind before the stream skips.
const SHARED_READS: usize = 1_024;

impl Default for LiveReads {
    fn default() -> Self {
        LiveReads {
            posts: PerEvent::new(SHARED_READS),
            comments: PerEvent::new(SHARED_READS),
        }
    }
}

fn content<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Arc<Content>> {
    ctx.data::<Arc<Content>>()
}

fn loader<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a DataLoader<PostsLoader>> {
    ctx.data::<DataLoader<PostsLoader>>()
}

/// Who is asking (for the visibility rule).
pub(crate) fn viewer(ctx: &Context<'_>) -> Viewer {
    Viewer::of(parley_kit::auth::identity(ctx))
}

/// `post` if the caller sees it.
async fn shown_post(ctx: &Context<'_>, post: Option<post::Model>) -> ApiResult<Option<Post>> {
    let Some(post) = post else { return Ok(None) };
    let db = ctx.data::<DatabaseConnection>()?;
    Ok(post_visible(db, &viewer(ctx), &post)
        .await
        .gql()?
        .then_some(Post(post)))
}

/// `comment` if the caller sees it (its post included).
async fn shown_comment(
    ctx: &Context<'_>,
    comment: Option<comment::Model>,
) -> ApiResult<Option<Comment>> {
    let Some(comment) = comment else {
        return Ok(None);
    };
    let db = ctx.data::<DatabaseConnection>()?;
    Ok(comment_visible(db, &viewer(ctx), &comment)
        .await
        .gql()?
        .then_some(Comment(comment)))
}

pub struct Query;

#[Object]
impl Query {
    /// A post by id; `NOT_FOUND` if there is none, it was deleted, or the caller may not see it.
    async fn post(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Post>> {
        let id = parse_id(&id)?;
        let found = loader(ctx)?
            .load_one(id)
            .await
            .map_err(|e| to_graphql_arc(&e))?;
        match shown_post(ctx, found).await? {
            Some(p) => Ok(Some(p)),
            None => Err(coded(ErrorCode::NotFound, "post not found")),
        }
    }

    /// Posts, ranked (`HOT` by default), optionally in one topic or with one tag. Keyset-paginated.
    async fn posts(
        &self,
        ctx: &Context<'_>,
        sort: Option<PostSort>,
        period: Option<TopPeriod>,
        topic: Option<String>,
        tag: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Post>> {
        let topic_id = match topic {
            Some(name) => Some(
                topics::topic_by_name(ctx.data::<DatabaseConnection>()?, &name)
                    .await
                    .gql()?
                    .ok_or_else(|| coded(ErrorCode::NotFound, "topic not found"))?
                    .id,
            ),
            None => None,
        };
        let filter = PostFilter {
            topic_id,
            tag,
            author_id: None,
        };
        types::post_page(ctx, filter, sort, period, first, after).await
    }

    /// A comment by id; `NOT_FOUND` if there is none or the caller may not see it (or its post).
    async fn comment(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Comment>> {
        let id = parse_id(&id)?;
        let found = loader(ctx)?
            .load_one(CommentKey(id))
            .await
            .map_err(|e| to_graphql_arc(&e))?;
        match shown_comment(ctx, found).await? {
            Some(c) => Ok(Some(c)),
            None => Err(coded(ErrorCode::NotFound, "comment not found")),
        }
    }

    /// A topic by name; `NOT_FOUND` if there is none.
    async fn topic(&self, ctx: &Context<'_>, name: String) -> ApiResult<Option<Topic>> {
        match topics::topic_by_name(ctx.data::<DatabaseConnection>()?, &name)
            .await
            .gql()?
        {
            Some(t) => Ok(Some(Topic(t))),
            None => Err(coded(ErrorCode::NotFound, "topic not found")),
        }
    }

    /// Topics by name.
    async fn topics(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Topic>> {
        let page = Page::new(first, after)?;
        let rows = topics::list(ctx.data::<DatabaseConnection>()?, &page)
            .await
            .gql()?;
        Ok(connection(&page, rows, |t| vec![t.name.clone()], Topic))
    }

    #[graphql(entity)]
    async fn find_post_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Post>> {
        let Ok(id) = parse_id(&id) else {
            return Ok(None);
        };
        let found = loader(ctx)?
            .load_one(id)
            .await
            .map_err(|e| to_graphql_arc(&e))?;
        shown_post(ctx, found).await
    }

    #[graphql(entity)]
    async fn find_comment_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Comment>> {
        let Ok(id) = parse_id(&id) else {
            return Ok(None);
        };
        let found = loader(ctx)?
            .load_one(CommentKey(id))
            .await
            .map_err(|e| to_graphql_arc(&e))?;
        shown_comment(ctx, found).await
    }

    #[graphql(entity)]
    async fn find_topic_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Topic>> {
        let Ok(id) = parse_id(&id) else {
            return Ok(None);
        };
        Ok(loader(ctx)?
            .load_one(TopicKey(id))
            .await
            .map_err(|e| to_graphql_arc(&e))?
            .map(Topic))
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> ApiResult<User> {
        Ok(User { id: parse_id(&id)? })
    }
}

#[derive(InputObject)]
pub struct CreateTopicInput {
    /// The address: 3–40 lower-case letters, digits, `-` or `_`.
    pub name: String,
    pub title: String,
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct CreatePostInput {
    pub title: String,
    /// Markdown.
    pub body: String,
    /// A topic's name.
    pub topic: Option<String>,
    #[graphql(default)]
    pub tags: Vec<String>,
    /// Media to attach, in order: the author's READY uploads for posts (images, videos), at most 10.
    #[graphql(default)]
    pub attachment_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct UpdatePostInput {
    pub title: Option<String>,
    pub body: Option<String>,
    pub tags: Option<Vec<String>>,
    /// Replaces the attachments (an empty list removes them).
    pub attachment_ids: Option<Vec<ID>>,
}

/// Media ids as given, or `BAD_USER_INPUT` for one that is not an id.
fn media_ids(ids: &[ID]) -> ApiResult<Vec<uuid::Uuid>> {
    ids.iter().map(parse_id).collect()
}

pub struct Mutation;

#[Object]
impl Mutation {
    async fn create_topic(&self, ctx: &Context<'_>, input: CreateTopicInput) -> ApiResult<Topic> {
        let me = require_identity(ctx)?;
        let input = NewTopic {
            name: input.name,
            title: input.title,
            description: input.description,
        };
        Ok(Topic(content(ctx)?.create_topic(me, input).await.gql()?))
    }

    async fn subscribe_topic(&self, ctx: &Context<'_>, topic_id: ID) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        content(ctx)?
            .subscribe_topic(me, parse_id(&topic_id)?, true)
            .await
            .gql()
    }

    /// Returns false (no longer subscribed).
    async fn unsubscribe_topic(&self, ctx: &Context<'_>, topic_id: ID) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        content(ctx)?
            .subscribe_topic(me, parse_id(&topic_id)?, false)
            .await
            .gql()
    }

    async fn create_post(&self, ctx: &Context<'_>, input: CreatePostInput) -> ApiResult<Post> {
        let me = require_identity(ctx)?;
        let input = NewPost {
            title: input.title,
            body: input.body,
            topic: input.topic,
            tags: input.tags,
            attachments: media_ids(&input.attachment_ids)?,
        };
        Ok(Post(content(ctx)?.create_post(me, input).await.gql()?))
    }

    /// Only the author edits a post.
    async fn update_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePostInput,
    ) -> ApiResult<Post> {
        let me = require_identity(ctx)?;
        let changes = PostChanges {
            title: input.title,
            body: input.body,
            tags: input.tags,
            attachments: input.attachment_ids.as_deref().map(media_ids).transpose()?,
        };
        Ok(Post(
            content(ctx)?
                .update_post(me, parse_id(&id)?, changes)
                .await
                .gql()?,
        ))
    }

    /// Soft delete by the author, or by a moderator or admin with an optional reason.
    async fn delete_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        content(ctx)?
            .delete_post(me, parse_id(&id)?, reason)
            .await
            .gql()
    }

    /// A comment on a post, or a reply to one of its comments (`parentId`).
    async fn create_comment(
        &self,
        ctx: &Context<'_>,
        post_id: ID,
        body: String,
        parent_id: Option<ID>,
    ) -> ApiResult<Comment> {
        let me = require_identity(ctx)?;
        let parent = parent_id.as_ref().map(parse_id).transpose()?;
        Ok(Comment(
            content(ctx)?
                .create_comment(me, parse_id(&post_id)?, parent, &body)
                .await
                .gql()?,
        ))
    }

    async fn update_comment(&self, ctx: &Context<'_>, id: ID, body: String) -> ApiResult<Comment> {
        let me = require_identity(ctx)?;
        Ok(Comment(
            content(ctx)?
                .update_comment(me, parse_id(&id)?, &body)
                .await
                .gql()?,
        ))
    }

    async fn delete_comment(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        content(ctx)?.delete_comment(me, parse_id(&id)?).await.gql()
    }

    /// Votes on a post or comment: 1 up, -1 down, 0 removes the vote.
    async fn vote(&self, ctx: &Context<'_>, target_id: ID, value: i32) -> ApiResult<VoteResult> {
        let me = require_identity(ctx)?;
        let value = validate::vote(value).gql()?;
        let totals = content(ctx)?
            .vote(me, parse_id(&target_id)?, value)
            .await
            .gql()?;
        Ok(VoteResult {
            target_id: to_id(totals.target_id),
            score: totals.score,
            upvotes: totals.upvotes,
            downvotes: totals.downvotes,
            my_vote: i32::from(totals.my_vote),
        })
    }
}

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Each new comment (or reply) on the post, as it is written.
    async fn comment_added(
        &self,
        ctx: &Context<'_>,
        post_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = Comment>> {
        let post_id = parse_id(&post_id)?;
        let db = ctx.data::<DatabaseConnection>()?.clone();
        let viewer = viewer(ctx);
        visible_post(&db, &viewer, post_id).await.gql()?;
        let live = ctx.data::<Arc<Live>>()?;
        let shared = ctx.data::<Arc<LiveReads>>()?.clone();
        // Each comment is checked as it comes: its author's privacy and blocks, and the post's (an author
        // going private, or deleting the post, ends what others see at once). What every viewer reads
        // alike is read once per event; only the viewer's own part per subscriber.
        Ok(live.stream(
            &post_id.to_string(),
            move |e| e.is::<CommentCreated>(),
            move |e| {
                let (db, shared) = (db.clone(), shared.clone());
                async move {
                    let facts = shared
                        .comments
                        .get_or_load(e.id, || async {
                            let CommentCreated(changed) = e.decode::<CommentCreated>().ok()??;
                            // The event carries the new comment (older events: read it).
                            let comment = match created_from_event(&changed) {
                                Some(comment) => comment,
                                None => live_comment(&db, changed.comment_id).await.ok()?,
                            };
                            comment_facts(&db, comment).await.ok()?
                        })
                        .await?;
                    comment_visible_given(&db, &viewer, &facts)
                        .await
                        .ok()?
                        .then_some(Comment(facts.comment))
                }
            },
        ))
    }

    /// The post, each time a vote changes its score.
    async fn post_score_changed(
        &self,
        ctx: &Context<'_>,
        post_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = Post>> {
        let post_id = parse_id(&post_id)?;
        let db = ctx.data::<DatabaseConnection>()?.clone();
        let viewer = viewer(ctx);
        visible_post(&db, &viewer, post_id).await.gql()?;
        let live = ctx.data::<Arc<Live>>()?;
        let shared = ctx.data::<Arc<LiveReads>>()?.clone();
        Ok(live.stream(
            &post_id.to_string(),
            move |e| {
                // Peeks at the one field instead of decoding every vote on the post.
                (e.is::<VoteSubmitted>() || e.is::<VoteUpdated>())
                    && e.payload.get("target_kind").and_then(|k| k.as_str())
                        == Some(crate::store::vote::TargetKind::Post.to_value().as_str())
            },
            move |e| {
                let (db, shared) = (db.clone(), shared.clone());
                async move {
                    let facts = shared
                        .posts
                        .get_or_load(e.id, || async {
                            post_facts(&db, post_id).await.ok().flatten()
                        })
                        .await?;
                    post_visible_given(&db, &viewer, &facts)
                        .await
                        .ok()?
                        .then_some(Post(facts.post))
                }
            },
        ))
    }
}
