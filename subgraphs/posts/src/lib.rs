//! parley-posts: the posts subgraph. Owns `Post`, `Comment` and `Topic`; extends `User` with `posts`.
//! Topics to post in and subscribe to; posts with tags, edited by their author and soft-deleted by the author
//! or a moderator; threaded comments of any depth; votes with stored, indexed ranks (hot, top, new,
//! controversial); live `commentAdded` and `postScoreChanged` subscriptions fed by the event bus.
//!
//! Layout (read top-down):
//! - [`Posts`]: the subgraph as a value; its `build` starts rank decay and makes the schema.
//! - `schema/`: queries, mutations, subscriptions (`mod.rs`), GraphQL types (`types`), batched `loaders`.
//! - `service` (the `Content` handle and block checks), `visibility` (who sees which post and comment), then
//!   one file per concern of the write side: `topics`, `posts`, `attachments`, `comments`, `votes`.
//! - `projection`: what posts learns from social (the visibility rule) and media (uploads to attach).
//! - `live_audience`: which viewers of the router's shared stream of a post see an event.
//! - `decay` (periodic hot-rank refresh), `validate`, `store` (entities), `error` ([`PostsError`]).

mod attachments;
mod comments;
mod decay;
mod error;
mod live_audience;
mod posts;
mod projection;
pub mod schema;
mod service;
mod store;
mod topics;
mod validate;
mod visibility;
mod votes;

use std::sync::Arc;

use async_graphql::SchemaBuilder;
use parley_kit::{Domain, Parts, Runtime};

pub use error::PostsError;
pub use migration_posts::Migrator;

/// The posts subgraph.
pub struct Posts;

#[async_trait::async_trait]
impl Domain for Posts {
    const NAME: &'static str = "posts";
    const PORT: u16 = 4003;
    type Migrator = Migrator;
    /// Posts learns from social who may see whose content (blocks, follows, privacy), and from media which
    /// uploads may be attached.
    type Handler = projection::Projection;
    type Settings = parley_kit::config::NoSettings;
    type Query = schema::Query;
    type Mutation = schema::Mutation;
    type Subscription = schema::Subscription;

    fn schema() -> SchemaBuilder<schema::Query, schema::Mutation, schema::Subscription> {
        schema::builder()
    }

    /// The store's `Content` handle, rank decay, live streams and the schema.
    async fn build(runtime: &mut Runtime, _: Self::Settings) -> anyhow::Result<Parts<Self>> {
        runtime.add_task(decay::start(runtime.db.clone()));
        let content = Arc::new(service::Content {
            db: runtime.db.clone(),
            events: runtime.events.clone(),
        });
        let live = Arc::new(parley_kit::live::Live::new(
            runtime.events.bus.clone(),
            Self::NAME,
        ));
        let routes = parley_kit::live_audience::routes(
            runtime,
            axum::routing::post(live_audience::audience),
        );
        Ok(Parts {
            schema: schema::build(runtime.db.clone(), content, live),
            routes,
            handler: projection::Projection,
        })
    }
}
