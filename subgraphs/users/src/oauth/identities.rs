//! What a verified identity at a provider means for accounts. Signing in with one that is linked signs in
//! to its account; with a new one makes an account (a free nickname from the provider's profile; the email
//! only when the provider verified it) — unless an account already has that verified email: then nothing
//! is linked or made, because linking on an email match would let any provider that vouches for an
//! address take over the account holding it. That account's owner links the provider themselves, signed
//! in. Unlinking never leaves an account without a way to sign in. Every write and its events commit in
//! one transaction.

use chrono::Utc;
use parley_kit::events::append;
use parley_kit::events::contracts::{EmailVerified, UserLoggedIn, UserRegistered};
use parley_kit::store::begin_write;
use parley_kit::Role;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use uuid::Uuid;

use super::providers::Verified;
use crate::accounts::{touch, Accounts, Issued, NO_EMAIL_DOMAIN};
use crate::error::{Result, UsersError};
use crate::secrets::{has_password, NO_PASSWORD};
use crate::store::{oauth_identity, user};

/// Tries of a sign-in that lost a race (its nickname or identity taken meanwhile).
const TRIES: usize = 3;

impl Accounts {
    /// Signs in with `verified`: to its linked account, or to a new one.
    pub async fn sign_in_with(&self, verified: &Verified) -> Result<Issued> {
        for _ in 0..TRIES {
            if let Some(identity) = identity(&self.db, verified).await? {
                return self.signed_in(identity.user_id, verified).await;
            }
            if let Some(email) = &verified.verified_email {
                let holder = user::Entity::find()
                    .filter(user::Column::Email.eq(email))
                    .one(&self.db)
                    .await?;
                if holder.is_some() {
                    return Err(UsersError::Conflict(
                        "an account with this email exists: sign in to it, then link this provider",
                    ));
                }
            }
            if let Some(issued) = self.create(verified).await? {
                return Ok(issued);
            }
        }
        Err(UsersError::Conflict(
            "signing in raced with another; try again",
        ))
    }

    async fn signed_in(&self, user_id: Uuid, verified: &Verified) -> Result<Issued> {
        let account = user::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .ok_or(UsersError::NotFound)?;
        let txn = begin_write(&self.db).await?;
        let account = touch(&txn, account).await?;
        let event = UserLoggedIn {
            user_id,
            provider: Some(verified.provider.clone()),
        };
        append(&txn, user_id, &event).await?;
        let issued = self.issue(&txn, account, Uuid::now_v7()).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(issued)
    }

