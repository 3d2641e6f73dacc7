//! Fixed-concurrency load of one GraphQL operation through the router; prints RPS and latency percentiles.
//! Each response is checked (HTTP 200, no `errors`, `data` present); failures are counted, not timed.
//!
//! `load --url http://127.0.0.1:4000/graphql --query '{ posts(sort: HOT, first: 25) { … } }' --concurrency 16`
//! With `--login N`, logs in as `user0`…`user{N-1}` (the seeder's accounts) and spreads requests over them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use parley_bench::Samples;
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:4000/graphql")]
    url: String,
    #[arg(long)]
    query: String,
    /// A label for the printed line.
    #[arg(long, default_value = "query")]
    label: String,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds of measured load (after the warm-up).
    #[arg(long, default_value_t = 20)]
    duration: u64,
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Log in as this many seeded users and send their tokens.
    #[arg(long, default_value_t = 0)]
    login: usize,
    /// Where to log in (default: `--url`); lets the load target one subgraph directly.
    #[arg(long)]
    login_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.url.starts_with("http://127.") || args.url.starts_with("http://localhost"),
        "load only targets loopback"
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let mut tokens = Vec::new();
    for i in 0..args.login {
        let body: Value = http
            .post(args.login_url.as_deref().unwrap_or(&args.url))
            .json(&json!({ "query": "mutation($e: String!) { login(email: $e, password: \"bench password 1\") { accessToken } }", "variables": { "e": format!("user{i}@bench.local") } }))
            .send()
            .await?
            .json()
            .await?;
        let token = body["data"]["login"]["accessToken"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("login failed: {body}"))?;
        tokens.push(token.to_string());
    }
    let tokens = Arc::new(tokens);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let (http, url, query) = (http.clone(), args.url.clone(), args.query.clone());
        let (tokens, measuring, stop, errors) = (
            tokens.clone(),
            measuring.clone(),
            stop.clone(),
            errors.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let mut request = http.post(&url).json(&json!({ "query": query }));
                if !tokens.is_empty() {
                    request = request.bearer_auth(&tokens[i % tokens.len()]);
                }
                i += args_stride(w);
                let started = Instant::now();
                let ok = match request.send().await {
                    Ok(response) if response.status().is_success() => response
                        .json::<Value>()
                        .await
                        .is_ok_and(|body| body.get("errors").is_none() && body["data"].is_object()),
                    _ => false,
                };
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        samples.push(started.elapsed());
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            samples
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut all = Samples::default();
    for worker in workers {
        all.extend(worker.await?);
    }
    println!(
        "{}: concurrency {} for {:.0}s: {} ok, {} errors, {:.0} req/s, {}",
        args.label,
        args.concurrency,
        elapsed.as_secs_f64(),
        all.len(),
        errors.load(Ordering::Relaxed),
        all.len() as f64 / elapsed.as_secs_f64(),
        all.summary()
    );
    Ok(())
}

/// Workers walk the token list with different strides so users are spread evenly.
fn args_stride(worker: usize) -> usize {
    worker * 2 + 1
}
