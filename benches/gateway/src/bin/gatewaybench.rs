//! The gateway benchmark, side by side in one run against the same four subgraphs (started in this process):
//!
//! (a) the bare Hive Router engine (`bare-router`, no Parley plugin), and
//! (b) Parley's router (`parley router`) with its production config: JWT verification on (a JWKS served
//!     here, every request signed in), limits and the cost limit on, rate limits in Redis with a high ceiling,
//!     request ids, metrics, introspection off.
//!
//! Each gets a warm-up, then `--concurrency` workers sending [`QUERY`] for `--seconds`; every response is
//! checked (status 200, no `errors`, the expected shape). Prints RPS, p50/p95/p99, errors, peak RSS, the
//! router's CPU time per request (from `/proc`: unlike RPS, not moved by what else the shared cores run) and
//! the ratios (b)/(a); then the router overhead on a one-subgraph query: p50 through each router − p50 direct.
//!
//! `gatewaybench [--seconds 60] [--concurrency 50] [--redis-url redis://…]`; `gatewaybench --compose`
//! rewrites `benches/gateway/supergraph.graphql` (needs node and `compose/node_modules`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;
use parley_bench::Samples;
use parley_gateway_bench::{expected_shape, serve, subgraph, QUERY, SUBGRAPHS};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Runs of (a) then (b) (then (b) then (a), alternating); with more than one, the mean ratio is printed too (the figures on a shared
    /// 2-core machine move by a few per cent from run to run).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Redis for Parley's rate limits (on, with a ceiling no run reaches); without it they are off.
    #[arg(long, env = "PARLEY_TEST_REDIS_URL")]
    redis_url: Option<String>,
    /// Sequential requests of the one-subgraph query per target.
    #[arg(long, default_value_t = 3000)]
    direct_requests: usize,
    /// A YAML merged over Parley's generated config instead of the built-in ceilings (for experiments).
    #[arg(long)]
    parley_config: Option<PathBuf>,
    /// YAML appended to the bare engine's config (keys it does not set yet), e.g. to turn dedupe off in both.
    #[arg(long)]
    bare_extra: Option<PathBuf>,
    /// Give the bare engine the engine config Parley generates (JWT verification, header propagation, the
    /// metrics exporter, limits, timeouts, CSRF), without Parley's plugin: the ratio then prices the plugin
    /// alone instead of the whole production shape.
    #[arg(long)]
    bare_engine_config: bool,
    /// Rewrite the checked-in supergraph and exit.
    #[arg(long)]
    compose: bool,
}

