//! The registry: every subgraph this binary runs, as values. `parley up`, `subgraph`, `migrate`, `compose`,
//! the log filter and the guard-rail tests all iterate [`ALL`]; adding a domain is one line here (plus its
//! crate and its migration crate; see docs/adding-a-subgraph.md).

use anyhow::{bail, Context};
use parley_kit::{ServiceConfig, Subgraph};
use tokio::net::TcpListener;

/// Every subgraph, in start order.
pub const ALL: &[&dyn Subgraph] = &[
    &parley_users::Users,
    &parley_social::Social,
    &parley_posts::Posts,
    &parley_feed::Feed,
    &parley_chat::Chat,
    &parley_media::Media,
    &parley_notifications::Notifications,
    &parley_search::Search,
    &parley_billing::Billing,
    &parley_analytics::Analytics,
];

/// The subgraph called `name`.
pub fn find(name: &str) -> anyhow::Result<&'static dyn Subgraph> {
    match ALL.iter().find(|subgraph| subgraph.name() == name) {
        Some(subgraph) => Ok(*subgraph),
        None => bail!("unknown subgraph {name:?} (known: {})", names().join(", ")),
    }
}

/// Every subgraph's name, in start order.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|subgraph| subgraph.name()).collect()
}

/// The crates whose logs `parley` shows at info level by default: its own, the kit's and every domain's.
pub fn log_targets() -> Vec<String> {
    let mut targets = vec!["parley".to_string(), "parley_kit".to_string()];
    targets.extend(ALL.iter().map(|s| format!("parley_{}", s.name())));
    targets
}

/// `parley subgraph <name>`: binds, prints the address, serves until Ctrl-C or SIGTERM.
pub async fn serve(name: String, port: Option<u16>) -> anyhow::Result<()> {
    let subgraph = find(&name)?; // unknown names fail before binding
    let mut config = ServiceConfig::load(&name)?;
    if let Some(port) = port {
        config.port = port;
    }
    let listener = TcpListener::bind((config.host.as_str(), config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.host, config.port))?;
    println!("{name} listening on http://{}", listener.local_addr()?);
    subgraph
        .run(config, listener, Box::pin(shutdown_signal()))
        .await
        .with_context(|| format!("subgraph {name}"))
}

/// `parley migrate <name> [--down N]`.
pub async fn migrate(name: String, down: Option<u32>) -> anyhow::Result<()> {
    let subgraph = find(&name)?;
    let config = ServiceConfig::load(&name)?;
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        parley_kit::store::private_dir(&config.data_dir)?;
    }
    let db = sea_orm::Database::connect(&url).await?;
    subgraph.migrate(&db, down).await?;
    println!("{name}: migrations done");
    Ok(())
}

/// `PARLEY_POSTGRES_URL` (a server, no database): each subgraph gets database `parley_<name>` there, created
/// if missing, instead of its SQLite file.
pub async fn postgres_database(base: &str, name: &str) -> anyhow::Result<String> {
    use sea_orm::ConnectionTrait;
    let base = base.trim_end_matches('/');
    let database = format!("parley_{name}");
    let admin = sea_orm::Database::connect(format!("{base}/postgres")).await?;
    let exists = admin
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            admin.get_database_backend(),
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [database.clone().into()],
        ))
        .await?
        .is_some();
    if !exists {
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{database}\""))
            .await?;
    }
    Ok(format!("{base}/{database}"))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
