//! Signed tokens for links a subgraph hands out and later reads back without a session (unsubscribe links,
//! report downloads): `<payload, base64url>.<HMAC-SHA256 of the payload, base64url>`, keyed by a secret of
//! the subgraph's. Only the signature is checked here (in constant time); what the payload means, and when
//! it expires, is the caller's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The longest token [`Signer::open`] reads.
pub const MAX_TOKEN: usize = 4096;

/// Signs payloads and opens tokens with one key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        // HMAC takes a key of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(payload);
        mac
    }

    /// The token carrying `payload`.
    pub fn sign(&self, payload: &str) -> String {
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes()).finalize().into_bytes())
        )
    }

    /// The payload of a token this key signed; `None` for anything else (too long, malformed, tampered).
    pub fn open(&self, token: &str) -> Option<String> {
        if token.len() > MAX_TOKEN {
            return None;
        }
        let (payload, mac) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        self.mac(&payload).verify_slice(&mac).ok()?;
        String::from_utf8(payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering_and_other_keys() {
        let signer = Signer::new(b"one key".to_vec());
        let token = signer.sign("user:42");
        assert_eq!(signer.open(&token).as_deref(), Some("user:42"));
        let (payload, mac) = token.split_once('.').expect("two parts");
        let forged = format!("{}.{mac}", URL_SAFE_NO_PAD.encode("user:43"));
        assert_eq!(signer.open(&forged), None);
        assert_eq!(Signer::new(b"another".to_vec()).open(&token), None);
        assert_eq!(signer.open(payload), None);
        assert_eq!(signer.open(&"a".repeat(MAX_TOKEN + 1)), None);
    }
}
