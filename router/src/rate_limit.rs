//! Rate limits: each caller (the user of a verified token, else the client IP) may run so many root fields
//! of each class (query, mutation, subscription) per window (opened by the caller's first operation); an
//! operation counts one per root field, so aliases do not multiply a budget. Over the limit the operation is
//! refused with `RATE_LIMITED` and `extensions.retryAfter` (seconds).
//!
//! Where the counters live: in this process by default (`parley up`), and in Redis when `redis_url` is set,
//! so they hold across router instances (one Lua round trip counts and reads the window's remaining time).
//! When Redis cannot be reached the router counts in process instead, and asks Redis again a few seconds
//! later: the limits never turn off, and a Redis outage costs no request a timeout after the first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use redis::aio::ConnectionManager;
use serde::Deserialize;
use tokio::sync::OnceCell;

/// Per-window limits by operation class; kept in Redis when `redis_url` is set, else in process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Off only for benchmarks that play thousands of clients from one address.
    pub enabled: bool,
    pub redis_url: Option<String>,
    pub window_secs: u64,
    pub query: u64,
    pub mutation: u64,
    pub subscription: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
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
    redis: Option<Shared>,
    /// The counters of this process: all of them without Redis, the fallback while it is unreachable.
    local: Mutex<HashMap<String, Window>>,
}

/// The Redis side: the client, the connection and what this router last heard.
struct Shared {
    client: redis::Client,
    /// Connected on first use (the engine's runtime is not running yet when the plugin is built).
    conn: OnceCell<ConnectionManager>,
    /// What this router last heard from Redis per counter (plus what it let through since).
    known: Arc<Mutex<HashMap<String, Known>>>,
    /// After a failure Redis is not asked again before this (counting is local meanwhile).
    down_until: Arc<Mutex<Option<Instant>>>,
}

/// How long Redis is left alone after it failed.
const RETRY_REDIS_AFTER: Duration = Duration::from_secs(5);

/// An in-process counter's window.
struct Window {
    count: u64,
    until: Instant,
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
    /// `None` when the limits are turned off.
    pub fn new(config: RateLimitConfig) -> Result<Option<Self>, redis::RedisError> {
        if !config.enabled {
            return Ok(None);
        }
        let redis = match &config.redis_url {
            Some(url) => Some(Shared {
                client: redis::Client::open(url.as_str())?,
                conn: OnceCell::new(),
                known: Arc::default(),
                down_until: Arc::default(),
            }),
            None => None,
        };
        Ok(Some(Self {
            config,
            redis,
            local: Mutex::default(),
        }))
    }

    fn limit(&self, class: OperationClass) -> u64 {
        match class {
            OperationClass::Query => self.config.query,
            OperationClass::Mutation => self.config.mutation,
            OperationClass::Subscription => self.config.subscription,
        }
    }

    /// Counts `weight` root fields of `class` by `subject`: in Redis when it is configured and reachable
    /// ([`Self::check_shared`]), else in this process.
    pub async fn check(
        &self,
        subject: &str,
        class: OperationClass,
        weight: u64,
    ) -> Result<(), Limited> {
        let key = format!("parley:rl:{}:{subject}", class.name());
        let limit = self.limit(class);
        if let Some(counter) = self.counter().await {
            match self.check_shared(counter, key.clone(), limit, weight).await {
                Some(verdict) => return verdict,
                None => self.mark_redis_down(),
            }
        }
        self.check_local(&key, limit, weight)
    }

    /// Counts in this process: a window per key, opened by its first operation. The map is bounded: when
    /// full, expired windows go, then (under a flood of addresses) a tenth of the rest.
    fn check_local(&self, key: &str, limit: u64, weight: u64) -> Result<(), Limited> {
        let now = Instant::now();
        let window = Duration::from_secs(self.config.window_secs.max(1));
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if local.len() >= KNOWN_MAX && !local.contains_key(key) {
            local.retain(|_, w| w.until > now);
            if local.len() >= KNOWN_MAX {
                let drop: Vec<String> = local.keys().take(KNOWN_MAX / 10).cloned().collect();
                for key in drop {
                    local.remove(&key);
                }
            }
        }
        let entry = local.entry(key.to_string()).or_insert(Window {
            count: 0,
            until: now + window,
        });
        if entry.until <= now {
            *entry = Window {
                count: 0,
                until: now + window,
            };
        }
        entry.count = entry.count.saturating_add(weight);
        if entry.count > limit {
            return Err(Limited {
                retry_after_secs: entry.until.saturating_duration_since(now).as_secs().max(1),
            });
        }
        Ok(())
    }

    fn mark_redis_down(&self) {
        if let Some(shared) = &self.redis {
            *shared.down_until.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(Instant::now() + RETRY_REDIS_AFTER);
        }
    }

    /// Counts in Redis; `None` when Redis did not answer. Far below the limit (under 80 % by what this
    /// router last heard plus what it let through since) the operation proceeds at once and is counted in
    /// Redis with the others let through here, in one round trip per counter every [`FLUSH_EVERY`] (sooner
    /// once they reach 1/[`FLUSH_SHARE`] of the limit). Near the limit, or for a caller not seen in this
    /// window, the operation waits for Redis's answer. So a limit is exact where it matters and costs no
    /// round trip elsewhere; a burst through other routers can overshoot it by what they have not yet
    /// flushed.
    async fn check_shared(
        &self,
        counter: Counter,
        key: String,
        limit: u64,
        weight: u64,
    ) -> Option<Result<(), Limited>> {
        if let Some(flush) = self.take_locally(&key, limit, weight) {
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
            return Some(Ok(()));
        }
        let by = weight + counter.take_pending(&key);
        let (count, ttl_ms) = counter.count(&key, by).await?;
        Some(if count > limit {
            Err(Limited {
                retry_after_secs: (ttl_ms.max(0) as u64).div_ceil(1000).max(1),
            })
        } else {
            Ok(())
        })
    }

