//! Idempotency keys for the money mutations. The first call with a key claims it (a row without a
//! response) and runs; its answer is stored with the key. A later call with the same key and the same
//! arguments gets that answer — and one arriving while the first still runs waits for it (in this process
//! on the key's lock, across instances by polling the row) — so a retried or doubled request never pays
//! twice. The same key with other arguments is a `CONFLICT`. Keys are per user and kept 24 hours.
//!
//! A claim left without an answer (the process died mid-call) is not run again: the payment it started is
//! the reconciliation's to resolve, and the key answers with the user's subscription as it then stands
//! (after a 5 s wait while the claim is young, at once once it is a minute old).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{conflict, invalid, BillingError, Result};
use crate::store::idempotency;

/// The longest key accepted (Stripe's limit).
pub const MAX_KEY_LEN: usize = 255;
/// How long a call waits for another call with its key before answering from the store: under the
/// router's 10 s subgraph timeout, so the waiting client gets an answer rather than a timeout.
const WAIT: Duration = Duration::from_secs(5);

/// Checks a key: 1–255 visible ASCII characters.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(format!(
            "idempotencyKey: 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(())
}

/// The stored answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Answer {
    /// The subscription the call returned.
    Ok(Uuid),
    /// A refusal decided by the call (not a passing fault): `CONFLICT`, `BAD_USER_INPUT`, ….
    Refused { code: String, message: String },
}

/// One key's lock.
type KeyLock = Arc<tokio::sync::Mutex<()>>;

/// In-process locks, one per (user, key) while in use.
#[derive(Default, Clone)]
pub struct Keys {
    locks: Arc<Mutex<HashMap<(Uuid, String), KeyLock>>>,
}

impl Keys {
    fn lock_of(&self, user: Uuid, key: &str) -> KeyLock {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Drop locks nobody holds (only the map refers to them) so the map stays small.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry((user, key.to_string())).or_default().clone()
    }
}

/// A fingerprint of an operation and its arguments.
pub fn fingerprint(operation: &str, args: &[&str]) -> String {
    let mut hash = Sha256::new();
    hash.update(operation.as_bytes());
    for arg in args {
        hash.update([0]);
        hash.update(arg.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// Runs `call` once per (user, key): see the module docs. `current` answers a claim its first caller never
/// finished.
pub async fn once<F, Fut, C, CFut>(
    db: &DatabaseConnection,
    keys: &Keys,
    user: Uuid,
    key: &str,
    operation: &str,
    fingerprint: String,
    call: F,
    current: C,
) -> Result<Uuid>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Uuid>>,
    C: FnOnce() -> CFut,
    CFut: std::future::Future<Output = Result<Uuid>>,
{
    let lock = keys.lock_of(user, key);
    let _held = lock.lock().await;
    let claim = idempotency::ActiveModel {
        user_id: Set(user),
        key: Set(key.to_string()),
        operation: Set(operation.to_string()),
        fingerprint: Set(fingerprint.clone()),
        response: Set(None),
        created_at: Set(Utc::now()),
    };
    let claimed = idempotency::Entity::insert(claim)
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    let claimed = matches!(claimed, sea_orm::TryInsertResult::Inserted(n) if n > 0);
    if !claimed {
        let started = std::time::Instant::now();
        loop {
            let row = idempotency::Entity::find_by_id((user, key.to_string()))
                .one(db)
                .await?
                .ok_or_else(|| BillingError::Store("idempotency key vanished".into()))?;
            if row.fingerprint != fingerprint {
                return Err(conflict(
                    "idempotencyKey: already used with other arguments",
                ));
            }
            if let Some(answer) = row.response.as_deref() {
                return replay(answer);
            }
            let abandoned = Utc::now() - row.created_at > chrono::Duration::seconds(60);
            if abandoned || started.elapsed() > WAIT {
                // Its first caller is gone (or slow): answer with the state its work left so far; a
                // claim a minute old is abandoned, and that answer becomes the key's.
                let answer = current().await;
                if abandoned {
                    store(db, user, key, &answer).await?;
                }
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let answer = call().await;
    match &answer {
        // A passing fault is not an answer: free the key so a retry runs again.
        Err(BillingError::Store(_)) => {
            idempotency::Entity::delete_by_id((user, key.to_string()))
                .exec(db)
                .await?;
        }
        _ => store(db, user, key, &answer).await?,
    }
    answer
}

async fn store(
    db: &DatabaseConnection,
    user: Uuid,
    key: &str,
    answer: &Result<Uuid>,
) -> Result<()> {
    let stored = match answer {
        Ok(id) => Answer::Ok(*id),
        Err(e) => Answer::Refused {
            code: parley_kit::CodedError::code(e).as_str().to_string(),
            message: e.to_string(),
        },
    };
    let text = serde_json::to_string(&stored).map_err(|e| BillingError::Store(e.to_string()))?;
    idempotency::Entity::update_many()
        .col_expr(
            idempotency::Column::Response,
            sea_orm::sea_query::Expr::value(text),
        )
        .filter(idempotency::Column::UserId.eq(user))
        .filter(idempotency::Column::Key.eq(key))
        .exec(db)
        .await?;
    Ok(())
}

fn replay(text: &str) -> Result<Uuid> {
    match serde_json::from_str::<Answer>(text) {
        Ok(Answer::Ok(id)) => Ok(id),
        Ok(Answer::Refused { code, message }) => Err(match code.as_str() {
            "BAD_USER_INPUT" => BillingError::Invalid(message),
            "NOT_FOUND" => BillingError::NotFound(message),
            "FORBIDDEN" => BillingError::Forbidden(message),
            "SUBGRAPH_UNAVAILABLE" => BillingError::ProviderUnavailable,
            _ => BillingError::Conflict(message),
        }),
        Err(e) => Err(BillingError::Store(e.to_string())),
    }
}

/// Forgets keys older than 24 hours.
pub async fn prune(db: &DatabaseConnection) -> Result<u64> {
    let cutoff = Utc::now() - chrono::Duration::hours(24);
    Ok(idempotency::Entity::delete_many()
        .filter(idempotency::Column::CreatedAt.lt(cutoff))
        .exec(db)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_and_fingerprints_separate_arguments() {
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(256)).is_err());
        assert!(check_key("two words").is_err());
        assert!(check_key("order-123_ABC").is_ok());
        assert_ne!(
            fingerprint("subscribe", &["ab", "c"]),
            fingerprint("subscribe", &["a", "bc"])
        );
    }
}
