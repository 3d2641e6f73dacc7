//! Media attached to a post: at most [`MAX_ATTACHMENTS`], each the author's own READY upload made for posts
//! (an image or a video), as media's events told posts ([`parley_kit::known_media`]). Media resolves them
//! for whoever the post's rule lets read it (the router brings the references). An upload its owner deletes
//! leaves every post it was on.

use std::collections::HashMap;

use parley_kit::events::append;
use parley_kit::events::contracts::{MediaUse, PostMediaAttached};
use parley_kit::known_media;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::error::{invalid, Result};
use crate::store::post_attachment;

/// The most media a post carries.
pub const MAX_ATTACHMENTS: usize = 10;

/// `ids` in order with repeats dropped, if there are at most [`MAX_ATTACHMENTS`] (checked before any read).
pub fn unique(ids: &[Uuid]) -> Result<Vec<Uuid>> {
    let mut unique = Vec::with_capacity(ids.len().min(MAX_ATTACHMENTS + 1));
    for id in ids {
        if !unique.contains(id) {
            unique.push(*id);
            if unique.len() > MAX_ATTACHMENTS {
                return Err(invalid(format!("attachmentIds: at most {MAX_ATTACHMENTS}")));
            }
        }
    }
    Ok(unique)
}

/// `unique` (from [`unique`]) if each is `author`'s READY upload for posts.
pub async fn checked<C: ConnectionTrait>(
    db: &C,
    author: Uuid,
    unique: Vec<Uuid>,
) -> Result<Vec<Uuid>> {
    let usable = known_media::usable(db, author, &unique, "post", &["IMAGE", "VIDEO"]).await?;
    if usable.len() != unique.len() {
        return Err(invalid(
            "attachmentIds: each must be a ready image or video of yours uploaded for posts",
        ));
    }
    Ok(unique)
}

/// Makes `ids` the attachments of post `post_id`, in that order; each is reported to media as used.
pub async fn set(txn: &DatabaseTransaction, post_id: Uuid, ids: &[Uuid]) -> Result<()> {
    post_attachment::Entity::delete_many()
        .filter(post_attachment::Column::PostId.eq(post_id))
        .exec(txn)
        .await?;
    if ids.is_empty() {
        return Ok(());
    }
    for media_id in ids {
        let used = MediaUse {
            media_id: *media_id,
            holder_id: post_id,
        };
        append(txn, *media_id, &PostMediaAttached(used)).await?;
    }
    let rows = ids
        .iter()
        .enumerate()
        .map(|(position, media_id)| post_attachment::ActiveModel {
            post_id: Set(post_id),
            media_id: Set(*media_id),
            position: Set(position as i32),
        });
    post_attachment::Entity::insert_many(rows).exec(txn).await?;
    Ok(())
}

/// The attachments of each of `posts`, in order (posts without any are absent).
pub async fn of_posts(
    db: &DatabaseConnection,
    posts: &[Uuid],
) -> std::result::Result<HashMap<Uuid, Vec<Uuid>>, DbErr> {
    let rows = post_attachment::Entity::find()
        .filter(post_attachment::Column::PostId.is_in(posts.iter().copied()))
        .order_by_asc(post_attachment::Column::Position)
        .all(db)
        .await?;
    let mut by_post: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for row in rows {
        by_post.entry(row.post_id).or_default().push(row.media_id);
    }
    Ok(by_post)
}

/// Takes a deleted upload off every post (`MediaDeleted`).
pub async fn detach<C: ConnectionTrait>(db: &C, media_id: Uuid) -> std::result::Result<(), DbErr> {
    post_attachment::Entity::delete_many()
        .filter(post_attachment::Column::MediaId.eq(media_id))
        .exec(db)
        .await?;
    Ok(())
}
