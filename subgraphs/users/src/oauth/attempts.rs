//! Sign-ins under way. Starting one keeps its PKCE verifier, nonce and redirect URI (and who started it, if
//! signed in) under the hash of its `state` for a short while; finishing takes it — once: a second finish
//! with the same state, a state from another provider, or one that expired finds nothing.

use chrono::{Duration, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::error::{Result, UsersError};
use crate::secrets::token_hash;
use crate::store::oauth_attempt;

/// What a sign-in keeps until it finishes.
pub struct Attempt<'a> {
    pub state: &'a str,
    pub provider: &'a str,
    pub redirect_uri: &'a str,
    pub pkce_verifier: &'a str,
    pub nonce: &'a str,
    pub user_id: Option<Uuid>,
}

/// Keeps `attempt` for `ttl`; sweeps the expired ones.
pub async fn keep(db: &DatabaseConnection, attempt: Attempt<'_>, ttl: Duration) -> Result<()> {
    let now = Utc::now();
    oauth_attempt::Entity::delete_many()
        .filter(oauth_attempt::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    oauth_attempt::ActiveModel {
        state_hash: Set(token_hash(attempt.state)),
        provider: Set(attempt.provider.to_string()),
        redirect_uri: Set(attempt.redirect_uri.to_string()),
        pkce_verifier: Set(attempt.pkce_verifier.to_string()),
        nonce: Set(attempt.nonce.to_string()),
        user_id: Set(attempt.user_id),
        expires_at: Set(now + ttl),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Takes the sign-in `state` names at `provider`: only one caller ever gets it.
pub async fn take(
    db: &DatabaseConnection,
    provider: &str,
    state: &str,
) -> Result<oauth_attempt::Model> {
    let refused = || UsersError::SignInRefused("unknown or expired state; start again".into());
    let hash = token_hash(state);
    let attempt = oauth_attempt::Entity::find_by_id(hash.clone())
        .one(db)
        .await?
        .ok_or_else(refused)?;
    // Whoever deletes the row owns the attempt (two finishes at once: one wins).
    let taken = oauth_attempt::Entity::delete_many()
        .filter(oauth_attempt::Column::StateHash.eq(hash))
        .exec(db)
        .await?
        .rows_affected
        == 1;
    if !taken || attempt.provider != provider || attempt.expires_at <= Utc::now() {
        return Err(refused());
    }
    Ok(attempt)
}
