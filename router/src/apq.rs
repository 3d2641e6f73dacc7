//! Automatic persisted queries (the protocol Apollo clients speak): a client first sends only
//! `extensions.persistedQuery.sha256Hash`; on `PERSISTED_QUERY_NOT_FOUND` it sends the query with the hash,
//! which the router checks and remembers; from then on the hash alone stands for the query. Saves upload
//! bytes on every request of a mobile client.
//!
//! The cache is bounded (oldest entries go first) and lives in this router process; a router restart or
//! another router only costs clients one extra round trip.

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

pub struct ApqCache {
    capacity: usize,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_hash: HashMap<String, Arc<str>>,
    order: VecDeque<String>,
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
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::default(),
        }
    }

    /// Fills in `params.query` from its persisted-query hash, or remembers the query sent with one.
    /// Requests without `extensions.persistedQuery` are left alone.
    pub fn resolve(&self, params: &mut GraphQLParams) -> Result<(), ApqError> {
        let Some(persisted) = params
            .extensions
            .as_ref()
            .and_then(|ext| ext.get("persistedQuery"))
        else {
            return Ok(());
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
                self.insert(hash, query);
                Ok(())
            }
            None => {
                let query = self.get(&hash).ok_or(ApqError::NotFound)?;
                params.query = Some(query.to_string());
                Ok(())
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn get(&self, hash: &str) -> Option<Arc<str>> {
        self.lock().by_hash.get(hash).cloned()
    }

    fn insert(&self, hash: String, query: &str) {
        let mut entries = self.lock();
        if entries.by_hash.contains_key(&hash) {
            return;
        }
        while entries.order.len() >= self.capacity {
            if let Some(oldest) = entries.order.pop_front() {
                entries.by_hash.remove(&oldest);
            }
        }
        entries.order.push_back(hash.clone());
        entries.by_hash.insert(hash, Arc::from(query));
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

    #[test]
    fn miss_then_register_then_hit() {
        let cache = ApqCache::new(2);
        let query = "{ __typename }";
        let hash = sha256_hex(query);
        assert_eq!(
            cache.resolve(&mut params(None, &hash)),
            Err(ApqError::NotFound)
        );
        assert_eq!(cache.resolve(&mut params(Some(query), &hash)), Ok(()));
        let mut hit = params(None, &hash);
        assert_eq!(cache.resolve(&mut hit), Ok(()));
        assert_eq!(hit.query.as_deref(), Some(query));
        assert_eq!(
            cache.resolve(&mut params(Some("{ me { id } }"), &hash)),
            Err(ApqError::HashMismatch)
        );
    }

    #[test]
    fn oldest_entries_leave_first() {
        let cache = ApqCache::new(2);
        for q in ["{ a }", "{ b }", "{ c }"] {
            cache
                .resolve(&mut params(Some(q), &sha256_hex(q)))
                .expect("register");
        }
        assert_eq!(
            cache.resolve(&mut params(None, &sha256_hex("{ a }"))),
            Err(ApqError::NotFound)
        );
        assert_eq!(
            cache.resolve(&mut params(None, &sha256_hex("{ c }"))),
            Ok(())
        );
    }

    #[test]
    fn known_sha256() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
