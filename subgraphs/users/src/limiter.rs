//! Failed-login limiter: per account and per client IP, a sliding window of failures. Over the limit, logins
//! for that key are refused with `RATE_LIMITED` until the oldest failure leaves the window. In memory, per
//! instance (the router's Redis-backed limits hold across instances). An unknown client address has no
//! per-IP bucket: sharing one would let anyone lock every anonymous client out.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct LoginLimiter {
    window: Duration,
    per_account: usize,
    per_ip: usize,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new(Duration::from_secs(15 * 60), 5, 50)
    }
}

impl LoginLimiter {
    pub fn new(window: Duration, per_account: usize, per_ip: usize) -> Self {
        Self {
            window,
            per_account,
            per_ip,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when either key is over its limit.
    pub fn check(&self, account: &str, ip: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = 0;
        for (key, limit) in keys(account, ip, self.per_account, self.per_ip) {
            if let Some(times) = map.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    times.pop_front();
                }
                if times.len() >= limit {
                    if let Some(oldest) = times.front() {
                        let left = self.window.saturating_sub(now.duration_since(*oldest));
                        wait = wait.max(left.as_secs().max(1));
                    }
                }
            }
        }
        if wait > 0 {
            Err(wait)
        } else {
            Ok(())
        }
    }

    pub fn record_failure(&self, account: &str, ip: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for (key, _) in keys(account, ip, 0, 0) {
            map.entry(key).or_default().push_back(now);
        }
    }

    /// A successful login clears the account's failures (not the IP's).
    pub fn record_success(&self, account: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&account_key(account));
    }
}

fn keys(account: &str, ip: &str, per_account: usize, per_ip: usize) -> Vec<(String, usize)> {
    let mut keys = vec![(account_key(account), per_account)];
    if ip != UNKNOWN_IP {
        keys.push((format!("i:{ip}"), per_ip));
    }
    keys
}

const UNKNOWN_IP: &str = "unknown";

fn account_key(account: &str) -> String {
    format!("a:{account}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_limit_and_success_clears() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 2, 10);
        assert!(limiter.check("a@x.io", "1.1.1.1").is_ok());
        limiter.record_failure("a@x.io", "1.1.1.1");
        limiter.record_failure("a@x.io", "1.1.1.1");
        assert!(limiter.check("a@x.io", "1.1.1.1").is_err());
        assert!(limiter.check("b@x.io", "1.1.1.1").is_ok());
        limiter.record_success("a@x.io");
        assert!(limiter.check("a@x.io", "1.1.1.1").is_ok());
    }

    #[test]
    fn unknown_ip_has_no_shared_bucket() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 100, 1);
        limiter.record_failure("a@x.io", "unknown");
        assert!(limiter.check("b@x.io", "unknown").is_ok());
    }

    #[test]
    fn ip_limit_spans_accounts() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 100, 2);
        limiter.record_failure("a@x.io", "9.9.9.9");
        limiter.record_failure("b@x.io", "9.9.9.9");
        assert!(limiter.check("c@x.io", "9.9.9.9").is_err());
    }
}
