//! The caller's identity.
//!
//! The users subgraph signs short-lived access JWTs (EdDSA, with a `kid`) and publishes its public keys at
//! `/.well-known/jwks.json`. The router verifies the token at the edge and forwards the `Authorization` header;
//! every subgraph verifies it again here (it trusts nothing it cannot check) and puts an [`Identity`] into the
//! GraphQL context. Keys are cached and re-fetched when a token names an unknown `kid`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::revocation::Revoked;

/// Issuer written into and required from every access token.
pub const ISSUER: &str = "parley";

/// Roles, lowest to highest.
// Stored (users' `role` column) as its lowercase name, a sea-orm `ActiveEnum`: a stored value the code does
// not know fails the read instead of passing for `User`. (A comment, not doc: the doc is the GraphQL
// description.)
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    async_graphql::Enum,
    sea_orm::EnumIter,
    sea_orm::DeriveActiveEnum,
)]
#[serde(rename_all = "lowercase")]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)"
)]
pub enum Role {
    #[sea_orm(string_value = "user")]
    User,
    #[sea_orm(string_value = "moderator")]
    Moderator,
    #[sea_orm(string_value = "admin")]
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "user" => Some(Role::User),
            "moderator" => Some(Role::Moderator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Claims of a Parley access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub roles: Vec<Role>,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub iss: String,
    /// The refresh-token family (session) this token was issued for.
    pub sid: String,
}

/// Who is calling, once the token checked out.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub user_id: Uuid,
    pub roles: Vec<Role>,
    pub session_id: Uuid,
}

impl Identity {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|r| *r >= role)
    }

    /// The identity in claims the router verified at the edge and forwarded (`sub`, `roles`, `sid`, `exp`),
    /// if they are whole and not expired at `now` (with the same 5 s leeway as a token).
    pub fn from_forwarded_claims(claims: &serde_json::Value, now: i64) -> Option<Identity> {
        #[derive(Deserialize)]
        struct Forwarded {
            sub: String,
            roles: Vec<Role>,
            sid: String,
            exp: i64,
        }
        let claims = Forwarded::deserialize(claims).ok()?;
        if claims.exp + LEEWAY_SECS < now {
            return None;
        }
        Some(Identity {
            user_id: Uuid::parse_str(&claims.sub).ok()?,
            roles: claims.roles,
            session_id: Uuid::parse_str(&claims.sid).ok()?,
        })
    }
}

/// Clock skew tolerated on `exp`.
const LEEWAY_SECS: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid or expired access token")]
    InvalidToken,
    #[error("signing keys unavailable")]
    KeysUnavailable,
}

impl AuthError {
    /// The error a client gets: its code, and `reason: TOKEN_REFUSED` for a token that did not pass (so the
    /// router gives it HTTP 401).
    pub fn to_graphql(self) -> async_graphql::Error {
        let refused = matches!(self, AuthError::InvalidToken);
        let error = crate::error::to_graphql(self);
        if refused {
            async_graphql::ErrorExtensions::extend_with(error, |_, ext| {
                ext.set(
                    parley_protocol::extensions::REASON,
                    parley_protocol::extensions::TOKEN_REFUSED,
                )
            })
        } else {
            error
        }
    }
}

impl crate::CodedError for AuthError {
    fn code(&self) -> crate::ErrorCode {
        match self {
            AuthError::InvalidToken => crate::ErrorCode::Unauthenticated,
            AuthError::KeysUnavailable => crate::ErrorCode::Internal,
        }
    }
}

/// Verifies access tokens against a JWKS URL.
pub struct JwtVerifier {
    jwks_url: String,
    http: reqwest::Client,
    keys: RwLock<KeyCache>,
    /// Tokens already verified, until they expire: a client sends the same token with every request, and a
    /// signature check per request per subgraph is the largest CPU cost of an authenticated query.
    verified: std::sync::Mutex<HashMap<String, (Identity, i64)>>,
    /// Sessions signed out before their tokens expire ([`crate::revocation`]).
    revoked: Arc<Revoked>,
}

/// Verified tokens kept at most; the cache is emptied when it is full (tokens live 15 minutes).
const VERIFIED_CAPACITY: usize = 10_000;

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

/// Don't hit the JWKS endpoint more than once per this interval because of unknown `kid`s.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(2);

impl JwtVerifier {
    pub fn new(jwks_url: impl Into<String>) -> Self {
        Self {
            jwks_url: jwks_url.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            keys: RwLock::new(KeyCache::default()),
            verified: std::sync::Mutex::new(HashMap::new()),
            revoked: Arc::default(),
        }
    }

    /// The sessions this verifier refuses.
    pub fn revoked(&self) -> &Arc<Revoked> {
        &self.revoked
    }

    /// Where the users subgraph lists revoked sessions: beside the JWKS it serves.
    pub fn revocations_url(&self) -> String {
        let base = self
            .jwks_url
            .trim_end_matches("/.well-known/jwks.json")
            .trim_end_matches('/');
        format!("{base}{}", crate::revocation::PATH)
    }

