//! Chat fan-out through the router: one graphql-transport-ws connection per chat member (every member of
//! the chats `seed --chat-groups G --chat-size S` wrote, up to `--subscribers`), or with `--sse` one SSE
//! request each, subscribed to `messageAdded` of its chat with the author's nickname resolved by the
//! router; then messages sent through the router by members:
//!
//! 1. `--rate` messages/s for `--seconds`, spread over the chats: publish-to-delivery p50/p99 of every delivery;
//! 2. as fast as `--senders` concurrent senders go for `--seconds`: messages/s sent and deliveries/s.
//!
//! Tokens are minted with the users subgraph's stored signing key (read from `<data-dir>/users.db`), as the
//! users subgraph would after a login, so 10,000 logins are not what is measured. Prints the router's and the
//! chat subgraph's resident memory (now and peak), and the CPU time the router, chat and the load generator
//! itself spent in the fixed-rate phase (per delivery: on one machine, what p99 is made of). Loopback only;
//! every phase is bounded in time.
//!
//! `target/release/chatload --url http://127.0.0.1:4790/graphql --data-dir target/bench/chat`
//! (`--postgres` reads PostgreSQL instead; `--send-url` sends through another router than the subscribers use.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use clap::Parser;
use futures::{SinkExt, StreamExt};
use parley_bench::Samples;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:4000/graphql")]
    url: String,
    /// The data dir `parley up` runs on (SQLite): the signing key and the seeded chats are read from it.
    #[arg(long, default_value = "data")]
    data_dir: std::path::PathBuf,
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Messages per second in the latency phase.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Length of each phase.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Concurrent senders in the throughput phase.
    #[arg(long, default_value_t = 8)]
    senders: usize,
    /// Base URL of the chat subgraph (for its open-subscription gauge); without it the tool waits 15 s.
    #[arg(long)]
    chat_url: Option<String>,
    /// Read the signing key and chats from PostgreSQL databases `parley_users` / `parley_chat` on this server
    /// (`postgres://user@host:port`) instead of the data dir's SQLite files.
    #[arg(long)]
    postgres: Option<String>,
    /// Send through this router instead of `--url` (subscribers stay on `--url`): live delivery across
    /// routers and instances.
    #[arg(long)]
    send_url: Option<String>,
    /// Length of the max-rate phase (default `--seconds`; 0 skips it).
    #[arg(long)]
    max_rate_seconds: Option<u64>,
    /// Subscribe over SSE (`POST /graphql`, `Accept: text/event-stream`) instead of WebSocket.
    #[arg(long)]
    sse: bool,
    /// The router shares one upstream per chat (issue 23): wait for one subscription per chat in chat,
    /// not one per subscriber.
    #[arg(long)]
    shared: bool,
    /// Open and initialise the connections without subscribing, print the memory and stop: what a connection
    /// costs apart from its subscription.
    #[arg(long)]
    connect_only: bool,
}

impl Args {
    /// The store of subgraph `name`.
    fn database(&self, name: &str) -> String {
        match &self.postgres {
            Some(base) => format!("{}/parley_{name}", base.trim_end_matches('/')),
            None => format!(
                "sqlite://{}?mode=ro",
                self.data_dir.join(format!("{name}.db")).display()
            ),
        }
    }
}

const SUBSCRIPTION: &str =
    "subscription($c: ID!) { messageAdded(chatId: $c) { text author { nickname } } }";
