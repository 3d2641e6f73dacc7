//! Who is told what, event by event. Each function applies one domain event to notifications' projections
//! and turns it into [`Notice`]s, under the one visibility rule: never to the actor themself, never across a
//! block, never for content the recipient cannot see (a private author they do not follow, deleted
//! content), never for a muted chat.

use chrono::Utc;
use parley_kit::audience::{self, Viewer};
use parley_kit::blocks;
use parley_kit::events::contracts::{
    BlockChanged, ChatCreated, ChatMemberChanged, ChatMessage, ChatReceipt, ChatSettingsChanged,
    CommentChanged, FollowChanged, PostChanged, VoteCast,
};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set,
};
use uuid::Uuid;

use crate::kinds::NotificationKind as Kind;
use crate::notify::{self, merge_actors, notify, Notice};
use crate::store::{chat_member, content, follow_request, held_message, notification, recipient};

/// Scores that make a VOTE_MILESTONE, told once each.
pub const MILESTONES: [i32; 3] = [10, 100, 1000];

/// Whether `recipient` may see what `author` wrote (the audience rule, blocks included).
async fn sees(txn: &DatabaseTransaction, recipient: Uuid, author: Uuid) -> Result<bool, DbErr> {
    let viewer = Viewer {
        id: Some(recipient),
        staff: false,
    };
    audience::can_see(txn, &viewer, author).await
}

/// Whether `actor`'s act may reach `recipient` at all: someone else, no block either way.
async fn reachable(txn: &DatabaseTransaction, recipient: Uuid, actor: Uuid) -> Result<bool, DbErr> {
    Ok(recipient != actor && !blocks::either_blocked(txn, recipient, actor).await?)
}

/// The users named by `nicknames` (lowercased) that notifications knows.
async fn mentioned(txn: &DatabaseTransaction, nicknames: &[String]) -> Result<Vec<Uuid>, DbErr> {
    if nicknames.is_empty() {
        return Ok(Vec::new());
    }
    Ok(recipient::Entity::find()
        .filter(recipient::Column::Nickname.is_in(nicknames.iter().cloned()))
        .all(txn)
        .await?
        .into_iter()
        .map(|r| r.user_id)
        .collect())
}

// ---- users -------------------------------------------------------------------------------------------------

/// A user's nickname: lowercased for mentions, as written for mails and pushes.
pub async fn nickname(txn: &DatabaseTransaction, user: Uuid, nickname: &str) -> Result<(), DbErr> {
    let row = recipient::ActiveModel {
        user_id: Set(user),
        nickname: Set(Some(nickname.to_ascii_lowercase())),
        display_name: Set(Some(nickname.to_string())),
        email: Set(None),
        last_digest_at: Set(None),
    };
    upsert_recipient(
        txn,
        row,
        &[recipient::Column::Nickname, recipient::Column::DisplayName],
    )
    .await
}

/// The address a user proved they own: where digests go.
pub async fn email(txn: &DatabaseTransaction, user: Uuid, email: &str) -> Result<(), DbErr> {
    let row = recipient::ActiveModel {
        user_id: Set(user),
        nickname: Set(None),
        display_name: Set(None),
        email: Set(Some(email.to_string())),
        last_digest_at: Set(None),
    };
    upsert_recipient(txn, row, &[recipient::Column::Email]).await
}

async fn upsert_recipient(
    txn: &DatabaseTransaction,
    row: recipient::ActiveModel,
    columns: &[recipient::Column],
) -> Result<(), DbErr> {
    recipient::Entity::insert(row)
        .on_conflict(
            OnConflict::column(recipient::Column::UserId)
                .update_columns(columns.iter().copied())
                .to_owned(),
        )
        .exec(txn)
        .await?;
    Ok(())
}

// ---- social ------------------------------------------------------------------------------------------------

/// A block: the rule's table, and what either told the other goes (their names leave grouped ones).
pub async fn blocked(txn: &DatabaseTransaction, b: &BlockChanged) -> Result<(), DbErr> {
    blocks::block(txn, b).await?;
    for (recipient, actor) in [(b.blocker_id, b.blocked_id), (b.blocked_id, b.blocker_id)] {
        let rows = notification::Entity::find()
            .filter(notification::Column::RecipientId.eq(recipient))
            .filter(notification::Column::Actors.contains(actor.to_string()))
            .all(txn)
            .await?;
        for row in rows {
            let rest: Vec<Uuid> = notify::actors(&row)
                .into_iter()
                .filter(|a| *a != actor)
                .collect();
            if rest.is_empty() {
                notification::Entity::delete_by_id(row.id).exec(txn).await?;
            } else {
                let mut active: notification::ActiveModel = row.into();
                active.actors = Set(serde_json::to_string(&rest).unwrap_or_else(|_| "[]".into()));
                active.update(txn).await?;
            }
        }
    }
    Ok(())
}

