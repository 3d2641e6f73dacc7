//! The subgraphs this binary can run, by name.

use std::future::Future;

use anyhow::bail;
use parley_kit::ServiceConfig;
use sea_orm_migration::MigratorTrait;
use tokio::net::TcpListener;

/// Every subgraph, in start order.
pub const ALL: &[&str] = &[
    parley_users::NAME,
    parley_social::NAME,
    parley_posts::NAME,
    parley_feed::NAME,
    parley_chat::NAME,
];

/// The subgraphs whose events each one consumes.
pub fn event_sources(name: &str) -> &'static [&'static str] {
    match name {
        "social" => &["users"],
        "posts" => &["social"],
        "feed" => &["posts", "social"],
        "chat" => &["users", "social"],
        _ => &[],
    }
}

/// The federation SDL of a subgraph.
pub fn sdl(name: &str) -> anyhow::Result<String> {
    Ok(match name {
        "users" => parley_users::sdl(),
        "social" => parley_social::sdl(),
        "posts" => parley_posts::sdl(),
        "feed" => parley_feed::sdl(),
        "chat" => parley_chat::sdl(),
        _ => bail!("unknown subgraph {name:?} (known: {})", ALL.join(", ")),
    })
}

/// Runs subgraph `name` on `listener` until `shutdown`.
pub async fn run(
    name: &str,
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match name {
        "users" => parley_users::run(config, listener, shutdown).await,
        "social" => parley_social::run(config, listener, shutdown).await,
        "posts" => parley_posts::run(config, listener, shutdown).await,
        "feed" => parley_feed::run(config, listener, shutdown).await,
        "chat" => parley_chat::run(config, listener, shutdown).await,
        _ => bail!("unknown subgraph {name:?} (known: {})", ALL.join(", ")),
    }
}

/// `parley subgraph <name>`: binds, prints the address, serves until Ctrl-C or SIGTERM.
pub async fn serve(name: String, port: Option<u16>) -> anyhow::Result<()> {
    sdl(&name)?; // unknown names fail before binding
    let mut config = ServiceConfig::load(&name)?;
    if let Some(port) = port {
        config.port = port;
    }
    if config.redis_url.is_some() && config.event_sources.is_empty() {
        // Through Redis a source is only a name: default to the ones this subgraph consumes.
        config.event_sources = event_sources(&name)
            .iter()
            .map(|source| parley_kit::config::EventSource {
                name: source.to_string(),
                url: String::new(),
            })
            .collect();
    }
    let listener = TcpListener::bind((config.host.as_str(), config.port)).await?;
    println!("{name} listening on http://{}", listener.local_addr()?);
    run(&name, config, listener, shutdown_signal()).await
}

/// `parley migrate <name> [--down N]`.
pub async fn migrate(name: String, down: Option<u32>) -> anyhow::Result<()> {
    let config = ServiceConfig::load(&name)?;
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    let db = sea_orm::Database::connect(&url).await?;
    match (name.as_str(), down) {
        ("users", None) => parley_users::Migrator::up(&db, None).await?,
        ("users", Some(n)) => parley_users::Migrator::down(&db, Some(n)).await?,
        ("social", None) => parley_social::Migrator::up(&db, None).await?,
        ("social", Some(n)) => parley_social::Migrator::down(&db, Some(n)).await?,
        ("posts", None) => parley_posts::Migrator::up(&db, None).await?,
        ("posts", Some(n)) => parley_posts::Migrator::down(&db, Some(n)).await?,
        ("feed", None) => parley_feed::Migrator::up(&db, None).await?,
        ("feed", Some(n)) => parley_feed::Migrator::down(&db, Some(n)).await?,
        ("chat", None) => parley_chat::Migrator::up(&db, None).await?,
        ("chat", Some(n)) => parley_chat::Migrator::down(&db, Some(n)).await?,
        _ => bail!("unknown subgraph {name:?} (known: {})", ALL.join(", ")),
    }
    println!("{name}: migrations done");
    Ok(())
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
