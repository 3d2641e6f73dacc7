//! The social graph's writes: follow (instant for public accounts, a request for private ones), accept,
//! decline, unfollow/cancel, remove a follower, block/unblock, privacy. Each write and its events commit in
//! one transaction.

use chrono::Utc;
use parley_kit::events::contracts::{
    AccountPrivacyChanged, BlockChanged, FollowAccepted, FollowChanged, FollowDeclined,
    FollowRemoved, FollowRequested, UserBlocked, UserUnblocked,
};
use parley_kit::events::{append, Events};
use parley_kit::store::begin_write;
use parley_kit::Identity;
use sea_orm::sea_query::{Condition, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, ExprTrait, ModelTrait, QueryFilter, Set,
};
use uuid::Uuid;

use crate::error::{Result, SocialError};
use crate::store::{account, block, follow};

/// The outcome of `follow`.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum FollowStatus {
    /// Following now.
    Following,
    /// The account is private: a request waits for its owner.
    Requested,
}

pub struct Graph {
    pub db: DatabaseConnection,
    pub events: Events,
}

impl Graph {
    pub async fn follow(&self, me: &Identity, target: Uuid) -> Result<FollowStatus> {
        let me = me.user_id;
        if me == target {
            return Err(SocialError::SelfTarget("follow"));
        }
        let target_account = known(&self.db, target).await?;
        if blocked_either_way(&self.db, me, target).await? {
            return Err(SocialError::Forbidden("one of you blocked the other"));
        }
        if let Some(existing) = find_follow(&self.db, me, target).await? {
            return Ok(status_of(&existing));
        }
        let now = Utc::now();
        let accepted = !target_account.is_private;
        let txn = begin_write(&self.db).await?;
        let row = follow::ActiveModel {
            id: Set(Uuid::now_v7()),
            follower_id: Set(me),
            followee_id: Set(target),
            status: Set(if accepted {
                follow::Status::Accepted
            } else {
                follow::Status::Pending
            }),
            created_at: Set(now),
            accepted_at: Set(accepted.then_some(now)),
        };
        let inserted = follow::Entity::insert(row)
            .on_conflict_do_nothing_on([follow::Column::FollowerId, follow::Column::FolloweeId])
            .exec(&txn)
            .await?;
        if matches!(inserted, sea_orm::TryInsertResult::Conflicted) {
            // A concurrent follow won; report what it made.
            drop(txn);
            let existing = find_follow(&self.db, me, target).await?;
            return existing
                .map(|f| status_of(&f))
                .ok_or(SocialError::NoRelation("follow"));
        }
        let pair = FollowChanged {
            follower_id: me,
            followee_id: target,
        };
        append(&txn, target, &FollowRequested(pair.clone())).await?;
        if accepted {
            append(&txn, target, &FollowAccepted(pair)).await?;
        }
        self.commit(txn).await?;
        Ok(if accepted {
            FollowStatus::Following
        } else {
            FollowStatus::Requested
        })
    }

    /// Accepts `requester`'s pending request to follow me.
    pub async fn accept(&self, me: &Identity, requester: Uuid) -> Result<bool> {
        let row = find_follow(&self.db, requester, me.user_id)
            .await?
            .filter(|f| f.status == follow::Status::Pending)
            .ok_or(SocialError::NoRelation("follow request"))?;
        let txn = begin_write(&self.db).await?;
        let mut active: follow::ActiveModel = row.into();
        active.status = Set(follow::Status::Accepted);
        active.accepted_at = Set(Some(Utc::now()));
        active.update(&txn).await?;
        let pair = FollowChanged {
            follower_id: requester,
            followee_id: me.user_id,
        };
        append(&txn, me.user_id, &FollowAccepted(pair)).await?;
        self.commit(txn).await?;
        Ok(true)
    }

    /// Declines `requester`'s pending request to follow me.
    pub async fn decline(&self, me: &Identity, requester: Uuid) -> Result<bool> {
        let row = find_follow(&self.db, requester, me.user_id)
            .await?
            .filter(|f| f.status == follow::Status::Pending)
            .ok_or(SocialError::NoRelation("follow request"))?;
        let txn = begin_write(&self.db).await?;
        row.delete(&txn).await?;
        let pair = FollowChanged {
            follower_id: requester,
            followee_id: me.user_id,
        };
        append(&txn, me.user_id, &FollowDeclined(pair)).await?;
        self.commit(txn).await?;
        Ok(true)
    }

    /// Stops following `target`, or cancels my pending request.
    pub async fn unfollow(&self, me: &Identity, target: Uuid) -> Result<bool> {
        let row = find_follow(&self.db, me.user_id, target)
            .await?
            .ok_or(SocialError::NoRelation("follow"))?;
        let txn = begin_write(&self.db).await?;
        remove_follow(&txn, row).await?;
        self.commit(txn).await?;
        Ok(true)
    }

    /// Makes `follower` stop following me.
    pub async fn remove_follower(&self, me: &Identity, follower: Uuid) -> Result<bool> {
        let row = find_follow(&self.db, follower, me.user_id)
            .await?
            .filter(|f| f.status == follow::Status::Accepted)
            .ok_or(SocialError::NoRelation("follower"))?;
        let txn = begin_write(&self.db).await?;
        remove_follow(&txn, row).await?;
        self.commit(txn).await?;
        Ok(true)
    }

