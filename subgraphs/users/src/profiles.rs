//! Profiles: lookups (one, many for the entity loader, by nickname), prefix search, updates and roles.

use std::collections::HashMap;

use chrono::Utc;
use parley_kit::events::contracts::{AvatarAttached, MediaUse, UserProfileUpdated};
use parley_kit::events::{append, Events};
use parley_kit::known_media;
use parley_kit::pagination::Page;
use parley_kit::store::begin_write;
use parley_kit::{Identity, Role};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    ExprTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::error::{Result, UsersError};

/// How long an avatar not yet known here is waited for. Users learns that an upload is READY from media's
/// event, a moment after media says so to the uploader: a client that sets its avatar as soon as
/// `mediaProcessed` says READY (as the web app does) would otherwise be refused now and then on a busy
/// machine. Bounded, and only when the id is not usable yet.
const AVATAR_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
const AVATAR_POLL: std::time::Duration = std::time::Duration::from_millis(100);
use crate::store::user;
use crate::validate;

/// Changes to a profile; `None` leaves a field as it is, an empty string clears an optional one.
#[derive(Default)]
pub struct ProfileChanges {
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub bio: Option<String>,
    /// An upload of the caller's for avatars (media's id), or empty to show none.
    pub avatar_id: Option<String>,
    pub status: Option<String>,
}

pub async fn by_id(db: &DatabaseConnection, id: Uuid) -> Result<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id).one(db).await?)
}

/// Many users in one query (the entity loader's batch).
pub async fn by_ids(db: &DatabaseConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, user::Model>> {
    let rows = user::Entity::find()
        .filter(user::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|u| (u.id, u)).collect())
}

pub async fn by_nickname(db: &DatabaseConnection, nickname: &str) -> Result<Option<user::Model>> {
    // No nickname is this long: not looked up.
    if nickname.len() > 256 {
        return Ok(None);
    }
    Ok(user::Entity::find()
        .filter(user::Column::NicknameKey.eq(nickname.trim().to_lowercase()))
        .one(db)
        .await?)
}

