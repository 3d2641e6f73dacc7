use std::sync::Arc;

use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use parley_kit::auth::{require_identity, ClientIp};
use parley_kit::ids::parse_id;
use parley_kit::{ApiResult, ResultExt, Role};
use sea_orm::DatabaseConnection;

use super::user::User;
use crate::accounts::{Accounts, Issued, RegisterInput as NewAccount};
use crate::error::UsersError;
use crate::oauth::SignIn;
use crate::profiles::{self, ProfileChanges};
use crate::validate;

pub struct Mutation;

#[derive(InputObject)]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub name: String,
    pub nickname: String,
}

/// Changes to the caller's profile: omitted fields stay, an empty string clears bio, avatar or status.
#[derive(InputObject)]
pub struct UpdateProfileInput {
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub bio: Option<String>,
    /// A READY image of the caller's uploaded for avatars (`createUpload` with purpose AVATAR); `avatarUrl`
    /// then links its SMALL size. An empty string shows none.
    pub avatar_id: Option<ID>,
    pub status: Option<String>,
}

/// A signed-in session: a short-lived access token and a refresh token to get the next one.
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    pub refresh_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub user: User,
}

impl From<Issued> for AuthPayload {
    fn from(issued: Issued) -> Self {
        Self {
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
            access_token_expires_at: issued.access_token_expires_at,
            user: User(issued.user),
        }
    }
}

/// A sign-in at an OpenID Connect provider, started: send the browser to `authorizationUrl`; the provider
/// sends it back to the redirect URI with `code` and this `state`.
#[derive(SimpleObject)]
pub struct OAuthStart {
    pub authorization_url: String,
    pub state: String,
}

fn accounts<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Arc<Accounts>> {
    ctx.data::<Arc<Accounts>>()
}

fn sign_in<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Arc<SignIn>> {
    ctx.data::<Arc<SignIn>>()
}

#[Object]
impl Mutation {
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> ApiResult<AuthPayload> {
        let input = NewAccount {
            email: input.email,
            password: input.password,
            name: input.name,
            nickname: input.nickname,
        };
        Ok(accounts(ctx)?.register(input).await.gql()?.into())
    }

    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> ApiResult<AuthPayload> {
        let ip = ctx
            .data_opt::<ClientIp>()
            .map_or("unknown", |ip| ip.0.as_str());
        Ok(accounts(ctx)?
            .login(&email, &password, ip)
            .await
            .gql()?
            .into())
    }

    /// Starts signing in at `provider` (one of `oauthProviders`), coming back to `redirectUri` (which the
    /// server must allow). Signed in, it starts linking that provider to the account instead
    /// (`linkOAuthProvider` finishes it). The state is good for 10 minutes, once.
    async fn oauth_start(
        &self,
        ctx: &Context<'_>,
        provider: String,
        redirect_uri: String,
    ) -> ApiResult<OAuthStart> {
        let caller = parley_kit::auth::identity(ctx).map(|me| me.user_id);
        let started = sign_in(ctx)?
            .start(&provider, &redirect_uri, caller)
            .await
            .gql()?;
        Ok(OAuthStart {
            authorization_url: started.authorization_url,
            state: started.state,
        })
    }

    /// Finishes signing in with the `code` and `state` the provider sent back: to the account linked to
    /// that identity, or to a new one. An existing account with the same verified email is never taken over:
    /// `CONFLICT` (its owner signs in and links the provider).
    async fn oauth_finish(
        &self,
        ctx: &Context<'_>,
        provider: String,
        code: String,
        state: String,
    ) -> ApiResult<AuthPayload> {
        let finished = sign_in(ctx)?.finish(&provider, &code, &state).await.gql()?;
        Ok(accounts(ctx)?
            .sign_in_with(&finished.verified)
            .await
            .gql()?
            .into())
    }

    /// Links the identity the provider vouches for to the signed-in account (a sign-in the caller started
    /// signed in).
    #[graphql(name = "linkOAuthProvider")]
    async fn link_oauth_provider(
        &self,
        ctx: &Context<'_>,
        provider: String,
        code: String,
        state: String,
    ) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        let finished = sign_in(ctx)?.finish(&provider, &code, &state).await.gql()?;
        if finished.started_by != Some(me.user_id) {
            // Someone else's sign-in (or one started signed out) must not link to this account.
            return Err(UsersError::SignInRefused(
                "this sign-in was not started by this account".into(),
            ))
            .gql();
        }
        accounts(ctx)?
            .link_identity(me.user_id, &finished.verified)
            .await
            .gql()
    }

    /// Unlinks `provider` from the signed-in account, unless it is the account's only way to sign in.
    #[graphql(name = "unlinkOAuthProvider")]
    async fn unlink_oauth_provider(&self, ctx: &Context<'_>, provider: String) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        validate::bounded("provider", &provider, 32).gql()?;
        accounts(ctx)?
            .unlink_identity(me.user_id, &provider)
            .await
            .gql()
    }

    /// Exchanges a refresh token for a new pair; the old one stops working (using it again ends the session).
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> ApiResult<AuthPayload> {
        Ok(accounts(ctx)?.refresh(&refresh_token).await.gql()?.into())
    }

    /// Ends the session the refresh token belongs to.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> ApiResult<bool> {
        accounts(ctx)?.logout(&refresh_token).await.gql()
    }

    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: UpdateProfileInput,
    ) -> ApiResult<User> {
        let me = require_identity(ctx)?;
        let accounts = accounts(ctx)?;
        let changes = ProfileChanges {
            name: input.name,
            nickname: input.nickname,
            bio: input.bio,
            avatar_id: input.avatar_id.map(|id| id.0),
            status: input.status,
        };
        let updated = profiles::update(&accounts.db, &accounts.events, me, changes)
            .await
            .gql()?;
        Ok(User(updated))
    }

    /// Changes the password; every other session is signed out.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        accounts(ctx)?
            .change_password(me, &current_password, &new_password)
            .await
            .gql()
    }

    /// Mails a reset token if the email has an account; always true.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> ApiResult<bool> {
        accounts(ctx)?.request_password_reset(&email).await.gql()
    }

    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        new_password: String,
    ) -> ApiResult<bool> {
        accounts(ctx)?
            .reset_password(&token, &new_password)
            .await
            .gql()
    }

    /// Confirms the email with the token mailed at registration.
    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> ApiResult<bool> {
        accounts(ctx)?.verify_email(&token).await.gql()
    }

    /// Admins only.
    async fn set_user_role(&self, ctx: &Context<'_>, user_id: ID, role: Role) -> ApiResult<User> {
        let me = require_identity(ctx)?;
        let user_id = parse_id(&user_id)?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(User(profiles::set_role(db, me, user_id, role).await.gql()?))
    }
}
