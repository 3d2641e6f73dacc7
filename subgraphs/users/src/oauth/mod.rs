//! Sign-in with OpenID Connect providers: the authorization code flow with PKCE.
//!
//! `oauthStart` checks the redirect URI against the allow-list, makes the authorization URL (state, nonce,
//! S256 challenge) and keeps what finishing needs; `oauthFinish` / `linkOAuthProvider` take that back by
//! the state (once), exchange the code and check the ID token, then sign in, make an account, or link.
//!
//! - [`providers`]: the configured providers, discovery and keys, the code exchange and the ID-token checks.
//! - [`attempts`]: sign-ins under way (10 minutes).
//! - [`identities`]: what a verified identity does to accounts (sign in, create, link, unlink).

pub mod attempts;
pub mod identities;
pub mod providers;

use chrono::Duration;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::error::{Result, UsersError};
use crate::validate::bounded;
use attempts::Attempt;
use providers::{Providers, Verified};

/// Longest provider name, redirect URI, code and state accepted (checked before any work).
const MAX_PROVIDER: usize = 32;
const MAX_REDIRECT_URI: usize = 2048;
const MAX_CODE: usize = 4096;
const MAX_STATE: usize = 512;

/// What the client sends the browser to, and the state the provider hands back with the code.
pub struct Started {
    pub authorization_url: String,
    pub state: String,
}

/// A finished sign-in: who the provider says it is, and who started it signed in (if anyone).
pub struct Finished {
    pub verified: Verified,
    pub started_by: Option<Uuid>,
}

pub struct SignIn {
    pub db: DatabaseConnection,
    pub providers: Providers,
    /// How long a started sign-in may take (10 minutes).
    pub attempt_ttl: Duration,
}

impl SignIn {
    /// Starts a sign-in at `provider` coming back to `redirect_uri`; `caller` when signed in (a link).
    pub async fn start(
        &self,
        provider: &str,
        redirect_uri: &str,
        caller: Option<Uuid>,
    ) -> Result<Started> {
        bounded("provider", provider, MAX_PROVIDER)?;
        bounded("redirectUri", redirect_uri, MAX_REDIRECT_URI)?;
        let authorization = self.providers.authorize(provider, redirect_uri).await?;
        let attempt = Attempt {
            state: &authorization.state,
            provider,
            redirect_uri,
            pkce_verifier: &authorization.pkce_verifier,
            nonce: &authorization.nonce,
            user_id: caller,
        };
        attempts::keep(&self.db, attempt, self.attempt_ttl).await?;
        Ok(Started {
            authorization_url: authorization.url,
            state: authorization.state,
        })
    }

    /// Finishes the sign-in `state` names with the provider's `code`.
    pub async fn finish(&self, provider: &str, code: &str, state: &str) -> Result<Finished> {
        bounded("provider", provider, MAX_PROVIDER)?;
        bounded("code", code, MAX_CODE)?;
        bounded("state", state, MAX_STATE)?;
        if !self.providers.names().iter().any(|name| name == provider) {
            return Err(UsersError::Invalid(format!(
                "provider: no provider {provider:?}"
            )));
        }
        let attempt = attempts::take(&self.db, provider, state).await?;
        let verified = self
            .providers
            .exchange(
                provider,
                &attempt.redirect_uri,
                code,
                &attempt.pkce_verifier,
                &attempt.nonce,
            )
            .await?;
        Ok(Finished {
            verified,
            started_by: attempt.user_id,
        })
    }
}
