//! Platform start-up: every registered subgraph in-process on port 0 (SQLite files in a temp dir, or fresh
//! PostgreSQL databases; events in-process or through Redis), the real router as a child process (`parley
//! router`) over the checked-in supergraph; further routers and subgraph instances; stopping a subgraph.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use parley::subgraphs;
use parley_kit::testing;
pub use parley_kit::testing::{fresh_postgres_db, postgres_url};
use parley_kit::ServiceConfig;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::graphql::Client;

/// Registering with this email makes an admin (the harness configures users so).
pub const ADMIN_EMAIL: &str = "admin@example.com";

/// Where the subgraphs keep their data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Store {
    Sqlite,
    Postgres,
}

pub struct Subgraph {
    pub name: String,
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub struct Platform {
    pub router_url: String,
    pub data_dir: PathBuf,
    pub subgraphs: Vec<Subgraph>,
    pub http: reqwest::Client,
    router: Child,
    jwks: String,
    /// The key the router presents to the subgraphs (each subgraph's `router_key`).
    pub router_key: String,
    /// The config each subgraph started with (a further instance of one starts with the same).
    configs: Vec<ServiceConfig>,
}

/// A further router process over the same subgraphs (killed on drop).
pub struct RouterProcess {
    pub url: String,
    _child: Child,
}

impl RouterProcess {
    pub fn ws_url(&self) -> String {
        format!("{}/graphql", self.url).replacen("http", "ws", 1)
    }
}

/// The key the platform's media subgraph signs its links with.
pub const MEDIA_KEY: &str = "the end-to-end tests' media link key, not a secret";

/// How [`Platform::start_opts`] sets the platform up.
#[derive(Default)]
pub struct Options<'a> {
    pub store: Option<Store>,
    pub extra_router_args: &'a [&'a str],
    /// Events through this Redis (production mode) instead of in-process buses and `/events` pulls.
    pub redis_url: Option<String>,
    /// The PostgreSQL server for `Store::Postgres` (default: the test command's).
    pub postgres_url: Option<String>,
    /// Media's files in this S3 server's bucket instead of the data dir.
    pub s3: Option<testing::S3Server>,
    /// The notifications subgraph's `[notifications]` settings (SMTP server, digest interval, …).
    pub notifications: Option<toml::Table>,
    /// The billing subgraph's `[billing]` settings (test clock, tick, fault injection, …).
    pub billing: Option<toml::Table>,
    /// The analytics subgraph's `[analytics]` settings (test clock, retention, …).
    pub analytics: Option<toml::Table>,
    /// More of the users subgraph's `[users]` settings (OpenID Connect providers, the assistant, …).
    pub users: Option<toml::Table>,
    /// The chat subgraph's `[chat]` settings (the assistant's endpoint and limits).
    pub chat: Option<toml::Table>,
}

/// The repository's root (this crate lives in `tests/harness`).
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `parley` binary cargo built next to the running test (`target/<profile>/parley`): a library cannot
/// name `CARGO_BIN_EXE_parley`, which cargo sets for the root package's own tests only.
fn parley_bin() -> PathBuf {
    let test = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/parley
    let profile_dir = test
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    profile_dir.join(format!("parley{}", std::env::consts::EXE_SUFFIX))
}

impl Platform {
    /// Starts every subgraph and the router on SQLite.
    pub async fn start() -> Platform {
        Self::start_with(Store::Sqlite).await
    }

    pub async fn start_with(store: Store) -> Platform {
        Self::start_full(store, &[]).await
    }

    /// Starts the platform with extra arguments for `parley router`.
    pub async fn start_full(store: Store, extra_router_args: &[&str]) -> Platform {
        Self::start_opts(Options {
            store: Some(store),
            extra_router_args,
            ..Default::default()
        })
        .await
    }

    /// Production mode on loopback: PostgreSQL stores, events through Redis at `redis_url`.
    pub async fn start_production(redis_url: &str) -> Platform {
        Self::start_opts(Options {
            store: Some(Store::Postgres),
            redis_url: Some(redis_url.to_string()),
            ..Default::default()
        })
        .await
    }

