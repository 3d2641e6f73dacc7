//! parley-chat: the chat subgraph. Owns `Chat` and `Message`.
//! Direct chats (one per pair of users, created on first use) and groups (admins manage members); messages
//! numbered per chat with no gaps, sent idempotently by `clientMessageId`, edited by their author, deleted
//! for oneself or for everyone (tombstone kept); delivered/read markers, unread counts and `readBy`;
//! ephemeral typing; live `messageAdded` and `chatEvents` off the event bus. Only members see a chat, and a
//! non-member cannot tell a chat they are not in from one that does not exist.
//!
//! Layout (read top-down):
//! - [`run`] / [`build`]: store, relay, consumers, typing tracker, schema.
//! - `schema/`: queries, mutations, subscriptions (`mod.rs`), GraphQL types (`types`).
//! - `chats` (the [`chats::ChatService`] handle, membership, groups), `messages`, `receipts`, `typing`.
//! - `projection` (known users and blocks from users' and social's events), `store` (entities), `error`.

mod chats;
mod error;
mod messages;
mod projection;
mod receipts;
pub mod schema;
mod store;
mod typing;

use std::future::Future;
use std::sync::Arc;

use parley_kit::{Runtime, ServiceConfig};
use tokio::net::TcpListener;

pub use error::ChatError;
pub use migration_chat::Migrator;

pub const NAME: &str = "chat";

pub fn sdl() -> String {
    schema::builder()
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// Runs the chat subgraph on `listener` until `shutdown`.
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

/// Starts the store, relay, consumers and typing tracker, and builds the schema, without serving.
pub async fn build(config: ServiceConfig) -> anyhow::Result<(Runtime, schema::ChatSchema)> {
    let mut runtime = Runtime::start::<Migrator>(config).await?;
    runtime.consume(Arc::new(projection::Projection));
    let live = Arc::new(parley_kit::live::Live::with_extra_keys(
        runtime.events.bus.clone(),
        NAME,
        Some(schema::user_topics),
    ));
    let (typing, typing_task) = typing::Typing::start(&live);
    runtime.add_task(typing_task);
    let service = Arc::new(chats::ChatService {
        db: runtime.db.clone(),
        events: runtime.events.clone(),
    });
    let schema = schema::build(runtime.db.clone(), service, live, typing);
    Ok((runtime, schema))
}
