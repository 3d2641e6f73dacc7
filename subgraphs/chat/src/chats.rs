//! Chats and their members: direct chats (one per pair, created on first use), groups with admins, leaving,
//! per-member settings. Membership is checked through [`crate::service::member_of`].

use chrono::{DateTime, Utc};
use parley_kit::events::append;
use parley_kit::events::contracts::{
    ChatCreated, ChatMemberAdded, ChatMemberChanged, ChatMemberRemoved, ChatSettingsChanged,
};
use parley_kit::store::begin_write;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::error::{invalid, ChatError, Result};
use crate::service::{insert_message, member_of, ChatService, NewMessage};
use crate::store::member::{NotificationLevel, Role};
use crate::store::{chat, known_user, member};

/// Largest group (members added at creation count too).
pub const MAX_GROUP_MEMBERS: usize = 10_000;

/// How many members a group created by `creator` may have: their plan's `chat.max_group_members` (billing's
/// entitlement; FREE's without one), never above [`MAX_GROUP_MEMBERS`]. After a downgrade a group keeps
/// the members it has but cannot grow.
async fn group_limit<C: sea_orm::ConnectionTrait>(db: &C, creator: Uuid) -> Result<usize> {
    let plan = parley_kit::entitlements::of(db, creator).await?;
    Ok(usize::try_from(plan.max_group_members)
        .unwrap_or(0)
        .min(MAX_GROUP_MEMBERS))
}
/// Members named in one `createGroupChat`.
const MAX_INITIAL_MEMBERS: usize = 200;

/// `createGroupChat` names at most [`MAX_INITIAL_MEMBERS`]; checked before any id is parsed.
pub fn check_initial_count(named: usize) -> Result<()> {
    if named > MAX_INITIAL_MEMBERS {
        return Err(invalid(format!(
            "memberIds: at most {MAX_INITIAL_MEMBERS} at creation; add more with addChatMember"
        )));
    }
    Ok(())
}

/// Refuses to bring two users together (a direct chat, a group one adds the other to) when either blocked
/// the other. A group that already holds both keeps working for everyone.
async fn ensure_not_blocked(db: &DatabaseConnection, me: Uuid, other: Uuid) -> Result<()> {
    if parley_kit::blocks::either_blocked(db, me, other).await? {
        return Err(ChatError::Forbidden("one of you blocked the other"));
    }
    Ok(())
}

/// The ids of the chats `user` is a member of.
pub async fn chat_ids_of<C: ConnectionTrait>(db: &C, user: Uuid) -> Result<Vec<Uuid>> {
    Ok(member::Entity::find()
        .select_only()
        .column(member::Column::ChatId)
        .filter(member::Column::UserId.eq(user))
        .into_tuple()
        .all(db)
        .await?)
}

/// The ids of up to `limit` members of `chat`.
pub async fn member_ids<C: ConnectionTrait>(db: &C, chat: Uuid, limit: u64) -> Result<Vec<Uuid>> {
    Ok(member::Entity::find()
        .select_only()
        .column(member::Column::UserId)
        .filter(member::Column::ChatId.eq(chat))
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?)
}

