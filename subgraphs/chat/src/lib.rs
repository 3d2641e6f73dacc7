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
//! - `live_audience`: whom each message of a stream the router's live front shares is for (members).
//! - `assistant`: the member that answers through an OpenAI-compatible endpoint (when one is configured).
//! - `projection` (known users and blocks from users' and social's events), `store` (entities), `error`,
//!   `settings` (the assistant's).

mod assistant;
mod chats;
mod error;
mod live;
mod live_audience;
mod messages;
mod projection;
mod receipts;
pub mod schema;
mod service;
pub mod settings;
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
    type Settings = settings::ChatSettings;
    type Query = schema::Query;
    type Mutation = schema::Mutation;
    type Subscription = schema::Subscription;

    fn schema() -> SchemaBuilder<schema::Query, schema::Mutation, schema::Subscription> {
        schema::builder()
    }

    /// Live streams, the typing tracker, the live front's audience endpoint and the schema.
    async fn build(runtime: &mut Runtime, settings: Self::Settings) -> anyhow::Result<Parts<Self>> {
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
            assistant_offered: settings.assistant_url.is_some(),
        });
        let assistant = assistant::Assistant::new(&settings, service.clone(), typing.clone())?;
        let routes = parley_kit::live_audience::routes(
            runtime,
            axum::routing::post(live_audience::audience),
        );
        Ok(Parts {
            schema: schema::build(runtime.db.clone(), service, live, typing, assistant),
            routes,
            handler: projection::Projection,
        })
    }
}

#[cfg(test)]
mod tests {
    //! Schema-level tests: requests executed against the schema directly, with every store statement
    //! counted.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_graphql::Request;
    use parley_kit::{Identity, Role};
    use sea_orm::{EntityTrait, Set};
    use uuid::Uuid;

    use super::*;
    use crate::receipts::Marker;
    use crate::service::{ChatService, NewMessage};
    use crate::store::{known_user, message};

    fn identity(user: Uuid) -> Identity {
        Identity {
            user_id: user,
            roles: vec![Role::User],
            session_id: Uuid::now_v7(),
        }
    }

    fn text(body: &str) -> NewMessage {
        NewMessage {
            kind: message::Kind::Text,
            text: Some(body.into()),
            media_id: None,
            reply_to_id: None,
            subject_id: None,
            client_message_id: None,
        }
    }

    /// A chat store with `me` in `chats` direct chats, each holding a message from the other member and my
    /// reply to it (which the other member read); every statement on the store is counted.
    struct Fixture {
        db: sea_orm::DatabaseConnection,
        schema: schema::ChatSchema,
        statements: Arc<AtomicUsize>,
        me: Uuid,
        _runtime: Runtime,
    }

    async fn fixture(label: &str, chats: usize) -> Fixture {
        let config = parley_kit::testing::config(Chat::NAME, parley_kit::testing::temp_dir(label));
        let runtime = Runtime::start::<Migrator>(config).await.expect("runtime");
        let mut db = runtime.db.clone();
        let statements = Arc::new(AtomicUsize::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let service = Arc::new(ChatService {
            db: db.clone(),
            events: runtime.events.clone(),
            assistant_offered: false,
        });
        let live = Arc::new(parley_kit::live::Live::new(
            runtime.events.bus.clone(),
            Chat::NAME,
        ));
        let (typing, _task) = typing::Typing::start(&live);
        let schema = schema::build(db.clone(), service.clone(), live, typing, None);

        let me = Uuid::now_v7();
        let others: Vec<Uuid> = (0..chats).map(|_| Uuid::now_v7()).collect();
        for (i, user) in std::iter::once(me).chain(others.clone()).enumerate() {
            known_user::Entity::insert(known_user::ActiveModel {
                user_id: Set(user),
                nickname: Set(Some(format!("user{i}"))),
                avatar_url: Set(None),
            })
            .exec(&db)
            .await
            .expect("known user");
        }
        for other in &others {
            let chat = service.open_direct(me, *other).await.expect("chat");
            let first = service
                .send(*other, chat.id, text("hi"))
                .await
                .expect("send");
            let mut reply = text("hello");
            reply.reply_to_id = Some(first.id);
            let second = service.send(me, chat.id, reply).await.expect("reply");
            service
                .mark(*other, chat.id, second.id, Marker::Read)
                .await
                .expect("read");
        }
        Fixture {
            db,
            schema,
            statements,
            me,
            _runtime: runtime,
        }
    }

    /// A page of chats with every per-row field (unread count, last message, who read it, its reply target,
    /// members, settings) costs the same number of statements for 2 chats as for 12: each field is one
    /// batched read per page, not one per chat.
    #[tokio::test]
    async fn a_page_of_chats_costs_a_fixed_number_of_queries() {
        let Fixture {
            schema,
            statements,
            me,
            ..
        } = fixture("chat-queries", 12).await;
        let query = |n: usize| {
            Request::new(format!(
                "{{ chats(first: {n}) {{ edges {{ node {{ unreadCount mySettings {{ muted }} \
                 members {{ id }} lastMessage {{ text readBy {{ id }} replyTo {{ text }} }} }} }} }} }}"
            ))
            .data(identity(me))
        };
        let mut costs = Vec::new();
        for n in [2, 12] {
            statements.store(0, Ordering::SeqCst);
            let response = schema.execute(query(n)).await;
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            let data = response.data.into_json().expect("json");
            let edges = data["chats"]["edges"].as_array().expect("edges");
            assert_eq!(edges.len(), n);
            let node = &edges[0]["node"];
            assert_eq!(node["lastMessage"]["text"], "hello", "{data}");
            assert_eq!(node["lastMessage"]["replyTo"]["text"], "hi", "{data}");
            assert_eq!(
                node["lastMessage"]["readBy"].as_array().map(Vec::len),
                Some(1)
            );
            assert_eq!(node["unreadCount"], 0, "my own reply read the chat for me");
            costs.push(statements.load(Ordering::SeqCst));
        }
        assert_eq!(
            costs[0], costs[1],
            "statements for 2 chats vs 12: {costs:?}"
        );
    }

    /// A stored value the code does not know is an error, not a silent default: a message whose stored
    /// kind is unknown fails to load (`INTERNAL`) instead of reading as TEXT.
    #[tokio::test]
    async fn an_unknown_stored_kind_is_an_error() {
        use sea_orm::ConnectionTrait;
        let fixture = fixture("chat-unknown-kind", 1).await;
        fixture
            .db
            .execute_unprepared("UPDATE messages SET kind = 'VIDEO' WHERE seq = 1")
            .await
            .expect("update");
        let response = fixture
            .schema
            .execute(
                Request::new(
                    "{ chats { edges { node { messages(first: 5) { edges { node { kind text } } } } } } }",
                )
                .data(identity(fixture.me)),
            )
            .await;
        let codes: Vec<_> = response
            .errors
            .iter()
            .filter_map(|e| e.extensions.as_ref()?.get("code").cloned())
            .collect();
        assert_eq!(
            codes,
            [async_graphql::Value::from("INTERNAL")],
            "{:?}",
            response.errors
        );
    }
}
