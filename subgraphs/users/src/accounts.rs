//! Accounts and sessions: register, login, refresh-token rotation with reuse detection, logout, password change
//! and reset, email verification. Every write and its event commit in one transaction.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use parley_kit::events::contracts::{EmailVerified, UserLoggedIn, UserRegistered};
use parley_kit::events::{append, Events};
use parley_kit::mail::Mailer;
use parley_kit::store::begin_write;
use parley_kit::{Identity, Role};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};
use uuid::Uuid;

use crate::error::{Result, UsersError};
use crate::keys::Keys;
use crate::limiter::LoginLimiter;
use crate::secrets::{dummy_verify, hash_password, new_token, token_hash, verify_password};
use crate::store::{session, user, user_token};
use crate::validate;

/// Lifetime of a refresh token (each rotation starts a new one).
const REFRESH_TTL: Duration = Duration::days(30);
const RESET_TTL: Duration = Duration::hours(1);
const VERIFY_TTL: Duration = Duration::days(2);

const PURPOSE_RESET: &str = "reset";
const PURPOSE_VERIFY: &str = "verify";

/// The domain of the stored address of an account that has none (made by signing in with a provider
/// that gave no verified email): `<id>@no-email.invalid`, unique as the column wants, never shown, never
/// mailed; `.invalid` is reserved (RFC 2606), so no one registers such an address.
pub const NO_EMAIL_DOMAIN: &str = "no-email.invalid";

/// Whether `email` is a real address (not the stand-in of an account without one).
pub fn has_email(email: &str) -> bool {
    !email.ends_with(&format!("@{NO_EMAIL_DOMAIN}"))
}

/// Tokens and the account they were issued for.
pub struct Issued {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub user: user::Model,
}

pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub name: String,
    pub nickname: String,
}

pub struct Accounts {
    pub db: DatabaseConnection,
    pub keys: Arc<Keys>,
    pub mailer: Arc<Mailer>,
    pub events: Events,
    pub limiter: LoginLimiter,
    /// Base URL of the web app for links in mails.
    pub public_url: String,
    /// Emails that get the admin role once verified (`PARLEY_ADMIN_EMAILS`).
    pub admin_emails: Vec<String>,
}

