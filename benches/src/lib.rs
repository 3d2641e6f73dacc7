//! parley-bench: benchmarks that print figures (never timed tests).
//!
//! - `seed` (src/bin/seed.rs): fills the users, social, posts, feed and chat stores (SQLite files or PostgreSQL
//!   databases) with a large graph: users, topics, posts, threaded comments, votes, follows and timelines.
//! - `load` (src/bin/load.rs): fixed-concurrency load of one GraphQL query through the router; prints RPS and
//!   latency percentiles.
//! - `fanout` (src/bin/fanout.rs): N WebSocket + SSE subscribers on one post; measures publish-to-last-delivery.
//! - `chatload` (src/bin/chatload.rs): one WebSocket per chat member subscribed to `messageAdded`; fixed-rate
//!   and max-rate phases; publish-to-delivery percentiles and router/chat RSS.
//! - `busload` (src/bin/busload.rs): the Redis Streams bus: outbox → consumer events/s, redelivery after a
//!   consumer dies, live fan-out latency across instances.
//! - `flood` (src/bin/flood.rs): one exhaustion attempt (APQ, failed logins, WebSocket subscriptions) for a
//!   fixed time, printing the watched processes' resident memory; `exhaustion.sh` runs all three.
//! - `mediaload` (src/bin/mediaload.rs): media — a 12-megapixel JPEG processed in-process and to READY through
//!   the router, and a large download through a signed link beside the same file from nginx, with the media
//!   process's resident memory; `media.sh` runs it.
//! - `notifyload` (src/bin/notifyload.rs): notifications — a burst of comment events applied in-process,
//!   comment → `notificationAdded` latency through the router for many connected recipients, digests to an SMTP
//!   server; `notifications.sh` runs it.
//! - `billingload` (src/bin/billingload.rs): billing — `subscribe` latency through the router with the local
//!   provider, the reconciliation of 1,000 payments of unknown outcome, and a fault-injection run (tasks
//!   killed mid-payment) audited for double charges and entitlements without payment; `billing.sh` runs it.
//! - `run.sh`: builds in release, seeds, starts `parley up` and runs the above; `chat.sh` does it for chat.
//!
//! Every target is a loopback address; every loop is bounded in count and time.

use std::time::Duration;

use serde_json::{json, Value};

/// Latency samples and the figures printed from them.
#[derive(Default)]
pub struct Samples {
    values: Vec<Duration>,
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.values.push(d);
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn extend(&mut self, other: Samples) {
        self.values.extend(other.values);
    }

    /// The `p`-th percentile (0–100), nearest rank.
    pub fn percentile(&mut self, p: f64) -> Duration {
        if self.values.is_empty() {
            return Duration::ZERO;
        }
        self.values.sort_unstable();
        let rank = ((p / 100.0) * self.values.len() as f64).ceil() as usize;
        self.values[rank.clamp(1, self.values.len()) - 1]
    }

    /// "p50 1.23 ms  p95 …  p99 …  max …"
    pub fn summary(&mut self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            ms(self.percentile(50.0)),
            ms(self.percentile(95.0)),
            ms(self.percentile(99.0)),
            ms(self.percentile(100.0)),
        )
    }
}

/// Resident memory of `pid` in MB (0 once it is gone).
pub fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A fresh database `<prefix>_<id>` on the PostgreSQL server `server` (`postgres://user@host:port`); its URL.
pub async fn fresh_postgres(server: &str, prefix: &str) -> anyhow::Result<String> {
    use sea_orm::ConnectionTrait;
    let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
    let base = server.trim_end_matches('/');
    sea_orm::Database::connect(format!("{base}/postgres"))
        .await?
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    Ok(format!("{base}/{name}"))
}

/// One GraphQL request through the router; its `data`, or the errors as an error.
pub async fn gql(
    http: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
    token: Option<&str>,
) -> anyhow::Result<Value> {
    let mut request = http
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await?.json().await?;
    if body.get("errors").is_some() {
        anyhow::bail!("{body}");
    }
    Ok(body["data"].clone())
}

/// Registers `nickname` through the router; its access token and id.
pub async fn register(
    http: &reqwest::Client,
    url: &str,
    nickname: &str,
) -> anyhow::Result<(String, String)> {
    let data = gql(
        http,
        url,
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }",
        json!({ "i": { "email": format!("{nickname}@example.com"), "password": "correct horse 1", "name": nickname, "nickname": nickname } }),
        None,
    )
    .await?;
    Ok((
        data["register"]["accessToken"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        data["register"]["user"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut s = Samples::default();
        for ms in 1..=100 {
            s.push(Duration::from_millis(ms));
        }
        assert_eq!(s.percentile(50.0), Duration::from_millis(50));
        assert_eq!(s.percentile(99.0), Duration::from_millis(99));
        assert_eq!(s.percentile(100.0), Duration::from_millis(100));
    }
}
