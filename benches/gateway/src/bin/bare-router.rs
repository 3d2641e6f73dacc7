//! The Hive Router engine alone: `router_entrypoint` with no Parley plugin, the same crate version Parley's
//! router embeds, reading its config from `ROUTER_CONFIG_FILE_PATH` as the official binary does.

// The engine's ntex service stacks nest deeply (its own crate raises the limit the same way).
#![recursion_limit = "256"]

#[global_allocator]
static GLOBAL: hive_router::RouterGlobalAllocator = hive_router::RouterGlobalAllocator;

fn main() -> anyhow::Result<()> {
    hive_router::init_rustls_crypto_provider();
    hive_router::ntex::rt::System::build()
        .name("bare-router")
        .build(hive_router::ntex::rt::DefaultRuntime)
        .block_on(async {
            hive_router::router_entrypoint(hive_router::PluginRegistry::new()).await
        })
        .map_err(|e| anyhow::anyhow!("{e}"))
}
