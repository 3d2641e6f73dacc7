//! Threaded comments: any depth, a materialised path per comment (subtree = one range scan), per-level lists
//! sorted HOT/TOP/NEW with keyset pagination, `commentCount` and `replyCount` kept in the same transaction.

use chrono::Utc;
use parley_kit::events::append;
use parley_kit::events::contracts::{
    CommentChanged, CommentCreated, CommentDeleted, CommentUpdated,
};
use parley_kit::pagination::{self, keyset_desc, Page, RankType};
use parley_kit::store::begin_write;
use parley_kit::{rank, Identity, Role};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::error::{invalid, PostsError, Result};
use crate::posts::live_post;
use crate::service::{ensure_not_blocked, Content};
use crate::store::{comment, post};
use crate::validate;
use crate::visibility::{visible_comment, visible_post};
use parley_kit::audience::{authors_visible_to, Viewer};

/// How one level of a comment tree is ordered.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CommentSort {
    #[default]
    Hot,
    Top,
    New,
}

/// Deepest reply level (keeps paths bounded).
const MAX_DEPTH: i32 = 64;

impl Content {
    pub async fn create_comment(
        &self,
        me: &Identity,
        post_id: Uuid,
        parent_id: Option<Uuid>,
        body: &str,
    ) -> Result<comment::Model> {
        let body = validate::comment(body)?;
        let viewer = Viewer::of(Some(me));
        let post = live_post(&self.db, post_id).await?;
        ensure_not_blocked(&self.db, me.user_id, post.author_id).await?;
        // A post the caller cannot see (a private author they do not follow) is not there for them.
        visible_post(&self.db, &viewer, post_id).await?;
        let parent = match parent_id {
            Some(id) => {
                let parent = live_comment(&self.db, id).await?;
                visible_comment(&self.db, &viewer, id).await?;
                if parent.post_id != post_id {
                    return Err(invalid("parentId: that comment is on another post"));
                }
                if parent.depth + 1 > MAX_DEPTH {
                    return Err(invalid("the thread is too deep to reply here"));
                }
                ensure_not_blocked(&self.db, me.user_id, parent.author_id).await?;
                Some(parent)
            }
            None => None,
        };
        let id = Uuid::now_v7();
        let now = Utc::now();
        let (path, depth) = match &parent {
            Some(p) => (format!("{}/{}", p.path, id.simple()), p.depth + 1),
            None => (id.simple().to_string(), 0),
        };
        let txn = begin_write(&self.db).await?;
        let created = comment::ActiveModel {
            id: Set(id),
            post_id: Set(post_id),
            parent_id: Set(parent_id),
            author_id: Set(me.user_id),
            body: Set(body),
            path: Set(path),
            depth: Set(depth),
            score: Set(0),
            upvotes: Set(0),
            downvotes: Set(0),
            reply_count: Set(0),
            hot_rank: Set(rank::hot(0, now, now)),
            created_at: Set(now),
            updated_at: Set(now),
            deleted_at: Set(None),
        }
        .insert(&txn)
        .await?;
        post::Entity::update_many()
            .col_expr(
                post::Column::CommentCount,
                Expr::col(post::Column::CommentCount).add(1),
            )
            .filter(post::Column::Id.eq(post_id))
            .exec(&txn)
            .await?;
        if let Some(parent) = &parent {
            comment::Entity::update_many()
                .col_expr(
                    comment::Column::ReplyCount,
                    Expr::col(comment::Column::ReplyCount).add(1),
                )
                .filter(comment::Column::Id.eq(parent.id))
                .exec(&txn)
                .await?;
        }
        let event = CommentChanged {
            comment_id: created.id,
            post_id,
            parent_id,
            author_id: me.user_id,
            post_author_id: post.author_id,
            parent_author_id: parent.as_ref().map(|p| p.author_id),
            mentions: parley_kit::mentions::nicknames(&created.body),
            body: created.body.clone(),
            created_at: Some(created.created_at),
            score: i64::from(created.score),
            path: Some(created.path.clone()),
            depth: created.depth,
        };
        append(&txn, post_id, &CommentCreated(event)).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(created)
    }

    /// Only the author edits a comment.
    pub async fn update_comment(
        &self,
        me: &Identity,
        id: Uuid,
        body: &str,
    ) -> Result<comment::Model> {
        let body = validate::comment(body)?;
        let current = live_comment(&self.db, id).await?;
        if current.author_id != me.user_id {
            return Err(PostsError::Forbidden("only the author edits a comment"));
        }
        let post = live_post(&self.db, current.post_id).await?;
        let txn = begin_write(&self.db).await?;
        let mut active: comment::ActiveModel = current.into();
        active.body = Set(body);
        active.updated_at = Set(Utc::now());
        let updated = active.update(&txn).await?;
        append(
            &txn,
            updated.post_id,
            &CommentUpdated(changed(&updated, post.author_id)),
        )
        .await?;
        txn.commit().await?;
        self.events.wake();
        Ok(updated)
    }

