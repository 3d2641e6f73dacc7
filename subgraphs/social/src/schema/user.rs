//! Social's fields on the `User` entity (owned by users; social only adds fields, keyed by `id`).

use async_graphql::connection::Connection;
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Object, ID};
use parley_kit::audience::Viewer;
use parley_kit::auth::identity;
use parley_kit::error::{coded, to_graphql_arc};
use parley_kit::ids::to_id;
use parley_kit::pagination::{connection, Page};
use parley_kit::{ApiResult, ErrorCode, ResultExt};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::loaders::{CountKey, Flag, FlagKey, PrivateKey, SocialLoader};
use crate::lists::{self, ListKind};

/// A reference to a user; its other fields come from the users subgraph.
pub struct User {
    pub id: Uuid,
}

impl User {
    async fn list(
        &self,
        ctx: &Context<'_>,
        kind: ListKind,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, User>> {
        let page = Page::new(first, after)?;
        let db = ctx.data::<DatabaseConnection>()?;
        // A private account's lists are for itself, its followers and staff; across a block, for no one.
        let viewer = Viewer::of(identity(ctx));
        let rows = if lists::lists_visible(db, &viewer, self.id).await.gql()? {
            lists::list(db, self.id, kind, &page).await.gql()?
        } else {
            Vec::new()
        };
        Ok(connection(
            &page,
            rows,
            |e| vec![e.follow_id.to_string()],
            |e| User { id: e.user_id },
        ))
    }

    async fn flag(&self, ctx: &Context<'_>, flag: Flag) -> ApiResult<bool> {
        let Some(me) = identity(ctx) else {
            return Ok(false);
        };
        let loader = ctx.data::<DataLoader<SocialLoader>>()?;
        let key = FlagKey {
            viewer: me.user_id,
            target: self.id,
            flag,
        };
        Ok(loader
            .load_one(key)
            .await
            .map_err(|e| to_graphql_arc(&e))?
            .unwrap_or(false))
    }

    async fn count(&self, ctx: &Context<'_>, followers: bool) -> ApiResult<i32> {
        let loader = ctx.data::<DataLoader<SocialLoader>>()?;
        let n = loader
            .load_one(CountKey(self.id, followers))
            .await
            .map_err(|e| to_graphql_arc(&e))?
            .unwrap_or(0);
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}

#[Object(extends)]
impl User {
    #[graphql(external)]
    async fn id(&self) -> ID {
        to_id(self.id)
    }

    /// Accounts following this user, newest first (empty for those who may not see a private account's
    /// lists).
    async fn followers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, User>> {
        self.list(ctx, ListKind::Followers, first, after).await
    }

    /// Accounts this user follows, newest first.
    async fn following(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, User>> {
        self.list(ctx, ListKind::Following, first, after).await
    }

    /// Accounts this user follows that follow back.
    async fn friends(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, User>> {
        self.list(ctx, ListKind::Friends, first, after).await
    }

    /// Pending requests to follow this (private) account; only its owner may read them.
    async fn follow_requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, User>> {
        if identity(ctx).is_none_or(|me| me.user_id != self.id) {
            return Err(coded(
                ErrorCode::Forbidden,
                "only the account's owner sees its follow requests",
            ));
        }
        self.list(ctx, ListKind::Requests, first, after).await
    }

    async fn follower_count(&self, ctx: &Context<'_>) -> ApiResult<i32> {
        self.count(ctx, true).await
    }

    async fn following_count(&self, ctx: &Context<'_>) -> ApiResult<i32> {
        self.count(ctx, false).await
    }

    /// Whether the caller follows this user (false when signed out).
    async fn is_followed_by_me(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        self.flag(ctx, Flag::Follows).await
    }

    /// Whether the caller blocked this user (false when signed out).
    async fn is_blocked_by_me(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        self.flag(ctx, Flag::Blocks).await
    }

    /// Private accounts approve each follower.
    async fn is_private(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let loader = ctx.data::<DataLoader<SocialLoader>>()?;
        Ok(loader
            .load_one(PrivateKey(self.id))
            .await
            .map_err(|e| to_graphql_arc(&e))?
            .unwrap_or(false))
    }
}
