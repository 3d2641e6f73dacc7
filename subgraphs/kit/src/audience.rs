//! Who may see whose content: DESIGN §4's one visibility rule, as every domain that shows content keeps it.
//! A private account's content is for itself, its approved followers and staff (moderators, admins); two
//! users where one blocked the other see nothing of each other's (staff included: a block is between two
//! people). Each domain learns it from social's events into its own tables — `blocks` ([`crate::blocks`]),
//! `follows` (approved follows) and `private_accounts` — and reads them here:
//!
//! - [`Viewer`]: who is asking (anonymous, a user, staff);
//! - [`can_see`]: one author, for a direct read, an entity or a live event;
//! - [`authors_visible_to`]: a SQL condition on an author column, for lists (so pages stay whole);
//! - [`Projection`] / [`apply`]: keeps the tables current (the `create_*` functions go in the domain's
//!   migration).

use async_trait::async_trait;
use sea_orm::sea_query::{Condition, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set,
};
use sea_orm_migration::prelude::{DeriveIden, Index, SchemaManager, Table};
use sea_orm_migration::schema::uuid;
use uuid::Uuid;

use std::collections::HashSet;

use crate::auth::{Identity, Role};
use crate::blocks::{self, block};
use crate::events::contracts::{AccountPrivacyChanged, FollowChanged};
use crate::events::Handler;

pub mod private_account {
    use sea_orm::entity::prelude::*;

    /// `user_id`'s account is private.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "private_accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod follow {
    use sea_orm::entity::prelude::*;

    /// `follower_id` follows `followee_id` (approved: a request is not a follow).
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "follows")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub follower_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub followee_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[derive(DeriveIden)]
enum PrivateAccounts {
    Table,
    UserId,
}

#[derive(DeriveIden)]
enum Follows {
    Table,
    FollowerId,
    FolloweeId,
}

/// Creates `private_accounts` (for a domain's migration).
pub async fn create_private_accounts(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(PrivateAccounts::Table)
            .col(uuid(PrivateAccounts::UserId).primary_key())
            .to_owned(),
    )
    .await
}

/// Creates `follows` (for a domain's migration).
pub async fn create_follows(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(Follows::Table)
            .col(uuid(Follows::FollowerId))
            .col(uuid(Follows::FolloweeId))
            .primary_key(
                Index::create()
                    .col(Follows::FollowerId)
                    .col(Follows::FolloweeId),
            )
            .to_owned(),
    )
    .await
}

/// Drops `private_accounts` (a migration's `down`).
pub async fn drop_private_accounts(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.drop_table(Table::drop().table(PrivateAccounts::Table).to_owned())
        .await
}

/// Drops `follows` (a migration's `down`).
pub async fn drop_follows(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.drop_table(Table::drop().table(Follows::Table).to_owned())
        .await
}

crate::consumed! {
    /// What the rule depends on.
    pub enum AudienceEvent {
        UserBlocked, UserUnblocked, FollowAccepted, FollowRemoved, AccountPrivacyChanged,
    }
}

/// The handler of a domain whose only interest in social is the rule.
pub struct Projection;

#[async_trait]
impl Handler for Projection {
    type Event = AudienceEvent;

    async fn apply(&self, txn: &DatabaseTransaction, event: AudienceEvent) -> Result<(), DbErr> {
        apply(txn, &event).await
    }
}

/// Applies one of the rule's events (for a domain with a handler of its own).
pub async fn apply(txn: &DatabaseTransaction, event: &AudienceEvent) -> Result<(), DbErr> {
    match event {
        AudienceEvent::UserBlocked(b) => blocks::block(txn, b).await,
        AudienceEvent::UserUnblocked(b) => blocks::unblock(txn, b).await,
        AudienceEvent::FollowAccepted(f) => followed(txn, f).await,
        AudienceEvent::FollowRemoved(f) => unfollowed(txn, f).await,
        AudienceEvent::AccountPrivacyChanged(p) => privacy_changed(txn, p).await,
    }
}

/// Records an approved follow.
pub async fn followed(txn: &DatabaseTransaction, f: &FollowChanged) -> Result<(), DbErr> {
    follow::Entity::insert(follow::ActiveModel {
        follower_id: Set(f.follower_id),
        followee_id: Set(f.followee_id),
    })
    .on_conflict_do_nothing_on([follow::Column::FollowerId, follow::Column::FolloweeId])
    .exec(txn)
    .await?;
    Ok(())
}

