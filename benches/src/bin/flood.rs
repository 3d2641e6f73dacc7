//! `flood`: one exhaustion attempt against a running platform for a fixed time, printing the resident memory
//! of the processes named with `--pid` every `--every` seconds — the figures that show a bounded edge stays
//! flat. Kinds:
//!
//! - `apq`: automatic persisted queries, each a new valid query sent with its hash (every one would be
//!   remembered by an unbounded cache);
//! - `login`: failed logins with random emails from ever new addresses (`x-forwarded-for`, believed when the
//!   platform trusts loopback as its proxy): two new keys each for an unbounded limiter;
//! - `subscribe`: WebSockets opened, subscribed (10 subscriptions each) and dropped without a word, over and
//!   over, a few hundred open at any time.
//!
//! Run it with the platform's per-caller limits off (`PARLEY_NO_RATE_LIMITS`), or the router refuses the
//! flood before it reaches what it is meant to fill.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use futures::{SinkExt, StreamExt};
use parley_bench::rss_mb;
use serde_json::json;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    Apq,
    Login,
    Subscribe,
}

#[derive(Parser)]
struct Args {
    /// The router's base URL (`http://127.0.0.1:4000`).
    #[arg(long)]
    router: String,
    #[arg(long, value_enum)]
    kind: Kind,
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Processes to watch: `name=pid` (repeatable).
    #[arg(long = "pid", value_name = "NAME=PID")]
    pids: Vec<String>,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 60)]
    every: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let watched: Vec<(String, u32)> = args
        .pids
        .iter()
        .map(|p| {
            let (name, pid) = p.split_once('=').context("--pid NAME=PID")?;
            Ok((name.to_string(), pid.parse()?))
        })
        .collect::<anyhow::Result<_>>()?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    // Subscriptions need something to watch that exists: a post of a user of the flood's own.
    let post = match args.kind {
        Kind::Subscribe => watched_post(&http, &args.router).await?,
        _ => String::new(),
    };
    let mut workers = Vec::new();
    for worker in 0..args.concurrency {
        let (http, router, kind, post) =
            (http.clone(), args.router.clone(), args.kind, post.clone());
        workers.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while Instant::now() < deadline {
                let ok = match kind {
                    Kind::Apq => apq(&http, &router, worker, sent).await,
                    Kind::Login => login(&http, &router, worker, sent).await,
                    Kind::Subscribe => subscribe(&router, &post).await,
                };
                sent += u64::from(ok);
            }
            sent
        }));
    }
    println!(
        "flood {:?} for {} s, {} clients",
        args.kind, args.seconds, args.concurrency
    );
    let started = Instant::now();
    loop {
        let line: Vec<String> = watched
            .iter()
            .map(|(name, pid)| format!("{name} {:.1} MB", rss_mb(*pid)))
            .collect();
        println!(
            "  {:>4} s: {}",
            started.elapsed().as_secs(),
            line.join(", ")
        );
        if Instant::now() >= deadline {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_secs(args.every))).await;
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap_or(0);
    }
    println!(
        "  {total} requests in {} s ({:.0}/s)",
        args.seconds,
        total as f64 / args.seconds.max(1) as f64
    );
    Ok(())
}

/// One new, valid query registered with its hash (a few hundred bytes of aliases each).
async fn apq(http: &reqwest::Client, router: &str, worker: usize, n: u64) -> bool {
    let fields: Vec<String> = (0..20)
        .map(|i| format!("f{worker}x{n}x{i}: __typename"))
        .collect();
    let query = format!("{{ {} }}", fields.join(" "));
    let hash: String = Sha256::digest(query.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let body = json!({
        "query": query,
        "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } },
    });
    http.post(format!("{router}/graphql"))
        .json(&body)
        .send()
        .await
        .is_ok()
}

/// One failed login for an email never seen before.
async fn login(http: &reqwest::Client, router: &str, worker: usize, n: u64) -> bool {
    let body = json!({
        "query": "mutation($e: String!) { login(email: $e, password: \"not the password\") { accessToken } }",
        "variables": { "e": format!("flood-{worker}-{n}-{}@example.com", uuid::Uuid::now_v7().simple()) },
    });
    // From an address never seen before either (the platform trusts loopback as its proxy).
    let address = format!("10.{}.{}.{}", worker % 250, (n / 250) % 250, n % 250);
    http.post(format!("{router}/graphql"))
        .header("x-forwarded-for", address)
        .json(&body)
        .send()
        .await
        .is_ok()
}

/// Registers a user and posts once; the post's id.
async fn watched_post(http: &reqwest::Client, router: &str) -> anyhow::Result<String> {
    let nickname = format!("flood{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let registered: serde_json::Value = http
        .post(format!("{router}/graphql"))
        .json(&json!({
            "query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
            "variables": { "i": {
                "email": format!("{nickname}@example.com"), "password": "correct horse 1",
                "name": "Flood", "nickname": nickname,
            } },
        }))
        .send()
        .await?
        .json()
        .await?;
    let token = registered["data"]["register"]["accessToken"]
        .as_str()
        .context("register")?;
    let posted: serde_json::Value = http
        .post(format!("{router}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": "mutation { createPost(input: { title: \"watched\", body: \"b\" }) { id } }" }))
        .send()
        .await?
        .json()
        .await?;
    Ok(posted["data"]["createPost"]["id"]
        .as_str()
        .context("createPost")?
        .to_string())
}

/// A WebSocket with ten anonymous subscriptions to `post`, held a moment and dropped without `complete`.
async fn subscribe(router: &str, post: &str) -> bool {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{router}/graphql").replacen("http", "ws", 1);
    let Ok(mut request) = url.into_client_request() else {
        return false;
    };
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return false;
    };
    let _ = socket
        .send(
            json!({ "type": "connection_init", "payload": {} })
                .to_string()
                .into(),
        )
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
    for i in 0..10 {
        let subscribe = json!({
            "id": i.to_string(),
            "type": "subscribe",
            "payload": {
                "query": "subscription($p: ID!) { commentAdded(postId: $p) { id } }",
                "variables": { "p": post },
            },
        });
        let _ = socket.send(subscribe.to_string().into()).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(socket);
    true
}
