//! Media figures (issue 18), printed, never asserted:
//! - `process`: a 12-megapixel JPEG made here (4000 × 3000, a textured gradient so it compresses like a
//!   photo) processed in-process on one thread — EXIF stripped, three variants, blurhash — min / median ms
//!   and images/s (variants/s is three times that);
//! - `ready`: the same photo through the router as a client sends it — `createUpload`, the PUT, and
//!   `completeUpload` until READY — ms per photo;
//! - `download`: a file of `--size-mb` uploaded once, then fetched whole through its signed link (router →
//!   media) and from a baseline URL serving the same bytes (nginx, started by `media.sh`), alternating, MB/s
//!   each, with the watched processes' peak resident memory during the downloads.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};
use parley_bench::rss_mb;
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    Process {
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    Ready {
        /// The router's base URL.
        #[arg(long)]
        router: String,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    Download {
        #[arg(long)]
        router: String,
        #[arg(long, default_value_t = 100)]
        size_mb: usize,
        /// Where the uploaded bytes are also written, for the baseline server to serve.
        #[arg(long)]
        file: std::path::PathBuf,
        /// The baseline server's URL of `file`.
        #[arg(long)]
        baseline: String,
        /// The media subgraph's own origin: the same signed link fetched from it, without the router.
        #[arg(long)]
        direct: Option<String>,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Processes to watch: `name=pid` (repeatable).
        #[arg(long = "pid", value_name = "NAME=PID")]
        pids: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().what {
        What::Process { runs } => process(runs),
        What::Ready { router, runs } => ready(&router, runs).await,
        What::Download {
            router,
            size_mb,
            file,
            baseline,
            direct,
            runs,
            pids,
        } => {
            let pids = pids
                .iter()
                .map(|p| {
                    let (name, pid) = p.split_once('=').context("--pid NAME=PID")?;
                    Ok((name.to_string(), pid.parse()?))
                })
                .collect::<anyhow::Result<Vec<(String, u32)>>>()?;
            download(
                &router,
                size_mb,
                &file,
                &baseline,
                direct.as_deref(),
                runs,
                &pids,
            )
            .await
        }
    }
}

/// A 4000 × 3000 JPEG (quality 90) that compresses like a photo: a gradient with pseudo-random grain.
fn photo() -> Vec<u8> {
    let mut seed = 0x2545_f491_u32;
    let image = RgbImage::from_fn(4_000, 3_000, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let grain = (seed % 24) as u8;
        Rgb([
            ((x / 16) % 200) as u8 + grain,
            ((y / 12) % 200) as u8 + grain,
            (((x + y) / 28) % 200) as u8 + grain,
        ])
    });
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&image)
        .expect("jpeg");
    out
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn min_median(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    (millis(times[0]), millis(times[times.len() / 2]))
}

fn process(runs: usize) -> anyhow::Result<()> {
    let bytes = bytes::Bytes::from(photo());
    println!(
        "12 MP JPEG: {:.1} MB; processing in-process, one thread, {runs} runs",
        bytes.len() as f64 / 1e6
    );
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let done = parley_media::processing::process(bytes.clone(), "image/jpeg")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        times.push(started.elapsed());
        assert_eq!(done.variants.len(), 3);
    }
    let (min, median) = min_median(times);
    println!(
        "  process (strip, 3 variants, blurhash): min {min:.0} ms, median {median:.0} ms — {:.2} images/s, {:.2} variants/s",
        1_000.0 / median,
        3_000.0 / median
    );
    Ok(())
}