/// A follow request of a private account: FOLLOW_REQUEST to its owner. (Social writes a request for every
/// follow; a public account's is accepted in the same transaction and is a FOLLOW.)
pub async fn follow_requested(txn: &DatabaseTransaction, f: &FollowChanged) -> Result<(), DbErr> {
    let private = audience::private_account::Entity::find_by_id(f.followee_id)
        .one(txn)
        .await?
        .is_some();
    if !private {
        return Ok(());
    }
    follow_request::Entity::insert(follow_request::ActiveModel {
        follower_id: Set(f.follower_id),
        followee_id: Set(f.followee_id),
    })
    .on_conflict_do_nothing_on([
        follow_request::Column::FollowerId,
        follow_request::Column::FolloweeId,
    ])
    .exec(txn)
    .await?;
    if reachable(txn, f.followee_id, f.follower_id).await? {
        let group = format!("FOLLOW_REQUEST:{}", f.follower_id);
        notify(
            txn,
            Notice::new(
                f.followee_id,
                Kind::FollowRequest,
                group,
                Some(f.follower_id),
            ),
        )
        .await?;
    }
    Ok(())
}

/// A follow began: an accepted request tells the follower (FOLLOW_ACCEPTED) and settles the request's
/// notification; a public account's new follower tells its owner (FOLLOW, one per unread batch).
pub async fn follow_accepted(txn: &DatabaseTransaction, f: &FollowChanged) -> Result<(), DbErr> {
    audience::followed(txn, f).await?;
    let requested = settle_request(txn, f).await?;
    let (notice, actor) = if requested {
        let group = format!("FOLLOW_ACCEPTED:{}", f.followee_id);
        let notice = Notice::new(
            f.follower_id,
            Kind::FollowAccepted,
            group,
            Some(f.followee_id),
        );
        (notice, f.followee_id)
    } else {
        let notice = Notice::new(
            f.followee_id,
            Kind::Follow,
            "FOLLOW".into(),
            Some(f.follower_id),
        );
        (notice, f.follower_id)
    };
    if reachable(txn, notice.recipient, actor).await? {
        notify(txn, notice).await?;
    }
    Ok(())
}

/// A request declined, withdrawn or a follow ended: the open request (and its notification) goes.
pub async fn follow_ended(txn: &DatabaseTransaction, f: &FollowChanged) -> Result<(), DbErr> {
    settle_request(txn, f).await?;
    Ok(())
}

/// Removes an open request and marks its FOLLOW_REQUEST notification read; whether there was one.
async fn settle_request(txn: &DatabaseTransaction, f: &FollowChanged) -> Result<bool, DbErr> {
    let removed = follow_request::Entity::delete_by_id((f.follower_id, f.followee_id))
        .exec(txn)
        .await?
        .rows_affected
        > 0;
    notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(Utc::now()))
        .filter(notification::Column::RecipientId.eq(f.followee_id))
        .filter(notification::Column::GroupKey.eq(format!("FOLLOW_REQUEST:{}", f.follower_id)))
        .filter(notification::Column::ReadAt.is_null())
        .exec(txn)
        .await?;
    Ok(removed)
}

// ---- posts -------------------------------------------------------------------------------------------------

/// A post: remembered (for votes and comments), and its mentions told.
pub async fn post_created(txn: &DatabaseTransaction, p: &PostChanged) -> Result<(), DbErr> {
    remember_content(txn, p.post_id, p.author_id, p.post_id, p.author_id).await?;
    for user in mentioned(txn, &p.mentions).await? {
        if reachable(txn, user, p.author_id).await? && sees(txn, user, p.author_id).await? {
            let mut notice = Notice::new(
                user,
                Kind::Mention,
                format!("MENTION:{}", p.post_id),
                Some(p.author_id),
            );
            notice.post_id = Some(p.post_id);
            notify(txn, notice).await?;
        }
    }
    Ok(())
}

