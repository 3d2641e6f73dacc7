//! parley-client: a Parley client in Rust, written the way an app would use the API.
//!
//! - [`operations`]: every operation, typed from the checked-in supergraph at compile time (`graphql_client`).
//! - [`client`]: [`Parley`], one signed-in person: runs operations over HTTP with the access token and, when
//!   the server says `UNAUTHENTICATED`, refreshes once (single-flight: refresh tokens rotate, so two
//!   refreshes at once would spend the same token twice and sign the session out) and retries.
//! - [`live`]: a chat followed live over graphql-transport-ws: reconnects with backoff after a drop,
//!   resyncs what it missed with `messages(afterSeq)`, and yields every message exactly once, in order.
//! - [`error`]: [`ClientError`], with stable codes.
//!
//! The `parley-client` binary (`src/main.rs`) is a CLI over the same pieces.

pub mod client;
pub mod error;
pub mod live;
pub mod operations;

pub use client::{Parley, Tokens};
pub use error::ClientError;
pub use live::ChatMessage;
