//! The engine's config, generated from [`RouterOptions`].
//!
//! What Parley turns on: the supergraph file (polled, so a recomposed file is picked up without a restart),
//! subgraph URL overrides (so `parley up` can use any ports), JWT verification at the edge against the users
//! subgraph's JWKS (EdDSA only: `alg: none`, HS256 and friends are refused), propagation of the
//! `Authorization`, `x-request-id` and `x-forwarded-for` headers to subgraphs, subscriptions to subgraphs over
//! graphql-transport-ws on `/ws` (one shared connection per subgraph when a router key is set: the key in
//! `connection_init`, each operation's caller in its forwarded claims), client WebSockets on `/graphql`, CSRF
//! prevention, request limits, and the Parley plugin. Subgraph error messages pass through unmasked: Parley's subgraphs only write client-safe
//! messages (internal failures say "internal error"). A user YAML file (`--config`) is merged over the result, key by key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::RouterError;

/// What `parley router` and `parley up` decide.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// The Apollo-format supergraph SDL file.
    pub supergraph: PathBuf,
    pub host: String,
    pub port: u16,
    /// Subgraph name → its instances' URLs, overriding the URL the supergraph carries. A subgraph with
    /// several goes through the router's [`crate::balancer`] (`run` swaps in its URL before rendering).
    pub subgraph_urls: BTreeMap<String, Vec<String>>,
    /// Where to fetch the keys that sign access tokens; `None` turns JWT verification off.
    pub jwks_url: Option<String>,
    /// Allow introspection (on for `parley up`, off in production).
    pub introspection: bool,
    /// A persisted-documents manifest (`{"<id>": "<document>", …}` or Apollo's manifest format): the
    /// production allow-list. When set, only those documents run (by `documentId` or
    /// `extensions.persistedQuery.sha256Hash`) and automatic persisted queries are off.
    pub persisted_documents: Option<PathBuf>,
    /// Redis for the rate limits shared by every router instance (counted in process without it; the
    /// numbers are `plugins.parley.config.rate_limit` in the YAML).
    pub redis_url: Option<String>,
    /// Per-caller rate limits and long-lived client caps (on unless a benchmark plays thousands of clients
    /// from one address).
    pub rate_limits: bool,
    /// The secret the router presents to subgraphs on its subscription connections (`x-parley-router-key`
    /// in `connection_init`). With it the engine keeps one WebSocket per subgraph for every subscriber and
    /// names each operation's caller in `extensions.parleyIdentity` (the claims it verified); without it each
    /// caller gets connections of their own.
    pub router_key: Option<String>,
    /// Proxies (CIDRs or addresses) whose `x-forwarded-for` names the client; from anyone else the header
    /// is replaced by the peer's address.
    pub trusted_proxies: Vec<String>,
    /// Web origins (`https://app.example.com`, `http://localhost:5173`) whose pages may call the API from the
    /// browser (CORS); none by default. Tokens travel in the `Authorization` header, never in cookies, so
    /// credentials stay off.
    pub cors_origins: Vec<String>,
    /// A post's live viewers share one upstream stream (`plugins.parley.config.live_sharing`, see
    /// docs/live-sharing.md); off, every viewer is an engine subscription of its own.
    pub live_sharing: bool,
    /// WebSocket clients go through the live front too (`live_sharing.engine_ws_url`; on by default): their
    /// shared streams served by it, the rest relayed over one link to the engine per worker.
    pub live_sharing_websocket: bool,
    /// A YAML file in the engine's format merged over the generated config.
    pub extra_config: Option<PathBuf>,
    /// Where the generated config is written.
    pub work_dir: PathBuf,
}

/// Subgraphs that serve subscriptions over graphql-transport-ws at `/ws`.
const WS_PATH: &str = "/ws";

/// Tokens one document may have (the engine's `limits.max_tokens`; the plugin's parse guard uses it too).
pub const MAX_TOKENS: usize = 5000;