/// A comment: COMMENT to the post's author (top-level) or REPLY to the parent's author, then MENTIONs —
/// each to someone who sees both the post and the comment.
pub async fn comment_created(txn: &DatabaseTransaction, c: &CommentChanged) -> Result<(), DbErr> {
    remember_content(txn, c.comment_id, c.author_id, c.post_id, c.post_author_id).await?;
    let post_gone = content::Entity::find_by_id(c.post_id)
        .one(txn)
        .await?
        .is_some_and(|p| p.deleted);
    if post_gone {
        return Ok(());
    }
    let (recipient, kind, group) = match (c.parent_id, c.parent_author_id) {
        (Some(parent), Some(author)) => (author, Kind::Reply, format!("REPLY:{parent}")),
        _ => (
            c.post_author_id,
            Kind::Comment,
            format!("COMMENT:{}", c.post_id),
        ),
    };
    let mut told = vec![c.author_id];
    if can_read_comment(txn, recipient, c).await? {
        let mut notice = Notice::new(recipient, kind, group, Some(c.author_id));
        notice.post_id = Some(c.post_id);
        notice.comment_id = Some(c.comment_id);
        notify(txn, notice).await?;
        told.push(recipient);
    }
    for user in mentioned(txn, &c.mentions).await? {
        if told.contains(&user) || !can_read_comment(txn, user, c).await? {
            continue;
        }
        let mut notice = Notice::new(
            user,
            Kind::Mention,
            format!("MENTION:{}", c.comment_id),
            Some(c.author_id),
        );
        notice.post_id = Some(c.post_id);
        notice.comment_id = Some(c.comment_id);
        notify(txn, notice).await?;
    }
    Ok(())
}

/// Whether `user` (not its author) may be told of comment `c`: sees the post's author and the comment's.
async fn can_read_comment(
    txn: &DatabaseTransaction,
    user: Uuid,
    c: &CommentChanged,
) -> Result<bool, DbErr> {
    // `sees` the comment's author includes the block check `reachable` would make.
    Ok(user != c.author_id
        && sees(txn, user, c.post_author_id).await?
        && sees(txn, user, c.author_id).await?)
}

async fn remember_content(
    txn: &DatabaseTransaction,
    id: Uuid,
    author: Uuid,
    post: Uuid,
    post_author: Uuid,
) -> Result<(), DbErr> {
    content::Entity::insert(content::ActiveModel {
        id: Set(id),
        author_id: Set(author),
        post_id: Set(post),
        post_author_id: Set(post_author),
        milestone: Set(0),
        deleted: Set(false),
    })
    .on_conflict_do_nothing_on([content::Column::Id])
    .exec(txn)
    .await?;
    Ok(())
}

/// A post deleted: what it told goes, and it tells nothing more.
pub async fn post_deleted(txn: &DatabaseTransaction, p: &PostChanged) -> Result<(), DbErr> {
    mark_deleted(txn, p.post_id).await?;
    notify::forget_content(txn, notification::Column::PostId, p.post_id).await
}

/// A comment deleted: the replies, mentions and milestones it made go; a COMMENT group that pointed at it
/// stays (it counts other comments) and points at none.
pub async fn comment_deleted(txn: &DatabaseTransaction, c: &CommentChanged) -> Result<(), DbErr> {
    mark_deleted(txn, c.comment_id).await?;
    notification::Entity::delete_many()
        .filter(notification::Column::CommentId.eq(c.comment_id))
        .filter(notification::Column::Kind.ne(Kind::Comment.as_str()))
        .exec(txn)
        .await?;
    notification::Entity::update_many()
        .col_expr(
            notification::Column::CommentId,
            Expr::value(Option::<Uuid>::None),
        )
        .filter(notification::Column::CommentId.eq(c.comment_id))
        .exec(txn)
        .await?;
    Ok(())
}