    /// Lets the operation through without waiting when this counter is known and far from `limit`, and
    /// says when to tell Redis; `None` when the operation must wait for Redis.
    fn take_locally(&self, key: &str, limit: u64, weight: u64) -> Option<Flush> {
        let shared = self.redis.as_ref()?;
        let mut known = shared.known.lock().unwrap_or_else(|p| p.into_inner());
        let k = known.get_mut(key)?;
        if k.until <= Instant::now() || (k.count + weight) * 5 >= limit * 4 {
            return None;
        }
        k.count += weight;
        k.pending += weight;
        Some(if k.pending > limit / FLUSH_SHARE {
            Flush::Now
        } else if k.pending == 1 {
            Flush::Later
        } else {
            Flush::Scheduled
        })
    }

    /// What counting in Redis needs, detached from `self` so it can run in the background (connects on
    /// first use); `None` without Redis, or while it is left alone after a failure.
    async fn counter(&self) -> Option<Counter> {
        let shared = self.redis.as_ref()?;
        let down = *shared.down_until.lock().unwrap_or_else(|p| p.into_inner());
        if down.is_some_and(|until| until > Instant::now()) {
            return None;
        }
        let conn = shared
            .conn
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_response_timeout(Some(Duration::from_millis(500)))
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(shared.client.clone(), config).await
            })
            .await;
        match conn {
            Ok(conn) => Some(Counter {
                conn: conn.clone(),
                known: shared.known.clone(),
                window_ms: self.config.window_secs.max(1) * 1000,
            }),
            Err(err) => {
                tracing::warn!(error = %err, "rate limits: Redis unreachable; counting in this process");
                self.mark_redis_down();
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
                tracing::warn!(error = %err, "rate limits: Redis unreachable; counting in this process");
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
    unverified_claims(authorization)?["sub"]
        .as_str()
        .map(str::to_string)
}

/// The claims of `authorization`'s bearer token, read without checking its signature: for a token already
/// verified (or where a forged one costs only its bearer).
pub fn unverified_claims(authorization: &str) -> Option<serde_json::Value> {
    let token = authorization
        .strip_prefix("Bearer ")
        .unwrap_or(authorization);
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
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
            .redis
            .as_ref()
            .expect("redis")
            .known
            .lock()
            .expect("lock")
            .insert(key.into(), known);
    }

    #[test]
    fn only_counters_far_below_the_limit_skip_the_round_trip() {
        let limiter = limiter();
        // Unknown: wait for Redis.
        assert_eq!(limiter.take_locally("k", 10, 1), None);
        know(&limiter, "k", 1, Instant::now() + Duration::from_secs(60));
        // 2 to 7 of 10 stay under 80 %; the 8th would not (and neither does anything after it).
        for _ in 2..=7 {
            assert!(limiter.take_locally("k", 10, 1).is_some());
        }
        assert_eq!(limiter.take_locally("k", 10, 1), None);
        // An expired window is asked about again.
        know(&limiter, "old", 0, Instant::now() - Duration::from_secs(1));
        assert_eq!(limiter.take_locally("old", 10, 1), None);
    }

    #[test]
    fn local_counts_go_to_redis_in_batches_that_small_limits_do_not_wait_for() {
        let limiter = limiter();
        let until = Instant::now() + Duration::from_secs(60);
        // A limit under 50: each operation is counted in Redis at once.
        know(&limiter, "small", 1, until);
        assert_eq!(limiter.take_locally("small", 10, 1), Some(Flush::Now));
        assert_eq!(limiter.take_locally("small", 10, 1), Some(Flush::Now));
        // A limit of 1,000: the first waits for the next flush, the next ones join it, the 21st (over 1/50
        // of the limit) flushes at once.
        know(&limiter, "big", 1, until);
        assert_eq!(limiter.take_locally("big", 1000, 1), Some(Flush::Later));
        for _ in 2..=20 {
            assert_eq!(limiter.take_locally("big", 1000, 1), Some(Flush::Scheduled));
        }
        assert_eq!(limiter.take_locally("big", 1000, 1), Some(Flush::Now));
        let known = limiter
            .redis
            .as_ref()
            .expect("redis")
            .known
            .lock()
            .expect("lock");
        assert_eq!((known["big"].count, known["big"].pending), (22, 21));
    }

    #[test]
    fn in_process_counters_weigh_root_fields_and_reopen_their_window() {
        let limiter = RateLimiter::new(RateLimitConfig {
            window_secs: 1,
            query: 5,
            ..Default::default()
        })
        .expect("client")
        .expect("limiter");
        assert!(limiter.check_local("k", 5, 3).is_ok());
        assert!(limiter.check_local("k", 5, 2).is_ok());
        let limited = limiter.check_local("k", 5, 1).expect_err("sixth field");
        assert_eq!(limited.retry_after_secs, 1);
        assert!(limiter.check_local("other", 5, 1).is_ok());
        std::thread::sleep(Duration::from_millis(1100));
        assert!(limiter.check_local("k", 5, 5).is_ok());
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