const SEND: &str =
    "mutation($c: ID!, $t: String!) { sendMessage(chatId: $c, input: { text: $t }) { seq } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.url.starts_with("http://127.") || args.url.starts_with("http://localhost"),
        "loopback only"
    );
    let minter = Minter::load(&args.database("users")).await?;
    let members = memberships(&args.database("chat"), args.subscribers).await?;
    let send_url = args.send_url.clone().unwrap_or_else(|| args.url.clone());
    anyhow::ensure!(
        send_url.starts_with("http://127.") || send_url.starts_with("http://localhost"),
        "loopback only"
    );
    let mut by_chat: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (chat, user) in &members {
        by_chat.entry(*chat).or_default().push(*user);
    }
    println!(
        "chatload: {} subscribers in {} chats",
        members.len(),
        by_chat.len()
    );

    // Subscribers: every delivery's latency goes to one channel.
    let (tx, mut rx) = mpsc::unbounded_channel::<Duration>();
    let connecting = Arc::new(Semaphore::new(256));
    let failed = Arc::new(AtomicU64::new(0));
    let joined = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    // One connection per SSE subscriber: the pool never shares a streaming response's.
    let sse_http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    for (chat, user) in &members {
        let token = minter.token(*user)?;
        let (chat, tx) = (*chat, tx.clone());
        let (connecting, failed, joined) = (connecting.clone(), failed.clone(), joined.clone());
        let subscribe = !args.connect_only;
        let (sse, http, url) = (args.sse, sse_http.clone(), args.url.clone());
        tasks.push(tokio::spawn(async move {
            let run = if sse {
                sse_subscriber(&http, &url, &token, chat, tx, connecting, joined).await
            } else {
                subscriber(
                    &ws_url(&url),
                    &token,
                    chat,
                    subscribe,
                    tx,
                    connecting,
                    joined,
                )
                .await
            };
            if let Err(err) = run {
                if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("subscriber failed: {err:#}");
                }
            }
        }));
    }
    drop(tx);
    if args.connect_only {
        // Nothing to count on chat's side: give the connections time to open and initialise.
        while connecting.available_permits() < 256 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        println!(
            "  {} connections without subscriptions in {:.1}s, {} failed",
            members.len(),
            started.elapsed().as_secs_f64(),
            failed.load(Ordering::Relaxed)
        );
        print_rss("connections only");
        return Ok(());
    }
    let upstreams = if args.shared {
        by_chat.len()
    } else {
        members.len()
    };
    wait_subscribed(args.chat_url.as_deref(), upstreams).await;
    if args.sse {
        // Every viewer admitted (the router answered its request), not only the upstreams open.
        let deadline = Instant::now() + Duration::from_secs(120);
        while (joined.load(Ordering::Relaxed) as usize) < members.len() && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    println!(
        "  connected in {:.1}s, {} failed",
        started.elapsed().as_secs_f64(),
        failed.load(Ordering::Relaxed)
    );
    print_rss("after connect");

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.senders.max(4))
        .build()?;
    let chats: Vec<(Uuid, String)> = by_chat
        .iter()
        .map(|(chat, users)| Ok((*chat, minter.token(users[0])?)))
        .collect::<anyhow::Result<_>>()?;
    let subscribers_of: HashMap<Uuid, usize> = by_chat.iter().map(|(c, u)| (*c, u.len())).collect();
    if args.shared && !args.sse {
        // Over WebSocket nothing tells a viewer it joined a shared stream (the join check runs after the
        // upstream opened): a message to every chat every 2 s until each subscriber got one, so the
        // measured phases start with everyone in; those deliveries are not counted.
        let warming = Instant::now();
        let mut rounds = 0;
        while (joined.load(Ordering::Relaxed) as usize) < members.len()
            && warming.elapsed() < Duration::from_secs(120)
        {
            for (chat, token) in &chats {
                send(&http, &send_url, token, *chat).await?;
            }
            rounds += 1;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        drain(&mut rx, usize::MAX, Duration::from_secs(2)).await;
        println!(
            "  {} of {} joined after {rounds} warm-up rounds in {:.1}s",
            joined.load(Ordering::Relaxed),
            members.len(),
            warming.elapsed().as_secs_f64()
        );
    }

    // Phase 1: a fixed rate.
    let mut expected = 0usize;
    let cpu_before = cpu_seconds();
    let phase = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.1));
    let mut sent = 0usize;
    while phase.elapsed() < Duration::from_secs(args.seconds) {
        let (chat, token) = &chats[sent % chats.len()];
        send(&http, &send_url, token, *chat).await?;
        expected += subscribers_of[chat];
        sent += 1;
        let next = phase + interval * sent as u32;
        tokio::time::sleep_until(next.into()).await;
    }
    let mut latency = drain(&mut rx, expected, Duration::from_secs(10)).await;
    println!(
        "  fixed rate {:.0} msg/s: {sent} messages, {}/{expected} deliveries, publish-to-delivery {}",
        args.rate,
        latency.len(),
        latency.summary()
    );
    print_cpu(&cpu_before, latency.len());
    print_rss("after fixed rate");

    // Phase 2: as fast as the senders go.
    let max_rate_seconds = args.max_rate_seconds.unwrap_or(args.seconds);
    if max_rate_seconds == 0 {
        for t in tasks {
            t.abort();
        }
        return Ok(());
    }
    let phase = Instant::now();
    let deadline = phase + Duration::from_secs(max_rate_seconds);
    let chats = Arc::new(chats);
    let counts = Arc::new(AtomicU64::new(0));
    let expected_fast = Arc::new(AtomicU64::new(0));
    let subscribers_of = Arc::new(subscribers_of);
    let mut senders = Vec::new();
    for s in 0..args.senders {
        let (http, url, chats, counts) = (
            http.clone(),
            send_url.clone(),
            chats.clone(),
            counts.clone(),
        );
        let (expected_fast, subscribers_of) = (expected_fast.clone(), subscribers_of.clone());
        senders.push(tokio::spawn(async move {
            let mut i = s;
            while Instant::now() < deadline {
                let (chat, token) = &chats[i % chats.len()];
                if send(&http, &url, token, *chat).await.is_ok() {
                    counts.fetch_add(1, Ordering::Relaxed);
                    expected_fast.fetch_add(subscribers_of[chat] as u64, Ordering::Relaxed);
                }
                i += args.senders;
            }
        }));
    }
    for s in senders {
        s.await?;
    }
    let secs = phase.elapsed().as_secs_f64();
    let n = counts.load(Ordering::Relaxed);
    let expected = expected_fast.load(Ordering::Relaxed) as usize;
    let mut under_load = drain(&mut rx, expected, Duration::from_secs(30)).await;
    let drained = phase.elapsed().as_secs_f64();
    println!(
        "  max rate ({} senders): {:.0} msg/s sent, {}/{expected} deliveries ({:.0}/s until the last), publish-to-delivery {}",
        args.senders,
        n as f64 / secs,
        under_load.len(),
        under_load.len() as f64 / drained,
        under_load.summary()
    );
    print_rss("end");
    for t in tasks {
        t.abort();
    }
    Ok(())
}

