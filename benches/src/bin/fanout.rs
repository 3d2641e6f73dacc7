//! Live-comment fan-out: `--ws` graphql-transport-ws and `--sse` SSE subscribers to `commentAdded` on one post
//! through the router (the WebSocket ones also to `postScoreChanged`); then either `--rounds` comments, one
//! at a time — for each, the time from sending the mutation to the moment the last subscriber got it — or,
//! with `--seconds`, a sustained load of `--comments-per-sec` comments and `--votes-per-sec` votes, sent at
//! the rate whatever their latency (the viral post of issue 23). Prints p50/p99 of publish → delivery,
//! deliveries missing, votes made and score events delivered, and with `--pids` those processes' CPU (per
//! comment delivery, and per delivery of either kind) and resident memory.

use std::time::{Duration, Instant};

use clap::Parser;
use futures::{SinkExt, StreamExt};
use parley_bench::Samples;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:4000/graphql")]
    url: String,
    #[arg(long, default_value_t = 500)]
    ws: usize,
    #[arg(long, default_value_t = 500)]
    sse: usize,
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Sustained mode: publish for this many seconds instead of rounds.
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    #[arg(long, default_value_t = 5)]
    comments_per_sec: u64,
    #[arg(long, default_value_t = 50)]
    votes_per_sec: u64,
    /// WebSocket viewers sign in as this many seeded users (`user0`…), in turn; 0: anonymous.
    #[arg(long, default_value_t = 0)]
    ws_users: usize,
    /// `name=pid` pairs whose resident memory is printed at the end (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pids: Vec<String>,
}

const SUBSCRIPTION: &str =
    "subscription($p: ID!) { commentAdded(postId: $p) { id author { nickname } } }";
