//! parley-social: the social graph subgraph. Extends `User` with followers, following, friends, counts and
//! flags; follow (instant or requested), accept/decline/cancel, remove, block/unblock. It never reads the users
//! store: it learns which accounts exist from users' `UserRegistered` events.
//!
//! Layout: [`Social`] (the subgraph as a value); `schema/` (mutations, `User` fields, batched loaders); `graph` (writes + events); `lists`
//! (reads); `projection` (consumed events); `store` (entities); `error` ([`SocialError`]).

mod error;
mod graph;
mod lists;
mod projection;
mod schema;
mod store;

use std::sync::Arc;

use async_graphql::{EmptySubscription, SchemaBuilder};
use parley_kit::{Domain, Parts, Runtime};

pub use error::SocialError;
pub use migration_social::Migrator;

/// The social subgraph.
pub struct Social;

#[async_trait::async_trait]
impl Domain for Social {
    const NAME: &'static str = "social";
    const PORT: u16 = 4002;
    type Migrator = Migrator;
    type Handler = projection::Projection;
    type Settings = parley_kit::config::NoSettings;
    type Query = schema::Query;
    type Mutation = schema::Mutation;
    type Subscription = EmptySubscription;

    fn schema() -> SchemaBuilder<schema::Query, schema::Mutation, EmptySubscription> {
        schema::builder()
    }

    async fn build(runtime: &mut Runtime, _: Self::Settings) -> anyhow::Result<Parts<Self>> {
        let graph = Arc::new(graph::Graph {
            db: runtime.db.clone(),
            events: runtime.events.clone(),
        });
        Ok(Parts {
            schema: schema::build(runtime.db.clone(), graph),
            routes: axum::Router::new(),
            handler: projection::Projection,
        })
    }
}

#[cfg(test)]
mod tests {
    //! Schema-level tests: requests executed against the schema directly (no HTTP, no router).

    use async_graphql::{Request, Variables};
    use parley_kit::{Identity, Role};
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    #[tokio::test]
    async fn follow_and_count_through_entities() {
        let config = parley_kit::testing::config(
            Social::NAME,
            parley_kit::testing::temp_dir("social-schema"),
        );
        let runtime = Runtime::start::<Migrator>(config).await.expect("runtime");
        let graph = Arc::new(graph::Graph {
            db: runtime.db.clone(),
            events: runtime.events.clone(),
        });
        let schema = schema::build(runtime.db.clone(), graph);
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let identity = |id| Identity {
            user_id: id,
            roles: vec![Role::User],
            session_id: Uuid::now_v7(),
        };
        // Both declare themselves (the token proves they exist), alice goes private.
        for (id, private) in [(alice, true), (bob, false)] {
            let r = schema
                .execute(
                    Request::new(format!("mutation {{ setPrivate(private: {private}) }}"))
                        .data(identity(id)),
                )
                .await;
            assert!(r.errors.is_empty(), "{:?}", r.errors);
        }
        let r = schema
            .execute(
                Request::new(format!(r#"mutation {{ follow(userId: "{alice}") }}"#))
                    .data(identity(bob)),
            )
            .await;
        assert_eq!(r.data.into_json().expect("json")["follow"], "REQUESTED");
        let r = schema
            .execute(
                Request::new(format!(
                    r#"mutation {{ acceptFollowRequest(userId: "{bob}") }}"#
                ))
                .data(identity(alice)),
            )
            .await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let reps = json!({ "r": [{ "__typename": "User", "id": alice.to_string() }, { "__typename": "User", "id": bob.to_string() }] });
        let r = schema
            .execute(
                Request::new("query($r: [_Any!]!) { _entities(representations: $r) { ... on User { followerCount followingCount isFollowedByMe } } }")
                    .variables(Variables::from_json(reps))
                    .data(identity(bob)),
            )
            .await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let data = r.data.into_json().expect("json");
        assert_eq!(
            data["_entities"][0],
            json!({ "followerCount": 1, "followingCount": 0, "isFollowedByMe": true })
        );
        assert_eq!(
            data["_entities"][1],
            json!({ "followerCount": 0, "followingCount": 1, "isFollowedByMe": false })
        );
    }
}