const ONE_SUBGRAPH: &str = "{ topProducts(first: 5) { upc name price } }";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn supergraph_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("supergraph.graphql")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.compose {
        return compose().await;
    }
    let exe_dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow::anyhow!("no exe dir"))?;
    let work = std::env::temp_dir().join(format!("parley-gatewaybench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&work)?;

    // The four subgraphs.
    let mut urls = Vec::new();
    for name in SUBGRAPHS {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        urls.push((name, format!("http://{}/graphql", listener.local_addr()?)));
        tokio::spawn(async move { serve(name, listener).await });
    }
    // A JWKS and a token signed with its key (the users subgraph's role here).
    let (jwks_url, token) = jwks().await?;

    // (a) the bare engine.
    let bare_port = free_port()?;
    let mut overrides = String::new();
    for (name, url) in &urls {
        overrides.push_str(&format!("    {name}:\n      url: {url:?}\n"));
    }
    let bare_config = work.join("bare.yaml");
    let extra = match &args.bare_extra {
        Some(path) => std::fs::read_to_string(path)?,
        None => String::new(),
    };
    let bare_yaml = if args.bare_engine_config {
        let options = parley_router::RouterOptions {
            supergraph: supergraph_path(),
            host: "127.0.0.1".into(),
            port: bare_port,
            subgraph_urls: urls
                .iter()
                .map(|(name, url)| (name.to_string(), vec![url.clone()]))
                .collect(),
            jwks_url: Some(jwks_url.clone()),
            introspection: false,
            persisted_documents: None,
            redis_url: None,
            router_key: None,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            rate_limits: false,
            live_sharing: true,
            live_sharing_websocket: false,
            extra_config: None,
            work_dir: work.join("bare"),
        };
        let mut config = parley_router::config::render(&options)?;
        if let Some(map) = config.as_mapping_mut() {
            map.remove("plugins");
        }
        format!("{}{extra}", serde_yaml::to_string(&config)?)
    } else {
        format!(
            "supergraph:\n  source: file\n  path: {:?}\nhttp:\n  host: 127.0.0.1\n  port: {bare_port}\nlog:\n  level: error\noverride_subgraph_urls:\n  subgraphs:\n{overrides}{extra}",
            supergraph_path()
        )
    };
    std::fs::write(&bare_config, bare_yaml)?;
    let bare = Command::new(exe_dir.join("bare-router"))
        .env("ROUTER_CONFIG_FILE_PATH", &bare_config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;

    // (b) Parley's router, production config.
    let parley_port = free_port()?;
    let ceilings = work.join("ceilings.yaml");
    std::fs::write(
        &ceilings,
        "plugins:\n  parley:\n    config:\n      max_cost: 100000000\n      rate_limit:\n        query: 1000000000\n",
    )?;
    let mut command = Command::new(exe_dir.join("parley"));
    command
        .arg("router")
        .arg("--supergraph")
        .arg(supergraph_path())
        .args(["--port", &parley_port.to_string(), "--jwks-url", &jwks_url])
        .arg("--no-introspection")
        .arg("--config")
        .arg(args.parley_config.as_ref().unwrap_or(&ceilings))
        .arg("--work-dir")
        .arg(work.join("parley-router"));
    if let Some(redis) = &args.redis_url {
        command.args(["--redis-url", redis]);
    }
    for (name, url) in &urls {
        command.args(["--subgraph-url", &format!("{name}={url}")]);
    }
    let parley = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let bare_url = format!("http://127.0.0.1:{bare_port}/graphql");
    let parley_url = format!("http://127.0.0.1:{parley_port}/graphql");
    for url in [&bare_url, &parley_url] {
        wait_answering(&http, url, &token).await?;
    }
    println!(
        "gateway benchmark: concurrency {}, {} s each after a {} s warm-up; rate limits {}",
        args.concurrency,
        args.seconds,
        args.warmup,
        if args.redis_url.is_some() {
            "on (Redis)"
        } else {
            "off (no Redis given)"
        }
    );

    let mut ratios = Vec::new();
    for round in 1..=args.rounds {
        if args.rounds > 1 {
            println!("round {round} of {}", args.rounds);
        }
        // Alternate which router goes first, so a drift of the shared machine over a round (other tenants,
        // frequency, caches) does not always fall on the same one.
        let routers = [
            ("(a) bare Hive Router", &bare_url, &bare),
            ("(b) Parley router", &parley_url, &parley),
        ];
        let order = if round % 2 == 1 { [0, 1] } else { [1, 0] };
        let mut figures = [None, None];
        for i in order {
            let (label, url, child) = routers[i];
            figures[i] = Some(measure(label, &http, url, &token, &args, child).await);
        }
        let [Some(a), Some(b)] = figures else {
            unreachable!("both routers measured")
        };
        let ratio = (
            b.rps / a.rps,
            b.p99.as_secs_f64() / a.p99.as_secs_f64(),
            b.cpu_per_request / a.cpu_per_request,
        );
        println!(
            "ratio (b)/(a): RPS {:.3}, p99 latency {:.3}, router CPU per request {:.3} (≤ 1 is better)",
            ratio.0, ratio.1, ratio.2
        );
        ratios.push(ratio);
    }
    if ratios.len() > 1 {
        let n = ratios.len() as f64;
        println!(
            "mean ratio over {} rounds: RPS {:.3}, p99 latency {:.3}, router CPU per request {:.3}",
            ratios.len(),
            ratios.iter().map(|r| r.0).sum::<f64>() / n,
            ratios.iter().map(|r| r.1).sum::<f64>() / n,
            ratios.iter().map(|r| r.2).sum::<f64>() / n
        );
    }

    // Router overhead on a one-subgraph query, one request at a time.
    let products = &urls
        .iter()
        .find(|(n, _)| *n == "products")
        .ok_or_else(|| anyhow::anyhow!("products"))?
        .1;
    let direct = sequential(&http, products, &token, args.direct_requests).await?;
    let via_bare = sequential(&http, &bare_url, &token, args.direct_requests).await?;
    let via_parley = sequential(&http, &parley_url, &token, args.direct_requests).await?;
    println!(
        "one-subgraph query p50: direct {:.3} ms, via bare {:.3} ms (+{:.3}), via Parley {:.3} ms (+{:.3})",
        ms(direct),
        ms(via_bare),
        ms(via_bare.saturating_sub(direct)),
        ms(via_parley),
        ms(via_parley.saturating_sub(direct)),
    );
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Figures {
    rps: f64,
    p99: Duration,
    /// Router CPU seconds per request.
    cpu_per_request: f64,
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
) -> anyhow::Result<Value> {
    let response = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "status {}",
        response.status()
    );
    Ok(response.json().await?)
}

async fn wait_answering(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        match post(http, url, token, QUERY).await {
            Ok(body) if expected_shape(&body) => return Ok(()),
            Ok(body) if started.elapsed() > Duration::from_secs(30) => {
                anyhow::bail!("{url} answers with the wrong shape: {body}")
            }
            _ if started.elapsed() > Duration::from_secs(30) => {
                anyhow::bail!("{url} not answering")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Warm-up, then the fixed-concurrency run.
async fn measure(
    label: &str,
    http: &reqwest::Client,
    url: &str,
    token: &str,
    args: &Args,
    router: &Child,
) -> Figures {
    let _ = run_load(
        http,
        url,
        token,
        args.concurrency,
        Duration::from_secs(args.warmup),
    )
    .await;
    let cpu_before = cpu_seconds(router);
    let (mut samples, errors, elapsed) = run_load(
        http,
        url,
        token,
        args.concurrency,
        Duration::from_secs(args.seconds),
    )
    .await;
    let rps = samples.len() as f64 / elapsed.as_secs_f64();
    // CPU per answered request: what the router itself spends, unlike RPS not moved by what else the two
    // shared cores run at the time (load generator, subgraphs).
    let cpu_per_request =
        (cpu_seconds(router) - cpu_before) / (samples.len() as f64 + errors as f64).max(1.0);
    let (p50, p95, p99) = (
        samples.percentile(50.0),
        samples.percentile(95.0),
        samples.percentile(99.0),
    );
    println!(
        "{label}: {rps:.0} req/s, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, {errors} errors, peak RSS {:.0} MB, router CPU {:.3} ms/request",
        ms(p50),
        ms(p95),
        ms(p99),
        peak_rss_mb(router),
        cpu_per_request * 1000.0
    );
    Figures {
        rps,
        p99,
        cpu_per_request,
    }
}

async fn run_load(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    concurrency: usize,
    length: Duration,
) -> (Samples, u64, Duration) {
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + length;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, url, token, errors) = (
            http.clone(),
            url.to_string(),
            token.to_string(),
            errors.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                match post(&http, &url, &token, QUERY).await {
                    Ok(body) if expected_shape(&body) => samples.push(sent.elapsed()),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            samples
        }));
    }
    let mut all = Samples::default();
    for worker in workers {
        if let Ok(samples) = worker.await {
            all.extend(samples);
        }
    }
    (all, errors.load(Ordering::Relaxed), started.elapsed())
}

/// p50 of `n` one-at-a-time requests of the one-subgraph query.
async fn sequential(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    n: usize,
) -> anyhow::Result<Duration> {
    let mut samples = Samples::default();
    for i in 0..n + 200 {
        let sent = Instant::now();
        let body = post(http, url, token, ONE_SUBGRAPH).await?;
        anyhow::ensure!(
            body["data"]["topProducts"]
                .as_array()
                .is_some_and(|p| p.len() == 5),
            "unexpected answer from {url}: {body}"
        );
        if i >= 200 {
            samples.push(sent.elapsed()); // the first 200 warm up
        }
    }
    Ok(samples.percentile(50.0))
}

/// User + system CPU seconds the process has used so far (Linux `/proc/<pid>/stat`; 0 elsewhere).
fn cpu_seconds(child: &Child) -> f64 {
    let Some(pid) = child.id() else { return 0.0 };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name (which may hold spaces): utime and stime are 14 and 15.
    let Some(after_name) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn peak_rss_mb(child: &Child) -> f64 {
    let Some(pid) = child.id() else { return 0.0 };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Serves a JWKS with a fresh Ed25519 key; returns its URL and a token signed with it.
async fn jwks() -> anyhow::Result<(String, String)> {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let der = key.to_pkcs8_der()?;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
    let document = json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "bench", "x": x }] });
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/jwks.json", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let document = document.clone();
            async move { axum::Json(document) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let now = chrono::Utc::now().timestamp();
    let claims = parley_kit::auth::Claims {
        sub: uuid::Uuid::now_v7().to_string(),
        roles: vec![parley_kit::Role::User],
        exp: now + 24 * 3600,
        iat: now,
        jti: uuid::Uuid::now_v7().to_string(),
        iss: parley_kit::auth::ISSUER.to_string(),
        sid: uuid::Uuid::now_v7().to_string(),
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("bench".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
    )?;
    Ok((url, token))
}

/// Composes the four subgraphs' SDL with the pinned composer into `supergraph.graphql`.
async fn compose() -> anyhow::Result<()> {
    let specs: Vec<Value> = SUBGRAPHS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let (_, sdl) = subgraph(name).ok_or_else(|| anyhow::anyhow!("{name}"))?;
            Ok(json!({ "name": name, "url": format!("http://127.0.0.1:{}/graphql", 4201 + i), "sdl": sdl }))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut child = Command::new("node")
        .arg("compose.mjs")
        .current_dir(repo_root().join("compose"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("stdin"))?;
        stdin
            .write_all(Value::Array(specs).to_string().as_bytes())
            .await?;
    }
    let output = child.wait_with_output().await?;
    anyhow::ensure!(output.status.success(), "composition failed");
    std::fs::write(supergraph_path(), output.stdout)?;
    println!("wrote {}", supergraph_path().display());
    Ok(())
}