/// A page of the caller's chats, most recently active first, after the cursor (activity, id).
pub async fn list_for(
    db: &DatabaseConnection,
    user: Uuid,
    after: Option<(i64, Uuid)>,
    limit: u64,
) -> Result<Vec<chat::Model>> {
    use sea_orm::sea_query::{Expr, Query};
    use sea_orm::ExprTrait;
    let mine = Query::select()
        .column(member::Column::ChatId)
        .from(member::Entity)
        .and_where(member::Column::UserId.eq(user))
        .to_owned();
    let mut select = chat::Entity::find().filter(chat::Column::Id.in_subquery(mine));
    if let Some((activity, id)) = after {
        select = select.filter(
            Expr::tuple([
                Expr::col(chat::Column::Activity),
                Expr::col(chat::Column::Id),
            ])
            .lt(Expr::tuple([Expr::val(activity), Expr::val(id)])),
        );
    }
    Ok(select
        .order_by_desc(chat::Column::Activity)
        .order_by_desc(chat::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// The caller's own account, which chat learns of from users' events shortly after registration: every
/// author's card must be known before they can write (see `Message.author`).
async fn ensure_caller_known<C: ConnectionTrait>(db: &C, me: Uuid) -> Result<()> {
    match ensure_known(db, me).await {
        Err(ChatError::NotFound(_)) => Err(ChatError::AccountPending),
        other => other,
    }
}

async fn ensure_known<C: ConnectionTrait>(db: &C, user: Uuid) -> Result<()> {
    known_user::Entity::find_by_id(user)
        .one(db)
        .await?
        .map(|_| ())
        .ok_or(ChatError::NotFound("user"))
}

fn new_member(
    chat_id: Uuid,
    user: Uuid,
    role: Role,
    seq: i64,
    now: DateTime<Utc>,
) -> member::ActiveModel {
    member::ActiveModel {
        chat_id: Set(chat_id),
        user_id: Set(user),
        role: Set(role),
        joined_at: Set(now),
        joined_seq: Set(seq),
        muted_until: Set(None),
        notification_level: Set(NotificationLevel::All),
        delivered_seq: Set(seq),
        read_seq: Set(seq),
    }
}

fn direct_key(a: Uuid, b: Uuid) -> String {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    format!("{low}:{high}")
}

impl ChatService {
    /// Anyone may be in a chat, the assistant only where it is offered (an endpoint is configured):
    /// elsewhere it is no user at all.
    fn offered(&self, user: Uuid) -> Result<()> {
        if user == parley_kit::assistant::USER_ID && !self.assistant_offered {
            return Err(ChatError::NotFound("user"));
        }
        Ok(())
    }

    /// The direct chat of the caller and `other`, created on first use (the same chat every time).
    pub async fn open_direct(&self, me: Uuid, other: Uuid) -> Result<chat::Model> {
        if me == other {
            return Err(invalid("userId: a direct chat needs another user"));
        }
        self.offered(other)?;
        ensure_known(&self.db, other).await?;
        ensure_caller_known(&self.db, me).await?;
        ensure_not_blocked(&self.db, me, other).await?;
        let key = direct_key(me, other);
        if let Some(found) = self.direct_by_key(&key).await? {
            return Ok(found);
        }
        let txn = begin_write(&self.db).await?;
        // Another request may have created it since: the unique key decides, the loser reads the winner's.
        if let Some(found) = chat::Entity::find()
            .filter(chat::Column::DirectKey.eq(key.clone()))
            .one(&txn)
            .await?
        {
            return Ok(found);
        }
        let now = Utc::now();
        let created = chat::ActiveModel {
            id: Set(Uuid::now_v7()),
            kind: Set(chat::Kind::Direct),
            title: Set(None),
            direct_key: Set(Some(key.clone())),
            creator_id: Set(me),
            last_seq: Set(0),
            activity: Set(now.timestamp_micros()),
            created_at: Set(now),
        }
        .insert(&txn)
        .await;
        let chat = match created {
            Ok(chat) => chat,
            Err(err) if parley_kit::error::is_unique_violation(&err) => {
                drop(txn);
                return self
                    .direct_by_key(&key)
                    .await?
                    .ok_or(ChatError::Conflict("direct chat is being created"));
            }
            Err(err) => return Err(err.into()),
        };
        for user in [me, other] {
            new_member(chat.id, user, Role::Member, 0, now)
                .insert(&txn)
                .await?;
        }
        let event = ChatCreated {
            chat_id: chat.id,
            kind: chat.kind.to_value(),
            creator_id: me,
            member_ids: vec![me, other],
        };
        append(&txn, chat.id, &event).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(chat)
    }

    async fn direct_by_key(&self, key: &str) -> Result<Option<chat::Model>> {
        Ok(chat::Entity::find()
            .filter(chat::Column::DirectKey.eq(key))
            .one(&self.db)
            .await?)
    }

    /// A group with the caller as its admin and `member_ids` as members.
    pub async fn create_group(
        &self,
        me: Uuid,
        title: &str,
        member_ids: &[Uuid],
    ) -> Result<chat::Model> {
        let title = validate_title(title)?;
        let mut others: Vec<Uuid> = member_ids.iter().copied().filter(|id| *id != me).collect();
        check_initial_count(others.len())?;
        others.sort();
        others.dedup();
        for user in &others {
            self.offered(*user)?;
            ensure_known(&self.db, *user).await?;
            // No one puts a user who blocked them (or whom they blocked) in a group.
            ensure_not_blocked(&self.db, me, *user).await?;
        }
        ensure_caller_known(&self.db, me).await?;
        let limit = group_limit(&self.db, me).await?;
        if others.len() + 1 > limit {
            return Err(invalid(format!(
                "memberIds: your plan's groups have at most {limit} members"
            )));
        }
        let now = Utc::now();
        let txn = begin_write(&self.db).await?;
        let chat = chat::ActiveModel {
            id: Set(Uuid::now_v7()),
            kind: Set(chat::Kind::Group),
            title: Set(Some(title)),
            direct_key: Set(None),
            creator_id: Set(me),
            last_seq: Set(0),
            activity: Set(now.timestamp_micros()),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        new_member(chat.id, me, Role::Admin, 0, now)
            .insert(&txn)
            .await?;
        for user in &others {
            new_member(chat.id, *user, Role::Member, 0, now)
                .insert(&txn)
                .await?;
        }
        let event = ChatCreated {
            chat_id: chat.id,
            kind: chat.kind.to_value(),
            creator_id: me,
            member_ids: std::iter::once(me).chain(others).collect(),
        };
        append(&txn, chat.id, &event).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(chat)
    }

    /// An admin adds `user` to a group; a SYSTEM message records it.
    pub async fn add_member(&self, me: Uuid, chat_id: Uuid, user: Uuid) -> Result<chat::Model> {
        self.offered(user)?;
        ensure_known(&self.db, user).await?;
        ensure_not_blocked(&self.db, me, user).await?;
        let txn = begin_write(&self.db).await?;
        let (chat, mine) = member_of(&txn, chat_id, me).await?;
        ensure_group_admin(&chat, &mine)?;
        if member::Entity::find_by_id((chat_id, user))
            .one(&txn)
            .await?
            .is_some()
        {
            return Err(ChatError::Conflict("already a member"));
        }
        let count = member::Entity::find()
            .filter(member::Column::ChatId.eq(chat_id))
            .count(&txn)
            .await?;
        let limit = group_limit(&txn, chat.creator_id).await?;
        if count as usize >= limit {
            return Err(invalid(format!(
                "this group has reached its limit of {limit} members (its creator's plan)"
            )));
        }
        let system =
            insert_message(&txn, &chat, me, NewMessage::system("MEMBER_ADDED", user)).await?;
        new_member(chat_id, user, Role::Member, system.seq - 1, Utc::now())
            .insert(&txn)
            .await?;
        let change = ChatMemberChanged {
            chat_id,
            user_id: user,
            by: me,
        };
        append(&txn, chat_id, &ChatMemberAdded(change)).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(chat)
    }

    /// An admin removes `user` from a group (members leave with [`Self::leave`]).
    pub async fn remove_member(&self, me: Uuid, chat_id: Uuid, user: Uuid) -> Result<chat::Model> {
        if me == user {
            return Err(invalid("userId: use leaveChat to leave"));
        }
        let txn = begin_write(&self.db).await?;
        let (chat, mine) = member_of(&txn, chat_id, me).await?;
        ensure_group_admin(&chat, &mine)?;
        let removed = member::Entity::delete_by_id((chat_id, user))
            .exec(&txn)
            .await?;
        if removed.rows_affected == 0 {
            return Err(ChatError::NotFound("member"));
        }
        insert_message(&txn, &chat, me, NewMessage::system("MEMBER_REMOVED", user)).await?;
        let change = ChatMemberChanged {
            chat_id,
            user_id: user,
            by: me,
        };
        append(&txn, chat_id, &ChatMemberRemoved(change)).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(chat)
    }

    /// The caller leaves a group; when the last admin leaves, the longest-standing member becomes admin.
    pub async fn leave(&self, me: Uuid, chat_id: Uuid) -> Result<()> {
        let txn = begin_write(&self.db).await?;
        let (chat, _) = member_of(&txn, chat_id, me).await?;
        if chat.kind == chat::Kind::Direct {
            return Err(invalid("chatId: a direct chat cannot be left"));
        }
        member::Entity::delete_by_id((chat_id, me))
            .exec(&txn)
            .await?;
        if !any_admin(&txn, chat_id).await? {
            let heir = member::Entity::find()
                .filter(member::Column::ChatId.eq(chat_id))
                .order_by_asc(member::Column::JoinedAt)
                .order_by_asc(member::Column::UserId)
                .one(&txn)
                .await?;
            if let Some(heir) = heir {
                let mut heir: member::ActiveModel = heir.into();
                heir.role = Set(Role::Admin);
                heir.update(&txn).await?;
            }
        }
        insert_message(&txn, &chat, me, NewMessage::system("MEMBER_LEFT", me)).await?;
        let change = ChatMemberChanged {
            chat_id,
            user_id: me,
            by: me,
        };
        append(&txn, chat_id, &ChatMemberRemoved(change)).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(())
    }

    /// An admin makes another member an admin, or a plain member again.
    pub async fn set_admin(
        &self,
        me: Uuid,
        chat_id: Uuid,
        user: Uuid,
        admin: bool,
    ) -> Result<chat::Model> {
        let txn = begin_write(&self.db).await?;
        let (chat, mine) = member_of(&txn, chat_id, me).await?;
        ensure_group_admin(&chat, &mine)?;
        let target = member::Entity::find_by_id((chat_id, user))
            .one(&txn)
            .await?
            .ok_or(ChatError::NotFound("member"))?;
        let mut target: member::ActiveModel = target.into();
        target.role = Set(if admin { Role::Admin } else { Role::Member });
        target.update(&txn).await?;
        if !admin && !any_admin(&txn, chat_id).await? {
            return Err(invalid("a group keeps at least one admin"));
        }
        txn.commit().await?;
        Ok(chat)
    }

    /// The caller's own settings for a chat.
    pub async fn update_settings(
        &self,
        me: Uuid,
        chat_id: Uuid,
        muted_until: Option<Option<DateTime<Utc>>>,
        level: Option<NotificationLevel>,
    ) -> Result<member::Model> {
        let txn = begin_write(&self.db).await?;
        let (_, mine) = member_of(&txn, chat_id, me).await?;
        let mut active: member::ActiveModel = mine.into();
        if let Some(until) = muted_until {
            active.muted_until = Set(until);
        }
        if let Some(level) = level {
            active.notification_level = Set(level);
        }
        let updated = active.update(&txn).await?;
        // Notifications holds back what a muted chat would send.
        let settings = ChatSettingsChanged {
            chat_id,
            user_id: me,
            muted_until: updated.muted_until,
            level: updated.notification_level.to_value(),
        };
        append(&txn, chat_id, &settings).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(updated)
    }
}

/// Whether the chat has an admin (one row read, however large the group).
async fn any_admin<C: ConnectionTrait>(db: &C, chat_id: Uuid) -> Result<bool> {
    Ok(member::Entity::find()
        .filter(member::Column::ChatId.eq(chat_id))
        .filter(member::Column::Role.eq(Role::Admin))
        .one(db)
        .await?
        .is_some())
}

fn ensure_group_admin(chat: &chat::Model, me: &member::Model) -> Result<()> {
    if chat.kind != chat::Kind::Group {
        return Err(invalid(
            "chatId: direct chats have exactly their two members",
        ));
    }
    if me.role != Role::Admin {
        return Err(ChatError::Forbidden(
            "only a group's admins manage its members",
        ));
    }
    Ok(())
}

fn validate_title(title: &str) -> Result<String> {
    let title = title.trim();
    match title.chars().count() {
        0 => Err(invalid("title: must not be empty")),
        n if n > 100 => Err(invalid("title: at most 100 characters")),
        _ => Ok(title.to_string()),
    }
}
