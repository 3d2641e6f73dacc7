//! The social subgraph schema: `Mutation`s on the graph and social's fields on `User`.

mod loaders;
mod user;

use std::sync::Arc;

use async_graphql::{Context, EmptySubscription, Object, Schema, ID};
use parley_kit::auth::require_identity;
use parley_kit::ids::parse_id;
use parley_kit::{ApiResult, ResultExt};
use sea_orm::DatabaseConnection;

use crate::graph::{FollowStatus, Graph};
use loaders::SocialLoader;
pub use user::User;

pub type SocialSchema = Schema<Query, Mutation, EmptySubscription>;

pub fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription).enable_federation()
}

pub fn build(db: DatabaseConnection, graph: Arc<Graph>) -> SocialSchema {
    builder()
        .data(parley_kit::server::loader(SocialLoader(db.clone())))
        .data(db)
        .data(graph)
        .finish()
}

pub struct Query;

#[Object]
impl Query {
    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> ApiResult<User> {
        Ok(User { id: parse_id(&id)? })
    }
}

pub struct Mutation;

fn graph<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Arc<Graph>> {
    ctx.data::<Arc<Graph>>()
}

#[Object]
impl Mutation {
    /// Follows a public account at once, or asks a private one (`REQUESTED`). Following again is a no-op.
    async fn follow(&self, ctx: &Context<'_>, user_id: ID) -> ApiResult<FollowStatus> {
        let me = require_identity(ctx)?;
        graph(ctx)?.follow(me, parse_id(&user_id)?).await.gql()
    }

    async fn accept_follow_request(&self, ctx: &Context<'_>, user_id: ID) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        graph(ctx)?.accept(me, parse_id(&user_id)?).await.gql()
    }

    async fn decline_follow_request(&self, ctx: &Context<'_>, user_id: ID) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        graph(ctx)?.decline(me, parse_id(&user_id)?).await.gql()
    }

    /// Stops following, or cancels a pending request.
    async fn unfollow(&self, ctx: &Context<'_>, user_id: ID) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        graph(ctx)?.unfollow(me, parse_id(&user_id)?).await.gql()
    }

    async fn remove_follower(&self, ctx: &Context<'_>, user_id: ID) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        graph(ctx)?
            .remove_follower(me, parse_id(&user_id)?)
            .await
            .gql()
    }

    /// Blocks a user: follows both ways end, new follows are refused.
    async fn block(&self, ctx: &Context<'_>, user_id: ID) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        graph(ctx)?.block(me, parse_id(&user_id)?).await.gql()
    }

    async fn unblock(&self, ctx: &Context<'_>, user_id: ID) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        graph(ctx)?.unblock(me, parse_id(&user_id)?).await.gql()
    }

    /// Makes the caller's account private or public; returns the new setting.
    async fn set_private(&self, ctx: &Context<'_>, private: bool) -> ApiResult<bool> {
        let me = require_identity(ctx)?;
        graph(ctx)?.set_private(me, private).await.gql()
    }
}
