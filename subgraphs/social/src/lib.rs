//! parley-social: the social graph subgraph. Extends `User` with followers, following, friends, counts and
//! flags; follow (instant or requested), accept/decline/cancel, remove, block/unblock. It never reads the users
//! store: it learns which accounts exist from users' `UserRegistered` events.
//!
//! Layout: [`run`]; `schema/` (mutations, `User` fields, batched loaders); `graph` (writes + events); `lists`
//! (reads); `projection` (consumed events); `store` (entities); `error` ([`SocialError`]).

mod error;
mod graph;
mod lists;
mod projection;
mod schema;
mod store;

use std::future::Future;
use std::sync::Arc;

use parley_kit::{Runtime, ServiceConfig};
use tokio::net::TcpListener;

pub use error::SocialError;
pub use migration_social::Migrator;

pub const NAME: &str = "social";

pub fn sdl() -> String {
    schema::builder()
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// Runs the social subgraph on `listener` until `shutdown`.
pub async fn run(
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut runtime = Runtime::start::<Migrator>(config).await?;
    runtime.consume(Arc::new(projection::Projection));
    let graph = Arc::new(graph::Graph {
        db: runtime.db.clone(),
        events: runtime.events.clone(),
    });
    let schema = schema::build(runtime.db.clone(), graph);
    runtime
        .serve(schema, axum::Router::new(), listener, shutdown)
        .await?;
    Ok(())
}
