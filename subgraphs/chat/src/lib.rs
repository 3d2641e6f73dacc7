//! parley-chat: the chat subgraph. Owns `Chat` and `Message`.
//! Direct chats (one per pair of users, created on first use) and groups (admins manage members); messages
//! numbered per chat with no gaps, sent idempotently by `clientMessageId`, edited by their author, deleted
//! for oneself or for everyone (tombstone kept); delivered/read markers, unread counts and `readBy`;
//! ephemeral typing; live `messageAdded` and `chatEvents` off the event bus. Only members see a chat, and a
//! non-member cannot tell a chat they are not in from one that does not exist.
//!
//! Layout (read top-down):
//! - [`Chat`]: the subgraph as a value; its `build` starts the typing tracker and makes the schema.
//! - `schema/`: queries, mutations, subscriptions (`mod.rs`), GraphQL types (`types`).
//! - `chats` (direct chats, groups, members, settings), `messages`, `receipts`, `typing`, `live` (who sees
//!   which live event), all on `service` at the bottom (the `ChatService` handle, the membership gate,
//!   writing a message).
//! - `projection` (known users and blocks from users' and social's events), `store` (entities), `error`.

mod chats;
mod error;
mod live;
mod messages;
mod projection;
mod receipts;
pub mod schema;
mod service;
mod store;
mod typing;

use std::sync::Arc;

use async_graphql::SchemaBuilder;
use parley_kit::{Domain, Parts, Runtime};

pub use error::ChatError;
pub use migration_chat::Migrator;

/// The chat subgraph.
pub struct Chat;

#[async_trait::async_trait]
impl Domain for Chat {
    const NAME: &'static str = "chat";
    const PORT: u16 = 4005;
    type Migrator = Migrator;
    type Handler = projection::Projection;
    type Query = schema::Query;
    type Mutation = schema::Mutation;
    type Subscription = schema::Subscription;

    fn schema() -> SchemaBuilder<schema::Query, schema::Mutation, schema::Subscription> {
        schema::builder()
    }

    /// Live streams, the typing tracker and the schema.
    async fn build(runtime: &mut Runtime) -> anyhow::Result<Parts<Self>> {
        let live = Arc::new(parley_kit::live::Live::with_extra_keys(
            runtime.events.bus.clone(),
            Self::NAME,
            Some(live::user_topics),
        ));
        let (typing, typing_task) = typing::Typing::start(&live);
        runtime.add_task(typing_task);
        let service = Arc::new(service::ChatService {
            db: runtime.db.clone(),
            events: runtime.events.clone(),
        });
        Ok(Parts {
            schema: schema::build(runtime.db.clone(), service, live, typing),
            routes: axum::Router::new(),
            handler: projection::Projection,
        })
    }
}