impl Accounts {
    pub async fn register(&self, input: RegisterInput) -> Result<Issued> {
        let email = validate::email(&input.email)?;
        let nickname = validate::nickname(&input.nickname)?;
        let name = validate::name(&input.name)?;
        validate::password(&input.password, &email, &nickname)?;
        self.ensure_free(&email, &nickname).await?;
        let hash = hash_password(input.password).await?;
        let now = Utc::now();
        // Anyone can register any address: an admin address gets its role only once verified.
        let role = Role::User;
        let account = user::ActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(email.clone()),
            nickname_key: Set(nickname.to_lowercase()),
            nickname: Set(nickname.clone()),
            name_key: Set(name.to_lowercase()),
            name: Set(name),
            password_hash: Set(hash),
            bio: Set(None),
            avatar_url: Set(None),
            avatar_id: Set(None),
            status: Set(None),
            role: Set(role),
            email_verified: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
            last_seen_at: Set(Some(now)),
        };
        let txn = begin_write(&self.db).await?;
        let account = match account.insert(&txn).await {
            Ok(a) => a,
            Err(err) if parley_kit::error::is_unique_violation(&err) => {
                drop(txn);
                self.ensure_free(&email, &nickname).await?;
                return Err(UsersError::EmailTaken);
            }
            Err(err) => return Err(err.into()),
        };
        append(
            &txn,
            account.id,
            &UserRegistered {
                user_id: account.id,
                nickname: account.nickname.clone(),
                avatar_url: account.avatar_url.clone(),
                name: account.name.clone(),
                bio: account.bio.clone(),
                provider: None,
            },
        )
        .await?;
        let verify = self
            .one_time_token(&txn, account.id, PURPOSE_VERIFY, VERIFY_TTL)
            .await?;
        let issued = self.issue(&txn, account, Uuid::now_v7()).await?;
        txn.commit().await?;
        self.events.wake();
        self.mail(
            &issued.user.email,
            "Verify your Parley email",
            format!(
                "Welcome to Parley, {}!\n\nConfirm your email with this code:\n\n{verify}\n\nor open {}/verify-email?token={verify}\n",
                issued.user.name, self.public_url
            ),
        )
        .await;
        Ok(issued)
    }

    async fn ensure_free(&self, email: &str, nickname: &str) -> Result<()> {
        let email_used = user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(&self.db)
            .await?
            .is_some();
        if email_used {
            return Err(UsersError::EmailTaken);
        }
        let nick_used = user::Entity::find()
            .filter(user::Column::NicknameKey.eq(nickname.to_lowercase()))
            .one(&self.db)
            .await?
            .is_some();
        if nick_used {
            return Err(UsersError::NicknameTaken);
        }
        Ok(())
    }

    pub async fn login(&self, email: &str, password: &str, ip: &str) -> Result<Issued> {
        validate::bounded("email", email, validate::MAX_EMAIL)?;
        validate::bounded("password", password, validate::MAX_PASSWORD_BYTES)?;
        let email = email.trim().to_lowercase();
        self.limiter
            .check(&email, ip)
            .map_err(UsersError::RateLimited)?;
        let account = user::Entity::find()
            .filter(user::Column::Email.eq(&email))
            .one(&self.db)
            .await?;
        let ok = match &account {
            Some(a) => verify_password(password.to_string(), a.password_hash.clone()).await?,
            None => {
                dummy_verify(password.to_string()).await;
                false
            }
        };
        let account = match (ok, account) {
            (true, Some(account)) => account,
            _ => {
                self.limiter.record_failure(&email, ip);
                return Err(UsersError::BadCredentials);
            }
        };
        self.limiter.record_success(&email);
        let txn = begin_write(&self.db).await?;
        let account = touch(&txn, account).await?;
        append(
            &txn,
            account.id,
            &UserLoggedIn {
                user_id: account.id,
                provider: None,
            },
        )
        .await?;
        let issued = self.issue(&txn, account, Uuid::now_v7()).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(issued)
    }

    /// Exchanges a refresh token for a new pair. A token that was already exchanged (or revoked) is reuse:
    /// the whole family is revoked, so a stolen token dies with the legitimate one.
    pub async fn refresh(&self, token: &str) -> Result<Issued> {
        validate::bounded("refreshToken", token, validate::MAX_TOKEN_BYTES)?;
        let hash = token_hash(token);
        let row = session::Entity::find()
            .filter(session::Column::TokenHash.eq(&hash))
            .one(&self.db)
            .await?
            .ok_or(UsersError::BadRefreshToken)?;
        if row.replaced_at.is_some() || row.revoked_at.is_some() {
            if row.replaced_at.is_some() {
                tracing::warn!(user = %row.user_id, family = %row.family_id, "refresh token reuse; revoking the session");
            }
            revoke_family(&self.db, row.family_id).await?;
            return Err(UsersError::BadRefreshToken);
        }
        if row.expires_at <= Utc::now() {
            return Err(UsersError::BadRefreshToken);
        }
        let txn = begin_write(&self.db).await?;
        // Only one of two concurrent refreshes with the same token wins this update.
        let won = session::Entity::update_many()
            .col_expr(session::Column::ReplacedAt, Expr::value(Utc::now()))
            .filter(session::Column::Id.eq(row.id))
            .filter(session::Column::ReplacedAt.is_null())
            .filter(session::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !won {
            drop(txn);
            revoke_family(&self.db, row.family_id).await?;
            return Err(UsersError::BadRefreshToken);
        }
        let account = user::Entity::find_by_id(row.user_id)
            .one(&txn)
            .await?
            .ok_or(UsersError::BadRefreshToken)?;
        let account = touch(&txn, account).await?;
        let issued = self.issue(&txn, account, row.family_id).await?;
        txn.commit().await?;
        Ok(issued)
    }

    /// Revokes the session the refresh token belongs to.
    pub async fn logout(&self, token: &str) -> Result<bool> {
        validate::bounded("refreshToken", token, validate::MAX_TOKEN_BYTES)?;
        let row = session::Entity::find()
            .filter(session::Column::TokenHash.eq(token_hash(token)))
            .one(&self.db)
            .await?
            .ok_or(UsersError::BadRefreshToken)?;
        revoke_family(&self.db, row.family_id).await?;
        Ok(true)
    }

    /// Changes the password, revokes every other session of the account (their access tokens too, within
    /// a second: `sessions`) and burns outstanding reset tokens.
    pub async fn change_password(&self, me: &Identity, current: &str, new: &str) -> Result<bool> {
        validate::bounded("currentPassword", current, validate::MAX_PASSWORD_BYTES)?;
        validate::bounded("newPassword", new, validate::MAX_PASSWORD_BYTES)?;
        let account = self.account(me.user_id).await?;
        if !verify_password(current.to_string(), account.password_hash.clone()).await? {
            return Err(UsersError::WrongPassword);
        }
        validate::password(new, &account.email, &account.nickname)?;
        let hash = hash_password(new.to_string()).await?;
        let txn = begin_write(&self.db).await?;
        set_password(&txn, account.id, hash).await?;
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(session::Column::UserId.eq(account.id))
            .filter(session::Column::FamilyId.ne(me.session_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        // A reset mailed before the change would undo it.
        burn_reset_tokens(&txn, account.id).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Mails a reset token if the account exists. Always `true`, so the answer reveals no accounts.
    pub async fn request_password_reset(&self, email: &str) -> Result<bool> {
        validate::bounded("email", email, validate::MAX_EMAIL)?;
        let email = email.trim().to_lowercase();
        let Some(account) = user::Entity::find()
            .filter(user::Column::Email.eq(&email))
            .one(&self.db)
            .await?
        else {
            return Ok(true);
        };
        if !has_email(&account.email) {
            return Ok(true);
        }
        let token = self
            .one_time_token(&self.db, account.id, PURPOSE_RESET, RESET_TTL)
            .await?;
        self.mail(
            &account.email,
            "Reset your Parley password",
            format!(
                "Someone asked to reset the password of your Parley account.\n\nReset token:\n\n{token}\n\nor open {}/reset-password?token={token}\n\nIt expires in one hour. If it was not you, ignore this mail.\n",
                self.public_url
            ),
        )
        .await;
        Ok(true)
    }

    /// Sets a new password with a mailed token (single use), signs out every session and burns the other
    /// reset tokens.
    pub async fn reset_password(&self, token: &str, new: &str) -> Result<bool> {
        validate::bounded("token", token, validate::MAX_TOKEN_BYTES)?;
        validate::bounded("newPassword", new, validate::MAX_PASSWORD_BYTES)?;
        let row = self.valid_token(token, PURPOSE_RESET).await?;
        let account = self.account(row.user_id).await?;
        validate::password(new, &account.email, &account.nickname)?;
        let hash = hash_password(new.to_string()).await?;
        let txn = begin_write(&self.db).await?;
        if !use_token(&txn, &row.token_hash).await? {
            return Err(UsersError::BadOneTimeToken);
        }
        set_password(&txn, account.id, hash).await?;
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(session::Column::UserId.eq(account.id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        // Other reset tokens mailed before this one die with it.
        burn_reset_tokens(&txn, account.id).await?;
        txn.commit().await?;
        Ok(true)
    }

    pub async fn verify_email(&self, token: &str) -> Result<bool> {
        validate::bounded("token", token, validate::MAX_TOKEN_BYTES)?;
        let row = self.valid_token(token, PURPOSE_VERIFY).await?;
        let txn = begin_write(&self.db).await?;
        if !use_token(&txn, &row.token_hash).await? {
            return Err(UsersError::BadOneTimeToken);
        }
        let account = self.account(row.user_id).await?;
        let mut update =
            user::Entity::update_many().col_expr(user::Column::EmailVerified, Expr::value(true));
        // A configured admin address becomes an admin now that its owner proved it (the role is in the
        // next access token).
        if self.is_admin_email(&account.email) {
            update = update.col_expr(user::Column::Role, Expr::value(Role::Admin));
        }
        update
            .filter(user::Column::Id.eq(row.user_id))
            .exec(&txn)
            .await?;
        // Notifications mails only proven addresses.
        let verified = EmailVerified {
            user_id: account.id,
            email: account.email.clone(),
        };
        append(&txn, account.id, &verified).await?;
        txn.commit().await?;
        self.events.wake();
        Ok(true)
    }

    pub(crate) fn is_admin_email(&self, email: &str) -> bool {
        self.admin_emails
            .iter()
            .any(|admin| admin.eq_ignore_ascii_case(email))
    }

    async fn account(&self, id: Uuid) -> Result<user::Model> {
        user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(UsersError::NotFound)
    }

    async fn valid_token(&self, token: &str, purpose: &str) -> Result<user_token::Model> {
        user_token::Entity::find_by_id(token_hash(token))
            .one(&self.db)
            .await?
            .filter(|t| t.purpose == purpose && t.used_at.is_none() && t.expires_at > Utc::now())
            .ok_or(UsersError::BadOneTimeToken)
    }

    async fn one_time_token<C: ConnectionTrait>(
        &self,
        db: &C,
        user_id: Uuid,
        purpose: &str,
        ttl: Duration,
    ) -> Result<String> {
        let token = new_token();
        user_token::ActiveModel {
            token_hash: Set(token_hash(&token)),
            user_id: Set(user_id),
            purpose: Set(purpose.to_string()),
            expires_at: Set(Utc::now() + ttl),
            used_at: Set(None),
        }
        .insert(db)
        .await?;
        Ok(token)
    }

    /// Stores a new refresh token in `family_id` and signs an access token.
    pub(crate) async fn issue<C: ConnectionTrait>(
        &self,
        db: &C,
        account: user::Model,
        family_id: Uuid,
    ) -> Result<Issued> {
        let refresh_token = new_token();
        let now = Utc::now();
        session::ActiveModel {
            id: Set(Uuid::now_v7()),
            family_id: Set(family_id),
            user_id: Set(account.id),
            token_hash: Set(token_hash(&refresh_token)),
            created_at: Set(now),
            expires_at: Set(now + REFRESH_TTL),
            replaced_at: Set(None),
            revoked_at: Set(None),
        }
        .insert(db)
        .await?;
        let role = account.role;
        let (access_token, access_token_expires_at) =
            self.keys.access_token(account.id, role, family_id)?;
        Ok(Issued {
            access_token,
            access_token_expires_at,
            refresh_token,
            user: account,
        })
    }

    /// Mail failures are logged, not returned: the account change already committed.
    async fn mail(&self, to: &str, subject: &str, body: String) {
        if let Err(err) = self.mailer.send(to, subject, body).await {
            tracing::error!(error = %err, "sending mail failed");
        }
    }
}

async fn revoke_family(db: &DatabaseConnection, family_id: Uuid) -> Result<()> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(session::Column::FamilyId.eq(family_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

async fn set_password<C: ConnectionTrait>(db: &C, user_id: Uuid, hash: String) -> Result<()> {
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(hash))
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks a one-time token used; false if someone used it first.
/// Uses up every outstanding reset token of `user` (after a reset or a password change).
async fn burn_reset_tokens<C: ConnectionTrait>(db: &C, user: Uuid) -> Result<()> {
    user_token::Entity::update_many()
        .col_expr(user_token::Column::UsedAt, Expr::value(Utc::now()))
        .filter(user_token::Column::UserId.eq(user))
        .filter(user_token::Column::Purpose.eq(PURPOSE_RESET))
        .filter(user_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

async fn use_token<C: ConnectionTrait>(db: &C, hash: &str) -> Result<bool> {
    Ok(user_token::Entity::update_many()
        .col_expr(user_token::Column::UsedAt, Expr::value(Utc::now()))
        .filter(user_token::Column::TokenHash.eq(hash))
        .filter(user_token::Column::UsedAt.is_null())
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Records activity (`lastSeenAt`).
pub async fn touch<C: ConnectionTrait>(db: &C, account: user::Model) -> Result<user::Model> {
    let mut active: user::ActiveModel = account.into();
    active.last_seen_at = Set(Some(Utc::now()));
    Ok(active.update(db).await?)
}

/// Makes the chat assistant's account if it is not there: no password, no address (it cannot sign in),
/// announced like any account so chat knows it. Several instances starting at once make it once.
pub async fn ensure_assistant(db: &DatabaseConnection, events: &Events) -> Result<()> {
    use parley_kit::assistant::{FALLBACK_NICKNAME, NICKNAME, USER_ID};
    if user::Entity::find_by_id(USER_ID).one(db).await?.is_some() {
        return Ok(());
    }
    let taken = user::Entity::find()
        .filter(user::Column::NicknameKey.eq(NICKNAME))
        .one(db)
        .await?
        .is_some();
    let nickname = if taken { FALLBACK_NICKNAME } else { NICKNAME };
    let now = Utc::now();
    let account = user::ActiveModel {
        id: Set(USER_ID),
        email: Set(format!("{USER_ID}@{NO_EMAIL_DOMAIN}")),
        nickname_key: Set(nickname.to_string()),
        nickname: Set(nickname.to_string()),
        name_key: Set("assistant".into()),
        name: Set("Assistant".into()),
        password_hash: Set(crate::secrets::NO_PASSWORD.into()),
        bio: Set(Some(
            "Answers in chats: open a chat with me, or mention me in a group.".into(),
        )),
        avatar_url: Set(None),
        avatar_id: Set(None),
        status: Set(None),
        role: Set(Role::User),
        email_verified: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        last_seen_at: Set(None),
    };
    let txn = begin_write(db).await?;
    let account = match account.insert(&txn).await {
        Ok(account) => account,
        Err(err) if parley_kit::error::is_unique_violation(&err) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    let registered = UserRegistered {
        user_id: USER_ID,
        nickname: account.nickname.clone(),
        avatar_url: None,
        name: account.name.clone(),
        bio: account.bio.clone(),
        provider: None,
    };
    append(&txn, USER_ID, &registered).await?;
    txn.commit().await?;
    events.wake();
    Ok(())
}
