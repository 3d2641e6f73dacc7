//! The social graph's reads: follower, following, friend and request lists (newest first, keyset on the
//! follow's UUIDv7 id), and the batched lookups behind counts and flags.

use std::collections::{HashMap, HashSet};

use parley_kit::pagination::Page;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, ExprTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::error::Result;
use crate::graph::{blocked_either_way, find_follow};
use crate::store::{account, block, follow};
use parley_kit::audience::Viewer;

/// Which list of a user's relations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// Accepted follows towards the user; the node is the follower.
    Followers,
    /// Accepted follows by the user; the node is the followee.
    Following,
    /// Following and followed back; the node is the friend.
    Friends,
    /// Pending requests towards the user; the node is the requester.
    Requests,
}

/// One row of a list: the other user and the follow id (the cursor).
pub struct Entry {
    pub follow_id: Uuid,
    pub user_id: Uuid,
}

pub async fn list(
    db: &DatabaseConnection,
    user: Uuid,
    kind: ListKind,
    page: &Page,
) -> Result<Vec<Entry>> {
    let mut select = follow::Entity::find();
    select = match kind {
        ListKind::Followers => select
            .filter(follow::Column::FolloweeId.eq(user))
            .filter(follow::Column::Status.eq(follow::Status::Accepted)),
        ListKind::Requests => select
            .filter(follow::Column::FolloweeId.eq(user))
            .filter(follow::Column::Status.eq(follow::Status::Pending)),
        ListKind::Following => select
            .filter(follow::Column::FollowerId.eq(user))
            .filter(follow::Column::Status.eq(follow::Status::Accepted)),
        ListKind::Friends => select
            .filter(follow::Column::FollowerId.eq(user))
            .filter(follow::Column::Status.eq(follow::Status::Accepted))
            .filter(
                Expr::col(follow::Column::FolloweeId).in_subquery(
                    Query::select()
                        .column(follow::Column::FollowerId)
                        .from(follow::Entity)
                        .and_where(follow::Column::FolloweeId.eq(user))
                        .and_where(follow::Column::Status.eq(follow::Status::Accepted))
                        .to_owned(),
                ),
            ),
    };
    if let Some(after) = page.after.as_ref().and_then(|a| a.first()) {
        let after = Uuid::parse_str(after)
            .map_err(|_| crate::error::SocialError::NoRelation("cursor position"))?;
        select = select.filter(follow::Column::Id.lt(after));
    }
    let rows = select
        .order_by_desc(follow::Column::Id)
        .limit(page.limit())
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|f| Entry {
            follow_id: f.id,
            user_id: if matches!(kind, ListKind::Followers | ListKind::Requests) {
                f.follower_id
            } else {
                f.followee_id
            },
        })
        .collect())
}

#[derive(FromQueryResult)]
struct CountRow {
    user_id: Uuid,
    n: i64,
}

/// Accepted followers (or followings) of many users in one grouped query.
pub async fn counts(
    db: &DatabaseConnection,
    users: &[Uuid],
    followers: bool,
) -> Result<HashMap<Uuid, i64>> {
    let (group, filter) = if followers {
        (follow::Column::FolloweeId, follow::Column::FolloweeId)
    } else {
        (follow::Column::FollowerId, follow::Column::FollowerId)
    };
    let rows = follow::Entity::find()
        .select_only()
        .column_as(group, "user_id")
        .column_as(follow::Column::Id.count(), "n")
        .filter(filter.is_in(users.iter().copied()))
        .filter(follow::Column::Status.eq(follow::Status::Accepted))
        .group_by(group)
        .into_model::<CountRow>()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r.n)).collect())
}

/// Of `targets`, those `viewer` follows (accepted).
pub async fn followed_by(
    db: &DatabaseConnection,
    viewer: Uuid,
    targets: &[Uuid],
) -> Result<HashSet<Uuid>> {
    let rows = follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(viewer))
        .filter(follow::Column::FolloweeId.is_in(targets.iter().copied()))
        .filter(follow::Column::Status.eq(follow::Status::Accepted))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|f| f.followee_id).collect())
}

/// Of `targets`, those `viewer` blocked.
pub async fn blocked_by(
    db: &DatabaseConnection,
    viewer: Uuid,
    targets: &[Uuid],
) -> Result<HashSet<Uuid>> {
    let rows = block::Entity::find()
        .filter(block::Column::BlockerId.eq(viewer))
        .filter(block::Column::BlockedId.is_in(targets.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|b| b.blocked_id).collect())
}

/// Whether `viewer` may see `owner`'s lists (DESIGN §4): the owner, and unless one blocked the other, staff,
/// anyone for a public account, approved followers for a private one.
pub async fn lists_visible(db: &DatabaseConnection, viewer: &Viewer, owner: Uuid) -> Result<bool> {
    if viewer.id == Some(owner) {
        return Ok(true);
    }
    if let Some(me) = viewer.id {
        if blocked_either_way(db, me, owner).await? {
            return Ok(false);
        }
    }
    if viewer.staff || private(db, &[owner]).await?.is_empty() {
        return Ok(true);
    }
    let Some(me) = viewer.id else {
        return Ok(false);
    };
    Ok(find_follow(db, me, owner)
        .await?
        .is_some_and(|f| f.status == follow::Status::Accepted))
}

/// Of `users`, those with private accounts.
pub async fn private(db: &DatabaseConnection, users: &[Uuid]) -> Result<HashSet<Uuid>> {
    let rows = account::Entity::find()
        .filter(account::Column::UserId.is_in(users.iter().copied()))
        .filter(account::Column::IsPrivate.eq(true))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|a| a.user_id).collect())
}