/// GraphQL through the router; the `data` or an error.
async fn gql(
    http: &reqwest::Client,
    router: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let mut request = http
        .post(format!("{router}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await?.json().await?;
    if body.get("errors").is_some() {
        bail!("{body}");
    }
    Ok(body["data"].clone())
}

/// A fresh account's access token.
async fn account(http: &reqwest::Client, router: &str) -> anyhow::Result<String> {
    let nick = format!("m{}", uuid::Uuid::now_v7().simple());
    let data = gql(
        http,
        router,
        None,
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
        json!({ "i": { "email": format!("{nick}@example.com"), "password": "correct horse 1",
                       "name": "Bench", "nickname": &nick[..20] } }),
    )
    .await?;
    Ok(data["register"]["accessToken"]
        .as_str()
        .context("token")?
        .to_string())
}

/// Uploads `bytes` (as `purpose`), completes it and waits for READY; the media id.
async fn upload(
    http: &reqwest::Client,
    router: &str,
    token: &str,
    name: &str,
    content_type: &str,
    purpose: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<String> {
    let ticket = gql(
        http,
        router,
        Some(token),
        "mutation($i: CreateUploadInput!) { createUpload(input: $i) { uploadUrl media { id } } }",
        json!({ "i": { "fileName": name, "contentType": content_type, "size": bytes.len(), "purpose": purpose } }),
    )
    .await?;
    let id = ticket["createUpload"]["media"]["id"]
        .as_str()
        .context("id")?
        .to_string();
    let url = ticket["createUpload"]["uploadUrl"]
        .as_str()
        .context("url")?;
    let put = http
        .put(url)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await?;
    if !put.status().is_success() {
        bail!("PUT {}", put.status());
    }
    for _ in 0..100 {
        let done = gql(
            http,
            router,
            Some(token),
            "mutation($id: ID!) { completeUpload(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await?;
        if done["completeUpload"]["status"] == "READY" {
            return Ok(id);
        }
    }
    bail!("{id} never became READY")
}

async fn ready(router: &str, runs: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let token = account(&http, router).await?;
    let bytes = photo();
    println!(
        "12 MP JPEG through the router: createUpload, PUT, completeUpload → READY, {runs} runs"
    );
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        upload(
            &http,
            router,
            &token,
            "photo.jpg",
            "image/jpeg",
            "POST",
            bytes.clone(),
        )
        .await?;
        times.push(started.elapsed());
    }
    let (min, median) = min_median(times);
    println!(
        "  upload to READY: min {min:.0} ms, median {median:.0} ms (the PUT of the bytes included)"
    );
    Ok(())
}

/// Fetches `url` whole, counting bytes as they stream; MB/s.
async fn fetch(http: &reqwest::Client, url: &str, expected: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let response = http.get(url).send().await?;
    if !response.status().is_success() {
        bail!("GET {url}: {}", response.status());
    }
    let mut body = response.bytes_stream();
    let mut got = 0;
    while let Some(chunk) = body.next().await {
        got += chunk?.len();
    }
    if got != expected {
        bail!("{url}: {got} bytes of {expected}");
    }
    Ok(expected as f64 / 1e6 / started.elapsed().as_secs_f64())
}

async fn download(
    router: &str,
    size_mb: usize,
    file: &std::path::Path,
    baseline: &str,
    direct: Option<&str>,
    runs: usize,
    pids: &[(String, u32)],
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let token = account(&http, router).await?;
    let size = size_mb * 1_000_000;
    let mut bytes = b"%PDF-1.7\n".to_vec();
    let mut seed = 0x9e37_79b9_u32;
    bytes.extend((bytes.len()..size).map(|_| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as u8
    }));
    std::fs::write(file, &bytes)?;
    let id = upload(
        &http,
        router,
        &token,
        "big.pdf",
        "application/pdf",
        "MESSAGE",
        bytes,
    )
    .await?;
    let url = gql(
        &http,
        router,
        Some(&token),
        "query($id: ID!) { media(id: $id) { url } }",
        json!({ "id": id }),
    )
    .await?["media"]["url"]
        .as_str()
        .context("url")?
        .to_string();
    let before: Vec<f64> = pids.iter().map(|(_, pid)| rss_mb(*pid)).collect();
    // Peak memory while the downloads run.
    let watched: Vec<u32> = pids.iter().map(|(_, pid)| *pid).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(async move {
        let mut peak = vec![0.0f64; watched.len()];
        while !*stopped.borrow() {
            for (i, pid) in watched.iter().enumerate() {
                peak[i] = peak[i].max(rss_mb(*pid));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak
    });
    let direct_url = direct.map(|origin| url.replacen(router, origin, 1));
    let (mut parley, mut nginx, mut media) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        parley.push(fetch(&http, &url, size).await?);
        nginx.push(fetch(&http, baseline, size).await?);
        if let Some(direct) = &direct_url {
            media.push(fetch(&http, direct, size).await?);
        }
    }
    stop.send(true)?;
    let peak = sampler.await?;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ours, theirs) = (median(parley), median(nginx));
    println!("{size_mb} MB download, {runs} runs each, alternating (median):");
    println!("  signed link through the router: {ours:.0} MB/s");
    if !media.is_empty() {
        println!(
            "  the same link from media itself:  {:.0} MB/s",
            median(media)
        );
    }
    println!("  nginx, same file:               {theirs:.0} MB/s");
    println!("  ratio: {:.2}× nginx", ours / theirs);
    for (i, (name, _)) in pids.iter().enumerate() {
        println!(
            "  {name} RSS: {:.1} MB before, peak {:.1} MB during the downloads",
            before[i], peak[i]
        );
    }
    Ok(())
}
