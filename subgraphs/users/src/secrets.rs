//! Passwords (argon2id) and opaque tokens (refresh, reset, verification: random, stored as SHA-256).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Result, UsersError};
use crate::keys::hex;

/// Password hashes computed at once, at most: one per core. Each takes 19 MiB and a core for tens of
/// milliseconds, so more at a time only adds memory — without the bound, a flood of concurrent logins held
/// 19 MiB each on the blocking pool (hundreds of MB at 16 at a time, gigabytes at a thousand).
fn hashing() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores.max(2))
    })
}

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes), off the async threads.
pub async fn hash_password(password: String) -> Result<String> {
    let _permit = hashing()
        .acquire()
        .await
        .map_err(|e| UsersError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| UsersError::Internal(format!("hashing: {e}")))
    })
    .await
    .map_err(|e| UsersError::Internal(e.to_string()))?
}

/// The stored "hash" of an account made by signing in with a provider: no password matches it.
pub const NO_PASSWORD: &str = "!";

/// Whether an account can sign in with a password.
pub fn has_password(hash: &str) -> bool {
    hash != NO_PASSWORD
}

/// Checks a password against a stored hash, off the async threads.
pub async fn verify_password(password: String, hash: String) -> Result<bool> {
    if !has_password(&hash) {
        // As long as a wrong password takes.
        Box::pin(dummy_verify(password)).await;
        return Ok(false);
    }
    let _permit = hashing()
        .acquire()
        .await
        .map_err(|e| UsersError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| UsersError::Internal(e.to_string()))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| UsersError::Internal(e.to_string()))?
}

/// A hash that no password matches, compared against when an account does not exist, so a login for an
/// unknown email takes as long as one with a wrong password.
pub async fn dummy_verify(password: String) {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J8JdVnmMSmaEXbdEIcxdDo4vBEQiiF5IbOn4sM8M2zE";
    let _ = verify_password(password, DUMMY.to_string()).await;
}

/// A new random token (256 bits, base64url).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored for a token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}
