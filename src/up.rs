//! `parley up`: the whole platform on one machine.
//!
//! Every subgraph runs on a free loopback port with its SQLite file in the data dir, all of them in one
//! child process (`parley worker`, see [`crate::worker`]) or, with `--processes`, each in its own
//! (`parley subgraph <name>`); either way they pull each other's event feeds and meet only through the
//! router. Once every subgraph's `/health` answers, the router starts on `--port` over the supergraph this
//! binary was built with, its subgraph URLs overridden to the chosen ports and JWT verification pointed at
//! users' JWKS. `up` prints the GraphiQL URL when the router is ready (`/readiness`: its supergraph loaded;
//! `/health` answers before that) and stops everything on Ctrl-C/SIGTERM. A child that dies later is
//! restarted on its port with backoff (one line says which and when; meanwhile the router answers with
//! partial data and `SUBGRAPH_UNAVAILABLE`); a child that cannot start at all stops `up` with one line
//! naming it.
//! With `PARLEY_POSTGRES_URL` set, each subgraph uses database `parley_<name>` on that server instead; with
//! `PARLEY_REDIS_URL`, events and live updates go through Redis and the router keeps rate limits there.
//! `--production` requires both (and says which is missing).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use parley::subgraphs;

/// The supergraph this binary serves (checked current by a test).
const SUPERGRAPH: &str = include_str!("../schema/supergraph.graphql");
/// Origins of Vite's dev server, allowed by CORS unless `PARLEY_CORS_ORIGINS` says otherwise.
const DEV_ORIGINS: &str = "http://localhost:5173,http://127.0.0.1:5173";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// First wait before restarting a child that died; doubled per death in a row, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long before dying starts its backoff over.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// How to start one child, again if it dies.
struct Spec {
    name: String,
    args: Vec<OsString>,
    envs: Vec<(String, OsString)>,
    /// Subgraphs print their address on stdout; only `up`'s own GraphiQL line belongs there.
    quiet: bool,
}

impl Spec {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            args: Vec::new(),
            envs: Vec::new(),
            quiet: false,
        }
    }

    fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.envs.push((key.to_string(), value.into()));
        self
    }

    fn spawn(&self, exe: &Path) -> anyhow::Result<Child> {
        let mut command = Command::new(exe);
        command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        if self.quiet {
            command.stdout(Stdio::null());
        }
        command
            .spawn()
            .with_context(|| format!("starting {}", self.name))
    }
}

/// A child process and how to bring it back.
struct Running {
    spec: Spec,
    /// `None` while it waits to be restarted.
    child: Option<Child>,
    started: Instant,
    /// Deaths in a row (reset once it has run [`STABLE_AFTER`]).
    deaths: u32,
    restart_at: Option<Instant>,
}

impl Running {
    fn start(exe: &Path, spec: Spec) -> anyhow::Result<Self> {
        Ok(Self {
            child: Some(spec.spawn(exe)?),
            spec,
            started: Instant::now(),
            deaths: 0,
            restart_at: None,
        })
    }
}

/// The external servers `up` points the platform at, and whether it runs as production.
struct Servers {
    postgres: Option<String>,
    redis: Option<String>,
    production: bool,
}

impl Servers {
    fn from_env(production: bool) -> anyhow::Result<Self> {
        let get = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        let servers = Self {
            postgres: get("PARLEY_POSTGRES_URL"),
            redis: get("PARLEY_REDIS_URL"),
            production,
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
                    "--production needs {} (see docs/production.md)",
                    missing.join(" and ")
                );
            }
        }
        Ok(servers)
    }
}

/// Where the subgraphs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// All in one worker process (the default: one process's memory instead of one per subgraph).
    OneWorker,
    /// Each in its own process (what production does, one machine or many).
    Processes,
}

