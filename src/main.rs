//! `parley`: the one binary of Parley.
//!
//! - `parley up`: every subgraph (one worker process, or one process each with `--processes`; loopback
//!   ports, SQLite files in the data dir) and the router; prints the GraphiQL URL once all are healthy. See
//!   [`up`] and [`worker`].
//! - `parley router`: the federation gateway over any Apollo-format supergraph.
//! - `parley subgraph <name>`: one subgraph. `parley migrate <name>`: its store migrations.
//! - `parley compose`: writes `schema/<name>.graphql` and composes `schema/supergraph.graphql`. See [`compose`].

mod compose;
mod up;
mod worker;

use parley::subgraphs;

// mimalloc, as the engine expects: the router and the subgraphs allocate on every request, and glibc's
// malloc showed up as the largest item in subgraph profiles.
#[global_allocator]
static GLOBAL: parley_router::GlobalAllocator = parley_router::GlobalAllocator;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "parley",
    version,
    about = "Parley: a social platform served as one federated GraphQL API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every subgraph and the router on this machine; prints the GraphiQL URL.
    Up {
        /// Folder for SQLite files, mail and logs.
        #[arg(long, default_value = "data", env = "PARLEY_DATA_DIR")]
        data_dir: PathBuf,
        /// Router port.
        #[arg(long, default_value_t = 4000)]
        port: u16,
        /// Production mode: every subgraph on PostgreSQL (`PARLEY_POSTGRES_URL`), events, live fan-out and
        /// rate limits through Redis (`PARLEY_REDIS_URL`); both are required.
        #[arg(long, env = "PARLEY_PRODUCTION")]
        production: bool,
        /// Run each subgraph in a process of its own instead of all in one worker process.
        #[arg(long, env = "PARLEY_PROCESSES")]
        processes: bool,
    },
    /// Run the federation router over a supergraph file.
    Router(Box<RouterArgs>),
    /// Run one subgraph.
    Subgraph {
        /// The subgraph's name (`parley compose` lists them in schema/).
        name: String,
        /// Port (0: any free port; the chosen one is printed).
        #[arg(long, env = "PARLEY_PORT")]
        port: Option<u16>,
    },
    /// Run several subgraphs in this one process (what `parley up` starts).
    #[command(hide = true)]
    Worker {
        /// A subgraph and its port (repeatable).
        #[arg(long = "subgraph", value_name = "NAME=PORT", required = true)]
        subgraphs: Vec<String>,
    },
    /// Print each subgraph's SDL into schema/ and compose schema/supergraph.graphql.
    Compose {
        /// Fail instead of writing when a file is out of date.
        #[arg(long)]
        check: bool,
        /// The repository root (holds schema/ and compose/).
        #[arg(long, default_value = env!("CARGO_MANIFEST_DIR"))]
        root: PathBuf,
    },
    /// Search's index: `parley search reindex` rebuilds it from the search store (the instance on
    /// `PARLEY_PORT`, default 4008; a running one switches to the new index when it is ready).
    Search {
        #[command(subcommand)]
        action: SearchAction,
    },
    /// Run a subgraph's store migrations (or roll them back with --down).
    Migrate {
        name: String,
        /// Roll back this many migrations instead.
        #[arg(long)]
        down: Option<u32>,
    },
}

#[derive(Subcommand)]
enum SearchAction {
    /// Rebuild the index from the search store into a new generation and switch to it.
    Reindex,
}