    /// A new account for `verified`; `None` when a nickname or the identity was taken meanwhile.
    async fn create(&self, verified: &Verified) -> Result<Option<Issued>> {
        let id = Uuid::now_v7();
        let nickname = self.free_nickname(verified).await?;
        let (email, email_verified) = match &verified.verified_email {
            Some(email) => (email.clone(), true),
            None => (format!("{id}@{NO_EMAIL_DOMAIN}"), false),
        };
        let role = if email_verified && self.is_admin_email(&email) {
            Role::Admin
        } else {
            Role::User
        };
        let name = display_name(verified, &nickname);
        let now = Utc::now();
        let account = user::ActiveModel {
            id: Set(id),
            email: Set(email.clone()),
            nickname_key: Set(nickname.to_lowercase()),
            nickname: Set(nickname),
            name_key: Set(name.to_lowercase()),
            name: Set(name),
            password_hash: Set(NO_PASSWORD.into()),
            bio: Set(None),
            avatar_url: Set(None),
            avatar_id: Set(None),
            status: Set(None),
            role: Set(role),
            email_verified: Set(email_verified),
            created_at: Set(now),
            updated_at: Set(now),
            last_seen_at: Set(Some(now)),
        };
        let txn = begin_write(&self.db).await?;
        let account = match account.insert(&txn).await {
            Ok(account) => account,
            Err(err) if parley_kit::error::is_unique_violation(&err) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        if !link(&txn, id, verified).await? {
            return Ok(None);
        }
        let registered = UserRegistered {
            user_id: id,
            nickname: account.nickname.clone(),
            avatar_url: None,
            name: account.name.clone(),
            bio: None,
            provider: Some(verified.provider.clone()),
        };
        append(&txn, id, &registered).await?;
        if email_verified {
            // Notifications mails only proven addresses: the provider proved this one.
            append(&txn, id, &EmailVerified { user_id: id, email }).await?;
        }
        let issued = self.issue(&txn, account, Uuid::now_v7()).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(Some(issued))
    }

    /// Links `verified` to the signed-in `user_id`'s account.
    pub async fn link_identity(&self, user_id: Uuid, verified: &Verified) -> Result<bool> {
        let txn = begin_write(&self.db).await?;
        if let Some(linked) = identity(&txn, verified).await? {
            return if linked.user_id == user_id {
                Ok(true)
            } else {
                Err(UsersError::Conflict(
                    "this provider account signs in to another Parley account",
                ))
            };
        }
        let same_provider = oauth_identity::Entity::find()
            .filter(oauth_identity::Column::UserId.eq(user_id))
            .filter(oauth_identity::Column::Provider.eq(&verified.provider))
            .count(&txn)
            .await?;
        if same_provider > 0 {
            return Err(UsersError::Conflict(
                "another account at this provider is linked: unlink it first",
            ));
        }
        if !link(&txn, user_id, verified).await? {
            return Err(UsersError::Conflict(
                "this provider account was linked meanwhile",
            ));
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Unlinks `provider` from `user_id`'s account, unless it is the account's only way to sign in.
    pub async fn unlink_identity(&self, user_id: Uuid, provider: &str) -> Result<bool> {
        let txn = begin_write(&self.db).await?;
        // Holds the account's row first, so two unlinks at once see each other's.
        let held = user::Entity::update_many()
            .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?
            .rows_affected;
        let account = user::Entity::find_by_id(user_id)
            .one(&txn)
            .await?
            .filter(|_| held == 1)
            .ok_or(UsersError::NotFound)?;
        let removed = oauth_identity::Entity::delete_many()
            .filter(oauth_identity::Column::UserId.eq(user_id))
            .filter(oauth_identity::Column::Provider.eq(provider))
            .exec(&txn)
            .await?
            .rows_affected;
        if removed == 0 {
            return Err(UsersError::Invalid(
                "provider: this account is not linked to it".into(),
            ));
        }
        let others = oauth_identity::Entity::find()
            .filter(oauth_identity::Column::UserId.eq(user_id))
            .count(&txn)
            .await?;
        if others == 0 && !has_password(&account.password_hash) {
            return Err(UsersError::Conflict(
                "this is the account's only way to sign in: set a password or link another provider first",
            ));
        }
        txn.commit().await?;
        Ok(true)
    }

    /// A nickname no one has, from the provider's profile: its username, name or email's local part, made
    /// of the letters nicknames allow, with a number after it if taken.
    async fn free_nickname(&self, verified: &Verified) -> Result<String> {
        let base = nickname_base(verified);
        let candidates: Vec<String> = std::iter::once(base.clone())
            .chain((2..=20).map(|n| format!("{base}{n}")))
            .chain(std::iter::once(format!(
                "{base}{}",
                &Uuid::now_v7().simple().to_string()[24..]
            )))
            .collect();
        let keys: Vec<String> = candidates.iter().map(|c| c.to_lowercase()).collect();
        let taken: Vec<String> = user::Entity::find()
            .filter(user::Column::NicknameKey.is_in(keys))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|account| account.nickname_key)
            .collect();
        Ok(candidates
            .into_iter()
            .find(|c| !taken.contains(&c.to_lowercase()))
            .unwrap_or(base))
    }
}

/// The account `verified` is linked to, if any.
async fn identity<C: ConnectionTrait>(
    db: &C,
    verified: &Verified,
) -> Result<Option<oauth_identity::Model>> {
    Ok(
        oauth_identity::Entity::find_by_id((verified.provider.clone(), verified.subject.clone()))
            .one(db)
            .await?,
    )
}

/// Links `verified` to `user_id`; `false` when it is linked already (a race).
async fn link<C: ConnectionTrait>(db: &C, user_id: Uuid, verified: &Verified) -> Result<bool> {
    let row = oauth_identity::ActiveModel {
        provider: Set(verified.provider.clone()),
        subject: Set(verified.subject.clone()),
        user_id: Set(user_id),
        email: Set(verified.verified_email.clone()),
        created_at: Set(Utc::now()),
    };
    match row.insert(db).await {
        Ok(_) => Ok(true),
        Err(err) if parley_kit::error::is_unique_violation(&err) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// 3 to 24 of the characters nicknames allow, from the provider's profile (room is left for a number).
fn nickname_base(verified: &Verified) -> String {
    let from_email = verified
        .verified_email
        .as_deref()
        .and_then(|email| email.split('@').next());
    let raw = [
        verified.preferred_username.as_deref(),
        verified.name.as_deref(),
        from_email,
    ]
    .into_iter()
    .flatten()
    .find(|s| s.chars().any(|c| c.is_ascii_alphanumeric()))
    .unwrap_or("user");
    let mut nickname: String = raw
        .chars()
        .filter_map(|c| match c {
            c if c.is_ascii_alphanumeric() || c == '_' => Some(c),
            ' ' | '.' | '-' => Some('_'),
            _ => None,
        })
        .take(24)
        .collect();
    while nickname.chars().count() < 3 {
        nickname.push('_');
    }
    nickname
}

/// The provider's name for the person (1–80 characters, no control characters), or the nickname.
fn display_name(verified: &Verified, nickname: &str) -> String {
    let name: String = verified
        .name
        .as_deref()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    let name = name.trim();
    if name.is_empty() {
        nickname.to_string()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(username: Option<&str>, name: Option<&str>, email: Option<&str>) -> Verified {
        Verified {
            provider: "corp".into(),
            subject: "s".into(),
            verified_email: email.map(str::to_string),
            name: name.map(str::to_string),
            preferred_username: username.map(str::to_string),
        }
    }

    #[test]
    fn nicknames_come_from_the_profile_in_the_allowed_letters() {
        assert_eq!(
            nickname_base(&verified(Some("ann.lee"), None, None)),
            "ann_lee"
        );
        assert_eq!(
            nickname_base(&verified(None, Some("Ann Lee"), None)),
            "Ann_Lee"
        );
        assert_eq!(
            nickname_base(&verified(Some("ü"), None, Some("x@example.com"))),
            "x__"
        );
        assert_eq!(nickname_base(&verified(None, None, None)), "user");
        assert_eq!(
            nickname_base(&verified(Some(&"a".repeat(40)), None, None)).len(),
            24
        );
        assert_eq!(
            display_name(&verified(None, Some(" \u{7} "), None), "nick"),
            "nick"
        );
    }
}