    pub async fn start_opts(options: Options<'_>) -> Platform {
        let store = options.store.unwrap_or(Store::Sqlite);
        let extra_router_args = options.extra_router_args;
        let data_dir = testing::temp_dir("e2e");
        let mut listeners = Vec::new();
        for name in subgraphs::names() {
            let listener = bind().await;
            let url = format!("http://{}", listener.local_addr().expect("addr"));
            listeners.push((name, listener, url));
        }
        let url_of = |name: &str| {
            listeners
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|(_, _, u)| u.clone())
                .expect("known subgraph")
        };
        let jwks = format!("{}/.well-known/jwks.json", url_of("users"));
        let router_key = parley_kit::ws::new_router_key();
        // The router's port first: links the subgraphs make (mails, media) point at its origin.
        let router_port = free_port();
        let mut router_args = Vec::new();
        let mut configs = Vec::new();
        for (name, _, url) in &listeners {
            let mut config: ServiceConfig = testing::config(name, data_dir.clone());
            config.jwks_url = jwks.clone();
            config.router_key = Some(router_key.clone());
            config.public_url = format!("http://127.0.0.1:{router_port}");
            let mut users = options.users.clone().unwrap_or_default();
            users.insert("admin_emails".into(), toml::Value::from(vec![ADMIN_EMAIL]));
            config.sections.insert("users".into(), users.into());
            // A known link-signing key, so tests can make the links a client could not (an expired one).
            let mut media = toml::Table::new();
            media.insert("signing_key".into(), toml::Value::from(MEDIA_KEY));
            if let Some(s3) = &options.s3 {
                for (key, value) in [
                    ("s3_endpoint", &s3.url),
                    ("s3_bucket", &s3.bucket),
                    ("s3_access_key_id", &s3.access_key),
                    ("s3_secret_access_key", &s3.secret_key),
                ] {
                    media.insert(key.into(), toml::Value::from(value.as_str()));
                }
            }
            config.sections.insert("media".into(), media.into());
            if let Some(billing) = &options.billing {
                config
                    .sections
                    .insert("billing".into(), billing.clone().into());
            }
            // Analytics reads the router's histograms, as under `parley up`.
            let mut analytics = options.analytics.clone().unwrap_or_default();
            analytics
                .entry("scrape_urls")
                .or_insert_with(|| vec![format!("http://127.0.0.1:{router_port}/metrics")].into());
            config.sections.insert("analytics".into(), analytics.into());
            if let Some(chat) = &options.chat {
                config.sections.insert("chat".into(), chat.clone().into());
            }
            if let Some(notifications) = &options.notifications {
                config
                    .sections
                    .insert("notifications".into(), notifications.clone().into());
            }
            let sources: Vec<String> = subgraphs::find(name)
                .expect("registered")
                .sources()
                .iter()
                .map(|s| format!("{s}={}", url_of(s)))
                .collect();
            config.event_sources =
                parley_kit::config::parse_event_sources(&sources.join(",")).expect("sources");
            if store == Store::Postgres {
                let admin = options
                    .postgres_url
                    .clone()
                    .or_else(postgres_url)
                    .expect("PostgreSQL required for this test");
                config.database_url = Some(fresh_postgres_db(&admin, name).await);
            }
            if let Some(redis) = &options.redis_url {
                config.redis_url = Some(redis.clone());
                // Quick takeovers, so tests that kill an instance need not wait long.
                config.event_takeover_ms = 1_500;
            }
            // A test's own `--subgraph-url NAME=…` replaces the harness's (repeating a name would add an
            // instance instead).
            let overridden = extra_router_args
                .windows(2)
                .any(|w| w[0] == "--subgraph-url" && w[1].starts_with(&format!("{name}=")));
            if !overridden {
                router_args.push(format!("{name}={url}/graphql"));
            }
            configs.push(config);
        }
        let mut subgraphs = Vec::new();
        for ((name, listener, url), config) in listeners.into_iter().zip(configs.clone()) {
            subgraphs.push(spawn_subgraph(name, config, listener, url));
        }
        let (router_url, router) = spawn_router(
            router_port,
            &data_dir.join("router"),
            &jwks,
            &router_key,
            &router_args,
            extra_router_args,
        );
        let platform = Platform {
            router_url,
            data_dir,
            subgraphs,
            http: reqwest::Client::new(),
            router,
            jwks,
            router_key,
            configs,
        };
        if extra_router_args.is_empty() {
            platform.wait_ready().await;
        } else {
            // (An allow-list refuses the `{ __typename }` probe; the engine's readiness probe answers instead.)
            platform.wait_probe("readiness").await;
        }
        platform
    }

    /// A client of the router at `url`.
    pub fn client_of(url: &str) -> Client {
        Client {
            url: url.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Starts another instance of subgraph `name` with the same config (store, Redis); returns its URL.
    pub async fn spawn_instance(&mut self, name: &str) -> String {
        self.spawn_instance_with(name, |_| {}).await
    }

    /// Like [`Self::spawn_instance`], the config changed by `edit` first (a restart with other settings).
    pub async fn spawn_instance_with(
        &mut self,
        name: &str,
        edit: impl FnOnce(&mut ServiceConfig),
    ) -> String {
        let mut config = self
            .configs
            .iter()
            .find(|c| c.name == name)
            .expect("known subgraph")
            .clone();
        edit(&mut config);
        let listener = bind().await;
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let count = self
            .subgraphs
            .iter()
            .filter(|s| s.name.starts_with(name))
            .count();
        let mut instance = spawn_subgraph(name, config, listener, url.clone());
        instance.name = format!("{name}#{}", count + 1);
        self.subgraphs.push(instance);
        wait_healthy(&self.http, &url).await;
        url
    }

    /// Starts another router over the same subgraphs, `overrides` (`name`, base URL) pointing some at other
    /// instances (a name given twice: the router balances over both); waits until it answers.
    pub async fn start_router(&self, overrides: &[(&str, &str)]) -> RouterProcess {
        self.start_router_with(overrides, &[]).await
    }

    /// Like [`Self::start_router`], with extra arguments for `parley router`.
    pub async fn start_router_with(
        &self,
        overrides: &[(&str, &str)],
        extra_args: &[&str],
    ) -> RouterProcess {
        let args: Vec<String> = self
            .subgraphs
            .iter()
            .filter(|s| !s.name.contains('#'))
            .map(|s| {
                let mut urls: Vec<String> = overrides
                    .iter()
                    .filter(|(n, _)| *n == s.name)
                    .map(|(_, u)| format!("{u}/graphql"))
                    .collect();
                if urls.is_empty() {
                    urls.push(format!("{}/graphql", s.url));
                }
                format!("{}={}", s.name, urls.join(","))
            })
            .collect();
        let work_dir = self.data_dir.join(format!("router-{}", free_port()));
        let (url, child) = spawn_router(
            free_port(),
            &work_dir,
            &self.jwks,
            &self.router_key,
            &args,
            extra_args,
        );
        let other = RouterProcess { url, _child: child };
        wait_router_answers(&self.http, &other.url).await;
        other
    }

    /// Waits until the router's probe `/{name}` answers 200.
    async fn wait_probe(&self, name: &str) {
        let started = Instant::now();
        loop {
            let ok = self
                .http
                .get(format!("{}/{name}", self.router_url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "router did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the router answers a query (supergraph loaded, subgraphs reachable).
    async fn wait_ready(&self) {
        wait_router_answers(&self.http, &self.router_url).await;
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.router_url)
    }

    /// The posts subgraph's open live subscriptions ([`Self::open_subscriptions`]).
    pub async fn posts_open_subscriptions(&self) -> Option<f64> {
        self.open_subscriptions("posts").await
    }

    /// A subgraph's open live subscriptions (`parley_live_subscriptions` on its `/metrics`; the gauge is
    /// process-wide, so tests reading it run alone or in turn).
    pub async fn open_subscriptions(&self, name: &str) -> Option<f64> {
        let subgraph = self.subgraphs.iter().find(|s| s.name == name)?;
        let text = self
            .http
            .get(format!("{}/metrics", subgraph.url))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        // The process may serve other subgraphs too: their gauges are lines of their own, in no set order.
        let label = format!("subgraph=\"{name}\"");
        text.lines()
            .find(|l| l.starts_with("parley_live_subscriptions{") && l.contains(&label))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// The sockets the router process holds open (client connections, its links to the engine and the
    /// subgraphs, listeners).
    pub fn router_sockets(&self) -> usize {
        let pid = self.router.id().expect("router running");
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.filter_map(Result::ok)
                    .filter(|fd| {
                        std::fs::read_link(fd.path())
                            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// The router process's resident memory, in KiB.
    pub fn router_rss_kib(&self) -> u64 {
        let pid = self.router.id().expect("router running");
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse().ok())
            })
            .unwrap_or(0)
    }

    pub fn ws_url(&self) -> String {
        self.graphql_url().replacen("http", "ws", 1)
    }

    /// The base URL of subgraph instance `name` (`chat`, or `chat#2` for a further one).
    pub fn subgraph_url(&self, name: &str) -> String {
        self.subgraphs
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.url.clone())
            .expect("known subgraph")
    }

    /// The config subgraph `name` was started with, its port set to where instance `instance` (`search`,
    /// `search#2`) serves (what a command run beside that instance reads).
    pub fn config_of(&self, name: &str, instance: &str) -> ServiceConfig {
        let mut config = self
            .configs
            .iter()
            .find(|c| c.name == name)
            .expect("known subgraph")
            .clone();
        config.port = self
            .subgraph_url(instance)
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("a port");
        config
    }

    /// Stops one subgraph (as if its process died).
    pub async fn stop_subgraph(&mut self, name: &str) {
        let subgraph = self
            .subgraphs
            .iter_mut()
            .find(|s| s.name == name)
            .expect("known subgraph");
        if let Some(stop) = subgraph.stop.take() {
            let _ = stop.send(());
        }
        subgraph.task.abort();
        // Wait until the port refuses connections.
        let health = format!("{}/health", subgraph.url);
        for _ in 0..100 {
            if self.http.get(&health).send().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{name} did not stop");
    }

    /// The mails written by the file transport, newest last.
    pub fn mails(&self) -> Vec<String> {
        let dir = self.data_dir.join("mail");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }
}

/// Starts `parley router` over the checked-in supergraph with the given `name=url` subgraph URLs.
fn spawn_router(
    port: u16,
    work_dir: &std::path::Path,
    jwks: &str,
    router_key: &str,
    subgraph_urls: &[String],
    extra_args: &[&str],
) -> (String, Child) {
    let mut command = Command::new(parley_bin());
    command
        .arg("router")
        .arg("--supergraph")
        .arg(repo_root().join("schema/supergraph.graphql"))
        .args(["--port", &port.to_string(), "--jwks-url", jwks])
        .env("PARLEY_ROUTER_KEY", router_key)
        .arg("--work-dir")
        .arg(work_dir)
        .stdout(Stdio::null())
        .kill_on_drop(true);
    for arg in subgraph_urls {
        command.args(["--subgraph-url", arg]);
    }
    command.args(extra_args);
    let child = command.spawn().expect("start the router");
    (format!("http://127.0.0.1:{port}"), child)
}

/// Waits until the router at `base` answers `{ __typename }` (supergraph loaded, subgraphs reachable).
async fn wait_router_answers(http: &reqwest::Client, base: &str) {
    let started = Instant::now();
    while !http
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "router at {base} did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    let started = Instant::now();
    while !http
        .get(format!("{base}/health"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{base} not healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spawn_subgraph(
    name: &str,
    config: ServiceConfig,
    listener: TcpListener,
    url: String,
) -> Subgraph {
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let subgraph = subgraphs::find(name).expect("registered");
    let task =
        tokio::spawn(async move { subgraph.run(config, listener, Box::pin(shutdown)).await });
    Subgraph {
        name: name.to_string(),
        url,
        stop: Some(stop),
        task,
    }
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

/// A port nothing listens on now (for a server the test starts itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