async fn mark_deleted(txn: &DatabaseTransaction, id: Uuid) -> Result<(), DbErr> {
    content::Entity::update_many()
        .col_expr(content::Column::Deleted, Expr::value(true))
        .filter(content::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

/// A vote: when the target's score first reaches a milestone, its author hears of it (no actors: votes are
/// not public).
pub async fn voted(txn: &DatabaseTransaction, v: &VoteCast) -> Result<(), DbErr> {
    let Some(target) = content::Entity::find_by_id(v.target_id).one(txn).await? else {
        return Ok(());
    };
    let Some(reached) = MILESTONES
        .into_iter()
        .rev()
        .find(|m| v.score >= i64::from(*m))
    else {
        return Ok(());
    };
    if target.deleted || reached <= target.milestone {
        return Ok(());
    }
    let author = target.author_id;
    let mut active: content::ActiveModel = target.into();
    active.milestone = Set(reached);
    active.update(txn).await?;
    let mut notice = Notice::new(
        author,
        Kind::VoteMilestone,
        format!("VOTE:{}:{reached}", v.target_id),
        None,
    );
    notice.post_id = Some(v.post_id);
    notice.comment_id = (v.target_id != v.post_id).then_some(v.target_id);
    notice.milestone = Some(reached);
    notify(txn, notice).await?;
    Ok(())
}

// ---- chat --------------------------------------------------------------------------------------------------

/// A chat: its members remembered; a group's members (not its creator) are told they were added.
pub async fn chat_created(txn: &DatabaseTransaction, c: &ChatCreated) -> Result<(), DbErr> {
    let group = c.kind == "GROUP";
    for member in &c.member_ids {
        join(txn, c.chat_id, *member, group).await?;
        if group {
            invite(txn, c.chat_id, *member, c.creator_id).await?;
        }
    }
    Ok(())
}

/// A member added (only groups add): CHAT_INVITE, unless they joined by themself.
pub async fn member_added(txn: &DatabaseTransaction, m: &ChatMemberChanged) -> Result<(), DbErr> {
    join(txn, m.chat_id, m.user_id, true).await?;
    invite(txn, m.chat_id, m.user_id, m.by).await
}

/// A member gone: they hear nothing more of the chat.
pub async fn member_removed(txn: &DatabaseTransaction, m: &ChatMemberChanged) -> Result<(), DbErr> {
    chat_member::Entity::delete_by_id((m.chat_id, m.user_id))
        .exec(txn)
        .await?;
    held_message::Entity::delete_by_id((m.chat_id, m.user_id))
        .exec(txn)
        .await?;
    Ok(())
}

async fn join(txn: &DatabaseTransaction, chat: Uuid, user: Uuid, group: bool) -> Result<(), DbErr> {
    chat_member::Entity::insert(chat_member::ActiveModel {
        chat_id: Set(chat),
        user_id: Set(user),
        group: Set(group),
        muted_until: Set(None),
        level: Set("ALL".into()),
    })
    .on_conflict_do_nothing_on([chat_member::Column::ChatId, chat_member::Column::UserId])
    .exec(txn)
    .await?;
    Ok(())
}

async fn invite(txn: &DatabaseTransaction, chat: Uuid, user: Uuid, by: Uuid) -> Result<(), DbErr> {
    if reachable(txn, user, by).await? {
        let mut notice = Notice::new(
            user,
            Kind::ChatInvite,
            format!("CHAT_INVITE:{chat}"),
            Some(by),
        );
        notice.chat_id = Some(chat);
        notify(txn, notice).await?;
    }
    Ok(())
}

/// A member's mute and level, as chat keeps them.
pub async fn settings_changed(
    txn: &DatabaseTransaction,
    s: &ChatSettingsChanged,
) -> Result<(), DbErr> {
    chat_member::Entity::update_many()
        .col_expr(chat_member::Column::MutedUntil, Expr::value(s.muted_until))
        .col_expr(chat_member::Column::Level, Expr::value(s.level.clone()))
        .filter(chat_member::Column::ChatId.eq(s.chat_id))
        .filter(chat_member::Column::UserId.eq(s.user_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// A message: a member it mentions is told at once (MENTION; also at level MENTIONS); the others at level
/// ALL have it held ([`crate::held`]) until it is due — unless their app takes it live meanwhile. Muted
/// members, level NONE, blocked authors: nothing.
pub async fn message_sent(
    txn: &DatabaseTransaction,
    m: &ChatMessage,
    grace: chrono::Duration,
) -> Result<(), DbErr> {
    if m.kind == "SYSTEM" || m.deleted_at.is_some() {
        return Ok(());
    }
    let named = mentioned(
        txn,
        &parley_kit::mentions::nicknames(m.text.as_deref().unwrap_or_default()),
    )
    .await?;
    let now = Utc::now();
    let members = chat_member::Entity::find()
        .filter(chat_member::Column::ChatId.eq(m.chat_id))
        .filter(chat_member::Column::UserId.ne(m.author_id))
        .filter(chat_member::Column::Level.ne("NONE"))
        .all(txn)
        .await?;
    for member in members {
        if member.muted_until.is_some_and(|until| until > now)
            || !reachable(txn, member.user_id, m.author_id).await?
        {
            continue;
        }
        if named.contains(&member.user_id) {
            let mut notice = Notice::new(
                member.user_id,
                Kind::Mention,
                format!("MENTION:{}", m.message_id),
                Some(m.author_id),
            );
            notice.chat_id = Some(m.chat_id);
            notice.message_id = Some(m.message_id);
            notify(txn, notice).await?;
        } else if member.level == "ALL" {
            hold(txn, m, member.user_id, now + grace).await?;
        }
    }
    Ok(())
}

async fn hold(
    txn: &DatabaseTransaction,
    m: &ChatMessage,
    user: Uuid,
    due: chrono::DateTime<Utc>,
) -> Result<(), DbErr> {
    match held_message::Entity::find_by_id((m.chat_id, user))
        .one(txn)
        .await?
    {
        Some(held) => {
            let actors = merge_actors(
                &[m.author_id],
                &serde_json::from_str::<Vec<Uuid>>(&held.actors).unwrap_or_default(),
            );
            let mut active: held_message::ActiveModel = held.clone().into();
            active.count = Set(held.count + 1);
            active.last_seq = Set(m.seq.max(held.last_seq));
            active.last_message_id = Set(m.message_id);
            active.actors = Set(serde_json::to_string(&actors).unwrap_or_else(|_| "[]".into()));
            active.update(txn).await?;
        }
        None => {
            held_message::ActiveModel {
                chat_id: Set(m.chat_id),
                user_id: Set(user),
                count: Set(1),
                last_seq: Set(m.seq),
                last_message_id: Set(m.message_id),
                actors: Set(serde_json::to_string(&[m.author_id]).unwrap_or_else(|_| "[]".into())),
                due_at: Set(due),
            }
            .insert(txn)
            .await?;
        }
    }
    Ok(())
}

/// A message deleted: mentions of it go.
pub async fn message_deleted(txn: &DatabaseTransaction, m: &ChatMessage) -> Result<(), DbErr> {
    notify::forget_content(txn, notification::Column::MessageId, m.message_id).await
}

/// A member's app took messages live (delivered) or they read them: what was held for them up to there is
/// dropped — they were there; reading also reads the chat's MESSAGE notification.
pub async fn receipt(txn: &DatabaseTransaction, r: &ChatReceipt, read: bool) -> Result<(), DbErr> {
    held_message::Entity::delete_many()
        .filter(held_message::Column::ChatId.eq(r.chat_id))
        .filter(held_message::Column::UserId.eq(r.user_id))
        .filter(held_message::Column::LastSeq.lte(r.seq))
        .exec(txn)
        .await?;
    if read {
        notification::Entity::update_many()
            .col_expr(notification::Column::ReadAt, Expr::value(Utc::now()))
            .filter(notification::Column::RecipientId.eq(r.user_id))
            .filter(notification::Column::ChatId.eq(r.chat_id))
            .filter(notification::Column::Kind.eq(Kind::Message.as_str()))
            .filter(notification::Column::LastSeq.lte(r.seq))
            .filter(notification::Column::ReadAt.is_null())
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// What a BILLING notification is about; its group key is `BILLING:<what>:<payment or subscription>`, so
/// each retry's failure is its own notification (and line in the digest) and the digest can say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingNews {
    PaymentFailed,
    Refunded,
    Ended,
}

impl BillingNews {
    fn name(self) -> &'static str {
        match self {
            BillingNews::PaymentFailed => "PAYMENT_FAILED",
            BillingNews::Refunded => "REFUNDED",
            BillingNews::Ended => "ENDED",
        }
    }

    /// What the digest says for a BILLING notification with group key `group`.
    pub fn phrase_of(group: &str) -> Option<&'static str> {
        Some(match group.split(':').nth(1)? {
            "PAYMENT_FAILED" => "A payment for your subscription failed",
            "REFUNDED" => "A payment was refunded to you",
            "ENDED" => "Your subscription ended",
            _ => return None,
        })
    }
}

/// Something about `user`'s subscription: one notification per `about` (a payment or the subscription).
pub async fn billing(
    txn: &DatabaseTransaction,
    user: Uuid,
    news: BillingNews,
    about: Uuid,
) -> Result<(), DbErr> {
    let group = format!("BILLING:{}:{about}", news.name());
    notify(txn, Notice::new(user, Kind::Billing, group, None)).await?;
    Ok(())
}
