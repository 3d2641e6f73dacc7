//! parley-router: Parley's federation gateway. The Hive Router engine (`hive-router`, used whole: planner,
//! executor, HTTP/WebSocket server) with the config Parley generates and Parley's own plugin.
//!
//! Layout:
//! - [`config`]: [`RouterOptions`] → the engine's YAML config (supergraph file, subgraph URL overrides, JWT at
//!   the edge from the users JWKS, header propagation, subscriptions over WebSocket to subgraphs — one shared
//!   connection per subgraph when given a router key — CSRF, limits),
//!   with an optional user YAML merged over it.
//! - [`plugin`]: the Parley plugin, one module per stage of a request (request ids and client address, the
//!   offline GraphiQL, APQ, the parse guard, token refusal, limits, rate limits, error codes clients can rely
//!   on: every token failure is `UNAUTHENTICATED`, an unreachable subgraph `SUBGRAPH_UNAVAILABLE`).
//! - [`balancer`]: several instances of a subgraph behind one loopback port (health-checked, fewest
//!   connections first).
//! - [`cost`]: the cost limit (an operation's estimated cost from the supergraph's field types).
//! - [`rate_limit`]: per-user / per-IP limits per operation class, counted in Redis.
//! - [`apq`]: automatic persisted queries (hash → query cache) used by the plugin.
//! - [`parse_guard`]: syntax errors answered before the engine's parser can garble them.
//! - [`graphiql`]: the playground page and its assets, built from npm at compile time (`build.rs`).
//! - [`sharing`]: shared live streams — one upstream per (operation, variables) fanned out to every viewer
//!   (the hub; the plugin's SSE front uses it for anonymous viewers of a post, see docs/live-sharing.md);
//!   [`shareable`]: which subscriptions qualify and the key they share.
//! - [`fuzzing`]: the fuzz target's request shapes and the contract every answer keeps (`fuzz/`, and the
//!   regression tests replaying its inputs).
//! - [`run`]: write the config, start the engine on an ntex runtime (the engine runs on ntex, not tokio's
//!   axum; it gets a process of its own).

// The engine's ntex service stacks nest deeply; its own crate raises the limit the same way.
#![recursion_limit = "256"]

pub mod apq;
pub mod balancer;
pub mod config;
pub mod cost;
pub mod fuzzing;
pub mod graphiql;
pub mod parse_guard;
pub mod plugin;
pub mod rate_limit;
pub mod shareable;
pub mod sharing;

pub use config::RouterOptions;
/// The allocator the engine is tuned for (mimalloc); binaries install it with `#[global_allocator]`.
pub use hive_router::RouterGlobalAllocator as GlobalAllocator;

use hive_router::{init_rustls_crypto_provider, router_entrypoint, PluginRegistry};

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("router config: {0}")]
    Config(String),
    #[error("router failed: {0}")]
    Engine(String),
}

/// Runs the router until the process is told to stop (SIGINT/SIGTERM). Blocks the calling thread.
pub fn run(options: &RouterOptions) -> Result<(), RouterError> {
    let engine_urls = balancer::start(&options.subgraph_urls)?;
    let options = RouterOptions {
        subgraph_urls: engine_urls
            .into_iter()
            .map(|(name, url)| (name, vec![url]))
            .collect(),
        ..options.clone()
    };
    let path = config::write(&options)?;
    // The engine reads its config file from this variable (set before any thread starts).
    std::env::set_var("ROUTER_CONFIG_FILE_PATH", &path);
    init_rustls_crypto_provider();
    hive_router::ntex::rt::System::build()
        .name("parley-router")
        .build(hive_router::ntex::rt::DefaultRuntime)
        .block_on(async {
            router_entrypoint(PluginRegistry::new().register::<plugin::ParleyPlugin>()).await
        })
        .map_err(|e| RouterError::Engine(e.to_string()))
}