/// A fresh random secret for the live front's loopback requests (32 bytes, hex).
fn live_front_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The generated config as YAML.
pub fn render(options: &RouterOptions) -> Result<Value, RouterError> {
    let supergraph = absolute(&options.supergraph)?;
    let mut config = yaml(&format!(
        r#"
supergraph:
  source: file
  path: {supergraph:?}
  poll_interval: 2s
http:
  host: {host:?}
  port: {port}
log:
  level: warn
telemetry:
  metrics:
    exporters:
      - kind: prometheus
        enabled: true
        path: /metrics
headers:
  all:
    request:
      - propagate:
          named: [authorization, x-request-id, x-forwarded-for]
subscriptions:
  enabled: true
  # Events buffered per subscription for a client that reads slower than they come (the rest are dropped; a
  # chat client resyncs by sequence number). The engine's default, 1,024, lets 10,000 slow subscribers hold
  # gigabytes.
  subgraph_buffer_capacity: 128
  websocket:
    all:
      path: {WS_PATH}
websocket:
  enabled: true
csrf:
  enabled: true
error_masking:
  all:
    enabled: false
limits:
  max_depth:
    n: 12
  max_aliases:
    n: 30
  max_directives:
    n: 50
  max_tokens:
    n: {MAX_TOKENS}
traffic_shaping:
  all:
    dedupe_enabled: true
    # A subgraph that hangs costs a client at most this; the rest of the answer still comes back.
    request_timeout: 10s
  router:
    # Live UIs hold one WebSocket or SSE stream per client; the engine's default (128) is far too low.
    max_long_lived_clients: 20000
plugins:
  parley:
    enabled: true
    config: {{}}
"#,
        host = options.host,
        port = options.port,
    ))?;
    let map = as_map(&mut config)?;
    if !options.subgraph_urls.is_empty() {
        let mut subgraphs = Mapping::new();
        for (name, url) in &options.subgraph_urls {
            let Some(url) = url.first() else { continue };
            subgraphs.insert(name.clone().into(), yaml(&format!("url: {url:?}"))?);
        }
        let mut overrides = Mapping::new();
        overrides.insert("subgraphs".into(), Value::Mapping(subgraphs));
        map.insert("override_subgraph_urls".into(), Value::Mapping(overrides));
    }
    if let Some(url) = &options.jwks_url {
        let jwt = yaml(&format!(
            r#"
enabled: true
require_authentication: false
allowed_algorithms: [EdDSA]
issuers: [{issuer:?}]
jwks_providers:
  - source: remote
    url: {url:?}
    polling_interval: 60s
    prefetch: false
"#,
            issuer = "parley",
        ))?;
        map.insert("jwt".into(), jwt);
    }
    if options.introspection {
        // Developer mode: a request with `hive-expose-query-plan: true` (or `dry-run`) gets its query plan in
        // `extensions.queryPlan`, to see which subgraphs a query costs. Off in production, like introspection.
        map.insert("query_planner".into(), yaml("allow_expose: true")?);
    } else {
        map.insert("introspection".into(), Value::Bool(false));
    }
    if let Some(manifest) = &options.persisted_documents {
        let manifest = absolute(manifest)?;
        let allow_list = yaml(&format!(
            r#"
enabled: true
require_id: true
storage:
  type: file
  path: {manifest:?}
"#
        ))?;
        map.insert("persisted_documents".into(), allow_list);
        // Registering documents at run time would defeat the allow-list.
        merge(
            &mut config,
            yaml("plugins: {parley: {config: {apq_capacity: 0}}}")?,
        );
    }
    if let Some(key) = &options.router_key {
        share_subscription_connections(&mut config, key)?;
    }
    if let Some(redis) = &options.redis_url {
        merge(
            &mut config,
            yaml(&format!(
                "plugins: {{parley: {{config: {{rate_limit: {{redis_url: {redis:?}}}}}}}}}"
            ))?,
        );
    }
    if !options.introspection {
        // Without introspection GraphiQL cannot work: it is not served either.
        merge(
            &mut config,
            yaml("plugins: {parley: {config: {disable_playground: true}}}")?,
        );
    }
    // `/media/…`, `/notifications/…`, `/billing/webhooks/…` and `/analytics/exports/…` on the router's origin
    // are those subgraphs' (upload and download links; unsubscribe links; payment providers' webhooks; report
    // downloads).
    for (name, key) in [
        ("media", "media_url"),
        ("notifications", "notifications_url"),
        ("billing", "billing_url"),
        ("analytics", "analytics_url"),
    ] {
        if let Some(url) = options
            .subgraph_urls
            .get(name)
            .and_then(|urls| urls.first())
        {
            let base = url.trim_end_matches("/graphql");
            merge(
                &mut config,
                yaml(&format!(
                    "plugins: {{parley: {{config: {{{key}: {base:?}}}}}}}"
                ))?,
            );
        }
    }
    if !options.rate_limits {
        // Benchmarks play thousands of clients from one address: no per-caller limits or caps.
        merge(
            &mut config,
            yaml(
                "plugins: {parley: {config: {rate_limit: {enabled: false}, \
                 long_lived_clients: {per_address: 1000000000, per_user: 1000000000}}}}",
            )?,
        );
    }
    if !options.trusted_proxies.is_empty() {
        let mut plugin = Mapping::new();
        plugin.insert(
            "trusted_proxies".into(),
            Value::Sequence(
                options
                    .trusted_proxies
                    .iter()
                    .map(|p| p.as_str().into())
                    .collect(),
            ),
        );
        let mut config_map = Mapping::new();
        config_map.insert("config".into(), Value::Mapping(plugin));
        let mut parley = Mapping::new();
        parley.insert("parley".into(), Value::Mapping(config_map));
        let mut plugins = Mapping::new();
        plugins.insert("plugins".into(), Value::Mapping(parley));
        merge(&mut config, Value::Mapping(plugins));
    }
    if !options.cors_origins.is_empty() {
        let origins = serde_json::to_string(&options.cors_origins)
            .map_err(|e| RouterError::Config(e.to_string()))?;
        merge(
            &mut config,
            yaml(&format!(
                "cors: {{enabled: true, allow_credentials: false, methods: [GET, POST], max_age: 600, \
                 expose_headers: [x-request-id], policies: [{{origins: {origins}}}]}}"
            ))?,
        );
        merge(
            &mut config,
            yaml(&format!(
                "plugins: {{parley: {{config: {{cors_origins: {origins}}}}}}}"
            ))?,
        );
    }
    if options.live_sharing {
        // The front reaches the engine on loopback, with a secret that marks its requests as its own.
        let host = match options.host.as_str() {
            "0.0.0.0" | "localhost" => "127.0.0.1".to_string(),
            "::" | "[::]" => "[::1]".to_string(),
            host if host.contains(':') && !host.starts_with('[') => format!("[{host}]"),
            host => host.to_string(),
        };
        let engine_url = format!("http://{host}:{}/graphql", options.port);
        let secret = live_front_secret();
        merge(
            &mut config,
            yaml(&format!(
                "plugins: {{parley: {{config: {{live_sharing: {{engine_url: {engine_url:?}, secret: {secret:?}}}}}}}}}"
            ))?,
        );
        if options.live_sharing_websocket {
            // Clients' WebSockets share `/graphql` with HTTP (the engine's default).
            let engine_ws_url = format!("ws://{host}:{}/graphql", options.port);
            merge(
                &mut config,
                yaml(&format!(
                    "plugins: {{parley: {{config: {{live_sharing: {{engine_ws_url: {engine_ws_url:?}}}}}}}}}"
                ))?,
            );
            // Only the front reaches the engine's WebSockets, over one link per worker carrying every client's
            // operations: each names its own headers, and nothing is kept on the link between them.
            merge(
                &mut config,
                yaml("websocket: {headers: {source: operation}}")?,
            );
        }
        // Signed-in viewers share too when the front can reach users and posts with the router key.
        let base = |name: &str| {
            options
                .subgraph_urls
                .get(name)
                .and_then(|urls| urls.first())
                .map(|url| url.trim_end_matches("/graphql").to_string())
        };
        if let (Some(key), Some(users), Some(posts)) =
            (&options.router_key, base("users"), base("posts"))
        {
            merge(
                &mut config,
                yaml(&format!(
                    "plugins: {{parley: {{config: {{live_sharing: {{users_url: {users:?}, posts_url: {posts:?}, \
                     router_key: {key:?}}}}}}}}}"
                ))?,
            );
            // And a chat's members, when the front can ask chat whom each message is for.
            if let Some(chat) = base("chat") {
                merge(
                    &mut config,
                    yaml(&format!(
                        "plugins: {{parley: {{config: {{live_sharing: {{chat_url: {chat:?}}}}}}}}}"
                    ))?,
                );
            }
        }
    }
    if let Some(extra) = &options.extra_config {
        let text = std::fs::read_to_string(extra)
            .map_err(|e| RouterError::Config(format!("{}: {e}", extra.display())))?;
        merge(&mut config, yaml(&text)?);
    }
    Ok(config)
}

