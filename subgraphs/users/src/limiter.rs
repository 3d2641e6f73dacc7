//! Failed-login limiter: per account and per client IP, a sliding window of failures. Over the limit, logins
//! for that key are refused with `RATE_LIMITED` until the oldest failure leaves the window. In memory, per
//! instance (the router's Redis-backed limits hold across instances). An unknown client address has no
//! per-IP bucket: sharing one would let anyone lock every anonymous client out. Bounded: at most
//! [`MAX_KEYS`] keys of fixed size, each with at most its limit of timestamps.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys (accounts and addresses) remembered at most; ~150 bytes each, so the limiter stays under ~15 MB
/// whatever a flood of random emails sends.
const MAX_KEYS: usize = 100_000;

pub struct LoginLimiter {
    window: Duration,
    per_account: usize,
    per_ip: usize,
    max_keys: usize,
    /// Keys are stored as keyed hashes: fixed size whatever was sent, and unguessable collisions.
    hasher: RandomState,
    failures: Mutex<HashMap<u64, VecDeque<Instant>>>,
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
            max_keys: MAX_KEYS,
            hasher: RandomState::new(),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when either key is over its limit.
    pub fn check(&self, account: &str, ip: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = 0;
        for (key, limit) in self.keys(account, ip) {
            if let Some(times) = map.get_mut(&key) {
                self.expire(times, now);
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
        for (key, limit) in self.keys(account, ip) {
            if map.len() >= self.max_keys && !map.contains_key(&key) {
                self.make_room(&mut map, now);
            }
            let times = map.entry(key).or_default();
            times.push_back(now);
            // Only the last `limit` failures decide anything.
            while times.len() > limit {
                times.pop_front();
            }
        }
    }

    /// A successful login clears the account's failures (not the IP's).
    pub fn record_success(&self, account: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&self.hash("a", account));
    }

    /// Keys currently remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.failures.lock().map(|m| m.len()).unwrap_or(0)
    }

    fn expire(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
    }

    /// Drops expired keys; if that frees too little, the tenth of keys whose last failure is oldest
    /// (so a flood costs its own oldest entries, and the work is amortised over many failures).
    fn make_room(&self, map: &mut HashMap<u64, VecDeque<Instant>>, now: Instant) {
        map.retain(|_, times| {
            self.expire(times, now);
            !times.is_empty()
        });
        if map.len() < self.max_keys * 9 / 10 {
            return;
        }
        let mut last: Vec<(Instant, u64)> = map
            .iter()
            .filter_map(|(key, times)| times.back().map(|t| (*t, *key)))
            .collect();
        let cut = (self.max_keys / 10).max(1);
        if last.len() > cut {
            last.select_nth_unstable(cut);
        }
        for (_, key) in last.into_iter().take(cut) {
            map.remove(&key);
        }
    }

    fn keys(&self, account: &str, ip: &str) -> Vec<(u64, usize)> {
        let mut keys = vec![(self.hash("a", account), self.per_account)];
        if ip != UNKNOWN_IP {
            keys.push((self.hash("i", ip), self.per_ip));
        }
        keys
    }

    fn hash(&self, kind: &str, value: &str) -> u64 {
        self.hasher.hash_one((kind, value))
    }
}

const UNKNOWN_IP: &str = "unknown";

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
    fn a_flood_of_random_accounts_stays_bounded() {
        let limiter = LoginLimiter {
            max_keys: 1_000,
            ..LoginLimiter::new(Duration::from_secs(60), 5, 1_000_000)
        };
        limiter.record_failure("target@x.io", "unknown");
        for i in 0..20_000 {
            limiter.record_failure(&format!("random{i}@x.io"), "unknown");
            assert!(limiter.len() <= 1_000);
        }
        // Fresh failures are kept: the last account flooded is still counted.
        limiter.record_failure("random19999@x.io", "unknown");
        assert_eq!(
            limiter
                .failures
                .lock()
                .expect("lock")
                .get(&limiter.hash("a", "random19999@x.io"))
                .map(VecDeque::len),
            Some(2)
        );
    }

    #[test]
    fn ip_limit_spans_accounts() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 100, 2);
        limiter.record_failure("a@x.io", "9.9.9.9");
        limiter.record_failure("b@x.io", "9.9.9.9");
        assert!(limiter.check("c@x.io", "9.9.9.9").is_err());
    }
}