    /// `identity` (forwarded by the router), unless its session was revoked.
    pub fn admit(&self, identity: Identity) -> Result<Identity, AuthError> {
        if self.revoked.contains(identity.session_id) {
            return Err(AuthError::InvalidToken);
        }
        Ok(identity)
    }

    /// Checks the token's signature, issuer and expiry and returns the identity it carries (refused when its
    /// session was revoked).
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let now = chrono::Utc::now().timestamp();
        let cached = self
            .verified_lock()
            .get(token)
            .filter(|(_, exp)| *exp > now)
            .map(|(identity, _)| identity.clone());
        if let Some(identity) = cached {
            return self.admit(identity);
        }
        let (identity, exp) = self.verify_signed(token).await?;
        let identity = self.admit(identity)?;
        let mut verified = self.verified_lock();
        if verified.len() >= VERIFIED_CAPACITY {
            verified.clear();
        }
        verified.insert(token.to_string(), (identity.clone(), exp));
        Ok(identity)
    }

    fn verified_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Identity, i64)>> {
        self.verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn verify_signed(&self, token: &str) -> Result<(Identity, i64), AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::InvalidToken);
        }
        let kid = header.kid.ok_or(AuthError::InvalidToken)?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = LEEWAY_SECS as u64;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|_| AuthError::InvalidToken)?;
        let claims = data.claims;
        let identity = Identity {
            user_id: Uuid::parse_str(&claims.sub).map_err(|_| AuthError::InvalidToken)?,
            roles: claims.roles,
            session_id: Uuid::parse_str(&claims.sid).map_err(|_| AuthError::InvalidToken)?,
        };
        Ok((identity, claims.exp))
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        if let Some(key) = self.keys.read().await.keys.get(kid) {
            return Ok(key.clone());
        }
        let mut cache = self.keys.write().await;
        let recently = cache
            .fetched_at
            .is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL);
        if !recently {
            match self.fetch().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.fetched_at = Some(Instant::now());
                }
                Err(err) => {
                    tracing::warn!(url = %self.jwks_url, error = %err, "JWKS fetch failed");
                    if cache.keys.is_empty() {
                        return Err(AuthError::KeysUnavailable);
                    }
                }
            }
        }
        cache.keys.get(kid).cloned().ok_or(AuthError::InvalidToken)
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, reqwest::Error> {
        let set: JwkSet = self
            .http
            .get(&self.jwks_url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                DecodingKey::from_jwk(jwk).ok().map(|key| (kid, key))
            })
            .collect())
    }
}

/// The client's address as the router determined it (`x-forwarded-for`, which the router always replaces
/// with the one address it trusts), for per-IP limits. "unknown" when the header did not come.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientIp(pub String);

impl ClientIp {
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Self {
        let forwarded = headers
            .get(parley_protocol::headers::FORWARDED_FOR)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim);
        ClientIp(
            forwarded
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string(),
        )
    }
}

/// The bearer token of an `Authorization` header value, if it is one.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Marks a request that presented the router key: it comes from the router, so an entity reference in it
/// (`_entities`) was returned by another subgraph that applied the visibility rule to what holds it.
#[derive(Debug, Clone, Copy)]
pub struct ViaRouter;

/// Whether the request came from the router (see [`ViaRouter`]).
pub fn via_router(ctx: &async_graphql::Context<'_>) -> bool {
    ctx.data_opt::<ViaRouter>().is_some()
}

/// The caller, if authenticated.
pub fn identity<'a>(ctx: &'a async_graphql::Context<'_>) -> Option<&'a Identity> {
    ctx.data_opt::<Identity>()
}

/// The caller, or `UNAUTHENTICATED`.
pub fn require_identity<'a>(
    ctx: &'a async_graphql::Context<'_>,
) -> async_graphql::Result<&'a Identity> {
    identity(ctx)
        .ok_or_else(|| crate::error::coded(crate::ErrorCode::Unauthenticated, "sign in to do this"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parses_only_bearer() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn forwarded_claims_need_every_field_and_time_left() {
        let user = Uuid::now_v7();
        let sid = Uuid::now_v7();
        let claims = serde_json::json!({"sub": user.to_string(), "roles": ["moderator"], "sid": sid.to_string(), "exp": 1_000});
        let identity = Identity::from_forwarded_claims(&claims, 990).expect("valid");
        assert_eq!(identity.user_id, user);
        assert!(identity.has_role(Role::Moderator));
        assert!(
            Identity::from_forwarded_claims(&claims, 1_006).is_none(),
            "expired"
        );
        let partial = serde_json::json!({"sub": user.to_string(), "exp": 1_000});
        assert!(Identity::from_forwarded_claims(&partial, 990).is_none());
    }

    #[test]
    fn roles_are_ordered() {
        let admin = Identity {
            user_id: Uuid::nil(),
            roles: vec![Role::Admin],
            session_id: Uuid::nil(),
        };
        assert!(admin.has_role(Role::Moderator));
        assert_eq!(Role::parse("moderator"), Some(Role::Moderator));
        assert_eq!(Role::parse("root"), None);
    }
}
