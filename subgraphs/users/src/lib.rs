//! parley-users: the users & auth subgraph. Owns `User`; issues access JWTs (EdDSA, `kid`) and rotating
//! refresh tokens; publishes its public keys at `/.well-known/jwks.json`.
//!
//! Layout (read top-down):
//! - [`run`]: start the store and relay, build the schema, serve.
//! - `schema/`: `Query`, `Mutation`, the `User` entity and its batched loader.
//! - `accounts`: register, login, refresh rotation with reuse detection, logout, passwords, email verification.
//! - `profiles`: lookups, prefix search, profile updates, roles.
//! - `keys`: the Ed25519 signing keys and the JWKS; `secrets`: argon2id and opaque tokens.
//! - `validate`: input rules; `limiter`: failed-login limits; `error`: [`UsersError`]; `store`: entities.

mod accounts;
mod error;
mod keys;
mod limiter;
mod profiles;
mod schema;
mod secrets;
mod store;
mod validate;

use std::future::Future;
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use parley_kit::auth::JwtVerifier;
use parley_kit::mail::Mailer;
use parley_kit::{Runtime, ServiceConfig};
use tokio::net::TcpListener;

pub use error::UsersError;
pub use migration_users::Migrator;

/// The subgraph's name in the supergraph.
pub const NAME: &str = "users";

/// The federation SDL of this subgraph (no server, no store).
pub fn sdl() -> String {
    schema::builder()
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// Runs the users subgraph on `listener` until `shutdown`.
pub async fn run(
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut runtime = Runtime::start::<Migrator>(config).await?;
    // users verifies tokens against its own published keys.
    let own_jwks = format!("http://{}/.well-known/jwks.json", listener.local_addr()?);
    runtime.set_verifier(Arc::new(JwtVerifier::new(own_jwks)));
    let keys = Arc::new(keys::Keys::load_or_create(&runtime.db).await?);
    let mailer = Mailer::new(
        &runtime.config.mail_from,
        runtime.config.smtp_url.as_deref(),
        runtime.config.data_dir.join("mail"),
    )?;
    let accounts = Arc::new(accounts::Accounts {
        db: runtime.db.clone(),
        keys: keys.clone(),
        mailer: Arc::new(mailer),
        events: runtime.events.clone(),
        limiter: limiter::LoginLimiter::default(),
        public_url: runtime.config.public_url.clone(),
        admin_emails: admin_emails(),
    });
    let schema = schema::build(runtime.db.clone(), accounts);
    let jwks = keys.jwks().clone();
    let routes = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let jwks = jwks.clone();
            async move { Json(jwks) }
        }),
    );
    runtime.serve(schema, routes, listener, shutdown).await?;
    Ok(())
}

/// `PARLEY_ADMIN_EMAILS`: comma-separated emails that are made admins when they register. Default none.
fn admin_emails() -> Vec<String> {
    std::env::var("PARLEY_ADMIN_EMAILS")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}
