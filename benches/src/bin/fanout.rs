//! Live-comment fan-out: `--ws` graphql-transport-ws and `--sse` SSE subscribers to `commentAdded` on one post
//! through the router; then `--rounds` comments, one at a time. For each, the time from sending the mutation
//! to the moment the last subscriber got it; prints p50/p99 of that and of per-subscriber delivery.

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
}

const SUBSCRIPTION: &str =
    "subscription($p: ID!) { commentAdded(postId: $p) { id author { nickname } } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.url.starts_with("http://127.") || args.url.starts_with("http://localhost"),
        "loopback only"
    );
    let http = reqwest::Client::new();
    let token = login(&http, &args.url).await?;
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

    // Every delivery is reported as (comment id, instant).
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Instant)>();
    let ws_url = args.url.replacen("http", "ws", 1);
    for _ in 0..args.ws {
        let mut request = ws_url.as_str().into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        socket
            .send(
                json!({ "type": "connection_init", "payload": {} })
                    .to_string()
                    .into(),
            )
            .await?;
        socket
            .send(json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION, "variables": { "p": post_id } } }).to_string().into())
            .await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = socket.next().await {
                let Ok(text) = msg.to_text() else { continue };
                let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                match v["type"].as_str() {
                    Some("next") => {
                        if let Some(id) = v["payload"]["data"]["commentAdded"]["id"].as_str() {
                            let _ = tx.send((id.to_string(), Instant::now()));
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
    Ok(())
}

async fn login(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let body: Value = http
        .post(url)
        .json(&json!({ "query": "mutation { login(email: \"user0@bench.local\", password: \"bench password 1\") { accessToken } }" }))
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
