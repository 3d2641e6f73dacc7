//! `parley up`: the whole platform on one machine.
//!
//! Each subgraph runs as its own child process (`parley subgraph <name>`) on a free loopback port with its
//! SQLite file in the data dir; social pulls users' event feed. Once every subgraph's `/health` answers, the
//! router starts on `--port` over the supergraph this binary was built with, its subgraph URLs overridden to
//! the chosen ports and JWT verification pointed at users' JWKS. `up` prints the GraphiQL URL when the router
//! is ready (`/readiness`: its supergraph loaded; `/health` answers before that), stops everything on
//! Ctrl-C/SIGTERM, and if a child dies it says which and exits non-zero.
//! With `PARLEY_POSTGRES_URL` set, each subgraph uses database `parley_<name>` on that server instead; with
//! `PARLEY_REDIS_URL`, events and live updates go through Redis and the router keeps rate limits there.
//! `--production` requires both (and says which is missing).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use parley::subgraphs;

/// The supergraph this binary serves (checked current by a test).
const SUPERGRAPH: &str = include_str!("../schema/supergraph.graphql");
const READY_TIMEOUT: Duration = Duration::from_secs(60);

struct Running {
    name: String,
    child: Child,
}

/// The external servers `up` points the platform at.
struct Servers {
    postgres: Option<String>,
    redis: Option<String>,
}

impl Servers {
    fn from_env(production: bool) -> anyhow::Result<Self> {
        let get = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        let servers = Self {
            postgres: get("PARLEY_POSTGRES_URL"),
            redis: get("PARLEY_REDIS_URL"),
        };
        if production {
            let missing: Vec<&str> = [
                ("PARLEY_POSTGRES_URL", servers.postgres.is_none()),
                ("PARLEY_REDIS_URL", servers.redis.is_none()),
            ]
            .into_iter()
            .filter_map(|(key, absent)| absent.then_some(key))
            .collect();
            if !missing.is_empty() {
                bail!(
                    "--production needs {} (see the README's Production section)",
                    missing.join(" and ")
                );
            }
        }
        Ok(servers)
    }
}

pub async fn run(data_dir: PathBuf, port: u16, production: bool) -> anyhow::Result<()> {
    let servers = Servers::from_env(production)?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let data_dir = std::path::absolute(&data_dir)?;
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    let result = start_all(&exe, &data_dir, port, &servers, &mut children).await;
    let outcome = match result {
        Ok(()) => {
            println!("GraphiQL: http://127.0.0.1:{port}/");
            supervise(&mut children).await
        }
        Err(err) => Err(err),
    };
    stop_all(&mut children).await;
    outcome
}

async fn start_all(
    exe: &Path,
    data_dir: &Path,
    port: u16,
    servers: &Servers,
    children: &mut Vec<Running>,
) -> anyhow::Result<()> {
    let mut urls = Vec::new();
    for subgraph in subgraphs::ALL {
        let sub_port = free_port()?;
        urls.push((subgraph.name(), format!("http://127.0.0.1:{sub_port}")));
    }
    let base = |n: &str| {
        urls.iter()
            .find(|(name, _)| *name == n)
            .map(|(_, u)| u.clone())
    };
    let users = base("users").context("users subgraph")?;
    let jwks = format!("{users}/.well-known/jwks.json");
    // Known only to this platform's processes: the router proves itself to the subgraphs with it.
    let router_key = parley_kit::ws::new_router_key();
    for (name, url) in &urls {
        let sources: Vec<String> = subgraphs::find(name)?
            .sources()
            .iter()
            .filter_map(|s| base(s).map(|u| format!("{s}={u}")))
            .collect();
        let sub_port = url.rsplit(':').next().unwrap_or("0");
        let mut command = Command::new(exe);
        if let Some(base) = &servers.postgres {
            command.env("DATABASE_URL", postgres_database(base, name).await?);
        }
        if let Some(redis) = &servers.redis {
            command.env("PARLEY_REDIS_URL", redis);
        }
        let child = command
            .args(["subgraph", name, "--port", sub_port])
            .env("PARLEY_DATA_DIR", data_dir)
            .env("PARLEY_JWKS_URL", &jwks)
            .env("PARLEY_ROUTER_KEY", &router_key)
            .env("PARLEY_EVENT_SOURCES", sources.join(","))
            .env("PARLEY_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting subgraph {name}"))?;
        children.push(Running {
            name: name.to_string(),
            child,
        });
    }
    for (name, url) in &urls {
        wait_healthy(name, &format!("{url}/health"), children).await?;
    }
    let supergraph = data_dir.join("supergraph.graphql");
    std::fs::write(&supergraph, SUPERGRAPH)?;
    let mut router = Command::new(exe);
    router
        .arg("router")
        .arg("--supergraph")
        .arg(&supergraph)
        .args(["--port", &port.to_string(), "--jwks-url", &jwks])
        .env("PARLEY_ROUTER_KEY", &router_key)
        .arg("--work-dir")
        .arg(data_dir.join("router"));
    for (name, url) in &urls {
        router.args(["--subgraph-url", &format!("{name}={url}/graphql")]);
    }
    if let Some(redis) = &servers.redis {
        router.args(["--redis-url", redis]);
    }
    let child = router
        .kill_on_drop(true)
        .spawn()
        .context("starting the router")?;
    children.push(Running {
        name: "router".into(),
        child,
    });
    wait_healthy(
        "router",
        &format!("http://127.0.0.1:{port}/readiness"),
        children,
    )
    .await
}

/// Polls `url` until it answers 200; fails early if a child exits.
async fn wait_healthy(name: &str, url: &str, children: &mut [Running]) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let started = Instant::now();
    loop {
        if let Ok(response) = http.get(url).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        if let Some(dead) = exited(children)? {
            bail!("{dead} exited while starting");
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!("{name} did not become healthy at {url} within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn exited(children: &mut [Running]) -> anyhow::Result<Option<String>> {
    for running in children.iter_mut() {
        if let Some(status) = running.child.try_wait()? {
            return Ok(Some(format!("{} ({status})", running.name)));
        }
    }
    Ok(None)
}

/// Waits for a signal (clean stop) or a child's death (error).
async fn supervise(children: &mut [Running]) -> anyhow::Result<()> {
    let signal = subgraphs::shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                if let Some(dead) = exited(children)? {
                    bail!("{dead} exited; stopping Parley");
                }
            }
        }
    }
}

/// SIGTERM to each child, then SIGKILL to any still running after a grace period.
async fn stop_all(children: &mut [Running]) {
    for running in children.iter() {
        if let Some(pid) = running.child.id() {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
    }
    for running in children.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(10), running.child.wait())
            .await
            .is_err()
        {
            let _ = running.child.kill().await;
        }
    }
}

/// `PARLEY_POSTGRES_URL` (a server, no database): each subgraph gets database `parley_<name>` there, created
/// if missing, instead of its SQLite file.
async fn postgres_database(base: &str, name: &str) -> anyhow::Result<String> {
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

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
