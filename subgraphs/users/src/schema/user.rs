//! The `User` entity as users owns it, and its batched loader.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Object, ID};
use chrono::{DateTime, Utc};
use parley_kit::auth::identity;
use parley_kit::ids::to_id;
use parley_kit::Role;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::profiles;
use crate::store::user;

/// A Parley account's public profile (plus `email` for its owner).
pub struct User(pub user::Model);

#[Object]
impl User {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Shareable: chat answers it too (`@provides` on a message's author, from the card users' events carry).
    #[graphql(shareable)]
    async fn nickname(&self) -> &str {
        &self.0.nickname
    }
    /// Only the account's owner sees it.
    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        let email = self.0.email.as_str();
        (self.is_me(ctx) && crate::accounts::has_email(email)).then_some(email)
    }
    /// Whether the email was confirmed; only the account's owner sees it.
    async fn email_verified(&self, ctx: &Context<'_>) -> Option<bool> {
        self.is_me(ctx).then_some(self.0.email_verified)
    }
    async fn bio(&self) -> Option<&str> {
        self.0.bio.as_deref()
    }
    /// A signed link to the avatar's SMALL size (480 px), lasting while the avatar is. Shareable, like
    /// `nickname`.
    #[graphql(shareable)]
    async fn avatar_url(&self) -> Option<&str> {
        self.0.avatar_url.as_deref()
    }
    /// The avatar itself (every size, its blurhash), resolved by media.
    async fn avatar(&self) -> Option<parley_kit::known_media::MediaRef> {
        self.0.avatar_id.map(parley_kit::known_media::MediaRef::new)
    }
    async fn status(&self) -> Option<&str> {
        self.0.status.as_deref()
    }
    async fn role(&self) -> Role {
        self.0.role
    }
    /// The chat assistant's badge: this account answers through a language model and cannot sign in.
    async fn is_assistant(&self) -> bool {
        self.0.id == parley_kit::assistant::USER_ID
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Last activity (login, token refresh, `me`).
    async fn last_seen_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_seen_at
    }
}

impl User {
    fn is_me(&self, ctx: &Context<'_>) -> bool {
        identity(ctx).is_some_and(|me| me.user_id == self.0.id)
    }
}

/// Loads users by id in batches (entity resolution and nested references: no N+1).
pub struct UserLoader(pub DatabaseConnection);

impl Loader<Uuid> for UserLoader {
    type Value = user::Model;
    type Error = Arc<crate::error::UsersError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, user::Model>, Self::Error> {
        profiles::by_ids(&self.0, keys).await.map_err(Arc::new)
    }
}