pub async fn run(
    data_dir: PathBuf,
    port: u16,
    production: bool,
    layout: Layout,
) -> anyhow::Result<()> {
    let servers = Servers::from_env(production)?;
    parley_kit::store::private_dir(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let data_dir = std::path::absolute(&data_dir)?;
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    let result = start_all(&exe, &data_dir, port, &servers, layout, &mut children).await;
    let outcome = match result {
        Ok(()) => {
            println!("GraphiQL: http://127.0.0.1:{port}/");
            supervise(&exe, &mut children).await
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
    layout: Layout,
    children: &mut Vec<Running>,
) -> anyhow::Result<()> {
    let mut urls = Vec::new();
    for (subgraph, sub_port) in subgraphs::ALL
        .iter()
        .zip(free_ports(subgraphs::ALL.len(), port)?)
    {
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
    // What every subgraph is told, whichever process it runs in.
    let configured = |mut spec: Spec| {
        spec = spec
            .env("PARLEY_DATA_DIR", data_dir)
            .env("PARLEY_JWKS_URL", &jwks)
            .env("PARLEY_ROUTER_KEY", &router_key)
            .env("PARLEY_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            // Analytics' performance report reads the router's histograms.
            .env(
                "PARLEY_ANALYTICS_SCRAPE_URLS",
                format!("http://127.0.0.1:{port}/metrics"),
            );
        if let Some(redis) = &servers.redis {
            spec = spec.env("PARLEY_REDIS_URL", redis);
        }
        spec.quiet = true;
        spec
    };
    let port_of = |url: &str| url.rsplit(':').next().unwrap_or("0").to_string();
    match layout {
        Layout::OneWorker => {
            let mut spec = configured(Spec::new("subgraphs").arg("worker"));
            if let Some(base) = &servers.postgres {
                spec = spec.env("PARLEY_POSTGRES_URL", base);
            }
            for (name, url) in &urls {
                spec = spec
                    .arg("--subgraph")
                    .arg(format!("{name}={}", port_of(url)));
            }
            children.push(Running::start(exe, spec)?);
        }
        Layout::Processes => {
            for (name, url) in &urls {
                let sources: Vec<String> = subgraphs::find(name)?
                    .sources()
                    .iter()
                    .filter_map(|s| base(s).map(|u| format!("{s}={u}")))
                    .collect();
                let mut spec = configured(Spec::new(name))
                    .arg("subgraph")
                    .arg(*name)
                    .arg("--port")
                    .arg(port_of(url))
                    .env("PARLEY_EVENT_SOURCES", sources.join(","));
                if let Some(base) = &servers.postgres {
                    let database = subgraphs::postgres_database(base, name).await?;
                    spec = spec.env("DATABASE_URL", database);
                }
                children.push(Running::start(exe, spec)?);
            }
        }
    }
    for (name, url) in &urls {
        wait_healthy(name, &format!("{url}/health"), children).await?;
    }
    let supergraph = data_dir.join("supergraph.graphql");
    std::fs::write(&supergraph, SUPERGRAPH)?;
    let mut router = Spec::new("router")
        .arg("router")
        .arg("--supergraph")
        .arg(&supergraph)
        .arg("--port")
        .arg(port.to_string())
        .arg("--jwks-url")
        .arg(&jwks)
        .env("PARLEY_ROUTER_KEY", &router_key)
        .arg("--work-dir")
        .arg(data_dir.join("router"));
    for (name, url) in &urls {
        router = router
            .arg("--subgraph-url")
            .arg(format!("{name}={url}/graphql"));
    }
    // In the environment, not argv: a Redis URL may carry a password, and argv is readable by every user.
    if let Some(redis) = &servers.redis {
        router = router.env("PARLEY_REDIS_URL", redis);
    }
    // The web example's dev server (`npm run dev` in client-examples/web) may call the API from the browser.
    if !servers.production && std::env::var_os("PARLEY_CORS_ORIGINS").is_none() {
        router = router.arg("--cors-origins").arg(DEV_ORIGINS);
    }
    // Production answers clients only: no introspection, GraphiQL or query plans unless asked for.
    if servers.production && std::env::var("PARLEY_INTROSPECTION").as_deref() != Ok("true") {
        router = router.arg("--no-introspection");
    }
    children.push(Running::start(exe, router)?);
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
            bail!("{dead} could not start (its error is above)");
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!("{name} did not become healthy at {url} within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first child found dead, with how it ended (while starting, when a death is fatal).
fn exited(children: &mut [Running]) -> anyhow::Result<Option<String>> {
    for running in children.iter_mut() {
        if let Some(child) = running.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(format!("{} ({status})", running.spec.name)));
            }
        }
    }
    Ok(None)
}

/// Runs until Ctrl-C or SIGTERM, restarting children that die (after a backoff that grows while they keep
/// dying).
async fn supervise(exe: &Path, children: &mut [Running]) -> anyhow::Result<()> {
    let signal = subgraphs::shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                for running in children.iter_mut() {
                    tend(exe, running)?;
                }
            }
        }
    }
}

/// Notices a death (and schedules the restart), or restarts a child whose backoff is over.
fn tend(exe: &Path, running: &mut Running) -> anyhow::Result<()> {
    let now = Instant::now();
    if let Some(child) = running.child.as_mut() {
        let Some(status) = child.try_wait()? else {
            return Ok(());
        };
        if now.duration_since(running.started) >= STABLE_AFTER {
            running.deaths = 0;
        }
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << running.deaths.min(6))
            .min(MAX_BACKOFF);
        running.deaths += 1;
        running.child = None;
        running.restart_at = Some(now + backoff);
        tracing::warn!(
            "{} exited ({status}); restarting in {:.1} s",
            running.spec.name,
            backoff.as_secs_f64()
        );
        return Ok(());
    }
    if running.restart_at.is_some_and(|at| now >= at) {
        match running.spec.spawn(exe) {
            Ok(child) => {
                running.child = Some(child);
                running.started = now;
                running.restart_at = None;
                tracing::info!("{} restarted", running.spec.name);
            }
            Err(err) => {
                running.restart_at = Some(now + MAX_BACKOFF);
                tracing::warn!("{err:#}; trying again in {} s", MAX_BACKOFF.as_secs());
            }
        }
    }
    Ok(())
}

/// SIGTERM to each child, then SIGKILL to any still running after a grace period.
async fn stop_all(children: &mut [Running]) {
    for child in children.iter().filter_map(|running| running.child.as_ref()) {
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
    }
    for child in children
        .iter_mut()
        .filter_map(|running| running.child.as_mut())
    {
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

/// `n` distinct free loopback ports, none of them `taken`: each probe's listener is held until all are
/// chosen, so the kernel cannot hand the same port out twice (the children bind them moments later).
fn free_ports(n: usize, taken: u16) -> anyhow::Result<Vec<u16>> {
    let mut held = Vec::with_capacity(n);
    while held.len() < n {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        if listener.local_addr()?.port() != taken {
            held.push(listener);
        }
    }
    held.iter()
        .map(|listener| Ok(listener.local_addr()?.port()))
        .collect()
}
