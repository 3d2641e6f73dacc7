//! parley-kit: what every Parley subgraph shares, so a domain crate holds only its domain.
//!
//! Layout (read top-down):
//! - [`config`]: the typed service config (defaults → optional TOML file → `PARLEY_*` env).
//! - [`error`]: the stable error codes (docs/security.md) and the bridge from a crate's error enum to a GraphQL error.
//! - [`auth`]: the caller's identity, verified from the access JWT against the users subgraph's JWKS.
//! - [`revocation`]: sessions signed out before their tokens expire, polled from users; the verifier refuses them.
//! - [`ids`]: UUIDv7 ids as GraphQL `ID`s.
//! - [`migration`]: helpers for the domains' migration crates.
//! - [`pagination`]: opaque keyset cursors and Relay connection helpers.
//! - [`rank`]: hot and controversy ranks (stored as indexed columns by the domains that sort by them).
//! - [`store`]: connecting to SQLite or PostgreSQL and running a domain's migrations.
//! - [`events`]: domain events: the transactional outbox, the relay, the in-process bus, the HTTP event log
//!   between processes, the Redis Streams bus with consumer groups, and idempotent consumers.
//! - [`blocks`]: the projection of social's blocks kept by every content domain.
//! - [`known_media`]: the projection of media's READY uploads kept by domains whose content names media.
//! - [`audience`]: the visibility rule (privacy, blocks, approved follows) every domain showing content applies.
//! - [`lease`]: once-at-a-time work among a subgraph's instances (a lease in Redis).
//! - [`live`]: subscription streams off the event bus, counted while open; [`live_audience`]: the question
//!   the router's live front asks a stream's owner per event of a shared stream (whom it is for).
//! - [`mail`]: outgoing mail over SMTP, or into files when no SMTP server is configured.
//! - [`mentions`]: `@nickname` mentions in text; [`assistant`]: the chat assistant's account.
//! - [`refs`]: references to other domains' entities (key only), resolved by their owners.
//! - [`runtime`]: what a running subgraph holds (store, relay, consumers, verifier) and how it starts.
//! - [`subgraph`]: a domain as a value ([`Domain`], implemented by each domain crate; [`Subgraph`], what the
//!   registry lists): its name, port, migrations, consumed events, SDL, and how it runs.
//! - [`signed`]: HMAC-signed tokens for links read back without a session (unsubscribe, report downloads).
//! - [`server`]: the axum server every subgraph runs: `/graphql`, `/ws`, `/health`, `/metrics`, `/events`.
//! - [`ws`]: graphql-transport-ws on `/ws`: many operations per connection, the caller per operation on the
//!   router's connection.
//! - `testing` (feature `testing`): helpers for tests.

pub mod assistant;
pub mod audience;
pub mod auth;
pub mod blocks;
pub mod config;
pub mod entitlements;
pub mod error;
pub mod events;
pub mod ids;
pub mod known_media;
pub mod lease;
pub mod live;
pub mod live_audience;
pub mod mail;
pub mod mentions;
pub mod migration;
pub mod pagination;
pub mod rank;
pub mod refs;
pub mod revocation;
pub mod runtime;
pub mod server;
pub mod signed;
pub mod store;
pub mod subgraph;
#[cfg(feature = "testing")]
pub mod testing;
pub mod ws;

pub use auth::{Identity, Role};
pub use config::ServiceConfig;
pub use error::{ApiResult, CodedError, ErrorCode, ResultExt};
pub use runtime::Runtime;
pub use subgraph::{Domain, Parts, Subgraph};