fn ws_url(http: &str) -> String {
    http.replacen("http://", "ws://", 1)
}

/// One member's connection: init with the token, subscribe (unless told not to), then report each delivery's latency (the sender
/// put its wall-clock send time in the text).
async fn subscriber(
    url: &str,
    token: &str,
    chat: Uuid,
    subscribe: bool,
    tx: mpsc::UnboundedSender<Duration>,
    connecting: Arc<Semaphore>,
    joined: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let permit = connecting.acquire_owned().await?;
    let mut first = true;
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    // Small buffers: thousands of connections live in this one process.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false).await?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(init.to_string().into()).await?;
    if subscribe {
        let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION, "variables": { "c": chat.to_string() } } });
        socket.send(subscribe.to_string().into()).await?;
    }
    drop(permit);
    while let Some(frame) = socket.next().await {
        let frame = frame?;
        let Ok(text) = frame.to_text() else { continue };
        // The usual frame (a delivery) is read without building a JSON tree: the load generator shares the
        // cores with what it measures.
        match serde_json::from_str::<Frame>(text) {
            Ok(Frame {
                kind: "next",
                payload:
                    Some(Payload {
                        data:
                            Some(Data {
                                message_added: Some(Added { text: Some(sent) }),
                            }),
                    }),
            }) if report(sent, &tx) => {
                if std::mem::take(&mut first) {
                    joined.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            Ok(Frame { kind: "ping", .. }) => {
                socket
                    .send(json!({ "type": "pong" }).to_string().into())
                    .await?;
                continue;
            }
            _ => {}
        }
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        match v["type"].as_str() {
            Some("next") if v["payload"]["errors"].is_array() => {
                anyhow::bail!("subscription error: {v}")
            }
            Some("error") => anyhow::bail!("subscription refused: {v}"),
            _ => {}
        }
    }
    Ok(())
}

/// One member's SSE subscription: each `next` event's latency reported as over WebSocket.
async fn sse_subscriber(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    chat: Uuid,
    tx: mpsc::UnboundedSender<Duration>,
    connecting: Arc<Semaphore>,
    joined: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let permit = connecting.acquire_owned().await?;
    let mut response = http
        .post(url)
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": SUBSCRIPTION, "variables": { "c": chat.to_string() } }))
        .send()
        .await?
        .error_for_status()?;
    joined.fetch_add(1, Ordering::Relaxed);
    drop(permit);
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buffer.drain(..end + 2).collect();
            let frame = String::from_utf8_lossy(&frame);
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            match serde_json::from_str::<Payload>(data) {
                Ok(Payload {
                    data:
                        Some(Data {
                            message_added: Some(Added { text: Some(sent) }),
                        }),
                }) => {
                    report(sent, &tx);
                }
                _ => anyhow::bail!("subscription error: {data}"),
            }
        }
    }
    Ok(())
}

