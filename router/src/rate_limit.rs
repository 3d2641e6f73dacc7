//! Rate limits kept in Redis, so they hold across router instances: each caller (the user of a verified
//! token, else the client IP) may run so many operations of each class (query, mutation, subscription) per
//! window (opened by the caller's first operation). One Lua round trip counts and reads the window's remaining time; over the limit the operation is
//! refused with `RATE_LIMITED` and `extensions.retryAfter` (seconds). When Redis cannot be reached the router
//! lets requests through (and logs): limits protect the platform, they must not take it down.

use std::time::Duration;

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
}

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
        }))
    }

    fn limit(&self, class: OperationClass) -> u64 {
        match class {
            OperationClass::Query => self.config.query,
            OperationClass::Mutation => self.config.mutation,
            OperationClass::Subscription => self.config.subscription,
        }
    }

    /// Counts an operation of `class` by `subject`.
    pub async fn check(&self, subject: &str, class: OperationClass) -> Result<(), Limited> {
        // The window opens with the caller's first operation (the key's TTL), so no boundary lets a burst
        // of twice the limit through.
        let window_ms = self.config.window_secs.max(1) * 1000;
        let key = format!("parley:rl:{}:{subject}", class.name());
        let counted = async {
            let conn = self
                .conn
                .get_or_try_init(|| async {
                    let config = redis::aio::ConnectionManagerConfig::new()
                        .set_response_timeout(Some(Duration::from_millis(500)))
                        .set_connection_timeout(Some(Duration::from_secs(1)))
                        .set_number_of_retries(1);
                    ConnectionManager::new_with_config(self.client.clone(), config).await
                })
                .await?;
            let (count, ttl_ms): (u64, i64) = redis::Script::new(COUNT)
                .key(&key)
                .arg(window_ms)
                .invoke_async(&mut conn.clone())
                .await?;
            Ok::<_, redis::RedisError>((count, ttl_ms))
        };
        match counted.await {
            Ok((count, ttl_ms)) if count > self.limit(class) => Err(Limited {
                retry_after_secs: (ttl_ms.max(0) as u64).div_ceil(1000).max(1),
            }),
            Ok(_) => Ok(()),
            Err(err) => {
                tracing::warn!(error = %err, "rate limits unavailable (Redis); letting the request through");
                Ok(())
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
    fn users_are_counted_by_subject_and_others_by_address() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"u1"}"#);
        let token = format!("Bearer h.{payload}.s");
        assert_eq!(subject(Some(&token), Some("10.0.0.1")), "user:u1");
        assert_eq!(subject(None, Some("10.0.0.1")), "ip:10.0.0.1");
        assert_eq!(subject(Some("Bearer junk"), None), "ip:unknown");
    }
}
