//! parley-posts: the posts subgraph. Owns `Post`, `Comment` and `Topic`; extends `User` with `posts`.
//! Topics to post in and subscribe to; posts with tags, edited by their author and soft-deleted by the author
//! or a moderator; threaded comments of any depth; votes with stored, indexed ranks (hot, top, new,
//! controversial); live `commentAdded` and `postScoreChanged` subscriptions fed by the event bus.
//!
//! Layout (read top-down):
//! - [`run`] / [`build`]: store, relay, consumers, rank decay, schema.
//! - `schema/`: queries, mutations, subscriptions (`mod.rs`), GraphQL types (`types`), batched `loaders`.
//! - `service` (the `Content` handle and block checks), then one file per concern of the write side:
//!   `topics`, `posts`, `comments`, `votes`.
//! - `decay` (periodic hot-rank refresh), `validate`, `store` (entities), `error` ([`PostsError`]).

mod comments;
mod decay;
mod error;
mod posts;
pub mod schema;
mod service;
mod store;
mod topics;
mod validate;
mod votes;

use std::future::Future;
use std::sync::Arc;

use parley_kit::{Runtime, ServiceConfig};
use tokio::net::TcpListener;

pub use error::PostsError;
pub use migration_posts::Migrator;

pub const NAME: &str = "posts";

pub fn sdl() -> String {
    schema::builder()
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// Runs the posts subgraph on `listener` until `shutdown`.
pub async fn run(
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (runtime, schema) = build(config).await?;
    runtime
        .serve(schema, axum::Router::new(), listener, shutdown)
        .await?;
    Ok(())
}

/// Starts the store, relay, consumers and rank decay, and builds the schema, without serving.
pub async fn build(config: ServiceConfig) -> anyhow::Result<(Runtime, schema::PostsSchema)> {
    let mut runtime = Runtime::start::<Migrator>(config).await?;
    runtime.consume(Arc::new(parley_kit::blocks::Projection));
    runtime.add_task(decay::start(runtime.db.clone()));
    let content = Arc::new(service::Content {
        db: runtime.db.clone(),
        events: runtime.events.clone(),
    });
    let live = Arc::new(parley_kit::live::Live::new(
        runtime.events.bus.clone(),
        NAME,
    ));
    let schema = schema::build(runtime.db.clone(), content, live);
    Ok((runtime, schema))
}
