//! JWT signing keys: Ed25519, generated on first start and kept in the store so restarts and other instances
//! keep verifying old tokens. Tokens are signed with the newest key; the JWKS lists every key.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parley_kit::auth::{Claims, ISSUER};
use parley_kit::Role;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, QueryOrder, Set};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{Result, UsersError};
use crate::store::signing_key;

/// Lifetime of an access token, and the most an operator may set (`access_token_ttl_secs`): revoked sessions
/// are published for this long, so no token may outlive it.
pub const ACCESS_TOKEN_TTL: Duration = Duration::minutes(15);

pub struct Keys {
    kid: String,
    /// Lifetime of the access tokens signed here (at most [`ACCESS_TOKEN_TTL`]).
    ttl: Duration,
    encoding: EncodingKey,
    jwks: Value,
}

impl Keys {
    /// Loads the stored keys, creating the first one if there is none.
    pub async fn load_or_create(db: &DatabaseConnection, ttl: Duration) -> Result<Self> {
        let mut rows = signing_key::Entity::find()
            .order_by_desc(signing_key::Column::CreatedAt)
            .all(db)
            .await?;
        if rows.is_empty() {
            rows.push(create(db).await?);
        }
        let newest = &rows[0];
        let der = STANDARD
            .decode(&newest.private_key)
            .map_err(|e| UsersError::Internal(format!("stored signing key: {e}")))?;
        let jwks = json!({
            "keys": rows.iter().map(|row| json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                "kid": row.kid, "x": row.public_key,
            })).collect::<Vec<_>>()
        });
        Ok(Self {
            kid: newest.kid.clone(),
            ttl: ttl.min(ACCESS_TOKEN_TTL),
            encoding: EncodingKey::from_ed_der(&der),
            jwks,
        })
    }

    /// The public keys as a JWK set.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// Signs an access token for `user_id` in session `session_id`; returns it and when it expires.
    pub fn access_token(
        &self,
        user_id: Uuid,
        role: Role,
        session_id: Uuid,
    ) -> Result<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let expires_at = now + self.ttl;
        let claims = Claims {
            sub: user_id.to_string(),
            roles: vec![role],
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            jti: Uuid::now_v7().to_string(),
            iss: ISSUER.to_string(),
            sid: session_id.to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| UsersError::Internal(format!("signing: {e}")))?;
        Ok((token, expires_at))
    }
}

async fn create(db: &DatabaseConnection) -> Result<signing_key::Model> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let der = key
        .to_pkcs8_der()
        .map_err(|e| UsersError::Internal(format!("encoding key: {e}")))?;
    let public = key.verifying_key().to_bytes();
    let kid = hex(&Sha256::digest(public)[..8]);
    let row = signing_key::ActiveModel {
        kid: Set(kid),
        private_key: Set(STANDARD.encode(der.as_bytes())),
        public_key: Set(URL_SAFE_NO_PAD.encode(public)),
        created_at: Set(Utc::now()),
    };
    Ok(row.insert(db).await?)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
