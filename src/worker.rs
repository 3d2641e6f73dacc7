//! `parley worker --subgraph NAME=PORT …`: several subgraphs in one process, what `parley up` runs by
//! default. Each is what `parley subgraph <name>` would be — its own loopback port, its own store, its own
//! runtime's relay and consumers, reached through the router over HTTP and WebSocket exactly as in
//! production — only the process (its allocator, thread pool and shared libraries) is shared, which is where
//! a process per subgraph spent most of its memory.
//!
//! Configuration comes from the environment as for `parley subgraph`; per subgraph, the worker sets the
//! port, the event feeds it pulls (its producers' ports, when events do not go through Redis) and, with
//! `PARLEY_POSTGRES_URL`, its database on that server. A panic inside a request is caught per request by
//! the server; a subgraph that stops with an error stops the worker (its supervisor, `parley up`, starts it
//! again), with one line naming the subgraph.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use parley_kit::config::EventSource;
use parley_kit::ServiceConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use parley::subgraphs;

/// Runs the subgraphs named in `specs` (`name=port`) until Ctrl-C or SIGTERM, or until one of them fails.
pub async fn run(specs: Vec<String>) -> anyhow::Result<()> {
    let ports = parse_specs(&specs)?;
    let postgres = std::env::var("PARLEY_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let (stop, stopped) = watch::channel(false);
    let mut running = JoinSet::new();
    for (name, port) in &ports {
        let subgraph = subgraphs::find(name)?;
        let mut config = ServiceConfig::load(name)?;
        config.port = *port;
        if config.redis_url.is_none() {
            config.event_sources = subgraph
                .sources()
                .into_iter()
                .map(|source| match ports.get(source) {
                    Some(port) => Ok(EventSource {
                        name: source.to_string(),
                        url: format!("http://127.0.0.1:{port}"),
                    }),
                    None => {
                        bail!("subgraph {name} consumes {source}, which this worker does not run")
                    }
                })
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(base) = &postgres {
            config.database_url = Some(subgraphs::postgres_database(base, name).await?);
        }
        let listener = TcpListener::bind((config.host.as_str(), *port))
            .await
            .with_context(|| format!("subgraph {name}: binding port {port}"))?;
        let mut stopped = stopped.clone();
        let shutdown = Box::pin(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        let name = name.clone();
        running.spawn(async move {
            let result = subgraph.run(config, listener, shutdown).await;
            result.with_context(|| format!("subgraph {name}"))
        });
    }
    tokio::select! {
        _ = subgraphs::shutdown_signal() => {
            let _ = stop.send(true);
            while running.join_next().await.is_some() {}
            Ok(())
        }
        Some(first) = running.join_next() => {
            // One stopped on its own: that is a failure (a subgraph runs until told to stop).
            let _ = stop.send(true);
            match first {
                Ok(Ok(())) => bail!("a subgraph stopped unasked"),
                Ok(Err(err)) => Err(err),
                Err(panic) => bail!("a subgraph panicked: {panic}"),
            }
        }
    }
}

/// `name=port` pairs, each name a registered subgraph, once.
fn parse_specs(specs: &[String]) -> anyhow::Result<BTreeMap<String, u16>> {
    let mut ports = BTreeMap::new();
    for spec in specs {
        let (name, port) = spec
            .split_once('=')
            .with_context(|| format!("expected NAME=PORT, got {spec:?}"))?;
        subgraphs::find(name)?;
        let port = port
            .parse()
            .with_context(|| format!("{spec:?}: not a port"))?;
        if ports.insert(name.to_string(), port).is_some() {
            bail!("subgraph {name} named twice");
        }
    }
    if ports.is_empty() {
        bail!("name at least one subgraph (--subgraph NAME=PORT)");
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_registered_subgraphs_once() {
        let ports = parse_specs(&["users=4101".into(), "chat=4105".into()]).expect("specs");
        assert_eq!(ports.get("chat"), Some(&4105));
        assert!(parse_specs(&["nope=1".into()]).is_err());
        assert!(parse_specs(&["users=x".into()]).is_err());
        assert!(parse_specs(&["users=1".into(), "users=2".into()]).is_err());
        assert!(parse_specs(&[]).is_err());
    }
}
