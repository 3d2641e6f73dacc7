//! Which posts and comments a viewer sees (DESIGN §4): a deleted post is for staff only; otherwise its
//! author decides, by the kit's audience rule (privacy, blocks). A comment needs its post visible and its own
//! author visible (a deleted comment keeps its place in the thread, emptied). Direct reads, entities, live
//! events and writes go through [`visible_post`] / [`visible_comment`]; lists filter in SQL with
//! [`parley_kit::audience::authors_visible_to`], so pages stay whole. Live events split the check: what every
//! viewer reads alike ([`PostFacts`], [`CommentFacts`]) once per event, the viewer's own part per subscriber.

use parley_kit::audience::{can_see, can_see_given, is_private, Viewer};
use sea_orm::{ConnectionTrait, EntityTrait};
use uuid::Uuid;

use crate::error::{PostsError, Result};
use crate::store::{comment, post};

/// Whether `viewer` sees `post`.
pub async fn post_visible<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    post: &post::Model,
) -> Result<bool> {
    if post.deleted_at.is_some() && !viewer.staff {
        return Ok(false);
    }
    Ok(can_see(db, viewer, post.author_id).await?)
}

/// Whether `viewer` sees `comment` (its post included).
pub async fn comment_visible<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    comment: &comment::Model,
) -> Result<bool> {
    if !can_see(db, viewer, comment.author_id).await? {
        return Ok(false);
    }
    match post::Entity::find_by_id(comment.post_id).one(db).await? {
        Some(post) => post_visible(db, viewer, &post).await,
        None => Ok(false),
    }
}

/// The post, if `viewer` sees it; else `NOT_FOUND` (whether it exists is not the viewer's to know).
pub async fn visible_post<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: Uuid,
) -> Result<post::Model> {
    let post = post::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(PostsError::NotFound("post"))?;
    if post_visible(db, viewer, &post).await? {
        Ok(post)
    } else {
        Err(PostsError::NotFound("post"))
    }
}

/// The comment, if `viewer` sees it; else `NOT_FOUND`.
pub async fn visible_comment<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: Uuid,
) -> Result<comment::Model> {
    let comment = comment::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(PostsError::NotFound("comment"))?;
    if comment_visible(db, viewer, &comment).await? {
        Ok(comment)
    } else {
        Err(PostsError::NotFound("comment"))
    }
}

/// What every viewer's check of a post reads alike: the post and whether its author is private.
#[derive(Debug, Clone)]
pub struct PostFacts {
    pub post: post::Model,
    pub author_private: bool,
}

/// The post's [`PostFacts`] (none: no such post).
pub async fn post_facts<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<PostFacts>> {
    let Some(post) = post::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let author_private = is_private(db, post.author_id).await?;
    Ok(Some(PostFacts {
        post,
        author_private,
    }))
}

/// [`post_visible`] from facts read once for every viewer.
pub async fn post_visible_given<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    facts: &PostFacts,
) -> Result<bool> {
    if facts.post.deleted_at.is_some() && !viewer.staff {
        return Ok(false);
    }
    Ok(can_see_given(db, viewer, facts.post.author_id, facts.author_private).await?)
}

/// What every viewer's check of a new comment reads alike: the comment, its post's facts and whether its
/// author is private.
#[derive(Debug, Clone)]
pub struct CommentFacts {
    pub comment: comment::Model,
    pub author_private: bool,
    pub post: PostFacts,
}

/// The comment's [`CommentFacts`] (none: its post is gone).
pub async fn comment_facts<C: ConnectionTrait>(
    db: &C,
    comment: comment::Model,
) -> Result<Option<CommentFacts>> {
    let Some(post) = post_facts(db, comment.post_id).await? else {
        return Ok(None);
    };
    let author_private = is_private(db, comment.author_id).await?;
    Ok(Some(CommentFacts {
        comment,
        author_private,
        post,
    }))
}

/// [`comment_visible`] from facts read once for every viewer.
pub async fn comment_visible_given<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    facts: &CommentFacts,
) -> Result<bool> {
    Ok(
        can_see_given(db, viewer, facts.comment.author_id, facts.author_private).await?
            && post_visible_given(db, viewer, &facts.post).await?,
    )
}