/// `parley router`'s arguments (boxed in [`Command`]: they outweigh every other command's).
#[derive(clap::Args)]
struct RouterArgs {
    /// Apollo-format supergraph SDL.
    #[arg(
        long,
        default_value = "schema/supergraph.graphql",
        env = "PARLEY_SUPERGRAPH"
    )]
    supergraph: PathBuf,
    #[arg(long, default_value_t = 4000, env = "PARLEY_ROUTER_PORT")]
    port: u16,
    #[arg(long, default_value = "127.0.0.1", env = "PARLEY_ROUTER_HOST")]
    host: String,
    /// A YAML file in the Hive Router format, merged over Parley's generated config.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override a subgraph's URL: `name=http://host:port/graphql` (repeatable). Several instances of one
    /// subgraph: repeat the name, or list URLs separated by commas; the router balances over them.
    #[arg(long = "subgraph-url", value_name = "NAME=URL")]
    subgraph_urls: Vec<String>,
    /// JWKS of the users subgraph; enables JWT verification at the edge.
    #[arg(long, env = "PARLEY_JWKS_URL")]
    jwks_url: Option<String>,
    /// Disable introspection (production).
    #[arg(long, env = "PARLEY_NO_INTROSPECTION")]
    no_introspection: bool,
    /// Allow-list mode: only the documents of this manifest (`{"<id>": "<document>"}`) run.
    #[arg(long, env = "PARLEY_PERSISTED_DOCUMENTS")]
    persisted_documents: Option<PathBuf>,
    /// Redis for rate limits shared by all routers (`RATE_LIMITED`); counted in this process without it.
    #[arg(long, env = "PARLEY_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Turn per-caller rate limits off (benchmarks that play thousands of clients from one address).
    #[arg(long, env = "PARLEY_NO_RATE_LIMITS")]
    no_rate_limits: bool,
    /// The secret shared with the subgraphs' `PARLEY_ROUTER_KEY`: subscriptions then share one connection
    /// per subgraph, each naming its caller. Without it every caller gets connections of their own.
    #[arg(long, env = "PARLEY_ROUTER_KEY", hide_env_values = true)]
    router_key: Option<String>,
    /// Proxies whose `x-forwarded-for` names the client (CIDRs or addresses, comma-separated); anyone
    /// else's is replaced by their own address.
    #[arg(long, env = "PARLEY_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<String>,
    /// Web origins whose pages may call the API from a browser (CORS), comma-separated: the web app's,
    /// e.g. `https://app.example.com`. None by default; `parley up` allows the Vite dev server's.
    #[arg(long, env = "PARLEY_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// A post's live SSE viewers (anonymous and signed in) and a chat's members share one upstream stream
    /// (docs/live-sharing.md); `false` makes every viewer an engine subscription of its own.
    #[arg(long, env = "PARLEY_LIVE_SHARING", default_value_t = true, action = clap::ArgAction::Set)]
    live_sharing: bool,
    /// WebSocket clients are served by the live front too: their post and chat streams shared, everything else
    /// relayed to the engine over one loopback link per worker (docs/live-sharing.md); needs live sharing on.
    #[arg(long, env = "PARLEY_LIVE_SHARING_WEBSOCKET", default_value_t = true, action = clap::ArgAction::Set)]
    live_sharing_websocket: bool,
    /// Where the generated engine config is written.
    #[arg(long, default_value = "data/router", env = "PARLEY_ROUTER_WORK_DIR")]
    work_dir: PathBuf,
}

/// Errors end the process with one line (`parley: …`, causes joined), never a backtrace: these are
/// operators' messages (a port in use, a store that cannot open), not bugs.
fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("parley: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // The router engine installs its own tracing subscriber (configured by its `log` section).
    if !matches!(cli.command, Command::Router(_)) {
        init_logging();
    }
    match cli.command {
        Command::Up {
            data_dir,
            port,
            production,
            processes,
        } => {
            let layout = if processes {
                up::Layout::Processes
            } else {
                up::Layout::OneWorker
            };
            tokio_main(up::run(data_dir, port, production, layout))
        }
        Command::Router(args) => {
            let RouterArgs {
                supergraph,
                port,
                host,
                config,
                subgraph_urls,
                jwks_url,
                no_introspection,
                persisted_documents,
                redis_url,
                no_rate_limits,
                router_key,
                trusted_proxies,
                cors_origins,
                live_sharing,
                live_sharing_websocket,
                work_dir,
            } = *args;
            let options = parley_router::RouterOptions {
                supergraph,
                host,
                port,
                subgraph_urls: parse_pairs(&subgraph_urls)?,
                jwks_url,
                introspection: !no_introspection,
                persisted_documents,
                redis_url,
                rate_limits: !no_rate_limits,
                router_key: router_key.filter(|key| !key.is_empty()),
                trusted_proxies,
                cors_origins,
                live_sharing,
                live_sharing_websocket,
                extra_config: config,
                work_dir,
            };
            parley_router::run(&options).context("router")
        }
        Command::Subgraph { name, port } => tokio_main(subgraphs::serve(name, port)),
        Command::Worker { subgraphs } => tokio_main(worker::run(subgraphs)),
        Command::Compose { check, root } => compose::run(&root, check),
        Command::Migrate { name, down } => tokio_main(subgraphs::migrate(name, down)),
        Command::Search {
            action: SearchAction::Reindex,
        } => tokio_main(async {
            let config = parley_kit::ServiceConfig::load("search")?;
            let started = std::time::Instant::now();
            let documents = parley_search::reindex(&config).await?;
            println!(
                "search: {documents} documents indexed in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }),
    }
}

fn tokio_main<F: std::future::Future<Output = anyhow::Result<()>>>(
    future: F,
) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

/// `name=url[,url…]` pairs (a name may repeat) → each subgraph's instance URLs.
fn parse_pairs(pairs: &[String]) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut urls: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in pairs {
        match pair.split_once('=') {
            Some((name, list)) if !name.is_empty() && !list.is_empty() => {
                let entry = urls.entry(name.to_string()).or_default();
                for url in list.split(',').map(str::trim) {
                    if url.is_empty() {
                        bail!("empty URL in {pair:?}");
                    }
                    entry.push(url.to_string());
                }
            }
            _ => bail!("expected NAME=URL, got {pair:?}"),
        }
    }
    Ok(urls)
}

/// `RUST_LOG` filters (default: info for Parley, warn for the rest); `PARLEY_LOG_FORMAT=json` for JSON lines.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let info: Vec<String> = subgraphs::log_targets()
            .iter()
            .map(|target| format!("{target}=info"))
            .collect();
        tracing_subscriber::EnvFilter::new(format!("warn,{}", info.join(",")))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("PARLEY_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