    /// Soft delete by the author or a moderator: the text goes, the place in the thread (and its replies) stays.
    pub async fn delete_comment(&self, me: &Identity, id: Uuid) -> Result<bool> {
        let current = live_comment(&self.db, id).await?;
        if current.author_id != me.user_id && !me.has_role(Role::Moderator) {
            return Err(PostsError::Forbidden(
                "only the author or a moderator deletes a comment",
            ));
        }
        let post_author = post::Entity::find_by_id(current.post_id)
            .one(&self.db)
            .await?
            .map_or(current.author_id, |p| p.author_id);
        let txn = begin_write(&self.db).await?;
        let post_id = current.post_id;
        let mut active: comment::ActiveModel = current.into();
        active.body = Set(String::new());
        active.deleted_at = Set(Some(Utc::now()));
        let deleted = active.update(&txn).await?;
        post::Entity::update_many()
            .col_expr(
                post::Column::CommentCount,
                Expr::col(post::Column::CommentCount).sub(1),
            )
            .filter(post::Column::Id.eq(post_id))
            .exec(&txn)
            .await?;
        append(
            &txn,
            post_id,
            &CommentDeleted(changed(&deleted, post_author)),
        )
        .await?;
        txn.commit().await?;
        self.events.wake();
        Ok(true)
    }
}

fn changed(c: &comment::Model, post_author_id: Uuid) -> CommentChanged {
    CommentChanged {
        comment_id: c.id,
        post_id: c.post_id,
        parent_id: c.parent_id,
        author_id: c.author_id,
        post_author_id,
        parent_author_id: None,
        mentions: parley_kit::mentions::nicknames(&c.body),
        body: c.body.clone(),
        created_at: Some(c.created_at),
        score: i64::from(c.score),
        path: Some(c.path.clone()),
        depth: c.depth,
    }
}

/// A new comment as its `CommentCreated` event describes it (a new comment has no votes or replies yet), so
/// each live subscriber does not read it again; `None` for an event written before events carried it.
pub fn created_from_event(event: &CommentChanged) -> Option<comment::Model> {
    let created_at = event.created_at?;
    Some(comment::Model {
        id: event.comment_id,
        post_id: event.post_id,
        parent_id: event.parent_id,
        author_id: event.author_id,
        body: event.body.clone(),
        path: event.path.clone()?,
        depth: event.depth,
        score: 0,
        upvotes: 0,
        downvotes: 0,
        reply_count: 0,
        hot_rank: rank::hot(0, created_at, created_at),
        created_at,
        updated_at: created_at,
        deleted_at: None,
    })
}

pub async fn live_comment<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<comment::Model> {
    comment::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|c| c.deleted_at.is_none())
        .ok_or(PostsError::NotFound("comment"))
}

/// One level of a thread: the post's top-level comments (`parent = None`) or a comment's replies.
pub async fn level<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    post_id: Uuid,
    parent: Option<Uuid>,
    sort: CommentSort,
    page: &Page,
) -> Result<Vec<comment::Model>> {
    let mut select = comment::Entity::find()
        .filter(comment::Column::PostId.eq(post_id))
        .filter(authors_visible_to(viewer, comment::Column::AuthorId));
    select = match parent {
        Some(p) => select.filter(comment::Column::ParentId.eq(p)),
        None => select.filter(comment::Column::ParentId.is_null()),
    };
    let rank = match sort {
        CommentSort::New => None,
        CommentSort::Hot => Some((comment::Column::HotRank, RankType::Float)),
        CommentSort::Top => Some((comment::Column::Score, RankType::Int)),
    };
    let select = keyset_desc(select, rank, comment::Column::Id, page.after.as_ref())
        .map_err(|e| invalid(e.message))?;
    Ok(select.limit(page.limit()).all(db).await?)
}

pub fn sort_key(c: &comment::Model, sort: CommentSort) -> Vec<String> {
    let rank = match sort {
        CommentSort::New => None,
        CommentSort::Hot => Some(c.hot_rank.to_string()),
        CommentSort::Top => Some(c.score.to_string()),
    };
    pagination::sort_key(rank, c.id)
}

/// Every comment below `c`, in thread order (depth first), paginated by path: one range scan.
pub async fn descendants<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    c: &comment::Model,
    page: &Page,
) -> Result<Vec<comment::Model>> {
    let lower = format!("{}/", c.path);
    // '0' is the character after '/', so [path/, path0) is exactly the subtree.
    let upper = format!("{}0", c.path);
    let mut select = comment::Entity::find()
        .filter(comment::Column::Path.gte(lower))
        .filter(comment::Column::Path.lt(upper))
        .filter(authors_visible_to(viewer, comment::Column::AuthorId));
    if let Some(after) = page.after.as_ref().and_then(|a| a.first()) {
        select = select.filter(comment::Column::Path.gt(after.clone()));
    }
    Ok(select
        .order_by_asc(comment::Column::Path)
        .limit(page.limit())
        .all(db)
        .await?)
}