/// One upstream WebSocket per subgraph for all subscribers: the engine's pool keys connections by the
/// client headers its dedupe policy names (router dedupe itself stays off), so naming none shares them; the
/// key proves the router to the subgraph and the forwarded claims name each operation's caller.
fn share_subscription_connections(config: &mut Value, key: &str) -> Result<(), RouterError> {
    let rules = config["headers"]["all"]["request"]
        .as_sequence_mut()
        .ok_or_else(|| RouterError::Config("headers.all.request is not a list".into()))?;
    rules.push(yaml(&format!(
        "insert: {{name: {ROUTER_KEY_HEADER}, value: {key:?}}}"
    ))?);
    merge(
        config,
        yaml("traffic_shaping: {router: {dedupe: {enabled: false, headers: none}}}")?,
    );
    if config.get("jwt").is_some() {
        merge(
            config,
            yaml(&format!(
                "jwt: {{forward_claims_to_upstream_extensions: {{enabled: true, field_name: {IDENTITY_EXTENSION}, \
                 include_claims: [sub, roles, sid, exp]}}}}"
            ))?,
        );
    }
    Ok(())
}

/// Names shared with the subgraphs' WebSocket server (`parley_kit::ws`).
use parley_protocol::extensions::IDENTITY as IDENTITY_EXTENSION;
use parley_protocol::headers::ROUTER_KEY as ROUTER_KEY_HEADER;

