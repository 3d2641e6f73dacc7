//! parley-feed: the home feed subgraph. It owns no entity: `Query.feed` returns `Post` references that the
//! router completes from posts. Timelines are built by fan-out on write from posts' and social's events into
//! this subgraph's own store (it never reads another store), ranks copied for keyset sorts and refreshed for
//! decay.
//!
//! Layout: [`run`] / [`build`]; `schema` (the query); `fanout` (the event handler and rank refresh); `store`
//! (entities); [`FeedError`].

mod fanout;
mod schema;
mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parley_kit::{CodedError, ErrorCode, Runtime, ServiceConfig};
use tokio::net::TcpListener;

pub use migration_feed::Migrator;

pub const NAME: &str = "feed";

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("store error: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl CodedError for FeedError {
    fn code(&self) -> ErrorCode {
        ErrorCode::Internal
    }
}

pub fn sdl() -> String {
    schema::builder()
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// How often hot ranks in timelines are refreshed.
const DECAY_INTERVAL: Duration = Duration::from_secs(300);

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

pub async fn build(config: ServiceConfig) -> anyhow::Result<(Runtime, schema::FeedSchema)> {
    let mut runtime = Runtime::start::<Migrator>(config).await?;
    runtime.consume(Arc::new(fanout::Fanout));
    let db = runtime.db.clone();
    runtime.add_task(tokio::spawn(async move {
        let mut tick = tokio::time::interval(DECAY_INTERVAL);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(err) = fanout::refresh_ranks(&db).await {
                tracing::warn!(error = %err, "feed rank refresh failed");
            }
        }
    }));
    let schema = schema::build(runtime.db.clone());
    Ok((runtime, schema))
}