    /// Blocks `target`: follows both ways end and new ones are refused.
    pub async fn block(&self, me: &Identity, target: Uuid) -> Result<bool> {
        let me = me.user_id;
        if me == target {
            return Err(SocialError::SelfTarget("block"));
        }
        known(&self.db, target).await?;
        let txn = begin_write(&self.db).await?;
        let inserted = block::Entity::insert(block::ActiveModel {
            blocker_id: Set(me),
            blocked_id: Set(target),
            created_at: Set(Utc::now()),
        })
        .on_conflict_do_nothing_on([block::Column::BlockerId, block::Column::BlockedId])
        .exec(&txn)
        .await?;
        if matches!(inserted, sea_orm::TryInsertResult::Conflicted) {
            return Ok(true); // already blocked
        }
        let follows = follow::Entity::find()
            .filter(
                Condition::any()
                    .add(
                        follow::Column::FollowerId
                            .eq(me)
                            .and(follow::Column::FolloweeId.eq(target)),
                    )
                    .add(
                        follow::Column::FollowerId
                            .eq(target)
                            .and(follow::Column::FolloweeId.eq(me)),
                    ),
            )
            .all(&txn)
            .await?;
        for row in follows {
            remove_follow(&txn, row).await?;
        }
        let pair = BlockChanged {
            blocker_id: me,
            blocked_id: target,
        };
        append(&txn, me, &UserBlocked(pair)).await?;
        self.commit(txn).await?;
        Ok(true)
    }

    pub async fn unblock(&self, me: &Identity, target: Uuid) -> Result<bool> {
        let row = block::Entity::find_by_id((me.user_id, target))
            .one(&self.db)
            .await?
            .ok_or(SocialError::NoRelation("block"))?;
        let txn = begin_write(&self.db).await?;
        row.delete(&txn).await?;
        let pair = BlockChanged {
            blocker_id: me.user_id,
            blocked_id: target,
        };
        append(&txn, me.user_id, &UserUnblocked(pair)).await?;
        self.commit(txn).await?;
        Ok(true)
    }

    /// Makes my account private (follows need my approval) or public. Pending requests stay pending.
    /// The verified token proves the account exists, so this also works before `UserRegistered` arrived.
    /// Makes the account private or public; every domain showing its content learns it from
    /// `AccountPrivacyChanged`, published with the change.
    pub async fn set_private(&self, me: &Identity, private: bool) -> Result<bool> {
        let row = account::ActiveModel {
            user_id: Set(me.user_id),
            is_private: Set(private),
            registered_at: Set(Utc::now()),
        };
        let txn = begin_write(&self.db).await?;
        account::Entity::insert(row)
            .on_conflict(
                OnConflict::column(account::Column::UserId)
                    .update_column(account::Column::IsPrivate)
                    .to_owned(),
            )
            .exec(&txn)
            .await?;
        append(
            &txn,
            me.user_id,
            &AccountPrivacyChanged {
                user_id: me.user_id,
                private,
            },
        )
        .await?;
        self.commit(txn).await?;
        Ok(private)
    }

    async fn commit(&self, txn: DatabaseTransaction) -> Result<()> {
        txn.commit().await?;
        self.events.wake();
        Ok(())
    }
}

fn status_of(row: &follow::Model) -> FollowStatus {
    if row.status == follow::Status::Accepted {
        FollowStatus::Following
    } else {
        FollowStatus::Requested
    }
}

/// The account, if social has heard of it.
pub async fn known<C: ConnectionTrait>(db: &C, user: Uuid) -> Result<account::Model> {
    account::Entity::find_by_id(user)
        .one(db)
        .await?
        .ok_or(SocialError::UnknownUser)
}

pub async fn find_follow<C: ConnectionTrait>(
    db: &C,
    follower: Uuid,
    followee: Uuid,
) -> Result<Option<follow::Model>> {
    Ok(follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(follower))
        .filter(follow::Column::FolloweeId.eq(followee))
        .one(db)
        .await?)
}

pub async fn blocked_either_way<C: ConnectionTrait>(db: &C, a: Uuid, b: Uuid) -> Result<bool> {
    Ok(block::Entity::find()
        .filter(
            Condition::any()
                .add(
                    block::Column::BlockerId
                        .eq(a)
                        .and(block::Column::BlockedId.eq(b)),
                )
                .add(
                    block::Column::BlockerId
                        .eq(b)
                        .and(block::Column::BlockedId.eq(a)),
                ),
        )
        .one(db)
        .await?
        .is_some())
}

/// Deletes a follow (or request) and says so on the bus.
async fn remove_follow(txn: &DatabaseTransaction, row: follow::Model) -> Result<()> {
    let pair = FollowChanged {
        follower_id: row.follower_id,
        followee_id: row.followee_id,
    };
    let followee = row.followee_id;
    row.delete(txn).await?;
    append(txn, followee, &FollowRemoved(pair)).await?;
    Ok(())
}
