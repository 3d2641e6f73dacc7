//! Automatic persisted queries (the protocol Apollo clients speak): a client first sends only
//! `extensions.persistedQuery.sha256Hash`; on `PERSISTED_QUERY_NOT_FOUND` it sends the query with the hash,
//! which the router checks and remembers; from then on the hash alone stands for the query. Saves upload
//! bytes on every request of a mobile client.
//!
//! A query sent with its hash is remembered only once it has parsed, validated and passed the limits (the
//! plugin registers the [`Pending`] entry from `on_query_plan`), so junk cannot fill the cache. The cache
//! is bounded by entries and by bytes (oldest entries go first) and lives in this router process; a router
//! restart or another router only costs clients one extra round trip.

use parley_protocol::ErrorCode;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use hive_router::executor::response::graphql_error::GraphQLError;
use hive_router::plugins::hooks::on_graphql_params::GraphQLParams;
use hive_router::sonic_rs::JsonValueTrait;
use sha2::{Digest, Sha256};

/// Queries remembered at most.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Bytes of query text remembered at most.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;

pub struct ApqCache {
    capacity: usize,
    max_bytes: usize,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_hash: HashMap<String, Arc<str>>,
    order: VecDeque<String>,
    bytes: usize,
}

/// A query sent with its hash, to remember once it proved runnable ([`ApqCache::register`]).
pub struct Pending {
    hash: String,
    query: Arc<str>,
}

/// Why a persisted-query request cannot run.
#[derive(Debug, PartialEq, Eq)]
pub enum ApqError {
    /// The hash is not known (yet): the client should send the query with it.
    NotFound,
    /// The query sent does not hash to the hash sent.
    HashMismatch,
    /// Only version 1 (SHA-256) exists.
    UnsupportedVersion,
}

impl ApqError {
    pub fn to_graphql(&self) -> GraphQLError {
        match self {
            // Apollo clients look for this message or code before retrying with the query.
            ApqError::NotFound => GraphQLError::from_message_and_code(
                "PersistedQueryNotFound",
                ErrorCode::PersistedQueryNotFound.as_str(),
            ),
            ApqError::HashMismatch => GraphQLError::from_message_and_code(
                "persistedQuery.sha256Hash is not the SHA-256 of the query sent",
                ErrorCode::BadRequest.as_str(),
            ),
            ApqError::UnsupportedVersion => GraphQLError::from_message_and_code(
                "persistedQuery.version must be 1",
                ErrorCode::BadRequest.as_str(),
            ),
        }
    }
}

