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

/// Counts ARGV[2] operations (opening the window if the counter has none) and answers the count and the
/// window's remaining milliseconds.
const COUNT: &str = r"local n = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end
return {n, ttl}";

/// Operations let through locally are counted in Redis at the latest this long after the first of them...
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// ...or at once when they reach this share of the limit (1/50), so other routers see a busy caller soon.
/// A limit under 50 counts every operation at once.
const FLUSH_SHARE: u64 = 50;

pub struct RateLimiter {
    config: RateLimitConfig,
    client: redis::Client,
    /// Connected on first use (the engine's runtime is not running yet when the plugin is built).
    conn: OnceCell<ConnectionManager>,
    /// What this router last heard from Redis per counter (plus what it let through since).
    known: Arc<Mutex<HashMap<String, Known>>>,
}

/// A counter's value as last seen (plus what this router let through since), and when its window ends.
struct Known {
    count: u64,
    until: Instant,
    /// Let through locally and not yet sent to Redis.
    pending: u64,
}

/// When the operations a router let through locally go to Redis.
#[derive(Debug, PartialEq)]
enum Flush {
    /// A flush is already due.
    Scheduled,
    /// The first since the last flush: count them in [`FLUSH_EVERY`].
    Later,
    /// Enough piled up: count them now.
    Now,
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
    /// heard plus what it let through since) the operation proceeds at once and is counted in Redis with
    /// the others let through here, in one round trip per counter every [`FLUSH_EVERY`] (sooner once they
    /// reach 1/[`FLUSH_SHARE`] of the limit). Near the limit, or for a caller not seen in this window, the
    /// operation waits for Redis's answer. So a limit is exact where it matters and costs no round trip
    /// elsewhere; a burst through other routers can overshoot it by what they have not yet flushed.
    pub async fn check(&self, subject: &str, class: OperationClass) -> Result<(), Limited> {
        let key = format!("parley:rl:{}:{subject}", class.name());
        let limit = self.limit(class);
        let Some(counter) = self.counter().await else {
            return Ok(()); // Redis unreachable: let it through (logged)
        };
        if let Some(flush) = self.take_locally(&key, limit) {
            match flush {
                Flush::Scheduled => {}
                Flush::Later => {
                    tokio::spawn(async move {
                        tokio::time::sleep(FLUSH_EVERY).await;
                        counter.flush(&key).await;
                    });
                }
                Flush::Now => {
                    tokio::spawn(async move { counter.flush(&key).await });
                }
            }
            return Ok(());
        }
        let by = 1 + counter.take_pending(&key);
        match counter.count(&key, by).await {
            Some((count, ttl_ms)) if count > limit => Err(Limited {
                retry_after_secs: (ttl_ms.max(0) as u64).div_ceil(1000).max(1),
            }),
            _ => Ok(()),
        }
    }

    /// Lets the operation through without waiting when this counter is known and far from `limit`, and
    /// says when to tell Redis; `None` when the operation must wait for Redis.
    fn take_locally(&self, key: &str, limit: u64) -> Option<Flush> {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let k = known.get_mut(key)?;
        if k.until <= Instant::now() || (k.count + 1) * 5 >= limit * 4 {
            return None;
        }
        k.count += 1;
        k.pending += 1;
        Some(if k.pending > limit / FLUSH_SHARE {
            Flush::Now
        } else if k.pending == 1 {
            Flush::Later
        } else {
            Flush::Scheduled
        })
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
    /// Takes what this router let through locally and has not sent to Redis yet.
    fn take_pending(&self, key: &str) -> u64 {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known
            .get_mut(key)
            .map(|k| std::mem::take(&mut k.pending))
            .unwrap_or(0)
    }

    /// Sends what is pending for `key` (nothing when an earlier flush or a waiting operation took it).
    async fn flush(self, key: &str) {
        let pending = self.take_pending(key);
        if pending > 0 {
            let _ = self.count(key, pending).await;
        }
    }

    /// Counts `by` operations in Redis and remembers the answer: (count, ms left in the window). `None` when
    /// Redis cannot be reached (the operations are let through).
    async fn count(self, key: &str, by: u64) -> Option<(u64, i64)> {
        // The window opens with the caller's first operation (the key's TTL), so no boundary lets a burst
        // of twice the limit through.
        let mut conn = self.conn;
        let counted: Result<(u64, i64), _> = redis::Script::new(COUNT)
            .key(key)
            .arg(self.window_ms)
            .arg(by)
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
                let entry = known.entry(key.to_string()).or_insert(Known {
                    count,
                    until,
                    pending: 0,
                });
                // Replies can arrive out of order: keep the highest count seen, plus what was let through
                // here while this one was on its way.
                entry.count = entry.count.max(count + entry.pending);
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

    fn limiter() -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            redis_url: Some("redis://127.0.0.1:1".into()),
            ..Default::default()
        })
        .expect("client")
        .expect("limiter")
    }

    fn know(limiter: &RateLimiter, key: &str, count: u64, until: Instant) {
        let known = Known {
            count,
            until,
            pending: 0,
        };
        limiter
            .known
            .lock()
            .expect("lock")
            .insert(key.into(), known);
    }

    #[test]
    fn only_counters_far_below_the_limit_skip_the_round_trip() {
        let limiter = limiter();
        // Unknown: wait for Redis.
        assert_eq!(limiter.take_locally("k", 10), None);
        know(&limiter, "k", 1, Instant::now() + Duration::from_secs(60));
        // 2 to 7 of 10 stay under 80 %; the 8th would not (and neither does anything after it).
        for _ in 2..=7 {
            assert!(limiter.take_locally("k", 10).is_some());
        }
        assert_eq!(limiter.take_locally("k", 10), None);
        // An expired window is asked about again.
        know(&limiter, "old", 0, Instant::now() - Duration::from_secs(1));
        assert_eq!(limiter.take_locally("old", 10), None);
    }

    #[test]
    fn local_counts_go_to_redis_in_batches_that_small_limits_do_not_wait_for() {
        let limiter = limiter();
        let until = Instant::now() + Duration::from_secs(60);
        // A limit under 50: each operation is counted in Redis at once.
        know(&limiter, "small", 1, until);
        assert_eq!(limiter.take_locally("small", 10), Some(Flush::Now));
        assert_eq!(limiter.take_locally("small", 10), Some(Flush::Now));
        // A limit of 1,000: the first waits for the next flush, the next ones join it, the 21st (over 1/50
        // of the limit) flushes at once.
        know(&limiter, "big", 1, until);
        assert_eq!(limiter.take_locally("big", 1000), Some(Flush::Later));
        for _ in 2..=20 {
            assert_eq!(limiter.take_locally("big", 1000), Some(Flush::Scheduled));
        }
        assert_eq!(limiter.take_locally("big", 1000), Some(Flush::Now));
        let known = limiter.known.lock().expect("lock");
        assert_eq!((known["big"].count, known["big"].pending), (22, 21));
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
