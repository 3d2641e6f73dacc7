//! Profiles: lookups (one, many for the entity loader, by nickname), prefix search, updates and roles.

use std::collections::HashMap;

use chrono::Utc;
use parley_kit::events::contracts::UserProfileUpdated;
use parley_kit::events::{append, Events};
use parley_kit::pagination::Page;
use parley_kit::store::begin_write;
use parley_kit::{Identity, Role};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::error::{Result, UsersError};
use crate::store::user;
use crate::validate;

/// Changes to a profile; `None` leaves a field as it is, an empty string clears an optional one.
#[derive(Default)]
pub struct ProfileChanges {
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
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
    if let Some(url) = changes.avatar_url {
        let url = url.trim();
        active.avatar_url = Set(if url.is_empty() {
            None
        } else {
            Some(validate::avatar_url(url)?)
        });
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
    append(
        &txn,
        updated.id,
        &UserProfileUpdated {
            user_id: updated.id,
            nickname: updated.nickname.clone(),
            avatar_url: updated.avatar_url.clone(),
        },
    )
    .await?;
    txn.commit().await?;
    events.wake();
    Ok(updated)
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