/// The parts of a `next` frame the latency needs (borrowed from the frame's text).
#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow, default)]
    payload: Option<Payload<'a>>,
}

#[derive(serde::Deserialize)]
struct Payload<'a> {
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
}

#[derive(serde::Deserialize)]
struct Data<'a> {
    #[serde(rename = "messageAdded", borrow, default)]
    message_added: Option<Added<'a>>,
}

#[derive(serde::Deserialize)]
struct Added<'a> {
    #[serde(borrow, default)]
    text: Option<&'a str>,
}

/// Reports a delivery's latency when its text is the send time the sender wrote (Unix microseconds).
fn report(sent: &str, tx: &mpsc::UnboundedSender<Duration>) -> bool {
    let Ok(sent) = sent.parse::<u128>() else {
        return false;
    };
    let latency = now_micros().saturating_sub(sent);
    let _ = tx.send(Duration::from_micros(
        u64::try_from(latency).unwrap_or(u64::MAX),
    ));
    true
}

fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros()
}

async fn send(http: &reqwest::Client, url: &str, token: &str, chat: Uuid) -> anyhow::Result<()> {
    let body: Value = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": SEND, "variables": { "c": chat.to_string(), "t": now_micros().to_string() } }))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(body.get("errors").is_none(), "send failed: {body}");
    Ok(())
}

/// Collects delivery latencies until `expected` arrived or `quiet` passed without one.
async fn drain(
    rx: &mut mpsc::UnboundedReceiver<Duration>,
    expected: usize,
    quiet: Duration,
) -> Samples {
    let mut samples = Samples::default();
    while samples.len() < expected {
        match tokio::time::timeout(quiet, rx.recv()).await {
            Ok(Some(d)) => samples.push(d),
            _ => break,
        }
    }
    samples
}

