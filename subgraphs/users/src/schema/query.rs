use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Object, ID};
use parley_kit::auth::identity;
use parley_kit::error::coded;
use parley_kit::ids::parse_id;
use parley_kit::pagination::{connection, Page};
use parley_kit::{ApiResult, ErrorCode, ResultExt};
use sea_orm::DatabaseConnection;

use super::user::{User, UserLoader};
use crate::accounts::{touch, Accounts};
use crate::oauth::SignIn;
use crate::profiles;

pub struct Query;

#[Object]
impl Query {
    /// The OpenID Connect providers this server signs in with (names for `oauthStart`).
    async fn oauth_providers(&self, ctx: &Context<'_>) -> ApiResult<Vec<String>> {
        Ok(ctx.data::<Arc<SignIn>>()?.providers.names())
    }

    /// The signed-in user, or null without a token. Also records activity.
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(me) = identity(ctx) else {
            return Ok(None);
        };
        let accounts = ctx.data::<Arc<Accounts>>()?;
        let Some(account) = profiles::by_id(&accounts.db, me.user_id).await.gql()? else {
            return Ok(None);
        };
        let account = touch(&accounts.db, account).await.gql()?;
        Ok(Some(User(account)))
    }

    /// A user by id; `NOT_FOUND` if there is none.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<User>> {
        let id = parse_id(&id)?;
        let loader = ctx.data::<DataLoader<UserLoader>>()?;
        match loader
            .load_one(id)
            .await
            .map_err(|e| parley_kit::error::to_graphql_arc(&e))?
        {
            Some(u) => Ok(Some(User(u))),
            None => Err(coded(ErrorCode::NotFound, "user not found")),
        }
    }

    /// A user by nickname (case-insensitive); `NOT_FOUND` if there is none.
    async fn user_by_nickname(
        &self,
        ctx: &Context<'_>,
        nickname: String,
    ) -> ApiResult<Option<User>> {
        let db = ctx.data::<DatabaseConnection>()?;
        match profiles::by_nickname(db, &nickname).await.gql()? {
            Some(u) => Ok(Some(User(u))),
            None => Err(coded(ErrorCode::NotFound, "user not found")),
        }
    }

    /// Users whose nickname or name starts with `query`, by nickname.
    async fn search_users(
        &self,
        ctx: &Context<'_>,
        query: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, User>> {
        let page = Page::new(first, after)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let rows = profiles::search(db, &query, &page).await.gql()?;
        Ok(connection(
            &page,
            rows,
            |u| vec![u.nickname_key.clone()],
            User,
        ))
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<User>> {
        let Ok(id) = parse_id(&id) else {
            return Ok(None);
        };
        let loader = ctx.data::<DataLoader<UserLoader>>()?;
        Ok(loader
            .load_one(id)
            .await
            .map_err(|e| parley_kit::error::to_graphql_arc(&e))?
            .map(User))
    }
}
