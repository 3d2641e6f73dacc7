//! The end-to-end harness: starts the subgraphs in-process on port 0 (SQLite files in a temp dir, or fresh
//! PostgreSQL databases), the real router as a child process (`parley router`) over the checked-in
//! supergraph, and talks to the router over HTTP and WebSocket as a client would.

#![allow(dead_code)] // each test binary uses part of the harness

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use parley_kit::testing;
use parley_kit::ServiceConfig;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

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
}

/// The PostgreSQL server the test command started, or `None` (after saying so loudly; fatal when
/// `PARLEY_REQUIRE_SERVICES=1`, which the test command sets).
pub fn postgres_url() -> Option<String> {
    match std::env::var("PARLEY_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            let message = "PARLEY_TEST_POSTGRES_URL is not set: PostgreSQL tests did NOT run (use the README's test command)";
            if std::env::var("PARLEY_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
                panic!("{message}");
            }
            eprintln!("\n!!! {message} !!!\n");
            None
        }
    }
}

/// Creates a fresh database on the test server; returns its URL.
async fn fresh_postgres_db(admin_url: &str, label: &str) -> String {
    use sea_orm::ConnectionTrait;
    let name = format!("parley_{label}_{}", uuid::Uuid::now_v7().simple());
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .expect("connect to test PostgreSQL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create test database");
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    format!("{base}/{name}")
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Platform {
    /// Starts users, social and the router on SQLite.
    pub async fn start() -> Platform {
        Self::start_with(Store::Sqlite).await
    }

    pub async fn start_with(store: Store) -> Platform {
        let data_dir = testing::temp_dir("e2e");
        let users_listener = bind().await;
        let social_listener = bind().await;
        let users_url = format!("http://{}", users_listener.local_addr().expect("addr"));
        let social_url = format!("http://{}", social_listener.local_addr().expect("addr"));
        let jwks = format!("{users_url}/.well-known/jwks.json");
        let mut subgraphs = Vec::new();
        for (name, listener, url) in [
            ("users", users_listener, users_url.clone()),
            ("social", social_listener, social_url.clone()),
        ] {
            let mut config: ServiceConfig = testing::config(name, data_dir.clone());
            config.jwks_url = jwks.clone();
            if name == "social" {
                config.event_sources =
                    parley_kit::config::parse_event_sources(&format!("users={users_url}"))
                        .expect("sources");
            }
            if store == Store::Postgres {
                let admin = postgres_url().expect("PostgreSQL required for this test");
                config.database_url = Some(fresh_postgres_db(&admin, name).await);
            }
            subgraphs.push(spawn_subgraph(name, config, listener, url));
        }
        let router_port = free_port();
        let router_url = format!("http://127.0.0.1:{router_port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_parley"));
        command
            .arg("router")
            .arg("--supergraph")
            .arg(repo_root().join("schema/supergraph.graphql"))
            .args(["--port", &router_port.to_string(), "--jwks-url", &jwks])
            .arg("--work-dir")
            .arg(data_dir.join("router"))
            .args(["--subgraph-url", &format!("users={users_url}/graphql")])
            .args(["--subgraph-url", &format!("social={social_url}/graphql")])
            .stdout(Stdio::null())
            .kill_on_drop(true);
        let router = command.spawn().expect("start the router");
        let platform = Platform {
            router_url,
            data_dir,
            subgraphs,
            http: reqwest::Client::new(),
            router,
        };
        platform.wait_ready().await;
        platform
    }

    /// Waits until the router answers a query (supergraph loaded, subgraphs reachable).
    async fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            let ok = self
                .http
                .post(self.graphql_url())
                .json(&json!({ "query": "{ __typename }" }))
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

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.router_url)
    }

    pub fn ws_url(&self) -> String {
        self.graphql_url().replacen("http", "ws", 1)
    }

    /// POSTs a GraphQL request; returns the HTTP status and the JSON body.
    pub async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(self.graphql_url()).json(&json!({
            "query": query,
            "variables": variables,
        }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("router reachable");
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Like [`Self::gql`] but requires a response without errors; returns `data`.
    pub async fn ok(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let (status, body) = self.gql(query, variables, token).await;
        assert!(
            status == 200 && body.get("errors").is_none(),
            "expected success, got {status}: {body:#}"
        );
        body["data"].clone()
    }

    /// Registers an account; returns (user id, access token, refresh token).
    pub async fn register(&self, nickname: &str) -> Account {
        let data = self
            .ok(
                "mutation($input: RegisterInput!) { register(input: $input) { accessToken refreshToken user { id nickname } } }",
                json!({ "input": {
                    "email": format!("{nickname}@example.com"),
                    "password": "correct horse 1",
                    "name": format!("{nickname} Example"),
                    "nickname": nickname,
                }}),
                None,
            )
            .await;
        let payload = &data["register"];
        Account {
            id: payload["user"]["id"].as_str().expect("id").to_string(),
            access: payload["accessToken"].as_str().expect("token").to_string(),
            refresh: payload["refreshToken"]
                .as_str()
                .expect("refresh")
                .to_string(),
            email: format!("{nickname}@example.com"),
        }
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

pub struct Account {
    pub id: String,
    pub access: String,
    pub refresh: String,
    pub email: String,
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
    let owned = name.to_string();
    let task = tokio::spawn(async move {
        match owned.as_str() {
            "users" => parley_users::run(config, listener, shutdown).await,
            _ => parley_social::run(config, listener, shutdown).await,
        }
    });
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The `extensions.code` of each error in a response.
pub fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["extensions"]["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Retries `f` until it returns `Some` or the deadline passes (for effects carried by events).
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = f().await {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