/// Waits until the chat subgraph counts every subscription open (or 15 s without its URL; 120 s at most).
async fn wait_subscribed(chat_url: Option<&str>, n: usize) {
    let Some(base) = chat_url else {
        tokio::time::sleep(Duration::from_secs(15)).await;
        return;
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let open = async {
            let text = http
                .get(format!("{base}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.lines()
                .find(|l| {
                    l.starts_with("parley_live_subscriptions{") && l.contains("subgraph=\"chat\"")
                })?
                .rsplit(' ')
                .next()?
                .parse::<f64>()
                .ok()
        }
        .await;
        if open.is_some_and(|open| open as usize >= n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("  not every subscription opened within 120 s");
}

/// The router's and the chat subgraph's `/proc` directories (found by command line), labelled.
fn platform_processes() -> Vec<(&'static str, std::path::PathBuf)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let path = entry.path();
        let cmdline = std::fs::read(path.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("parley router") {
            found.push(("router", path));
        } else if cmdline.contains("parley subgraph chat") {
            found.push(("chat", path));
        }
    }
    found
}

/// Current and peak resident memory of the router and the chat subgraph.
fn print_rss(when: &str) {
    for (label, path) in platform_processes() {
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        println!(
            "  RSS {when}: {label} {:.1} MB (peak {:.1} MB)",
            field("VmRSS:"),
            field("VmHWM:")
        );
    }
}

/// CPU time (user + system) so far of the router, the chat subgraph and this load generator, in seconds.
fn cpu_seconds() -> Vec<(&'static str, f64)> {
    // The kernel's clock tick, 100 Hz on Linux unless built otherwise.
    const TICKS_PER_SECOND: f64 = 100.0;
    let mut processes = platform_processes();
    processes.push(("chatload", "/proc/self".into()));
    processes
        .into_iter()
        .filter_map(|(label, path)| {
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            // Fields after the command name (which may hold spaces) end with `)`: utime and stime are the
            // 12th and 13th of them.
            let mut after = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
            let user: f64 = after.next()?.parse().ok()?;
            let system: f64 = after.next()?.parse().ok()?;
            Some((label, (user + system) / TICKS_PER_SECOND))
        })
        .collect()
}

/// Each process's CPU time since `before`, in total and per delivery made.
fn print_cpu(before: &[(&'static str, f64)], deliveries: usize) {
    let parts: Vec<String> = cpu_seconds()
        .into_iter()
        .filter_map(|(label, now)| {
            let (_, then) = before.iter().find(|(l, _)| *l == label)?;
            let spent = now - then;
            let per_delivery = spent * 1e6 / deliveries.max(1) as f64;
            Some(format!(
                "{label} {spent:.1} s ({per_delivery:.0} µs/delivery)"
            ))
        })
        .collect();
    println!("  CPU during fixed rate: {}", parts.join(", "));
}

/// Signs access tokens with the users subgraph's newest stored key.
struct Minter {
    kid: String,
    key: jsonwebtoken::EncodingKey,
}

impl Minter {
    async fn load(users_db: &str) -> anyhow::Result<Self> {
        let db = Database::connect(users_db).await?;
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT kid, private_key FROM signing_keys ORDER BY created_at DESC LIMIT 1",
            ))
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!("no signing key yet: start parley up on the data dir first")
            })?;
        let kid: String = row.try_get("", "kid")?;
        let der: String = row.try_get("", "private_key")?;
        let der = base64::engine::general_purpose::STANDARD.decode(der)?;
        Ok(Self {
            kid,
            key: jsonwebtoken::EncodingKey::from_ed_der(&der),
        })
    }

    fn token(&self, user: Uuid) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = parley_kit::auth::Claims {
            sub: user.to_string(),
            roles: vec![parley_kit::Role::User],
            exp: now + 3600,
            iat: now,
            jti: Uuid::now_v7().to_string(),
            iss: parley_kit::auth::ISSUER.to_string(),
            sid: Uuid::now_v7().to_string(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}

/// (chat, member) pairs of the seeded chats, at most `limit`.
async fn memberships(chat_db: &str, limit: usize) -> anyhow::Result<Vec<(Uuid, Uuid)>> {
    let db = Database::connect(chat_db).await?;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT chat_id, user_id FROM chat_members ORDER BY chat_id, user_id LIMIT {limit}"
            ),
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "chat_id")?, r.try_get("", "user_id")?)))
        .collect()
}