impl ApqCache {
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            max_bytes,
            inner: Mutex::default(),
        }
    }

    /// Fills in `params.query` from its persisted-query hash, or checks the query sent with one and
    /// returns it as [`Pending`], to register once it proved runnable. Requests without
    /// `extensions.persistedQuery` are left alone.
    pub fn resolve(&self, params: &mut GraphQLParams) -> Result<Option<Pending>, ApqError> {
        let Some(persisted) = params
            .extensions
            .as_ref()
            .and_then(|ext| ext.get("persistedQuery"))
        else {
            return Ok(None);
        };
        if persisted.get("version").and_then(|v| v.as_u64()) != Some(1) {
            return Err(ApqError::UnsupportedVersion);
        }
        let Some(hash) = persisted
            .get("sha256Hash")
            .and_then(|h| h.as_str())
            .map(str::to_ascii_lowercase)
        else {
            return Err(ApqError::HashMismatch);
        };
        match &params.query {
            Some(query) => {
                if sha256_hex(query) != hash {
                    return Err(ApqError::HashMismatch);
                }
                let pending =
                    (!self.contains(&hash) && query.len() <= self.max_bytes).then(|| Pending {
                        hash,
                        query: Arc::from(query.as_str()),
                    });
                Ok(pending)
            }
            None => {
                let query = self.get(&hash).ok_or(ApqError::NotFound)?;
                params.query = Some(query.to_string());
                Ok(None)
            }
        }
    }

    /// Remembers a query that parsed, validated and passed the limits.
    pub fn register(&self, pending: &Pending) {
        self.insert(pending.hash.clone(), pending.query.clone());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn get(&self, hash: &str) -> Option<Arc<str>> {
        self.lock().by_hash.get(hash).cloned()
    }

    fn contains(&self, hash: &str) -> bool {
        self.lock().by_hash.contains_key(hash)
    }

    fn insert(&self, hash: String, query: Arc<str>) {
        let mut entries = self.lock();
        if entries.by_hash.contains_key(&hash) {
            return;
        }
        while entries.order.len() >= self.capacity
            || (!entries.order.is_empty() && entries.bytes + query.len() > self.max_bytes)
        {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            if let Some(gone) = entries.by_hash.remove(&oldest) {
                entries.bytes -= gone.len();
            }
        }
        entries.bytes += query.len();
        entries.order.push_back(hash.clone());
        entries.by_hash.insert(hash, query);
    }
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use hive_router::sonic_rs;

    use super::*;

    fn params(query: Option<&str>, hash: &str) -> GraphQLParams {
        let extensions: HashMap<String, sonic_rs::Value> = HashMap::from([(
            "persistedQuery".to_string(),
            sonic_rs::from_str(&format!(r#"{{"version":1,"sha256Hash":"{hash}"}}"#)).expect("json"),
        )]);
        GraphQLParams {
            query: query.map(str::to_string),
            extensions: Some(extensions),
            ..Default::default()
        }
    }

    fn send(cache: &ApqCache, query: &str) {
        let pending = cache
            .resolve(&mut params(Some(query), &sha256_hex(query)))
            .expect("hash matches");
        if let Some(pending) = pending {
            cache.register(&pending);
        }
    }

    fn known(cache: &ApqCache, query: &str) -> bool {
        cache.resolve(&mut params(None, &sha256_hex(query))).is_ok()
    }

    #[test]
    fn miss_then_register_then_hit() {
        let cache = ApqCache::new(2, 1024);
        let query = "{ __typename }";
        let hash = sha256_hex(query);
        assert_eq!(
            cache.resolve(&mut params(None, &hash)).err(),
            Some(ApqError::NotFound)
        );
        // Sent with its hash but not yet run: not remembered.
        let pending = cache
            .resolve(&mut params(Some(query), &hash))
            .expect("ok")
            .expect("pending");
        assert!(!known(&cache, query));
        cache.register(&pending);
        let mut hit = params(None, &hash);
        assert!(cache.resolve(&mut hit).expect("hit").is_none());
        assert_eq!(hit.query.as_deref(), Some(query));
        assert_eq!(
            cache
                .resolve(&mut params(Some("{ me { id } }"), &hash))
                .err(),
            Some(ApqError::HashMismatch)
        );
    }

    #[test]
    fn oldest_entries_leave_first() {
        let cache = ApqCache::new(2, 1024);
        for q in ["{ a }", "{ b }", "{ c }"] {
            send(&cache, q);
        }
        assert!(!known(&cache, "{ a }"));
        assert!(known(&cache, "{ c }"));
    }

    #[test]
    fn bytes_are_bounded() {
        let cache = ApqCache::new(100, 64);
        let big = |c: char| format!("{{ {} }}", c.to_string().repeat(40));
        send(&cache, &big('a'));
        send(&cache, &big('b'));
        assert!(
            !known(&cache, &big('a')),
            "two of 44 bytes do not fit in 64"
        );
        assert!(known(&cache, &big('b')));
        // One larger than the whole budget is never stored.
        send(&cache, &format!("{{ {} }}", "x".repeat(100)));
        assert!(known(&cache, &big('b')));
        assert_eq!(cache.lock().bytes, big('b').len());
    }

    #[test]
    fn known_sha256() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