/// Users whose nickname or name starts with `query` (case-insensitive), ordered by nickname, keyset-paginated.
pub async fn search(db: &DatabaseConnection, query: &str, page: &Page) -> Result<Vec<user::Model>> {
    if query.len() > 64 * 4 {
        return Err(UsersError::Invalid("query: 1 to 64 characters".into()));
    }
    let prefix = query.trim().to_lowercase();
    if prefix.is_empty() || prefix.chars().count() > 64 {
        return Err(UsersError::Invalid("query: 1 to 64 characters".into()));
    }
    let pattern = format!("{}%", escape_like(&prefix));
    let mut select = user::Entity::find().filter(
        Condition::any()
            .add(
                Expr::col(user::Column::NicknameKey)
                    .like(sea_orm::sea_query::LikeExpr::new(&pattern).escape('\\')),
            )
            .add(
                Expr::col(user::Column::NameKey)
                    .like(sea_orm::sea_query::LikeExpr::new(&pattern).escape('\\')),
            ),
    );
    if let Some(after) = page.after.as_ref().and_then(|a| a.first()) {
        select = select.filter(user::Column::NicknameKey.gt(after.clone()));
    }
    Ok(select
        .order_by_asc(user::Column::NicknameKey)
        .limit(page.limit())
        .all(db)
        .await?)
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub async fn update(
    db: &DatabaseConnection,
    events: &Events,
    me: &Identity,
    changes: ProfileChanges,
) -> Result<user::Model> {
    let account = by_id(db, me.user_id).await?.ok_or(UsersError::NotFound)?;
    let mut active: user::ActiveModel = account.clone().into();
    if let Some(name) = changes.name {
        let name = validate::name(&name)?;
        active.name_key = Set(name.to_lowercase());
        active.name = Set(name);
    }
    if let Some(nickname) = changes.nickname {
        let nickname = validate::nickname(&nickname)?;
        if nickname.to_lowercase() != account.nickname_key
            && by_nickname(db, &nickname).await?.is_some()
        {
            return Err(UsersError::NicknameTaken);
        }
        active.nickname_key = Set(nickname.to_lowercase());
        active.nickname = Set(nickname);
    }
    if let Some(bio) = validate::optional_text("bio", changes.bio, 500)? {
        active.bio = Set((!bio.is_empty()).then_some(bio));
    }
    if let Some(status) = validate::optional_text("status", changes.status, 100)? {
        active.status = Set((!status.is_empty()).then_some(status));
    }
    if let Some(id) = changes.avatar_id {
        let (avatar_id, avatar_url) = avatar(db, me.user_id, id.trim()).await?;
        active.avatar_id = Set(avatar_id);
        active.avatar_url = Set(avatar_url);
    }
    active.updated_at = Set(Utc::now());
    let txn = begin_write(db).await?;
    let updated = match active.update(&txn).await {
        Ok(u) => u,
        Err(err) if parley_kit::error::is_unique_violation(&err) => {
            return Err(UsersError::NicknameTaken)
        }
        Err(err) => return Err(err.into()),
    };
    append(&txn, updated.id, &profile_updated(&updated)).await?;
    if let Some(media_id) = updated
        .avatar_id
        .filter(|id| account.avatar_id != Some(*id))
    {
        let used = MediaUse {
            media_id,
            holder_id: updated.id,
        };
        append(&txn, media_id, &AvatarAttached(used)).await?;
    }
    txn.commit().await?;
    events.wake();
    Ok(updated)
}

/// The avatar `id` names for `me` (none when empty): `me`'s READY image uploaded for avatars, and its
/// lasting link, as media's events told users.
async fn avatar(
    db: &DatabaseConnection,
    me: Uuid,
    id: &str,
) -> Result<(Option<Uuid>, Option<String>)> {
    if id.is_empty() {
        return Ok((None, None));
    }
    let refused =
        || UsersError::Invalid("avatarId: not a ready image of yours uploaded for avatars".into());
    let id = Uuid::parse_str(id).map_err(|_| refused())?;
    let deadline = tokio::time::Instant::now() + AVATAR_WAIT;
    loop {
        let found = known_media::usable(db, me, &[id], "avatar", &["IMAGE"]).await?;
        if let Some(known) = found.into_iter().next() {
            return Ok((Some(id), known.link));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(refused());
        }
        tokio::time::sleep(AVATAR_POLL).await;
    }
}

/// Takes a deleted upload off every profile showing it (`MediaDeleted`), each with its `UserProfileUpdated`.
pub async fn avatar_deleted(
    txn: &DatabaseTransaction,
    media_id: Uuid,
) -> std::result::Result<(), DbErr> {
    let showing = user::Entity::find()
        .filter(user::Column::AvatarId.eq(media_id))
        .all(txn)
        .await?;
    for account in showing {
        let mut active: user::ActiveModel = account.into();
        active.avatar_id = Set(None);
        active.avatar_url = Set(None);
        active.updated_at = Set(Utc::now());
        let updated = active.update(txn).await?;
        append(txn, updated.id, &profile_updated(&updated)).await?;
    }
    Ok(())
}

/// The event a profile change publishes (chat keeps the card).
fn profile_updated(account: &user::Model) -> UserProfileUpdated {
    UserProfileUpdated {
        user_id: account.id,
        nickname: account.nickname.clone(),
        avatar_url: account.avatar_url.clone(),
        name: account.name.clone(),
        bio: account.bio.clone(),
    }
}

/// Admins grant and take roles.
pub async fn set_role(
    db: &DatabaseConnection,
    me: &Identity,
    user_id: Uuid,
    role: Role,
) -> Result<user::Model> {
    if !me.has_role(Role::Admin) {
        return Err(UsersError::Forbidden);
    }
    let account = by_id(db, user_id).await?.ok_or(UsersError::NotFound)?;
    let mut active: user::ActiveModel = account.into();
    active.role = Set(role);
    active.updated_at = Set(Utc::now());
    Ok(active.update(db).await?)
}