/// Forgets a follow.
pub async fn unfollowed(txn: &DatabaseTransaction, f: &FollowChanged) -> Result<(), DbErr> {
    follow::Entity::delete_many()
        .filter(follow::Column::FollowerId.eq(f.follower_id))
        .filter(follow::Column::FolloweeId.eq(f.followee_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Records that an account went private, or forgets it went public.
pub async fn privacy_changed(
    txn: &DatabaseTransaction,
    p: &AccountPrivacyChanged,
) -> Result<(), DbErr> {
    if p.private {
        private_account::Entity::insert(private_account::ActiveModel {
            user_id: Set(p.user_id),
        })
        .on_conflict_do_nothing_on([private_account::Column::UserId])
        .exec(txn)
        .await?;
    } else {
        private_account::Entity::delete_by_id(p.user_id)
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// The router's live front's account ([`parley_protocol::live_front::ACCOUNT`]).
pub const LIVE_FRONT: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_f20e);

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Viewer {
    /// `None`: anonymous.
    pub id: Option<Uuid>,
    /// A moderator or admin: private accounts' content is theirs to see.
    pub staff: bool,
}

impl Viewer {
    pub const ANONYMOUS: Viewer = Viewer {
        id: None,
        staff: false,
    };

    pub fn of(identity: Option<&Identity>) -> Viewer {
        identity.map_or(Viewer::ANONYMOUS, |me| Viewer {
            id: Some(me.user_id),
            // The router's live front reads as staff: its shared stream carries what any viewer may see,
            // and the front keeps each viewer to their own (`who_may_see`).
            staff: me.has_role(Role::Moderator) || me.user_id == LIVE_FRONT,
        })
    }
}

/// Whether `viewer` may see what `author` wrote.
pub async fn can_see<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    author: Uuid,
) -> Result<bool, DbErr> {
    can_see_with(db, viewer, author, None).await
}

/// [`can_see`] with the author's privacy already read ([`is_private`]), as when one read serves every
/// subscriber of an event: what is left is the viewer's own (blocks, following a private author).
pub async fn can_see_given<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    author: Uuid,
    author_private: bool,
) -> Result<bool, DbErr> {
    can_see_with(db, viewer, author, Some(author_private)).await
}

/// [`can_see`] for many viewers of one author at once — the viewers of a shared live stream — in one read
/// of the author's blocks and, if the author is private, one of which viewers follow them (by chunks),
/// however many viewers there are. In the viewers' order.
pub async fn who_may_see<C: ConnectionTrait>(
    db: &C,
    viewers: &[Viewer],
    author: Uuid,
) -> Result<Vec<bool>, DbErr> {
    let partners = blocks::partners(db, author).await?;
    let private = is_private(db, author).await?;
    let mut followers = HashSet::new();
    if private {
        let ids: Vec<Uuid> = viewers.iter().filter_map(|v| v.id).collect();
        for chunk in ids.chunks(500) {
            let rows = follow::Entity::find()
                .filter(follow::Column::FolloweeId.eq(author))
                .filter(follow::Column::FollowerId.is_in(chunk.iter().copied()))
                .all(db)
                .await?;
            followers.extend(rows.into_iter().map(|f| f.follower_id));
        }
    }
    Ok(viewers
        .iter()
        .map(|viewer| match viewer.id {
            Some(me) if me == author => true,
            Some(me) if partners.contains(&me) => false,
            _ if viewer.staff || !private => true,
            Some(me) => followers.contains(&me),
            None => false,
        })
        .collect())
}

/// Whether `author`'s account is private.
pub async fn is_private<C: ConnectionTrait>(db: &C, author: Uuid) -> Result<bool, DbErr> {
    Ok(private_account::Entity::find_by_id(author)
        .one(db)
        .await?
        .is_some())
}

async fn can_see_with<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    author: Uuid,
    author_private: Option<bool>,
) -> Result<bool, DbErr> {
    if viewer.id == Some(author) {
        return Ok(true);
    }
    if let Some(me) = viewer.id {
        if blocks::either_blocked(db, me, author).await? {
            return Ok(false);
        }
    }
    if viewer.staff {
        return Ok(true);
    }
    let private = match author_private {
        Some(private) => private,
        None => is_private(db, author).await?,
    };
    if !private {
        return Ok(true);
    }
    let Some(me) = viewer.id else {
        return Ok(false);
    };
    Ok(follow::Entity::find_by_id((me, author))
        .one(db)
        .await?
        .is_some())
}

/// A condition keeping the rows whose `author` column `viewer` may see: no private author the viewer does not
/// follow (unless staff), no author either side of a block with the viewer.
pub fn authors_visible_to<C: ColumnTrait>(viewer: &Viewer, author: C) -> Condition {
    let mut keep = Condition::all();
    if !viewer.staff {
        let mut hidden = Query::select()
            .column(private_account::Column::UserId)
            .from(private_account::Entity)
            .to_owned();
        if let Some(me) = viewer.id {
            hidden
                .and_where(private_account::Column::UserId.ne(me))
                .and_where(
                    private_account::Column::UserId.not_in_subquery(
                        Query::select()
                            .column(follow::Column::FolloweeId)
                            .from(follow::Entity)
                            .and_where(follow::Column::FollowerId.eq(me))
                            .to_owned(),
                    ),
                );
        }
        keep = keep.add(author.not_in_subquery(hidden));
    }
    if let Some(me) = viewer.id {
        keep = keep
            .add(
                author.not_in_subquery(
                    Query::select()
                        .column(block::Column::BlockedId)
                        .from(block::Entity)
                        .and_where(block::Column::BlockerId.eq(me))
                        .to_owned(),
                ),
            )
            .add(
                author.not_in_subquery(
                    Query::select()
                        .column(block::Column::BlockerId)
                        .from(block::Entity)
                        .and_where(block::Column::BlockedId.eq(me))
                        .to_owned(),
                ),
            );
    }
    keep
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_live_front_account_is_the_one_the_protocol_names() {
        assert_eq!(
            super::LIVE_FRONT.to_string(),
            parley_protocol::live_front::ACCOUNT
        );
    }
}