const SCORES: &str = "subscription($p: ID!) { postScoreChanged(postId: $p) { id score } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.url.starts_with("http://127.") || args.url.starts_with("http://localhost"),
        "loopback only"
    );
    let http = reqwest::Client::new();
    let token = login(&http, &args.url, 0).await?;
    let viewer_tokens: Vec<String> = futures::stream::iter(0..args.ws_users)
        .map(|n| {
            let (http, url) = (http.clone(), args.url.clone());
            async move { login(&http, &url, n).await }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let post: Value = gql(
        &http,
        &args.url,
        &token,
        "mutation { createPost(input: { title: \"Fan-out\", body: \"b\" }) { id } }",
        json!({}),
    )
    .await?;
    let post_id = post["data"]["createPost"]["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("{post}"))?
        .to_string();

    // Every delivery is reported as (comment id, instant); score events are counted.
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Instant)>();
    let scores = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let ws_url = args.url.replacen("http", "ws", 1);
    for n in 0..args.ws {
        let init = match viewer_tokens.get(n % viewer_tokens.len().max(1)) {
            Some(token) => json!({ "Authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        let mut request = ws_url.as_str().into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        socket
            .send(
                json!({ "type": "connection_init", "payload": init })
                    .to_string()
                    .into(),
            )
            .await?;
        socket
            .send(json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION, "variables": { "p": post_id } } }).to_string().into())
            .await?;
        if args.seconds > 0 {
            socket
                .send(json!({ "id": "2", "type": "subscribe", "payload": { "query": SCORES, "variables": { "p": post_id } } }).to_string().into())
                .await?;
        }
        let (tx, scores) = (tx.clone(), scores.clone());
        tokio::spawn(async move {
            while let Some(Ok(msg)) = socket.next().await {
                let Ok(text) = msg.to_text() else { continue };
                let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                match v["type"].as_str() {
                    Some("next") => {
                        if let Some(id) = v["payload"]["data"]["commentAdded"]["id"].as_str() {
                            let _ = tx.send((id.to_string(), Instant::now()));
                        } else if v["payload"]["data"]["postScoreChanged"].is_object() {
                            scores.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    Some("ping") => {
                        let _ = socket
                            .send(json!({ "type": "pong" }).to_string().into())
                            .await;
                    }
                    _ => {}
                }
            }
        });
    }
    for _ in 0..args.sse {
        let mut response = http
            .post(&args.url)
            .header("accept", "text/event-stream")
            .json(&json!({ "query": SUBSCRIPTION, "variables": { "p": post_id } }))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "SSE subscription refused: {}",
            response.status()
        );
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    for data in frame.lines().filter_map(|l| l.strip_prefix("data:")) {
                        let v: Value = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
                        if let Some(id) = v["data"]["commentAdded"]["id"].as_str() {
                            let _ = tx.send((id.to_string(), Instant::now()));
                        }
                    }
                }
            }
        });
    }
    let subscribers = args.ws + args.sse;
    // Let every subscription reach the subgraph.
    tokio::time::sleep(Duration::from_secs(3)).await;
    if args.seconds > 0 {
        return sustained(&args, &http, &token, &post_id, rx, &scores, subscribers).await;
    }

    let mut last_delivery = Samples::default();
    let mut each_delivery = Samples::default();
    let mut missing = 0;
    for round in 0..args.rounds {
        let sent = Instant::now();
        let body = gql(
            &http,
            &args.url,
            &token,
            "mutation($p: ID!, $b: String!) { createComment(postId: $p, body: $b) { id } }",
            json!({ "p": post_id, "b": format!("round {round}") }),
        )
        .await?;
        let id = body["data"]["createComment"]["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("{body}"))?
            .to_string();
        let mut got = 0;
        let deadline = sent + Duration::from_secs(10);
        let mut last = sent;
        while got < subscribers {
            let Ok(Some((cid, at))) = tokio::time::timeout_at(deadline.into(), rx.recv()).await
            else {
                break;
            };
            if cid == id {
                got += 1;
                each_delivery.push(at - sent);
                last = last.max(at);
            }
        }
        missing += subscribers - got;
        last_delivery.push(last - sent);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("fan-out to {subscribers} subscribers ({} ws, {} sse), {} comments, {missing} deliveries missing", args.ws, args.sse, args.rounds);
    println!("  publish→last delivery: {}", last_delivery.summary());
    println!("  publish→each delivery: {}", each_delivery.summary());
    print_rss(&args.pids);
    Ok(())
}

/// `--seconds` of comments and votes at fixed rates; every delivery matched to its comment afterwards (a
/// delivery may come before the mutation's answer).
async fn sustained(
    args: &Args,
    http: &reqwest::Client,
    token: &str,
    post_id: &str,
    mut rx: mpsc::UnboundedReceiver<(String, Instant)>,
    scores: &std::sync::atomic::AtomicU64,
    subscribers: usize,
) -> anyhow::Result<()> {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let collector = tokio::spawn(async move {
        let mut seen: std::collections::HashMap<String, Vec<Instant>> = Default::default();
        loop {
            tokio::select! {
                delivery = rx.recv() => match delivery {
                    Some((id, at)) => seen.entry(id).or_default().push(at),
                    None => break,
                },
                _ = &mut stopped => break,
            }
        }
        seen
    });
    let voter = {
        let (http, url, token, post) = (
            http.clone(),
            args.url.clone(),
            token.to_string(),
            post_id.to_string(),
        );
        let (rate, seconds) = (args.votes_per_sec, args.seconds);
        tokio::spawn(async move {
            // Votes go out at the rate whatever their latency (up to 64 in flight): one at a time, a loaded
            // router held them to about 12 a second.
            let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
            let made = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut value = 1;
            while rate > 0 && Instant::now() < end {
                tick.tick().await;
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                let (http, url, token, post, made) = (
                    http.clone(),
                    url.clone(),
                    token.clone(),
                    post.clone(),
                    made.clone(),
                );
                // One voter alternating up and down: every vote applied in order changes the score.
                tokio::spawn(async move {
                    let voted = gql(
                        &http,
                        &url,
                        &token,
                        "mutation($t: ID!, $v: Int!) { vote(targetId: $t, value: $v) { __typename } }",
                        json!({ "t": post, "v": value }),
                    )
                    .await;
                    if voted.is_ok_and(|body| body["data"]["vote"].is_object()) {
                        made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    drop(permit);
                });
                value = -value;
            }
            let _ = in_flight.acquire_many(64).await;
            made.load(std::sync::atomic::Ordering::Relaxed)
        })
    };
    let cpu_before: Vec<f64> = args.pids.iter().map(|pair| cpu_secs(pair)).collect();
    let scores_before = scores.load(std::sync::atomic::Ordering::Relaxed);
    let mut sent = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_micros(
        1_000_000 / args.comments_per_sec.max(1),
    ));
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let mut n = 0;
    while Instant::now() < end {
        tick.tick().await;
        let at = Instant::now();
        let body = gql(
            http,
            &args.url,
            token,
            "mutation($p: ID!, $b: String!) { createComment(postId: $p, body: $b) { id } }",
            json!({ "p": post_id, "b": format!("comment {n}") }),
        )
        .await?;
        let id = body["data"]["createComment"]["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("{body}"))?
            .to_string();
        sent.insert(id, at);
        n += 1;
    }
    let votes = voter.await?;
    // Late deliveries count for 5 s more.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = stop.send(());
    let seen = collector.await?;
    let cpu_after: Vec<f64> = args.pids.iter().map(|pair| cpu_secs(pair)).collect();
    let score_deliveries = scores.load(std::sync::atomic::Ordering::Relaxed) - scores_before;
    let mut each = Samples::default();
    let mut missing = 0;
    for (id, at) in &sent {
        let deliveries = seen.get(id).map_or(&[][..], |v| v.as_slice());
        missing += subscribers.saturating_sub(deliveries.len());
        for delivered in deliveries {
            each.push(delivered.saturating_duration_since(*at));
        }
    }
    println!(
        "sustained {} s: {} comments/s + {} votes/s to {subscribers} subscribers ({} ws, {} sse): {} comments, {missing} deliveries missing",
        args.seconds, args.comments_per_sec, args.votes_per_sec, args.ws, args.sse, sent.len()
    );
    let deliveries = each.len().max(1) as f64;
    let all = deliveries + score_deliveries as f64;
    println!("  publish→each delivery: {}", each.summary());
    println!("  votes made: {votes}, score deliveries: {score_deliveries}");
    for ((pair, before), after) in args.pids.iter().zip(cpu_before).zip(cpu_after) {
        let name = pair.split_once('=').map_or(pair.as_str(), |(name, _)| name);
        // The CPU of votes and their score events is in the total: per comment delivery charges it all to
        // the comments; per delivery spreads it over every event delivered.
        println!(
            "  {name} CPU: {:.1} s, {:.1} µs per comment delivery, {:.1} µs per delivery (comments and scores)",
            after - before,
            (after - before) * 1e6 / deliveries,
            (after - before) * 1e6 / all
        );
    }
    print_rss(&args.pids);
    Ok(())
}

/// CPU seconds (user + system) the `name=pid` process used so far, from /proc (0 when unreadable).
fn cpu_secs(pair: &str) -> f64 {
    let Some(pid) = pair
        .split_once('=')
        .and_then(|(_, pid)| pid.parse::<u32>().ok())
    else {
        return 0.0;
    };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th of the line.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Clock ticks are 100 a second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn print_rss(pids: &[String]) {
    for pair in pids {
        if let Some((name, pid)) = pair.split_once('=') {
            if let Ok(pid) = pid.parse() {
                println!("  {name} RSS: {:.0} MB", parley_bench::rss_mb(pid));
            }
        }
    }
}

async fn login(http: &reqwest::Client, url: &str, n: usize) -> anyhow::Result<String> {
    let body: Value = http
        .post(url)
        .json(&json!({
            "query": "mutation($e: String!) { login(email: $e, password: \"bench password 1\") { accessToken } }",
            "variables": { "e": format!("user{n}@bench.local") },
        }))
        .send()
        .await?
        .json()
        .await?;
    Ok(body["data"]["login"]["accessToken"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("login: {body}"))?
        .to_string())
}

async fn gql(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    Ok(http
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?)
}
