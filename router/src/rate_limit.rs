//! Rate limits kept in Redis, so they hold across router instances: each caller (the user of a verified
//! token, else the client IP) may run so many operations of each class (query, mutation, subscription) per
//! window (opened by the caller's first operation). One Lua round trip counts and reads the window's remaining time; over the limit the operation is
//! refused with `RATE_LIMITED` and `extensions.retryAfter` (seconds). When Redis cannot be reached the router
//! lets requests through (and logs): limits protect the platform, they must not take it down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use redis::aio::ConnectionManager;
use serde::Deserialize;
use tokio::sync::OnceCell;

/// Per-window limits by operation class; `redis_url` turns them on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub redis_url: Option<String>,
    pub window_secs: u64,
    pub query: u64,
    pub mutation: u64,
    pub subscription: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            window_secs: 60,
            query: 1200,
            mutation: 300,
            subscription: 120,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OperationClass {
    Query,
    Mutation,
    Subscription,
}

impl OperationClass {
    fn name(self) -> &'static str {
        match self {
            OperationClass::Query => "query",
            OperationClass::Mutation => "mutation",
            OperationClass::Subscription => "subscription",
        }
    }
}

/// Counts one operation and answers whether it may run.
const COUNT: &str = r"local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}";

pub struct RateLimiter {
    config: RateLimitConfig,
    client: redis::Client,
    /// Connected on first use (the engine's runtime is not running yet when the plugin is built).
    conn: OnceCell<ConnectionManager>,
    /// What this router last heard from Redis per counter (plus what it let through since).
    known: Arc<Mutex<HashMap<String, Known>>>,
}

/// A counter's value as last seen, and when its window ends.
struct Known {
    count: u64,
    until: Instant,
}

/// Counters this router remembers before it forgets the expired ones.
const KNOWN_MAX: usize = 100_000;

/// Over the limit: retry after this many seconds.
#[derive(Debug, PartialEq)]
pub struct Limited {
    pub retry_after_secs: u64,
}

impl RateLimiter {
    /// `None` when no Redis is configured.
    pub fn new(config: RateLimitConfig) -> Result<Option<Self>, redis::RedisError> {
        let Some(url) = config.redis_url.clone() else {
            return Ok(None);
        };
        Ok(Some(Self {
            client: redis::Client::open(url)?,
            config,
            conn: OnceCell::new(),
            known: Arc::default(),
        }))
    }

    fn limit(&self, class: OperationClass) -> u64 {
        match class {
            OperationClass::Query => self.config.query,
            OperationClass::Mutation => self.config.mutation,
            OperationClass::Subscription => self.config.subscription,
        }
    }

    /// Counts an operation of `class` by `subject`. Far below the limit (under 80 % by what this router last
    /// heard plus what it let through since) the count goes to Redis in the background and the operation
    /// proceeds at once; near it, or for a caller not seen in this window, the operation waits for Redis's
    /// answer. So a limit is exact where it matters and costs no round trip elsewhere; a burst from other
    /// routers can overshoot it by at most what this router has in flight.
    pub async fn check(&self, subject: &str, class: OperationClass) -> Result<(), Limited> {
        let key = format!("parley:rl:{}:{subject}", class.name());
        let limit = self.limit(class);
        let Some(counter) = self.counter().await else {
            return Ok(()); // Redis unreachable: let it through (logged)
        };
        if self.take_locally(&key, limit) {
            tokio::spawn(async move {
                let _ = counter.count(&key).await;
            });
            return Ok(());
        }
        match counter.count(&key).await {
            Some((count, ttl_ms)) if count > limit => Err(Limited {
                retry_after_secs: (ttl_ms.max(0) as u64).div_ceil(1000).max(1),
            }),
            _ => Ok(()),
        }
    }

    /// Lets the operation through without waiting when this counter is known and far from `limit`.
    fn take_locally(&self, key: &str, limit: u64) -> bool {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        match known.get_mut(key) {
            Some(k) if k.until > Instant::now() && (k.count + 1) * 5 < limit * 4 => {
                k.count += 1;
                true
            }
            _ => false,
        }
    }

