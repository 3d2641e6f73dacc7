//! parley-users: the users & auth subgraph. Owns `User`; issues access JWTs (EdDSA, `kid`) and rotating
//! refresh tokens; publishes its public keys at `/.well-known/jwks.json`.
//!
//! Layout (read top-down):
//! - [`Users`]: the subgraph as a value (see `parley_kit::subgraph`); its `build` makes the schema and the JWKS
//!   route.
//! - `schema/`: `Query`, `Mutation`, the `User` entity and its batched loader.
//! - `accounts`: register, login, refresh rotation with reuse detection, logout, passwords, email verification.
//! - `oauth`: sign-in with OpenID Connect providers (code + PKCE), account linking.
//! - `profiles`: lookups, prefix search, profile updates (an avatar is an upload), roles.
//! - `projection`: what users learns from media (uploads that may be avatars, deleted ones).
//! - `keys`: the Ed25519 signing keys and the JWKS; `secrets`: argon2id and opaque tokens; `sessions`: the
//!   recently revoked sessions every subgraph polls.
//! - `settings`: the users subgraph's own settings (mail, admins, providers; `[users]` in the config file).
//! - `validate`: input rules; `limiter`: failed-login limits; `error`: [`UsersError`]; `store`: entities.

mod accounts;
mod error;
mod keys;
mod limiter;
mod oauth;
mod profiles;
mod projection;
pub mod schema;
mod secrets;
mod sessions;
pub mod settings;
mod store;
mod validate;

use std::sync::Arc;

use async_graphql::{EmptySubscription, SchemaBuilder};
use axum::routing::get;
use axum::{Json, Router};
use parley_kit::auth::JwtVerifier;
use parley_kit::mail::Mailer;
use parley_kit::{Domain, Parts, Runtime};

pub use error::UsersError;
pub use migration_users::Migrator;

/// The users subgraph.
pub struct Users;

#[async_trait::async_trait]
impl Domain for Users {
    const NAME: &'static str = "users";
    const PORT: u16 = 4001;
    type Migrator = Migrator;
    /// Users learns from media which uploads may be avatars.
    type Handler = projection::Projection;
    type Settings = settings::UsersSettings;
    type Query = schema::Query;
    type Mutation = schema::Mutation;
    type Subscription = EmptySubscription;

    fn schema() -> SchemaBuilder<schema::Query, schema::Mutation, EmptySubscription> {
        schema::builder()
    }

    async fn build(runtime: &mut Runtime, settings: Self::Settings) -> anyhow::Result<Parts<Self>> {
        // users verifies tokens against its own published keys.
        if let Some(address) = runtime.address {
            let own_jwks = format!("http://{address}/.well-known/jwks.json");
            runtime.set_verifier(Arc::new(JwtVerifier::new(own_jwks)));
        }
        let keys = Arc::new(
            keys::Keys::load_or_create(
                &runtime.db,
                chrono::Duration::seconds(settings.access_token_ttl_secs),
            )
            .await?,
        );
        if settings.assistant {
            accounts::ensure_assistant(&runtime.db, &runtime.events).await?;
        }
        let mailer = Mailer::new(
            &settings.mail_from,
            settings.smtp_url.as_deref(),
            runtime.config.data_dir.join("mail"),
        )?;
        let accounts = Arc::new(accounts::Accounts {
            db: runtime.db.clone(),
            keys: keys.clone(),
            mailer: Arc::new(mailer),
            events: runtime.events.clone(),
            limiter: limiter::LoginLimiter::default(),
            public_url: runtime.config.public_url.clone(),
            admin_emails: settings.admin_emails,
        });
        let sign_in = Arc::new(oauth::SignIn {
            db: runtime.db.clone(),
            providers: oauth::providers::Providers::new(
                settings.oidc,
                settings.oauth_redirect_uris,
            )?,
            attempt_ttl: chrono::Duration::seconds(settings.oauth_attempt_ttl_secs),
        });
        let schema = schema::build(runtime.db.clone(), accounts, sign_in);
        let jwks = keys.jwks().clone();
        let revoked = parley_kit::server::internal(
            Router::new()
                .route(parley_kit::revocation::PATH, get(sessions::revoked))
                .with_state(runtime.db.clone())
                .merge(
                    Router::new()
                        .route(
                            parley_protocol::live_front::TOKEN_PATH,
                            axum::routing::post(sessions::live_token),
                        )
                        .with_state(keys.clone()),
                ),
            runtime.config.router_key.as_deref().map(Arc::from),
        );
        let routes = Router::new()
            .route(
                "/.well-known/jwks.json",
                get(move || {
                    let jwks = jwks.clone();
                    async move { Json(jwks) }
                }),
            )
            .merge(revoked);
        Ok(Parts {
            schema,
            routes,
            handler: projection::Projection,
        })
    }
}

#[cfg(test)]
mod tests {
    //! Schema-level tests: requests executed against the schema directly (no HTTP, no router).

    use async_graphql::{Request, Variables};
    use serde_json::json;

    use super::*;

    async fn schema() -> schema::UsersSchema {
        let config =
            parley_kit::testing::config(Users::NAME, parley_kit::testing::temp_dir("users-schema"));
        let (_runtime, schema) = Users::start(config).await.expect("build");
        schema
    }

    #[tokio::test]
    async fn register_then_resolve_entities_in_one_batch() {
        let schema = schema().await;
        let mut ids = Vec::new();
        for nick in ["ann", "ben"] {
            let response = schema
                .execute(Request::new(format!(
                    r#"mutation {{ register(input: {{email: "{nick}@example.com", password: "correct horse 1", name: "N", nickname: "{nick}"}}) {{ user {{ id }} }} }}"#
                )))
                .await;
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            let data = response.data.into_json().expect("json");
            ids.push(
                data["register"]["user"]["id"]
                    .as_str()
                    .expect("id")
                    .to_string(),
            );
        }
        let representations: Vec<_> = ids
            .iter()
            .map(|id| json!({ "__typename": "User", "id": id }))
            .collect();
        let response = schema
            .execute(
                Request::new("query($r: [_Any!]!) { _entities(representations: $r) { ... on User { nickname email } } }")
                    .variables(Variables::from_json(json!({ "r": representations }))),
            )
            .await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response.data.into_json().expect("json");
        assert_eq!(data["_entities"][0]["nickname"], "ann");
        assert_eq!(data["_entities"][1]["nickname"], "ben");
        assert_eq!(
            data["_entities"][0]["email"],
            serde_json::Value::Null,
            "email is owner-only"
        );
    }

    #[test]
    fn sdl_declares_the_user_entity() {
        let sdl = parley_kit::Subgraph::sdl(&Users);
        assert!(sdl.contains(r#"type User @key(fields: "id")"#), "{sdl}");
        assert!(sdl.contains("register(input: RegisterInput!): AuthPayload!"));
    }
}
