//! parley-harness: the end-to-end tests' harness, one module per concern. The tests use it as `support`
//! (`use parley_harness as support;`) and drive the platform through the router over HTTP, WebSocket and
//! SSE, as a client would.
//!
//! Layout: [`platform`] (start the subgraphs and the router, further instances, stop one), [`graphql`] (the
//! HTTP client and error codes), [`ws`] (graphql-transport-ws), [`sse`] (GraphQL over SSE), [`fixtures`]
//! (accounts, chats, posts, feeds), [`poll`] (waiting for what events carry), [`oidc`] (an OpenID Connect
//! provider, and a browser signing in there).

pub mod fixtures;
pub mod graphql;
pub mod oidc;
pub mod platform;
pub mod poll;
pub mod sse;
pub mod ws;

pub use fixtures::{create_post, direct_chat, feed_titles, token_after, Account};
pub use graphql::{codes, Client};
/// Files to upload: real images, EXIF, headers that do not decode.
pub use parley_media::fixtures as files;
pub use platform::{
    free_port, fresh_postgres_db, postgres_url, Options, Platform, RouterProcess, Store, Subgraph,
    ADMIN_EMAIL, MEDIA_KEY,
};
pub use poll::{eventually, eventually_within};
pub use sse::{sse_next, sse_subscribe};
pub use ws::{ws_codes, WsClient};