    /// What counting needs, detached from `self` so it can run in the background (connects on first use).
    async fn counter(&self) -> Option<Counter> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_response_timeout(Some(Duration::from_millis(500)))
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await;
        match conn {
            Ok(conn) => Some(Counter {
                conn: conn.clone(),
                known: self.known.clone(),
                window_ms: self.config.window_secs.max(1) * 1000,
            }),
            Err(err) => {
                tracing::warn!(error = %err, "rate limits unavailable (Redis); letting the request through");
                None
            }
        }
    }
}

struct Counter {
    conn: ConnectionManager,
    known: Arc<Mutex<HashMap<String, Known>>>,
    window_ms: u64,
}

impl Counter {
    /// Counts one operation in Redis and remembers the answer: (count, ms left in the window). `None` when
    /// Redis cannot be reached (the operation is let through).
    async fn count(self, key: &str) -> Option<(u64, i64)> {
        // The window opens with the caller's first operation (the key's TTL), so no boundary lets a burst
        // of twice the limit through.
        let mut conn = self.conn;
        let counted: Result<(u64, i64), _> = redis::Script::new(COUNT)
            .key(key)
            .arg(self.window_ms)
            .invoke_async(&mut conn)
            .await;
        match counted {
            Ok((count, ttl_ms)) => {
                let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
                if known.len() >= KNOWN_MAX {
                    let now = Instant::now();
                    known.retain(|_, k| k.until > now);
                }
                let until = Instant::now() + Duration::from_millis(ttl_ms.max(0) as u64);
                let entry = known
                    .entry(key.to_string())
                    .or_insert(Known { count, until });
                // Replies can arrive out of order: keep the highest count seen.
                entry.count = entry.count.max(count);
                entry.until = until;
                Some((count, ttl_ms))
            }
            Err(err) => {
                tracing::warn!(error = %err, "rate limits unavailable (Redis); letting the request through");
                None
            }
        }
    }
}

/// Who is counted: `user:<sub>` for a verified token (the engine checked its signature; only the payload is
/// read here), else `ip:<client address>`.
pub fn subject(verified_token: Option<&str>, client_ip: Option<&str>) -> String {
    if let Some(sub) = verified_token.and_then(token_subject) {
        return format!("user:{sub}");
    }
    format!("ip:{}", client_ip.unwrap_or("unknown"))
}

fn token_subject(authorization: &str) -> Option<String> {
    let token = authorization
        .strip_prefix("Bearer ")
        .unwrap_or(authorization);
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["sub"].as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_counters_far_below_the_limit_skip_the_round_trip() {
        let limiter = RateLimiter::new(RateLimitConfig {
            redis_url: Some("redis://127.0.0.1:1".into()),
            ..Default::default()
        })
        .expect("client")
        .expect("limiter");
        // Unknown: wait for Redis.
        assert!(!limiter.take_locally("k", 10));
        let until = Instant::now() + Duration::from_secs(60);
        limiter
            .known
            .lock()
            .expect("lock")
            .insert("k".into(), Known { count: 1, until });
        // 2 to 7 of 10 stay under 80 %; the 8th would not (and neither does anything after it).
        for _ in 2..=7 {
            assert!(limiter.take_locally("k", 10));
        }
        assert!(!limiter.take_locally("k", 10));
        // An expired window is asked about again.
        limiter.known.lock().expect("lock").insert(
            "old".into(),
            Known {
                count: 0,
                until: Instant::now() - Duration::from_secs(1),
            },
        );
        assert!(!limiter.take_locally("old", 10));
    }

    #[test]
    fn users_are_counted_by_subject_and_others_by_address() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"u1"}"#);
        let token = format!("Bearer h.{payload}.s");
        assert_eq!(subject(Some(&token), Some("10.0.0.1")), "user:u1");
        assert_eq!(subject(None, Some("10.0.0.1")), "ip:10.0.0.1");
        assert_eq!(subject(Some("Bearer junk"), None), "ip:unknown");
    }
}
