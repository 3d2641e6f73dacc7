//! Which posts and comments a viewer sees (DESIGN §4): a deleted post is for staff only; otherwise its
//! author decides, by the kit's audience rule (privacy, blocks). A comment needs its post visible and its own
//! author visible (a deleted comment keeps its place in the thread, emptied). Direct reads, entities, live
//! events and writes go through [`visible_post`] / [`visible_comment`]; lists filter in SQL with
//! [`parley_kit::audience::authors_visible_to`], so pages stay whole.

use parley_kit::audience::{can_see, Viewer};
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