/// Renders the config and writes it to `<work_dir>/router.config.yaml`; returns the path.
pub fn write(options: &RouterOptions) -> Result<PathBuf, RouterError> {
    let config = render(options)?;
    std::fs::create_dir_all(&options.work_dir)
        .map_err(|e| RouterError::Config(format!("{}: {e}", options.work_dir.display())))?;
    let path = options
        .work_dir
        .join(format!("router-{}.config.yaml", options.port));
    let text = serde_yaml::to_string(&config).map_err(|e| RouterError::Config(e.to_string()))?;
    write_private(&path, &text)
        .map_err(|e| RouterError::Config(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// The config holds secrets (the router key, Redis credentials): only its owner reads it.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // A file left by an earlier run keeps its mode through `open`: set it again.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())
}

fn yaml(text: &str) -> Result<Value, RouterError> {
    serde_yaml::from_str(text).map_err(|e| RouterError::Config(e.to_string()))
}

fn as_map(value: &mut Value) -> Result<&mut Mapping, RouterError> {
    value
        .as_mapping_mut()
        .ok_or_else(|| RouterError::Config("config is not a mapping".into()))
}

fn absolute(path: &Path) -> Result<String, RouterError> {
    let path = std::path::absolute(path)
        .map_err(|e| RouterError::Config(format!("{}: {e}", path.display())))?;
    if !path.is_file() {
        return Err(RouterError::Config(format!(
            "no supergraph at {}",
            path.display()
        )));
    }
    Ok(path.display().to_string())
}

/// Deep-merges `over` into `base`: mappings merge key by key, anything else is replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_deep() {
        let mut base = yaml("a: {b: 1, c: 2}\nd: [1]").expect("yaml");
        merge(&mut base, yaml("a: {c: 3}\nd: [2]").expect("yaml"));
        assert_eq!(base, yaml("a: {b: 1, c: 3}\nd: [2]").expect("yaml"));
    }

    #[test]
    fn renders_overrides_and_jwt() {
        let dir = std::env::temp_dir().join(format!("parley-router-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let supergraph = dir.join("s.graphql");
        std::fs::write(&supergraph, "schema { query: Query }").expect("write");
        let options = RouterOptions {
            supergraph,
            host: "127.0.0.1".into(),
            port: 4999,
            subgraph_urls: [(
                "users".to_string(),
                vec!["http://127.0.0.1:1/graphql".to_string()],
            )]
            .into(),
            jwks_url: Some("http://127.0.0.1:1/.well-known/jwks.json".into()),
            introspection: false,
            persisted_documents: None,
            redis_url: Some("redis://127.0.0.1:1".into()),
            router_key: Some("k3y".into()),
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            live_sharing: true,
            live_sharing_websocket: false,
            rate_limits: true,
            extra_config: None,
            work_dir: dir,
        };
        let config = render(&options).expect("config");
        assert_eq!(
            config["plugins"]["parley"]["config"]["rate_limit"]["redis_url"],
            Value::from("redis://127.0.0.1:1")
        );
        assert_eq!(
            config["override_subgraph_urls"]["subgraphs"]["users"]["url"],
            Value::from("http://127.0.0.1:1/graphql")
        );
        assert_eq!(config["jwt"]["allowed_algorithms"][0], Value::from("EdDSA"));
        assert_eq!(config["introspection"], Value::Bool(false));
        assert!(config.get("query_planner").is_none(), "plans stay private");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = write(&options).expect("written");
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "only the owner reads the router key");
        }
        assert_eq!(
            config["headers"]["all"]["request"][1]["insert"]["value"],
            Value::from("k3y")
        );
        assert_eq!(
            config["traffic_shaping"]["router"]["dedupe"]["headers"],
            Value::from("none")
        );
        assert_eq!(
            config["jwt"]["forward_claims_to_upstream_extensions"]["field_name"],
            Value::from(IDENTITY_EXTENSION)
        );
    }
}
